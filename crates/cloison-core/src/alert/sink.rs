//! What alerts are written to, as pure code: the `Sink` seam (journald at the edge, a
//! `Vec` in tests), the two wire forms of an entry (journald's native protocol, and the
//! JSON line used where there is no journald), and `LogLimit`, the rate limit of every
//! log line traffic can trigger. No I/O here: the journald writer is in the `cloison`
//! crate.

use std::time::{Duration, Instant};

use super::entry::Alert;

/// Where alerts are written.
pub trait Sink {
    fn write(&mut self, alert: &Alert) -> Written;
}

/// Where an entry ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Journal,
    /// JSON line on the fallback writer (stderr).
    Fallback,
    /// Neither journald nor the fallback took it (counted in `SinkStats::lost`).
    Lost,
}

/// For tests: keeps the alerts.
impl Sink for Vec<Alert> {
    fn write(&mut self, alert: &Alert) -> Written {
        self.push(alert.clone());
        Written::Journal
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    pub journal: u64,
    pub fallback: u64,
    pub lost: u64,
    /// Sends refused by a journald that is there (full, slow), written to stderr instead.
    pub send_errors: u64,
}

/// At most one log line per `every`, counting what it held back. For every log line that
/// traffic can trigger, so a flood never becomes a log flood and no count is lost.
#[derive(Debug)]
pub struct LogLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(every: Duration) -> LogLimit {
        LogLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(held back since the last line)` when a line may be written now.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Encodes an entry in journald's native protocol: `KEY=value\n`, or for a value holding
/// a newline, `KEY\n` + its length (64-bit little endian) + the value + `\n`.
pub fn encode_native(alert: &Alert) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    for (k, v) in alert.journal_fields() {
        out.extend_from_slice(k.as_bytes());
        if v.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        } else {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// The JSON line of the stderr form (no trailing newline).
pub fn encode_json(alert: &Alert) -> String {
    alert.to_json().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::event::EventKind;
    use crate::alert::field;

    /// Parses the native protocol back (the inverse of `encode_native`).
    fn decode(mut b: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let nl = b.iter().position(|c| *c == b'\n').unwrap();
            let line = &b[..nl];
            if let Some(eq) = line.iter().position(|c| *c == b'=') {
                out.push((
                    String::from_utf8(line[..eq].to_vec()).unwrap(),
                    String::from_utf8(line[eq + 1..].to_vec()).unwrap(),
                ));
                b = &b[nl + 1..];
            } else {
                let key = String::from_utf8(line.to_vec()).unwrap();
                let len =
                    usize::try_from(u64::from_le_bytes(b[nl + 1..nl + 9].try_into().unwrap()))
                        .unwrap();
                let v = &b[nl + 9..nl + 9 + len];
                assert_eq!(b[nl + 9 + len], b'\n');
                out.push((key, String::from_utf8(v.to_vec()).unwrap()));
                b = &b[nl + 10 + len..];
            }
        }
        out
    }

    fn rejected() -> Alert {
        Alert::config_rejected(
            "mairie-ducey",
            "/etc/cloison/cloison.toml",
            "cloison.toml:14:9: segments.kiosk.vlan = 4095: VLAN IDs go from 1 to 4094\ncloison.toml:3:1: unknown key `segmnts`",
            "the previous configuration",
        )
    }

    #[test]
    fn native_encoding_round_trips_including_multiline_values() {
        let a = rejected();
        let fields = decode(&encode_native(&a));
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("MESSAGE_ID"),
            Some(EventKind::ConfigRejected.message_id())
        );
        assert_eq!(get("PRIORITY"), Some("3"));
        assert_eq!(get("SYSLOG_IDENTIFIER"), Some("cloison"));
        assert_eq!(get(field::DETAIL).map(|d| d.lines().count()), Some(2));
        assert!(!get("MESSAGE").unwrap().contains('\n'));
        assert_eq!(fields.len(), a.journal_fields().count());
    }

    #[test]
    fn log_limit_counts_what_it_holds_back() {
        let mut l = LogLimit::new(Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(l.allow(t), Some(0));
        for i in 1..=5 {
            assert_eq!(l.allow(t + Duration::from_secs(i)), None);
        }
        assert_eq!(l.allow(t + Duration::from_secs(61)), Some(5));
    }
}
