//! `cloison plan`: what would be applied, without touching anything.

use std::process::ExitCode;

use crate::cli::Cli;

pub fn run(cli: &Cli, json: bool) -> ExitCode {
    match super::load(cli) {
        Ok(l) => {
            print!("{}", cloison_core::plan::plan(&l.config).report(json));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
