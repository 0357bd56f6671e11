//! The soak (issue 18): `cloison run` in the lab for `--minutes` (60), one round a
//! minute of everything that happens to a router in its life, and the checks that must
//! hold at the end:
//!
//! - a blocked flood, kiosk -> mairie-srv, a new UDP port each datagram (10 s, as fast as
//!   one thread sends);
//! - a layer-2 flood from the kiosk, paced at `--l2-rate` (20,000) frames a second for
//!   10 s: ARP replies claiming the router from 65,536 MACs, then double-tagged frames,
//!   every other round;
//! - a reload by SIGHUP, the policy toggled (an allow added, then removed);
//! - a drift: another tool deletes the table, or inserts an `accept` in it, every other
//!   round; the daemon must repair it;
//! - `cloison verify`, which must pass;
//! - a sample of the daemon: RSS, open file descriptors, threads, entries written.
//!
//! At the end (SIGTERM, which flushes every count): exit status 0; RSS and descriptors
//! flat (the last round no higher than the first ten rounds' highest, descriptors no more
//! than at the first); no sliding minute with more entries than the
//! bound (`max_per_minute` of config/lab.toml, plus the shutdown flush); for each kind the
//! capture counts, the entries add up to exactly the frames a mirror socket of the bench
//! found (`cloison_lab::mirror`, open on every capture point for the whole run); for each
//! kind the ruleset counts, exactly the kernel's counters.
//!
//! Run as root: `cargo bench -p cloison-lab --bench soak -- --minutes 60`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use cloison_core::alert::event::EventKind;
use cloison_core::alert::{CounterClass, Names, counter_backed};
use cloison_lab::frames as fixtures;
use cloison_lab::mirror::Mirror;
use cloison_lab::rig::Rig;
use cloison_lab::{HOST_IF, Node};
use nix::sys::signal::Signal;
use support::*;

/// One sample of the daemon, at the end of a round.
struct Sample {
    minute: f64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
    entries: usize,
    repairs: u64,
    verify: &'static str,
    verify_secs: f64,
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn status(rig: &Rig) -> serde_json::Value {
    let out = rig.cloison(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// ARP replies claiming the router from `n` different MACs, or double-tagged frames.
fn l2_frames(rig: &Rig, round: usize) -> Vec<Vec<u8>> {
    let router = rig.lab.mac(Node::Router, "seg-kiosk").expect("router MAC");
    let gw = Ipv4Addr::new(192, 168, 20, 1);
    if round % 2 == 0 {
        (0..=u16::MAX)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                let mac = [0x02, 0x5e, 0x00, 0x20, hi, lo];
                fixtures::arp_reply(mac, gw, router, gw)
            })
            .collect()
    } else {
        let kiosk = rig.lab.mac(Node::Kiosk, HOST_IF).expect("kiosk MAC");
        let inner = fixtures::ipv4_frame(
            kiosk,
            router,
            &fixtures::tcp4_packet(
                cloison_lab::frames::wire::Ipv4::new(
                    Ipv4Addr::new(192, 168, 20, 15),
                    Ipv4Addr::new(192, 168, 10, 5),
                    cloison_lab::frames::wire::IPPROTO_TCP,
                ),
                445,
                cloison_lab::frames::wire::TCP_SYN,
            ),
        );
        vec![fixtures::dot1q(&fixtures::dot1q(&inner, 10), 20)]
    }
}

/// Entries in the busiest sliding minute, by the times cloison wrote them.
fn busiest_minute(entries: &[serde_json::Value]) -> usize {
    let mut t: Vec<u64> = entries
        .iter()
        .filter_map(|e| {
            e["_SOURCE_REALTIME_TIMESTAMP"]
                .as_str()
                .or(e["__REALTIME_TIMESTAMP"].as_str())
                .and_then(|v| v.parse().ok())
        })
        .collect();
    t.sort_unstable();
    (0..t.len())
        .map(|i| {
            t[i..]
                .iter()
                .take_while(|u| **u < t[i] + 60_000_000)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn main() {
    let Some(args) = Args::parse_as_root("soak", "network namespaces and nftables") else {
        return;
    };
    let minutes: f64 = args.num("minutes", if args.quick { 3.0 } else { 60.0 });
    let l2_rate: f64 = args.num("l2-rate", 20_000.0);
    println!("{}", describe_machine());
    println!("soak: {minutes} minutes, one round a minute; layer-2 floods at {l2_rate} frames/s");

    let (config, mut rig) = lab_rig();
    let router = rig.lab.ns(Node::Router).to_owned();
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    let srv = rig.lab.v4(Node::MairieSrv).expect("mairie-srv");
    let mirror = Mirror::start(&router, &config).unwrap_or_else(|e| panic!("{e:#?}"));
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    let pid = rig.daemon.as_ref().expect("started").id();

    let plain = lab_config_text();
    let with_allow = plain.replacen(
        "[[forbid]]",
        "[[allow]]\nfrom = \"mairie\"\nto = \"poste\"\nproto = \"tcp\"\nports = [80]\n\n[[forbid]]",
        1,
    );
    let started = Instant::now();
    let mut samples = Vec::new();
    let (mut blocked_sent, mut l2_sent, mut reloads, mut drifts) = (0u64, 0u64, 0u64, 0u64);
    let mut verify_failures = Vec::new();
    let mut round = 0usize;
    while started.elapsed().as_secs_f64() < minutes * 60.0 {
        let round_start = Instant::now();
        round += 1;

        let flood = udp_flood(&kiosk, SocketAddrV4::new(srv, 9), 18, Ports::Spread);
        std::thread::sleep(Duration::from_secs(10));
        blocked_sent += flood.stop();

        let flood = frame_flood(&kiosk, HOST_IF, l2_frames(&rig, round), Some(l2_rate));
        std::thread::sleep(Duration::from_secs(10));
        l2_sent += flood.stop();

        rig.write_config(if round % 2 == 1 { &with_allow } else { &plain });
        rig.signal(Signal::SIGHUP);
        rig.wait_notify("RELOADING=1", Duration::from_secs(10));
        rig.wait_notify("READY=1", Duration::from_secs(30));
        reloads += 1;

        let repairs_before = status(&rig)["daemon"]["drift_repairs"]
            .as_u64()
            .unwrap_or(0);
        let out = if round % 2 == 1 {
            rig.nft(&["delete", "table", "inet", "cloison"])
        } else {
            rig.nft(&["insert", "rule", "inet", "cloison", "forward", "accept"])
        };
        assert!(out.status.success(), "drift: {out:?}");
        drifts += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        let repairs = loop {
            let r = status(&rig)["daemon"]["drift_repairs"]
                .as_u64()
                .unwrap_or(0);
            if r > repairs_before {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the drift was not repaired in 10 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        };

        let t = Instant::now();
        let out = rig
            .cloison_journaled(&["verify"])
            .output()
            .expect("run cloison verify");
        let verify_secs = t.elapsed().as_secs_f64();
        let verify = if out.status.success() {
            "passed"
        } else {
            verify_failures.push((round, String::from_utf8_lossy(&out.stdout).into_owned()));
            "FAILED"
        };

        let entries = rig
            .journal
            .entries(&["-t", "cloison"])
            .map_or(0, |e| e.len());
        let m = mem(pid);
        let s = Sample {
            minute: started.elapsed().as_secs_f64() / 60.0,
            rss_kib: m.rss_kib,
            fds: fds(pid),
            threads: threads(pid),
            entries,
            repairs,
            verify,
            verify_secs,
        };
        println!(
            "round {round:>3} at {:5.1} min: RSS {:>6} KiB, fds {:>3}, threads {:>2}, entries {:>6}, drift repairs {:>3}, verify {} in {:.1} s; load {:.2}",
            s.minute,
            s.rss_kib,
            s.fds,
            s.threads,
            s.entries,
            s.repairs,
            s.verify,
            s.verify_secs,
            loadavg()
        );
        samples.push(s);
        if let Some(rest) = Duration::from_secs(60).checked_sub(round_start.elapsed()) {
            std::thread::sleep(rest);
        }
    }

    // The end: a quiet moment, then SIGTERM flushes every count.
    std::thread::sleep(Duration::from_secs(3));
    let hwm = mem(pid).hwm_kib;
    rig.signal(Signal::SIGTERM);
    let exit = rig.wait_exit(Duration::from_secs(30));
    let seen = mirror.stop();
    let counters = nft_counters(&router);
    let entries = rig.journal.entries(&["-t", "cloison"]).unwrap_or_default();
    let log = rig.log();

    let mut per_kind: BTreeMap<String, u64> = BTreeMap::new();
    for e in &entries {
        if let (Some(k), Some(p)) = (e["CLOISON_EVENT"].as_str(), e["CLOISON_PACKETS"].as_str()) {
            *per_kind.entry(k.to_owned()).or_default() += p.parse::<u64>().unwrap_or(0);
        }
    }
    let names = Names::from_config(&config, "mairie-lab");
    let mut kernel: BTreeMap<EventKind, u64> = BTreeMap::new();
    for (name, packets) in &counters {
        if let CounterClass::Alert(kind) = names.classify_counter(name) {
            *kernel.entry(kind).or_default() += packets;
        }
    }
    let mut failures = Vec::new();
    println!(
        "\n## Soak: {round} rounds in {:.1} min\n",
        started.elapsed().as_secs_f64() / 60.0
    );
    println!("| kind | entries' CLOISON_PACKETS | truth | source of the truth | |");
    println!("|---|---:|---:|---|---|");
    for kind in EventKind::ALL {
        let counted = per_kind.get(kind.name()).copied().unwrap_or(0);
        let (truth, source) = if counter_backed(kind) {
            (
                kernel.get(&kind).copied().unwrap_or(0),
                "the ruleset's counters",
            )
        } else if cloison_core::alert::traffic_kind(kind) {
            (
                seen.found.get(&kind).copied().unwrap_or(0),
                "the mirror socket",
            )
        } else {
            continue;
        };
        let ok = counted == truth;
        if !ok {
            failures.push(format!("{kind}: {counted} counted, truth {truth}"));
        }
        println!(
            "| {kind} | {counted} | {truth} | {source} | {} |",
            if ok { "exact" } else { "MISMATCH" }
        );
    }
    let first = samples.first();
    let last = samples.last();
    let rss: Vec<f64> = samples.iter().map(|s| s.rss_kib as f64 / 1024.0).collect();
    let fd: Vec<f64> = samples.iter().map(|s| s.fds as f64).collect();
    // The bound holds traffic entries; the daemon's own events (config_applied,
    // ruleset_drift, verify_*: a few a round here) are outside it (alerts.md).
    let traffic: Vec<serde_json::Value> = entries
        .iter()
        .filter(|e| e.get("CLOISON_PACKETS").is_some())
        .cloned()
        .collect();
    let busiest = busiest_minute(&traffic);
    let busiest_all = busiest_minute(&entries);
    let bound = config.alerts.max_per_minute as usize;
    let drops: u64 = seen.stats.iter().map(|(_, s)| s.dropped).sum();
    println!();
    println!("- exit status: {exit:?}");
    println!(
        "- RSS: first round {:.1} MiB, last {:.1} MiB, range {} MiB, peak (VmHWM) {:.1} MiB",
        rss.first().copied().unwrap_or(0.0),
        rss.last().copied().unwrap_or(0.0),
        spread(&rss, 1),
        hwm as f64 / 1024.0
    );
    println!(
        "- file descriptors: first {}, last {}, range {}; threads first {}, last {}",
        first.map_or(0, |s| s.fds),
        last.map_or(0, |s| s.fds),
        spread(&fd, 0),
        first.map_or(0, |s| s.threads),
        last.map_or(0, |s| s.threads)
    );
    println!(
        "- traffic: {blocked_sent} blocked datagrams sent, {l2_sent} layer-2 frames sent; the mirror saw {} frames (dropped {drops})",
        seen.frames
    );
    println!(
        "- {reloads} reloads, {drifts} drifts ({} repairs), {} verify runs ({} failed)",
        last.map_or(0, |s| s.repairs),
        samples.len(),
        verify_failures.len()
    );
    println!(
        "- entries: {} in all, {} of traffic; busiest sliding minute {busiest} of traffic (bound {bound}, plus up to one per kind at the shutdown flush), {busiest_all} counting the daemon's own events",
        entries.len(),
        traffic.len()
    );
    if exit != Some(0) {
        failures.push(format!("exit {exit:?}"));
    }
    if log.contains("panicked") {
        failures.push("a panic in the daemon's log".into());
    }
    if busiest > bound + EventKind::ALL.len() {
        failures.push(format!("{busiest} entries in a minute"));
    }
    if drops > 0 {
        failures.push(format!(
            "the mirror dropped {drops} frames: the truth is uncertain"
        ));
    }
    // Flat: the last round no higher than the first ten's highest (the warm-up: the flow
    // table fills, the allocator reaches its working size), descriptors no more than at
    // the first round.
    let warm = samples.len().min(10);
    let warm_rss = samples[..warm].iter().map(|s| s.rss_kib).max().unwrap_or(0);
    if let (Some(f), Some(l)) = (first, last)
        && (l.fds > f.fds || l.rss_kib > warm_rss)
    {
        failures.push(format!(
            "growth: fds {} -> {}, RSS {} KiB at most in the first {warm} rounds, {} KiB at the last",
            f.fds, l.fds, warm_rss, l.rss_kib
        ));
    }
    for (round, out) in &verify_failures {
        failures.push(format!("verify failed in round {round}: {out}"));
    }
    if failures.is_empty() {
        println!("\nsoak: every check held");
    } else {
        println!("\nsoak: {} checks failed:", failures.len());
        for f in &failures {
            println!("  - {f}");
        }
        std::process::exit(1);
    }
}
