//! What a sampled drop says about its flow. The ruleset's `log group` statements send
//! the first bytes of some dropped packets to the daemon (NFLOG, read by an edge of the
//! `cloison` crate); `decode` turns one such sample, named by its counter, into the flow
//! it belongs to. The kernel copies at most `COPY_RANGE` bytes (the headers), and
//! `headers_only` keeps the IP header and ports of those: nothing a person sent.

use std::net::IpAddr;

use crate::alert::event::{Destination, EventKind, FlowKey, L4, SegmentId};
use crate::config::Config;
use crate::counter::{Pair, TO_PRIVATE, TO_ROUTER, TO_SPOOFED};

/// Bytes of each logged packet the kernel copies to us: an IPv6 header (40) and the
/// first bytes of the transport header; enough for ports, too short for content.
pub const COPY_RANGE: u32 = 64;

/// One sampled drop, as the kernel sent it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The log prefix: the counter name, `<from>/<to>`.
    pub prefix: String,
    pub ifindex_in: Option<u32>,
    pub src_mac: Option<[u8; 6]>,
    /// The start of the network-layer packet (at most `COPY_RANGE` bytes).
    pub packet: Vec<u8>,
}

/// What the sample says about the flow; `None` for prefixes that are not segment events.
pub fn decode(sample: &Sample, config: &Config) -> Option<FlowKey> {
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
        }
    } else if kind == EventKind::SpoofedSource {
        key.dst = None;
    }
    Some(key)
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

struct Headers {
    src: IpAddr,
    dst: IpAddr,
    proto: L4,
    dst_port: Option<u16>,
}

/// Addresses, protocol and destination port of a (possibly truncated) IP packet.
fn headers(packet: &[u8]) -> Option<Headers> {
    let (ip, _) = etherparse::LaxIpSlice::from_slice(packet).ok()?;
    let (src, dst) = match &ip {
        etherparse::LaxIpSlice::Ipv4(v4) => (
            IpAddr::V4(v4.header().source_addr()),
            IpAddr::V4(v4.header().destination_addr()),
        ),
        etherparse::LaxIpSlice::Ipv6(v6) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
    };
    let payload = ip.payload();
    let proto = L4::from_ip_proto(payload.ip_number.0);
    let dst_port = match proto {
        L4::Tcp | L4::Udp if payload.payload.len() >= 4 => {
            Some(u16::from_be_bytes([payload.payload[2], payload.payload[3]]))
        }
        _ => None,
    };
    Some(Headers {
        src,
        dst,
        proto,
        dst_port,
    })
}

/// The IP header and the 4 bytes of ports after it: what `decode` reads, and nothing
/// of what the packet carried.
pub fn headers_only(p: &[u8]) -> &[u8] {
    let keep = match p.first().map(|b| b >> 4) {
        Some(4) => usize::from(p[0] & 0x0f) * 4 + 4,
        Some(6) => 40 + 4,
        _ => 0,
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
        assert_eq!(headers_only(&with_payload), &SYN_TO_SMB[..24]);
        let s = Sample {
            prefix: "kiosk/mairie".into(),
            packet: headers_only(&with_payload).to_vec(),
            ..Sample::default()
        };
        assert_eq!(decode(&s, &lab()).unwrap().dst_port, Some(445));
        assert!(headers_only(&[]).is_empty());
        assert!(headers_only(&[0x4f]).len() == 1);
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
