//! What `classify` reports: the kind of event, why, and the headers of the frame that
//! showed it. `Copy` and fixed-size; nothing here can hold payload bytes.

use std::fmt;
use std::net::IpAddr;

use super::topology::CapturePoint;
use crate::alert::event::{Destination, EventKind, FlowKey, L4, SegmentId, Technique};

/// Why a frame was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// vlan_hopping: a VLAN ID on the trunk that no segment uses.
    UnknownVlan(u16),
    /// vlan_hopping: two stacked tags (in the frame, or one in metadata and one in the
    /// frame). VLAN IDs outer first.
    DoubleTag { outer: u16, inner: u16 },
    /// vlan_hopping: a single outer tag whose TPID is not 802.1Q (0x88a8 802.1ad S-tag,
    /// or the pre-standard 0x9100).
    ServiceTag { tpid: u16, vid: u16 },
    /// vlan_hopping: a tagged frame on a segment's dedicated (untagged) port.
    TaggedOnAccessPort(u16),
    /// isolation_breach: the source MAC is the router's MAC of another interface (a
    /// bridge or loop between the router's ports).
    ForeignRouterMac,
    /// isolation_breach: the source address is in another segment's subnet and the frame
    /// is not addressed to the router (link-local traffic of another segment's host).
    ForeignSubnet,
    /// arp_spoof: ARP (reply, gratuitous or request) or IPv6 neighbour discovery
    /// (advertisement target, solicitation source) giving one of the router's addresses
    /// a MAC that is not the router's.
    ClaimsRouterAddress,
    /// arp_spoof: an ARP reply or gratuitous ARP, or a neighbour advertisement, claiming
    /// an address of another segment's subnet.
    ClaimsForeignAddress,
    /// arp_spoof: a frame received from the wire with the router's own MAC on this
    /// interface as its source (the router's own frames are told apart by direction).
    RouterMacFromWire,
    /// rogue_dhcp: a DHCPv4 server reply (BOOTREPLY from port 67 to 68). `message` is
    /// the DHCP message type (2 offer, 5 ack, 6 nak), `None` for a plain BOOTP reply or
    /// when the options were cut off.
    DhcpServer { message: Option<u8> },
    /// rogue_dhcp: a DHCPv6 advertise (2) or reply (7) from port 547 to 546.
    Dhcpv6Server { message: u8 },
    /// rogue_ra: an ICMPv6 router advertisement.
    RouterAdvertisement,
}

impl Reason {
    /// A stable snake_case name, for an alert field.
    pub fn name(self) -> &'static str {
        match self {
            Reason::UnknownVlan(_) => "unknown_vlan",
            Reason::DoubleTag { .. } => "double_tag",
            Reason::ServiceTag { .. } => "service_tag",
            Reason::TaggedOnAccessPort(_) => "tagged_on_access_port",
            Reason::ForeignRouterMac => "foreign_router_mac",
            Reason::ForeignSubnet => "foreign_subnet",
            Reason::ClaimsRouterAddress => "claims_router_address",
            Reason::ClaimsForeignAddress => "claims_foreign_address",
            Reason::RouterMacFromWire => "router_mac_from_wire",
            Reason::DhcpServer { .. } => "dhcp_server",
            Reason::Dhcpv6Server { .. } => "dhcpv6_server",
            Reason::RouterAdvertisement => "router_advertisement",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::UnknownVlan(v) => write!(f, "VLAN {v} is not configured for any segment"),
            Reason::DoubleTag { outer, inner } => {
                write!(f, "stacked VLAN tags (outer {outer}, inner {inner})")
            }
            Reason::ServiceTag { tpid, vid } => {
                write!(
                    f,
                    "outer tag with TPID {tpid:#06x} (VLAN {vid}), not 802.1Q"
                )
            }
            Reason::TaggedOnAccessPort(v) => {
                write!(f, "frame tagged with VLAN {v} on an untagged port")
            }
            Reason::ForeignRouterMac => {
                f.write_str("source MAC is the router's MAC on another interface")
            }
            Reason::ForeignSubnet => f.write_str(
                "source address belongs to another segment and the frame is not for the router",
            ),
            Reason::ClaimsRouterAddress => f.write_str(
                "ARP or neighbour discovery gives one of the router's addresses a MAC that is not the router's",
            ),
            Reason::ClaimsForeignAddress => f.write_str(
                "ARP or neighbour discovery claims an address of another segment",
            ),
            Reason::RouterMacFromWire => f.write_str(
                "a frame from the wire carries the router's own MAC as its source (forged, or looped back)",
            ),
            Reason::DhcpServer { message: Some(m) } => {
                write!(f, "DHCP server reply (message type {m}) from a host")
            }
            Reason::DhcpServer { message: None } => {
                f.write_str("BOOTP/DHCP server reply from a host")
            }
            Reason::Dhcpv6Server { message } => {
                write!(f, "DHCPv6 server message (type {message}) from a host")
            }
            Reason::RouterAdvertisement => f.write_str("IPv6 router advertisement from a host"),
        }
    }
}

/// One suspect frame, headers only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: EventKind,
    pub reason: Reason,
    /// Where the frame was captured.
    pub point: CapturePoint,
    pub ifindex: u32,
    /// The other segment involved: the owner of the foreign router MAC or source
    /// address, or of the address an ARP claims. `None` when there is none or it is the
    /// trunk or an uplink.
    pub other_segment: Option<SegmentId>,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The outermost VLAN ID, from metadata or the frame.
    pub vlan: Option<u16>,
    /// IP source, or the ARP sender address.
    pub src_ip: Option<IpAddr>,
    /// IP destination, or the ARP target address.
    pub dst_ip: Option<IpAddr>,
    pub proto: Option<L4>,
    pub dst_port: Option<u16>,
    /// How the frame made its claim, when that is worth saying (ARP request form,
    /// neighbour discovery, the router's own MAC).
    pub technique: Option<Technique>,
}

impl Finding {
    /// The key alerts are folded by. `src_segment` is where the traffic comes from: the
    /// other segment for an isolation breach (then `dst` is the segment whose wire it was
    /// seen on), the capture segment otherwise (`None` on the trunk). For an ARP spoof,
    /// `dst` names what is claimed: `Router`, or the other segment.
    pub fn flow_key(&self) -> FlowKey {
        let here = match self.point {
            CapturePoint::Segment(s) => Some(s),
            CapturePoint::Trunk => None,
        };
        let (src_segment, dst) = match (self.kind, self.reason) {
            (EventKind::IsolationBreach, _) => (self.other_segment, here.map(Destination::Segment)),
            (_, Reason::ClaimsRouterAddress | Reason::RouterMacFromWire) => {
                (here, Some(Destination::Router))
            }
            (_, Reason::ClaimsForeignAddress) => {
                (here, self.other_segment.map(Destination::Segment))
            }
            // On the trunk, the segment of the VLAN the frame came in on, if configured.
            (EventKind::VlanHopping, _) if self.point == CapturePoint::Trunk => {
                (self.other_segment, None)
            }
            _ => (here, None),
        };
        FlowKey {
            kind: self.kind,
            src_segment,
            dst,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            proto: self.proto,
            dst_port: self.dst_port,
            src_mac: Some(self.src_mac),
            vlan: self.vlan,
            inner_vlan: match self.reason {
                Reason::DoubleTag { inner, .. } => Some(inner),
                _ => None,
            },
            ifindex: Some(self.ifindex),
            technique: self.technique,
            origin: None,
        }
    }
}
