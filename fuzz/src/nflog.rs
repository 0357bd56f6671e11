//! The `nflog` target: one datagram of the NFLOG group, as the kernel would hand it over
//! (`cloison::nflog::decode_datagram`), then each sample decoded against the lab's
//! configuration (`cloison_core::sample::decode`) and folded into journal entries the
//! way the daemon does. Properties: nothing panics; an IPv4 sample keeps the headers
//! only (at most 74 bytes: a header with options and TCP up to its flags; an IPv6 one
//! keeps its extension chain, unbounded here); once the counters
//! have been read (each counter counting the samples of its flows, as the kernel's
//! counters count at least the packets they sample) and everything flushed, the
//! entries account for exactly the packets counted, within the bound.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cloison_core::config::Config;
use cloison_core::sample::{Sample, decode};

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(cloison_core::testkit::lab_config)
}

pub fn check(data: &[u8]) {
    let samples = cloison::nflog::decode_datagram(data);
    check_samples(&samples);
}

pub fn check_samples(samples: &[Sample]) {
    let config = config();
    let mut folder = crate::fold::folder(config);
    let mut keys = Vec::new();
    let mut counters: BTreeMap<String, u64> = BTreeMap::new();
    for s in samples {
        if s.packet.first().is_some_and(|b| b >> 4 == 4) {
            assert!(
                s.packet.len() <= 60 + 14,
                "an IPv4 sample keeps the headers only, not {} bytes",
                s.packet.len()
            );
        }
        if let Some(key) = decode(s, config) {
            if let Some(counter) = folder.names().counter_of(&key) {
                *counters.entry(counter).or_default() += 1;
            }
            keys.push(key);
        }
    }
    let counters: Vec<(String, u64)> = counters.into_iter().collect();
    crate::fold::fold(&mut folder, &keys, &counters);
}
