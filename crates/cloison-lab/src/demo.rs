//! `cloison-lab`: the whole story on one machine. Builds the simulated mairie with a
//! `Rig` (the lab, a private journald, `cloison run` with config/lab.toml started as
//! systemd would), plays the chosen parts of the story (`scenario`), shows the alerts as
//! `journalctl` reads them back, the drop counters and a verdict, then removes
//! everything. Exits 0 only when the story went as expected: every ordinary flow worked,
//! nothing of any attack crossed, every expected alert is in the journal, no other alert
//! is, and the journal accounts for every dropped packet.
//!
//! It never touches the machine's own network: everything happens in the lab's
//! namespaces. It removes everything on success, on error and on Ctrl-C (`interrupt`);
//! `--keep` hands the lab to a keeper process instead (`keep`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::LabArgs;
use crate::journal::JournalError;
use crate::narrate::{AlertRow, Style, alert_row, section};
use crate::registry::{self, RegistryError};
use crate::rig::{Rig, RigError};
use crate::scenario::{Expected, Mairie, Part, ScenarioError, Step, StepId, thousands};
use crate::{HOST_IF, LabError, Node, interrupt, keep};
use cloison_core::alert::event::EventKind;
use cloison_core::alert::{CounterClass, Names, field, traffic_kind};
use cloison_core::config::Config;

/// The lab's configuration, carried in the binary so `cloison-lab` runs from anywhere.
pub const LAB_CONFIG: &str = include_str!("../../../config/lab.toml");
/// The name it is shown under.
const LAB_CONFIG_NAME: &str = "config/lab.toml";

/// How long the daemon may take to apply the configuration and say READY=1.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an expected alert may take to be in the journal (cloison writes a first
/// alert within a second of the packet; the margin is for slow machines).
const ALERT_DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(200);
/// Alert rows sit under the step lines.
const ROW_INDENT: usize = 9;
/// How long the daemon may take to stop (SIGTERM, as `systemctl stop`).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Exit status when the story did not go as expected.
pub const EXIT_FAILED: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "cloison-lab needs root: it creates network namespaces, nftables rules and a private journald (try: sudo tests/lab)"
    )]
    NotRoot,
    #[error("`{program}` is missing: install the Debian package `{package}` (tests/lab does it)")]
    Missing {
        program: &'static str,
        package: &'static str,
    },
    #[error(transparent)]
    Programs(#[from] crate::ProgramsError),
    #[error("the built-in lab configuration is invalid: {0}")]
    Config(String),
    #[error(transparent)]
    Rig(#[from] RigError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot read the lab's journal")]
    Journal(#[from] JournalError),
    #[error("cannot watch for Ctrl-C")]
    Signals(#[source] RegistryError),
    #[error("cannot hand the lab over to a keeper process")]
    Keep(#[source] std::io::Error),
    #[error("cannot remove the lab")]
    Remove(#[source] LabError),
    #[error("left behind after removing the lab: {0}")]
    LeftBehind(String),
    #[error(transparent)]
    Down(#[from] keep::DownError),
    #[error("interrupted")]
    Interrupted,
}

/// `cloison-lab [--keep] [--scenario NAME,...] [--no-color]`; the exit status.
pub fn run(args: &LabArgs) -> Result<u8, DemoError> {
    preflight()?;
    if args.keep && args.handoff_fd.is_none() {
        // journald lives as long as the process that started it: a kept lab needs a
        // process that stays. The story is told by that keeper; this one relays.
        return keep::relay().map_err(DemoError::Keep);
    }
    let handoff = args.handoff_fd.map(keep::Handoff::adopt);
    interrupt::install().map_err(DemoError::Signals)?;
    let style = Style::detect(args.no_color);
    let parts = chosen(&args.scenario);
    let config = cloison_core::config::parse(LAB_CONFIG, LAB_CONFIG_NAME)
        .map_err(|d| DemoError::Config(d.lines().join("; ")))?;
    let programs = crate::Programs::find()?;
    let started = Instant::now();

    println!(
        "{}",
        style.title("cloison-lab: a simulated mairie, the attacks a compromised kiosk would try, and cloison's alerts")
    );
    println!(
        "Everything runs in network namespaces of its own; this machine's own network is never touched."
    );
    let mut rig = match Rig::with_config_text(&config, LAB_CONFIG, &programs) {
        Ok(rig) => rig,
        // What was built is already removed (the lab's drop).
        Err(_) if interrupt::requested() => {
            eprintln!("cloison-lab: interrupted while building the lab; nothing was left up");
            return Ok(registry::EXIT_INTERRUPTED);
        }
        Err(e) => return Err(e.into()),
    };
    let id = rig.lab.id().to_owned();
    let told = Story::new(&config, style).tell(&mut rig, &parts);
    match told {
        Ok(verdict) => {
            let code = if verdict.passed() { 0 } else { EXIT_FAILED };
            if let Some(handoff) = handoff {
                println!();
                println!("{}", verdict.last_line(style, started.elapsed()));
                keep::keep(rig, handoff, code, style)?;
                return Ok(code);
            }
            println!("{}", section(style, "Clean-up"));
            let removed = teardown(rig, &id)?;
            println!("    {removed}");
            println!();
            println!("{}", verdict.last_line(style, started.elapsed()));
            Ok(code)
        }
        Err(DemoError::Interrupted) => {
            let removed = teardown(rig, &id)?;
            eprintln!("cloison-lab: interrupted; {removed}");
            Ok(registry::EXIT_INTERRUPTED)
        }
        // Ctrl-C from a terminal reaches journald too: what fails then is the interruption.
        Err(_) if interrupt::requested() => {
            let removed = teardown(rig, &id)?;
            eprintln!("cloison-lab: interrupted; {removed}");
            Ok(registry::EXIT_INTERRUPTED)
        }
        Err(e) => {
            match teardown(rig, &id) {
                Ok(removed) => eprintln!("cloison-lab: stopped on an error; {removed}"),
                Err(t) => eprintln!("cloison-lab: {t}"),
            }
            Err(e)
        }
    }
}

/// `cloison-lab down [ID]`: removes the kept labs of this session (and those whose
/// creator died), or the lab ID; never another session's unless named.
pub fn down(id: Option<&str>) -> Result<u8, DemoError> {
    preflight_root()?;
    let done = keep::down(id)?;
    if done.removed.is_empty() {
        println!("no kept lab of this session to remove");
    }
    for line in done.removed.iter().chain(&done.left) {
        println!("{line}");
    }
    Ok(0)
}

fn preflight_root() -> Result<(), DemoError> {
    if nix::unistd::Uid::effective().is_root() {
        Ok(())
    } else {
        Err(DemoError::NotRoot)
    }
}

/// Root, and the programs the lab runs.
fn preflight() -> Result<(), DemoError> {
    preflight_root()?;
    const NEEDED: [(&str, &str); 5] = [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("journalctl", "systemd"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
    ];
    for (program, package) in NEEDED {
        if !on_path(program) {
            return Err(DemoError::Missing { program, package });
        }
    }
    if !Path::new(super::journal::JOURNALD).exists() {
        return Err(DemoError::Missing {
            program: super::journal::JOURNALD,
            package: "systemd",
        });
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|dir| dir.join(program).is_file())
}

/// The parts to play, in the story's order.
fn chosen(asked: &[Part]) -> Vec<Part> {
    if asked.is_empty() {
        return Part::ALL.to_vec();
    }
    Part::ALL
        .into_iter()
        .filter(|p| asked.contains(p))
        .collect()
}

/// Stops the daemon as `systemctl stop` does, then drops the rig (journald, the lab's
/// namespaces and files) and checks that nothing is left. Says what was removed.
pub(super) fn teardown(mut rig: Rig, id: &str) -> Result<String, DemoError> {
    let t = Instant::now();
    let daemon = rig.daemon_pid();
    let journald = rig.journal.pid();
    let namespaces = rig.lab.topology().namespaces().count();
    let stopped = match rig.stop(STOP_TIMEOUT) {
        Ok(Some(code)) => format!("cloison run stopped (SIGTERM, exit {code})"),
        Ok(None) => "cloison run stopped (by a signal)".to_owned(),
        Err(RigError::NoDaemon) => "cloison run was not running".to_owned(),
        Err(e) => format!("cloison run killed ({e})"),
    };
    let lab_dir = registry::log_dir(id);
    drop(rig);
    let mut left = Vec::new();
    let ns: Vec<String> = super::lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{id}-")))
        .collect();
    if !ns.is_empty() {
        left.push(format!("namespaces {}", ns.join(", ")));
    }
    for pid in daemon.into_iter().chain([journald]) {
        if super::rig::alive(pid) {
            left.push(format!("process {pid}"));
        }
    }
    for path in [lab_dir, registry::record_path(id)] {
        if path.exists() {
            left.push(path.display().to_string());
        }
    }
    if !left.is_empty() {
        return Err(DemoError::LeftBehind(left.join(", ")));
    }
    Ok(format!(
        "{stopped}; journald stopped; lab {id} removed: {namespaces} namespaces and every process in them, {}; nothing left ({:.1} s)",
        registry::log_dir(id).display(),
        t.elapsed().as_secs_f64()
    ))
}

/// The journal as the story reads it: `journalctl -t cloison -o json --after-cursor`,
/// polled; every entry read so far.
struct JournalWatch {
    cursor: Option<String>,
    entries: Vec<Value>,
}

impl JournalWatch {
    fn poll(&mut self, rig: &Rig) -> Result<Vec<Value>, JournalError> {
        let mut args = vec!["-t".to_owned(), "cloison".to_owned()];
        if let Some(c) = &self.cursor {
            args.push(format!("--after-cursor={c}"));
        }
        let new = rig.journal.entries(&args)?;
        if let Some(c) = new.last().and_then(|e| e["__CURSOR"].as_str()) {
            self.cursor = Some(c.to_owned());
        }
        self.entries.extend(new.iter().cloned());
        Ok(new)
    }
}

fn is_alert(entry: &Value) -> bool {
    entry[field::EVENT]
        .as_str()
        .and_then(EventKind::parse)
        .is_some_and(traffic_kind)
}

/// A step played, with which of its expected alerts were found.
struct Played {
    step: Step,
    found: Vec<bool>,
}

impl Played {
    fn missing(&self) -> Vec<&Expected> {
        self.step
            .expected
            .iter()
            .zip(&self.found)
            .filter(|(_, f)| !**f)
            .map(|(e, _)| e)
            .collect()
    }
}

struct Story<'a> {
    config: &'a Config,
    style: Style,
    watch: JournalWatch,
    names: Names,
}

impl<'a> Story<'a> {
    fn new(config: &'a Config, style: Style) -> Story<'a> {
        Story {
            config,
            style,
            watch: JournalWatch {
                cursor: None,
                entries: Vec::new(),
            },
            names: Names::from_config(config, "lab"),
        }
    }

    fn check_interrupt(&self) -> Result<(), DemoError> {
        if interrupt::requested() {
            Err(DemoError::Interrupted)
        } else {
            Ok(())
        }
    }

    fn tell(mut self, rig: &mut Rig, parts: &[Part]) -> Result<Verdict, DemoError> {
        let style = self.style;
        self.describe_mairie(rig);
        self.check_interrupt()?;
        self.start_daemon(rig)?;
        self.check_interrupt()?;
        let mairie = Mairie::new(rig, self.config)?;
        let mut played = Vec::new();
        let mut in_attacks = false;
        if parts.contains(&Part::Normal) {
            println!("{}", section(style, "Ordinary traffic, which must work"));
        }
        for part in parts {
            if part.is_attack() && !in_attacks {
                in_attacks = true;
                println!(
                    "{}",
                    section(
                        style,
                        "Attacks a compromised kiosk would try, and the alerts as journalctl reads them back"
                    )
                );
                println!("{}", style.dim(&AlertRow::header().render(ROW_INDENT)));
            }
            for id in StepId::of(*part) {
                self.check_interrupt()?;
                let step = mairie.play(id, &mut |tried| {
                    print!("  {:<6} {tried}: ", part.name());
                    let _ = std::io::stdout().flush();
                })?;
                let shown = if step.ok {
                    style.good(&step.seen)
                } else {
                    style.bad(&step.seen)
                };
                println!("{shown}");
                let found = self.await_alerts(rig, &step.expected)?;
                self.check_interrupt()?;
                for (e, f) in step.expected.iter().zip(&found) {
                    if !f {
                        println!(
                            "{}{}",
                            " ".repeat(ROW_INDENT),
                            style.bad(&format!(
                                "MISSING: no {e} in the journal within {ALERT_DEADLINE:?}"
                            ))
                        );
                    }
                }
                played.push(Played { step, found });
            }
        }
        self.check_interrupt()?;
        let counters = rig.counters()?;
        let accounting = self.account(rig, counters)?;
        let unexpected = self.unexpected(&played);
        let verdict = Verdict {
            played,
            accounting,
            unexpected,
        };
        verdict.print(style);
        Ok(verdict)
    }

    fn describe_mairie(&self, rig: &Rig) {
        let style = self.style;
        let lab = &rig.lab;
        println!(
            "{}",
            section(
                style,
                &format!(
                    "The mairie, in network namespaces {}-* (built in {:.2} s)",
                    lab.id(),
                    lab.build_time().as_secs_f64()
                )
            )
        );
        let segs: Vec<String> = self
            .config
            .segments
            .iter()
            .map(|s| format!("{} {}", s.interface, s.address.addr()))
            .chain(
                self.config
                    .uplinks
                    .iter()
                    .map(|u| format!("{} ({})", u.interface, u.name)),
            )
            .collect();
        let v4 = |n: Node| lab.v4(n).map(|a| a.to_string()).unwrap_or_default();
        let rows = [
            (
                Node::Router,
                String::new(),
                format!("cloison's router: {}", segs.join(", ")),
            ),
            (
                Node::MairiePc,
                v4(Node::MairiePc),
                "municipal network: a staff PC".to_owned(),
            ),
            (
                Node::MairieSrv,
                v4(Node::MairieSrv),
                "municipal network: the file server (SMB, RDP, ssh, web, DNS)".to_owned(),
            ),
            (
                Node::Kiosk,
                v4(Node::Kiosk),
                "the public France Services kiosk".to_owned(),
            ),
            (
                Node::Poste,
                v4(Node::Poste),
                "the La Poste counter".to_owned(),
            ),
            (
                Node::Isp,
                v4(Node::Isp),
                format!(
                    "the town's Internet box; behind it, the Internet: {}",
                    v4(Node::InetA)
                ),
            ),
            (
                Node::Lpbox,
                v4(Node::Lpbox),
                format!(
                    "the La Poste line's box; behind it, the Internet: {}",
                    v4(Node::InetB)
                ),
            ),
        ];
        for (node, addr, what) in rows {
            println!("    {:<11} {:<15} {what}", node.role(), addr);
        }
    }

    fn start_daemon(&mut self, rig: &mut Rig) -> Result<(), DemoError> {
        let style = self.style;
        println!(
            "    {:<11} {:<15} a private systemd-journald (pid {}) in a mount namespace of its own",
            "journal",
            "",
            rig.journal.pid()
        );
        let t = Instant::now();
        rig.spawn_daemon(&[])?;
        let ready = rig.await_notify("READY=1", READY_TIMEOUT)?;
        let status = ready
            .lines()
            .find_map(|l| l.strip_prefix("STATUS="))
            .unwrap_or("");
        println!(
            "    {:<11} {:<15} `cloison run` with {LAB_CONFIG_NAME}, started as systemd does (notify socket, state and runtime directories)",
            "daemon", ""
        );
        println!(
            "    {:<11} {:<15} {}",
            "",
            "",
            style.good(&format!(
                "READY=1 after {:.1} s: {status}",
                t.elapsed().as_secs_f64()
            ))
        );
        println!(
            "    {}",
            style.dim(&format!(
                "alerts are read back with: journalctl --directory={} -t cloison -o json",
                rig.journal.journal_dir().display()
            ))
        );
        // The daemon's first entry says what it applied.
        let deadline = Instant::now() + ALERT_DEADLINE;
        loop {
            self.watch.poll(rig)?;
            let applied = self
                .watch
                .entries
                .iter()
                .find(|e| e[field::EVENT] == "config_applied");
            if let Some(e) = applied {
                println!(
                    "    {:<11} {:<15} config_applied: {}",
                    "journal",
                    "",
                    e[field::DETAIL].as_str().unwrap_or("")
                );
                break;
            }
            if Instant::now() >= deadline {
                println!(
                    "    {}",
                    style.bad("no config_applied entry in the journal yet")
                );
                break;
            }
            std::thread::sleep(POLL);
        }
        Ok(())
    }

    /// Reads the journal until every expected entry is there (or the deadline), printing
    /// each new alert as a row; which were found.
    fn await_alerts(&mut self, rig: &Rig, expected: &[Expected]) -> Result<Vec<bool>, DemoError> {
        let since = self.watch.entries.len();
        let deadline = Instant::now() + ALERT_DEADLINE;
        loop {
            for entry in self.watch.poll(rig)? {
                if is_alert(&entry) {
                    println!(
                        "{}",
                        self.style.alert(&alert_row(&entry).render(ROW_INDENT))
                    );
                }
            }
            let found: Vec<bool> = expected
                .iter()
                .map(|e| self.watch.entries[since..].iter().any(|x| e.matches(x)))
                .collect();
            if found.iter().all(|f| *f) || Instant::now() >= deadline || interrupt::requested() {
                return Ok(found);
            }
            std::thread::sleep(POLL);
        }
    }

    /// The counters, then waits (up to one summary period) until the journal accounts
    /// for every packet the alerting counters dropped.
    fn account(
        &mut self,
        rig: &Rig,
        counters: BTreeMap<String, u64>,
    ) -> Result<Accounting, DemoError> {
        let style = self.style;
        println!(
            "{}",
            section(
                style,
                "Drop counters (table inet cloison, read with `cloison status --json`)"
            )
        );
        let alerting: BTreeMap<String, u64> = counters
            .iter()
            .filter(|(name, n)| {
                **n > 0 && matches!(self.names.classify_counter(name), CounterClass::Alert(_))
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut shown = 0;
        for (name, n) in &counters {
            if *n == 0 {
                continue;
            }
            shown += 1;
            let meaning = match self.names.classify_counter(name) {
                CounterClass::Alert(kind) => format!("dropped, alerted as {kind}"),
                CounterClass::Noise => "dropped, counted only (not an attempt to cross)".to_owned(),
            };
            println!("    {name:<18} {:>8}   {meaning}", thousands(*n));
        }
        if shown == 0 {
            println!("    (no packet dropped)");
        }
        // Summaries come every `summary_every`, with the counters the daemon last read
        // (every 2 s): the last counts are in the journal at the latest two rounds on.
        let within = self.config.alerts.summary_every * 2 + Duration::from_secs(5);
        let deadline = Instant::now() + within;
        let mut printed_wait = false;
        loop {
            let mut new_rows = Vec::new();
            for entry in self.watch.poll(rig)? {
                if is_alert(&entry) {
                    new_rows.push(alert_row(&entry).render(ROW_INDENT));
                }
            }
            let journal = self.journal_counts();
            let pending: Vec<&String> = alerting
                .iter()
                .filter(|(name, n)| journal.get(*name).copied().unwrap_or(0) != **n)
                .map(|(name, _)| name)
                .collect();
            if !new_rows.is_empty() {
                for r in new_rows {
                    println!("{}", style.alert(&r));
                }
            }
            if pending.is_empty() || Instant::now() >= deadline || interrupt::requested() {
                let total: u64 = alerting.values().sum();
                let in_journal: u64 = alerting
                    .keys()
                    .map(|k| journal.get(k).copied().unwrap_or(0))
                    .sum();
                return Ok(Accounting {
                    dropped: total,
                    in_journal,
                    entries: self.watch.entries.iter().filter(|e| is_alert(e)).count(),
                    pending: pending.into_iter().cloned().collect(),
                });
            }
            if !printed_wait {
                printed_wait = true;
                println!(
                    "    {}",
                    style.dim(&format!(
                        "waiting for the summaries (every {} s) that carry the last counts into the journal...",
                        self.config.alerts.summary_every.as_secs()
                    ))
                );
                println!("{}", style.dim(&AlertRow::header().render(ROW_INDENT)));
            }
            self.check_interrupt()?;
            std::thread::sleep(POLL);
        }
    }

    /// Packets the journal reports per counter (`CLOISON_COUNTER`).
    fn journal_counts(&self) -> BTreeMap<String, u64> {
        let mut sums = BTreeMap::new();
        for e in &self.watch.entries {
            let (Some(c), Some(n)) = (
                e[field::COUNTER].as_str(),
                e[field::PACKETS]
                    .as_str()
                    .and_then(|p| p.parse::<u64>().ok()),
            ) else {
                continue;
            };
            *sums.entry(c.to_owned()).or_insert(0) += n;
        }
        sums
    }

    /// Alerts no played step accounts for: false alarms.
    fn unexpected(&self, played: &[Played]) -> Vec<Value> {
        let events: Vec<&str> = played
            .iter()
            .flat_map(|p| p.step.expected.iter().map(|e| e.event))
            .collect();
        self.watch
            .entries
            .iter()
            .filter(|e| is_alert(e))
            .filter(|e| {
                let event = e[field::EVENT].as_str().unwrap_or("");
                let from_kiosk = e[field::SRC_SEGMENT] == "kiosk";
                !(from_kiosk && events.contains(&event))
            })
            .cloned()
            .collect()
    }
}

/// Whether the journal accounts for every packet the alerting counters dropped.
struct Accounting {
    dropped: u64,
    in_journal: u64,
    /// Alert entries in the journal: what the flood cost the journal.
    entries: usize,
    /// Counters whose journal total differs from the counter.
    pending: Vec<String>,
}

struct Verdict {
    played: Vec<Played>,
    accounting: Accounting,
    unexpected: Vec<Value>,
}

impl Verdict {
    fn passed(&self) -> bool {
        self.played
            .iter()
            .all(|p| p.step.ok && p.found.iter().all(|f| *f))
            && self.accounting.pending.is_empty()
            && self.unexpected.is_empty()
    }

    fn print(&self, style: Style) {
        println!("{}", section(style, "Verdict"));
        let normal: Vec<&Played> = self
            .played
            .iter()
            .filter(|p| !p.step.part.is_attack())
            .collect();
        if !normal.is_empty() {
            let worked = normal.iter().filter(|p| p.step.ok).count();
            let ok = worked == normal.len();
            println!(
                "    {} {:<40} {worked} of {} flows worked, through the expected uplinks",
                style.mark(ok),
                Part::Normal.title(),
                normal.len()
            );
        }
        for p in self.played.iter().filter(|p| p.step.part.is_attack()) {
            let missing = p.missing();
            let ok = p.step.ok && missing.is_empty();
            let outcome = if p.step.ok {
                format!("nothing crossed, {}", p.step.stopped)
            } else {
                style.bad(&p.step.seen)
            };
            let mut kinds: Vec<&str> = p.step.expected.iter().map(|e| e.event).collect();
            kinds.dedup();
            let alerted = if missing.is_empty() {
                format!("alerted: {}", kinds.join(", "))
            } else {
                style.bad(&format!(
                    "alert MISSING: {}",
                    missing
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            };
            println!(
                "    {} {:<40} {outcome}; {alerted}",
                style.mark(ok),
                p.step.part.title(),
            );
        }
        let a = &self.accounting;
        let counted = a.pending.is_empty();
        println!(
            "    {} {:<40} {} packets dropped by alerting counters, {} reported in {}{}",
            style.mark(counted),
            "every dropped packet in the journal",
            thousands(a.dropped),
            thousands(a.in_journal),
            plural(a.entries, "journal entry", "journal entries"),
            if counted {
                String::new()
            } else {
                style.bad(&format!(" (differs for {})", a.pending.join(", ")))
            }
        );
        let quiet = self.unexpected.is_empty();
        println!(
            "    {} {:<40} {}",
            style.mark(quiet),
            "no false alarm",
            if quiet {
                "every alert comes from an attack above".to_owned()
            } else {
                style.bad(&format!(
                    "{}:",
                    plural(
                        self.unexpected.len(),
                        "unexpected alert",
                        "unexpected alerts"
                    )
                ))
            }
        );
        for e in &self.unexpected {
            println!(
                "           {}",
                e["MESSAGE"].as_str().unwrap_or("(no message)")
            );
        }
    }

    fn last_line(&self, style: Style, took: Duration) -> String {
        let attacks = self
            .played
            .iter()
            .filter(|p| p.step.part.is_attack())
            .count();
        let flows = self.played.len() - attacks;
        let secs = took.as_secs_f64();
        if self.passed() {
            style.good(&format!(
                "PASSED in {secs:.0} s: {} worked; {}, each blocked or contained and alerted; nothing crossed.",
                plural(flows, "ordinary flow", "ordinary flows"),
                plural(attacks, "attack", "attacks"),
            ))
        } else {
            style.bad(&format!(
                "FAILED after {secs:.0} s: see the lines marked FAIL above."
            ))
        }
    }
}

/// `1 attack`, `8 attacks`.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A shell in each host, for `--keep`: `ip netns exec NS bash`.
pub(super) fn shell_lines(rig: &Rig) -> Vec<String> {
    let lab = &rig.lab;
    [
        Node::Kiosk,
        Node::MairiePc,
        Node::MairieSrv,
        Node::Poste,
        Node::Router,
        Node::InetA,
        Node::InetB,
    ]
    .into_iter()
    .map(|n| {
        let addr = lab
            .v4(n)
            .map(|a| format!("{a} on {HOST_IF}"))
            .unwrap_or_else(|| "cloison runs here".to_owned());
        format!(
            "ip netns exec {:<22} bash    # {} ({addr})",
            lab.ns(n),
            n.role()
        )
    })
    .collect()
}
