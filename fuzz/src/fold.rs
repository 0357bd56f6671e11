//! What the nflog and capture targets share: the daemon's folder over the flow keys an
//! input produced, with a small bound so that eviction and the bound are exercised, and
//! the exact-count rule checked once everything is flushed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloison_core::alert::event::FlowKey;
use cloison_core::alert::{Alert, FoldSettings, Folder, Names, encode_json, encode_native};
use cloison_core::config::Config;

/// Entries a minute: small, so a short input reaches the bound.
pub const MAX_PER_MINUTE: u32 = 8;

/// A folder as the daemon makes one for `config`, with a small bound and few flows.
pub fn folder(config: &Config) -> Folder {
    Folder::new(
        Names::from_config(config, "fuzz-router"),
        FoldSettings {
            summary_every: Duration::from_secs(60),
            max_per_minute: MAX_PER_MINUTE,
            max_flows: 4,
        },
    )
}

/// A fixed moment, so runs are reproducible.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_777_000_000)
}

/// Observes `keys` at one moment, then (for counter-backed kinds) reads `counters`,
/// flushes, encodes every entry both ways, and checks the exact-count rule and the
/// bound. Returns the entries written.
pub fn fold(folder: &mut Folder, keys: &[FlowKey], counters: &[(String, u64)]) -> Vec<Alert> {
    let now = now();
    let mut alerts: Vec<Alert> = keys.iter().filter_map(|k| folder.observe(k, now)).collect();
    if !counters.is_empty() {
        alerts.extend(folder.counters(counters, now));
    }
    alerts.extend(folder.flush(now));
    for a in &alerts {
        let _ = encode_native(a);
        let _ = encode_json(a);
    }
    let stats = folder.stats();
    for (kind, count) in &stats.kinds {
        assert_eq!(
            count.reported, count.counted,
            "{kind}: the entries account for every packet counted ({count:?})"
        );
    }
    // First alerts take half the minute's bound; the flush the other half, and one
    // entry per kind beyond it.
    let kinds = stats.kinds.len();
    assert!(
        alerts.len() <= usize::try_from(MAX_PER_MINUTE).unwrap_or(usize::MAX) + kinds,
        "{} entries in one minute with a bound of {MAX_PER_MINUTE}",
        alerts.len()
    );
    alerts
}
