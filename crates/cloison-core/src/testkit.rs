//! The two shipped configurations with made-up links (MAC addresses, interface indexes)
//! and the addresses the tests use: what the unit tests of `inspect` and the frame kit
//! of `cloison-lab` build their topologies and frames from. Compiled for this crate's
//! tests and, with the `testkit` feature, for `cloison-lab` and the fuzz targets; the
//! `cloison` binary never enables it.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::config::{self, Config};
use crate::inspect::{Link, Topology};

/// The trunk `lan0`; its VLAN sub-interfaces share this MAC, as Linux does by default.
pub const ROUTER_LAN0: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0x00, 0x01];
/// The lab's dedicated segment ports.
pub const ROUTER_KIOSK: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0x20, 0x01];
pub const ROUTER_MAIRIE: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0x10, 0x01];
pub const ROUTER_POSTE: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0x30, 0x01];
pub const ROUTER_WAN0: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0xf0, 0x01];
pub const ROUTER_WAN1: [u8; 6] = [0x02, 0xc1, 0x00, 0x00, 0xf1, 0x01];
pub const HOST_KIOSK: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x20, 0x05];
pub const HOST_MAIRIE: [u8; 6] = [0x52, 0x54, 0x00, 0x00, 0x10, 0x05];
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// 33:33:00:00:00:01, all-nodes.
pub const ALL_NODES: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];

pub const IFINDEX_LAN0: u32 = 2;
pub const IFINDEX_SEG_KIOSK: u32 = 3;
pub const IFINDEX_SEG_MAIRIE: u32 = 4;
pub const IFINDEX_SEG_POSTE: u32 = 5;
pub const IFINDEX_WAN0: u32 = 6;
pub const IFINDEX_WAN1: u32 = 7;
pub const IFINDEX_LAN0_10: u32 = 10;
pub const IFINDEX_LAN0_20: u32 = 20;
pub const IFINDEX_LAN0_30: u32 = 30;

pub const KIOSK_HOST4: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 5);
pub const KIOSK_ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 168, 20, 1);
pub const MAIRIE_HOST4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 5);
pub const MAIRIE_ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 1);
pub const KIOSK_ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 0, 0, 1);
pub const MAIRIE_ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1);
pub const KIOSK_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x20, 0, 0, 0, 0, 0, 5);
pub const MAIRIE_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 5);
pub const LINK_LOCAL_HOST6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe00, 0x2005);
pub const ALL_NODES6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// config/lab.toml: dedicated ports. Segment ids: kiosk 0, mairie 1, poste 2.
pub fn lab_config() -> Config {
    config::parse(include_str!("../../../config/lab.toml"), "lab.toml").expect("lab.toml is valid")
}

/// config/cloison.toml: VLANs 10 (mairie), 20 (kiosk), 30 (poste) on trunk lan0.
pub fn trunk_config() -> Config {
    config::parse(include_str!("../../../config/cloison.toml"), "cloison.toml")
        .expect("cloison.toml is valid")
}

/// The link-local address the kernel derives from a MAC by default (EUI-64).
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

fn link(name: &str, index: u32, mac: [u8; 6]) -> Link {
    Link {
        name: name.into(),
        index,
        mac,
        ipv6: vec![link_local(mac)],
    }
}

pub fn lab_links() -> Vec<Link> {
    vec![
        link("seg-kiosk", IFINDEX_SEG_KIOSK, ROUTER_KIOSK),
        link("seg-mairie", IFINDEX_SEG_MAIRIE, ROUTER_MAIRIE),
        link("seg-poste", IFINDEX_SEG_POSTE, ROUTER_POSTE),
        link("wan0", IFINDEX_WAN0, ROUTER_WAN0),
        link("wan1", IFINDEX_WAN1, ROUTER_WAN1),
    ]
}

pub fn trunk_links() -> Vec<Link> {
    vec![
        link("lan0", IFINDEX_LAN0, ROUTER_LAN0),
        link("lan0.10", IFINDEX_LAN0_10, ROUTER_LAN0),
        link("lan0.20", IFINDEX_LAN0_20, ROUTER_LAN0),
        link("lan0.30", IFINDEX_LAN0_30, ROUTER_LAN0),
        link("wan0", IFINDEX_WAN0, ROUTER_WAN0),
        link("wan1", IFINDEX_WAN1, ROUTER_WAN1),
    ]
}

pub fn lab_topology() -> Topology {
    Topology::new(&lab_config(), &lab_links()).expect("lab links cover the lab")
}

pub fn trunk_topology() -> Topology {
    Topology::new(&trunk_config(), &trunk_links()).expect("trunk links cover the example")
}
