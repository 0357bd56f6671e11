//! Alerts through a real systemd-journald: every event kind lands with the documented
//! fields, MESSAGE_ID and PRIORITY; the catalog explains them (`journalctl -x`); the usual
//! filters work; a flood stays bounded with exact counts; without journald, the same
//! fields come out on stderr as JSON lines.
//!
//! Needs root (a private mount namespace holding its own journald, see
//! `cloison_lab::journal`); prints SKIP otherwise. The alerts are written by this same
//! test binary re-run inside the namespace (`helper`, selected by an environment
//! variable), because a multithreaded test process cannot enter a mount namespace.

// Tests build frames and pids from small numbers; the product's cast lints would only
// add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cloison::journal::JournalWriter;
use cloison_core::alert::event::{Destination, EventKind, FlowKey, L4, SegmentId};
use cloison_core::alert::{Alert, FoldSettings, Folder, Names, Sink, counter_backed, field};
use cloison_lab::journal::{JOURNALD, PrivateJournal};
use serde_json::Value;

const HELPER_ENV: &str = "CLOISON_JOURNAL_HELPER";

const KIOSK: SegmentId = SegmentId(0);
const MAIRIE: SegmentId = SegmentId(1);
const POSTE: SegmentId = SegmentId(2);
/// The ifindex the scenario gives seg-kiosk.
const IF_KIOSK: u32 = 3;

fn root_or_skip(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!(
            "SKIP {test}: needs root (runs its own systemd-journald in a private mount namespace)"
        );
        return false;
    }
    assert!(
        Path::new(JOURNALD).exists(),
        "{JOURNALD} is missing: install systemd (the integration tests need a real journald)"
    );
    true
}

fn names() -> Names {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/lab.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = cloison_core::config::parse(&text, "lab.toml").unwrap();
    Names::from_config(&config, "unused").with_interfaces([(IF_KIOSK, "seg-kiosk".to_owned())])
}

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_777_885_923 + s)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn flow(kind: EventKind) -> FlowKey {
    let mut k = FlowKey::new(kind);
    k.ifindex = Some(IF_KIOSK);
    k.src_mac = Some([0x02, 0x42, 0xac, 0x14, 0x00, 0x0f]);
    k
}

/// One alert of every kind, plus summaries; the same list in the helper and the checks.
fn scenario() -> Vec<Alert> {
    let settings = FoldSettings {
        summary_every: Duration::from_secs(10),
        max_per_minute: 120,
        max_flows: 4096,
    };
    let mut f = Folder::new(names(), settings);
    let mut out = Vec::new();

    let mut smb = flow(EventKind::CrossSegment);
    smb.src_segment = Some(KIOSK);
    smb.dst = Some(Destination::Segment(MAIRIE));
    (smb.src_ip, smb.dst_ip) = (v4(192, 168, 20, 15), v4(192, 168, 10, 5));
    (smb.proto, smb.dst_port) = (Some(L4::Tcp), Some(445));

    let mut ssh = flow(EventKind::RouterAccess);
    ssh.src_segment = Some(KIOSK);
    ssh.dst = Some(Destination::Router);
    (ssh.src_ip, ssh.dst_ip) = (v4(192, 168, 20, 15), v4(192, 168, 20, 1));
    (ssh.proto, ssh.dst_port) = (Some(L4::Tcp), Some(22));

    let mut spoof = flow(EventKind::SpoofedSource);
    spoof.src_segment = Some(POSTE);
    (spoof.src_ip, spoof.dst_ip) = (v4(192, 168, 10, 7), v4(192, 168, 30, 9));
    (spoof.proto, spoof.dst_port) = (Some(L4::Udp), Some(53));
    spoof.ifindex = None;

    let mut breach = flow(EventKind::IsolationBreach);
    breach.src_segment = Some(MAIRIE);
    breach.dst = Some(Destination::Segment(KIOSK));
    breach.src_ip = v4(192, 168, 10, 5);

    let mut arp = flow(EventKind::ArpSpoof);
    arp.src_segment = Some(KIOSK);
    arp.dst = Some(Destination::Router);
    arp.src_ip = v4(192, 168, 20, 1);

    let mut dhcp = flow(EventKind::RogueDhcp);
    dhcp.src_segment = Some(KIOSK);
    dhcp.src_ip = v4(192, 168, 20, 66);
    (dhcp.proto, dhcp.dst_port) = (Some(L4::Udp), Some(68));

    let mut ra = flow(EventKind::RogueRa);
    ra.src_segment = Some(KIOSK);
    ra.src_ip = Some(IpAddr::V6(Ipv6Addr::new(
        0xfe80, 0, 0, 0, 0x42, 0xacff, 0xfe14, 0xf,
    )));
    ra.proto = Some(L4::Icmpv6);

    let mut hop = flow(EventKind::VlanHopping);
    hop.src_segment = Some(KIOSK);
    hop.vlan = Some(99);

    for (i, key) in [smb, ssh, spoof, breach, arp, dhcp, ra, hop]
        .iter()
        .enumerate()
    {
        let t = at(i as u64);
        out.extend(f.observe(key, t));
        // Repeats: samples for counter-backed kinds, frames for layer-2 ones.
        for _ in 0..4 {
            out.extend(f.observe(key, t));
        }
    }
    out.extend(f.counters(
        &[
            ("kiosk/mairie", 37),
            ("kiosk/router", 5),
            ("poste/spoofed", 12),
            ("kiosk/broadcast", 1000),
        ],
        at(9),
    ));
    out.extend(f.tick(at(10)));
    out.extend(f.flush(at(11)));
    let router = names().router().to_owned();
    out.push(Alert::config_rejected(
        &router,
        "/etc/cloison/cloison.toml",
        "cloison.toml:14:9: segments.kiosk.vlan = 4095: VLAN IDs go from 1 to 4094\ncloison.toml:3:1: unknown key `segmnts`; did you mean `segments`?",
        "the previous configuration",
    ));
    out.push(Alert::config_applied(
        &router,
        "/etc/cloison/cloison.toml",
        Some("5f1d2c9e0a7b4c3d2e1f00112233445566778899aabbccddeeff001122334455"),
        "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f",
        "3 segments; allow mairie -> kiosk tcp/5900 added",
    ));
    out.push(Alert::ruleset_drift(
        &router,
        "table inet cloison is missing\nchain forward: 12 rules expected, 0 found",
        true,
        "ruleset",
        Some(&cloison_core::alert::Actor {
            pid: 4242,
            comm: Some("nft".into()),
            parent: Some((4200, "bash".into())),
        }),
    ));
    // `cloison verify`'s entries, as its contract says (docs/alerts.md).
    let hash = "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f";
    for (kind, failures, result) in [
        (
            EventKind::VerifyPassed,
            "0",
            r#"{"version":1,"pairs":[{"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":24,"failures":[]}]}"#,
        ),
        (
            EventKind::VerifyFailed,
            "1",
            r#"{"version":1,"pairs":[{"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":23,"failures":[{"probe":"tcp/445","target":"192.168.10.5","observed":"open","wall":"none"}]}]}"#,
        ),
    ] {
        out.push(Alert::daemon(
            kind,
            &router,
            format!("isolation check: 24 probes, {failures} not as configured"),
            &[
                (field::CONFIG_HASH, hash.to_owned()),
                (field::VERIFY_PROBES, "24".to_owned()),
                (field::VERIFY_FAILURES, failures.to_owned()),
                (field::VERIFY_RESULT, result.to_owned()),
            ],
        ));
    }
    out
}

/// The flood the helper writes: (expected packets per kind).
fn flood(sink: &mut impl Sink) -> BTreeMap<String, u64> {
    let settings = FoldSettings {
        summary_every: Duration::from_secs(1),
        max_per_minute: 120,
        max_flows: 4096,
    };
    let mut f = Folder::new(names(), settings);
    let mut raw: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let names = names();
    let started = Instant::now();
    let mut n: u64 = 0;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    // 100k blocked packets and 20k spoofed ARP frames over about 2 s.
    while n < 120_000 {
        for _ in 0..200 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut key = flow(match n % 6 {
                0..=2 => EventKind::CrossSegment,
                3..=4 => EventKind::SpoofedSource,
                _ => EventKind::ArpSpoof,
            });
            key.src_segment = Some(KIOSK);
            match key.kind {
                EventKind::CrossSegment => {
                    key.dst = Some(Destination::Segment(MAIRIE));
                    key.src_ip = v4(192, 168, 20, (rng % 250) as u8);
                    key.dst_ip = v4(192, 168, 10, 5);
                    (key.proto, key.dst_port) = (Some(L4::Tcp), Some(445));
                }
                EventKind::SpoofedSource => {
                    key.src_ip = Some(IpAddr::V4(Ipv4Addr::from(rng as u32)));
                    (key.proto, key.dst_port) = (Some(L4::Udp), Some(53));
                }
                _ => key.src_mac = Some([2, 0, 0, 0, 0, (rng % 64) as u8]),
            }
            *expected.entry(key.kind.name().to_owned()).or_default() += 1;
            let now = SystemTime::now();
            if counter_backed(key.kind) {
                *raw.entry(names.counter_of(&key).unwrap()).or_default() += 1;
                // The ruleset samples about 1 packet in 40.
                if rng % 40 == 0
                    && let Some(a) = f.observe(&key, now)
                {
                    sink.write(&a);
                }
            } else if let Some(a) = f.observe(&key, now) {
                sink.write(&a);
            }
            n += 1;
        }
        let readings: Vec<(String, u64)> = raw.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for a in f.counters(&readings, SystemTime::now()) {
            sink.write(&a);
        }
        for a in f.tick(SystemTime::now()) {
            sink.write(&a);
        }
        std::thread::sleep(Duration::from_micros(2500));
    }
    while started.elapsed() < Duration::from_secs(4) {
        for a in f.tick(SystemTime::now()) {
            sink.write(&a);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let readings: Vec<(String, u64)> = raw.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for a in f.counters(&readings, SystemTime::now()) {
        sink.write(&a);
    }
    for a in f.flush(SystemTime::now()) {
        sink.write(&a);
    }
    expected
}

/// Not a test: what the other tests run inside a mount namespace.
#[test]
#[ignore = "run by the other tests, inside a private mount namespace"]
fn helper() {
    let Ok(mode) = std::env::var(HELPER_ENV) else {
        return;
    };
    let mut w = JournalWriter::new();
    match mode.as_str() {
        "scenario" => {
            for a in scenario() {
                w.write(&a);
            }
        }
        "flood" => {
            let expected = flood(&mut w);
            println!("EXPECT {}", serde_json::to_string(&expected).unwrap());
        }
        other => panic!("unknown helper mode {other}"),
    }
    let s = w.stats();
    println!(
        "STATS journal={} fallback={} lost={} errors={}",
        s.journal, s.fallback, s.lost, s.send_errors
    );
}

fn helper_args(c: &mut Command, mode: &str) {
    c.args([
        "--ignored",
        "--exact",
        "helper",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(HELPER_ENV, mode)
    .env_remove("RUST_TEST_THREADS");
}

fn run_helper(j: &PrivateJournal, mode: &str) -> String {
    let mut c = j.command(std::env::current_exe().unwrap());
    helper_args(&mut c, mode);
    let out = c.output().unwrap();
    assert_ok(&out, "helper in the journal's namespace");
    String::from_utf8(out.stdout).unwrap()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

/// The journal entry written for `a` (same MESSAGE and MESSAGE_ID).
fn entry_of<'a>(entries: &'a [Value], a: &Alert) -> &'a Value {
    entries
        .iter()
        .find(|e| {
            s(e, "MESSAGE") == Some(a.message()) && s(e, "MESSAGE_ID") == Some(a.message_id())
        })
        .unwrap_or_else(|| panic!("no journal entry for {:?}", a.message()))
}

#[test]
fn every_kind_lands_in_journald_with_its_fields() {
    if !root_or_skip("every_kind_lands_in_journald_with_its_fields") {
        return;
    }
    let j = PrivateJournal::start().unwrap();
    let stats = run_helper(&j, "scenario");
    let expected = scenario();
    assert!(
        stats.contains(&format!("STATS journal={} fallback=0", expected.len())),
        "{stats}"
    );
    let entries = j.entries(&["-t", "cloison"]).unwrap();
    assert_eq!(entries.len(), expected.len(), "{entries:#?}");

    // Every field of every alert, exactly, through the native protocol.
    for a in &expected {
        let e = entry_of(&entries, a);
        for (k, v) in a.journal_fields() {
            assert_eq!(s(e, k), Some(v), "{k} of {:?}", a.message());
        }
        assert_eq!(s(e, "_TRANSPORT"), Some("journal"));
        assert_eq!(s(e, "PRIORITY"), Some(a.priority().to_string().as_str()));
    }
    for kind in EventKind::ALL {
        let e = entries
            .iter()
            .find(|e| s(e, field::EVENT) == Some(kind.name()))
            .unwrap_or_else(|| panic!("no {kind} entry"));
        assert_eq!(s(e, "MESSAGE_ID"), Some(kind.message_id()));
        assert_eq!(s(e, "PRIORITY"), Some(kind.priority().to_string().as_str()));
        assert_eq!(s(e, "SYSLOG_IDENTIFIER"), Some("cloison"));
        assert_eq!(s(e, field::ROUTER), Some("mairie-lab"));
    }

    // The documented fields of a blocked flow, as a person would check them.
    let first = entries
        .iter()
        .find(|e| s(e, field::EVENT) == Some("cross_segment") && e.get(field::SUMMARY).is_none())
        .unwrap();
    let want = [
        (
            "MESSAGE",
            "kiosk 192.168.20.15 tried mairie 192.168.10.5 tcp/445 (SMB): blocked, first packet",
        ),
        ("PRIORITY", "4"),
        (field::SRC_SEGMENT, "kiosk"),
        (field::DST_SEGMENT, "mairie"),
        (field::SRC_IP, "192.168.20.15"),
        (field::DST_IP, "192.168.10.5"),
        (field::PROTO, "tcp"),
        (field::DST_PORT, "445"),
        (field::SRC_MAC, "02:42:ac:14:00:0f"),
        (field::INTERFACE, "seg-kiosk"),
        (field::PACKETS, "1"),
        (field::VERDICT, "blocked"),
        (field::COUNTER, "kiosk/mairie"),
        (field::FIRST_SEEN, "2026-05-04T09:12:03.000000Z"),
        (field::LAST_SEEN, "2026-05-04T09:12:03.000000Z"),
    ];
    for (k, v) in want {
        assert_eq!(s(first, k), Some(v), "{k}");
    }
    let hop = entries
        .iter()
        .find(|e| s(e, field::EVENT) == Some("vlan_hopping"))
        .unwrap();
    assert_eq!(s(hop, field::VLAN), Some("99"));
    assert_eq!(s(hop, field::VERDICT), Some("observed"));
    assert_eq!(s(hop, "PRIORITY"), Some("3"));
    let rejected = entries
        .iter()
        .find(|e| s(e, field::EVENT) == Some("config_rejected"))
        .unwrap();
    assert_eq!(
        s(rejected, field::DETAIL).map(|d| d.lines().count()),
        Some(2),
        "multi-line details survive the binary-safe form"
    );

    // Exact counts: the counters said 37 + 5 + 12; layer-2 kinds saw 5 frames each.
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        if let (Some(k), Some(p)) = (s(e, field::EVENT), s(e, field::PACKETS)) {
            *sums.entry(k.to_owned()).or_default() += p.parse::<u64>().unwrap();
        }
    }
    assert_eq!(sums["cross_segment"], 37);
    assert_eq!(sums["router_access"], 5);
    assert_eq!(sums["spoofed_source"], 12);
    for k in [
        "isolation_breach",
        "arp_spoof",
        "rogue_dhcp",
        "rogue_ra",
        "vlan_hopping",
    ] {
        assert_eq!(sums[k], 5, "{k}");
    }

    // The filters of the contract.
    let kiosk = j.entries(&["CLOISON_SRC_SEGMENT=kiosk"]).unwrap();
    let want_kiosk = expected
        .iter()
        .filter(|a| a.field(field::SRC_SEGMENT) == Some("kiosk"))
        .count();
    assert!(want_kiosk >= 6);
    assert_eq!(kiosk.len(), want_kiosk);
    assert!(
        kiosk
            .iter()
            .all(|e| s(e, field::SRC_SEGMENT) == Some("kiosk"))
    );

    let warnings = j.entries(&["-t", "cloison", "-p", "warning"]).unwrap();
    assert_eq!(
        warnings.len(),
        expected.iter().filter(|a| a.priority() <= 4).count()
    );
    assert!(
        warnings
            .iter()
            .all(|e| s(e, field::EVENT) != Some("config_applied"))
    );

    let id = EventKind::CrossSegment.message_id();
    let cross = j.entries(&[format!("MESSAGE_ID={id}")]).unwrap();
    assert_eq!(
        cross.len(),
        2,
        "the first alert and its summary: {cross:#?}"
    );
    assert_eq!(
        cross
            .iter()
            .filter(|e| s(e, field::SUMMARY) == Some("1"))
            .count(),
        1
    );
    let summary = cross
        .iter()
        .find(|e| s(e, field::SUMMARY) == Some("1"))
        .unwrap();
    assert_eq!(s(summary, field::PACKETS), Some("36"));
}

#[test]
fn catalog_explains_every_event_in_english_and_french() {
    if !root_or_skip("catalog_explains_every_event_in_english_and_french") {
        return;
    }
    let j = PrivateJournal::start().unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/cloison.catalog");
    j.install_catalog(&catalog).unwrap();
    let list = j.text(&["--list-catalog"]).unwrap();
    for kind in EventKind::ALL {
        assert!(
            list.contains(kind.message_id()),
            "{kind} is not in the catalog:\n{list}"
        );
    }
    run_helper(&j, "scenario");
    let text = j.text(&["-x", "-t", "cloison"]).unwrap();
    for needle in [
        "Subject: Blocked traffic between network segments",
        "Subject: ISOLATION BREACH",
        "Subject: Configuration rejected, the previous one stays in force",
        "Router mairie-lab blocked it",
        "check the kiosk's integrity",
    ] {
        assert!(text.contains(needle), "-x lacks {needle:?}:\n{text}");
    }
    // journalctl shows `cloison[PID]:` before each entry already: the subjects do not
    // repeat it.
    let source = std::fs::read_to_string(&catalog).unwrap();
    let subjects: Vec<(&str, &str)> = source
        .split("\n-- ")
        .skip(1)
        .filter_map(|entry| {
            let id = entry.lines().next()?;
            let subject = entry.lines().find_map(|l| l.strip_prefix("Subject: "))?;
            Some((id, subject))
        })
        .collect();
    assert_eq!(subjects.len(), 2 * EventKind::ALL.len(), "{subjects:?}");
    for (id, subject) in &subjects {
        assert!(
            !subject.to_lowercase().starts_with("cloison"),
            "{id}: the subject repeats the `cloison:` journalctl shows: {subject}"
        );
    }
    for kind in EventKind::ALL {
        let one = j
            .text(&["-x", &format!("MESSAGE_ID={}", kind.message_id())])
            .unwrap();
        let subject = subjects
            .iter()
            .find(|(id, _)| *id == kind.message_id())
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("{kind} has no subject in the catalog"));
        assert!(
            one.contains(&format!("Subject: {subject}")),
            "{kind}: no explanation:\n{one}"
        );
    }
    match j.text_in(&["-x", "-t", "cloison"], Some("fr_FR.UTF-8")) {
        Ok(fr) => {
            for needle in [
                "Subject: Trafic bloqué entre segments du réseau",
                "RUPTURE D'ISOLATION",
                "Le routeur mairie-lab l'a bloqué",
            ] {
                assert!(fr.contains(needle), "French -x lacks {needle:?}:\n{fr}");
            }
        }
        Err(e) => eprintln!("SKIP French catalog text: cannot build the fr_FR.UTF-8 locale: {e}"),
    }
}

#[test]
fn a_flood_through_journald_is_bounded_and_counted_exactly() {
    if !root_or_skip("a_flood_through_journald_is_bounded_and_counted_exactly") {
        return;
    }
    let j = PrivateJournal::start().unwrap();
    let out = run_helper(&j, "flood");
    let line = out
        .lines()
        .find_map(|l| l.split_once("EXPECT ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("{out}"));
    let expected: BTreeMap<String, u64> = serde_json::from_str(line).unwrap();
    assert_eq!(expected.values().sum::<u64>(), 120_000);
    let entries = j.entries(&["-t", "cloison"]).unwrap();
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        let k = s(e, field::EVENT).unwrap().to_owned();
        *sums.entry(k).or_default() += s(e, field::PACKETS).unwrap().parse::<u64>().unwrap();
    }
    assert_eq!(
        sums, expected,
        "CLOISON_PACKETS per event = packets counted"
    );
    // All of it within a few seconds: one minute's bound, plus at most one final entry
    // per kind at shutdown.
    assert!(
        entries.len() <= 120 + 3,
        "{} entries for a 4 s flood",
        entries.len()
    );
    assert!(
        entries.iter().any(|e| e.get(field::FOLDED_FLOWS).is_some()),
        "the bound bit and an entry says how many flows were folded"
    );
    eprintln!("flood: 120000 packets -> {} journal entries", entries.len());
}

#[test]
fn without_journald_alerts_are_json_lines_on_stderr() {
    if !root_or_skip("without_journald_alerts_are_json_lines_on_stderr") {
        return;
    }
    // A mount namespace whose /run is empty: no journald socket.
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs cloison-nojournal /run && exec "$@""#)
        .arg("sh")
        .arg(std::env::current_exe().unwrap());
    helper_args(&mut c, "scenario");
    let out = c.output().unwrap();
    assert_ok(&out, "helper without journald");
    let expected = scenario();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!("STATS journal=0 fallback={}", expected.len())),
        "{stdout}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for (a, v) in expected.iter().zip(&lines) {
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), a.journal_fields().count());
        for (k, val) in a.journal_fields() {
            assert_eq!(s(v, k), Some(val), "{k}");
        }
    }
}

#[test]
fn private_journal_leaves_nothing_behind() {
    if !root_or_skip("private_journal_leaves_nothing_behind") {
        return;
    }
    let mounts = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let before = mounts();
    let j = PrivateJournal::start().unwrap();
    let pid = j.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(j.journal_dir().exists(), "journal readable from the host");
    assert!(
        !mounts().contains("cloison-journal"),
        "nothing mounted on the host"
    );
    assert!(
        !Path::new("/run/systemd/journal/socket").exists() || before.contains("/run/systemd"),
        "the host's /run/systemd is untouched"
    );
    drop(j);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "journald is gone"
    );
    assert_eq!(mounts(), before);
}
