//! The drift check and what `cloison status` and `cloison metrics` show: does the live
//! table match the configuration, does the second wall (policy routing), their hashes,
//! and the per-pair drop counters; read directly when this process may (root,
//! CAP_NET_ADMIN), else asked of the daemon (for members of the `cloison` group), else
//! "could not check", never a guess.

use std::collections::BTreeMap;
use std::fmt::Write;

use cloison_core::config::Config;
use cloison_core::hash::Hash;
use cloison_core::nft::{Counts, Sync, canonical::canonical, compare, counters};
use cloison_core::plan::{self, ruleset_hash};
use serde::{Deserialize, Serialize};

use crate::daemon::control::{self, DaemonStatus, Request, Response};
use crate::kernel::{Kernel, LinkError, NftError, System};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read cloison's table")]
    Ruleset(#[source] NftError),
    #[error("cannot read the policy routing (the second wall)")]
    Routing(#[source] LinkError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub sync: Sync,
    /// What differs in the second wall (policy routing); empty when it matches.
    pub wall: Vec<String>,
    /// Hash of the table the configuration asks for.
    pub plan_hash: Hash,
    /// Hash of the live table, when there is one.
    pub live_hash: Option<Hash>,
    pub forwarding: bool,
    /// Drop counters by `<from>/<to>`, as the live table has them.
    pub counters: BTreeMap<String, Counts>,
}

impl Status {
    pub fn in_sync(&self) -> bool {
        self.sync.in_sync() && self.wall.is_empty()
    }
}

/// Who read the live table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckedBy {
    /// This process, with nft.
    Itself,
    /// The daemon, against the configuration it runs (this process may not read the
    /// table: not root).
    Daemon,
}

/// One look at the box: the live table (or why it could not be read) and the daemon
/// (or why it does not answer).
#[derive(Debug, Clone)]
pub struct Observation {
    pub check: Result<(Status, CheckedBy), String>,
    pub daemon: Result<DaemonStatus, NoDaemon>,
}

/// Why the daemon gave no status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoDaemon {
    /// No socket, or nobody listening on it.
    NotRunning(String),
    /// It may run, but this process cannot talk to it (permissions, timeout, protocol).
    Unreachable(String),
}

impl std::fmt::Display for NoDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoDaemon::NotRunning(why) | NoDaemon::Unreachable(why) => f.write_str(why),
        }
    }
}

impl Observation {
    /// Reads the live table and policy routing against `config` and asks the daemon
    /// whose control socket is in `runtime_dir` (within `timeout`).
    pub fn take(
        config: &Config,
        runtime_dir: &std::path::Path,
        timeout: std::time::Duration,
    ) -> Observation {
        let local = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(check(config, &System::new())),
            Err(e) => Err(StatusError::Routing(LinkError::Connect(e))),
        };
        let daemon = match control::request(runtime_dir, &Request::Status, timeout) {
            Ok(Response::Status(d)) => Ok(*d),
            Ok(other) => Err(NoDaemon::Unreachable(format!(
                "it answered something else: {other:?}"
            ))),
            Err(e @ control::ControlError::NotRunning { .. }) => {
                Err(NoDaemon::NotRunning(error_text(&e)))
            }
            Err(e) => Err(NoDaemon::Unreachable(error_text(&e))),
        };
        let check = match local {
            Ok(s) => Ok((s, CheckedBy::Itself)),
            Err(own) => match &daemon {
                Ok(DaemonStatus { live: Some(s), .. }) => Ok((s.clone(), CheckedBy::Daemon)),
                Ok(d) => Err(format!(
                    "cannot read the live table ({}); the daemon could not either ({})",
                    error_text(&own),
                    d.live_error
                        .as_deref()
                        .unwrap_or("an older daemon that does not say")
                )),
                Err(why) => Err(format!(
                    "cannot read the live table ({}), and cannot ask the daemon: {why}",
                    error_text(&own)
                )),
            },
        };
        Observation { check, daemon }
    }
}

/// An error and its causes on one line, `what: cause: cause` (a tool's multi-line
/// stderr joined with `; `).
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts
        .join(": ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The router's name as alerts carry it: the configuration's, else the hostname.
pub fn router_name(config: &Config) -> String {
    config
        .router
        .name
        .clone()
        .unwrap_or_else(crate::daemon::supervisor::hostname)
}

/// Compares the live table and policy routing with the configuration's plan (the drift
/// check). Runs inside a tokio runtime (rtnetlink is async).
pub async fn check<K: Kernel>(config: &Config, kernel: &K) -> Result<Status, StatusError> {
    let plan = plan::plan(config);
    let live = kernel.list_table().map_err(StatusError::Ruleset)?;
    let routing = kernel.read_routing().await.map_err(StatusError::Routing)?;
    Ok(Status {
        sync: compare(&plan.canonical(), live.as_ref()),
        wall: plan.routing_differences(&routing),
        plan_hash: plan.hash(),
        live_hash: live.as_ref().map(|doc| ruleset_hash(&canonical(doc))),
        forwarding: kernel.forwarding_on(),
        counters: live.as_ref().map(counters).unwrap_or_default(),
    })
}

impl Status {
    /// The human form: state, hashes, then the counters that counted something.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let state = match &self.sync {
            Sync::InSync => "in sync: the live ruleset matches the configuration".to_owned(),
            Sync::Missing => {
                "MISSING: cloison's table is not in the kernel; run `cloison apply`".to_owned()
            }
            Sync::Drifted(d) => format!(
                "DRIFTED: the live ruleset differs from the configuration:\n  - {}",
                d.join("\n  - ")
            ),
        };
        writeln!(out, "ruleset:    {state}").expect("string");
        if self.wall.is_empty() {
            writeln!(
                out,
                "wall:       in place: the policy routing matches the configuration"
            )
            .expect("string");
        } else {
            writeln!(
                out,
                "wall:       DRIFTED: the second wall (policy routing) differs:\n  - {}",
                self.wall.join("\n  - ")
            )
            .expect("string");
        }
        writeln!(out, "plan hash:  {}", self.plan_hash).expect("string");
        writeln!(
            out,
            "live hash:  {}",
            self.live_hash.as_ref().map_or("-", |h| h.as_str())
        )
        .expect("string");
        writeln!(
            out,
            "forwarding: {}",
            if self.forwarding { "on" } else { "off" }
        )
        .expect("string");
        let nonzero: Vec<_> = self
            .counters
            .iter()
            .filter(|(_, c)| c.packets > 0)
            .collect();
        if nonzero.is_empty() {
            writeln!(out, "drops:      none counted").expect("string");
        } else {
            writeln!(out, "drops:").expect("string");
            let width = nonzero.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
            for (name, c) in nonzero {
                writeln!(
                    out,
                    "  {name:<width$}  {:>10} packets  {:>12} bytes",
                    c.packets, c.bytes
                )
                .expect("string");
            }
        }
        out
    }
}
