//! Suricata side by side with `cloison run`: both watch the lab's router at the same time,
//! on the same traffic, and the bench prints what each costs per frame and what each
//! detects.
//!
//! Suricata 7 (Debian bookworm-backports; `benches/suricata/install` installs it when
//! missing) runs inside the router's network namespace with its own configuration and
//! rules from `benches/suricata/` (`suricata.yaml`, `cloison.rules`): AF_PACKET with
//! TPACKET_V3 rings on the three segment interfaces, one worker each, three IP-only
//! rules with thresholds (kiosk -> mairie, kiosk -> poste, poste -> mairie), alerts
//! without payload to eve.json. Its directory lies inside the lab's own directory and
//! its process inside the lab's router namespace, so it goes with the lab on Ctrl-C (the
//! lab's handler kills every process in its namespaces and removes its directory); on a
//! panic or a normal end its guard kills it and removes the directory; if this process
//! is killed outright, Suricata gets SIGKILL too (PDEATHSIG).
//!
//! Traffic, each for `--secs` seconds (30) after a second of ramp, a fresh daemon and a
//! fresh Suricata each run, the four kinds interleaved `--reps` times (3):
//!
//! - `udp`: allowed 64-byte UDP frames mairie-pc -> Internet through the router, one
//!   sender as fast as it goes;
//! - `tcp`: an allowed TCP bulk transfer mairie-pc -> Internet;
//! - `blocked`: UDP kiosk -> mairie-srv, a new destination port each datagram (dropped
//!   by cloison's ruleset);
//! - `arp`: ARP replies from the kiosk claiming the router's address, as fast as one
//!   sender goes.
//!
//! CPU: utime + stime of each process (all its threads) from /proc over the window.
//! Frames: the packets counted by the router's three segment interfaces (received and
//! sent) over the same window: what both programs' packet sockets on those interfaces
//! are offered.
//!
//! Run as root: `cargo bench -p cloison-lab --bench suricata` (options: `--secs S` (30),
//! `--reps N` (3), `--only udp,tcp,blocked,arp`, `--quick`: 5 s, 1 repetition, `--dump
//! DIR`: each run's suricata.log and eve.json).

// Measurement arithmetic on small counts, where the cast lints the product follows add
// noise, not safety; benches do not ship.
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
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloison_lab::frames as fixtures;
use cloison_lab::rig::Rig;
use cloison_lab::{HOST_IF, Node};
use serde_json::Value;
use support::*;

/// The configuration, rules and installer of Suricata, in the repository.
const SURICATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/suricata");

/// The router's interfaces both programs watch.
const WATCHED: [&str; 3] = ["seg-kiosk", "seg-mairie", "seg-poste"];

/// cloison's alert kinds (docs/alerts.md); other events (config_applied) are not alerts.
const ALERTS: [&str; 8] = [
    "cross_segment",
    "router_access",
    "spoofed_source",
    "isolation_breach",
    "arp_spoof",
    "rogue_dhcp",
    "rogue_ra",
    "vlan_hopping",
];

/// The rules of cloison.rules: sid -> what it watches.
const RULES: [(u64, &str); 3] = [
    (1_000_001, "kiosk -> mairie"),
    (1_000_002, "kiosk -> poste"),
    (1_000_003, "poste -> mairie"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    Udp,
    Tcp,
    Blocked,
    Arp,
}

impl Traffic {
    const ALL: [Traffic; 4] = [Traffic::Udp, Traffic::Tcp, Traffic::Blocked, Traffic::Arp];

    fn name(self) -> &'static str {
        match self {
            Traffic::Udp => "udp",
            Traffic::Tcp => "tcp",
            Traffic::Blocked => "blocked",
            Traffic::Arp => "arp",
        }
    }

    /// The cloison event its frames should raise, if any.
    fn event(self) -> Option<&'static str> {
        match self {
            Traffic::Udp | Traffic::Tcp => None,
            Traffic::Blocked => Some("cross_segment"),
            Traffic::Arp => Some("arp_spoof"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Suricata

/// Installs Suricata when missing (as root, from bookworm-backports, see the script) and
/// returns its version line.
fn ensure_suricata() -> String {
    let version = || {
        Command::new("suricata")
            .arg("-V")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(v) = version() {
        return v;
    }
    let script = Path::new(SURICATA_DIR).join("install");
    println!("suricata: not installed; running {}", script.display());
    let status = Command::new(&script)
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(status.success(), "{}: {status}", script.display());
    version().expect("suricata -V after installing it")
}

/// A Suricata process in the router's namespace and its directory (eve.json,
/// suricata.log). Dropping it kills the process and removes the directory.
struct Suricata {
    child: Option<Child>,
    dir: PathBuf,
}

/// What a Suricata run saw, read after it stopped.
#[derive(Debug, Default, Clone)]
struct SuricataSeen {
    /// Alerts in eve.json by sid.
    alerts: BTreeMap<u64, u64>,
    /// Packets its capture threads received, and the kernel dropped from its rings
    /// (its exit statistics, over its whole life).
    packets: u64,
    dropped: u64,
}

impl Suricata {
    /// Starts Suricata in `ns` with its directory `dir` (created), and waits until its
    /// engine runs.
    fn start(ns: &str, dir: PathBuf) -> Suricata {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let conf = Path::new(SURICATA_DIR);
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns, "suricata", "-c"])
            .arg(conf.join("suricata.yaml"))
            .arg("-S")
            .arg(conf.join("cloison.rules"))
            .arg("-l")
            .arg(&dir)
            .arg("--af-packet")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, like the daemon: a terminal's Ctrl-C reaches the
            // bench, whose lab handler kills everything in the lab's namespaces.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
        unsafe {
            command.pre_exec(|| {
                // `ip netns exec` execs Suricata in this same process: if the bench dies
                // without unwinding (SIGKILL), Suricata gets SIGKILL.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start suricata: {e}"));
        let mut s = Suricata {
            child: Some(child),
            dir,
        };
        s.wait_engine(Duration::from_secs(60));
        s
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("suricata.log")).unwrap_or_default()
    }

    fn wait_engine(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains("Engine started") {
                return;
            }
            let child = self.child.as_mut().expect("running");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("suricata exited ({status}); its log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "suricata's engine did not start within {within:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, as `systemctl stop` would; waits for it, reads what it wrote, and
    /// removes its directory (on drop).
    fn stop(mut self, dump: Option<&Path>) -> SuricataSeen {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("suricata did not stop within 30 s of SIGTERM; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(to) = dump {
            for file in ["suricata.log", "eve.json"] {
                let name = format!("{}-{file}", self.dir.file_name().unwrap().to_string_lossy());
                let _ = std::fs::copy(self.dir.join(file), to.join(name));
            }
        }
        let mut seen = SuricataSeen::default();
        let eve = std::fs::read_to_string(self.dir.join("eve.json")).unwrap_or_default();
        for line in eve.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["event_type"] == "alert" {
                let sid = v["alert"]["signature_id"].as_u64().unwrap_or(0);
                *seen.alerts.entry(sid).or_default() += 1;
            }
        }
        let (packets, dropped) = exit_stats(&self.log());
        seen.packets = packets;
        seen.dropped = dropped;
        seen
    }
}

impl Drop for Suricata {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Packets and kernel drops of every capture interface, from the lines Suricata logs as
/// it exits: `... device: seg-kiosk: packets: 998208, drops: 117468 (11.77%), invalid
/// chksum: 0` (the packets include the drops).
fn exit_stats(log: &str) -> (u64, u64) {
    let number_after = |line: &str, key: &str| -> u64 {
        line.split_once(key)
            .and_then(|(_, rest)| {
                rest.trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    };
    log.lines()
        .filter(|l| l.contains(" device: ") && l.contains(" packets: "))
        .fold((0, 0), |(p, d), l| {
            (
                p + number_after(l, " packets:"),
                d + number_after(l, " drops:"),
            )
        })
}

// ---------------------------------------------------------------------------------------
// One run

#[derive(Debug, Default, Clone)]
struct Run {
    secs: f64,
    /// Frames on the watched interfaces (received + sent) in the window.
    frames: u64,
    /// The same by interface (`WATCHED`): (received, sent).
    by_interface: Vec<(u64, u64)>,
    /// What the traffic's sender counted in the window (datagrams, frames; TCP: bytes
    /// the sink received).
    sent: u64,
    /// Allowed traffic: packets the router forwarded to the Internet in the window.
    forwarded: u64,
    cloison_secs: f64,
    suricata_secs: f64,
    /// cloison's entries of the expected kind, the packets they report, the truth
    /// (the ruleset's counters; the frames its capture received), other alerts.
    cloison_entries: usize,
    cloison_reported: u64,
    cloison_truth: u64,
    cloison_other_alerts: usize,
    capture_dropped: u64,
    suricata: SuricataSeen,
    load: f64,
    machine_cores: f64,
}

impl Run {
    fn cloison_us(&self) -> f64 {
        self.cloison_secs * 1e6 / self.frames.max(1) as f64
    }

    fn suricata_us(&self) -> f64 {
        self.suricata_secs * 1e6 / self.frames.max(1) as f64
    }
}

/// (received, sent) packets of each watched interface.
fn watched_frames(router: &str) -> Vec<(u64, u64)> {
    WATCHED
        .iter()
        .map(|i| {
            let s = link_stats(router, i);
            (s.rx_packets, s.tx_packets)
        })
        .collect()
}

fn cpu_secs(pid: u32) -> f64 {
    proc_times(pid).map_or(f64::NAN, |t| t.own as f64 / ticks_per_sec())
}

fn start_traffic(rig: &Rig, traffic: Traffic) -> Vec<Running> {
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    let pc = rig.lab.ns(Node::MairiePc).to_owned();
    let inet = rig.lab.ns(Node::InetA).to_owned();
    let inet_a = rig.lab.v4(Node::InetA).expect("inet-a address");
    match traffic {
        Traffic::Udp => vec![
            // The sink first: its count is not used, it keeps the Internet host from
            // answering with port unreachables.
            udp_sink(&inet, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5202)),
            udp_flood(&pc, SocketAddrV4::new(inet_a, 5202), 18, Ports::One),
        ],
        Traffic::Tcp => vec![tcp_bulk(&pc, &inet, SocketAddrV4::new(inet_a, 5201))],
        Traffic::Blocked => vec![udp_flood(
            &kiosk,
            SocketAddrV4::new(rig.lab.v4(Node::MairieSrv).expect("srv"), 9),
            18,
            Ports::Spread,
        )],
        Traffic::Arp => {
            let kiosk_mac = rig.lab.mac(Node::Kiosk, HOST_IF).expect("kiosk mac");
            let router_mac = rig.lab.mac(Node::Router, "seg-kiosk").expect("router mac");
            let router4 = Ipv4Addr::new(192, 168, 20, 1);
            let frame = fixtures::arp_reply(kiosk_mac, router4, router_mac, router4);
            vec![frame_flood(&kiosk, HOST_IF, vec![frame], None)]
        }
    }
}

fn run_once(
    rig: &mut Rig,
    traffic: Traffic,
    secs: f64,
    segments: &[&str],
    n: usize,
    dump: Option<&Path>,
) -> Run {
    let router = rig.lab.ns(Node::Router).to_owned();
    let counters_before = nft_counters(&router);
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    let pid = rig.daemon.as_ref().expect("started").id();
    let suricata = Suricata::start(
        &router,
        rig.dir().join(format!("suricata-{n}-{}", traffic.name())),
    );
    std::thread::sleep(Duration::from_secs(2));
    let (received0, dropped0) = capture(rig);

    let running = start_traffic(rig, traffic);
    let sender = running.last().expect("a sender");
    std::thread::sleep(Duration::from_secs(1));
    let w = Window::start(None);
    let (f0, s0, l0) = (
        watched_frames(&router),
        sender.count(),
        link_stats(&router, "wan0"),
    );
    let (c0, u0) = (cpu_secs(pid), cpu_secs(suricata.pid()));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (c1, u1) = (cpu_secs(pid), cpu_secs(suricata.pid()));
    let (f1, s1, l1) = (
        watched_frames(&router),
        sender.count(),
        link_stats(&router, "wan0"),
    );
    let r = w.end();
    for t in running {
        t.stop();
    }
    // The capture thread publishes its socket's counters once a second; the next
    // counter reading and summaries follow.
    std::thread::sleep(Duration::from_secs(3));
    let (received1, dropped1) = capture(rig);
    rig.signal(nix::sys::signal::Signal::SIGTERM);
    rig.wait_exit(Duration::from_secs(30));
    let seen = suricata.stop(dump);

    let entries = rig
        .journal
        .entries(&["-t", "cloison", &format!("_PID={pid}")])
        .unwrap_or_else(|e| panic!("journal: {e}"));
    let is_alert = |e: &&Value| ALERTS.iter().any(|a| e["CLOISON_EVENT"] == *a);
    let expected: Vec<&Value> = entries
        .iter()
        .filter(is_alert)
        .filter(|e| traffic.event().is_some_and(|ev| e["CLOISON_EVENT"] == ev))
        .collect();
    let other = entries.iter().filter(is_alert).count() - expected.len();
    let truth = match traffic {
        Traffic::Udp | Traffic::Tcp => 0,
        Traffic::Blocked => {
            cross_segment_total(&nft_counters(&router), segments)
                - cross_segment_total(&counters_before, segments)
        }
        Traffic::Arp => received1 - received0,
    };
    Run {
        secs: r.secs,
        frames: f1.iter().map(|(r, t)| r + t).sum::<u64>()
            - f0.iter().map(|(r, t)| r + t).sum::<u64>(),
        by_interface: f1
            .iter()
            .zip(&f0)
            .map(|(a, b)| (a.0 - b.0, a.1 - b.1))
            .collect(),
        sent: s1 - s0,
        forwarded: l1.tx_packets - l0.tx_packets,
        cloison_secs: c1 - c0,
        suricata_secs: u1 - u0,
        cloison_entries: expected.len(),
        cloison_reported: expected.iter().map(|e| packets(e)).sum(),
        cloison_truth: truth,
        cloison_other_alerts: other,
        capture_dropped: dropped1 - dropped0,
        suricata: seen,
        load: r.load1,
        machine_cores: r.machine_cores,
    }
}

// ---------------------------------------------------------------------------------------
// Report

fn rate(traffic: Traffic, r: &Run) -> f64 {
    match traffic {
        // Gbit/s received by the sink.
        Traffic::Tcp => r.sent as f64 * 8.0 / r.secs / 1e9,
        // kpps forwarded to the Internet.
        Traffic::Udp => r.forwarded as f64 / r.secs / 1e3,
        // k frames/s sent.
        Traffic::Blocked | Traffic::Arp => r.sent as f64 / r.secs / 1e3,
    }
}

fn label(traffic: Traffic, runs: &[Run]) -> String {
    let rates: Vec<f64> = runs.iter().map(|r| rate(traffic, r)).collect();
    let (lo, hi) = (min(&rates), max(&rates));
    match traffic {
        Traffic::Udp => format!(
            "allowed UDP, 64-byte frames, mairie-pc -> Internet, {lo:.0}–{hi:.0} kpps forwarded"
        ),
        Traffic::Tcp => {
            format!("allowed TCP bulk, mairie-pc -> Internet, {lo:.1}–{hi:.1} Gbit/s")
        }
        Traffic::Blocked => format!(
            "blocked flood kiosk -> mairie, a new UDP port each packet, {lo:.0}–{hi:.0} kpps"
        ),
        Traffic::Arp => format!("ARP replies claiming the router, {lo:.0}–{hi:.0} k frames/s"),
    }
}

fn detects(traffic: Traffic, runs: &[Run]) -> String {
    let exact = runs
        .iter()
        .filter(|r| r.cloison_reported == r.cloison_truth)
        .count();
    let entries: Vec<String> = runs.iter().map(|r| r.cloison_entries.to_string()).collect();
    let other: usize = runs.iter().map(|r| r.cloison_other_alerts).sum();
    let cap_drops: u64 = runs.iter().map(|r| r.capture_dropped).sum();
    let cloison = match traffic.event() {
        None => format!(
            "cloison: {other} alert entries in {} runs (none expected: allowed traffic)",
            runs.len()
        ),
        Some(ev) => format!(
            "cloison: {} `{ev}` entries per run; CLOISON_PACKETS summed = {} in {exact} of {} runs (exact){}; {other} other alert entries; capture drops {cap_drops}",
            entries.join(", "),
            match traffic {
                Traffic::Arp => "the frames its capture received",
                _ => "the ruleset's counters",
            },
            runs.len(),
            if exact == runs.len() {
                String::new()
            } else {
                let pairs: Vec<String> = runs
                    .iter()
                    .map(|r| format!("{} vs {}", r.cloison_reported, r.cloison_truth))
                    .collect();
                format!(" [{}]", pairs.join("; "))
            },
        ),
    };
    let alerts: Vec<String> = runs
        .iter()
        .map(|r| {
            if r.suricata.alerts.is_empty() {
                return "0".to_owned();
            }
            let by_rule: Vec<String> = r
                .suricata
                .alerts
                .iter()
                .map(|(sid, n)| {
                    let name = RULES
                        .iter()
                        .find(|(s, _)| s == sid)
                        .map_or("?", |(_, n)| *n);
                    format!("{n} {name}")
                })
                .collect();
            by_rule.join(" + ")
        })
        .collect();
    let seen: Vec<String> = runs
        .iter()
        .map(|r| format!("{}/{}", r.suricata.packets, r.suricata.dropped))
        .collect();
    let suricata = format!(
        "Suricata: alerts per run {} (thresholded: at most 60 a minute per source and rule; an alert carries no count); packets received/dropped by its rings over its life per run {}",
        alerts.join(", "),
        seen.join(", ")
    );
    format!("{cloison}\n    {suricata}")
}

fn main() {
    let Some(args) = Args::parse_as_root("suricata", "network namespaces, nftables, journald")
    else {
        return;
    };
    let secs: f64 = args.num("secs", if args.quick { 5.0 } else { 30.0 });
    let reps: usize = args.num("reps", if args.quick { 1 } else { 3 });
    let only: Vec<Traffic> = match args.get("only") {
        Some(list) => list
            .split(',')
            .map(|n| {
                *Traffic::ALL
                    .iter()
                    .find(|t| t.name() == n)
                    .unwrap_or_else(|| panic!("--only: no traffic {n} (udp, tcp, blocked, arp)"))
            })
            .collect(),
        None => Traffic::ALL.to_vec(),
    };
    let dump: Option<PathBuf> = args.get("dump").map(Into::into);
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    let version = ensure_suricata();
    println!("{}", describe_machine());
    println!("{version}");
    println!(
        "suricata: {reps} repetitions of {secs} s each; cloison and Suricata watch the same traffic at the same time, a fresh daemon and a fresh Suricata each run, the kinds interleaved"
    );

    let (config, mut rig) = lab_rig();
    let segments: Vec<String> = config.segments.iter().map(|s| s.name.to_string()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();

    let mut runs: Vec<(Traffic, Vec<Run>)> = only.iter().map(|t| (*t, Vec::new())).collect();
    let mut n = 0;
    for rep in 0..reps {
        for (traffic, list) in &mut runs {
            n += 1;
            let r = run_once(&mut rig, *traffic, secs, &segments, n, dump.as_deref());
            println!(
                "rep {rep} {:<8} frames {:>9} ({:6.1} k/s; rx/tx by interface {:?}) sent {:>12} forwarded {:>9}; cloison {:.2} s CPU ({:.3} µs/frame), Suricata {:.2} s ({:.3} µs/frame); cloison {} entries, {} vs {} packets, {} other alerts, capture drops {}; Suricata alerts {:?}, packets {} dropped {}; load {:.2}, {:.2} cores busy",
                traffic.name(),
                r.frames,
                r.frames as f64 / r.secs / 1e3,
                r.by_interface,
                r.sent,
                r.forwarded,
                r.cloison_secs,
                r.cloison_us(),
                r.suricata_secs,
                r.suricata_us(),
                r.cloison_entries,
                r.cloison_reported,
                r.cloison_truth,
                r.cloison_other_alerts,
                r.capture_dropped,
                r.suricata.alerts,
                r.suricata.packets,
                r.suricata.dropped,
                r.load,
                r.machine_cores
            );
            list.push(r);
        }
    }

    let f = |runs: &[Run], g: &dyn Fn(&Run) -> f64| runs.iter().map(g).collect::<Vec<f64>>();
    println!(
        "\n## cloison and Suricata side by side ({secs} s windows; median (min–max) of {reps})\n"
    );
    println!(
        "| traffic | cloison µs of CPU per frame | Suricata µs per frame | cloison / Suricata | frames on the watched interfaces k/s | frames dropped before the program read them, per run: cloison's capture / Suricata's rings | load (1 min) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (traffic, runs) in &runs {
        let drops: Vec<String> = runs
            .iter()
            .map(|r| format!("{} / {}", r.capture_dropped, r.suricata.dropped))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            label(*traffic, runs),
            spread(&f(runs, &Run::cloison_us), 3),
            spread(&f(runs, &Run::suricata_us), 3),
            spread(&f(runs, &|r| r.cloison_us() / r.suricata_us()), 3),
            spread(&f(runs, &|r| r.frames as f64 / r.secs / 1e3), 1),
            drops.join(", "),
            spread(&f(runs, &|r| r.load), 2),
        );
    }
    println!("\n## What each detects\n");
    for (traffic, runs) in &runs {
        println!("- {}:\n    {}", traffic.name(), detects(*traffic, runs));
    }
    println!(
        "\n## Not comparable\n\n\
         - cloison's ruleset drops the blocked flood in the kernel and counts every packet \
         (named counters); the daemon reads samples (NFLOG, 50 a second per pair) and the \
         counters. Suricata only watches: it reads every frame from its rings and evaluates \
         its IP-only rules once per flow and direction (each new port is a new flow).\n\
         - Suricata's rules cannot match ARP: it writes nothing for the ARP flood. cloison's \
         capture reads every ARP frame from its ring (TPACKET_V3, a block at a time), \
         classifies it, and counts runs of identical frames as one hand-over.\n\
         - Allowed traffic: cloison's capture filter drops ordinary frames in the kernel; \
         Suricata tracks the flows and reassembles the TCP stream of everything.\n\
         - The veth interfaces keep their offloads (neither program changes them; \
         Suricata warns that offloads lead to capture problems): TCP frames are GSO \
         packets of up to 64 KiB, one frame each in both programs' counts.\n\
         - CPU is each process's utime + stime: the kernel's work in softirq (the BPF \
         filter, copying into Suricata's rings, the ruleset) is in neither.\n\
         - The frames dropped before either program read them (the kernel's count for its \
         socket or ring, over the program's whole run) are in the frames the CPU is divided \
         by: a program that drops does less work per frame offered."
    );
    drop(rig);
    println!("\nafter: {}", describe_machine());
}
