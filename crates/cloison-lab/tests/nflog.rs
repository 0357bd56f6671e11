//! The ruleset's sampled drops reach userspace through NFLOG with the headers cloison
//! needs: a real kernel, a real ruleset, a real packet.

mod common;

use std::time::{Duration, Instant};

use cloison_core::alert::event::{Destination, EventKind, L4};
use common::{Netns, in_netns, require_root, text};

#[test]
fn a_blocked_packet_arrives_as_a_sample_with_its_headers() {
    if !require_root("a_blocked_packet_arrives_as_a_sample_with_its_headers") {
        return;
    }
    let router = Netns::with_lab_interfaces("nflog");
    let host = Netns::new("nflogh");
    let out = router.run(
        &["ip", "link", "set", "p-seg-kiosk", "netns", &host.name],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    for cmd in [
        "ip link set lo up",
        "ip link set p-seg-kiosk up",
        "ip addr add 192.168.20.15/24 dev p-seg-kiosk",
        "ip route add default via 192.168.20.1",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let out = host.run(&args, "");
        assert!(out.status.success(), "{cmd}: {}", text(&out));
    }
    let out = router.cloison(&["apply", "-c", common::LAB_TOML], &[]);
    assert!(out.status.success(), "{}", text(&out));

    let reader = in_netns(&router.name, || {
        let mut r =
            cloison::nflog::Reader::open(Duration::from_millis(200)).expect("bind NFLOG group");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while Instant::now() < deadline && got.is_empty() {
            got.extend(r.poll().expect("read NFLOG"));
        }
        got
    });
    std::thread::sleep(Duration::from_millis(300));
    // One datagram from the kiosk to the mairie server's DNS port: forwarded, dropped.
    let out = host.run(
        &[
            "bash",
            "-c",
            "echo cloison-marker > /dev/udp/192.168.10.5/53",
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));

    let samples = reader.join().expect("reader thread");
    let s = samples
        .iter()
        .find(|s| s.prefix == "kiosk/mairie")
        .unwrap_or_else(|| panic!("no kiosk/mairie sample in {samples:?}"));
    assert_eq!(
        s.packet.len(),
        20 + 8,
        "only the IP header and the UDP header are kept"
    );
    assert!(!String::from_utf8_lossy(&s.packet).contains("marker"));
    let config = cloison::config_file::load(common::LAB_TOML.as_ref())
        .unwrap()
        .config;
    let key = cloison_core::sample::decode(s, &config).expect("decodes");
    assert_eq!(key.kind, EventKind::CrossSegment);
    assert!(matches!(key.dst, Some(Destination::Segment(_))));
    assert_eq!(key.src_ip, Some("192.168.20.15".parse().unwrap()));
    assert_eq!(key.dst_ip, Some("192.168.10.5".parse().unwrap()));
    assert_eq!(key.proto, Some(L4::Udp));
    assert_eq!(key.dst_port, Some(53));
    assert!(
        key.src_mac.is_some(),
        "the source MAC comes with the sample"
    );
}
