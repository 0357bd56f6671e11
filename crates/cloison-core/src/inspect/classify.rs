//! `classify`: one captured frame in, at most one `Finding` out. Pure, allocation-free,
//! and total: any byte sequence gives `Some` or `None`, never a panic (fuzzed). Headers
//! are read with etherparse's zero-copy slices; VLAN tags and IPv6 extension headers are
//! walked here, each walk bounded by the bytes it covers.
//!
//! Every frame handed in was *received*: the capture tells the router's own frames apart
//! by their direction (the kernel's packet type), never by their MAC, so a frame that
//! carries one of the router's MACs here came in from the wire, forged or looped back.
//!
//! Order of the checks on a segment's interface (the first that applies wins):
//! 1. the router's MAC of another interface: isolation_breach (a bridge or loop);
//! 2. a tag: vlan_hopping on a dedicated port (unless the tagged frame is itself an
//!    isolation breach); `None` on a VLAN sub-interface, where a tag can only be the
//!    inner half of a stacked pair that the trunk capture reports;
//! 3. ARP: any ARP (reply, gratuitous, or request "who-has X tell <router>") giving a
//!    router address a MAC that is not the router's, or a reply or gratuitous ARP
//!    claiming another segment's address, is arp_spoof, which wins over
//!    isolation_breach as the EventKind vocabulary says; any other ARP whose sender is in
//!    another segment's subnet and that is not addressed to the router's MAC is
//!    isolation_breach;
//! 4. IPv6 neighbour discovery: an advertisement whose target, or a solicitation whose
//!    source, is a router address with a MAC that is not the router's, or an
//!    advertisement for another segment's address, is arp_spoof (same precedence);
//! 5. IPv4/IPv6: a source in another segment's subnet not addressed to the router's MAC
//!    is isolation_breach (addressed to the router it is routed spoofing, which the
//!    ruleset reports: `None`); then DHCP/DHCPv6 server messages are rogue_dhcp and
//!    router advertisements rogue_ra;
//! 6. a frame with the router's own MAC on this interface as its source that none of
//!    the above reports is arp_spoof (the router impersonated at layer 2, or a loop); it
//!    is never an isolation breach, whatever its addresses.
//!
//! On the trunk only the tags are looked at (the segments' own captures see the rest).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpHardwareId, ArpPacketSlice, EtherType, Ethernet2HeaderSlice, Ipv4HeaderSlice,
    Ipv6HeaderSlice, SingleVlanHeaderSlice, UdpHeaderSlice,
};

use super::finding::{Finding, Reason};
use super::topology::{CaptureContext, CapturePoint, SegmentView, Topology};
use crate::alert::event::{EventKind, L4, SegmentId, Technique};
use crate::headers::{IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, ipv6_transport};

pub const TPID_8021Q: u16 = 0x8100;
pub const TPID_8021AD: u16 = 0x88a8;
/// Pre-standard QinQ outer TPID, still emitted by some switches.
pub const TPID_QINQ: u16 = 0x9100;

/// In-frame tags walked before giving up on reaching the payload.
const MAX_TAGS: usize = 4;

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
const ICMPV6_NEIGHBOR_SOLICITATION: u8 = 135;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Neighbour discovery options (RFC 4861 section 4.6): source and target link-layer
/// addresses; option lengths are in units of 8 bytes.
const ND_OPT_SOURCE_LL: u8 = 1;
const ND_OPT_TARGET_LL: u8 = 2;
/// Type, code, checksum, flags or reserved: the target address follows.
const ND_TARGET_AT: usize = 8;
const ND_OPTIONS_AT: usize = 24;

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
        technique: None,
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
    // Received with the router's own MAC on this interface: forged, or looped back.
    let own = l2.src == seg.mac;
    if !own && let Some(owner) = topo.router_mac_owner(l2.src) {
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
        own,
    };
    let Some(outer) = l2.outer else {
        return seen.payload().or_else(|| seen.router_mac());
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
                let body = l2.payload.get(ip.slice().len()..).unwrap_or(&[]);
                f.proto = Some(L4::from_ip_proto(
                    ipv6_transport(ip.next_header().0, body).proto,
                ));
            }
        }
        Some(t) if t == EtherType::ARP.0 => {
            if let Ok(arp) = ArpPacketSlice::from_slice(l2.payload)
                && let (Ok(spa), Ok(tpa)) = (
                    <[u8; 4]>::try_from(arp.sender_protocol_addr()),
                    <[u8; 4]>::try_from(arp.target_protocol_addr()),
                )
            {
                f.src_ip = Some(IpAddr::V4(Ipv4Addr::from(spa)));
                f.dst_ip = Some(IpAddr::V4(Ipv4Addr::from(tpa)));
            }
        }
        _ => {}
    }
}

/// A frame on segment `here`'s interface, not from the router's MAC of another
/// interface.
struct Seen<'a, 'f> {
    here: SegmentId,
    seg: &'a SegmentView,
    topo: &'a Topology,
    l2: &'a L2<'f>,
    ctx: &'a CaptureContext<'a>,
    /// From the router's own MAC on this interface.
    own: bool,
}

impl Seen<'_, '_> {
    /// The last word on a frame from the router's own MAC: arp_spoof.
    fn router_mac(&self) -> Option<Finding> {
        if !self.own {
            return None;
        }
        let mut f = self.finding(EventKind::ArpSpoof, Reason::RouterMacFromWire);
        f.technique = Some(Technique::RouterMac);
        fill_ip_headers(&mut f, self.l2);
        Some(f)
    }

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
        let gratuitous = op == ARP_REQUEST && spa == tpa;
        if (op == ARP_REPLY || op == ARP_REQUEST) && !spa.is_unspecified() {
            match self.topo.router_v4_owner(spa) {
                // Any form poisons: a reply, a gratuitous ARP, and a request "who-has X
                // tell <router address>", which updates whoever answers or knows it.
                Some(owner) => {
                    if self.topo.router_mac_owner(sha).is_none() {
                        let other = owner.filter(|o| *o != self.here);
                        let mut f =
                            with_addrs(EventKind::ArpSpoof, Reason::ClaimsRouterAddress, other);
                        if op == ARP_REQUEST && !gratuitous {
                            f.technique = Some(Technique::ArpRequest);
                        }
                        return Some(f);
                    }
                }
                None => {
                    if foreign.is_some() && (op == ARP_REPLY || gratuitous) && !self.own {
                        return Some(with_addrs(
                            EventKind::ArpSpoof,
                            Reason::ClaimsForeignAddress,
                            foreign,
                        ));
                    }
                }
            }
        }
        if foreign.is_some() && !self.for_router() && !self.own {
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
        if let Some(y) = self.topo.foreign_segment_v4(src, self.here)
            && !self.own
        {
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
        let walk = ipv6_transport(ip.next_header().0, body);
        let (proto, l4) = (walk.proto, walk.l4);
        let src = ip.source_addr();
        let with_headers = |kind, reason| {
            let mut f = self.finding(kind, reason);
            f.src_ip = Some(IpAddr::V6(src));
            f.dst_ip = Some(IpAddr::V6(ip.destination_addr()));
            f.proto = Some(L4::from_ip_proto(proto));
            f.dst_port = l4.and_then(|l4| dst_port(proto, l4));
            f
        };
        if proto == IPPROTO_ICMPV6
            && let Some(f) = l4.and_then(|icmp| self.neighbour_claim(src, icmp, &with_headers))
        {
            return Some(f);
        }
        if let Some(y) = self.topo.foreign_segment_v6(src, self.here)
            && !self.own
        {
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

    /// Neighbour discovery claiming an address: an advertisement whose target, or a
    /// solicitation whose source, is a router address, conveyed with a MAC (the frame's,
    /// or the message's link-layer option) that is not the router's; or an advertisement
    /// for another segment's address. The claimed address is the finding's `src_ip`.
    fn neighbour_claim(
        &self,
        src: Ipv6Addr,
        icmp: &[u8],
        with_headers: &dyn Fn(EventKind, Reason) -> Finding,
    ) -> Option<Finding> {
        let (claimed, option, technique) = match *icmp.first()? {
            ICMPV6_NEIGHBOR_ADVERTISEMENT => (
                Ipv6Addr::from(<[u8; 16]>::try_from(icmp.get(ND_TARGET_AT..ND_OPTIONS_AT)?).ok()?),
                ND_OPT_TARGET_LL,
                Technique::NeighbourAdvert,
            ),
            ICMPV6_NEIGHBOR_SOLICITATION => (src, ND_OPT_SOURCE_LL, Technique::NeighbourSolicit),
            _ => return None,
        };
        let not_router = |mac: [u8; 6]| self.topo.router_mac_owner(mac).is_none();
        let option_mac = icmp
            .get(ND_OPTIONS_AT..)
            .and_then(|o| nd_link_layer_option(o, option));
        let conveyed_by_a_host = not_router(self.l2.src) || option_mac.is_some_and(not_router);
        let claim = |reason, other| {
            let mut f = with_headers(EventKind::ArpSpoof, reason);
            f.other_segment = other;
            f.src_ip = Some(IpAddr::V6(claimed));
            f.technique = Some(technique);
            f
        };
        if let Some(owner) = self.topo.router_v6_owner(claimed) {
            return conveyed_by_a_host.then(|| {
                claim(
                    Reason::ClaimsRouterAddress,
                    owner.filter(|o| *o != self.here),
                )
            });
        }
        if technique == Technique::NeighbourAdvert && !self.own {
            let other = self.topo.foreign_segment_v6(claimed, self.here)?;
            return Some(claim(Reason::ClaimsForeignAddress, Some(other)));
        }
        None
    }
}

/// The MAC of the first link-layer address option of `kind` among neighbour discovery
/// options, if the options can be walked to it.
fn nd_link_layer_option(mut options: &[u8], kind: u8) -> Option<[u8; 6]> {
    // Each option is at least 8 bytes (a zero length is invalid and ends the walk).
    for _ in 0..=options.len() / 8 {
        let (&t, rest) = options.split_first()?;
        let len = usize::from(*rest.first()?) * 8;
        if len == 0 {
            return None;
        }
        if t == kind {
            return <[u8; 6]>::try_from(options.get(2..8)?).ok();
        }
        options = options.get(len..)?;
    }
    None
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
    fn udp_length_bounds_payload() {
        // length 10: two payload bytes, then Ethernet padding
        let d = [0, 67, 0, 68, 0, 10, 0, 0, 2, 1, 0, 0, 0];
        assert_eq!(udp(&d), Some((67, 68, &[2u8, 1][..])));
        assert_eq!(udp(&d[..7]), None);
    }
}
