//! Reading the configuration file: the edge in front of `cloison_core::config`, which
//! validates the text.

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
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    Loaded::parse(path, source).map_err(LoadError::Invalid)
}
