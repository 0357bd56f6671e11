//! `cloison status`: the live table against the configuration, and the daemon's view.

use std::process::ExitCode;

use crate::cli::Cli;
use crate::daemon::control::{self, Request, Response};
use crate::kernel::System;

use super::CONTROL_TIMEOUT;

pub fn run(cli: &Cli, json: bool, require_daemon: bool) -> anyhow::Result<ExitCode> {
    let l = match super::load(cli) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = rt.block_on(crate::status::check(&l.config, &System::new()))?;
    let daemon = match control::request(
        &super::control::runtime_dir(cli),
        &Request::Status,
        CONTROL_TIMEOUT,
    ) {
        Ok(Response::Status(d)) => Ok(d),
        Ok(other) => Err(format!("unexpected answer: {other:?}")),
        Err(e) => Err(e.to_string()),
    };
    if json {
        let mut v = serde_json::to_value(&status)?;
        v["daemon"] = match &daemon {
            Ok(d) => serde_json::to_value(d)?,
            Err(e) => serde_json::json!({ "running": false, "error": e }),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", status.render());
        match &daemon {
            Ok(d) => print!("{}", render_daemon(d)),
            Err(e) => {
                println!("daemon:     NOT RUNNING ({e}); the rules above stay in force without it")
            }
        }
    }
    let ok = status.in_sync() && (daemon.is_ok() || !require_daemon);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render_daemon(d: &control::DaemonStatus) -> String {
    let mut out = format!(
        "daemon:     running (pid {}, up {} s), config {} ({}) from {}\n",
        d.pid,
        d.uptime_secs,
        d.config_hash.short(),
        d.config_path,
        d.config_source
    );
    if let Some(s) = d.confirm_pending_secs {
        out.push_str(&format!("confirm:    WAITING: the last reload is rolled back in {s} s unless `cloison confirm` is run\n"));
    }
    if let Some(rb) = &d.last_rollback {
        out.push_str(&format!(
            "rollback:   configuration {} was rolled back to {} on {} (not confirmed); that file is not applied again unless `cloison reload --confirm` is run\n",
            rb.hash.short(),
            rb.back_to.short(),
            cloison_core::alert::rfc3339(rb.at.saturating_mul(1_000_000))
        ));
    }
    if d.alerts_last_hour.is_empty() {
        out.push_str("alerts:     none in the last hour\n");
    } else {
        let list: Vec<String> = d
            .alerts_last_hour
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!("alerts:     last hour: {}\n", list.join(", ")));
    }
    for (iface, c) in &d.capture {
        out.push_str(&format!(
            "capture:    {iface}: {} frames inspected, {} dropped by the kernel\n",
            c.received, c.dropped
        ));
    }
    if d.drift_repairs > 0 {
        out.push_str(&format!(
            "repairs:    {} drift repair(s) since start\n",
            d.drift_repairs
        ));
    }
    out
}
