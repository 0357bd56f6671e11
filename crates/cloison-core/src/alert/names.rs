//! The lookup that turns the numbers in a `FlowKey` (segment indexes, interface indexes)
//! into the names people and scripts know, and counter names into event kinds. Built once
//! from the validated `Config` plus the kernel's ifindex -> name map; no I/O here.

use std::collections::HashMap;

use super::event::{Destination, EventKind, FlowKey, SegmentId};
use crate::config::Config;
use crate::counter::{Pair, TO_INTERNET, TO_PRIVATE, TO_ROUTER, TO_SPOOFED, TRUNK_UNTAGGED};

#[derive(Debug, Clone, PartialEq, Eq)]
struct SegmentNames {
    name: String,
    interface: String,
}

/// Names for alerts: the router, the segments (indexed by `SegmentId`), the uplinks and
/// the interfaces (by kernel ifindex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    router: String,
    segments: Vec<SegmentNames>,
    uplinks: Vec<String>,
    interfaces: HashMap<u32, String>,
}

/// What a named counter of the ruleset counts, for alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterClass {
    /// Drops that raise alerts of this kind.
    Alert(EventKind),
    /// Counted, reported by `cloison status`, never alerted (broadcasts, uplink noise,
    /// names cloison does not know).
    Noise,
}

impl Names {
    /// `hostname` is used when the configuration does not name the router.
    pub fn from_config(config: &Config, hostname: &str) -> Names {
        Names {
            router: config
                .router
                .name
                .clone()
                .unwrap_or_else(|| hostname.to_owned()),
            segments: config
                .segments
                .iter()
                .map(|s| SegmentNames {
                    name: s.name.to_string(),
                    interface: s.interface.to_string(),
                })
                .collect(),
            uplinks: config.uplinks.iter().map(|u| u.name.to_string()).collect(),
            interfaces: HashMap::new(),
        }
    }

    /// Adds the kernel's interface indexes (from rtnetlink or `if_nametoindex`).
    pub fn with_interfaces(mut self, map: impl IntoIterator<Item = (u32, String)>) -> Names {
        self.interfaces.extend(map);
        self
    }

    /// Records one interface index (links can be re-created with a new index).
    pub fn set_interface(&mut self, ifindex: u32, name: impl Into<String>) {
        self.interfaces.insert(ifindex, name.into());
    }

    pub fn router(&self) -> &str {
        &self.router
    }

    pub fn segment(&self, id: SegmentId) -> Option<&str> {
        self.segments
            .get(usize::from(id.0))
            .map(|s| s.name.as_str())
    }

    pub fn segment_id(&self, name: &str) -> Option<SegmentId> {
        let i = self.segments.iter().position(|s| s.name == name)?;
        u8::try_from(i).ok().map(SegmentId)
    }

    /// The interface name for a kernel ifindex.
    pub fn interface(&self, ifindex: u32) -> Option<&str> {
        self.interfaces.get(&ifindex).map(String::as_str)
    }

    /// The segment living on an interface, by name.
    pub fn segment_on(&self, interface: &str) -> Option<&str> {
        self.segments
            .iter()
            .find(|s| s.interface == interface)
            .map(|s| s.name.as_str())
    }

    /// The `to` part of a counter name for a destination.
    pub fn destination(&self, d: Destination) -> Option<&str> {
        match d {
            Destination::Segment(id) => self.segment(id),
            Destination::Router => Some(TO_ROUTER),
            Destination::Private => Some(TO_PRIVATE),
            Destination::Internet => Some(TO_INTERNET),
        }
    }

    /// The ruleset counter (`<from>/<to>`) that counts the packets of a counter-backed
    /// flow, or `None` for other kinds or when the key lacks what names it. A
    /// `router_access` without a source segment is what arrived untagged on the trunk.
    pub fn counter_of(&self, key: &FlowKey) -> Option<String> {
        if key.kind == EventKind::RouterAccess && key.src_segment.is_none() {
            return Some(TRUNK_UNTAGGED.to_owned());
        }
        let from = self.segment(key.src_segment?)?;
        let to = match key.kind {
            EventKind::SpoofedSource => TO_SPOOFED,
            EventKind::RouterAccess => TO_ROUTER,
            EventKind::CrossSegment => match key.dst? {
                Destination::Router => return None,
                d => self.destination(d)?,
            },
            _ => return None,
        };
        Some(Pair::new(from, to).name())
    }

    /// What a ruleset counter named `<from>/<to>` counts.
    pub fn classify_counter(&self, name: &str) -> CounterClass {
        // `untagged` is a reserved name: no pair of segments is called this.
        if name == TRUNK_UNTAGGED {
            return CounterClass::Alert(EventKind::RouterAccess);
        }
        let Some(Pair { from, to }) = Pair::parse(name) else {
            return CounterClass::Noise;
        };
        if self.segment_id(from).is_none() {
            // Uplink counters (unsolicited traffic from outside) and unknown names.
            return CounterClass::Noise;
        }
        match to {
            TO_ROUTER => CounterClass::Alert(EventKind::RouterAccess),
            TO_SPOOFED => CounterClass::Alert(EventKind::SpoofedSource),
            TO_PRIVATE => CounterClass::Alert(EventKind::CrossSegment),
            // Internet-bound drops (no uplink, or another one) are ordinary noise, not
            // attempts to cross: counted, not sampled by the ruleset, not alerted.
            TO_INTERNET => CounterClass::Noise,
            other if other != from && self.segment_id(other).is_some() => {
                CounterClass::Alert(EventKind::CrossSegment)
            }
            _ => CounterClass::Noise,
        }
    }

    pub fn is_uplink(&self, name: &str) -> bool {
        self.uplinks.iter().any(|u| u == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    pub(crate) fn lab() -> Names {
        let c = config::parse(include_str!("../../../../config/lab.toml"), "lab.toml").unwrap();
        Names::from_config(&c, "unused").with_interfaces([(7, "seg-kiosk".to_owned())])
    }

    #[test]
    fn segments_by_index_follow_config_order() {
        let n = lab();
        assert_eq!(n.router(), "mairie-lab");
        // Config::segments is sorted by name.
        assert_eq!(n.segment(SegmentId(0)), Some("kiosk"));
        assert_eq!(n.segment(SegmentId(1)), Some("mairie"));
        assert_eq!(n.segment(SegmentId(2)), Some("poste"));
        assert_eq!(n.segment(SegmentId(3)), None);
        assert_eq!(n.interface(7), Some("seg-kiosk"));
        assert_eq!(n.segment_on("seg-kiosk"), Some("kiosk"));
        assert!(n.is_uplink("laposte"));
    }

    #[test]
    fn counters_map_to_kinds() {
        let n = lab();
        use CounterClass::*;
        assert_eq!(
            n.classify_counter("kiosk/mairie"),
            Alert(EventKind::CrossSegment)
        );
        assert_eq!(
            n.classify_counter("kiosk/private"),
            Alert(EventKind::CrossSegment)
        );
        assert_eq!(n.classify_counter("kiosk/internet"), Noise);
        assert_eq!(
            n.classify_counter("kiosk/router"),
            Alert(EventKind::RouterAccess)
        );
        assert_eq!(
            n.classify_counter("poste/spoofed"),
            Alert(EventKind::SpoofedSource)
        );
        assert_eq!(n.classify_counter("kiosk/broadcast"), Noise);
        assert_eq!(n.classify_counter("kiosk/unrouted"), Noise);
        assert_eq!(n.classify_counter("isp/mairie"), Noise);
        assert_eq!(n.classify_counter("kiosk/kiosk"), Noise);
        assert_eq!(n.classify_counter("nonsense"), Noise);
        assert_eq!(
            n.classify_counter("trunk/untagged"),
            Alert(EventKind::RouterAccess)
        );
        assert_eq!(n.classify_counter("unmanaged"), Noise);
        assert_eq!(n.classify_counter("ghost/mairie"), Noise);
    }

    #[test]
    fn flows_name_their_counter() {
        let n = lab();
        let mut k = FlowKey::new(EventKind::CrossSegment);
        k.src_segment = Some(SegmentId(0));
        k.dst = Some(Destination::Segment(SegmentId(1)));
        assert_eq!(n.counter_of(&k).as_deref(), Some("kiosk/mairie"));
        k.dst = Some(Destination::Private);
        assert_eq!(n.counter_of(&k).as_deref(), Some("kiosk/private"));
        k.kind = EventKind::RouterAccess;
        assert_eq!(n.counter_of(&k).as_deref(), Some("kiosk/router"));
        k.kind = EventKind::SpoofedSource;
        assert_eq!(n.counter_of(&k).as_deref(), Some("kiosk/spoofed"));
        k.kind = EventKind::ArpSpoof;
        assert_eq!(n.counter_of(&k), None);
        k.kind = EventKind::CrossSegment;
        k.src_segment = None;
        assert_eq!(n.counter_of(&k), None);
        k.kind = EventKind::RouterAccess;
        assert_eq!(n.counter_of(&k).as_deref(), Some("trunk/untagged"));
    }
}
