//! The threads that feed the daemon's loop: the capture loop (layer-2 evidence).
//! (The NFLOG socket is read by the loop itself, so it can be drained right before each
//! counter reading.) Each runs on its own thread with a
//! short read timeout, beats its heartbeat, and stops when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use cloison_core::alert::event::FlowKey;

/// What the threads send to the daemon's loop.
#[derive(Debug)]
pub enum Event {
    /// Layer-2 findings from the capture, one key per frame.
    Frames(Vec<FlowKey>),
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

/// How long a source blocks at most before checking whether it must stop.
pub const POLL: Duration = Duration::from_millis(200);

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

/// The kernel receive buffer of each capture socket: room for a burst of suspect frames
/// while the loop is busy (what overflows is counted as dropped, never silently lost).
const CAPTURE_RCVBUF: usize = 4 << 20;

/// Starts the capture on every segment interface and the trunk: kernel-filtered frames,
/// classified, sent to the loop as flow keys.
pub fn capture(
    config: &cloison_core::config::Config,
    tx: mpsc::Sender<Event>,
    beat: super::notify::Beat,
) -> Result<(Source, CaptureStats), CaptureError> {
    use crate::capture::{CaptureSocket, interfaces, wait};
    use cloison_core::inspect::{Link, Topology, capture_filter, classify};

    let links: Vec<Link> = interfaces()
        .into_iter()
        .filter_map(|(name, index, mac)| mac.map(|mac| Link { name, index, mac }))
        .collect();
    let topology = Topology::new(config, &links)?;
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
        let socket = CaptureSocket::open(&iface, ifindex, &program, CAPTURE_RCVBUF)
            .map_err(|source| CaptureError::Socket { iface, source })?;
        sockets.push(socket);
    }
    let stats: CaptureStats = Default::default();
    let shared = std::sync::Arc::clone(&stats);
    let source = Source::spawn("cloison-capture", move |stop| {
        let mut buf = vec![0u8; 2048];
        let mut batch = Vec::new();
        let mut last_stats = std::time::Instant::now();
        let mut read_errors = cloison_core::alert::LogLimit::new(Duration::from_secs(60));
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
                let socket = &sockets[i];
                let Some(ctx) = topology.context(socket.ifindex) else {
                    continue;
                };
                // Drain what is queued, but hand over regularly under a flood.
                for _ in 0..4096 {
                    match socket.recv(&mut buf) {
                        Ok(Some((n, meta))) => {
                            let ctx = ctx.with_aux(
                                meta.aux_vlan.map(|(tci, _)| tci),
                                meta.aux_vlan.map(|(_, tpid)| tpid),
                            );
                            if let Some(finding) = classify(&buf[..n], &ctx) {
                                batch.push(finding.flow_key());
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            if let Some(held_back) = read_errors.allow(std::time::Instant::now()) {
                                tracing::warn!(iface = %socket.ifname, cause = %e, held_back, "capture read failed");
                            }
                            break;
                        }
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
