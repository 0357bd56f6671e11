//! The daemon's event loop: where events come from, handed to the `Supervisor`.
//! Sources (`Sources`): the ruleset's sampled drops (NFLOG, read here so they can be
//! drained right before each counter reading), the capture thread's layer-2 findings,
//! nftables change notifications and policy-routing change notifications (the guard:
//! a change to cloison's rules is checked and repaired as it happens, naming who made
//! it), the control socket, signals (SIGHUP reloads; SIGTERM and SIGINT stop), the
//! confirmation deadline, a one-second tick (summaries, and every `POLL_KERNEL` the
//! backstop reading) and the watchdog.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use cloison_core::alert::{Actor, Sink};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::DaemonError;
use super::control::{self, Call, Request, Response};
use super::notify::{self, Heartbeats};
use super::sources::{self, Capture, Event};
use super::supervisor::Supervisor;
use crate::kernel::Kernel;

/// How often the backstop reads the kernel: counters for the alerts, and whether the
/// rules moved without a notification (lost ones). Starts no process at rest.
const POLL_KERNEL: Duration = Duration::from_secs(2);
/// A loop silent for longer than this stops the watchdog pings (when systemd asked for
/// none, this still shows in the logs).
const STALL: Duration = Duration::from_secs(10);
/// Routing changes come one request at a time (`ip rule flush` deletes rule after
/// rule): the check waits this long for the burst to end.
const ROUTING_SETTLE: Duration = Duration::from_millis(5);

/// Runs until `shutdown` completes or SIGTERM/SIGINT arrives.
pub async fn run<K: Kernel, S: Sink>(
    mut sup: Supervisor<K, S>,
    runtime_dir: &std::path::Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let hearts = Heartbeats::new(&["loop", "capture"]);
    let (tx, mut rx) = mpsc::channel(sources::QUEUED);
    let mut capture = Capture::new(&hearts, tx);
    capture.restart(sup.config());
    let mut nflog = sources::open_nflog();
    let mut rules_watch = sources::open_ruleset_watch();
    let mut routing_watch = sources::open_routing_watch();

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
    // A routing check waiting for its burst to end, with who started it.
    let mut routing_check: Option<(tokio::time::Instant, Option<Actor>)> = None;

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
            ready = sources::readable(&mut nflog) => {
                if let Some(mut guard) = ready {
                    if !sources::read_nflog(&mut sup, guard.get_inner_mut()) {
                        guard.clear_ready();
                    }
                }
            }
            ready = sources::readable(&mut rules_watch) => {
                if let Some(mut guard) = ready {
                    let notices = sources::ruleset_changed(guard.get_inner_mut());
                    guard.clear_ready();
                    sup.on_ruleset_notices(SystemTime::now(), notices).await;
                }
            }
            ready = sources::readable(&mut routing_watch) => {
                if let Some(mut guard) = ready {
                    let changed = sources::routing_changed(guard.get_inner_mut());
                    guard.clear_ready();
                    if let Some(actor) = changed {
                        match &mut routing_check {
                            Some((_, first)) => {
                                if first.is_none() {
                                    *first = actor;
                                }
                            }
                            None => {
                                let at = tokio::time::Instant::now() + ROUTING_SETTLE;
                                routing_check = Some((at, actor));
                            }
                        }
                    }
                }
            }
            () = sleep_until(routing_check.as_ref().map(|(at, _)| *at)) => {
                let actor = routing_check.take().and_then(|(_, a)| a);
                sup.check(SystemTime::now(), actor).await;
            }
            Some((req, reply)) = calls.recv() => {
                let answer = on_request(&mut sup, &capture, req).await;
                let _ = reply.send(answer);
            }
            () = sleep_until(sup.confirm_deadline()) => sup.rollback().await,
            _ = tick.tick() => {
                beat.now();
                if last_poll.elapsed() >= POLL_KERNEL {
                    last_poll = Instant::now();
                    sources::drain(&mut sup, &mut rx, nflog.as_mut().map(|f| f.get_mut()));
                    sup.poll(SystemTime::now()).await;
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
    capture.stop();
    sources::drain(&mut sup, &mut rx, nflog.as_mut().map(|f| f.get_mut()));
    sup.read_counters(SystemTime::now(), false);
    sup.flush(SystemTime::now());
    let _ = std::fs::remove_file(control::socket_path(runtime_dir));
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) fn on_event<K: Kernel, S: Sink>(sup: &mut Supervisor<K, S>, ev: Event) {
    match ev {
        Event::Frames(keys) => sup.observe(keys, SystemTime::now()),
        Event::Failed { source, error } => {
            tracing::error!(source, cause = %error, "a watch loop stopped");
        }
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
        Request::Status => Response::Status(Box::new(sup.status(capture.counters()).await)),
        Request::Reload {
            confirm_secs,
            config,
        } => match sup.refuse_other_config(config.as_deref()) {
            Some(refusal) => Response::Error { message: refusal },
            None => done(sup.reload(confirm_secs.map(Duration::from_secs)).await),
        },
        Request::Confirm { config } => match sup.refuse_other_config(config.as_deref()) {
            Some(refusal) => Response::Error { message: refusal },
            None => done(sup.confirm()),
        },
    }
}
