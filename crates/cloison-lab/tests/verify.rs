//! `cloison verify` on the lab's router, for real: probe hosts on each segment's
//! interface, real packets through the live ruleset and routing, real nftables traces.
//! It passes on the lab as configured; a hole made in either wall by hand (what another
//! tool or an intruder could do) makes it fail, naming the flow, the wall that let it
//! through and, for the ruleset, the rule; every unexpected pass is an `isolation_breach`
//! alert (crit, CLOISON_VERIFY=1) in the journal. Nothing is left behind, also after a
//! run killed with SIGKILL (the next run cleans up), and `--dry-run` sends nothing.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use cloison_lab::Node;
use common::daemon::Setup;
use common::{require_root, text};
use serde_json::Value;

fn verify(rig: &Setup, args: &[&str]) -> Output {
    rig.cloison_journaled(&[&["verify"], args].concat())
        .output()
        .expect("run cloison verify")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// `cmd ARGS` in the router's namespace; its stdout.
fn router(rig: &Setup, cmd: &str, args: &[&str]) -> String {
    let out = rig
        .lab
        .command(Node::Router, cmd)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a verify run puts on the router while it runs: its trace table, its veth links,
/// the clsact qdiscs holding its redirects, its static neighbour entries (MACs
/// 02:c1:05:...).
fn leftovers(rig: &Setup) -> Vec<String> {
    let mut found = Vec::new();
    for line in router(rig, "nft", &["list", "tables"]).lines() {
        if line.contains("cloison-verify") {
            found.push(format!("nftables: {line}"));
        }
    }
    for line in router(rig, "ip", &["-o", "link", "show"]).lines() {
        if line.contains("cloison-v") {
            found.push(format!("link: {line}"));
        }
    }
    for line in router(rig, "tc", &["qdisc", "show"]).lines() {
        if line.contains("clsact") {
            found.push(format!("qdisc: {line}"));
        }
    }
    for family in ["-4", "-6"] {
        for line in router(rig, "ip", &[family, "neigh", "show"]).lines() {
            if line.contains("02:c1:05") {
                found.push(format!("neighbour: {line}"));
            }
        }
    }
    found
}

/// The failures of a `--json` run: (from, to, wall, detail) of each.
fn failures(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for pair in doc["result"]["pairs"].as_array().expect("pairs") {
        for f in pair["failures"].as_array().expect("failures") {
            out.push((
                pair["from"].as_str().unwrap().to_owned(),
                pair["to"].as_str().unwrap().to_owned(),
                f["wall"].as_str().unwrap_or_default().to_owned(),
                f["detail"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

#[test]
fn verify_passes_then_names_each_hole_and_the_wall_that_let_it_through() {
    if !require_root("verify_passes_then_names_each_hole_and_the_wall_that_let_it_through") {
        return;
    }
    let mut rig = common::daemon::setup();
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));

    // As configured: every probe as expected, exit 0, one verify_passed entry.
    let out = verify(&rig, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["passed"], true, "{doc:#}");
    let probes = doc["probes"].as_u64().unwrap();
    assert!(probes > 300, "{probes} probes");
    assert_eq!(doc["hosts"].as_array().unwrap().len(), 3, "{doc:#}");
    // Every segment reaches the Internet it is routed to, and the mairie server listed in
    // [verify] targets is probed from the kiosk.
    let pairs = doc["result"]["pairs"].as_array().unwrap();
    for from in ["mairie", "kiosk", "poste"] {
        assert!(
            pairs
                .iter()
                .any(|p| p["from"] == from && p["to"] == "internet" && p["as_expected"] != 0),
            "{from} -> internet: {doc:#}"
        );
    }
    assert!(
        doc["judged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j.to_string().contains("192.168.10.5")),
        "the mairie server is a target"
    );
    let passed = rig.wait_event("verify_passed", Duration::from_secs(5));
    assert_eq!(passed.len(), 1);
    assert_eq!(passed[0]["CLOISON_VERIFY_PROBES"], probes.to_string());
    assert!(leftovers(&rig).is_empty(), "{:?}", leftovers(&rig));
    assert!(rig.events("isolation_breach").is_empty());
    // The running daemon alerted the blocked probes as what they are: CLOISON_VERIFY=1,
    // a handful of entries (one per source, kind and destination class), no attack.
    let probe_ips: Vec<String> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| [h["address"].as_str(), h["address6"].as_str()])
        .flatten()
        .map(str::to_owned)
        .collect();
    let from_probes = |kind: &str| -> Vec<Value> {
        rig.events(kind)
            .into_iter()
            .filter(|e| {
                e["CLOISON_SRC_IP"]
                    .as_str()
                    .is_some_and(|ip| probe_ips.iter().any(|p| p == ip))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while from_probes("cross_segment").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no alert for the blocked probes: {}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let probe_alerts: Vec<Value> = ["cross_segment", "router_access"]
        .into_iter()
        .flat_map(from_probes)
        .collect();
    for e in &probe_alerts {
        assert_eq!(e["CLOISON_VERIFY"], "1", "{e:#}");
        assert_eq!(e["CLOISON_TECHNIQUE"], "verify_probe", "{e:#}");
    }
    assert!(
        probe_alerts.len() <= 40,
        "{} entries for {probes} probes",
        probe_alerts.len()
    );

    // The daemon would repair what follows within seconds: stop it, as an intruder who
    // got root would.
    rig.stop(Duration::from_secs(10)).expect("stop the daemon");

    // A hole in the ruleset: the kiosk reaches the mairie server's SMB port.
    let hole = [
        "insert",
        "rule",
        "inet",
        "cloison",
        "pair/kiosk/mairie",
        "ip",
        "daddr",
        "192.168.10.5",
        "tcp",
        "dport",
        "445",
        "accept",
    ];
    let o = rig.nft(&hole);
    assert!(o.status.success(), "{}", text(&o));
    let listed = String::from_utf8_lossy(
        &rig.nft(&[
            "-a",
            "list",
            "chain",
            "inet",
            "cloison",
            "pair/kiosk/mairie",
        ])
        .stdout,
    )
    .into_owned();
    let handle = listed
        .lines()
        .find(|l| l.contains("445") && l.contains("accept"))
        .and_then(|l| l.rsplit("handle ").next())
        .expect("the inserted rule")
        .trim()
        .to_owned();
    let out = verify(&rig, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc = json(&out);
    let f = failures(&doc);
    assert_eq!(f.len(), 1, "exactly the hole: {f:#?}");
    let (from, to, wall, detail) = &f[0];
    assert_eq!((from.as_str(), to.as_str()), ("kiosk", "mairie"), "{f:?}");
    assert_eq!(wall, "ruleset", "only the ruleset was opened: {f:?}");
    assert!(
        detail.contains(&format!("rule handle {handle} of chain pair/kiosk/mairie")),
        "the detail names the rule: {detail}"
    );
    let breaches = rig.wait_event("isolation_breach", Duration::from_secs(5));
    assert_eq!(breaches.len(), 1, "{breaches:#?}");
    let b = &breaches[0];
    assert_eq!(b["CLOISON_VERIFY"], "1", "{b:#}");
    assert_eq!(b["PRIORITY"], "2", "crit: {b:#}");
    assert!(
        b["MESSAGE"].as_str().unwrap().contains("192.168.10.5"),
        "names the flow: {b:#}"
    );
    assert_eq!(rig.events("verify_failed").len(), 1);

    // The ruleset whole again, the second wall opened instead: the rules that send the
    // kiosk's and the mairie's packets to their walls' tables deleted (both, as the
    // strict reverse-path check also looks the source up through the destination's
    // wall). The ruleset still stops everything; verify says the routing wall is open.
    let o = rig.nft(&[
        "delete",
        "rule",
        "inet",
        "cloison",
        "pair/kiosk/mairie",
        "handle",
        &handle,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for pref in ["7200", "7201"] {
        router(&rig, "ip", &["-4", "rule", "del", "priority", pref]);
    }
    let out = verify(&rig, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = failures(&json(&out));
    assert!(
        f.iter()
            .any(|(from, to, ..)| from == "kiosk" && to == "mairie"),
        "{f:#?}"
    );
    for (from, to, wall, _) in &f {
        // The walls of the kiosk and the mairie also kept them from private addresses;
        // the counter's wall is whole.
        assert!(
            matches!(
                (from.as_str(), to.as_str()),
                ("kiosk" | "mairie", "mairie" | "kiosk" | "private")
            ) && from != to,
            "only from the two segments whose wall is gone: {f:#?}"
        );
        assert_eq!(wall, "routing", "the ruleset held: {f:#?}");
    }
    assert!(leftovers(&rig).is_empty(), "{:?}", leftovers(&rig));
}

#[test]
fn a_killed_run_is_cleaned_by_the_next_and_a_dry_run_sends_nothing() {
    if !require_root("a_killed_run_is_cleaned_by_the_next_and_a_dry_run_sends_nothing") {
        return;
    }
    let mut rig = common::daemon::setup();
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));

    // --dry-run: the plan, with nothing sent and nothing attached.
    let before = rig.counters().unwrap();
    let out = verify(&rig, &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("nothing was sent"), "{said}");
    assert!(
        said.contains("kiosk -> mairie 192.168.10.5"),
        "lists the probes: {said}"
    );
    assert_eq!(rig.counters().unwrap(), before, "a dry run sent packets");
    assert!(leftovers(&rig).is_empty());
    assert!(rig.events("verify_passed").is_empty());

    // A run killed with SIGKILL while its probe hosts are attached leaves them there...
    let mut child = rig
        .cloison_journaled(&["verify"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while leftovers(&rig).len() < 3 {
        assert!(Instant::now() < deadline, "the probe hosts never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pgid = nix::unistd::Pid::from_raw(-i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let left = leftovers(&rig);
    assert!(!left.is_empty(), "SIGKILL left nothing to clean: {left:?}");
    assert!(
        left.iter().any(|l| l.contains("cloison-verify")),
        "the killed run's trace table is gone already: {left:?}"
    );

    // ...and the next run removes them, says so, and passes.
    let out = verify(&rig, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("left by a run that was killed"), "{err}");
    assert!(leftovers(&rig).is_empty(), "{:?}", leftovers(&rig));
}
