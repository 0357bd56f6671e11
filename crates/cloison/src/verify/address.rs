//! The probe host's addresses on a segment: the operator's (`[verify] probe_address`),
//! or a free one found at run time. Free means: not the router's, not a listed target,
//! not in the router's neighbour table as alive, and silent to an ARP request the router
//! sends on the segment (from its own address, as it does every day). Candidates come
//! from the top of the subnet down, the addresses least often handed out. The IPv6
//! address is the segment's prefix with a random interface identifier under cloison's
//! `c105` tag (a collision is as unlikely as two random 48-bit numbers meeting).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rtnetlink::Handle;

use cloison_core::config::{Config, Segment};

use super::VerifyError;
use super::host::{Addresses, MAC_PREFIX, neighbour_alive, neighbour_of};

/// Candidates asked at once, and how long they may take to answer.
const CANDIDATES: usize = 8;
const ARP_WAIT: Duration = Duration::from_millis(400);

/// Random bytes from the kernel.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SAFETY: `out` is writable for N bytes; getrandom(2) writes at most that.
    let n = unsafe { libc::getrandom(out.as_mut_ptr().cast(), N, 0) };
    if usize::try_from(n).ok() != Some(N) {
        // Never short on a booted Linux; the clock and the pid will do otherwise.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            ^ u128::from(std::process::id());
        for (b, x) in out.iter_mut().zip(t.to_le_bytes().iter().cycle()) {
            *b = *x;
        }
    }
    out
}

/// The addresses of probe host `index` on segment `s`.
pub async fn choose(
    h: &Handle,
    config: &Config,
    s: &Segment,
    index: usize,
    ifindex: u32,
    seg_mac: [u8; 6],
) -> Result<Addresses, VerifyError> {
    let r: [u8; 5] = random();
    let mac = [
        MAC_PREFIX[0],
        MAC_PREFIX[1],
        MAC_PREFIX[2],
        u8::try_from(index).unwrap_or(0xff),
        r[0],
        r[1],
    ];
    let alive = alive_neighbours(h, ifindex).await?;
    let targets: BTreeSet<IpAddr> = config
        .verify
        .targets
        .get(&s.name)
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let v4 = match config.verify.probe_addresses.get(&s.name) {
        Some(a) => {
            if alive.contains(&IpAddr::V4(*a))
                || answers_arp(s, ifindex, seg_mac, &[*a])?.contains(a)
            {
                return Err(VerifyError::Segment(format!(
                    "{}: verify.probe_address {a} is in use by a host of the segment; choose a free address",
                    s.name
                )));
            }
            *a
        }
        None => free_v4(s, ifindex, seg_mac, &alive, &targets)?,
    };
    let v6 = s.address6.map(|a6| {
        let net = u128::from(a6.subnet().network());
        let iid = u128::from(u64::from_be_bytes([0xc1, 0x05, 0, r[2], r[3], r[4], 0, 1]));
        Ipv6Addr::from(net | iid)
    });
    Ok(Addresses { v4, v6, mac })
}

fn free_v4(
    s: &Segment,
    ifindex: u32,
    seg_mac: [u8; 6],
    alive: &BTreeSet<IpAddr>,
    targets: &BTreeSet<IpAddr>,
) -> Result<Ipv4Addr, VerifyError> {
    let net = s.address.subnet();
    let last = u32::from(net.broadcast());
    let first = u32::from(net.network());
    let mut candidates: Vec<Ipv4Addr> = Vec::new();
    let mut at = last.saturating_sub(1);
    while at > first && candidates.len() < 64 {
        let a = Ipv4Addr::from(at);
        let ip = IpAddr::V4(a);
        if a != s.address.addr() && !alive.contains(&ip) && !targets.contains(&ip) {
            candidates.push(a);
        }
        at -= 1;
    }
    for chunk in candidates.chunks(CANDIDATES) {
        let taken = answers_arp(s, ifindex, seg_mac, chunk)?;
        if let Some(a) = chunk.iter().find(|a| !taken.contains(a)) {
            return Ok(*a);
        }
    }
    Err(VerifyError::Segment(format!(
        "{}: no free address found at the top of {net}; set one with `[verify] probe_address.{} = \"...\"`",
        s.name, s.name
    )))
}

async fn alive_neighbours(h: &Handle, ifindex: u32) -> Result<BTreeSet<IpAddr>, VerifyError> {
    let mut out = BTreeSet::new();
    let mut entries = h.neighbours().get().execute();
    while let Some(n) = entries
        .try_next()
        .await
        .map_err(|e| VerifyError::netlink("listing neighbour entries", e))?
    {
        let (dst, mac) = neighbour_of(&n);
        // A probe's entry left by a killed run is not a host.
        let ours = mac.is_some_and(|m| m[..3] == MAC_PREFIX);
        if n.header.ifindex == ifindex && neighbour_alive(&n) && !ours {
            out.extend(dst);
        }
    }
    Ok(out)
}

/// Which of `candidates` answer an ARP request on the segment, within `ARP_WAIT`.
fn answers_arp(
    s: &Segment,
    ifindex: u32,
    our_mac: [u8; 6],
    candidates: &[Ipv4Addr],
) -> Result<Vec<Ipv4Addr>, VerifyError> {
    let err = |what: &str, e: std::io::Error| {
        VerifyError::Segment(format!(
            "{}: ARP check on {}: {what}: {e}",
            s.name, s.interface
        ))
    };
    let proto = 0x0806u16.to_be();
    // SAFETY: plain socket(2), checked and owned at once.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(err("socket", std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed sockaddr_ll is valid; the fields below make it an address.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = u16::try_from(libc::AF_PACKET).expect("small constant");
    sll.sll_protocol = proto;
    sll.sll_ifindex = i32::try_from(ifindex).unwrap_or(0);
    let sll_len =
        libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).expect("small");
    // SAFETY: `sll` is a valid sockaddr_ll of `sll_len` bytes.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            sll_len,
        )
    } < 0
    {
        return Err(err("bind", std::io::Error::last_os_error()));
    }
    let mut dest = sll;
    dest.sll_halen = 6;
    dest.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    for c in candidates {
        let mut req = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
        req.extend(our_mac);
        req.extend(s.address.addr().octets());
        req.extend([0u8; 6]);
        req.extend(c.octets());
        // SAFETY: `req` is readable; `dest` is a valid sockaddr_ll.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&dest as *const libc::sockaddr_ll).cast(),
                sll_len,
            )
        };
        if r < 0 {
            return Err(err("send", std::io::Error::last_os_error()));
        }
    }
    let deadline = Instant::now() + ARP_WAIT;
    let mut taken = Vec::new();
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let n = usize::try_from(n).unwrap_or(0);
        // An ARP reply (op 2) or request (a host announcing itself) from a candidate.
        if n >= 28 && buf[6..8] != [0, 0] {
            let sender = Ipv4Addr::new(buf[14], buf[15], buf[16], buf[17]);
            if candidates.contains(&sender) && !taken.contains(&sender) {
                taken.push(sender);
            }
        }
    }
    Ok(taken)
}
