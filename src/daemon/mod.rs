//! The daemon, `cloison run`: applies the configuration fail-closed, then watches.
//!
//! Start-up: validate (or fall back to the last known good configuration), apply
//! (ruleset, links, sysctls, forwarding last), start the NFLOG reader, the capture loop
//! and the drift watch, then tell systemd READY=1. The loop folds sampled drops and
//! layer-2 findings into alerts, reads the ruleset's counters (exact totals) and compares
//! the live table with the plan every `POLL_KERNEL`, repairs drift, serves the control
//! socket, and reloads on SIGHUP. On SIGTERM it stops the loops and leaves the ruleset and
//! forwarding as they are: isolation never depends on the daemon running.

pub mod changes;
pub mod control;
mod notify;
mod sources;
pub mod state;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyMutGuard};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::alert::{Alert, FoldSettings, Folder, JournalWriter, LogLimit, Names, Sink};
use crate::apply::{self, ApplyError};
use crate::config::{self, Config, LoadError};
use crate::nflog::Reader;
use crate::nft::canonical::{canonical, differences};
use crate::nft::run::counters;
use crate::nft::{Counts, Nft};
use crate::plan::{self, Plan};
use control::{DaemonStatus, Request, Response};
use notify::Heartbeats;
use sources::{Event, Source};

/// How often the live table is read: counters for the alerts, and the drift check
/// (a change by someone else is seen and repaired within this, well under 5 s).
const POLL_KERNEL: Duration = Duration::from_secs(2);
/// A loop silent for longer than this stops the watchdog pings (when systemd asked for
/// none, this still shows in the logs).
const STALL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Options {
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
}

impl Options {
    pub fn new(config_path: PathBuf) -> Options {
        Options {
            config_path,
            state_dir: state::state_dir(),
            runtime_dir: control::runtime_dir(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("no configuration to apply: {errors}; and there is no last known good configuration in {}; nothing was opened", state_dir.display())]
    NoConfig { errors: String, state_dir: PathBuf },
    #[error("the configuration could not be applied")]
    Apply(#[source] ApplyError),
    #[error("cannot set up the control socket in {}", dir.display())]
    Control {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
}

/// The configuration in force and where it came from.
#[derive(Debug, Clone)]
struct Running {
    config: Config,
    source: String,
    hash: String,
    /// "the configuration file" or "the last known good configuration".
    origin: &'static str,
}

struct Daemon {
    opts: Options,
    nft: Nft,
    router: String,
    sink: JournalWriter,
    running: Running,
    plan: Plan,
    /// The plan's canonical table, computed once per plan (the drift check's reference).
    want: serde_json::Value,
    folder: Folder,
    /// Last counter values read from the kernel, carried into replaced tables.
    totals: BTreeMap<String, Counts>,
    /// The confirmed configuration and the deadline, while `reload --confirm` waits.
    pending: Option<(Running, tokio::time::Instant)>,
    started: Instant,
    recent: VecDeque<(SystemTime, &'static str)>,
    drift_repairs: u64,
    hearts: std::sync::Arc<Heartbeats>,
    tx: mpsc::Sender<Event>,
    capture: Option<(Source, sources::CaptureStats)>,
    /// The differences last reported as drift, so a drift that stays (repair = false,
    /// or a repair that fails) is reported once, not at every poll.
    last_drift: Option<Vec<String>>,
    /// Rate limits of the log lines a loop can repeat (one line a minute each, with the
    /// count of those held back).
    limits: BTreeMap<&'static str, LogLimit>,
}

/// The errors of a configuration that could not be loaded, one per line.
fn load_errors(e: &LoadError) -> String {
    match e {
        LoadError::Invalid(d) => d.lines().join("\n"),
        LoadError::Read { .. } => e.to_string(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "router".to_owned(), |h| h.trim().to_owned())
}

/// Runs until `shutdown` completes or SIGTERM/SIGINT arrives.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let nft = Nft::default();
    let mut sink = JournalWriter::new();
    let path = opts.config_path.display().to_string();
    let last_good = state::load(&opts.state_dir).unwrap_or_else(|e| {
        tracing::warn!(cause = %e, "ignoring the saved last known good configuration");
        None
    });

    let (running, rejected) = match config::load(&opts.config_path) {
        Ok(l) => (
            Running {
                config: l.config,
                hash: l.hash,
                source: l.source,
                origin: "the configuration file",
            },
            None,
        ),
        Err(e) => {
            let errors = load_errors(&e);
            match &last_good {
                Some(lkg) => (
                    Running {
                        config: lkg.config.clone(),
                        hash: lkg.hash.clone(),
                        source: lkg.source.clone(),
                        origin: "the last known good configuration",
                    },
                    Some(errors),
                ),
                None => {
                    let router = hostname();
                    sink.write(&Alert::config_rejected(
                        &router,
                        &path,
                        &errors,
                        "nothing (no last known good configuration)",
                    ));
                    // Closed: without rules of ours in place, nothing is forwarded.
                    if !nft.table_exists().unwrap_or(false) {
                        let _ = crate::sysctl::set(&plan::Sysctl {
                            key: "net/ipv4/ip_forward".into(),
                            value: "0".into(),
                        });
                        let _ = crate::sysctl::set(&plan::Sysctl {
                            key: "net/ipv6/conf/all/forwarding".into(),
                            value: "0".into(),
                        });
                    }
                    return Err(DaemonError::NoConfig {
                        errors,
                        state_dir: opts.state_dir.clone(),
                    });
                }
            }
        }
    };
    let router = running.config.router.name.clone().unwrap_or_else(hostname);
    if let Some(errors) = &rejected {
        sink.write(&Alert::config_rejected(
            &router,
            &path,
            errors,
            "the last known good configuration",
        ));
    }

    let applied = apply_waiting_for_interfaces(&running.config, &nft).await?;
    tracing::info!(ruleset = ?applied.ruleset, changes = applied.changes.len(), "configuration applied");
    for n in &applied.notes {
        tracing::info!("{n}");
    }
    let previous = last_good
        .as_ref()
        .map(|l| (l.hash.clone(), l.config.clone()));
    if rejected.is_none() {
        if let Err(e) = state::save(&opts.state_dir, &running.source) {
            tracing::warn!(cause = %e, "cannot save the last known good configuration");
        }
    }
    sink.write(&Alert::config_applied(
        &router,
        &path,
        previous.as_ref().map(|(h, _)| h.as_str()),
        &running.hash,
        &changes::summary(previous.as_ref().map(|(_, c)| c), &running.config),
    ));

    let hearts = Heartbeats::new(&["loop", "capture"]);
    let (tx, mut rx) = mpsc::channel(1024);
    let plan = plan::plan(&running.config);
    let folder = new_folder(&running.config, &router);
    let mut d = Daemon {
        opts,
        nft,
        router,
        sink,
        running,
        want: plan.canonical(),
        plan,
        folder,
        totals: BTreeMap::new(),
        pending: None,
        started: Instant::now(),
        recent: VecDeque::new(),
        drift_repairs: 0,
        hearts,
        tx,
        capture: None,
        last_drift: None,
        limits: BTreeMap::new(),
    };
    let mut nflog = match Reader::open_nonblocking().and_then(|r| {
        // SAFETY: the Reader owns its socket for as long as it lives; the fd never changes.
        unsafe { AsyncFd::register_with_interest(r, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(cause = %e, "cannot read the ruleset's NFLOG group: blocked traffic is counted but not named");
            None
        }
    };
    d.read_kernel(SystemTime::now(), true);
    d.start_sources();

    let (ctl_tx, mut ctl_rx) = mpsc::channel::<(Request, oneshot::Sender<Response>)>(16);
    let listener = bind_control(&d.opts.runtime_dir)?;
    tokio::spawn(serve_control(listener, ctl_tx));

    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watchdog_every = notify::watchdog_interval().map(|w| w / 2);
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(5)));
    let beat = d.hearts.beat("loop");
    let mut last_poll = Instant::now();

    notify::ready(&d.status_line());
    tracing::info!(status = %d.status_line(), "ready");
    tokio::pin!(shutdown);
    loop {
        let deadline = d.pending.as_ref().map(|(_, at)| *at);
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                if let Err(e) = d.reload(None).await {
                    tracing::warn!("reload refused: {e}");
                }
            }
            Some(ev) = rx.recv() => d.on_event(ev),
            ready = nflog_readable(&mut nflog) => {
                if let Some(mut guard) = ready {
                    if !d.read_nflog(guard.get_inner_mut()) {
                        guard.clear_ready();
                    }
                }
            }
            Some((req, reply)) = ctl_rx.recv() => {
                let answer = d.on_request(req).await;
                let _ = reply.send(answer);
            }
            _ = sleep_until(deadline) => d.rollback().await,
            _ = tick.tick() => {
                beat.now();
                let now = SystemTime::now();
                if last_poll.elapsed() >= POLL_KERNEL {
                    last_poll = Instant::now();
                    d.drain(&mut rx, nflog.as_mut().map(AsyncFd::get_mut));
                    d.read_kernel(now, false);
                }
                let due = d.folder.tick(now);
                d.emit_all(due);
            }
            _ = watchdog.tick() => {
                let stalled = d.hearts.stalled(STALL);
                if stalled.is_empty() {
                    if watchdog_every.is_some() {
                        notify::watchdog();
                    }
                } else if let Some(held_back) = d.limited("stalled") {
                    tracing::error!(loops = ?stalled, held_back, "stalled loops: not telling systemd all is well");
                }
            }
        }
    }

    notify::stopping();
    tracing::info!("stopping; the ruleset and forwarding stay as they are");
    if let Some((mut c, _)) = d.capture.take() {
        c.stop();
    }
    d.drain(&mut rx, nflog.as_mut().map(AsyncFd::get_mut));
    d.read_kernel(SystemTime::now(), false);
    let last = d.folder.flush(SystemTime::now());
    d.emit_all(last);
    let _ = std::fs::remove_file(control::socket_path(&d.opts.runtime_dir));
    Ok(())
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

/// How long start-up waits for an interface the configuration names (at boot, the trunk
/// NIC may appear after cloison starts; the ruleset is in place meanwhile, forwarding off).
const WAIT_FOR_INTERFACES: Duration = Duration::from_secs(60);

async fn apply_waiting_for_interfaces(
    config: &Config,
    nft: &Nft,
) -> Result<apply::Applied, DaemonError> {
    let deadline = Instant::now() + WAIT_FOR_INTERFACES;
    loop {
        match apply::apply(config, nft, &BTreeMap::new()).await {
            Err(ApplyError::Links {
                source: crate::netlink::LinkError::Missing(name),
                ..
            }) if Instant::now() < deadline => {
                let line = format!(
                    "waiting for interface {name}; the ruleset is in place, forwarding stays off"
                );
                notify::status(&line);
                tracing::warn!("{line}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other.map_err(DaemonError::Apply),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn new_folder(config: &Config, router: &str) -> Folder {
    let names = Names::from_config(config, router).with_interfaces(
        crate::capture::interfaces()
            .into_iter()
            .map(|(n, i, _)| (i, n)),
    );
    Folder::new(names, FoldSettings::from(&config.alerts))
}

impl Daemon {
    /// A configuration was refused; the running one stays.
    fn reject(&mut self, errors: &str) {
        let path = self.opts.config_path.display().to_string();
        let alert =
            Alert::config_rejected(&self.router, &path, errors, "the running configuration");
        self.emit_daemon(alert);
    }

    /// `Some(lines held back)` when the line `key` may be logged now.
    fn limited(&mut self, key: &'static str) -> Option<u64> {
        self.limits
            .entry(key)
            .or_insert_with(|| LogLimit::new(Duration::from_secs(60)))
            .allow(Instant::now())
    }

    fn status_line(&self) -> String {
        let segs: Vec<&str> = self
            .running
            .config
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        format!(
            "{} segments ({}); ruleset {}; config {} from {}{}",
            segs.len(),
            segs.join(", "),
            &plan::ruleset_hash(&self.want)[..12],
            &self.running.hash[..12],
            self.running.origin,
            if self.pending.is_some() {
                "; waiting for `cloison confirm`"
            } else {
                ""
            }
        )
    }

    fn emit(&mut self, alert: &Alert) {
        self.sink.write(alert);
        let now = SystemTime::now();
        self.recent.push_back((now, alert.kind().name()));
        while self.recent.front().is_some_and(|(t, _)| {
            now.duration_since(*t).unwrap_or_default() > Duration::from_secs(3600)
        }) {
            self.recent.pop_front();
        }
    }

    fn emit_all(&mut self, alerts: Vec<Alert>) {
        for a in &alerts {
            self.emit(a);
        }
    }

    /// An entry the folder did not produce still takes a place in the per-minute bound.
    fn emit_daemon(&mut self, alert: Alert) {
        self.folder.note_entry(SystemTime::now());
        self.emit(&alert);
    }

    /// (Re)starts the capture for the running configuration. Without it the firewall
    /// still isolates and counts; only layer-2 evidence is missing, which is logged.
    fn start_sources(&mut self) {
        if let Some((mut old, _)) = self.capture.take() {
            old.stop();
        }
        let beat = self.hearts.beat("capture");
        match sources::capture(&self.running.config, self.tx.clone(), beat.clone()) {
            Ok(c) => self.capture = Some(c),
            Err(e) => {
                beat.retire();
                tracing::error!(cause = %format!("{e:#}"), "layer-2 inspection is off");
            }
        }
    }

    /// Reads what the NFLOG socket holds; false once it is empty.
    fn read_nflog(&mut self, reader: &mut Reader) -> bool {
        // The socket is non-blocking: poll returns what is queued, or nothing.
        let samples = match reader.poll() {
            Ok(s) => s,
            Err(e) => {
                if let Some(held_back) = self.limited("nflog") {
                    tracing::error!(cause = %e, held_back, "reading NFLOG failed");
                }
                return false;
            }
        };
        if samples.is_empty() {
            return false;
        }
        let now = SystemTime::now();
        for s in samples {
            if let Some(key) = crate::nflog::decode(&s, &self.running.config) {
                if let Some(a) = self.folder.observe(&key, now) {
                    self.emit(&a);
                }
            }
        }
        true
    }

    fn on_event(&mut self, ev: Event) {
        let now = SystemTime::now();
        match ev {
            Event::Frames(keys) => {
                for key in keys {
                    if let Some(a) = self.folder.observe(&key, now) {
                        self.emit(&a);
                    }
                }
            }
            Event::Failed { source, error } => {
                tracing::error!(source, cause = %error, "a watch loop stopped")
            }
        }
    }

    /// Everything already queued (NFLOG samples, capture findings), so that a counter
    /// reading never precedes the samples of the packets it counts.
    fn drain(&mut self, rx: &mut mpsc::Receiver<Event>, nflog: Option<&mut Reader>) {
        if let Some(reader) = nflog {
            while self.read_nflog(reader) {}
        }
        while let Ok(ev) = rx.try_recv() {
            self.on_event(ev);
        }
    }

    /// Reads the live table: counters into the folder, and the drift check. With
    /// `baseline`, the readings only set the starting point (after a table replacement).
    fn read_kernel(&mut self, now: SystemTime, baseline: bool) {
        let live = match self.nft.list_table() {
            Ok(live) => live,
            Err(e) => {
                if let Some(held_back) = self.limited("read") {
                    tracing::error!(cause = %e, held_back, "cannot read the live ruleset");
                }
                return;
            }
        };
        if let Some(doc) = &live {
            let c = counters(doc);
            let readings: Vec<(String, u64)> =
                c.iter().map(|(k, v)| (k.clone(), v.packets)).collect();
            if baseline {
                self.folder.baseline(&readings);
            } else {
                let alerts = self.folder.counters(&readings, now);
                self.emit_all(alerts);
            }
            for (k, v) in c {
                let e = self.totals.entry(k).or_default();
                if v.packets >= e.packets {
                    *e = v;
                }
            }
        }
        if baseline {
            return;
        }
        let diffs = match &live {
            None => vec!["table inet cloison is missing".to_owned()],
            Some(doc) => differences(&self.want, &canonical(doc)),
        };
        if diffs.is_empty() {
            self.last_drift = None;
        } else {
            self.on_drift(diffs, now);
        }
    }

    fn on_drift(&mut self, diffs: Vec<String>, now: SystemTime) {
        let repair = self.running.config.daemon.repair;
        let repaired = repair && {
            match apply::apply_ruleset(&self.plan, &self.nft, &self.totals) {
                Ok(_) => {
                    self.drift_repairs += 1;
                    true
                }
                Err(e) => {
                    if let Some(held_back) = self.limited("repair") {
                        tracing::error!(cause = %e, held_back, "cannot repair the ruleset");
                    }
                    false
                }
            }
        };
        // A drift left in place is reported once; a new change is reported again.
        let already = self.last_drift.as_ref() == Some(&diffs);
        if !already {
            tracing::error!(differences = %diffs.join("; "), repaired, "ruleset drift");
            let alert = Alert::ruleset_drift(&self.router, &diffs.join("\n"), repaired);
            self.emit_daemon(alert);
        }
        if repaired {
            self.last_drift = None;
            self.read_kernel(now, true);
        } else {
            self.last_drift = Some(diffs);
        }
    }

    async fn on_request(&mut self, req: Request) -> Response {
        match req {
            Request::Status => Response::Status(self.daemon_status()),
            Request::Reload { confirm_secs } => match self.reload(confirm_secs).await {
                Ok(m) => Response::Done { message: m },
                Err(m) => Response::Error { message: m },
            },
            Request::Confirm => match self.pending.take() {
                Some(_) => {
                    if let Err(e) = state::save(&self.opts.state_dir, &self.running.source) {
                        tracing::warn!(cause = %e, "cannot save the last known good configuration");
                    }
                    notify::status(&self.status_line());
                    Response::Done {
                        message: format!(
                            "configuration {} confirmed; it is now the last known good",
                            &self.running.hash[..12]
                        ),
                    }
                }
                None => Response::Error {
                    message: "nothing to confirm: no `reload --confirm` is waiting".into(),
                },
            },
        }
    }

    fn daemon_status(&self) -> DaemonStatus {
        let mut alerts = BTreeMap::new();
        let now = SystemTime::now();
        for (t, k) in &self.recent {
            if now.duration_since(*t).unwrap_or_default() <= Duration::from_secs(3600) {
                *alerts.entry((*k).to_owned()).or_insert(0) += 1;
            }
        }
        DaemonStatus {
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            config_path: self.opts.config_path.display().to_string(),
            config_hash: self.running.hash.clone(),
            config_source: self.running.origin.to_owned(),
            ruleset_hash: plan::ruleset_hash(&self.want),
            confirm_pending_secs: self.pending.as_ref().map(|(_, at)| {
                at.saturating_duration_since(tokio::time::Instant::now())
                    .as_secs()
            }),
            alerts_last_hour: alerts,
            capture: self
                .capture
                .as_ref()
                .map(|(_, stats)| {
                    stats
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone()
                })
                .unwrap_or_default(),
            drift_repairs: self.drift_repairs,
        }
    }

    /// Re-reads the file; applies it if valid, else keeps what runs. With `confirm`, the
    /// previous configuration comes back after that many seconds unless confirmed.
    async fn reload(&mut self, confirm: Option<u64>) -> Result<String, String> {
        notify::reloading();
        let result = self.reload_inner(confirm).await;
        notify::ready(&self.status_line());
        result
    }

    async fn reload_inner(&mut self, confirm: Option<u64>) -> Result<String, String> {
        let path = self.opts.config_path.display().to_string();
        let loaded = match config::load(&self.opts.config_path) {
            Ok(l) => l,
            Err(e) => {
                let errors = load_errors(&e);
                self.reject(&errors);
                return Err(format!(
                    "{path} was rejected; the running configuration stays in force:\n{errors}"
                ));
            }
        };
        let next = Running {
            config: loaded.config,
            hash: loaded.hash,
            source: loaded.source,
            origin: "the configuration file",
        };
        self.switch_to(next, confirm.map(Duration::from_secs)).await
    }

    /// Applies `next` and makes it the running configuration.
    async fn switch_to(
        &mut self,
        next: Running,
        confirm: Option<Duration>,
    ) -> Result<String, String> {
        let path = self.opts.config_path.display().to_string();
        let now = SystemTime::now();
        // Counts up to now are reported under the old names before they change.
        self.read_kernel(now, false);
        let last = self.folder.flush(now);
        self.emit_all(last);
        match apply::apply(&next.config, &self.nft, &self.totals).await {
            Err(e) => {
                let errors = format!("{e:#}");
                self.reject(&errors);
                // The old table is in place (apply changes nothing when nft refuses).
                Err(format!(
                    "the new configuration could not be applied, the running one stays: {errors}"
                ))
            }
            Ok(applied) => {
                let summary = changes::summary(Some(&self.running.config), &next.config);
                let old = std::mem::replace(&mut self.running, next);
                self.router = self
                    .running
                    .config
                    .router
                    .name
                    .clone()
                    .unwrap_or_else(hostname);
                self.plan = plan::plan(&self.running.config);
                self.want = self.plan.canonical();
                self.folder = new_folder(&self.running.config, &self.router);
                self.read_kernel(SystemTime::now(), true);
                self.start_sources();
                let alert = Alert::config_applied(
                    &self.router,
                    &path,
                    Some(&old.hash),
                    &self.running.hash,
                    &summary,
                );
                self.emit_daemon(alert);
                tracing::info!(ruleset = ?applied.ruleset, %summary, "configuration applied");
                match confirm {
                    Some(after) => {
                        // Keep the confirmed configuration to come back to.
                        let confirmed = match self.pending.take() {
                            Some((c, _)) => c,
                            None => old,
                        };
                        self.pending = Some((confirmed, tokio::time::Instant::now() + after));
                        Ok(format!(
                            "applied {} ({summary}); it will be rolled back in {} s unless `cloison confirm` is run",
                            &self.running.hash[..12],
                            after.as_secs()
                        ))
                    }
                    None => {
                        self.pending = None;
                        if let Err(e) = state::save(&self.opts.state_dir, &self.running.source) {
                            tracing::warn!(cause = %e, "cannot save the last known good configuration");
                        }
                        Ok(format!("applied {} ({summary})", &self.running.hash[..12]))
                    }
                }
            }
        }
    }

    /// `reload --confirm` was not confirmed in time: back to the confirmed configuration.
    async fn rollback(&mut self) {
        let Some((confirmed, _)) = self.pending.take() else {
            return;
        };
        let hash = confirmed.hash.clone();
        tracing::warn!(back_to = %&hash[..12], "not confirmed in time: rolling back");
        notify::reloading();
        match self.switch_to(confirmed, None).await {
            Ok(m) => {
                let alert = Alert::daemon(
                    crate::alert::event::EventKind::ConfigApplied,
                    &self.router,
                    format!(
                        "rolled back to configuration {}: the change was not confirmed in time",
                        &hash[..12]
                    ),
                    &[(crate::alert::field::DETAIL, m)],
                );
                self.emit_daemon(alert);
            }
            Err(e) => tracing::error!(cause = %e, "rollback failed"),
        }
        notify::ready(&self.status_line());
    }
}

fn bind_control(dir: &std::path::Path) -> Result<UnixListener, DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| DaemonError::Control {
        dir: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let path = control::socket_path(dir);
    // A socket file left by a daemon that was killed.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

async fn serve_control(
    listener: UnixListener,
    tx: mpsc::Sender<(Request, oneshot::Sender<Response>)>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<Request>(&line) {
                Ok(req) => {
                    let (reply, wait) = oneshot::channel();
                    if tx.send((req, reply)).await.is_err() {
                        return;
                    }
                    wait.await.unwrap_or(Response::Error {
                        message: "the daemon is stopping".into(),
                    })
                }
                Err(e) => Response::Error {
                    message: format!("unreadable request: {e}"),
                },
            };
            let mut out = serde_json::to_string(&answer).unwrap_or_default();
            out.push('\n');
            let _ = write.write_all(out.as_bytes()).await;
        });
    }
}
