//! nftables tracing (`NFNLGRP_NFTRACE`, what `nft monitor trace` reads): for each packet
//! whose `nftrace` bit a rule set, one message per rule verdict and chain policy it met,
//! with its headers. cloison's ruleset sets the bit on the verify probes' packets only
//! (they carry the verify mark), so `cloison verify` sees, for each probe, which rule of
//! which chain dropped or accepted it. Headers only: the kernel copies the network and
//! transport headers, never the payload.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use netlink_sys::Socket;

use super::wire::{Malformed, attrs, be32, be64, messages, split_nfgenmsg, string};
use super::{Error, sock};

/// `NFNLGRP_NFTRACE`.
const NFNLGRP_NFTRACE: u32 = 9;
/// `NFT_MSG_TRACE`.
const MSG_TRACE: u8 = 17;

/// `enum nft_trace_attributes`.
mod attr {
    pub const TABLE: u16 = 1;
    pub const CHAIN: u16 = 2;
    pub const RULE_HANDLE: u16 = 3;
    pub const TYPE: u16 = 4;
    pub const VERDICT: u16 = 5;
    pub const ID: u16 = 6;
    pub const NETWORK_HEADER: u16 = 8;
    pub const TRANSPORT_HEADER: u16 = 9;
    pub const NFPROTO: u16 = 15;
    pub const POLICY: u16 = 16;
    /// `NFTA_VERDICT_CODE`, inside `VERDICT`.
    pub const VERDICT_CODE: u16 = 1;
}

/// `enum nft_trace_types`.
const TYPE_POLICY: u32 = 1;
const TYPE_RULE: u32 = 3;
/// `NF_DROP`, `NF_ACCEPT`.
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// The flow a traced packet belongs to: enough to tell the verify's probes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// 6, 17, 1 or 58.
    pub proto: u8,
    /// Source and destination ports; the echo identifier and 0 for ICMP echo requests.
    pub sport: u16,
    pub dport: u16,
}

/// A verdict met by a traced packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub table: String,
    pub chain: String,
    /// The rule's handle; `None` for a chain's policy.
    pub handle: Option<u64>,
    pub accept: bool,
}

/// One trace message: the packet's flow when the message carries its headers (the first
/// message of each hook does), and the verdict when it is a final one (accept or drop,
/// by a rule or a chain's policy; jumps, returns and continues have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The trace id: the same for every message about one packet.
    pub id: u32,
    pub flow: Option<Flow>,
    pub verdict: Option<Verdict>,
}

/// Decodes the trace messages of a datagram; messages of other kinds are skipped.
pub fn decode(datagram: &[u8]) -> Result<Vec<TraceEvent>, Malformed> {
    let mut out = Vec::new();
    for m in messages(datagram) {
        let m = m?;
        if m.nft_type() != Some(MSG_TRACE) {
            continue;
        }
        let (_, _, area) = split_nfgenmsg(m.payload)?;
        let mut table = String::new();
        let mut chain = String::new();
        let mut handle = None;
        let mut kind = 0;
        let mut code = None;
        let mut policy = None;
        let mut id = 0;
        let mut network: &[u8] = &[];
        let mut transport: &[u8] = &[];
        let mut nfproto = 0u32;
        for a in attrs(area) {
            let (t, v) = a?;
            match t {
                attr::TABLE => table = string(v),
                attr::CHAIN => chain = string(v),
                attr::RULE_HANDLE => handle = Some(be64(v)?),
                attr::TYPE => kind = be32(v)?,
                attr::VERDICT => {
                    for inner in attrs(v) {
                        let (it, iv) = inner?;
                        if it == attr::VERDICT_CODE {
                            code = Some(be32(iv)?);
                        }
                    }
                }
                attr::POLICY => policy = Some(be32(v)?),
                attr::ID => id = be32(v)?,
                attr::NETWORK_HEADER => network = v,
                attr::TRANSPORT_HEADER => transport = v,
                attr::NFPROTO => nfproto = be32(v)?,
                _ => {}
            }
        }
        let final_code = match kind {
            TYPE_RULE => code,
            TYPE_POLICY => policy,
            _ => None,
        };
        let accept = match final_code {
            Some(NF_ACCEPT) => Some(true),
            Some(NF_DROP) => Some(false),
            _ => None,
        };
        out.push(TraceEvent {
            id,
            flow: flow(nfproto, network, transport),
            verdict: accept.map(|accept| Verdict {
                table,
                chain,
                handle: if kind == TYPE_RULE { handle } else { None },
                accept,
            }),
        });
    }
    Ok(out)
}

/// The flow of a packet from its network and transport headers.
fn flow(nfproto: u32, network: &[u8], transport: &[u8]) -> Option<Flow> {
    let (src, dst, proto): (IpAddr, IpAddr, u8) = match (nfproto, network.first()? >> 4) {
        (_, 4) if network.len() >= 20 => (
            Ipv4Addr::new(network[12], network[13], network[14], network[15]).into(),
            Ipv4Addr::new(network[16], network[17], network[18], network[19]).into(),
            network[9],
        ),
        (_, 6) if network.len() >= 40 => {
            let a = |at: usize| -> Ipv6Addr {
                let b: [u8; 16] = network[at..at + 16].try_into().expect("16 bytes");
                b.into()
            };
            (a(8).into(), a(24).into(), network[6])
        }
        _ => return None,
    };
    let (sport, dport) = match proto {
        6 | 17 if transport.len() >= 4 => (
            u16::from_be_bytes([transport[0], transport[1]]),
            u16::from_be_bytes([transport[2], transport[3]]),
        ),
        // Echo request (8, or 128 for ICMPv6): the identifier.
        1 | 58 if transport.len() >= 6 => (u16::from_be_bytes([transport[4], transport[5]]), 0),
        _ => return None,
    };
    Some(Flow {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// A subscription to the trace group, in the calling thread's network namespace.
pub struct Tracer {
    socket: Socket,
    buf: Vec<u8>,
}

impl Tracer {
    /// Needs CAP_NET_ADMIN. A large buffer: a probe's packet makes a handful of
    /// messages at each hook, and hundreds of probes are in flight.
    pub fn open() -> Result<Tracer, Error> {
        let socket = sock::open(8 << 20)?;
        socket
            .add_membership(NFNLGRP_NFTRACE)
            .map_err(Error::Subscribe)?;
        socket.set_non_blocking(true).map_err(Error::Open)?;
        Ok(Tracer {
            socket,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// The events that arrive within `timeout` (all that are queued, then waits for
    /// more until the deadline). Lost messages (a full buffer) are an error: a probe
    /// whose trace was lost would look unseen.
    pub fn collect(&mut self, timeout: Duration) -> Result<Vec<TraceEvent>, Error> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            match sock::recv(&self.socket, &mut self.buf) {
                Ok(()) => out.extend(decode(&self.buf).map_err(|e| Error::Malformed {
                    op: "NFNLGRP_NFTRACE message".into(),
                    detail: e.0,
                })?),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(out);
                    }
                    sock::wait_readable(&self.socket, left).map_err(|source| Error::Recv {
                        op: "poll(2) on NFNLGRP_NFTRACE".into(),
                        source,
                    })?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Recv {
                        op: "NFNLGRP_NFTRACE (trace messages lost)".into(),
                        source,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = u16::try_from(4 + value.len()).unwrap();
        let mut out = Vec::new();
        out.extend(len.to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn message(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut payload = vec![1, 0, 0, 0];
        for a in attrs {
            payload.extend(a);
        }
        let mut out = Vec::new();
        out.extend(u32::try_from(16 + payload.len()).unwrap().to_ne_bytes());
        out.extend(((10u16 << 8) | u16::from(MSG_TRACE)).to_ne_bytes());
        out.extend([0u8; 10]);
        out.extend(payload);
        out
    }

    fn ipv4_tcp() -> (Vec<u8>, Vec<u8>) {
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        ip.extend([192, 168, 20, 250, 192, 168, 10, 5]);
        let tcp = vec![0xa0, 0x28, 0x01, 0xbd, 0, 0, 0, 0];
        (ip, tcp)
    }

    #[test]
    fn a_rule_drop_names_its_chain_and_the_flow() {
        let (ip, tcp) = ipv4_tcp();
        let verdict = nla(
            attr::VERDICT,
            &nla(attr::VERDICT_CODE, &NF_DROP.to_be_bytes()),
        );
        let dgram = message(&[
            nla(attr::TABLE, b"cloison\0"),
            nla(attr::CHAIN, b"pair/kiosk/mairie\0"),
            nla(attr::RULE_HANDLE, &57u64.to_be_bytes()),
            nla(attr::TYPE, &TYPE_RULE.to_be_bytes()),
            verdict,
            nla(attr::ID, &7u32.to_be_bytes()),
            nla(attr::NETWORK_HEADER, &ip),
            nla(attr::TRANSPORT_HEADER, &tcp),
            nla(attr::NFPROTO, &2u32.to_be_bytes()),
        ]);
        let events = decode(&dgram).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.id, 7);
        let v = e.verdict.as_ref().unwrap();
        assert_eq!(v.chain, "pair/kiosk/mairie");
        assert_eq!(v.handle, Some(57));
        assert!(!v.accept);
        let f = e.flow.unwrap();
        assert_eq!((f.sport, f.dport, f.proto), (41000, 445, 6));
        assert_eq!(f.dst, "192.168.10.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn jumps_are_skipped_and_a_policy_counts_as_a_verdict() {
        let (ip, tcp) = ipv4_tcp();
        let jump = nla(
            attr::VERDICT,
            &nla(attr::VERDICT_CODE, &(-3i32).to_be_bytes()),
        );
        let dgram = [
            message(&[
                nla(attr::TABLE, b"cloison\0"),
                nla(attr::TYPE, &TYPE_RULE.to_be_bytes()),
                jump,
                nla(attr::NETWORK_HEADER, &ip),
                nla(attr::TRANSPORT_HEADER, &tcp),
            ]),
            message(&[
                nla(attr::TABLE, b"other\0"),
                nla(attr::CHAIN, b"forward\0"),
                nla(attr::TYPE, &TYPE_POLICY.to_be_bytes()),
                nla(attr::POLICY, &NF_ACCEPT.to_be_bytes()),
            ]),
        ]
        .concat();
        let events = decode(&dgram).unwrap();
        assert_eq!(events.len(), 2);
        // The jump carries the headers, no verdict; the policy a verdict, no headers.
        assert!(events[0].verdict.is_none() && events[0].flow.is_some());
        let v = events[1].verdict.as_ref().unwrap();
        assert!(v.accept && v.handle.is_none());
        assert!(events[1].flow.is_none());
        // Cut anywhere, it is refused, never misread.
        for cut in 1..dgram.len() {
            let _ = decode(&dgram[..cut]);
        }
    }
}
