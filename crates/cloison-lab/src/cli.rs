//! The `cloison-lab` command line: the story by default, and the tools the lab's hosts
//! run (listeners, probes, raw frames), which never ship with cloison.

use clap::{Parser, Subcommand};

use crate::scenario::Part;

/// The simulated mairie: cloison at work against a compromised kiosk, in network
/// namespaces of its own.
///
/// As root, on one machine, without touching its own network: a router running
/// `cloison run` with the lab's configuration (config/lab.toml, built in), the mairie's
/// PC and file server, the public kiosk, the La Poste counter, two Internet lines. It
/// plays ordinary traffic, then the attacks a compromised kiosk would try, shows the
/// alerts as journalctl reads them back, the drop counters and a verdict, and removes
/// everything (also on error and Ctrl-C).
///
/// Exit status: 0 when every ordinary flow worked, nothing of any attack crossed and
/// every expected alert is in the journal; 1 otherwise or on error; 130 when
/// interrupted.
#[derive(Debug, Parser)]
#[command(name = "cloison-lab", version, max_term_width = 100)]
pub struct LabArgs {
    #[command(subcommand)]
    pub action: Option<LabAction>,
    /// Leave the lab up at the end (namespaces, journald, daemon) and print how to get a
    /// shell in each host, watch the journal and try attacks by hand; `cloison-lab down`
    /// (from the same login session) or `cloison-lab down ID` removes it.
    #[arg(long)]
    pub keep: bool,
    /// Play only these parts of the story (comma-separated, or repeated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub scenario: Vec<Part>,
    /// Never use colours (NO_COLOR is honoured too; colours only go to a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Internal: the keeper's end of the pipe to `cloison-lab --keep`.
    #[arg(long, hide = true, value_name = "FD")]
    pub handoff_fd: Option<i32>,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Remove the labs left up with --keep from this login session (or the lab ID):
    /// namespaces, every process (daemon and journald included), files.
    ///
    /// Other people's labs are left alone, and listed with their ids; a lab whose creator
    /// still runs (a test or a story in progress) is never removed.
    Down {
        /// The lab to remove, whatever session it was made from (as `cloison-lab --keep`
        /// printed it, e.g. cl12345x1).
        #[arg(value_name = "ID")]
        id: Option<String>,
    },
    /// Run the lab's network services inside the current namespace.
    Serve(crate::ServeArgs),
    /// Try a connection from the current network namespace: tcp, udp or ping.
    Probe(crate::ProbeArgs),
    /// Send a raw Ethernet frame (hex) on an interface of the current namespace.
    Frame(crate::FrameArgs),
}
