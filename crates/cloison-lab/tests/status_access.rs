//! `cloison status` and `cloison metrics` for the people and programs that are not root:
//! a member of the `cloison` group reads the status and the metrics through the daemon
//! (the socket checks its credentials and refuses it reload and confirm); anyone else gets
//! "could not check" (exit 3), which is not "drifted" (exit 1). Also the `--json` schema
//! fields, the human form (the policy in words) and the verify record in the metrics.
//! Real daemon, real nftables, a real unprivileged process (setpriv).

mod common;

use std::process::Output;
use std::time::Duration;

use cloison_lab::Node;
use common::daemon::{Setup, lab_config_with};
use common::{require_root, text};

/// A user id that is no one's on a Debian system (`nobody`).
const NOBODY: u32 = 65534;

/// The `cloison` group as the daemon will see it: the machine's, or one added to the
/// daemon's private mount namespace (a copy of /etc/group bound over it, nothing written
/// on the host). Returns its gid.
fn give_the_box_a_cloison_group(s: &Setup) -> u32 {
    let group = std::fs::read_to_string("/etc/group").unwrap();
    let taken: Vec<u32> = group
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    if let Some(gid) = group.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some("cloison")).then(|| f.nth(1)?.parse().ok())?
    }) {
        return gid;
    }
    let gid = (64000..65000).find(|g| !taken.contains(g)).unwrap();
    let out = s
        .journal
        .command("sh")
        .args([
            "-c",
            r#"cp /etc/group /run/systemd/cloison-lab/group && echo "cloison:x:$1:" >> /run/systemd/cloison-lab/group && mount --bind /run/systemd/cloison-lab/group /etc/group"#,
            "sh",
            &gid.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    gid
}

/// `cloison ARGS` in the router, as user `uid` with supplementary `groups`.
fn cloison_as(s: &Setup, uid: u32, groups: &[u32], args: &[&str]) -> Output {
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut cmd = s.lab.command(Node::Router, "setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={}", groups.join(",")));
    }
    cmd.arg(&s.programs().cloison)
        .args(args)
        .args(["-c", s.config_path().to_str().unwrap()])
        .env("CLOISON_RUNTIME_DIR", s.runtime_dir())
        .env("CLOISON_STATE_DIR", s.state_dir())
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

fn metric(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[test]
fn the_cloison_group_reads_status_and_metrics_but_changes_nothing() {
    if !require_root("the_cloison_group_reads_status_and_metrics_but_changes_nothing") {
        return;
    }
    let mut s = common::daemon::setup();
    s.write_config(&lab_config_with(
        "[alerts]",
        "[daemon]\nrepair = false\n\n[alerts]",
    ));
    let gid = give_the_box_a_cloison_group(&s);
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));

    // The socket and its directory belong to the group.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let sock = std::fs::metadata(s.runtime_dir().join("control.sock")).unwrap();
    assert_eq!(
        (sock.gid(), sock.permissions().mode() & 0o777),
        (gid, 0o660)
    );
    let dir = std::fs::metadata(s.runtime_dir()).unwrap();
    assert_eq!((dir.gid(), dir.permissions().mode() & 0o777), (gid, 0o750));

    // A drop to count, then the group member's view equals root's.
    assert_eq!(s.kiosk_to_smb(), cloison_lab::Reach::TimedOut);
    std::thread::sleep(Duration::from_millis(300));
    let root = s.cloison(&["status", "--json"]);
    assert_eq!(root.status.code(), Some(0), "{}", text(&root));
    let root = json(&root);
    let member = cloison_as(&s, NOBODY, &[gid], &["status", "--json"]);
    assert_eq!(member.status.code(), Some(0), "{}", text(&member));
    let member = json(&member);
    assert_eq!(root["checked_by"], "itself");
    assert_eq!(member["checked_by"], "daemon");
    assert!(root["counters"]["kiosk/mairie"]["packets"].as_u64() >= Some(1));
    assert_eq!(member["counters"], root["counters"]);
    assert_eq!(member["in_sync"], true);
    for v in [&root, &member] {
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["router"], "mairie-lab");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert!(v["timestamp"].as_u64() > Some(1_700_000_000), "{v}");
        assert_eq!(v["daemon"]["running"], true);
    }

    let metrics = cloison_as(&s, NOBODY, &[gid], &["metrics"]);
    assert!(metrics.status.success(), "{}", text(&metrics));
    let m = String::from_utf8_lossy(&metrics.stdout);
    assert_eq!(metric(&m, "cloison_ruleset_in_sync").as_deref(), Some("1"));
    assert_eq!(metric(&m, "cloison_daemon_up").as_deref(), Some("1"));
    assert_eq!(
        metric(
            &m,
            r#"cloison_dropped_packets_total{from="kiosk",to="mairie"}"#
        ),
        root["counters"]["kiosk/mairie"]["packets"]
            .as_u64()
            .map(|n| n.to_string())
    );
    assert!(
        metric(&m, r#"cloison_alerts_total{event="cross_segment"}"#)
            .is_some_and(|n| n.parse::<u64>().unwrap() >= 1),
        "{m}"
    );

    // Reload and confirm are root's.
    for args in [&["reload"][..], &["confirm"][..]] {
        let out = cloison_as(&s, NOBODY, &[gid], args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("only root"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(s.cloison(&["reload"]).status.success(), "root may reload");

    // Not in the group: nothing to read; "could not check" is its own exit status.
    let stranger = cloison_as(&s, NOBODY, &[], &["status"]);
    assert_eq!(stranger.status.code(), Some(3), "{}", text(&stranger));
    let out = String::from_utf8_lossy(&stranger.stdout);
    assert!(out.contains("COULD NOT CHECK"), "{out}");
    assert!(out.contains("CANNOT ASK IT"), "{out}");
    let stranger = cloison_as(&s, NOBODY, &[], &["metrics"]);
    assert!(stranger.status.success(), "{}", text(&stranger));
    let m = String::from_utf8_lossy(&stranger.stdout);
    assert_eq!(
        metric(&m, "cloison_ruleset_check_success").as_deref(),
        Some("0")
    );
    assert_eq!(metric(&m, "cloison_ruleset_in_sync"), None);

    // Drifted (repair = false): 1 for root and for the group, and in the metrics.
    assert!(
        s.nft(&["delete", "table", "inet", "cloison"])
            .status
            .success()
    );
    assert_eq!(s.cloison(&["status"]).status.code(), Some(1));
    let member = cloison_as(&s, NOBODY, &[gid], &["status", "--json"]);
    assert_eq!(member.status.code(), Some(1), "{}", text(&member));
    assert_eq!(json(&member)["sync"]["state"], "missing");
    let metrics = cloison_as(&s, NOBODY, &[gid], &["metrics"]);
    let m = String::from_utf8_lossy(&metrics.stdout);
    assert_eq!(metric(&m, "cloison_ruleset_in_sync").as_deref(), Some("0"));
    assert_eq!(metric(&m, "cloison_ruleset_present").as_deref(), Some("0"));
}

#[test]
fn status_reads_like_a_report_and_metrics_carry_the_last_verify() {
    if !require_root("status_reads_like_a_report_and_metrics_carry_the_last_verify") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let out = s.cloison(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let human = String::from_utf8_lossy(&out.stdout);
    for line in [
        "router:     mairie-lab (cloison ",
        "  kiosk  -> mairie:   blocked\n",
        "  mairie -> kiosk:    tcp/5900 allowed (helpdesk reaches the kiosk); everything else blocked\n",
        "  kiosk  -> router:   dns, dhcp only\n",
        "daemon:     running for ",
    ] {
        assert!(human.contains(line), "{line:?} missing:\n{human}");
    }
    assert!(
        !human.contains("uptime_secs") && human.contains(" s (pid "),
        "uptime in words:\n{human}"
    );

    // No record: no verify metrics. A record: its values, against the config in force.
    let metrics = || String::from_utf8_lossy(&s.cloison(&["metrics"]).stdout).into_owned();
    assert_eq!(metric(&metrics(), "cloison_verify_last_success"), None);
    let hash = cloison_core::hash::Hash::of(&std::fs::read(s.config_path()).unwrap());
    std::fs::create_dir_all(s.state_dir()).unwrap();
    std::fs::write(
        s.state_dir().join("verify-last.json"),
        format!(
            r#"{{"version":1,"finished":1764403260,"success":true,"probes":40,"failures":0,"config_hash":"{hash}"}}"#
        ),
    )
    .unwrap();
    let m = metrics();
    assert_eq!(
        metric(&m, "cloison_verify_last_run_timestamp_seconds").as_deref(),
        Some("1764403260")
    );
    assert_eq!(
        metric(&m, "cloison_verify_last_success").as_deref(),
        Some("1")
    );
    assert_eq!(
        metric(&m, "cloison_verify_last_config_current").as_deref(),
        Some("1")
    );
    assert!(
        m.contains(&format!(
            r#"cloison_config_info{{hash="{hash}",router="mairie-lab"}} 1"#
        )),
        "{m}"
    );
}
