//! The daemon's control socket, both ends: `cloison status`, `cloison reload [--confirm
//! N]` and `cloison confirm` (the client, `request`) talk to the running daemon (the
//! server, `serve`) through it. One JSON request line per connection, one JSON answer.
//! Who may ask what: the socket and its directory are open to the `cloison` group (mode
//! 0660 and 0750) when that group exists, so its members can read the status (`cloison
//! status`, `cloison metrics`) without being root; the server checks each peer's
//! credentials (SO_PEERCRED) and only root, or the daemon's own user, may reload or
//! confirm: those change the firewall. The server bounds what a client can cost it: a
//! request line of at most `MAX_REQUEST` bytes read within `REQUEST_TIMEOUT`, at most
//! `MAX_CONNECTIONS` at once, and `accept` errors (EMFILE) back off instead of spinning.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, mpsc, oneshot};

use cloison_core::hash::Hash;
use serde::{Deserialize, Serialize};

const SOCKET: &str = "control.sock";

/// The group whose members may read the status (the package creates it).
pub const STATUS_GROUP: &str = "cloison";

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
        /// The configuration file the client means (its `-c`, absolute): the daemon
        /// refuses the request when it runs another one.
        #[serde(default)]
        config: Option<String>,
    },
    Confirm {
        #[serde(default)]
        config: Option<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "reply", rename_all = "snake_case")]
// One answer per connection, built once: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    Status(Box<DaemonStatus>),
    Done { message: String },
    Error { message: String },
}

/// What the daemon knows that the kernel does not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DaemonStatus {
    pub pid: u32,
    pub uptime_secs: u64,
    pub config_path: String,
    pub config_hash: Hash,
    /// Where the running configuration came from: the file, or the last known good.
    pub config_source: String,
    pub ruleset_hash: Hash,
    /// Seconds left before a `reload --confirm` is rolled back.
    pub confirm_pending_secs: Option<u64>,
    pub alerts_last_hour: BTreeMap<String, u64>,
    /// The last configuration rolled back unconfirmed (never applied again by itself).
    #[serde(default)]
    pub last_rollback: Option<super::state::RolledBack>,
    /// Per capture interface: frames received and dropped by the kernel (socket full).
    pub capture: BTreeMap<String, CaptureCounters>,
    pub drift_repairs: u64,
    /// The router's name, as alerts carry it (`CLOISON_ROUTER`).
    #[serde(default)]
    pub router: String,
    /// The daemon's version.
    #[serde(default)]
    pub version: String,
    /// When the daemon started, Unix time in seconds.
    #[serde(default)]
    pub started_at: u64,
    /// Journal entries written since start, by `CLOISON_EVENT`.
    #[serde(default)]
    pub alerts_total: BTreeMap<String, u64>,
    /// The live table against the configuration in force, read by the daemon when asked
    /// (so that a client who may not read the table itself still gets the answer), or
    /// why it could not be read.
    #[serde(default)]
    pub live: Option<crate::status::Status>,
    #[serde(default)]
    pub live_error: Option<String>,
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
    parse_response(&answer)
}

/// The client's reading of the daemon's answer line.
pub fn parse_response(line: &str) -> Result<Response, ControlError> {
    serde_json::from_str(line).map_err(ControlError::Protocol)
}

/// The server's reading of a request line (at most `MAX_REQUEST` bytes were read, so a
/// longer one was cut): the request, or the message the client gets back.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    serde_json::from_slice(line).map_err(|e| format!("unreadable request: {e}"))
}

/// The longest request line the server reads; requests are a few dozen bytes.
pub const MAX_REQUEST: usize = 4096;
/// How long a client may take to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// A request and where its answer goes, for the daemon's loop.
pub type Call = (Request, oneshot::Sender<Response>);

/// Creates the runtime directory and binds the socket, replacing a socket file left by a
/// daemon that was killed. With the `cloison` group, the directory becomes 0750 and the
/// socket 0660, both of that group; without it (or if the group cannot be given), the
/// socket stays 0600: root only.
pub fn bind(dir: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let path = socket_path(dir);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    match open_to_group(dir, &path) {
        Ok(true) => {}
        Ok(false) => tracing::info!(
            group = STATUS_GROUP,
            "no such group: only root can ask the daemon for its status"
        ),
        Err(e) => tracing::warn!(
            cause = %e,
            group = STATUS_GROUP,
            "cannot open the control socket to the group: only root can ask for the status"
        ),
    }
    Ok(listener)
}

/// Gives the directory and the socket to the status group; false when it does not exist.
fn open_to_group(dir: &Path, socket: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let Some(group) = nix::unistd::Group::from_name(STATUS_GROUP).map_err(std::io::Error::from)?
    else {
        return Ok(false);
    };
    for (path, mode) in [(dir, 0o750), (socket, 0o660)] {
        nix::unistd::chown(path, None, Some(group.gid)).map_err(std::io::Error::from)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(true)
}

/// Whether a peer with user id `peer` may make `req`: everyone who can open the socket
/// may ask for the status; changes are for root and the daemon's own user.
pub fn permitted(req: &Request, peer: u32, own: u32) -> bool {
    matches!(req, Request::Status) || peer == 0 || peer == own
}

/// Serves the socket until the daemon's loop goes away.
pub async fn serve(listener: UnixListener, calls: mpsc::Sender<Call>) {
    let slots = std::sync::Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::from_millis(10);
    let mut errors = cloison_core::alert::LogLimit::new(Duration::from_secs(60));
    loop {
        let Ok(slot) = std::sync::Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                let calls = calls.clone();
                // A peer whose credentials cannot be read is treated as no one: status only.
                let peer = stream.peer_cred().map_or(u32::MAX, |c| c.uid());
                tokio::spawn(async move {
                    answer(stream, peer, calls).await;
                    drop(slot);
                });
            }
            Err(e) => {
                if let Some(held_back) = errors.allow(std::time::Instant::now()) {
                    tracing::warn!(cause = %e, held_back, "control socket: accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Reads one bounded request line, asks the loop (if `peer` may make that request),
/// writes the answer.
async fn answer(stream: tokio::net::UnixStream, peer: u32, calls: mpsc::Sender<Call>) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let limited = read.take(MAX_REQUEST as u64 + 1);
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio::io::BufReader::new(limited).read_until(b'\n', &mut line),
    )
    .await;
    let answer = match read {
        Err(_) => Response::Error {
            message: format!("no request within {} s", REQUEST_TIMEOUT.as_secs()),
        },
        Ok(Err(e)) => Response::Error {
            message: format!("unreadable request: {e}"),
        },
        Ok(Ok(_)) => match parse_request(&line) {
            Ok(req) if !permitted(&req, peer, nix::unistd::geteuid().as_raw()) => Response::Error {
                message: format!(
                    "only root may ask the daemon to change the firewall (your user id is {peer}); members of the `{STATUS_GROUP}` group may read the status"
                ),
            },
            Ok(req) => {
                let (reply, wait) = oneshot::channel();
                if calls.send((req, reply)).await.is_err() {
                    return;
                }
                wait.await.unwrap_or(Response::Error {
                    message: "the daemon is stopping".into(),
                })
            }
            Err(message) => Response::Error { message },
        },
    };
    let mut out = serde_json::to_string(&answer).unwrap_or_default();
    out.push('\n');
    let _ = write.write_all(out.as_bytes()).await;
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
                config: Some("/etc/cloison/cloison.toml".into()),
            },
            Request::Confirm { config: None },
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
    fn both_ends_read_what_the_other_writes_and_refuse_the_rest() {
        assert_eq!(
            parse_request(b"{\"cmd\":\"reload\",\"confirm_secs\":30}\n"),
            Ok(Request::Reload {
                confirm_secs: Some(30),
                config: None
            })
        );
        let err = parse_request(b"{\"cmd\":\"format_disk\"}\n").unwrap_err();
        assert!(
            err.starts_with("unreadable request: unknown variant"),
            "{err}"
        );
        let long = vec![b' '; MAX_REQUEST + 1];
        assert_eq!(
            parse_request(&long).unwrap_err(),
            format!("request longer than {MAX_REQUEST} bytes")
        );
        let done = Response::Done {
            message: "ok".into(),
        };
        let line = serde_json::to_string(&done).unwrap();
        assert_eq!(parse_response(&line).unwrap(), done);
        assert!(matches!(
            parse_response("{\"reply\":\"status\",\"pid\":1}"),
            Err(ControlError::Protocol(_))
        ));
    }

    #[test]
    fn the_group_reads_only_root_changes() {
        let reload = Request::Reload {
            confirm_secs: None,
            config: None,
        };
        assert!(permitted(&Request::Status, 1000, 0));
        assert!(!permitted(&reload, 1000, 0));
        assert!(!permitted(&Request::Confirm { config: None }, 1000, 0));
        assert!(permitted(&reload, 0, 61234), "root may change");
        assert!(
            permitted(&Request::Confirm { config: None }, 61234, 61234),
            "the daemon's own (dynamic) user may change"
        );
        assert!(!permitted(&reload, u32::MAX, 0), "unknown peer");
    }

    #[test]
    fn an_older_daemons_status_still_reads() {
        // A daemon from before the fleet fields (during a package upgrade).
        let old = r#"{"reply":"status","pid":1,"uptime_secs":5,"config_path":"/etc/cloison/cloison.toml","config_hash":"0000000000000000000000000000000000000000000000000000000000000000","config_source":"the configuration file","ruleset_hash":"0000000000000000000000000000000000000000000000000000000000000000","confirm_pending_secs":null,"alerts_last_hour":{},"capture":{},"drift_repairs":0}"#;
        let Response::Status(s) = serde_json::from_str(old).unwrap() else {
            panic!("a status")
        };
        assert!(s.live.is_none() && s.alerts_total.is_empty());
    }

    #[test]
    fn a_missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let err = request(dir.path(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ControlError::NotRunning { .. }), "{err}");
    }
}
