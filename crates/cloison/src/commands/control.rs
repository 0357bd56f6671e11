//! `cloison reload [--confirm N]` and `cloison confirm`: requests to the running daemon.

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::Cli;
use crate::daemon::control::{self, Request, Response};

/// How long the CLI waits for the daemon (a reload applies a whole configuration).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// The control socket's directory: `--runtime-dir`, else the environment's default.
pub fn runtime_dir(cli: &Cli) -> std::path::PathBuf {
    cli.runtime_dir.clone().unwrap_or_else(control::runtime_dir)
}

/// Sends a request to the running daemon and prints its answer.
fn talk(cli: &Cli, req: &Request) -> anyhow::Result<ExitCode> {
    match control::request(&runtime_dir(cli), req, CONTROL_TIMEOUT)? {
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

/// The configuration file as the daemon must be running it: `-c`, made absolute.
fn config_path(cli: &Cli) -> String {
    std::path::absolute(&cli.config)
        .unwrap_or_else(|_| cli.config.clone())
        .display()
        .to_string()
}

pub fn reload(cli: &Cli, confirm: Option<u64>) -> anyhow::Result<ExitCode> {
    talk(
        cli,
        &Request::Reload {
            confirm_secs: confirm,
            config: Some(config_path(cli)),
        },
    )
}

pub fn confirm(cli: &Cli) -> anyhow::Result<ExitCode> {
    talk(
        cli,
        &Request::Confirm {
            config: Some(config_path(cli)),
        },
    )
}
