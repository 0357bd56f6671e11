//! What the daemon decides, apart from where events come from: the configuration in
//! force, readings of the kernel (exact counters into the alert folder, and the drift
//! check with its repair), reloads with or without confirmation, the rollback of an
//! unconfirmed one, and the status it answers with. It talks to the kernel through
//! `Kernel` and writes through `Sink`, so every decision here is unit-tested without root
//! (see the tests at the end, against `kernel::fake::Recorder`). The event loop feeds it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use cloison_core::alert::event::{EventKind, FlowKey};
use cloison_core::alert::{Actor, Alert, FoldSettings, Folder, LogLimit, Names, Sink, field};
use cloison_core::config::{Config, Loaded};
use cloison_core::hash::Hash;
use cloison_core::nft::{Counts, Sync, compare, counters, keep_highest};
use cloison_core::plan::{self, Plan};
use serde_json::Value;

use super::control::DaemonStatus;
use super::sources::RulesetNotice;
use super::{Options, changes, notify, state};
use crate::apply;
use crate::config_file;
use crate::kernel::Kernel;

/// The configuration in force and where it came from.
#[derive(Debug, Clone)]
pub struct Running {
    pub config: Config,
    pub source: String,
    pub hash: Hash,
    /// "the configuration file" or "the last known good configuration".
    pub origin: &'static str,
}

impl Running {
    pub fn from_file(l: Loaded) -> Running {
        Running {
            config: l.config,
            hash: l.hash,
            source: l.source,
            origin: "the configuration file",
        }
    }
}

/// A `reload --confirm` waiting for `cloison confirm`.
struct Pending {
    /// The confirmed configuration to come back to.
    confirmed: Running,
    deadline: tokio::time::Instant,
}

/// How often `poll` reads the policy routing back, in case a change notification was lost.
const ROUTING_BACKSTOP: Duration = Duration::from_secs(30);

pub struct Supervisor<K: Kernel, S: Sink> {
    opts: Options,
    kernel: K,
    sink: S,
    router: String,
    running: Running,
    plan: Plan,
    /// The plan's canonical table, computed once per plan (the drift check's reference).
    want: Value,
    folder: Folder,
    /// The highest counter values read from the kernel, carried into replaced tables.
    totals: BTreeMap<String, Counts>,
    pending: Option<Pending>,
    started: Instant,
    /// Alerts of the last hour, for `cloison status`.
    recent: VecDeque<(SystemTime, &'static str)>,
    /// Alerts since start, by kind, for `cloison metrics`.
    alerts_total: BTreeMap<&'static str, u64>,
    drift_repairs: u64,
    /// The differences last reported as drift, so a drift that stays (repair = false,
    /// or a repair that fails) is reported once, not at every reading.
    last_drift: Option<Vec<String>>,
    /// The ruleset's generation at the last full check.
    checked_generation: Option<u32>,
    /// When `poll` last read the policy routing back (a backstop: changes to it are
    /// heard as they happen).
    routing_read: Option<Instant>,
    /// Rate limits of the log lines a loop can repeat (one line a minute each, with the
    /// count of those held back).
    limits: BTreeMap<&'static str, LogLimit>,
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "router".to_owned(), |h| h.trim().to_owned())
}

fn router_name(config: &Config) -> String {
    config.router.name.clone().unwrap_or_else(hostname)
}

fn new_folder(config: &Config, router: &str) -> Folder {
    let names = Names::from_config(config, router).with_interfaces(
        crate::capture::interfaces()
            .into_iter()
            .map(|(n, i, _)| (i, n)),
    );
    Folder::new(names, FoldSettings::from(&config.alerts))
}

impl<K: Kernel, S: Sink> Supervisor<K, S> {
    /// Takes over once `running` is applied: reads the counters as a baseline.
    pub fn new(opts: Options, kernel: K, sink: S, running: Running) -> Supervisor<K, S> {
        let router = router_name(&running.config);
        let plan = plan::plan(&running.config);
        let mut s = Supervisor {
            opts,
            kernel,
            sink,
            folder: new_folder(&running.config, &router),
            router,
            want: plan.canonical(),
            plan,
            running,
            totals: BTreeMap::new(),
            pending: None,
            started: Instant::now(),
            recent: VecDeque::new(),
            alerts_total: BTreeMap::new(),
            drift_repairs: 0,
            last_drift: None,
            checked_generation: None,
            routing_read: None,
            limits: BTreeMap::new(),
        };
        s.read_counters(SystemTime::now(), true);
        s.checked_generation = s.kernel.generation().ok();
        s
    }

    pub fn config(&self) -> &Config {
        &self.running.config
    }

    pub fn running_hash(&self) -> &Hash {
        &self.running.hash
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// When an unconfirmed reload is rolled back.
    pub fn confirm_deadline(&self) -> Option<tokio::time::Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// `Some(lines held back)` when the line `key` may be logged now.
    pub fn limited(&mut self, key: &'static str) -> Option<u64> {
        self.limits
            .entry(key)
            .or_insert_with(|| LogLimit::new(Duration::from_secs(60)))
            .allow(Instant::now())
    }

    /// One line for systemd's status and the logs.
    pub fn status_line(&self) -> String {
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
            self.plan.hash().short(),
            self.running.hash.short(),
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
        *self.alerts_total.entry(alert.kind().name()).or_insert(0) += 1;
        while self.recent.front().is_some_and(|(t, _)| {
            now.duration_since(*t).unwrap_or_default() > Duration::from_secs(3600)
        }) {
            self.recent.pop_front();
        }
    }

    pub fn emit_all(&mut self, alerts: Vec<Alert>) {
        for a in &alerts {
            self.emit(a);
        }
    }

    /// An entry the folder did not produce still takes a place in the per-minute bound.
    pub fn emit_daemon(&mut self, alert: Alert) {
        self.folder.note_entry(SystemTime::now());
        self.emit(&alert);
    }

    /// Flow keys from NFLOG samples or the capture, each with how many times it was seen
    /// in a row: first alerts where due.
    pub fn observe(&mut self, seen: impl IntoIterator<Item = (FlowKey, u32)>, now: SystemTime) {
        for (key, times) in seen {
            if let Some(a) = self.folder.observe_many(&key, times, now) {
                self.emit(&a);
            }
        }
    }

    /// The summaries due now.
    pub fn tick(&mut self, now: SystemTime) {
        let due = self.folder.tick(now);
        self.emit_all(due);
    }

    /// Everything still held, at shutdown.
    pub fn flush(&mut self, now: SystemTime) {
        let last = self.folder.flush(now);
        self.emit_all(last);
    }

    /// Reads the ruleset's counters (over netlink: no process) into the folder and the
    /// totals. With `baseline`, the readings only set the starting point (after a table
    /// replacement).
    pub fn read_counters(&mut self, now: SystemTime, baseline: bool) {
        let counters = match self.kernel.counters() {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                if let Some(held_back) = self.limited("read") {
                    tracing::error!(cause = %e, held_back, "cannot read the ruleset's counters");
                }
                return;
            }
        };
        let readings: Vec<(String, u64)> = counters
            .iter()
            .map(|(k, v)| (k.clone(), v.packets))
            .collect();
        if baseline {
            self.folder.baseline(&readings);
        } else {
            let alerts = self.folder.counters(&readings, now);
            self.emit_all(alerts);
        }
        keep_highest(&mut self.totals, &counters);
    }

    /// The periodic reading, the guard's backstop: counters, then a full check of both
    /// walls when the ruleset's generation moved since the last check, when the policy
    /// routing differs, or while a drift stands. At rest it starts no process.
    pub async fn poll(&mut self, now: SystemTime) {
        self.read_counters(now, false);
        let moved = self
            .kernel
            .generation()
            .map_or(true, |g| Some(g) != self.checked_generation);
        // The routing is watched (`routing_changed`); reading it all back costs more than
        // the rest of the poll, so the backstop reads it every `ROUTING_BACKSTOP`.
        let routing_due = self
            .routing_read
            .is_none_or(|at| at.elapsed() >= ROUTING_BACKSTOP);
        let routing_differs = routing_due && {
            self.routing_read = Some(Instant::now());
            match self.kernel.read_routing().await {
                Ok(live) => !self.plan.routing_differences(&live).is_empty(),
                Err(_) => true,
            }
        };
        if moved || routing_differs || self.last_drift.is_some() {
            self.check(now, None).await;
        }
    }

    /// nftables transactions that touched cloison's table. cloison's own are left
    /// alone. An edit or a deletion by someone else is drift for certain: the guard
    /// repairs at once, without listing the table first (`repair_known`); a whole new
    /// table (someone ran `cloison apply`, or replaced it), or lost notifications, are
    /// checked against the plan by listing.
    pub async fn on_ruleset_notices(&mut self, now: SystemTime, notices: Vec<RulesetNotice>) {
        let foreign: Vec<RulesetNotice> = notices
            .into_iter()
            .filter(|n| {
                n.lost
                    || n.actor
                        .as_ref()
                        .is_none_or(|a| !self.kernel.is_own_process(a.pid))
            })
            .collect();
        let Some(first) = foreign.first() else {
            return;
        };
        let actor = first.actor.clone();
        if foreign.iter().any(|n| n.lost || n.recreated) || !self.running.config.daemon.repair {
            self.check_listing(now, actor).await;
            return;
        }
        let changes: Vec<String> = foreign.into_iter().flat_map(|n| n.changes).collect();
        self.repair_known(now, actor, changes);
    }

    /// The ruleset was changed by someone else, the kernel said how: forwarding off at
    /// once, the table replaced (one `nft` to apply, one to verify), forwarding on again,
    /// and the change journaled with its author.
    fn repair_known(&mut self, now: SystemTime, actor: Option<Actor>, changes: Vec<String>) {
        let closed = self.close();
        if let Ok(Some(c)) = self.kernel.counters() {
            keep_highest(&mut self.totals, &c);
        }
        let repaired = match apply::force_ruleset(&self.plan, &self.kernel, &self.totals) {
            Ok(()) => true,
            Err(e) => {
                if let Some(held_back) = self.limited("repair") {
                    tracing::error!(cause = %e, held_back, "cannot repair the ruleset; forwarding stays off");
                }
                false
            }
        };
        if repaired {
            if closed {
                self.reopen();
            }
            self.drift_repairs += 1;
        }
        let diffs = self.report_drift(changes, repaired, "ruleset", actor);
        if repaired {
            self.last_drift = None;
            self.checked_generation = self.kernel.generation().ok();
            self.read_counters(now, true);
        } else {
            self.last_drift = Some(diffs);
        }
    }

    /// Compares both walls with the plan (the drift check) and repairs what differs.
    /// `actor` is who changed the rules, when a kernel notification said so. The table
    /// is listed (an `nft` process) only when the ruleset's generation moved since the
    /// last check, or a drift stands; policy routing is read over netlink.
    pub async fn check(&mut self, now: SystemTime, actor: Option<Actor>) {
        let generation = self.kernel.generation().ok();
        let quiet = generation.is_some()
            && generation == self.checked_generation
            && self.last_drift.is_none();
        if quiet {
            if let Ok(l) = self.kernel.read_routing().await {
                let routing = self.plan.routing_differences(&l);
                if !routing.is_empty() {
                    self.on_drift(Sync::InSync, None, routing, actor, now).await;
                }
                return;
            }
        }
        self.check_listing(now, actor).await;
    }

    /// `check`, always listing the table.
    async fn check_listing(&mut self, now: SystemTime, actor: Option<Actor>) {
        // The generation first: a change after it is read moves it, and the next poll
        // checks again.
        let generation = self.kernel.generation().ok();
        let live = match self.kernel.list_table() {
            Ok(live) => live,
            Err(e) => {
                if let Some(held_back) = self.limited("read") {
                    tracing::error!(cause = %e, held_back, "cannot read the live ruleset");
                }
                return;
            }
        };
        if let Some(doc) = &live {
            keep_highest(&mut self.totals, &counters(doc));
        }
        let ruleset = compare(&self.want, live.as_ref());
        let listing = (!ruleset.in_sync()).then_some(live).flatten();
        let routing = match self.kernel.read_routing().await {
            Ok(l) => self.plan.routing_differences(&l),
            Err(e) => {
                if let Some(held_back) = self.limited("read routing") {
                    tracing::error!(cause = %e, held_back, "cannot read the policy routing");
                }
                Vec::new()
            }
        };
        self.checked_generation = generation;
        if ruleset.in_sync() && routing.is_empty() {
            self.last_drift = None;
            return;
        }
        self.on_drift(ruleset, listing, routing, actor, now).await;
    }

    /// Someone else changed the rules. With `repair`: forwarding off at once when the
    /// ruleset is gone or altered, both walls put back, forwarding on again; reported
    /// once per distinct drift, naming who made the change when known. Without repair,
    /// only a missing table closes forwarding (nothing of cloison's would filter).
    async fn on_drift(
        &mut self,
        ruleset: Sync,
        listing: Option<Value>,
        routing: Vec<String>,
        actor: Option<Actor>,
        now: SystemTime,
    ) {
        let repair = self.running.config.daemon.repair;
        let ruleset_bad = !ruleset.in_sync();
        let routing_bad = !routing.is_empty();
        let closed = ruleset_bad && (repair || ruleset == Sync::Missing) && self.close();
        let mut repaired = false;
        if repair {
            let mut ok = true;
            if ruleset_bad {
                let applied =
                    apply::replace_ruleset(&self.plan, &self.kernel, &self.totals, listing);
                if let Err(e) = applied {
                    ok = false;
                    if let Some(held_back) = self.limited("repair") {
                        tracing::error!(cause = %e, held_back, "cannot repair the ruleset; forwarding stays off");
                    }
                }
            }
            if routing_bad {
                let mut changes = Vec::new();
                if let Err(e) = apply::apply_wall(&self.plan, &self.kernel, &mut changes).await {
                    ok = false;
                    if let Some(held_back) = self.limited("repair wall") {
                        tracing::error!(cause = %e, held_back, "cannot repair the second wall");
                    }
                }
            }
            if ok && closed {
                self.reopen();
            }
            repaired = ok;
            if ok {
                self.drift_repairs += 1;
            }
        }
        let wall = match (ruleset_bad, routing_bad) {
            (true, true) => "both",
            (true, false) => "ruleset",
            _ => "routing",
        };
        let mut diffs = ruleset.differences();
        diffs.extend(routing);
        let diffs = self.report_drift(diffs, repaired, wall, actor);
        if repaired {
            self.last_drift = None;
            self.checked_generation = self.kernel.generation().ok();
            self.read_counters(now, true);
        } else {
            self.last_drift = Some(diffs);
        }
    }

    /// Journals a drift, once per distinct one (a drift left in place is not repeated at
    /// every reading); returns the differences.
    fn report_drift(
        &mut self,
        diffs: Vec<String>,
        repaired: bool,
        wall: &str,
        actor: Option<Actor>,
    ) -> Vec<String> {
        if self.last_drift.as_ref() != Some(&diffs) {
            let who = actor.as_ref().map(ToString::to_string);
            tracing::error!(differences = %diffs.join("; "), repaired, actor = ?who, "ruleset drift");
            let alert = Alert::ruleset_drift(
                &self.router,
                &diffs.join("\n"),
                repaired,
                wall,
                actor.as_ref(),
            );
            self.emit_daemon(alert);
        }
        diffs
    }

    /// Forwarding off (fail-closed); true when it is off now. A failure is said loudly.
    fn close(&mut self) -> bool {
        match apply::close(&self.kernel) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(cause = %e, "cannot switch forwarding off while the ruleset is not in place: this box may forward unfiltered traffic");
                false
            }
        }
    }

    /// Forwarding back on, behind the repaired ruleset.
    fn reopen(&mut self) {
        for s in &self.plan.forwarding {
            if let Err(e) = self.kernel.set_sysctl(s) {
                tracing::error!(cause = %e, "cannot switch forwarding back on after a repair");
            }
        }
    }

    /// A configuration was refused; the running one stays.
    fn reject(&mut self, errors: &str) {
        let path = self.opts.config_path.display().to_string();
        let alert =
            Alert::config_rejected(&self.router, &path, errors, "the running configuration");
        self.emit_daemon(alert);
    }

    fn save_last_good(&self) {
        if let Err(e) = state::save(&self.opts.state_dir, &self.running.source) {
            tracing::warn!(cause = %e, "cannot save the last known good configuration");
        }
    }

    /// Re-reads the file; applies it if valid, else keeps what runs. With `confirm`, the
    /// previous configuration comes back after that long unless confirmed.
    pub async fn reload(&mut self, confirm: Option<Duration>) -> Result<String, String> {
        notify::reloading();
        let result = match config_file::load(&self.opts.config_path) {
            Ok(l) if config_file::is_shipped_example(l.source.as_bytes()) => {
                let why = config_file::UntouchedExample {
                    path: self.opts.config_path.clone(),
                }
                .to_string();
                self.reject(&why);
                Err(why)
            }
            Ok(l) => match (confirm, self.rolled_back(&l.hash)) {
                // Rolled back unconfirmed: never applied again implicitly; only an
                // explicit `reload --confirm` tries it again.
                (None, Some(rb)) => {
                    let why = rolled_back_reason(&self.opts.config_path, &rb);
                    self.reject(&why);
                    Err(why)
                }
                _ => self.switch_to(Running::from_file(l), confirm).await,
            },
            Err(e) => {
                let errors = e.lines();
                self.reject(&errors);
                Err(format!(
                    "{} was rejected; the running configuration stays in force:\n{errors}",
                    self.opts.config_path.display()
                ))
            }
        };
        notify::ready(&self.status_line());
        result
    }

    /// Why a request naming configuration file `asked` must be refused: this daemon runs
    /// another one (a `-c` for another daemon, or a typo); `None` when it is the same
    /// file or the client named none.
    pub fn refuse_other_config(&self, asked: Option<&str>) -> Option<String> {
        let asked = std::path::Path::new(asked?);
        let ours = &self.opts.config_path;
        let same = |p: &std::path::Path| {
            std::fs::canonicalize(p)
                .ok()
                .or_else(|| std::path::absolute(p).ok())
        };
        if same(asked) == same(ours) {
            return None;
        }
        Some(format!(
            "this daemon runs {}; `reload` and `confirm` act on that file, not on {}. Drop -c, or run the daemon with that file (cloison run -c {})",
            ours.display(),
            asked.display(),
            asked.display()
        ))
    }

    /// The rollback record of the configuration hashed `hash`, if it was rolled back.
    fn rolled_back(&self, hash: &Hash) -> Option<state::RolledBack> {
        match state::rolled_back(&self.opts.state_dir) {
            Ok(all) => all.into_iter().rev().find(|r| &r.hash == hash),
            Err(e) => {
                tracing::warn!(cause = %e, "cannot read the rolled-back configurations");
                None
            }
        }
    }

    /// `cloison confirm`: the configuration on trial becomes the last known good.
    pub fn confirm(&mut self) -> Result<String, String> {
        match self.pending.take() {
            Some(_) => {
                self.save_last_good();
                if let Err(e) = state::forget_rollback(&self.opts.state_dir, &self.running.hash) {
                    tracing::warn!(cause = %e, "cannot update the rolled-back configurations");
                }
                notify::status(&self.status_line());
                Ok(format!(
                    "configuration {} confirmed; it is now the last known good",
                    self.running.hash.short()
                ))
            }
            None => Err("nothing to confirm: no `reload --confirm` is waiting".into()),
        }
    }

    /// Applies `next` and makes it the running configuration.
    async fn switch_to(
        &mut self,
        next: Running,
        confirm: Option<Duration>,
    ) -> Result<String, String> {
        let now = SystemTime::now();
        // Counts up to now are reported under the old names before they change.
        self.read_counters(now, false);
        self.flush(now);
        let applied = match apply::apply(&next.config, &self.kernel, &self.totals).await {
            Ok(a) => a,
            Err(e) => {
                let errors = format!("{e:#}");
                self.reject(&errors);
                // The old table is in place (apply changes nothing when nft refuses).
                return Err(format!(
                    "the new configuration could not be applied, the running one stays: {errors}"
                ));
            }
        };
        let summary = changes::summary(Some(&self.running.config), &next.config);
        let old = std::mem::replace(&mut self.running, next);
        self.router = router_name(&self.running.config);
        self.plan = plan::plan(&self.running.config);
        self.want = self.plan.canonical();
        self.folder = new_folder(&self.running.config, &self.router);
        self.read_counters(SystemTime::now(), true);
        self.checked_generation = self.kernel.generation().ok();
        let path = self.opts.config_path.display().to_string();
        let alert = Alert::config_applied(
            &self.router,
            &path,
            Some(old.hash.as_str()),
            self.running.hash.as_str(),
            &summary,
        );
        self.emit_daemon(alert);
        tracing::info!(ruleset = ?applied.ruleset, %summary, "configuration applied");
        let short = self.running.hash.short().to_owned();
        match confirm {
            Some(after) => {
                // Keep the confirmed configuration to come back to.
                let confirmed = self.pending.take().map_or(old, |p| p.confirmed);
                self.pending = Some(Pending {
                    confirmed,
                    deadline: tokio::time::Instant::now() + after,
                });
                Ok(format!(
                    "applied {short} ({summary}); it will be rolled back in {} s unless `cloison confirm` is run",
                    after.as_secs()
                ))
            }
            None => {
                self.pending = None;
                self.save_last_good();
                Ok(format!("applied {short} ({summary})"))
            }
        }
    }

    /// `reload --confirm` was not confirmed in time: back to the confirmed configuration.
    pub async fn rollback(&mut self) {
        let Some(Pending { confirmed, .. }) = self.pending.take() else {
            return;
        };
        let record = state::RolledBack {
            hash: self.running.hash.clone(),
            at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            back_to: confirmed.hash.clone(),
        };
        // Recorded first: even if putting the old one back fails, the file on trial is
        // never applied again implicitly.
        if let Err(e) = state::record_rollback(&self.opts.state_dir, record) {
            tracing::error!(cause = %e, "cannot record the rollback: a restart could apply the unconfirmed configuration again");
        }
        let back_to = confirmed.hash.short().to_owned();
        tracing::warn!(%back_to, "not confirmed in time: rolling back");
        notify::reloading();
        match self.switch_to(confirmed, None).await {
            Ok(m) => {
                let alert = Alert::daemon(
                    EventKind::ConfigApplied,
                    &self.router,
                    format!(
                        "rolled back to configuration {back_to}: the change was not confirmed in time"
                    ),
                    &[(field::DETAIL, m)],
                );
                self.emit_daemon(alert);
            }
            Err(e) => tracing::error!(cause = %e, "rollback failed"),
        }
        notify::ready(&self.status_line());
    }

    /// What `cloison status` and `cloison metrics` show of the daemon, with a fresh check
    /// of the live table against the configuration in force; `capture` comes from the
    /// event loop.
    pub async fn status(
        &self,
        capture: BTreeMap<String, super::control::CaptureCounters>,
    ) -> DaemonStatus {
        let mut alerts = BTreeMap::new();
        let now = SystemTime::now();
        for (t, k) in &self.recent {
            if now.duration_since(*t).unwrap_or_default() <= Duration::from_secs(3600) {
                *alerts.entry((*k).to_owned()).or_insert(0) += 1;
            }
        }
        let uptime_secs = self.started.elapsed().as_secs();
        let (live, live_error) =
            match crate::status::check(&self.running.config, &self.kernel).await {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(crate::status::error_text(&e))),
            };
        DaemonStatus {
            pid: std::process::id(),
            uptime_secs,
            config_path: self.opts.config_path.display().to_string(),
            config_hash: self.running.hash.clone(),
            config_source: self.running.origin.to_owned(),
            ruleset_hash: self.plan.hash(),
            confirm_pending_secs: self.pending.as_ref().map(|p| {
                p.deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .as_secs()
            }),
            alerts_last_hour: alerts,
            last_rollback: state::rolled_back(&self.opts.state_dir)
                .ok()
                .and_then(|mut all| all.pop()),
            capture,
            drift_repairs: self.drift_repairs,
            router: self.router.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .saturating_sub(uptime_secs),
            alerts_total: self
                .alerts_total
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
            live,
            live_error,
        }
    }

    /// The state directory of this daemon.
    pub fn state_dir(&self) -> &PathBuf {
        &self.opts.state_dir
    }
}

/// Why a rolled-back file is refused, in words: when, why, what to do.
pub fn rolled_back_reason(path: &std::path::Path, rb: &state::RolledBack) -> String {
    format!(
        "{} (configuration {}) was applied with `reload --confirm` on {} and rolled back to {} because `cloison confirm` did not come in time; it is not applied again by itself. Edit the file to try another configuration, or run `cloison reload --confirm SECONDS` to try this one again",
        path.display(),
        rb.hash.short(),
        cloison_core::alert::rfc3339(rb.at.saturating_mul(1_000_000)),
        rb.back_to.short()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::Recorder;
    use cloison_core::alert::Alert;

    const LAB: &str = include_str!("../../../../config/lab.toml");

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    struct Setup {
        dir: tempfile::TempDir,
        sup: Supervisor<Recorder, Vec<Alert>>,
    }

    impl Setup {
        fn write_config(&self, text: &str) {
            std::fs::write(self.dir.path().join("cloison.toml"), text).unwrap();
        }
        fn kernel(&self) -> &Recorder {
            &self.sup.kernel
        }
        fn events(&self, kind: EventKind) -> Vec<&Alert> {
            self.sup.sink.iter().filter(|a| a.kind() == kind).collect()
        }
    }

    /// A box that applied config/lab.toml, as start-up leaves it.
    fn started(text: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cloison.toml"), text).unwrap();
        let opts = Options {
            config_path: dir.path().join("cloison.toml"),
            state_dir: dir.path().join("state"),
            runtime_dir: dir.path().join("run"),
        };
        let loaded = config_file::load(&opts.config_path).unwrap();
        let kernel = Recorder::new();
        run(apply::apply(&loaded.config, &kernel, &BTreeMap::new())).unwrap();
        let sup = Supervisor::new(opts, kernel, Vec::new(), Running::from_file(loaded));
        Setup { dir, sup }
    }

    #[test]
    fn a_foreign_change_is_repaired_and_reported_once() {
        let mut b = started(LAB);
        b.kernel().flush_chain("pair/kiosk/mairie");
        run(b.sup.check(SystemTime::now(), None));
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(drift.len(), 1);
        assert_eq!(
            drift[0].field(field::DETAIL),
            Some("chain pair/kiosk/mairie: 0 rules instead of 5")
        );
        assert_eq!(drift[0].field(field::WALL), Some("ruleset"));
        assert_eq!(b.sup.drift_repairs, 1);
        let plan = plan::plan(b.sup.config());
        assert!(compare(&plan.canonical(), b.kernel().table.borrow().as_ref()).in_sync());
        run(b.sup.check(SystemTime::now(), None));
        assert_eq!(
            b.events(EventKind::RulesetDrift).len(),
            1,
            "nothing new to report"
        );
    }

    #[test]
    fn forwarding_is_off_while_the_ruleset_is_repaired_and_the_actor_named() {
        let mut b = started(LAB);
        b.kernel().delete_table().unwrap();
        b.kernel().forget_calls();
        let nft = Actor {
            pid: 4242,
            comm: Some("nft".into()),
            parent: Some((4200, "bash".into())),
        };
        run(b.sup.check(SystemTime::now(), Some(nft)));
        let steps = b.kernel().calls_of(&["set_sysctl", "apply_ruleset"]);
        assert_eq!(
            steps,
            [
                format!("set_sysctl {}=0", plan::FORWARDING_V4),
                format!("set_sysctl {}=0", plan::FORWARDING_V6),
                "apply_ruleset".to_owned(),
                format!("set_sysctl {}=1", plan::FORWARDING_V4),
                format!("set_sysctl {}=1", plan::FORWARDING_V6),
            ]
        );
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(drift[0].field(field::ACTOR_PID), Some("4242"));
        assert_eq!(drift[0].field(field::ACTOR_COMM), Some("nft"));
        assert_eq!(drift[0].field(field::ACTOR_PARENT), Some("bash 4200"));
        assert!(
            drift[0]
                .message()
                .contains("by nft (pid 4242, started by bash, pid 4200)"),
            "{}",
            drift[0].message()
        );
    }

    #[test]
    fn a_failed_repair_leaves_forwarding_off() {
        let mut b = started(LAB);
        b.kernel().delete_table().unwrap();
        b.kernel().fail("apply_ruleset");
        run(b.sup.check(SystemTime::now(), None));
        assert_eq!(
            b.kernel().sysctl_value(plan::FORWARDING_V4).as_deref(),
            Some("0")
        );
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(drift[0].field(field::REPAIRED), Some("no"));
        // Next poll: the kernel accepts again, the table comes back, forwarding too.
        b.kernel().heal("apply_ruleset");
        run(b.sup.poll(SystemTime::now()));
        assert_eq!(
            b.kernel().sysctl_value(plan::FORWARDING_V4).as_deref(),
            Some("1")
        );
    }

    #[test]
    fn a_flushed_second_wall_is_put_back_without_touching_forwarding() {
        let mut b = started(LAB);
        b.kernel()
            .routing
            .borrow_mut()
            .rules
            .retain(|r| r.priority >= 7300);
        b.kernel().forget_calls();
        run(b.sup.poll(SystemTime::now()));
        assert!(
            b.kernel().calls_of(&["set_sysctl"]).is_empty(),
            "{:?}",
            b.kernel().calls()
        );
        assert_eq!(
            b.kernel().calls_of(&["ensure_wall", "ensure_rules"]).len(),
            2
        );
        let live = b.kernel().routing.borrow().clone();
        assert!(
            plan::plan(b.sup.config())
                .routing_differences(&live)
                .is_empty()
        );
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].field(field::WALL), Some("routing"));
        assert!(
            drift[0]
                .field(field::DETAIL)
                .unwrap()
                .contains("iif seg-kiosk lookup 7400` is missing")
        );
    }

    #[test]
    fn at_rest_the_poll_reads_counters_and_lists_nothing() {
        let mut b = started(LAB);
        b.kernel().forget_calls();
        for _ in 0..3 {
            run(b.sup.poll(SystemTime::now()));
        }
        assert!(
            b.kernel()
                .calls_of(&["list_table", "apply_ruleset"])
                .is_empty(),
            "{:?}",
            b.kernel().calls()
        );
        assert_eq!(b.kernel().calls_of(&["counters"]).len(), 3);
    }

    #[test]
    fn a_notified_edit_is_repaired_without_listing_first() {
        let mut b = started(LAB);
        b.kernel().flush_chain("forward");
        b.kernel().forget_calls();
        let notice = RulesetNotice {
            actor: Some(Actor {
                pid: 77,
                comm: Some("nft".into()),
                parent: None,
            }),
            changes: vec!["a rule was deleted from chain forward (4 times)".into()],
            recreated: false,
            lost: false,
        };
        run(b.sup.on_ruleset_notices(SystemTime::now(), vec![notice]));
        let calls = b
            .kernel()
            .calls_of(&["set_sysctl", "apply_ruleset", "list_table"]);
        assert_eq!(
            calls,
            [
                format!("set_sysctl {}=0", plan::FORWARDING_V4),
                format!("set_sysctl {}=0", plan::FORWARDING_V6),
                "apply_ruleset".to_owned(),
                "list_table".to_owned(),
                format!("set_sysctl {}=1", plan::FORWARDING_V4),
                format!("set_sysctl {}=1", plan::FORWARDING_V6),
            ],
            "forwarding off, apply, verify, forwarding on: no listing before the repair"
        );
        let plan = plan::plan(b.sup.config());
        assert!(compare(&plan.canonical(), b.kernel().table.borrow().as_ref()).in_sync());
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(
            drift[0].field(field::DETAIL),
            Some("a rule was deleted from chain forward (4 times)")
        );
    }

    #[test]
    fn a_whole_new_table_is_listed_and_left_alone_when_it_matches() {
        let mut b = started(LAB);
        b.kernel().forget_calls();
        let notice = RulesetNotice {
            actor: Some(Actor {
                pid: 78,
                comm: Some("nft".into()),
                parent: Some((70, "cloison".into())),
            }),
            changes: vec!["table inet cloison was created anew".into()],
            recreated: true,
            lost: false,
        };
        run(b.sup.on_ruleset_notices(SystemTime::now(), vec![notice]));
        assert_eq!(b.kernel().calls_of(&["list_table"]).len(), 1);
        assert!(
            b.kernel()
                .calls_of(&["apply_ruleset", "set_sysctl"])
                .is_empty()
        );
        assert!(b.events(EventKind::RulesetDrift).is_empty());
    }

    #[test]
    fn without_repair_a_drift_is_reported_once_and_left() {
        let mut b = started(&LAB.replace("[alerts]", "[daemon]\nrepair = false\n\n[alerts]"));
        b.kernel().flush_chain("pair/kiosk/mairie");
        for _ in 0..3 {
            run(b.sup.check(SystemTime::now(), None));
        }
        assert_eq!(b.events(EventKind::RulesetDrift).len(), 1);
        assert_eq!(b.sup.drift_repairs, 0);
        assert_eq!(
            b.kernel().calls_of(&["apply_ruleset"]).len(),
            1,
            "only start-up's"
        );
    }

    #[test]
    fn a_deleted_table_comes_back_with_its_counts() {
        let mut b = started(LAB);
        b.kernel().count("kiosk/mairie", 40);
        run(b.sup.poll(SystemTime::now()));
        b.kernel().delete_table().unwrap();
        run(b.sup.check(SystemTime::now(), None));
        let live = counters(b.kernel().table.borrow().as_ref().unwrap());
        assert_eq!(live["kiosk/mairie"].packets, 40);
        let drift = b.events(EventKind::RulesetDrift);
        assert_eq!(
            drift[0].field(field::DETAIL),
            Some("table inet cloison is missing")
        );
    }

    #[test]
    fn an_unconfirmed_reload_is_rolled_back() {
        let mut b = started(LAB);
        let first = b.sup.running_hash().clone();
        let before = b.kernel().table.borrow().clone();
        b.write_config(&LAB.replace("ports = [5900]", "ports = [5900, 3389]"));
        let m = run(b.sup.reload(Some(Duration::from_secs(60)))).unwrap();
        assert!(m.contains("rolled back in 60 s"), "{m}");
        assert_ne!(b.sup.running_hash(), &first);
        assert!(b.sup.confirm_deadline().is_some());
        assert_ne!(*b.kernel().table.borrow(), before);
        run(b.sup.rollback());
        assert_eq!(b.sup.running_hash(), &first);
        assert!(b.sup.confirm_deadline().is_none());
        let plan = plan::plan(b.sup.config());
        assert!(compare(&plan.canonical(), b.kernel().table.borrow().as_ref()).in_sync());
        let applied = b.events(EventKind::ConfigApplied);
        assert!(
            applied.last().unwrap().message().contains("rolled back"),
            "{applied:?}"
        );
        // The file is still there: a reload, a SIGHUP or a restart must not apply it.
        let err = run(b.sup.reload(None)).unwrap_err();
        assert!(
            err.contains("rolled back") && err.contains("reload --confirm"),
            "{err}"
        );
        assert_eq!(b.sup.running_hash(), &first);
        assert!(
            run(b.sup.status(Default::default()))
                .last_rollback
                .is_some()
        );
        // Trying it again on purpose is allowed; confirming it makes it good.
        run(b.sup.reload(Some(Duration::from_secs(60)))).unwrap();
        b.sup.confirm().unwrap();
        assert!(state::rolled_back(b.sup.state_dir()).unwrap().is_empty());
        run(b.sup.reload(None)).unwrap();
    }

    #[test]
    fn a_confirmed_reload_becomes_the_last_known_good() {
        let mut b = started(LAB);
        let text = LAB.replace("ports = [5900]", "ports = [5900, 3389]");
        b.write_config(&text);
        run(b.sup.reload(Some(Duration::from_secs(60)))).unwrap();
        assert!(b.sup.confirm().is_ok());
        assert!(b.sup.confirm().is_err(), "nothing left to confirm");
        let saved = state::load(b.sup.state_dir()).unwrap().unwrap();
        assert_eq!(saved.source, text);
    }

    #[test]
    fn an_invalid_file_is_rejected_and_changes_nothing() {
        let mut b = started(LAB);
        let before = b.kernel().table.borrow().clone();
        b.kernel().forget_calls();
        b.write_config(&LAB.replace(
            "address = \"192.168.20.1/24\"",
            "address = \"192.168.20.1/33\"",
        ));
        let err = run(b.sup.reload(None)).unwrap_err();
        assert!(err.contains("was rejected"), "{err}");
        assert_eq!(*b.kernel().table.borrow(), before);
        assert!(
            b.kernel()
                .calls_of(&["apply_ruleset", "set_sysctl", "ensure"])
                .is_empty()
        );
        assert_eq!(b.events(EventKind::ConfigRejected).len(), 1);
    }

    #[test]
    fn a_ruleset_the_kernel_refuses_keeps_the_running_one() {
        let mut b = started(LAB);
        let first = b.sup.running_hash().clone();
        let before = b.kernel().table.borrow().clone();
        b.write_config(&LAB.replace("ports = [5900]", "ports = [5900, 3389]"));
        b.kernel().fail("apply_ruleset");
        let err = run(b.sup.reload(None)).unwrap_err();
        assert!(err.contains("could not be applied"), "{err}");
        assert_eq!(b.sup.running_hash(), &first);
        assert_eq!(*b.kernel().table.borrow(), before);
        assert_eq!(
            b.kernel().sysctl_value(plan::FORWARDING_V4).as_deref(),
            Some("1")
        );
    }
}
