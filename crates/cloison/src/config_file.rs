//! Reading the configuration file: the edge in front of `cloison_core::config`, which
//! validates its bytes (a file that is not UTF-8 is an error of the file, located like
//! the others, not a read error).

use std::path::{Path, PathBuf};

pub use cloison_core::config::{DEFAULT_PATH, Diagnostics, Loaded};

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

impl LoadError {
    /// The errors, one per line (for alerts and control answers).
    pub fn lines(&self) -> String {
        match self {
            LoadError::Invalid(d) => d.lines().join("\n"),
            LoadError::Read { .. } => self.to_string(),
        }
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    Loaded::parse(path, bytes).map_err(LoadError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_latin1_is_invalid_and_located_not_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloison.toml");
        std::fs::write(
            &path,
            b"# Mairie de Duc\xe9\n[segments.a]\ninterface = \"eth1\"\naddress = \"10.0.0.1/24\"\n",
        )
        .unwrap();
        match load(&path) {
            Err(LoadError::Invalid(d)) => {
                let lines = d.lines();
                assert_eq!(lines.len(), 1, "{lines:?}");
                assert!(
                    lines[0].starts_with(&format!(
                        "{}:1:16: the file is not UTF-8: byte 0xE9 here",
                        path.display()
                    )) && lines[0].contains("iconv -f latin1 -t utf-8"),
                    "{lines:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
