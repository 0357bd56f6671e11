//! `cloison report` on the journal of a real lab run: the lab's mairie, a private
//! journald and `cloison run` (the rig), a short story (an SMB and RDP scan of the mairie
//! server, ssh to the router, a forged ARP reply, the table removed from outside), then
//! the report made from that journal with `--directory`. Its figures must be the ones
//! `journalctl` gives; and the page, opened in headless Chromium, must show the matrix,
//! the diagram and the figures, and print to a PDF of a few A4 pages.
//!
//! `cloison verify` does not exist yet: its entries are written into the lab's journal
//! here exactly as its contract says (docs/alerts.md), with `logger --journald`.
//!
//! Needs root (namespaces, nftables, journald) and Chromium (Debian's `chromium`,
//! installed when missing). Set CLOISON_REPORT_SCREENSHOT=docs/report.png to refresh the
//! README's picture from this run.

// Tests build frames and pids from small numbers; the product's cast lints would only
// add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloison_core::alert::field;
use cloison_lab::scenario::{Mairie, Part, StepId};
use common::daemon::{Setup, setup};
use common::require_root;
use serde_json::Value;

const READY: Duration = Duration::from_secs(30);
const ALERTS: Duration = Duration::from_secs(15);
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// A verify run of the lab's configuration, as `cloison verify` will journal it.
const VERIFY_RESULT: &str = r#"{"version":1,"pairs":[{"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":24,"failures":[]},{"from":"kiosk","to":"poste","expected":"blocked","reason":"[[forbid]] kiosk -> poste","probes":24,"as_expected":24,"failures":[]},{"from":"kiosk","to":"router","expected":"blocked","reason":"kiosk may use dns, dhcp","probes":8,"as_expected":8,"failures":[]},{"from":"kiosk","to":"internet","expected":"allowed","reason":"uplink laposte","probes":3,"as_expected":3,"failures":[]},{"from":"poste","to":"mairie","expected":"blocked","reason":"[[forbid]] poste -> mairie","probes":24,"as_expected":24,"failures":[]},{"from":"poste","to":"kiosk","expected":"blocked","reason":"no [[allow]] poste -> kiosk","probes":24,"as_expected":24,"failures":[]},{"from":"mairie","to":"kiosk","expected":"allowed","reason":"[[allow]] mairie -> kiosk tcp/5900","probes":1,"as_expected":1,"failures":[]},{"from":"mairie","to":"poste","expected":"blocked","reason":"no [[allow]] mairie -> poste","probes":24,"as_expected":24,"failures":[]}]}"#;
const VERIFY_PROBES: u64 = 24 * 6 + 8 + 3 + 1;

/// The story: the rig, the attacks, a drift, the daemon stopped (its last summaries
/// written), and a verify run in the journal.
fn lab_story() -> Setup {
    let mut rig = setup();
    rig.start();
    rig.wait_notify("READY=1", READY);
    let config = cloison::config_file::load(&rig.config_path())
        .unwrap()
        .config;
    let mairie = Mairie::new(&rig, &config).unwrap();
    for part in [Part::Scan, Part::Router, Part::Arp] {
        let step = mairie
            .play(StepId::Attack(part), &mut |_| {})
            .unwrap_or_else(|e| panic!("{part:?}: {e}"));
        assert!(step.ok, "{part:?} crossed: {}", step.seen);
        let deadline = Instant::now() + ALERTS;
        for want in &step.expected {
            while !rig.events(want.event).iter().any(|e| want.matches(e)) {
                assert!(Instant::now() < deadline, "no {want} in the journal");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let out = rig.nft(&["delete", "table", "inet", "cloison"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rig.wait_event("ruleset_drift", ALERTS);
    assert_eq!(rig.stop(READY).unwrap(), Some(0), "{}", rig.log());
    journal_verify(&rig, "verify_passed", "5", VERIFY_PROBES, 0, VERIFY_RESULT);
    rig
}

/// Writes a `verify_*` entry into the rig's journal, as the contract says.
fn journal_verify(
    rig: &Setup,
    event: &str,
    priority: &str,
    probes: u64,
    failures: u64,
    result: &str,
) {
    let hash = cloison_core::hash::Hash::of(&std::fs::read(rig.config_path()).unwrap());
    let kind = cloison_core::alert::event::EventKind::parse(event).unwrap();
    let fields = [
        (
            "MESSAGE",
            format!("isolation {event}: {probes} probes, {failures} failures"),
        ),
        ("MESSAGE_ID", kind.message_id().to_owned()),
        ("PRIORITY", priority.to_owned()),
        ("SYSLOG_IDENTIFIER", "cloison".to_owned()),
        (field::EVENT, event.to_owned()),
        (field::ROUTER, "mairie-lab".to_owned()),
        (field::CONFIG_HASH, hash.to_string()),
        (field::VERIFY_PROBES, probes.to_string()),
        (field::VERIFY_FAILURES, failures.to_string()),
        (field::VERIFY_RESULT, result.to_owned()),
    ];
    let input: String = fields.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let mut child = rig
        .journal
        .command("logger")
        .arg("--journald")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run logger");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "logger --journald failed");
    let deadline = Instant::now() + ALERTS;
    while rig.events(event).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the {event} entry is not in the journal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cloison report` on the rig's journal; the page.
fn report(rig: &Setup, dir: &Path, lang: &str) -> (PathBuf, String) {
    let path = dir.join(format!("report-{lang}.html"));
    let out = Command::new(&rig.programs().cloison)
        .args(["report", "--since", "1h", "--lang", lang, "-c"])
        .arg(rig.config_path())
        .arg("--directory")
        .arg(rig.journal.journal_dir())
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cloison report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("latest check passed"), "{stdout}");
    let html = std::fs::read_to_string(&path).unwrap();
    (path, html)
}

fn s<'a>(e: &'a Value, k: &str) -> Option<&'a str> {
    e.get(k).and_then(Value::as_str)
}

/// The figures as `journalctl` gives them: per kind and per (from, to, kind), entries
/// and packets; daemon events per kind.
#[derive(Debug, Default)]
struct Figures {
    kinds: BTreeMap<String, (u64, u64)>,
    routes: BTreeMap<(String, String, String), (u64, u64)>,
    events: BTreeMap<String, u64>,
}

fn figures(rig: &Setup) -> Figures {
    let mut f = Figures::default();
    for e in rig.journal.entries(&["-t", "cloison"]).unwrap() {
        let Some(kind) = s(&e, field::EVENT) else {
            continue;
        };
        *f.events.entry(kind.to_owned()).or_default() += 1;
        if s(&e, field::VERDICT).is_none() {
            continue;
        }
        let packets: u64 = s(&e, field::PACKETS).unwrap().parse().unwrap();
        let counter = s(&e, field::COUNTER).and_then(|c| c.split_once('/'));
        let from = s(&e, field::SRC_SEGMENT)
            .or(counter.map(|c| c.0))
            .unwrap_or("");
        let to = s(&e, field::DST_SEGMENT)
            .or(counter.map(|c| c.1))
            .or((kind == "router_access").then_some("router"))
            .unwrap_or("");
        let k = f.kinds.entry(kind.to_owned()).or_default();
        k.0 += 1;
        k.1 += packets;
        let r = f
            .routes
            .entry((from.to_owned(), to.to_owned(), kind.to_owned()))
            .or_default();
        r.0 += 1;
        r.1 += packets;
    }
    f
}

/// The rows of table `id`: each row's `data-*` attributes and its cells' text.
fn rows(html: &str, id: &str) -> Vec<(BTreeMap<String, String>, Vec<String>)> {
    let start = html
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no table {id}"));
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            let tag = &row[..row.find('>').unwrap()];
            let attrs = tag
                .split(" data-")
                .skip(1)
                .filter_map(|a| {
                    let (k, v) = a.split_once("=\"")?;
                    Some((k.to_owned(), unescape(&v[..v.find('"')?])))
                })
                .collect();
            let cells = row
                .split("<td")
                .skip(1)
                .map(|c| unescape(&strip_tags(&c[c.find('>').unwrap() + 1..])))
                .collect();
            (attrs, cells)
        })
        .collect()
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn digits(s: &str) -> u64 {
    s.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number in {s:?}"))
}

/// `50 009` as the French page writes it.
fn fr_number(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_report_of_a_lab_run_shows_the_journals_figures() {
    if !require_root("the_report_of_a_lab_run_shows_the_journals_figures") {
        return;
    }
    let rig = lab_story();
    let dir = tempfile::tempdir().unwrap();
    let want = figures(&rig);
    // The story gave something to count, of each section's kind.
    for kind in [
        "cross_segment",
        "router_access",
        "arp_spoof",
        "config_applied",
        "ruleset_drift",
        "verify_passed",
    ] {
        assert!(
            want.events.contains_key(kind),
            "no {kind} in the journal: {want:?}"
        );
    }

    for lang in ["en", "fr"] {
        let (_, html) = report(&rig, dir.path(), lang);
        let by_kind = rows(&html, "alerts-by-kind");
        assert_eq!(by_kind.len(), want.kinds.len(), "{lang}: {by_kind:?}");
        for (attrs, cells) in &by_kind {
            let kind = &attrs["kind"];
            let (entries, packets) = want.kinds[kind];
            assert_eq!(digits(&cells[1]), entries, "{lang}: {kind} entries");
            assert_eq!(digits(&cells[2]), packets, "{lang}: {kind} packets");
        }
        let by_route = rows(&html, "alerts-by-route");
        assert_eq!(by_route.len(), want.routes.len(), "{lang}: {by_route:?}");
        for (attrs, cells) in &by_route {
            let key = (
                attrs["from"].clone(),
                attrs["to"].clone(),
                attrs["kind"].clone(),
            );
            let (entries, packets) = want.routes[&key];
            assert_eq!(digits(&cells[3]), entries, "{lang}: {key:?} entries");
            assert_eq!(digits(&cells[4]), packets, "{lang}: {key:?} packets");
        }
        let changes = rows(&html, "changes-table");
        for kind in ["config_applied", "config_rejected", "ruleset_drift"] {
            let shown = changes.iter().filter(|(a, _)| a["kind"] == kind).count() as u64;
            assert_eq!(
                shown,
                want.events.get(kind).copied().unwrap_or(0),
                "{lang}: {kind} rows"
            );
        }
        let history = rows(&html, "verify-history");
        assert_eq!(history.len(), 1);
        assert_eq!(digits(&history[0].1[2]), VERIFY_PROBES);
    }

    // The French page's sentences, with the journal's totals.
    let (_, html) = report(&rig, dir.path(), "fr");
    let entries: u64 = want.kinds.values().map(|k| k.0).sum();
    let blocked: u64 = ["cross_segment", "router_access", "spoofed_source"]
        .iter()
        .filter_map(|k| want.kinds.get(*k))
        .map(|k| k.1)
        .sum();
    let glance = format!(
        "{} alertes pendant la période, {} paquets bloqués.",
        fr_number(entries),
        fr_number(blocked)
    );
    assert!(html.contains(&glance), "no {glance:?}");
    assert!(html.contains(
        "Le poste public France Services ne peut pas joindre le réseau de la mairie : vérifié le "
    ));
    assert!(html.contains("Isolement <b>vérifié</b> le "));
}

/// Chromium, headless, as a reader's browser: `--dump-dom`, `--print-to-pdf`,
/// `--screenshot`. Returns its stdout.
fn chromium(profile: &Path, args: &[&str], page: &Path) -> Vec<u8> {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chromium");
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Installs Debian's chromium when it is missing (the test runs as root, as in CI).
fn ensure_chromium() {
    let have = Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return;
    }
    eprintln!("installing Debian's chromium for the report test");
    let out = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("run apt-get");
    assert!(
        out.status.success(),
        "apt-get install chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Text of the DOM's body, tags removed, whitespace folded.
fn visible_text(dom: &str) -> String {
    let body = &dom[dom.find("<body").expect("a body")..];
    let spaced = body.replace('<', " <").replace('>', "> ");
    unescape(&strip_tags(&spaced))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Pages of a PDF and the size of the first (points).
fn pdf_pages(pdf: &[u8]) -> (usize, Option<(f64, f64)>) {
    let text = String::from_utf8_lossy(pdf);
    let pages = text
        .match_indices("/Type /Page")
        .filter(|(i, _)| !text[i + "/Type /Page".len()..].starts_with('s'))
        .count();
    let size = text.find("/MediaBox [").and_then(|i| {
        let nums: Vec<f64> = text[i + "/MediaBox [".len()..]
            .split(']')
            .next()?
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        (nums.len() == 4).then(|| (nums[2] - nums[0], nums[3] - nums[1]))
    });
    (pages, size)
}

#[test]
fn the_lab_report_reads_and_prints_in_chromium() {
    if !require_root("the_lab_report_reads_and_prints_in_chromium") {
        return;
    }
    ensure_chromium();
    let rig = lab_story();
    let want = figures(&rig);
    let dir = tempfile::tempdir().unwrap();
    let (page, _) = report(&rig, dir.path(), "fr");
    let profile = dir.path().join("chromium-profile");

    let dom = String::from_utf8(chromium(&profile, &["--dump-dom"], &page)).unwrap();
    let text = visible_text(&dom);
    let entries: u64 = want.kinds.values().map(|k| k.0).sum();
    let cross = want.kinds["cross_segment"];
    for needle in [
        // The matrix, in words.
        "✓ Le poste public France Services ne peut pas joindre le réseau de la mairie : vérifié le"
            .to_owned(),
        "24 essais, tous bloqués.".to_owned(),
        "✓ Le réseau de la mairie peut joindre le poste public France Services, comme prévu"
            .to_owned(),
        // The diagram's segments and uplinks.
        "le guichet La Poste".to_owned(),
        "kiosk · seg-kiosk".to_owned(),
        "mairie · seg-mairie".to_owned(),
        "isp · wan0".to_owned(),
        "la ligne La Poste".to_owned(),
        "Routeur cloison « mairie-lab »".to_owned(),
        // The figures.
        format!("{} alertes pendant la période", fr_number(entries)),
        format!(
            "Passage entre segments, bloqué cross_segment {} {}",
            fr_number(cross.0),
            fr_number(cross.1)
        ),
        "Règles modifiées hors de cloison".to_owned(),
        // What each kind means, from the catalog.
        "Le routeur mairie-lab l'a bloqué".to_owned(),
    ] {
        assert!(
            text.contains(&needle),
            "the page does not show {needle:?}:\n{text}"
        );
    }

    let pdf_path = dir.path().join("report.pdf");
    chromium(
        &profile,
        &[
            &format!("--print-to-pdf={}", pdf_path.display()),
            "--no-pdf-header-footer",
        ],
        &page,
    );
    let pdf = std::fs::read(&pdf_path).unwrap();
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let (pages, size) = pdf_pages(&pdf);
    assert!((1..=5).contains(&pages), "{pages} pages");
    let (w, h) = size.expect("a MediaBox");
    assert!(
        (w - 595.0).abs() < 2.0 && (h - 842.0).abs() < 2.0,
        "not A4: {w} x {h} points"
    );
    eprintln!("report.pdf: {pages} A4 pages, {} bytes", pdf.len());

    let png_path = dir.path().join("report.png");
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", png_path.display()),
            "--window-size=820,1780",
            "--hide-scrollbars",
        ],
        &page,
    );
    let png = std::fs::read(&png_path).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if let Some(to) = std::env::var_os("CLOISON_REPORT_SCREENSHOT") {
        std::fs::copy(&png_path, &to).unwrap();
        eprintln!("screenshot written to {}", Path::new(&to).display());
    }
}
