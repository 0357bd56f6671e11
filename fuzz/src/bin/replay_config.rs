//! The config target's differential check, outside the fuzz loop: every corpus entry
//! that validates is planned, and nft must accept the planned batch, in its JSON form
//! (`nft -c -j -f -`, what `cloison apply` sends) and in its text form (`nft -c -f -`,
//! what `cloison plan` prints). Each check runs in a network namespace of its own
//! (`unshare --net`), which disappears with nft: nothing touches the machine's network.
//! Rulesets are checked once each (many entries plan the same).
//!
//! Usage (as root): replay-config [CORPUS_DIR]   (default fuzz/corpus/config)
//! Prints the figures docs/robustness.md records; exits 1 if nft refused any batch, and
//! copies those entries to fuzz/artifacts/config-nft/.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() -> std::io::Result<()> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| fuzz.join("corpus/config"), PathBuf::from);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    let started = std::time::Instant::now();
    let mut refused = 0usize;
    // Ruleset hash -> (first entry that planned it, batch JSON, batch text).
    let mut rulesets: BTreeMap<String, (PathBuf, String, String)> = BTreeMap::new();
    let mut planned = 0usize;
    for path in &entries {
        let data = std::fs::read(path)?;
        match cloison_fuzz::config::plan_of(&data) {
            None => refused += 1,
            Some(plan) => {
                planned += 1;
                rulesets.entry(plan.hash().to_string()).or_insert_with(|| {
                    (
                        path.clone(),
                        plan.ruleset_json().to_string(),
                        plan.ruleset_text(),
                    )
                });
            }
        }
    }
    let mut failures = Vec::new();
    for (path, json, text) in rulesets.values() {
        for (form, args, input) in [
            ("json", &["-c", "-j", "-f", "-"][..], json),
            ("text", &["-c", "-f", "-"][..], text),
        ] {
            if let Err(stderr) = nft_check(args, input) {
                failures.push((path.clone(), form, stderr));
            }
        }
    }
    println!(
        "{} entries: {refused} refused by validation, {planned} planned, {} distinct rulesets; \
         nft -c accepted {} of {} batches (JSON and text) in {:.1} s",
        entries.len(),
        rulesets.len(),
        rulesets.len() * 2 - failures.len(),
        rulesets.len() * 2,
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        return Ok(());
    }
    let out = fuzz.join("artifacts/config-nft");
    std::fs::create_dir_all(&out)?;
    for (path, form, stderr) in &failures {
        let name = path.file_name().unwrap_or_default();
        std::fs::copy(path, out.join(name))?;
        println!(
            "REFUSED ({form}) {}: {}",
            path.display(),
            stderr.lines().take(6).collect::<Vec<_>>().join(" | ")
        );
    }
    std::process::exit(1);
}

/// `nft <args>` with `input` on stdin, in a network namespace of its own.
fn nft_check(args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new("unshare")
        .args(["--net", "--", "nft"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run unshare/nft: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
