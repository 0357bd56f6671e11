//! Packet inspection: the layer-2 evidence the firewall never sees. Stacked or unknown
//! VLAN tags, ARP and neighbour discovery claiming the router or another segment, frames
//! forged with the router's own MAC, DHCP servers and IPv6 router advertisements that are
//! not the router, and traffic of one segment on another's wire (with `origin`: whose it
//! is, as far as the router can tell).
//!
//! `classify` is the pure core: a frame and its capture context in, at most one
//! `Finding` out, without allocating and without panicking on any bytes (fuzzed under
//! `fuzz/`). `filter` builds the classic BPF program that keeps ordinary traffic out of
//! the daemon. This module does no I/O and keeps no payload bytes: the capture loop (an
//! edge, in the `cloison` crate) owns the sockets and hands frames in. The frames the
//! tests feed it come from the frame kit of `cloison-lab`, whose tests exercise this
//! module through its public API.

mod classify;
pub mod filter;
mod finding;
mod origin;
mod topology;

pub use classify::{TPID_8021AD, TPID_8021Q, TPID_QINQ, classify};
pub use filter::{BpfInsn, FilterError, capture_filter};
pub use finding::{Finding, Reason};
pub use origin::{Attribution, JOIN_EVIDENCE_US};
pub use topology::{CaptureContext, CapturePoint, Link, Topology, TopologyError};
