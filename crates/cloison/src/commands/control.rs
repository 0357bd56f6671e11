//! `cloison reload [--confirm N]` and `cloison confirm`: requests to the running daemon.

use std::process::ExitCode;
use std::time::Duration;

use crate::daemon::control::{self, Request, Response};

/// How long the CLI waits for the daemon (a reload applies a whole configuration).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

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

pub fn reload(confirm: Option<u64>) -> anyhow::Result<ExitCode> {
    talk(&Request::Reload {
        confirm_secs: confirm,
    })
}

pub fn confirm() -> anyhow::Result<ExitCode> {
    talk(&Request::Confirm)
}
