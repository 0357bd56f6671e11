//! The subscription to NFNLGRP_NFTABLES: change notifications grouped by transaction.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use netlink_sys::Socket;

use super::wire::{self, Change, Notification};
use super::{Error, sock};

/// Receive buffer asked for the subscription by [`Watcher::open`]. With CAP_NET_ADMIN
/// it is granted whole (SO_RCVBUFFORCE; the kernel reports 8 MiB), otherwise up to
/// `net.core.rmem_max`. Measured: a 10,000-rule transaction fits while unread, a
/// 20,000-rule one overflows it ([`Event::Overflow`]).
pub const DEFAULT_RCVBUF: usize = 4 << 20;

/// One committed nf_tables transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The ruleset generation the commit produced (`NFTA_GEN_ID`).
    pub generation: u32,
    /// `NFTA_GEN_PROC_PID`: the committing thread's id as the initial pid namespace
    /// sees it; for `nft`, single-threaded, its pid.
    pub pid: Option<u32>,
    /// `NFTA_GEN_PROC_NAME`: that thread's `comm`, e.g. `nft`.
    pub comm: Option<String>,
    /// The netlink port id of the socket that sent the batch (the NEWGEN header's
    /// `nlmsg_pid`): a process committing through its own socket recognises its own.
    pub portid: u32,
    /// What the transaction changed, in the kernel's order.
    pub changes: Vec<Change>,
    /// False when changes may be missing or foreign: an overflow happened since the
    /// previous transaction (conservative: this one may be whole), or a change carried
    /// another generation than this one.
    pub complete: bool,
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A transaction was committed.
    Transaction(Transaction),
    /// The socket overflowed (ENOBUFS): notifications were lost. The consumer must
    /// re-read whatever it watches; the next transaction is marked incomplete.
    Overflow,
}

/// Groups decoded notifications into transactions; pure, so captured datagrams can be
/// replayed through it. [`Watcher`] feeds it what the socket receives.
///
/// The kernel sends a transaction's change notifications first and its NEWGEN last,
/// so changes are held until their NEWGEN arrives and then reported together.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Changes announced since the last NEWGEN, with their `res_id`.
    pending: Vec<(Change, u16)>,
    /// An overflow happened since the last NEWGEN.
    lost: bool,
}

impl Assembler {
    /// Takes one received datagram; appends the transactions it completes to `out`.
    pub fn datagram(
        &mut self,
        datagram: &[u8],
        out: &mut Vec<Event>,
    ) -> Result<(), wire::Malformed> {
        for m in wire::messages(datagram) {
            let m = m?;
            match wire::decode_notification(&m)? {
                None => {}
                Some(Notification::Change { change, res_id }) => {
                    self.pending.push((change, res_id));
                }
                Some(Notification::NewGen(g)) => {
                    let low = (g.id & 0xffff) as u16;
                    let same_gen = self.pending.iter().all(|(_, r)| *r == low);
                    let changes = self.pending.drain(..).map(|(c, _)| c).collect();
                    out.push(Event::Transaction(Transaction {
                        generation: g.id,
                        pid: g.pid,
                        comm: g.comm,
                        portid: m.portid,
                        changes,
                        complete: same_gen && !self.lost,
                    }));
                    self.lost = false;
                }
            }
        }
        Ok(())
    }

    /// The socket overflowed: what is pending is partial, and so will the next
    /// transaction be.
    pub fn overflow(&mut self, out: &mut Vec<Event>) {
        self.pending.clear();
        self.lost = true;
        out.push(Event::Overflow);
    }

    /// Changes announced whose NEWGEN has not arrived yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// A subscription to the nf_tables multicast group of the network namespace the
/// watcher was opened in. The socket is non-blocking: [`Watcher::poll`] never blocks
/// and the fd suits tokio's `AsyncFd`; [`Watcher::wait`] blocks up to a timeout.
pub struct Watcher {
    socket: Socket,
    buf: Vec<u8>,
    assembler: Assembler,
}

impl Watcher {
    /// Subscribes in the calling thread's network namespace. Needs CAP_NET_ADMIN there
    /// (nfnetlink refuses group membership otherwise, with EPERM).
    pub fn open() -> Result<Watcher, Error> {
        Watcher::with_buffer(DEFAULT_RCVBUF)
    }

    /// [`Watcher::open`] asking for a receive buffer of `bytes`.
    pub fn with_buffer(bytes: usize) -> Result<Watcher, Error> {
        let socket = sock::open(bytes)?;
        socket
            .add_membership(wire::NFNLGRP_NFTABLES)
            .map_err(Error::Subscribe)?;
        socket.set_non_blocking(true).map_err(Error::Open)?;
        Ok(Watcher {
            socket,
            buf: Vec::with_capacity(sock::DATAGRAM),
            assembler: Assembler::default(),
        })
    }

    /// Reads everything queued on the socket, without blocking, and returns the events
    /// it completes (possibly none). It reads until the socket is empty (EAGAIN), so an
    /// `AsyncFd` guard can clear its readiness after an `Ok`.
    pub fn poll(&mut self) -> Result<Vec<Event>, Error> {
        let mut events = Vec::new();
        loop {
            match sock::recv(&self.socket, &mut self.buf) {
                Ok(()) => self
                    .assembler
                    .datagram(&self.buf, &mut events)
                    .map_err(|e| Error::Malformed {
                        op: "NFNLGRP_NFTABLES notification".into(),
                        detail: e.0,
                    })?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(events),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.assembler.overflow(&mut events);
                }
                Err(source) => {
                    return Err(Error::Recv {
                        op: "NFNLGRP_NFTABLES".into(),
                        source,
                    });
                }
            }
        }
    }

    /// Blocks until at least one event is complete or `timeout` passes (then returns
    /// an empty list).
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<Event>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.poll()?;
            if !events.is_empty() {
                return Ok(events);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Vec::new());
            }
            sock::wait_readable(&self.socket, left).map_err(|source| Error::Recv {
                op: "poll(2) on NFNLGRP_NFTABLES".into(),
                source,
            })?;
        }
    }

    /// Changes announced whose NEWGEN has not arrived yet (normally none between calls:
    /// the kernel sends a transaction's messages back to back).
    pub fn pending(&self) -> usize {
        self.assembler.pending()
    }

    /// The receive buffer the kernel granted, in bytes (it counts its own overhead too:
    /// a small notification takes about 1 KiB of it).
    pub fn buffer(&self) -> Result<usize, Error> {
        sock::rcvbuf(&self.socket).map_err(Error::Open)
    }
}

/// The socket's fd, for an event loop. It stays open and the same for the watcher's
/// whole life, which `unsafe { tokio::io::unix::AsyncFd::register(watcher) }` requires
/// (tokio 1.54 deprecates `AsyncFd::new`).
impl AsRawFd for Watcher {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
