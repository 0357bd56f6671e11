//! Does the cost grow with the number of segments? The lab of config/lab.toml, and the
//! same with extra segments (`x1`, `x2`...: each a subnet, an interface in the router's
//! namespace and a bridge in the switch's, carrying no traffic), side by side:
//!
//! - `cloison plan`: time, peak memory, and the ruleset's size (chains, rules, counters,
//!   set and map elements, bytes);
//! - `cloison apply`: time to install the table, and to re-apply it unchanged; the time
//!   and size of `nft -j list table inet cloison` (what the daemon reads every 2 s);
//! - per-packet cost in the kernel: 64-byte UDP frames forwarded for allowed traffic
//!   (mairie-pc -> Internet) and dropped for blocked traffic (kiosk -> mairie), with the
//!   ruleset in place and no daemon, interleaved over the labs and repetitions;
//! - `cloison run`: time to READY, CPU at rest (its threads and its `nft` children), RSS.
//!
//! Run as root: `cargo bench --bench segments` (options: `--segments 3,10,20,50,64`
//! (at most 64, as in a configuration), `--reps N` (5), `--secs S` (5), `--rest S` (20),
//! `--plan-runs N` (3)).

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
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloison_lab::Node;
use cloison_lab::rig::Rig;
use support::*;

const WARMUP: Duration = Duration::from_secs(1);

struct Lab {
    n: usize,
    path: PathBuf,
    rig: Rig,
    allowed_kpps: Vec<f64>,
    blocked_kpps: Vec<f64>,
    /// Counted by kiosk/mairie over received on seg-kiosk, over every blocked run.
    blocked_counted: u64,
    blocked_received: u64,
    load: Vec<f64>,
}

#[derive(Default)]
struct Size {
    chains: usize,
    rules: usize,
    counters: usize,
    elements: usize,
    json_bytes: usize,
    text_lines: usize,
}

fn ruleset_size(text: &[u8], json: &[u8]) -> Size {
    let text = String::from_utf8_lossy(text);
    let ruleset_text = text.split("\n# ruleset hash").next().unwrap_or_default();
    // `plan --json` prints one document; its `ruleset` is the batch nft reads.
    let doc: serde_json::Value = serde_json::from_slice(json).expect("plan --json is JSON");
    let doc = &doc["ruleset"];
    let json_part = serde_json::to_string_pretty(doc).expect("JSON");
    let mut s = Size {
        json_bytes: json_part.len(),
        text_lines: ruleset_text.lines().count(),
        ..Size::default()
    };
    for o in doc["nftables"].as_array().into_iter().flatten() {
        let Some(add) = o.get("add") else { continue };
        if add.get("chain").is_some() {
            s.chains += 1;
        } else if let Some(rule) = add.get("rule") {
            s.rules += 1;
            // Elements of anonymous sets and verdict maps in the rule.
            let t = rule.to_string();
            s.elements += t.matches("\"elem\"").count() + t.matches("\"map\"").count();
        } else if add.get("counter").is_some() {
            s.counters += 1;
        } else if let Some(set) = add.get("set") {
            s.elements += set["elem"].as_array().map_or(0, Vec::len);
        }
    }
    s
}

fn main() {
    let Some(args) = Args::parse_as_root("segments", "network namespaces, nftables") else {
        return;
    };
    let counts = args.list("segments", &[3, 10, 20, 50, 64]);
    let reps: usize = args.num("reps", if args.quick { 2 } else { 5 });
    let secs: f64 = args.num("secs", if args.quick { 2.0 } else { 5.0 });
    let rest: f64 = args.num("rest", if args.quick { 6.0 } else { 20.0 });
    let plan_runs: usize = args.num("plan-runs", if args.quick { 1 } else { 3 });
    let programs = programs();
    let bin = programs.cloison.to_str().expect("utf-8 path");
    println!("{}", describe_machine());
    println!(
        "segments {counts:?}: {reps} repetitions of {secs} s, {rest} s at rest, {plan_runs} plan runs"
    );

    // 1. Planning (no kernel involved).
    let mut labs = Vec::new();
    let mut plan_rows = Vec::new();
    for &n in &counts {
        let path = temp_file(&format!("seg{n}"), &config_with_segments(n));
        let path_str = path.to_str().expect("utf-8");
        let mut times = Vec::new();
        let mut rss = Vec::new();
        let mut text = Vec::new();
        for _ in 0..plan_runs {
            let (t, kib, out) = timed(&[], bin, &["plan", "-c", path_str]);
            times.push(t);
            rss.push(kib as f64 / 1024.0);
            text = out;
        }
        let (_, _, json) = timed(&[], bin, &["plan", "--json", "-c", path_str]);
        let size = ruleset_size(&text, &json);
        println!(
            "{n} segments: plan {} s, {} MiB peak; {} chains, {} rules, {} counters, {} elements, {} lines, {} JSON bytes",
            spread(&times, 2),
            spread(&rss, 0),
            size.chains,
            size.rules,
            size.counters,
            size.elements,
            size.text_lines,
            size.json_bytes
        );
        plan_rows.push((n, times, rss, size));
        labs.push(path);
    }

    // 2. Labs, apply, listing.
    let mut apply_rows = Vec::new();
    let mut reapply_ok: Vec<bool> = Vec::new();
    let mut built = Vec::new();
    for (path, &n) in labs.into_iter().zip(&counts) {
        let config = cloison::config_file::load(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let started = Instant::now();
        let rig = Rig::new(&config, &path, &programs).unwrap_or_else(|e| panic!("rig: {e:#?}"));
        let lab_build = started.elapsed().as_secs_f64();
        let cfg = rig.config_path();
        let cfg = cfg.to_str().expect("utf-8");
        let router = rig.lab.ns(Node::Router).to_owned();
        let in_router = ["ip", "netns", "exec", router.as_str()];
        let apply = || try_timed(&in_router, bin, &["apply", "-c", cfg]);
        let (install, install_kib, _) = apply().unwrap_or_else(|e| panic!("{e}"));
        // Applying again is what every daemon start, reload and repair does.
        let (again, again_kib, again_err) = match apply() {
            Ok((t, kib, _)) => (t, kib, None),
            Err(e) => (f64::NAN, 0, Some(e)),
        };
        if let Some(e) = &again_err {
            println!("{n} segments: applying again FAILED: {e}");
        }
        let mut list_t = Vec::new();
        let mut list_bytes = 0;
        let mut list_kib = 0;
        for _ in 0..3 {
            let (t, kib, out) = timed(
                &in_router,
                "nft",
                &["-j", "list", "table", "inet", "cloison"],
            );
            list_t.push(t);
            list_bytes = out.len();
            list_kib = kib;
        }
        println!(
            "{n} segments: lab built in {lab_build:.1} s; apply (install) {install:.2} s ({} MiB), again (unchanged) {again:.2} s ({} MiB); nft -j list table {} s, {} bytes, {} MiB",
            install_kib / 1024,
            again_kib / 1024,
            spread(&list_t, 3),
            list_bytes,
            list_kib / 1024
        );
        apply_rows.push((
            n,
            install,
            install_kib,
            again,
            again_kib,
            list_t,
            list_bytes,
            list_kib,
        ));
        reapply_ok.push(again_err.is_none());
        built.push(Lab {
            n,
            path,
            rig,
            allowed_kpps: Vec::new(),
            blocked_kpps: Vec::new(),
            blocked_counted: 0,
            blocked_received: 0,
            load: Vec::new(),
        });
    }

    // 3. Per-packet cost, interleaved over the labs.
    for rep in 0..reps {
        for lab in &mut built {
            let router = lab.rig.lab.ns(Node::Router).to_owned();
            let pc = lab.rig.lab.ns(Node::MairiePc).to_owned();
            let kiosk = lab.rig.lab.ns(Node::Kiosk).to_owned();
            let inet = lab.rig.lab.ns(Node::InetA).to_owned();
            let inet_a = lab.rig.lab.v4(Node::InetA).expect("inet-a");
            let srv = lab.rig.lab.v4(Node::MairieSrv).expect("mairie-srv");

            let sink = udp_sink(&inet, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5202));
            let flood = udp_flood(&pc, SocketAddrV4::new(inet_a, 5202), 18, Ports::One);
            std::thread::sleep(WARMUP);
            let l0 = link_stats(&router, "wan0");
            let w = Window::start(None);
            std::thread::sleep(Duration::from_secs_f64(secs));
            let l1 = link_stats(&router, "wan0");
            let allowed = w.end();
            flood.stop();
            sink.stop();
            let allowed_kpps = (l1.tx_packets - l0.tx_packets) as f64 / allowed.secs / 1e3;

            let c0 = nft_counter(&router, "kiosk/mairie");
            let r0 = link_stats(&router, "seg-kiosk");
            let flood = udp_flood(&kiosk, SocketAddrV4::new(srv, 9), 18, Ports::One);
            std::thread::sleep(WARMUP);
            let l0 = link_stats(&router, "seg-kiosk");
            let w = Window::start(None);
            std::thread::sleep(Duration::from_secs_f64(secs));
            let l1 = link_stats(&router, "seg-kiosk");
            let blocked = w.end();
            flood.stop();
            std::thread::sleep(Duration::from_millis(200));
            let (c1, r1) = (
                nft_counter(&router, "kiosk/mairie"),
                link_stats(&router, "seg-kiosk"),
            );
            let blocked_kpps = (l1.rx_packets - l0.rx_packets) as f64 / blocked.secs / 1e3;
            lab.blocked_counted += c1 - c0;
            lab.blocked_received += r1.rx_packets - r0.rx_packets;
            lab.allowed_kpps.push(allowed_kpps);
            lab.blocked_kpps.push(blocked_kpps);
            lab.load.push(blocked.load1);
            println!(
                "rep {rep} {:>4} segments: allowed {allowed_kpps:6.1} kpps forwarded, blocked {blocked_kpps:6.1} kpps dropped (counted {} of {} received); load {:.2}, {:.2} cores busy",
                lab.n,
                c1 - c0,
                r1.rx_packets - r0.rx_packets,
                blocked.load1,
                blocked.machine_cores
            );
        }
    }

    // 4. The daemon at rest, one lab at a time.
    let mut daemon_rows = Vec::new();
    for (lab, ok) in built.iter_mut().zip(&reapply_ok) {
        if !ok {
            println!(
                "{:>4} segments: cloison run not measured: it applies on start, which fails here",
                lab.n
            );
            continue;
        }
        let started = Instant::now();
        lab.rig.start();
        lab.rig.wait_notify("READY=1", Duration::from_secs(600));
        let ready = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(3));
        let pid = lab.rig.daemon.as_ref().expect("started").id();
        let w = Window::start(Some(pid));
        std::thread::sleep(Duration::from_secs_f64(rest));
        let r = w.end();
        let m = mem(pid);
        println!(
            "{:>4} segments: cloison run READY after {ready:.1} s; at rest {:.2}% of a core (+ nft children {:.2}%), RSS {} MiB (peak {} MiB); load {:.2}",
            lab.n,
            r.daemon_pct,
            r.children_pct,
            m.rss_kib / 1024,
            m.hwm_kib / 1024,
            r.load1
        );
        daemon_rows.push((lab.n, ready, r, m));
        lab.rig.signal(nix::sys::signal::Signal::SIGTERM);
        lab.rig.wait_exit(Duration::from_secs(120));
    }

    println!("\n## Ruleset size and planning\n");
    println!(
        "| segments | chains | rules | named counters | set/map elements | `plan` text lines | JSON bytes | `cloison plan` s | `plan` peak MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, times, rss, s) in &plan_rows {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.chains,
            s.rules,
            s.counters,
            s.elements,
            s.text_lines,
            s.json_bytes,
            spread(times, 2),
            spread(rss, 0)
        );
    }
    println!("\n## Applying and reading the table back\n");
    println!(
        "| segments | `apply` (install) s | its peak MiB | `apply` again (unchanged) s | `nft -j list table` s | its output bytes | its peak MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, install, ikib, again, _akib, list_t, bytes, lkib) in &apply_rows {
        let again = if again.is_nan() {
            "fails".to_owned()
        } else {
            format!("{again:.2}")
        };
        println!(
            "| {n} | {install:.2} | {} | {again} | {} | {bytes} | {} |",
            ikib / 1024,
            spread(list_t, 3),
            lkib / 1024
        );
    }
    println!(
        "\n## Per-packet cost: 64-byte UDP frames, ruleset in place, no daemon (median (min–max) of {reps})\n"
    );
    println!(
        "| segments | allowed, kpps forwarded | blocked, kpps dropped | blocked counted / received | load (1 min) |"
    );
    println!("|---|---|---|---|---|");
    for lab in &built {
        println!(
            "| {} | {} | {} | {} / {} | {} |",
            lab.n,
            spread(&lab.allowed_kpps, 0),
            spread(&lab.blocked_kpps, 0),
            lab.blocked_counted,
            lab.blocked_received,
            spread(&lab.load, 2)
        );
    }
    println!("\n## cloison run at rest\n");
    println!(
        "| segments | READY after s | daemon threads % of a core | nft children % | RSS MiB | load |"
    );
    println!("|---|---|---|---|---|---|");
    for (n, ready, r, m) in &daemon_rows {
        println!(
            "| {n} | {ready:.1} | {:.2} | {:.2} | {} | {:.2} |",
            r.daemon_pct,
            r.children_pct,
            m.rss_kib / 1024,
            r.load1
        );
    }
    for lab in built {
        let _ = std::fs::remove_file(&lab.path);
        drop(lab.rig);
    }
}
