//! Reading the configuration file: the edge in front of `cloison_core::config`, which
//! validates its bytes (a file that is not UTF-8 is an error of the file, located like
//! the others, not a read error). Also knows the example the package installs as
//! `/etc/cloison/cloison.toml`: valid, but describing an example mairie, so `cloison run`
//! and `cloison apply` refuse it until it is edited for the box.

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

/// The example the package installs as `/etc/cloison/cloison.toml` (a conffile).
const SHIPPED_EXAMPLE: &[u8] = include_bytes!("../../../config/cloison.toml");

/// The file is the shipped example, byte for byte: its interfaces and addresses are an
/// example mairie's, not this box's, and applying it at boot would leave a closed table
/// on interfaces that may not exist.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is the example configuration shipped with cloison, unedited: its interfaces ({}) and addresses describe an example mairie, not this box; nothing was changed (no table, no sysctl, no link). Edit it for this box, check it with `cloison check`, then start cloison (`systemctl start cloison`); see /usr/share/doc/cloison/operations.md",
    path.display(),
    example_interfaces()
)]
pub struct UntouchedExample {
    pub path: PathBuf,
}

/// `lan0 (the trunk), wan0, wan1 (uplinks)`, read from the example itself.
fn example_interfaces() -> String {
    let Ok(example) = std::str::from_utf8(SHIPPED_EXAMPLE)
        .map_err(drop)
        .and_then(|s| cloison_core::config::parse(s, "example").map_err(drop))
    else {
        return "unknown".into();
    };
    let mut out: Vec<String> = example
        .trunk
        .iter()
        .map(|t| format!("{t} for the trunk"))
        .collect();
    let uplinks: Vec<&str> = example
        .uplinks
        .iter()
        .map(|u| u.interface.as_str())
        .collect();
    if !uplinks.is_empty() {
        out.push(format!("{} for the uplinks", uplinks.join(" and ")));
    }
    out.join(", ")
}

/// `Err` when the file at `path` is the shipped example, unedited. A file that cannot be
/// read is not judged here (loading it says why).
pub fn refuse_untouched_example(path: &Path) -> Result<(), UntouchedExample> {
    match std::fs::read(path) {
        Ok(bytes) if is_shipped_example(&bytes) => Err(UntouchedExample {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

pub fn is_shipped_example(bytes: &[u8]) -> bool {
    bytes == SHIPPED_EXAMPLE
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
    fn the_untouched_example_is_told_apart_from_an_edited_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloison.toml");
        std::fs::write(&path, SHIPPED_EXAMPLE).unwrap();
        let e = refuse_untouched_example(&path).unwrap_err().to_string();
        assert!(
            e.contains(
                "unedited: its interfaces (lan0 for the trunk, wan0 and wan1 for the uplinks)"
            ) && e.contains("nothing was changed"),
            "{e}"
        );
        let mut edited = SHIPPED_EXAMPLE.to_vec();
        edited.extend_from_slice(b"# edited for this box\n");
        std::fs::write(&path, &edited).unwrap();
        assert!(refuse_untouched_example(&path).is_ok());
        assert!(refuse_untouched_example(&dir.path().join("missing.toml")).is_ok());
    }

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
