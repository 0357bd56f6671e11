//! The edge that runs `nft`: apply a batch, list cloison's table, delete it. Only this
//! module starts `nft`. Its stderr is carried in errors as it is; its prose is never
//! parsed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::plan::names::TABLE;

#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("cannot run `{binary}` (is the nftables package installed?)")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`nft {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`nft {args}` printed JSON cloison cannot read")]
    Output {
        args: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Packet and byte counts of one named counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
}

/// How to run nft. `CLOISON_NFT` overrides the binary (default `nft` from `PATH`).
#[derive(Debug, Clone)]
pub struct Nft {
    binary: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            binary: std::env::var_os("CLOISON_NFT")
                .map_or_else(|| PathBuf::from("nft"), PathBuf::from),
        }
    }
}

impl Nft {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Vec<u8>, NftError> {
        let mut child = Command::new(&self.binary)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::Spawn {
                binary: self.binary.display().to_string(),
                source,
            })?;
        if let Some(input) = stdin {
            // A write error means nft exited early; its stderr says why.
            let _ = child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(input.as_bytes());
        }
        let out = child.wait_with_output().map_err(|source| NftError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(NftError::Failed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// Applies a JSON batch in one transaction: all of it, or nothing.
    pub fn apply(&self, batch: &Value) -> Result<(), NftError> {
        self.run(&["-j", "-f", "-"], Some(&batch.to_string()))
            .map(drop)
    }

    /// Checks a batch against the kernel without applying it.
    pub fn check(&self, batch: &Value) -> Result<(), NftError> {
        self.run(&["-c", "-j", "-f", "-"], Some(&batch.to_string()))
            .map(drop)
    }

    /// Whether `table inet cloison` exists (asked without parsing nft's error messages).
    pub fn table_exists(&self) -> Result<bool, NftError> {
        let args = ["-j", "list", "tables"];
        let out = self.run(&args, None)?;
        let doc: Value = serde_json::from_slice(&out).map_err(|source| NftError::Output {
            args: args.join(" "),
            source,
        })?;
        Ok(doc
            .get("nftables")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("table"))
            .any(|t| {
                t.get("family").and_then(Value::as_str) == Some("inet")
                    && t.get("name").and_then(Value::as_str) == Some(TABLE)
            }))
    }

    /// `nft -j list table inet cloison`, or `None` when the table does not exist.
    pub fn list_table(&self) -> Result<Option<Value>, NftError> {
        if !self.table_exists()? {
            return Ok(None);
        }
        let args = ["-j", "list", "table", "inet", TABLE];
        let out = self.run(&args, None)?;
        serde_json::from_slice(&out)
            .map(Some)
            .map_err(|source| NftError::Output {
                args: args.join(" "),
                source,
            })
    }

    /// Deletes cloison's table; `false` when there was none.
    pub fn delete_table(&self) -> Result<bool, NftError> {
        if !self.table_exists()? {
            return Ok(false);
        }
        self.run(&["delete", "table", "inet", TABLE], None)
            .map(|_| true)
    }
}

/// The named counters of a listed table.
pub fn counters(listing: &Value) -> BTreeMap<String, Counts> {
    listing
        .get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("counter"))
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?.to_owned();
            let counts = Counts {
                packets: c.get("packets").and_then(Value::as_u64).unwrap_or(0),
                bytes: c.get("bytes").and_then(Value::as_u64).unwrap_or(0),
            };
            Some((name, counts))
        })
        .collect()
}

/// The batch with each named counter starting from the given values, so totals survive
/// the table being replaced. Values are u64 here (the nftables crate's counters are u32).
pub fn carry_counters(batch: &Value, from: &BTreeMap<String, Counts>) -> Value {
    let mut batch = batch.clone();
    if let Some(items) = batch.get_mut("nftables").and_then(Value::as_array_mut) {
        for item in items {
            let Some(counter) = item
                .get_mut("add")
                .and_then(|a| a.get_mut("counter"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let name = counter
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let Some(c) = from.get(&name) {
                counter.insert("packets".into(), c.packets.into());
                counter.insert("bytes".into(), c.bytes.into());
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_counters_beyond_u32() {
        let listing = json!({"nftables": [
            {"counter": {"family": "inet", "table": "cloison", "name": "kiosk/mairie", "packets": 5, "bytes": 8_000_000_000u64}}
        ]});
        let c = counters(&listing);
        assert_eq!(
            c["kiosk/mairie"],
            Counts {
                packets: 5,
                bytes: 8_000_000_000
            }
        );
    }

    #[test]
    fn carries_counters_into_a_new_batch() {
        let batch = json!({"nftables": [
            {"add": {"counter": {"family": "inet", "table": "cloison", "name": "kiosk/mairie", "bytes": null}}},
            {"add": {"counter": {"family": "inet", "table": "cloison", "name": "new/one", "bytes": null}}}
        ]});
        let from = BTreeMap::from([(
            "kiosk/mairie".to_owned(),
            Counts {
                packets: 37,
                bytes: 2220,
            },
        )]);
        let out = carry_counters(&batch, &from);
        assert_eq!(out["nftables"][0]["add"]["counter"]["packets"], 37);
        assert_eq!(out["nftables"][0]["add"]["counter"]["bytes"], 2220);
        assert_eq!(out["nftables"][1]["add"]["counter"]["bytes"], Value::Null);
    }
}
