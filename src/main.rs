//! The `cloison` binary: parses the command line, sets up logging, calls the library.

use std::process::ExitCode;

use clap::Parser;
use cloison::cli::{Cli, Command, LabAction};
use cloison::config::{self, LoadError};

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
        Command::Lab(args) => match &args.action {
            Some(LabAction::Serve(s)) => cloison::lab::serve(s).map(|()| ExitCode::SUCCESS),
            _ => anyhow::bail!("the lab is not written yet"),
        },
        other => anyhow::bail!("`{other:?}` is not written yet"),
    }
}
