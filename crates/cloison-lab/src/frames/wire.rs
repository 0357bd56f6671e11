//! The frame kit's wire layer: one `Repr` per header, each with `emit` (the bytes, with
//! real checksums) and `parse` (the `Repr` back, and what follows the header), in the
//! shape of smoltcp's `wire` module. The lab's attacks are built with `emit`; the tests
//! read what arrived with `parse`, and `classify` and `sample::decode` read the same
//! bytes in cloison: one code path proves the other. Round trips are unit-tested below.
//!
//! Harness code, never shipped: it builds what an attacker sends, including what no
//! well-behaved stack would (stealth-scan flags, bad checksums, forged MACs, fragments
//! that split a transport header).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why bytes could not be read as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0}: too short")]
    Truncated(&'static str),
    #[error("{0}: not that header")]
    Malformed(&'static str),
    #[error("{0}: wrong checksum")]
    Checksum(&'static str),
}

type Parsed<'a, T> = Result<(T, &'a [u8]), WireError>;

fn get<'a>(
    b: &'a [u8],
    range: std::ops::Range<usize>,
    what: &'static str,
) -> Result<&'a [u8], WireError> {
    b.get(range).ok_or(WireError::Truncated(what))
}

fn u16_at(b: &[u8], at: usize, what: &'static str) -> Result<u16, WireError> {
    let x = get(b, at..at + 2, what)?;
    Ok(u16::from_be_bytes([x[0], x[1]]))
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, WireError> {
    let x = get(b, at..at + 4, what)?;
    Ok(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

fn mac_at(b: &[u8], at: usize, what: &'static str) -> Result<[u8; 6], WireError> {
    let x = get(b, at..at + 6, what)?;
    Ok([x[0], x[1], x[2], x[3], x[4], x[5]])
}

fn v4_at(b: &[u8], at: usize, what: &'static str) -> Result<Ipv4Addr, WireError> {
    Ok(Ipv4Addr::from(u32_at(b, at, what)?))
}

fn v6_at(b: &[u8], at: usize, what: &'static str) -> Result<Ipv6Addr, WireError> {
    let x = get(b, at..at + 16, what)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(x);
    Ok(Ipv6Addr::from(a))
}

/// A length field: the kit's packets are shorter than 64 KiB.
fn len16(n: usize) -> u16 {
    u16::try_from(n).expect("a lab packet is shorter than 64 KiB")
}

/// The Internet checksum (RFC 1071) over several parts, as if concatenated (each part
/// but the last of even length).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for w in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded to 16 bits")
}

/// The addresses a transport checksum covers (its pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pseudo {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl Pseudo {
    pub fn new(src: impl Into<IpAddr>, dst: impl Into<IpAddr>) -> Pseudo {
        Pseudo {
            src: src.into(),
            dst: dst.into(),
        }
    }

    fn bytes(&self, proto: u8, len: usize) -> Vec<u8> {
        let mut p = Vec::with_capacity(40);
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&[0, proto]);
                p.extend_from_slice(&len16(len).to_be_bytes());
            }
            (s, d) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a,
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                };
                p.extend_from_slice(&v6(s).octets());
                p.extend_from_slice(&v6(d).octets());
                p.extend_from_slice(&u32::try_from(len).expect("short").to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, proto]);
            }
        }
        p
    }

    /// The checksum of `segment` (checksum field included, as sent) under this
    /// pseudo-header: 0 when it is right.
    pub fn verify(&self, proto: u8, segment: &[u8]) -> u16 {
        checksum(&[&self.bytes(proto, segment.len()), segment])
    }
}

// ---- Ethernet and 802.1Q ----

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_8021Q: u16 = 0x8100;

/// An Ethernet II header (no FCS: the kernel adds and strips it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ethernet {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ether_type: u16,
}

impl Ethernet {
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + payload.len());
        f.extend_from_slice(&self.dst);
        f.extend_from_slice(&self.src);
        f.extend_from_slice(&self.ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// The header and what follows it (in-frame tags are not walked: see `Vlan`).
    pub fn parse(frame: &[u8]) -> Parsed<'_, Ethernet> {
        const W: &str = "ethernet";
        Ok((
            Ethernet {
                dst: mac_at(frame, 0, W)?,
                src: mac_at(frame, 6, W)?,
                ether_type: u16_at(frame, 12, W)?,
            },
            get(frame, 14..frame.len(), W)?,
        ))
    }
}

/// One in-frame VLAN tag: TPID (the ether type that announced it), then TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vlan {
    pub vid: u16,
    /// The ether type after the tag.
    pub ether_type: u16,
}

impl Vlan {
    /// The tag's four bytes after the TPID: TCI and the next ether type, then `payload`.
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut t = (self.vid & 0x0fff).to_be_bytes().to_vec();
        t.extend_from_slice(&self.ether_type.to_be_bytes());
        t.extend_from_slice(payload);
        t
    }

    pub fn parse(b: &[u8]) -> Parsed<'_, Vlan> {
        const W: &str = "vlan tag";
        Ok((
            Vlan {
                vid: u16_at(b, 0, W)? & 0x0fff,
                ether_type: u16_at(b, 2, W)?,
            },
            get(b, 4..b.len(), W)?,
        ))
    }
}

// ---- ARP ----

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// An ARP message for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: Ipv4Addr,
    pub tha: [u8; 6],
    pub tpa: Ipv4Addr,
}

impl Arp {
    pub fn emit(&self) -> Vec<u8> {
        let mut a = vec![0x00, 0x01, 0x08, 0x00, 6, 4];
        a.extend_from_slice(&self.op.to_be_bytes());
        a.extend_from_slice(&self.sha);
        a.extend_from_slice(&self.spa.octets());
        a.extend_from_slice(&self.tha);
        a.extend_from_slice(&self.tpa.octets());
        a
    }

    pub fn parse(b: &[u8]) -> Result<Arp, WireError> {
        const W: &str = "arp";
        if get(b, 0..6, W)? != [0x00, 0x01, 0x08, 0x00, 6, 4] {
            return Err(WireError::Malformed(W));
        }
        Ok(Arp {
            op: u16_at(b, 6, W)?,
            sha: mac_at(b, 8, W)?,
            spa: v4_at(b, 14, W)?,
            tha: mac_at(b, 18, W)?,
            tpa: v4_at(b, 24, W)?,
        })
    }
}

// ---- IPv4 ----

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

/// An IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub ttl: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// In 8-byte units.
    pub frag_offset: u16,
}

impl Ipv4 {
    /// A whole datagram: TTL 64, DF set, identification 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
        Ipv4 {
            src,
            dst,
            proto,
            ttl: 64,
            ident: 0,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
        }
    }

    pub fn pseudo(&self) -> Pseudo {
        Pseudo::new(self.src, self.dst)
    }

    /// The header (with its checksum) and `payload`.
    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0x00];
        h.extend_from_slice(&len16(20 + payload.len()).to_be_bytes());
        h.extend_from_slice(&self.ident.to_be_bytes());
        let flags = (u16::from(self.dont_fragment) << 14)
            | (u16::from(self.more_fragments) << 13)
            | (self.frag_offset & 0x1fff);
        h.extend_from_slice(&flags.to_be_bytes());
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        let sum = checksum(&[&h]);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    /// The header (its checksum checked, options skipped) and the datagram's payload
    /// (bounded by the total length: Ethernet pads short frames).
    pub fn parse(b: &[u8]) -> Parsed<'_, Ipv4> {
        const W: &str = "ipv4";
        let first = *b.first().ok_or(WireError::Truncated(W))?;
        let ihl = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || ihl < 20 {
            return Err(WireError::Malformed(W));
        }
        let header = get(b, 0..ihl, W)?;
        if checksum(&[header]) != 0 {
            return Err(WireError::Checksum(W));
        }
        let total = usize::from(u16_at(b, 2, W)?).max(ihl);
        let flags = u16_at(b, 6, W)?;
        Ok((
            Ipv4 {
                src: v4_at(b, 12, W)?,
                dst: v4_at(b, 16, W)?,
                proto: b[9],
                ttl: b[8],
                ident: u16_at(b, 4, W)?,
                dont_fragment: flags & 0x4000 != 0,
                more_fragments: flags & 0x2000 != 0,
                frag_offset: flags & 0x1fff,
            },
            get(b, ihl..total.min(b.len()), W)?,
        ))
    }
}

// ---- IPv6 and its extension headers ----

pub const IPV6_HOP_BY_HOP: u8 = 0;
pub const IPV6_ROUTING: u8 = 43;
pub const IPV6_FRAGMENT: u8 = 44;
pub const IPV6_DEST_OPTS: u8 = 60;

/// The fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub hop_limit: u8,
}

impl Ipv6 {
    /// Hop limit 255, what neighbour discovery requires (and harmless elsewhere).
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8) -> Ipv6 {
        Ipv6 {
            src,
            dst,
            next_header,
            hop_limit: 255,
        }
    }

    pub fn pseudo(&self) -> Pseudo {
        Pseudo::new(self.src, self.dst)
    }

    pub fn emit(&self, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0x00, 0x00, 0x00];
        h.extend_from_slice(&len16(payload.len()).to_be_bytes());
        h.extend_from_slice(&[self.next_header, self.hop_limit]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(payload);
        h
    }

    /// The header and its payload (bounded by the payload length).
    pub fn parse(b: &[u8]) -> Parsed<'_, Ipv6> {
        const W: &str = "ipv6";
        if b.first().ok_or(WireError::Truncated(W))? >> 4 != 6 {
            return Err(WireError::Malformed(W));
        }
        let len = usize::from(u16_at(b, 4, W)?);
        Ok((
            Ipv6 {
                src: v6_at(b, 8, W)?,
                dst: v6_at(b, 24, W)?,
                next_header: *get(b, 6..7, W)?.first().ok_or(WireError::Truncated(W))?,
                hop_limit: b[7],
            },
            get(b, 40..(40 + len).min(b.len()), W)?,
        ))
    }
}

/// One IPv6 extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension {
    /// Hop-by-hop options: padding only, `units` of 8 bytes (1 to 256).
    HopByHop { units: u16 },
    /// Destination options: padding only.
    DestOpts { units: u16 },
    /// Fragment header: offset in 8-byte units.
    Fragment { offset: u16, more: bool, ident: u32 },
}

impl Extension {
    pub fn number(&self) -> u8 {
        match self {
            Extension::HopByHop { .. } => IPV6_HOP_BY_HOP,
            Extension::DestOpts { .. } => IPV6_DEST_OPTS,
            Extension::Fragment { .. } => IPV6_FRAGMENT,
        }
    }

    fn emit(&self, next: u8, out: &mut Vec<u8>) {
        match *self {
            Extension::HopByHop { units } | Extension::DestOpts { units } => {
                let units = units.clamp(1, 256);
                let len = usize::from(units) * 8;
                out.push(next);
                out.push(u8::try_from(units - 1).expect("clamped"));
                // Padding options filling the rest (RFC 8200 section 4.2): PadN holds at
                // most 255 bytes, Pad1 one.
                let mut left = len - 2;
                while left > 0 {
                    if left == 1 {
                        out.push(0);
                        left = 0;
                    } else {
                        let n = (left - 2).min(255);
                        out.push(1);
                        out.push(u8::try_from(n).expect("at most 255"));
                        out.extend(std::iter::repeat_n(0, n));
                        left -= n + 2;
                    }
                }
            }
            Extension::Fragment {
                offset,
                more,
                ident,
            } => {
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
                out.extend_from_slice(&ident.to_be_bytes());
            }
        }
    }

    /// The chain `exts` in front of `payload` (of protocol `upper`): the first next
    /// header, and the bytes.
    pub fn emit_chain(exts: &[Extension], upper: u8, payload: &[u8]) -> (u8, Vec<u8>) {
        let mut out = Vec::new();
        for (i, e) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(upper, Extension::number);
            e.emit(next, &mut out);
        }
        out.extend_from_slice(payload);
        (exts.first().map_or(upper, Extension::number), out)
    }

    /// Reads the chain from `next`: the headers, the upper-layer protocol and what
    /// follows. Stops at a later fragment (its upper layer is not there).
    pub fn parse_chain(
        mut next: u8,
        mut b: &[u8],
    ) -> Result<(Vec<Extension>, u8, &[u8]), WireError> {
        const W: &str = "ipv6 extension";
        let mut out = Vec::new();
        loop {
            let (e, len) = match next {
                IPV6_HOP_BY_HOP | IPV6_DEST_OPTS => {
                    let units = u16::from(*get(b, 1..2, W)?.first().unwrap_or(&0)) + 1;
                    let e = if next == IPV6_HOP_BY_HOP {
                        Extension::HopByHop { units }
                    } else {
                        Extension::DestOpts { units }
                    };
                    (e, usize::from(units) * 8)
                }
                IPV6_FRAGMENT => {
                    let field = u16_at(b, 2, W)?;
                    (
                        Extension::Fragment {
                            offset: field >> 3,
                            more: field & 1 != 0,
                            ident: u32_at(b, 4, W)?,
                        },
                        8,
                    )
                }
                _ => return Ok((out, next, b)),
            };
            let following = *get(b, 0..1, W)?.first().unwrap_or(&0);
            let later_fragment = matches!(e, Extension::Fragment { offset, .. } if offset != 0);
            out.push(e);
            b = get(b, len..b.len(), W)?;
            next = following;
            if later_fragment {
                return Ok((out, next, b));
            }
        }
    }
}

// ---- UDP and TCP ----

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
}

impl Udp {
    pub fn emit(&self, pseudo: Pseudo, payload: &[u8]) -> Vec<u8> {
        let len = 8 + payload.len();
        let mut u = self.sport.to_be_bytes().to_vec();
        u.extend_from_slice(&self.dport.to_be_bytes());
        u.extend_from_slice(&len16(len).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        let sum = match pseudo.verify(IPPROTO_UDP, &u) {
            0 => 0xffff,
            s => s,
        };
        u[6..8].copy_from_slice(&sum.to_be_bytes());
        u
    }

    /// The header and its payload (bounded by the UDP length); the checksum is not
    /// checked (`Pseudo::verify` does, given the addresses).
    pub fn parse(b: &[u8]) -> Parsed<'_, Udp> {
        const W: &str = "udp";
        let len = usize::from(u16_at(b, 4, W)?).max(8);
        Ok((
            Udp {
                sport: u16_at(b, 0, W)?,
                dport: u16_at(b, 2, W)?,
            },
            get(b, 8..len.min(b.len()), W)?,
        ))
    }
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;
pub const TCP_URG: u8 = 0x20;

/// A TCP header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

impl Tcp {
    /// A SYN from port 40000.
    pub fn syn(dport: u16) -> Tcp {
        Tcp::with_flags(40000, dport, TCP_SYN)
    }

    pub fn with_flags(sport: u16, dport: u16, flags: u8) -> Tcp {
        Tcp {
            sport,
            dport,
            seq: 1,
            ack: if flags & TCP_ACK != 0 { 1 } else { 0 },
            flags,
            window: 64240,
        }
    }

    pub fn emit(&self, pseudo: Pseudo, payload: &[u8]) -> Vec<u8> {
        let mut t = self.sport.to_be_bytes().to_vec();
        t.extend_from_slice(&self.dport.to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.extend_from_slice(&[0x50, self.flags]);
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(payload);
        let sum = pseudo.verify(IPPROTO_TCP, &t);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        t
    }

    pub fn parse(b: &[u8]) -> Parsed<'_, Tcp> {
        const W: &str = "tcp";
        let (offset, flags) = match get(b, 12..14, W)? {
            [o, f] => (usize::from(o >> 4) * 4, *f),
            _ => return Err(WireError::Truncated(W)),
        };
        if offset < 20 {
            return Err(WireError::Malformed(W));
        }
        Ok((
            Tcp {
                sport: u16_at(b, 0, W)?,
                dport: u16_at(b, 2, W)?,
                seq: u32_at(b, 4, W)?,
                ack: u32_at(b, 8, W)?,
                flags,
                window: u16_at(b, 14, W)?,
            },
            get(b, offset..b.len(), W)?,
        ))
    }
}

// ---- ICMP and ICMPv6 ----

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
/// Destination unreachable codes.
pub const ICMP_PORT_UNREACHABLE: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;

pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ROUTER_SOLICIT: u8 = 133;
pub const ICMPV6_ROUTER_ADVERT: u8 = 134;
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;

/// An ICMP or ICMPv6 message: type, code, the four bytes after the checksum (identifier
/// and sequence, an MTU, unused...), then a body (a quoted packet, an echo's data...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmp {
    pub kind: u8,
    pub code: u8,
    pub rest: [u8; 4],
    pub body: Vec<u8>,
}

impl Icmp {
    /// An error of `kind`/`code` quoting `quoted` (an IP packet, header first), with the
    /// four bytes `rest` (the next-hop MTU for "fragmentation needed" and "packet too
    /// big").
    pub fn error(kind: u8, code: u8, mtu: u32, quoted: &[u8]) -> Icmp {
        let rest = match kind {
            ICMP_DEST_UNREACHABLE if code == ICMP_FRAG_NEEDED => {
                let m = u16::try_from(mtu).unwrap_or(u16::MAX).to_be_bytes();
                [0, 0, m[0], m[1]]
            }
            _ => mtu.to_be_bytes(),
        };
        Icmp {
            kind,
            code,
            rest,
            body: quoted.to_vec(),
        }
    }

    /// ICMP over IPv4 (no pseudo-header) with `None`, ICMPv6 with the IPv6 addresses.
    pub fn emit(&self, pseudo: Option<Pseudo>) -> Vec<u8> {
        let mut m = vec![self.kind, self.code, 0, 0];
        m.extend_from_slice(&self.rest);
        m.extend_from_slice(&self.body);
        let sum = match pseudo {
            None => checksum(&[&m]),
            Some(p) => p.verify(IPPROTO_ICMPV6, &m),
        };
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }

    pub fn parse(b: &[u8]) -> Result<Icmp, WireError> {
        const W: &str = "icmp";
        let head = get(b, 0..8, W)?;
        Ok(Icmp {
            kind: head[0],
            code: head[1],
            rest: [head[4], head[5], head[6], head[7]],
            body: b[8..].to_vec(),
        })
    }
}

// ---- Neighbour discovery ----

pub const ND_OPT_SOURCE_LL: u8 = 1;
pub const ND_OPT_TARGET_LL: u8 = 2;
pub const ND_OPT_PREFIX_INFO: u8 = 3;

/// A neighbour discovery message (RFC 4861), as the ICMPv6 message it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nd {
    /// "Who has `target`", from the sender's link-layer address if given.
    Solicit {
        target: Ipv6Addr,
        source_ll: Option<[u8; 6]>,
    },
    /// "`target` is at `target_ll`".
    Advert {
        router: bool,
        solicited: bool,
        override_: bool,
        target: Ipv6Addr,
        target_ll: Option<[u8; 6]>,
    },
    /// A router advertisement with one prefix information option (autonomous, on-link).
    RouterAdvert { prefix: Option<Ipv6Addr> },
}

impl Nd {
    fn ll_option(kind: u8, mac: [u8; 6]) -> Vec<u8> {
        let mut o = vec![kind, 1];
        o.extend_from_slice(&mac);
        o
    }

    pub fn to_icmp(&self) -> Icmp {
        match self {
            Nd::Solicit { target, source_ll } => {
                let mut body = target.octets().to_vec();
                if let Some(m) = source_ll {
                    body.extend(Nd::ll_option(ND_OPT_SOURCE_LL, *m));
                }
                Icmp {
                    kind: ICMPV6_NEIGHBOR_SOLICIT,
                    code: 0,
                    rest: [0; 4],
                    body,
                }
            }
            Nd::Advert {
                router,
                solicited,
                override_,
                target,
                target_ll,
            } => {
                let flags = (u8::from(*router) << 7)
                    | (u8::from(*solicited) << 6)
                    | (u8::from(*override_) << 5);
                let mut body = target.octets().to_vec();
                if let Some(m) = target_ll {
                    body.extend(Nd::ll_option(ND_OPT_TARGET_LL, *m));
                }
                Icmp {
                    kind: ICMPV6_NEIGHBOR_ADVERT,
                    code: 0,
                    rest: [flags, 0, 0, 0],
                    body,
                }
            }
            Nd::RouterAdvert { prefix } => {
                // Hop limit 64, managed/other flags clear, lifetime 1800 s.
                let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0];
                if let Some(p) = prefix {
                    body.extend_from_slice(&[
                        ND_OPT_PREFIX_INFO,
                        4,
                        64,
                        0xc0,
                        0,
                        0x27,
                        0x8d,
                        0,
                        0,
                        0x09,
                        0x3a,
                        0x80,
                        0,
                        0,
                        0,
                        0,
                    ]);
                    body.extend_from_slice(&p.octets());
                }
                Icmp {
                    kind: ICMPV6_ROUTER_ADVERT,
                    code: 0,
                    rest: [64, 0, 0x07, 0x08],
                    body,
                }
            }
        }
    }

    pub fn emit(&self, pseudo: Pseudo) -> Vec<u8> {
        self.to_icmp().emit(Some(pseudo))
    }

    /// The message, from ICMPv6 bytes; `Malformed` for other ICMPv6 types.
    pub fn parse(b: &[u8]) -> Result<Nd, WireError> {
        const W: &str = "neighbour discovery";
        let icmp = Icmp::parse(b)?;
        let option = |body: &[u8], kind: u8| -> Option<[u8; 6]> {
            let mut o = body;
            while o.len() >= 8 {
                let len = usize::from(o[1]) * 8;
                if len == 0 {
                    return None;
                }
                if o[0] == kind {
                    return mac_at(o, 2, W).ok();
                }
                o = o.get(len..)?;
            }
            None
        };
        match icmp.kind {
            ICMPV6_NEIGHBOR_SOLICIT => Ok(Nd::Solicit {
                target: v6_at(&icmp.body, 0, W)?,
                source_ll: option(icmp.body.get(16..).unwrap_or(&[]), ND_OPT_SOURCE_LL),
            }),
            ICMPV6_NEIGHBOR_ADVERT => Ok(Nd::Advert {
                router: icmp.rest[0] & 0x80 != 0,
                solicited: icmp.rest[0] & 0x40 != 0,
                override_: icmp.rest[0] & 0x20 != 0,
                target: v6_at(&icmp.body, 0, W)?,
                target_ll: option(icmp.body.get(16..).unwrap_or(&[]), ND_OPT_TARGET_LL),
            }),
            ICMPV6_ROUTER_ADVERT => {
                let options = icmp.body.get(8..).unwrap_or(&[]);
                let prefix = (options.first() == Some(&ND_OPT_PREFIX_INFO))
                    .then(|| v6_at(options, 16, W).ok())
                    .flatten();
                Ok(Nd::RouterAdvert { prefix })
            }
            _ => Err(WireError::Malformed(W)),
        }
    }
}

// ---- DHCP ----

pub const DHCP_MAGIC: [u8; 4] = [99, 130, 83, 99];
pub const DHCPDISCOVER: u8 = 1;
pub const DHCPOFFER: u8 = 2;
pub const DHCPACK: u8 = 5;

/// A BOOTP/DHCP message: the fields the kit sets, options 53 (message type), 54 (server
/// identifier) and 51 (lease time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bootp {
    /// 1 request, 2 reply.
    pub op: u8,
    pub xid: u32,
    /// The broadcast flag: clear, a server answers the client's MAC (unicast).
    pub broadcast: bool,
    pub yiaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    pub message_type: Option<u8>,
    pub server_id: Option<Ipv4Addr>,
}

impl Bootp {
    pub fn emit(&self) -> Vec<u8> {
        let mut b = vec![self.op, 1, 6, 0];
        b.extend_from_slice(&self.xid.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&(u16::from(self.broadcast) << 15).to_be_bytes());
        b.extend_from_slice(&[0; 4]); // ciaddr
        b.extend_from_slice(&self.yiaddr.octets());
        b.extend_from_slice(&[0; 8]); // siaddr, giaddr
        b.extend_from_slice(&self.chaddr);
        b.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
        b.extend_from_slice(&DHCP_MAGIC);
        if let Some(t) = self.message_type {
            b.extend_from_slice(&[53, 1, t]);
        }
        if let Some(s) = self.server_id {
            b.extend_from_slice(&[54, 4]);
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&[51, 4, 0, 0, 0x0e, 0x10]);
        }
        b.push(255);
        b
    }

    pub fn parse(b: &[u8]) -> Result<Bootp, WireError> {
        const W: &str = "bootp";
        if get(b, 236..240, W)? != DHCP_MAGIC {
            return Err(WireError::Malformed(W));
        }
        let mut message_type = None;
        let mut server_id = None;
        let mut o = &b[240..];
        while let Some((&code, rest)) = o.split_first() {
            match code {
                0 => o = rest,
                255 => break,
                _ => {
                    let len = usize::from(*rest.first().ok_or(WireError::Truncated(W))?);
                    let value = get(rest, 1..1 + len, W)?;
                    match code {
                        53 => message_type = value.first().copied(),
                        54 => server_id = v4_at(value, 0, W).ok(),
                        _ => {}
                    }
                    o = &rest[1 + len..];
                }
            }
        }
        Ok(Bootp {
            op: b[0],
            xid: u32_at(b, 4, W)?,
            broadcast: u16_at(b, 10, W)? & 0x8000 != 0,
            yiaddr: v4_at(b, 16, W)?,
            chaddr: mac_at(b, 28, W)?,
            message_type,
            server_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A4: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 15);
    const B4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);
    const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 0, 0, 0x15);
    const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 5);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x15];

    #[test]
    fn ethernet_vlan_and_arp_round_trip() {
        let arp = Arp {
            op: ARP_REQUEST,
            sha: MAC,
            spa: A4,
            tha: [0; 6],
            tpa: B4,
        };
        assert_eq!(Arp::parse(&arp.emit()), Ok(arp));
        let eth = Ethernet {
            dst: [0xff; 6],
            src: MAC,
            ether_type: ETHERTYPE_8021Q,
        };
        let tag = Vlan {
            vid: 20,
            ether_type: ETHERTYPE_ARP,
        };
        let frame = eth.emit(&tag.emit(&arp.emit()));
        let (e, rest) = Ethernet::parse(&frame).unwrap();
        assert_eq!(e, eth);
        let (t, rest) = Vlan::parse(rest).unwrap();
        assert_eq!(t, tag);
        assert_eq!(Arp::parse(rest), Ok(arp));
        assert_eq!(
            Arp::parse(&[0; 27]),
            Err(WireError::Malformed("arp")),
            "not Ethernet/IPv4"
        );
    }

    #[test]
    fn ip_and_transports_round_trip_with_real_checksums() {
        let ip = Ipv4 {
            ttl: 1,
            ident: 7,
            ..Ipv4::new(A4, B4, IPPROTO_TCP)
        };
        let tcp = Tcp::with_flags(40001, 445, TCP_FIN | TCP_PSH | TCP_URG);
        let seg = tcp.emit(ip.pseudo(), b"");
        assert_eq!(ip.pseudo().verify(IPPROTO_TCP, &seg), 0);
        let packet = ip.emit(&seg);
        let (p, payload) = Ipv4::parse(&packet).unwrap();
        assert_eq!(p, ip);
        assert_eq!(Tcp::parse(payload).unwrap().0, tcp);
        // A flipped bit: the header checksum no longer holds.
        let mut bad = packet.clone();
        bad[8] ^= 1;
        assert_eq!(Ipv4::parse(&bad), Err(WireError::Checksum("ipv4")));

        let v6 = Ipv6::new(A6, B6, IPPROTO_UDP);
        let dgram = Udp {
            sport: 40000,
            dport: 53,
        }
        .emit(v6.pseudo(), b"q");
        assert_eq!(v6.pseudo().verify(IPPROTO_UDP, &dgram), 0);
        let packet = v6.emit(&dgram);
        let (p, payload) = Ipv6::parse(&packet).unwrap();
        assert_eq!(p, v6);
        let (u, data) = Udp::parse(payload).unwrap();
        assert_eq!((u.sport, u.dport, data), (40000, 53, &b"q"[..]));
    }

    #[test]
    fn extension_chains_round_trip() {
        let chain = [
            Extension::HopByHop { units: 1 },
            Extension::DestOpts { units: 3 },
            Extension::Fragment {
                offset: 0,
                more: true,
                ident: 0x1234,
            },
        ];
        let (first, bytes) = Extension::emit_chain(&chain, IPPROTO_UDP, &[9, 9]);
        assert_eq!(first, IPV6_HOP_BY_HOP);
        assert_eq!(bytes.len(), 8 + 24 + 8 + 2);
        let (parsed, upper, rest) = Extension::parse_chain(first, &bytes).unwrap();
        assert_eq!(parsed, chain);
        assert_eq!((upper, rest), (IPPROTO_UDP, &[9u8, 9][..]));
        // cloison's own walk reads the same chain to the same place.
        let walk = cloison_core::headers::ipv6_transport(first, &bytes);
        assert_eq!((walk.proto, walk.l4), (IPPROTO_UDP, Some(&[9u8, 9][..])));
    }

    #[test]
    fn icmp_nd_and_bootp_round_trip() {
        let quoted = Ipv4::new(B4, A4, IPPROTO_UDP).emit(
            &Udp {
                sport: 53,
                dport: 5555,
            }
            .emit(Pseudo::new(B4, A4), b""),
        );
        let e = Icmp::error(ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED, 552, &quoted);
        let bytes = e.emit(None);
        assert_eq!(checksum(&[&bytes]), 0);
        assert_eq!(Icmp::parse(&bytes), Ok(e.clone()));
        assert_eq!(e.rest, [0, 0, 0x02, 0x28]);

        for nd in [
            Nd::Solicit {
                target: B6,
                source_ll: Some(MAC),
            },
            Nd::Advert {
                router: true,
                solicited: false,
                override_: true,
                target: B6,
                target_ll: Some(MAC),
            },
            Nd::Advert {
                router: false,
                solicited: true,
                override_: false,
                target: A6,
                target_ll: None,
            },
            Nd::RouterAdvert {
                prefix: Some(Ipv6Addr::new(0xfd00, 0x66, 0, 0, 0, 0, 0, 0)),
            },
        ] {
            let bytes = nd.emit(Pseudo::new(A6, B6));
            assert_eq!(Pseudo::new(A6, B6).verify(IPPROTO_ICMPV6, &bytes), 0);
            assert_eq!(Nd::parse(&bytes), Ok(nd));
        }

        let offer = Bootp {
            op: 2,
            xid: 0x1234_5678,
            broadcast: false,
            yiaddr: A4,
            chaddr: MAC,
            message_type: Some(DHCPOFFER),
            server_id: Some(B4),
        };
        assert_eq!(Bootp::parse(&offer.emit()), Ok(offer));
    }

    #[test]
    fn parsers_refuse_short_input_without_panicking() {
        let frame = Ethernet {
            dst: [1; 6],
            src: MAC,
            ether_type: ETHERTYPE_IPV4,
        }
        .emit(&Ipv4::new(A4, B4, IPPROTO_UDP).emit(&[0; 8]));
        for len in 0..frame.len() {
            let cut = &frame[..len];
            let _ = Ethernet::parse(cut).map(|(_, p)| {
                let _ = Ipv4::parse(p);
                let _ = Ipv6::parse(p);
                let _ = Arp::parse(p);
                let _ = Udp::parse(p);
                let _ = Tcp::parse(p);
                let _ = Icmp::parse(p);
                let _ = Nd::parse(p);
                let _ = Bootp::parse(p);
                let _ = Extension::parse_chain(0, p);
            });
        }
    }
}
