//! Where the two programs the lab runs live: `cloison`, the daemon under test (run in the
//! router as systemd would), and `cloison-lab`, this crate's tool (the hosts' listeners,
//! probes and frames). Both are built by cargo into the same target directory.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Programs {
    /// The product: `cloison run`, `cloison status`...
    pub cloison: PathBuf,
    /// The harness: `cloison-lab serve`, `cloison-lab probe`...
    pub lab: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ProgramsError {
    #[error("cannot find the running executable")]
    Exe(#[source] std::io::Error),
    #[error(
        "{} does not exist: build both programs first (`cargo build --workspace`, or `--release` for tests/lab), or set {var}",
        path.display()
    )]
    Missing { path: PathBuf, var: &'static str },
}

impl Programs {
    /// Fails when a program is older than the sources it is built from (in a checkout):
    /// `cargo test -p cloison-lab` builds this crate, not the `cloison` binary, and a
    /// test must never pass against a stale one. `cargo nextest run --workspace` (what
    /// tests/run does) builds both.
    pub fn check_fresh(&self, repo: &Path) -> Result<(), String> {
        for (program, crates) in [
            (&self.cloison, &["cloison", "cloison-core"][..]),
            (&self.lab, &["cloison-lab", "cloison", "cloison-core"][..]),
        ] {
            let built =
                modified(program).ok_or_else(|| format!("cannot stat {}", program.display()))?;
            for c in crates {
                let src = repo.join("crates").join(c).join("src");
                if let Some((path, at)) = newest(&src) {
                    if at > built {
                        return Err(format!(
                            "{} is older than {}: build the workspace first (`cargo build --workspace`, or run the tests with `cargo nextest run --workspace`)",
                            program.display(),
                            path.display()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `CLOISON_BIN` and `CLOISON_LAB_BIN` when set; otherwise the programs next to the
    /// running executable (`target/<profile>/`, also for tests and benches, which cargo
    /// builds in `target/<profile>/deps/`).
    pub fn find() -> Result<Programs, ProgramsError> {
        let exe = std::env::current_exe().map_err(ProgramsError::Exe)?;
        let mut dir = exe.parent().unwrap_or(Path::new("/")).to_owned();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let pick = |var: &'static str, name: &str| -> Result<PathBuf, ProgramsError> {
            let path = std::env::var_os(var).map_or_else(|| dir.join(name), PathBuf::from);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ProgramsError::Missing { path, var })
            }
        };
        Ok(Programs {
            cloison: pick("CLOISON_BIN", "cloison")?,
            lab: pick("CLOISON_LAB_BIN", "cloison-lab")?,
        })
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The most recently modified file under `dir`.
fn newest(dir: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let mut best: Option<(PathBuf, std::time::SystemTime)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let found = if path.is_dir() {
            newest(&path)
        } else {
            modified(&path).map(|t| (path, t))
        };
        if let Some((p, t)) = found {
            if best.as_ref().is_none_or(|(_, b)| t > *b) {
                best = Some((p, t));
            }
        }
    }
    best
}
