//! What a `verify_passed` or `verify_failed` entry says: the counts of its fields and the
//! JSON document of `CLOISON_VERIFY_RESULT` (docs/alerts.md, "The verify result").

use super::journal::Entry;
use crate::alert::event::EventKind;
use crate::alert::field;

pub use crate::verify::result::{Expected, Failure, PairResult, RESULT_VERSION, VerifyResult};

/// One run of `cloison verify`, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRun {
    pub time: u64,
    pub passed: bool,
    pub probes: Option<u64>,
    pub failures: Option<u64>,
    pub config_hash: Option<String>,
    /// `Err` with the reason when the document is missing or unreadable (cut, newer
    /// version): the counts above still tell the outcome.
    pub result: Result<VerifyResult, String>,
}

impl VerifyRun {
    /// The run an entry records, or `None` for entries of other kinds.
    pub fn from_entry(e: &Entry) -> Option<VerifyRun> {
        let passed = match e.kind()? {
            EventKind::VerifyPassed => true,
            EventKind::VerifyFailed => false,
            _ => return None,
        };
        let result = match e.get(field::VERIFY_RESULT) {
            None => Err(format!("no {}", field::VERIFY_RESULT)),
            Some(text) => serde_json::from_str::<VerifyResult>(text)
                .map_err(|err| err.to_string())
                .and_then(|r| {
                    if r.version == RESULT_VERSION {
                        Ok(r)
                    } else {
                        Err(format!(
                            "version {} (this cloison reads {RESULT_VERSION})",
                            r.version
                        ))
                    }
                }),
        };
        Some(VerifyRun {
            time: e.time,
            passed,
            probes: e.number(field::VERIFY_PROBES),
            failures: e.number(field::VERIFY_FAILURES),
            config_hash: e.get(field::CONFIG_HASH).map(str::to_owned),
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"version":1,"pairs":[{"from":"kiosk","to":"mairie","expected":"blocked","reason":"[[forbid]] kiosk -> mairie","probes":24,"as_expected":24,"failures":[]},{"from":"kiosk","to":"router","expected":"blocked","reason":"","probes":10,"as_expected":9,"failures":[{"probe":"tcp/445","target":"192.168.10.5","observed":"open","wall":"none"}]}]}"#;

    fn entry(event: &str, result: &str) -> Entry {
        Entry::new(
            5,
            [
                (field::EVENT, event),
                (field::VERIFY_PROBES, "34"),
                (field::VERIFY_FAILURES, "1"),
                (field::CONFIG_HASH, "ab"),
                (field::VERIFY_RESULT, result),
            ],
        )
    }

    #[test]
    fn reads_the_contract() {
        let run = VerifyRun::from_entry(&entry("verify_failed", DOC)).unwrap();
        assert!(!run.passed);
        assert_eq!((run.probes, run.failures), (Some(34), Some(1)));
        let r = run.result.unwrap();
        assert_eq!(r.pairs.len(), 2);
        assert!(r.pairs[0].passed());
        assert!(!r.pairs[1].passed());
        assert_eq!(r.pairs[1].failures[0].wall, "none");
        assert_eq!(r.pairs[0].expected, Expected::Blocked);
    }

    #[test]
    fn an_unreadable_document_keeps_the_counts() {
        let cut = &DOC[..100];
        let run = VerifyRun::from_entry(&entry("verify_passed", cut)).unwrap();
        assert!(run.passed && run.result.is_err());
        assert_eq!(run.probes, Some(34));
        let v2 = DOC.replace("\"version\":1", "\"version\":2");
        let err = VerifyRun::from_entry(&entry("verify_passed", &v2))
            .unwrap()
            .result;
        assert!(err.unwrap_err().contains("version 2"));
        assert!(VerifyRun::from_entry(&entry("cross_segment", DOC)).is_none());
    }
}
