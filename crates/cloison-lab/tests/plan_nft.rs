//! The plans of the shipped configurations are accepted by real `nft` (text and JSON),
//! and the table nft lists back is exactly the plan (the basis of the drift check).

mod common;

use cloison_core::config;
use cloison_core::nft::canonical::{canonical, compare};
use cloison_core::plan::plan;
use common::{Netns, require_root};

fn check(path: &std::path::Path) {
    let path = path.display();
    let source = std::fs::read_to_string(path.to_string()).expect("read the config");
    let config = config::parse(&source, &path.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan(&config);
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
    let sync = compare(&plan.canonical(), Some(&live));
    assert!(
        sync.in_sync(),
        "{path}: the live table differs from the plan:\n{}",
        sync.differences().join("\n")
    );
    assert_eq!(
        plan.hash(),
        cloison_core::plan::ruleset_hash(&canonical(&live))
    );

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
        check(&common::repo("config/cloison.toml"));
    }
}

#[test]
fn lab_config_is_accepted_and_lists_back_identically() {
    if require_root("lab_config_is_accepted_and_lists_back_identically") {
        check(&common::repo("config/lab.toml"));
    }
}
