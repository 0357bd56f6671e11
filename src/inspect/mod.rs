//! Packet inspection: the layer-2 evidence the firewall never sees. Stacked or unknown
//! VLAN tags, ARP replies claiming the router or another segment, DHCP servers and IPv6
//! router advertisements that are not the router, and traffic of one segment on
//! another's wire.
//!
//! `classify` is the pure core: a frame and its capture context in, at most one
//! `Finding` out, without allocating and without panicking on any bytes (fuzzed under
//! `fuzz/`). `filter` builds the classic BPF program that keeps ordinary traffic out of
//! the daemon. This module does no I/O and keeps no payload bytes: the capture loop (an
//! edge, not here) owns the sockets and hands frames in.

mod classify;
pub mod filter;
mod finding;
#[doc(hidden)]
pub mod fixtures;
mod topology;

pub use classify::classify;
pub use filter::{BpfInsn, FilterError, capture_filter};
pub use finding::{Finding, Reason};
pub use topology::{CaptureContext, CapturePoint, Link, MAX_SEGMENTS, Topology, TopologyError};

#[cfg(test)]
mod tests;
