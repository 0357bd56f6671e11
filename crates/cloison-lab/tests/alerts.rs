//! Every event kind, produced by a real packet or frame in the lab, through the real
//! daemon, into a real journald, read back with `journalctl -o json`; floods bounded and
//! counted exactly; payloads never written.

mod common;

use common::daemon::{field, find, started};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use cloison_lab::frames as fixtures;
use cloison_lab::{self as probe, HOST_IF, Node};
use common::daemon::Setup;
use common::{require_root, text};
use nix::sys::signal::Signal;

fn kiosk_mac(s: &Setup) -> [u8; 6] {
    s.lab.mac(Node::Kiosk, HOST_IF).unwrap()
}

fn router_mac(s: &Setup, iface: &str) -> [u8; 6] {
    s.lab.mac(Node::Router, iface).unwrap()
}

#[test]
fn cross_segment_router_access_and_spoofing_from_the_ruleset() {
    if !require_root("cross_segment_router_access_and_spoofing_from_the_ruleset") {
        return;
    }
    let s = started();
    let kiosk = s.lab.ns(Node::Kiosk);
    let before = std::time::Instant::now();
    probe::tcp_connect(
        kiosk,
        s.addr(Node::MairieSrv, 445),
        Duration::from_millis(500),
    )
    .unwrap();
    let e = find(&s, "cross_segment", |e| e["CLOISON_DST_PORT"] == "445");
    assert!(
        before.elapsed() < Duration::from_secs(2),
        "first alert within a second of the packet"
    );
    assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "kiosk");
    assert_eq!(field(&e, "CLOISON_DST_SEGMENT"), "mairie");
    assert_eq!(field(&e, "CLOISON_SRC_IP"), "192.168.20.15");
    assert_eq!(field(&e, "CLOISON_DST_IP"), "192.168.10.5");
    assert_eq!(field(&e, "CLOISON_PROTO"), "tcp");
    assert_eq!(field(&e, "CLOISON_VERDICT"), "blocked");
    assert_eq!(field(&e, "PRIORITY"), "4");
    assert_eq!(field(&e, "SYSLOG_IDENTIFIER"), "cloison");
    assert_eq!(field(&e, "MESSAGE_ID"), "19fbdf17c11e42b1a5f69fbb2e09ed07");
    assert_eq!(field(&e, "CLOISON_INTERFACE"), "seg-kiosk");
    assert!(
        e["CLOISON_SRC_MAC"].is_string()
            && e["CLOISON_FIRST_SEEN"].is_string()
            && e["CLOISON_PACKETS"].is_string(),
        "{e}"
    );
    assert!(
        field(&e, "MESSAGE")
            .contains("kiosk 192.168.20.15 tried mairie 192.168.10.5 tcp/445 (SMB): blocked"),
        "{e}"
    );

    // Toward a private address of no segment: the ISP box's admin page.
    probe::tcp_connect(kiosk, s.addr(Node::Isp, 80), Duration::from_millis(500)).unwrap();
    let e = find(&s, "cross_segment", |e| {
        e["CLOISON_DST_IP"] == "192.168.1.254"
    });
    assert!(
        e.get("CLOISON_DST_SEGMENT").is_none() || e["CLOISON_DST_SEGMENT"] == "private",
        "{e}"
    );

    // The router's ssh, and the mairie side of the router, from the kiosk.
    probe::tcp_connect(
        kiosk,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 20, 1)), 22),
        Duration::from_millis(500),
    )
    .unwrap();
    probe::udp_exchange(
        kiosk,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 1)), 53),
        Duration::from_millis(500),
    )
    .unwrap();
    let e = find(&s, "router_access", |e| e["CLOISON_DST_PORT"] == "22");
    assert_eq!(field(&e, "PRIORITY"), "4");
    assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "kiosk");
    find(&s, "router_access", |e| {
        e["CLOISON_DST_IP"] == "192.168.10.1"
    });

    // A forged mairie source address from the kiosk.
    probe::send_spoofed_udp(
        kiosk,
        IpAddr::V4(Ipv4Addr::new(192, 168, 10, 10)),
        s.addr(Node::MairieSrv, 53),
        3,
        b"forged",
    )
    .unwrap();
    let e = find(&s, "spoofed_source", |e| {
        e["CLOISON_SRC_IP"] == "192.168.10.10"
    });
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "kiosk");

    // IPv6 too.
    probe::tcp_connect(
        kiosk,
        SocketAddr::new(IpAddr::V6(s.lab.v6(Node::MairieSrv).unwrap()), 3389),
        Duration::from_millis(500),
    )
    .unwrap();
    let e = find(&s, "cross_segment", |e| e["CLOISON_DST_PORT"] == "3389");
    assert_eq!(field(&e, "CLOISON_DST_IP"), "fd00:10::5");

    // Filters users rely on.
    let by_segment = s.journal.entries(&["CLOISON_SRC_SEGMENT=kiosk"]).unwrap();
    assert!(by_segment.len() >= 5, "{by_segment:?}");
    let by_id = s
        .journal
        .entries(&["MESSAGE_ID=19fbdf17c11e42b1a5f69fbb2e09ed07"])
        .unwrap();
    assert!(by_id.iter().all(|e| e["CLOISON_EVENT"] == "cross_segment"));
    let warnings = s
        .journal
        .entries(&["-t", "cloison", "-p", "warning"])
        .unwrap();
    assert!(
        warnings
            .iter()
            .all(|e| e["PRIORITY"].as_str().unwrap().parse::<u8>().unwrap() <= 4)
    );
}

#[test]
fn layer_2_attacks_from_a_compromised_kiosk() {
    if !require_root("layer_2_attacks_from_a_compromised_kiosk") {
        return;
    }
    let s = started();
    let kiosk = s.lab.ns(Node::Kiosk);
    let mac = kiosk_mac(&s);
    let router = router_mac(&s, "seg-kiosk");
    let send = |frame: Vec<u8>| probe::send_frame(kiosk, HOST_IF, &frame).unwrap();

    // An ARP reply claiming the router's address.
    send(fixtures::arp_reply(
        mac,
        Ipv4Addr::new(192, 168, 20, 1),
        router,
        Ipv4Addr::new(192, 168, 20, 1),
    ));
    let e = find(&s, "arp_spoof", |_| true);
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert_eq!(
        field(&e, "CLOISON_SRC_MAC"),
        cloison_core::alert::event::format_mac(&mac)
    );
    assert_eq!(field(&e, "CLOISON_INTERFACE"), "seg-kiosk");

    // A DHCP offer: the kiosk pretending to be the DHCP server.
    send(fixtures::dhcp_offer(mac, Ipv4Addr::new(192, 168, 20, 15)));
    let e = find(&s, "rogue_dhcp", |_| true);
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert_eq!(
        field(&e, "CLOISON_SRC_MAC"),
        cloison_core::alert::event::format_mac(&mac)
    );

    // An IPv6 router advertisement.
    send(fixtures::router_advertisement(
        mac,
        fixtures::LINK_LOCAL_HOST6,
    ));
    let e = find(&s, "rogue_ra", |_| true);
    assert_eq!(field(&e, "PRIORITY"), "3");

    // A double-tagged frame on the kiosk's (untagged) port: VLAN hopping.
    let inner = fixtures::udp4(
        mac,
        router,
        Ipv4Addr::new(192, 168, 20, 15),
        Ipv4Addr::new(192, 168, 10, 5),
        40000,
        445,
    );
    send(fixtures::dot1q(&fixtures::dot1q(&inner, 10), 20));
    let e = find(&s, "vlan_hopping", |_| true);
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert_eq!(field(&e, "CLOISON_INTERFACE"), "seg-kiosk");
    assert_eq!(field(&e, "CLOISON_VLAN"), "20", "the outer tag");
    assert_eq!(
        field(&e, "CLOISON_VLAN_INNER"),
        "10",
        "the VLAN the attacker aims at"
    );
    assert!(
        field(&e, "MESSAGE").contains("double-tagged (VLAN 20, then 10)"),
        "{e}"
    );
}

#[test]
fn a_bridge_someone_added_between_segments_is_an_isolation_breach() {
    if !require_root("a_bridge_someone_added_between_segments_is_an_isolation_breach") {
        return;
    }
    let s = started();
    // Someone patches the kiosk's switch ports into the mairie's: one wire for both.
    for cmd in [
        "ip link add leak0 type veth peer name leak1",
        "ip link set leak0 master br-kiosk up",
        "ip link set leak1 master br-mairie up",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        s.lab
            .run(Node::Switch, &args)
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
    // Ordinary mairie traffic (ARP, then a ping) now floods onto the kiosk's wire too.
    s.lab
        .run(Node::MairiePc, &["ip", "neigh", "flush", "all"])
        .unwrap();
    probe::ping(
        s.lab.ns(Node::MairiePc),
        IpAddr::V4(s.lab.v4(Node::MairieSrv).unwrap()),
        Duration::from_millis(500),
    )
    .unwrap();
    probe::ping(
        s.lab.ns(Node::MairiePc),
        IpAddr::V4(Ipv4Addr::new(192, 168, 10, 1)),
        Duration::from_millis(500),
    )
    .unwrap();
    let e = find(&s, "isolation_breach", |_| true);
    assert_eq!(field(&e, "PRIORITY"), "2", "a breach is critical");
    assert_eq!(field(&e, "MESSAGE_ID"), "26140ea8d3f14537bbfd6092ce6f4015");
    let text = format!("{e}");
    assert!(
        text.contains("mairie") && text.contains("kiosk"),
        "the breach names both segments: {e}"
    );
}

#[test]
fn a_flood_is_bounded_and_counted_exactly() {
    if !require_root("a_flood_is_bounded_and_counted_exactly") {
        return;
    }
    let mut s = started();
    let kiosk = s.lab.ns(Node::Kiosk);
    // 100k blocked packets over many flows (ports), as fast as the lab sends them.
    let started = std::time::Instant::now();
    for port in 0..20u16 {
        probe::send_udp_burst(kiosk, s.addr(Node::MairieSrv, 1000 + port), 5000, b"flood").unwrap();
    }
    let sending = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let dropped = s.counter("kiosk/mairie");
    assert!(
        dropped >= 99_000,
        "only {dropped} packets reached the router's rules (sent in {sending:?})"
    );
    // Stopping flushes every count still folded.
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
    let entries = s.events("cross_segment");
    let sum: u64 = entries
        .iter()
        .map(|e| {
            e["CLOISON_PACKETS"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        sum,
        dropped,
        "the journal must account for every dropped packet ({} entries)",
        entries.len()
    );
    let all = s.journal.entries(&["-t", "cloison"]).unwrap();
    assert!(
        all.len() <= 120 + 8,
        "{} entries for a flood: the bound is 120 a minute (plus one flush entry per kind)",
        all.len()
    );
    assert!(entries.len() >= 2, "a first alert and at least one summary");
}

#[test]
fn payloads_never_reach_the_journal() {
    if !require_root("payloads_never_reach_the_journal") {
        return;
    }
    let mut s = started();
    const MARKER: &[u8] = b"CLOISON-PAYLOAD-MARKER-7f3a9c";
    let kiosk = s.lab.ns(Node::Kiosk);
    let mac = kiosk_mac(&s);
    let router = router_mac(&s, "seg-kiosk");
    // Through the ruleset (NFLOG): UDP over IPv4 and IPv6, blocked and sampled.
    probe::send_udp_burst(kiosk, s.addr(Node::MairieSrv, 53), 20, MARKER).unwrap();
    probe::send_udp_burst(
        kiosk,
        SocketAddr::new(IpAddr::V6(s.lab.v6(Node::MairieSrv).unwrap()), 53),
        20,
        MARKER,
    )
    .unwrap();
    probe::send_spoofed_udp(
        kiosk,
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0x77)),
        s.addr(Node::MairieSrv, 53),
        5,
        MARKER,
    )
    .ok();
    // Through the capture: frames carrying the marker after their headers.
    let mut offer = fixtures::dhcp_offer(mac, Ipv4Addr::new(192, 168, 20, 15));
    offer.extend_from_slice(MARKER);
    probe::send_frame(kiosk, HOST_IF, &offer).unwrap();
    let mut tagged = fixtures::dot1q(
        &fixtures::udp4(
            mac,
            router,
            Ipv4Addr::new(192, 168, 20, 15),
            Ipv4Addr::new(192, 168, 10, 5),
            1,
            2,
        ),
        30,
    );
    tagged.extend_from_slice(MARKER);
    probe::send_frame(kiosk, HOST_IF, &tagged).unwrap();
    find(&s, "rogue_dhcp", |_| true);
    find(&s, "vlan_hopping", |_| true);
    s.signal(Signal::SIGTERM);
    s.wait_exit(Duration::from_secs(20));
    // The whole journal, every field of every entry, in the export format.
    let out = std::process::Command::new("journalctl")
        .arg(format!("--directory={}", s.journal.journal_dir().display()))
        .args(["-o", "export", "--no-pager"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let export = out.stdout;
    assert!(export.len() > 1000, "the journal is not empty");
    let found = export.windows(MARKER.len()).any(|w| w == MARKER);
    assert!(!found, "payload bytes reached the journal");
    assert!(
        !s.log()
            .as_bytes()
            .windows(MARKER.len())
            .any(|w| w == MARKER),
        "payload bytes reached the daemon's log"
    );
}
