//! The simulated mairie as data: which namespaces exist, which `ip` commands build each
//! one, which sysctls quiet its hosts, which listeners run where. Pure: a validated
//! `Config` and a lab id in, a `Topology` out; nothing here touches the kernel.
//!
//! The router namespace only receives the interfaces named in the configuration, down and
//! unaddressed: addressing them, routing and forwarding is `cloison apply`'s job, the thing
//! the lab exists to test.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use cloison_core::config::{Attachment, Config, Service};

/// A namespace of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// The router under test: the configuration's interfaces, left for `cloison apply`.
    Router,
    /// One bridge per segment: the wires the segments' hosts share with the router.
    Switch,
    MairiePc,
    /// Listens on tcp 445, 3389, 22, 80 and udp 53.
    MairieSrv,
    Kiosk,
    Poste,
    /// The town's Internet box on the `isp` uplink; admin page on tcp 80.
    Isp,
    /// The Internet behind `isp`: 198.51.100.10, 2001:db8:100::10.
    InetA,
    /// The La Poste box on the `laposte` uplink.
    Lpbox,
    /// The Internet behind `lpbox`: 203.0.113.10, 2001:db8:113::10.
    InetB,
}

impl Node {
    pub const ALL: [Node; 10] = [
        Node::Router,
        Node::Switch,
        Node::MairiePc,
        Node::MairieSrv,
        Node::Kiosk,
        Node::Poste,
        Node::Isp,
        Node::InetA,
        Node::Lpbox,
        Node::InetB,
    ];

    /// The role part of the namespace name (`cl4242x1-mairie-srv`).
    pub fn role(self) -> &'static str {
        match self {
            Node::Router => "router",
            Node::Switch => "switch",
            Node::MairiePc => "mairie-pc",
            Node::MairieSrv => "mairie-srv",
            Node::Kiosk => "kiosk",
            Node::Poste => "poste",
            Node::Isp => "isp",
            Node::InetA => "inet-a",
            Node::Lpbox => "lpbox",
            Node::InetB => "inet-b",
        }
    }

    pub fn from_role(role: &str) -> Option<Node> {
        Node::ALL.into_iter().find(|n| n.role() == role)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.role())
    }
}

/// The host interface of every host, box and Internet node (boxes also have `eth1`,
/// toward their Internet).
pub const HOST_IF: &str = "eth0";
/// A box's interface toward the Internet host behind it.
pub const BOX_INET_IF: &str = "eth1";
/// The switch's end of the router's trunk, when the configuration has one (and no VLAN
/// segment: the lab's kernel may lack 8021q): what the tests send from there arrives
/// untagged on the trunk's parent, as from a switch's native VLAN.
pub const SWITCH_TRUNK_PORT: &str = "trunk";

/// A host on a segment: where it sits and which part of the segment's subnets it takes.
struct HostPlan {
    node: Node,
    segment: &'static str,
    /// Added to the segment's IPv4 network address.
    host4: u32,
    /// Added to the segment's IPv6 prefix (written in hex: `fd00:10::10` is 0x10).
    host6: u128,
    tcp: &'static [u16],
    udp: &'static [u16],
}

const HOSTS: [HostPlan; 4] = [
    HostPlan {
        node: Node::MairiePc,
        segment: "mairie",
        host4: 10,
        host6: 0x10,
        tcp: &[],
        udp: &[],
    },
    HostPlan {
        node: Node::MairieSrv,
        segment: "mairie",
        host4: 5,
        host6: 0x5,
        tcp: &[445, 3389, 22, 80],
        udp: &[53],
    },
    HostPlan {
        node: Node::Kiosk,
        segment: "kiosk",
        host4: 15,
        host6: 0x15,
        tcp: &[],
        udp: &[],
    },
    HostPlan {
        node: Node::Poste,
        segment: "poste",
        host4: 30,
        host6: 0x30,
        tcp: &[],
        udp: &[],
    },
];

/// An uplink's box and the Internet host behind it. The box routes between its two
/// links and nothing else: no default route, no masquerade, so which uplink a packet left
/// by, and whether cloison masqueraded it, can be seen from the far side.
struct BoxPlan {
    node: Node,
    uplink: &'static str,
    box_tcp: &'static [u16],
    inet: Node,
    /// The box's address on the Internet link; the Internet host is `inet_host`.
    inet_box4: Ipv4Addr,
    inet_host4: Ipv4Addr,
    inet_box6: Ipv6Addr,
    inet_host6: Ipv6Addr,
}

/// Listeners of the Internet hosts.
const INET_TCP: &[u16] = &[80, 443];
const INET_UDP: &[u16] = &[53];
/// Documentation prefixes (RFC 5737, RFC 3849) stand in for the Internet.
const INET_PREFIX4: u8 = 24;
const INET_PREFIX6: u8 = 64;

const BOXES: [BoxPlan; 2] = [
    BoxPlan {
        node: Node::Isp,
        uplink: "isp",
        box_tcp: &[80],
        inet: Node::InetA,
        inet_box4: Ipv4Addr::new(198, 51, 100, 1),
        inet_host4: Ipv4Addr::new(198, 51, 100, 10),
        inet_box6: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1),
        inet_host6: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0x10),
    },
    BoxPlan {
        node: Node::Lpbox,
        uplink: "laposte",
        box_tcp: &[],
        inet: Node::InetB,
        inet_box4: Ipv4Addr::new(203, 0, 113, 1),
        inet_host4: Ipv4Addr::new(203, 0, 113, 10),
        inet_box6: Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 1),
        inet_host6: Ipv6Addr::new(0x2001, 0xdb8, 0x113, 0, 0, 0, 0, 0x10),
    },
];

/// Sysctls (paths under /proc/sys) that keep a host quiet: no router solicitations, no
/// duplicate address detection, no autoconfiguration from stray advertisements. Set on
/// `all` and `default` before the host's interfaces exist, so they inherit them.
const QUIET_HOST: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/accept_dad", "0"),
    ("net/ipv6/conf/default/accept_dad", "0"),
    ("net/ipv6/conf/all/dad_transmits", "0"),
    ("net/ipv6/conf/default/dad_transmits", "0"),
    ("net/ipv6/conf/all/router_solicitations", "0"),
    ("net/ipv6/conf/default/router_solicitations", "0"),
    ("net/ipv6/conf/all/accept_ra", "0"),
    ("net/ipv6/conf/default/accept_ra", "0"),
];

/// A new namespace inherits the machine's IPv4 settings (ip_forward, rp_filter...) unless
/// net.core.devconf_inherit_init_net says otherwise; a host must not route, whatever the
/// machine does.
const NOT_A_ROUTER: &[(&str, &str)] = &[("net/ipv4/ip_forward", "0")];

/// A box forwards between its two links.
const FORWARDING: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "1"),
    ("net/ipv6/conf/all/forwarding", "1"),
];

/// The switch is layer 2 only: no IPv6 on the bridges, so it never speaks.
const SILENT_SWITCH: &[(&str, &str)] = &[
    ("net/ipv6/conf/all/disable_ipv6", "1"),
    ("net/ipv6/conf/default/disable_ipv6", "1"),
];

/// What one namespace holds and how it is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub node: Node,
    /// The namespace name: `<lab id>-<role>`.
    pub ns: String,
    /// Written (path under /proc/sys, value) before any interface exists.
    pub sysctls: Vec<(&'static str, &'static str)>,
    /// `ip -batch` lines run inside the namespace, in this order.
    pub script: Vec<String>,
    /// Scripts of wave n run after every script of wave n-1 has finished (links must exist,
    /// and the peer of an interface must be up before a route via it is added).
    pub wave: u8,
    /// The node's own address, as the rest of the lab reaches it.
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// Listeners started inside the namespace.
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

/// The whole lab as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub id: String,
    /// One per `Node`, in `Node::ALL` order.
    pub nodes: Vec<NodePlan>,
}

impl Topology {
    pub fn node(&self, node: Node) -> &NodePlan {
        // Every Node is planned (`plan` fills them in `Node::ALL` order).
        &self.nodes[Node::ALL.iter().position(|n| *n == node).unwrap_or(0)]
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.ns.as_str())
    }

    pub fn max_wave(&self) -> u8 {
        self.nodes.iter().map(|n| n.wave).max().unwrap_or(0)
    }
}

/// Why the configuration cannot be turned into a lab.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopologyError {
    #[error(
        "segment `{segment}` is VLAN {vlan} on `{trunk}`; the lab needs one dedicated interface per segment (the kernel may lack 8021q), as in config/lab.toml"
    )]
    VlanSegment {
        segment: String,
        trunk: String,
        vlan: u16,
    },
    #[error(
        "the lab puts {node} on segment `{segment}`, which the configuration lacks; add [segments.{segment}] (see config/lab.toml)"
    )]
    MissingSegment { node: Node, segment: &'static str },
    #[error(
        "segment `{segment}` has no IPv6 address; the lab's hosts are dual-stack, set segments.{segment}.address6"
    )]
    MissingSegment6 { segment: String },
    #[error(
        "the lab puts {node} on uplink `{uplink}`, which the configuration lacks; add [uplinks.{uplink}] (see config/lab.toml)"
    )]
    MissingUplink { node: Node, uplink: &'static str },
    #[error(
        "uplink `{uplink}` has no static `{key}`; the lab's box takes the gateway address, so set uplinks.{uplink}.address, gateway, address6 and gateway6"
    )]
    UplinkNotStatic { uplink: String, key: &'static str },
    #[error(
        "uplink `{uplink}`: the lab knows the boxes of uplinks `isp` and `laposte` only; remove it from the lab configuration"
    )]
    UnknownUplink { uplink: String },
    #[error(
        "{node} would get {addr}, outside segment `{segment}` or taken by the router; widen the segment's subnet"
    )]
    HostAddress {
        node: Node,
        segment: String,
        addr: IpAddr,
    },
}

/// Plans the lab for `config`; `id` prefixes every namespace name (`cl4242x1`).
pub fn plan(config: &Config, id: &str) -> Result<Topology, TopologyError> {
    let ns = |node: Node| format!("{id}-{}", node.role());
    for seg in &config.segments {
        if let Attachment::Vlan { trunk, id } = &seg.attachment {
            return Err(TopologyError::VlanSegment {
                segment: seg.name.to_string(),
                trunk: trunk.to_string(),
                vlan: id.get(),
            });
        }
    }
    if let Some(u) = config
        .uplinks
        .iter()
        .find(|u| !BOXES.iter().any(|b| b.uplink == u.name.as_str()))
    {
        return Err(TopologyError::UnknownUplink {
            uplink: u.name.to_string(),
        });
    }

    let mut nodes: Vec<NodePlan> = Node::ALL
        .into_iter()
        .map(|node| NodePlan {
            node,
            ns: ns(node),
            sysctls: Vec::new(),
            script: vec!["link set lo up".to_owned()],
            wave: 1,
            v4: None,
            v6: None,
            tcp: Vec::new(),
            udp: Vec::new(),
        })
        .collect();
    let idx = |node: Node| Node::ALL.iter().position(|n| *n == node).unwrap_or(0);

    // The router: lo up and its own services, nothing else (cloison apply does the rest).
    let router = &mut nodes[idx(Node::Router)];
    router.wave = 2;
    router.tcp.push(config.router.ssh_port);
    for service in Service::ALL {
        for (proto, port) in service.ports() {
            let list = match proto {
                cloison_core::config::Proto::Tcp => &mut router.tcp,
                cloison_core::config::Proto::Udp => &mut router.udp,
                cloison_core::config::Proto::Icmp => continue,
            };
            if !list.contains(port) {
                list.push(*port);
            }
        }
    }

    // The switch: one bridge per segment, the router's port and the segment's hosts on it.
    let router_ns = ns(Node::Router);
    let mut switch = Vec::new();
    for seg in &config.segments {
        let bridge = ifname(&format!("br-{}", seg.name));
        let port = ifname(&format!("rt-{}", seg.name));
        switch.push(format!(
            "link add {bridge} type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
        ));
        switch.push(format!(
            "link add {port} type veth peer name {} netns {router_ns}",
            seg.interface
        ));
        switch.push(format!("link set {port} master {bridge} up"));
        switch.push(format!("link set {bridge} up"));
    }
    if let Some(trunk) = &config.trunk {
        switch.push(format!(
            "link add {SWITCH_TRUNK_PORT} type veth peer name {trunk} netns {router_ns}"
        ));
        switch.push(format!("link set {SWITCH_TRUNK_PORT} up"));
    }
    for host in &HOSTS {
        let seg = config
            .segment(host.segment)
            .ok_or(TopologyError::MissingSegment {
                node: host.node,
                segment: host.segment,
            })?;
        let seg6 = seg.address6.ok_or_else(|| TopologyError::MissingSegment6 {
            segment: seg.name.to_string(),
        })?;
        let bad = |addr: IpAddr| TopologyError::HostAddress {
            node: host.node,
            segment: seg.name.to_string(),
            addr,
        };
        let v4 = host_in4(seg.address.subnet(), host.host4)
            .filter(|a| *a != seg.address.addr())
            .ok_or_else(|| {
                bad(Ipv4Addr::from(u32::from(seg.address.subnet().network()) + host.host4).into())
            })?;
        let v6 = host_in6(seg6.subnet(), host.host6)
            .filter(|a| *a != seg6.addr())
            .ok_or_else(|| {
                bad(Ipv6Addr::from(u128::from(seg6.subnet().network()) + host.host6).into())
            })?;
        let bridge = ifname(&format!("br-{}", seg.name));
        let port = host.node.role();
        let host_ns = ns(host.node);
        switch.push(format!(
            "link add {port} type veth peer name {HOST_IF} netns {host_ns}"
        ));
        switch.push(format!("link set {port} master {bridge} up"));

        let plan = &mut nodes[idx(host.node)];
        plan.wave = 2;
        plan.sysctls.extend_from_slice(QUIET_HOST);
        plan.sysctls.extend_from_slice(NOT_A_ROUTER);
        plan.script.extend(addressing(
            HOST_IF,
            (v4, seg.address.prefix_len()),
            (v6, seg6.prefix_len()),
        ));
        plan.script
            .push(format!("route add default via {}", seg.address.addr()));
        plan.script
            .push(format!("route add ::/0 via {}", seg6.addr()));
        plan.v4 = Some(v4);
        plan.v6 = Some(v6);
        plan.tcp.extend_from_slice(host.tcp);
        plan.udp.extend_from_slice(host.udp);
    }
    let sw = &mut nodes[idx(Node::Switch)];
    sw.sysctls.extend_from_slice(SILENT_SWITCH);
    sw.script.extend(switch);

    // The boxes: the uplink's wire toward the router, the Internet host behind.
    for b in &BOXES {
        let up = config
            .uplink(b.uplink)
            .ok_or(TopologyError::MissingUplink {
                node: b.node,
                uplink: b.uplink,
            })?;
        let missing = |key| TopologyError::UplinkNotStatic {
            uplink: up.name.to_string(),
            key,
        };
        let gw4 = up.gateway.ok_or_else(|| missing("gateway"))?;
        let len4 = up.address.ok_or_else(|| missing("address"))?.prefix_len();
        let gw6 = up.gateway6.ok_or_else(|| missing("gateway6"))?;
        let len6 = up.address6.ok_or_else(|| missing("address6"))?.prefix_len();
        let inet_ns = ns(b.inet);

        let plan = &mut nodes[idx(b.node)];
        plan.wave = 1;
        plan.sysctls.extend_from_slice(QUIET_HOST);
        plan.sysctls.extend_from_slice(FORWARDING);
        plan.script.push(format!(
            "link add {HOST_IF} type veth peer name {} netns {router_ns}",
            up.interface
        ));
        plan.script.push(format!(
            "link add {BOX_INET_IF} type veth peer name {HOST_IF} netns {inet_ns}"
        ));
        plan.script
            .extend(addressing(HOST_IF, (gw4, len4), (gw6, len6)));
        plan.script.extend(addressing(
            BOX_INET_IF,
            (b.inet_box4, INET_PREFIX4),
            (b.inet_box6, INET_PREFIX6),
        ));
        plan.v4 = Some(gw4);
        plan.v6 = Some(gw6);
        plan.tcp.extend_from_slice(b.box_tcp);

        let inet = &mut nodes[idx(b.inet)];
        inet.wave = 2;
        inet.sysctls.extend_from_slice(QUIET_HOST);
        inet.sysctls.extend_from_slice(NOT_A_ROUTER);
        inet.script.extend(addressing(
            HOST_IF,
            (b.inet_host4, INET_PREFIX4),
            (b.inet_host6, INET_PREFIX6),
        ));
        inet.script
            .push(format!("route add default via {}", b.inet_box4));
        inet.script
            .push(format!("route add ::/0 via {}", b.inet_box6));
        inet.v4 = Some(b.inet_host4);
        inet.v6 = Some(b.inet_host6);
        inet.tcp.extend_from_slice(INET_TCP);
        inet.udp.extend_from_slice(INET_UDP);
    }

    Ok(Topology {
        id: id.to_owned(),
        nodes,
    })
}

/// Brings `dev` up with one IPv4 and one IPv6 address (no DAD: the lab owns the wire).
fn addressing(dev: &str, v4: (Ipv4Addr, u8), v6: (Ipv6Addr, u8)) -> [String; 3] {
    [
        format!("link set {dev} up"),
        format!("addr add {}/{} dev {dev}", v4.0, v4.1),
        format!("addr add {}/{} dev {dev} nodad", v6.0, v6.1),
    ]
}

/// `network + n` when it is a host address of the subnet (not network or broadcast).
fn host_in4(net: Ipv4Net, n: u32) -> Option<Ipv4Addr> {
    let a = Ipv4Addr::from(u32::from(net.network()).checked_add(n)?);
    (net.contains(&a) && a != net.network() && a != net.broadcast()).then_some(a)
}

fn host_in6(net: Ipv6Net, n: u128) -> Option<Ipv6Addr> {
    let a = Ipv6Addr::from(u128::from(net.network()).checked_add(n)?);
    (net.contains(&a) && a != net.network()).then_some(a)
}

/// Interface names derived from segment names are cut to the kernel's 15 bytes.
fn ifname(s: &str) -> String {
    s.chars()
        .take(cloison_core::config::IfName::MAX_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = include_str!("../../../config/lab.toml");

    fn lab() -> Topology {
        let config = cloison_core::config::parse(LAB, "lab.toml").unwrap();
        plan(&config, "cl1x1").unwrap()
    }

    #[test]
    fn hosts_get_the_briefed_addresses_from_the_segments() {
        let t = lab();
        let addr = |n| {
            let p = t.node(n);
            (p.v4.unwrap().to_string(), p.v6.unwrap().to_string())
        };
        assert_eq!(
            addr(Node::MairiePc),
            ("192.168.10.10".into(), "fd00:10::10".into())
        );
        assert_eq!(
            addr(Node::MairieSrv),
            ("192.168.10.5".into(), "fd00:10::5".into())
        );
        assert_eq!(
            addr(Node::Kiosk),
            ("192.168.20.15".into(), "fd00:20::15".into())
        );
        assert_eq!(
            addr(Node::Poste),
            ("192.168.30.30".into(), "fd00:30::30".into())
        );
        assert_eq!(
            addr(Node::Isp),
            ("192.168.1.254".into(), "2001:db8:1::1".into())
        );
        assert_eq!(
            addr(Node::Lpbox),
            ("10.30.0.1".into(), "2001:db8:30::1".into())
        );
        assert_eq!(
            addr(Node::InetB),
            ("203.0.113.10".into(), "2001:db8:113::10".into())
        );
        let pc = t.node(Node::MairiePc);
        assert!(
            pc.script
                .contains(&"route add default via 192.168.10.1".to_owned())
        );
        assert!(
            pc.script
                .contains(&"route add ::/0 via fd00:10::1".to_owned())
        );
        assert!(
            pc.script
                .contains(&"addr add fd00:10::10/64 dev eth0 nodad".to_owned())
        );
    }

    #[test]
    fn router_gets_config_interfaces_only_unaddressed() {
        let t = lab();
        let router = t.node(Node::Router);
        assert_eq!(router.ns, "cl1x1-router");
        assert_eq!(router.script, ["link set lo up"]);
        assert!(router.sysctls.is_empty());
        assert_eq!(router.tcp, [22, 53]);
        assert_eq!(router.udp, [53, 67, 123]);
        let peers: Vec<&String> = t
            .nodes
            .iter()
            .flat_map(|n| &n.script)
            .filter(|l| l.contains("netns cl1x1-router"))
            .collect();
        for name in ["seg-mairie", "seg-kiosk", "seg-poste", "wan0", "wan1"] {
            assert_eq!(
                peers
                    .iter()
                    .filter(|l| l.contains(&format!("peer name {name} ")))
                    .count(),
                1,
                "{name} in {peers:?}"
            );
        }
        // Nothing ever addresses or raises an interface in the router's namespace.
        assert!(
            t.nodes
                .iter()
                .flat_map(|n| &n.script)
                .all(|l| !l.contains("seg-") || l.starts_with("link add"))
        );
    }

    #[test]
    fn boxes_do_not_route_to_the_other_internet() {
        let t = lab();
        for n in [Node::Isp, Node::Lpbox] {
            assert!(t.node(n).script.iter().all(|l| !l.starts_with("route")));
            assert!(t.node(n).sysctls.contains(&("net/ipv4/ip_forward", "1")));
        }
        assert!(t.node(Node::Isp).tcp == [80] && t.node(Node::Lpbox).tcp.is_empty());
    }

    #[test]
    fn wrong_configs_are_refused_with_the_fix() {
        let config = cloison_core::config::parse(
            &LAB.replace("[segments.poste]", "[segments.guichet]")
                .replace("\"poste\"", "\"guichet\""),
            "t.toml",
        )
        .unwrap();
        let e = plan(&config, "cl1x1").unwrap_err();
        assert_eq!(
            e,
            TopologyError::MissingSegment {
                node: Node::Poste,
                segment: "poste"
            }
        );
        assert!(e.to_string().contains("[segments.poste]"));

        let example = include_str!("../../../config/cloison.toml");
        let config = cloison_core::config::parse(example, "cloison.toml").unwrap();
        assert!(matches!(
            plan(&config, "x").unwrap_err(),
            TopologyError::VlanSegment { .. }
        ));
    }

    #[test]
    fn host_numbers_stay_inside_the_subnet() {
        let net: Ipv4Net = "10.0.0.0/29".parse().unwrap();
        assert_eq!(host_in4(net, 5), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(host_in4(net, 7), None);
        assert_eq!(host_in4(net, 10), None);
        assert_eq!(ifname("br-abcdefghijklmno"), "br-abcdefghijkl");
    }
}
