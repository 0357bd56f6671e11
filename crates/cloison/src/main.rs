//! The `cloison` binary: parses the command line, sets up logging, calls the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use std::time::Duration;

use clap::Parser;
use cloison::apply::RulesetChange;
use cloison::cli::{Cli, Command};
use cloison::config_file::{self, LoadError, Loaded};
use cloison::daemon::control::{self, Request, Response};
use cloison::kernel::System;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Under systemd, stderr goes to the journal, which has its own timestamps and shows
    // text as text: no colour codes, no second timestamp there.
    let to_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISON_LOG")
                .unwrap_or_else(|_| "info".into()),
        );
    if to_journal {
        builder.without_time().init();
    } else {
        builder.init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloison: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status for an unreadable file or a usage error (clap uses 2 too).
const EXIT_USAGE: u8 = 2;

fn load(cli: &Cli) -> Result<Loaded, ExitCode> {
    config_file::load(&cli.config).map_err(|e| {
        eprintln!("{e}");
        match e {
            LoadError::Read { .. } => ExitCode::from(EXIT_USAGE),
            LoadError::Invalid(_) => ExitCode::FAILURE,
        }
    })
}

/// How long the CLI waits for the daemon (a reload applies a whole configuration).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends a request to the running daemon and prints its answer.
fn talk(req: &Request) -> anyhow::Result<ExitCode> {
    match control::request(&control::runtime_dir(), req, CONTROL_TIMEOUT)? {
        Response::Done { message } => {
            println!("{message}");
            Ok(ExitCode::SUCCESS)
        }
        Response::Error { message } => {
            eprintln!("cloison: {message}");
            Ok(ExitCode::FAILURE)
        }
        Response::Status(_) => anyhow::bail!("the daemon answered with a status"),
    }
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Check => Ok(match load(&cli) {
            Ok(l) => {
                println!("{}: valid: {}", l.path.display(), l.config.summary());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        Command::Plan { json } => Ok(match load(&cli) {
            Ok(l) => {
                print!("{}", cloison_core::plan::plan(&l.config).report(*json));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        Command::Apply { remove } => {
            let l = match load(&cli) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let kernel = System::new();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if *remove {
                let changes = rt.block_on(cloison::apply::remove(&kernel))?;
                if changes.is_empty() {
                    println!("nothing to remove: no cloison table, forwarding already off");
                }
                for c in changes {
                    println!("{c}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let applied = rt.block_on(cloison::apply::apply(
                &l.config,
                &kernel,
                &Default::default(),
            ))?;
            let short = applied.hash.short();
            match applied.ruleset {
                RulesetChange::Unchanged => println!("ruleset: unchanged (hash {short})"),
                RulesetChange::Installed => {
                    println!("ruleset: installed table inet cloison (hash {short}), verified")
                }
                RulesetChange::Replaced => {
                    println!(
                        "ruleset: replaced in one transaction (hash {short}), verified; counters carried over"
                    )
                }
            }
            for c in &applied.changes {
                println!("{c}");
            }
            for n in &applied.notes {
                println!("note: {n}");
            }
            if !applied.changed_anything() {
                println!("nothing changed: {} is already applied", l.path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status {
            json,
            require_daemon,
        } => {
            let l = match load(&cli) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let status = cloison::status::check(&l.config, &System::new())?;
            let daemon = match control::request(
                &control::runtime_dir(),
                &Request::Status,
                CONTROL_TIMEOUT,
            ) {
                Ok(Response::Status(d)) => Ok(d),
                Ok(other) => Err(format!("unexpected answer: {other:?}")),
                Err(e) => Err(e.to_string()),
            };
            if *json {
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
                    Err(e) => println!(
                        "daemon:     NOT RUNNING ({e}); the rules above stay in force without it"
                    ),
                }
            }
            let ok = status.in_sync() && (daemon.is_ok() || !*require_daemon);
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let opts = cloison::daemon::Options::new(cli.config.clone());
            rt.block_on(cloison::daemon::run(opts, std::future::pending()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { confirm } => talk(&Request::Reload {
            confirm_secs: *confirm,
        }),
        Command::Confirm => talk(&Request::Confirm),
        Command::Manpages { dir } => {
            std::fs::create_dir_all(dir)?;
            for (name, page) in cloison::cli::manpages() {
                std::fs::write(dir.join(name), page)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
