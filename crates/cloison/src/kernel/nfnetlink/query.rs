//! Requests and their answers: the ruleset generation, whether a table exists, the named
//! counters of a table.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::Socket;

use super::wire::{self, Counts, Family, RawMessage, Request, attr, msg};
use super::{Error, sock};

/// How many times a dump interrupted by a concurrent commit is started again.
const DUMP_ATTEMPTS: u32 = 5;

/// How a request ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The answer is complete (a GET's one message, or a dump's `NLMSG_DONE`).
    Done,
    /// The kernel answered with this errno.
    Errno(i32),
    /// A dump part carried `NLM_F_DUMP_INTR`: the ruleset changed while it was built.
    Interrupted,
}

/// A socket for requests (never subscribed to a group, so answers are all it receives).
/// Blocking, with a timeout per request: one `send` and a `recv` per answering datagram
/// (two for a dump of a few dozen counters). Keep one for repeated polling; the socket
/// stays in the network namespace it was opened in.
pub struct Client {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    timeout: Duration,
    restarts: u64,
}

impl Client {
    /// Opens a client in the calling thread's network namespace, with a 2 s timeout.
    pub fn open() -> Result<Client, Error> {
        Client::with_timeout(Duration::from_secs(2))
    }

    /// Opens a client whose requests fail with [`Error::Timeout`] after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Result<Client, Error> {
        let socket = sock::open(256 * 1024)?;
        // Per receive; `exchange` also bounds the whole request.
        sock::set_recv_timeout(&socket, timeout).map_err(Error::Open)?;
        Ok(Client {
            socket,
            // Any start works; a clock-based one keeps two runs' answers apart in traces.
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs().to_le_bytes()[0].into()),
            buf: Vec::with_capacity(sock::DATAGRAM),
            timeout,
            restarts: 0,
        })
    }

    /// How many dumps this client started again because a commit interrupted them.
    pub fn restarted_dumps(&self) -> u64 {
        self.restarts
    }

    /// NFT_MSG_GETGEN: the current ruleset generation. It changes with every committed
    /// transaction, so an unchanged value means nothing changed since it was read. (The
    /// answer's pid and comm are the asker's, not the last committer's: not returned.)
    pub fn generation(&mut self) -> Result<u32, Error> {
        let op = "GETGEN";
        let mut id = None;
        let end = self.exchange(
            op,
            msg::GETGEN,
            Family::Unspec,
            false,
            |r| r,
            |m| {
                if m.nft_type() == Some(msg::NEWGEN) {
                    let (_, _, area) = wire::split_nfgenmsg(m.payload)?;
                    id = Some(wire::decode_gen(area)?.id);
                }
                Ok(())
            },
        )?;
        match (end, id) {
            (End::Done, Some(id)) => Ok(id),
            (End::Errno(errno), _) => Err(kernel(op, errno)),
            _ => Err(Error::Malformed {
                op: op.into(),
                detail: "no NEWGEN in the answer".into(),
            }),
        }
    }

    /// NFT_MSG_GETTABLE: whether `family` has a table `name` (ENOENT means no).
    pub fn table_exists(&mut self, family: Family, name: &str) -> Result<bool, Error> {
        let op = format!("GETTABLE {family} {name}");
        let end = self.exchange(
            &op,
            msg::GETTABLE,
            family,
            false,
            |r| r.string(attr::TABLE, name),
            |_| Ok(()),
        )?;
        match end {
            End::Done => Ok(true),
            End::Errno(libc::ENOENT) => Ok(false),
            End::Errno(errno) => Err(kernel(&op, errno)),
            End::Interrupted => Err(Error::Malformed {
                op,
                detail: "NLMSG_DONE answering a request that is not a dump".into(),
            }),
        }
    }

    /// NFT_MSG_GETOBJ dump of the counter objects of one table: name -> counts.
    /// `Ok(None)` when the table does not exist. The kernel filters by family, table and
    /// type; a dump that a concurrent commit interrupted (`NLM_F_DUMP_INTR`, or EINTR,
    /// EBUSY, EAGAIN) is started again, up to 5 times. Give a family: with
    /// [`Family::Unspec`] same-named tables of several families would be merged.
    ///
    /// A dump does not fail for a table that does not exist (it is just empty), so an
    /// empty answer costs a GETTABLE more to tell "no table" from "no counters".
    pub fn counters(
        &mut self,
        family: Family,
        table: &str,
    ) -> Result<Option<BTreeMap<String, Counts>>, Error> {
        let op = format!("GETOBJ counters of {family} {table}");
        for _ in 0..DUMP_ATTEMPTS {
            let mut out = BTreeMap::new();
            let end = self.exchange(
                &op,
                msg::GETOBJ,
                family,
                true,
                |r| {
                    r.string(attr::TABLE, table)
                        .be32(attr::OBJ_TYPE, wire::NFT_OBJECT_COUNTER)
                },
                |m| collect_counter(family, table, m, &mut out),
            )?;
            match end {
                End::Done if !out.is_empty() => return Ok(Some(out)),
                // An empty dump: a table without counters, or no table (dumps do not
                // check that the filter names an existing table).
                End::Done => {
                    return Ok(self.table_exists(family, table)?.then_some(out));
                }
                End::Errno(libc::ENOENT) => return Ok(None),
                End::Interrupted | End::Errno(libc::EINTR | libc::EBUSY | libc::EAGAIN) => {
                    self.restarts += 1;
                }
                End::Errno(errno) => return Err(kernel(&op, errno)),
            }
        }
        Err(Error::Interrupted {
            op,
            attempts: DUMP_ATTEMPTS,
        })
    }

    /// Sends one request and hands each answering message to `each`, until the answer
    /// is complete, the kernel reports an error, or the timeout passes.
    fn exchange(
        &mut self,
        op: &str,
        t: u8,
        family: Family,
        dump: bool,
        attrs: impl FnOnce(Request) -> Request,
        mut each: impl FnMut(&RawMessage<'_>) -> Result<(), wire::Malformed>,
    ) -> Result<End, Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = attrs(Request::new(t, family, seq, dump)).finish();
        loop {
            match self.socket.send(&req, 0) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Send {
                        op: op.into(),
                        source,
                    });
                }
            }
        }
        let deadline = Instant::now() + self.timeout;
        let mut interrupted = false;
        loop {
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    op: op.into(),
                    timeout: self.timeout,
                });
            }
            match sock::recv(&self.socket, &mut self.buf) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(Error::Timeout {
                        op: op.into(),
                        timeout: self.timeout,
                    });
                }
                Err(source) => {
                    return Err(Error::Recv {
                        op: op.into(),
                        source,
                    });
                }
            }
            let malformed = |detail: wire::Malformed| Error::Malformed {
                op: op.into(),
                detail: detail.0,
            };
            for m in wire::messages(&self.buf) {
                let m = m.map_err(malformed)?;
                match step(seq, &m, &mut interrupted).map_err(malformed)? {
                    Step::Skip => {}
                    Step::Data => {
                        each(&m).map_err(malformed)?;
                        if !dump {
                            return Ok(End::Done);
                        }
                    }
                    Step::End(end) => return Ok(end),
                }
            }
        }
    }
}

/// What one received message means for the request numbered `seq`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Not an answer to it: the late answer to an earlier request that timed out.
    Skip,
    /// Part of the answer.
    Data,
    /// The answer is over.
    End(End),
}

/// Classifies an answering message; `interrupted` remembers `NLM_F_DUMP_INTR` on any
/// part of a dump until its `NLMSG_DONE`.
pub(super) fn step(
    seq: u32,
    m: &RawMessage<'_>,
    interrupted: &mut bool,
) -> Result<Step, wire::Malformed> {
    if m.seq != seq {
        return Ok(Step::Skip);
    }
    *interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
    Ok(match m.kind {
        NLMSG_ERROR => {
            let (errno, _) = wire::decode_error(m.payload)?;
            Step::End(if errno == 0 {
                End::Done
            } else {
                End::Errno(errno)
            })
        }
        NLMSG_DONE => {
            // The dump's own status: 0, or a negative errno.
            let errno = m
                .payload
                .get(..4)
                .map_or(0, |b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            Step::End(match (*interrupted, errno) {
                (true, _) => End::Interrupted,
                (false, 0) => End::Done,
                (false, e) => End::Errno(e),
            })
        }
        _ => Step::Data,
    })
}

/// Adds the counter a GETOBJ answer part describes, if it is one of `family`'s `table`.
pub(super) fn collect_counter(
    family: Family,
    table: &str,
    m: &RawMessage<'_>,
    out: &mut BTreeMap<String, Counts>,
) -> Result<(), wire::Malformed> {
    if m.nft_type() != Some(msg::NEWOBJ) {
        return Ok(());
    }
    let (f, _, area) = wire::split_nfgenmsg(m.payload)?;
    if let Some((t, name, counts)) = wire::decode_counter(area)? {
        // The kernel filters already; this guards against one that did not.
        if t == table && (family == Family::Unspec || f == family) {
            out.insert(name, counts);
        }
    }
    Ok(())
}

fn kernel(op: &str, errno: i32) -> Error {
    Error::Kernel {
        op: op.into(),
        source: io::Error::from_raw_os_error(errno),
    }
}

/// [`Client::generation`] on a client of its own (one socket per call).
pub fn generation() -> Result<u32, Error> {
    Client::open()?.generation()
}

/// [`Client::counters`] on a client of its own (one socket per call).
pub fn counters(family: Family, table: &str) -> Result<Option<BTreeMap<String, Counts>>, Error> {
    Client::open()?.counters(family, table)
}
