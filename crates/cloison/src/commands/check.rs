//! `cloison check`: validate the file, print a one-line summary or every error, and what
//! is valid but probably not meant (warnings, on stderr; the exit status stays 0).

use std::process::ExitCode;

use crate::cli::Cli;

pub fn run(cli: &Cli) -> ExitCode {
    match super::load(cli) {
        Ok(l) => {
            println!("{}: valid: {}", l.path.display(), l.config.summary());
            for w in l.config.warnings() {
                eprintln!("{}: warning: {w}", l.path.display());
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
