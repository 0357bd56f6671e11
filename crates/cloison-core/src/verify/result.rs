//! The outcome of a verify run as it is journaled in `CLOISON_VERIFY_RESULT` (one JSON
//! document, docs/alerts.md "The verify result"), read back by `cloison report`: one
//! entry per (from, to, expected, reason), with the probes that did not meet the
//! configuration.

use serde::{Deserialize, Serialize};

/// The version of `CLOISON_VERIFY_RESULT` this code reads.
pub const RESULT_VERSION: u32 = 1;

/// `CLOISON_VERIFY_RESULT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub version: u32,
    pub pairs: Vec<PairResult>,
}

/// The probes from one segment toward one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairResult {
    pub from: String,
    /// A segment name, or `router`, `private`, `internet`.
    pub to: String,
    pub expected: Expected,
    /// Why, from the configuration (`[[forbid]] kiosk -> mairie`).
    #[serde(default)]
    pub reason: String,
    pub probes: u64,
    pub as_expected: u64,
    #[serde(default)]
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Blocked,
    Allowed,
}

/// One probe that did not meet the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `tcp/445`, `udp/53`, `icmp`.
    pub probe: String,
    pub target: String,
    /// `open`, `answered`, `no answer`...
    pub observed: String,
    /// Which wall let it through (`none`, `ruleset`, `routing`), for a blocked pair; for
    /// an allowed one, which stopped it.
    #[serde(default)]
    pub wall: String,
    /// One sentence: what was expected and why, what each wall did, what came back.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl PairResult {
    pub fn passed(&self) -> bool {
        self.as_expected >= self.probes && self.failures.is_empty()
    }
}
