//! The vocabulary shared by the inspection loop and the alert writer: what kind of event
//! happened and which flow it belongs to. Headers only: nothing here can hold payload.

use std::fmt;
use std::net::IpAddr;

/// What an alert is about (`CLOISON_EVENT`). Each kind has a fixed `MESSAGE_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// A packet from one segment toward another, or toward a private address that belongs
    /// to no segment; dropped by the ruleset.
    CrossSegment,
    /// A packet toward the router itself on a port the segment may not use; dropped.
    RouterAccess,
    /// A packet entering a segment with a source address outside the segment; dropped.
    SpoofedSource,
    /// Traffic that got across without going through the rules (shared wire, leaking
    /// switch, added bridge).
    IsolationBreach,
    /// A host impersonating the router (or a host of another segment) at the link layer:
    /// an ARP message (reply, gratuitous, or request) or an IPv6 neighbour advertisement
    /// or solicitation giving the router's or another segment's address a MAC that is not
    /// the router's, or a frame from the wire carrying the router's own MAC as its source.
    ArpSpoof,
    /// A DHCP offer or ack from a host instead of the router.
    RogueDhcp,
    /// An IPv6 router advertisement from a host.
    RogueRa,
    /// An unconfigured VLAN ID on the trunk, stacked tags, or a tag on an untagged port.
    VlanHopping,
    /// The live table differs from the plan.
    RulesetDrift,
    /// A configuration was refused (the previous one stays in force).
    ConfigRejected,
    /// A configuration was applied.
    ConfigApplied,
    /// `cloison verify` sent its probes and every one met the configuration.
    VerifyPassed,
    /// `cloison verify` found probes that did not meet the configuration (a hole, or a
    /// flow that should work and does not).
    VerifyFailed,
}

impl EventKind {
    pub const ALL: [EventKind; 13] = [
        EventKind::CrossSegment,
        EventKind::RouterAccess,
        EventKind::SpoofedSource,
        EventKind::IsolationBreach,
        EventKind::ArpSpoof,
        EventKind::RogueDhcp,
        EventKind::RogueRa,
        EventKind::VlanHopping,
        EventKind::RulesetDrift,
        EventKind::ConfigRejected,
        EventKind::ConfigApplied,
        EventKind::VerifyPassed,
        EventKind::VerifyFailed,
    ];

    /// The `CLOISON_EVENT` value.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::CrossSegment => "cross_segment",
            EventKind::RouterAccess => "router_access",
            EventKind::SpoofedSource => "spoofed_source",
            EventKind::IsolationBreach => "isolation_breach",
            EventKind::ArpSpoof => "arp_spoof",
            EventKind::RogueDhcp => "rogue_dhcp",
            EventKind::RogueRa => "rogue_ra",
            EventKind::VlanHopping => "vlan_hopping",
            EventKind::RulesetDrift => "ruleset_drift",
            EventKind::ConfigRejected => "config_rejected",
            EventKind::ConfigApplied => "config_applied",
            EventKind::VerifyPassed => "verify_passed",
            EventKind::VerifyFailed => "verify_failed",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The journald `MESSAGE_ID`. Generated once at random for cloison and never changed:
    /// users filter on them (`journalctl MESSAGE_ID=...`) and the catalog is keyed by them.
    pub fn message_id(self) -> &'static str {
        match self {
            EventKind::CrossSegment => "19fbdf17c11e42b1a5f69fbb2e09ed07",
            EventKind::RouterAccess => "e16ed5be5bf04f159bd6e80700b4c449",
            EventKind::SpoofedSource => "cafdaf6f8b364142b84a0f34c2a7160a",
            EventKind::IsolationBreach => "26140ea8d3f14537bbfd6092ce6f4015",
            EventKind::ArpSpoof => "e09bd93800184f55b103e184bbbf4f8d",
            EventKind::RogueDhcp => "7c40cdd991554ec7b6d2fab3572e76c0",
            EventKind::RogueRa => "e80d7b9e0e5247379115a583443a4c90",
            EventKind::VlanHopping => "cac32e5fcb8e49b0b038ab0005618a43",
            EventKind::RulesetDrift => "bc6474c2f84d471f8ba59d26c1cff69b",
            EventKind::ConfigRejected => "e0bcd25b745845759562dc126ba428d3",
            EventKind::ConfigApplied => "fd4337a984b74f36b5d2d20b2a1c0b9a",
            EventKind::VerifyPassed => "d64320743fa1472dbaf5af671e915ed3",
            EventKind::VerifyFailed => "e9511d2ef126457c9edfd848284e47de",
        }
    }

    /// syslog priority: crit 2, err 3, warning 4, notice 5.
    pub fn priority(self) -> u8 {
        match self {
            EventKind::IsolationBreach | EventKind::RulesetDrift | EventKind::VerifyFailed => 2,
            EventKind::SpoofedSource
            | EventKind::ArpSpoof
            | EventKind::RogueDhcp
            | EventKind::RogueRa
            | EventKind::VlanHopping
            | EventKind::ConfigRejected => 3,
            EventKind::CrossSegment | EventKind::RouterAccess => 4,
            EventKind::ConfigApplied | EventKind::VerifyPassed => 5,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Index of a segment in `Config::segments` (sorted by name, so stable for a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u8);

impl SegmentId {
    /// The id of the segment at `index` in `Config::segments`. Validation allows at
    /// most `config::MAX_SEGMENTS` (64) segments and `Topology` refuses more than 256, so
    /// an index past a byte is a bug, not an input.
    pub fn at(index: usize) -> SegmentId {
        SegmentId(u8::try_from(index).expect("segment indexes fit a byte"))
    }

    /// The index in `Config::segments`.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Where a blocked packet was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Destination {
    Segment(SegmentId),
    /// The router's own addresses.
    Router,
    /// A private address that belongs to no segment (RFC 1918, ULA, link-local...).
    Private,
    /// A public address, from a segment without (that) uplink.
    Internet,
}

/// Layer-4 protocol as seen in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Other(u8),
}

impl L4 {
    pub fn from_ip_proto(p: u8) -> L4 {
        match p {
            6 => L4::Tcp,
            17 => L4::Udp,
            1 => L4::Icmp,
            58 => L4::Icmpv6,
            n => L4::Other(n),
        }
    }

    pub fn name(self) -> String {
        match self {
            L4::Tcp => "tcp".into(),
            L4::Udp => "udp".into(),
            L4::Icmp => "icmp".into(),
            L4::Icmpv6 => "icmpv6".into(),
            L4::Other(n) => format!("ip-proto-{n}"),
        }
    }
}

/// How an attempt was made, when its headers say more than addresses and ports
/// (`CLOISON_TECHNIQUE`). Part of the flow: a FIN scan and a SYN to the same port are
/// two flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Technique {
    /// TTL (or hop limit) 1 toward another segment: a traceroute probe, which the router
    /// would have answered with "time exceeded".
    Traceroute,
    /// To the broadcast address of another segment's subnet (a directed broadcast).
    DirectedBroadcast,
    /// An ICMP or ICMPv6 error (unreachable, too big, time exceeded, parameter problem,
    /// redirect) about some flow: an injection attempt.
    IcmpError,
    /// TCP stealth scans: no flags; FIN only; FIN, PSH and URG (Xmas); FIN and ACK
    /// (Maimon).
    TcpNull,
    TcpFin,
    TcpXmas,
    TcpMaimon,
    /// A first fragment that stops before the transport header's ports (RFC 7112 forbids
    /// it, RFC 1858's tiny fragments): the port travels in a later fragment, which the
    /// kernel never reassembles with it, so nobody can read it.
    TinyFragment,
    /// An ARP request whose sender is the claimed address ("who-has X tell <router>"):
    /// it poisons the neighbours that answer or already know the sender.
    ArpRequest,
    /// IPv6 neighbour discovery: an advertisement whose target, or a solicitation whose
    /// source, is the claimed address.
    NeighbourAdvert,
    NeighbourSolicit,
    /// A frame received from the wire with the router's own MAC as its source: someone
    /// impersonates the router at layer 2 (switches then send them the router's frames),
    /// or a loop sends the router's frames back.
    RouterMac,
    /// A probe of `cloison verify` (it carries the verify mark): proof being made, not an
    /// attack.
    VerifyProbe,
}

impl Technique {
    pub const ALL: [Technique; 13] = [
        Technique::Traceroute,
        Technique::DirectedBroadcast,
        Technique::IcmpError,
        Technique::TcpNull,
        Technique::TcpFin,
        Technique::TcpXmas,
        Technique::TcpMaimon,
        Technique::TinyFragment,
        Technique::ArpRequest,
        Technique::NeighbourAdvert,
        Technique::NeighbourSolicit,
        Technique::RouterMac,
        Technique::VerifyProbe,
    ];

    /// The `CLOISON_TECHNIQUE` value.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Traceroute => "traceroute",
            Technique::DirectedBroadcast => "directed_broadcast",
            Technique::IcmpError => "icmp_error",
            Technique::TcpNull => "tcp_null",
            Technique::TcpFin => "tcp_fin",
            Technique::TcpXmas => "tcp_xmas",
            Technique::TcpMaimon => "tcp_maimon",
            Technique::TinyFragment => "tiny_fragment",
            Technique::ArpRequest => "arp_request",
            Technique::NeighbourAdvert => "neighbour_advert",
            Technique::NeighbourSolicit => "neighbour_solicit",
            Technique::RouterMac => "router_mac",
            Technique::VerifyProbe => "verify_probe",
        }
    }

    pub fn parse(s: &str) -> Option<Technique> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// What it is, for a message.
    pub fn description(self) -> &'static str {
        match self {
            Technique::Traceroute => "TTL 1 probe (traceroute)",
            Technique::DirectedBroadcast => "directed broadcast",
            Technique::IcmpError => "ICMP error injection",
            Technique::TcpNull => "TCP NULL scan",
            Technique::TcpFin => "TCP FIN scan",
            Technique::TcpXmas => "TCP Xmas scan",
            Technique::TcpMaimon => "TCP Maimon scan",
            Technique::TinyFragment => {
                "first fragment without its transport header (the port hidden in a later one)"
            }
            Technique::ArpRequest => "ARP request",
            Technique::NeighbourAdvert => "neighbour advertisement",
            Technique::NeighbourSolicit => "neighbour solicitation",
            Technique::RouterMac => "the router's own MAC",
            Technique::VerifyProbe => "a probe of `cloison verify`, not an attack",
        }
    }
}

/// Whose frame an `isolation_breach` is (`CLOISON_ORIGIN`): a host of one segment seen on
/// another's wire with that segment's address is either the other segment leaking onto
/// this wire, or a host of this wire forging the address. What the router knows (its
/// neighbour tables, its own frames coming back) tells them apart when it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// The frame's MAC is one the router knows as a host of the wire it was seen on: that
    /// host forges the other segment's address.
    Forged,
    /// The router's own frames from the other segment's interface come back on this
    /// wire: a bridge, a loop or a leaking switch joins the two.
    Leaked,
    /// Nothing the router knows tells the two apart.
    Unknown,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Forged, Origin::Leaked, Origin::Unknown];

    /// The `CLOISON_ORIGIN` value.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Forged => "forged",
            Origin::Leaked => "leaked",
            Origin::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        Self::ALL.into_iter().find(|o| o.name() == s)
    }
}

/// The identity of a flow for folding repeats: two packets with the same key are the
/// same thing happening again. `Copy` and allocation-free so the hot path can build one
/// per suspect packet. Hashed as one packed run of bytes (`Hash` below).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub kind: EventKind,
    pub src_segment: Option<SegmentId>,
    pub dst: Option<Destination>,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub proto: Option<L4>,
    pub dst_port: Option<u16>,
    pub src_mac: Option<[u8; 6]>,
    pub vlan: Option<u16>,
    /// The inner tag of a double-tagged frame (the VLAN the attacker aims at).
    pub inner_vlan: Option<u16>,
    /// Kernel interface index the packet was seen on.
    pub ifindex: Option<u32>,
    pub technique: Option<Technique>,
    /// `isolation_breach`: whose frame it is, as far as the router can tell.
    pub origin: Option<Origin>,
}

impl FlowKey {
    pub fn new(kind: EventKind) -> FlowKey {
        FlowKey {
            kind,
            src_segment: None,
            dst: None,
            src_ip: None,
            dst_ip: None,
            proto: None,
            dst_port: None,
            src_mac: None,
            vlan: None,
            inner_vlan: None,
            ifindex: None,
            technique: None,
            origin: None,
        }
    }
}

/// The folder's maps hash a key several times per new flow, with std's SipHash, whose
/// random keys keep a flood of chosen frames from steering flows into collisions. Derived,
/// `Hash` feeds it field by field (an 8-byte discriminant per `Option`, a length before
/// each array); packed, 64 bytes in one write (docs/performance.md, the folder: hashing
/// was most of the daemon's time under a flood of new MACs). Each field takes a
/// fixed width, so equal keys pack equally (as `Hash` requires) and different keys
/// differently. Destructured, so a new field does not compile until it is packed.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let FlowKey {
            kind,
            src_segment,
            dst,
            src_ip,
            dst_ip,
            proto,
            dst_port,
            src_mac,
            vlan,
            inner_vlan,
            ifindex,
            technique,
            origin,
        } = *self;
        let mut p = Packed::default();
        p.put(&[kind as u8]);
        p.put(&src_segment.map_or([0, 0], |s| [1, s.0]));
        p.put(&match dst {
            None => [0, 0],
            Some(Destination::Segment(s)) => [1, s.0],
            Some(Destination::Router) => [2, 0],
            Some(Destination::Private) => [3, 0],
            Some(Destination::Internet) => [4, 0],
        });
        for ip in [src_ip, dst_ip] {
            p.put(&match ip {
                None => [0; 17],
                Some(IpAddr::V4(a)) => {
                    let mut b = [0; 17];
                    b[0] = 4;
                    b[1..5].copy_from_slice(&a.octets());
                    b
                }
                Some(IpAddr::V6(a)) => {
                    let mut b = [6; 17];
                    b[1..].copy_from_slice(&a.octets());
                    b
                }
            });
        }
        p.put(&match proto {
            None => [0, 0],
            Some(L4::Tcp) => [1, 0],
            Some(L4::Udp) => [2, 0],
            Some(L4::Icmp) => [3, 0],
            Some(L4::Icmpv6) => [4, 0],
            Some(L4::Other(n)) => [5, n],
        });
        for v in [dst_port, vlan, inner_vlan] {
            let [hi, lo] = v.unwrap_or(0).to_be_bytes();
            p.put(&[u8::from(v.is_some()), hi, lo]);
        }
        p.put(&[u8::from(src_mac.is_some())]);
        p.put(&src_mac.unwrap_or_default());
        p.put(&[u8::from(ifindex.is_some())]);
        p.put(&ifindex.unwrap_or(0).to_be_bytes());
        p.put(&[
            technique.map_or(0, |t| t as u8 + 1),
            origin.map_or(0, |o| o as u8 + 1),
        ]);
        state.write(p.bytes());
    }
}

/// A `FlowKey` packed for hashing.
struct Packed {
    buf: [u8; 72],
    len: usize,
}

impl Default for Packed {
    fn default() -> Self {
        Packed {
            buf: [0; 72],
            len: 0,
        }
    }
}

impl Packed {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(k: &FlowKey) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        k.hash(&mut h);
        h.finish()
    }

    #[test]
    fn each_field_of_a_flow_key_changes_its_hash() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let mut base = FlowKey::new(EventKind::CrossSegment);
        base.src_segment = Some(SegmentId(1));
        base.dst = Some(Destination::Segment(SegmentId(2)));
        base.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, 15)));
        base.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 5)));
        base.proto = Some(L4::Tcp);
        base.dst_port = Some(445);
        base.src_mac = Some([2, 0, 0, 0, 0, 9]);
        base.vlan = Some(20);
        base.inner_vlan = Some(10);
        base.ifindex = Some(3);
        base.technique = Some(Technique::TcpFin);
        base.origin = Some(Origin::Forged);
        let edits: [fn(&mut FlowKey); 22] = [
            |k| k.kind = EventKind::ArpSpoof,
            |k| k.src_segment = None,
            |k| k.src_segment = Some(SegmentId(2)),
            |k| k.dst = Some(Destination::Segment(SegmentId(3))),
            |k| k.dst = Some(Destination::Router),
            |k| k.dst = None,
            |k| k.src_ip = None,
            |k| k.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, 16))),
            |k| k.src_ip = Some(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1))),
            |k| k.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 6))),
            |k| k.proto = Some(L4::Udp),
            |k| k.proto = Some(L4::Other(6)),
            |k| k.dst_port = Some(446),
            |k| k.dst_port = None,
            |k| k.src_mac = Some([2, 0, 0, 0, 0, 8]),
            |k| k.vlan = Some(21),
            |k| k.inner_vlan = None,
            |k| k.ifindex = Some(4),
            |k| k.technique = Some(Technique::TcpXmas),
            |k| k.technique = None,
            |k| k.origin = Some(Origin::Leaked),
            |k| k.origin = None,
        ];
        let mut hashes = std::collections::BTreeSet::from([hash_of(&base)]);
        for (i, edit) in edits.iter().enumerate() {
            let mut k = base;
            edit(&mut k);
            assert_ne!(k, base, "edit {i}");
            assert!(
                hashes.insert(hash_of(&k)),
                "edit {i} left the hash as another key's"
            );
            assert_eq!(hash_of(&k), hash_of(&k.clone()));
        }
        // A port and a VLAN with the same value are different fields.
        let (mut a, mut b) = (
            FlowKey::new(EventKind::VlanHopping),
            FlowKey::new(EventKind::VlanHopping),
        );
        a.dst_port = Some(20);
        b.vlan = Some(20);
        assert_ne!(hash_of(&a), hash_of(&b));
    }

    #[test]
    fn message_ids_are_distinct_128_bit_hex() {
        let mut seen = std::collections::BTreeSet::new();
        for k in EventKind::ALL {
            let id = k.message_id();
            assert_eq!(id.len(), 32);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            assert!(seen.insert(id), "{k} shares its MESSAGE_ID");
            assert_eq!(EventKind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn techniques_and_origins_round_trip() {
        for t in Technique::ALL {
            assert_eq!(Technique::parse(t.name()), Some(t));
        }
        for o in Origin::ALL {
            assert_eq!(Origin::parse(o.name()), Some(o));
        }
    }
}
