//! The frame kit: Ethernet frames for the tests, the benchmarks, the fuzz seeds and the
//! lab's attacks, over the topologies of `cloison_core::testkit` (re-exported here).
//! Every frame is built from the `wire` module's header `Repr`s (emit/parse pairs, with
//! real checksums, so the lab's kernels take these frames as a real host's); the
//! builders below only choose the fields. Two fixtures are written out byte by byte, and
//! a test checks the builders lay out the same bytes.

pub mod wire;

use std::net::{Ipv4Addr, Ipv6Addr};

use cloison_core::inspect::{TPID_8021AD, TPID_8021Q};
pub use cloison_core::testkit::*;
use wire::*;
/// An ARP reply from a kiosk host claiming the kiosk router address 192.168.20.1,
/// addressed to another kiosk host, written out byte by byte.
#[rustfmt::skip]
pub const ARP_REPLY_CLAIMING_ROUTER: [u8; 42] = [
    // Ethernet: dst 52:54:00:00:20:06, src HOST_KIOSK, type ARP
    0x52, 0x54, 0x00, 0x00, 0x20, 0x06, 0x52, 0x54, 0x00, 0x00, 0x20, 0x05, 0x08, 0x06,
    // htype 1, ptype 0x0800, hlen 6, plen 4, op 2 (reply)
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
    // sender HOST_KIOSK, 192.168.20.1
    0x52, 0x54, 0x00, 0x00, 0x20, 0x05, 192, 168, 20, 1,
    // target 52:54:00:00:20:06, 192.168.20.6
    0x52, 0x54, 0x00, 0x00, 0x20, 0x06, 192, 168, 20, 6,
];

/// An ordinary TCP SYN from a kiosk host to the router's kiosk address, port 53,
/// written out byte by byte (padded to Ethernet's 60-byte minimum).
#[rustfmt::skip]
pub const TCP_KIOSK_HOST_TO_ROUTER: [u8; 60] = [
    // Ethernet: dst ROUTER_KIOSK, src HOST_KIOSK, type IPv4
    0x02, 0xc1, 0x00, 0x00, 0x20, 0x01, 0x52, 0x54, 0x00, 0x00, 0x20, 0x05, 0x08, 0x00,
    // IPv4: ver 4 ihl 5, tos 0, total 40, id 0, DF, ttl 64, proto 6, csum 0
    0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    // 192.168.20.5 -> 192.168.20.1
    192, 168, 20, 5, 192, 168, 20, 1,
    // TCP: 40000 -> 53, seq 1, ack 0, offset 5, SYN, window 64240, csum 0, urg 0
    0x9c, 0x40, 0x00, 0x35, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x50, 0x02,
    0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
    // Ethernet padding
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

pub fn eth(dst: [u8; 6], src: [u8; 6], ether_type: u16) -> Vec<u8> {
    Ethernet {
        dst,
        src,
        ether_type,
    }
    .emit(&[])
}

/// Inserts an in-frame tag after the MAC addresses (the tag becomes the outermost).
pub fn tagged(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let at = 12.min(f.len());
    let mut tag = tpid.to_be_bytes().to_vec();
    tag.extend_from_slice(&vid.to_be_bytes());
    f.splice(at..at, tag);
    f
}

pub fn dot1q(frame: &[u8], vid: u16) -> Vec<u8> {
    tagged(frame, TPID_8021Q, vid)
}

pub fn dot1ad(frame: &[u8], vid: u16) -> Vec<u8> {
    tagged(frame, TPID_8021AD, vid)
}

/// Pads to Ethernet's 60-byte minimum, as a NIC would.
fn padded(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 packet (header and transport already emitted) in a frame.
pub fn ipv4_frame(src_mac: [u8; 6], dst_mac: [u8; 6], packet: &[u8]) -> Vec<u8> {
    padded(
        Ethernet {
            dst: dst_mac,
            src: src_mac,
            ether_type: ETHERTYPE_IPV4,
        }
        .emit(packet),
    )
}

/// An IPv6 packet in a frame.
pub fn ipv6_frame(src_mac: [u8; 6], dst_mac: [u8; 6], packet: &[u8]) -> Vec<u8> {
    padded(
        Ethernet {
            dst: dst_mac,
            src: src_mac,
            ether_type: ETHERTYPE_IPV6,
        }
        .emit(packet),
    )
}

/// A TCP segment with `flags` (SYN, FIN, Xmas...) from port 40000 in an IPv4 packet.
pub fn tcp4_packet(ip: Ipv4, dport: u16, flags: u8) -> Vec<u8> {
    ip.emit(&Tcp::with_flags(40000, dport, flags).emit(ip.pseudo(), &[]))
}

pub fn tcp6_packet(ip: Ipv6, dport: u16, flags: u8) -> Vec<u8> {
    ip.emit(&Tcp::with_flags(40000, dport, flags).emit(ip.pseudo(), &[]))
}

pub fn udp4_packet(ip: Ipv4, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ip.emit(&Udp { sport, dport }.emit(ip.pseudo(), payload))
}

pub fn udp6_packet(ip: Ipv6, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ip.emit(&Udp { sport, dport }.emit(ip.pseudo(), payload))
}

/// An ICMP error from `src` to `dst` quoting `quoted` (an IPv4 packet).
pub fn icmp4_error(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    kind: u8,
    code: u8,
    mtu: u32,
    quoted: &[u8],
) -> Vec<u8> {
    Ipv4::new(src, dst, IPPROTO_ICMP).emit(&Icmp::error(kind, code, mtu, quoted).emit(None))
}

/// An ICMPv6 error from `src` to `dst` quoting `quoted` (an IPv6 packet).
pub fn icmp6_error(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kind: u8,
    code: u8,
    mtu: u32,
    quoted: &[u8],
) -> Vec<u8> {
    let ip = Ipv6 {
        hop_limit: 64,
        ..Ipv6::new(src, dst, IPPROTO_ICMPV6)
    };
    ip.emit(&Icmp::error(kind, code, mtu, quoted).emit(Some(ip.pseudo())))
}

pub fn tcp4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
) -> Vec<u8> {
    ipv4_frame(
        src_mac,
        dst_mac,
        &tcp4_packet(Ipv4::new(src, dst, IPPROTO_TCP), dport, TCP_SYN),
    )
}

pub fn udp4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    ipv4_frame(
        src_mac,
        dst_mac,
        &udp4_packet(Ipv4::new(src, dst, IPPROTO_UDP), sport, dport, &[0; 12]),
    )
}

pub fn arp(
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    dst_mac: [u8; 6],
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    Ethernet {
        dst: dst_mac,
        src: sha,
        ether_type: ETHERTYPE_ARP,
    }
    .emit(
        &Arp {
            op,
            sha,
            spa,
            tha,
            tpa,
        }
        .emit(),
    )
}

pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REQUEST, sha, spa, BROADCAST, [0; 6], tpa)
}

pub fn arp_reply(sha: [u8; 6], spa: Ipv4Addr, dst_mac: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REPLY, sha, spa, dst_mac, dst_mac, tpa)
}

/// A gratuitous ARP request announcing `spa` at `sha`.
pub fn garp(sha: [u8; 6], spa: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REQUEST, sha, spa, BROADCAST, [0; 6], spa)
}

/// A DHCP server reply (`message_type` 2 offer, 5 ack, 6 nak) broadcast from `src`.
pub fn dhcp_reply(src_mac: [u8; 6], src: Ipv4Addr, message_type: u8) -> Vec<u8> {
    let bootp = Bootp {
        op: 2,
        xid: 0x1234_5678,
        broadcast: true,
        yiaddr: Ipv4Addr::new(192, 168, 20, 50),
        chaddr: HOST_KIOSK,
        message_type: Some(message_type),
        server_id: Some(KIOSK_ROUTER4),
    };
    let ip = Ipv4 {
        dont_fragment: false,
        ..Ipv4::new(src, Ipv4Addr::BROADCAST, IPPROTO_UDP)
    };
    Ethernet {
        dst: BROADCAST,
        src: src_mac,
        ether_type: ETHERTYPE_IPV4,
    }
    .emit(&udp4_packet(ip, 67, 68, &bootp.emit()))
}

pub fn dhcp_offer(src_mac: [u8; 6], src: Ipv4Addr) -> Vec<u8> {
    dhcp_reply(src_mac, src, DHCPOFFER)
}

/// A DHCP offer as servers send it when the client's broadcast flag is clear: unicast,
/// to the client's MAC and the offered address.
pub fn unicast_dhcp_offer(
    src_mac: [u8; 6],
    src: Ipv4Addr,
    client_mac: [u8; 6],
    offered: Ipv4Addr,
) -> Vec<u8> {
    let bootp = Bootp {
        op: 2,
        xid: 0x1234_5678,
        broadcast: false,
        yiaddr: offered,
        chaddr: client_mac,
        message_type: Some(DHCPOFFER),
        server_id: Some(src),
    };
    Ethernet {
        dst: client_mac,
        src: src_mac,
        ether_type: ETHERTYPE_IPV4,
    }
    .emit(&udp4_packet(
        Ipv4::new(src, offered, IPPROTO_UDP),
        67,
        68,
        &bootp.emit(),
    ))
}

pub fn dhcp_discover(src_mac: [u8; 6]) -> Vec<u8> {
    let bootp = Bootp {
        op: 1,
        xid: 0x1234_5678,
        broadcast: true,
        yiaddr: Ipv4Addr::UNSPECIFIED,
        chaddr: src_mac,
        message_type: Some(DHCPDISCOVER),
        server_id: None,
    };
    let ip = Ipv4 {
        dont_fragment: false,
        ..Ipv4::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, IPPROTO_UDP)
    };
    Ethernet {
        dst: BROADCAST,
        src: src_mac,
        ether_type: ETHERTYPE_IPV4,
    }
    .emit(&udp4_packet(ip, 68, 67, &bootp.emit()))
}

/// A DHCPv6 server message (`message` 2 advertise, 7 reply) to a client's link-local
/// address.
pub fn dhcpv6(src_mac: [u8; 6], src: Ipv6Addr, message: u8) -> Vec<u8> {
    let payload = [message, 0xab, 0xcd, 0xef, 0, 1, 0, 4, 0, 3, 0, 1];
    let ip = Ipv6::new(src, LINK_LOCAL_HOST6, IPPROTO_UDP);
    Ethernet {
        dst: HOST_KIOSK,
        src: src_mac,
        ether_type: ETHERTYPE_IPV6,
    }
    .emit(&udp6_packet(ip, 547, 546, &payload))
}

pub fn udp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    ipv6_frame(
        src_mac,
        dst_mac,
        &udp6_packet(Ipv6::new(src, dst, IPPROTO_UDP), sport, dport, &[0; 8]),
    )
}

pub fn tcp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dport: u16,
) -> Vec<u8> {
    ipv6_frame(
        src_mac,
        dst_mac,
        &tcp6_packet(Ipv6::new(src, dst, IPPROTO_TCP), dport, TCP_SYN),
    )
}

/// Another kiosk host, in the fixtures of unicast attacks (a MAC the switch does not know
/// floods to every port, the router's included).
pub const OTHER_KIOSK_HOST: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x20, 0x77];
pub const KIOSK_HOST4_B: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 77);

/// The prefix the kit's rogue advertisements announce.
pub const ROGUE_PREFIX6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x66, 0, 0, 0, 0, 0, 0);

/// A router advertisement from `src` to `dst_mac` (all nodes, or one host's MAC as
/// `fake_router26 -m` sends it) behind the extension headers `exts`.
pub fn router_advertisement_with(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    exts: &[Extension],
) -> Vec<u8> {
    let ip = Ipv6::new(src, ALL_NODES6, 0);
    let icmp = Nd::RouterAdvert {
        prefix: Some(ROGUE_PREFIX6),
    }
    .emit(ip.pseudo());
    let (first, body) = Extension::emit_chain(exts, IPPROTO_ICMPV6, &icmp);
    Ethernet {
        dst: dst_mac,
        src: src_mac,
        ether_type: ETHERTYPE_IPV6,
    }
    .emit(
        &Ipv6 {
            next_header: first,
            ..ip
        }
        .emit(&body),
    )
}

/// A router advertisement from `src` to all nodes, with a prefix information option.
pub fn router_advertisement(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    router_advertisement_with(src_mac, ALL_NODES, src, &[])
}

/// The same advertisement behind a hop-by-hop and a destination options header (how
/// RA guard is evaded on switches that only look at the first next-header).
pub fn router_advertisement_behind_extensions(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    router_advertisement_with(
        src_mac,
        ALL_NODES,
        src,
        &[
            Extension::HopByHop { units: 1 },
            Extension::DestOpts { units: 2 },
        ],
    )
}

/// A neighbour advertisement from `src_mac`/`src` to `dst_mac`/`dst` claiming that
/// `target` is at `target_ll` (parasite6 sends them unsolicited, with the override flag).
pub fn neighbour_advert(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst_mac: [u8; 6],
    dst: Ipv6Addr,
    target: Ipv6Addr,
    target_ll: Option<[u8; 6]>,
) -> Vec<u8> {
    let ip = Ipv6::new(src, dst, IPPROTO_ICMPV6);
    let nd = Nd::Advert {
        router: false,
        solicited: false,
        override_: true,
        target,
        target_ll,
    };
    ipv6_frame(src_mac, dst_mac, &ip.emit(&nd.emit(ip.pseudo())))
}

/// A neighbour solicitation from `src` (with `source_ll`) for `target`, to its
/// solicited-node multicast address.
pub fn neighbour_solicit(
    src_mac: [u8; 6],
    src: Ipv6Addr,
    target: Ipv6Addr,
    source_ll: Option<[u8; 6]>,
) -> Vec<u8> {
    let t = target.octets();
    let solicited_node = Ipv6Addr::from([
        0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let dst_mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
    let ip = Ipv6::new(src, solicited_node, IPPROTO_ICMPV6);
    let nd = Nd::Solicit { target, source_ll };
    ipv6_frame(src_mac, dst_mac, &ip.emit(&nd.emit(ip.pseudo())))
}

/// Every frame builder above with representative arguments: seeds for the random test
/// and the fuzzer.
pub fn corpus() -> Vec<Vec<u8>> {
    let kiosk_dhcp = dhcp_offer(HOST_KIOSK, KIOSK_HOST4);
    vec![
        ARP_REPLY_CLAIMING_ROUTER.to_vec(),
        TCP_KIOSK_HOST_TO_ROUTER.to_vec(),
        tcp4(ROUTER_KIOSK, HOST_KIOSK, KIOSK_ROUTER4, KIOSK_HOST4, 40000),
        tcp4(HOST_MAIRIE, BROADCAST, MAIRIE_HOST4, KIOSK_HOST4, 445),
        udp4(
            HOST_KIOSK,
            ROUTER_KIOSK,
            MAIRIE_HOST4,
            KIOSK_ROUTER4,
            5353,
            53,
        ),
        arp_request(HOST_KIOSK, KIOSK_HOST4, KIOSK_ROUTER4),
        arp_request(HOST_MAIRIE, MAIRIE_HOST4, MAIRIE_ROUTER4),
        arp_reply(HOST_KIOSK, KIOSK_ROUTER4, HOST_MAIRIE, KIOSK_HOST4),
        garp(HOST_MAIRIE, MAIRIE_HOST4),
        garp(HOST_KIOSK, KIOSK_HOST4),
        kiosk_dhcp.clone(),
        dhcp_offer(ROUTER_KIOSK, KIOSK_ROUTER4),
        dhcp_discover(HOST_KIOSK),
        dhcpv6(HOST_KIOSK, LINK_LOCAL_HOST6, 2),
        udp6(HOST_MAIRIE, ALL_NODES, MAIRIE_HOST6, ALL_NODES6, 5353, 5353),
        tcp6(HOST_KIOSK, ROUTER_KIOSK, KIOSK_HOST6, MAIRIE_HOST6, 22),
        router_advertisement(HOST_KIOSK, LINK_LOCAL_HOST6),
        router_advertisement_behind_extensions(HOST_KIOSK, LINK_LOCAL_HOST6),
        dot1q(&kiosk_dhcp, 20),
        dot1q(&dot1q(&TCP_KIOSK_HOST_TO_ROUTER, 20), 10),
        dot1ad(&TCP_KIOSK_HOST_TO_ROUTER, 20),
        dot1q(&TCP_KIOSK_HOST_TO_ROUTER, 99),
        unicast_dhcp_offer(HOST_KIOSK, KIOSK_HOST4, OTHER_KIOSK_HOST, KIOSK_HOST4_B),
        router_advertisement_with(HOST_KIOSK, ROUTER_KIOSK, LINK_LOCAL_HOST6, &[]),
        router_advertisement_with(
            HOST_KIOSK,
            ALL_NODES,
            LINK_LOCAL_HOST6,
            &[Extension::DestOpts { units: 1 }; 10],
        ),
        // "who-has 192.168.20.77 tell 192.168.20.1" from a kiosk host.
        arp_request(HOST_KIOSK, KIOSK_ROUTER4, KIOSK_HOST4_B),
        neighbour_advert(
            HOST_KIOSK,
            KIOSK_ROUTER6,
            ALL_NODES,
            ALL_NODES6,
            KIOSK_ROUTER6,
            Some(HOST_KIOSK),
        ),
        neighbour_advert(
            HOST_KIOSK,
            KIOSK_HOST6,
            ALL_NODES,
            ALL_NODES6,
            MAIRIE_HOST6,
            Some(HOST_KIOSK),
        ),
        neighbour_solicit(HOST_KIOSK, KIOSK_ROUTER6, KIOSK_HOST6, Some(HOST_KIOSK)),
        neighbour_solicit(HOST_KIOSK, KIOSK_HOST6, KIOSK_ROUTER6, Some(HOST_KIOSK)),
        // The router's own MAC, from the wire.
        garp(ROUTER_KIOSK, KIOSK_ROUTER4),
        tcp4(ROUTER_KIOSK, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 5900),
        ipv4_frame(
            HOST_KIOSK,
            ROUTER_KIOSK,
            &icmp4_error(
                KIOSK_HOST4,
                MAIRIE_HOST4,
                ICMP_DEST_UNREACHABLE,
                ICMP_PORT_UNREACHABLE,
                0,
                &udp4_packet(
                    Ipv4::new(MAIRIE_HOST4, MAIRIE_ROUTER4, IPPROTO_UDP),
                    5555,
                    53,
                    &[],
                ),
            ),
        ),
    ]
}
