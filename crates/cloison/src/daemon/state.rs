//! Where the daemon keeps what must survive it: the last configuration that applied
//! successfully ("last known good"), in the state directory (`/var/lib/cloison` under
//! systemd). Written atomically (temporary file, fsync, rename), so a crash mid-write
//! never leaves a torn file.

use std::io::Write;
use std::path::{Path, PathBuf};

use cloison_core::config::{self, Config};
use cloison_core::hash::Hash;

const LAST_GOOD: &str = "last-good.toml";

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
    let path = dir.join(LAST_GOOD);
    let tmp = dir.join(format!(".{LAST_GOOD}.tmp"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(source.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| StateError::Write { path, source })
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
