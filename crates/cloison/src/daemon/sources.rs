//! What feeds the daemon's loop. The capture runs on a thread of its own (layer-2
//! evidence; short read timeouts, a heartbeat, stops when asked), held by `Capture`.
//! The netlink sockets are read by the loop itself, through tokio's `AsyncFd`: NFLOG (so
//! samples can be drained right before each counter reading), and the guard's two
//! watches: nftables transactions and policy-routing changes, each turned into "check
//! now" with who made the change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cloison_core::alert::event::FlowKey;
use cloison_core::alert::{Actor, Sink};
use cloison_core::names::TABLE;
use cloison_core::sample;
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tokio::sync::mpsc;

use super::notify::Heartbeats;
use super::supervisor::Supervisor;
use crate::kernel::Kernel;
use crate::kernel::nfnetlink::{self, Watcher};
use crate::kernel::route_watch::{RouteWatcher, Seen};
use crate::nflog::Reader;

/// What the threads send to the daemon's loop.
#[derive(Debug)]
pub enum Event {
    /// Layer-2 findings from the capture: a key and how many frames in a row had it.
    Frames(Vec<(FlowKey, u32)>),
    /// A source stopped working; the daemon logs it and the watchdog sees the silence.
    Failed { source: &'static str, error: String },
}

/// A running source thread.
pub struct Source {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Source {
    pub fn spawn(
        name: &'static str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> Source {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(flag))
            .expect("spawn a thread");
        Source {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a source blocks at most before checking whether it must stop (and beating
/// its heart: the watchdog calls a loop stalled after 10 s).
pub const POLL: Duration = Duration::from_millis(500);

/// The capture loop's counters per interface, for `cloison status`.
pub type CaptureStats = std::sync::Arc<
    std::sync::Mutex<std::collections::BTreeMap<String, super::control::CaptureCounters>>,
>;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot map the configuration onto the router's interfaces")]
    Topology(#[from] cloison_core::inspect::TopologyError),
    #[error("cannot build the capture filter for {iface}")]
    Filter {
        iface: String,
        #[source]
        source: cloison_core::inspect::FilterError,
    },
    #[error("cannot open a capture socket on {iface}")]
    Socket {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs of findings per hand-over to the loop, at most (plus one block's): with `QUEUED`
/// hand-overs waiting at most, what the capture holds for a loop that lags is bounded
/// (a few MiB); beyond, the capture waits, the ring fills, and the kernel drops and counts
/// (`cloison status`, capture dropped).
pub const HANDOVER: usize = 1024;
/// Hand-overs waiting for the loop, at most.
pub const QUEUED: usize = 4;

/// How often, at most, the capture re-reads the neighbour tables to attribute a breach.
const NEIGHBOURS_EVERY: Duration = Duration::from_secs(1);

/// Microseconds on a clock that only goes forward, for attribution's evidence windows.
fn monotonic_us() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_micros(),
    )
    .unwrap_or(u64::MAX)
}

/// Adds one frame's finding to the hand-over: a frame like the one before it adds to its
/// run (a flood repeats itself, and the folder then takes the run at the cost of one).
fn fold_run(batch: &mut Vec<(FlowKey, u32)>, key: FlowKey) {
    match batch.last_mut() {
        Some((last, times)) if *last == key && *times < u32::MAX => *times += 1,
        _ => batch.push((key, 1)),
    }
}

/// Starts the capture on every segment interface and the trunk of `topology` (built from
/// `links`): kernel-filtered frames, classified, sent to the loop as flow keys.
pub fn capture(
    topology: cloison_core::inspect::Topology,
    links: &[cloison_core::inspect::Link],
    tx: mpsc::Sender<Event>,
    beat: super::notify::Beat,
) -> Result<(Source, CaptureStats), CaptureError> {
    use crate::capture::{CaptureRing, wait};
    use cloison_core::inspect::{Attribution, capture_filter, classify};

    let mut sockets = Vec::new();
    for (point, ifindex) in topology.capture_points() {
        let iface = links
            .iter()
            .find(|l| l.index == ifindex)
            .map_or_else(|| ifindex.to_string(), |l| l.name.clone());
        let program = capture_filter(&topology, point).map_err(|source| CaptureError::Filter {
            iface: iface.clone(),
            source,
        })?;
        let socket = CaptureRing::open(&iface, ifindex, &program)
            .map_err(|source| CaptureError::Socket { iface, source })?;
        sockets.push(socket);
    }
    let stats: CaptureStats = Default::default();
    let shared = std::sync::Arc::clone(&stats);
    let source = Source::spawn("cloison-capture", move |stop| {
        let mut batch = Vec::new();
        let mut attribution = Attribution::default();
        let mut neighbours_read: Option<std::time::Instant> = None;
        let mut last_stats = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) {
            beat.now();
            let ready = match wait(&sockets, POLL) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Event::Failed {
                        source: "capture",
                        error: e.to_string(),
                    });
                    return;
                }
            };
            for i in ready {
                let socket = &mut sockets[i];
                let Some(ctx) = topology.context(socket.ifindex) else {
                    continue;
                };
                // Drain the blocks the kernel handed over, handing the findings to the
                // loop every HANDOVER or so (a block holds up to about a thousand).
                for _ in 0..crate::capture::ring::BLOCKS {
                    // One reading of the clock a block: attribution's evidence lasts
                    // minutes, and a block is at most 50 ms old.
                    let now = monotonic_us();
                    let read = socket.next_block(|frame, meta| {
                        if meta.outgoing() {
                            return;
                        }
                        let ctx = ctx.with_aux(
                            meta.aux_vlan.map(|(tci, _)| tci),
                            meta.aux_vlan.map(|(_, tpid)| tpid),
                        );
                        let Some(finding) = classify(frame, &ctx) else {
                            return;
                        };
                        attribution.note(&finding, now);
                        if Attribution::wants(&finding)
                            && neighbours_read.is_none_or(|t| t.elapsed() >= NEIGHBOURS_EVERY)
                        {
                            neighbours_read = Some(std::time::Instant::now());
                            match crate::neighbours::dump() {
                                Ok(n) => attribution.set_neighbours(n),
                                Err(e) => {
                                    tracing::debug!(cause = %e, "cannot read the neighbour tables")
                                }
                            }
                        }
                        let mut key = finding.flow_key();
                        key.origin = attribution.origin(&finding, now);
                        fold_run(&mut batch, key);
                    });
                    if read == 0 {
                        break;
                    }
                    if batch.len() >= HANDOVER
                        && tx
                            .blocking_send(Event::Frames(std::mem::take(&mut batch)))
                            .is_err()
                    {
                        return;
                    }
                }
            }
            if !batch.is_empty()
                && tx
                    .blocking_send(Event::Frames(std::mem::take(&mut batch)))
                    .is_err()
            {
                return;
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                last_stats = std::time::Instant::now();
                let mut map = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for s in &mut sockets {
                    let st = s.stats();
                    map.insert(
                        s.ifname.clone(),
                        super::control::CaptureCounters {
                            received: st.received,
                            dropped: st.dropped,
                        },
                    );
                }
            }
        }
    });
    Ok((source, stats))
}

/// The capture thread of the running configuration, its counters, and the view of the
/// router it inspects with.
pub struct Capture {
    source: Option<(Source, CaptureStats, cloison_core::inspect::Topology)>,
    hearts: Arc<Heartbeats>,
    tx: mpsc::Sender<Event>,
}

impl Capture {
    pub fn new(hearts: &Arc<Heartbeats>, tx: mpsc::Sender<Event>) -> Capture {
        Capture {
            source: None,
            hearts: Arc::clone(hearts),
            tx,
        }
    }

    /// (Re)starts the capture for `config`. Without it the firewall still isolates and
    /// counts; only layer-2 evidence is missing, which is logged.
    ///
    /// A running capture whose view of the router would not change (the same segments,
    /// interfaces, addresses and VLANs: a reload that edits the policy) keeps running:
    /// restarting it would leave a moment when frames reach no socket, uncounted.
    pub fn restart(&mut self, config: &cloison_core::config::Config) {
        let links = crate::capture::links();
        let topology = cloison_core::inspect::Topology::new(config, &links);
        if let (Ok(next), Some((_, _, running))) = (&topology, &self.source)
            && next == running
        {
            tracing::debug!("the capture's view of the router is unchanged: it keeps running");
            return;
        }
        self.stop();
        let beat = self.hearts.beat("capture");
        let started = topology.map_err(CaptureError::from).and_then(|t| {
            let (source, stats) = capture(t.clone(), &links, self.tx.clone(), beat.clone())?;
            Ok((source, stats, t))
        });
        match started {
            Ok(c) => self.source = Some(c),
            Err(e) => {
                beat.retire();
                tracing::error!(cause = %format!("{e:#}"), "layer-2 inspection is off");
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some((mut old, _, _)) = self.source.take() {
            old.stop();
        }
    }

    pub fn counters(&self) -> std::collections::BTreeMap<String, super::control::CaptureCounters> {
        self.source
            .as_ref()
            .map(|(_, stats, _)| {
                stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }
}

/// A socket registered with tokio, or why it could not be (logged once).
fn register<T: std::os::fd::AsRawFd>(what: &str, opened: std::io::Result<T>) -> Option<AsyncFd<T>> {
    let registered = opened.and_then(|r| {
        // SAFETY: `r` owns its socket for as long as it lives; the fd never changes.
        unsafe { AsyncFd::register_with_interest(r, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    });
    match registered {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::error!(cause = %e, "cannot open {what}");
            None
        }
    }
}

pub fn open_nflog() -> Option<AsyncFd<Reader>> {
    register(
        "the ruleset's NFLOG group: blocked traffic is counted but not named",
        Reader::open_nonblocking(),
    )
}

pub fn open_ruleset_watch() -> Option<AsyncFd<Watcher>> {
    register(
        "the nftables change notifications: changes are seen by the 2 s poll only",
        Watcher::open().map_err(std::io::Error::other),
    )
}

pub fn open_routing_watch() -> Option<AsyncFd<RouteWatcher>> {
    register(
        "the routing change notifications: changes are seen by the 2 s poll only",
        RouteWatcher::open(),
    )
}

/// Waits until the socket has something to read (forever without a socket).
pub async fn readable<T: std::os::fd::AsRawFd>(
    fd: &mut Option<AsyncFd<T>>,
) -> Option<AsyncFdReadyMutGuard<'_, T>> {
    match fd {
        Some(fd) => fd.readable_mut().await.ok(),
        None => std::future::pending().await,
    }
}

/// Reads what the NFLOG socket holds into the folder; false once it is empty.
pub fn read_nflog<K: Kernel, S: Sink>(sup: &mut Supervisor<K, S>, reader: &mut Reader) -> bool {
    // The socket is non-blocking: poll returns what is queued, or nothing.
    let samples = match reader.poll() {
        Ok(s) => s,
        Err(e) => {
            if let Some(held_back) = sup.limited("nflog") {
                tracing::error!(cause = %e, held_back, "reading NFLOG failed");
            }
            return false;
        }
    };
    if samples.is_empty() {
        return false;
    }
    let keys: Vec<_> = samples
        .iter()
        .filter_map(|s| sample::decode(s, sup.config()))
        .map(|key| (key, 1))
        .collect();
    sup.observe(keys, std::time::SystemTime::now());
    true
}

/// Everything already queued (NFLOG samples, capture findings), so that a counter
/// reading never precedes the samples of the packets it counts.
pub fn drain<K: Kernel, S: Sink>(
    sup: &mut Supervisor<K, S>,
    rx: &mut mpsc::Receiver<Event>,
    nflog: Option<&mut Reader>,
) {
    if let Some(reader) = nflog {
        while read_nflog(sup, reader) {}
    }
    while let Ok(ev) = rx.try_recv() {
        super::event_loop::on_event(sup, ev);
    }
}

/// A committed nftables transaction that touched cloison's table, as the guard needs it.
#[derive(Debug, Clone)]
pub struct RulesetNotice {
    /// The committing process (the kernel's pid and command name), when known.
    pub actor: Option<Actor>,
    /// What it did to cloison's table, in words, one line each.
    pub changes: Vec<String>,
    /// It created cloison's table anew (a whole replacement, as `cloison apply` makes):
    /// only a listing can tell whether it matches the plan.
    pub recreated: bool,
    /// Notifications were lost or incomplete: what happened is unknown.
    pub lost: bool,
}

/// The transactions read now that touched cloison's table (or a loss of notifications).
pub fn ruleset_changed(watcher: &mut Watcher) -> Vec<RulesetNotice> {
    let lost = || RulesetNotice {
        actor: None,
        changes: Vec::new(),
        recreated: false,
        lost: true,
    };
    let events = match watcher.poll() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(cause = %e, "reading nftables notifications failed; checking");
            return vec![lost()];
        }
    };
    let mut out = Vec::new();
    for e in events {
        match e {
            nfnetlink::Event::Overflow => out.push(lost()),
            nfnetlink::Event::Transaction(t) => {
                let ours = |c: &&nfnetlink::Change| {
                    c.family == nfnetlink::Family::Inet && c.table == TABLE
                };
                if !t.changes.iter().any(|c| ours(&c)) && t.complete {
                    continue;
                }
                out.push(RulesetNotice {
                    actor: t.pid.map(|pid| actor(pid, t.comm.clone())),
                    changes: describe(&t.changes),
                    recreated: t
                        .changes
                        .iter()
                        .filter(ours)
                        .any(|c| c.kind == nfnetlink::ChangeKind::NewTable),
                    lost: !t.complete,
                });
            }
        }
    }
    out
}

/// What a transaction did to cloison's table, in words.
fn describe(changes: &[nfnetlink::Change]) -> Vec<String> {
    use nfnetlink::ChangeKind::*;
    let ours = |c: &&nfnetlink::Change| c.family == nfnetlink::Family::Inet && c.table == TABLE;
    let others_deleted = changes
        .iter()
        .any(|c| c.kind == DelTable && !(c.family == nfnetlink::Family::Inet && c.table == TABLE));
    if changes.iter().filter(ours).any(|c| c.kind == DelTable) {
        return vec![if others_deleted {
            format!(
                "table inet {TABLE} was deleted with every other table (the ruleset was flushed)"
            )
        } else {
            format!("table inet {TABLE} was deleted")
        }];
    }
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for c in changes.iter().filter(ours) {
        let name = c.name.as_deref().unwrap_or("?");
        let line = match c.kind {
            NewRule => format!("a rule was added to chain {name}"),
            DelRule => format!("a rule was deleted from chain {name}"),
            NewChain => format!("chain {name} was added"),
            DelChain => format!("chain {name} was deleted"),
            NewSet | DelSet | NewSetElem | DelSetElem => format!("set {name} was changed"),
            NewObj | DelObj => format!("counter {name} was changed"),
            NewTable => format!("table inet {TABLE} was created anew"),
            _ => "the table was changed".to_owned(),
        };
        *counts.entry(line).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(line, n)| {
            if n > 1 {
                format!("{line} ({n} times)")
            } else {
                line
            }
        })
        .collect()
}

/// `Some(actor)` when cloison's policy rules or tables changed (or notifications were
/// lost). The actor is the process whose netlink port asked for it, when it is still
/// there to be named.
pub fn routing_changed(watcher: &mut RouteWatcher) -> Option<Option<Actor>> {
    let seen = match watcher.poll() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(cause = %e, "reading routing notifications failed; checking");
            return Some(None);
        }
    };
    let mut out = None;
    for s in seen {
        match s {
            Seen::Overflow => {
                out.get_or_insert(None);
            }
            Seen::Change(c) => {
                let a = (c.port != 0)
                    .then(|| comm_of(c.port).map(|comm| actor(c.port, Some(comm))))
                    .flatten();
                if out.as_ref().is_none_or(Option::is_none) {
                    out = Some(a);
                }
            }
        }
    }
    out
}

/// A process named by the kernel, with its parent when /proc still has it.
fn actor(pid: u32, comm: Option<String>) -> Actor {
    let parent = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<u32>().ok())
        })
        .and_then(|ppid| comm_of(ppid).map(|c| (ppid, c)));
    Actor {
        pid,
        comm: comm.or_else(|| comm_of(pid)),
        parent,
    }
}

fn comm_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloison_core::alert::event::EventKind;

    fn key(mac_last: u8) -> FlowKey {
        let mut k = FlowKey::new(EventKind::ArpSpoof);
        k.src_mac = Some([2, 0, 0, 0, 0, mac_last]);
        k
    }

    #[test]
    fn only_frames_in_a_row_share_a_run() {
        let mut batch = Vec::new();
        for m in [1, 1, 1, 2, 1, 1, 3] {
            fold_run(&mut batch, key(m));
        }
        let runs: Vec<_> = batch
            .iter()
            .map(|(k, n)| (k.src_mac.unwrap()[5], *n))
            .collect();
        assert_eq!(runs, [(1, 3), (2, 1), (1, 2), (3, 1)]);
    }

    #[test]
    fn a_full_run_starts_another() {
        let mut batch = vec![(key(1), u32::MAX)];
        fold_run(&mut batch, key(1));
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].1, 1);
    }
}
