//! `cloison apply [--remove]`: apply once, fail-closed, and say what changed.

use std::process::ExitCode;

use crate::apply::RulesetChange;
use crate::cli::Cli;
use crate::kernel::System;

pub fn run(cli: &Cli, remove: bool) -> anyhow::Result<ExitCode> {
    let l = match super::load(cli) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if !remove {
        if let Err(e) = crate::config_file::refuse_untouched_example(&l.path) {
            eprintln!("cloison: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    let kernel = System::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if remove {
        let changes = rt.block_on(crate::apply::remove(&kernel))?;
        if changes.is_empty() {
            println!("nothing to remove: no cloison table, forwarding already off");
        }
        for c in changes {
            println!("{c}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let applied = rt.block_on(crate::apply::apply(&l.config, &kernel, &Default::default()))?;
    let short = applied.hash.short();
    match applied.ruleset {
        RulesetChange::Unchanged => println!("ruleset: unchanged (hash {short})"),
        RulesetChange::Installed => {
            println!("ruleset: installed table inet cloison (hash {short}), verified")
        }
        RulesetChange::Replaced => {
            println!(
                "ruleset: replaced in one transaction (hash {short}), verified; counters carried over"
            )
        }
    }
    for c in &applied.changes {
        println!("{c}");
    }
    for n in &applied.notes {
        println!("note: {n}");
    }
    if !applied.changed_anything() {
        println!("nothing changed: {} is already applied", l.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
