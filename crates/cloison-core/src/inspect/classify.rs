//! `classify`: one captured frame in, at most one `Finding` out. Pure, allocation-free,
//! and total: any byte sequence gives `Some` or `None`, never a panic (fuzzed). Headers
//! are read with etherparse's zero-copy slices; VLAN tags and IPv6 extension headers are
//! walked here, each walk bounded.
//!
//! Order of the checks on a segment's interface (the first that applies wins):
//! 1. a frame from the router's own MAC on this interface: `None` (the router's own
//!    traffic, including what it routes in from other segments);
//! 2. the router's MAC of another interface: isolation_breach (a bridge or loop);
//! 3. a tag: vlan_hopping on a dedicated port (unless the tagged frame is itself an
//!    isolation breach); `None` on a VLAN sub-interface, where a tag can only be the
//!    inner half of a stacked pair that the trunk capture reports;
//! 4. ARP: a reply or gratuitous ARP claiming a router address (with a non-router MAC)
//!    or another segment's address is arp_spoof, which wins over isolation_breach as
//!    the EventKind vocabulary says; any other ARP whose sender is in another segment's
//!    subnet and that is not addressed to the router's MAC is isolation_breach;
//! 5. IPv4/IPv6: a source in another segment's subnet not addressed to the router's MAC
//!    is isolation_breach (addressed to the router it is routed spoofing, which the
//!    ruleset reports: `None`); then DHCP/DHCPv6 server messages are rogue_dhcp and
//!    router advertisements rogue_ra (the router's own never reach here, by 1).
//!
//! On the trunk only the tags are looked at (the segments' own captures see the rest).

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    ArpHardwareId, ArpPacketSlice, EtherType, Ethernet2HeaderSlice, IpAuthHeaderSlice,
    Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice, Ipv6RawExtHeaderSlice,
    SingleVlanHeaderSlice, UdpHeaderSlice,
};

use super::finding::{Finding, Reason};
use super::topology::{CaptureContext, CapturePoint, SegmentView, Topology};
use crate::alert::event::{EventKind, L4, SegmentId};

pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer TPID, still emitted by some switches.
pub const TPID_QINQ: u16 = 0x9100;

/// In-frame tags walked before giving up on reaching the payload.
const MAX_TAGS: usize = 4;
/// IPv6 extension headers walked before giving up on reaching the transport header.
const MAX_IPV6_EXTS: usize = 8;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;

const DHCP_SERVER_PORT: u16 = 67;
const DHCP_CLIENT_PORT: u16 = 68;
const BOOTREPLY: u8 = 2;
/// RFC 2131 section 3: the options start after the 236-byte fixed part and this cookie.
const DHCP_MAGIC: [u8; 4] = [99, 130, 83, 99];
const DHCP_OPTIONS_AT: usize = 240;
const DHCP_OPT_PAD: u8 = 0;
const DHCP_OPT_MESSAGE_TYPE: u8 = 53;
const DHCP_OPT_END: u8 = 255;
const DHCPOFFER: u8 = 2;
const DHCPACK: u8 = 5;
const DHCPNAK: u8 = 6;

const DHCPV6_SERVER_PORT: u16 = 547;
const DHCPV6_CLIENT_PORT: u16 = 546;
const DHCPV6_ADVERTISE: u8 = 2;
const DHCPV6_REPLY: u8 = 7;

const ICMPV6_ROUTER_ADVERTISEMENT: u8 = 134;

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

pub(crate) fn is_tpid(ether_type: u16) -> bool {
    matches!(ether_type, TPID_8021Q | TPID_8021AD | TPID_QINQ)
}

/// Classifies one frame captured at `ctx`. `None` for ordinary traffic and for frames
/// too short or malformed to show anything.
pub fn classify(frame: &[u8], ctx: &CaptureContext<'_>) -> Option<Finding> {
    let l2 = L2::read(frame, ctx)?;
    match ctx.point {
        CapturePoint::Trunk => on_trunk(&l2, ctx),
        CapturePoint::Segment(here) => on_segment(here, &l2, ctx),
    }
}

#[derive(Debug, Clone, Copy)]
struct Tag {
    tpid: u16,
    vid: u16,
}

/// The link layer of a frame: addresses, tags (metadata first, then in-frame), and
/// what follows them.
struct L2<'a> {
    src: [u8; 6],
    dst: [u8; 6],
    outer: Option<Tag>,
    inner: Option<Tag>,
    /// `None` when the tags could not be walked to the end.
    ether_type: Option<u16>,
    payload: &'a [u8],
}

impl<'a> L2<'a> {
    fn read(frame: &'a [u8], ctx: &CaptureContext<'_>) -> Option<L2<'a>> {
        let eth = Ethernet2HeaderSlice::from_slice(frame).ok()?;
        let mut l2 = L2 {
            src: eth.source(),
            dst: eth.destination(),
            outer: None,
            inner: None,
            ether_type: None,
            payload: &[],
        };
        if let Some(tci) = ctx.aux_vlan {
            l2.push(Tag {
                tpid: ctx.aux_tpid.unwrap_or(TPID_8021Q),
                vid: tci & 0x0fff,
            });
        }
        let mut ether_type = eth.ether_type().0;
        let mut rest = frame.get(eth.slice().len()..).unwrap_or(&[]);
        for _ in 0..MAX_TAGS {
            if !is_tpid(ether_type) {
                l2.ether_type = Some(ether_type);
                l2.payload = rest;
                return Some(l2);
            }
            let Ok(tag) = SingleVlanHeaderSlice::from_slice(rest) else {
                // Cut inside a tag: the tags seen so far stand, the payload is unknown.
                return Some(l2);
            };
            l2.push(Tag {
                tpid: ether_type,
                vid: tag.vlan_identifier().value(),
            });
            ether_type = tag.ether_type().0;
            rest = rest.get(tag.slice().len()..).unwrap_or(&[]);
        }
        if !is_tpid(ether_type) {
            l2.ether_type = Some(ether_type);
            l2.payload = rest;
        }
        Some(l2)
    }

    fn push(&mut self, tag: Tag) {
        if self.outer.is_none() {
            self.outer = Some(tag);
        } else if self.inner.is_none() {
            self.inner = Some(tag);
        }
    }
}

fn finding(kind: EventKind, reason: Reason, l2: &L2<'_>, ctx: &CaptureContext<'_>) -> Finding {
    Finding {
        kind,
        reason,
        point: ctx.point,
        ifindex: ctx.ifindex,
        other_segment: None,
        src_mac: l2.src,
        dst_mac: l2.dst,
        vlan: l2.outer.map(|t| t.vid),
        src_ip: None,
        dst_ip: None,
        proto: None,
        dst_port: None,
    }
}

fn on_trunk(l2: &L2<'_>, ctx: &CaptureContext<'_>) -> Option<Finding> {
    let outer = l2.outer?;
    let reason = if let Some(inner) = l2.inner {
        Reason::DoubleTag {
            outer: outer.vid,
            inner: inner.vid,
        }
    } else if outer.tpid != TPID_8021Q {
        Reason::ServiceTag {
            tpid: outer.tpid,
            vid: outer.vid,
        }
    } else if !ctx.topology.vlan_configured(outer.vid) {
        Reason::UnknownVlan(outer.vid)
    } else {
        return None;
    };
    let mut f = finding(EventKind::VlanHopping, reason, l2, ctx);
    // Seen on the trunk: the segment is the one whose VLAN the frame came in on.
    f.other_segment = ctx.topology.segment_of_vlan(outer.vid);
    Some(f)
}

fn on_segment(here: SegmentId, l2: &L2<'_>, ctx: &CaptureContext<'_>) -> Option<Finding> {
    let topo = ctx.topology;
    let seg = topo.segment(here)?;
    if l2.src == seg.mac {
        return None;
    }
    if let Some(owner) = topo.router_mac_owner(l2.src) {
        let mut f = finding(
            EventKind::IsolationBreach,
            Reason::ForeignRouterMac,
            l2,
            ctx,
        );
        f.other_segment = owner;
        fill_ip_headers(&mut f, l2);
        return Some(f);
    }
    let seen = Seen {
        here,
        seg,
        topo,
        l2,
        ctx,
    };
    let Some(outer) = l2.outer else {
        return seen.payload();
    };
    if seg.vlan.is_some() {
        return None;
    }
    if let Some(f) = seen.payload() {
        if f.kind == EventKind::IsolationBreach {
            return Some(f);
        }
    }
    let reason = match l2.inner {
        Some(inner) => Reason::DoubleTag {
            outer: outer.vid,
            inner: inner.vid,
        },
        None => Reason::TaggedOnAccessPort(outer.vid),
    };
    Some(finding(EventKind::VlanHopping, reason, l2, ctx))
}

/// Best-effort IP addresses and transport for a finding decided at layer 2.
fn fill_ip_headers(f: &mut Finding, l2: &L2<'_>) {
    match l2.ether_type {
        Some(t) if t == EtherType::IPV4.0 => {
            if let Ok(ip) = Ipv4HeaderSlice::from_slice(l2.payload) {
                f.src_ip = Some(IpAddr::V4(ip.source_addr()));
                f.dst_ip = Some(IpAddr::V4(ip.destination_addr()));
                f.proto = Some(L4::from_ip_proto(ip.protocol().0));
            }
        }
        Some(t) if t == EtherType::IPV6.0 => {
            if let Ok(ip) = Ipv6HeaderSlice::from_slice(l2.payload) {
                f.src_ip = Some(IpAddr::V6(ip.source_addr()));
                f.dst_ip = Some(IpAddr::V6(ip.destination_addr()));
            }
        }
        _ => {}
    }
}

/// A frame on segment `here`'s interface, not from any router MAC.
struct Seen<'a, 'f> {
    here: SegmentId,
    seg: &'a SegmentView,
    topo: &'a Topology,
    l2: &'a L2<'f>,
    ctx: &'a CaptureContext<'a>,
}

impl Seen<'_, '_> {
    fn payload(&self) -> Option<Finding> {
        let data = self.l2.payload;
        match self.l2.ether_type? {
            t if t == EtherType::ARP.0 => self.arp(data),
            t if t == EtherType::IPV4.0 => self.ipv4(data),
            t if t == EtherType::IPV6.0 => self.ipv6(data),
            _ => None,
        }
    }

    fn finding(&self, kind: EventKind, reason: Reason) -> Finding {
        finding(kind, reason, self.l2, self.ctx)
    }

    fn for_router(&self) -> bool {
        self.l2.dst == self.seg.mac
    }

    fn arp(&self, data: &[u8]) -> Option<Finding> {
        let arp = ArpPacketSlice::from_slice(data).ok()?;
        if arp.hw_addr_type() != ArpHardwareId::ETHERNET
            || arp.proto_addr_type() != EtherType::IPV4
            || arp.hw_addr_size() != 6
            || arp.proto_addr_size() != 4
        {
            return None;
        }
        let sha: [u8; 6] = arp.sender_hw_addr().try_into().ok()?;
        let spa = Ipv4Addr::from(<[u8; 4]>::try_from(arp.sender_protocol_addr()).ok()?);
        let tpa = Ipv4Addr::from(<[u8; 4]>::try_from(arp.target_protocol_addr()).ok()?);
        let op = arp.operation().0;
        let with_addrs = |kind, reason, other| {
            let mut f = self.finding(kind, reason);
            f.other_segment = other;
            f.src_ip = Some(IpAddr::V4(spa));
            f.dst_ip = Some(IpAddr::V4(tpa));
            f
        };
        let foreign = self.topo.foreign_segment_v4(spa, self.here);
        let claim = (op == ARP_REPLY || (op == ARP_REQUEST && spa == tpa)) && !spa.is_unspecified();
        if claim {
            match self.topo.router_v4_owner(spa) {
                Some(owner) => {
                    if self.topo.router_mac_owner(sha).is_none() {
                        let other = owner.filter(|o| *o != self.here);
                        return Some(with_addrs(
                            EventKind::ArpSpoof,
                            Reason::ClaimsRouterAddress,
                            other,
                        ));
                    }
                }
                None => {
                    if foreign.is_some() {
                        return Some(with_addrs(
                            EventKind::ArpSpoof,
                            Reason::ClaimsForeignAddress,
                            foreign,
                        ));
                    }
                }
            }
        }
        if foreign.is_some() && !self.for_router() {
            return Some(with_addrs(
                EventKind::IsolationBreach,
                Reason::ForeignSubnet,
                foreign,
            ));
        }
        None
    }

    fn ipv4(&self, data: &[u8]) -> Option<Finding> {
        let ip = Ipv4HeaderSlice::from_slice(data).ok()?;
        let header_len = ip.slice().len();
        // The header's total length bounds the datagram (Ethernet pads short frames);
        // the capture may have cut it shorter.
        let end = usize::from(ip.total_len()).max(header_len).min(data.len());
        let body = data.get(header_len..end).unwrap_or(&[]);
        let proto = ip.protocol().0;
        let first_fragment = ip.fragments_offset().value() == 0;
        let l4 = if first_fragment { Some(body) } else { None };
        let src = ip.source_addr();
        let with_headers = |kind, reason| {
            let mut f = self.finding(kind, reason);
            f.src_ip = Some(IpAddr::V4(src));
            f.dst_ip = Some(IpAddr::V4(ip.destination_addr()));
            f.proto = Some(L4::from_ip_proto(proto));
            f.dst_port = l4.and_then(|l4| dst_port(proto, l4));
            f
        };
        if let Some(y) = self.topo.foreign_segment_v4(src, self.here) {
            if !self.for_router() {
                let mut f = with_headers(EventKind::IsolationBreach, Reason::ForeignSubnet);
                f.other_segment = Some(y);
                return Some(f);
            }
            return None;
        }
        let l4 = l4?;
        if proto != IPPROTO_UDP {
            return None;
        }
        let (sport, dport, bootp) = udp(l4)?;
        if sport != DHCP_SERVER_PORT || dport != DHCP_CLIENT_PORT {
            return None;
        }
        if *bootp.first()? != BOOTREPLY {
            return None;
        }
        let message = dhcp_message_type(bootp);
        match message {
            None | Some(DHCPOFFER | DHCPACK | DHCPNAK) => Some(with_headers(
                EventKind::RogueDhcp,
                Reason::DhcpServer { message },
            )),
            Some(_) => None,
        }
    }

    fn ipv6(&self, data: &[u8]) -> Option<Finding> {
        let ip = Ipv6HeaderSlice::from_slice(data).ok()?;
        let body = data.get(ip.slice().len()..).unwrap_or(&[]);
        // A zero payload length means a jumbogram: then the frame bounds it.
        let body = match usize::from(ip.payload_length()) {
            0 => body,
            n => body.get(..n.min(body.len())).unwrap_or(body),
        };
        let (proto, l4) = ipv6_transport(ip.next_header().0, body);
        let src = ip.source_addr();
        let with_headers = |kind, reason| {
            let mut f = self.finding(kind, reason);
            f.src_ip = Some(IpAddr::V6(src));
            f.dst_ip = Some(IpAddr::V6(ip.destination_addr()));
            f.proto = Some(L4::from_ip_proto(proto));
            f.dst_port = l4.and_then(|l4| dst_port(proto, l4));
            f
        };
        if let Some(y) = self.topo.foreign_segment_v6(src, self.here) {
            if !self.for_router() {
                let mut f = with_headers(EventKind::IsolationBreach, Reason::ForeignSubnet);
                f.other_segment = Some(y);
                return Some(f);
            }
            return None;
        }
        let l4 = l4?;
        match proto {
            IPPROTO_ICMPV6 if *l4.first()? == ICMPV6_ROUTER_ADVERTISEMENT => Some(with_headers(
                EventKind::RogueRa,
                Reason::RouterAdvertisement,
            )),
            IPPROTO_UDP => {
                let (sport, dport, dhcp) = udp(l4)?;
                if sport != DHCPV6_SERVER_PORT || dport != DHCPV6_CLIENT_PORT {
                    return None;
                }
                let message = *dhcp.first()?;
                if message == DHCPV6_ADVERTISE || message == DHCPV6_REPLY {
                    Some(with_headers(
                        EventKind::RogueDhcp,
                        Reason::Dhcpv6Server { message },
                    ))
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// Walks IPv6 extension headers from `next` over `rest`: the upper-layer protocol and,
/// if it could be reached in a first (or only) fragment, its bytes.
fn ipv6_transport(mut next: u8, mut rest: &[u8]) -> (u8, Option<&[u8]>) {
    for _ in 0..MAX_IPV6_EXTS {
        let (following, len) = match next {
            IPV6_HOP_BY_HOP | IPV6_ROUTING | IPV6_DEST_OPTS => {
                match Ipv6RawExtHeaderSlice::from_slice(rest) {
                    Ok(h) => (h.next_header().0, h.slice().len()),
                    Err(_) => return (next, None),
                }
            }
            IPV6_FRAGMENT => match Ipv6FragmentHeaderSlice::from_slice(rest) {
                Ok(h) if h.fragment_offset().value() == 0 => (h.next_header().0, h.slice().len()),
                _ => return (next, None),
            },
            IPV6_AUTH => match IpAuthHeaderSlice::from_slice(rest) {
                Ok(h) => (h.next_header().0, h.slice().len()),
                Err(_) => return (next, None),
            },
            _ => return (next, Some(rest)),
        };
        next = following;
        rest = rest.get(len..).unwrap_or(&[]);
    }
    (next, None)
}

/// Source port, destination port and payload of a UDP datagram.
fn udp(l4: &[u8]) -> Option<(u16, u16, &[u8])> {
    let h = UdpHeaderSlice::from_slice(l4).ok()?;
    let header_len = h.slice().len();
    let end = usize::from(h.length()).max(header_len).min(l4.len());
    let payload = l4.get(header_len..end).unwrap_or(&[]);
    Some((h.source_port(), h.destination_port(), payload))
}

fn dst_port(proto: u8, l4: &[u8]) -> Option<u16> {
    match proto {
        IPPROTO_TCP | IPPROTO_UDP => {
            let b: [u8; 2] = l4.get(2..4)?.try_into().ok()?;
            Some(u16::from_be_bytes(b))
        }
        _ => None,
    }
}

/// The DHCP message type (option 53) of a BOOTP message, if it has one within `bootp`.
fn dhcp_message_type(bootp: &[u8]) -> Option<u8> {
    if bootp.get(DHCP_OPTIONS_AT - DHCP_MAGIC.len()..DHCP_OPTIONS_AT)? != DHCP_MAGIC {
        return None;
    }
    let mut options = bootp.get(DHCP_OPTIONS_AT..)?;
    while let Some((&code, rest)) = options.split_first() {
        match code {
            DHCP_OPT_PAD => options = rest,
            DHCP_OPT_END => return None,
            _ => {
                let (&len, value) = rest.split_first()?;
                if code == DHCP_OPT_MESSAGE_TYPE {
                    return if len >= 1 {
                        value.first().copied()
                    } else {
                        None
                    };
                }
                options = value.get(usize::from(len)..)?;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_options_walk_stops_at_end_and_cuts() {
        let mut bootp = vec![0u8; 236];
        bootp.extend_from_slice(&DHCP_MAGIC);
        let base = bootp.clone();
        bootp.extend_from_slice(&[0, 0, 1, 4, 255, 255, 255, 0, 53, 1, 5, 255]);
        assert_eq!(dhcp_message_type(&bootp), Some(5));
        let mut ended = base.clone();
        ended.extend_from_slice(&[255, 53, 1, 2]);
        assert_eq!(dhcp_message_type(&ended), None);
        let mut cut = base.clone();
        cut.extend_from_slice(&[1, 200, 0]);
        assert_eq!(dhcp_message_type(&cut), None);
        let mut empty_type = base.clone();
        empty_type.extend_from_slice(&[53, 0]);
        assert_eq!(dhcp_message_type(&empty_type), None);
        let mut no_magic = bootp.clone();
        no_magic[236] = 0;
        assert_eq!(dhcp_message_type(&no_magic), None);
    }

    #[test]
    fn ipv6_walk_skips_extensions_and_stops_at_later_fragments() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> ICMPv6
        let mut chain = vec![60, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend_from_slice(&[134, 0, 0, 0]);
        let (proto, l4) = ipv6_transport(IPV6_HOP_BY_HOP, &chain);
        assert_eq!(proto, IPPROTO_ICMPV6);
        assert_eq!(l4, Some(&[134u8, 0, 0, 0][..]));
        // first fragment: reachable; offset 8: not
        let first = [58, 0, 0, 0, 0, 0, 0, 1, 134, 0];
        assert_eq!(
            ipv6_transport(IPV6_FRAGMENT, &first).1,
            Some(&[134u8, 0][..])
        );
        let later = [58, 0, 0, 0x40 | 0x01, 0, 0, 0, 1, 134, 0];
        assert_eq!(ipv6_transport(IPV6_FRAGMENT, &later).1, None);
        // cut inside an extension header
        assert_eq!(ipv6_transport(IPV6_HOP_BY_HOP, &chain[..5]).1, None);
        // a chain longer than the walk bound
        let looped: Vec<u8> = std::iter::repeat_n([60u8, 0, 0, 0, 0, 0, 0, 0], 20)
            .flatten()
            .collect();
        assert_eq!(ipv6_transport(IPV6_DEST_OPTS, &looped), (60, None));
    }

    #[test]
    fn udp_length_bounds_payload() {
        // length 10: two payload bytes, then Ethernet padding
        let d = [0, 67, 0, 68, 0, 10, 0, 0, 2, 1, 0, 0, 0];
        assert_eq!(udp(&d), Some((67, 68, &[2u8, 1][..])));
        assert_eq!(udp(&d[..7]), None);
    }
}
