//! The record of the last `cloison verify` run, `<state dir>/verify-last.json`: a
//! contract between the command that proves the isolation by probing it (it writes the
//! record, atomically) and `cloison metrics` (which reads it). Pure: reading the file is
//! the edge's job.
//!
//! ```json
//! {"version":1,"finished":1764403260,"success":true,"probes":40,"failures":0,"config_hash":"<64 hex>"}
//! ```
//! `finished` is Unix time in whole seconds; `config_hash` the SHA-256 of the
//! configuration file that was verified (what `cloison status` shows as the config hash).

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

/// The file's name in the state directory.
pub const FILE_NAME: &str = "verify-last.json";

/// The only version this cloison reads and writes.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRecord {
    pub version: u32,
    pub finished: u64,
    pub success: bool,
    pub probes: u64,
    pub failures: u64,
    pub config_hash: Hash,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyRecordError {
    #[error("not a verify record: {0}")]
    Json(#[source] serde_json::Error),
    #[error("version {found} of the verify record; this cloison reads version {VERSION}")]
    Version { found: u32 },
}

impl VerifyRecord {
    pub fn parse(text: &str) -> Result<VerifyRecord, VerifyRecordError> {
        let r: VerifyRecord = serde_json::from_str(text).map_err(VerifyRecordError::Json)?;
        if r.version != VERSION {
            return Err(VerifyRecordError::Version { found: r.version });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape() {
        let h = Hash::of(b"x");
        let text = format!(
            r#"{{"version":1,"finished":1764403260,"success":true,"probes":40,"failures":0,"config_hash":"{h}"}}"#
        );
        let r = VerifyRecord::parse(&text).unwrap();
        assert_eq!(r.finished, 1_764_403_260);
        assert!(r.success);
        assert_eq!(r.config_hash, h);
        assert_eq!(
            VerifyRecord::parse(&serde_json::to_string(&r).unwrap()).unwrap(),
            r
        );
    }

    #[test]
    fn refuses_other_versions_and_shapes() {
        let h = Hash::of(b"x");
        let v2 = format!(
            r#"{{"version":2,"finished":1,"success":true,"probes":1,"failures":0,"config_hash":"{h}"}}"#
        );
        assert!(matches!(
            VerifyRecord::parse(&v2),
            Err(VerifyRecordError::Version { found: 2 })
        ));
        for bad in [
            "",
            "{}",
            r#"{"version":1,"finished":1,"success":true,"probes":1,"failures":0,"config_hash":"nothex"}"#,
        ] {
            assert!(VerifyRecord::parse(bad).is_err(), "{bad}");
        }
    }
}
