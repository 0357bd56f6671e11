//! nf_tables over netlink, in pure Rust: who changed the ruleset, its generation, and
//! the named counters of a table, without starting `nft`.
//!
//! - [`Watcher`] subscribes to `NFNLGRP_NFTABLES` and reports each committed
//!   transaction: its generation, the committing process (pid and `comm`) and the
//!   (kind, family, table) of every object it changed; [`Event::Overflow`] when the
//!   socket lost notifications (re-check everything then).
//! - [`Client`] asks: [`Client::generation`] (cheap "did anything change?"),
//!   [`Client::table_exists`], [`Client::counters`] (all named counters of one table).
//!
//! Everything is hand-parsed in [`wire`], a pure module: `struct nlmsghdr`, then
//! `struct nfgenmsg` (family, version, big-endian `res_id`), then attributes.
//!
//! # What the kernel sends (observed on Linux 6.18 with nft 1.0.6; see the tests)
//!
//! - **Order.** A transaction's change notifications come first, in commit order, packed
//!   into one or more datagrams; its NFT_MSG_NEWGEN follows in a datagram of its own.
//!   Each change's `nfgenmsg.res_id` is the low 16 bits of that NEWGEN's generation, and
//!   every message's `nlmsg_pid` is the port id of the socket that sent the batch.
//! - **`nft delete table inet t`**: one transaction holding a DELRULE per rule, a
//!   DELSET per set (no DELSETELEM for its elements), a DELOBJ per named object, a
//!   DELCHAIN per chain, then the DELTABLE. **`nft flush ruleset`**: the same for every
//!   table, one DELTABLE each, all in one transaction; on an empty ruleset, nothing.
//! - **Who.** `NFTA_GEN_PROC_PID` is `task_pid_nr(current)`: the id of the committing
//!   *thread*, as the initial pid namespace sees it, and `NFTA_GEN_PROC_NAME` that
//!   thread's `comm`. For `nft` (single-threaded) that is its pid and `nft`; a daemon
//!   that applies its ruleset by running `nft` recognises its own changes by the
//!   child's pid. A process committing on its own netlink socket sees the tid of the
//!   committing thread and that thread's name, and is better matched by
//!   [`Transaction::portid`] (its socket's port id; autobind makes the first socket's
//!   port id the pid *in the process's own pid namespace*, so do not compare it with a
//!   pid).
//! - **Nothing at all** for read-only requests (`nft list ruleset`, GETGEN, dumps), for
//!   transactions that change nothing (`nft add table` of an existing table; `nft add
//!   counter` of an existing counter, which also leaves its values as they were), and
//!   for `nft reset counter(s)`: none of these moves the generation either.
//! - **Replies.** The NEWGEN answering GETGEN names the asker, not the last committer. A
//!   GETOBJ dump filtered on a table that does not exist is empty, not ENOENT.
//!
//! # Permissions, namespaces, limits
//!
//! - nfnetlink requires CAP_NET_ADMIN (in the network namespace's user namespace) both
//!   to join the group (EPERM from `Watcher::open`) and for every request (EPERM).
//! - A socket belongs to the network namespace of the thread that opened it, for its
//!   whole life, whichever thread uses it later; it sees that namespace only. To watch
//!   another namespace, open the watcher from a thread that `setns(CLONE_NEWNET)` there.
//! - A burst larger than the receive buffer (default [`DEFAULT_RCVBUF`]) is lost:
//!   [`Event::Overflow`], after which the consumer re-reads what it cares about.
//! - A dump restarted 5 times in a row by concurrent commits fails with
//!   [`Error::Interrupted`] (under a commit every 2 ms, a 3000-counter dump never ends).

mod query;
mod sock;
pub mod trace;
mod watch;
pub mod wire;

#[cfg(test)]
mod tests;

pub use query::{Client, counters, generation};
pub use watch::{Assembler, DEFAULT_RCVBUF, Event, Transaction, Watcher};
pub use wire::{Change, ChangeKind, Counts, Family};

use std::io;
use std::time::Duration;

/// What can go wrong, with the request (`op`) it happened to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open a NETLINK_NETFILTER socket")]
    Open(#[source] io::Error),
    #[error("cannot join the nftables multicast group (CAP_NET_ADMIN is needed)")]
    Subscribe(#[source] io::Error),
    #[error("{op}: cannot send the request")]
    Send {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: cannot receive")]
    Recv {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: the kernel refused")]
    Kernel {
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{op}: no complete answer within {timeout:?}")]
    Timeout { op: String, timeout: Duration },
    #[error("{op}: malformed message: {detail}")]
    Malformed { op: String, detail: String },
    #[error("{op}: interrupted by concurrent ruleset changes {attempts} times in a row")]
    Interrupted { op: String, attempts: u32 },
}
