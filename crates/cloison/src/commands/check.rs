//! `cloison check`: validate the file, print a one-line summary or every error.

use std::process::ExitCode;

use crate::cli::Cli;

pub fn run(cli: &Cli) -> ExitCode {
    match super::load(cli) {
        Ok(l) => {
            println!("{}: valid: {}", l.path.display(), l.config.summary());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
