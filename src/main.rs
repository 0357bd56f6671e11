//! The `cloison` binary: parses the command line, sets up logging, calls the library.

use std::process::ExitCode;

use clap::Parser;
use cloison::apply::RulesetChange;
use cloison::cli::{Cli, Command, LabAction};
use cloison::config::{self, LoadError};
use cloison::nft::Nft;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
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

fn load(cli: &Cli) -> Result<config::Loaded, ExitCode> {
    config::load(&cli.config).map_err(|e| {
        eprintln!("{e}");
        match e {
            LoadError::Read { .. } => ExitCode::from(EXIT_USAGE),
            LoadError::Invalid(_) => ExitCode::FAILURE,
        }
    })
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
                print!("{}", cloison::plan::plan(&l.config).report(*json));
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        Command::Apply { remove } => {
            let l = match load(&cli) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let nft = Nft::default();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            if *remove {
                let changes = rt.block_on(cloison::apply::remove(&l.config, &nft))?;
                if changes.is_empty() {
                    println!("nothing to remove: no cloison table, forwarding already off");
                }
                for c in changes {
                    println!("{c}");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let applied = rt.block_on(cloison::apply::apply(&l.config, &nft))?;
            let short = &applied.hash[..12];
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
            require_daemon: _,
        } => {
            let l = match load(&cli) {
                Ok(l) => l,
                Err(code) => return Ok(code),
            };
            let status = cloison::status::check(&l.config, &Nft::default())?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
            Ok(if status.in_sync() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Lab(args) => match &args.action {
            Some(LabAction::Serve(s)) => cloison::lab::serve(s).map(|()| ExitCode::SUCCESS),
            _ => anyhow::bail!("the lab is not written yet"),
        },
        other => anyhow::bail!("`{other:?}` is not written yet"),
    }
}
