//! cloison's pure core: everything that can be decided without touching the kernel.
//!
//! - `config`: TOML text in, a validated `Config` out (or every problem, located).
//! - `plan`: `Config` in, what to apply out (the nftables ruleset as data, the links,
//!   routes, rules and sysctls), deterministic and snapshot-tested.
//! - `nft`: the canonical form of cloison's table (the live-versus-plan comparison), its
//!   `nft -f` text, and reading and seeding counters in listings.
//! - `inspect`: frame classification and the capture's BPF filter.
//! - `alert`: the alert vocabulary, folding with exact counts, and entry encoding.
//! - `sample`: what a sampled drop (NFLOG) says about its flow.
//! - `headers`: the IPv6 extension-header walk both `inspect` and `sample` use.
//! - `report`: journal entries in, the HTML page of `cloison report` out.
//! - `counter` and `hash`: the names and hashes other tools and people rely on.
//! - `metrics`: a box's reading in the Prometheus text format; `verify`: the record of
//!   the last `cloison verify`; `describe`: the policy and durations in words.
//!
//! No I/O, no clock reads, no tokio, no libc: the compiler holds the purity the
//! documentation promises. The edges that apply all this live in the `cloison` crate.

pub mod alert;
pub mod config;
pub mod counter;
pub mod describe;
pub mod hash;
pub mod headers;
pub mod inspect;
pub mod metrics;
pub mod names;
pub mod nft;
pub mod plan;
pub mod policy;
pub mod report;
pub mod sample;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod verify;
