//! `cloison metrics [--output FILE]`: the box in the Prometheus text format, for
//! node_exporter's textfile collector (cloison-metrics.timer runs it every 30 s). The
//! reading is gathered here (live table, daemon, verify record); the format is
//! `cloison_core::metrics`. With `--output`, the file is replaced atomically: written
//! beside it under a name the collector ignores, synced, then renamed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cloison_core::metrics::{CaptureReading, DaemonReading, Reading, RulesetReading};
use cloison_core::nft::Sync;
use cloison_core::verify::{self, VerifyRecord};

use crate::cli::Cli;
use crate::config_file::{self, LoadError};
use crate::daemon::control::{self, DaemonStatus, Request, Response};
use crate::status::{Observation, Status, error_text, router_name};

use super::{CONTROL_TIMEOUT, EXIT_USAGE};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no file name", .0.display())]
    NoFileName(PathBuf),
}

pub fn run(cli: &Cli, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Some(reading) = gather(cli) else {
        return Ok(ExitCode::from(EXIT_USAGE));
    };
    let text = reading.render();
    match output {
        None => print!("{text}"),
        Some(path) => write_atomically(path, text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The reading, or None (after saying why) when nothing trustworthy can be said: the
/// configuration cannot be used and the daemon does not answer.
fn gather(cli: &Cli) -> Option<Reading> {
    match config_file::load(&cli.config) {
        Ok(l) => {
            let seen = Observation::take(
                &l.config,
                &super::control::runtime_dir(cli),
                CONTROL_TIMEOUT,
            );
            let config_hash = seen
                .daemon
                .as_ref()
                .map_or_else(|_| l.hash.clone(), |d| d.config_hash.clone());
            Some(Reading {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                router: router_name(&l.config),
                config_hash,
                config_file_valid: true,
                ruleset: seen.check.as_ref().ok().map(|(s, _)| ruleset(s)),
                daemon: seen.daemon.as_ref().ok().map(daemon),
                verify: verify_record(cli),
            })
        }
        Err(e) => {
            eprintln!("{e}");
            // The daemon still runs its last good configuration: report that, and that
            // the file is not usable.
            let answer = control::request(
                &super::control::runtime_dir(cli),
                &Request::Status,
                CONTROL_TIMEOUT,
            );
            let d = match answer {
                Ok(Response::Status(d)) => d,
                _ => {
                    eprintln!(
                        "cloison: no metrics: the configuration cannot be used and the daemon does not answer"
                    );
                    return None;
                }
            };
            if matches!(e, LoadError::Read { .. }) {
                eprintln!("cloison: reporting the daemon's configuration");
            }
            Some(Reading {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                router: d.router.clone(),
                config_hash: d.config_hash.clone(),
                config_file_valid: false,
                ruleset: d.live.as_ref().map(ruleset),
                daemon: Some(daemon(&d)),
                verify: verify_record(cli),
            })
        }
    }
}

fn ruleset(s: &Status) -> RulesetReading {
    RulesetReading {
        in_sync: s.in_sync(),
        present: s.sync != Sync::Missing,
        counters: s.counters.clone(),
    }
}

fn daemon(d: &DaemonStatus) -> DaemonReading {
    DaemonReading {
        start_time: d.started_at,
        alerts_total: d.alerts_total.clone(),
        capture: d
            .capture
            .iter()
            .map(|(i, c)| {
                (
                    i.clone(),
                    CaptureReading {
                        received: c.received,
                        dropped: c.dropped,
                    },
                )
            })
            .collect(),
        drift_repairs: d.drift_repairs,
        confirm_pending: d.confirm_pending_secs.is_some(),
    }
}

/// The last `cloison verify`'s record; absent when there is none, and when it cannot be
/// read (said on stderr: the metrics of the rest still matter).
pub(super) fn verify_record(cli: &Cli) -> Option<VerifyRecord> {
    let dir = cli
        .state_dir
        .clone()
        .unwrap_or_else(crate::daemon::state::state_dir);
    let path = dir.join(verify::FILE_NAME);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            eprintln!(
                "cloison: {}: {}; the verify metrics are left out",
                path.display(),
                error_text(&e)
            );
            return None;
        }
    };
    VerifyRecord::parse(&text)
        .map_err(|e| {
            eprintln!(
                "cloison: {}: {}; the verify metrics are left out",
                path.display(),
                error_text(&e)
            );
        })
        .ok()
}

/// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never
/// a part: a temporary file in the same directory (a name ending in `.tmp`, which the
/// textfile collector ignores), fsync, mode 0644, rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MetricsError> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| MetricsError::NoFileName(path.to_owned()))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        MetricsError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloison.prom");
        write_atomically(&path, b"a 1\n").unwrap();
        write_atomically(&path, b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("cloison.prom")]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_that_names_the_file() {
        let err = write_atomically(Path::new("/nonexistent-cloison/x.prom"), b"").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-cloison/x.prom"),
            "{err}"
        );
    }
}
