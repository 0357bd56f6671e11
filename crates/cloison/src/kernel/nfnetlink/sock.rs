//! The NETLINK_NETFILTER socket both halves use: open, receive a whole datagram, wait.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, constants::NETLINK_NETFILTER};

use super::Error;

/// Large enough for any datagram the kernel builds for nf_tables: notifications are
/// batched into `NLMSG_GOODSIZE` buffers and dump parts are at most 32 KiB.
pub(super) const DATAGRAM: usize = 64 * 1024;

/// A netlink socket of the calling thread's network namespace, bound to an address the
/// kernel picks.
pub(super) fn open(rcvbuf: usize) -> Result<Socket, Error> {
    let mut socket = Socket::new(NETLINK_NETFILTER).map_err(Error::Open)?;
    socket.bind_auto().map_err(Error::Open)?;
    crate::sockopt::set_rcvbuf(socket.as_raw_fd(), rcvbuf).map_err(Error::Open)?;
    Ok(socket)
}

/// The receive buffer the kernel granted (SO_RCVBUF, already doubled).
pub(super) fn rcvbuf(socket: &Socket) -> io::Result<usize> {
    socket.get_rx_buf_sz()
}

/// Receives one datagram into `buf` (cleared first). A datagram larger than the buffer
/// is an error rather than silently cut.
pub(super) fn recv(socket: &Socket, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.reserve(DATAGRAM);
    let n = socket.recv(buf, libc::MSG_TRUNC)?;
    if n > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n}-byte datagram truncated to {}", buf.len()),
        ));
    }
    Ok(())
}

/// Sets SO_RCVTIMEO, so a blocking `recv` gives up with EAGAIN.
pub(super) fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    crate::sockopt::set_recv_timeout(socket.as_raw_fd(), timeout)
}

/// Waits until the socket is readable or `timeout` passes; `Ok(false)` on timeout.
/// EINTR counts as a (spurious) wake-up: the caller reads, finds nothing, and decides.
pub(super) fn wait_readable(socket: &Socket, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    match rc {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(true)
            } else {
                Err(e)
            }
        }
    }
}
