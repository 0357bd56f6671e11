//! The folder: turns what the inspection loop sees (flow observations) and what the
//! ruleset counts (named counters) into journal entries, with exact counts and a bounded
//! volume. Pure: no I/O, no clock (the caller passes `now`), no allocation per repeated
//! packet of a known flow.
//!
//! The bound is fair. First alerts are shared out by *class* (event kind and source
//! segment), so that one segment's flood cannot spend another's alerts, and within a
//! class new *targets* (the flow without who sent it: destination, protocol, port...)
//! come before new sources of a target already alerted, so that a flood from random
//! sources cannot hide a real attempt on a new port (`Firsts`):
//! - at most `first_alerts_per_minute` in any window, whatever the classes;
//! - at most a quarter of that per class, and half of a class's share for new sources of
//!   known targets;
//! - an eighth is kept for classes that have had no first alert in the window: a class
//!   coming out of silence gets its first alert while the others flood.
//!
//! Summaries name what they fold: the top destinations and the number of distinct
//! sources.
//!
//! Counting rule: for each event kind, the sum of `CLOISON_PACKETS` over every entry
//! written equals what was counted (observations for layer-2 kinds, counter increases
//! for counter-backed kinds) once `flush` has run. How counter packets are attributed:
//! a first alert claims the one packet that triggered it; each counter's later entries
//! carry its increase minus what was already claimed. Samples must be drained before
//! each counter reading (a sample is then always for a packet the next reading counts).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::entry::{self, Alert, Folded, Repeat, Target, counter_backed, traffic_kind, usec};
use super::event::{EventKind, FlowKey, SegmentId};
use super::names::{CounterClass, Names};
use crate::config::AlertSettings;

/// Flows tracked at once when not configured otherwise (about 150 KiB).
pub const DEFAULT_MAX_FLOWS: usize = 4096;

/// The bound is per sliding minute.
const WINDOW_US: u64 = 60_000_000;

/// A slot frees this long after the minute is over, so the bound also holds for whoever
/// counts entries by journald's timestamps (stamped when journald reads them, a few ms
/// later and not all equally late) or by any closed minute.
const MARGIN_US: u64 = 1_000_000;

/// A flow silent this long is forgotten: if it comes back, it gets a new first alert.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Flows named in a counter summary's message.
const SAMPLED_SHOWN: usize = 3;

/// Destinations named in a summary of several flows.
const TOP_SHOWN: usize = 3;

/// What a digest of forgotten flows remembers at most: destinations and sources (beyond,
/// it counts: the packets go to no destination named, the sources are said to be more).
const DIGEST_TARGETS: usize = 32;
const DIGEST_SOURCES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldSettings {
    pub summary_every: Duration,
    /// Entries a minute, first alerts and summaries together (half each).
    pub max_per_minute: u32,
    /// Flows tracked at once; the least recently seen are evicted beyond it.
    pub max_flows: usize,
}

impl From<&AlertSettings> for FoldSettings {
    fn from(a: &AlertSettings) -> Self {
        FoldSettings {
            summary_every: a.summary_every,
            max_per_minute: a.max_per_minute,
            max_flows: DEFAULT_MAX_FLOWS,
        }
    }
}

impl FoldSettings {
    /// First alerts a minute: half of the bound (the other half is for summaries, so
    /// neither can starve the other).
    pub fn first_alerts_per_minute(&self) -> usize {
        (self.max_per_minute / 2).max(1) as usize
    }

    pub fn summaries_per_minute(&self) -> usize {
        (self.max_per_minute as usize)
            .saturating_sub(self.first_alerts_per_minute())
            .max(1)
    }

    /// Summaries one tick may write, so one tick cannot take a whole minute's share.
    fn summaries_per_tick(&self) -> usize {
        let per_min = self.summaries_per_minute() as u128;
        let every = self.summary_every.as_micros().max(1);
        let n = (per_min * every).div_ceil(u128::from(WINDOW_US));
        usize::try_from(n)
            .unwrap_or(usize::MAX)
            .clamp(1, per_min as usize)
    }
}

/// Times of the entries written in the last minute.
#[derive(Debug)]
struct Window {
    times: VecDeque<u64>,
    cap: usize,
}

impl Window {
    fn new(cap: usize) -> Window {
        Window {
            times: VecDeque::with_capacity(cap),
            cap,
        }
    }

    fn free(&mut self, now: u64) -> usize {
        while self
            .times
            .front()
            .is_some_and(|t| t.saturating_add(WINDOW_US + MARGIN_US) <= now)
        {
            self.times.pop_front();
        }
        self.cap.saturating_sub(self.times.len())
    }

    fn push(&mut self, now: u64) {
        self.times.push_back(now);
    }
}

/// Who a first alert competes with for the bound: the kind and the source segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Class {
    pub kind: EventKind,
    pub src: Option<SegmentId>,
}

impl Class {
    pub fn of(key: &FlowKey) -> Class {
        Class {
            kind: key.kind,
            src: key.src_segment,
        }
    }
}

/// What a flow aims at, without who sent it: the flow key without its source address
/// and MAC (for `arp_spoof`, the source address is the address claimed: it stays).
pub fn target_of(key: &FlowKey) -> FlowKey {
    let mut t = *key;
    t.src_mac = None;
    if key.kind != EventKind::ArpSpoof {
        t.src_ip = None;
    }
    t
}

/// The first alerts written in the last minute, by class and target: what decides
/// whether a new flow gets one (see the module documentation).
#[derive(Debug)]
struct Firsts {
    cap: usize,
    /// (time, class, target, whether it was a new target).
    entries: VecDeque<(u64, Class, FlowKey, bool)>,
    /// Per class: first alerts in the window, and those for new sources of known
    /// targets.
    per_class: HashMap<Class, (usize, usize)>,
    per_target: HashMap<FlowKey, usize>,
}

/// Why a first alert was refused, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Full,
    ClassShare,
    SourceShare,
}

impl Firsts {
    fn new(cap: usize) -> Firsts {
        Firsts {
            cap,
            entries: VecDeque::with_capacity(cap),
            per_class: HashMap::new(),
            per_target: HashMap::new(),
        }
    }

    /// First alerts one class may have in a window.
    fn class_share(&self) -> usize {
        (self.cap / 4).max(2).min(self.cap)
    }

    /// Slots kept for classes without a first alert in the window.
    fn reserve(&self) -> usize {
        self.cap / 8
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(t, class, target, new_target)) = self.entries.front() {
            if t.saturating_add(WINDOW_US + MARGIN_US) > now {
                break;
            }
            self.entries.pop_front();
            if let Some(c) = self.per_class.get_mut(&class) {
                c.0 -= 1;
                if !new_target {
                    c.1 -= 1;
                }
                if c.0 == 0 {
                    self.per_class.remove(&class);
                }
            }
            if let Some(n) = self.per_target.get_mut(&target) {
                *n -= 1;
                if *n == 0 {
                    self.per_target.remove(&target);
                }
            }
        }
    }

    /// Whether a first alert of `class` for `target` fits now (`target` `None`: a
    /// counter's own first alert, always a new target); records it if so.
    fn admit(&mut self, now: u64, class: Class, target: Option<FlowKey>) -> Result<(), Refusal> {
        self.expire(now);
        let total = self.entries.len();
        if total >= self.cap {
            return Err(Refusal::Full);
        }
        let (used, by_sources) = self.per_class.get(&class).copied().unwrap_or((0, 0));
        let new_target = target.is_none_or(|t| !self.per_target.contains_key(&t));
        if used > 0 {
            let share = self.class_share();
            if used >= share || total + self.reserve() >= self.cap {
                return Err(Refusal::ClassShare);
            }
            if !new_target && by_sources >= share.div_ceil(2) {
                return Err(Refusal::SourceShare);
            }
        }
        let target = target.unwrap_or_else(|| FlowKey::new(class.kind));
        self.entries.push_back((now, class, target, new_target));
        let c = self.per_class.entry(class).or_insert((0, 0));
        c.0 += 1;
        if !new_target {
            c.1 += 1;
        }
        *self.per_target.entry(target).or_insert(0) += 1;
        Ok(())
    }
}

/// Who sent a flow, for counting distinct sources: its address and MAC (for `arp_spoof`
/// the address is the one claimed, so the MAC alone).
fn source_of(key: &FlowKey) -> (Option<IpAddr>, Option<[u8; 6]>) {
    let ip = if key.kind == EventKind::ArpSpoof {
        None
    } else {
        key.src_ip
    };
    (ip, key.src_mac)
}

/// What a set of folded flows amounts to: how many, their destinations (weighted by
/// packets or samples) and their distinct sources, within fixed sizes.
#[derive(Debug, Default, Clone)]
struct Digest {
    flows: u64,
    targets: HashMap<Target, u64>,
    sources: HashSet<(Option<IpAddr>, Option<[u8; 6]>)>,
    more_sources: bool,
}

impl Digest {
    fn add(&mut self, key: &FlowKey, weight: u64) {
        self.flows += 1;
        let t = Target::of(key);
        if let Some(n) = self.targets.get_mut(&t) {
            *n += weight;
        } else if self.targets.len() < DIGEST_TARGETS {
            self.targets.insert(t, weight);
        }
        let src = source_of(key);
        if self.sources.len() < DIGEST_SOURCES {
            self.sources.insert(src);
        } else if !self.sources.contains(&src) {
            self.more_sources = true;
        }
    }

    fn merge(&mut self, other: Digest) {
        self.flows += other.flows;
        for (t, n) in other.targets {
            if let Some(m) = self.targets.get_mut(&t) {
                *m += n;
            } else if self.targets.len() < DIGEST_TARGETS {
                self.targets.insert(t, n);
            }
        }
        for src in other.sources {
            if self.sources.len() < DIGEST_SOURCES {
                self.sources.insert(src);
            } else if !self.sources.contains(&src) {
                self.more_sources = true;
            }
        }
        self.more_sources |= other.more_sources;
    }

    fn folded(&self, shown: Vec<FlowKey>) -> Folded {
        let mut top: Vec<(Target, u64)> = self.targets.iter().map(|(t, n)| (*t, *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(TOP_SHOWN);
        Folded {
            shown,
            flows: self.flows,
            top,
            sources: self.sources.len() as u64,
            sources_at_least: self.more_sources,
        }
    }
}

/// A span of activity not yet reported.
#[derive(Debug, Clone, Copy, Default)]
struct Span(Option<(u64, u64)>);

impl Span {
    fn touch(&mut self, t: u64) {
        self.0 = Some(match self.0 {
            Some((a, b)) => (a.min(t), b.max(t)),
            None => (t, t),
        });
    }

    fn merge(&mut self, other: Span) {
        if let Some((a, b)) = other.0 {
            self.touch(a);
            self.touch(b);
        }
    }

    fn take(&mut self, now: u64) -> (u64, u64) {
        self.0.take().unwrap_or((now, now))
    }
}

#[derive(Debug)]
struct Flow {
    /// Counter-backed flows: the counter their packets are counted in.
    pair: Option<usize>,
    /// An entry of its own has named this flow.
    alerted: bool,
    /// Layer-2 kinds: packets not yet reported. Counter-backed kinds: samples since the
    /// flow was last named (the packets are the counter's).
    pending: u64,
    span: Span,
    seen: u64,
}

/// One named counter of the ruleset.
#[derive(Debug)]
struct Pair {
    name: String,
    /// `None`: counted, never alerted.
    kind: Option<EventKind>,
    raw: Option<u64>,
    /// Increases since cloison started, across table replacements.
    total: u64,
    /// `CLOISON_PACKETS` written for this counter.
    reported: u64,
    span: Span,
    seen: u64,
    alerted: bool,
    /// Evicted flows sampled since the counter's last entry.
    evicted: Digest,
}

impl Pair {
    /// A sample or a counter increase of this pair, now.
    fn touch(&mut self, now: u64) {
        self.span.touch(now);
        self.seen = now;
    }

    fn available(&self) -> u64 {
        self.total.saturating_sub(self.reported)
    }
}

#[derive(Debug, Default, Clone)]
struct Tally {
    counted: u64,
    reported: u64,
    /// Layer-2 kinds: packets of evicted flows, not yet reported, and those flows.
    folded_packets: u64,
    folded: Digest,
    span: Span,
}

/// Counts for one event kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindCount {
    /// Observations (layer-2 kinds) or counter increases (counter-backed kinds).
    pub counted: u64,
    /// Sum of `CLOISON_PACKETS` written.
    pub reported: u64,
    /// Packets claimed by first alerts that no counter reading has confirmed yet
    /// (non-zero only transiently, or if samples were not drained before a reading).
    pub unconfirmed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldStats {
    pub kinds: BTreeMap<EventKind, KindCount>,
    pub tracked_flows: usize,
    pub evicted_flows: u64,
    /// New flows whose first alert the bound held back.
    pub held_back: u64,
    pub counter_resets: u64,
    /// Samples of counters that raise no alert (e.g. `kiosk/internet`), ignored.
    pub ignored_samples: u64,
    pub entries: u64,
}

/// What a summary round may write an entry about.
#[derive(Debug, Clone)]
enum Item {
    Flow(FlowKey),
    Pair(usize),
    /// A layer-2 kind's packets of evicted flows.
    Folded,
}

#[derive(Debug, Clone)]
struct Candidate {
    kind: EventKind,
    packets: u64,
    oldest: u64,
    item: Item,
}

/// The folder. See the module documentation.
#[derive(Debug)]
pub struct Folder {
    names: Names,
    settings: FoldSettings,
    firsts: Firsts,
    summaries: Window,
    flows: HashMap<FlowKey, Flow>,
    pairs: Vec<Pair>,
    pair_index: HashMap<String, usize>,
    tallies: [Tally; EventKind::ALL.len()],
    next_summary: Option<u64>,
    now: u64,
    evicted_flows: u64,
    held_back: u64,
    counter_resets: u64,
    ignored_samples: u64,
    entries: u64,
}

fn kind_index(kind: EventKind) -> usize {
    EventKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}

impl Folder {
    pub fn new(names: Names, settings: FoldSettings) -> Folder {
        Folder {
            firsts: Firsts::new(settings.first_alerts_per_minute()),
            summaries: Window::new(settings.summaries_per_minute()),
            names,
            settings,
            flows: HashMap::new(),
            pairs: Vec::new(),
            pair_index: HashMap::new(),
            tallies: Default::default(),
            next_summary: None,
            now: 0,
            evicted_flows: 0,
            held_back: 0,
            counter_resets: 0,
            ignored_samples: 0,
            entries: 0,
        }
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn names_mut(&mut self) -> &mut Names {
        &mut self.names
    }

    pub fn settings(&self) -> &FoldSettings {
        &self.settings
    }

    /// Time only goes forward here: a clock stepped back counts as no time passing.
    fn clock(&mut self, now: SystemTime) -> u64 {
        self.now = usec(now).max(self.now);
        let every = duration_us(self.settings.summary_every);
        self.next_summary
            .get_or_insert(self.now.saturating_add(every));
        self.now
    }

    fn record(&mut self, alert: &Alert) {
        self.entries += 1;
        self.tallies[kind_index(alert.kind())].reported += alert.packets();
    }

    fn pair(&mut self, name: &str, kind: Option<EventKind>) -> usize {
        if let Some(&i) = self.pair_index.get(name) {
            return i;
        }
        let i = self.pairs.len();
        self.pairs.push(Pair {
            name: name.to_owned(),
            kind,
            raw: None,
            total: 0,
            reported: 0,
            span: Span::default(),
            seen: 0,
            alerted: false,
            evicted: Digest::default(),
        });
        self.pair_index.insert(name.to_owned(), i);
        i
    }

    /// The counter a sample's packet is counted in, or `None` when that counter does not
    /// raise alerts of the sample's kind (the sample is then ignored: its counter says
    /// everything there is to say).
    fn pair_of_flow(&mut self, key: &FlowKey) -> Option<usize> {
        match self.names.counter_of(key) {
            Some(name) => match self.names.classify_counter(&name) {
                CounterClass::Alert(k) if k == key.kind => Some(self.pair(&name, Some(k))),
                _ => None,
            },
            // A sample the names cannot place: its own bucket, which no reading confirms.
            None => Some(self.pair(&format!("?/{}", key.kind), Some(key.kind))),
        }
    }

    /// Makes room for one more flow: evicts the least recently seen quarter, moving
    /// their unreported packets to their kind (layer 2) or noting them on their counter.
    fn make_room(&mut self) {
        let cap = self.settings.max_flows.max(1);
        if self.flows.len() < cap {
            return;
        }
        let n = (cap / 4).max(1).min(self.flows.len());
        let mut by_age: Vec<(u64, FlowKey)> =
            self.flows.iter().map(|(k, f)| (f.seen, *k)).collect();
        by_age.select_nth_unstable_by_key(n - 1, |(seen, _)| *seen);
        for (_, key) in by_age.into_iter().take(n) {
            let Some(f) = self.flows.remove(&key) else {
                continue;
            };
            self.evicted_flows += 1;
            if f.pending == 0 {
                continue;
            }
            match f.pair {
                Some(p) => self.pairs[p].evicted.add(&key, f.pending),
                None => {
                    let t = &mut self.tallies[kind_index(key.kind)];
                    t.folded_packets += f.pending;
                    t.folded.add(&key, f.pending);
                    t.span.merge(f.span);
                }
            }
        }
    }

    /// One packet (layer-2 kinds) or one sample (counter-backed kinds) of a flow. Returns
    /// the flow's first alert when the flow is new and the bound allows it.
    pub fn observe(&mut self, key: &FlowKey, now: SystemTime) -> Option<Alert> {
        self.observe_many(key, 1, now)
    }

    /// `times` packets (or samples) of one flow seen in a row, as one: the capture folds
    /// runs of identical frames before handing them over. The same as `times` calls of
    /// `observe` at `now`, at the cost of one (the first alert, when due, claims all
    /// `times` packets of a layer-2 kind, as it would claim those pending before it).
    pub fn observe_many(&mut self, key: &FlowKey, times: u32, now: SystemTime) -> Option<Alert> {
        if times == 0 {
            return None;
        }
        let times = u64::from(times);
        let now = self.clock(now);
        if !traffic_kind(key.kind) {
            return None;
        }
        let counted = counter_backed(key.kind);
        if !counted {
            self.tallies[kind_index(key.kind)].counted += times;
        }
        // A known flow already knows its counter: one lookup, nothing to allocate.
        if let Some(flow) = self.flows.get_mut(key) {
            flow.pending += times;
            flow.span.touch(now);
            flow.seen = now;
            if let Some(p) = flow.pair {
                self.pairs[p].touch(now);
            }
            if flow.alerted {
                return None;
            }
            let pair = flow.pair;
            return self.first_alert(key, pair, false, now);
        }
        let pair = if counted {
            let Some(p) = self.pair_of_flow(key) else {
                self.ignored_samples += 1;
                return None;
            };
            self.pairs[p].touch(now);
            Some(p)
        } else {
            None
        };
        self.make_room();
        let flow = self.flows.entry(*key).or_insert(Flow {
            pair,
            alerted: false,
            pending: times,
            span: Span::default(),
            seen: now,
        });
        flow.span.touch(now);
        self.first_alert(key, pair, true, now)
    }

    /// The first alert of a flow not yet alerted, when the bound admits it: it claims the
    /// flow's pending packets (layer 2) or the sample's one packet (counter-backed).
    fn first_alert(
        &mut self,
        key: &FlowKey,
        pair: Option<usize>,
        is_new: bool,
        now: u64,
    ) -> Option<Alert> {
        if self
            .firsts
            .admit(now, Class::of(key), Some(target_of(key)))
            .is_err()
        {
            if is_new {
                self.held_back += 1;
            }
            return None;
        }
        let flow = self.flows.get_mut(key)?;
        let span = flow.span.take(now);
        let packets = if counter_backed(key.kind) {
            1
        } else {
            flow.pending
        };
        flow.pending = 0;
        flow.alerted = true;
        let counter = pair.map(|p| {
            let p = &mut self.pairs[p];
            p.reported += 1;
            p.alerted = true;
            p.name.as_str()
        });
        let alert = entry::flow_alert(&self.names, key, counter, packets, span, Repeat::First);
        self.record(&alert);
        Some(alert)
    }

    /// The values the counters start from: call it when cloison starts on a table that
    /// already counted, and right after replacing the table (having read the old one
    /// just before), with zeros or the totals carried into the new table. Only increases
    /// from these values are reported. Without it, a counter that goes down is taken as
    /// restarted from zero (a table someone else replaced).
    pub fn baseline<S: AsRef<str>>(&mut self, readings: &[(S, u64)]) {
        for (name, value) in readings {
            let name = name.as_ref();
            let kind = self.kind_of_counter(name);
            let i = self.pair(name, kind);
            self.pairs[i].raw = Some(*value);
        }
    }

    fn kind_of_counter(&self, name: &str) -> Option<EventKind> {
        match self.names.classify_counter(name) {
            CounterClass::Alert(k) => Some(k),
            CounterClass::Noise => None,
        }
    }

    /// The cumulative values of the ruleset's named counters. A value lower than the
    /// previous one means the table was replaced: the counter restarted from zero.
    /// Returns a first alert for each counter that counted drops before any sample named
    /// a flow of it (the sampling rule is rate-limited), when the bound allows.
    pub fn counters<S: AsRef<str>>(
        &mut self,
        readings: &[(S, u64)],
        now: SystemTime,
    ) -> Vec<Alert> {
        let now = self.clock(now);
        let mut increased = Vec::new();
        for (name, value) in readings {
            let name = name.as_ref();
            let kind = self.kind_of_counter(name);
            let i = self.pair(name, kind);
            let p = &mut self.pairs[i];
            let delta = match p.raw {
                Some(prev) if *value >= prev => value - prev,
                Some(_) => {
                    self.counter_resets += 1;
                    *value
                }
                None => *value,
            };
            p.raw = Some(*value);
            if delta == 0 {
                continue;
            }
            p.total += delta;
            p.touch(now);
            if let Some(k) = p.kind {
                self.tallies[kind_index(k)].counted += delta;
                if !p.alerted && p.available() > 0 {
                    increased.push(i);
                }
            }
        }
        let mut out = Vec::new();
        for i in increased {
            let Some(kind) = self.pairs[i].kind else {
                continue;
            };
            let src = crate::counter::Pair::parse(&self.pairs[i].name)
                .and_then(|p| self.names.segment_id(p.from));
            if self.firsts.admit(now, Class { kind, src }, None).is_err() {
                continue;
            }
            let p = &mut self.pairs[i];
            let packets = p.available();
            p.reported += packets;
            p.alerted = true;
            let span = p.span.take(now);
            let a = entry::counter_alert(
                &self.names,
                kind,
                &p.name,
                packets,
                span,
                &Folded::default(),
                Repeat::First,
            );
            self.record(&a);
            out.push(a);
        }
        out
    }

    /// Counts an entry the daemon wrote itself (configuration, drift) against the bound.
    /// Such entries are never refused.
    pub fn note_entry(&mut self, now: SystemTime) {
        let now = self.clock(now);
        self.summaries.free(now);
        self.summaries.push(now);
    }

    /// The summaries due at `now` (one round every `summary_every`).
    pub fn tick(&mut self, now: SystemTime) -> Vec<Alert> {
        let now = self.clock(now);
        let every = duration_us(self.settings.summary_every).max(1);
        let next = self.next_summary.unwrap_or(now);
        if now < next {
            return Vec::new();
        }
        let periods = (now - next) / every + 1;
        self.next_summary = Some(next.saturating_add(periods.saturating_mul(every)));
        let out = self.summarise(now, false);
        self.forget_idle(now);
        out
    }

    /// Everything not yet reported, for shutdown. Uses the summaries' share of the bound
    /// for entries of their own; beyond it, one entry per event kind (so at most one
    /// entry per kind over the bound, once).
    pub fn flush(&mut self, now: SystemTime) -> Vec<Alert> {
        let now = self.clock(now);
        self.summarise(now, true)
    }

    fn forget_idle(&mut self, now: u64) {
        let idle = duration_us(FORGET_AFTER);
        self.flows
            .retain(|_, f| f.pending > 0 || now.saturating_sub(f.seen) < idle);
        for p in &mut self.pairs {
            if p.available() == 0 && now.saturating_sub(p.seen) >= idle {
                p.alerted = false;
            }
        }
    }

    fn candidates(&self) -> Vec<Candidate> {
        let mut c = Vec::new();
        for (key, f) in &self.flows {
            if f.pair.is_none() && f.pending > 0 {
                c.push(Candidate {
                    kind: key.kind,
                    packets: f.pending,
                    oldest: f.span.0.map_or(f.seen, |s| s.0),
                    item: Item::Flow(*key),
                });
            }
        }
        for (i, p) in self.pairs.iter().enumerate() {
            if let Some(kind) = p.kind
                && p.available() > 0
            {
                c.push(Candidate {
                    kind,
                    packets: p.available(),
                    oldest: p.span.0.map_or(p.seen, |s| s.0),
                    item: Item::Pair(i),
                });
            }
        }
        for kind in EventKind::ALL {
            let t = &self.tallies[kind_index(kind)];
            if t.folded_packets > 0 {
                c.push(Candidate {
                    kind,
                    packets: t.folded_packets,
                    oldest: t.span.0.map_or(0, |s| s.0),
                    item: Item::Folded,
                });
            }
        }
        // Most severe first, then the largest, then a stable order.
        c.sort_by(|a, b| {
            (
                a.kind.priority(),
                std::cmp::Reverse(a.packets),
                a.oldest,
                a.kind,
            )
                .cmp(&(
                    b.kind.priority(),
                    std::cmp::Reverse(b.packets),
                    b.oldest,
                    b.kind,
                ))
        });
        c
    }

    fn summarise(&mut self, now: u64, flush: bool) -> Vec<Alert> {
        let cands = self.candidates();
        if cands.is_empty() {
            return Vec::new();
        }
        let free = self.summaries.free(now);
        let budget = if flush {
            free
        } else {
            free.min(self.settings.summaries_per_tick())
        };
        let kinds: BTreeSet<EventKind> = cands.iter().map(|c| c.kind).collect();
        // Which candidates get an entry of their own; the rest of a kind share one.
        let (own, merged): (Vec<Candidate>, Vec<Candidate>) = if cands.len() <= budget {
            (cands, Vec::new())
        } else if budget >= kinds.len() {
            let mut slots = budget - kinds.len();
            cands.into_iter().partition(|c| {
                let take = slots > 0 && !matches!(c.item, Item::Folded);
                if take {
                    slots -= 1;
                }
                take
            })
        } else {
            (Vec::new(), cands)
        };
        let mut out = Vec::new();
        for c in own {
            let a = match c.item {
                Item::Flow(key) => self.flow_summary(&key, now),
                Item::Pair(i) => self.pair_summary(i, now),
                Item::Folded => self.merged_summary(c.kind, &[], now),
            };
            out.extend(a);
        }
        // Kinds waiting longest go first when there are fewer slots than kinds.
        let mut by_kind: BTreeMap<EventKind, Vec<Candidate>> = BTreeMap::new();
        for c in merged {
            by_kind.entry(c.kind).or_default().push(c);
        }
        let mut order: Vec<(u64, EventKind)> = by_kind
            .iter()
            .map(|(k, cs)| (cs.iter().map(|c| c.oldest).min().unwrap_or(now), *k))
            .collect();
        order.sort();
        let room = budget.saturating_sub(out.len());
        for (n, (_, kind)) in order.into_iter().enumerate() {
            if n >= room && !flush {
                break; // waits for the next round; nothing is lost
            }
            let cs = by_kind.remove(&kind).unwrap_or_default();
            out.extend(self.merged_summary(kind, &cs, now));
        }
        for a in &out {
            self.summaries.push(now);
            self.record(a);
        }
        out
    }

    fn flow_summary(&mut self, key: &FlowKey, now: u64) -> Option<Alert> {
        let f = self.flows.get_mut(key)?;
        let packets = std::mem::take(&mut f.pending);
        let span = f.span.take(now);
        let repeat = if f.alerted {
            Repeat::More
        } else {
            Repeat::Unnamed
        };
        f.alerted = true;
        Some(entry::flow_alert(
            &self.names,
            key,
            None,
            packets,
            span,
            repeat,
        ))
    }

    /// Flows of a counter sampled since its last entry: the first few, and what they
    /// amount to (with the ones evicted meanwhile), marking them as named.
    fn take_sampled(&mut self, pair: usize) -> (Vec<FlowKey>, Digest) {
        let mut sampled: Vec<(u64, FlowKey)> = Vec::new();
        let mut digest = std::mem::take(&mut self.pairs[pair].evicted);
        for (key, f) in &mut self.flows {
            if f.pair == Some(pair) && f.pending > 0 {
                sampled.push((f.pending, *key));
                digest.add(key, f.pending);
                f.pending = 0;
                f.span = Span::default();
            }
        }
        sampled.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let shown = sampled
            .into_iter()
            .take(SAMPLED_SHOWN)
            .map(|(_, k)| k)
            .collect();
        (shown, digest)
    }

    fn pair_summary(&mut self, i: usize, now: u64) -> Option<Alert> {
        let (shown, digest) = self.take_sampled(i);
        let p = &mut self.pairs[i];
        let kind = p.kind?;
        let packets = p.available();
        p.reported += packets;
        let repeat = if p.alerted {
            Repeat::More
        } else {
            Repeat::Unnamed
        };
        p.alerted = true;
        let span = p.span.take(now);
        Some(entry::counter_alert(
            &self.names,
            kind,
            &p.name,
            packets,
            span,
            &digest.folded(shown),
            repeat,
        ))
    }

    /// One entry for everything of a kind listed in `cs` plus its evicted flows' packets.
    fn merged_summary(&mut self, kind: EventKind, cs: &[Candidate], now: u64) -> Option<Alert> {
        let mut packets = 0;
        let mut digest = Digest::default();
        let mut span = Span::default();
        let mut parts = Vec::new();
        for c in cs {
            match c.item {
                Item::Flow(key) => {
                    if let Some(f) = self.flows.get_mut(&key) {
                        let n = std::mem::take(&mut f.pending);
                        packets += n;
                        span.merge(std::mem::take(&mut f.span));
                        digest.add(&key, n);
                    }
                }
                Item::Pair(i) => {
                    let (_, sampled) = self.take_sampled(i);
                    let p = &mut self.pairs[i];
                    let n = p.available();
                    p.reported += n;
                    p.alerted = true;
                    span.merge(std::mem::take(&mut p.span));
                    packets += n;
                    digest.merge(sampled);
                    parts.push((p.name.clone(), n));
                }
                Item::Folded => {}
            }
        }
        let t = &mut self.tallies[kind_index(kind)];
        packets += std::mem::take(&mut t.folded_packets);
        digest.merge(std::mem::take(&mut t.folded));
        span.merge(std::mem::take(&mut t.span));
        if packets == 0 {
            return None;
        }
        let span = span.take(now);
        Some(entry::overflow_alert(
            &self.names,
            kind,
            packets,
            span,
            &parts,
            self.settings.max_per_minute,
            &digest.folded(Vec::new()),
        ))
    }

    /// Cumulative totals of every counter read so far (across table replacements), for
    /// `cloison status`.
    pub fn counter_totals(&self) -> impl Iterator<Item = (&str, u64)> {
        self.pairs
            .iter()
            .filter(|p| p.raw.is_some())
            .map(|p| (p.name.as_str(), p.total))
    }

    pub fn stats(&self) -> FoldStats {
        let mut kinds = BTreeMap::new();
        for kind in EventKind::ALL.into_iter().filter(|k| traffic_kind(*k)) {
            let t = &self.tallies[kind_index(kind)];
            let unconfirmed = self
                .pairs
                .iter()
                .filter(|p| p.kind == Some(kind))
                .map(|p| p.reported.saturating_sub(p.total))
                .sum();
            kinds.insert(
                kind,
                KindCount {
                    counted: t.counted,
                    reported: t.reported,
                    unconfirmed,
                },
            );
        }
        FoldStats {
            kinds,
            tracked_flows: self.flows.len(),
            evicted_flows: self.evicted_flows,
            held_back: self.held_back,
            counter_resets: self.counter_resets,
            ignored_samples: self.ignored_samples,
            entries: self.entries,
        }
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
// The generators below make bytes and ids by truncating on purpose.
#[allow(clippy::cast_possible_truncation, clippy::cast_lossless)]
mod tests {
    use super::*;
    use crate::alert::event::{Destination, L4, SegmentId};
    use crate::alert::field;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::UNIX_EPOCH;

    const KIOSK: SegmentId = SegmentId(0);
    const MAIRIE: SegmentId = SegmentId(1);
    const POSTE: SegmentId = SegmentId(2);

    fn names() -> Names {
        let c =
            crate::config::parse(include_str!("../../../../config/lab.toml"), "lab.toml").unwrap();
        Names::from_config(&c, "unused").with_interfaces([(3, "seg-kiosk".to_owned())])
    }

    fn settings(max_per_minute: u32, every_s: u64, max_flows: usize) -> FoldSettings {
        FoldSettings {
            summary_every: Duration::from_secs(every_s),
            max_per_minute,
            max_flows,
        }
    }

    fn at(ms: u64) -> SystemTime {
        // 2026-05-04, so times print like real ones.
        UNIX_EPOCH + Duration::from_millis(1_777_885_923_000 + ms)
    }

    fn smb(last_octet: u8) -> FlowKey {
        let mut k = FlowKey::new(EventKind::CrossSegment);
        k.src_segment = Some(KIOSK);
        k.dst = Some(Destination::Segment(MAIRIE));
        k.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, last_octet)));
        k.dst_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 5)));
        k.proto = Some(L4::Tcp);
        k.dst_port = Some(445);
        k.ifindex = Some(3);
        k
    }

    fn arp(mac_last: u8) -> FlowKey {
        let mut k = FlowKey::new(EventKind::ArpSpoof);
        k.src_segment = Some(KIOSK);
        k.dst = Some(Destination::Router);
        k.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, 1)));
        k.src_mac = Some([2, 0, 0, 0, 0, mac_last]);
        k.ifindex = Some(3);
        k
    }

    /// A small deterministic generator (splitmix64), so failures replay by seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.below(100) < percent
        }
    }

    fn sum_by_kind(entries: &[(u64, Alert)]) -> BTreeMap<EventKind, u64> {
        let mut m = BTreeMap::new();
        for (_, a) in entries {
            *m.entry(a.kind()).or_insert(0) += a.packets();
        }
        m
    }

    /// Largest number of entries (matching `pred`) in any window of a minute and the
    /// margin (so in any closed minute, however late each entry was stamped within it).
    fn max_per_window(entries: &[(u64, Alert)], pred: impl Fn(&Alert) -> bool) -> usize {
        let times: Vec<u64> = entries
            .iter()
            .filter(|(_, a)| pred(a))
            .map(|(t, _)| *t)
            .collect();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[lo] + WINDOW_US + MARGIN_US <= times[hi] {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[test]
    fn kind_index_follows_all() {
        for (i, k) in EventKind::ALL.into_iter().enumerate() {
            assert_eq!(kind_index(k), i);
        }
    }

    #[test]
    fn first_packet_alerts_at_once_then_one_summary_with_the_exact_count() {
        let mut f = Folder::new(names(), settings(120, 60, 64));
        let k = smb(15);
        let first = f
            .observe(&k, at(0))
            .expect("first alert at the first packet");
        assert_eq!(first.packets(), 1);
        assert!(!first.is_summary());
        assert_eq!(first.field(field::COUNTER), Some("kiosk/mairie"));
        // Later samples of the same flow are folded.
        for ms in 1..10 {
            assert!(f.observe(&k, at(ms * 1000)).is_none());
        }
        // The counter is the truth: 37 packets were dropped in all.
        assert!(f.counters(&[("kiosk/mairie", 37)], at(12_000)).is_empty());
        assert!(
            f.tick(at(30_000)).is_empty(),
            "not due before summary_every"
        );
        let s = f.tick(at(60_000));
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(s[0].is_summary());
        assert_eq!(s[0].packets(), 36);
        assert_eq!(s[0].field(field::SRC_IP), Some("192.168.20.15"));
        assert_eq!(s[0].field(field::FLOWS), Some("1"));
        assert_eq!(s[0].message_id(), first.message_id());
        assert!(
            s[0].message()
                .starts_with("kiosk tried mairie: blocked, 36 more packets in 12 s"),
            "{}",
            s[0].message()
        );
        assert!(
            f.tick(at(120_000)).is_empty(),
            "nothing new, nothing written"
        );
        assert!(f.flush(at(121_000)).is_empty());
        let st = f.stats();
        assert_eq!(st.kinds[&EventKind::CrossSegment].counted, 37);
        assert_eq!(st.kinds[&EventKind::CrossSegment].reported, 37);
    }

    #[test]
    fn layer2_flows_count_each_observation() {
        let mut f = Folder::new(names(), settings(120, 10, 64));
        let k = arp(9);
        assert_eq!(f.observe(&k, at(0)).map(|a| a.packets()), Some(1));
        for i in 1..=500 {
            assert!(f.observe(&k, at(i * 10)).is_none());
        }
        let s = f.tick(at(10_000));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].packets(), 500);
        assert_eq!(s[0].field(field::VERDICT), Some("observed"));
        assert_eq!(s[0].field(field::SRC_MAC), Some("02:00:00:00:00:09"));
    }

    #[test]
    fn a_run_of_frames_counts_as_that_many_observations() {
        // The capture hands over runs of identical frames as one: the first alert claims
        // the whole run, the summary the later runs, and nothing is lost or doubled.
        let mut f = Folder::new(names(), settings(120, 10, 64));
        let k = arp(9);
        assert_eq!(f.observe_many(&k, 0, at(0)).map(|a| a.packets()), None);
        assert_eq!(
            f.observe_many(&k, 700, at(0)).map(|a| a.packets()),
            Some(700)
        );
        assert!(f.observe_many(&k, 250, at(10)).is_none());
        assert!(f.observe(&k, at(20)).is_none());
        let s = f.tick(at(10_000));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].packets(), 251);
        let st = f.stats();
        assert_eq!(st.kinds[&EventKind::ArpSpoof].counted, 951);
        assert_eq!(st.kinds[&EventKind::ArpSpoof].reported, 951);
    }

    #[test]
    fn counter_without_samples_gets_a_first_alert_of_its_own() {
        let mut f = Folder::new(names(), settings(120, 60, 64));
        let a = f.counters(
            &[
                ("poste/router", 5),
                ("isp/kiosk", 100),
                ("kiosk/broadcast", 3),
            ],
            at(0),
        );
        assert_eq!(
            a.len(),
            1,
            "uplink and broadcast counters are not alerted: {a:?}"
        );
        assert_eq!(a[0].kind(), EventKind::RouterAccess);
        assert_eq!(a[0].packets(), 5);
        assert_eq!(a[0].field(field::SRC_SEGMENT), Some("poste"));
        assert!(f.counters(&[("poste/router", 9)], at(1000)).is_empty());
        let s = f.tick(at(60_000));
        assert_eq!(s.iter().map(Alert::packets).sum::<u64>(), 4);
        let totals: BTreeMap<&str, u64> = f.counter_totals().collect();
        assert_eq!(totals["isp/kiosk"], 100);
        assert_eq!(totals["kiosk/broadcast"], 3);
    }

    #[test]
    fn a_counter_that_goes_down_was_reset_and_nothing_is_lost_or_negative() {
        let mut f = Folder::new(names(), settings(120, 60, 64));
        f.counters(&[("kiosk/mairie", 100)], at(0));
        f.counters(&[("kiosk/mairie", 150)], at(1000));
        // Table replaced: the counter restarted and counted 20 since.
        f.counters(&[("kiosk/mairie", 20)], at(2000));
        f.counters(&[("kiosk/mairie", 25)], at(3000));
        let mut all: Vec<Alert> = f.flush(at(4000));
        all.extend(f.flush(at(5000)));
        let reported: u64 = all.iter().map(Alert::packets).sum::<u64>() + 100;
        assert_eq!(reported, 175);
        assert_eq!(f.stats().counter_resets, 1);
        assert_eq!(f.counter_totals().next(), Some(("kiosk/mairie", 175)));
    }

    #[test]
    fn baseline_counts_only_increases_from_carried_totals() {
        let mut f = Folder::new(names(), settings(120, 60, 64));
        f.baseline(&[("kiosk/mairie", 1_000_000)]);
        let a = f.counters(&[("kiosk/mairie", 1_000_004)], at(0));
        assert_eq!(a.iter().map(Alert::packets).sum::<u64>(), 4);
    }

    #[test]
    fn the_bound_folds_new_flows_into_one_summary_that_says_so() {
        let s = settings(20, 60, 10_000);
        let mut f = Folder::new(names(), s.clone());
        let mut entries = Vec::new();
        // 300 distinct ARP spoofers of the router's address in one second, 3 frames each.
        for round in 0..3 {
            for i in 0..300u32 {
                let mut k = arp(0);
                k.src_mac = Some([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
                entries.extend(f.observe(&k, at(u64::from(round * 300 + i))));
            }
        }
        // One class, one target: its first alert, then new sources get at most half of
        // the class's share (10 first alerts a minute: 2 per class).
        assert_eq!(entries.len(), 2);
        entries.extend(f.tick(at(60_000)));
        let folded: Vec<&Alert> = entries
            .iter()
            .filter(|a| a.field(field::FOLDED_FLOWS).is_some())
            .collect();
        assert_eq!(folded.len(), 1, "one overflow entry for the kind");
        let n: u64 = folded[0]
            .field(field::FOLDED_FLOWS)
            .unwrap()
            .parse()
            .unwrap();
        assert!(n > 250, "{n}");
        assert!(folded[0].message().contains("not listed one by one"));
        // It names what it folds: the address claimed, and how many MACs claimed it.
        assert_eq!(
            folded[0].field(field::SOURCES),
            Some(n.to_string().as_str())
        );
        assert_eq!(
            folded[0].field(field::TOP_DESTINATIONS),
            Some(format!("192.168.20.1 {}", folded[0].packets()).as_str())
        );
        assert!(
            folded[0]
                .message()
                .contains(&format!("{n} distinct sources")),
            "{}",
            folded[0].message()
        );
        // Flows summarised on their own that never had a first alert say "3 packets",
        // not "3 more".
        let unnamed: Vec<&Alert> = entries
            .iter()
            .filter(|a| a.is_summary() && a.field(field::FOLDED_FLOWS).is_none())
            .filter(|a| a.packets() == 3)
            .collect();
        assert!(!unnamed.is_empty());
        for a in unnamed {
            assert!(
                a.message().contains("observed, 3 packets"),
                "{}",
                a.message()
            );
        }
        assert!(entries.len() <= 20);
        assert_eq!(entries.iter().map(Alert::packets).sum::<u64>(), 900);
    }

    #[test]
    fn a_flood_from_random_sources_cannot_hide_a_new_port_or_another_segment() {
        let s = settings(120, 60, DEFAULT_MAX_FLOWS);
        let mut f = Folder::new(names(), s.clone());
        let mut firsts = 0;
        // hping3 --flood --rand-source from the kiosk to the mairie's SMB port: every
        // sample a new source (forged, and within the kiosk's subnet).
        let mut rng = Rng(3);
        for i in 0..5_000u64 {
            let mut k = smb(0);
            k.src_ip = Some(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)));
            if i % 2 == 0 {
                k.kind = EventKind::SpoofedSource;
                k.dst = Some(Destination::Segment(MAIRIE));
            } else {
                k.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, (i % 250) as u8 + 2)));
                k.dst_port = Some(445);
            }
            firsts += usize::from(f.observe(&k, at(i / 5)).is_some());
        }
        assert!(firsts < s.first_alerts_per_minute(), "{firsts}");
        // One real scan of new mairie ports, within the same second and the same class.
        for port in [3389, 22, 80] {
            let mut k = smb(15);
            k.dst_port = Some(port);
            let a = f
                .observe(&k, at(1_000 + u64::from(port)))
                .unwrap_or_else(|| panic!("no first alert for the scan of {port}"));
            assert_eq!(a.field(field::DST_PORT), Some(port.to_string().as_str()));
        }
        // Another segment, and another kind, still get theirs.
        let mut poste = smb(30);
        poste.src_segment = Some(POSTE);
        poste.src_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 30, 30)));
        assert!(f.observe(&poste, at(1_500)).is_some());
        assert!(f.observe(&arp(7), at(1_600)).is_some());
    }

    #[test]
    fn memory_stays_bounded_and_evicted_packets_still_count() {
        let mut f = Folder::new(names(), settings(120, 10, 100));
        let mut entries = Vec::new();
        for i in 0..50_000u64 {
            let mut k = arp(0);
            k.src_mac = Some([2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            entries.extend(f.observe(&k, at(i / 10)));
            entries.extend(f.observe(&k, at(i / 10)));
            assert!(f.stats().tracked_flows <= 100);
        }
        entries.extend(f.flush(at(10_000)));
        assert_eq!(entries.iter().map(Alert::packets).sum::<u64>(), 100_000);
        assert!(f.stats().evicted_flows > 49_000);
    }

    /// A simulated kernel: named counters, a sampling log rule, and the inspection loop.
    struct Kernel {
        raw: BTreeMap<String, u64>,
        packets: BTreeMap<EventKind, u64>,
        /// Counter values at the last reading.
        view: BTreeMap<String, u64>,
        /// Counter-backed packets a reader of the counters can know of.
        observable: BTreeMap<EventKind, u64>,
        sampled_since_read: bool,
    }

    impl Kernel {
        fn drop_packet(&mut self, counter: &str, kind: EventKind, n: u64) {
            *self.raw.entry(counter.to_owned()).or_insert(0) += n;
            *self.packets.entry(kind).or_insert(0) += n;
        }
    }

    fn random_flow(rng: &mut Rng, pool: u64) -> FlowKey {
        let kinds = [
            EventKind::CrossSegment,
            EventKind::RouterAccess,
            EventKind::SpoofedSource,
            EventKind::IsolationBreach,
            EventKind::ArpSpoof,
            EventKind::RogueDhcp,
            EventKind::RogueRa,
            EventKind::VlanHopping,
        ];
        let id = rng.below(pool);
        let mut k = FlowKey::new(kinds[(id % kinds.len() as u64) as usize]);
        let segs = [KIOSK, MAIRIE, POSTE];
        let src = segs[(id / 8 % 3) as usize];
        k.src_segment = Some(src);
        k.dst = Some(match k.kind {
            EventKind::RouterAccess => Destination::Router,
            _ => match id / 24 % 4 {
                0 => Destination::Private,
                1 => Destination::Internet,
                n => Destination::Segment(segs[((src.0 as u64 + n) % 3) as usize]),
            },
        });
        if k.dst == Some(Destination::Segment(src)) {
            k.dst = Some(Destination::Private);
        }
        k.src_ip = Some(IpAddr::V4(Ipv4Addr::from(
            (id as u32).wrapping_mul(2_654_435_761),
        )));
        k.proto = Some(L4::Udp);
        // Several sources share each destination port, as in a flood from random sources.
        k.dst_port = Some((id / 7 % 64) as u16);
        k
    }

    /// The fairness the folder promises (module documentation), as a model of the first
    /// alerts in the window: what each one was, and whether a refusal was justified.
    struct Fairness {
        cap: usize,
        /// (time, class, target (`None`: a counter's own first alert), new target).
        log: Vec<(u64, Class, Option<FlowKey>, bool)>,
    }

    impl Fairness {
        fn share(&self) -> usize {
            (self.cap / 4).max(2).min(self.cap)
        }

        fn in_window(
            &self,
            now: u64,
        ) -> impl Iterator<Item = &(u64, Class, Option<FlowKey>, bool)> {
            self.log
                .iter()
                .filter(move |e| e.0 + WINDOW_US + MARGIN_US > now)
        }

        /// First alerts in the window: all, of `class`, of `class` for new sources, and
        /// whether `target` had one.
        fn state(
            &self,
            now: u64,
            class: Class,
            target: Option<FlowKey>,
        ) -> (usize, usize, usize, bool) {
            let mut st = (0, 0, 0, false);
            for (_, c, t, new_target) in self.in_window(now) {
                st.0 += 1;
                if *c == class {
                    st.1 += 1;
                    st.2 += usize::from(!new_target);
                }
                st.3 |= target.is_some() && *t == target;
            }
            st
        }

        fn written(&mut self, seed: u64, now: u64, class: Class, target: Option<FlowKey>) {
            // Time only goes forward here: what left the window never comes back.
            self.log.retain(|e| e.0 + WINDOW_US + MARGIN_US > now);
            let (_, _, _, known) = self.state(now, class, target);
            self.log.push((now, class, target, !known));
            let (total, used, by_sources, _) = self.state(now, class, target);
            assert!(
                total <= self.cap,
                "seed {seed}: {total} first alerts in a window"
            );
            assert!(
                used <= self.share(),
                "seed {seed}: {class:?} has {used} first alerts, share {}",
                self.share()
            );
            assert!(
                by_sources <= self.share().div_ceil(2),
                "seed {seed}: {class:?} has {by_sources} first alerts for new sources"
            );
        }

        fn refused(&self, seed: u64, now: u64, class: Class, target: FlowKey) {
            let (total, used, by_sources, known) = self.state(now, class, Some(target));
            let justified = total >= self.cap
                || (used > 0
                    && (used >= self.share()
                        || total + self.cap / 8 >= self.cap
                        || (known && by_sources >= self.share().div_ceil(2))));
            assert!(
                justified,
                "seed {seed}: {class:?} refused a first alert: {total} in the window, {used} of its class ({by_sources} for new sources), target known: {known}"
            );
        }
    }

    fn run_random(seed: u64, steps: usize, pool: u64, s: FoldSettings, external_resets: bool) {
        let mut rng = Rng(seed);
        let n = names();
        let mut f = Folder::new(n.clone(), s.clone());
        let mut k = Kernel {
            raw: BTreeMap::new(),
            packets: BTreeMap::new(),
            view: BTreeMap::new(),
            observable: BTreeMap::new(),
            sampled_since_read: false,
        };
        let mut seen_keys = std::collections::HashSet::new();
        let mut entries: Vec<(u64, Alert)> = Vec::new();
        let mut fair = Fairness {
            cap: s.first_alerts_per_minute(),
            log: Vec::new(),
        };
        // A counter's own first alerts, in the model.
        let counter_firsts = |fair: &mut Fairness, out: &[Alert], now: u64| {
            for a in out.iter().filter(|a| !a.is_summary()) {
                let src = a.field(field::SRC_SEGMENT).and_then(|s| n.segment_id(s));
                fair.written(
                    seed,
                    now,
                    Class {
                        kind: a.kind(),
                        src,
                    },
                    None,
                );
            }
        };
        let mut now = 0u64;
        let read = |f: &mut Folder, k: &mut Kernel, now: u64| {
            let r: Vec<(String, u64)> = k.raw.iter().map(|(a, b)| (a.clone(), *b)).collect();
            k.sampled_since_read = false;
            // What any reader of the counters can know: increases, and restarts seen as
            // a value lower than the last one read.
            for (name, v) in &k.raw {
                let last = k.view.get(name).copied().unwrap_or(0);
                let seen = if *v >= last { v - last } else { *v };
                if let CounterClass::Alert(kind) = n.classify_counter(name) {
                    *k.observable.entry(kind).or_insert(0) += seen;
                }
            }
            k.view = k.raw.clone();
            f.counters(&r, at(now))
        };
        for _ in 0..steps {
            let step = if rng.chance(2) { 90_000 } else { 400 };
            now += rng.below(step);
            match rng.below(100) {
                0..=69 => {
                    let key = random_flow(&mut rng, pool);
                    let most = if rng.chance(5) { 500 } else { 3 };
                    let burst = 1 + rng.below(most);
                    for _ in 0..burst {
                        let new = seen_keys.insert(key);
                        let out = if counter_backed(key.kind) {
                            let c = n.counter_of(&key).unwrap();
                            if n.classify_counter(&c) == CounterClass::Noise {
                                // kiosk/internet: counted, and a stray sample is ignored.
                                k.drop_packet(&c, EventKind::ConfigApplied, 1);
                                assert!(f.observe(&key, at(now)).is_none());
                                continue;
                            }
                            k.drop_packet(&c, key.kind, 1);
                            // The log rule is rate-limited: most packets are not sampled.
                            if new || rng.chance(10) {
                                k.sampled_since_read = true;
                                f.observe(&key, at(now))
                            } else {
                                None
                            }
                        } else {
                            *k.packets.entry(key.kind).or_insert(0) += 1;
                            f.observe(&key, at(now))
                        };
                        let now_us = usec(at(now));
                        if new && out.is_none() {
                            fair.refused(seed, now_us, Class::of(&key), target_of(&key));
                        }
                        if let Some(a) = &out {
                            assert!(!a.is_summary());
                            fair.written(seed, now_us, Class::of(&key), Some(target_of(&key)));
                        }
                        if new && let Some(a) = &out {
                            assert_eq!(a.packets(), 1);
                        }
                        entries.extend(out.map(|a| (now_us, a)));
                        assert!(f.stats().tracked_flows <= s.max_flows);
                    }
                }
                70..=79 => {
                    // Unsampled drops (the log rule's limit was reached).
                    let key = random_flow(&mut rng, pool);
                    if let Some(c) = n.counter_of(&key) {
                        let kind = match n.classify_counter(&c) {
                            CounterClass::Alert(kind) => kind,
                            CounterClass::Noise => EventKind::ConfigApplied,
                        };
                        k.drop_packet(&c, kind, rng.below(2000));
                    }
                    if rng.chance(20) {
                        k.drop_packet("isp/kiosk", EventKind::ConfigApplied, 5);
                        k.drop_packet("kiosk/broadcast", EventKind::ConfigApplied, 7);
                    }
                }
                80..=89 => {
                    let out = read(&mut f, &mut k, now);
                    counter_firsts(&mut fair, &out, usec(at(now)));
                    entries.extend(out.into_iter().map(|a| (usec(at(now)), a)));
                }
                90..=97 => {
                    let out = f.tick(at(now));
                    entries.extend(out.into_iter().map(|a| (usec(at(now)), a)));
                }
                _ => {
                    // The table is replaced. The daemon reads just before and tells the
                    // folder the new table's starting values: nothing is lost.
                    if !external_resets || rng.chance(70) || k.sampled_since_read {
                        let out = read(&mut f, &mut k, now);
                        counter_firsts(&mut fair, &out, usec(at(now)));
                        entries.extend(out.into_iter().map(|a| (usec(at(now)), a)));
                        for v in k.raw.values_mut() {
                            *v = 0;
                        }
                        let zeros: Vec<(String, u64)> =
                            k.raw.keys().map(|c| (c.clone(), 0)).collect();
                        f.baseline(&zeros);
                        k.view = k.raw.clone();
                    } else {
                        // Someone else replaced it: what was counted since the last reading
                        // is lost to everyone, and a counter that climbs back above its
                        // last reading hides the restart (the model only does this when no
                        // sample is in flight).
                        for v in k.raw.values_mut() {
                            *v = 0;
                        }
                    }
                }
            }
        }
        let bound = s.max_per_minute as usize;
        assert!(
            max_per_window(&entries, |_| true) <= bound,
            "seed {seed}: {} entries in a minute, bound {bound}",
            max_per_window(&entries, |_| true)
        );
        assert!(max_per_window(&entries, |a| !a.is_summary()) <= s.first_alerts_per_minute());
        now += 1000;
        entries.extend(read(&mut f, &mut k, now).into_iter().map(|a| (0, a)));
        let flushed = f.flush(at(now));
        let mut over: BTreeMap<EventKind, usize> = BTreeMap::new();
        for a in &flushed {
            *over.entry(a.kind()).or_insert(0) += 1;
        }
        assert!(
            flushed.len() <= s.summaries_per_minute() + over.len(),
            "seed {seed}: flush wrote {} entries",
            flushed.len()
        );
        entries.extend(flushed.into_iter().map(|a| (0, a)));
        let sums = sum_by_kind(&entries);
        let stats = f.stats();
        for (kind, c) in &stats.kinds {
            let all = k.packets.get(kind).copied().unwrap_or(0);
            let truth = if counter_backed(*kind) {
                let seen = k.observable.get(kind).copied().unwrap_or(0);
                if !external_resets {
                    assert_eq!(
                        seen, all,
                        "seed {seed}: {kind}: packets lost without external resets"
                    );
                }
                seen
            } else {
                all
            };
            let written = sums.get(kind).copied().unwrap_or(0);
            assert_eq!(
                written, truth,
                "seed {seed}: {kind}: written {written}, counted {truth}"
            );
            assert_eq!(c.counted, truth, "seed {seed}: {kind}");
            assert_eq!(c.reported, truth, "seed {seed}: {kind}");
            assert_eq!(c.unconfirmed, 0, "seed {seed}: {kind}");
        }
        for (_, a) in &entries {
            assert!(
                a.packets() > 0,
                "seed {seed}: an entry without packets: {a:?}"
            );
        }
    }

    #[test]
    fn random_sequences_keep_exact_counts_and_the_bound() {
        for seed in 0..60 {
            let s = match seed % 4 {
                0 => settings(120, 60, 4096),
                1 => settings(10, 1, 32),
                2 => settings(20, 10, 200),
                _ => settings(10_000, 5, 64),
            };
            let pool = if seed % 3 == 0 { 40 } else { 5000 };
            run_random(seed, 3000, pool, s, seed % 2 == 1);
        }
    }

    #[test]
    fn flood_of_100k_blocked_packets_is_bounded_and_exact() {
        let s = settings(120, 60, DEFAULT_MAX_FLOWS);
        let mut f = Folder::new(names(), s.clone());
        let mut entries: Vec<(u64, Alert)> = Vec::new();
        let mut rng = Rng(7);
        let mut raw = BTreeMap::<String, u64>::new();
        let mut frames = 0u64;
        let n = names();
        let started = std::time::Instant::now();
        // 100k packets in 5 s: half one SMB flow, half forged sources (each new), plus
        // 20k spoofed ARP frames seen by the capture; samples limited to 1 in 50.
        for i in 0..120_000u64 {
            let now = i / 24; // ms
            let key = match i % 6 {
                0..=1 => smb(15),
                2..=4 => {
                    let mut k = smb(0);
                    k.kind = EventKind::SpoofedSource;
                    k.src_ip = Some(IpAddr::V4(Ipv4Addr::from(rng.next() as u32)));
                    k
                }
                _ => arp((i % 200) as u8),
            };
            let out = if counter_backed(key.kind) {
                *raw.entry(n.counter_of(&key).unwrap()).or_insert(0) += 1;
                if i % 50 < 2 {
                    f.observe(&key, at(now))
                } else {
                    None
                }
            } else {
                frames += 1;
                f.observe(&key, at(now))
            };
            entries.extend(out.map(|a| (usec(at(now)), a)));
            if i % 2400 == 0 {
                let r: Vec<(String, u64)> = raw.iter().map(|(a, b)| (a.clone(), *b)).collect();
                entries.extend(
                    f.counters(&r, at(now))
                        .into_iter()
                        .map(|a| (usec(at(now)), a)),
                );
                entries.extend(f.tick(at(now)).into_iter().map(|a| (usec(at(now)), a)));
            }
        }
        let mut now = 5_000;
        while now <= 180_000 {
            entries.extend(f.tick(at(now)).into_iter().map(|a| (usec(at(now)), a)));
            now += 1000;
        }
        let r: Vec<(String, u64)> = raw.iter().map(|(a, b)| (a.clone(), *b)).collect();
        entries.extend(
            f.counters(&r, at(now))
                .into_iter()
                .map(|a| (usec(at(now)), a)),
        );
        entries.extend(f.flush(at(now)).into_iter().map(|a| (usec(at(now)), a)));
        let elapsed = started.elapsed();
        assert!(max_per_window(&entries, |_| true) <= 120);
        let sums = sum_by_kind(&entries);
        assert_eq!(sums[&EventKind::CrossSegment], 40_000);
        assert_eq!(sums[&EventKind::SpoofedSource], 60_000);
        assert_eq!(sums[&EventKind::ArpSpoof], frames);
        assert!(entries.len() <= 120 * 4, "{} entries", entries.len());
        eprintln!(
            "flood: 120k packets, {} entries, {:?} in the folder",
            entries.len(),
            elapsed
        );
    }
}
