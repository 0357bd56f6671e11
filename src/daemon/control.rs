//! The daemon's control socket: `cloison status`, `cloison reload [--confirm N]` and
//! `cloison confirm` talk to the running daemon through it. One JSON request per
//! connection, one JSON answer. The socket is root-only (mode 0600): it can change the
//! firewall.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

const SOCKET: &str = "control.sock";

/// The runtime directory: `CLOISON_RUNTIME_DIR`, else systemd's `RUNTIME_DIRECTORY`,
/// else `/run/cloison`.
pub fn runtime_dir() -> PathBuf {
    std::env::var_os("CLOISON_RUNTIME_DIR")
        .or_else(|| std::env::var_os("RUNTIME_DIRECTORY"))
        .map_or_else(|| PathBuf::from("/run/cloison"), PathBuf::from)
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    /// Re-read the configuration; with `confirm_secs`, roll back unless confirmed.
    Reload {
        confirm_secs: Option<u64>,
    },
    Confirm,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    Status(DaemonStatus),
    Done { message: String },
    Error { message: String },
}

/// What the daemon knows that the kernel does not.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonStatus {
    pub pid: u32,
    pub uptime_secs: u64,
    pub config_path: String,
    pub config_hash: String,
    /// Where the running configuration came from: the file, or the last known good.
    pub config_source: String,
    pub ruleset_hash: String,
    /// Seconds left before a `reload --confirm` is rolled back.
    pub confirm_pending_secs: Option<u64>,
    pub alerts_last_hour: BTreeMap<String, u64>,
    /// Per capture interface: frames received and dropped by the kernel (socket full).
    pub capture: BTreeMap<String, CaptureCounters>,
    pub drift_repairs: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaptureCounters {
    pub received: u64,
    pub dropped: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the cloison daemon is not running (no control socket at {})", path.display())]
    NotRunning { path: PathBuf },
    #[error("talking to the daemon at {} failed", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon sent an answer cloison cannot read")]
    Protocol(#[source] serde_json::Error),
}

/// Sends one request to the daemon and waits for its answer.
pub fn request(dir: &Path, req: &Request, timeout: Duration) -> Result<Response, ControlError> {
    let path = socket_path(dir);
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning { path });
        }
        Err(e) => return Err(io(e)),
    };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(req).map_err(ControlError::Protocol)?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer).map_err(io)?;
    serde_json::from_str(&answer).map_err(ControlError::Protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_json() {
        for r in [
            Request::Status,
            Request::Reload {
                confirm_secs: Some(300),
            },
            Request::Confirm,
        ] {
            let s = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
    }

    #[test]
    fn a_missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(dir.path(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ControlError::NotRunning { .. }), "{err}");
    }
}
