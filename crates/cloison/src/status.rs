//! The drift check and what `cloison status` shows: does the live table match the
//! configuration, does the second wall (policy routing), their hashes, and the per-pair
//! drop counters.

use std::collections::BTreeMap;
use std::fmt::Write;

use cloison_core::config::Config;
use cloison_core::hash::Hash;
use cloison_core::nft::{Counts, Sync, canonical::canonical, compare, counters};
use cloison_core::plan::{self, ruleset_hash};
use serde::Serialize;

use crate::kernel::{Kernel, LinkError, NftError};

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read cloison's table")]
    Ruleset(#[source] NftError),
    #[error("cannot read the policy routing (the second wall)")]
    Routing(#[source] LinkError),
}

#[derive(Debug, Clone, Serialize)]
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

/// Compares the live table and policy routing with the configuration's plan. Runs
/// inside a tokio runtime (rtnetlink is async).
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
