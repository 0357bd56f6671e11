//! Floods against the lab's router with `cloison run` watching, as a compromised kiosk
//! would send them, each for `--secs` seconds as fast as one sender thread goes:
//!
//! - `blocked`: UDP datagrams kiosk -> mairie-srv, a new destination port each time (a
//!   new flow per packet, the worst case for the folder and the bound); dropped by the
//!   ruleset, sampled to NFLOG at 50 a second per pair;
//! - `arp-one`: ARP replies claiming the router's address, from the kiosk's MAC;
//! - `arp-many`: the same from 65,536 different source MACs (a new flow per frame, the
//!   flow table full and evicting);
//! - `double-tag`: 802.1Q-in-802.1Q frames on the kiosk's untagged port.
//!
//! The layer-2 floods all pass the capture's kernel filter: every frame reaches the
//! daemon. For each run (a fresh daemon each time): the daemon's CPU during the flood
//! and in the seconds after, frames sent, frames inspected and dropped by the kernel
//! (PACKET_STATISTICS, as `cloison status` shows them), RSS before and after, the
//! journal entries (total, and the most in any sliding minute) and whether the sum of
//! `CLOISON_PACKETS` equals the ground truth (the ruleset's counters for blocked
//! traffic; the frames the capture received for layer 2), after a SIGTERM flushes.
//!
//! Then the daemon's CPU against the rate of a paced ARP flood (`sweep`), and whether
//! an ARP flood from the kiosk slows the mairie's own traffic (`neighbours`: 64-byte UDP
//! datagrams mairie-pc -> Internet through the router, with and without the kiosk's
//! flood, `cloison run` watching both times).
//!
//! Run as root: `cargo bench --bench floods` (options: `--secs S` (65), `--reps N` (3),
//! `--only blocked,arp-one,arp-many,double-tag,sweep,neighbours`, `--sweep 5,20,50,100,150`
//! (k frames a second), `--sweep-secs S` (15), `--neighbours-secs S` (10), `--dump DIR`:
//! each run's journal entries, one JSON object a line after the time cloison wrote it).

// Benchmarks do FFI (mmsghdr, sockaddr) and measurement arithmetic on small counts,
// where the cast lints the product follows add noise, not safety; they do not ship.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
#[path = "support/mod.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use cloison_lab::frames as fixtures;
use cloison_lab::rig::Rig;
use cloison_lab::{HOST_IF, Node};
use serde_json::Value;
use support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flood {
    Blocked,
    ArpOne,
    ArpMany,
    DoubleTag,
}

impl Flood {
    const ALL: [Flood; 4] = [
        Flood::Blocked,
        Flood::ArpOne,
        Flood::ArpMany,
        Flood::DoubleTag,
    ];

    fn name(self) -> &'static str {
        match self {
            Flood::Blocked => "blocked",
            Flood::ArpOne => "arp-one",
            Flood::ArpMany => "arp-many",
            Flood::DoubleTag => "double-tag",
        }
    }

    /// The event kind its entries carry.
    fn event(self) -> &'static str {
        match self {
            Flood::Blocked => "cross_segment",
            Flood::ArpOne | Flood::ArpMany => "arp_spoof",
            Flood::DoubleTag => "vlan_hopping",
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Run {
    sent: u64,
    secs: f64,
    cpu_flood: f64,
    nft_flood: f64,
    cpu_after: f64,
    inspected: u64,
    kernel_dropped: u64,
    rss_before: u64,
    rss_after: u64,
    hwm: u64,
    entries: usize,
    /// By the time cloison wrote them (see `start_marks`).
    max_per_minute: usize,
    /// By the time journald read them.
    max_per_minute_read: usize,
    journald_lag_ms: f64,
    event_entries: usize,
    reported: u64,
    truth: u64,
    log_lines: usize,
    load: f64,
}

fn timestamp_us(e: &Value) -> u64 {
    e["__REALTIME_TIMESTAMP"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The order journald read an entry in: `__SEQNUM` where journalctl shows it (systemd
/// 254 and later), else the `i=` part of the cursor (hex), the same number.
fn seqnum(e: &Value) -> u64 {
    if let Some(n) = e["__SEQNUM"].as_str().and_then(|v| v.parse().ok()) {
        return n;
    }
    e["__CURSOR"]
        .as_str()
        .and_then(|c| c.split(';').find_map(|p| p.strip_prefix("i=")))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// While a flood runs, journald itself may fall behind (it shares the two cores with the
/// flood and the daemon) and stamp entries late, in bursts: `__REALTIME_TIMESTAMP` is
/// when journald read an entry, not when cloison wrote it. So the bench writes a marker
/// entry of its own every `MARK_EVERY` to the same socket, carrying the time it was
/// sent. The socket is one FIFO queue: an entry journald read between two markers was
/// written before the second marker was sent.
const MARK_EVERY: Duration = Duration::from_millis(200);
const MARK_ID: &str = "cloison-bench-mark";

fn start_marks(journal_pid: u32, run: &str) -> Running {
    let socket = format!("/proc/{journal_pid}/root/run/systemd/journal/socket");
    let run = run.to_owned();
    every(MARK_EVERY, move || {
        let s = std::os::unix::net::UnixDatagram::unbound().expect("datagram socket");
        let msg = format!(
            "SYSLOG_IDENTIFIER={MARK_ID}\nMESSAGE=mark\nBENCH_RUN={run}\nBENCH_SENT_US={}\n",
            now_us()
        );
        let _ = s.send_to(msg.as_bytes(), &socket);
    })
}

/// Each entry's write time, at worst `MARK_EVERY` late: the send time of the first
/// marker journald read after it (entries after the last marker keep their own stamp).
/// Also returns the largest lag seen (journald's read time minus a marker's send time).
fn write_times(entries: &[Value], marks: &[Value]) -> (Vec<u64>, u64) {
    let mut m: Vec<(u64, u64, u64)> = marks
        .iter()
        .filter_map(|e| {
            let sent = e["BENCH_SENT_US"].as_str()?.parse().ok()?;
            Some((seqnum(e), sent, timestamp_us(e)))
        })
        .collect();
    m.sort_unstable();
    let lag = m
        .iter()
        .map(|(_, sent, read)| read.saturating_sub(*sent))
        .max()
        .unwrap_or(0);
    let times = entries
        .iter()
        .map(|e| {
            let q = seqnum(e);
            let i = m.partition_point(|(s, _, _)| *s < q);
            m.get(i).map_or(timestamp_us(e), |(_, sent, _)| *sent)
        })
        .collect();
    (times, lag)
}

/// The most entries in any 60-second window of `times` (µs).
fn max_per_minute(mut t: Vec<u64>) -> usize {
    t.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..t.len() {
        while t[hi] - t[lo] >= 60_000_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn frames(flood: Flood, rig: &Rig) -> Vec<Vec<u8>> {
    let kiosk_mac = rig.lab.mac(Node::Kiosk, HOST_IF).expect("kiosk mac");
    let router_mac = rig.lab.mac(Node::Router, "seg-kiosk").expect("router mac");
    let router4 = Ipv4Addr::new(192, 168, 20, 1);
    match flood {
        Flood::Blocked => Vec::new(),
        Flood::ArpOne => vec![fixtures::arp_reply(kiosk_mac, router4, router_mac, router4)],
        Flood::ArpMany => (0..=u16::MAX)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                fixtures::arp_reply([0x02, 0x42, 0, 0, hi, lo], router4, router_mac, router4)
            })
            .collect(),
        Flood::DoubleTag => {
            let inner = fixtures::udp4(
                kiosk_mac,
                router_mac,
                Ipv4Addr::new(192, 168, 20, 15),
                Ipv4Addr::new(192, 168, 10, 5),
                40000,
                445,
            );
            vec![fixtures::dot1q(&fixtures::dot1q(&inner, 10), 20)]
        }
    }
}

fn run_once(rig: &mut Rig, flood: Flood, secs: f64, segments: &[&str], dump: Option<&Path>) -> Run {
    let router = rig.lab.ns(Node::Router).to_owned();
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    let counters_before = nft_counters(&router);
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let pid = rig.daemon.as_ref().expect("started").id();
    let mut run = Run {
        rss_before: mem(pid).rss_kib,
        ..Run::default()
    };
    let (received0, dropped0) = capture(rig);
    let mark_run = format!("{pid}");
    let marks = start_marks(rig.journal.pid(), &mark_run);

    let sender = match flood {
        Flood::Blocked => udp_flood(
            &kiosk,
            SocketAddrV4::new(rig.lab.v4(Node::MairieSrv).expect("srv"), 9),
            18,
            Ports::Spread,
        ),
        _ => frame_flood(&kiosk, HOST_IF, frames(flood, rig), None),
    };
    let w = Window::start(Some(pid));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let r = w.end();
    run.sent = sender.stop();
    run.secs = r.secs;
    run.cpu_flood = r.daemon_pct;
    run.nft_flood = r.children_pct;
    run.load = r.load1;
    // The queued frames, the next counter reading and the capture's statistics.
    let w = Window::start(Some(pid));
    std::thread::sleep(Duration::from_secs(4));
    run.cpu_after = w.end().daemon_pct;
    let (received1, dropped1) = capture(rig);
    run.inspected = received1 - received0;
    run.kernel_dropped = dropped1 - dropped0;
    let m = mem(pid);
    run.rss_after = m.rss_kib;
    run.hwm = m.hwm_kib;

    rig.signal(nix::sys::signal::Signal::SIGTERM);
    rig.wait_exit(Duration::from_secs(30));
    std::thread::sleep(MARK_EVERY * 2);
    marks.stop();
    run.log_lines = rig.log().lines().count();
    let entries = rig
        .journal
        .entries(&["-t", "cloison", &format!("_PID={pid}")])
        .unwrap_or_else(|e| panic!("journal: {e}"));
    let mark_entries = rig
        .journal
        .entries(&[
            format!("SYSLOG_IDENTIFIER={MARK_ID}"),
            format!("BENCH_RUN={mark_run}"),
        ])
        .unwrap_or_else(|e| panic!("journal: {e}"));
    let (written, lag) = write_times(&entries, &mark_entries);
    if let Some(dir) = dump {
        // One line per entry: when cloison wrote it (µs), then the entry.
        let lines: String = written
            .iter()
            .zip(&entries)
            .map(|(t, e)| format!("{t} {e}\n"))
            .collect();
        let path = dir.join(format!("{}-{pid}.jsonl", flood.name()));
        std::fs::write(&path, lines).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    run.entries = entries.len();
    run.max_per_minute_read = max_per_minute(entries.iter().map(timestamp_us).collect());
    run.max_per_minute = max_per_minute(written);
    run.journald_lag_ms = lag as f64 / 1e3;
    let of_event: Vec<&Value> = entries
        .iter()
        .filter(|e| e["CLOISON_EVENT"] == flood.event())
        .collect();
    run.event_entries = of_event.len();
    run.reported = of_event.iter().map(|e| packets(e)).sum();
    run.truth = match flood {
        Flood::Blocked => {
            cross_segment_total(&nft_counters(&router), segments)
                - cross_segment_total(&counters_before, segments)
        }
        // Every frame the capture received is one observation of this kind.
        _ => run.inspected,
    };
    run
}

/// One paced ARP flood (`arp-one`) at `rate` frames a second: (frames/s sent, daemon %
/// of a core, kernel drops).
fn sweep_once(rig: &mut Rig, rate: f64, secs: f64) -> (f64, f64, u64) {
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let pid = rig.daemon.as_ref().expect("started").id();
    let sender = frame_flood(&kiosk, HOST_IF, frames(Flood::ArpOne, rig), Some(rate));
    std::thread::sleep(Duration::from_secs(1));
    let (_, d0) = capture(rig);
    let c0 = sender.count();
    let w = Window::start(Some(pid));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let c1 = sender.count();
    let r = w.end();
    sender.stop();
    std::thread::sleep(Duration::from_secs(2));
    let (_, d1) = capture(rig);
    rig.signal(nix::sys::signal::Signal::SIGTERM);
    rig.wait_exit(Duration::from_secs(30));
    ((c1 - c0) as f64 / r.secs, r.daemon_pct, d1 - d0)
}

/// One window of the mairie's own traffic (64-byte UDP, mairie-pc -> Internet, one
/// sender), with or without the kiosk's ARP flood (`arp-one`, unpaced), with `cloison
/// run` watching or with the ruleset alone (the daemon leaves it in place on SIGTERM).
#[derive(Default)]
struct Neighbours {
    kpps: Vec<f64>,
    cpu: Vec<f64>,
    arp_k: Vec<f64>,
    received_k: Vec<f64>,
    dropped: u64,
}

fn neighbours_once(rig: &mut Rig, flood: bool, daemon: bool, secs: f64, into: &mut Neighbours) {
    let router = rig.lab.ns(Node::Router).to_owned();
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    let pc = rig.lab.ns(Node::MairiePc).to_owned();
    let inet = rig.lab.ns(Node::InetA).to_owned();
    let inet_a = rig.lab.v4(Node::InetA).expect("inet-a address");
    let pid = daemon.then(|| {
        rig.start();
        rig.wait_notify("READY=1", Duration::from_secs(30));
        std::thread::sleep(Duration::from_secs(3));
        rig.daemon.as_ref().expect("started").id()
    });
    let sink = udp_sink(&inet, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5202));
    let traffic = udp_flood(&pc, SocketAddrV4::new(inet_a, 5202), 18, Ports::One);
    let arp = flood.then(|| frame_flood(&kiosk, HOST_IF, frames(Flood::ArpOne, rig), None));
    std::thread::sleep(Duration::from_secs(1));
    let l0 = link_stats(&router, "wan0");
    let a0 = arp.as_ref().map_or(0, Running::count);
    let c0 = if daemon { capture(rig) } else { (0, 0) };
    let w = Window::start(pid);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let l1 = link_stats(&router, "wan0");
    let a1 = arp.as_ref().map_or(0, Running::count);
    let r = w.end();
    if let Some(a) = arp {
        a.stop();
    }
    traffic.stop();
    sink.stop();
    let mut c1 = (0, 0);
    if daemon {
        // The capture thread publishes its socket's counters once a second.
        std::thread::sleep(Duration::from_millis(1500));
        c1 = capture(rig);
        rig.signal(nix::sys::signal::Signal::SIGTERM);
        rig.wait_exit(Duration::from_secs(30));
    }
    let kpps = (l1.tx_packets - l0.tx_packets) as f64 / r.secs / 1e3;
    let arp_k = (a1 - a0) as f64 / r.secs / 1e3;
    let received_k = (c1.0 - c0.0) as f64 / r.secs / 1e3;
    let cpu = if daemon { r.daemon_pct } else { 0.0 };
    println!(
        "neighbours: kiosk flooding {flood}, daemon {daemon}: mairie-pc -> Internet {kpps:.1} kpps forwarded; daemon {cpu:.1}%; ARP {arp_k:.1} k/s sent, capture received {received_k:.1} k/s, dropped {}",
        c1.1 - c0.1
    );
    into.kpps.push(kpps);
    into.cpu.push(cpu);
    into.arp_k.push(arp_k);
    into.received_k.push(received_k);
    into.dropped += c1.1 - c0.1;
}

fn main() {
    let Some(args) = Args::parse_as_root("floods", "network namespaces, nftables, journald") else {
        return;
    };
    let secs: f64 = args.num("secs", if args.quick { 10.0 } else { 65.0 });
    let reps: usize = args.num("reps", if args.quick { 1 } else { 3 });
    let names: Vec<String> = match args.get("only") {
        Some(list) => list.split(',').map(str::to_owned).collect(),
        None => Flood::ALL
            .iter()
            .map(|f| f.name().to_owned())
            .chain(["sweep".to_owned(), "neighbours".to_owned()])
            .collect(),
    };
    let only: Vec<Flood> = names
        .iter()
        .filter(|n| *n != "sweep" && *n != "neighbours")
        .map(|n| {
            *Flood::ALL
                .iter()
                .find(|f| f.name() == n)
                .unwrap_or_else(|| panic!("--only: no flood {n}"))
        })
        .collect();
    let rates: Vec<usize> = if names.iter().any(|n| n == "sweep") {
        args.list("sweep", &[5, 20, 50, 100, 150])
    } else {
        Vec::new()
    };
    let sweep_secs: f64 = args.num("sweep-secs", if args.quick { 5.0 } else { 15.0 });
    let neighbours = names.iter().any(|n| n == "neighbours");
    let neighbours_secs: f64 = args.num("neighbours-secs", if args.quick { 5.0 } else { 10.0 });
    let dump: Option<std::path::PathBuf> = args.get("dump").map(Into::into);
    if let Some(d) = &dump {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    println!("{}", describe_machine());
    println!("floods: {reps} repetitions of {secs} s each");

    let (config, mut rig) = lab_rig();
    let segments: Vec<String> = config.segments.iter().map(|s| s.name.to_string()).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();

    let mut runs: Vec<(Flood, Vec<Run>)> = only.iter().map(|f| (*f, Vec::new())).collect();
    for rep in 0..reps {
        for (flood, list) in &mut runs {
            let r = run_once(&mut rig, *flood, secs, &segments, dump.as_deref());
            println!(
                "rep {rep} {:<10} sent {:>9} ({:6.1} k/s); daemon {:5.1}% (+nft {:.2}%) during, {:5.1}% after; inspected {:>9} ({:6.1} k/s), kernel drops {:>9}; entries {} (max {} in a minute as written, {} as journald stamped them, journald up to {:.0} ms late), {} {} entries, CLOISON_PACKETS {} vs {} truth ({}); RSS {} -> {} KiB (peak {}); log lines {}; load {:.2}",
                flood.name(),
                r.sent,
                r.sent as f64 / r.secs / 1e3,
                r.cpu_flood,
                r.nft_flood,
                r.cpu_after,
                r.inspected,
                r.inspected as f64 / r.secs / 1e3,
                r.kernel_dropped,
                r.entries,
                r.max_per_minute,
                r.max_per_minute_read,
                r.journald_lag_ms,
                r.event_entries,
                flood.event(),
                r.reported,
                r.truth,
                if r.reported == r.truth {
                    "exact"
                } else {
                    "MISMATCH"
                },
                r.rss_before,
                r.rss_after,
                r.hwm,
                r.log_lines,
                r.load
            );
            list.push(r);
        }
    }

    let f = |runs: &[Run], g: &dyn Fn(&Run) -> f64| runs.iter().map(g).collect::<Vec<f64>>();
    println!("\n## Floods from the kiosk, {secs} s each (median (min–max) of {reps})\n");
    println!(
        "| flood | sent k/s | daemon CPU % during | after (4 s) | nft children % | inspected k/s | kernel drops % of sent | entries | most in a minute, as written (as journald stamped them) | journald behind by, ms | sum CLOISON_PACKETS = truth | RSS before → after MiB | load |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (flood, runs) in &runs {
        let exact = runs.iter().filter(|r| r.reported == r.truth).count();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {exact} of {} runs | {} → {} | {} |",
            flood.name(),
            spread(&f(runs, &|r| r.sent as f64 / r.secs / 1e3), 0),
            spread(&f(runs, &|r| r.cpu_flood), 1),
            spread(&f(runs, &|r| r.cpu_after), 1),
            spread(&f(runs, &|r| r.nft_flood), 2),
            spread(&f(runs, &|r| r.inspected as f64 / r.secs / 1e3), 1),
            spread(
                &f(runs, &|r| r.kernel_dropped as f64 / r.sent.max(1) as f64
                    * 100.0),
                1
            ),
            spread(&f(runs, &|r| r.entries as f64), 0),
            spread(&f(runs, &|r| r.max_per_minute as f64), 0),
            spread(&f(runs, &|r| r.max_per_minute_read as f64), 0),
            spread(&f(runs, &|r| r.journald_lag_ms), 0),
            runs.len(),
            spread(&f(runs, &|r| r.rss_before as f64 / 1024.0), 1),
            spread(&f(runs, &|r| r.rss_after as f64 / 1024.0), 1),
            spread(&f(runs, &|r| r.load), 2),
        );
    }

    if !rates.is_empty() {
        let mut rows = Vec::new();
        for &k in &rates {
            let mut sent = Vec::new();
            let mut cpu = Vec::new();
            let mut per = Vec::new();
            let mut drops = 0;
            for rep in 0..reps {
                let (s, c, d) = sweep_once(&mut rig, k as f64 * 1e3, sweep_secs);
                println!(
                    "rep {rep} sweep {k} k/s: sent {:.1} k/s, daemon {c:.1}%, {:.2} µs/frame, {d} kernel drops",
                    s / 1e3,
                    c / 100.0 * 1e6 / s.max(1.0)
                );
                sent.push(s / 1e3);
                cpu.push(c);
                per.push(c / 100.0 * 1e6 / s.max(1.0));
                drops += d;
            }
            rows.push(format!(
                "| {k} | {} | {} | {} | {drops} |",
                spread(&sent, 1),
                spread(&cpu, 1),
                spread(&per, 2)
            ));
        }
        println!(
            "\n## Daemon CPU by ARP flood rate (arp-one, paced; {sweep_secs} s each; median (min–max) of {reps})\n"
        );
        println!(
            "| asked k frames/s | sent k/s | daemon % of a core | µs of daemon CPU per frame | kernel drops |"
        );
        println!("|---|---|---|---|---|");
        for r in rows {
            println!("{r}");
        }
    }
    if neighbours {
        // Interleaved, so the machine's drift affects every state alike.
        const STATES: [(bool, bool, &str); 3] = [
            (false, true, "quiet, `cloison run` watching"),
            (true, true, "flooding ARP, `cloison run` watching"),
            (true, false, "flooding ARP, ruleset only (no daemon)"),
        ];
        let mut rows: Vec<Neighbours> = STATES.iter().map(|_| Neighbours::default()).collect();
        for _ in 0..reps {
            for ((flood, daemon, _), row) in STATES.iter().zip(&mut rows) {
                neighbours_once(&mut rig, *flood, *daemon, neighbours_secs, row);
            }
        }
        println!(
            "\n## The mairie's traffic during the kiosk's ARP flood ({neighbours_secs} s each; median (min–max) of {reps})\n"
        );
        println!(
            "| kiosk | mairie-pc -> Internet, 64-byte frames, kpps forwarded | daemon % of a core | kiosk's ARP frames k/s | capture received k/s | capture dropped |"
        );
        println!("|---|---|---|---|---|---|");
        for ((_, daemon, label), r) in STATES.iter().zip(&rows) {
            let na = |v: String| if *daemon { v } else { "-".to_owned() };
            println!(
                "| {label} | {} | {} | {} | {} | {} |",
                spread(&r.kpps, 1),
                na(spread(&r.cpu, 1)),
                spread(&r.arp_k, 1),
                na(spread(&r.received_k, 1)),
                na(r.dropped.to_string())
            );
        }
    }
    drop(rig);
}
