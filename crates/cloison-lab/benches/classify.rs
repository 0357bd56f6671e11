//! Cost of `classify` per frame, on the frames a capture socket sees most, and proof that
//! it does not allocate. Plain `Instant` timing (no bench framework); run with
//! `cargo bench --bench classify` (needs `[[bench]] name = "classify"`, `harness = false`
//! in Cargo.toml).

// Benchmarks do FFI (mmsghdr, sockaddr) and measurement arithmetic on small counts,
// where the cast lints the product follows add noise, not safety; they do not ship.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::hint::black_box;
use std::time::Instant;

use cloison_core::inspect::{CaptureContext, Topology, classify};
use cloison_lab::frames::*;

const ITERATIONS: u32 = 5_000_000;

/// A frame and where it was captured.
type Sample<'a> = (&'a [u8], CaptureContext<'a>);

/// Runs `classify` on `frames` round-robin; returns ns per frame and the number of
/// findings (so the work cannot be optimised away).
fn measure(frames: &[Sample<'_>]) -> (f64, usize) {
    let mut found = 0usize;
    // Warm up caches and branch predictors.
    for (frame, ctx) in frames.iter().cycle().take(100_000) {
        found += usize::from(classify(black_box(frame), black_box(ctx)).is_some());
    }
    let before = counting_alloc::allocations();
    let start = Instant::now();
    for (frame, ctx) in frames.iter().cycle().take(ITERATIONS as usize) {
        found += usize::from(black_box(classify(black_box(frame), black_box(ctx))).is_some());
    }
    let elapsed = start.elapsed();
    let allocations = counting_alloc::allocations() - before;
    assert_eq!(allocations, 0, "classify allocated");
    (elapsed.as_nanos() as f64 / f64::from(ITERATIONS), found)
}

fn main() {
    let lab = lab_topology();
    let trunk = trunk_topology();
    fn port(t: &Topology, ifindex: u32) -> CaptureContext<'_> {
        t.context(ifindex).expect("fixture capture point")
    }
    let kiosk = port(&lab, IFINDEX_SEG_KIOSK);
    let lan0 = port(&trunk, IFINDEX_LAN0);
    let lan0_20 = port(&trunk, IFINDEX_LAN0_20);

    let tcp = TCP_KIOSK_HOST_TO_ROUTER.to_vec();
    let tcp_back = tcp4(ROUTER_KIOSK, HOST_KIOSK, KIOSK_ROUTER4, KIOSK_HOST4, 40000);
    let tcp6_frame = tcp6(HOST_KIOSK, ROUTER_KIOSK, KIOSK_HOST6, MAIRIE_HOST6, 443);
    let arp_req = arp_request(HOST_KIOSK, KIOSK_HOST4, KIOSK_ROUTER4);
    let tagged_known = dot1q(&tcp[..], 20);
    let tagged_unknown = dot1q(&tcp[..], 99);
    let double = dot1q(&dot1q(&tcp[..], 20), 10);
    let offer = dhcp_offer(HOST_KIOSK, KIOSK_HOST4);
    let ra = router_advertisement(HOST_KIOSK, LINK_LOCAL_HOST6);
    let breach = tcp4(HOST_MAIRIE, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 445);

    let cases: Vec<(&str, Vec<Sample<'_>>)> = vec![
        ("tcp host->router, port", vec![(&tcp[..], kiosk)]),
        ("tcp router->host, port", vec![(&tcp_back[..], kiosk)]),
        ("tcp6 host->router, port", vec![(&tcp6_frame[..], kiosk)]),
        ("tcp host->router, vlan sub-if", vec![(&tcp[..], lan0_20)]),
        ("arp request, port", vec![(&arp_req[..], kiosk)]),
        ("802.1Q known vlan, trunk", vec![(&tagged_known[..], lan0)]),
        (
            "aux tag known vlan, trunk",
            vec![(&tcp[..], lan0.with_aux(Some(20), None))],
        ),
        (
            "802.1Q unknown vlan, trunk",
            vec![(&tagged_unknown[..], lan0)],
        ),
        ("double tag, trunk", vec![(&double[..], lan0)]),
        ("rogue dhcp offer, port", vec![(&offer[..], kiosk)]),
        ("rogue ra, port", vec![(&ra[..], kiosk)]),
        ("foreign subnet, port", vec![(&breach[..], kiosk)]),
        (
            "mix (ordinary tcp, arp, tagged)",
            vec![
                (&tcp[..], kiosk),
                (&tcp_back[..], kiosk),
                (&tcp6_frame[..], kiosk),
                (&arp_req[..], kiosk),
                (&tagged_known[..], lan0),
                (&tcp[..], lan0.with_aux(Some(20), None)),
                (&tagged_unknown[..], lan0),
                (&tcp[..], lan0_20),
            ],
        ),
    ];
    println!("classify: {ITERATIONS} frames per case");
    for (name, frames) in &cases {
        let (ns, found) = measure(frames);
        println!("{name:<34} {ns:>7.1} ns/frame   ({found} findings)");
    }
    println!("allocations during measured loops: 0");
}
