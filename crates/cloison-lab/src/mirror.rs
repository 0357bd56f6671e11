//! A second pair of eyes on the router's capture points, for tests and the soak: one
//! packet socket per capture point, with the daemon's own kernel filter, each frame
//! classified as the daemon's capture thread does. Opened before the daemon starts and
//! stopped after it exits, it sees every frame the daemon could have seen: what it finds,
//! per layer-2 kind, is the ground truth the daemon's entries must add up to.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cloison::capture::{CaptureSocket, SocketStats};
use cloison_core::alert::counter_backed;
use cloison_core::alert::event::EventKind;
use cloison_core::config::Config;
use cloison_core::inspect::{Topology, TopologyError, capture_filter, classify};

/// The daemon's capture buffer (cloison's daemon/sources.rs): frames are classified as
/// cut there.
const CAPTURE_FRAME: usize = 1 << 16;

/// The kernel receive buffer of each of the mirror's sockets: room for a long burst.
const RCVBUF: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot enter the router's network namespace")]
    Netns(#[from] crate::NetnsError),
    #[error("cannot map the configuration onto the router's interfaces")]
    Topology(#[from] TopologyError),
    #[error("cannot build the capture filter of {iface}")]
    Filter {
        iface: String,
        #[source]
        source: cloison_core::inspect::FilterError,
    },
    #[error("cannot open a packet socket on {iface}")]
    Socket {
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// What the capture points saw while the mirror ran.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Frames that passed the filter (the router's own excepted).
    pub frames: u64,
    /// Frames `classify` reports, per kind the capture counts itself (kinds backed by
    /// ruleset counters are counted by the kernel instead).
    pub found: BTreeMap<EventKind, u64>,
    /// The mirror's sockets' own kernel counters: a drop here makes the truth uncertain.
    pub stats: Vec<(String, SocketStats)>,
}

/// A running mirror; `stop` returns what it saw.
pub struct Mirror {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Seen>>,
}

impl Mirror {
    /// Opens a socket on each capture point of `config` in `router_ns` and starts reading.
    pub fn start(router_ns: &str, config: &Config) -> Result<Mirror, MirrorError> {
        let opened = crate::in_netns(router_ns, || -> Result<_, MirrorError> {
            let links = cloison::capture::links();
            let topology = Topology::new(config, &links)?;
            let mut sockets = Vec::new();
            for (point, ifindex) in topology.capture_points() {
                let iface = links
                    .iter()
                    .find(|l| l.index == ifindex)
                    .map_or_else(|| ifindex.to_string(), |l| l.name.clone());
                let filter =
                    capture_filter(&topology, point).map_err(|source| MirrorError::Filter {
                        iface: iface.clone(),
                        source,
                    })?;
                let socket = CaptureSocket::open(&iface, ifindex, &filter, RCVBUF)
                    .map_err(|source| MirrorError::Socket { iface, source })?;
                sockets.push(socket);
            }
            Ok((topology, sockets))
        })?;
        let (topology, sockets) = opened?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("mirror".to_owned())
            .spawn(move || read(&topology, sockets, &flag))
            .expect("spawn the mirror's thread");
        Ok(Mirror {
            stop,
            handle: Some(handle),
        })
    }

    /// Reads what is still queued, stops, and says what the capture points saw.
    pub fn stop(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().expect("the mirror's thread panicked"))
            .unwrap_or_default()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn read(topology: &Topology, mut sockets: Vec<CaptureSocket>, stop: &AtomicBool) -> Seen {
    let mut seen = Seen::default();
    let mut buf = vec![0u8; CAPTURE_FRAME];
    // One last pass after `stop`, to drain what is queued.
    let mut last = false;
    loop {
        let ready =
            cloison::capture::wait(&sockets, Duration::from_millis(100)).unwrap_or_default();
        for i in ready {
            let socket = &sockets[i];
            let Some(ctx) = topology.context(socket.ifindex) else {
                continue;
            };
            // An error (the interface coming up as the daemon applies its link plan
            // reports ENETDOWN once) leaves the queue as it is: read on next time.
            while let Ok(Some((n, meta))) = socket.recv(&mut buf) {
                if meta.outgoing() {
                    continue;
                }
                seen.frames += 1;
                let ctx = ctx.with_aux(
                    meta.aux_vlan.map(|(tci, _)| tci),
                    meta.aux_vlan.map(|(_, tpid)| tpid),
                );
                if let Some(f) = classify(&buf[..n], &ctx) {
                    let kind = f.flow_key().kind;
                    if !counter_backed(kind) {
                        *seen.found.entry(kind).or_default() += 1;
                    }
                }
            }
        }
        if last {
            break;
        }
        last = stop.load(Ordering::Relaxed);
    }
    seen.stats = sockets
        .iter_mut()
        .map(|s| (s.ifname.clone(), s.stats()))
        .collect();
    seen
}
