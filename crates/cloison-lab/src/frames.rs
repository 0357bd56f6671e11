//! The frame kit: Ethernet frames built byte by byte for the tests, the benchmarks, the
//! fuzz seeds and the lab's attacks, over the topologies of `cloison_core::testkit`
//! (re-exported here). IPv4 header checksums are real (the lab sends these frames
//! through bridges); transport checksums are zero (`classify` never reads them).

use std::net::{Ipv4Addr, Ipv6Addr};

use cloison_core::inspect::{TPID_8021AD, TPID_8021Q};
pub use cloison_core::testkit::*;

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
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ether_type.to_be_bytes());
    f
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

/// A length field: the kit's frames are short.
fn length(n: usize) -> u16 {
    u16::try_from(n).expect("a test frame is shorter than 64 KiB")
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = length(20 + payload.len());
    let mut h = vec![0x45, 0x00];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x00, 0x00, 0x40, 0x00, 64, proto, 0x00, 0x00]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    // A real header checksum: bridges with br_netfilter drop IPv4 without one, and the
    // lab sends these frames over bridges.
    let sum = h.chunks(2).fold(0u32, |acc, w| {
        acc + u32::from(u16::from_be_bytes([w[0], w[1]]))
    });
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !u16::try_from((folded & 0xffff) + (folded >> 16)).expect("folded twice");
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0x00, 0x00, 0x00];
    h.extend_from_slice(&length(payload.len()).to_be_bytes());
    h.extend_from_slice(&[next, 255]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&length(8 + payload.len()).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn tcp_syn(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0]);
    t
}

/// Pads to Ethernet's 60-byte minimum, as a NIC would.
fn padded(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

pub fn tcp4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
) -> Vec<u8> {
    let mut f = eth(dst_mac, src_mac, 0x0800);
    f.extend(ipv4(src, dst, 6, &tcp_syn(40000, dport)));
    padded(f)
}

pub fn udp4(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let mut f = eth(dst_mac, src_mac, 0x0800);
    f.extend(ipv4(src, dst, 17, &udp(sport, dport, &[0; 12])));
    padded(f)
}

pub fn arp(
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    dst_mac: [u8; 6],
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = eth(dst_mac, sha, 0x0806);
    f.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp(1, sha, spa, BROADCAST, [0; 6], tpa)
}

pub fn arp_reply(sha: [u8; 6], spa: Ipv4Addr, dst_mac: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    arp(2, sha, spa, dst_mac, dst_mac, tpa)
}

/// A gratuitous ARP request announcing `spa` at `sha`.
pub fn garp(sha: [u8; 6], spa: Ipv4Addr) -> Vec<u8> {
    arp(1, sha, spa, BROADCAST, [0; 6], spa)
}

/// A BOOTP message with options `53 = message_type`, then server id, lease time and end.
fn bootp(op: u8, client_mac: [u8; 6], yiaddr: Ipv4Addr, message_type: u8) -> Vec<u8> {
    let mut b = vec![op, 1, 6, 0, 0x12, 0x34, 0x56, 0x78, 0, 0, 0x80, 0];
    b.extend_from_slice(&[0; 4]); // ciaddr
    b.extend_from_slice(&yiaddr.octets());
    b.extend_from_slice(&[0; 8]); // siaddr, giaddr
    b.extend_from_slice(&client_mac);
    b.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
    b.extend_from_slice(&[99, 130, 83, 99]);
    b.extend_from_slice(&[53, 1, message_type]);
    b.extend_from_slice(&[54, 4, 192, 168, 20, 1]);
    b.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]);
    b.push(255);
    b
}

/// A DHCP server reply (`message_type` 2 offer, 5 ack, 6 nak) broadcast from `src`.
pub fn dhcp_reply(src_mac: [u8; 6], src: Ipv4Addr, message_type: u8) -> Vec<u8> {
    let mut f = eth(BROADCAST, src_mac, 0x0800);
    let payload = bootp(2, HOST_KIOSK, Ipv4Addr::new(192, 168, 20, 50), message_type);
    f.extend(ipv4(src, Ipv4Addr::BROADCAST, 17, &udp(67, 68, &payload)));
    f
}

pub fn dhcp_offer(src_mac: [u8; 6], src: Ipv4Addr) -> Vec<u8> {
    dhcp_reply(src_mac, src, 2)
}

pub fn dhcp_discover(src_mac: [u8; 6]) -> Vec<u8> {
    let mut f = eth(BROADCAST, src_mac, 0x0800);
    let payload = bootp(1, src_mac, Ipv4Addr::UNSPECIFIED, 1);
    f.extend(ipv4(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        17,
        &udp(68, 67, &payload),
    ));
    f
}

/// A DHCPv6 server message (`message` 2 advertise, 7 reply) to a client's link-local
/// address.
pub fn dhcpv6(src_mac: [u8; 6], src: Ipv6Addr, message: u8) -> Vec<u8> {
    let mut f = eth(HOST_KIOSK, src_mac, 0x86dd);
    let payload = [message, 0xab, 0xcd, 0xef, 0, 1, 0, 4, 0, 3, 0, 1];
    f.extend(ipv6(src, LINK_LOCAL_HOST6, 17, &udp(547, 546, &payload)));
    f
}

pub fn udp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
) -> Vec<u8> {
    let mut f = eth(dst_mac, src_mac, 0x86dd);
    f.extend(ipv6(src, dst, 17, &udp(sport, dport, &[0; 8])));
    f
}

pub fn tcp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    dport: u16,
) -> Vec<u8> {
    let mut f = eth(dst_mac, src_mac, 0x86dd);
    f.extend(ipv6(src, dst, 6, &tcp_syn(40000, dport)));
    f
}

/// A router advertisement from `src` to all nodes, with a prefix information option.
pub fn router_advertisement(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    let mut f = eth(ALL_NODES, src_mac, 0x86dd);
    let mut icmp = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&[
        3, 4, 64, 0xc0, 0, 0x27, 0x8d, 0, 0, 0x09, 0x3a, 0x80, 0, 0, 0, 0,
    ]);
    icmp.extend_from_slice(&Ipv6Addr::new(0xfd00, 0x66, 0, 0, 0, 0, 0, 0).octets());
    f.extend(ipv6(src, ALL_NODES6, 58, &icmp));
    f
}

/// The same advertisement behind a hop-by-hop and a destination options header (how
/// RA guard is evaded on switches that only look at the first next-header).
pub fn router_advertisement_behind_extensions(src_mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    let ra = router_advertisement(src_mac, src);
    let icmp = &ra[14 + 40..];
    let mut body = vec![60, 0, 1, 4, 0, 0, 0, 0];
    body.extend_from_slice(&[58, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(icmp);
    let mut f = eth(ALL_NODES, src_mac, 0x86dd);
    f.extend(ipv6(src, ALL_NODES6, 0, &body));
    f
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
    ]
}
