//! `cloison verify [--dry-run] [--json]`: proves the isolation on this box (see
//! `crate::verify`), prints the table or the JSON, journals the run and records it for
//! `cloison metrics`.

use std::process::ExitCode;

use serde_json::json;

use cloison_core::verify::schedule::{self, Due};

use crate::cli::Cli;
use crate::journal::JournalWriter;
use crate::status::{error_text, router_name};
use crate::verify;

/// Could not verify at all.
const EXIT_COULD_NOT: u8 = 3;

pub fn run(cli: &Cli, dry_run: bool, json: bool, if_due: bool) -> anyhow::Result<ExitCode> {
    let l = match super::load(cli) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let config = &l.config;
    if if_due {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let last = super::metrics::verify_record(cli);
        match schedule::due(config.verify.every, last.as_ref(), &l.hash, now) {
            Due::Never => {
                println!("no [verify] every in {}: nothing to do", l.path.display());
                return Ok(ExitCode::SUCCESS);
            }
            Due::NotUntil(at) => {
                println!(
                    "not due: the last run passed; the next is due in {} s",
                    at.saturating_sub(now)
                );
                return Ok(ExitCode::SUCCESS);
            }
            Due::Now(why) => println!("due: {why}"),
        }
    }
    if dry_run {
        let (hosts, probes) = verify::dry_run(config);
        if json {
            let list: Vec<_> = probes
                .iter()
                .map(|p| {
                    json!({
                        "from": p.from.as_str(),
                        "to": p.decision.destination.name(),
                        "target": p.target.to_string(),
                        "what": p.kind.to_string(),
                        "probe": p.l4.to_string(),
                        "expected": format!("{:?}", p.decision.verdict).to_lowercase(),
                        "reason": p.decision.reason,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "probes": list }))?
            );
        } else {
            for h in &hosts {
                let v6 = h.v6.map(|a| format!(", {a}")).unwrap_or_default();
                let chosen = if config.verify.probe_addresses.contains_key(&h.segment) {
                    "configured"
                } else {
                    "or the first free address below it, found at run time"
                };
                println!("probe host of {}: {}{v6} ({chosen})", h.segment, h.v4);
            }
            println!();
            for p in &probes {
                println!(
                    "{} -> {} {} ({}) {}: expected {} ({})",
                    p.from,
                    p.decision.destination.name(),
                    p.target,
                    p.kind,
                    p.l4,
                    format!("{:?}", p.decision.verdict).to_lowercase(),
                    p.decision.reason
                );
            }
            let secs =
                probes.len() / (verify::send::RATE_PER_SECOND as usize * hosts.len().max(1)) + 2;
            println!(
                "\n{} probes from {} segments; about {secs} s; nothing was sent.",
                probes.len(),
                hosts.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    let runtime_dir = super::control::runtime_dir(cli);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(verify::run(config, &runtime_dir, interrupted()));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cloison verify: {}", error_text(&e));
            return Ok(ExitCode::from(EXIT_COULD_NOT));
        }
    };
    for c in &outcome.cleaned {
        eprintln!("cloison verify: removed {c}, left by a run that was killed");
    }
    for p in &outcome.left {
        eprintln!("cloison verify: could not remove: {p}");
    }
    let router = router_name(config);
    let hash = l.hash.to_string();
    let mut sink = JournalWriter::new();
    verify::journal(&mut sink, &router, &outcome, &hash);
    let state_dir = cli
        .state_dir
        .clone()
        .unwrap_or_else(crate::daemon::state::state_dir);
    if let Err(e) = verify::write_record(&state_dir, &outcome, &l.hash) {
        eprintln!(
            "cloison verify: cannot record the run in {}: {e}",
            state_dir.display()
        );
    }
    if json {
        let doc = json!({
            "router": router,
            "config_path": l.path.display().to_string(),
            "config_hash": hash,
            "started": outcome.started.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
            "seconds": outcome.took.as_secs_f64(),
            "passed": outcome.passed(),
            "probes": outcome.judged.len(),
            "failures": outcome.failures(),
            "hosts": outcome.hosts.iter().map(|h| json!({
                "segment": h.segment.as_str(),
                "address": h.v4.to_string(),
                "address6": h.v6.map(|a| a.to_string()),
            })).collect::<Vec<_>>(),
            "result": outcome.result,
            "judged": outcome.judged,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for h in &outcome.hosts {
            let v6 = h.v6.map(|a| format!(", {a}")).unwrap_or_default();
            println!("probe host of {}: {}{v6}", h.segment, h.v4);
        }
        println!();
        print!("{}", cloison_core::verify::text::table(&outcome.judged));
        println!("({:.1} s)", outcome.took.as_secs_f64());
    }
    Ok(if outcome.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
