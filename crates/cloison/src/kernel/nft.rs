//! The edge that runs `nft`: apply a batch, list cloison's table, delete it. Only this
//! module starts `nft`. Its stderr is carried in errors as it is; its prose is never
//! parsed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use cloison_core::names::TABLE;

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
    #[error("reading cloison's table over netlink failed")]
    Netlink(#[source] super::nfnetlink::Error),
    #[error("`nft {args}` printed JSON cloison cannot read")]
    Output {
        args: String,
        #[source]
        source: serde_json::Error,
    },
}

/// How to run nft. `CLOISON_NFT` overrides the binary (default `nft` from `PATH`).
#[derive(Debug, Clone)]
pub struct Nft {
    binary: PathBuf,
    /// The pids of the last `nft` processes started: the kernel names them as the
    /// committers of cloison's own transactions, which are not drift.
    started: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<u32>>>,
}

/// How many recent `nft` pids are remembered (a repair starts three).
const REMEMBERED: usize = 64;

impl Default for Nft {
    fn default() -> Self {
        Nft {
            binary: std::env::var_os("CLOISON_NFT")
                .map_or_else(|| PathBuf::from("nft"), PathBuf::from),
            started: Default::default(),
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
        {
            let mut started = self
                .started
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if started.len() == REMEMBERED {
                started.pop_front();
            }
            started.push_back(child.id());
        }
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

    /// Whether `pid` is an `nft` this process started (recently).
    pub fn started(&self, pid: u32) -> bool {
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&pid)
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

    /// `nft -j list table inet cloison` without asking first whether it exists (the
    /// caller knows, over netlink); `None` if it vanished meanwhile.
    pub fn list_known_table(&self, exists: impl Fn() -> bool) -> Result<Option<Value>, NftError> {
        let args = ["-j", "list", "table", "inet", TABLE];
        match self.run(&args, None) {
            Ok(out) => serde_json::from_slice(&out)
                .map(Some)
                .map_err(|source| NftError::Output {
                    args: args.join(" "),
                    source,
                }),
            Err(e) if !exists() => {
                drop(e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
