//! The command line, as data. Lives in the library so the manual (`manual`) and the shell
//! completions are generated from the same definition the binary parses; what each
//! subcommand's exit status means lives here too, for `--help` and the man pages alike.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueHint};

use cloison_core::config::DEFAULT_PATH;

/// Keeps the town hall's network segments apart, and shows that it does.
///
/// Reads one TOML file describing the segments (the municipal network, the public kiosk,
/// the La Poste counter...), enforces their isolation with nftables, watches for traffic
/// that tries to cross, and reports it to the journal.
#[derive(Debug, Parser)]
#[command(
    name = "cloison",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file.
    #[arg(short, long, global = true, value_name = "PATH", default_value = DEFAULT_PATH, env = "CLOISON_CONFIG", value_hint = ValueHint::FilePath)]
    pub config: PathBuf,

    /// Where the daemon keeps its state (last known good and rolled-back
    /// configurations). Default: $STATE_DIRECTORY (systemd), else /var/lib/cloison.
    #[arg(long, global = true, value_name = "DIR", env = "CLOISON_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Where the daemon's control socket is. Default: $RUNTIME_DIRECTORY (systemd), else
    /// /run/cloison.
    #[arg(long, global = true, value_name = "DIR", env = "CLOISON_RUNTIME_DIR")]
    pub runtime_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print a one-line summary.
    ///
    /// Every error of the file is printed at once, each with file:line:column, the key,
    /// what is wrong and how to fix it. The example the package installs is valid, and
    /// said to be the unedited example: `cloison run` and `cloison apply` refuse it until it
    /// is edited for this box.
    #[command(after_long_help = exit_help("check"))]
    Check,

    /// Print what would be applied: the nftables ruleset, then the links and sysctls.
    ///
    /// The text form is the ruleset in nft syntax with the links and sysctls as comments,
    /// accepted by `nft -f` as it is (`cloison plan | nft -c -f -`). `--json` prints one
    /// JSON document: `ruleset` (exactly the batch `nft -j -f` reads: `cloison plan --json
    /// | jq .ruleset | nft -c -j -f -`), `ruleset_hash`, `links` and `sysctls` (forwarding
    /// last). Nothing is applied; the kernel is not consulted.
    #[command(after_long_help = exit_help("plan"))]
    Plan {
        /// Print one JSON document (the ruleset as nftables JSON, the links, the sysctls).
        #[arg(long)]
        json: bool,
    },

    /// Apply the configuration once and exit: ruleset, links, sysctls, then forwarding.
    ///
    /// Fail-closed: IP forwarding is switched on only after the ruleset is live and
    /// verified. An invalid configuration or a ruleset nft rejects changes nothing.
    /// Applying the same configuration twice changes nothing and says so. The example the
    /// package installs is refused until it is edited for this box.
    #[command(after_long_help = exit_help("apply"))]
    Apply {
        /// Remove cloison's table and switch IP forwarding off (nothing else is touched).
        #[arg(long)]
        remove: bool,
    },

    /// Show whether the live ruleset matches the configuration, the drop counters, the
    /// policy in words and the daemon's view.
    ///
    /// Root reads the live table itself; members of the `cloison` group get it through
    /// the running daemon. `--json` output carries `schema_version` (1), `version`,
    /// `router` and `timestamp` (Unix seconds).
    #[command(after_long_help = exit_help("status"))]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also fail when the cloison daemon is not running.
        #[arg(long)]
        require_daemon: bool,
    },

    /// Print the box's metrics in the Prometheus text format (for node_exporter).
    ///
    /// Drop counters per pair (exact), alerts by kind, whether the ruleset is in sync,
    /// the configuration in force, the daemon, the capture, and the last `cloison
    /// verify`. Works as root or as a member of the `cloison` group (through the daemon).
    /// cloison-metrics.timer writes it every 30 s to
    /// /var/lib/prometheus/node-exporter/cloison.prom.
    #[command(after_long_help = exit_help("metrics"))]
    Metrics {
        /// Replace FILE atomically (write beside it, then rename) instead of printing.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Run the daemon: apply, watch for drift, inspect traffic, write alerts.
    ///
    /// As cloison.service runs it (Type=notify): applies the configuration as `cloison
    /// apply` does (an invalid one falls back to the last one that applied), then reads the
    /// ruleset's drops, captures layer-2 evidence on the segments and the trunk, writes
    /// alerts to the journal, repairs drift, and re-reads the configuration on SIGHUP. On
    /// SIGTERM it stops and leaves the rules in place. The example the package installs,
    /// unedited, is refused before anything is touched (the unit's ExecCondition skips the
    /// start then), so a box installed but not yet configured keeps routing as it did.
    #[command(after_long_help = exit_help("run"))]
    Run,

    /// Ask the running daemon to re-read its configuration.
    #[command(after_long_help = exit_help("reload"))]
    Reload {
        /// Roll back to the previous configuration after SECONDS unless `cloison confirm`
        /// is run in the meantime (for changes made over ssh).
        #[arg(long, value_name = "SECONDS")]
        confirm: Option<u64>,
    },

    /// Keep a configuration applied with `reload --confirm`.
    #[command(after_long_help = exit_help("confirm"))]
    Confirm,

    /// Write a report for the council, the DPO or an auditor: one HTML page, printable on A4.
    ///
    /// In French by default, for readers who are not network engineers: the router, the
    /// period and the configuration's SHA-256; a diagram of the segments, uplinks and
    /// allowed exceptions; the latest `cloison verify` in sentences ("Le poste public ne
    /// peut pas joindre le réseau de la mairie : vérifié le 28/11/2026 à 03:00, 24 essais,
    /// tous bloqués"), or a plain statement that no check ran in the period and what to run;
    /// the alerts by kind, by pair of segments and by day, the top sources and what each
    /// kind means; every configuration applied or rejected and every change of the rules
    /// outside cloison, with hashes and, when known, who made it; the history of checks.
    ///
    /// It reads cloison's entries of the journal with `journalctl` (run it as root or as a
    /// member of the `systemd-journal` group) and keeps no data of its own. Every figure is
    /// a sum of what the entries say. The page is self-contained: no script, nothing
    /// loaded from elsewhere; open it in any browser and print it, or attach it to a mail.
    ///
    /// Exit status: 0 when the page was written; 1 on error (invalid configuration, journal
    /// unreadable, file not writable); 2 when the configuration file cannot be read or the
    /// command line is wrong.
    Report {
        /// The period covered, ending now: `30d` (days), `2w` (weeks), `12h`, `90m`.
        #[arg(long, value_name = "PERIOD", default_value = "30d", value_parser = period)]
        since: String,
        /// The report's language: `fr` or `en`.
        #[arg(long, value_name = "LANG", default_value = "fr", value_parser = ["fr", "en"])]
        lang: String,
        /// Where to write the page (`-` for standard output).
        #[arg(short, long, value_name = "FILE.html")]
        output: PathBuf,
        /// Read the journal files in DIR instead of the system's journal (as `journalctl
        /// --directory`): a collector's copy of a router's journal, or a test's. Only the
        /// entries of the router the configuration names (`[router] name`, else this
        /// machine's hostname) are counted.
        #[arg(long, visible_alias = "journal-dir", value_name = "DIR")]
        directory: Option<PathBuf>,
    },

    /// Prove the isolation on this box, with real packets through the live rules.
    ///
    /// A temporary probe host is attached to each segment's interface (a network
    /// namespace of its own, joined by a veth pair and eBPF redirects), so its packets
    /// enter the router exactly as a host of the segment's would. From each, toward every
    /// other segment, the router, private space and the Internet: TCP connects on the
    /// `[verify] ports`, UDP 53 and 123, ICMP echo, IPv6 too where configured. Each probe
    /// is judged three ways: what came back, the ruleset's verdict (nftables tracing), and
    /// the second wall's (a route query). Everything attached is removed afterwards, on
    /// error and Ctrl-C too. Every run is journaled (`verify_passed`, `verify_failed`; a
    /// blocked probe that got through a wall is an `isolation_breach` with
    /// CLOISON_VERIFY=1) and recorded in the state directory for `cloison metrics`.
    #[command(after_long_help = exit_help("verify"))]
    Verify {
        /// List the probes without sending anything.
        #[arg(long)]
        dry_run: bool,
        /// Machine-readable output: every probe with what each wall did.
        #[arg(long)]
        json: bool,
        /// Only when `[verify] every` says a run is due (cloison-verify.timer's way):
        /// never without `every`; at once without an earlier run, after a failed one or
        /// when the configuration changed; otherwise `every` after the last run.
        #[arg(long, conflicts_with = "dry_run")]
        if_due: bool,
    },

    /// Internal (cloison.service's ExecCondition): exit 1, saying why, when the
    /// configuration is the example the package installs, unedited; 0 otherwise.
    #[command(hide = true)]
    Configured,

    /// Internal (debian/build): write the man pages into DIR/man5 and DIR/man8.
    #[command(hide = true)]
    Manpages { dir: PathBuf },

    /// Internal (debian/build): write the bash (DIR/bash/cloison) and zsh (DIR/zsh/_cloison)
    /// completions.
    #[command(hide = true)]
    Completions { dir: PathBuf },
}

/// `--since`: checked here so a wrong period is a usage error (exit 2), like any other.
fn period(s: &str) -> Result<String, String> {
    cloison_core::report::parse_since(s).map(|_| s.to_owned())
}

/// What a subcommand's exit status means: `(status, meaning)`.
pub fn exit_statuses(command: &str) -> &'static [(u8, &'static str)] {
    const UNREADABLE: (u8, &str) = (
        2,
        "the configuration file cannot be read, or the command line is wrong",
    );
    match command {
        "check" => &[
            (0, "the configuration is valid"),
            (
                1,
                "the configuration has errors (each is printed with file:line:column)",
            ),
            UNREADABLE,
        ],
        "plan" => &[
            (0, "the plan was printed"),
            (1, "the configuration has errors"),
            UNREADABLE,
        ],
        "apply" => &[
            (
                0,
                "applied and verified, or already applied (nothing changed)",
            ),
            (
                1,
                "the configuration has errors, is the unedited example, or could not be applied (the previous table stays)",
            ),
            UNREADABLE,
        ],
        "status" => &[
            (0, "the live ruleset is the configuration's"),
            (
                1,
                "the ruleset drifted or is missing, or (with --require-daemon) the daemon is not running",
            ),
            UNREADABLE,
            (
                3,
                "the live table could not be checked at all (no permission to read it and no daemon to ask): this says nothing about drift",
            ),
        ],
        "metrics" => &[
            (0, "the metrics were written"),
            (
                2,
                "the configuration cannot be used and the daemon does not answer (nothing is written then)",
            ),
        ],
        "run" => &[
            (0, "stopped by SIGTERM or SIGINT (the rules stay in place)"),
            (
                1,
                "could not start: no usable configuration (nor a last known good one), the unedited example, or applying failed",
            ),
            (2, "the command line is wrong"),
        ],
        "verify" => &[
            (
                0,
                "every probe met the configuration (with --dry-run: the probes were listed)",
            ),
            (
                1,
                "some probe did not: a blocked flow got through a wall, or an allowed one did not pass",
            ),
            UNREADABLE,
            (
                3,
                "could not verify (no interface, no permission, another run going on); nothing was left attached",
            ),
        ],
        "reload" | "confirm" => &[
            (0, "the daemon did it"),
            (
                1,
                "the daemon refused (its answer says why) or is not running",
            ),
            (2, "the command line is wrong"),
        ],
        _ => &[
            (0, "success"),
            (1, "failure (see each command's page)"),
            UNREADABLE,
        ],
    }
}

/// The exit statuses as `--help` shows them.
fn exit_help(command: &str) -> String {
    let mut out = String::from("Exit status:");
    for (code, meaning) in exit_statuses(command) {
        out.push_str(&format!("\n  {code}  {meaning}"));
    }
    out
}
