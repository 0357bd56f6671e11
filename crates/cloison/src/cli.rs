//! The command line, as data. Lives in the library so the man page can be generated from
//! the same definition the binary parses.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    #[arg(short, long, global = true, value_name = "PATH", default_value = DEFAULT_PATH, env = "CLOISON_CONFIG")]
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
    /// Exit status: 0 when valid, 1 when the file has errors (every error is printed with
    /// file:line:column), 2 when the file cannot be read or the command line is wrong.
    Check,

    /// Print what would be applied: the nftables ruleset, then the links and sysctls.
    ///
    /// The text form is accepted by `nft -f`; `--json` prints the JSON that `nft -j -f`
    /// takes. Nothing is applied; the kernel is not consulted.
    Plan {
        /// Print the ruleset as nftables JSON instead of nft syntax.
        #[arg(long)]
        json: bool,
    },

    /// Apply the configuration once and exit: ruleset, links, sysctls, then forwarding.
    ///
    /// Fail-closed: IP forwarding is switched on only after the ruleset is live and
    /// verified. An invalid configuration or a ruleset nft rejects changes nothing.
    /// Applying the same configuration twice changes nothing and says so.
    Apply {
        /// Remove cloison's table and switch IP forwarding off (nothing else is touched).
        #[arg(long)]
        remove: bool,
    },

    /// Show whether the live ruleset matches the configuration, and the drop counters.
    ///
    /// Exit status: 0 when in sync, 1 when drifted or missing (or, with
    /// --require-daemon, when the daemon is not running).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also fail when the cloison daemon is not running.
        #[arg(long)]
        require_daemon: bool,
    },

    /// Run the daemon: apply, watch for drift, inspect traffic, write alerts.
    Run,

    /// Ask the running daemon to re-read its configuration.
    Reload {
        /// Roll back to the previous configuration after SECONDS unless `cloison confirm`
        /// is run in the meantime (for changes made over ssh).
        #[arg(long, value_name = "SECONDS")]
        confirm: Option<u64>,
    },

    /// Keep a configuration applied with `reload --confirm`.
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

    /// Internal: write the man pages (cloison.8 and one per subcommand) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

/// `--since`: checked here so a wrong period is a usage error (exit 2), like any other.
fn period(s: &str) -> Result<String, String> {
    cloison_core::report::parse_since(s).map(|_| s.to_owned())
}

/// The man pages, from the same definition the binary parses: `(file name, roff)`.
pub fn manpages() -> Vec<(String, Vec<u8>)> {
    use clap::CommandFactory;
    let render = |cmd: clap::Command| {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .section("8")
            .manual("System Administration")
            .render(&mut out)
            .expect("rendering to memory cannot fail");
        out
    };
    let top = Cli::command().name("cloison");
    let mut pages = vec![("cloison.8".to_owned(), render(top.clone()))];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("cloison-{}", sub.get_name());
        pages.push((format!("{name}.8"), render(sub.clone().name(name))));
    }
    pages
}
