//! The fleet lab with real engines (root; CI runs it): three boxes, each the lab's mairie
//! with `cloison run`, its own journald, systemd-journal-upload (HTTPS) and
//! prometheus-node-exporter fed by `cloison metrics`; a collector with
//! systemd-journal-remote and Prometheus (with contrib/prometheus's rules). The kiosks
//! of every box flood at once; the collector must then hold every alert of every box,
//! field for field, accounting for every packet each box's ruleset dropped; Prometheus
//! must show every box's counters and sync state exactly as `cloison status` does; a box
//! whose table is deleted must show up as drifted in both places. The packages are
//! installed when missing. (N = 50 is a benchmark: benches/fleet.rs.)

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use cloison_lab::fleet::{Fleet, FleetBox, FleetOptions, comparable, packets_of};
use common::{repo, require_root};
use serde_json::Value;

const BOXES: usize = 3;
const FLOOD: usize = 20_000;
/// Destination ports of the flood: a first alert each.
const FLOWS: u16 = 20;
/// Summaries every second, so the journal catches up with the counters quickly.
const SUMMARY: &str = "summary_every = \"1s\"";

fn options() -> FleetOptions {
    FleetOptions {
        box_config: |k, text| {
            let text = text.replacen("summary_every = \"10s\"", SUMMARY, 1);
            // box-2 is the one that drifts: it must not repair.
            if k == 2 {
                format!("{text}\n[daemon]\nrepair = false\n")
            } else {
                text
            }
        },
        rules: Some(repo("contrib/prometheus/cloison.rules.yml")),
        ..FleetOptions::new(BOXES)
    }
}

/// The counters of a `cloison status --json`, packets by name.
fn counters(status: &Value) -> BTreeMap<String, f64> {
    status["counters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["packets"].as_f64().unwrap()))
        .collect()
}

/// Waits until Prometheus shows, for every box, what `want` says; the last difference
/// otherwise.
fn wait_prometheus(
    fleet: &Fleet,
    metric: &str,
    want: &BTreeMap<String, BTreeMap<String, f64>>,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = fleet.collector.by_router(metric).unwrap();
        if &got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{metric} in Prometheus differs from `cloison status` after {within:?}:\nPrometheus: {got:#?}\nstatus: {want:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Publishes every box's metrics; Prometheus must then equal every box's status.
fn prometheus_equals_status(fleet: &Fleet) -> BTreeMap<String, Value> {
    let statuses: BTreeMap<String, Value> = fleet
        .boxes
        .iter()
        .map(|b| (b.name.clone(), b.publish_metrics().unwrap()))
        .collect();
    // A box without its table has no counters: no series at all.
    let drops = statuses
        .iter()
        .map(|(n, s)| (n.clone(), counters(s)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    wait_prometheus(
        fleet,
        "cloison_dropped_packets_total",
        &drops,
        Duration::from_secs(10),
    );
    let sync = statuses
        .iter()
        .map(|(n, s)| {
            let v = if s["in_sync"] == true { 1.0 } else { 0.0 };
            (n.clone(), BTreeMap::from([(String::new(), v)]))
        })
        .collect();
    wait_prometheus(
        fleet,
        "cloison_ruleset_in_sync",
        &sync,
        Duration::from_secs(10),
    );
    statuses
}

fn by_name<'a>(fleet: &'a Fleet, name: &str) -> &'a FleetBox {
    fleet.boxes.iter().find(|b| b.name == name).unwrap()
}

#[test]
fn every_box_reports_every_alert_and_count_to_the_collector() {
    if !require_root("every_box_reports_every_alert_and_count_to_the_collector") {
        return;
    }
    let started = Instant::now();
    let mut fleet = Fleet::up(&options(), &common::programs()).unwrap_or_else(|e| panic!("{e:#?}"));
    eprintln!("fleet of {BOXES} up in {:?}", started.elapsed());

    // Every kiosk floods its mairie at once; one probe of SMB each, too.
    let sent = fleet.flood(FLOOD, FLOWS).unwrap();
    for b in &fleet.boxes {
        assert_eq!(b.rig.kiosk_to_smb(), cloison_lab::Reach::TimedOut);
    }
    let flooded = Instant::now();
    eprintln!("floods sent in {sent:?}");
    // Summaries come every second with the counters the daemon reads every 2 s; the
    // margin is for a loaded machine (the suite runs tests in parallel on 2 cores).
    let late = fleet.wait_each(Duration::from_secs(60), |b| b.accounted("kiosk/mairie"));
    if let Some(name) = late.first() {
        let b = by_name(&fleet, name);
        let (status, _) = b.status().unwrap();
        let alerts = b.alerts().unwrap();
        panic!(
            "the journal of {name} (of {late:?}) does not account for the flood: counter {}, journal {} in {} entries; daemon log:\n{}",
            status["counters"]["kiosk/mairie"]["packets"],
            packets_of(&alerts, "kiosk/mairie"),
            alerts.len(),
            b.rig.log()
        );
    }
    let accounted = flooded.elapsed();

    // The collector has every alert of every box, field for field, once.
    let local: BTreeMap<String, Vec<Value>> = fleet
        .boxes
        .iter()
        .map(|b| (b.name.clone(), b.alerts().unwrap()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let remote = loop {
        let remote = fleet.collector.alerts_by_box().unwrap();
        let complete = local
            .iter()
            .all(|(name, entries)| remote.get(name).is_some_and(|r| r.len() >= entries.len()));
        if complete || Instant::now() > deadline {
            break remote;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "collector complete {:?} after the boxes' journals (the floods' accounting took {accounted:?})",
        flooded.elapsed() - accounted
    );
    for (name, entries) in &local {
        let theirs = remote
            .get(name)
            .unwrap_or_else(|| panic!("nothing from {name} on the collector"));
        let mine: Vec<Value> = entries.iter().map(comparable).collect();
        let got: Vec<Value> = theirs.iter().map(comparable).collect();
        for e in &mine {
            assert!(
                got.contains(e),
                "{name}: missing or altered on the collector: {e:#}"
            );
        }
        assert_eq!(got.len(), mine.len(), "{name}: duplicates on the collector");
        // The journal on the collector accounts for every packet the box's ruleset dropped.
        let (status, _) = by_name(&fleet, name).status().unwrap();
        let counted = status["counters"]["kiosk/mairie"]["packets"]
            .as_u64()
            .unwrap();
        assert!(counted > 0);
        assert_eq!(
            packets_of(theirs, "kiosk/mairie"),
            counted,
            "{name}: CLOISON_PACKETS on the collector against the box's kiosk/mairie counter"
        );
        for e in theirs.iter().filter(|e| e["CLOISON_EVENT"].is_string()) {
            assert_eq!(e["CLOISON_ROUTER"], name.as_str(), "{e:#}");
        }
    }
    // What an operator types on the collector: every box's cross_segment alerts.
    let routers: BTreeSet<String> = fleet
        .collector
        .entries(&["CLOISON_EVENT=cross_segment"])
        .unwrap()
        .iter()
        .filter_map(|e| e["CLOISON_ROUTER"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(routers, local.keys().cloned().collect());

    // Prometheus shows what each box's `cloison status` shows.
    let t = Instant::now();
    let statuses = prometheus_equals_status(&fleet);
    eprintln!(
        "Prometheus equal to every status {:?} after the metrics were written",
        t.elapsed()
    );
    assert!(statuses.values().all(|s| s["in_sync"] == true));

    // The dashboard's queries run on the live Prometheus; the status table has every box.
    let text = std::fs::read_to_string(repo("contrib/grafana/cloison-fleet.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let q = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$router", ".*");
            let result = fleet
                .collector
                .query(&q)
                .unwrap_or_else(|e| panic!("{}: {e}", p["title"]));
            if p["title"] == "Isolation status per box" && t["refId"] == "A" {
                assert_eq!(result.len(), BOXES, "{q}: {result:?}");
            }
        }
    }

    // box-2's table is deleted (repair = false there): drifted on the box, in its
    // journal, on the collector, in Prometheus and in its alerting rule.
    let drifted = by_name(&fleet, "box-2");
    let out = drifted.rig.nft(&["delete", "table", "inet", "cloison"]);
    assert!(out.status.success());
    drifted
        .rig
        .wait_event("ruleset_drift", Duration::from_secs(10));
    let (status, code) = drifted.status().unwrap();
    assert_eq!(code, Some(1), "drifted: exit 1");
    assert_eq!(status["sync"]["state"], "missing");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let routers: Vec<String> = fleet
            .collector
            .entries(&["CLOISON_EVENT=ruleset_drift"])
            .unwrap()
            .iter()
            .filter_map(|e| e["CLOISON_ROUTER"].as_str().map(str::to_owned))
            .collect();
        if !routers.is_empty() {
            assert!(routers.iter().all(|r| r == "box-2"), "{routers:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ruleset_drift from box-2 on the collector"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let statuses = prometheus_equals_status(&fleet);
    assert_eq!(statuses["box-2"]["in_sync"], false);
    assert!(statuses["box-1"]["in_sync"] == true && statuses["box-3"]["in_sync"] == true);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let firing = fleet
            .collector
            .values_by(r#"ALERTS{alertname="CloisonRulesetDrifted"}"#, "router")
            .unwrap();
        if !firing.is_empty() {
            assert_eq!(firing.keys().collect::<Vec<_>>(), ["box-2"], "{firing:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drift rule never became pending for box-2"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The uploads stop cleanly, and journal-remote's files, closed, verify.
    let uploads = fleet.stop_engines();
    assert!(
        uploads.iter().all(|c| *c == Some(0)),
        "journal-upload exits: {uploads:?}"
    );
    let files: Vec<_> = std::fs::read_dir(fleet.collector.journal_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), BOXES, "one file per box: {files:?}");
    for f in files {
        let out = Command::new("journalctl")
            .arg(format!("--file={}", f.display()))
            .arg("--verify")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
