//! `cloison check`: validate the file, print a one-line summary or every error; warn
//! (on stderr, the exit status stays 0) about what is valid but probably not meant and
//! what on this box would undo cloison's rules; and the unit's start condition,
//! `cloison configured`.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::Cli;
use crate::config_file;

/// nftables.service's configuration (overridable for tests).
const NFTABLES_CONF: &str = "/etc/nftables.conf";

pub fn run(cli: &Cli) -> ExitCode {
    match super::load(cli) {
        Ok(l) => {
            println!("{}: valid: {}", l.path.display(), l.config.summary());
            for w in l.config.warnings() {
                eprintln!("{}: warning: {w}", l.path.display());
            }
            let conf = std::env::var_os("CLOISON_NFTABLES_CONF")
                .map_or_else(|| Path::new(NFTABLES_CONF).to_owned(), Into::into);
            if let Some(warning) = nftables_conf_warning(&conf) {
                eprintln!("{warning}");
            }
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

/// A warning when nftables.service's configuration flushes the whole ruleset.
fn nftables_conf_warning(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = flush_ruleset_line(&text)?;
    Some(format!(
        "warning: {}:{line}: `flush ruleset` removes cloison's table at every start of \
         nftables.service (an upgrade of the nftables package restarts it). cloison puts the \
         table back within tens of milliseconds and its second wall holds meanwhile, but to \
         flush only your own rules, replace that line with `table inet filter` then `delete \
         table inet filter` (docs/operations.md, \"Living with other tools\")",
        path.display()
    ))
}

/// The line number of an uncommented `flush ruleset`, if any.
fn flush_ruleset_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let code = l.split('#').next().unwrap_or("");
            let words: Vec<&str> = code.split_whitespace().collect();
            words.windows(2).any(|w| w == ["flush", "ruleset"])
        })
        .map(|i| i + 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_flush_of_the_whole_ruleset_and_nothing_else() {
        let debian = "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n";
        assert_eq!(flush_ruleset_line(debian), Some(3));
        assert_eq!(flush_ruleset_line("# flush ruleset\n"), None);
        assert_eq!(flush_ruleset_line("flush table inet filter\n"), None);
        assert_eq!(flush_ruleset_line("  flush   ruleset  # yes\n"), Some(1));
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nftables.conf");
        std::fs::write(&conf, debian).unwrap();
        let w = nftables_conf_warning(&conf).unwrap();
        assert!(
            w.contains("nftables.conf:3") && w.contains("delete table inet filter"),
            "{w}"
        );
        assert!(nftables_conf_warning(&dir.path().join("absent")).is_none());
    }
}
