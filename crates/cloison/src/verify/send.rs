//! Sending the probes, from inside a probe host's network namespace: TCP connects, UDP
//! datagrams (a DNS query to port 53, an NTP request to 123, nothing elsewhere) and ICMP
//! echo requests, many at once with non-blocking sockets and poll(2), started at a
//! bounded rate, each with a deadline. What comes back is read from the socket: a
//! completed handshake, a reset, an answer, or the ICMP error the kernel reports on the
//! socket (IP_RECVERR). Each probe's source port (the echo identifier for ICMP) is
//! returned, so the trace and the route query can name the same flow.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use cloison_core::policy::L4;
use cloison_core::verify::judge::Answer;

/// How long a probe waits for an answer.
pub const TIMEOUT: Duration = Duration::from_millis(1000);
/// Probes started per second, per probe host: gentle on a live segment.
pub const RATE_PER_SECOND: u32 = 150;
/// Probes in flight at once, per probe host.
const IN_FLIGHT: usize = 64;

/// One probe to send.
#[derive(Debug, Clone)]
pub struct Spec {
    pub index: usize,
    pub src: IpAddr,
    pub target: IpAddr,
    pub l4: L4,
}

/// What came of it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub index: usize,
    pub sport: Option<u16>,
    pub answer: Answer,
}

struct InFlight {
    index: usize,
    fd: OwnedFd,
    sport: Option<u16>,
    tcp: bool,
    deadline: Instant,
}

/// Sends every probe and waits for the answers (blocking). Runs in the probe host's
/// namespace: the sockets it creates belong to it.
pub fn send_all(specs: &[Spec]) -> Vec<Sent> {
    let mut out = Vec::with_capacity(specs.len());
    let mut queue: VecDeque<&Spec> = specs.iter().collect();
    let mut flight: Vec<InFlight> = Vec::new();
    let gap = Duration::from_secs(1) / RATE_PER_SECOND;
    let mut next_start = Instant::now();
    while !queue.is_empty() || !flight.is_empty() {
        let now = Instant::now();
        while flight.len() < IN_FLIGHT && now >= next_start {
            let Some(spec) = queue.pop_front() else { break };
            next_start = now + gap;
            match start(spec) {
                Ok(f) => flight.push(f),
                Err(e) => out.push(Sent {
                    index: spec.index,
                    sport: None,
                    answer: Answer::NotSent {
                        error: e.to_string(),
                    },
                }),
            }
        }
        let mut wake = flight.iter().map(|f| f.deadline).min();
        if !queue.is_empty() && flight.len() < IN_FLIGHT {
            wake = Some(wake.map_or(next_start, |w| w.min(next_start)));
        }
        let wait = wake.map_or(Duration::ZERO, |w| {
            w.saturating_duration_since(Instant::now())
        });
        let mut fds: Vec<libc::pollfd> = flight
            .iter()
            .map(|f| libc::pollfd {
                fd: f.fd.as_raw_fd(),
                events: if f.tcp { libc::POLLOUT } else { libc::POLLIN },
                revents: 0,
            })
            .collect();
        let ms = libc::c_int::try_from(wait.as_millis().saturating_add(1)).unwrap_or(1000);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // poll(2) itself failed: nothing more can be read; what is in flight is
            // reported unanswered rather than guessed.
            for f in flight.drain(..) {
                out.push(Sent {
                    index: f.index,
                    sport: f.sport,
                    answer: Answer::NoAnswer,
                });
            }
            break;
        }
        let now = Instant::now();
        let mut keep = Vec::with_capacity(flight.len());
        for (f, p) in flight.into_iter().zip(fds) {
            let ready = p.revents != 0;
            let answer = if ready {
                Some(read_answer(&f))
            } else if now >= f.deadline {
                Some(Answer::NoAnswer)
            } else {
                None
            };
            match answer {
                Some(answer) => out.push(Sent {
                    index: f.index,
                    sport: f.sport,
                    answer,
                }),
                None => keep.push(f),
            }
        }
        flight = keep;
    }
    out.sort_by_key(|s| s.index);
    out
}

fn start(spec: &Spec) -> io::Result<InFlight> {
    let v6 = spec.target.is_ipv6();
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    let (kind, proto, port) = match spec.l4 {
        L4::Tcp(p) => (libc::SOCK_STREAM, 0, p),
        L4::Udp(p) => (libc::SOCK_DGRAM, 0, p),
        L4::Icmp if v6 => (libc::SOCK_DGRAM, libc::IPPROTO_ICMPV6, 0),
        L4::Icmp => (libc::SOCK_DGRAM, libc::IPPROTO_ICMP, 0),
    };
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let raw = unsafe {
        libc::socket(
            domain,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let tcp = matches!(spec.l4, L4::Tcp(_));
    if !tcp {
        // ICMP errors reported on the socket, whatever their kind.
        let (level, name) = if v6 {
            (libc::SOL_IPV6, libc::IPV6_RECVERR)
        } else {
            (libc::SOL_IP, libc::IP_RECVERR)
        };
        setsockopt_int(&fd, level, name, 1)?;
    } else {
        // One SYN, no retransmission within the deadline.
        setsockopt_int(&fd, libc::IPPROTO_TCP, libc::TCP_SYNCNT, 1)?;
    }
    bind(&fd, SocketAddr::new(spec.src, 0))?;
    match connect(&fd, SocketAddr::new(spec.target, port)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let sport = local_port(&fd).ok();
    match spec.l4 {
        L4::Tcp(_) => {}
        L4::Udp(53) => send(&fd, &dns_query())?,
        L4::Udp(123) => send(&fd, &ntp_request())?,
        L4::Udp(_) => send(&fd, &[])?,
        L4::Icmp => {
            // Type echo request (8, or 128 for ICMPv6); the kernel fills the identifier
            // (the socket's "port") and the checksum.
            let t = if v6 { 128 } else { 8 };
            send(&fd, &[t, 0, 0, 0, 0, 0, 0, 1, b'c', b'l', b'o', b'i'])?;
        }
    }
    Ok(InFlight {
        index: spec.index,
        fd,
        sport,
        tcp,
        deadline: Instant::now() + TIMEOUT,
    })
}

fn read_answer(f: &InFlight) -> Answer {
    if f.tcp {
        return match socket_error(&f.fd) {
            Ok(0) => Answer::Open,
            Ok(libc::ECONNREFUSED) => Answer::Refused,
            Ok(e) => icmp_error(e),
            Err(e) => Answer::NotSent {
                error: e.to_string(),
            },
        };
    }
    let mut buf = [0u8; 512];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(f.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n >= 0 {
        return Answer::Replied;
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Answer::NoAnswer,
        Some(code) => icmp_error(code),
        None => Answer::NotSent {
            error: e.to_string(),
        },
    }
}

/// An errno the kernel set from an ICMP error, in words. A port unreachable comes from
/// the target itself (it was reached); the others from a router on the way.
fn icmp_error(code: i32) -> Answer {
    let (what, from_target) = match code {
        libc::ECONNREFUSED => ("port unreachable", true),
        libc::EHOSTUNREACH => ("host unreachable", false),
        libc::ENETUNREACH => ("network unreachable", false),
        libc::EACCES | libc::EPERM => ("administratively prohibited", false),
        libc::ENOPROTOOPT => ("protocol unreachable", true),
        libc::EMSGSIZE => ("fragmentation needed", false),
        libc::ETIMEDOUT => return Answer::NoAnswer,
        _ => {
            return Answer::IcmpError {
                what: io::Error::from_raw_os_error(code).to_string(),
                from_target: false,
            };
        }
    };
    Answer::IcmpError {
        what: what.into(),
        from_target,
    }
}

fn setsockopt_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` is a valid int for the duration of the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            socklen(std::mem::size_of::<i32>()),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn socket_error(fd: &OwnedFd) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = socklen(std::mem::size_of::<i32>());
    // SAFETY: `value` and `len` are valid for writing during the call.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(value)
    }
}

/// The size of a socket structure, as the system calls take it.
fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).expect("socket structures are small")
}

fn family(f: i32) -> libc::sa_family_t {
    libc::sa_family_t::try_from(f).expect("address families are small")
}

/// A `sockaddr_in` or `sockaddr_in6` for `a`, and its length.
fn sockaddr(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: family(libc::AF_INET),
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large enough and suitably aligned for it.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: family(libc::AF_INET6),
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, socklen(len))
}

fn bind(fd: &OwnedFd, a: SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(a);
    // SAFETY: `ss` holds a valid address of `len` bytes.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn connect(fd: &OwnedFd, a: SocketAddr) -> io::Result<()> {
    let (ss, len) = sockaddr(a);
    // SAFETY: as for bind.
    let r = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn send(fd: &OwnedFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is readable for its length.
    let r = unsafe { libc::send(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn local_port(fd: &OwnedFd) -> io::Result<u16> {
    // SAFETY: zeroed storage is valid; getsockname writes at most `len` bytes.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = socklen(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `ss` and `len` are valid for writing.
    let r = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // Both sockaddr_in and sockaddr_in6 have the port right after the family.
    // SAFETY: the kernel wrote a sockaddr_in or sockaddr_in6, whose first fields are
    // the family (2 bytes) then the port (2 bytes, network order).
    let port =
        unsafe { (*(&ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()).sin_port };
    Ok(u16::from_be(port))
}

/// A DNS query for the root's NS records: what any resolver answers.
fn dns_query() -> Vec<u8> {
    vec![
        0xc1, 0x05, // id
        0x01, 0x00, // recursion desired
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 1 question
        0x00, // the root
        0x00, 0x02, 0x00, 0x01, // NS, IN
    ]
}

/// An NTP version 4 client request (mode 3), the rest zero.
fn ntp_request() -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x23;
    p
}
