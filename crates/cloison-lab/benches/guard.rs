//! The guard, measured in the lab with `cloison run` watching (root):
//!
//! - `rest`: the daemon at rest for `--rest` seconds: its CPU and its children's (% of a
//!   core, from /proc), and the processes it started (its children's pids, sampled
//!   every 10 ms, plus the nftables transactions it committed: none is expected);
//! - `changes`: while the kiosk floods a mairie host as fast as one thread sends
//!   (sendmmsg, 64-byte datagrams), an outside change to the rules, `--reps` times
//!   each: `nft flush ruleset`, `nft delete table inet cloison`, an `accept` inserted in
//!   cloison's forward chain, cloison's IPv4 policy-routing rules deleted. For each: how
//!   long until cloison's table (or rule) is back, from the change's own notification
//!   to the restoring one (both read by one watcher thread in the router's namespace:
//!   nftables transactions over nfnetlink, rule changes over rtnetlink), and the
//!   datagrams that reached the mairie host (the goal: none).
//!
//! Run as root: `cargo build --release --workspace && cargo bench -p cloison-lab --bench
//! guard` (options: `--reps N` (5), `--rest S` (60), `--only rest,changes`).

// Benchmarks do FFI and measurement arithmetic on small counts, where the cast lints
// the product follows add noise, not safety; they do not ship.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::SocketAddrV4;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cloison::kernel::nfnetlink::{ChangeKind, Event, Family, Watcher};
use cloison::kernel::route_watch::{RouteWatcher, Seen};
use cloison_lab::Node;
use support::*;

/// What the watcher thread saw, with when it read it.
#[derive(Debug)]
enum Saw {
    /// A transaction creating `table inet cloison`, by `pid`.
    TableCreated { pid: u32, at: Instant },
    /// A transaction touching cloison's table otherwise (a deletion, a flush, an edit).
    TableChanged { pid: u32, at: Instant },
    /// Rule 7200 (the kiosk's wall) deleted or added.
    Rule { added: bool, at: Instant },
}

fn watch(router: &str, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> mpsc::Receiver<Saw> {
    let (tx, rx) = mpsc::channel();
    let ns = router.to_owned();
    std::thread::spawn(move || {
        let (mut nft, mut rt) = run_in(&ns, || {
            (
                Watcher::open().expect("nftables watcher"),
                RouteWatcher::open().expect("routing watcher"),
            )
        });
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            for e in nft.wait(Duration::from_millis(1)).unwrap_or_default() {
                let Event::Transaction(t) = e else { continue };
                let at = Instant::now();
                let ours: Vec<_> = t
                    .changes
                    .iter()
                    .filter(|c| c.family == Family::Inet && c.table == "cloison")
                    .collect();
                if ours.is_empty() {
                    continue;
                }
                let pid = t.pid.unwrap_or(0);
                let saw = if ours.iter().any(|c| c.kind == ChangeKind::NewTable) {
                    Saw::TableCreated { pid, at }
                } else {
                    Saw::TableChanged { pid, at }
                };
                let _ = tx.send(saw);
            }
            for s in rt.poll().unwrap_or_default() {
                if let Seen::Change(c) = s {
                    if c.what == "rule 7200 deleted" || c.what == "rule 7200 added" {
                        let _ = tx.send(Saw::Rule {
                            added: c.what.ends_with("added"),
                            at: Instant::now(),
                        });
                    }
                }
            }
        }
    });
    rx
}

/// The pids of `pid`'s children right now.
fn children(pid: u32) -> BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn main() {
    let Some(args) =
        Args::parse_as_root("guard", "network namespaces, nftables, a private journald")
    else {
        return;
    };
    let reps: usize = args.num("reps", if args.quick { 2 } else { 5 });
    let rest: f64 = args.num("rest", if args.quick { 10.0 } else { 60.0 });
    let only = args.get("only").unwrap_or("rest,changes").to_owned();
    println!("{}", describe_machine());

    let (_config, mut rig) = lab_rig();
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    let daemon = rig.daemon_pid().expect("daemon");
    let router = rig.lab.ns(Node::Router).to_owned();
    std::thread::sleep(Duration::from_secs(3));

    if only.contains("rest") {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = watch(&router, std::sync::Arc::clone(&stop));
        let mut spawned = BTreeSet::new();
        let w = Window::start(Some(daemon));
        let until = Instant::now() + Duration::from_secs_f64(rest);
        while Instant::now() < until {
            spawned.extend(children(daemon));
            std::thread::sleep(Duration::from_millis(10));
        }
        let r = w.end();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = seen.try_iter().count();
        println!(
            "rest: {:.0} s, daemon {:.4} % of a core, children {:.4} %, processes started {}, nftables transactions on cloison's table {commits}, load {:.2}",
            r.secs,
            r.daemon_pct,
            r.children_pct,
            spawned.len(),
            r.load1
        );
    }

    if only.contains("changes") {
        let target = SocketAddrV4::new(rig.lab.v4(Node::MairieSrv).unwrap(), 9999);
        let sink = udp_sink(
            rig.lab.ns(Node::MairieSrv),
            SocketAddrV4::new(*target.ip(), 9999),
        );
        let flood = udp_flood(rig.lab.ns(Node::Kiosk), target, 22, Ports::One);
        std::thread::sleep(Duration::from_millis(500));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = watch(&router, std::sync::Arc::clone(&stop));
        let kinds: [(&str, &[&str], &str); 4] = [
            ("flush ruleset", &["nft", "flush", "ruleset"], ""),
            (
                "delete table",
                &["nft", "delete", "table", "inet", "cloison"],
                "",
            ),
            (
                "accept in forward",
                &[
                    "nft", "insert", "rule", "inet", "cloison", "forward", "accept",
                ],
                "",
            ),
            (
                "routing rules deleted",
                &["ip", "-batch", "-"],
                "rule del priority 7100\nrule del priority 7100\nrule del priority 7200\nrule del priority 7201\nrule del priority 7202\nrule del priority 7300\nrule del priority 7310\nrule del priority 7311\nrule del priority 7312\n",
            ),
        ];
        let before_sent = flood.count();
        let started = Instant::now();
        let mut rows = Vec::new();
        for (name, cmd, input) in kinds {
            let mut times = Vec::new();
            for _ in 0..reps {
                while seen.try_recv().is_ok() {}
                let mut child = std::process::Command::new("ip")
                    .args(["netns", "exec", &router])
                    .args(cmd)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("run the change");
                let pid = child.id();
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                let status = child.wait().unwrap();
                assert!(status.success(), "{name}");
                // ip netns exec execs the command: its pid is the child's.
                let (mut t0, mut t1) = (None, None);
                let deadline = Instant::now() + Duration::from_secs(10);
                while t1.is_none() && Instant::now() < deadline {
                    let Ok(s) = seen.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    match s {
                        Saw::TableChanged { pid: p, at } | Saw::TableCreated { pid: p, at }
                            if p == pid =>
                        {
                            t0.get_or_insert(at);
                        }
                        Saw::TableCreated { at, .. } if t0.is_some() => t1 = Some(at),
                        Saw::Rule { added: false, at } => {
                            t0.get_or_insert(at);
                        }
                        Saw::Rule { added: true, at } if t0.is_some() => t1 = Some(at),
                        _ => {}
                    }
                }
                match (t0, t1) {
                    (Some(a), Some(b)) => times.push(b.duration_since(a).as_secs_f64() * 1000.0),
                    _ => println!("{name}: no restoring notification within 10 s"),
                }
                std::thread::sleep(Duration::from_millis(700));
            }
            rows.push((name, times));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let sent = flood.stop() - before_sent;
        let received = sink.stop();
        println!(
            "changes during a flood: {sent} datagrams sent in {secs:.0} s ({:.0} kpps), {received} reached the mairie host",
            sent as f64 / secs / 1000.0
        );
        println!("| outside change | back in (ms), median (min-max) of {reps} |");
        println!("|---|---|");
        for (name, times) in rows {
            println!("| {name} | {} |", spread(&times, 1));
        }
    }
}
