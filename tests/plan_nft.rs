//! The plans of the shipped configurations are accepted by real `nft` (text and JSON),
//! and the table nft lists back is exactly the plan (the basis of the drift check).

mod common;

use cloison::config;
use cloison::nft::canonical::{canonical, differences};
use cloison::plan::plan;
use common::{Netns, require_root};

fn check(path: &str) {
    let loaded = config::load(path.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan(&loaded.config);
    let ns = Netns::new("plan");

    // Exactly what `cloison plan` prints, comments included.
    let text = ns.run(&["nft", "-c", "-f", "-"], &plan.report(false));
    assert!(
        text.status.success(),
        "nft -c rejected the text plan of {path}:\n{}",
        String::from_utf8_lossy(&text.stderr)
    );

    let json = ns.run(&["nft", "-j", "-f", "-"], &plan.ruleset_json().to_string());
    assert!(
        json.status.success(),
        "nft -j -f rejected the plan of {path}:\n{}",
        String::from_utf8_lossy(&json.stderr)
    );

    let listed = ns.run(&["nft", "-j", "list", "table", "inet", "cloison"], "");
    assert!(listed.status.success());
    let live: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("nft prints JSON");
    let diffs = differences(&plan.canonical(), &canonical(&live));
    assert!(
        diffs.is_empty(),
        "{path}: the live table differs from the plan:\n{}",
        diffs.join("\n")
    );
    assert_eq!(plan.hash(), cloison::plan::ruleset_hash(&canonical(&live)));

    // Applying the same batch again replaces the table atomically and still matches.
    let again = ns.run(&["nft", "-j", "-f", "-"], &plan.ruleset_json().to_string());
    assert!(
        again.status.success(),
        "second apply: {}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn example_config_is_accepted_and_lists_back_identically() {
    if require_root("example_config_is_accepted_and_lists_back_identically") {
        check("config/cloison.toml");
    }
}

#[test]
fn lab_config_is_accepted_and_lists_back_identically() {
    if require_root("lab_config_is_accepted_and_lists_back_identically") {
        check("config/lab.toml");
    }
}
