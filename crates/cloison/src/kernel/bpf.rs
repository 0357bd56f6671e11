//! The two tiny eBPF programs `cloison verify` attaches with tc (cls_bpf, direct action),
//! written as instructions here and loaded with the bpf(2) system call: no compiler, no
//! object file, no map.
//!
//! - `into_segment`, on the ingress of the probe host's veth: a frame addressed to the
//!   segment interface's MAC gets the verify mark and is redirected into that
//!   interface's ingress, so the router receives it exactly as from a host of the
//!   segment (same input interface, same routing, same rules); anything else the probe
//!   host sends (multicast listener reports, a stray ARP) is dropped.
//! - `to_probe`, on the egress of the segment interface: a frame addressed to the probe
//!   host's MAC is redirected to the veth, toward the probe host, instead of going out
//!   on the wire; everything else goes on untouched (`TC_ACT_UNSPEC`).
//!
//! `bpf_redirect` keeps the mark within a network namespace, and the NFLOG messages of
//! the ruleset carry it: that is how the daemon tells probes from attacks.

use std::os::fd::{FromRawFd, OwnedFd};

/// The name the filters carry (`tc filter show` lists it): how a later run finds what a
/// killed one left.
pub const FILTER_NAME: &str = "cloison-verify";

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("the kernel refused the verify probe's eBPF program ({errno}); verifier log: {log}")]
    Load {
        #[source]
        errno: std::io::Error,
        log: String,
    },
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy)]
#[repr(C)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const BPF_LDX: u8 = 0x01;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_JMP32: u8 = 0x06;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_H: u8 = 0x08;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_ADD: u8 = 0x00;
const BPF_MOV: u8 = 0xb0;
const BPF_JGT: u8 = 0x20;
const BPF_JNE: u8 = 0x50;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;

/// `bpf_redirect(ifindex, flags)`.
const FUNC_REDIRECT: i32 = 23;
/// Into the target's ingress rather than out of it.
const BPF_F_INGRESS: i32 = 1;
const TC_ACT_UNSPEC: i32 = -1;
const TC_ACT_SHOT: i32 = 2;
const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
const BPF_PROG_LOAD: libc::c_long = 5;

/// `struct __sk_buff` offsets.
const SKB_MARK: i16 = 8;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// What a program does with the frames it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    /// Frames whose destination MAC is this one...
    pub match_dst: [u8; 6],
    /// ...get this mark (if any)...
    pub mark: Option<u32>,
    /// ...and go to this interface,
    pub ifindex: u32,
    /// into its ingress (else out of it).
    pub ingress: bool,
    /// The others are dropped (else left alone).
    pub drop_others: bool,
}

fn bits(x: u32) -> i32 {
    i32::from_ne_bytes(x.to_ne_bytes())
}

/// The program's instructions.
fn program(r: &Redirect) -> Vec<Insn> {
    let mac_lo = bits(u32::from_le_bytes([
        r.match_dst[0],
        r.match_dst[1],
        r.match_dst[2],
        r.match_dst[3],
    ]));
    let mac_hi = i32::from(u16::from_le_bytes([r.match_dst[4], r.match_dst[5]]));
    let mut p = vec![
        // r6 = skb; r2 = data; r3 = data_end
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),
        insn(BPF_LDX | BPF_W | BPF_MEM, 2, 6, SKB_DATA, 0),
        insn(BPF_LDX | BPF_W | BPF_MEM, 3, 6, SKB_DATA_END, 0),
        // if data + 6 > data_end: miss
        insn(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0),
        insn(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 6),
        insn(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 0, 0), // offset patched below
        // destination MAC, 4 then 2 bytes
        insn(BPF_LDX | BPF_W | BPF_MEM, 5, 2, 0, 0),
        insn(BPF_JMP32 | BPF_JNE | BPF_K, 5, 0, 0, mac_lo), // patched
        insn(BPF_LDX | BPF_H | BPF_MEM, 5, 2, 4, 0),
        insn(BPF_JMP32 | BPF_JNE | BPF_K, 5, 0, 0, mac_hi), // patched
    ];
    if let Some(mark) = r.mark {
        p.push(insn(BPF_ALU | BPF_MOV | BPF_K, 7, 0, 0, bits(mark)));
        p.push(insn(BPF_STX | BPF_W | BPF_MEM, 6, 7, SKB_MARK, 0));
    }
    p.push(insn(BPF_ALU | BPF_MOV | BPF_K, 1, 0, 0, bits(r.ifindex)));
    p.push(insn(
        BPF_ALU64 | BPF_MOV | BPF_K,
        2,
        0,
        0,
        if r.ingress { BPF_F_INGRESS } else { 0 },
    ));
    p.push(insn(BPF_JMP | BPF_CALL, 0, 0, 0, FUNC_REDIRECT));
    p.push(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    let miss = p.len();
    p.push(insn(
        BPF_ALU64 | BPF_MOV | BPF_K,
        0,
        0,
        0,
        if r.drop_others {
            TC_ACT_SHOT
        } else {
            TC_ACT_UNSPEC
        },
    ));
    p.push(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    for at in [5usize, 7, 9] {
        // A jump's offset counts from the next instruction.
        p[at].off = i16::try_from(miss - at - 1).expect("a short program");
    }
    p
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads the program; its file descriptor is what the tc filter takes.
pub fn load(r: &Redirect) -> Result<OwnedFd, BpfError> {
    let insns = program(r);
    // bpf_redirect is not a GPL-only helper: the project's own licence will do.
    let license = c"EUPL-1.2";
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..13].copy_from_slice(b"cloison_verif");
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: u32::try_from(insns.len()).expect("a short program"),
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: u32::try_from(log.len()).expect("64 KiB"),
        log_buf: log.as_mut_ptr() as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name: name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // SAFETY: `attr` and the buffers it points to outlive the call; the kernel reads
    // `size_of::<ProgLoadAttr>()` bytes of it and writes at most `log_size` into `log`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        let errno = std::io::Error::last_os_error();
        let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
        return Err(BpfError::Load {
            errno,
            log: String::from_utf8_lossy(&log[..end]).trim().to_owned(),
        });
    }
    let fd = i32::try_from(fd).expect("a file descriptor fits an int");
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jumps_land_on_the_miss_branch() {
        for mark in [None, Some(0x0c10_5e00)] {
            let p = program(&Redirect {
                match_dst: [0x02, 0xc1, 0x05, 0, 1, 2],
                mark,
                ifindex: 7,
                ingress: true,
                drop_others: true,
            });
            let miss = p.len() - 2;
            for at in [5usize, 7, 9] {
                let target = at + 1 + usize::try_from(p[at].off).unwrap();
                assert_eq!(target, miss);
            }
            assert_eq!(p[miss].imm, TC_ACT_SHOT);
            assert_eq!(p.last().unwrap().code, BPF_JMP | BPF_EXIT);
        }
    }

    #[test]
    fn the_mac_is_compared_in_memory_order() {
        let p = program(&Redirect {
            match_dst: [0x02, 0xc1, 0x05, 0xaa, 0xbb, 0xcc],
            mark: None,
            ifindex: 1,
            ingress: false,
            drop_others: false,
        });
        assert_eq!(p[7].imm.to_le_bytes(), [0x02, 0xc1, 0x05, 0xaa]);
        assert_eq!(p[9].imm, 0xccbb);
        assert_eq!(p[p.len() - 2].imm, TC_ACT_UNSPEC);
    }
}
