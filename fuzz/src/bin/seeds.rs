//! Writes each target's starting corpus into fuzz/corpus/<target>, from real inputs:
//! - classify, capture: the frame kit's fixtures at every capture point, with and without
//!   a tag in packet metadata (capture: also all of them in one input);
//! - config: config/*.toml, config/examples/*.toml and the refused files of
//!   crates/cloison-core/tests/config/invalid;
//! - nflog: the datagrams recorded from the kernel (crates/cloison/src/nflog/fixtures);
//! - control: every request and answer the two ends exchange, as they write them;
//! - journal: `journalctl -o json` of a lab run (fuzz/seeds/journal), moved into the
//!   target's period.
//!
//! Usage: seeds [TARGET...] (all when none).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cloison::daemon::control::{CaptureCounters, DaemonStatus, Request, Response};
use cloison_core::hash::Hash;
use cloison_fuzz::Setup;
use cloison_lab::frames as fixtures;

type Seeds = Vec<(String, Vec<u8>)>;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = [
        "classify", "capture", "ring", "config", "nflog", "control", "journal",
    ];
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    for target in all {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == target) {
            continue;
        }
        let seeds = match target {
            "classify" => classify(),
            "capture" => capture(),
            "ring" => ring(),
            "config" => config(&root.join(".."))?,
            "nflog" => nflog(&root.join(".."))?,
            "control" => control(),
            _ => journal(root)?,
        };
        let dir = root.join("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, data) in &seeds {
            check(target, data);
            std::fs::write(dir.join(format!("seed-{name}")), data)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}

/// Seeds must pass the target's checks, or the campaign would start on a crash.
fn check(target: &str, data: &[u8]) {
    match target {
        "classify" => cloison_fuzz::check(data),
        "capture" => cloison_fuzz::capture::check(data),
        "ring" => cloison_fuzz::ring::check(data),
        "config" => cloison_fuzz::config::check(data),
        "nflog" => cloison_fuzz::nflog::check(data),
        "control" => cloison_fuzz::control::check(data),
        _ => cloison_fuzz::journal::check(data),
    }
}

/// Header variants: no tag; a tag the kernel took out (802.1Q, VLAN 20); one with its
/// TPID (802.1ad, VLAN 10).
const AUX: [(u8, u16, u16); 3] = [(0, 0, 0), (1, 20, 0x8100), (3, 10, 0x88a8)];

fn classify() -> Seeds {
    let mut seeds = Vec::new();
    for (i, frame) in fixtures::corpus().iter().enumerate() {
        for point in 0..Setup::get().points() {
            for (flags, tci) in [(0u8, 0u16), (1 | 2, 20), (1 | 4, 10)] {
                let mut data = vec![u8::try_from(point).expect("few points"), flags];
                data.extend_from_slice(&tci.to_be_bytes());
                data.extend_from_slice(&0x8100u16.to_be_bytes());
                data.extend_from_slice(frame);
                seeds.push((format!("{i:02}-{point}-{flags}"), data));
            }
        }
    }
    seeds
}

fn capture() -> Seeds {
    let frames = fixtures::corpus();
    let mut seeds = Vec::new();
    let mut everything = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        for point in 0..Setup::get().points() {
            let point = u8::try_from(point).expect("few points");
            for (status, tci, tpid) in AUX {
                let rec = cloison_fuzz::capture::record(point, status, tci, tpid, frame);
                if status == 0 {
                    everything.extend_from_slice(&rec);
                }
                seeds.push((format!("{i:02}-{point}-{status}"), rec));
            }
        }
    }
    seeds.push(("all".into(), everything));
    seeds
}

/// The frame kit's fixtures laid out in blocks as the kernel would hand them over: one
/// block per header variant (mode 1, the records), and the same blocks as raw bytes
/// (mode 0), for the corrupt-block mode to mutate.
fn ring() -> Seeds {
    let mut seeds = Vec::new();
    for (status, tci, tpid) in AUX {
        let status = [0u8, 1 << 4, (1 << 4) | (1 << 6)][usize::from(status.min(2))];
        let mut records = Vec::new();
        for (i, frame) in fixtures::corpus().iter().enumerate() {
            let len = u16::try_from(frame.len()).expect("short fixture");
            let pkttype = u8::try_from(i % 5).expect("small");
            records.push(status);
            records.extend_from_slice(&tci.to_be_bytes());
            records.extend_from_slice(&tpid.to_be_bytes());
            records.extend_from_slice(&[pkttype, u8::try_from(i % 8).expect("small")]);
            records.extend_from_slice(&len.to_be_bytes());
            records.extend_from_slice(frame);
        }
        let (block, _) = cloison_fuzz::ring::lay_out(&records);
        seeds.push((format!("records-{status}"), [&[1u8][..], &records].concat()));
        seeds.push((format!("block-{status}"), [&[0u8][..], &block].concat()));
    }
    seeds
}

fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    out.retain(|p| p.is_file());
    out.sort();
    Ok(out)
}

fn named(prefix: &str, paths: Vec<PathBuf>) -> std::io::Result<Seeds> {
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            Ok((format!("{prefix}-{name}"), std::fs::read(&p)?))
        })
        .collect()
}

fn config(repo: &Path) -> std::io::Result<Seeds> {
    let mut seeds = named("config", files(&repo.join("config"))?)?;
    seeds.extend(named("example", files(&repo.join("config/examples"))?)?);
    seeds.extend(named(
        "invalid",
        files(&repo.join("crates/cloison-core/tests/config/invalid"))?,
    )?);
    Ok(seeds)
}

fn nflog(repo: &Path) -> std::io::Result<Seeds> {
    let dir = repo.join("crates/cloison/src/nflog/fixtures");
    let mut paths = files(&dir)?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "bin"));
    let mut seeds = named("kernel", paths)?;
    // All of them in one datagram: the decoder reads messages one after the other.
    let all = seeds.iter().flat_map(|(_, d)| d.clone()).collect();
    seeds.push(("kernel-all".into(), all));
    Ok(seeds)
}

fn control() -> Seeds {
    let hash = Hash::of(b"cloison.toml");
    let status = DaemonStatus {
        pid: 4242,
        uptime_secs: 86_400,
        config_path: "/etc/cloison/cloison.toml".into(),
        config_hash: hash.clone(),
        config_source: "file".into(),
        ruleset_hash: Hash::of(b"ruleset"),
        confirm_pending_secs: Some(120),
        alerts_last_hour: BTreeMap::from([("cross_segment".into(), 37), ("arp_spoof".into(), 1)]),
        last_rollback: None,
        capture: BTreeMap::from([(
            "seg-kiosk".into(),
            CaptureCounters {
                received: 12,
                dropped: 0,
            },
        )]),
        drift_repairs: 1,
        router: "mairie-lab".into(),
        version: "0.1.0".into(),
        started_at: 1_776_913_600,
        alerts_total: BTreeMap::from([("cross_segment".into(), 412)]),
        live: None,
        live_error: Some("the table cloison is missing".into()),
    };
    let requests = [
        Request::Status,
        Request::Reload {
            confirm_secs: None,
            config: None,
        },
        Request::Reload {
            confirm_secs: Some(300),
            config: Some("/etc/cloison/cloison.toml".into()),
        },
        Request::Confirm {
            config: Some("/etc/cloison/cloison.toml".into()),
        },
    ];
    let answers = [
        Response::Status(Box::new(status)),
        Response::Done {
            message: "reloaded: configuration 3f2a… applied".into(),
        },
        Response::Error {
            message: "request longer than 4096 bytes".into(),
        },
    ];
    let mut seeds = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let mut line = serde_json::to_string(r).expect("JSON");
        line.push('\n');
        seeds.push((format!("request-{i}"), line.into_bytes()));
    }
    for (i, a) in answers.iter().enumerate() {
        let mut line = serde_json::to_string(a).expect("JSON");
        line.push('\n');
        seeds.push((format!("answer-{i}"), line.into_bytes()));
    }
    seeds
}

/// Each recorded journal, its entries moved (by one shift per file) so that the last
/// ends just before the target's period does.
fn journal(fuzz: &Path) -> std::io::Result<Seeds> {
    let mut seeds = Vec::new();
    for path in files(&fuzz.join("seeds/journal"))? {
        let text = std::fs::read_to_string(&path)?;
        let mut entries: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("journalctl -o json lines"))
            .collect();
        let time = |e: &serde_json::Value| -> i128 {
            e["__REALTIME_TIMESTAMP"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        let last = entries.iter().map(time).max().unwrap_or(0);
        let shift = i128::from(cloison_fuzz::journal::UNTIL) - 60_000_000 - last;
        for e in &mut entries {
            let t = time(e);
            e["__REALTIME_TIMESTAMP"] = serde_json::Value::String((t + shift).to_string());
        }
        let lines: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        // Whole, and in pieces of a few entries (short inputs mutate faster).
        seeds.push((
            format!("{name}-all"),
            (lines.join("\n") + "\n").into_bytes(),
        ));
        for (i, chunk) in lines.chunks(4).enumerate() {
            seeds.push((
                format!("{name}-{i:03}"),
                (chunk.join("\n") + "\n").into_bytes(),
            ));
        }
    }
    Ok(seeds)
}
