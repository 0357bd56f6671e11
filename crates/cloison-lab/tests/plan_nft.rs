//! The plans of the shipped configurations (and of every example under config/examples)
//! are accepted by real `nft` (text and JSON), and the table nft lists back is exactly the
//! plan (the basis of the drift check). `cloison plan --json` prints one JSON document that
//! `jq` reads and whose `ruleset` `nft -j -f` takes as it is.

mod common;

use cloison_core::config;
use cloison_core::nft::canonical::{canonical, compare};
use cloison_core::plan::plan;
use std::process::Command;

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

    plan_json_is_json(&ns, &path.to_string(), &plan.hash().to_string());
}

/// What `cloison plan --json` prints: JSON only (jq reads it whole), its `ruleset` taken by
/// `nft -c -j -f` as it is, its hash the plan's.
fn plan_json_is_json(ns: &Netns, path: &str, hash: &str) {
    let out = Command::new(common::programs().cloison)
        .args(["plan", "--json", "-c", path])
        .output()
        .expect("run cloison plan --json");
    assert!(out.status.success(), "{out:?}");
    let doc = String::from_utf8(out.stdout).expect("UTF-8");
    let jq = |filter: &str, input: &str| {
        let out = ns.run(&["jq", "-e", filter], input);
        assert!(
            out.status.success(),
            "jq {filter} refused `cloison plan --json -c {path}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    assert_eq!(jq(".ruleset_hash", &doc).trim(), format!("\"{hash}\""));
    let keys = jq("keys_unsorted | join(\" \")", &doc);
    assert_eq!(keys.trim(), "\"ruleset ruleset_hash links wall sysctls\"");
    // Forwarding last (IPv6 forwarding only when a segment has IPv6).
    jq(
        ".sysctls[-1].key | IN(\"net/ipv4/ip_forward\", \"net/ipv6/conf/all/forwarding\")",
        &doc,
    );
    let batch = jq(".ruleset", &doc);
    let nft = ns.run(&["nft", "-c", "-j", "-f", "-"], &batch);
    assert!(
        nft.status.success(),
        "nft -c -j -f refused the ruleset of `cloison plan --json -c {path}`:\n{}",
        String::from_utf8_lossy(&nft.stderr)
    );
    // The whole document is not a batch: nft is fed `.ruleset`, as the README says.
    assert!(
        doc.trim_start()
            .starts_with("{\n  \"ruleset\": {\n    \"nftables\": [")
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

#[test]
fn every_example_is_accepted_and_lists_back_identically() {
    if !require_root("every_example_is_accepted_and_lists_back_identically") {
        return;
    }
    let mut examples: Vec<_> = std::fs::read_dir(common::repo("config/examples"))
        .expect("config/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "{examples:?}");
    for path in examples {
        check(&path);
    }
}
