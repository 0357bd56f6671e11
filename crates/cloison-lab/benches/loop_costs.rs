//! Pure costs of the daemon's loop, without the kernel: what one observation costs the
//! folder (repeated flows, new flows, the flow table full), what decoding one NFLOG
//! sample costs, and what each 2-second poll costs in userspace besides running `nft`
//! (reading the counters into the folder, the drift check's canonical form of the listing
//! and comparison), by number of segments. Counts allocations too. Needs no root.
//!
//! Run: `cargo bench --bench loop_costs` (options: `--segments 3,10,20,50,64` (at most 64,
//! as in a configuration), `--quick`).
//! `classify` has its own bench (`cargo bench --bench classify`).

// Benchmarks do FFI (mmsghdr, sockaddr) and measurement arithmetic on small counts,
// where the cast lints the product follows add noise, not safety; they do not ship.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use cloison_core::alert::event::{EventKind, FlowKey};
use cloison_core::alert::{FoldSettings, Folder, Names};
use cloison_core::config::Config;
use cloison_core::inspect::classify;
use cloison_core::sample::{Sample, decode};
use cloison_lab::frames::*;
use support::*;

/// ns per call and allocations per call of `f(i)` over `iters` calls, median of `rounds`
/// rounds (each on fresh state from `setup`), plus the spread.
fn measure<S>(
    rounds: usize,
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(&mut S, u64),
) -> (Vec<f64>, f64) {
    let mut ns = Vec::new();
    let mut allocs = 0.0;
    for _ in 0..rounds {
        let mut state = setup();
        let before = counting_alloc::allocations();
        let start = Instant::now();
        for i in 0..iters {
            f(&mut state, i);
        }
        let elapsed = start.elapsed();
        allocs = (counting_alloc::allocations() - before) as f64 / iters as f64;
        ns.push(elapsed.as_nanos() as f64 / iters as f64);
        drop(state);
    }
    (ns, allocs)
}

fn lab_config() -> Config {
    cloison_core::config::parse(&lab_config_text(), "lab.toml").expect("config/lab.toml is valid")
}

fn folder(config: &Config) -> Folder {
    Folder::new(
        Names::from_config(config, "router"),
        FoldSettings::from(&config.alerts),
    )
}

/// A blocked kiosk -> mairie SMB sample as the kernel sends it (headers only).
fn smb_sample() -> Sample {
    let frame = tcp4(HOST_KIOSK, ROUTER_KIOSK, KIOSK_HOST4, MAIRIE_HOST4, 445);
    Sample {
        prefix: "kiosk/mairie".into(),
        ifindex_in: Some(IFINDEX_SEG_KIOSK),
        src_mac: Some(HOST_KIOSK),
        packet: cloison_core::sample::headers_only(&frame[14..]).to_vec(),
        mark: None,
    }
}

fn row(name: &str, (ns, allocs): (Vec<f64>, f64)) {
    println!("| {name} | {} | {allocs:.2} |", spread(&ns, 1));
}

fn main() {
    let Some(args) = Args::parse("loop_costs") else {
        return;
    };
    let quick = args.quick;
    let rounds = if quick { 3 } else { 7 };
    let n: u64 = if quick { 200_000 } else { 2_000_000 };
    let counts = args.list("segments", &[3, 10, 20, 50, 64]);
    println!("{}", describe_machine());
    println!("loop costs: {rounds} rounds; median (min–max)\n");

    let config = lab_config();
    let base = SystemTime::now();
    // One microsecond per observation: a flood of a million events a second.
    let at = |i: u64| base + Duration::from_micros(i);

    let sample = smb_sample();
    let sample_key = decode(&sample, &config).expect("a cross-segment sample");
    let topo = lab_topology();
    let kiosk = topo.context(IFINDEX_SEG_KIOSK).expect("kiosk port");
    let arp = arp_reply(HOST_KIOSK, KIOSK_ROUTER4, ROUTER_KIOSK, KIOSK_ROUTER4);
    let arp_key = classify(&arp, &kiosk).expect("an ARP claim").flow_key();
    assert_eq!(arp_key.kind, EventKind::ArpSpoof);

    println!("## Folder, per observation\n");
    println!("| case | ns per observation | allocations per observation |");
    println!("|---|---|---|");
    row(
        "NFLOG sample of a known flow (kiosk -> mairie:445)",
        measure(
            rounds,
            n,
            || {
                let mut f = folder(&config);
                f.observe(&sample_key, base);
                f
            },
            |f, i| {
                black_box(f.observe(black_box(&sample_key), at(i)));
            },
        ),
    );
    row(
        "layer-2 finding of a known flow (ARP claim, one MAC)",
        measure(
            rounds,
            n,
            || {
                let mut f = folder(&config);
                f.observe(&arp_key, base);
                f
            },
            |f, i| {
                black_box(f.observe(black_box(&arp_key), at(i)));
            },
        ),
    );
    let new_mac = |i: u64| {
        let mut k: FlowKey = arp_key;
        let b = (i as u32).to_be_bytes();
        k.src_mac = Some([0x02, 0x99, b[0], b[1], b[2], b[3]]);
        k
    };
    row(
        "layer-2 finding, a new MAC each time (table full, evictions)",
        measure(
            rounds,
            n,
            || folder(&config),
            |f, i| {
                black_box(f.observe(&new_mac(i), at(i)));
            },
        ),
    );
    let new_port = |i: u64| {
        let mut k: FlowKey = sample_key;
        k.dst_port = Some((i % 65_535) as u16 + 1);
        k.src_ip = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
            0xc0a8_1400 | (i / 65_535) as u32 & 0xff,
        )));
        k
    };
    row(
        "NFLOG sample, a new port each time (table full, evictions)",
        measure(
            rounds,
            n,
            || folder(&config),
            |f, i| {
                black_box(f.observe(&new_port(i), at(i)));
            },
        ),
    );

    println!("\n## NFLOG sample decode (prefix -> pair, headers -> flow key)\n");
    println!("| case | ns per sample | allocations per sample |");
    println!("|---|---|---|");
    row(
        "kiosk/mairie, 3 segments",
        measure(
            rounds,
            n,
            || (),
            |_, _| {
                black_box(decode(black_box(&sample), &config));
            },
        ),
    );
    let mut polls = Vec::new();
    for &segments in &counts {
        let big = cloison_core::config::parse(&config_with_segments(segments), "bench.toml")
            .expect("generated configuration is valid");
        if segments > 3 {
            // The segment `decode` finds last (it scans the configuration's order).
            let last = big.segments.last().expect("segments").name.to_string();
            let worst = Sample {
                prefix: format!("{last}/mairie"),
                ..sample.clone()
            };
            row(
                &format!("{last}/mairie (the last segment), {segments} segments"),
                measure(
                    rounds,
                    n / 10,
                    || (),
                    |_, _| {
                        black_box(decode(black_box(&worst), &big));
                    },
                ),
            );
        }
        polls.push((segments, big));
    }

    println!(
        "\n## Capture filter length (classic BPF; the kernel takes at most 4096 instructions)\n"
    );
    println!("| segments | instructions, longest segment filter |");
    println!("|---|---|");
    for (segments, config) in &polls {
        // Made-up links: one per segment interface, distinct MACs.
        let links: Vec<cloison_core::inspect::Link> = config
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| cloison_core::inspect::Link {
                name: s.interface.to_string(),
                index: i as u32 + 10,
                mac: [0x02, 0xc1, 0, 0, (i >> 8) as u8, i as u8],
                ipv6: Vec::new(),
            })
            .collect();
        let cell = match cloison_core::inspect::Topology::new(config, &links) {
            Err(e) => format!("no topology: {e}"),
            Ok(topo) => {
                let lens: Vec<Result<usize, String>> = topo
                    .capture_points()
                    .map(|(p, _)| {
                        cloison_core::inspect::capture_filter(&topo, p)
                            .map(|v| v.len())
                            .map_err(|e| e.to_string())
                    })
                    .collect();
                match lens.iter().find_map(|r| r.as_ref().err()) {
                    Some(e) => format!("refused: {e}"),
                    None => lens
                        .iter()
                        .filter_map(|r| r.as_ref().ok())
                        .max()
                        .map_or("-".to_owned(), ToString::to_string),
                }
            }
        };
        println!("| {segments} | {cell} |");
    }

    println!("\n## Each 2-second poll, userspace part (besides the two `nft` processes)\n");
    println!(
        "| segments | counters | folder reads the counters ms | plan's canonical form ms (once per plan, not in the total) | parse the listing ms (plan JSON as a stand-in) | canonical form of the listing ms | compare ms | total ms per poll | % of a core at one poll / 2 s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (segments, config) in &polls {
        let plan = cloison_core::plan::plan(config);
        let readings: Vec<(String, u64)> =
            plan.counters.iter().map(|c| (c.clone(), 7u64)).collect();
        let poll_rounds = if *segments >= 100 { 3 } else { rounds };
        let iters = (200 / segments).max(1) as u64;
        let ms = |v: Vec<f64>| v.into_iter().map(|x| x / 1e6).collect::<Vec<f64>>();
        let (read, _) = measure(
            poll_rounds,
            iters,
            || {
                let mut f = folder(config);
                f.baseline(&readings);
                f
            },
            |f, i| {
                black_box(f.counters(&readings, at(i * 2_000_000)));
            },
        );
        let (want, _) = measure(
            poll_rounds,
            iters,
            || (),
            |_, _| {
                black_box(plan.canonical());
            },
        );
        let json = serde_json::to_vec(&plan.ruleset_json()).expect("JSON");
        let (parse, _) = measure(
            poll_rounds,
            iters,
            || (),
            |_, _| {
                black_box(serde_json::from_slice::<serde_json::Value>(&json).expect("JSON"));
            },
        );
        let doc: serde_json::Value = serde_json::from_slice(&json).expect("JSON");
        let (live, _) = measure(
            poll_rounds,
            iters,
            || (),
            |_, _| {
                black_box(cloison_core::nft::canonical::canonical(&doc));
            },
        );
        let a = plan.canonical();
        let (cmp, _) = measure(
            poll_rounds,
            iters,
            || (),
            |_, _| {
                black_box(cloison_core::nft::compare(&a, Some(&doc)));
            },
        );
        let parts = [ms(read), ms(want), ms(parse), ms(live), ms(cmp)];
        // The daemon keeps the plan's canonical form from one plan to the next.
        let total: f64 = parts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, v)| median(v))
            .sum();
        println!(
            "| {segments} | {} | {} | {} | {} | {} | {} | {total:.2} | {:.2} |",
            readings.len(),
            spread(&parts[0], 3),
            spread(&parts[1], 2),
            spread(&parts[2], 2),
            spread(&parts[3], 2),
            spread(&parts[4], 2),
            total / 2000.0 * 100.0
        );
    }
}
