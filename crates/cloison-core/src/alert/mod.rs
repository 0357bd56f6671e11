//! Alerts: what is reported, how repeats are folded, and how entries are encoded.
//!
//! - `event`: the vocabulary (kinds, MESSAGE_IDs, priorities, flow keys).
//! - `Alert`: one journal entry with its fields (`entry`), built with `Names`.
//! - `Folder`: the pure core of "exact counts, bounded volume" (`fold`).
//! - `Sink`, the seam to wherever entries go, and their two wire forms (`sink`); the
//!   journald writer itself is an edge, in the `cloison` crate.
//!
//! Nothing here ever sees packet payload: only `FlowKey`s, counts and times.

pub mod event;

mod entry;
mod fold;
mod names;
mod ports;
mod sink;

pub use entry::{
    Actor, Alert, Folded, MAX_VALUE_LEN, MAX_VERIFY_RESULT_LEN, Repeat, SYSLOG_IDENTIFIER, Target,
    counter_backed, field, rfc3339, traffic_kind, valid_field_name, verdict,
};
pub use fold::{
    Class, DEFAULT_MAX_FLOWS, FORGET_AFTER, FoldSettings, FoldStats, Folder, KindCount, target_of,
};
pub use names::{CounterClass, Names};
pub use ports::service_name;
pub use sink::{LogLimit, Sink, SinkStats, Written, encode_json, encode_native};
