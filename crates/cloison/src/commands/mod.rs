//! One module per subcommand: what it does with the library and what it prints. The
//! binary's `main` parses the command line and dispatches here.

mod apply;
mod check;
mod control;
mod metrics;
mod plan;
mod report;
mod status;
mod verify;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::config_file::{self, LoadError, Loaded};

pub use control::CONTROL_TIMEOUT;

/// Exit status for an unreadable file or a usage error (clap uses 2 too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status of `cloison status` when the live table could not be checked at all (no
/// permission to read it, and no daemon to ask): not the same as "drifted" (1).
pub const EXIT_UNCHECKED: u8 = 3;

/// Runs the subcommand; the exit status, or an error `main` prints with its causes.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Check => Ok(check::run(cli)),
        Command::Plan { json } => Ok(plan::run(cli, *json)),
        Command::Apply { remove } => apply::run(cli, *remove),
        Command::Status {
            json,
            require_daemon,
        } => status::run(cli, *json, *require_daemon),
        Command::Metrics { output } => metrics::run(cli, output.as_deref()),
        Command::Run => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let mut opts = crate::daemon::Options::new(cli.config.clone());
            if let Some(dir) = &cli.state_dir {
                opts.state_dir.clone_from(dir);
            }
            if let Some(dir) = &cli.runtime_dir {
                opts.runtime_dir.clone_from(dir);
            }
            rt.block_on(crate::daemon::run(opts, std::future::pending()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reload { confirm } => control::reload(cli, *confirm),
        Command::Confirm => control::confirm(cli),
        Command::Report {
            since,
            lang,
            output,
            directory,
        } => report::run(
            cli,
            &report::Options {
                since,
                lang,
                output,
                directory: directory.as_deref(),
            },
        ),
        Command::Verify {
            dry_run,
            json,
            if_due,
        } => verify::run(cli, *dry_run, *json, *if_due),
        Command::Configured => Ok(check::configured(cli)),
        Command::Manpages { dir } => {
            write_all(dir, crate::manual::pages())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { dir } => {
            write_all(dir, crate::manual::completions())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `(relative path, contents)` pairs under `dir`.
fn write_all(dir: &std::path::Path, files: Vec<(String, impl AsRef<[u8]>)>) -> std::io::Result<()> {
    for (path, contents) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, contents)?;
    }
    Ok(())
}

/// The configuration, or the exit status after printing why it cannot be used.
fn load(cli: &Cli) -> Result<Loaded, ExitCode> {
    config_file::load(&cli.config).map_err(|e| {
        eprintln!("{e}");
        match e {
            LoadError::Read { .. } => ExitCode::from(EXIT_USAGE),
            LoadError::Invalid(_) => ExitCode::FAILURE,
        }
    })
}
