//! The digest: journal entries in, the figures of a report out, one entry at a time so a
//! long period never holds the whole journal in memory. Every figure is a sum or a count
//! of what the entries say (`CLOISON_PACKETS` for packets): nothing is estimated, and
//! nothing the entries do not carry is added. What could grow with attacker-chosen
//! values (sources) or with a fight over the ruleset (changes) is bounded, and what is
//! left out is counted.

use std::collections::{BTreeMap, HashMap};

use super::journal::{Entry, EntryError};
use super::verify::VerifyRun;
use crate::alert::event::EventKind;
use crate::alert::{field, traffic_kind};
use crate::counter::{Pair, TO_ROUTER};

/// Distinct sources tracked; the packets of the others are added up as "other sources".
pub const MAX_SOURCES: usize = 10_000;
/// Changes (applied, rejected, drift) kept to be listed; the rest are counted.
pub const MAX_CHANGES: usize = 500;
/// Verify runs kept (the latest); the older are counted.
pub const MAX_VERIFY_RUNS: usize = 1000;

const HOUR_US: u64 = 3_600_000_000;

/// Entries, packets and span of one event kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub entries: u64,
    pub packets: u64,
    pub first: Option<u64>,
    pub last: Option<u64>,
}

impl Tally {
    fn add(&mut self, time: u64, packets: u64) {
        self.entries += 1;
        self.packets = self.packets.saturating_add(packets);
        self.first = Some(self.first.map_or(time, |f| f.min(time)));
        self.last = Some(self.last.map_or(time, |l| l.max(time)));
    }
}

/// Where alerted traffic came from and went: segment names, or `router`, `private`,
/// `internet`, `spoofed` for `to`; empty when the entry does not say.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub from: String,
    pub to: String,
    pub kind: EventKind,
}

/// A source of alerted traffic: its segment and its address (IP, else MAC); `address`
/// is empty when the entries did not name one (counter summaries over several flows).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    pub segment: String,
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTally {
    pub entries: u64,
    pub packets: u64,
    pub kinds: Vec<EventKind>,
}

/// The figures of one report period.
#[derive(Debug, Clone)]
pub struct Digest {
    router: String,
    /// Microseconds since the epoch, inclusive.
    pub since: u64,
    pub until: u64,
    /// Entries of traffic kinds, per kind.
    pub kinds: BTreeMap<EventKind, Tally>,
    pub routes: BTreeMap<Route, Tally>,
    pub sources: HashMap<Source, SourceTally>,
    /// Packets of sources past `MAX_SOURCES`.
    pub other_sources: SourceTally,
    /// Packets per hour (hours since the epoch) and kind.
    pub hourly: BTreeMap<u64, BTreeMap<EventKind, u64>>,
    /// `config_applied`, `config_rejected`, `ruleset_drift`, in time order.
    pub changes: Vec<Entry>,
    pub changes_left_out: u64,
    /// Per kind: `config_applied`, `config_rejected`, `ruleset_drift`.
    pub change_counts: BTreeMap<EventKind, u64>,
    /// The latest runs, in time order.
    pub verify: Vec<VerifyRun>,
    pub verify_left_out: u64,
    /// Entries about `cloison verify`'s own probes (`CLOISON_TECHNIQUE=verify_probe`):
    /// proof being made, kept out of the alerts' figures.
    pub verify_probes: Tally,
    /// Entries of cloison whose `CLOISON_EVENT` this version does not know.
    pub unknown_events: u64,
    /// Entries of other routers (a collector's journal holds several).
    pub other_routers: u64,
}

impl Digest {
    /// An empty digest for `router`'s entries between `since` and `until`.
    pub fn new(router: &str, since: u64, until: u64) -> Digest {
        Digest {
            router: router.to_owned(),
            since,
            until,
            kinds: BTreeMap::new(),
            routes: BTreeMap::new(),
            sources: HashMap::new(),
            other_sources: SourceTally::default(),
            hourly: BTreeMap::new(),
            changes: Vec::new(),
            changes_left_out: 0,
            change_counts: BTreeMap::new(),
            verify: Vec::new(),
            verify_left_out: 0,
            verify_probes: Tally::default(),
            unknown_events: 0,
            other_routers: 0,
        }
    }

    pub fn router(&self) -> &str {
        &self.router
    }

    /// Adds line `line` (1-based) of `journalctl -o json`; blank lines are skipped.
    pub fn add_line(&mut self, text: &str, line: usize) -> Result<(), EntryError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        self.add(Entry::parse(text, line)?);
        Ok(())
    }

    /// Adds one entry. Entries outside the period, of other routers, and cloison's log
    /// lines (no `CLOISON_EVENT`) are left out.
    pub fn add(&mut self, e: Entry) {
        if e.time < self.since || e.time > self.until {
            return;
        }
        let Some(event) = e.get(field::EVENT) else {
            return;
        };
        if e.get(field::ROUTER).is_some_and(|r| r != self.router) {
            self.other_routers += 1;
            return;
        }
        let Some(kind) = EventKind::parse(event) else {
            self.unknown_events += 1;
            return;
        };
        match kind {
            k if traffic_kind(k) && e.get(field::TECHNIQUE) == Some("verify_probe") => {
                let packets = e.number(field::PACKETS).unwrap_or(0);
                self.verify_probes.add(e.time, packets);
            }
            k if traffic_kind(k) => self.add_alert(k, &e),
            EventKind::VerifyPassed | EventKind::VerifyFailed => {
                if let Some(run) = VerifyRun::from_entry(&e) {
                    self.verify.push(run);
                    if self.verify.len() > MAX_VERIFY_RUNS {
                        // Entries come in time order: the oldest go.
                        self.verify.remove(0);
                        self.verify_left_out += 1;
                    }
                }
            }
            _ => {
                *self.change_counts.entry(kind).or_default() += 1;
                if self.changes.len() < MAX_CHANGES {
                    self.changes.push(e);
                } else {
                    self.changes_left_out += 1;
                }
            }
        }
    }

    fn add_alert(&mut self, kind: EventKind, e: &Entry) {
        let packets = e.number(field::PACKETS).unwrap_or(0);
        self.kinds.entry(kind).or_default().add(e.time, packets);
        *self
            .hourly
            .entry(e.time / HOUR_US)
            .or_default()
            .entry(kind)
            .or_default() += packets;

        let counter = e.get(field::COUNTER).and_then(Pair::parse);
        let from = e
            .get(field::SRC_SEGMENT)
            .or(counter.map(|p| p.from))
            .unwrap_or("");
        let to = e
            .get(field::DST_SEGMENT)
            .or(counter.map(|p| p.to))
            .or((kind == EventKind::RouterAccess).then_some(TO_ROUTER))
            .unwrap_or("");
        let route = Route {
            from: from.to_owned(),
            to: to.to_owned(),
            kind,
        };
        self.routes.entry(route).or_default().add(e.time, packets);

        let address = e.get(field::SRC_IP).or(e.get(field::SRC_MAC)).unwrap_or("");
        let source = Source {
            segment: from.to_owned(),
            address: address.to_owned(),
        };
        let tally = if self.sources.contains_key(&source) || self.sources.len() < MAX_SOURCES {
            self.sources.entry(source).or_default()
        } else {
            &mut self.other_sources
        };
        tally.entries += 1;
        tally.packets = tally.packets.saturating_add(packets);
        if !tally.kinds.contains(&kind) {
            tally.kinds.push(kind);
            tally.kinds.sort();
        }
    }

    /// Alert entries of the period, all traffic kinds.
    pub fn alert_entries(&self) -> u64 {
        self.kinds.values().map(|t| t.entries).sum()
    }

    /// Packets the ruleset blocked (`blocked` kinds).
    pub fn blocked_packets(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|(k, _)| crate::alert::verdict(**k) == Some("blocked"))
            .map(|(_, t)| t.packets)
            .sum()
    }

    /// The sources, most packets first, at most `n`.
    pub fn top_sources(&self, n: usize) -> Vec<(&Source, &SourceTally)> {
        let mut all: Vec<_> = self.sources.iter().collect();
        all.sort_by(|a, b| {
            (
                std::cmp::Reverse(a.1.packets),
                std::cmp::Reverse(a.1.entries),
                a.0,
            )
                .cmp(&(
                    std::cmp::Reverse(b.1.packets),
                    std::cmp::Reverse(b.1.entries),
                    b.0,
                ))
        });
        all.truncate(n);
        all
    }

    /// The configuration hash in force at the end of the period, as the last
    /// `config_applied` of the period says.
    pub fn applied_hash(&self) -> Option<&str> {
        self.changes
            .iter()
            .rev()
            .filter(|e| e.kind() == Some(EventKind::ConfigApplied))
            .find_map(|e| e.get(field::NEW_HASH))
    }

    pub fn latest_verify(&self) -> Option<&VerifyRun> {
        self.verify.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(time: u64, kind: &str, fields: &[(&str, &str)]) -> Entry {
        let mut f = vec![
            (field::EVENT.to_owned(), kind.to_owned()),
            (field::ROUTER.to_owned(), "r".to_owned()),
        ];
        f.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Entry::new(time, f)
    }

    #[test]
    fn sums_packets_per_kind_route_source_and_hour() {
        let mut d = Digest::new("r", 0, u64::MAX);
        let h = HOUR_US;
        d.add(alert(
            h,
            "cross_segment",
            &[
                (field::SRC_SEGMENT, "kiosk"),
                (field::DST_SEGMENT, "mairie"),
                (field::SRC_IP, "192.168.20.15"),
                (field::PACKETS, "1"),
            ],
        ));
        d.add(alert(
            h + 10,
            "cross_segment",
            &[
                (field::COUNTER, "kiosk/mairie"),
                (field::PACKETS, "36"),
                (field::SUMMARY, "1"),
            ],
        ));
        d.add(alert(
            3 * h,
            "router_access",
            &[
                (field::SRC_SEGMENT, "kiosk"),
                (field::SRC_IP, "192.168.20.15"),
                (field::PACKETS, "2"),
            ],
        ));
        d.add(alert(
            3 * h,
            "arp_spoof",
            &[
                (field::SRC_SEGMENT, "kiosk"),
                (field::SRC_MAC, "02:00:00:00:00:01"),
                (field::PACKETS, "3"),
            ],
        ));
        // Not counted: another router, a log line, outside the period, an unknown kind.
        d.add(Entry::new(
            h,
            [
                (field::EVENT, "cross_segment"),
                (field::ROUTER, "other"),
                (field::PACKETS, "99"),
            ],
        ));
        d.add(Entry::new(h, [("MESSAGE", "starting")]));
        d.add(alert(3 * h, "from_the_future", &[]));
        let mut late = Digest::new("r", 0, h - 1);
        late.add(alert(h, "cross_segment", &[(field::PACKETS, "5")]));
        assert!(late.kinds.is_empty());

        let cross = d.kinds[&EventKind::CrossSegment];
        assert_eq!((cross.entries, cross.packets), (2, 37));
        assert_eq!(
            d.blocked_packets(),
            39,
            "arp_spoof is observed, not blocked"
        );
        assert_eq!(d.alert_entries(), 4);
        assert_eq!((d.other_routers, d.unknown_events), (1, 1));
        let route = Route {
            from: "kiosk".into(),
            to: "mairie".into(),
            kind: EventKind::CrossSegment,
        };
        assert_eq!(d.routes[&route].packets, 37, "the counter names the pair");
        let router = Route {
            from: "kiosk".into(),
            to: "router".into(),
            kind: EventKind::RouterAccess,
        };
        assert_eq!(d.routes[&router].packets, 2);
        let top = d.top_sources(10);
        assert_eq!(
            top[0].0.address, "",
            "the summary's 36 packets name no address"
        );
        assert_eq!(top[0].1.packets, 36);
        assert_eq!(top[1].0.address, "192.168.20.15");
        assert_eq!(top[1].1.packets, 3);
        assert_eq!(
            top[1].1.kinds,
            [EventKind::CrossSegment, EventKind::RouterAccess]
        );
        assert_eq!(d.hourly[&1][&EventKind::CrossSegment], 37);
        assert_eq!(d.hourly[&3][&EventKind::ArpSpoof], 3);
    }

    #[test]
    fn sources_and_changes_are_bounded_and_counted() {
        let mut d = Digest::new("r", 0, u64::MAX);
        for i in 0..(MAX_SOURCES + 5) {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            d.add(alert(
                1,
                "cross_segment",
                &[(field::SRC_IP, &ip), (field::PACKETS, "2")],
            ));
        }
        assert_eq!(d.sources.len(), MAX_SOURCES);
        assert_eq!(d.other_sources.packets, 10);
        assert_eq!(
            d.kinds[&EventKind::CrossSegment].packets,
            2 * (MAX_SOURCES as u64 + 5)
        );
        for _ in 0..(MAX_CHANGES + 3) {
            d.add(alert(2, "ruleset_drift", &[]));
        }
        assert_eq!(d.changes.len(), MAX_CHANGES);
        assert_eq!(d.changes_left_out, 3);
        assert_eq!(
            d.change_counts[&EventKind::RulesetDrift],
            MAX_CHANGES as u64 + 3
        );
    }

    #[test]
    fn the_applied_hash_is_the_last_one() {
        let mut d = Digest::new("r", 0, u64::MAX);
        d.add(alert(1, "config_applied", &[(field::NEW_HASH, "aa")]));
        d.add(alert(2, "config_rejected", &[]));
        d.add(alert(3, "config_applied", &[(field::NEW_HASH, "bb")]));
        assert_eq!(d.applied_hash(), Some("bb"));
        assert!(d.latest_verify().is_none());
    }
}
