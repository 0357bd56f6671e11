//! Traffic from inside a lab namespace, as the tests need it: connect, exchange a
//! datagram, ping, send exact bursts, forge source addresses, send and capture raw
//! Ethernet frames. Each probe runs in a fresh thread that enters the namespace and ends
//! (`netns::in_netns`); sockets it hands back stay bound to that namespace.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::netns::{NetnsError, in_netns};
use crate::serve::parse_greeting;

/// The UDP source port of forged packets (fixed, so counters and captures can match it).
pub const SPOOF_SOURCE_PORT: u16 = 40404;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{what} in network namespace {ns}: {source}")]
    Socket {
        ns: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("no interface {ifname} in network namespace {ns}")]
    NoInterface { ns: String, ifname: String },
    #[error("{what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// What a connection attempt met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Connected (TCP) or answered (UDP). `seen_peer` is the source address the lab
    /// listener saw (after any NAT), None when the far end is not a lab listener or said
    /// nothing in time.
    Open { seen_peer: Option<IpAddr> },
    /// A TCP reset or an ICMP port unreachable.
    Refused,
    /// An ICMP error other than port unreachable (host or network unreachable,
    /// administratively prohibited), no route, or a local firewall refusing the send.
    Unreachable(io::ErrorKind),
    /// Nothing came back in time: the packet or its answer was dropped silently.
    TimedOut,
}

fn socket_err<'a>(ns: &'a str, what: &'static str) -> impl FnOnce(io::Error) -> ProbeError + 'a {
    move |source| ProbeError::Socket {
        ns: ns.to_owned(),
        what,
        source,
    }
}

/// Maps a connection error to what it says about the path.
fn reach_of(e: &io::Error) -> Option<Reach> {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) | Some(libc::ECONNRESET) => Some(Reach::Refused),
        Some(libc::ETIMEDOUT) => Some(Reach::TimedOut),
        Some(
            libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES | libc::EPERM | libc::ENONET,
        ) => Some(Reach::Unreachable(e.kind())),
        _ if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            Some(Reach::TimedOut)
        }
        _ => None,
    }
}

/// Connects from `ns` to `to`; on success reads the lab listener's greeting (until the
/// same deadline) to learn the source address it saw.
pub fn tcp_connect(ns: &str, to: SocketAddr, timeout: Duration) -> Result<Reach, ProbeError> {
    in_netns(ns, || {
        let deadline = Instant::now() + timeout;
        let mut stream = match TcpStream::connect_timeout(&to, timeout) {
            Ok(s) => s,
            Err(e) => return reach_of(&e).ok_or_else(|| socket_err(ns, "tcp connect")(e)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let mut line = Vec::new();
        if !left.is_zero() && stream.set_read_timeout(Some(left)).is_ok() {
            let mut buf = [0u8; 128];
            while line.len() < 256 && !line.contains(&b'\n') {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                }
            }
        }
        Ok(Reach::Open {
            seen_peer: parse_greeting(&line),
        })
    })?
}

/// Sends one datagram from `ns` to `to` and waits for the answer.
pub fn udp_exchange(ns: &str, to: SocketAddr, timeout: Duration) -> Result<Reach, ProbeError> {
    in_netns(ns, || {
        let socket = unspecified_udp(ns, to)?;
        // Without IP_RECVERR a connected UDP socket only reports "hard" ICMP errors (port
        // unreachable); with it, unreachable hosts and networks are reported too.
        match to {
            SocketAddr::V4(_) => {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
            }
            SocketAddr::V6(_) => {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
            }
        }
        .map_err(|e| socket_err(ns, "set IP_RECVERR")(e.into()))?;
        socket.connect(to).map_err(socket_err(ns, "udp connect"))?;
        if let Err(e) = socket.send(b"cloison-lab probe") {
            return reach_of(&e).ok_or_else(|| socket_err(ns, "udp send")(e));
        }
        socket
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(socket_err(ns, "set timeout"))?;
        let mut buf = [0u8; 256];
        match socket.recv(&mut buf) {
            Ok(n) => Ok(Reach::Open {
                seen_peer: parse_greeting(&buf[..n]),
            }),
            Err(e) => reach_of(&e).ok_or_else(|| socket_err(ns, "udp recv")(e)),
        }
    })?
}

fn unspecified_udp(ns: &str, to: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(any).map_err(socket_err(ns, "udp bind"))
}

/// A UDP socket bound to `addr` inside `ns`, for the caller to receive on (it stays in
/// `ns`; use it from any thread).
pub fn bind_udp(ns: &str, addr: SocketAddr) -> Result<UdpSocket, ProbeError> {
    in_netns(ns, || {
        UdpSocket::bind(addr).map_err(socket_err(ns, "udp bind"))
    })?
}

/// Sends exactly `count` datagrams of `payload` from `ns` to `to`, from one socket;
/// returns its local address. The first datagram goes alone, so the next hop is resolved
/// (ARP/ND) before the rest: the kernel drops what overflows the unresolved queue.
pub fn send_udp_burst(
    ns: &str,
    to: SocketAddr,
    count: usize,
    payload: &[u8],
) -> Result<SocketAddr, ProbeError> {
    in_netns(ns, || {
        let socket = unspecified_udp(ns, to)?;
        for i in 0..count {
            let sent = socket
                .send_to(payload, to)
                .map_err(socket_err(ns, "udp send"))?;
            if sent != payload.len() {
                return Err(ProbeError::Invalid {
                    what: "udp send",
                    detail: format!("{sent} of {} bytes sent", payload.len()),
                });
            }
            if i == 0 && count > 1 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        socket.local_addr().map_err(socket_err(ns, "local address"))
    })?
}

fn raw_socket(domain: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) returns a new descriptor we own, or -1.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn sendto(fd: &OwnedFd, bytes: &[u8], to: IpAddr) -> io::Result<usize> {
    let addr = nix::sys::socket::SockaddrStorage::from(SocketAddr::new(to, 0));
    nix::sys::socket::sendto(
        fd.as_raw_fd(),
        bytes,
        &addr,
        nix::sys::socket::MsgFlags::empty(),
    )
    .map_err(io::Error::from)
}

/// Sends `count` UDP datagrams from `ns` to `to` with the forged source `src`
/// (port `SPOOF_SOURCE_PORT`), as whole IP packets through a raw socket: the namespace's
/// kernel routes them like any other packet.
pub fn send_spoofed_udp(
    ns: &str,
    src: IpAddr,
    to: SocketAddr,
    count: usize,
    payload: &[u8],
) -> Result<(), ProbeError> {
    use crate::frames::wire::{IPPROTO_UDP, Ipv4, Ipv6, Udp};
    let udp = Udp {
        sport: SPOOF_SOURCE_PORT,
        dport: to.port(),
    };
    // Built with the frame kit, the same emitters the tests read back.
    let packet = match (src, to.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = Ipv4 {
                dont_fragment: false,
                ..Ipv4::new(s, d, IPPROTO_UDP)
            };
            ip.emit(&udp.emit(ip.pseudo(), payload))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6 {
                hop_limit: 64,
                ..Ipv6::new(s, d, IPPROTO_UDP)
            };
            ip.emit(&udp.emit(ip.pseudo(), payload))
        }
        _ => {
            return Err(ProbeError::Invalid {
                what: "forged packet",
                detail: format!("source {src} and destination {to} are not the same family"),
            });
        }
    };
    in_netns(ns, || {
        // IPPROTO_RAW: the packet carries its own IP header (IP_HDRINCL, and for IPv6 the
        // same since Linux 4.5).
        let domain = if src.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = raw_socket(domain, libc::IPPROTO_RAW).map_err(socket_err(ns, "raw socket"))?;
        for _ in 0..count {
            let sent = sendto(&fd, &packet, to.ip()).map_err(socket_err(ns, "raw send"))?;
            if sent != packet.len() {
                return Err(ProbeError::Invalid {
                    what: "raw send",
                    detail: format!("{sent} of {} bytes sent", packet.len()),
                });
            }
        }
        Ok(())
    })?
}

static PING_ID: AtomicU16 = AtomicU16::new(0);

/// Sends one ICMP or ICMPv6 echo request from `ns` to `to`; true when the matching reply
/// comes back in time. An ICMP error about the request ends the wait early (false).
pub fn ping(ns: &str, to: IpAddr, timeout: Duration) -> Result<bool, ProbeError> {
    let id = std::process::id().to_le_bytes();
    let id = u16::from_le_bytes([id[0], id[1]])
        .wrapping_mul(31)
        .wrapping_add(PING_ID.fetch_add(1, Ordering::Relaxed));
    let seq: u16 = 1;
    let payload = b"cloison-lab ping";
    in_netns(ns, || {
        let (domain, protocol, request_type) = match to {
            IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8),
            IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8),
        };
        let fd = raw_socket(domain, protocol).map_err(socket_err(ns, "icmp socket"))?;
        let mut request = vec![request_type, 0, 0, 0];
        request.extend_from_slice(&id.to_be_bytes());
        request.extend_from_slice(&seq.to_be_bytes());
        request.extend_from_slice(payload);
        if to.is_ipv4() {
            // ICMPv6 checksums are filled in by the kernel (they cover a pseudo-header).
            let sum = internet_checksum(&request);
            request[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        if let Err(e) = sendto(&fd, &request, to) {
            return match reach_of(&e) {
                Some(_) => Ok(false),
                None => Err(socket_err(ns, "icmp send")(e)),
            };
        }
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        loop {
            let Some(n) =
                recv_until(&fd, &mut buf, deadline).map_err(socket_err(ns, "icmp recv"))?
            else {
                return Ok(false);
            };
            match echo_outcome(to, &buf[..n.0], n.1, id, seq) {
                Some(answer) => return Ok(answer),
                None => continue,
            }
        }
    })?
}

/// Receives one datagram with its source before `deadline`; None on timeout.
fn recv_until(
    fd: &OwnedFd,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<Option<(usize, Option<IpAddr>)>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        match nix::sys::socket::recvfrom::<nix::sys::socket::SockaddrStorage>(fd.as_raw_fd(), buf) {
            Ok((n, from)) => {
                let from = from.and_then(|a| {
                    a.as_sockaddr_in()
                        .map(|s| IpAddr::V4(s.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                });
                return Ok(Some((n, from)));
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Some(true): our echo reply; Some(false): an ICMP error quoting our request; None:
/// anything else (other traffic a raw socket sees).
fn echo_outcome(
    to: IpAddr,
    packet: &[u8],
    from: Option<IpAddr>,
    id: u16,
    seq: u16,
) -> Option<bool> {
    let ours = |icmp: &[u8]| {
        icmp.len() >= 8 && icmp[4..6] == id.to_be_bytes() && icmp[6..8] == seq.to_be_bytes()
    };
    match to {
        IpAddr::V4(_) => {
            // IPv4 raw sockets receive the IP header too.
            let ihl = usize::from(*packet.first()? & 0x0f) * 4;
            let icmp = packet.get(ihl..)?;
            match *icmp.first()? {
                0 if from == Some(to) && ours(icmp) => Some(true),
                // Destination unreachable, time exceeded: the quoted header, then our echo.
                3 | 11 => {
                    let quoted = icmp.get(8..)?;
                    let qihl = usize::from(*quoted.first()? & 0x0f) * 4;
                    let inner = quoted.get(qihl..)?;
                    (quoted.get(9) == Some(&1) && inner.first() == Some(&8) && ours(inner))
                        .then_some(false)
                }
                _ => None,
            }
        }
        IpAddr::V6(_) => match *packet.first()? {
            129 if from == Some(to) && ours(packet) => Some(true),
            // Destination unreachable, time exceeded: 8 bytes, the quoted IPv6 header (40),
            // then our echo request (extension headers aside).
            1 | 3 => {
                let quoted = packet.get(8..)?;
                let inner = quoted.get(40..)?;
                (quoted.get(6) == Some(&58) && inner.first() == Some(&128) && ours(inner))
                    .then_some(false)
            }
            _ => None,
        },
    }
}

fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded to 16 bits")
}

/// The size of `T` as the kernel's `socklen_t`.
fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).expect("a socket structure's size")
}

fn ifindex(ns: &str, ifname: &str) -> Result<i32, ProbeError> {
    nix::net::if_::if_nametoindex(ifname)
        .ok()
        .and_then(|i| i32::try_from(i).ok())
        .ok_or_else(|| ProbeError::NoInterface {
            ns: ns.to_owned(),
            ifname: ifname.to_owned(),
        })
}

/// An AF_PACKET socket bound to `ifname`; `protocol` in network order.
fn packet_socket(ns: &str, ifname: &str, protocol: u16) -> Result<OwnedFd, ProbeError> {
    let index = ifindex(ns, ifname)?;
    let fd = raw_socket(libc::AF_PACKET, i32::from(protocol))
        .map_err(socket_err(ns, "packet socket"))?;
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::sa_family_t::try_from(libc::AF_PACKET).expect("AF_PACKET is 17");
    sll.sll_protocol = protocol;
    sll.sll_ifindex = index;
    // SAFETY: sll is a valid sockaddr_ll and the length matches it.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            socklen::<libc::sockaddr_ll>(),
        )
    };
    if rc != 0 {
        return Err(socket_err(ns, "packet bind")(io::Error::last_os_error()));
    }
    Ok(fd)
}

/// Sends one raw Ethernet frame (header included, no FCS) out of `ifname` in `ns`.
pub fn send_frame(ns: &str, ifname: &str, frame: &[u8]) -> Result<(), ProbeError> {
    send_frames(ns, ifname, std::slice::from_ref(&frame))
}

/// Sends raw Ethernet frames, in order, from one socket (a flood of forged frames without
/// a thread per frame). A full transmit queue is waited for, not dropped from.
pub fn send_frames<F: AsRef<[u8]>>(ns: &str, ifname: &str, frames: &[F]) -> Result<(), ProbeError> {
    if let Some(short) = frames.iter().find(|f| f.as_ref().len() < 14) {
        return Err(ProbeError::Invalid {
            what: "frame",
            detail: format!(
                "{} bytes is shorter than an Ethernet header",
                short.as_ref().len()
            ),
        });
    }
    let frames: Vec<Vec<u8>> = frames.iter().map(|f| f.as_ref().to_vec()).collect();
    in_netns(ns, move || {
        // Protocol 0: this socket sends only and receives nothing.
        let fd = packet_socket(ns, ifname, 0)?;
        for frame in &frames {
            loop {
                // SAFETY: frame is a valid buffer of frame.len() bytes.
                let sent =
                    unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
                if sent < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::ENOBUFS) {
                        std::thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    return Err(socket_err(ns, "frame send")(e));
                }
                if usize::try_from(sent).ok() != Some(frame.len()) {
                    return Err(ProbeError::Invalid {
                        what: "frame send",
                        detail: format!("{sent} of {} bytes sent", frame.len()),
                    });
                }
                break;
            }
        }
        Ok(())
    })?
}

/// Frames arriving on an interface of a lab namespace (AF_PACKET, every protocol).
/// Frames the namespace itself sends out are skipped.
pub struct Capture {
    fd: OwnedFd,
}

/// Opens a capture on `ifname` in `ns`; it sees frames from the moment it returns.
pub fn capture(ns: &str, ifname: &str) -> Result<Capture, ProbeError> {
    let all = u16::try_from(libc::ETH_P_ALL)
        .expect("ETH_P_ALL is 3")
        .to_be();
    in_netns(ns, || {
        packet_socket(ns, ifname, all).map(|fd| Capture { fd })
    })?
}

impl Capture {
    /// The next arriving frame, or None after `timeout`.
    pub fn next(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            // SAFETY: sockaddr_ll is plain data; recvfrom fills at most `len` bytes of it
            // and at most buf.len() bytes of buf.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = socklen::<libc::sockaddr_ll>();
            // SAFETY: as above; the pointers and lengths match their buffers.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    std::ptr::from_mut(&mut sll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            buf.truncate(usize::try_from(n).unwrap_or(0));
            return Ok(Some(buf));
        }
    }

    /// The first arriving frame for which `wanted` holds, or None after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut wanted: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left)? {
                None => return Ok(None),
                Some(frame) if wanted(&frame) => return Ok(Some(frame)),
                Some(_) => {}
            }
        }
    }
}

/// The MAC address of `ifname` in `ns`.
pub fn mac(ns: &str, ifname: &str) -> Result<[u8; 6], ProbeError> {
    in_netns(ns, || {
        // getifaddrs asks the kernel over netlink, from this thread: inside `ns`.
        let addrs =
            nix::ifaddrs::getifaddrs().map_err(|e| socket_err(ns, "list interfaces")(e.into()))?;
        addrs
            .filter(|a| a.interface_name == ifname)
            .find_map(|a| a.address?.as_link_addr()?.addr())
            .ok_or_else(|| ProbeError::NoInterface {
                ns: ns.to_owned(),
                ifname: ifname.to_owned(),
            })
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        // Echo request id 1 seq 1, no payload: 0x0800 + 0x0001 + 0x0001 -> !0x0802.
        let mut echo = [8u8, 0, 0, 0, 0, 1, 0, 1];
        let sum = internet_checksum(&echo);
        assert_eq!(sum, !0x0802);
        echo[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(internet_checksum(&echo), 0);
    }

    #[test]
    fn echo_replies_and_errors_are_told_apart() {
        let to: IpAddr = "192.0.2.1".parse().unwrap();
        let mut reply = vec![0x45u8; 1];
        reply.extend_from_slice(&[0; 19]);
        reply.extend_from_slice(&[0, 0, 0, 0, 0, 7, 0, 1]);
        assert_eq!(echo_outcome(to, &reply, Some(to), 7, 1), Some(true));
        assert_eq!(echo_outcome(to, &reply, Some(to), 8, 1), None);
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(echo_outcome(to, &reply, Some(other), 7, 1), None);
        // Host unreachable quoting our request.
        let mut err = vec![0x45u8];
        err.extend_from_slice(&[0; 19]);
        err.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
        let mut quoted = vec![0x45u8, 0, 0, 0, 0, 0, 0, 0, 64, 1];
        quoted.extend_from_slice(&[0; 10]);
        err.extend_from_slice(&quoted);
        err.extend_from_slice(&[8, 0, 0, 0, 0, 7, 0, 1]);
        assert_eq!(echo_outcome(to, &err, Some(other), 7, 1), Some(false));
        assert_eq!(echo_outcome(to, &[], None, 7, 1), None);
    }
}
