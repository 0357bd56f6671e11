//! The `capture` target: what the daemon's capture thread does with what a packet socket
//! hands it, minus the socket. Input: records of `[point, status, TCI (2), TPID (2),
//! length (2), frame]`; `point` picks a capture point of the lab or the trunk topology,
//! `status` bit 0 is the kernel's `TP_STATUS_VLAN_VALID` and bit 1
//! `TP_STATUS_VLAN_TPID_VALID`; the tag is read from them by `cloison::capture::aux_vlan`
//! as the socket does, and the frame cut to the daemon's 2048-byte buffer. Each frame
//! is classified; what is reported must pass the capture filter, and is folded into
//! journal entries per topology. Properties: nothing panics; the filter passes every
//! finding; the entries account for exactly the frames found, per kind, within the
//! bound.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use cloison_core::alert::counter_backed;
use cloison_core::alert::event::{EventKind, FlowKey};
use cloison_core::config::Config;
use cloison_core::inspect::classify;
use cloison_core::inspect::filter::{Metadata, run};

use crate::Setup;

/// The capture thread's frame buffer (daemon/sources.rs).
pub const FRAME_BUFFER: usize = 2048;
/// Bytes before each frame.
pub const RECORD_HEADER: usize = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

fn configs() -> &'static [Config; 2] {
    static CONFIGS: OnceLock<[Config; 2]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        [
            cloison_core::testkit::lab_config(),
            cloison_core::testkit::trunk_config(),
        ]
    })
}

/// One record: the capture point, the auxdata's status bits, TCI and TPID, the frame.
pub fn record(point: u8, status: u8, tci: u16, tpid: u16, frame: &[u8]) -> Vec<u8> {
    let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
    let mut out = vec![point, status];
    out.extend_from_slice(&tci.to_be_bytes());
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame[..usize::from(len)]);
    out
}

pub fn check(mut data: &[u8]) {
    let setup = Setup::get();
    let mut keys: [Vec<FlowKey>; 2] = Default::default();
    while let Some(header) = data.get(..RECORD_HEADER) {
        let point = setup.point(header[0]);
        let mut status = 0;
        if header[1] & 1 != 0 {
            status |= TP_STATUS_VLAN_VALID;
        }
        if header[1] & 2 != 0 {
            status |= TP_STATUS_VLAN_TPID_VALID;
        }
        let tci = u16::from_be_bytes([header[2], header[3]]);
        let tpid = u16::from_be_bytes([header[4], header[5]]);
        let len = usize::from(u16::from_be_bytes([header[6], header[7]]));
        let rest = &data[RECORD_HEADER..];
        let (frame, next) = rest.split_at(len.min(rest.len()));
        data = next;
        let frame = &frame[..frame.len().min(FRAME_BUFFER)];

        let aux = cloison::capture::aux_vlan(status, tci, tpid);
        let ctx = setup
            .context(point)
            .with_aux(aux.map(|(tci, _)| tci), aux.map(|(_, tpid)| tpid));
        if let Some(finding) = classify(frame, &ctx) {
            // The capture drops what the router sends before classify: a received frame.
            let meta = Metadata {
                vlan_tci: ctx.aux_vlan,
                vlan_tpid: ctx.aux_tpid,
                pkttype: 0,
            };
            assert_ne!(
                run(&point.filter, frame, meta),
                0,
                "the capture filter drops a frame classify reports: {finding:?}"
            );
            keys[point.topology].push(finding.flow_key());
        }
    }
    for (config, keys) in configs().iter().zip(&keys) {
        if keys.is_empty() {
            continue;
        }
        let mut folder = crate::fold::folder(config);
        crate::fold::fold(&mut folder, keys, &[]);
        let mut found: BTreeMap<EventKind, u64> = BTreeMap::new();
        for k in keys.iter().filter(|k| !counter_backed(k.kind)) {
            *found.entry(k.kind).or_default() += 1;
        }
        let stats = folder.stats();
        for (kind, n) in found {
            let counted = stats.kinds.get(&kind).map_or(0, |c| c.counted);
            assert_eq!(counted, n, "{kind}: every frame found is counted");
        }
    }
}
