//! Outcome tests of `classify` and of the capture filters (cloison-core's `inspect`),
//! on the frames of the frame kit.

// Tests build frames and pids from small numbers; the product's cast lints would only
// add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
use std::net::{IpAddr, Ipv4Addr};

use cloison_core::alert::event::{Destination, EventKind, L4, Origin, SegmentId, Technique};
use cloison_core::inspect::filter::{self, Metadata};
use cloison_core::inspect::*;
use cloison_lab::frames::*;

const KIOSK: SegmentId = SegmentId(0);
const MAIRIE: SegmentId = SegmentId(1);

#[derive(Clone, Copy, Default)]
struct Aux {
    tci: Option<u16>,
    tpid: Option<u16>,
}

const NO_AUX: Aux = Aux {
    tci: None,
    tpid: None,
};

fn aux(tci: u16) -> Aux {
    Aux {
        tci: Some(tci),
        tpid: None,
    }
}

fn at(topo: &Topology, ifindex: u32, frame: &[u8], aux: Aux) -> Option<Finding> {
    let ctx = topo
        .context(ifindex)
        .expect("fixture ifindex is a capture point")
        .with_aux(aux.tci, aux.tpid);
    classify(frame, &ctx)
}

/// On the lab's kiosk port (dedicated, untagged).
fn kiosk_port(frame: &[u8]) -> Option<Finding> {
    at(&lab_topology(), IFINDEX_SEG_KIOSK, frame, NO_AUX)
}

fn trunk(frame: &[u8], aux: Aux) -> Option<Finding> {
    at(&trunk_topology(), IFINDEX_LAN0, frame, aux)
}

fn kind_reason(f: Option<Finding>) -> Option<(EventKind, Reason)> {
    f.map(|f| (f.kind, f.reason))
}

fn tcp() -> Vec<u8> {
    TCP_KIOSK_HOST_TO_ROUTER.to_vec()
}

// ---- VLAN tags ----

#[test]
fn single_known_tag_on_trunk_is_ordinary() {
    assert_eq!(trunk(&dot1q(&tcp(), 20), NO_AUX), None);
    assert_eq!(trunk(&tcp(), aux(20)), None);
    // PCP bits in the metadata TCI are not part of the VLAN ID.
    assert_eq!(trunk(&tcp(), aux(0xa000 | 20)), None);
    assert_eq!(trunk(&tcp(), NO_AUX), None, "untagged on the trunk");
}

#[test]
fn unknown_vlan_on_trunk() {
    let f = trunk(&dot1q(&tcp(), 99), NO_AUX).unwrap();
    assert_eq!(f.kind, EventKind::VlanHopping);
    assert_eq!(f.reason, Reason::UnknownVlan(99));
    assert_eq!(f.vlan, Some(99));
    assert_eq!(f.point, CapturePoint::Trunk);
    assert_eq!(f.ifindex, IFINDEX_LAN0);
    assert_eq!(f.src_mac, HOST_KIOSK);
    assert_eq!(
        kind_reason(trunk(&tcp(), aux(99))),
        Some((EventKind::VlanHopping, Reason::UnknownVlan(99)))
    );
    assert_eq!(
        kind_reason(trunk(&tcp(), aux(0))),
        Some((EventKind::VlanHopping, Reason::UnknownVlan(0)))
    );
}

#[test]
fn double_dot1q_on_trunk() {
    let f = trunk(&dot1q(&dot1q(&tcp(), 20), 10), NO_AUX).unwrap();
    assert_eq!(f.kind, EventKind::VlanHopping);
    assert_eq!(
        f.reason,
        Reason::DoubleTag {
            outer: 10,
            inner: 20
        }
    );
    assert_eq!(f.vlan, Some(10));
    // The alert names the segment of the VLAN the frame came in on (10: mairie), and the
    // VLAN it aims at.
    let key = f.flow_key();
    let mairie = trunk_config()
        .segments
        .iter()
        .position(|s| s.name.as_str() == "mairie")
        .unwrap();
    assert_eq!(key.src_segment, Some(SegmentId(mairie as u8)));
    assert_eq!(key.inner_vlan, Some(20));
    // Even with both VLAN IDs unknown, and with three tags, it is a double tag.
    assert_eq!(
        trunk(&dot1q(&dot1q(&dot1q(&tcp(), 7), 8), 9), NO_AUX).map(|f| f.reason),
        Some(Reason::DoubleTag { outer: 9, inner: 8 })
    );
}

#[test]
fn outer_dot1ad_on_trunk() {
    assert_eq!(
        kind_reason(trunk(&dot1ad(&tcp(), 20), NO_AUX)),
        Some((
            EventKind::VlanHopping,
            Reason::ServiceTag {
                tpid: 0x88a8,
                vid: 20
            }
        ))
    );
    let as_metadata = Aux {
        tci: Some(20),
        tpid: Some(0x88a8),
    };
    assert_eq!(
        trunk(&tcp(), as_metadata).map(|f| f.reason),
        Some(Reason::ServiceTag {
            tpid: 0x88a8,
            vid: 20
        })
    );
    assert_eq!(
        trunk(&dot1ad(&dot1q(&tcp(), 10), 20), NO_AUX).map(|f| f.reason),
        Some(Reason::DoubleTag {
            outer: 20,
            inner: 10
        })
    );
}

#[test]
fn metadata_tag_plus_frame_tag_is_double() {
    let f = trunk(&dot1q(&tcp(), 20), aux(10)).unwrap();
    assert_eq!(f.kind, EventKind::VlanHopping);
    assert_eq!(
        f.reason,
        Reason::DoubleTag {
            outer: 10,
            inner: 20
        }
    );
    assert_eq!(f.vlan, Some(10));
}

#[test]
fn tag_on_access_port() {
    let f = kiosk_port(&dot1q(&tcp(), 20)).unwrap();
    assert_eq!(f.kind, EventKind::VlanHopping);
    assert_eq!(f.reason, Reason::TaggedOnAccessPort(20));
    assert_eq!(f.point, CapturePoint::Segment(KIOSK));
    let lab = lab_topology();
    assert_eq!(
        at(&lab, IFINDEX_SEG_KIOSK, &tcp(), aux(5)).map(|f| f.reason),
        Some(Reason::TaggedOnAccessPort(5))
    );
    assert_eq!(
        at(&lab, IFINDEX_SEG_KIOSK, &dot1q(&tcp(), 20), aux(5)).map(|f| f.reason),
        Some(Reason::DoubleTag {
            outer: 5,
            inner: 20
        })
    );
}

#[test]
fn tagged_foreign_traffic_on_access_port_is_a_breach() {
    let leak = udp4(
        HOST_MAIRIE,
        BROADCAST,
        MAIRIE_HOST4,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    let f = kiosk_port(&dot1q(&leak, 10)).unwrap();
    assert_eq!(f.kind, EventKind::IsolationBreach);
    assert_eq!(f.reason, Reason::ForeignSubnet);
    assert_eq!(f.vlan, Some(10));
    assert_eq!(f.other_segment, Some(MAIRIE));
}

#[test]
fn tag_on_vlan_subinterface_is_left_to_the_trunk() {
    let t = trunk_topology();
    assert_eq!(at(&t, IFINDEX_LAN0_20, &dot1q(&tcp(), 30), NO_AUX), None);
    assert_eq!(at(&t, IFINDEX_LAN0_20, &tcp(), aux(30)), None);
}

// ---- ARP ----

#[test]
fn arp_request_of_own_host_is_ordinary() {
    assert_eq!(
        kiosk_port(&arp_request(HOST_KIOSK, KIOSK_HOST4, KIOSK_ROUTER4)),
        None
    );
    assert_eq!(kiosk_port(&garp(HOST_KIOSK, KIOSK_HOST4)), None);
    assert_eq!(
        kiosk_port(&arp_reply(
            HOST_KIOSK,
            KIOSK_HOST4,
            ROUTER_KIOSK,
            KIOSK_ROUTER4
        )),
        None
    );
    // A probe (sender 0.0.0.0) for a mairie address claims nothing.
    assert_eq!(
        kiosk_port(&arp_request(
            HOST_KIOSK,
            Ipv4Addr::UNSPECIFIED,
            MAIRIE_HOST4
        )),
        None
    );
}

#[test]
fn arp_reply_claiming_the_router() {
    let f = kiosk_port(&ARP_REPLY_CLAIMING_ROUTER).unwrap();
    assert_eq!(f.kind, EventKind::ArpSpoof);
    assert_eq!(f.reason, Reason::ClaimsRouterAddress);
    assert_eq!(f.src_ip, Some(IpAddr::V4(KIOSK_ROUTER4)));
    assert_eq!(f.dst_ip, Some(IpAddr::V4(Ipv4Addr::new(192, 168, 20, 6))));
    assert_eq!(f.src_mac, HOST_KIOSK);
    assert_eq!(f.other_segment, None);
    assert_eq!(f.proto, None);
    let key = f.flow_key();
    assert_eq!(key.kind, EventKind::ArpSpoof);
    assert_eq!(key.src_segment, Some(KIOSK));
    assert_eq!(key.dst, Some(Destination::Router));
    assert_eq!(key.ifindex, Some(IFINDEX_SEG_KIOSK));

    // The builder lays out the same bytes as the literal fixture.
    let built = arp_reply(
        HOST_KIOSK,
        KIOSK_ROUTER4,
        [0x52, 0x54, 0, 0, 0x20, 0x06],
        Ipv4Addr::new(192, 168, 20, 6),
    );
    assert_eq!(built, ARP_REPLY_CLAIMING_ROUTER);

    // The mairie's router address claimed on the kiosk wire, gratuitously: still the
    // router's address, and it wins over the foreign subnet.
    let f = kiosk_port(&garp(HOST_KIOSK, MAIRIE_ROUTER4)).unwrap();
    assert_eq!(
        (f.kind, f.reason),
        (EventKind::ArpSpoof, Reason::ClaimsRouterAddress)
    );
    assert_eq!(f.other_segment, Some(MAIRIE));
    // An uplink address of the router.
    let f = kiosk_port(&garp(HOST_KIOSK, Ipv4Addr::new(10, 30, 0, 2))).unwrap();
    assert_eq!(f.reason, Reason::ClaimsRouterAddress);
}

#[test]
fn frames_with_the_routers_own_mac_came_from_the_wire() {
    // The capture never hands over what the router sends (direction, below): a frame
    // carrying the router's own MAC was forged by a host, or looped back.
    let f = kiosk_port(&garp(ROUTER_KIOSK, KIOSK_ROUTER4)).unwrap();
    assert_eq!(
        (f.kind, f.reason, f.technique),
        (
            EventKind::ArpSpoof,
            Reason::RouterMacFromWire,
            Some(Technique::RouterMac)
        )
    );
    assert_eq!(f.flow_key().dst, Some(Destination::Router));
    assert_eq!(f.src_mac, ROUTER_KIOSK);
    let f = kiosk_port(&arp_reply(
        ROUTER_KIOSK,
        MAIRIE_ROUTER4,
        HOST_KIOSK,
        KIOSK_HOST4,
    ))
    .unwrap();
    assert_eq!(f.reason, Reason::RouterMacFromWire);
    // Plain traffic (a loop sending the router's routed frames back) is the same,
    // never an isolation breach whatever its addresses.
    let looped = tcp4(ROUTER_KIOSK, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 5900);
    let f = kiosk_port(&looped).unwrap();
    assert_eq!(
        (f.kind, f.reason),
        (EventKind::ArpSpoof, Reason::RouterMacFromWire)
    );
    assert_eq!(f.src_ip, Some(IpAddr::V4(MAIRIE_HOST4)));
    // What says more wins: a DHCP offer, an RA, a tag.
    assert_eq!(
        kind_reason(kiosk_port(&dhcp_offer(ROUTER_KIOSK, KIOSK_ROUTER4))),
        Some((
            EventKind::RogueDhcp,
            Reason::DhcpServer { message: Some(2) }
        ))
    );
    assert_eq!(
        kind_reason(kiosk_port(&dhcpv6(ROUTER_KIOSK, LINK_LOCAL_HOST6, 2))),
        Some((EventKind::RogueDhcp, Reason::Dhcpv6Server { message: 2 }))
    );
    assert_eq!(
        kind_reason(kiosk_port(&router_advertisement(
            ROUTER_KIOSK,
            LINK_LOCAL_HOST6
        ))),
        Some((EventKind::RogueRa, Reason::RouterAdvertisement))
    );
    assert_eq!(
        kiosk_port(&dot1q(&dot1q(&looped, 10), 20)).map(|f| f.kind),
        Some(EventKind::VlanHopping)
    );
    // On a VLAN sub-interface, the shared trunk MAC is the router's own there too.
    let t = trunk_topology();
    let f = at(
        &t,
        IFINDEX_LAN0_20,
        &garp(ROUTER_LAN0, KIOSK_ROUTER4),
        NO_AUX,
    )
    .unwrap();
    assert_eq!(f.reason, Reason::RouterMacFromWire);
}

#[test]
fn the_routers_own_frames_are_told_apart_by_direction() {
    let lab = lab_topology();
    let program = capture_filter(&lab, CapturePoint::Segment(KIOSK)).unwrap();
    let outgoing = Metadata {
        pkttype: filter::PACKET_OUTGOING,
        ..Metadata::default()
    };
    for frame in [
        garp(ROUTER_KIOSK, KIOSK_ROUTER4),
        dhcp_offer(ROUTER_KIOSK, KIOSK_ROUTER4),
        router_advertisement(ROUTER_KIOSK, LINK_LOCAL_HOST6),
        tcp4(ROUTER_KIOSK, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 5900),
        // Even a host's frame, if the kernel says the router sent it.
        ARP_REPLY_CLAIMING_ROUTER.to_vec(),
    ] {
        assert_eq!(filter::run(&program, &frame, outgoing), 0, "{frame:02x?}");
        assert_ne!(
            filter::run(&program, &frame, Metadata::default()),
            0,
            "received, it passes: {frame:02x?}"
        );
    }
    let t = trunk_topology();
    let trunk_program = capture_filter(&t, CapturePoint::Trunk).unwrap();
    assert_eq!(filter::run(&trunk_program, &dot1q(&tcp(), 99), outgoing), 0);
}
#[test]
fn gratuitous_arp_from_another_segments_subnet() {
    let f = kiosk_port(&garp(HOST_MAIRIE, MAIRIE_HOST4)).unwrap();
    assert_eq!(f.kind, EventKind::ArpSpoof);
    assert_eq!(f.reason, Reason::ClaimsForeignAddress);
    assert_eq!(f.other_segment, Some(MAIRIE));
    assert_eq!(f.flow_key().dst, Some(Destination::Segment(MAIRIE)));
    // A reply sent to the router claiming a foreign address: also a spoof.
    let f = kiosk_port(&arp_reply(
        HOST_KIOSK,
        MAIRIE_HOST4,
        ROUTER_KIOSK,
        KIOSK_ROUTER4,
    ))
    .unwrap();
    assert_eq!(f.reason, Reason::ClaimsForeignAddress);
}

#[test]
fn arp_request_from_another_segments_host_is_a_breach() {
    let f = kiosk_port(&arp_request(HOST_MAIRIE, MAIRIE_HOST4, MAIRIE_ROUTER4)).unwrap();
    assert_eq!(f.kind, EventKind::IsolationBreach);
    assert_eq!(f.reason, Reason::ForeignSubnet);
    assert_eq!(f.other_segment, Some(MAIRIE));
    assert_eq!(f.src_ip, Some(IpAddr::V4(MAIRIE_HOST4)));
    // A (non-gratuitous) request addressed to the router's MAC is not link-local leakage.
    let to_router = arp(
        1,
        HOST_KIOSK,
        MAIRIE_HOST4,
        ROUTER_KIOSK,
        [0; 6],
        KIOSK_ROUTER4,
    );
    assert_eq!(kiosk_port(&to_router), None);
}

#[test]
fn non_ethernet_arp_is_ignored() {
    let mut f = garp(HOST_MAIRIE, MAIRIE_HOST4);
    f[15] = 6; // htype 6 (IEEE 802)
    assert_eq!(kiosk_port(&f), None);
}

#[test]
fn arp_requests_claiming_the_router_are_spoofs() {
    // "who-has 192.168.20.77 tell 192.168.20.1" from a kiosk host's MAC: whoever answers,
    // or already knows 192.168.20.1, now sends the router's traffic to that host.
    let frame = arp_request(HOST_KIOSK, KIOSK_ROUTER4, KIOSK_HOST4_B);
    let f = kiosk_port(&frame).unwrap();
    assert_eq!(
        (f.kind, f.reason, f.technique),
        (
            EventKind::ArpSpoof,
            Reason::ClaimsRouterAddress,
            Some(Technique::ArpRequest)
        )
    );
    // What classify reports is what the kit wrote.
    let (eth, body) = wire::Ethernet::parse(&frame).unwrap();
    let sent = wire::Arp::parse(body).unwrap();
    assert_eq!(sent.op, wire::ARP_REQUEST);
    assert_eq!(
        (f.src_mac, f.src_ip, f.dst_ip),
        (
            eth.src,
            Some(IpAddr::V4(sent.spa)),
            Some(IpAddr::V4(sent.tpa))
        )
    );
    assert_eq!(f.flow_key().dst, Some(Destination::Router));
    assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &frame, NO_AUX));
    // Addressed to the router's MAC, or claiming the mairie side: the same.
    let unicast = arp(
        wire::ARP_REQUEST,
        HOST_KIOSK,
        KIOSK_ROUTER4,
        ROUTER_KIOSK,
        [0; 6],
        KIOSK_HOST4_B,
    );
    assert_eq!(
        kiosk_port(&unicast).map(|f| f.technique),
        Some(Some(Technique::ArpRequest))
    );
    assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &unicast, NO_AUX));
    let f = kiosk_port(&arp_request(HOST_KIOSK, MAIRIE_ROUTER4, KIOSK_HOST4)).unwrap();
    assert_eq!(
        (f.reason, f.other_segment),
        (Reason::ClaimsRouterAddress, Some(MAIRIE))
    );
    // A gratuitous request is a claim too, without the technique.
    assert_eq!(
        kiosk_port(&garp(HOST_KIOSK, KIOSK_ROUTER4)).map(|f| (f.reason, f.technique)),
        Some((Reason::ClaimsRouterAddress, None))
    );
}

// ---- IPv6 neighbour discovery ----

#[test]
fn neighbour_advertisements_claiming_the_router_are_spoofs() {
    // parasite6: unsolicited advertisements with the override flag, for the router's
    // address, with the attacker's MAC.
    let router_ll = link_local(ROUTER_KIOSK);
    for target in [KIOSK_ROUTER6, router_ll, MAIRIE_ROUTER6] {
        let frame = neighbour_advert(
            HOST_KIOSK,
            target,
            ALL_NODES,
            ALL_NODES6,
            target,
            Some(HOST_KIOSK),
        );
        let f = kiosk_port(&frame).unwrap_or_else(|| panic!("{target}"));
        assert_eq!(
            (f.kind, f.reason, f.technique),
            (
                EventKind::ArpSpoof,
                Reason::ClaimsRouterAddress,
                Some(Technique::NeighbourAdvert)
            ),
            "{target}"
        );
        // The claimed address, as the kit wrote it.
        let (_, ip) = wire::Ethernet::parse(&frame).unwrap();
        let (_, icmp) = wire::Ipv6::parse(ip).unwrap();
        let wire::Nd::Advert {
            target: claimed, ..
        } = wire::Nd::parse(icmp).unwrap()
        else {
            panic!("an advertisement");
        };
        assert_eq!(f.src_ip, Some(IpAddr::V6(claimed)));
        assert_eq!(f.flow_key().dst, Some(Destination::Router));
        assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &frame, NO_AUX));
    }
    // The target's link-layer address is the attacker's even when the frame's source MAC
    // is the router's: still a spoof.
    let sneaky = neighbour_advert(
        ROUTER_KIOSK,
        KIOSK_ROUTER6,
        ALL_NODES,
        ALL_NODES6,
        KIOSK_ROUTER6,
        Some(HOST_KIOSK),
    );
    assert_eq!(
        kiosk_port(&sneaky).map(|f| f.reason),
        Some(Reason::ClaimsRouterAddress)
    );
    // A solicitation from the router's address with another MAC poisons too.
    let ns = neighbour_solicit(HOST_KIOSK, KIOSK_ROUTER6, KIOSK_HOST6, Some(HOST_KIOSK));
    assert_eq!(
        kiosk_port(&ns).map(|f| (f.kind, f.technique)),
        Some((EventKind::ArpSpoof, Some(Technique::NeighbourSolicit)))
    );
    assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &ns, NO_AUX));
    // Another segment's address, advertised on the kiosk's wire.
    let foreign = neighbour_advert(
        HOST_KIOSK,
        KIOSK_HOST6,
        ALL_NODES,
        ALL_NODES6,
        MAIRIE_HOST6,
        Some(HOST_KIOSK),
    );
    assert_eq!(
        kiosk_port(&foreign).map(|f| (f.reason, f.other_segment)),
        Some((Reason::ClaimsForeignAddress, Some(MAIRIE)))
    );
}

#[test]
fn ordinary_neighbour_discovery_is_ordinary() {
    // A host advertising itself, and asking for the router.
    assert_eq!(
        kiosk_port(&neighbour_advert(
            HOST_KIOSK,
            KIOSK_HOST6,
            ROUTER_KIOSK,
            KIOSK_ROUTER6,
            KIOSK_HOST6,
            Some(HOST_KIOSK)
        )),
        None
    );
    assert_eq!(
        kiosk_port(&neighbour_solicit(
            HOST_KIOSK,
            KIOSK_HOST6,
            KIOSK_ROUTER6,
            Some(HOST_KIOSK)
        )),
        None
    );
    // Duplicate address detection for the router's address (source ::) claims nothing.
    assert_eq!(
        kiosk_port(&neighbour_solicit(
            HOST_KIOSK,
            std::net::Ipv6Addr::UNSPECIFIED,
            KIOSK_ROUTER6,
            None
        )),
        None
    );
}

// ---- Whose frame a breach is ----

#[test]
fn isolation_breach_origin_from_what_the_router_knows() {
    let lab = lab_topology();
    // A mairie source address on the kiosk's wire, from the kiosk host's own MAC.
    let forged = udp4(
        HOST_KIOSK,
        BROADCAST,
        MAIRIE_HOST4,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    // The same with a mairie host's MAC.
    let copied = udp4(
        HOST_MAIRIE,
        BROADCAST,
        MAIRIE_HOST4,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    let f_forged = at(&lab, IFINDEX_SEG_KIOSK, &forged, NO_AUX).unwrap();
    let f_copied = at(&lab, IFINDEX_SEG_KIOSK, &copied, NO_AUX).unwrap();
    assert!(Attribution::wants(&f_forged));
    let mut a = Attribution::default();
    // Nothing known: cannot tell.
    assert_eq!(a.origin(&f_forged, 0), Some(Origin::Unknown));
    // The router resolved a kiosk address to HOST_KIOSK on seg-kiosk, and a mairie
    // address to HOST_MAIRIE on seg-mairie.
    a.set_neighbours([
        (IFINDEX_SEG_KIOSK, HOST_KIOSK),
        (IFINDEX_SEG_MAIRIE, HOST_MAIRIE),
    ]);
    assert_eq!(a.origin(&f_forged, 0), Some(Origin::Forged));
    // A mairie host's MAC on the kiosk's wire: the mairie leaking, or a kiosk host
    // copying the MAC. The neighbour tables alone cannot tell.
    assert_eq!(a.origin(&f_copied, 0), Some(Origin::Unknown));
    // The router's own mairie-side frames on the kiosk's wire: a join, so a leak.
    let bridged = at(
        &lab,
        IFINDEX_SEG_KIOSK,
        &arp_request(ROUTER_MAIRIE, MAIRIE_ROUTER4, MAIRIE_HOST4),
        NO_AUX,
    )
    .unwrap();
    assert_eq!(bridged.reason, Reason::ForeignRouterMac);
    a.note(&bridged, 1_000_000);
    assert_eq!(a.origin(&f_copied, 2_000_000), Some(Origin::Leaked));
    // ... for a while: the evidence ages out.
    assert_eq!(
        a.origin(&f_copied, 1_000_000 + JOIN_EVIDENCE_US),
        Some(Origin::Unknown)
    );
    // Only breaches by a foreign source address are attributed.
    assert_eq!(a.origin(&bridged, 2_000_000), None);
    let spoof = kiosk_port(&ARP_REPLY_CLAIMING_ROUTER).unwrap();
    assert_eq!(a.origin(&spoof, 0), None);
    // The key carries it.
    let mut key = f_forged.flow_key();
    key.origin = a.origin(&f_forged, 0);
    assert_eq!(key.origin, Some(Origin::Forged));
}

// ---- DHCP ----

#[test]
fn dhcp_offer_from_a_host_is_rogue() {
    let f = kiosk_port(&dhcp_offer(HOST_KIOSK, KIOSK_HOST4)).unwrap();
    assert_eq!(f.kind, EventKind::RogueDhcp);
    assert_eq!(f.reason, Reason::DhcpServer { message: Some(2) });
    assert_eq!(f.proto, Some(L4::Udp));
    assert_eq!(f.dst_port, Some(68));
    assert_eq!(f.src_ip, Some(IpAddr::V4(KIOSK_HOST4)));
    assert_eq!(f.dst_ip, Some(IpAddr::V4(Ipv4Addr::BROADCAST)));
    for (msg, expected) in [(5, Some(Some(5))), (6, Some(Some(6))), (3, None)] {
        let got = kiosk_port(&dhcp_reply(HOST_KIOSK, KIOSK_HOST4, msg)).map(|f| match f.reason {
            Reason::DhcpServer { message } => message,
            other => panic!("{other:?}"),
        });
        assert_eq!(got, expected, "message type {msg}");
    }
    // On a VLAN sub-interface too.
    let t = trunk_topology();
    let f = at(
        &t,
        IFINDEX_LAN0_20,
        &dhcp_offer(HOST_KIOSK, KIOSK_HOST4),
        NO_AUX,
    )
    .unwrap();
    assert_eq!(f.kind, EventKind::RogueDhcp);
}

#[test]
fn dhcp_from_clients_is_ordinary() {
    assert_eq!(kiosk_port(&dhcp_discover(HOST_KIOSK)), None);
}

#[test]
fn unicast_rogue_dhcp_offers_and_router_advertisements() {
    // To another host's MAC (a switch floods it when it does not know the MAC yet, a hub
    // always: the capture's interface is promiscuous to see it), or to the router's.
    let offer = unicast_dhcp_offer(HOST_KIOSK, KIOSK_HOST4, OTHER_KIOSK_HOST, KIOSK_HOST4_B);
    let f = kiosk_port(&offer).unwrap();
    assert_eq!(f.kind, EventKind::RogueDhcp);
    let (eth, ip) = wire::Ethernet::parse(&offer).unwrap();
    let (ip, udp) = wire::Ipv4::parse(ip).unwrap();
    let (_, bootp) = wire::Udp::parse(udp).unwrap();
    let bootp = wire::Bootp::parse(bootp).unwrap();
    assert!(!bootp.broadcast);
    assert_eq!(
        (f.dst_mac, f.src_ip, f.dst_ip),
        (
            eth.dst,
            Some(IpAddr::V4(ip.src)),
            Some(IpAddr::V4(bootp.yiaddr))
        )
    );
    assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &offer, NO_AUX));
    for dst in [OTHER_KIOSK_HOST, ROUTER_KIOSK] {
        let ra = router_advertisement_with(HOST_KIOSK, dst, LINK_LOCAL_HOST6, &[]);
        assert_eq!(
            kind_reason(kiosk_port(&ra)),
            Some((EventKind::RogueRa, Reason::RouterAdvertisement))
        );
        assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &ra, NO_AUX));
    }
}

#[test]
fn router_advertisements_behind_any_number_of_extension_headers() {
    // fake_router26's evasions: 9 and more headers used to defeat a walk that stopped at
    // 8; the walk is bounded by the frame's bytes instead.
    for n in [1usize, 8, 9, 10, 64, 170] {
        let exts = vec![wire::Extension::DestOpts { units: 1 }; n];
        let ra = router_advertisement_with(HOST_KIOSK, ALL_NODES, LINK_LOCAL_HOST6, &exts);
        assert_eq!(
            kind_reason(kiosk_port(&ra)),
            Some((EventKind::RogueRa, Reason::RouterAdvertisement)),
            "{n} extension headers ({} bytes)",
            ra.len()
        );
        assert!(passes(&lab_topology(), IFINDEX_SEG_KIOSK, &ra, NO_AUX));
    }
    // Behind a jumbo frame's worth of headers.
    let exts = vec![wire::Extension::HopByHop { units: 256 }; 4];
    let ra = router_advertisement_with(HOST_KIOSK, ALL_NODES, LINK_LOCAL_HOST6, &exts);
    assert!(ra.len() > 8000);
    assert_eq!(kiosk_port(&ra).map(|f| f.kind), Some(EventKind::RogueRa));
}
#[test]
fn dhcpv6_advertise_from_a_host_is_rogue() {
    let f = kiosk_port(&dhcpv6(HOST_KIOSK, LINK_LOCAL_HOST6, 2)).unwrap();
    assert_eq!(f.kind, EventKind::RogueDhcp);
    assert_eq!(f.reason, Reason::Dhcpv6Server { message: 2 });
    assert_eq!(f.dst_port, Some(546));
    assert_eq!(f.src_ip, Some(IpAddr::V6(LINK_LOCAL_HOST6)));
    assert_eq!(
        kiosk_port(&dhcpv6(HOST_KIOSK, LINK_LOCAL_HOST6, 7)).map(|f| f.reason),
        Some(Reason::Dhcpv6Server { message: 7 })
    );
    assert_eq!(
        kiosk_port(&dhcpv6(HOST_KIOSK, LINK_LOCAL_HOST6, 1)),
        None,
        "solicit"
    );
}

// ---- Router advertisements ----

#[test]
fn router_advertisement_from_a_host_is_rogue() {
    let f = kiosk_port(&router_advertisement(HOST_KIOSK, LINK_LOCAL_HOST6)).unwrap();
    assert_eq!(f.kind, EventKind::RogueRa);
    assert_eq!(f.reason, Reason::RouterAdvertisement);
    assert_eq!(f.proto, Some(L4::Icmpv6));
    assert_eq!(f.dst_mac, ALL_NODES);
    let hidden = router_advertisement_behind_extensions(HOST_KIOSK, LINK_LOCAL_HOST6);
    assert_eq!(kind_reason(kiosk_port(&hidden)), kind_reason(Some(f)));
}

// ---- Isolation breaches ----

#[test]
fn ipv4_from_another_segment_on_this_wire() {
    let leak = tcp4(HOST_MAIRIE, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 445);
    let f = kiosk_port(&leak).unwrap();
    assert_eq!(f.kind, EventKind::IsolationBreach);
    assert_eq!(f.reason, Reason::ForeignSubnet);
    assert_eq!(f.other_segment, Some(MAIRIE));
    assert_eq!(f.proto, Some(L4::Tcp));
    assert_eq!(f.dst_port, Some(445));
    let key = f.flow_key();
    assert_eq!(key.src_segment, Some(MAIRIE));
    assert_eq!(key.dst, Some(Destination::Segment(KIOSK)));
    assert_eq!(key.src_ip, Some(IpAddr::V4(MAIRIE_HOST4)));
    assert_eq!(key.dst_port, Some(445));
    assert_eq!(key.src_mac, Some(HOST_MAIRIE));
    // Same on the mairie's VLAN sub-interface with a kiosk source.
    let t = trunk_topology();
    let leak = udp4(
        HOST_KIOSK,
        BROADCAST,
        KIOSK_HOST4,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    let f = at(&t, IFINDEX_LAN0_10, &leak, NO_AUX).unwrap();
    assert_eq!(
        (f.kind, f.other_segment),
        (EventKind::IsolationBreach, Some(KIOSK))
    );
}

#[test]
fn ipv6_from_another_segment_on_this_wire() {
    let leak = udp6(HOST_MAIRIE, ALL_NODES, MAIRIE_HOST6, ALL_NODES6, 5353, 5353);
    let f = kiosk_port(&leak).unwrap();
    assert_eq!(f.kind, EventKind::IsolationBreach);
    assert_eq!(f.reason, Reason::ForeignSubnet);
    assert_eq!(f.other_segment, Some(MAIRIE));
    assert_eq!(f.src_ip, Some(IpAddr::V6(MAIRIE_HOST6)));
    assert_eq!(f.dst_port, Some(5353));
    // An RA sourced from a mairie address is first of all the mairie on the kiosk wire.
    let ra = router_advertisement(HOST_MAIRIE, MAIRIE_HOST6);
    assert_eq!(
        kiosk_port(&ra).map(|f| f.kind),
        Some(EventKind::IsolationBreach)
    );
}

#[test]
fn spoofed_routed_packets_are_left_to_the_ruleset() {
    let spoofed = udp4(
        HOST_KIOSK,
        ROUTER_KIOSK,
        MAIRIE_HOST4,
        Ipv4Addr::new(8, 8, 8, 8),
        5353,
        53,
    );
    assert_eq!(kiosk_port(&spoofed), None);
    let spoofed6 = tcp6(HOST_KIOSK, ROUTER_KIOSK, MAIRIE_HOST6, KIOSK_HOST6, 22);
    assert_eq!(kiosk_port(&spoofed6), None);
}

#[test]
fn ordinary_traffic_of_the_segments_hosts() {
    assert_eq!(kiosk_port(&tcp()), None);
    assert_eq!(
        kiosk_port(&tcp4(
            HOST_KIOSK,
            ROUTER_KIOSK,
            KIOSK_HOST4,
            Ipv4Addr::new(8, 8, 8, 8),
            443
        )),
        None
    );
}
#[test]
fn router_mac_of_another_interface_is_a_breach() {
    let bridged = tcp4(ROUTER_MAIRIE, HOST_KIOSK, MAIRIE_ROUTER4, KIOSK_HOST4, 22);
    let f = kiosk_port(&bridged).unwrap();
    assert_eq!(f.kind, EventKind::IsolationBreach);
    assert_eq!(f.reason, Reason::ForeignRouterMac);
    assert_eq!(f.other_segment, Some(MAIRIE));
    assert_eq!(f.src_ip, Some(IpAddr::V4(MAIRIE_ROUTER4)));
    // It wins over everything else the frame shows: here an ARP claim of the router.
    let f = kiosk_port(&garp(ROUTER_MAIRIE, KIOSK_ROUTER4)).unwrap();
    assert_eq!(f.reason, Reason::ForeignRouterMac);
    // An uplink's MAC: no segment to name.
    let f = kiosk_port(&arp_request(
        ROUTER_WAN0,
        Ipv4Addr::new(192, 168, 1, 2),
        KIOSK_HOST4,
    ))
    .unwrap();
    assert_eq!(
        (f.reason, f.other_segment),
        (Reason::ForeignRouterMac, None)
    );
    // Sub-interfaces sharing the trunk's MAC are not foreign to each other: a frame
    // received with it is the router's own MAC from the wire, not a bridge.
    let t = trunk_topology();
    let ra = router_advertisement(ROUTER_LAN0, LINK_LOCAL_HOST6);
    assert_eq!(
        at(&t, IFINDEX_LAN0_20, &ra, NO_AUX).map(|f| f.kind),
        Some(EventKind::RogueRa)
    );
}

// ---- Malformed input ----

fn contexts() -> Vec<(Topology, u32, Aux)> {
    let mut v = Vec::new();
    for (topo, points) in [
        (
            lab_topology(),
            vec![IFINDEX_SEG_KIOSK, IFINDEX_SEG_MAIRIE, IFINDEX_SEG_POSTE],
        ),
        (
            trunk_topology(),
            vec![
                IFINDEX_LAN0,
                IFINDEX_LAN0_10,
                IFINDEX_LAN0_20,
                IFINDEX_LAN0_30,
            ],
        ),
    ] {
        for p in points {
            for a in [
                NO_AUX,
                aux(20),
                aux(99),
                Aux {
                    tci: Some(30),
                    tpid: Some(0x88a8),
                },
            ] {
                v.push((topo.clone(), p, a));
            }
        }
    }
    v
}

#[test]
fn empty_short_and_garbage_frames() {
    for (topo, p, a) in contexts() {
        for len in 0..14 {
            assert_eq!(at(&topo, p, &vec![0xab; len], a), None, "{len} bytes");
        }
        assert_eq!(at(&topo, p, &[0u8; 64], NO_AUX), None, "zeros");
        assert!(
            at(&topo, p, &[0xffu8; 64], NO_AUX).is_none(),
            "broadcast from ff:ff:ff:ff:ff:ff, ethertype 0xffff"
        );
    }
    // A frame of tags only.
    let tags: Vec<u8> = [0u8; 12]
        .into_iter()
        .chain(std::iter::repeat_n([0x81, 0x00, 0x00, 0x14], 40).flatten())
        .collect();
    assert_eq!(
        trunk(&tags, NO_AUX).map(|f| f.reason),
        Some(Reason::DoubleTag {
            outer: 20,
            inner: 20
        })
    );
}

/// Every prefix of every fixture, at every capture point: no panic, and a finding only
/// of the kind the whole frame gives (or vlan_hopping where the whole frame is a tagged
/// breach whose inner headers were cut).
#[test]
fn truncated_frames_at_every_length() {
    let mut findings = 0;
    for (topo, p, a) in contexts() {
        for frame in corpus() {
            let full = at(&topo, p, &frame, a);
            for len in 0..frame.len() {
                let Some(cut) = at(&topo, p, &frame[..len], a) else {
                    continue;
                };
                findings += 1;
                let full = full.unwrap_or_else(|| {
                    panic!("{len}-byte prefix gives {cut:?}, whole frame nothing")
                });
                // A frame from the router's own MAC cut before what the whole frame
                // shows (a DHCP offer, an RA) is still that MAC from the wire.
                // Likewise neighbour discovery from another segment's address cut before
                // its claim: the foreign source is all it shows (which, tagged, also
                // wins over the tag).
                let own_mac_cut = cut.reason == Reason::RouterMacFromWire;
                let claim_cut = cut.kind == EventKind::IsolationBreach
                    && cut.proto == Some(L4::Icmpv6)
                    && matches!(full.kind, EventKind::ArpSpoof | EventKind::VlanHopping);
                assert!(
                    cut.kind == full.kind
                        || own_mac_cut
                        || claim_cut
                        || (full.kind == EventKind::IsolationBreach
                            && cut.kind == EventKind::VlanHopping),
                    "{len}-byte prefix gives {cut:?}, whole frame {full:?}"
                );
                assert_eq!((cut.src_mac, cut.point), (full.src_mac, full.point));
            }
        }
    }
    assert!(
        findings > 1000,
        "prefixes still showing something: {findings}"
    );
}

// ---- Random frames ----

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Values that steer the parser somewhere: ethertypes, TPIDs, ports, ICMPv6 types, IP
/// versions, router MACs.
const INTERESTING: &[&[u8]] = &[
    &[0x81, 0x00],
    &[0x88, 0xa8],
    &[0x91, 0x00],
    &[0x08, 0x06],
    &[0x08, 0x00],
    &[0x86, 0xdd],
    &[0x00, 0x43, 0x00, 0x44],
    &[0x02, 0x23, 0x02, 0x22],
    &[134],
    &[0x45],
    &[0x4f],
    &[0x60],
    &[0x00, 0x02],
    &[0xff, 0xff],
    &[0x00, 0x00],
    &[99, 130, 83, 99],
    &ROUTER_KIOSK,
    &ROUTER_MAIRIE,
    &ROUTER_LAN0,
    &[192, 168, 10],
    &[0xfd, 0x00, 0x00, 0x10],
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut f = if rng.below(10) == 0 {
        (0..rng.below(200)).map(|_| rng.byte()).collect()
    } else {
        corpus[rng.below(corpus.len())].clone()
    };
    for _ in 0..=rng.below(6) {
        match rng.below(7) {
            0 if !f.is_empty() => {
                let i = rng.below(f.len());
                f[i] ^= 1 << rng.below(8);
            }
            1 if !f.is_empty() => {
                let i = rng.below(f.len());
                f[i] = rng.byte();
            }
            2 => f.truncate(rng.below(f.len() + 1)),
            3 => f.extend((0..rng.below(64)).map(|_| rng.byte())),
            4 => {
                let at = rng.below(f.len() + 1);
                let tag = [0x81, 0x00, rng.byte() & 0x0f, rng.byte()];
                f.splice(at..at, tag);
            }
            _ => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let at = rng.below(f.len() + 1);
                for (i, b) in v.iter().enumerate() {
                    match f.get_mut(at + i) {
                        Some(x) => *x = *b,
                        None => f.push(*b),
                    }
                }
            }
        }
    }
    f
}

/// A few hundred thousand mutated and random frames: `classify` never panics, and the
/// capture filter passes every frame `classify` reports.
#[test]
fn random_frames_never_panic_and_pass_the_filter() {
    const FRAMES: usize = 300_000;
    let corpus = corpus();
    let mut points = Vec::new();
    for topo in [lab_topology(), trunk_topology()] {
        for (point, ifindex) in topo.capture_points().collect::<Vec<_>>() {
            let program = capture_filter(&topo, point).unwrap();
            points.push((topo.clone(), ifindex, program));
        }
    }
    let mut rng = Rng(0x5eed_c10c_0150_0001);
    let mut by_kind = std::collections::BTreeMap::new();
    for _ in 0..FRAMES {
        let frame = mutate(&mut rng, &corpus);
        let (topo, ifindex, program) = &points[rng.below(points.len())];
        let a = match rng.below(4) {
            0 => Aux {
                tci: Some(rng.next() as u16),
                tpid: [None, Some(0x8100), Some(0x88a8), Some(rng.next() as u16)][rng.below(4)],
            },
            _ => NO_AUX,
        };
        let found = at(topo, *ifindex, &frame, a);
        if let Some(f) = found {
            *by_kind.entry(f.kind).or_insert(0usize) += 1;
            let meta = Metadata {
                vlan_tci: a.tci,
                vlan_tpid: a.tpid,
                pkttype: 0,
            };
            assert_ne!(
                filter::run(program, &frame, meta),
                0,
                "filter drops a frame classify reports: {f:?} {frame:02x?}"
            );
        }
    }
    // The mutations reach every kind this module reports.
    for kind in [
        EventKind::IsolationBreach,
        EventKind::ArpSpoof,
        EventKind::RogueDhcp,
        EventKind::RogueRa,
        EventKind::VlanHopping,
    ] {
        assert!(
            by_kind.get(&kind).copied().unwrap_or(0) > 100,
            "{kind}: {by_kind:?}"
        );
    }
}

// ---- Capture filters ----

fn passes(topo: &Topology, ifindex: u32, frame: &[u8], a: Aux) -> bool {
    let (point, _) = topo.capture_points().find(|(_, i)| *i == ifindex).unwrap();
    let program = capture_filter(topo, point).unwrap();
    let meta = Metadata {
        vlan_tci: a.tci,
        vlan_tpid: a.tpid,
        pkttype: 0,
    };
    filter::run(&program, frame, meta) != 0
}

#[test]
fn opcodes_are_the_kernels() {
    // Numbers from linux/filter.h, and libc's constants: the core writes them out itself.
    assert_eq!(filter::LD_W_ABS, 0x20);
    assert_eq!(filter::LD_H_ABS, 0x28);
    assert_eq!(filter::LD_B_ABS, 0x30);
    assert_eq!(filter::LD_H_IND, 0x48);
    assert_eq!(filter::LDX_B_MSH, 0xb1);
    assert_eq!(filter::AND_K, 0x54);
    assert_eq!(filter::JA, 0x05);
    assert_eq!(filter::JEQ_K, 0x15);
    assert_eq!(filter::JEQ_X, 0x1d);
    assert_eq!(filter::JSET_K, 0x45);
    assert_eq!(filter::RET_K, 0x06);
    assert_eq!(filter::TAX, 0x07);
    assert_eq!(filter::TXA, 0x87);
    assert_eq!(filter::AD_VLAN_TAG_PRESENT, 0xffff_f030);
    assert_eq!(
        std::mem::size_of::<BpfInsn>(),
        std::mem::size_of::<libc::sock_filter>()
    );
}

#[test]
fn every_filter_is_well_formed() {
    for topo in [lab_topology(), trunk_topology()] {
        for (point, _) in topo.capture_points() {
            let program = capture_filter(&topo, point).unwrap();
            filter::check(&program).unwrap_or_else(|e| panic!("{point:?}: {e}"));
        }
    }
    assert_eq!(
        capture_filter(&lab_topology(), CapturePoint::Trunk),
        Err(FilterError::UnknownPoint(CapturePoint::Trunk))
    );
    assert_eq!(
        capture_filter(&lab_topology(), CapturePoint::Segment(SegmentId(3))),
        Err(FilterError::UnknownPoint(CapturePoint::Segment(SegmentId(
            3
        ))))
    );
}

#[test]
fn filters_drop_ordinary_traffic() {
    let lab = lab_topology();
    let k = IFINDEX_SEG_KIOSK;
    for frame in [
        tcp(),
        tcp4(
            HOST_KIOSK,
            ROUTER_KIOSK,
            KIOSK_HOST4,
            Ipv4Addr::new(8, 8, 8, 8),
            443,
        ),
        udp4(
            HOST_KIOSK,
            ROUTER_KIOSK,
            MAIRIE_HOST4,
            Ipv4Addr::new(8, 8, 8, 8),
            5353,
            53,
        ),
        tcp6(HOST_KIOSK, ROUTER_KIOSK, KIOSK_HOST6, MAIRIE_HOST6, 22),
        arp_request(HOST_KIOSK, KIOSK_HOST4, KIOSK_ROUTER4),
        dhcp_discover(HOST_KIOSK),
        // Other ICMPv6 than neighbour discovery and advertisements.
        ipv6_frame(
            HOST_KIOSK,
            ROUTER_KIOSK,
            &wire::Ipv6::new(KIOSK_HOST6, KIOSK_ROUTER6, wire::IPPROTO_ICMPV6).emit(
                &wire::Icmp {
                    kind: wire::ICMPV6_ECHO_REQUEST,
                    code: 0,
                    rest: [0, 1, 0, 1],
                    body: Vec::new(),
                }
                .emit(Some(wire::Pseudo::new(KIOSK_HOST6, KIOSK_ROUTER6))),
            ),
        ),
    ] {
        assert!(!passes(&lab, k, &frame, NO_AUX), "{frame:02x?}");
    }
    let t = trunk_topology();
    assert!(!passes(&t, IFINDEX_LAN0, &dot1q(&tcp(), 20), NO_AUX));
    assert!(!passes(&t, IFINDEX_LAN0, &tcp(), aux(10)));
    assert!(!passes(&t, IFINDEX_LAN0, &tcp(), NO_AUX));
    assert!(!passes(&t, IFINDEX_LAN0_20, &tcp(), NO_AUX));
    assert!(!passes(&t, IFINDEX_LAN0_20, &tcp(), aux(30)));
}

#[test]
fn filters_pass_what_classify_reports() {
    let lab = lab_topology();
    let k = IFINDEX_SEG_KIOSK;
    for frame in [
        ARP_REPLY_CLAIMING_ROUTER.to_vec(),
        garp(HOST_MAIRIE, MAIRIE_HOST4),
        arp_request(HOST_MAIRIE, MAIRIE_HOST4, MAIRIE_ROUTER4),
        dhcp_offer(HOST_KIOSK, KIOSK_HOST4),
        dhcpv6(HOST_KIOSK, LINK_LOCAL_HOST6, 2),
        router_advertisement(HOST_KIOSK, LINK_LOCAL_HOST6),
        router_advertisement_behind_extensions(HOST_KIOSK, LINK_LOCAL_HOST6),
        tcp4(HOST_MAIRIE, HOST_KIOSK, MAIRIE_HOST4, KIOSK_HOST4, 445),
        udp6(HOST_MAIRIE, ALL_NODES, MAIRIE_HOST6, ALL_NODES6, 5353, 5353),
        tcp4(ROUTER_MAIRIE, HOST_KIOSK, MAIRIE_ROUTER4, KIOSK_HOST4, 22),
        dot1q(&tcp(), 20),
    ] {
        assert!(kiosk_port(&frame).is_some(), "{frame:02x?}");
        assert!(passes(&lab, k, &frame, NO_AUX), "{frame:02x?}");
    }
    assert!(passes(&lab, k, &tcp(), aux(5)));
    let t = trunk_topology();
    for (frame, a) in [
        (dot1q(&tcp(), 99), NO_AUX),
        (tcp(), aux(99)),
        (dot1q(&dot1q(&tcp(), 20), 10), NO_AUX),
        (dot1ad(&tcp(), 20), NO_AUX),
        (dot1q(&tcp(), 20), aux(10)),
        (
            tcp(),
            Aux {
                tci: Some(20),
                tpid: Some(0x88a8),
            },
        ),
    ] {
        assert!(trunk(&frame, a).is_some());
        assert!(passes(&t, IFINDEX_LAN0, &frame, a), "{frame:02x?}");
    }
}

/// Every prefix of every fixture at every point: what classify reports, the filter
/// passes (the kernel's filter sees the same truncated bytes a short frame has).
#[test]
fn filters_pass_every_reported_prefix() {
    for topo in [lab_topology(), trunk_topology()] {
        for (point, ifindex) in topo.capture_points().collect::<Vec<_>>() {
            let program = capture_filter(&topo, point).unwrap();
            for frame in corpus() {
                for len in 0..=frame.len() {
                    for a in [NO_AUX, aux(20), aux(99)] {
                        let cut = &frame[..len];
                        if at(&topo, ifindex, cut, a).is_some() {
                            let meta = Metadata {
                                vlan_tci: a.tci,
                                vlan_tpid: a.tpid,
                                pkttype: 0,
                            };
                            assert_ne!(filter::run(&program, cut, meta), 0, "{cut:02x?}");
                        }
                    }
                }
            }
        }
    }
}

/// A configuration with many segments (each with an IPv6 prefix) still gives filters the
/// kernel accepts, and they still find the far segments.
#[test]
fn filters_scale_to_many_segments() {
    const N: usize = cloison_core::config::MAX_SEGMENTS;
    let mut toml = String::from("[trunk]\ninterface = \"lan0\"\n");
    let mut links = vec![Link {
        name: "lan0".into(),
        index: 1,
        mac: ROUTER_LAN0,
        ipv6: Vec::new(),
    }];
    for i in 0..N {
        let (hi, lo) = (i / 250, i % 250 + 1);
        if i % 2 == 0 {
            toml += &format!(
                "[segments.s{i}]\ninterface = \"e{i}\"\naddress = \"10.{hi}.{lo}.1/24\"\naddress6 = \"fd00:{i:x}::1/64\"\n"
            );
            links.push(Link {
                name: format!("e{i}"),
                index: 100 + i as u32,
                mac: [0x02, 0, 0, 0, hi as u8, lo as u8],
                ipv6: Vec::new(),
            });
        } else {
            toml += &format!(
                "[segments.s{i}]\nvlan = {}\naddress = \"10.{hi}.{lo}.1/24\"\naddress6 = \"fd00:{i:x}::1/60\"\n",
                i + 1
            );
            links.push(Link {
                name: format!("lan0.{}", i + 1),
                index: 100 + i as u32,
                mac: ROUTER_LAN0,
                ipv6: Vec::new(),
            });
        }
    }
    let config = cloison_core::config::parse(&toml, "many.toml").unwrap_or_else(|d| panic!("{d}"));
    let topo = Topology::new(&config, &links).unwrap();
    let mut longest = 0;
    for (point, _) in topo.capture_points() {
        let program = capture_filter(&topo, point).unwrap();
        filter::check(&program).unwrap();
        longest = longest.max(program.len());
    }
    assert!(longest > 1000, "{longest}");
    eprintln!("longest filter for {N} segments: {longest} instructions");
    // Segments are sorted by name: find a dedicated port and a far foreign segment.
    let (port_id, port) = topo.segments().find(|(_, s)| s.vlan.is_none()).unwrap();
    let (_, far) = topo
        .segments()
        .filter(|(id, _)| *id != port_id)
        .last()
        .unwrap();
    let far_host = Ipv4Addr::from(far.net4.network | 7);
    let leak = udp4(
        HOST_MAIRIE,
        BROADCAST,
        far_host,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    let ctx = topo.context(port.ifindex).unwrap();
    assert_eq!(
        classify(&leak, &ctx).map(|f| f.kind),
        Some(EventKind::IsolationBreach)
    );
    let program = capture_filter(&topo, ctx.point).unwrap();
    assert_ne!(filter::run(&program, &leak, Metadata::default()), 0);
    let own_host = Ipv4Addr::from(port.net4.network | 7);
    let ordinary = udp4(
        HOST_KIOSK,
        BROADCAST,
        own_host,
        Ipv4Addr::BROADCAST,
        137,
        137,
    );
    assert_eq!(filter::run(&program, &ordinary, Metadata::default()), 0);
}

#[test]
fn too_many_segments_are_refused() {
    // A valid configuration has at most config::MAX_SEGMENTS; the topology guards its
    // own limit anyway, for a Config built some other way.
    let toml = "[segments.s0]\ninterface = \"e0\"\naddress = \"10.0.0.1/24\"\n";
    let mut config =
        cloison_core::config::parse(toml, "one.toml").unwrap_or_else(|d| panic!("{d}"));
    let first = config.segments[0].clone();
    let mut links = Vec::new();
    // Segment ids are one byte: 256 segments at most.
    const SEGMENT_IDS: usize = 256;
    for i in 0..=SEGMENT_IDS {
        let name = format!("e{i}");
        if i > 0 {
            let mut s = first.clone();
            s.interface = cloison_core::config::IfName::parse(&name).expect("interface name");
            config.segments.push(s);
        }
        links.push(Link {
            name,
            index: i as u32 + 1,
            mac: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            ipv6: Vec::new(),
        });
    }
    assert_eq!(
        Topology::new(&config, &links),
        Err(TopologyError::TooManySegments {
            count: SEGMENT_IDS + 1
        })
    );
}
