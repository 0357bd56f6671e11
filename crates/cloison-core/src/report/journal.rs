//! Journal entries as `journalctl -o json` prints them: one JSON object per line, every
//! value a string, or an array of bytes (a value that is not UTF-8), or an array of those
//! (a field set more than once). Only what the report reads is kept.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::alert::event::EventKind;
use crate::alert::field;

/// The entry's time, microseconds since the epoch (set by journald on reception).
pub const REALTIME: &str = "__REALTIME_TIMESTAMP";

/// One journal entry of cloison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Microseconds since the UNIX epoch.
    pub time: u64,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("journal line {line}: not JSON ({reason}); is this `journalctl -o json` output?")]
    NotJson { line: usize, reason: String },
    #[error("journal line {line}: not a JSON object")]
    NotObject { line: usize },
    #[error("journal line {line}: no {REALTIME} field, or not a number of microseconds")]
    NoTime { line: usize },
}

impl Entry {
    /// An entry from its time and fields (tests, and callers that already hold fields).
    pub fn new<K: Into<String>, V: Into<String>>(
        time: u64,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Entry {
        Entry {
            time,
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Parses line `line` (1-based, for the error) of `journalctl -o json`.
    pub fn parse(text: &str, line: usize) -> Result<Entry, EntryError> {
        let v: Value = serde_json::from_str(text).map_err(|e| EntryError::NotJson {
            line,
            reason: e.to_string(),
        })?;
        let Value::Object(map) = v else {
            return Err(EntryError::NotObject { line });
        };
        let time = map
            .get(REALTIME)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or(EntryError::NoTime { line })?;
        let fields = map
            .into_iter()
            .filter(|(k, _)| kept(k))
            .filter_map(|(k, v)| value_text(&v).map(|v| (k, v)))
            .collect();
        Ok(Entry { time, fields })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A numeric field; `None` when absent or not a number.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.trim().parse().ok()
    }

    /// `CLOISON_EVENT`, when it is one cloison knows.
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(self.get(field::EVENT)?)
    }
}

/// The fields the report reads: cloison's own, and the standard ones it shows.
fn kept(key: &str) -> bool {
    key.starts_with("CLOISON_") || matches!(key, "MESSAGE" | "PRIORITY" | "SYSLOG_IDENTIFIER")
}

/// A field's value as text: strings as they are, bytes decoded (invalid UTF-8 replaced),
/// the first of repeated values.
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|b| u8::try_from(b.as_u64()?).ok())
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(value_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_journalctl_json() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1795831200000000","_PID":"12","MESSAGE":"m","CLOISON_EVENT":"cross_segment","CLOISON_PACKETS":"37","CLOISON_DETAIL":[104,105,10,255],"CLOISON_SRC_IP":["a","b"],"PRIORITY":"4"}"#;
        let e = Entry::parse(line, 1).unwrap();
        assert_eq!(e.time, 1_795_831_200_000_000);
        assert_eq!(e.kind(), Some(EventKind::CrossSegment));
        assert_eq!(e.number("CLOISON_PACKETS"), Some(37));
        assert_eq!(e.get("CLOISON_DETAIL"), Some("hi\n\u{fffd}"));
        assert_eq!(e.get("CLOISON_SRC_IP"), Some("a"));
        assert_eq!(
            e.get("_PID"),
            None,
            "fields the report does not read are dropped"
        );
        assert_eq!(e.get("PRIORITY"), Some("4"));
    }

    #[test]
    fn bad_lines_say_which_and_why() {
        assert!(matches!(
            Entry::parse("-- No entries --", 3),
            Err(EntryError::NotJson { line: 3, .. })
        ));
        assert_eq!(
            Entry::parse("[1]", 4),
            Err(EntryError::NotObject { line: 4 })
        );
        assert_eq!(
            Entry::parse(r#"{"MESSAGE":"x"}"#, 5),
            Err(EntryError::NoTime { line: 5 })
        );
        let msg = Entry::parse("nope", 7).unwrap_err().to_string();
        assert!(msg.starts_with("journal line 7: not JSON"), "{msg}");
    }
}
