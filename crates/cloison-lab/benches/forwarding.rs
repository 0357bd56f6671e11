//! Normal traffic through the lab's router, and what cloison costs while it flows.
//!
//! In the lab of config/lab.toml (namespaces and veth pairs, built and removed by the
//! bench), allowed traffic goes from mairie-pc through the router to the Internet host
//! behind the town's box: a TCP bulk transfer, and a flood of small UDP datagrams (64-byte
//! frames). Each is measured with the router in four states, interleaved over the
//! repetitions so the machine's load drifts over all of them alike:
//!
//! - `bare`: forwarding, no nftables at all (the ISP box routes the segments back);
//! - `nat`: only a masquerade table (what any router of a mairie has);
//! - `ruleset`: cloison's table (`cloison apply`), no daemon;
//! - `daemon`: `cloison run` as systemd would start it (the lab's rig).
//!
//! In `daemon` state, the daemon's CPU (utime + stime of every thread, from
//! /proc/PID/stat) is read over each window, and separately the CPU of the `nft`
//! processes it runs (cutime + cstime), plus a window at rest.
//!
//! Run as root: `cargo bench --bench forwarding` (options: `--reps N` (5), `--secs S`
//! (5), `--rest S` (10), `--modes bare,nat,ruleset,daemon` (all four), `--files A.nft,B.nft`
//! (more states: the router's table from each file, given to `nft -f`; e.g. hand-edited
//! variants of `cloison plan`'s output, to try a change of the ruleset's shape before
//! writing it in the planner), `--tcp 0` (small UDP datagrams only).

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
use std::time::Duration;

use cloison_lab::Node;
use cloison_lab::rig::Rig;
use support::*;

const WARMUP: Duration = Duration::from_secs(1);
const NAT_TABLE: &str = "table ip benchnat {\n  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname { \"wan0\", \"wan1\" } masquerade\n  }\n}\n";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Bare,
    Nat,
    Ruleset,
    Daemon,
    /// A table from a file (`--files`), no daemon.
    File(String),
}

impl Mode {
    fn parse(name: &str) -> Mode {
        match name {
            "bare" => Mode::Bare,
            "nat" => Mode::Nat,
            "ruleset" => Mode::Ruleset,
            "daemon" => Mode::Daemon,
            other => panic!("--modes: {other:?} is none of bare, nat, ruleset, daemon"),
        }
    }

    fn name(&self) -> String {
        match self {
            Mode::Bare => "bare (no nftables)".into(),
            Mode::Nat => "nat only".into(),
            Mode::Ruleset => "cloison ruleset, no daemon".into(),
            Mode::Daemon => "cloison run (ruleset + daemon)".into(),
            Mode::File(path) => format!("file {path}"),
        }
    }
}

#[derive(Default)]
struct Results {
    tcp_gbps: Vec<f64>,
    tcp_kpps: Vec<f64>,
    udp_kpps: Vec<f64>,
    udp_offered_kpps: Vec<f64>,
    udp_delivered_kpps: Vec<f64>,
    cpu_tcp: Vec<f64>,
    cpu_udp: Vec<f64>,
    cpu_rest: Vec<f64>,
    nft_tcp: Vec<f64>,
    nft_udp: Vec<f64>,
    nft_rest: Vec<f64>,
    load: Vec<f64>,
    machine: Vec<f64>,
}

fn nft(rig: &Rig, args: &[&str]) -> bool {
    rig.nft(args).status.success()
}

fn set_mode(rig: &mut Rig, mode: &Mode) {
    let router = rig.lab.ns(Node::Router).to_owned();
    match mode {
        Mode::File(path) => {
            nft(rig, &["delete", "table", "ip", "benchnat"]);
            let text = std::fs::read_to_string(path).expect("--files: a readable file");
            sh_input(&router, &["nft", "-f", "-"], &text);
        }
        Mode::Bare | Mode::Nat => {
            nft(rig, &["delete", "table", "inet", "cloison"]);
            nft(rig, &["delete", "table", "ip", "benchnat"]);
            if *mode == Mode::Nat {
                sh_input(&router, &["nft", "-f", "-"], NAT_TABLE);
            }
        }
        Mode::Ruleset | Mode::Daemon => {
            nft(rig, &["delete", "table", "ip", "benchnat"]);
            apply(rig);
            if *mode == Mode::Daemon {
                rig.start();
                rig.wait_notify("READY=1", Duration::from_secs(30));
                // Start-up (apply, first reading) is not what is measured.
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    }
}

fn daemon_pid(rig: &Rig) -> Option<u32> {
    let pid = rig.daemon.as_ref()?.id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "cloison", "the rig's child is cloison itself");
    Some(pid)
}

fn main() {
    let Some(args) = Args::parse_as_root("forwarding", "network namespaces, nftables") else {
        return;
    };
    let reps: usize = args.num("reps", if args.quick { 2 } else { 5 });
    let secs: f64 = args.num("secs", if args.quick { 2.0 } else { 5.0 });
    let rest: f64 = args.num("rest", if args.quick { 4.0 } else { 10.0 });
    let senders: usize = args.num("senders", 1);
    let with_tcp = args.num("tcp", 1u8) != 0;
    let mut modes: Vec<Mode> = args
        .get("modes")
        .unwrap_or("bare,nat,ruleset,daemon")
        .split(',')
        .filter(|m| !m.is_empty())
        .map(Mode::parse)
        .collect();
    modes.extend(
        args.get("files")
            .unwrap_or("")
            .split(',')
            .filter(|f| !f.is_empty())
            .map(|f| Mode::File(f.to_owned())),
    );
    println!("{}", describe_machine());
    println!(
        "forwarding: {reps} repetitions, {secs} s windows (after {WARMUP:?} warm-up), {rest} s at rest"
    );

    let (_, mut rig) = lab_rig();
    apply(&rig);
    let router = rig.lab.ns(Node::Router).to_owned();
    let pc = rig.lab.ns(Node::MairiePc).to_owned();
    let inet = rig.lab.ns(Node::InetA).to_owned();
    // Without masquerade, the town's box must know the way back to the segments.
    sh(
        rig.lab.ns(Node::Isp),
        &["ip", "route", "add", "192.168.0.0/16", "via", "192.168.1.2"],
    );
    let inet_a = rig.lab.v4(Node::InetA).expect("inet-a address");

    let mut results: Vec<Results> = modes.iter().map(|_| Results::default()).collect();
    for rep in 0..reps {
        for (mi, mode) in modes.iter().enumerate() {
            set_mode(&mut rig, mode);
            let pid = daemon_pid(&rig);
            let r = &mut results[mi];

            if pid.is_some() {
                let w = Window::start(pid);
                std::thread::sleep(Duration::from_secs_f64(rest));
                let at_rest = w.end();
                r.cpu_rest.push(at_rest.daemon_pct);
                r.nft_rest.push(at_rest.children_pct);
            }

            // TCP bulk, mairie-pc -> inet-a.
            let (gbps, tcp_kpps, tcp) = if with_tcp {
                let flow = tcp_bulk(&pc, &inet, SocketAddrV4::new(inet_a, 5201));
                std::thread::sleep(WARMUP);
                let (b0, l0) = (flow.count(), link_stats(&router, "wan0"));
                let w = Window::start(pid);
                std::thread::sleep(Duration::from_secs_f64(secs));
                let (b1, l1) = (flow.count(), link_stats(&router, "wan0"));
                let tcp = w.end();
                flow.stop();
                let gbps = (b1 - b0) as f64 * 8.0 / tcp.secs / 1e9;
                let tcp_kpps = (l1.tx_packets - l0.tx_packets) as f64 / tcp.secs / 1e3;
                r.tcp_gbps.push(gbps);
                r.tcp_kpps.push(tcp_kpps);
                r.cpu_tcp.push(tcp.daemon_pct);
                r.nft_tcp.push(tcp.children_pct);
                (gbps, tcp_kpps, tcp)
            } else {
                (0.0, 0.0, Window::start(pid).end())
            };

            // Small UDP datagrams (18 bytes: 64-byte frames), mairie-pc -> inet-a.
            let sink = udp_sink(&inet, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5202));
            let floods: Vec<Running> = (0..senders)
                .map(|_| udp_flood(&pc, SocketAddrV4::new(inet_a, 5202), 18, Ports::One))
                .collect();
            let sent = |f: &[Running]| f.iter().map(Running::count).sum::<u64>();
            std::thread::sleep(WARMUP);
            let (s0, d0, l0) = (sent(&floods), sink.count(), link_stats(&router, "wan0"));
            let w = Window::start(pid);
            std::thread::sleep(Duration::from_secs_f64(secs));
            let (s1, d1, l1) = (sent(&floods), sink.count(), link_stats(&router, "wan0"));
            let udp = w.end();
            floods.into_iter().for_each(|f| {
                f.stop();
            });
            sink.stop();
            let kpps = (l1.tx_packets - l0.tx_packets) as f64 / udp.secs / 1e3;
            r.udp_kpps.push(kpps);
            r.udp_offered_kpps.push((s1 - s0) as f64 / udp.secs / 1e3);
            r.udp_delivered_kpps.push((d1 - d0) as f64 / udp.secs / 1e3);
            r.cpu_udp.push(udp.daemon_pct);
            r.nft_udp.push(udp.children_pct);
            r.load.push(udp.load1);
            r.machine.push(udp.machine_cores);

            println!(
                "rep {rep} {:<32} tcp {gbps:6.2} Gbit/s ({tcp_kpps:6.1} k skb/s)  udp {kpps:7.1} kpps fwd  daemon cpu tcp {:5.2}% udp {:5.2}% (+nft {:4.2}%/{:4.2}%)  load {:.2}, {:.2} cores busy",
                mode.name(),
                tcp.daemon_pct,
                udp.daemon_pct,
                tcp.children_pct,
                udp.children_pct,
                udp.load1,
                udp.machine_cores,
            );

            if *mode == Mode::Daemon {
                rig.signal(nix::sys::signal::Signal::SIGTERM);
                rig.wait_exit(Duration::from_secs(20));
            }
        }
    }

    println!("\n## Allowed traffic mairie-pc -> Internet (median (min–max) of {reps})\n");
    println!(
        "| router state | TCP bulk Gbit/s | UDP 64-byte frames, kpps forwarded | UDP offered kpps | UDP delivered kpps | load (1 min) |"
    );
    println!("|---|---|---|---|---|---|");
    for (mode, r) in modes.iter().zip(&results) {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            mode.name(),
            spread(&r.tcp_gbps, 2),
            spread(&r.udp_kpps, 0),
            spread(&r.udp_offered_kpps, 0),
            spread(&r.udp_delivered_kpps, 0),
            spread(&r.load, 2)
        );
    }
    let Some(d) = modes
        .iter()
        .position(|m| *m == Mode::Daemon)
        .map(|i| &results[i])
    else {
        return;
    };
    println!("\n## cloison run's CPU, % of one core (median (min–max) of {reps})\n");
    println!("| window | daemon threads | its nft children | together |");
    println!("|---|---|---|---|");
    for (name, own, kids) in [
        ("at rest", &d.cpu_rest, &d.nft_rest),
        ("TCP bulk", &d.cpu_tcp, &d.nft_tcp),
        ("UDP 64-byte flood", &d.cpu_udp, &d.nft_udp),
    ] {
        let sum: Vec<f64> = own.iter().zip(kids.iter()).map(|(a, b)| a + b).collect();
        println!(
            "| {name} | {} | {} | {} |",
            spread(own, 2),
            spread(kids, 2),
            spread(&sum, 2)
        );
    }
    println!(
        "\nCPU clock tick: {} per second; a {secs} s window resolves {:.2}% of a core.",
        ticks_per_sec(),
        100.0 / ticks_per_sec() / secs
    );
    drop(rig);
}
