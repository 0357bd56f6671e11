//! Where the daemon keeps what must survive it, in the state directory
//! (`/var/lib/cloison` under systemd): the last configuration that applied successfully
//! ("last known good"), and the configurations an unconfirmed `reload --confirm` rolled
//! back (by hash: the admin's file is never rewritten, but that exact file is not
//! applied again implicitly). Written atomically (temporary file, fsync, rename), so a
//! crash mid-write never leaves a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

use cloison_core::config::{self, Config};
use cloison_core::hash::Hash;

const LAST_GOOD: &str = "last-good.toml";
const ROLLED_BACK: &str = "rolled-back.json";
/// How many rolled-back configurations are remembered.
const ROLLED_BACK_KEPT: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a list of rolled-back configurations", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the saved configuration {} no longer validates", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: config::Diagnostics,
    },
}

/// The state directory: `CLOISON_STATE_DIR`, else systemd's `STATE_DIRECTORY`, else
/// `/var/lib/cloison`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("CLOISON_STATE_DIR")
        .or_else(|| std::env::var_os("STATE_DIRECTORY"))
        .map_or_else(|| PathBuf::from("/var/lib/cloison"), PathBuf::from)
}

/// A configuration saved as last known good.
#[derive(Debug, Clone)]
pub struct LastGood {
    pub config: Config,
    pub source: String,
    pub hash: Hash,
    pub path: PathBuf,
}

pub fn save(dir: &Path, source: &str) -> Result<(), StateError> {
    write_atomically(dir, LAST_GOOD, source.as_bytes())
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StateError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| StateError::Write { path, source })
}

/// A configuration `reload --confirm` applied and rolled back, unconfirmed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RolledBack {
    /// SHA-256 of the file that was rolled back.
    pub hash: Hash,
    /// When, in seconds since the epoch.
    pub at: u64,
    /// The configuration that came back.
    pub back_to: Hash,
}

/// The configurations rolled back, most recent last.
pub fn rolled_back(dir: &Path) -> Result<Vec<RolledBack>, StateError> {
    let path = dir.join(ROLLED_BACK);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| StateError::Unreadable { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(StateError::Read { path, source }),
    }
}

/// Remembers a rollback (a file rolled back again moves to the end).
pub fn record_rollback(dir: &Path, rb: RolledBack) -> Result<(), StateError> {
    let mut all = rolled_back(dir).unwrap_or_default();
    all.retain(|r| r.hash != rb.hash);
    all.push(rb);
    let skip = all.len().saturating_sub(ROLLED_BACK_KEPT);
    let all: Vec<RolledBack> = all.into_iter().skip(skip).collect();
    write_atomically(
        dir,
        ROLLED_BACK,
        &serde_json::to_vec_pretty(&all).expect("serializes"),
    )
}

/// A rolled-back configuration was confirmed after all: it is one no longer.
pub fn forget_rollback(dir: &Path, hash: &Hash) -> Result<(), StateError> {
    let mut all = rolled_back(dir)?;
    let before = all.len();
    all.retain(|r| &r.hash != hash);
    if all.len() == before {
        return Ok(());
    }
    write_atomically(
        dir,
        ROLLED_BACK,
        &serde_json::to_vec_pretty(&all).expect("serializes"),
    )
}

/// The last known good configuration, if one was saved.
pub fn load(dir: &Path) -> Result<Option<LastGood>, StateError> {
    let path = dir.join(LAST_GOOD);
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Read { path, source }),
    };
    let config = config::parse(&source, &path.display().to_string()).map_err(|source| {
        StateError::Invalid {
            path: path.clone(),
            source,
        }
    })?;
    Ok(Some(LastGood {
        config,
        hash: Hash::of(source.as_bytes()),
        source,
        path,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollbacks_are_remembered_forgotten_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let h = |s: &str| Hash::of(s.as_bytes());
        assert!(rolled_back(dir.path()).unwrap().is_empty());
        for i in 0..20 {
            record_rollback(
                dir.path(),
                RolledBack {
                    hash: h(&i.to_string()),
                    at: 1000 + i,
                    back_to: h("good"),
                },
            )
            .unwrap();
        }
        let all = rolled_back(dir.path()).unwrap();
        assert_eq!(all.len(), ROLLED_BACK_KEPT);
        assert_eq!(all.last().unwrap().hash, h("19"));
        forget_rollback(dir.path(), &h("19")).unwrap();
        assert!(
            !rolled_back(dir.path())
                .unwrap()
                .iter()
                .any(|r| r.hash == h("19"))
        );
        std::fs::write(dir.path().join(ROLLED_BACK), "not json").unwrap();
        assert!(matches!(
            rolled_back(dir.path()),
            Err(StateError::Unreadable { .. })
        ));
    }

    #[test]
    fn saves_and_loads_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let src = include_str!("../../../../config/lab.toml");
        save(dir.path(), src).unwrap();
        let got = load(dir.path()).unwrap().unwrap();
        assert_eq!(got.source, src);
        assert_eq!(got.hash, Hash::of(src.as_bytes()));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [std::ffi::OsString::from(LAST_GOOD)],
            "no temporary file left"
        );
    }
}
