//! What inspection needs to know about the router, built once from the validated
//! `Config` and the runtime facts of its links (MAC address and index of each interface,
//! which the capture edge reads from the kernel and passes in as data). Building may
//! allocate; the lookups `classify` makes on it do not.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::alert::event::SegmentId;
use crate::config::{Attachment, Config};

/// `SegmentId` is one byte. A validated configuration holds far fewer segments
/// (`config::MAX_SEGMENTS`); this guards a `Config` whose fields were changed afterwards.
const SEGMENT_IDS: usize = 256;

/// A network interface of the router as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// Its IPv6 addresses (the link-local one is the kernel's, not the configuration's):
    /// a neighbour advertisement claiming one of them is a spoof.
    pub ipv6: Vec<Ipv6Addr>,
}

/// Why a `Topology` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error(
        "segment `{segment}`: interface `{interface}` is not among the router's links; create it (or fix `segments.{segment}`) before starting inspection"
    )]
    MissingSegmentLink { segment: String, interface: String },
    #[error(
        "trunk `{interface}` is not among the router's links; create it (or fix `trunk.interface`) before starting inspection"
    )]
    MissingTrunkLink { interface: String },
    #[error(
        "{count} segments: inspection numbers segments with one byte, so it handles at most 256"
    )]
    TooManySegments { count: usize },
}

/// Where a frame was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CapturePoint {
    /// The segment's own interface: its dedicated port, or its VLAN sub-interface.
    Segment(SegmentId),
    /// The trunk carrying the segments' VLANs, before the kernel splits it.
    Trunk,
}

/// Everything `classify` knows about one captured frame besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct CaptureContext<'t> {
    pub topology: &'t Topology,
    pub point: CapturePoint,
    /// Kernel index of the interface the frame was captured on.
    pub ifindex: u32,
    /// The outer tag the kernel moved from the frame into metadata (`tp_vlan_tci` when
    /// `TP_STATUS_VLAN_VALID` is set). Only the VLAN ID bits are used.
    pub aux_vlan: Option<u16>,
    /// That tag's TPID (`tp_vlan_tpid` when `TP_STATUS_VLAN_TPID_VALID` is set); `None`
    /// with `aux_vlan` set is read as 802.1Q (0x8100).
    pub aux_tpid: Option<u16>,
}

impl CaptureContext<'_> {
    /// The same capture point for a frame with these packet metadata.
    pub fn with_aux(self, aux_vlan: Option<u16>, aux_tpid: Option<u16>) -> Self {
        CaptureContext {
            aux_vlan,
            aux_tpid,
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net4 {
    pub network: u32,
    pub mask: u32,
}

impl Net4 {
    pub fn contains(self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask == self.network
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net6 {
    pub network: u128,
    pub mask: u128,
}

impl Net6 {
    pub fn contains(self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask == self.network
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentView {
    pub name: String,
    pub ifindex: u32,
    /// The router's MAC on the segment's interface.
    pub mac: [u8; 6],
    /// `Some` for a VLAN sub-interface of the trunk, `None` for a dedicated port.
    pub vlan: Option<u16>,
    pub net4: Net4,
    pub net6: Option<Net6>,
}

/// One VLAN ID per bit: membership costs one load whatever the number of VLANs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VlanSet([u64; 64]);

impl VlanSet {
    fn insert(&mut self, vid: u16) {
        let vid = usize::from(vid & 0x0fff);
        if let Some(w) = self.0.get_mut(vid / 64) {
            *w |= 1 << (vid % 64);
        }
    }

    fn contains(&self, vid: u16) -> bool {
        let vid = usize::from(vid & 0x0fff);
        self.0
            .get(vid / 64)
            .is_some_and(|w| w & (1 << (vid % 64)) != 0)
    }
}

/// The router as inspection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Indexed by `SegmentId` (same order as `Config::segments`).
    segments: Vec<SegmentView>,
    trunk_ifindex: Option<u32>,
    /// Every known MAC of the router, with the segment it belongs to (`None`: the trunk or
    /// an uplink). One entry per distinct MAC, first owner wins (VLAN sub-interfaces
    /// usually share the trunk's MAC).
    router_macs: Vec<([u8; 6], Option<SegmentId>)>,
    /// The router's IPv4 addresses (segments and statically addressed uplinks).
    router_v4: Vec<(Ipv4Addr, Option<SegmentId>)>,
    /// The router's IPv6 addresses: the segments' and uplinks' configured ones, and every
    /// address of the links (link-local ones included).
    router_v6: Vec<(Ipv6Addr, Option<SegmentId>)>,
    /// Sorted, deduplicated.
    vlans: Vec<u16>,
    vlan_set: VlanSet,
}

impl Topology {
    /// Builds the view from the configuration and the router's links. Every segment
    /// interface (and the trunk, if any) must be among `links`; uplinks are optional
    /// (their MACs, when known, also count as the router's).
    pub fn new(config: &Config, links: &[Link]) -> Result<Topology, TopologyError> {
        if config.segments.len() > SEGMENT_IDS {
            return Err(TopologyError::TooManySegments {
                count: config.segments.len(),
            });
        }
        let link = |name: &str| links.iter().find(|l| l.name == name);
        let mut segments = Vec::with_capacity(config.segments.len());
        let mut router_macs: Vec<([u8; 6], Option<SegmentId>)> = Vec::new();
        let mut add_mac = |mac: [u8; 6], owner: Option<SegmentId>| {
            if !router_macs.iter().any(|(m, _)| *m == mac) {
                router_macs.push((mac, owner));
            }
        };
        let mut router_v4 = Vec::new();
        let mut router_v6: Vec<(Ipv6Addr, Option<SegmentId>)> = Vec::new();
        let mut add_v6 = |a: Ipv6Addr, owner: Option<SegmentId>| {
            if !router_v6.iter().any(|(r, _)| *r == a) {
                router_v6.push((a, owner));
            }
        };
        let mut vlans = Vec::new();
        let mut vlan_set = VlanSet([0; 64]);
        for (i, s) in config.segments.iter().enumerate() {
            let id = SegmentId::at(i);
            let l =
                link(s.interface.as_str()).ok_or_else(|| TopologyError::MissingSegmentLink {
                    segment: s.name.to_string(),
                    interface: s.interface.to_string(),
                })?;
            add_mac(l.mac, Some(id));
            router_v4.push((s.address.addr(), Some(id)));
            if let Some(a6) = s.address6 {
                add_v6(a6.addr(), Some(id));
            }
            for a in &l.ipv6 {
                add_v6(*a, Some(id));
            }
            let vlan = match &s.attachment {
                Attachment::Vlan { id, .. } => Some(id.get()),
                Attachment::Port => None,
            };
            if let Some(v) = vlan {
                vlans.push(v);
                vlan_set.insert(v);
            }
            let net4 = s.address.subnet();
            segments.push(SegmentView {
                name: s.name.to_string(),
                ifindex: l.index,
                mac: l.mac,
                vlan,
                net4: Net4 {
                    network: u32::from(net4.network()),
                    mask: u32::from(net4.netmask()),
                },
                net6: s.address6.map(|a| {
                    let n = a.subnet();
                    Net6 {
                        network: u128::from(n.network()),
                        mask: u128::from(n.netmask()),
                    }
                }),
            });
        }
        let trunk_ifindex = match &config.trunk {
            Some(t) => {
                let l = link(t.as_str()).ok_or_else(|| TopologyError::MissingTrunkLink {
                    interface: t.to_string(),
                })?;
                add_mac(l.mac, None);
                for a in &l.ipv6 {
                    add_v6(*a, None);
                }
                Some(l.index)
            }
            None => None,
        };
        for u in &config.uplinks {
            if let Some(l) = link(u.interface.as_str()) {
                add_mac(l.mac, None);
                for a in &l.ipv6 {
                    add_v6(*a, None);
                }
            }
            if let Some(a) = u.address {
                router_v4.push((a.addr(), None));
            }
            if let Some(a) = u.address6 {
                add_v6(a.addr(), None);
            }
        }
        vlans.sort_unstable();
        vlans.dedup();
        Ok(Topology {
            segments,
            trunk_ifindex,
            router_macs,
            router_v4,
            router_v6,
            vlans,
            vlan_set,
        })
    }

    /// The capture context of interface `ifindex`, or `None` if inspection does not
    /// watch it.
    pub fn context(&self, ifindex: u32) -> Option<CaptureContext<'_>> {
        let point = if self.trunk_ifindex == Some(ifindex) {
            CapturePoint::Trunk
        } else {
            let i = self.segments.iter().position(|s| s.ifindex == ifindex)?;
            CapturePoint::Segment(SegmentId::at(i))
        };
        Some(CaptureContext {
            topology: self,
            point,
            ifindex,
            aux_vlan: None,
            aux_tpid: None,
        })
    }

    /// Where inspection captures, with the interface index of each point: every segment
    /// interface, then the trunk if there is one.
    pub fn capture_points(&self) -> impl Iterator<Item = (CapturePoint, u32)> + '_ {
        let segs = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| (CapturePoint::Segment(SegmentId::at(i)), s.ifindex));
        segs.chain(self.trunk_ifindex.map(|i| (CapturePoint::Trunk, i)))
    }

    pub fn segment_name(&self, id: SegmentId) -> Option<&str> {
        self.segment(id).map(|s| s.name.as_str())
    }

    pub(crate) fn segment(&self, id: SegmentId) -> Option<&SegmentView> {
        self.segments.get(usize::from(id.0))
    }

    pub fn segments(&self) -> impl Iterator<Item = (SegmentId, &SegmentView)> {
        self.segments
            .iter()
            .enumerate()
            .map(|(i, s)| (SegmentId::at(i), s))
    }

    /// `Some(owner)` if `mac` is one of the router's.
    pub(crate) fn router_mac_owner(&self, mac: [u8; 6]) -> Option<Option<SegmentId>> {
        self.router_macs
            .iter()
            .find(|(m, _)| *m == mac)
            .map(|(_, owner)| *owner)
    }

    /// The router's MACs other than `own`.
    pub(crate) fn other_router_macs(&self, own: [u8; 6]) -> impl Iterator<Item = [u8; 6]> + '_ {
        self.router_macs
            .iter()
            .map(|(m, _)| *m)
            .filter(move |m| *m != own)
    }

    /// `Some(owner)` if `a` is one of the router's IPv4 addresses.
    pub(crate) fn router_v4_owner(&self, a: Ipv4Addr) -> Option<Option<SegmentId>> {
        self.router_v4
            .iter()
            .find(|(r, _)| *r == a)
            .map(|(_, owner)| *owner)
    }

    /// `Some(owner)` if `a` is one of the router's IPv6 addresses.
    pub(crate) fn router_v6_owner(&self, a: Ipv6Addr) -> Option<Option<SegmentId>> {
        self.router_v6
            .iter()
            .find(|(r, _)| *r == a)
            .map(|(_, owner)| *owner)
    }

    /// The router's IPv4 addresses.
    pub(crate) fn router_v4(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.router_v4.iter().map(|(a, _)| *a)
    }

    /// The segment other than `here` whose subnet holds `a`.
    pub(crate) fn foreign_segment_v4(&self, a: Ipv4Addr, here: SegmentId) -> Option<SegmentId> {
        self.segments()
            .find(|(id, s)| *id != here && s.net4.contains(a))
            .map(|(id, _)| id)
    }

    /// The segment other than `here` whose IPv6 prefix holds `a`.
    pub(crate) fn foreign_segment_v6(&self, a: Ipv6Addr, here: SegmentId) -> Option<SegmentId> {
        self.segments()
            .find(|(id, s)| *id != here && s.net6.is_some_and(|n| n.contains(a)))
            .map(|(id, _)| id)
    }

    pub(crate) fn has_trunk(&self) -> bool {
        self.trunk_ifindex.is_some()
    }

    pub(crate) fn vlan_configured(&self, vid: u16) -> bool {
        self.vlan_set.contains(vid)
    }

    /// The segment on VLAN `vid` of the trunk (a linear scan: called for findings only).
    pub(crate) fn segment_of_vlan(&self, vid: u16) -> Option<SegmentId> {
        self.segments
            .iter()
            .position(|s| s.vlan == Some(vid))
            .map(SegmentId::at)
    }

    /// The configured VLAN IDs, sorted.
    pub(crate) fn vlans(&self) -> &[u16] {
        &self.vlans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit as fixtures;

    #[test]
    fn trunk_topology_maps_points_and_vlans() {
        let t = fixtures::trunk_topology();
        let points: Vec<_> = t.capture_points().collect();
        assert_eq!(
            points,
            [
                (
                    CapturePoint::Segment(SegmentId(0)),
                    fixtures::IFINDEX_LAN0_20
                ),
                (
                    CapturePoint::Segment(SegmentId(1)),
                    fixtures::IFINDEX_LAN0_10
                ),
                (
                    CapturePoint::Segment(SegmentId(2)),
                    fixtures::IFINDEX_LAN0_30
                ),
                (CapturePoint::Trunk, fixtures::IFINDEX_LAN0),
            ]
        );
        assert_eq!(t.vlans(), [10, 20, 30]);
        assert!(t.vlan_configured(20));
        assert!(!t.vlan_configured(21));
        assert!(!t.vlan_configured(0));
        assert_eq!(t.segment_name(SegmentId(0)), Some("kiosk"));
        // Sub-interfaces share the trunk's MAC: one entry, owned by the first segment.
        assert_eq!(
            t.router_mac_owner(fixtures::ROUTER_LAN0),
            Some(Some(SegmentId(0)))
        );
        assert_eq!(t.other_router_macs(fixtures::ROUTER_LAN0).count(), 2);
        assert!(t.context(9999).is_none());
        let ctx = t.context(fixtures::IFINDEX_LAN0).unwrap();
        assert_eq!(ctx.point, CapturePoint::Trunk);
    }

    #[test]
    fn lookups_by_subnet_and_address() {
        let t = fixtures::lab_topology();
        let kiosk = SegmentId(0);
        let mairie = SegmentId(1);
        assert_eq!(
            t.foreign_segment_v4(Ipv4Addr::new(192, 168, 10, 7), kiosk),
            Some(mairie)
        );
        assert_eq!(
            t.foreign_segment_v4(Ipv4Addr::new(192, 168, 20, 7), kiosk),
            None
        );
        assert_eq!(t.foreign_segment_v4(Ipv4Addr::new(8, 8, 8, 8), kiosk), None);
        assert_eq!(
            t.foreign_segment_v6("fd00:10::99".parse().unwrap(), kiosk),
            Some(mairie)
        );
        assert_eq!(
            t.foreign_segment_v6("fd00:20::99".parse().unwrap(), kiosk),
            None
        );
        assert_eq!(
            t.router_v4_owner(Ipv4Addr::new(192, 168, 10, 1)),
            Some(Some(mairie))
        );
        assert_eq!(t.router_v4_owner(Ipv4Addr::new(10, 30, 0, 2)), Some(None));
        assert_eq!(t.router_v4_owner(Ipv4Addr::new(192, 168, 10, 2)), None);
        assert_eq!(t.router_mac_owner(fixtures::ROUTER_WAN0), Some(None));
    }

    #[test]
    fn missing_links_are_refused() {
        let c = fixtures::lab_config();
        let links: Vec<Link> = fixtures::lab_links()
            .into_iter()
            .filter(|l| l.name != "seg-kiosk")
            .collect();
        assert_eq!(
            Topology::new(&c, &links),
            Err(TopologyError::MissingSegmentLink {
                segment: "kiosk".into(),
                interface: "seg-kiosk".into()
            })
        );
        let c = fixtures::trunk_config();
        let links: Vec<Link> = fixtures::trunk_links()
            .into_iter()
            .filter(|l| l.name != "lan0")
            .collect();
        assert_eq!(
            Topology::new(&c, &links),
            Err(TopologyError::MissingTrunkLink {
                interface: "lan0".into()
            })
        );
    }
}
