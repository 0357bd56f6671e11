//! Whose frame an isolation breach is. A frame on the kiosk's wire with a mairie source
//! address is either the mairie leaking onto that wire (a bridge, a loop, a leaking
//! switch) or a kiosk host forging the address: the frame alone fits both. What the
//! router already knows tells them apart, sometimes:
//!
//! - its neighbour tables (read from the kernel by the capture edge): a MAC the router
//!   resolved an address of the kiosk to is a kiosk host's, so that host forges;
//! - its own frames coming back: the router's mairie-side MAC received on the kiosk's
//!   wire (`Reason::ForeignRouterMac`) shows that something joins the two wires.
//!
//! Anything else: `Origin::Unknown`, said as such in the alert. A mairie host's MAC seen
//! on the kiosk's wire is no proof of a leak (a kiosk host can copy a MAC it has seen);
//! it stays unknown unless the router's own frames show the join.
//!
//! Pure: the edge passes the neighbour entries and the time in.

use super::finding::{Finding, Reason};
use super::topology::CapturePoint;
use crate::alert::event::{EventKind, Origin, SegmentId};

/// How long a sighting of the router's own frames on a foreign wire counts as evidence
/// that the two wires are joined.
pub const JOIN_EVIDENCE_US: u64 = 10 * 60 * 1_000_000;

/// What attribution remembers: the router's neighbours and the recent joins.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    /// (interface index, MAC) of every neighbour entry with a link-layer address.
    neighbours: Vec<(u32, [u8; 6])>,
    /// (capture interface, segment whose router MAC came in there, when).
    joins: Vec<(u32, Option<SegmentId>, u64)>,
}

impl Attribution {
    /// Replaces the neighbour entries: `(interface index, MAC)`, the router's resolved
    /// neighbours (reachable, stale, permanent...; never incomplete or failed ones).
    pub fn set_neighbours(&mut self, entries: impl IntoIterator<Item = (u32, [u8; 6])>) {
        self.neighbours.clear();
        self.neighbours.extend(entries);
        self.neighbours.sort_unstable();
        self.neighbours.dedup();
    }

    /// Takes note of a finding that is itself evidence (the router's MAC of another
    /// interface received here). `now_us`: microseconds, any fixed origin.
    pub fn note(&mut self, f: &Finding, now_us: u64) {
        if f.reason != Reason::ForeignRouterMac {
            return;
        }
        self.joins
            .retain(|(_, _, at)| now_us.saturating_sub(*at) < JOIN_EVIDENCE_US);
        match self
            .joins
            .iter_mut()
            .find(|(i, s, _)| *i == f.ifindex && *s == f.other_segment)
        {
            Some(j) => j.2 = now_us,
            None => self.joins.push((f.ifindex, f.other_segment, now_us)),
        }
    }

    /// Whether `f` asks the neighbour tables: an isolation breach by a foreign source
    /// address (what `origin` attributes).
    pub fn wants(f: &Finding) -> bool {
        f.kind == EventKind::IsolationBreach && f.reason == Reason::ForeignSubnet
    }

    /// Whose frame `f` is, for an isolation breach by a foreign source address; `None`
    /// for any other finding.
    pub fn origin(&self, f: &Finding, now_us: u64) -> Option<Origin> {
        if !Self::wants(f) || !matches!(f.point, CapturePoint::Segment(_)) {
            return None;
        }
        if self
            .neighbours
            .binary_search(&(f.ifindex, f.src_mac))
            .is_ok()
        {
            return Some(Origin::Forged);
        }
        let joined = self.joins.iter().any(|(i, s, at)| {
            *i == f.ifindex
                && *s == f.other_segment
                && now_us.saturating_sub(*at) < JOIN_EVIDENCE_US
        });
        Some(if joined {
            Origin::Leaked
        } else {
            Origin::Unknown
        })
    }
}
