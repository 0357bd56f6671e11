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
