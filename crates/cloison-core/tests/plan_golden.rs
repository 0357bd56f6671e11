//! Snapshot tests of `cloison plan` for the shipped configurations. The plan must be
//! deterministic (byte-identical for the same configuration) and any change to it must
//! show up in review as a change to tests/golden/. Regenerate with UPDATE_GOLDEN=1.

use std::fs;

use cloison_core::config;
use cloison_core::plan::plan;

fn golden(config_path: &str, name: &str) {
    let source = fs::read_to_string(format!("../../{config_path}")).expect("read the config");
    let config = config::parse(&source, config_path).unwrap_or_else(|e| panic!("{e}"));
    for (json, ext) in [(false, "nft"), (true, "json")] {
        let got = plan(&config).report(json);
        let again = plan(&config).report(json);
        assert_eq!(got, again, "the plan of {config_path} is not deterministic");
        let path = format!("tests/golden/{name}.{ext}");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            fs::write(&path, &got).expect("write golden");
            continue;
        }
        let want = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "plan of {config_path} differs from {path} at line {}:\n  got:  {}\n  want: {}\n(if the change is intended, regenerate with UPDATE_GOLDEN=1 and review the diff)",
                line + 1,
                got.lines().nth(line).unwrap_or(""),
                want.lines().nth(line).unwrap_or("")
            );
        }
    }
}

#[test]
fn example_plan_matches_golden() {
    golden("config/cloison.toml", "cloison");
}

#[test]
fn lab_plan_matches_golden() {
    golden("config/lab.toml", "lab");
}
