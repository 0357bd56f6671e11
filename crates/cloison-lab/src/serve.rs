//! `cloison-lab serve`: the lab's network services, run as a process inside a namespace.
//! Dual-stack sockets on `[::]`; each TCP connection gets one line `cloison-lab <peer>`
//! and is closed, each UDP datagram is answered with `cloison-lab <peer>` from the address
//! it was sent to. The peer is what the tests read to see the source after NAT.
//!
//! It never logs per packet: traffic must not be able to flood the log.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV6, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, SockaddrIn6, setsockopt, sockopt,
};

/// The line a listener prints on stdout once every socket is bound.
pub const READY: &str = "ready";
const GREETING: &str = "cloison-lab";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {proto} port {port}: {source}")]
    Bind {
        proto: &'static str,
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot report readiness: {source}")]
    Ready {
        #[source]
        source: io::Error,
    },
}

/// The line a listener sends for `peer` (v4-mapped peers shown as IPv4).
pub fn greeting(peer: IpAddr) -> String {
    format!("{GREETING} {}", unmap(peer))
}

/// The peer address out of a listener's line; None if it is not one.
pub fn parse_greeting(bytes: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(bytes).ok()?;
    let line = text.lines().next()?;
    line.strip_prefix(GREETING)?
        .strip_prefix(' ')?
        .trim()
        .parse()
        .ok()
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn dual_stack(ty: SockType, proto: &'static str, port: u16) -> Result<OwnedFd, ServeError> {
    let err = |e: nix::errno::Errno| ServeError::Bind {
        proto,
        port,
        source: e.into(),
    };
    let fd = socket::socket(AddressFamily::Inet6, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err)?;
    setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(err)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err)?;
    let any = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
    socket::bind(fd.as_raw_fd(), &any).map_err(err)?;
    Ok(fd)
}

/// Binds every socket, prints `READY`, then serves until killed.
pub fn run(tcp: &[u16], udp: &[u16]) -> Result<(), ServeError> {
    let mut listeners = Vec::new();
    for &port in tcp {
        let fd = dual_stack(SockType::Stream, "tcp", port)?;
        socket::listen(&fd, Backlog::new(128).unwrap_or(Backlog::MAXCONN)).map_err(|e| {
            ServeError::Bind {
                proto: "tcp",
                port,
                source: e.into(),
            }
        })?;
        listeners.push(TcpListener::from(fd));
    }
    let mut sockets = Vec::new();
    for &port in udp {
        let fd = dual_stack(SockType::Datagram, "udp", port)?;
        let err = |e: nix::errno::Errno| ServeError::Bind {
            proto: "udp",
            port,
            source: e.into(),
        };
        // To answer from the address the datagram was sent to.
        setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(err)?;
        setsockopt(&fd, sockopt::Ipv4PacketInfo, &true).map_err(err)?;
        sockets.push(UdpSocket::from(fd));
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{READY}")
        .and_then(|()| stdout.flush())
        .map_err(|source| ServeError::Ready { source })?;
    drop(stdout);

    let mut threads = Vec::new();
    for listener in listeners {
        threads.push(std::thread::spawn(move || serve_tcp(listener)));
    }
    for socket in sockets {
        threads.push(std::thread::spawn(move || serve_udp(socket)));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn serve_tcp(listener: TcpListener) {
    loop {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = writeln!(stream, "{}", greeting(peer.ip()));
            }
            // Out of descriptors or similar: let it pass rather than spin.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
}

fn serve_udp(socket: UdpSocket) {
    let fd = socket.as_raw_fd();
    let mut buf = [0u8; 2048];
    loop {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::in_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let Ok(msg) =
            socket::recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        else {
            continue;
        };
        let Some(peer) = msg.address else { continue };
        let mut local4 = None;
        let mut local6 = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    // ipi_spec_dst: the local address a reply should come from (for a
                    // broadcast, the interface's own).
                    ControlMessageOwned::Ipv4PacketInfo(info) => local4 = Some(info),
                    ControlMessageOwned::Ipv6PacketInfo(info) => local6 = Some(info),
                    _ => {}
                }
            }
        }
        let peer_ip = IpAddr::V6(peer.ip());
        if unmap(peer_ip).is_unspecified() {
            continue;
        }
        let reply = greeting(peer_ip);
        let iov = [IoSlice::new(reply.as_bytes())];
        let reply4;
        let reply6;
        let cmsgs: &[ControlMessage] = if let Some(mut info) = local4 {
            info.ipi_ifindex = 0;
            info.ipi_addr.s_addr = 0;
            reply4 = info;
            &[ControlMessage::Ipv4PacketInfo(&reply4)]
        } else if let Some(info) =
            local6.filter(|i| !Ipv6Addr::from(i.ipi6_addr.s6_addr).is_multicast())
        {
            reply6 = info;
            &[ControlMessage::Ipv6PacketInfo(&reply6)]
        } else {
            &[]
        };
        let _ = socket::sendmsg(fd, &iov, cmsgs, MsgFlags::empty(), Some(&peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_show_v4_peers_unmapped() {
        let mapped: IpAddr = "::ffff:192.168.1.2".parse().unwrap();
        assert_eq!(greeting(mapped), "cloison-lab 192.168.1.2");
        assert_eq!(
            parse_greeting(b"cloison-lab 192.168.1.2\n"),
            Some("192.168.1.2".parse().unwrap())
        );
        assert_eq!(
            parse_greeting(greeting("fd00:10::10".parse().unwrap()).as_bytes()),
            Some("fd00:10::10".parse().unwrap())
        );
        assert_eq!(parse_greeting(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_greeting(b"cloison-lab nonsense"), None);
    }
}
