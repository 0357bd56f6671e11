//! `cloison report` on the journal of a real lab run: the lab's mairie, a private
//! journald and `cloison run` (the rig), a short story (an SMB and RDP scan of the mairie
//! server, ssh to the router, a forged ARP reply, the table removed from outside), then
//! the report made from that journal with `--directory`. Its figures must be the ones
//! `journalctl` gives; and the page, opened in headless Chromium, must show the matrix,
//! the diagram and the figures, and print to a PDF of a few A4 pages.
//!
//! The isolation check in the report is a real `cloison verify` run on the lab, after the
//! daemon repaired the table.
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

/// What the story's `cloison verify` run reported: its probes, and those from the kiosk
/// to the mairie (all blocked).
struct Verified {
    probes: u64,
    kiosk_to_mairie: u64,
}

/// The story: the rig, the attacks, a drift (repaired), a real verify run, the daemon
/// stopped (its last summaries written).
fn lab_story() -> (Setup, Verified) {
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
    let deadline = Instant::now() + ALERTS;
    while !rig
        .nft(&["list", "table", "inet", "cloison"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the table was not repaired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = rig
        .cloison_journaled(&["verify", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kiosk_to_mairie = doc["result"]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["from"] == "kiosk" && p["to"] == "mairie")
        .map(|p| p["probes"].as_u64().unwrap())
        .sum();
    let verified = Verified {
        probes: doc["probes"].as_u64().unwrap(),
        kiosk_to_mairie,
    };
    rig.wait_event("verify_passed", ALERTS);
    assert_eq!(rig.stop(READY).unwrap(), Some(0), "{}", rig.log());
    (rig, verified)
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
    /// Entries about cloison verify's probes.
    verify_probes: u64,
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
        if s(&e, field::TECHNIQUE) == Some("verify_probe") {
            // cloison verify's own probes: the report keeps them out of the alerts.
            f.verify_probes += 1;
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
    let (rig, verified) = lab_story();
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

    assert!(
        want.verify_probes > 0,
        "the daemon alerted no probe of the verify run as such"
    );
    for lang in ["en", "fr"] {
        let (_, html) = report(&rig, dir.path(), lang);
        assert!(
            html.contains("id=\"verify-probes\""),
            "{lang}: the probes are said to be left out"
        );
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
        assert_eq!(digits(&history[0].1[2]), verified.probes);
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
    let (rig, verified) = lab_story();
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
        format!("{} essais, tous bloqués.", verified.kiosk_to_mairie),
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
    // A few pages to file: the lab's real verify run gives 19 lines of matrix (3 segments,
    // each toward the router, the others, private space and the Internet), 6 pages in all.
    assert!((1..=6).contains(&pages), "{pages} pages");
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
