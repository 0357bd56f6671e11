//! The edge that writes alerts to journald: its native protocol (one datagram per entry
//! to `/run/systemd/journal/socket`), or, where that socket does not exist (a container,
//! another init), one JSON object per line on stderr with the same fields. The only I/O
//! of the alerts; `cloison_core::alert::Sink` is the seam tests stand in for.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloison_core::alert::{Alert, LogLimit, Sink, SinkStats, Written, encode_json, encode_native};

/// journald's native socket. Fixed by systemd (sd_journal_send uses the same path).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// How long a send may block when journald is slow before the entry goes to stderr.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes to journald, falling back to JSON lines where journald is absent.
#[derive(Debug)]
pub struct JournalWriter<W: Write = io::Stderr> {
    path: PathBuf,
    socket: Option<UnixDatagram>,
    fallback: W,
    stats: SinkStats,
    warn: LogLimit,
    said_absent: bool,
}

impl JournalWriter<io::Stderr> {
    /// The daemon's writer: journald's socket, stderr as the fallback.
    pub fn new() -> JournalWriter<io::Stderr> {
        JournalWriter::with(JOURNAL_SOCKET, io::stderr())
    }
}

impl Default for JournalWriter<io::Stderr> {
    fn default() -> Self {
        JournalWriter::new()
    }
}

impl<W: Write> JournalWriter<W> {
    /// A writer to another socket path and fallback (tests, or a relocated journald).
    pub fn with(path: impl AsRef<Path>, fallback: W) -> JournalWriter<W> {
        JournalWriter {
            path: path.as_ref().to_owned(),
            socket: None,
            fallback,
            stats: SinkStats::default(),
            warn: LogLimit::new(Duration::from_secs(60)),
            said_absent: false,
        }
    }

    pub fn stats(&self) -> SinkStats {
        self.stats
    }

    pub fn fallback(&self) -> &W {
        &self.fallback
    }

    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.socket.is_none() {
            let s = UnixDatagram::unbound()?;
            s.set_write_timeout(Some(SEND_TIMEOUT))?;
            self.socket = Some(s);
        }
        let socket = self.socket.as_ref().ok_or(io::ErrorKind::NotConnected)?;
        socket.send_to(payload, &self.path).map(|_| ())
    }

    fn write_fallback(&mut self, alert: &Alert) -> Written {
        let line = encode_json(alert) + "\n";
        match self
            .fallback
            .write_all(line.as_bytes())
            .and_then(|()| self.fallback.flush())
        {
            Ok(()) => {
                self.stats.fallback += 1;
                Written::Fallback
            }
            Err(_) => {
                self.stats.lost += 1;
                Written::Lost
            }
        }
    }
}

impl<W: Write> Sink for JournalWriter<W> {
    fn write(&mut self, alert: &Alert) -> Written {
        match self.send(&encode_native(alert)) {
            Ok(()) => {
                self.stats.journal += 1;
                Written::Journal
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                if !self.said_absent {
                    self.said_absent = true;
                    tracing::info!(
                        socket = %self.path.display(),
                        "no journald socket: alerts are written to stderr as JSON lines"
                    );
                }
                self.write_fallback(alert)
            }
            Err(e) => {
                self.stats.send_errors += 1;
                if let Some(held_back) = self.warn.allow(Instant::now()) {
                    tracing::warn!(
                        cause = %e,
                        errors = self.stats.send_errors,
                        held_back,
                        "journald refused an alert; written to stderr instead"
                    );
                }
                self.write_fallback(alert)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloison_core::alert::event::EventKind;

    fn rejected() -> Alert {
        Alert::config_rejected(
            "mairie-ducey",
            "/etc/cloison/cloison.toml",
            "cloison.toml:14:9: segments.kiosk.vlan = 4095: VLAN IDs go from 1 to 4094\ncloison.toml:3:1: unknown key `segmnts`",
            "the previous configuration",
        )
    }

    #[test]
    fn sends_one_datagram_per_entry() {
        let dir = std::env::temp_dir().join(format!("cloison-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut w = JournalWriter::with(&path, Vec::new());
        assert_eq!(w.write(&rejected()), Written::Journal);
        let mut buf = vec![0; 65536];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], encode_native(&rejected()).as_slice());
        assert!(w.fallback().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_socket_entries_become_json_lines() {
        let mut w = JournalWriter::with("/nonexistent/cloison/socket", Vec::new());
        let a = rejected();
        assert_eq!(w.write(&a), Written::Fallback);
        assert_eq!(w.write(&a), Written::Fallback);
        let text = String::from_utf8(w.fallback().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["MESSAGE_ID"], EventKind::ConfigRejected.message_id());
        assert_eq!(v["PRIORITY"], "3");
        assert_eq!(v["CLOISON_EVENT"], "config_rejected");
        assert!(v["CLOISON_DETAIL"].as_str().unwrap().contains('\n'));
        assert_eq!(w.stats().fallback, 2);
    }
}
