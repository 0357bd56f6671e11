//! Outcome tests of `sample::decode` and `sample::headers_only` (cloison-core) on packets
//! the frame kit emits: what the ruleset's NFLOG samples of blocked packets say about
//! their flow, behind IPv6 extension headers and fragments, and how the attempt was made.

use std::net::{IpAddr, Ipv4Addr};

use cloison_core::alert::event::{Destination, EventKind, L4, SegmentId, Technique};
use cloison_core::sample::{COPY_RANGE, Sample, decode, headers_only};
use cloison_lab::frames::wire::*;
use cloison_lab::frames::*;

const KIOSK: SegmentId = SegmentId(0);
const MAIRIE: SegmentId = SegmentId(1);

/// What the daemon makes of a packet the ruleset logged under `prefix`: the kernel's
/// copy (at most COPY_RANGE bytes), cut to its headers, decoded.
fn sampled(prefix: &str, packet: &[u8]) -> cloison_core::alert::event::FlowKey {
    let copy = &packet[..packet.len().min(COPY_RANGE as usize)];
    let s = Sample {
        prefix: prefix.into(),
        ifindex_in: Some(IFINDEX_SEG_KIOSK),
        src_mac: Some(HOST_KIOSK),
        packet: headers_only(copy).to_vec(),
        mark: None,
    };
    decode(&s, &lab_config()).expect("a segment's counter")
}

fn kiosk_to_mairie6(next: u8) -> Ipv6 {
    Ipv6::new(KIOSK_HOST6, MAIRIE_HOST6, next)
}

#[test]
fn ports_behind_ipv6_extension_headers() {
    // Hop-by-hop, then UDP: the port, not "ip-proto-0".
    let ip = kiosk_to_mairie6(0);
    let udp = Udp {
        sport: 40000,
        dport: 53,
    }
    .emit(ip.pseudo(), b"query");
    let (first, body) =
        Extension::emit_chain(&[Extension::HopByHop { units: 1 }], IPPROTO_UDP, &udp);
    let k = sampled(
        "kiosk/mairie",
        &Ipv6 {
            next_header: first,
            ..ip
        }
        .emit(&body),
    );
    assert_eq!(k.kind, EventKind::CrossSegment);
    assert_eq!(k.dst, Some(Destination::Segment(MAIRIE)));
    assert_eq!((k.proto, k.dst_port), (Some(L4::Udp), Some(53)));

    // Destination options (24 bytes) and a routing-free chain of three, then TCP.
    let tcp = Tcp::syn(3389).emit(ip.pseudo(), &[]);
    let chain = [
        Extension::HopByHop { units: 2 },
        Extension::DestOpts { units: 3 },
        Extension::DestOpts { units: 1 },
    ];
    let (first, body) = Extension::emit_chain(&chain, IPPROTO_TCP, &tcp);
    let k = sampled(
        "kiosk/mairie",
        &Ipv6 {
            next_header: first,
            ..ip
        }
        .emit(&body),
    );
    assert_eq!((k.proto, k.dst_port), (Some(L4::Tcp), Some(3389)));
}

#[test]
fn a_port_carried_only_by_the_second_fragment() {
    // The first fragment holds a destination-options header and nothing of UDP; the
    // kernel reassembles both before the ruleset sees them. Whether it keeps a fragment
    // header (offset 0, last) in front or removes it, the port is read.
    let ip = kiosk_to_mairie6(0);
    let udp = Udp {
        sport: 40000,
        dport: 139,
    }
    .emit(ip.pseudo(), &[0x7a; 40]);
    for chain in [
        vec![Extension::DestOpts { units: 1 }],
        vec![
            Extension::Fragment {
                offset: 0,
                more: false,
                ident: 0x1234,
            },
            Extension::DestOpts { units: 1 },
        ],
    ] {
        let (first, body) = Extension::emit_chain(&chain, IPPROTO_UDP, &udp);
        let k = sampled(
            "kiosk/mairie",
            &Ipv6 {
                next_header: first,
                ..ip
            }
            .emit(&body),
        );
        assert_eq!(
            (k.proto, k.dst_port),
            (Some(L4::Udp), Some(139)),
            "{chain:?}"
        );
    }
    // What the ruleset really sees when the first fragment stops before the UDP header:
    // the kernel does not reassemble it (RFC 7112), the first fragment goes on alone and
    // the second waits for a first that never comes. No port to read, but the alert says
    // what it is.
    let (_, fragmentable) =
        Extension::emit_chain(&[Extension::DestOpts { units: 1 }], IPPROTO_UDP, &udp);
    let (first, body) = Extension::emit_chain(
        &[Extension::Fragment {
            offset: 0,
            more: true,
            ident: 0x1234,
        }],
        IPV6_DEST_OPTS,
        &fragmentable[..8],
    );
    let k = sampled(
        "kiosk/mairie",
        &Ipv6 {
            next_header: first,
            ..ip
        }
        .emit(&body),
    );
    assert_eq!((k.proto, k.dst_port), (Some(L4::Udp), None));
    assert_eq!(k.technique, Some(Technique::TinyFragment));
    // IPv4 too: a first fragment of 4 bytes of TCP.
    let tiny = Ipv4 {
        more_fragments: true,
        dont_fragment: false,
        ..Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_TCP)
    }
    .emit(&[0x9c, 0x40]);
    assert_eq!(
        sampled("kiosk/mairie", &tiny).technique,
        Some(Technique::TinyFragment)
    );
    // A later fragment alone has no port to give, and does not invent one.
    let (first, body) = Extension::emit_chain(
        &[Extension::Fragment {
            offset: 2,
            more: false,
            ident: 1,
        }],
        IPPROTO_UDP,
        &[0, 139, 0, 139, 0, 0, 0, 0],
    );
    let k = sampled(
        "kiosk/mairie",
        &Ipv6 {
            next_header: first,
            ..ip
        }
        .emit(&body),
    );
    assert_eq!(k.dst_port, None);
    // Same in IPv4: a later fragment's bytes are not ports.
    let later = Ipv4 {
        frag_offset: 2,
        dont_fragment: false,
        ..Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_UDP)
    }
    .emit(&[0, 139, 0, 139, 0, 0, 0, 0]);
    assert_eq!(sampled("kiosk/mairie", &later).dst_port, None);
}

#[test]
fn headers_only_keeps_what_decode_reads_and_no_payload() {
    const MARKER: &[u8] = b"SECRET-PAYLOAD-MARKER";
    let ip6 = kiosk_to_mairie6(0);
    let ip4 = Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_UDP);
    let udp6 = Udp {
        sport: 1,
        dport: 53,
    }
    .emit(ip6.pseudo(), MARKER);
    let (first, body6) =
        Extension::emit_chain(&[Extension::DestOpts { units: 2 }], IPPROTO_UDP, &udp6);
    let packets = [
        ip4.emit(
            &Udp {
                sport: 1,
                dport: 53,
            }
            .emit(ip4.pseudo(), MARKER),
        ),
        Ipv4 {
            proto: IPPROTO_TCP,
            ..ip4
        }
        .emit(&Tcp::syn(445).emit(ip4.pseudo(), MARKER)),
        icmp4_error(
            KIOSK_HOST4,
            MAIRIE_HOST4,
            ICMP_DEST_UNREACHABLE,
            ICMP_PORT_UNREACHABLE,
            0,
            &udp4_packet(
                Ipv4::new(MAIRIE_HOST4, KIOSK_HOST4, IPPROTO_UDP),
                53,
                5555,
                MARKER,
            ),
        ),
        Ipv6 {
            next_header: first,
            ..ip6
        }
        .emit(&body6),
    ];
    for p in packets {
        let kept = headers_only(&p);
        assert!(
            !kept.windows(MARKER.len()).any(|w| w == MARKER),
            "payload kept: {kept:02x?}"
        );
        let whole = sampled("kiosk/mairie", &p);
        assert!(whole.dst_port.is_some() || whole.proto == Some(L4::Icmp));
        // What decode reads survives the cut.
        let s = Sample {
            prefix: "kiosk/mairie".into(),
            packet: kept.to_vec(),
            ..Sample::default()
        };
        let k = decode(&s, &lab_config()).unwrap();
        assert_eq!(
            (k.proto, k.dst_port, k.technique),
            (whole.proto, whole.dst_port, whole.technique)
        );
    }
}

#[test]
fn techniques_say_what_an_attempt_is() {
    let ip = Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_TCP);
    for (flags, technique) in [
        (0, Some(Technique::TcpNull)),
        (TCP_FIN, Some(Technique::TcpFin)),
        (TCP_FIN | TCP_PSH | TCP_URG, Some(Technique::TcpXmas)),
        (TCP_FIN | TCP_ACK, Some(Technique::TcpMaimon)),
        (TCP_SYN, None),
        (TCP_ACK, None),
        (TCP_RST, None),
    ] {
        let k = sampled("kiosk/mairie", &tcp4_packet(ip, 445, flags));
        assert_eq!(k.technique, technique, "flags {flags:#04x}");
        assert_eq!(k.dst_port, Some(445));
    }
    let ip6 = kiosk_to_mairie6(IPPROTO_TCP);
    assert_eq!(
        sampled("kiosk/mairie", &tcp6_packet(ip6, 22, TCP_FIN)).technique,
        Some(Technique::TcpFin)
    );

    // A traceroute probe into the mairie (TTL 1), over both families.
    let probe = udp4_packet(
        Ipv4 {
            ttl: 1,
            ..Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_UDP)
        },
        33434,
        33435,
        &[],
    );
    assert_eq!(
        sampled("kiosk/mairie", &probe).technique,
        Some(Technique::Traceroute)
    );
    let probe6 = udp6_packet(
        Ipv6 {
            hop_limit: 1,
            ..kiosk_to_mairie6(IPPROTO_UDP)
        },
        33434,
        33435,
        &[],
    );
    assert_eq!(
        sampled("kiosk/mairie", &probe6).technique,
        Some(Technique::Traceroute)
    );
    // The mairie's broadcast address, from the kiosk.
    let bcast = udp4_packet(
        Ipv4::new(KIOSK_HOST4, Ipv4Addr::new(192, 168, 10, 255), IPPROTO_UDP),
        40000,
        137,
        &[],
    );
    let k = sampled("kiosk/mairie", &bcast);
    assert_eq!(k.technique, Some(Technique::DirectedBroadcast));
    assert_eq!(k.dst_ip, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 255))));
    // An ICMP error about a mairie flow, from the kiosk, to the mairie or the router.
    let quoted = udp4_packet(
        Ipv4::new(MAIRIE_HOST4, MAIRIE_ROUTER4, IPPROTO_UDP),
        5555,
        53,
        &[],
    );
    for (prefix, dst, kind) in [
        ("kiosk/mairie", MAIRIE_HOST4, EventKind::CrossSegment),
        ("kiosk/router", MAIRIE_ROUTER4, EventKind::RouterAccess),
    ] {
        let e = icmp4_error(
            KIOSK_HOST4,
            dst,
            ICMP_DEST_UNREACHABLE,
            ICMP_FRAG_NEEDED,
            552,
            &quoted,
        );
        let k = sampled(prefix, &e);
        assert_eq!((k.kind, k.proto), (kind, Some(L4::Icmp)));
        assert_eq!(k.technique, Some(Technique::IcmpError));
    }
    let quoted6 = udp6_packet(
        Ipv6::new(MAIRIE_HOST6, MAIRIE_ROUTER6, IPPROTO_UDP),
        5555,
        53,
        &[],
    );
    let e6 = icmp6_error(
        KIOSK_HOST6,
        MAIRIE_HOST6,
        ICMPV6_PACKET_TOO_BIG,
        0,
        1280,
        &quoted6,
    );
    assert_eq!(
        sampled("kiosk/mairie", &e6).technique,
        Some(Technique::IcmpError)
    );
    // An echo request is no error, and an ordinary SYN says nothing more.
    let echo = Ipv4::new(KIOSK_HOST4, MAIRIE_HOST4, IPPROTO_ICMP).emit(
        &Icmp {
            kind: ICMP_ECHO_REQUEST,
            code: 0,
            rest: [0, 1, 0, 1],
            body: Vec::new(),
        }
        .emit(None),
    );
    assert_eq!(sampled("kiosk/mairie", &echo).technique, None);
    // Forged sources are forged sources: no technique on top.
    let forged = tcp4_packet(
        Ipv4::new(MAIRIE_HOST4, MAIRIE_ROUTER4, IPPROTO_TCP),
        22,
        TCP_FIN,
    );
    let k = sampled("kiosk/spoofed", &forged);
    assert_eq!((k.kind, k.technique), (EventKind::SpoofedSource, None));
    assert_eq!(k.src_segment, Some(KIOSK));
}

#[test]
fn what_arrives_untagged_on_the_trunk_has_no_segment() {
    let ssh = tcp6_packet(
        Ipv6::new(
            "fe80::5054:ff:fe00:99".parse().unwrap(),
            "fe80::c1:ff:fe00:1".parse().unwrap(),
            IPPROTO_TCP,
        ),
        22,
        TCP_SYN,
    );
    let k = sampled("trunk/untagged", &ssh);
    assert_eq!(k.kind, EventKind::RouterAccess);
    assert_eq!(k.src_segment, None);
    assert_eq!(k.dst, Some(Destination::Router));
    assert_eq!((k.proto, k.dst_port), (Some(L4::Tcp), Some(22)));
    let names = cloison_core::alert::Names::from_config(&lab_config(), "r");
    assert_eq!(names.counter_of(&k).as_deref(), Some("trunk/untagged"));
}
