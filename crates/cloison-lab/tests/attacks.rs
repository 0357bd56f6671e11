//! The attacks of issue 13, each as a compromised kiosk would send it (frames built with
//! the frame kit, sent from the kiosk's wire), through the lab's router running `cloison
//! run`, with both outcomes asserted: nothing crossed (the targets' captures, counters,
//! the router's own state), and the documented alert is in the lab's journald with the
//! right kind and fields.

mod common;

use common::daemon::{field, find, started};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use cloison_lab::frames::wire::*;
use cloison_lab::frames::*;
use cloison_lab::{self as probe, Capture, HOST_IF, Node};
use common::daemon::Setup;
use common::require_root;
use serde_json::Value;

const KIOSK4: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 15);
const KIOSK6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 0, 0, 0x15);
const PC4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 10);
const PC6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0x10);
const SRV4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);
const SRV6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 5);
const POSTE4: Ipv4Addr = Ipv4Addr::new(192, 168, 30, 30);
const INET_A4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const INET_A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x10);
const INET_B4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// The kiosk's MAC and the router's on the kiosk's wire.
fn macs(s: &Setup) -> ([u8; 6], [u8; 6]) {
    (
        s.lab.mac(Node::Kiosk, HOST_IF).unwrap(),
        s.lab.mac(Node::Router, "seg-kiosk").unwrap(),
    )
}

fn send(s: &Setup, frame: &[u8]) {
    probe::send_frame(s.lab.ns(Node::Kiosk), HOST_IF, frame).unwrap();
}

fn capture(s: &Setup, node: Node) -> Capture {
    probe::capture(s.lab.ns(node), HOST_IF).unwrap()
}

/// IPv4 or IPv6 source of a frame, if it has one (tags not walked: the lab's hosts
/// receive untagged frames).
fn source(frame: &[u8]) -> Option<IpAddr> {
    let (eth, payload) = Ethernet::parse(frame).ok()?;
    match eth.ether_type {
        ETHERTYPE_IPV4 => Ipv4::parse(payload).ok().map(|(ip, _)| IpAddr::V4(ip.src)),
        ETHERTYPE_IPV6 => Ipv6::parse(payload).ok().map(|(ip, _)| IpAddr::V6(ip.src)),
        ETHERTYPE_ARP => Arp::parse(payload).ok().map(|a| IpAddr::V4(a.spa)),
        _ => None,
    }
}

/// Asserts that nothing from the kiosk (its addresses, or any frame it forged with
/// `macs`) reached `cap` within a second.
fn nothing_from_the_kiosk(cap: &Capture, where_: &str, macs: &[[u8; 6]]) {
    let got = cap
        .wait_for(Duration::from_secs(1), |f| {
            let mac = Ethernet::parse(f).map(|(e, _)| e.src).ok();
            matches!(source(f), Some(a) if a == IpAddr::V4(KIOSK4) || a == IpAddr::V6(KIOSK6))
                || mac.is_some_and(|m| macs.contains(&m))
        })
        .unwrap();
    assert!(got.is_none(), "{where_} received {got:02x?}");
}

/// A UDP socket of `node` bound to `port`, having exchanged one datagram with `to`: a
/// flow conntrack knows, from a known port.
fn flow(s: &Setup, node: Node, port: u16, to: SocketAddr) -> std::net::UdpSocket {
    let any: IpAddr = if to.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = probe::bind_udp(s.lab.ns(node), SocketAddr::new(any, port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(b"cloison-lab flow", to).unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("{node} -> {to}: no answer: {e}"));
    assert!(n > 0 && from == to, "{node} -> {to}: answered by {from}");
    sock
}

// ---- 1. ICMP errors from the kiosk about other segments' flows ----

#[test]
fn icmp_errors_from_the_kiosk_about_other_segments_flows_never_cross() {
    if !require_root("icmp_errors_from_the_kiosk_about_other_segments_flows_never_cross") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    // Flows the kiosk must not be able to touch: mairie-pc to the router's DNS and to the
    // Internet (masqueraded), over both families, and La Poste to the Internet.
    let dns4 = SocketAddr::new(Ipv4Addr::new(192, 168, 10, 1).into(), 53);
    let dns6 = SocketAddr::new(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1).into(), 53);
    let _keep = [
        flow(&s, Node::MairiePc, 5555, dns4),
        flow(
            &s,
            Node::MairiePc,
            5556,
            SocketAddr::new(INET_A4.into(), 53),
        ),
        flow(&s, Node::MairiePc, 5557, dns6),
        flow(
            &s,
            Node::MairiePc,
            5558,
            SocketAddr::new(INET_A6.into(), 53),
        ),
        flow(&s, Node::Poste, 5559, SocketAddr::new(INET_B4.into(), 53)),
    ];
    let pc = capture(&s, Node::MairiePc);
    let poste = capture(&s, Node::Poste);
    let before = s.counters().unwrap();

    // Each error quotes the packet the victim sent, as the path of that flow would:
    // destination unreachable (IPv4) and packet too big (IPv6), 260 bytes of the kiosk's
    // choosing behind the quoted headers.
    let pad = [0x41u8; 260];
    let quoted4 = |src: Ipv4Addr, sport: u16, dst: Ipv4Addr| {
        udp4_packet(Ipv4::new(src, dst, IPPROTO_UDP), sport, 53, &pad)
    };
    let quoted6 = |src: Ipv6Addr, sport: u16, dst: Ipv6Addr| {
        udp6_packet(Ipv6::new(src, dst, IPPROTO_UDP), sport, 53, &pad)
    };
    let v4 = |to: Ipv4Addr, quoted: Vec<u8>| {
        ipv4_frame(
            kiosk_mac,
            router_mac,
            &icmp4_error(
                KIOSK4,
                to,
                ICMP_DEST_UNREACHABLE,
                ICMP_PORT_UNREACHABLE,
                0,
                &quoted,
            ),
        )
    };
    let v6 = |to: Ipv6Addr, quoted: Vec<u8>| {
        ipv6_frame(
            kiosk_mac,
            router_mac,
            &icmp6_error(KIOSK6, to, ICMPV6_PACKET_TOO_BIG, 0, 1280, &quoted),
        )
    };
    for frame in [
        v4(PC4, quoted4(PC4, 5555, Ipv4Addr::new(192, 168, 10, 1))),
        v4(PC4, quoted4(PC4, 5556, INET_A4)),
        v6(
            PC6,
            quoted6(PC6, 5557, Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1)),
        ),
        v6(PC6, quoted6(PC6, 5558, INET_A6)),
        v4(POSTE4, quoted4(POSTE4, 5559, INET_B4)),
    ] {
        send(&s, &frame);
    }
    nothing_from_the_kiosk(&pc, "mairie-pc", &[]);
    nothing_from_the_kiosk(&poste, "poste", &[]);
    let after = s.counters().unwrap();
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    assert_eq!(delta("kiosk/mairie"), 4, "counted in their pair: {after:?}");
    assert_eq!(delta("kiosk/poste"), 1);
    assert_eq!(delta("invalid"), 0);

    for (to, proto, segment) in [
        ("192.168.10.10", "icmp", "mairie"),
        ("fd00:10::10", "icmpv6", "mairie"),
        ("192.168.30.30", "icmp", "poste"),
    ] {
        let e = find(&s, "cross_segment", |e| e["CLOISON_DST_IP"] == to);
        assert_eq!(field(&e, "CLOISON_PROTO"), proto);
        assert_eq!(field(&e, "CLOISON_TECHNIQUE"), "icmp_error");
        assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "kiosk");
        assert_eq!(field(&e, "CLOISON_DST_SEGMENT"), segment);
        assert_eq!(field(&e, "CLOISON_VERDICT"), "blocked");
        assert!(field(&e, "MESSAGE").contains("ICMP error injection"), "{e}");
    }
}

#[test]
fn an_icmp_error_from_the_kiosk_sets_no_path_mtu_on_the_router() {
    if !require_root("an_icmp_error_from_the_kiosk_sets_no_path_mtu_on_the_router") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    let router4 = Ipv4Addr::new(192, 168, 10, 1);
    let router6 = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
    // The router answers mairie-pc's DNS queries: flows from the router's mairie side.
    let _keep = [
        flow(
            &s,
            Node::MairiePc,
            5555,
            SocketAddr::new(router4.into(), 53),
        ),
        flow(
            &s,
            Node::MairiePc,
            5556,
            SocketAddr::new(router6.into(), 53),
        ),
    ];
    let before = s.counters().unwrap();
    // "Fragmentation needed, MTU 552" and "packet too big, MTU 1280" about the router's
    // answers, sent by the kiosk to the router's mairie-side addresses.
    let answer4 = udp4_packet(Ipv4::new(router4, PC4, IPPROTO_UDP), 53, 5555, &[0; 64]);
    let answer6 = udp6_packet(Ipv6::new(router6, PC6, IPPROTO_UDP), 53, 5556, &[0; 64]);
    for _ in 0..3 {
        send(
            &s,
            &ipv4_frame(
                kiosk_mac,
                router_mac,
                &icmp4_error(
                    KIOSK4,
                    router4,
                    ICMP_DEST_UNREACHABLE,
                    ICMP_FRAG_NEEDED,
                    552,
                    &answer4,
                ),
            ),
        );
        send(
            &s,
            &ipv6_frame(
                kiosk_mac,
                router_mac,
                &icmp6_error(KIOSK6, router6, ICMPV6_PACKET_TOO_BIG, 0, 1280, &answer6),
            ),
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    // The router's routes to mairie-pc carry no path MTU.
    for args in [
        &["ip", "route", "get", "192.168.10.10"][..],
        &["ip", "-6", "route", "get", "fd00:10::10"][..],
        &["ip", "route", "show", "cache"][..],
        &["ip", "-6", "route", "show", "cache"][..],
    ] {
        let out = s.lab.run(Node::Router, args).unwrap();
        assert!(!out.contains("mtu"), "{}: {out}", args.join(" "));
    }
    let after = s.counters().unwrap();
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    assert_eq!(delta("kiosk/router"), 6, "{after:?}");
    let e = find(&s, "router_access", |e| {
        e["CLOISON_DST_IP"] == "192.168.10.1"
    });
    assert_eq!(field(&e, "CLOISON_TECHNIQUE"), "icmp_error");
    assert_eq!(field(&e, "CLOISON_SRC_IP"), "192.168.20.15");
    let e = find(&s, "router_access", |e| e["CLOISON_DST_IP"] == "fd00:10::1");
    assert_eq!(field(&e, "CLOISON_PROTO"), "icmpv6");
    assert_eq!(field(&e, "CLOISON_TECHNIQUE"), "icmp_error");
}

// ---- 2. Stealth scans and bad checksums ----

#[test]
fn stealth_scans_and_bad_checksums_are_counted_in_their_pair_and_alerted() {
    if !require_root("stealth_scans_and_bad_checksums_are_counted_in_their_pair_and_alerted") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    let srv = capture(&s, Node::MairieSrv);
    let before = s.counters().unwrap();
    let ip = Ipv4::new(KIOSK4, SRV4, IPPROTO_TCP);
    let scans = [
        (0, "tcp_null"),
        (TCP_FIN, "tcp_fin"),
        (TCP_FIN | TCP_PSH | TCP_URG, "tcp_xmas"),
        (TCP_FIN | TCP_ACK, "tcp_maimon"),
    ];
    for (flags, _) in scans {
        send(
            &s,
            &ipv4_frame(kiosk_mac, router_mac, &tcp4_packet(ip, 445, flags)),
        );
    }
    send(
        &s,
        &ipv6_frame(
            kiosk_mac,
            router_mac,
            &tcp6_packet(Ipv6::new(KIOSK6, SRV6, IPPROTO_TCP), 22, TCP_FIN),
        ),
    );
    // A SYN with a wrong TCP checksum (conntrack calls it invalid).
    let mut bad = tcp4_packet(ip, 3389, TCP_SYN);
    bad[20 + 16] ^= 0x5a;
    send(&s, &ipv4_frame(kiosk_mac, router_mac, &bad));
    nothing_from_the_kiosk(&srv, "mairie-srv", &[]);
    let after = s.counters().unwrap();
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    assert_eq!(delta("kiosk/mairie"), 6, "{after:?}");
    assert_eq!(
        delta("invalid"),
        0,
        "counted in their pair, not only as invalid"
    );
    for (_, technique) in scans {
        let e = find(&s, "cross_segment", |e| e["CLOISON_TECHNIQUE"] == technique);
        assert_eq!(field(&e, "CLOISON_DST_IP"), "192.168.10.5");
        assert_eq!(field(&e, "CLOISON_DST_PORT"), "445");
        assert_eq!(field(&e, "CLOISON_COUNTER"), "kiosk/mairie");
    }
    let e = find(&s, "cross_segment", |e| e["CLOISON_DST_IP"] == "fd00:10::5");
    assert_eq!(field(&e, "CLOISON_TECHNIQUE"), "tcp_fin");
    let e = find(&s, "cross_segment", |e| e["CLOISON_DST_PORT"] == "3389");
    assert_eq!(field(&e, "CLOISON_PROTO"), "tcp");
}

// ---- 3. IPv6 extension headers and fragments ----

#[test]
fn ports_behind_ipv6_extension_headers_and_in_second_fragments_are_alerted() {
    if !require_root("ports_behind_ipv6_extension_headers_and_in_second_fragments_are_alerted") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    let srv = capture(&s, Node::MairieSrv);
    let before = s.counters().unwrap();
    let ip = Ipv6::new(KIOSK6, SRV6, 0);
    let with = |exts: &[Extension], upper: u8, l4: &[u8]| {
        let (first, body) = Extension::emit_chain(exts, upper, l4);
        ipv6_frame(
            kiosk_mac,
            router_mac,
            &Ipv6 {
                next_header: first,
                ..ip
            }
            .emit(&body),
        )
    };
    let udp53 = Udp {
        sport: 40000,
        dport: 53,
    }
    .emit(ip.pseudo(), b"query");
    send(
        &s,
        &with(&[Extension::HopByHop { units: 1 }], IPPROTO_UDP, &udp53),
    );
    let syn = Tcp::syn(3389).emit(ip.pseudo(), &[]);
    send(
        &s,
        &with(
            &[
                Extension::DestOpts { units: 3 },
                Extension::DestOpts { units: 1 },
            ],
            IPPROTO_TCP,
            &syn,
        ),
    );
    // UDP to 139 whose header travels in the second fragment only: the first carries a
    // destination-options header and nothing else.
    let udp139 = Udp {
        sport: 40000,
        dport: 139,
    }
    .emit(ip.pseudo(), &[0x7a; 40]);
    let (_, fragmentable) =
        Extension::emit_chain(&[Extension::DestOpts { units: 1 }], IPPROTO_UDP, &udp139);
    let frag = |offset: u16, more: bool, part: &[u8]| {
        let (first, body) = Extension::emit_chain(
            &[Extension::Fragment {
                offset,
                more,
                ident: 0x4242,
            }],
            IPV6_DEST_OPTS,
            part,
        );
        ipv6_frame(
            kiosk_mac,
            router_mac,
            &Ipv6 {
                next_header: first,
                ..ip
            }
            .emit(&body),
        )
    };
    send(&s, &frag(0, true, &fragmentable[..8]));
    send(&s, &frag(1, false, &fragmentable[8..]));
    nothing_from_the_kiosk(&srv, "mairie-srv", &[]);
    let after = s.counters().unwrap();
    let delta = |c: &str| after.get(c).copied().unwrap_or(0) - before.get(c).copied().unwrap_or(0);
    assert_eq!(delta("kiosk/mairie"), 3, "{after:?}");
    for (proto, port) in [("udp", "53"), ("tcp", "3389")] {
        let e = find(&s, "cross_segment", |e| {
            e["CLOISON_DST_IP"] == "fd00:10::5" && e["CLOISON_DST_PORT"] == port
        });
        assert_eq!(field(&e, "CLOISON_PROTO"), proto);
    }
    // The kernel does not reassemble a first fragment without its transport header
    // (RFC 7112): that fragment meets the ruleset alone and the second waits for a first
    // that never comes. Port 139 is in no packet anyone can read; the attempt is counted
    // and alerted for what it is.
    let e = find(&s, "cross_segment", |e| {
        e["CLOISON_TECHNIQUE"] == "tiny_fragment"
    });
    assert_eq!(field(&e, "CLOISON_PROTO"), "udp");
    assert_eq!(field(&e, "CLOISON_DST_IP"), "fd00:10::5");
    assert!(e.get("CLOISON_DST_PORT").is_none(), "{e}");
    assert!(
        s.events("cross_segment")
            .iter()
            .all(|e| !field(e, "CLOISON_PROTO").starts_with("ip-proto")),
        "an extension header reported instead of the transport: {:#?}",
        s.events("cross_segment")
    );
}

// ---- 4. The router's own MAC, from the wire; and the router's own frames ----

#[test]
fn frames_forged_with_the_routers_mac_are_alerted_and_the_routers_own_are_not() {
    if !require_root("frames_forged_with_the_routers_mac_are_alerted_and_the_routers_own_are_not") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    // Ordinary traffic that makes the router send on the kiosk's wire: ARP and neighbour
    // discovery, DNS answers, routed Internet replies, the helpdesk's VNC. None of it is
    // evidence of anything.
    let kiosk = s.lab.ns(Node::Kiosk);
    s.lab
        .run(Node::Kiosk, &["ip", "neigh", "flush", "all"])
        .unwrap();
    s.lab
        .run(Node::Router, &["ip", "neigh", "flush", "all"])
        .unwrap();
    probe::udp_exchange(
        kiosk,
        "192.168.20.1:53".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    probe::udp_exchange(
        kiosk,
        "[fd00:20::1]:53".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    probe::tcp_connect(
        kiosk,
        "203.0.113.10:443".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    probe::tcp_connect(
        s.lab.ns(Node::MairiePc),
        "192.168.20.15:5900".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    for kind in [
        "arp_spoof",
        "rogue_dhcp",
        "rogue_ra",
        "vlan_hopping",
        "isolation_breach",
    ] {
        assert_eq!(
            s.events(kind),
            Vec::<Value>::new(),
            "the router's own frames raised {kind}"
        );
    }

    // The same frames, forged by the kiosk with the router's MAC.
    let pc = capture(&s, Node::MairiePc);
    send(&s, &garp(router_mac, Ipv4Addr::new(192, 168, 20, 1)));
    send(&s, &dhcp_offer(router_mac, Ipv4Addr::new(192, 168, 20, 1)));
    send(
        &s,
        &router_advertisement(router_mac, "fe80::1:2:3:4".parse().unwrap()),
    );
    // Broadcast: a learning switch sends a frame back where it came from when it is
    // addressed to a MAC it just learned there (the router's, from this very frame).
    let inner = udp4(
        router_mac,
        BROADCAST,
        Ipv4Addr::new(192, 168, 20, 1),
        SRV4,
        40000,
        445,
    );
    send(&s, &dot1q(&dot1q(&inner, 10), 20));
    nothing_from_the_kiosk(&pc, "mairie-pc", &[router_mac, kiosk_mac]);
    let router = cloison_core::alert::event::format_mac(&router_mac);
    let e = find(&s, "arp_spoof", |e| e["CLOISON_TECHNIQUE"] == "router_mac");
    assert_eq!(field(&e, "CLOISON_SRC_MAC"), router);
    assert_eq!(field(&e, "CLOISON_INTERFACE"), "seg-kiosk");
    assert!(field(&e, "MESSAGE").contains("the router's own MAC"), "{e}");
    for kind in ["rogue_dhcp", "rogue_ra", "vlan_hopping"] {
        let e = find(&s, kind, |_| true);
        assert_eq!(field(&e, "CLOISON_SRC_MAC"), router, "{kind}");
    }
}

// ---- 5. ARP in request form ----

#[test]
fn an_arp_request_claiming_the_router_is_alerted() {
    if !require_root("an_arp_request_claiming_the_router_is_alerted") {
        return;
    }
    let s = started();
    let (kiosk_mac, _) = macs(&s);
    let pc = capture(&s, Node::MairiePc);
    // "who-has 192.168.20.77 tell 192.168.20.1", from the kiosk's MAC.
    send(
        &s,
        &arp_request(kiosk_mac, Ipv4Addr::new(192, 168, 20, 1), KIOSK_HOST4_B),
    );
    nothing_from_the_kiosk(&pc, "mairie-pc", &[kiosk_mac]);
    let e = find(&s, "arp_spoof", |e| e["CLOISON_TECHNIQUE"] == "arp_request");
    assert_eq!(field(&e, "CLOISON_SRC_IP"), "192.168.20.1");
    assert_eq!(field(&e, "CLOISON_DST_IP"), "192.168.20.77");
    assert_eq!(
        field(&e, "CLOISON_SRC_MAC"),
        cloison_core::alert::event::format_mac(&kiosk_mac)
    );
    assert_eq!(field(&e, "PRIORITY"), "3");
    assert!(field(&e, "MESSAGE").contains("in an ARP request"), "{e}");
}

// ---- 6. Unicast rogue servers, and advertisements behind many headers ----

#[test]
fn unicast_rogue_dhcp_offers_and_router_advertisements_are_alerted() {
    if !require_root("unicast_rogue_dhcp_offers_and_router_advertisements_are_alerted") {
        return;
    }
    let s = started();
    let (kiosk_mac, router_mac) = macs(&s);
    // The capture's interfaces are promiscuous while cloison runs: a network card would
    // otherwise drop frames addressed to another host's MAC before anyone saw them.
    for iface in ["seg-kiosk", "seg-mairie", "seg-poste"] {
        let link = s
            .lab
            .run(Node::Router, &["ip", "-d", "link", "show", iface])
            .unwrap();
        let promiscuity: u32 = link
            .split_whitespace()
            .skip_while(|w| *w != "promiscuity")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{link}"));
        assert!(promiscuity >= 1, "{iface} is not promiscuous: {link}");
    }
    // The kiosk's switch acts as a hub: every frame to every port.
    s.lab
        .run(
            Node::Switch,
            &[
                "ip",
                "link",
                "set",
                "br-kiosk",
                "type",
                "bridge",
                "ageing_time",
                "0",
            ],
        )
        .unwrap();
    let pc = capture(&s, Node::MairiePc);
    // An offer to a client's MAC (its broadcast flag clear), an advertisement to the
    // router's own MAC and one to another host's, behind ten destination-options headers.
    send(
        &s,
        &unicast_dhcp_offer(kiosk_mac, KIOSK4, OTHER_KIOSK_HOST, KIOSK_HOST4_B),
    );
    let ll = |n: u16| Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, n);
    send(
        &s,
        &router_advertisement_with(kiosk_mac, router_mac, ll(1), &[]),
    );
    send(
        &s,
        &router_advertisement_with(
            kiosk_mac,
            OTHER_KIOSK_HOST,
            ll(2),
            &[Extension::DestOpts { units: 1 }; 10],
        ),
    );
    nothing_from_the_kiosk(&pc, "mairie-pc", &[kiosk_mac]);
    let e = find(&s, "rogue_dhcp", |_| true);
    assert_eq!(field(&e, "CLOISON_SRC_IP"), "192.168.20.15");
    assert_eq!(field(&e, "CLOISON_DST_IP"), "192.168.20.77");
    find(&s, "rogue_ra", |e| e["CLOISON_SRC_IP"] == "fe80::1");
    find(&s, "rogue_ra", |e| e["CLOISON_SRC_IP"] == "fe80::2");
}

// ---- 7. IPv6 neighbour spoofing of the router ----

#[test]
fn neighbour_spoofing_of_the_router_is_alerted() {
    if !require_root("neighbour_spoofing_of_the_router_is_alerted") {
        return;
    }
    let s = started();
    let (kiosk_mac, _) = macs(&s);
    let router_ll: Ipv6Addr = s
        .lab
        .run(
            Node::Router,
            &[
                "ip",
                "-6",
                "-o",
                "addr",
                "show",
                "dev",
                "seg-kiosk",
                "scope",
                "link",
            ],
        )
        .unwrap()
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .expect("the router's link-local address on seg-kiosk");
    let pc = capture(&s, Node::MairiePc);
    let router6 = Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 0, 0, 1);
    // parasite6: unsolicited advertisements with the override flag.
    for target in [router6, router_ll] {
        send(
            &s,
            &neighbour_advert(
                kiosk_mac,
                target,
                ALL_NODES,
                ALL_NODES6,
                target,
                Some(kiosk_mac),
            ),
        );
    }
    // And a solicitation from the router's address, with the kiosk's MAC.
    send(
        &s,
        &neighbour_solicit(kiosk_mac, router6, KIOSK6, Some(kiosk_mac)),
    );
    nothing_from_the_kiosk(&pc, "mairie-pc", &[kiosk_mac]);
    let mac = cloison_core::alert::event::format_mac(&kiosk_mac);
    for target in [router6.to_string(), router_ll.to_string()] {
        let e = find(&s, "arp_spoof", |e| e["CLOISON_SRC_IP"] == target.as_str());
        assert_eq!(field(&e, "CLOISON_TECHNIQUE"), "neighbour_advert");
        assert_eq!(field(&e, "CLOISON_SRC_MAC"), mac);
        assert_eq!(field(&e, "CLOISON_PROTO"), "icmpv6");
        assert!(
            field(&e, "MESSAGE").contains("IPv6 neighbour spoofing"),
            "{e}"
        );
        assert!(field(&e, "MESSAGE").contains("the router's address"), "{e}");
    }
    find(&s, "arp_spoof", |e| {
        e["CLOISON_TECHNIQUE"] == "neighbour_solicit"
    });
}

// ---- 8. Whose frame a breach is ----

#[test]
fn a_forged_mairie_host_on_the_kiosk_port_is_told_apart_from_a_leak() {
    if !require_root("a_forged_mairie_host_on_the_kiosk_port_is_told_apart_from_a_leak") {
        return;
    }
    let s = started();
    let (kiosk_mac, _) = macs(&s);
    let pc_mac = s.lab.mac(Node::MairiePc, HOST_IF).unwrap();
    // The router knows both hosts: each has talked to it.
    probe::udp_exchange(
        s.lab.ns(Node::Kiosk),
        "192.168.20.1:53".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    probe::udp_exchange(
        s.lab.ns(Node::MairiePc),
        "192.168.10.1:53".parse().unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    let netbios = |mac, src| udp4(mac, BROADCAST, src, Ipv4Addr::BROADCAST, 137, 137);
    // The kiosk sends as mairie-pc from its own MAC: forged, and the alert says so.
    send(&s, &netbios(kiosk_mac, PC4));
    let e = find(&s, "isolation_breach", |e| e["CLOISON_ORIGIN"] == "forged");
    assert_eq!(field(&e, "CLOISON_SRC_IP"), "192.168.10.10");
    assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "mairie");
    assert_eq!(field(&e, "CLOISON_DST_SEGMENT"), "kiosk");
    assert!(field(&e, "MESSAGE").contains("forged"), "{e}");
    // The kiosk sends as mairie-pc with mairie-pc's MAC: the mairie leaking fits as well
    // as the kiosk forging; the alert says it cannot tell.
    send(&s, &netbios(pc_mac, PC4));
    let e = find(&s, "isolation_breach", |e| e["CLOISON_ORIGIN"] == "unknown");
    assert!(field(&e, "MESSAGE").contains("cannot tell"), "{e}");
    assert_eq!(
        field(&e, "CLOISON_SRC_MAC"),
        cloison_core::alert::event::format_mac(&pc_mac)
    );
    assert!(
        s.events("isolation_breach")
            .iter()
            .all(|e| e["CLOISON_ORIGIN"] != "leaked")
    );

    // Now a real leak: someone patches the two wires together. The router's own
    // mairie-side frames then reach the kiosk's wire, and mairie-pc's are a leak.
    for cmd in [
        "ip link add leak0 type veth peer name leak1",
        "ip link set leak0 master br-kiosk up",
        "ip link set leak1 master br-mairie up",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        s.lab.run(Node::Switch, &args).unwrap();
    }
    s.lab
        .run(Node::Router, &["ip", "neigh", "flush", "dev", "seg-mairie"])
        .unwrap();
    probe::ping(
        s.lab.ns(Node::Router),
        IpAddr::V4(PC4),
        Duration::from_secs(1),
    )
    .unwrap();
    probe::send_frame(s.lab.ns(Node::MairiePc), HOST_IF, &netbios(pc_mac, PC4)).unwrap();
    let e = find(&s, "isolation_breach", |e| e["CLOISON_ORIGIN"] == "leaked");
    assert_eq!(field(&e, "CLOISON_SRC_SEGMENT"), "mairie");
    assert_eq!(field(&e, "PRIORITY"), "2");
    assert!(field(&e, "MESSAGE").contains("leaked"), "{e}");
}
