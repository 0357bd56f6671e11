//! Issue 14 in the lab, through `cloison run` and the lab's journald: the trunk's
//! untagged side reaches nothing and is alerted; interfaces cloison does not manage
//! reach no router service unless trusted; a flood from random sources cannot hide a
//! real attempt behind the alert bound, and the bound and the counts still hold; TTL 1
//! probes and directed broadcasts say what they are.

mod common;

use common::daemon::{field, find};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use cloison_lab::frames::wire::*;
use cloison_lab::frames::*;
use cloison_lab::rig::Rig;
use cloison_lab::{self as probe, HOST_IF, Node, Reach, SWITCH_TRUNK_PORT};
use common::daemon::Setup;
use common::{require_root, text};
use nix::sys::signal::Signal;
use serde_json::Value;

const KIOSK4: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 15);
const SRV4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);

/// A rig for config/lab.toml changed by `edit`, started.
fn started_with(edit: impl FnOnce(String) -> String) -> Setup {
    let text = edit(std::fs::read_to_string(common::LAB_TOML).unwrap());
    let config = cloison_core::config::parse(&text, "lab.toml").unwrap_or_else(|d| panic!("{d}"));
    let mut s = Rig::with_config_text(&config, &text, &common::programs())
        .unwrap_or_else(|e| panic!("rig: {e:#?}"));
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    s
}

fn delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    c: &str,
) -> u64 {
    after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0)
}

// ---- The trunk's untagged side ----

#[test]
fn untagged_traffic_on_the_trunk_reaches_nothing_and_is_alerted() {
    if !require_root("untagged_traffic_on_the_trunk_reaches_nothing_and_is_alerted") {
        return;
    }
    // The lab's mairie with a trunk whose parent carries nothing tagged (the lab's
    // kernel may lack 8021q): what the switch sends there arrives untagged, as from its
    // native VLAN. The VM test does the same over a real 802.1Q trunk.
    let mut s = started_with(|t| format!("[trunk]\ninterface = \"trunk0\"\n\n{t}"));
    let switch = s.lab.ns(Node::Switch).to_owned();
    let router_mac = s.lab.mac(Node::Router, "trunk0").unwrap();
    let native_mac = s.lab.mac(Node::Switch, SWITCH_TRUNK_PORT).unwrap();
    let router_ll: Ipv6Addr = s
        .lab
        .run(
            Node::Router,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "trunk0", "scope", "link",
            ],
        )
        .unwrap()
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("the trunk's parent has its automatic IPv6 link-local address");
    let laptop4 = Ipv4Addr::new(192, 168, 20, 99);
    let laptop6: Ipv6Addr = "fe80::5054:ff:fe00:99".parse().unwrap();
    let native = probe::capture(&switch, SWITCH_TRUNK_PORT).unwrap();
    let srv = probe::capture(s.lab.ns(Node::MairieSrv), HOST_IF).unwrap();
    let before = s.counters().unwrap();
    let frames = [
        // The router's DNS on the kiosk side, its ssh on the mairie side...
        ipv4_frame(
            native_mac,
            router_mac,
            &udp4_packet(
                Ipv4::new(laptop4, Ipv4Addr::new(192, 168, 20, 1), IPPROTO_UDP),
                40000,
                53,
                b"query",
            ),
        ),
        ipv4_frame(
            native_mac,
            router_mac,
            &tcp4_packet(
                Ipv4::new(laptop4, Ipv4Addr::new(192, 168, 10, 1), IPPROTO_TCP),
                22,
                TCP_SYN,
            ),
        ),
        // ... ssh on the parent's own link-local address...
        ipv6_frame(
            native_mac,
            router_mac,
            &tcp6_packet(Ipv6::new(laptop6, router_ll, IPPROTO_TCP), 22, TCP_SYN),
        ),
        // ... and the mairie's file server, routed.
        ipv4_frame(
            native_mac,
            router_mac,
            &tcp4_packet(Ipv4::new(laptop4, SRV4, IPPROTO_TCP), 445, TCP_SYN),
        ),
    ];
    for f in &frames {
        probe::send_frame(&switch, SWITCH_TRUNK_PORT, f).unwrap();
    }
    // And an ARP request for the router's kiosk address: the parent answers none.
    probe::send_frame(
        &switch,
        SWITCH_TRUNK_PORT,
        &arp_request(native_mac, laptop4, Ipv4Addr::new(192, 168, 20, 1)),
    )
    .unwrap();
    // No answer of any kind comes back on the untagged side.
    let answer = native
        .wait_for(Duration::from_secs(2), |f| {
            let Ok((eth, payload)) = Ethernet::parse(f) else {
                return false;
            };
            eth.src == router_mac
                && match eth.ether_type {
                    ETHERTYPE_ARP => Arp::parse(payload).is_ok_and(|a| a.op == ARP_REPLY),
                    ETHERTYPE_IPV4 => Ipv4::parse(payload).is_ok_and(|(ip, _)| ip.dst == laptop4),
                    ETHERTYPE_IPV6 => Ipv6::parse(payload).is_ok_and(|(ip, _)| ip.dst == laptop6),
                    _ => false,
                }
        })
        .unwrap();
    assert!(
        answer.is_none(),
        "the router answered the untagged side: {answer:02x?}"
    );
    let leaked = srv
        .wait_for(Duration::from_millis(500), |f| {
            Ethernet::parse(f)
                .ok()
                .and_then(|(_, p)| Ipv4::parse(p).ok())
                .is_some_and(|(ip, _)| ip.src == laptop4)
        })
        .unwrap();
    assert!(
        leaked.is_none(),
        "routed from the untagged side: {leaked:02x?}"
    );
    let after = s.counters().unwrap();
    assert_eq!(delta(&before, &after, "trunk/untagged"), 4, "{after:?}");

    let e = find(&s, "router_access", |e| {
        e["CLOISON_DST_PORT"] == "22" && e["CLOISON_DST_IP"] == router_ll.to_string().as_str()
    });
    assert_eq!(field(&e, "CLOISON_INTERFACE"), "trunk0");
    assert_eq!(field(&e, "CLOISON_COUNTER"), "trunk/untagged");
    assert!(e.get("CLOISON_SRC_SEGMENT").is_none(), "{e}");
    assert_eq!(field(&e, "PRIORITY"), "4");
    assert!(
        field(&e, "MESSAGE").starts_with("untagged on trunk0:"),
        "{e}"
    );
    find(&s, "router_access", |e| {
        e["CLOISON_DST_IP"] == "192.168.10.5"
    });

    // The second wall without nftables: nothing from the untagged side is routed.
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
    let out = s.nft(&["delete", "table", "inet", "cloison"]);
    assert!(out.status.success(), "{}", text(&out));
    let srv = probe::capture(s.lab.ns(Node::MairieSrv), HOST_IF).unwrap();
    probe::send_frame(&switch, SWITCH_TRUNK_PORT, &frames[3]).unwrap();
    let leaked = srv
        .wait_for(Duration::from_secs(1), |f| {
            Ethernet::parse(f)
                .ok()
                .and_then(|(_, p)| Ipv4::parse(p).ok())
                .is_some_and(|(ip, _)| ip.src == laptop4)
        })
        .unwrap();
    assert!(
        leaked.is_none(),
        "the second wall routed the untagged side: {leaked:02x?}"
    );
}

// ---- Interfaces cloison does not manage ----

#[test]
fn unmanaged_interfaces_reach_no_router_service_unless_trusted() {
    if !require_root("unmanaged_interfaces_reach_no_router_service_unless_trusted") {
        return;
    }
    let s = started_with(|t| t);
    // An interface added to the router after cloison started (a management port, a
    // laptop's USB adapter...), its other end in the switch's namespace.
    let switch = s.lab.ns(Node::Switch).to_owned();
    let router = s.lab.ns(Node::Router).to_owned();
    for (ns, cmd) in [
        (
            &router,
            format!("ip link add mgmt0 type veth peer name mgmtp netns {switch}"),
        ),
        (&router, "ip addr add 172.31.0.1/30 dev mgmt0".to_owned()),
        (&router, "ip link set mgmt0 up".to_owned()),
        (&switch, "ip addr add 172.31.0.2/30 dev mgmtp".to_owned()),
        (&switch, "ip link set mgmtp up".to_owned()),
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", ns])
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {}", text(&out));
    }
    let ssh: SocketAddr = "172.31.0.1:22".parse().unwrap();
    let before = s.counters().unwrap();
    assert_eq!(
        probe::tcp_connect(&switch, ssh, Duration::from_millis(800)).unwrap(),
        Reach::TimedOut,
        "an unmanaged interface reached the router's ssh"
    );
    assert_eq!(
        probe::udp_exchange(
            &switch,
            "172.31.0.1:53".parse().unwrap(),
            Duration::from_millis(500)
        )
        .unwrap(),
        Reach::TimedOut
    );
    let after = s.counters().unwrap();
    assert!(delta(&before, &after, "unmanaged") >= 2, "{after:?}");

    // Trusted, by configuration: the same port reaches ssh.
    s.write_config(&common::daemon::lab_config_with(
        "ssh_port = 22",
        "ssh_port = 22\ntrusted_interfaces = [\"mgmt0\"]",
    ));
    s.signal(Signal::SIGHUP);
    s.wait_notify("READY=1", Duration::from_secs(30));
    assert!(
        matches!(
            probe::tcp_connect(&switch, ssh, Duration::from_secs(1)).unwrap(),
            Reach::Open { .. }
        ),
        "a trusted interface must reach the router"
    );
}

#[test]
fn check_warns_when_the_input_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let lab = std::fs::read_to_string(common::LAB_TOML).unwrap();
    // The configuration's warnings only: not the one about this machine's own
    // /etc/nftables.conf (a `flush ruleset` there is warned about too).
    let no_nftables_conf = dir.path().join("no-nftables.conf");
    let check = |p: &Path| {
        std::process::Command::new(common::programs().cloison)
            .args(["check", "-c"])
            .arg(p)
            .env("CLOISON_NFTABLES_CONF", &no_nftables_conf)
            .output()
            .unwrap()
    };
    let out = check(&write("lab.toml", &lab));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stderr.is_empty(),
        "no warning for the lab: {}",
        text(&out)
    );

    let open = write(
        "open.toml",
        &lab.replace(
            "ssh_port = 22",
            "ssh_port = 22\nunmanaged_input = \"accept\"",
        ),
    );
    let out = check(&open);
    assert!(
        out.status.success(),
        "a warning is not an error: {}",
        text(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: router.unmanaged_input:") && err.contains("trusted_interfaces"),
        "{err}"
    );
    // Nobody can administer the router: said too.
    let locked = write(
        "locked.toml",
        &lab.replace("management = true", "management = false"),
    );
    let err = String::from_utf8_lossy(&check(&locked).stderr).into_owned();
    assert!(
        err.contains("reachable from nowhere but its console"),
        "{err}"
    );
}

// ---- The alert budget under a flood from random sources ----

#[test]
fn a_random_source_flood_cannot_hide_a_real_scan_and_counts_stay_exact() {
    if !require_root("a_random_source_flood_cannot_hide_a_real_scan_and_counts_stay_exact") {
        return;
    }
    let mut s = started_with(|t| t);
    let kiosk_mac = s.lab.mac(Node::Kiosk, HOST_IF).unwrap();
    let router_mac = s.lab.mac(Node::Router, "seg-kiosk").unwrap();
    // hping3 --flood --rand-source toward the mairie's SMB port: forged sources from
    // anywhere, and random sources inside the kiosk's own subnet.
    let mut x: u32 = 0x2545_f491;
    let mut frames = Vec::new();
    for i in 0..6_000u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src = if i % 2 == 0 {
            Ipv4Addr::from(x)
        } else {
            Ipv4Addr::new(192, 168, 20, (x % 200) as u8 + 20)
        };
        frames.push(ipv4_frame(
            kiosk_mac,
            router_mac,
            &tcp4_packet(Ipv4::new(src, SRV4, IPPROTO_TCP), 445, TCP_SYN),
        ));
    }
    let started = std::time::Instant::now();
    probe::send_frames(s.lab.ns(Node::Kiosk), HOST_IF, &frames).unwrap();
    let flooding = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    // The real attempt: one SYN to a port of the mairie nobody tried yet.
    probe::tcp_connect(
        s.lab.ns(Node::Kiosk),
        SocketAddr::new(IpAddr::V4(SRV4), 8443),
        Duration::from_millis(300),
    )
    .unwrap();
    let e = find(&s, "cross_segment", |e| e["CLOISON_DST_PORT"] == "8443");
    assert!(
        e.get("CLOISON_SUMMARY").is_none(),
        "its own first alert: {e}"
    );
    assert_eq!(field(&e, "CLOISON_SRC_IP"), KIOSK4.to_string());
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "within the minute of the flood ({flooding:?} to send it)"
    );

    // Stop (the final entries flush every count) and check the bound and the counts.
    let counters = s.counters().unwrap();
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(Duration::from_secs(20)), Some(0));
    let sum = |kind: &str| -> u64 {
        s.events(kind)
            .iter()
            .map(|e| field(e, "CLOISON_PACKETS").parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(sum("spoofed_source"), counters["kiosk/spoofed"]);
    assert_eq!(sum("cross_segment"), counters["kiosk/mairie"]);
    assert!(counters["kiosk/spoofed"] >= 2_900, "{counters:?}");
    // The summaries name what they fold.
    let folded: Vec<Value> = s
        .events("spoofed_source")
        .into_iter()
        .chain(s.events("cross_segment"))
        .filter(|e| e.get("CLOISON_SUMMARY").is_some() && e.get("CLOISON_SOURCES").is_some())
        .collect();
    assert!(!folded.is_empty(), "no summary names its sources");
    for e in &folded {
        assert!(
            field(e, "CLOISON_TOP_DESTINATIONS").contains("192.168.10.5 tcp/445"),
            "{e}"
        );
        assert!(field(e, "MESSAGE").contains("distinct sources"), "{e}");
    }
    // At most max_per_minute (120 in the lab) entries in any minute, by journald's own
    // timestamps, and the final flush at most one more entry per kind.
    let mut times: Vec<u64> = s
        .journal
        .entries(&["-t", "cloison"])
        .unwrap()
        .iter()
        .map(|e| field(e, "__REALTIME_TIMESTAMP").parse().unwrap())
        .collect();
    times.sort_unstable();
    let most = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            times[i..]
                .iter()
                .take_while(|u| **u < t + 60_000_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(most <= 120 + 8, "{most} entries in a minute");
}

// ---- What TTL 1 probes and directed broadcasts are ----

#[test]
fn ttl_1_probes_and_directed_broadcasts_say_what_they_are() {
    if !require_root("ttl_1_probes_and_directed_broadcasts_say_what_they_are") {
        return;
    }
    let s = started_with(|t| t);
    let kiosk_mac = s.lab.mac(Node::Kiosk, HOST_IF).unwrap();
    let router_mac = s.lab.mac(Node::Router, "seg-kiosk").unwrap();
    let kiosk = probe::capture(s.lab.ns(Node::Kiosk), HOST_IF).unwrap();
    let srv = probe::capture(s.lab.ns(Node::MairieSrv), HOST_IF).unwrap();
    let before = s.counters().unwrap();
    // traceroute into the mairie: TTL 1.
    let probe_frame = ipv4_frame(
        kiosk_mac,
        router_mac,
        &udp4_packet(
            Ipv4 {
                ttl: 1,
                ..Ipv4::new(KIOSK4, SRV4, IPPROTO_UDP)
            },
            33434,
            33435,
            &[],
        ),
    );
    probe::send_frame(s.lab.ns(Node::Kiosk), HOST_IF, &probe_frame).unwrap();
    // The mairie's broadcast address.
    probe::send_frame(
        s.lab.ns(Node::Kiosk),
        HOST_IF,
        &ipv4_frame(
            kiosk_mac,
            router_mac,
            &udp4_packet(
                Ipv4::new(KIOSK4, Ipv4Addr::new(192, 168, 10, 255), IPPROTO_UDP),
                40000,
                137,
                &[],
            ),
        ),
    )
    .unwrap();
    // No "time exceeded" back to the kiosk (the router would reveal itself on the path
    // into the mairie), nothing on the mairie's wire.
    let answer = kiosk
        .wait_for(Duration::from_secs(1), |f| {
            Ethernet::parse(f)
                .ok()
                .and_then(|(_, p)| Ipv4::parse(p).ok())
                .is_some_and(|(ip, _)| ip.proto == IPPROTO_ICMP && ip.dst == KIOSK4)
        })
        .unwrap();
    assert!(answer.is_none(), "{answer:02x?}");
    let leaked = srv
        .wait_for(Duration::from_millis(300), |f| {
            Ethernet::parse(f)
                .ok()
                .and_then(|(_, p)| Ipv4::parse(p).ok())
                .is_some_and(|(ip, _)| ip.src == KIOSK4)
        })
        .unwrap();
    assert!(leaked.is_none());
    let after = s.counters().unwrap();
    assert_eq!(delta(&before, &after, "kiosk/mairie"), 2);
    assert_eq!(
        delta(&before, &after, "kiosk/router"),
        0,
        "not filed as router access"
    );
    let e = find(&s, "cross_segment", |e| {
        e["CLOISON_TECHNIQUE"] == "traceroute"
    });
    assert_eq!(field(&e, "CLOISON_DST_PORT"), "33435");
    assert!(field(&e, "MESSAGE").contains("TTL 1 probe"), "{e}");
    let e = find(&s, "cross_segment", |e| {
        e["CLOISON_TECHNIQUE"] == "directed_broadcast"
    });
    assert_eq!(field(&e, "CLOISON_DST_IP"), "192.168.10.255");
    assert_eq!(field(&e, "CLOISON_DST_SEGMENT"), "mairie");
    assert!(field(&e, "MESSAGE").contains("directed broadcast"), "{e}");
}
