//! The fleet at scale: `--boxes N` (50) boxes, each the lab's mairie with `cloison run`,
//! its own journald, systemd-journal-upload (HTTPS) and prometheus-node-exporter, and one
//! collector with systemd-journal-remote and Prometheus (cloison_lab::fleet, the same as
//! tests/fleet.rs with 3). Then `--rounds R` (3) times: every kiosk floods at once
//! (`--packets P` (20000) UDP datagrams each), and the bench records
//!
//! - the collector's lag: for each box, from the time its journald wrote its last alert
//!   of the round (`__REALTIME_TIMESTAMP`) until the collector has every alert of the
//!   box (the collector is polled every `--poll-ms` (250), which bounds the resolution);
//! - Prometheus's lag: from the moment every box's `cloison metrics` is written until
//!   Prometheus's HTTP API returns every box's kiosk/mairie counter as written;
//! - journal-remote's and Prometheus's resident memory (peak sampled, and VmHWM) and CPU
//!   during the round;
//! - that nothing was lost: on the collector, per box, the sum of CLOISON_PACKETS equals
//!   the box's ruleset counter, with no entry missing or twice.
//!
//! Rounds are `--pause S` (65) seconds apart. Plus the fleet's build time and the memory of a box (journald, journal-upload, node
//! exporter, the daemon). Run as root: `cargo bench --bench fleet` (`--boxes 3` for a
//! quick look). It needs the Debian packages of tests/fleet.rs (installed when missing).

// The shared bench support does FFI and measurement arithmetic where the cast lints the
// product follows add noise, not safety; benches do not ship.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless,
    clippy::cast_precision_loss
)]
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cloison_lab::fleet::{Fleet, FleetOptions, comparable, packets_of, usage};
use serde_json::Value;
use support::*;

/// Per box, what the collector holds of the round: (entries, kiosk/mairie packets).
type Holdings = BTreeMap<String, (usize, u64)>;

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

struct Round {
    lag_max: f64,
    lag_median: f64,
    prom_lag: f64,
    jr_rss_peak: f64,
    jr_anon_peak: f64,
    jr_hwm: f64,
    prom_rss_peak: f64,
    jr_cpu: f64,
    prom_cpu: f64,
    window: f64,
    entries: usize,
    packets: u64,
    lost: u64,
}

fn main() {
    let Some(args) = Args::parse_as_root("fleet", "network namespaces, nftables, journald") else {
        return;
    };
    let boxes: usize = args.num("boxes", 50);
    let rounds: usize = args.num("rounds", 3);
    let packets: usize = args.num("packets", 20_000);
    let flows: u16 = args.num("flows", 100);
    let poll = Duration::from_millis(args.num("poll-ms", 250));
    // Rounds a minute apart: each starts with the daemons' per-minute bound of entries
    // fresh, so each sends the collector the same load.
    let pause = Duration::from_secs(args.num("pause", 65));
    println!("{}", describe_machine());
    let mem_before = mem_available_kib();
    let started = Instant::now();
    let options = FleetOptions {
        box_config: |_, text| text.replacen("summary_every = \"10s\"", "summary_every = \"1s\"", 1),
        ..FleetOptions::new(boxes)
    };
    let fleet = Fleet::up(&options, &programs()).unwrap_or_else(|e| panic!("{e:#?}"));
    let up = started.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let mem_after = mem_available_kib();
    let per_box = |pick: &dyn Fn(&cloison_lab::fleet::FleetBox) -> Option<u32>| {
        let v: Vec<f64> = fleet
            .boxes
            .iter()
            .filter_map(|b| pick(b).and_then(usage).map(|u| u.0 as f64 / 1024.0))
            .collect();
        spread(&v, 1)
    };
    println!(
        "fleet of {boxes} boxes up in {:.1} s; machine memory in use grew by {:.2} GiB",
        up.as_secs_f64(),
        (mem_before.saturating_sub(mem_after)) as f64 / 1024.0 / 1024.0
    );
    println!(
        "per box RSS MiB, median (min–max): journald {}, journal-upload {}, node exporter {}, cloison run {}",
        per_box(&|b| Some(b.rig.journal.pid())),
        per_box(&|b| b.uploader_pid()),
        per_box(&|b| b.exporter_pid()),
        per_box(&|b| b.rig.daemon_pid()),
    );

    let mut results = Vec::new();
    for r in 1..=rounds {
        if r > 1 {
            std::thread::sleep(pause);
        }
        let load = loadavg();
        let round = round(&fleet, packets, flows, poll);
        println!(
            "round {r} (load {load:.1}): {} entries, {} packets on the collector, {} lost; collector lag max {:.2} s (median {:.2} s); Prometheus lag {:.2} s; journal-remote RSS peak {:.0} MiB (anonymous {:.0}, VmHWM {:.0}), CPU {:.2} s; Prometheus RSS peak {:.0} MiB, CPU {:.2} s; window {:.1} s",
            round.entries,
            round.packets,
            round.lost,
            round.lag_max,
            round.lag_median,
            round.prom_lag,
            round.jr_rss_peak,
            round.jr_anon_peak,
            round.jr_hwm,
            round.jr_cpu,
            round.prom_rss_peak,
            round.prom_cpu,
            round.window,
        );
        results.push(round);
    }
    let col = |f: &dyn Fn(&Round) -> f64| results.iter().map(f).collect::<Vec<f64>>();
    println!(
        "\n| N = {boxes}, {rounds} rounds of {packets} packets in {flows} flows a box, all boxes at once | median (min–max) |"
    );
    println!("|---|---|");
    for (what, v, prec) in [
        ("collector lag, slowest box (s)", col(&|r| r.lag_max), 2),
        ("collector lag, median box (s)", col(&|r| r.lag_median), 2),
        (
            "Prometheus lag after the metrics are written (s)",
            col(&|r| r.prom_lag),
            2,
        ),
        (
            "journal-remote RSS, peak sampled (MiB)",
            col(&|r| r.jr_rss_peak),
            0,
        ),
        (
            "journal-remote RSS, anonymous part, peak sampled (MiB)",
            col(&|r| r.jr_anon_peak),
            0,
        ),
        ("journal-remote VmHWM (MiB)", col(&|r| r.jr_hwm), 0),
        ("journal-remote CPU in the round (s)", col(&|r| r.jr_cpu), 2),
        (
            "journal-remote CPU, % of one core over the round",
            col(&|r| r.jr_cpu / r.window * 100.0),
            1,
        ),
        (
            "Prometheus RSS, peak sampled (MiB)",
            col(&|r| r.prom_rss_peak),
            0,
        ),
        ("Prometheus CPU in the round (s)", col(&|r| r.prom_cpu), 2),
        (
            "Prometheus CPU, % of one core over the round",
            col(&|r| r.prom_cpu / r.window * 100.0),
            1,
        ),
        ("round (flood to last check) (s)", col(&|r| r.window), 1),
        (
            "packets lost between the boxes and the collector",
            col(&|r| r.lost as f64),
            0,
        ),
    ] {
        println!("| {what} | {} |", spread(&v, prec));
    }
    let disk = dir_size(&fleet.collector.journal_dir());
    println!(
        "collector journal files: {:.0} MiB on disk for {boxes} boxes",
        disk as f64 / 1024.0 / 1024.0
    );
    assert!(
        results.iter().all(|r| r.lost == 0),
        "packets lost between the boxes and the collector"
    );
}

fn round(fleet: &Fleet, packets: usize, flows: u16, poll: Duration) -> Round {
    let since = now_unix();
    let jr = fleet.collector.journal_remote.as_ref().unwrap().id();
    let prom = fleet.collector.prometheus.as_ref().unwrap().id();
    let (jr0, prom0) = (usage(jr).unwrap(), usage(prom).unwrap());
    // The collector's holdings, polled in the background with the time of each poll.
    let stop = Arc::new(AtomicBool::new(false));
    let history: Arc<Mutex<Vec<(f64, Holdings)>>> = Arc::default();
    // journal-remote's RSS, its anonymous part (the rest maps its journal files), and
    // Prometheus's RSS, peaks in MiB.
    let peaks: Arc<Mutex<(f64, f64, f64)>> = Arc::default();
    let poller = {
        let (stop, history, peaks) = (Arc::clone(&stop), Arc::clone(&history), Arc::clone(&peaks));
        let dir = fleet.collector.journal_dir();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = now_unix();
                let out = std::process::Command::new("journalctl")
                    .arg(format!("--directory={}", dir.display()))
                    .args([
                        "-o",
                        "json",
                        "--all",
                        "--no-pager",
                        "SYSLOG_IDENTIFIER=cloison",
                    ])
                    .arg(format!("--since=@{}", since.floor()))
                    .output()
                    .expect("journalctl");
                let mut h = Holdings::new();
                for e in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|e| realtime(e) >= since)
                {
                    let slot = h
                        .entry(e["_HOSTNAME"].as_str().unwrap_or("?").to_owned())
                        .or_default();
                    slot.0 += 1;
                    slot.1 += packets_of(std::slice::from_ref(&e), "kiosk/mairie");
                }
                history.lock().unwrap().push((t, h));
                let mut p = peaks.lock().unwrap();
                p.0 = p.0.max(usage(jr).map_or(0.0, |u| u.0 as f64 / 1024.0));
                p.1 = p.1.max(usage(prom).map_or(0.0, |u| u.0 as f64 / 1024.0));
                p.2 = p.2.max(rss_anon_kib(jr) as f64 / 1024.0);
                drop(p);
                std::thread::sleep(poll);
            }
        })
    };
    let t0 = Instant::now();
    fleet.flood(packets, flows).expect("flood");
    let late = fleet.wait_each(Duration::from_secs(120), |b| b.accounted("kiosk/mairie"));
    assert!(
        late.is_empty(),
        "the journals of {late:?} do not account for the flood"
    );
    // Each box's alerts of the round, and when its journald wrote the last one.
    let mut want: Holdings = BTreeMap::new();
    let mut last_written: BTreeMap<String, f64> = BTreeMap::new();
    let mut local: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in &fleet.boxes {
        let alerts: Vec<Value> = b
            .alerts()
            .unwrap()
            .into_iter()
            .filter(|e| realtime(e) >= since)
            .collect();
        want.insert(
            b.name.clone(),
            (alerts.len(), packets_of(&alerts, "kiosk/mairie")),
        );
        last_written.insert(
            b.name.clone(),
            alerts.iter().map(realtime).fold(0.0, f64::max),
        );
        local.insert(b.name.clone(), alerts);
    }
    // Wait for the collector to hold all of them.
    let deadline = Instant::now() + Duration::from_secs(120);
    let arrived: BTreeMap<String, f64> = loop {
        let h = history.lock().unwrap();
        let arrived: BTreeMap<String, f64> = want
            .iter()
            .filter_map(|(name, w)| {
                let t = h.iter().find(|(_, hold)| hold.get(name) == Some(w))?.0;
                Some((name.clone(), t))
            })
            .collect();
        drop(h);
        if arrived.len() == want.len() || Instant::now() > deadline {
            break arrived;
        }
        std::thread::sleep(poll);
    };
    // Prometheus: every box's metrics written, then until it shows them all.
    for b in &fleet.boxes {
        b.write_metrics().expect("cloison metrics");
    }
    let written = Instant::now();
    let want_prom: BTreeMap<String, f64> = fleet
        .boxes
        .iter()
        .map(|b| {
            let text = std::fs::read_to_string(b.textfile_dir().join("cloison.prom")).unwrap();
            let v = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix(r#"cloison_dropped_packets_total{from="kiosk",to="mairie"} "#)
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            (b.name.clone(), v)
        })
        .collect();
    let q = r#"cloison_dropped_packets_total{from="kiosk",to="mairie"} * on(instance) group_left(router) cloison_config_info"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    while fleet.collector.values_by(q, "router").unwrap_or_default() != want_prom {
        assert!(
            Instant::now() < deadline,
            "Prometheus never showed every box's counter"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let prom_lag = written.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let window = t0.elapsed().as_secs_f64();
    let (jr1, prom1) = (usage(jr).unwrap(), usage(prom).unwrap());

    // Nothing lost: every box's alerts, field for field, once, and its counter.
    let remote = fleet.collector.alerts_by_box().unwrap();
    let mut lost = 0;
    let mut entries = 0;
    let mut total = 0;
    for b in &fleet.boxes {
        let theirs: Vec<Value> = remote
            .get(&b.name)
            .map(|v| {
                v.iter()
                    .filter(|e| realtime(e) >= since)
                    .map(comparable)
                    .collect()
            })
            .unwrap_or_default();
        let mine: Vec<Value> = local[&b.name].iter().map(comparable).collect();
        let missing = mine.iter().filter(|e| !theirs.contains(e)).count();
        assert_eq!(
            missing, 0,
            "{}: {missing} alerts missing or altered on the collector",
            b.name
        );
        assert_eq!(
            theirs.len(),
            mine.len(),
            "{}: duplicates on the collector",
            b.name
        );
        let (status, _) = b.status().unwrap();
        let counted = status["counters"]["kiosk/mairie"]["packets"]
            .as_u64()
            .unwrap();
        let all_theirs = remote.get(&b.name).cloned().unwrap_or_default();
        lost += counted.saturating_sub(packets_of(&all_theirs, "kiosk/mairie"));
        entries += theirs.len();
        total += packets_of(&theirs, "kiosk/mairie");
    }
    let lags: Vec<f64> = arrived
        .iter()
        .map(|(name, t)| (t - last_written[name]).max(0.0))
        .collect();
    assert_eq!(
        lags.len(),
        want.len(),
        "every box's alerts reached the collector"
    );
    let peaks = *peaks.lock().unwrap();
    Round {
        lag_max: max(&lags),
        lag_median: median(&lags),
        prom_lag,
        jr_rss_peak: peaks.0,
        jr_anon_peak: peaks.2,
        jr_hwm: jr1.1 as f64 / 1024.0,
        prom_rss_peak: peaks.1,
        jr_cpu: (jr1.2 - jr0.2).as_secs_f64(),
        prom_cpu: (prom1.2 - prom0.2).as_secs_f64(),
        window,
        entries,
        packets: total,
        lost,
    }
}

/// `__REALTIME_TIMESTAMP` in Unix seconds.
fn realtime(e: &Value) -> f64 {
    e["__REALTIME_TIMESTAMP"]
        .as_str()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0.0, |us| us as f64 / 1e6)
}

/// RssAnon of a process, KiB (its resident memory that maps no file).
fn rss_anon_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.blocks() * 512)
                .sum()
        })
        .unwrap_or(0)
}
