//! The capture's ring: a `PACKET_RX_RING` of version 3 (`TPACKET_V3`) shared with the
//! kernel, read in blocks. Where a plain packet socket costs one `recvmsg` (and a copy)
//! per frame, the kernel writes frames one after the other into a block and hands the
//! block over when it is full or `RETIRE_MS` after its first frame; the loop reads every
//! frame of a block in place, without a system call, and gives the block back. Under a
//! layer-2 flood, that is one wake-up for hundreds of frames.
//!
//! Same socket as `CaptureSocket` otherwise (kernel filter attached before the bind, no
//! outgoing frames, promiscuous, drops counted by `PACKET_STATISTICS`). The layout of the
//! kernel's headers is read at fixed offsets from `<linux/if_packet.h>` (stable ABI), each
//! read bounds-checked against the block: a corrupt offset ends the block, it never reads
//! outside the mapping.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use cloison_core::inspect::BpfInsn;

use super::{
    FrameMeta, SocketStats, TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_VALID, add_stats, aux_vlan,
    packet_socket, setsockopt,
};

const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// One block: 128 KiB holds about a thousand small frames.
pub const BLOCK_SIZE: usize = 128 << 10;
/// Blocks in the ring: 1 MiB in all per interface, mapped in the daemon (its RSS counts
/// it), about 8,000 small frames of slack while the loop is busy.
pub const BLOCKS: usize = 8;
/// A block with at least one frame is handed over at the latest this long after it.
pub const RETIRE_MS: u32 = 50;
/// The frame slot size the kernel asks for (version 3 packs frames; it only checks it).
const FRAME_SIZE: usize = 2048;

/// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then `tpacket_hdr_v1`).
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
/// Offsets in `struct tpacket3_hdr`.
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_STATUS: usize = 20;
const H_MAC: usize = 24;
const H_VLAN_TCI: usize = 32;
const H_VLAN_TPID: usize = 36;
/// `sockaddr_ll` follows the header at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) = 48;
/// `sll_pkttype` is its byte 10.
const H_PKTTYPE: usize = 48 + 10;

#[repr(C)]
struct TpacketReq3 {
    tp_block_size: u32,
    tp_block_nr: u32,
    tp_frame_size: u32,
    tp_frame_nr: u32,
    tp_retire_blk_tov: u32,
    tp_sizeof_priv: u32,
    tp_feature_req_word: u32,
}

/// The shared mapping, unmapped on drop.
struct Mapping {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with the kernel; the ring that owns it is
// used by one thread at a time (it moves into the capture thread).
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base and len are those mmap returned; nothing borrows the mapping past
        // the ring's life.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// A capture socket read through a `TPACKET_V3` ring.
pub struct CaptureRing {
    // Field order: the mapping is unmapped before the socket closes.
    map: Mapping,
    fd: OwnedFd,
    pub ifindex: u32,
    pub ifname: String,
    /// The block the kernel fills next and the loop reads next.
    next: usize,
    stats: SocketStats,
}

impl AsRawFd for CaptureRing {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl CaptureRing {
    /// Opens a ring on `ifname` that passes only what `filter` accepts.
    pub fn open(ifname: &str, ifindex: u32, filter: &[BpfInsn]) -> io::Result<CaptureRing> {
        let req = TpacketReq3 {
            tp_block_size: u32::try_from(BLOCK_SIZE).expect("128 KiB"),
            tp_block_nr: u32::try_from(BLOCKS).expect("8"),
            tp_frame_size: u32::try_from(FRAME_SIZE).expect("2048"),
            tp_frame_nr: u32::try_from(BLOCK_SIZE / FRAME_SIZE * BLOCKS).expect("512"),
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        let fd = packet_socket(ifindex, filter, |fd| {
            setsockopt(fd, libc::SOL_PACKET, PACKET_VERSION, &TPACKET_V3)?;
            setsockopt(fd, libc::SOL_PACKET, PACKET_RX_RING, &req)
        })?;
        let len = BLOCK_SIZE * BLOCKS;
        // SAFETY: mapping the ring the kernel just allocated for this socket, of the size
        // it was asked for; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(CaptureRing {
            map: Mapping {
                base: base.cast(),
                len,
            },
            fd,
            ifindex,
            ifname: ifname.to_owned(),
            next: 0,
            stats: SocketStats::default(),
        })
    }

    /// The status word of block `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block i lies inside the mapping (i < BLOCKS), the word is 4-aligned
        // (blocks are page-aligned) and the kernel only ever accesses it atomically in
        // spirit (it writes it last when handing the block over, reads it to take it back).
        unsafe { AtomicU32::from_ptr(self.map.base.add(i * BLOCK_SIZE + BLOCK_STATUS).cast()) }
    }

    /// Reads every frame of the next block, if the kernel has handed it over, into `f`,
    /// then gives the block back. Returns the number of frames read (0: no block ready).
    pub fn next_block(&mut self, mut f: impl FnMut(&[u8], FrameMeta)) -> usize {
        let i = self.next;
        if self.status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return 0;
        }
        // SAFETY: the block is the loop's until its status is set back to the kernel's
        // below; it lies inside the mapping.
        let block =
            unsafe { std::slice::from_raw_parts(self.map.base.add(i * BLOCK_SIZE), BLOCK_SIZE) };
        let frames = read_block(block, &mut f);
        self.status(i).store(TP_STATUS_KERNEL, Ordering::Release);
        self.next = (i + 1) % BLOCKS;
        frames
    }

    /// The kernel's counters (reading resets them in the kernel; they are kept here).
    pub fn stats(&mut self) -> SocketStats {
        add_stats(&self.fd, &mut self.stats);
        self.stats
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The frames of one block handed over by the kernel, each with what its header says.
/// Pure (a block is bytes): every offset is checked against the block, and a header that
/// points outside it ends the walk.
pub fn read_block(block: &[u8], f: &mut impl FnMut(&[u8], FrameMeta)) -> usize {
    let (Some(n), Some(first)) = (u32_at(block, BLOCK_NUM_PKTS), u32_at(block, BLOCK_FIRST)) else {
        return 0;
    };
    let mut at = first as usize;
    let mut read = 0;
    for _ in 0..n {
        let Some(h) = block.get(at..) else {
            break;
        };
        let (Some(next), Some(snaplen), Some(len), Some(status), Some(mac)) = (
            u32_at(h, H_NEXT),
            u32_at(h, H_SNAPLEN),
            u32_at(h, H_LEN),
            u32_at(h, H_STATUS),
            u16_at(h, H_MAC),
        ) else {
            break;
        };
        let (Some(tci), Some(tpid), Some(&pkttype)) = (
            u32_at(h, H_VLAN_TCI),
            u16_at(h, H_VLAN_TPID),
            h.get(H_PKTTYPE),
        ) else {
            break;
        };
        let start = usize::from(mac);
        let Some(frame) = h.get(start..start.saturating_add(snaplen as usize)) else {
            break;
        };
        let tci = u16::try_from(tci & 0xffff).unwrap_or(0);
        let status = status & (TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID);
        f(
            frame,
            FrameMeta {
                aux_vlan: aux_vlan(status, tci, tpid),
                wire_len: len as usize,
                pkttype,
            },
        );
        read += 1;
        if next == 0 {
            break;
        }
        at = at.saturating_add(next as usize);
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block as the kernel lays it out: `frames` after a 48-byte descriptor, each with
    /// its header, sockaddr_ll, and the frame at tp_mac, 16-aligned.
    fn block(frames: &[(&[u8], u32, u16, u16, u8)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        let first = 48usize;
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4]
            .copy_from_slice(&u32::try_from(frames.len()).unwrap().to_ne_bytes());
        b[BLOCK_FIRST..BLOCK_FIRST + 4]
            .copy_from_slice(&u32::try_from(first).unwrap().to_ne_bytes());
        let mut at = first;
        for (k, (frame, status, tci, tpid, pkttype)) in frames.iter().enumerate() {
            let mac = 48 + 32; // header, sockaddr_ll, padding
            let size = (mac + frame.len()).div_ceil(16) * 16;
            let next = if k + 1 == frames.len() { 0 } else { size };
            let put = |b: &mut Vec<u8>, off: usize, v: &[u8]| {
                b[at + off..at + off + v.len()].copy_from_slice(v)
            };
            put(&mut b, H_NEXT, &u32::try_from(next).unwrap().to_ne_bytes());
            put(
                &mut b,
                H_SNAPLEN,
                &u32::try_from(frame.len()).unwrap().to_ne_bytes(),
            );
            put(
                &mut b,
                H_LEN,
                &u32::try_from(frame.len()).unwrap().to_ne_bytes(),
            );
            put(&mut b, H_STATUS, &status.to_ne_bytes());
            put(&mut b, H_MAC, &u16::try_from(mac).unwrap().to_ne_bytes());
            put(&mut b, H_VLAN_TCI, &u32::from(*tci).to_ne_bytes());
            put(&mut b, H_VLAN_TPID, &tpid.to_ne_bytes());
            put(&mut b, H_PKTTYPE, &[*pkttype]);
            put(&mut b, mac, frame);
            at += size;
        }
        b
    }

    #[test]
    fn a_block_gives_each_frame_with_its_tag_and_direction() {
        let b = block(&[
            (b"first frame bytes", 0, 0, 0, 0),
            (
                b"tagged",
                TP_STATUS_USER | TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID,
                20,
                0x88a8,
                3,
            ),
        ]);
        let mut got = Vec::new();
        let n = read_block(&b, &mut |f, m| got.push((f.to_vec(), m)));
        assert_eq!(n, 2);
        assert_eq!(got[0].0, b"first frame bytes");
        assert_eq!(got[0].1.aux_vlan, None);
        assert_eq!(got[1].0, b"tagged");
        assert_eq!(got[1].1.aux_vlan, Some((20, 0x88a8)));
        assert_eq!(got[1].1.pkttype, 3);
        assert_eq!(got[1].1.wire_len, 6);
    }

    #[test]
    fn a_corrupt_block_ends_the_walk_inside_the_block() {
        let mut b = block(&[(b"ok", 0, 0, 0, 0), (b"second", 0, 0, 0, 0)]);
        // The count says three; the second header's frame offset points past the block.
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&3u32.to_ne_bytes());
        let second = 48 + (48 + 32 + 2usize).div_ceil(16) * 16;
        b[second + H_MAC..second + H_MAC + 2].copy_from_slice(&0xfff0u16.to_ne_bytes());
        let mut got = 0;
        assert_eq!(read_block(&b, &mut |_, _| got += 1), 1);
        // A first-frame offset outside the block reads nothing.
        b[BLOCK_FIRST..BLOCK_FIRST + 4].copy_from_slice(&1_000_000u32.to_ne_bytes());
        assert_eq!(read_block(&b, &mut |_, _| got += 1), 0);
        assert_eq!(read_block(&[0u8; 3], &mut |_, _| got += 1), 0);
    }
}
