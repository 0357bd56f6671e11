//! `cloison status`: the live table against the configuration, the policy in words, and
//! the daemon's view. Exit status: 0 in sync, 1 drifted or missing (or, with
//! `--require-daemon`, no daemon), 2 unreadable configuration, 3 could not check.

use std::process::ExitCode;
use std::time::SystemTime;

use cloison_core::describe;
use serde_json::json;

use crate::cli::Cli;
use crate::daemon::control::DaemonStatus;
use crate::status::{CheckedBy, NoDaemon, Observation, router_name};

use super::{CONTROL_TIMEOUT, EXIT_UNCHECKED};

/// The version of `cloison status --json`'s shape; raised when a field changes meaning
/// or goes away (new fields do not raise it).
pub const JSON_SCHEMA_VERSION: u32 = 1;

pub fn run(cli: &Cli, json: bool, require_daemon: bool) -> anyhow::Result<ExitCode> {
    let l = match super::load(cli) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let seen = Observation::take(
        &l.config,
        &super::control::runtime_dir(cli),
        CONTROL_TIMEOUT,
    );
    let router = router_name(&l.config);
    if json {
        let mut v = json!({
            "schema_version": JSON_SCHEMA_VERSION,
            "version": env!("CARGO_PKG_VERSION"),
            "router": router,
            "timestamp": SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            "config_path": l.path.display().to_string(),
            "config_hash": l.hash,
        });
        match &seen.check {
            Ok((status, by)) => {
                // The status's own fields stay at the top level (sync, plan_hash,
                // live_hash, forwarding, counters), as before the schema version.
                if let (Some(obj), serde_json::Value::Object(fields)) =
                    (v.as_object_mut(), serde_json::to_value(status)?)
                {
                    obj.extend(fields);
                }
                v["checked"] = json!(true);
                v["checked_by"] = serde_json::to_value(by)?;
                v["in_sync"] = json!(status.in_sync());
            }
            Err(why) => {
                v["checked"] = json!(false);
                v["check_error"] = json!(why);
            }
        }
        v["daemon"] = match &seen.daemon {
            Ok(d) => {
                let mut d = serde_json::to_value(d)?;
                d["running"] = json!(true);
                d
            }
            Err(NoDaemon::NotRunning(e)) => json!({ "running": false, "error": e }),
            Err(NoDaemon::Unreachable(e)) => json!({ "running": null, "error": e }),
        };
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&l, &router, &seen));
    }
    Ok(exit_code(&seen, require_daemon))
}

fn exit_code(seen: &Observation, require_daemon: bool) -> ExitCode {
    match &seen.check {
        Err(_) => ExitCode::from(EXIT_UNCHECKED),
        Ok((s, _)) if s.in_sync() && (seen.daemon.is_ok() || !require_daemon) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
    }
}

fn render(l: &crate::config_file::Loaded, router: &str, seen: &Observation) -> String {
    let mut out = format!(
        "router:     {router} (cloison {})\n",
        env!("CARGO_PKG_VERSION")
    );
    match &seen.check {
        Ok((status, by)) => {
            out.push_str(&status.render());
            if *by == CheckedBy::Daemon {
                out.push_str(
                    "            (read by the daemon, against the configuration it runs: this account may not read the table itself)\n",
                );
            }
        }
        Err(why) => out.push_str(&format!(
            "ruleset:    COULD NOT CHECK: {why}\n            run it as root, or as a member of the `cloison` group while the daemon runs\n"
        )),
    }
    out.push_str(&format!(
        "policy:     {} (everything not listed is blocked and counted):\n",
        l.path.display()
    ));
    out.push_str(&describe::policy_text(&l.config));
    match &seen.daemon {
        Ok(d) => out.push_str(&render_daemon(d, l)),
        Err(NoDaemon::NotRunning(e)) => out.push_str(&format!(
            "daemon:     NOT RUNNING ({e}); the rules above stay in force without it\n"
        )),
        Err(NoDaemon::Unreachable(e)) => out.push_str(&format!("daemon:     CANNOT ASK IT: {e}\n")),
    }
    out
}

fn render_daemon(d: &DaemonStatus, l: &crate::config_file::Loaded) -> String {
    let mut out = format!(
        "daemon:     running for {} (pid {}), config {} ({}) from {}\n",
        describe::duration(d.uptime_secs),
        d.pid,
        d.config_hash.short(),
        d.config_path,
        d.config_source
    );
    if d.config_hash != l.hash {
        out.push_str(&format!(
            "config:     {} (hash {}) is not what the daemon runs: `cloison reload` applies it\n",
            l.path.display(),
            l.hash.short()
        ));
    }
    if let Some(s) = d.confirm_pending_secs {
        out.push_str(&format!("confirm:    WAITING: the last reload is rolled back in {} unless `cloison confirm` is run\n", describe::duration(s)));
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
