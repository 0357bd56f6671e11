//! What a sampled drop says about its flow. The ruleset's `log group` statements send
//! the first bytes of some dropped packets to the daemon (NFLOG, read by an edge of the
//! `cloison` crate); `decode` turns one such sample, named by its counter, into the flow
//! it belongs to. The kernel copies at most `COPY_RANGE` bytes, and `headers_only` keeps
//! the IP header, the IPv6 extension headers and the first bytes of the transport header
//! (ports, TCP flags, ICMP type) of those: nothing a person sent.
//!
//! Besides addresses and ports, a sample can say how the attempt was made
//! (`Technique`): a TTL 1 probe, a directed broadcast, an ICMP error, a stealth scan.

use std::net::IpAddr;

use crate::alert::event::{Destination, EventKind, FlowKey, L4, SegmentId, Technique};
use crate::config::Config;
use crate::counter::{Pair, TO_PRIVATE, TO_ROUTER, TO_SPOOFED, TRUNK_UNTAGGED};
use crate::headers::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, ipv6_transport};

/// Bytes of each logged packet the kernel copies to us: room for an IPv6 header (40), a
/// chain of extension headers and the start of the transport header. `headers_only`
/// throws away what follows the headers at once.
pub const COPY_RANGE: u32 = 256;

/// Transport bytes kept: TCP up to its flags (ports, sequence and acknowledgement
/// numbers, offset and flags), the UDP header, ICMP's type, code, checksum and the four
/// bytes after them; the ports, or nothing, for anything else.
const TCP_KEPT: usize = 14;
const UDP_KEPT: usize = 8;
const ICMP_KEPT: usize = 8;
const OTHER_KEPT: usize = 4;

/// TCP flag bits.
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// One sampled drop, as the kernel sent it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The log prefix: the counter name, `<from>/<to>`.
    pub prefix: String,
    pub ifindex_in: Option<u32>,
    pub src_mac: Option<[u8; 6]>,
    /// The start of the network-layer packet (at most `COPY_RANGE` bytes).
    pub packet: Vec<u8>,
    /// The packet's mark, when it had one (`names::VERIFY_MARK`: a `cloison verify` probe).
    pub mark: Option<u32>,
}

/// What the sample says about the flow; `None` for prefixes that are not segment events.
pub fn decode(sample: &Sample, config: &Config) -> Option<FlowKey> {
    let mut key = decode_attempt(sample, config)?;
    if sample.mark == Some(crate::names::VERIFY_MARK) {
        // A `cloison verify` probe: said so, and one flow per source, kind and destination
        // class, so that a run's hundreds of probes take a handful of entries, not the
        // budget that real attempts need.
        key.technique = Some(Technique::VerifyProbe);
        key.dst_ip = None;
        key.proto = None;
        key.dst_port = None;
    }
    Some(key)
}

fn decode_attempt(sample: &Sample, config: &Config) -> Option<FlowKey> {
    if sample.prefix == TRUNK_UNTAGGED {
        // Untagged on the trunk: no segment; whatever it was for, it met no service.
        let mut key = FlowKey::new(EventKind::RouterAccess);
        key.dst = Some(Destination::Router);
        key.src_mac = sample.src_mac;
        key.ifindex = sample.ifindex_in;
        if let Some(h) = headers(&sample.packet) {
            key.src_ip = Some(h.src);
            key.dst_ip = Some(h.dst);
            key.proto = Some(h.proto);
            key.dst_port = h.dst_port;
        }
        return Some(key);
    }
    let Pair { from, to } = Pair::parse(&sample.prefix)?;
    let src = config
        .segments
        .iter()
        .position(|s| s.name.as_str() == from)?;
    let (kind, dst) = match to {
        TO_ROUTER => (EventKind::RouterAccess, Destination::Router),
        TO_SPOOFED => (EventKind::SpoofedSource, Destination::Router),
        TO_PRIVATE => (EventKind::CrossSegment, Destination::Private),
        other => {
            let t = config
                .segments
                .iter()
                .position(|s| s.name.as_str() == other)?;
            (
                EventKind::CrossSegment,
                Destination::Segment(SegmentId::at(t)),
            )
        }
    };
    let mut key = FlowKey::new(kind);
    key.src_segment = Some(SegmentId::at(src));
    key.dst = Some(dst);
    key.src_mac = sample.src_mac;
    key.ifindex = sample.ifindex_in;
    if let Some(h) = headers(&sample.packet) {
        key.src_ip = Some(h.src);
        key.dst_ip = Some(h.dst);
        key.proto = Some(h.proto);
        key.dst_port = h.dst_port;
        if kind == EventKind::SpoofedSource {
            // Where the forged packet was going: a segment, or nowhere in particular.
            key.dst = segment_of(config, h.dst).map(Destination::Segment);
        } else {
            key.technique = technique(&h, kind, dst, config);
        }
    } else if kind == EventKind::SpoofedSource {
        key.dst = None;
    }
    Some(key)
}

/// How the attempt was made, when the headers say (the first that applies): a first
/// fragment without its ports, an ICMP error, a TCP stealth scan, a TTL 1 probe into
/// another segment, a directed broadcast.
fn technique(h: &Headers, kind: EventKind, dst: Destination, config: &Config) -> Option<Technique> {
    if h.tiny_fragment {
        return Some(Technique::TinyFragment);
    }
    if let Some(t) = h.icmp_type {
        let error = match h.proto {
            L4::Icmp => matches!(t, 3 | 4 | 5 | 11 | 12),
            L4::Icmpv6 => matches!(t, 1..=4 | 137),
            _ => false,
        };
        if error {
            return Some(Technique::IcmpError);
        }
    }
    if let Some(flags) = h.tcp_flags {
        let scan = match flags & (FIN | SYN | RST | PSH | ACK | URG) {
            0 => Some(Technique::TcpNull),
            FIN => Some(Technique::TcpFin),
            x if x == FIN | PSH | URG => Some(Technique::TcpXmas),
            x if x == FIN | ACK => Some(Technique::TcpMaimon),
            _ => None,
        };
        if scan.is_some() {
            return scan;
        }
    }
    let into_segment = matches!(dst, Destination::Segment(_) | Destination::Private);
    if kind == EventKind::CrossSegment && into_segment && h.ttl <= 1 {
        return Some(Technique::Traceroute);
    }
    if let (Destination::Segment(t), IpAddr::V4(d)) = (dst, h.dst)
        && config
            .segments
            .get(t.index())
            .is_some_and(|s| s.address.prefix_len() < 31 && s.address.subnet().broadcast() == d)
    {
        return Some(Technique::DirectedBroadcast);
    }
    None
}

/// The segment whose subnet holds `ip`.
fn segment_of(config: &Config, ip: IpAddr) -> Option<SegmentId> {
    config
        .segments
        .iter()
        .position(|s| match ip {
            IpAddr::V4(a) => s.address.subnet().contains(&a),
            IpAddr::V6(a) => s.address6.is_some_and(|n| n.subnet().contains(&a)),
        })
        .map(SegmentId::at)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Headers {
    src: IpAddr,
    dst: IpAddr,
    proto: L4,
    dst_port: Option<u16>,
    /// TTL or hop limit.
    ttl: u8,
    /// A first fragment (more to come) that stops before the transport's ports.
    tiny_fragment: bool,
    tcp_flags: Option<u8>,
    icmp_type: Option<u8>,
}

/// An IP packet's header fields and the start of its transport header (in a first or
/// only fragment, past any IPv6 extension headers), from a possibly truncated copy.
struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    /// A first fragment with more to come.
    first_of_many: bool,
    /// Bytes of the IP header and IPv6 extension headers.
    header_len: usize,
    l4: Option<&'a [u8]>,
}

fn ip(p: &[u8]) -> Option<Ip<'_>> {
    match p.first()? >> 4 {
        4 => {
            let header_len = usize::from(p[0] & 0x0f) * 4;
            if header_len < 20 {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddr> {
                Some(IpAddr::from(<[u8; 4]>::try_from(p.get(at..at + 4)?).ok()?))
            };
            let (src, dst) = (addr(12)?, addr(16)?);
            let flags = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
            let frag = flags & 0x1fff;
            Some(Ip {
                src,
                dst,
                ttl: *p.get(8)?,
                proto: *p.get(9)?,
                first_of_many: frag == 0 && flags & 0x2000 != 0,
                header_len,
                l4: if frag == 0 { p.get(header_len..) } else { None },
            })
        }
        6 => {
            let addr = |at: usize| -> Option<IpAddr> {
                Some(IpAddr::from(
                    <[u8; 16]>::try_from(p.get(at..at + 16)?).ok()?,
                ))
            };
            let (src, dst) = (addr(8)?, addr(24)?);
            let walk = ipv6_transport(*p.get(6)?, p.get(40..)?);
            Some(Ip {
                src,
                dst,
                ttl: *p.get(7)?,
                proto: walk.proto,
                first_of_many: first_of_many6(*p.get(6)?, p.get(40..)?),
                header_len: 40 + walk.extensions_len,
                l4: walk.l4,
            })
        }
        _ => None,
    }
}

/// Whether an IPv6 extension chain holds a fragment header of offset 0 with more
/// fragments to come (the walk, bounded like `ipv6_transport`'s, stops at the first
/// fragment header).
fn first_of_many6(mut next: u8, mut rest: &[u8]) -> bool {
    for _ in 0..=rest.len() / 8 {
        let len = match next {
            crate::headers::IPV6_FRAGMENT => {
                return rest
                    .get(2..4)
                    .is_some_and(|f| u16::from_be_bytes([f[0], f[1]]) & 0xfff9 == 0x0001);
            }
            n if crate::headers::is_ipv6_extension(n) => match rest.get(1) {
                Some(&units) if n == crate::headers::IPV6_AUTH => {
                    ((usize::from(units) + 2) * 4).max(8)
                }
                Some(&units) => (usize::from(units) + 1) * 8,
                None => return false,
            },
            _ => return false,
        };
        let (Some(&following), Some(after)) = (rest.first(), rest.get(len..)) else {
            return false;
        };
        next = following;
        rest = after;
    }
    false
}

/// Addresses, protocol, destination port and the few transport fields `technique` reads,
/// of a (possibly truncated) IP packet.
fn headers(packet: &[u8]) -> Option<Headers> {
    let ip = ip(packet)?;
    let proto = L4::from_ip_proto(ip.proto);
    let l4 = ip.l4.unwrap_or(&[]);
    let dst_port = match proto {
        L4::Tcp | L4::Udp => l4.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])),
        _ => None,
    };
    Some(Headers {
        src: ip.src,
        dst: ip.dst,
        proto,
        dst_port,
        ttl: ip.ttl,
        tiny_fragment: ip.first_of_many && matches!(proto, L4::Tcp | L4::Udp) && l4.len() < 4,
        tcp_flags: (proto == L4::Tcp).then(|| l4.get(13).copied()).flatten(),
        icmp_type: matches!(proto, L4::Icmp | L4::Icmpv6)
            .then(|| l4.first().copied())
            .flatten(),
    })
}

/// The IP header, the IPv6 extension headers and the first bytes of the transport
/// header: what `decode` reads, and nothing of what the packet carried.
pub fn headers_only(p: &[u8]) -> &[u8] {
    let keep = match ip(p) {
        Some(ip) => {
            let transport = match ip.l4 {
                None => 0,
                Some(_) => match ip.proto {
                    IPPROTO_TCP => TCP_KEPT,
                    IPPROTO_UDP => UDP_KEPT,
                    IPPROTO_ICMP | IPPROTO_ICMPV6 => ICMP_KEPT,
                    _ => OTHER_KEPT,
                },
            };
            ip.header_len + transport
        }
        None => 0,
    };
    &p[..keep.min(p.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Config {
        crate::config::parse(include_str!("../../../config/lab.toml"), "lab.toml").unwrap()
    }

    /// IPv4 + TCP SYN from 192.168.20.15:40000 to 192.168.10.5:445 (headers only).
    const SYN_TO_SMB: [u8; 40] = [
        0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 192, 168, 20, 15, 192, 168, 10, 5, // IPv4
        0x9c, 0x40, 0x01, 0xbd, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x72, 0x10, 0, 0, 0,
        0, // TCP
    ];

    #[test]
    fn decodes_a_blocked_kiosk_to_mairie_flow() {
        let c = lab();
        let s = Sample {
            prefix: "kiosk/mairie".into(),
            ifindex_in: Some(7),
            src_mac: Some([2, 0, 0, 0, 0, 0x15]),
            packet: SYN_TO_SMB.to_vec(),
            mark: None,
        };
        let k = decode(&s, &c).unwrap();
        assert_eq!(k.kind, EventKind::CrossSegment);
        let kiosk = c
            .segments
            .iter()
            .position(|s| s.name.as_str() == "kiosk")
            .unwrap();
        let mairie = c
            .segments
            .iter()
            .position(|s| s.name.as_str() == "mairie")
            .unwrap();
        assert_eq!(k.src_segment, Some(SegmentId::at(kiosk)));
        assert_eq!(k.dst, Some(Destination::Segment(SegmentId::at(mairie))));
        assert_eq!(k.src_ip, Some("192.168.20.15".parse().unwrap()));
        assert_eq!(k.dst_ip, Some("192.168.10.5".parse().unwrap()));
        assert_eq!(k.proto, Some(L4::Tcp));
        assert_eq!(k.dst_port, Some(445));
        assert_eq!(k.ifindex, Some(7));
    }

    #[test]
    fn a_verify_probe_is_said_to_be_one_and_folds_by_destination_class() {
        let c = lab();
        let mut s = Sample {
            prefix: "kiosk/mairie".into(),
            ifindex_in: Some(7),
            src_mac: Some([2, 0xc1, 5, 0, 0, 1]),
            packet: SYN_TO_SMB.to_vec(),
            mark: Some(crate::names::VERIFY_MARK),
        };
        let k = decode(&s, &c).unwrap();
        assert_eq!(k.kind, EventKind::CrossSegment);
        assert_eq!(k.technique, Some(Technique::VerifyProbe));
        assert_eq!(k.src_ip, Some("192.168.20.15".parse().unwrap()));
        assert_eq!((k.dst_ip, k.proto, k.dst_port), (None, None, None));
        // Any other mark is nobody's business here.
        s.mark = Some(1);
        assert_eq!(decode(&s, &c).unwrap().dst_port, Some(445));
    }

    #[test]
    fn maps_pseudo_destinations_to_event_kinds() {
        let c = lab();
        let kind = |prefix: &str| {
            decode(
                &Sample {
                    prefix: prefix.into(),
                    ..Sample::default()
                },
                &c,
            )
            .map(|k| k.kind)
        };
        assert_eq!(kind("kiosk/router"), Some(EventKind::RouterAccess));
        assert_eq!(kind("kiosk/spoofed"), Some(EventKind::SpoofedSource));
        assert_eq!(kind("kiosk/private"), Some(EventKind::CrossSegment));
        assert_eq!(kind("isp/router"), None, "uplinks are not segment events");
        assert_eq!(
            kind("kiosk/internet"),
            None,
            "internet-bound drops are counted, not alerted"
        );
        assert_eq!(kind("nonsense"), None);
        assert_eq!(kind("kiosk/nowhere"), None);
    }

    #[test]
    fn keeps_headers_and_ports_only() {
        let mut with_payload = SYN_TO_SMB.to_vec();
        with_payload.extend_from_slice(b"secret payload");
        // The IP header, then TCP up to its flags.
        assert_eq!(headers_only(&with_payload), &SYN_TO_SMB[..34]);
        let s = Sample {
            prefix: "kiosk/mairie".into(),
            packet: headers_only(&with_payload).to_vec(),
            ..Sample::default()
        };
        assert_eq!(decode(&s, &lab()).unwrap().dst_port, Some(445));
        assert!(headers_only(&[]).is_empty());
        assert!(headers_only(&[0x4f]).is_empty());
    }

    #[test]
    fn truncated_and_garbage_packets_never_panic() {
        let c = lab();
        for len in 0..SYN_TO_SMB.len() {
            let s = Sample {
                prefix: "kiosk/mairie".into(),
                packet: SYN_TO_SMB[..len].to_vec(),
                ..Sample::default()
            };
            let k = decode(&s, &c).expect("the prefix alone identifies the pair");
            if len < 20 {
                assert_eq!(k.src_ip, None);
            }
        }
        let mut x: u32 = 1;
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..(x % 80))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x.to_le_bytes()[0]
                })
                .collect();
            let _ = decode(
                &Sample {
                    prefix: "kiosk/mairie".into(),
                    packet: bytes,
                    ..Sample::default()
                },
                &c,
            );
        }
    }
}
