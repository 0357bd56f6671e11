//! The rule that has the kernel trace `cloison verify`'s probes, present only while a run
//! lasts. As long as any rule can set `nftrace`, nftables hashes every packet at every
//! base chain it enters (`nft_trace_init`), marked or not: about 2% of a core at 100
//! kpps of small packets on the lab's router (docs/performance.md). So the rule is not in
//! cloison's table: a run adds a table of its own, `inet cloison-verify`, with one chain
//! at the front of prerouting that traces the packets carrying the verify mark, and
//! removes it when done. A run killed outright leaves it; the next run's batch deletes
//! it before adding its own, and removes that when done. cloison's guard ignores it: it
//! is not cloison's table.

use serde_json::{Value, json};

use cloison_core::names::VERIFY_MARK;

use crate::kernel::nft::{Nft, NftError};

/// The table a run adds.
pub const TRACE_TABLE: &str = "cloison-verify";
/// Before everything of cloison's table (its first chain is at raw priority, -300).
const PRIORITY: i32 = -400;

fn table() -> Value {
    json!({"table": {"family": "inet", "name": TRACE_TABLE}})
}

/// The batch that adds the table, replacing one a killed run left.
pub fn install_batch() -> Value {
    json!({"nftables": [
        {"add": table()},
        {"delete": table()},
        {"add": table()},
        {"add": {"chain": {
            "family": "inet", "table": TRACE_TABLE, "name": "trace",
            "type": "filter", "hook": "prerouting", "prio": PRIORITY, "policy": "accept"
        }}},
        {"add": {"rule": {
            "family": "inet", "table": TRACE_TABLE, "chain": "trace",
            "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": VERIFY_MARK}},
                {"mangle": {"key": {"meta": {"key": "nftrace"}}, "value": 1}}
            ]
        }}}
    ]})
}

/// The batch that removes the table, whether it exists or not.
pub fn remove_batch() -> Value {
    json!({"nftables": [{"add": table()}, {"delete": table()}]})
}

/// Adds the trace table.
pub fn install(nft: &Nft) -> Result<(), NftError> {
    nft.apply(&install_batch())
}

/// Removes the trace table (nothing happens when there is none).
pub fn remove(nft: &Nft) -> Result<(), NftError> {
    nft.apply(&remove_batch())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_rule_matches_the_verify_mark_only_and_comes_before_cloisons_chains() {
        let batch = install_batch();
        let objects = batch["nftables"].as_array().expect("a batch");
        let chain = &objects[3]["add"]["chain"];
        assert_eq!(chain["hook"], "prerouting");
        assert!(chain["prio"].as_i64().expect("a priority") < -300);
        let rule = &objects[4]["add"]["rule"]["expr"];
        assert_eq!(rule[0]["match"]["right"], VERIFY_MARK);
        assert_eq!(rule[1]["mangle"]["key"]["meta"]["key"], "nftrace");
        // Removing works whether the table is there or not: add, then delete.
        let remove = remove_batch();
        assert_eq!(remove["nftables"][0]["add"], table());
        assert_eq!(remove["nftables"][1]["delete"], table());
    }
}
