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

    /// Show whether the live ruleset matches the configuration, the drop counters, the
    /// policy in words and the daemon's view.
    ///
    /// Root reads the live table itself; members of the `cloison` group get it through
    /// the running daemon. `--json` output carries `schema_version` (1), `version`,
    /// `router` and `timestamp` (Unix seconds).
    ///
    /// Exit status: 0 when in sync; 1 when drifted or missing (or, with --require-daemon,
    /// when the daemon is not running); 2 when the configuration cannot be read or the
    /// command line is wrong; 3 when the live table could not be checked at all (no
    /// permission to read it and no daemon to ask), which says nothing about drift.
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
    ///
    /// Exit status: 0 when written; 2 when the configuration cannot be used and the
    /// daemon does not answer (nothing is written then).
    Metrics {
        /// Replace FILE atomically (write beside it, then rename) instead of printing.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
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

    /// Internal: write the man pages (cloison.8 and one per subcommand) into DIR.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
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
