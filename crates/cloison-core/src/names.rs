//! Names and numbers of everything cloison creates in the kernel, in one place: the
//! table, chains and sets, the NFLOG group, the policy-routing tables and priorities.
//! Counter names, a contract of their own, are in `counter`.

use std::ops::Range;

use crate::config::{MAX_SEGMENTS, MAX_UPLINKS};

/// The one nftables table cloison owns (family inet: IPv4 and IPv6 in one ruleset).
pub const TABLE: &str = "cloison";

/// NFLOG group the ruleset sends sampled drops to. Arbitrary; away from 0 and 1, which
/// ulogd and most examples use.
pub const NFLOG_GROUP: u32 = 1793;

/// Sampled drops sent to userspace per (source, destination) pair: enough to name the
/// flows, never a limit on the drop itself (the counter and drop are a separate rule).
pub const LOG_RATE_PER_SECOND: u32 = 50;
pub const LOG_BURST: u32 = 100;

/// The packet mark of `cloison verify`'s probes, set by the eBPF program that injects
/// them into a segment interface (never by anything a host sends). The ruleset's first
/// rule turns nftables tracing on for packets so marked, which is how verify sees each
/// probe's verdict; the daemon reads the mark in NFLOG samples to label the probes'
/// alerts (`CLOISON_VERIFY=1`). Routing rules that match marks (`fwmark`) would treat
/// the probes differently from hosts: cloison installs none.
pub const VERIFY_MARK: u32 = 0x0c10_5e00;

/// Base chains. `sources` checks source addresses (prerouting, before conntrack);
/// `segments` decides where a segment's packets may go (prerouting, before routing).
pub const CHAIN_SOURCES: &str = "sources";
pub const CHAIN_SEGMENTS: &str = "segments";
pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_INPUT: &str = "input";
pub const CHAIN_POSTROUTING: &str = "postrouting";
/// Counts and drops packets conntrack finds invalid.
pub const CHAIN_INVALID: &str = "invalid";
/// Counts, samples and drops what arrives untagged on the trunk's parent interface.
pub const CHAIN_UNTAGGED: &str = "untagged";

/// Named sets of valid (interface, source) pairs.
pub const SET_SOURCES_V4: &str = "sources4";
pub const SET_SOURCES_V6: &str = "sources6";

/// Policy routing: one table per uplink with a gateway, numbered from here, and the
/// rule priorities cloison uses (between `local` at 0 and `main` at 32766).
pub const ROUTE_TABLE_BASE: u32 = 7300;
pub const RULE_PRIORITY_MAIN_FIRST: u32 = 7300;
pub const RULE_PRIORITY_SEGMENTS: u32 = 7310;

/// The second wall (`plan::wall`): its exceptions (allowed flows and their replies, all
/// at one priority), then one rule per segment sending it to its wall table, numbered
/// from `WALL_TABLE_BASE` by segment; all before the routes the segments use. The
/// trunk's untagged side has a rule and a table of its own, right after the segments'.
pub const RULE_PRIORITY_WALL_EXCEPTIONS: u32 = 7100;
pub const RULE_PRIORITY_WALL: u32 = 7200;
pub const WALL_TABLE_BASE: u32 = 7400;
pub const RULE_PRIORITY_WALL_TRUNK: u32 = RULE_PRIORITY_WALL + count(MAX_SEGMENTS);
pub const WALL_TABLE_TRUNK: u32 = WALL_TABLE_BASE + count(MAX_SEGMENTS);

/// The rule priorities that belong to cloison: whatever sits there is cloison's to remove.
pub const RULE_PRIORITIES: Range<u32> =
    RULE_PRIORITY_WALL_EXCEPTIONS..RULE_PRIORITY_SEGMENTS + count(MAX_SEGMENTS);
/// The routing tables that belong to cloison: one per uplink, one per segment's wall,
/// and the trunk's.
pub const UPLINK_TABLES: Range<u32> = ROUTE_TABLE_BASE..ROUTE_TABLE_BASE + count(MAX_UPLINKS);
pub const WALL_TABLES: Range<u32> = WALL_TABLE_BASE..WALL_TABLE_TRUNK + 1;

const _: () = assert!(RULE_PRIORITY_WALL_TRUNK < RULE_PRIORITY_MAIN_FIRST);
const _: () = assert!(UPLINK_TABLES.end <= WALL_TABLES.start);

/// A configuration limit as a number of priorities or tables.
#[allow(clippy::cast_possible_truncation)] // checked by the assert, at compile time
const fn count(limit: usize) -> u32 {
    assert!(limit <= 1000);
    limit as u32
}

/// Chain deciding, by destination, where packets entering segment `seg` may go
/// (prerouting).
pub fn chain_from(seg: &str) -> String {
    format!("from/{seg}")
}

/// Chain checking by which interface packets from segment `seg` leave (forward).
pub fn chain_forward_from(seg: &str) -> String {
    format!("fwd/{seg}")
}

/// Chain for traffic from `from` toward `to` (a segment or `private`).
pub fn chain_pair(from: &str, to: &str) -> String {
    format!("pair/{from}/{to}")
}

/// Chain deciding what `from` may ask of the router itself.
pub fn chain_input_from(from: &str) -> String {
    format!("in/{from}")
}

/// Chain counting and dropping spoofed packets entering `seg`.
pub fn chain_spoofed(seg: &str) -> String {
    format!("spoof/{seg}")
}
