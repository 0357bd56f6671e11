//! `cloison apply`, `apply --remove` and `status` against the real kernel, in namespaces
//! of their own: idempotence, fail-closed behaviour, other tools' tables, drift.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Netns, require_root, text};

const LAB: &str = common::LAB_TOML;

fn apply_ok(ns: &Netns) -> String {
    let out = ns.cloison(&["apply", "-c", LAB], &[]);
    assert!(out.status.success(), "apply failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn apply_twice_changes_nothing_the_second_time() {
    if !require_root("apply_twice_changes_nothing_the_second_time") {
        return;
    }
    let ns = Netns::with_lab_interfaces("idem");
    assert_eq!(ns.sysctl("net/ipv4/ip_forward"), "0");
    let first = apply_ok(&ns);
    assert!(first.contains("ruleset: installed"), "{first}");
    assert!(first.contains("switched forwarding on"), "{first}");
    assert_eq!(ns.sysctl("net/ipv4/ip_forward"), "1");
    assert_eq!(ns.sysctl("net/ipv4/conf/seg-kiosk/rp_filter"), "1");
    assert_eq!(ns.sysctl("net/ipv6/conf/seg-kiosk/accept_ra"), "0");
    let before = ns.table_bytes();
    let second = apply_ok(&ns);
    assert!(second.contains("ruleset: unchanged"), "{second}");
    assert!(second.contains("nothing changed"), "{second}");
    let changes: Vec<&str> = second
        .lines()
        .filter(|l| !l.starts_with("note: "))
        .collect();
    assert_eq!(
        changes.len(),
        2,
        "the second apply must change nothing:\n{second}"
    );
    assert_eq!(
        before,
        ns.table_bytes(),
        "the table was touched by an idempotent apply"
    );
    let status = ns.cloison(&["status", "-c", LAB], &[]);
    assert!(status.status.success(), "{}", text(&status));
}

/// The largest configuration cloison accepts, every segment routed to one of two
/// uplinks: applied, then applied again without a change. (Beyond 90 segments the
/// routing-rule priorities used to leave cloison's range and the second apply failed.)
#[test]
fn the_largest_configuration_applies_and_reapplies_unchanged() {
    if !require_root("the_largest_configuration_applies_and_reapplies_unchanged") {
        return;
    }
    let n = cloison_core::config::MAX_SEGMENTS;
    let mut toml = String::from(
        "[uplinks.isp]\ninterface = \"wan0\"\naddress = \"10.250.0.2/30\"\ngateway = \"10.250.0.1\"\n\n\
         [uplinks.line]\ninterface = \"wan1\"\naddress = \"10.250.1.2/30\"\ngateway = \"10.250.1.1\"\n\n",
    );
    let mut names = vec!["wan0".to_owned(), "wan1".to_owned()];
    for i in 0..n {
        let uplink = if i % 2 == 0 { "isp" } else { "line" };
        toml += &format!(
            "[segments.s{i:02}]\ninterface = \"s{i:02}\"\naddress = \"10.{i}.0.1/24\"\nuplink = \"{uplink}\"\n\n"
        );
        names.push(format!("s{i:02}"));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("large.toml");
    std::fs::write(&path, toml).expect("write config");
    let path = path.to_str().expect("utf-8 path");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ns = Netns::with_interfaces("large", &names);

    let first = ns.cloison(&["apply", "-c", path], &[]);
    assert!(first.status.success(), "{}", text(&first));
    let first = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.contains(&format!("added routing rule priority {} ", 7310 + n - 1)),
        "{first}"
    );
    let rules = ns.run(&["ip", "rule", "show"], "");
    let ours = String::from_utf8_lossy(&rules.stdout)
        .lines()
        .filter(|l| l.contains("lookup 730"))
        .count();
    assert_eq!(ours, n, "one rule per segment:\n{}", text(&rules));

    let again = ns.cloison(&["apply", "-c", path], &[]);
    assert!(again.status.success(), "{}", text(&again));
    let again = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.contains("ruleset: unchanged"), "{again}");
    assert!(again.contains("nothing changed"), "{again}");
}

#[test]
fn other_tools_tables_are_never_touched() {
    if !require_root("other_tools_tables_are_never_touched") {
        return;
    }
    let ns = Netns::with_lab_interfaces("others");
    let theirs = "table inet firewalld {\n chain input {\n  type filter hook input priority 10; policy accept;\n  tcp dport 8080 counter accept\n }\n}\ntable ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n }\n}\n";
    assert!(ns.run(&["nft", "-f", "-"], theirs).status.success());
    let snapshot = |ns: &Netns| {
        let a = ns
            .run(&["nft", "-j", "list", "table", "inet", "firewalld"], "")
            .stdout;
        let b = ns
            .run(&["nft", "-j", "list", "table", "ip", "nat"], "")
            .stdout;
        (a, b)
    };
    let before = snapshot(&ns);
    apply_ok(&ns);
    assert_eq!(before, snapshot(&ns), "apply changed another tool's table");
    let out = ns.cloison(&["apply", "--remove", "-c", LAB], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        before,
        snapshot(&ns),
        "apply --remove changed another tool's table"
    );
    assert!(
        ns.table_bytes().is_empty(),
        "cloison's table must be gone after --remove"
    );
    assert_eq!(
        ns.sysctl("net/ipv4/ip_forward"),
        "0",
        "--remove switches forwarding off"
    );
}

#[test]
fn an_invalid_config_changes_nothing() {
    if !require_root("an_invalid_config_changes_nothing") {
        return;
    }
    let ns = Netns::with_lab_interfaces("invalid");
    apply_ok(&ns);
    let before = ns.table_bytes();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let src = std::fs::read_to_string(LAB).unwrap().replace(
        "address = \"192.168.20.1/24\"",
        "address = \"192.168.20.0/24\"",
    );
    std::fs::write(&bad, src).unwrap();
    let out = ns.cloison(&["apply", "-c", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("network address"),
        "{}",
        text(&out)
    );
    assert_eq!(
        before,
        ns.table_bytes(),
        "the previous ruleset must stay byte-for-byte"
    );
    assert_eq!(ns.sysctl("net/ipv4/ip_forward"), "1");
}

/// An `nft` that is the real one, except that it breaks every batch it is given (a jump
/// to a chain that does not exist), so the kernel rejects the whole transaction.
fn rejecting_nft(dir: &std::path::Path) -> String {
    let path = dir.join("nft");
    std::fs::write(
        &path,
        "#!/bin/sh\nif [ \"$1\" = \"-j\" ] && [ \"$2\" = \"-f\" ]; then\n  sed 's/\"target\":\"invalid\"/\"target\":\"no-such-chain\"/' | nft \"$@\"\n  exit $?\nfi\nexec nft \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_ruleset_nft_rejects_changes_nothing() {
    if !require_root("a_ruleset_nft_rejects_changes_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nft = rejecting_nft(dir.path());

    // With a previous table: it stays byte-for-byte, and so does forwarding.
    let ns = Netns::with_lab_interfaces("reject");
    apply_ok(&ns);
    ns.run(
        &["nft", "flush", "chain", "inet", "cloison", "fwd/kiosk"],
        "",
    );
    let before = ns.table_bytes();
    let out = ns.cloison(&["apply", "-c", LAB], &[("CLOISON_NFT", &nft)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the ruleset was not applied")
            && err.contains("previous table is still in place"),
        "{}",
        text(&out)
    );
    assert!(
        err.contains("no-such-chain") || err.contains("No such file"),
        "nft's own error must be shown:\n{err}"
    );
    assert_eq!(
        before,
        ns.table_bytes(),
        "the previous ruleset must stay byte-for-byte"
    );

    // Without one: no table appears and forwarding stays off.
    let fresh = Netns::with_lab_interfaces("reject2");
    let out = fresh.cloison(&["apply", "-c", LAB], &[("CLOISON_NFT", &nft)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(fresh.table_bytes().is_empty());
    assert_eq!(
        fresh.sysctl("net/ipv4/ip_forward"),
        "0",
        "forwarding must stay off without rules"
    );
    let addrs = fresh.run(&["ip", "-br", "addr", "show", "seg-kiosk"], "");
    assert!(
        !String::from_utf8_lossy(&addrs.stdout).contains("192.168.20.1"),
        "links must not be set up when the ruleset failed"
    );
}

#[test]
fn status_reports_drift_and_apply_repairs_it() {
    if !require_root("status_reports_drift_and_apply_repairs_it") {
        return;
    }
    let ns = Netns::with_lab_interfaces("drift");
    let status = |ns: &Netns| ns.cloison(&["status", "-c", LAB], &[]);
    let missing = status(&ns);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("MISSING"),
        "{}",
        text(&missing)
    );

    apply_ok(&ns);
    assert!(status(&ns).status.success());

    let tampering: [&[&str]; 4] = [
        &["nft", "flush", "table", "inet", "cloison"],
        &["nft", "delete", "table", "inet", "cloison"],
        &[
            "nft", "insert", "rule", "inet", "cloison", "forward", "accept",
        ],
        &["nft", "delete", "chain", "inet", "cloison", "postrouting"],
    ];
    for cmd in tampering {
        let out = ns.run(cmd, "");
        assert!(out.status.success(), "{cmd:?}: {}", text(&out));
        let s = status(&ns);
        assert_eq!(
            s.status.code(),
            Some(1),
            "{cmd:?} not detected:\n{}",
            text(&s)
        );
        let shown = String::from_utf8_lossy(&s.stdout);
        assert!(
            shown.contains("DRIFTED") || shown.contains("MISSING"),
            "{cmd:?}:\n{shown}"
        );
        let json = ns.cloison(&["status", "--json", "-c", LAB], &[]);
        let v: serde_json::Value =
            serde_json::from_slice(&json.stdout).expect("status --json prints JSON");
        assert_ne!(v["sync"]["state"], "in_sync");
        let repaired = apply_ok(&ns);
        assert!(
            repaired.contains("ruleset: replaced") || repaired.contains("ruleset: installed"),
            "{repaired}"
        );
        assert!(status(&ns).status.success(), "not repaired after {cmd:?}");
    }
}
