//! The capture edge: one AF_PACKET socket per watched interface, for the layer-2
//! evidence the firewall never sees (ARP, DHCP, router advertisements, VLAN tags). The
//! daemon reads each through a `TPACKET_V3` ring (`ring`), a block of frames at a time;
//! `CaptureSocket` reads frame by frame with `recvmsg` (the lab's mirror uses it, an
//! independent second read path).
//!
//! Why not pnet's channel: it reads with `recvfrom`, so it cannot receive
//! `PACKET_AUXDATA`, where the kernel puts the 802.1Q tag it stripped (veth and most NICs
//! do; the ring has it in each frame's header). Sockets are made here instead, with a
//! classic BPF filter attached before the socket is bound (no unfiltered frame is ever
//! queued), room for bursts (a larger receive buffer, or the ring), and
//! `PACKET_STATISTICS` for the kernel's drop count. pnet supplies the interface list.
//!
//! The router's own frames are told apart by direction, not by MAC: the socket asks the
//! kernel not to deliver what the router sends (`PACKET_IGNORE_OUTGOING`), the filter
//! drops outgoing frames too (older kernels lack the option), and each frame's packet
//! type is reported so the caller can skip any that still come through. A frame that arrives
//! with one of the router's MACs is then forged or looped, and `classify` says so.
//!
//! Each socket also puts its interface in promiscuous mode (`PACKET_MR_PROMISC`, counted
//! by the kernel and undone when the socket closes): frames addressed to another host's
//! MAC (a unicast rogue DHCP offer or router advertisement) reach the router's port on a
//! switch that floods them or a hub, and a network card drops them unless promiscuous.
//!
//! Only this module touches packet sockets; what a frame means is `inspect`'s business.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use cloison_core::inspect::BpfInsn;

pub mod ring;
pub use ring::CaptureRing;

/// What the kernel told us about a frame besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// The outer VLAN tag the kernel moved out of the frame: (TCI, TPID).
    pub aux_vlan: Option<(u16, u16)>,
    /// The frame's length on the wire (it may have been truncated to the buffer).
    pub wire_len: usize,
    /// The packet type (`sll_pkttype`): `PACKET_HOST`, `PACKET_BROADCAST`,
    /// `PACKET_OTHERHOST`... `PACKET_OUTGOING` for a frame the router sent.
    pub pkttype: u8,
}

impl FrameMeta {
    /// A frame the router itself sent: not evidence of anything.
    pub fn outgoing(&self) -> bool {
        self.pkttype == libc::PACKET_OUTGOING
    }
}

/// Kernel counters of one socket since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    pub received: u64,
    pub dropped: u64,
}

/// One capture socket bound to one interface.
pub struct CaptureSocket {
    fd: OwnedFd,
    pub ifindex: u32,
    pub ifname: String,
    stats: SocketStats,
}

// From <linux/if_packet.h>; not all are in the libc crate.
const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

#[repr(C)]
#[derive(Clone, Copy)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    crate::sockopt::set(fd.as_raw_fd(), level, name, value)
}

impl AsRawFd for CaptureSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl CaptureSocket {
    /// Opens a socket on `ifname` that passes only what `filter` accepts, read frame by
    /// frame with `recv` (the ring, `ring::CaptureRing`, reads in blocks).
    pub fn open(
        ifname: &str,
        ifindex: u32,
        filter: &[BpfInsn],
        rcvbuf: usize,
    ) -> io::Result<CaptureSocket> {
        let fd = packet_socket(ifindex, filter, |fd| {
            setsockopt(fd, libc::SOL_PACKET, PACKET_AUXDATA, &1 as &libc::c_int)?;
            crate::sockopt::set_rcvbuf(fd.as_raw_fd(), rcvbuf)
        })?;
        Ok(CaptureSocket {
            fd,
            ifindex,
            ifname: ifname.to_owned(),
            stats: SocketStats::default(),
        })
    }

    /// Reads one frame into `buf` without blocking; `None` when the queue is empty.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, FrameMeta)>> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one cmsghdr carrying a tpacket_auxdata, aligned.
        let mut cbuf = [0u64; 8];
        // SAFETY: sockaddr_ll and msghdr are plain data; zeroed is valid, fields set below.
        let mut from: libc::sockaddr_ll = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = std::ptr::from_mut(&mut from).cast();
        msg.msg_namelen = crate::sockopt::socklen::<libc::sockaddr_ll>();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 8]>();
        // SAFETY: msg points to valid buffers that outlive the call.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let mut meta = FrameMeta {
            aux_vlan: None,
            wire_len: usize::try_from(n).unwrap_or(0),
            pkttype: from.sll_pkttype,
        };
        // SAFETY: walking the control messages the kernel filled in, with the libc macros.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                    let aux: TpacketAuxdata = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    meta.aux_vlan = aux_vlan(aux.tp_status, aux.tp_vlan_tci, aux.tp_vlan_tpid);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some((meta.wire_len.min(buf.len()), meta)))
    }

    /// The kernel's counters (reading resets them in the kernel; they are kept here).
    pub fn stats(&mut self) -> SocketStats {
        add_stats(&self.fd, &mut self.stats);
        self.stats
    }
}

/// A packet socket on interface `ifindex`, bound to every protocol, promiscuous, that
/// passes only what `filter` accepts and not what the router sends; `setup` runs just
/// before the bind (options that must be set before frames are queued).
fn packet_socket(
    ifindex: u32,
    filter: &[BpfInsn],
    setup: impl FnOnce(&OwnedFd) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let filter: Vec<libc::sock_filter> = filter
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    // Protocol 0: the socket receives nothing until it is bound below, after the
    // filter is in place.
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    check(raw)?;
    // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let len = libc::c_ushort::try_from(filter.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "capture filter longer than 65535 instructions",
        )
    })?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
    // Frames the router sends are not evidence of anything; older kernels lack the
    // option, which only costs a little filtering.
    let _ = setsockopt(
        &fd,
        libc::SOL_PACKET,
        PACKET_IGNORE_OUTGOING,
        &1 as &libc::c_int,
    );
    setup(&fd)?;
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::sa_family_t::try_from(libc::AF_PACKET).expect("AF_PACKET is 17");
    addr.sll_protocol = u16::try_from(libc::ETH_P_ALL)
        .expect("ETH_P_ALL is 3")
        .to_be();
    addr.sll_ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    // SAFETY: addr is a valid sockaddr_ll of the size passed.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            crate::sockopt::socklen::<libc::sockaddr_ll>(),
        )
    })?;
    let promisc = libc::packet_mreq {
        mr_ifindex: addr.sll_ifindex,
        mr_type: PACKET_MR_PROMISC,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(&fd, libc::SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc)?;
    Ok(fd)
}

/// Adds what the kernel counted on packet socket `fd` since the last reading to `total`
/// (reading resets the kernel's counters). Unchanged when the kernel cannot say.
fn add_stats(fd: &OwnedFd, total: &mut SocketStats) {
    let mut s = TpacketStats::default();
    let mut len = crate::sockopt::socklen::<TpacketStats>();
    // SAFETY: s and len are valid for the size given (for a TPACKET_V3 ring the kernel
    // copies at most len bytes of its tpacket_stats_v3, whose first two fields these are).
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            std::ptr::from_mut(&mut s).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        // tp_packets counts every frame queued, including those then dropped.
        total.received += u64::from(s.tp_packets.saturating_sub(s.tp_drops));
        total.dropped += u64::from(s.tp_drops);
    }
}

/// The outer VLAN tag a `tpacket_auxdata` reports, as (TCI, TPID): none unless the
/// kernel says the tag is valid (older kernels leave the flag out but set the TCI); an
/// unknown TPID is 802.1Q's. Pure, and fuzzed with the frame behind it (the TCI and the
/// TPID came from the wire).
pub fn aux_vlan(tp_status: u32, tci: u16, tpid: u16) -> Option<(u16, u16)> {
    if tp_status & TP_STATUS_VLAN_VALID == 0 && tci == 0 {
        return None;
    }
    let tpid = if tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
        tpid
    } else {
        0x8100
    };
    Some((tci, tpid))
}

/// Waits until one of the sockets has a frame, or `timeout` passes. Returns the indexes
/// of the readable sockets.
pub fn wait<S: AsRawFd>(sockets: &[S], timeout: Duration) -> io::Result<Vec<usize>> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: fds is a valid array of pollfd of the length passed.
    let n = unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(Vec::new())
        } else {
            Err(e)
        };
    }
    Ok(fds
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents & libc::POLLIN != 0)
        .map(|(i, _)| i)
        .collect())
}

/// Name, index and MAC of each interface of the current network namespace.
pub fn interfaces() -> Vec<(String, u32, Option<[u8; 6]>)> {
    pnet::datalink::interfaces()
        .into_iter()
        .map(|i| (i.name.clone(), i.index, i.mac.map(|m| m.octets())))
        .collect()
}

/// The interfaces of the current network namespace that have a MAC, as inspection sees
/// them (with their IPv6 addresses, link-local ones included).
pub fn links() -> Vec<cloison_core::inspect::Link> {
    pnet::datalink::interfaces()
        .into_iter()
        .filter_map(|i| {
            Some(cloison_core::inspect::Link {
                name: i.name.clone(),
                index: i.index,
                mac: i.mac?.octets(),
                ipv6: i
                    .ips
                    .iter()
                    .filter_map(|n| match n.ip() {
                        std::net::IpAddr::V6(a) => Some(a),
                        std::net::IpAddr::V4(_) => None,
                    })
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aux_tag_is_read_as_the_kernel_reports_it() {
        assert_eq!(aux_vlan(0, 0, 0x88a8), None, "no tag");
        assert_eq!(
            aux_vlan(TP_STATUS_VLAN_VALID, 0, 0),
            Some((0, 0x8100)),
            "a priority tag (VLAN 0) is a tag"
        );
        assert_eq!(
            aux_vlan(TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID, 20, 0x88a8),
            Some((20, 0x88a8))
        );
        assert_eq!(
            aux_vlan(0, 30, 0x88a8),
            Some((30, 0x8100)),
            "kernels without the flags: a TCI means a tag, and 802.1Q"
        );
    }
}
