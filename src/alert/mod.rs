//! Alerts: what is reported, how repeats are folded, and where entries are written.
//!
//! - `event`: the vocabulary (kinds, MESSAGE_IDs, priorities, flow keys).
//! - `Alert`: one journal entry with its fields (`entry`), built with `Names`.
//! - `Folder`: the pure core of "exact counts, bounded volume" (`fold`).
//! - `JournalWriter`: the edge that writes entries to journald, or to stderr as JSON
//!   lines where there is no journald (`sink`).
//!
//! Nothing here ever sees packet payload: only `FlowKey`s, counts and times.

pub mod event;

mod entry;
mod fold;
mod names;
mod ports;
mod sink;

pub use entry::{
    Alert, MAX_VALUE_LEN, SYSLOG_IDENTIFIER, counter_backed, field, rfc3339, traffic_kind,
    valid_field_name, verdict,
};
pub use fold::{DEFAULT_MAX_FLOWS, FORGET_AFTER, FoldSettings, FoldStats, Folder, KindCount};
pub use names::{CounterClass, Names};
pub use ports::service_name;
pub use sink::{
    JOURNAL_SOCKET, JournalWriter, LogLimit, Sink, SinkStats, Written, encode_json, encode_native,
};
