//! The two ways packets reach the daemon, measured in the lab with real sockets:
//!
//! 1. The capture's kernel filter. With cloison's ruleset in place (no daemon), ordinary
//!    allowed traffic (TCP bulk and 64-byte UDP, mairie-pc -> Internet) crosses the
//!    router's `seg-mairie` while a capture socket is open there (`CaptureSocket`, as the
//!    daemon opens it): with cloison's classic BPF filter, with a filter that passes
//!    everything (what capturing without a filter would cost), or with no socket at all.
//!    Reported: frames arriving on the interface, frames reaching userspace, the kernel's
//!    drops, the reader thread's CPU (it classifies every frame, as the daemon does), and
//!    the forwarding rate in each case (the kernel side of a packet tap).
//! 2. The NFLOG path. The ruleset samples drops at most 50 a second per pair; here a
//!    table of the bench logs every blocked kiosk -> mairie datagram to cloison's NFLOG
//!    group, and a reader (`nflog::Reader`, as the daemon uses it) receives, decodes and
//!    folds them: samples per second it keeps up with, and CPU per sample.
//!
//! Run as root: `cargo bench --bench capture_paths` (options: `--reps N` (5), `--secs S`
//! (5)).

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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use cloison::capture::{CaptureSocket, wait};
use cloison_core::alert::{FoldSettings, Folder, Names};
use cloison_core::inspect::{Link, Topology, capture_filter, classify, filter};
use cloison_lab::Node;
use support::*;

const WARMUP: Duration = Duration::from_secs(1);
/// The receive buffer the daemon gives each capture socket.
const RCVBUF: usize = 4 << 20;
/// The table the bench adds for part 2: every blocked kiosk datagram to port 9, to
/// cloison's NFLOG group (1793), before cloison's forward chain.
const LOG_ALL: &str = "table inet benchlog {\n  chain logall {\n    type filter hook forward priority -5; policy accept;\n    iifname \"seg-kiosk\" udp dport 9 log prefix \"kiosk/mairie\" group 1793\n  }\n}\n";

fn thread_cpu() -> Duration {
    // SAFETY: timespec is plain data; clock_gettime writes it.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a live timespec for the kernel to fill in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tap {
    None,
    Filtered,
    Unfiltered,
}

impl Tap {
    const ALL: [Tap; 3] = [Tap::None, Tap::Filtered, Tap::Unfiltered];

    fn name(self) -> &'static str {
        match self {
            Tap::None => "no capture socket",
            Tap::Filtered => "cloison's filter",
            Tap::Unfiltered => "no filter (pass all)",
        }
    }
}

/// A capture socket on `seg-mairie` read by a thread that classifies every frame.
struct Reader {
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<(Duration, u64)>>,
}

impl Reader {
    fn open(router: &str, config: &cloison_core::config::Config, tap: Tap) -> Option<Reader> {
        if tap == Tap::None {
            return None;
        }
        let config = config.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(AtomicU64::new(0));
        let (s, f) = (Arc::clone(&stop), Arc::clone(&frames));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let handle = spawn_in(router, "capture-reader", move || {
            let links: Vec<Link> = cloison::capture::links();
            let topology = Topology::new(&config, &links).expect("topology");
            let ifindex = links
                .iter()
                .find(|l| l.name == "seg-mairie")
                .expect("seg-mairie")
                .index;
            let (point, _) = topology
                .capture_points()
                .find(|(_, i)| *i == ifindex)
                .expect("a capture point");
            let program: Vec<cloison_core::inspect::BpfInsn> = match tap {
                Tap::Filtered => capture_filter(&topology, point).expect("filter"),
                _ => vec![cloison_core::inspect::BpfInsn {
                    code: filter::RET_K,
                    jt: 0,
                    jf: 0,
                    k: filter::PASS,
                }],
            };
            let socket = CaptureSocket::open("seg-mairie", ifindex, &program, RCVBUF)
                .expect("capture socket");
            ready_tx.send(()).expect("ready");
            let ctx = topology.context(ifindex).expect("context");
            let mut sockets = [socket];
            let start = thread_cpu();
            let mut buf = vec![0u8; 2048];
            let mut findings = 0u64;
            while !s.load(Ordering::Relaxed) {
                if wait(&sockets, Duration::from_millis(100))
                    .expect("poll")
                    .is_empty()
                {
                    continue;
                }
                for _ in 0..4096 {
                    match sockets[0].recv(&mut buf) {
                        Ok(Some((n, meta))) => {
                            f.fetch_add(1, Ordering::Relaxed);
                            let c = ctx.with_aux(
                                meta.aux_vlan.map(|(tci, _)| tci),
                                meta.aux_vlan.map(|(_, tpid)| tpid),
                            );
                            findings += u64::from(classify(&buf[..n], &c).is_some());
                        }
                        _ => break,
                    }
                }
            }
            let cpu = thread_cpu() - start;
            std::hint::black_box(findings);
            (cpu, sockets[0].stats().dropped)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("capture socket open");
        Some(Reader {
            stop,
            frames,
            handle: Some(handle),
        })
    }

    fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// (reader CPU, kernel drops)
    fn stop(mut self) -> (Duration, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("running")
            .join()
            .expect("reader thread")
    }
}

#[derive(Default)]
struct TapResults {
    tcp_gbps: Vec<f64>,
    tcp_in_kps: Vec<f64>,
    tcp_user_kps: Vec<f64>,
    tcp_cpu: Vec<f64>,
    udp_kpps: Vec<f64>,
    udp_in_kps: Vec<f64>,
    udp_user_kps: Vec<f64>,
    udp_cpu: Vec<f64>,
    drops: u64,
}

fn main() {
    let Some(args) = Args::parse_as_root("capture_paths", "network namespaces, nftables") else {
        return;
    };
    let reps: usize = args.num("reps", if args.quick { 2 } else { 5 });
    let secs: f64 = args.num("secs", if args.quick { 2.0 } else { 5.0 });
    println!("{}", describe_machine());
    println!("capture paths: {reps} repetitions of {secs} s");

    let (config, rig) = lab_rig();
    apply(&rig);
    let router = rig.lab.ns(Node::Router).to_owned();
    let pc = rig.lab.ns(Node::MairiePc).to_owned();
    let inet = rig.lab.ns(Node::InetA).to_owned();
    let inet_a = rig.lab.v4(Node::InetA).expect("inet-a");

    // Part 1: the capture filter.
    let mut results: Vec<TapResults> = Tap::ALL.iter().map(|_| TapResults::default()).collect();
    for rep in 0..reps {
        for (ti, tap) in Tap::ALL.into_iter().enumerate() {
            let r = &mut results[ti];
            let reader = Reader::open(&router, &config, tap);
            let user = |reader: &Option<Reader>| reader.as_ref().map_or(0, Reader::frames);

            let flow = tcp_bulk(&pc, &inet, SocketAddrV4::new(inet_a, 5201));
            std::thread::sleep(WARMUP);
            let (b0, i0, u0) = (
                flow.count(),
                link_stats(&router, "seg-mairie"),
                user(&reader),
            );
            let w = Window::start(None);
            let c0 = thread_cpu_of(&reader);
            std::thread::sleep(Duration::from_secs_f64(secs));
            let (b1, i1, u1) = (
                flow.count(),
                link_stats(&router, "seg-mairie"),
                user(&reader),
            );
            let c1 = thread_cpu_of(&reader);
            let tcp = w.end();
            flow.stop();
            r.tcp_gbps.push((b1 - b0) as f64 * 8.0 / tcp.secs / 1e9);
            r.tcp_in_kps
                .push((i1.rx_packets - i0.rx_packets) as f64 / tcp.secs / 1e3);
            r.tcp_user_kps.push((u1 - u0) as f64 / tcp.secs / 1e3);
            r.tcp_cpu.push(pct_of(c0, c1, tcp.secs));

            let sink = udp_sink(&inet, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5202));
            let flood = udp_flood(&pc, SocketAddrV4::new(inet_a, 5202), 18, Ports::One);
            std::thread::sleep(WARMUP);
            let (l0, i0, u0) = (
                link_stats(&router, "wan0"),
                link_stats(&router, "seg-mairie"),
                user(&reader),
            );
            let w = Window::start(None);
            let c0 = thread_cpu_of(&reader);
            std::thread::sleep(Duration::from_secs_f64(secs));
            let (l1, i1, u1) = (
                link_stats(&router, "wan0"),
                link_stats(&router, "seg-mairie"),
                user(&reader),
            );
            let c1 = thread_cpu_of(&reader);
            let udp = w.end();
            flood.stop();
            sink.stop();
            r.udp_kpps
                .push((l1.tx_packets - l0.tx_packets) as f64 / udp.secs / 1e3);
            r.udp_in_kps
                .push((i1.rx_packets - i0.rx_packets) as f64 / udp.secs / 1e3);
            r.udp_user_kps.push((u1 - u0) as f64 / udp.secs / 1e3);
            r.udp_cpu.push(pct_of(c0, c1, udp.secs));
            if let Some(reader) = reader {
                let (_, dropped) = reader.stop();
                r.drops += dropped;
            }
            println!(
                "rep {rep} {:<22} tcp {:5.2} Gbit/s, {:6.1} k frames/s in, {:6.1} k/s to userspace ({:4.1}% reader) | udp {:6.1} kpps fwd, {:6.1} k/s in, {:6.1} k/s to userspace ({:4.1}% reader) | load {:.2}",
                tap.name(),
                r.tcp_gbps[rep],
                r.tcp_in_kps[rep],
                r.tcp_user_kps[rep],
                r.tcp_cpu[rep],
                r.udp_kpps[rep],
                r.udp_in_kps[rep],
                r.udp_user_kps[rep],
                r.udp_cpu[rep],
                udp.load1
            );
        }
    }

    // Part 2: NFLOG, every blocked datagram sampled.
    sh_input(&router, &["nft", "-f", "-"], LOG_ALL);
    let kiosk = rig.lab.ns(Node::Kiosk).to_owned();
    let srv = rig.lab.v4(Node::MairieSrv).expect("mairie-srv");
    let mut nflog_rows = Vec::new();
    for rep in 0..reps {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, n) = (Arc::clone(&stop), Arc::clone(&samples));
        let cfg = config.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = spawn_in(&router, "nflog-reader", move || {
            use std::os::fd::AsRawFd;
            let mut reader = cloison::nflog::Reader::open_nonblocking().expect("nflog");
            let mut folder = Folder::new(
                Names::from_config(&cfg, "router"),
                FoldSettings::from(&cfg.alerts),
            );
            ready_tx.send(()).expect("ready");
            let start = thread_cpu();
            let mut errors = 0u64;
            while !s.load(Ordering::Relaxed) {
                match reader.poll() {
                    Ok(batch) if !batch.is_empty() => {
                        let now = SystemTime::now();
                        for sample in &batch {
                            if let Some(key) = cloison_core::sample::decode(sample, &cfg) {
                                std::hint::black_box(folder.observe(&key, now));
                            }
                        }
                        n.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        let mut fds = [libc::pollfd {
                            fd: reader.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        }];
                        // SAFETY: one valid pollfd.
                        unsafe { libc::poll(fds.as_mut_ptr(), 1, 100) };
                    }
                    // ENOBUFS: the kernel dropped samples the socket had no room for.
                    Err(_) => errors += 1,
                }
            }
            (thread_cpu() - start, errors)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("nflog reader");
        let c0 = nft_counter(&router, "kiosk/mairie");
        let flood = udp_flood(&kiosk, SocketAddrV4::new(srv, 9), 18, Ports::One);
        let w = Window::start(None);
        std::thread::sleep(Duration::from_secs_f64(secs));
        let sent = flood.stop();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let (cpu, overruns) = reader.join().expect("nflog reader");
        let r = w.end();
        let logged = nft_counter(&router, "kiosk/mairie") - c0;
        let got = samples.load(Ordering::Relaxed);
        let per_sample_us = cpu.as_secs_f64() * 1e6 / got.max(1) as f64;
        println!(
            "rep {rep} nflog: {sent} sent, {logged} dropped and logged, {got} samples read ({:.1} k/s), {overruns} overruns (ENOBUFS), reader {:.1}% of a core, {per_sample_us:.2} µs CPU per sample; load {:.2}",
            got as f64 / r.secs / 1e3,
            cpu.as_secs_f64() / r.secs * 100.0,
            r.load1
        );
        nflog_rows.push((
            got as f64 / r.secs / 1e3,
            logged as f64 / r.secs / 1e3,
            per_sample_us,
            got as f64 / logged.max(1) as f64 * 100.0,
            r.load1,
        ));
    }
    sh(&router, &["nft", "delete", "table", "inet", "benchlog"]);

    println!(
        "\n## Capture socket on seg-mairie during allowed traffic (median (min–max) of {reps})\n"
    );
    println!(
        "| capture | TCP Gbit/s | TCP: frames in k/s | to userspace k/s | reader % of a core | UDP kpps forwarded | UDP: frames in k/s | to userspace k/s | reader % of a core | kernel drops |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (tap, r) in Tap::ALL.iter().zip(&results) {
        let na = |v: &[f64], p: usize| {
            if *tap == Tap::None {
                "-".to_owned()
            } else {
                spread(v, p)
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            tap.name(),
            spread(&r.tcp_gbps, 2),
            spread(&r.tcp_in_kps, 1),
            na(&r.tcp_user_kps, 2),
            na(&r.tcp_cpu, 1),
            spread(&r.udp_kpps, 0),
            spread(&r.udp_in_kps, 1),
            na(&r.udp_user_kps, 2),
            na(&r.udp_cpu, 1),
            if *tap == Tap::None {
                "-".to_owned()
            } else {
                r.drops.to_string()
            }
        );
    }
    println!("\n## NFLOG: every blocked datagram sampled (median (min–max) of {reps})\n");
    println!(
        "| samples read k/s | drops logged k/s | samples read % of logged | µs CPU per sample (recv + decode + fold) | load |"
    );
    println!("|---|---|---|---|---|");
    let col = |i: usize| -> Vec<f64> {
        nflog_rows
            .iter()
            .map(|r| [r.0, r.1, r.2, r.3, r.4][i])
            .collect()
    };
    println!(
        "| {} | {} | {} | {} | {} |",
        spread(&col(0), 1),
        spread(&col(1), 1),
        spread(&col(3), 1),
        spread(&col(2), 2),
        spread(&col(4), 2)
    );
    drop(rig);
}

/// The reader thread's CPU so far is only known when it stops; while it runs, read it
/// from /proc (the thread is named `capture-reader`).
fn thread_cpu_of(reader: &Option<Reader>) -> u64 {
    if reader.is_none() {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm"))
                .is_ok_and(|c| c.trim() == "capture-reader")
        })
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn pct_of(t0: u64, t1: u64, secs: f64) -> f64 {
    pct(t1.saturating_sub(t0), secs)
}
