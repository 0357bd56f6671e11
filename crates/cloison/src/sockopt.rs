//! Socket options for the edges that open their own sockets (packet capture, NFLOG,
//! nf_tables over netlink): the one place that calls setsockopt(2).

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;
use std::time::Duration;

/// The size of `T` as the kernel's `socklen_t` (socket structures are a few bytes).
pub fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(size_of::<T>()).expect("a socket structure's size fits socklen_t")
}

/// setsockopt(2) with a value of type `T`.
pub fn set<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(value).cast(),
            socklen::<T>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// SO_RCVTIMEO: a blocking receive gives up with EAGAIN after `timeout`.
pub fn set_recv_timeout(fd: RawFd, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
    };
    set(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

/// A receive buffer of `bytes`: SO_RCVBUFFORCE (CAP_NET_ADMIN may exceed
/// net.core.rmem_max), else SO_RCVBUF (capped by it).
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    set(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size)
        .or_else(|_| set(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size))
}
