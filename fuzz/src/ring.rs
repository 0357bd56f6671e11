//! The `ring` target: the capture ring's block walk (`cloison::capture::ring::read_block`),
//! the only code that reads memory the kernel shares with the daemon. The first byte
//! picks the input's meaning:
//! - even: the rest is one block as the kernel could hand it over, however corrupt
//!   (packet count, first offset, `tp_next`, `tp_mac`, `tp_snaplen` all from the input).
//!   Properties: nothing panics; the walk reports at most the block's packet count, and
//!   every frame it reports lies inside the block.
//! - odd: the rest is records `[status, TCI (2), TPID (2), pkttype, padding, length (2),
//!   frame]`, laid out here as `<linux/if_packet.h>` says the kernel lays out a
//!   `TPACKET_V3` block (this module's own writer, independent of the reader's
//!   constants). Property: the walk gives back exactly those frames, in order, each with
//!   the tag `cloison::capture::aux_vlan` reads from its status bits, its wire length and
//!   its packet type.

use cloison::capture::ring::read_block;
use cloison::capture::{FrameMeta, aux_vlan};

/// `struct tpacket_block_desc`: version, offset_to_priv, then `tpacket_hdr_v1`
/// (block_status at 8, num_pkts at 12, offset_to_first_pkt at 16, ...), 48 bytes.
const DESC_LEN: usize = 48;
/// `struct tpacket3_hdr` (40 bytes, aligned to 48) then `struct sockaddr_ll` (20 bytes).
const HDR_AND_SLL: usize = 48 + 20;
const TPACKET_ALIGN: usize = 16;
/// The kernel's status bits for a tag in the header.
const VLAN_VALID: u8 = 1 << 4;
const VLAN_TPID_VALID: u8 = 1 << 6;
const RECORD_HEADER: usize = 9;
/// Frames never exceed the daemon's frame slot.
const MAX_FRAME: usize = 2048;

pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        corrupt_block(rest);
    } else {
        laid_out_block(rest);
    }
}

fn corrupt_block(block: &[u8]) {
    let count = block
        .get(12..16)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")));
    let range = block.as_ptr_range();
    let mut seen = 0usize;
    let read = read_block(block, &mut |frame, _meta| {
        let inside = frame.is_empty()
            || (range.start <= frame.as_ptr() && frame.as_ptr_range().end <= range.end);
        assert!(inside, "a frame outside the block");
        seen += 1;
    });
    assert_eq!(read, seen, "the walk's count is not the frames it gave");
    assert!(
        read as u64 <= u64::from(count),
        "more frames than the block holds"
    );
}

/// A frame laid out in a block, and what the walk must report with it.
pub struct Expected {
    pub frame: Vec<u8>,
    pub meta: FrameMeta,
}

/// Lays records out as the kernel does, and returns the block with what it holds.
pub fn lay_out(records: &[u8]) -> (Vec<u8>, Vec<Expected>) {
    let mut block = vec![0u8; DESC_LEN];
    let mut expected = Vec::new();
    let mut headers = Vec::new();
    let mut rest = records;
    while rest.len() >= RECORD_HEADER {
        let (h, tail) = rest.split_at(RECORD_HEADER);
        let status = h[0] & (VLAN_VALID | VLAN_TPID_VALID);
        let tci = u16::from_be_bytes([h[1], h[2]]);
        let tpid = u16::from_be_bytes([h[3], h[4]]);
        let pkttype = h[5];
        let padding = usize::from(h[6] % 4) * TPACKET_ALIGN;
        let len = usize::from(u16::from_be_bytes([h[7], h[8]])) % (MAX_FRAME + 1);
        let len = len.min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        let at = block.len();
        let mac = (HDR_AND_SLL.div_ceil(TPACKET_ALIGN) * TPACKET_ALIGN) + padding;
        let size = (mac + frame.len()).div_ceil(TPACKET_ALIGN) * TPACKET_ALIGN;
        block.resize(at + size, 0);
        let put = |b: &mut Vec<u8>, off: usize, v: &[u8]| {
            b[at + off..at + off + v.len()].copy_from_slice(v)
        };
        let snaplen = u32::try_from(frame.len()).expect("short frame");
        // The wire length may exceed what was captured; record a longer one sometimes.
        let wire = snaplen + u32::from(h[6] / 4);
        put(&mut block, 12, &snaplen.to_ne_bytes());
        put(&mut block, 16, &wire.to_ne_bytes());
        put(&mut block, 20, &(1u32 | u32::from(status)).to_ne_bytes());
        put(
            &mut block,
            24,
            &u16::try_from(mac).expect("small").to_ne_bytes(),
        );
        put(&mut block, 32, &u32::from(tci).to_ne_bytes());
        put(&mut block, 36, &tpid.to_ne_bytes());
        put(&mut block, 48 + 10, &[pkttype]);
        put(&mut block, mac, frame);
        headers.push((at, size));
        expected.push(Expected {
            frame: frame.to_vec(),
            meta: FrameMeta {
                aux_vlan: aux_vlan(u32::from(status), tci, tpid),
                wire_len: wire as usize,
                pkttype,
            },
        });
    }
    for (k, &(at, size)) in headers.iter().enumerate() {
        let next = if k + 1 == headers.len() { 0 } else { size };
        let next = u32::try_from(next).expect("small");
        block[at..at + 4].copy_from_slice(&next.to_ne_bytes());
    }
    let count = u32::try_from(expected.len()).expect("few frames");
    block[12..16].copy_from_slice(&count.to_ne_bytes());
    block[16..20].copy_from_slice(&(DESC_LEN as u32).to_ne_bytes());
    (block, expected)
}

fn laid_out_block(records: &[u8]) {
    let (block, expected) = lay_out(records);
    let mut got: Vec<Expected> = Vec::new();
    let read = read_block(&block, &mut |frame, meta| {
        got.push(Expected {
            frame: frame.to_vec(),
            meta,
        })
    });
    assert_eq!(read, expected.len(), "frames lost or invented");
    assert_eq!(got.len(), expected.len());
    for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g.frame, e.frame, "frame {k}: other bytes");
        assert_eq!(g.meta.aux_vlan, e.meta.aux_vlan, "frame {k}: other tag");
        assert_eq!(g.meta.wire_len, e.meta.wire_len, "frame {k}: other length");
        assert_eq!(g.meta.pkttype, e.meta.pkttype, "frame {k}: other type");
    }
}
