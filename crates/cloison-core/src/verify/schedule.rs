//! When the periodic verification is due (`[verify] every`, `cloison verify --if-due`,
//! which cloison-verify.timer starts every quarter of an hour): never without `every`;
//! at once without a record of an earlier run, when the configuration changed since
//! that run, or when it failed (a failing box is checked again at every tick until it
//! passes); otherwise `every` after that run.

use std::time::Duration;

use crate::hash::Hash;
use crate::verify::VerifyRecord;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// No `[verify] every`: only when asked.
    Never,
    /// Not before this Unix time (the last run's, plus `every`).
    NotUntil(u64),
    /// Now, and why.
    Now(&'static str),
}

/// Whether a run is due at Unix time `now`, given `every`, the last run's record (if
/// any) and the hash of the configuration in force.
pub fn due(every: Option<Duration>, last: Option<&VerifyRecord>, config: &Hash, now: u64) -> Due {
    let Some(every) = every else {
        return Due::Never;
    };
    let Some(last) = last else {
        return Due::Now("no earlier run is recorded");
    };
    if &last.config_hash != config {
        return Due::Now("the configuration changed since the last run");
    }
    if !last.success {
        return Due::Now("the last run failed");
    }
    let next = last.finished.saturating_add(every.as_secs());
    if now >= next {
        Due::Now("the last run is older than [verify] every")
    } else {
        Due::NotUntil(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(finished: u64, success: bool, hash: &Hash) -> VerifyRecord {
        VerifyRecord {
            version: crate::verify::record::VERSION,
            finished,
            success,
            probes: 10,
            failures: u64::from(!success),
            config_hash: hash.clone(),
        }
    }

    #[test]
    fn due_follows_every_the_record_and_the_configuration() {
        let h = Hash::of(b"config");
        let day = Some(Duration::from_secs(86_400));
        assert_eq!(due(None, None, &h, 0), Due::Never);
        assert_eq!(
            due(None, Some(&record(0, false, &h)), &h, 0),
            Due::Never,
            "without `every`, even a failed run is not retried"
        );
        assert!(matches!(due(day, None, &h, 5), Due::Now(_)));
        let passed = record(1_000, true, &h);
        assert_eq!(due(day, Some(&passed), &h, 2_000), Due::NotUntil(87_400));
        assert!(matches!(due(day, Some(&passed), &h, 87_400), Due::Now(_)));
        assert!(matches!(
            due(day, Some(&passed), &Hash::of(b"edited"), 2_000),
            Due::Now("the configuration changed since the last run")
        ));
        assert!(matches!(
            due(day, Some(&record(1_000, false, &h)), &h, 1_001),
            Due::Now("the last run failed")
        ));
        assert!(matches!(
            due(day, Some(&record(u64::MAX, true, &h)), &h, 0),
            Due::NotUntil(u64::MAX)
        ));
    }
}
