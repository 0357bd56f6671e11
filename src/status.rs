//! The drift check and what `cloison status` shows: does the live table match the
//! configuration, its hash, and the per-pair drop counters.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::config::Config;
use crate::nft::canonical::{canonical, differences};
use crate::nft::run::counters;
use crate::nft::{Counts, Nft, NftError};
use crate::plan::{self, ruleset_hash};
use crate::sysctl;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "differences")]
pub enum Sync {
    InSync,
    Drifted(Vec<String>),
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub sync: Sync,
    /// Hash of the table the configuration asks for.
    pub plan_hash: String,
    /// Hash of the live table, when there is one.
    pub live_hash: Option<String>,
    pub forwarding: bool,
    /// Drop counters by `<from>/<to>`, as the live table has them.
    pub counters: BTreeMap<String, Counts>,
}

impl Status {
    pub fn in_sync(&self) -> bool {
        self.sync == Sync::InSync
    }
}

/// Compares the live table with the configuration's plan (the drift check).
pub fn check(config: &Config, nft: &Nft) -> Result<Status, NftError> {
    let plan = plan::plan(config);
    let want = plan.canonical();
    let live = nft.list_table()?;
    let (sync, live_hash, counters) = match &live {
        None => (Sync::Missing, None, BTreeMap::new()),
        Some(doc) => {
            let c = canonical(doc);
            let diffs = differences(&want, &c);
            let sync = if diffs.is_empty() {
                Sync::InSync
            } else {
                Sync::Drifted(diffs)
            };
            (sync, Some(ruleset_hash(&c)), counters(doc))
        }
    };
    Ok(Status {
        sync,
        plan_hash: plan.hash(),
        live_hash,
        forwarding: sysctl::forwarding_on(),
        counters,
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
        writeln!(out, "plan hash:  {}", self.plan_hash).expect("string");
        writeln!(
            out,
            "live hash:  {}",
            self.live_hash.as_deref().unwrap_or("-")
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
