//! The fleet's Prometheus files, checked by Prometheus's own tool: the alerting rules
//! (contrib/prometheus/cloison.rules.yml) pass `promtool check rules` and their unit
//! tests (`promtool test rules`), a broken rule is refused (so the check really parses),
//! and the Grafana dashboard (contrib/grafana/cloison-fleet.json) is JSON whose every
//! query parses as PromQL. Every `cloison_*` metric the rules and the dashboard name is
//! one `cloison metrics` writes. promtool comes with Debian's `prometheus` package,
//! installed when missing (as root). The fleet lab runs the same rules and queries
//! against a live Prometheus (tests/fleet.rs).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use cloison_core::hash::Hash;
use cloison_core::metrics::{CaptureReading, DaemonReading, Reading, RulesetReading};
use cloison_core::verify::VerifyRecord;
use common::{repo, text};

const PROMTOOL: &str = "/usr/bin/promtool";

fn promtool(args: &[&str], dir: &Path) -> Output {
    cloison_lab::packages::ensure(&[(PROMTOOL, "prometheus")]).unwrap_or_else(|e| panic!("{e}"));
    Command::new(PROMTOOL)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool")
}

/// Every metric family `cloison metrics` can write (a reading with every part present).
fn families() -> BTreeSet<String> {
    let r = Reading {
        version: "0".into(),
        router: "r".into(),
        config_hash: Hash::of(b""),
        config_file_valid: true,
        ruleset: Some(RulesetReading {
            in_sync: true,
            present: true,
            counters: [("kiosk/mairie".to_owned(), Default::default())].into(),
        }),
        daemon: Some(DaemonReading {
            start_time: 0,
            alerts_total: Default::default(),
            capture: [("lan0".to_owned(), CaptureReading::default())].into(),
            drift_repairs: 0,
            confirm_pending: false,
        }),
        verify: Some(VerifyRecord {
            version: 1,
            finished: 0,
            success: true,
            probes: 0,
            failures: 0,
            config_hash: Hash::of(b""),
        }),
    };
    r.render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
}

/// The `cloison_*` metric names in a text (recording rules `cloison:...` excluded).
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("cloison_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
            .unwrap_or(tail.len());
        let before = rest[..i].chars().last();
        // A whole identifier, not the end of another word or a path.
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/') {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_alerting_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo("contrib/prometheus");
    let check = promtool(&["check", "rules", "cloison.rules.yml"], &dir);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("SUCCESS"),
        "{}",
        text(&check)
    );
    let test = promtool(&["test", "rules", "cloison.rules.test.yml"], &dir);
    assert!(test.status.success(), "{}", text(&test));

    // The check is real: a broken expression is refused.
    let rules = std::fs::read_to_string(dir.join("cloison.rules.yml")).unwrap();
    let broken = rules.replacen(
        "(cloison_ruleset_in_sync == 0)",
        "(cloison_ruleset_in_sync == 0",
        1,
    );
    assert_ne!(broken, rules);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.yml"), broken).unwrap();
    let out = promtool(&["check", "rules", "broken.yml"], tmp.path());
    assert!(
        !out.status.success(),
        "a broken rule must fail: {}",
        text(&out)
    );
}

#[test]
fn the_rules_name_only_metrics_cloison_writes() {
    let have = families();
    let rules = std::fs::read_to_string(repo("contrib/prometheus/cloison.rules.yml")).unwrap();
    let used = names_in(&rules);
    assert!(used.contains("cloison_ruleset_in_sync"), "{used:?}");
    let unknown: Vec<_> = used.difference(&have).collect();
    assert!(
        unknown.is_empty(),
        "not written by `cloison metrics`: {unknown:?}"
    );
}

/// The dashboard's queries, with Grafana's variables replaced by what Grafana would put.
pub fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("contrib/grafana/cloison-fleet.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().expect("every panel has a title");
        let targets = p["targets"].as_array().expect("every panel has queries");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: no expr"));
            out.push((
                title.to_owned(),
                expr.replace("$__rate_interval", "1m")
                    .replace("$router", ".*"),
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_is_json_and_its_queries_parse() {
    let queries = dashboard_queries();
    let titles: BTreeSet<&str> = queries.iter().map(|(t, _)| t.as_str()).collect();
    for want in [
        "Isolation status per box",
        "Alerts by kind",
        "Drops by pair",
    ] {
        assert!(titles.contains(want), "no panel {want:?}: {titles:?}");
    }
    // promtool 2.42 parses PromQL in rule files: one recording rule per query.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dashboard.yml"), &rules).unwrap();
    let out = promtool(&["check", "rules", "dashboard.yml"], tmp.path());
    assert!(out.status.success(), "{}\n{rules}", text(&out));

    let have = families();
    let used: BTreeSet<String> = queries.iter().flat_map(|(_, e)| names_in(e)).collect();
    let unknown: Vec<_> = used.difference(&have).collect();
    assert!(
        unknown.is_empty(),
        "not written by `cloison metrics`: {unknown:?}"
    );
}
