//! The daemon, `cloison run`: applies the configuration fail-closed, then watches.
//!
//! Named parts:
//! - `startup`: validate (or fall back to the last known good configuration), apply
//!   (ruleset, links, sysctls, forwarding last), record it;
//! - `event_loop`: NFLOG samples, capture findings, the control socket, signals, the
//!   confirmation deadline and the periodic kernel reading, each handed to
//! - `supervisor`: the decisions (alert folding with exact counters, drift check and
//!   repair, reload, confirm and rollback, status), testable without root;
//! - `control`: the control socket's protocol, server and client, side by side;
//! - `sources` (the capture thread), `notify` (systemd), `state` (the last known good
//!   configuration), `changes` (what changed between two configurations).
//!
//! On SIGTERM it stops the loops and leaves the ruleset and forwarding as they are:
//! isolation never depends on the daemon running.

mod changes;
pub mod control;
mod event_loop;
mod notify;
mod sources;
mod startup;
pub mod state;
pub mod supervisor;

use std::future::Future;
use std::path::PathBuf;

use crate::apply::ApplyError;
use crate::journal::JournalWriter;
use crate::kernel::System;

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
    #[error(transparent)]
    UntouchedExample(#[from] crate::config_file::UntouchedExample),
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

/// Runs until `shutdown` completes or SIGTERM/SIGINT arrives.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let kernel = System::new();
    let mut sink = JournalWriter::new();
    let running = startup::start(&opts, &kernel, &mut sink).await?;
    let runtime_dir = opts.runtime_dir.clone();
    let sup = supervisor::Supervisor::new(opts, kernel, sink, running);
    event_loop::run(sup, &runtime_dir, shutdown).await
}
