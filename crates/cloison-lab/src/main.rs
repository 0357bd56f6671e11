//! `cloison-lab`: the simulated mairie and its tools. Part of the test harness; the
//! Debian package never installs it.

use std::process::ExitCode;

use clap::Parser;
use cloison_lab::cli::{LabAction, LabArgs};

fn main() -> ExitCode {
    let args = LabArgs::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CLOISON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match &args.action {
        Some(LabAction::Serve(s)) => cloison_lab::serve(s).map(|()| 0),
        Some(LabAction::Probe(p)) => cloison_lab::probe(p).map(|line| {
            println!("{line}");
            0
        }),
        Some(LabAction::Frame(f)) => cloison_lab::frame(f).map(|()| 0),
        Some(LabAction::Down { id }) => cloison_lab::demo::down(id.as_deref()).map_err(Into::into),
        None => cloison_lab::demo::run(&args).map_err(Into::into),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("cloison-lab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
