//! The daemon's event loop: where events come from, handed to the `Supervisor`.
//! Sources: the ruleset's sampled drops (NFLOG, read here so they can be drained right
//! before each counter reading), the capture thread's layer-2 findings, the control
//! socket, signals (SIGHUP reloads; SIGTERM and SIGINT stop), the confirmation deadline,
//! a one-second tick (summaries, and the kernel reading every `POLL_KERNEL`) and the
//! watchdog.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use cloison_core::alert::Sink;
use cloison_core::sample;
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::DaemonError;
use super::control::{self, Call, Request, Response};
use super::notify::{self, Heartbeats};
use super::sources::{self, Event, Source};
use super::supervisor::Supervisor;
use crate::kernel::Kernel;
use crate::nflog::Reader;

/// How often the live table is read: counters for the alerts, and the drift check
/// (a change by someone else is seen and repaired within this, well under 5 s).
const POLL_KERNEL: Duration = Duration::from_secs(2);
/// A loop silent for longer than this stops the watchdog pings (when systemd asked for
/// none, this still shows in the logs).
const STALL: Duration = Duration::from_secs(10);

/// The running capture and its counters.
struct Capture {
    source: Option<(Source, sources::CaptureStats)>,
    hearts: std::sync::Arc<Heartbeats>,
    tx: mpsc::Sender<Event>,
}

impl Capture {
    /// (Re)starts the capture for `config`. Without it the firewall still isolates and
    /// counts; only layer-2 evidence is missing, which is logged.
    fn restart(&mut self, config: &cloison_core::config::Config) {
        if let Some((mut old, _)) = self.source.take() {
            old.stop();
        }
        let beat = self.hearts.beat("capture");
        match sources::capture(config, self.tx.clone(), beat.clone()) {
            Ok(c) => self.source = Some(c),
            Err(e) => {
                beat.retire();
                tracing::error!(cause = %format!("{e:#}"), "layer-2 inspection is off");
            }
        }
    }

    fn counters(&self) -> std::collections::BTreeMap<String, control::CaptureCounters> {
        self.source
            .as_ref()
            .map(|(_, stats)| {
                stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }
}

/// Runs until `shutdown` completes or SIGTERM/SIGINT arrives.
pub async fn run<K: Kernel, S: Sink>(
    mut sup: Supervisor<K, S>,
    runtime_dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let hearts = Heartbeats::new(&["loop", "capture"]);
    let (tx, mut rx) = mpsc::channel(1024);
    let mut capture = Capture {
        source: None,
        hearts: std::sync::Arc::clone(&hearts),
        tx,
    };
    let mut nflog = open_nflog();
    capture.restart(sup.config());

    let (calls_tx, mut calls) = mpsc::channel::<Call>(16);
    let listener = control::bind(runtime_dir).map_err(|source| DaemonError::Control {
        dir: runtime_dir.to_owned(),
        source,
    })?;
    tokio::spawn(control::serve(listener, calls_tx));

    let sig = |kind| signal(kind).map_err(DaemonError::Signals);
    let (mut sigterm, mut sigint, mut sighup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watchdog_every = notify::watchdog_interval().map(|w| w / 2);
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(5)));
    let beat = hearts.beat("loop");
    let mut last_poll = Instant::now();

    notify::ready(&sup.status_line());
    tracing::info!(status = %sup.status_line(), "ready");
    tokio::pin!(shutdown);
    loop {
        let config_before = sup.running_hash().clone();
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                if let Err(e) = sup.reload(None).await {
                    tracing::warn!("reload refused: {e}");
                }
            }
            Some(ev) = rx.recv() => on_event(&mut sup, ev),
            ready = nflog_readable(&mut nflog) => {
                if let Some(mut guard) = ready {
                    if !read_nflog(&mut sup, guard.get_inner_mut()) {
                        guard.clear_ready();
                    }
                }
            }
            Some((req, reply)) = calls.recv() => {
                let answer = on_request(&mut sup, &capture, req).await;
                let _ = reply.send(answer);
            }
            _ = sleep_until(sup.confirm_deadline()) => sup.rollback().await,
            _ = tick.tick() => {
                beat.now();
                if last_poll.elapsed() >= POLL_KERNEL {
                    last_poll = Instant::now();
                    drain(&mut sup, &mut rx, nflog.as_mut().map(AsyncFd::get_mut));
                    sup.read_kernel(SystemTime::now(), false);
                }
                sup.tick(SystemTime::now());
            }
            _ = watchdog.tick() => {
                let stalled = hearts.stalled(STALL);
                if stalled.is_empty() {
                    if watchdog_every.is_some() {
                        notify::watchdog();
                    }
                } else if let Some(held_back) = sup.limited("stalled") {
                    tracing::error!(loops = ?stalled, held_back, "stalled loops: not telling systemd all is well");
                }
            }
        }
        if sup.running_hash() != &config_before {
            capture.restart(sup.config());
        }
    }

    notify::stopping();
    tracing::info!("stopping; the ruleset and forwarding stay as they are");
    if let Some((mut c, _)) = capture.source.take() {
        c.stop();
    }
    drain(&mut sup, &mut rx, nflog.as_mut().map(AsyncFd::get_mut));
    sup.read_kernel(SystemTime::now(), false);
    sup.flush(SystemTime::now());
    let _ = std::fs::remove_file(control::socket_path(runtime_dir));
    Ok(())
}

fn open_nflog() -> Option<AsyncFd<Reader>> {
    match Reader::open_nonblocking().and_then(|r| {
        // SAFETY: the Reader owns its socket for as long as it lives; the fd never changes.
        unsafe { AsyncFd::register_with_interest(r, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(cause = %e, "cannot read the ruleset's NFLOG group: blocked traffic is counted but not named");
            None
        }
    }
}

/// Waits until the NFLOG socket has something to read (forever without a socket).
async fn nflog_readable(
    r: &mut Option<AsyncFd<Reader>>,
) -> Option<AsyncFdReadyMutGuard<'_, Reader>> {
    match r {
        Some(fd) => fd.readable_mut().await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads what the NFLOG socket holds; false once it is empty.
fn read_nflog<K: Kernel, S: Sink>(sup: &mut Supervisor<K, S>, reader: &mut Reader) -> bool {
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
        .collect();
    sup.observe(keys, SystemTime::now());
    true
}

fn on_event<K: Kernel, S: Sink>(sup: &mut Supervisor<K, S>, ev: Event) {
    match ev {
        Event::Frames(keys) => sup.observe(keys, SystemTime::now()),
        Event::Failed { source, error } => {
            tracing::error!(source, cause = %error, "a watch loop stopped")
        }
    }
}

/// Everything already queued (NFLOG samples, capture findings), so that a counter
/// reading never precedes the samples of the packets it counts.
fn drain<K: Kernel, S: Sink>(
    sup: &mut Supervisor<K, S>,
    rx: &mut mpsc::Receiver<Event>,
    nflog: Option<&mut Reader>,
) {
    if let Some(reader) = nflog {
        while read_nflog(sup, reader) {}
    }
    while let Ok(ev) = rx.try_recv() {
        on_event(sup, ev);
    }
}

async fn on_request<K: Kernel, S: Sink>(
    sup: &mut Supervisor<K, S>,
    capture: &Capture,
    req: Request,
) -> Response {
    let done = |r: Result<String, String>| match r {
        Ok(message) => Response::Done { message },
        Err(message) => Response::Error { message },
    };
    match req {
        Request::Status => Response::Status(sup.status(capture.counters())),
        Request::Reload { confirm_secs } => {
            done(sup.reload(confirm_secs.map(Duration::from_secs)).await)
        }
        Request::Confirm => done(sup.confirm()),
    }
}
