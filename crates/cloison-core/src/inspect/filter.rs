//! The classic BPF program attached to each capture socket (`SO_ATTACH_FILTER`), so that
//! the kernel drops ordinary traffic before it is copied to the daemon. Built from the
//! `Topology` for one capture point; pure data, the capture edge attaches it.
//!
//! What passes is a superset of what `classify` can report there (a test and the fuzz
//! target check exactly that), and nothing else:
//!
//! On a segment's interface, in this order:
//! 1. frames the router sends (packet type `PACKET_OUTGOING`, `SKF_AD_PKTTYPE`):
//!    dropped. The router's own frames are told apart by their direction, never by their
//!    MAC: a frame that comes in with one of the router's MACs is forged or looped;
//! 2. source MAC = any of the router's MACs (this interface's or another's): passed;
//! 3. any VLAN tag, in metadata (`SKF_AD_VLAN_TAG_PRESENT`) or in the frame (0x8100,
//!    0x88a8, 0x9100): passed on a dedicated port, dropped on a VLAN sub-interface;
//! 4. ARP: replies, requests whose sender and target addresses are equal (gratuitous),
//!    any ARP whose sender address is one of the router's, and, when not addressed to
//!    the router's MAC, any ARP whose sender address is in another segment's subnet:
//!    passed;
//! 5. IPv4: UDP 67 -> 68 in a first fragment: passed; not addressed to the router's MAC
//!    and with a source in another segment's subnet: passed;
//! 6. IPv6: ICMPv6 types 134 to 136 (router advertisements, neighbour solicitations and
//!    advertisements), UDP 547 -> 546, and any packet whose first next-header is an
//!    extension header (hop-by-hop, routing, fragment, AH, destination options, so what
//!    hides behind them is still seen): passed; not addressed to the router's MAC and
//!    with a source in another segment's prefix: passed;
//! 7. everything else (ordinary TCP/UDP between hosts and the router, ARP requests of
//!    the segment's own hosts, other ethertypes): dropped.
//!
//! On the trunk: frames the router sends are dropped, then a metadata tag whose TPID is not 0x8100, a metadata tag followed by an
//! in-frame tag, a metadata tag with an unconfigured VLAN ID, an in-frame 0x88a8/0x9100
//! outer tag, an in-frame 0x8100 tag with an unconfigured VLAN ID or followed by another
//! tag: passed. Untagged frames and singly tagged frames of configured VLANs: dropped.
//!
//! Passed frames are kept whole (the return value is larger than any frame): an RA or
//! DHCP option can sit behind arbitrarily long headers.

use super::classify::{TPID_8021AD, TPID_8021Q, TPID_QINQ};
use super::topology::{CapturePoint, Net6, Topology};
use crate::alert::event::SegmentId;

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// The kernel refuses longer classic programs (`BPF_MAXINSNS`, linux/bpf_common.h).
pub const MAX_INSNS: usize = 4096;
/// The value a passing program returns: the number of bytes to keep, more than any frame.
pub const PASS: u32 = 0x0004_0000;

/// Why a program could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error(
        "the capture filter for this configuration needs {len} instructions; the kernel accepts at most {MAX_INSNS}"
    )]
    TooLong { len: usize },
    #[error("no such capture point in the topology: {0:?}")]
    UnknownPoint(CapturePoint),
}

// Opcodes: the kernel's ABI numbers, from linux/bpf_common.h and linux/filter.h (the
// core has no libc; a test in cloison-lab checks them against libc's constants).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MSH: u16 = 0xa0;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;
pub const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
pub const LD_H_ABS: u16 = BPF_LD | BPF_H | BPF_ABS;
pub const LD_B_ABS: u16 = BPF_LD | BPF_B | BPF_ABS;
pub const LD_H_IND: u16 = BPF_LD | BPF_H | BPF_IND;
pub const LDX_B_MSH: u16 = BPF_LDX | BPF_B | BPF_MSH;
pub const AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
pub const JA: u16 = BPF_JMP | BPF_JA;
pub const JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
pub const JEQ_X: u16 = BPF_JMP | BPF_JEQ | BPF_X;
pub const JSET_K: u16 = BPF_JMP | BPF_JSET | BPF_K;
pub const RET_K: u16 = BPF_RET | BPF_K;
pub const TAX: u16 = BPF_MISC | BPF_TAX;
pub const TXA: u16 = BPF_MISC | BPF_TXA;

/// Ancillary loads (`SKF_AD_OFF + SKF_AD_*`, linux/filter.h): SKF_AD_OFF is -0x1000.
const SKF_AD_OFF: u32 = 0xffff_f000;
pub const AD_VLAN_TAG: u32 = SKF_AD_OFF + 44;
pub const AD_VLAN_TAG_PRESENT: u32 = SKF_AD_OFF + 48;
pub const AD_VLAN_TPID: u32 = SKF_AD_OFF + 60;
pub const AD_PKTTYPE: u32 = SKF_AD_OFF + 4;
/// `PACKET_OUTGOING` (linux/if_packet.h): a frame the host itself sends.
pub const PACKET_OUTGOING: u32 = 4;

const ETH_DST: u32 = 0;
const ETH_SRC: u32 = 6;
const ETH_TYPE: u32 = 12;
// Offsets in untagged frames.
const ARP_OP: u32 = 14 + 6;
const ARP_SPA: u32 = 14 + 14;
const ARP_TPA: u32 = 14 + 24;
const IP4_FRAG: u32 = 14 + 6;
const IP4_PROTO: u32 = 14 + 9;
const IP4_SRC: u32 = 14 + 12;
const IP4_START: u32 = 14;
const IP6_NEXT: u32 = 14 + 6;
const IP6_SRC: u32 = 14 + 8;
const IP6_L4: u32 = 14 + 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum To {
    Next,
    L(Label),
}

/// A tiny assembler: forward labels, resolved at the end. Conditional jumps reach at most
/// 255 instructions, so the generator only uses them locally and goes far with `ja`.
#[derive(Default)]
struct Asm {
    code: Vec<(BpfInsn, To, To)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }

    fn op(&mut self, code: u16, k: u32) {
        self.code.push((
            BpfInsn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            To::Next,
            To::Next,
        ));
    }

    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push((
            BpfInsn {
                code,
                jt: 0,
                jf: 0,
                k,
            },
            jt,
            jf,
        ));
    }

    fn ja(&mut self, l: Label) {
        self.jump(JA, 0, To::L(l), To::Next);
    }

    fn ret(&mut self, k: u32) {
        self.op(RET_K, k);
    }

    /// `if A == k goto l`, any distance.
    fn goto_if_eq(&mut self, k: u32, l: Label) {
        let skip = self.label();
        self.jump(JEQ_K, k, To::Next, To::L(skip));
        self.ja(l);
        self.bind(skip);
    }

    /// `if A != k goto l`, any distance.
    fn goto_if_ne(&mut self, k: u32, l: Label) {
        let skip = self.label();
        self.jump(JEQ_K, k, To::L(skip), To::Next);
        self.ja(l);
        self.bind(skip);
    }

    /// `if A & k != 0 goto l`, any distance.
    fn goto_if_set(&mut self, k: u32, l: Label) {
        let skip = self.label();
        self.jump(JSET_K, k, To::Next, To::L(skip));
        self.ja(l);
        self.bind(skip);
    }

    /// `if frame[at..at + 6] == mac goto l`.
    fn goto_if_mac(&mut self, at: u32, mac: [u8; 6], l: Label) {
        let skip = self.label();
        let hi = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let lo = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
        self.op(LD_W_ABS, at);
        self.jump(JEQ_K, hi, To::Next, To::L(skip));
        self.op(LD_H_ABS, at + 4);
        self.jump(JEQ_K, lo, To::Next, To::L(skip));
        self.ja(l);
        self.bind(skip);
    }

    fn finish(self) -> Result<Vec<BpfInsn>, FilterError> {
        let len = self.code.len();
        if len > MAX_INSNS {
            return Err(FilterError::TooLong { len });
        }
        let at = |to: To| match to {
            To::Next => None,
            To::L(l) => self.labels[l.0],
        };
        let mut out = Vec::with_capacity(len);
        for (i, (mut insn, jt, jf)) in self.code.iter().copied().enumerate() {
            let offset = |to: To| -> usize {
                match (to, at(to)) {
                    (To::Next, _) => 0,
                    (To::L(_), Some(target)) => {
                        // Invariant of the generator: labels are bound after their uses.
                        assert!(target > i, "backward or unbound jump in capture filter");
                        target - i - 1
                    }
                    (To::L(_), None) => panic!("unbound label in capture filter"),
                }
            };
            if insn.code == JA {
                insn.k = u32::try_from(offset(jt)).expect("a program is at most MAX_INSNS long");
            } else {
                let (t, f) = (offset(jt), offset(jf));
                // Invariant of the generator: conditional jumps stay local.
                insn.jt = u8::try_from(t).expect("conditional jump beyond 255 in capture filter");
                insn.jf = u8::try_from(f).expect("conditional jump beyond 255 in capture filter");
            }
            out.push(insn);
        }
        Ok(out)
    }
}

/// The capture filter for `point`. See the module documentation for what passes.
pub fn capture_filter(topo: &Topology, point: CapturePoint) -> Result<Vec<BpfInsn>, FilterError> {
    match point {
        CapturePoint::Trunk if !topo.has_trunk() => Err(FilterError::UnknownPoint(point)),
        CapturePoint::Trunk => trunk_filter(topo),
        CapturePoint::Segment(here) => {
            let seg = topo.segment(here).ok_or(FilterError::UnknownPoint(point))?;
            let mut a = Asm::default();
            let pass = a.label();
            let drop = a.label();
            let tagged = a.label();
            let arp = a.label();
            let ip4 = a.label();
            let ip6 = a.label();

            a.op(LD_W_ABS, AD_PKTTYPE);
            a.goto_if_eq(PACKET_OUTGOING, drop);
            a.goto_if_mac(ETH_SRC, seg.mac, pass);
            for mac in topo.other_router_macs(seg.mac) {
                a.goto_if_mac(ETH_SRC, mac, pass);
            }
            a.op(LD_W_ABS, AD_VLAN_TAG_PRESENT);
            a.goto_if_ne(0, tagged);
            a.op(LD_H_ABS, ETH_TYPE);
            for tpid in [TPID_8021Q, TPID_8021AD, TPID_QINQ] {
                a.goto_if_eq(u32::from(tpid), tagged);
            }
            a.goto_if_eq(0x0806, arp);
            a.goto_if_eq(0x0800, ip4);
            a.goto_if_eq(0x86dd, ip6);
            a.ja(drop);

            a.bind(tagged);
            a.ja(if seg.vlan.is_none() { pass } else { drop });

            // ARP: claims always; otherwise a foreign sender not talking to the router.
            a.bind(arp);
            a.op(LD_H_ABS, ARP_OP);
            a.goto_if_eq(2, pass);
            a.op(LD_W_ABS, ARP_TPA);
            a.op(TAX, 0);
            a.op(LD_W_ABS, ARP_SPA);
            let not_gratuitous = a.label();
            a.jump(JEQ_X, 0, To::Next, To::L(not_gratuitous));
            a.ja(pass);
            a.bind(not_gratuitous);
            for addr in topo.router_v4() {
                a.goto_if_eq(u32::from(addr), pass);
            }
            a.goto_if_mac(ETH_DST, seg.mac, drop);
            a.op(LD_W_ABS, ARP_SPA);
            foreign4(&mut a, topo, here, pass);
            a.ja(drop);

            // IP: foreign sources first (they need only the IP header, and a load past
            // the end of a short frame would end the program), then the transport.
            a.bind(ip4);
            let ip4_l4 = a.label();
            a.goto_if_mac(ETH_DST, seg.mac, ip4_l4);
            a.op(LD_W_ABS, IP4_SRC);
            foreign4(&mut a, topo, here, pass);
            a.bind(ip4_l4);
            a.op(LD_B_ABS, IP4_PROTO);
            a.goto_if_ne(17, drop);
            a.op(LD_H_ABS, IP4_FRAG);
            a.goto_if_set(0x1fff, drop);
            a.op(LDX_B_MSH, IP4_START);
            a.op(LD_H_IND, IP4_START);
            a.goto_if_ne(67, drop);
            a.op(LD_H_IND, IP4_START + 2);
            a.goto_if_eq(68, pass);
            a.ja(drop);

            a.bind(ip6);
            let ip6_l4 = a.label();
            a.goto_if_mac(ETH_DST, seg.mac, ip6_l4);
            for (id, other) in topo.segments() {
                if let (true, Some(net)) = (id != here, other.net6) {
                    prefix6(&mut a, net, pass);
                }
            }
            a.bind(ip6_l4);
            let icmp6 = a.label();
            let udp6 = a.label();
            a.op(LD_B_ABS, IP6_NEXT);
            a.goto_if_eq(58, icmp6);
            a.goto_if_eq(17, udp6);
            for ext in [0, 43, 44, 51, 60] {
                a.goto_if_eq(ext, pass);
            }
            a.ja(drop);
            a.bind(icmp6);
            a.op(LD_B_ABS, IP6_L4);
            for icmp_type in [134, 135, 136] {
                a.goto_if_eq(icmp_type, pass);
            }
            a.ja(drop);
            a.bind(udp6);
            a.op(LD_H_ABS, IP6_L4);
            a.goto_if_ne(547, drop);
            a.op(LD_H_ABS, IP6_L4 + 2);
            a.goto_if_eq(546, pass);
            a.ja(drop);

            a.bind(pass);
            a.ret(PASS);
            a.bind(drop);
            a.ret(0);
            a.finish()
        }
    }
}

/// `if A (an IPv4 address) is in another segment's subnet goto pass`; falls through.
fn foreign4(a: &mut Asm, topo: &Topology, here: SegmentId, pass: Label) {
    a.op(TAX, 0);
    for (id, other) in topo.segments() {
        if id != here {
            a.op(TXA, 0);
            a.op(AND_K, other.net4.mask);
            a.goto_if_eq(other.net4.network, pass);
        }
    }
}

/// `if IPv6 source in net goto pass`, comparing only the words the prefix covers.
fn prefix6(a: &mut Asm, net: Net6, pass: Label) {
    let next = a.label();
    for word in 0..4u32 {
        let shift = 96 - 32 * word;
        let mask = word_of(net.mask, shift);
        if mask == 0 {
            break;
        }
        a.op(LD_W_ABS, IP6_SRC + 4 * word);
        if mask != u32::MAX {
            a.op(AND_K, mask);
        }
        a.jump(JEQ_K, word_of(net.network, shift), To::Next, To::L(next));
    }
    a.ja(pass);
    a.bind(next);
}

/// The 32-bit word of an IPv6 address (as u128) that starts `shift` bits from the right.
fn word_of(addr: u128, shift: u32) -> u32 {
    u32::try_from((addr >> shift) & u128::from(u32::MAX)).expect("masked to 32 bits")
}

fn trunk_filter(topo: &Topology) -> Result<Vec<BpfInsn>, FilterError> {
    let mut a = Asm::default();
    let pass = a.label();
    let drop = a.label();
    let in_frame = a.label();
    let inner = a.label();

    a.op(LD_W_ABS, AD_PKTTYPE);
    a.goto_if_eq(PACKET_OUTGOING, drop);
    a.op(LD_W_ABS, AD_VLAN_TAG_PRESENT);
    a.goto_if_eq(0, in_frame);
    // The kernel holds the outer tag.
    a.op(LD_W_ABS, AD_VLAN_TPID);
    a.goto_if_ne(u32::from(TPID_8021Q), pass);
    a.op(LD_H_ABS, ETH_TYPE);
    for tpid in [TPID_8021Q, TPID_8021AD, TPID_QINQ] {
        a.goto_if_eq(u32::from(tpid), pass);
    }
    a.op(LD_W_ABS, AD_VLAN_TAG);
    a.op(AND_K, 0x0fff);
    for &vid in topo.vlans() {
        a.goto_if_eq(u32::from(vid), drop);
    }
    a.ja(pass);

    // The outer tag, if any, is still in the frame.
    a.bind(in_frame);
    a.op(LD_H_ABS, ETH_TYPE);
    a.goto_if_eq(u32::from(TPID_8021AD), pass);
    a.goto_if_eq(u32::from(TPID_QINQ), pass);
    a.goto_if_ne(u32::from(TPID_8021Q), drop);
    a.op(LD_H_ABS, ETH_TYPE + 2);
    a.op(AND_K, 0x0fff);
    for &vid in topo.vlans() {
        a.goto_if_eq(u32::from(vid), inner);
    }
    a.ja(pass);
    a.bind(inner);
    a.op(LD_H_ABS, ETH_TYPE + 4);
    for tpid in [TPID_8021Q, TPID_8021AD, TPID_QINQ] {
        a.goto_if_eq(u32::from(tpid), pass);
    }
    a.ja(drop);

    a.bind(pass);
    a.ret(PASS);
    a.bind(drop);
    a.ret(0);
    a.finish()
}

/// Packet metadata a classic BPF program can read besides the frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metadata {
    pub vlan_tci: Option<u16>,
    pub vlan_tpid: Option<u16>,
    /// The packet type (`PACKET_HOST` 0 by default, `PACKET_OUTGOING` for what the
    /// router sends).
    pub pkttype: u32,
}

/// Runs a program the way the kernel does for a packet socket (frame from the MAC
/// header; a load past the end returns 0, i.e. drops). Only the instructions this module
/// emits are implemented; any other returns 0. For tests and fuzzing: the kernel runs
/// the real thing.
pub fn run(program: &[BpfInsn], frame: &[u8], meta: Metadata) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut pc = 0usize;
    let load = |at: u32, size: usize| -> Option<u32> {
        if at >= SKF_AD_OFF {
            return match at {
                AD_VLAN_TAG_PRESENT => Some(u32::from(meta.vlan_tci.is_some())),
                AD_VLAN_TAG => Some(u32::from(meta.vlan_tci.unwrap_or(0))),
                AD_PKTTYPE => Some(meta.pkttype),
                AD_VLAN_TPID => Some(match meta.vlan_tci {
                    Some(_) => u32::from(meta.vlan_tpid.unwrap_or(TPID_8021Q)),
                    None => 0,
                }),
                _ => None,
            };
        }
        let start = usize::try_from(at).ok()?;
        let bytes = frame.get(start..start.checked_add(size)?)?;
        Some(bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
    };
    // Every instruction moves forward, so this terminates within program.len() steps.
    while let Some(insn) = program.get(pc) {
        pc += 1;
        let k = insn.k;
        let cond = |taken: bool| {
            if taken {
                usize::from(insn.jt)
            } else {
                usize::from(insn.jf)
            }
        };
        match insn.code {
            LD_W_ABS | LD_H_ABS | LD_B_ABS => {
                let size = match insn.code {
                    LD_W_ABS => 4,
                    LD_H_ABS => 2,
                    _ => 1,
                };
                match load(k, size) {
                    Some(v) => a = v,
                    None => return 0,
                }
            }
            LD_H_IND => match load(x.wrapping_add(k), 2) {
                Some(v) if x.checked_add(k).is_some() => a = v,
                _ => return 0,
            },
            LDX_B_MSH => match load(k, 1) {
                Some(v) => x = (v & 0x0f) * 4,
                None => return 0,
            },
            AND_K => a &= k,
            TAX => x = a,
            TXA => a = x,
            JA => pc += k as usize,
            JEQ_K => pc += cond(a == k),
            JEQ_X => pc += cond(a == x),
            JSET_K => pc += cond(a & k != 0),
            RET_K => return k,
            _ => return 0,
        }
    }
    0
}

/// Checks what the kernel's classic BPF checker checks that our generator could get
/// wrong: length, known opcodes, jumps inside the program, and a `ret` at the end.
pub fn check(program: &[BpfInsn]) -> Result<(), String> {
    if program.is_empty() || program.len() > MAX_INSNS {
        return Err(format!("length {}", program.len()));
    }
    for (i, insn) in program.iter().enumerate() {
        let rest = program.len() - i - 1;
        match insn.code {
            JA if (insn.k as usize) >= rest => return Err(format!("{i}: ja out of range")),
            JEQ_K | JEQ_X | JSET_K
                if usize::from(insn.jt) >= rest || usize::from(insn.jf) >= rest =>
            {
                return Err(format!("{i}: jump out of range"));
            }
            LD_W_ABS | LD_H_ABS | LD_B_ABS | LD_H_IND | LDX_B_MSH | AND_K | TAX | TXA | JA
            | JEQ_K | JEQ_X | JSET_K | RET_K => {}
            other => return Err(format!("{i}: unexpected opcode {other:#x}")),
        }
    }
    match program.last() {
        Some(insn) if insn.code == RET_K => Ok(()),
        _ => Err("does not end with ret".into()),
    }
}
