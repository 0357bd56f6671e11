//! `cloison check`: validate the file, print a one-line summary or every error; and the
//! unit's start condition, `cloison configured`.

use std::process::ExitCode;

use crate::cli::Cli;
use crate::config_file;

pub fn run(cli: &Cli) -> ExitCode {
    match super::load(cli) {
        Ok(l) => {
            println!("{}: valid: {}", l.path.display(), l.config.summary());
            if config_file::is_shipped_example(l.source.as_bytes()) {
                println!(
                    "note: this is the example shipped with cloison, unedited: `cloison run` and `cloison apply` refuse it until it is edited for this box"
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// 1, saying why, when the file is the example the package installs, unedited; 0
/// otherwise (whether it is valid is `cloison run`'s to judge, with its fallback to the
/// last configuration that applied).
pub fn configured(cli: &Cli) -> ExitCode {
    match config_file::refuse_untouched_example(&cli.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloison: {e}");
            ExitCode::FAILURE
        }
    }
}
