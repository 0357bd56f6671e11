//! The edge that reads and writes `/proc/sys`. In a network namespace, `/proc/sys/net`
//! is that namespace's, so the lab and the tests never touch the host's settings.

use std::path::PathBuf;

use cloison_core::plan::Sysctl;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set {} to {value}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
}

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key)
}

pub fn get(key: &str) -> Result<String, SysctlError> {
    let p = path(key);
    std::fs::read_to_string(&p)
        .map(|v| v.trim().to_owned())
        .map_err(|source| SysctlError::Read { path: p, source })
}

/// Sets a value; returns whether it changed.
pub fn set(s: &Sysctl) -> Result<bool, SysctlError> {
    if get(&s.key)? == s.value {
        return Ok(false);
    }
    let p = path(&s.key);
    std::fs::write(&p, &s.value).map_err(|source| SysctlError::Write {
        path: p,
        value: s.value.clone(),
        source,
    })?;
    Ok(true)
}
