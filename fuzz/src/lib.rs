//! cloison's fuzz targets (docs/robustness.md): each `fuzz_targets/<name>.rs` calls
//! `<name>::check`, where the input format and the properties checked are written down,
//! so the seed writer and the regression tests call the same code. `classify` is here:
//! how fuzz input bytes map to a capture context and a frame, for `classify` and
//! `capture`.

pub mod capture;
pub mod config;
pub mod control;
mod fold;
pub mod journal;
pub mod nflog;
pub mod ring;

use std::sync::OnceLock;

use cloison_core::inspect::filter::{Metadata, run};
use cloison_core::inspect::{BpfInsn, CaptureContext, Topology, capture_filter, classify};
use cloison_core::testkit as fixtures;

/// Bytes before the frame: capture point, metadata flags, TCI (2), TPID (2).
pub const HEADER_LEN: usize = 6;

pub struct Point {
    /// Index in `Setup`'s topologies: the lab's (0) or the trunk's (1).
    pub topology: usize,
    pub ifindex: u32,
    pub filter: Vec<BpfInsn>,
}

pub struct Setup {
    topologies: [Topology; 2],
    points: Vec<Point>,
}

impl Setup {
    fn new() -> Setup {
        let topologies = [fixtures::lab_topology(), fixtures::trunk_topology()];
        let mut points = Vec::new();
        for (i, t) in topologies.iter().enumerate() {
            for (point, ifindex) in t.capture_points() {
                let filter = capture_filter(t, point).expect("fixture filters build");
                points.push(Point {
                    topology: i,
                    ifindex,
                    filter,
                });
            }
        }
        Setup { topologies, points }
    }

    pub fn get() -> &'static Setup {
        static SETUP: OnceLock<Setup> = OnceLock::new();
        SETUP.get_or_init(Setup::new)
    }

    pub fn points(&self) -> usize {
        self.points.len()
    }

    /// The capture point a fuzz byte picks.
    pub fn point(&self, byte: u8) -> &Point {
        &self.points[usize::from(byte) % self.points.len()]
    }

    /// The capture context of `point`, without a tag in packet metadata.
    pub fn context(&self, point: &Point) -> CaptureContext<'_> {
        self.topologies[point.topology]
            .context(point.ifindex)
            .expect("fixture points are capture points")
    }
}

/// Splits fuzz input into a context and a frame. Byte 0 picks the capture point; byte 1
/// bit 0 says whether the kernel holds a tag (TCI in bytes 2..4), bits 1..2 its TPID
/// (unknown, 0x8100, 0x88a8, or bytes 4..6).
pub fn split(data: &[u8]) -> Option<(&'static Point, CaptureContext<'static>, &[u8])> {
    let setup = Setup::get();
    let header = data.get(..HEADER_LEN)?;
    let frame = data.get(HEADER_LEN..)?;
    let point = setup.point(header[0]);
    let flags = header[1];
    let tci = u16::from_be_bytes([header[2], header[3]]);
    let raw_tpid = u16::from_be_bytes([header[4], header[5]]);
    let aux_vlan = (flags & 1 != 0).then_some(tci);
    let aux_tpid = match (flags >> 1) & 3 {
        0 => None,
        1 => Some(0x8100),
        2 => Some(0x88a8),
        _ => Some(raw_tpid),
    };
    let ctx = setup.context(point).with_aux(aux_vlan, aux_tpid);
    Some((point, ctx, frame))
}

/// The property fuzzed: classify returns (no panic), and the capture filter passes
/// every frame it reports.
pub fn check(data: &[u8]) {
    let Some((point, ctx, frame)) = split(data) else {
        return;
    };
    if let Some(f) = classify(frame, &ctx) {
        let _ = f.flow_key();
        // What the router sends never reaches classify (the capture drops it by
        // direction): a received frame.
        let meta = Metadata {
            vlan_tci: ctx.aux_vlan,
            vlan_tpid: ctx.aux_tpid,
            pkttype: 0,
        };
        assert_ne!(
            run(&point.filter, frame, meta),
            0,
            "the capture filter drops a frame classify reports: {f:?}"
        );
    }
}
