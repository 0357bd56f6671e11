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

impl VerifyResult {
    /// The document as journaled, at most `max` bytes: failures lose their sentence
    /// first, then each pair keeps its first 10, then none (the counts always stay).
    pub fn to_json_within(&self, max: usize) -> String {
        let full = serde_json::to_string(self).expect("plain data serializes");
        if full.len() <= max {
            return full;
        }
        let mut lean = self.clone();
        for p in &mut lean.pairs {
            for f in &mut p.failures {
                f.detail.clear();
            }
        }
        for keep in [10, 0] {
            let text = serde_json::to_string(&lean).expect("plain data serializes");
            if text.len() <= max {
                return text;
            }
            for p in &mut lean.pairs {
                p.failures.truncate(keep);
            }
        }
        serde_json::to_string(&lean).expect("plain data serializes")
    }
}
