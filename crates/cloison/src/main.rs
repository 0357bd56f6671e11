//! The `cloison` binary: parses the command line, sets up logging, runs the subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cloison::cli::Cli;

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
    match cloison::commands::run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloison: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
