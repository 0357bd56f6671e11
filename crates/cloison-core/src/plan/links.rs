//! The links, addresses, policy routes and sysctls a configuration needs. Pure: names
//! and addresses only; the `netlink` and `sysctl` edges make them so.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::config::{Attachment, Config, IfName, VlanId};
use crate::names::{ROUTE_TABLE_BASE, RULE_PRIORITY_MAIN_FIRST, RULE_PRIORITY_SEGMENTS};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkPlan {
    /// VLAN sub-interfaces cloison creates on the trunk.
    pub vlans: Vec<VlanLink>,
    /// Addresses the router holds (segments, and uplinks with a static address).
    pub addresses: Vec<Address>,
    /// Interfaces whose addresses cloison owns (the segments'): addresses not in the
    /// plan are removed there, never on uplinks (DHCP may have put them there).
    pub owned: Vec<IfName>,
    /// Interfaces to bring up, parents before children.
    pub up: Vec<IfName>,
    /// Default routes in the per-uplink tables.
    pub routes: Vec<Route>,
    /// Policy-routing rules sending each segment to its uplink's table.
    pub rules: Vec<RoutingRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VlanLink {
    pub name: IfName,
    pub parent: IfName,
    pub id: VlanId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub interface: IfName,
    /// Address with the link's prefix length.
    pub address: IpNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub table: u32,
    pub family: Family,
    pub via: IpAddr,
    pub dev: IfName,
    /// The uplink the table belongs to.
    pub uplink: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// `lookup main suppress_prefixlength 0`: use the main table for everything but its
    /// default route, so traffic between segments and to connected networks is routed
    /// normally (and meets the firewall) before the per-uplink default routes apply.
    MainWithoutDefault,
    /// `lookup TABLE`.
    Table(u32),
}

/// A policy-routing rule (`ip rule`). Several rules may share a priority (the second
/// wall's exceptions do): a rule is identified by all its fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RoutingRule {
    pub priority: u32,
    pub family: Family,
    pub iif: Option<IfName>,
    /// `to PREFIX`.
    pub to: Option<IpNet>,
    /// `ipproto`, with an optional port selector (`sport N` or `dport N`).
    pub proto: Option<RuleProto>,
    pub action: RuleAction,
}

/// The protocol selector of a rule, and a port of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleProto {
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub number: u8,
    pub port: Option<RulePort>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RulePort {
    Source(u16),
    Destination(u16),
}

/// One `/proc/sys` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sysctl {
    /// Relative to `/proc/sys`, with `/` separators (`net/ipv4/conf/lan0.10/rp_filter`;
    /// interface names may hold dots, so the dotted form would be ambiguous).
    pub key: String,
    pub value: String,
}

impl Sysctl {
    fn new(key: impl Into<String>, value: impl Into<String>) -> Sysctl {
        Sysctl {
            key: key.into(),
            value: value.into(),
        }
    }
}

pub fn link_plan(config: &Config) -> LinkPlan {
    let mut plan = LinkPlan {
        vlans: Vec::new(),
        addresses: Vec::new(),
        owned: Vec::new(),
        up: Vec::new(),
        routes: Vec::new(),
        rules: Vec::new(),
    };
    if let Some(trunk) = &config.trunk {
        plan.up.push(trunk.clone());
    }
    for s in &config.segments {
        if let Attachment::Vlan { trunk, id } = &s.attachment {
            plan.vlans.push(VlanLink {
                name: s.interface.clone(),
                parent: trunk.clone(),
                id: *id,
            });
        }
        plan.addresses.push(Address {
            interface: s.interface.clone(),
            address: IpNet::V4(
                ipnet::Ipv4Net::new(s.address.addr(), s.address.prefix_len())
                    .expect("valid prefix"),
            ),
        });
        if let Some(a6) = s.address6 {
            plan.addresses.push(Address {
                interface: s.interface.clone(),
                address: IpNet::V6(
                    ipnet::Ipv6Net::new(a6.addr(), a6.prefix_len()).expect("valid prefix"),
                ),
            });
        }
        plan.owned.push(s.interface.clone());
        plan.up.push(s.interface.clone());
    }
    for (i, u) in config.uplinks.iter().enumerate() {
        if let Some(a) = u.address {
            plan.addresses.push(Address {
                interface: u.interface.clone(),
                address: IpNet::V4(
                    ipnet::Ipv4Net::new(a.addr(), a.prefix_len()).expect("valid prefix"),
                ),
            });
        }
        if let Some(a6) = u.address6 {
            plan.addresses.push(Address {
                interface: u.interface.clone(),
                address: IpNet::V6(
                    ipnet::Ipv6Net::new(a6.addr(), a6.prefix_len()).expect("valid prefix"),
                ),
            });
        }
        plan.up.push(u.interface.clone());
        let table = ROUTE_TABLE_BASE + u32::try_from(i).expect("at most MAX_UPLINKS uplinks");
        if let Some(gw) = u.gateway {
            plan.routes.push(Route {
                table,
                family: Family::V4,
                via: IpAddr::V4(gw),
                dev: u.interface.clone(),
                uplink: u.name.to_string(),
            });
        }
        if let Some(gw) = u.gateway6 {
            plan.routes.push(Route {
                table,
                family: Family::V6,
                via: IpAddr::V6(gw),
                dev: u.interface.clone(),
                uplink: u.name.to_string(),
            });
        }
    }
    for family in [Family::V4, Family::V6] {
        let mut rules = Vec::new();
        for s in &config.segments {
            let Some(uplink) = &s.uplink else { continue };
            let Some(route) = plan
                .routes
                .iter()
                .find(|r| r.family == family && r.uplink == uplink.as_str())
            else {
                continue;
            };
            rules.push(RoutingRule {
                priority: RULE_PRIORITY_SEGMENTS
                    + u32::try_from(rules.len()).expect("at most MAX_SEGMENTS segments"),
                family,
                iif: Some(s.interface.clone()),
                to: None,
                proto: None,
                action: RuleAction::Table(route.table),
            });
        }
        if !rules.is_empty() {
            plan.rules.push(RoutingRule {
                priority: RULE_PRIORITY_MAIN_FIRST,
                family,
                iif: None,
                to: None,
                proto: None,
                action: RuleAction::MainWithoutDefault,
            });
            plan.rules.extend(rules);
        }
    }
    plan
}

/// Hardening sysctls, applied before forwarding is switched on.
pub fn sysctls(config: &Config) -> Vec<Sysctl> {
    let mut out = vec![
        Sysctl::new("net/ipv4/conf/all/send_redirects", "0"),
        Sysctl::new("net/ipv4/conf/all/accept_redirects", "0"),
        Sysctl::new("net/ipv6/conf/all/accept_redirects", "0"),
    ];
    for s in &config.segments {
        let i = s.interface.as_str();
        // Strict reverse-path filtering, ARP answered only for the interface's own
        // address, no redirects, and no router advertisements accepted from the segment.
        out.push(Sysctl::new(format!("net/ipv4/conf/{i}/rp_filter"), "1"));
        out.push(Sysctl::new(format!("net/ipv4/conf/{i}/arp_ignore"), "1"));
        out.push(Sysctl::new(format!("net/ipv4/conf/{i}/arp_filter"), "1"));
        out.push(Sysctl::new(format!("net/ipv4/conf/{i}/arp_announce"), "2"));
        out.push(Sysctl::new(
            format!("net/ipv4/conf/{i}/send_redirects"),
            "0",
        ));
        out.push(Sysctl::new(
            format!("net/ipv4/conf/{i}/accept_redirects"),
            "0",
        ));
        out.push(Sysctl::new(format!("net/ipv6/conf/{i}/accept_ra"), "0"));
        out.push(Sysctl::new(
            format!("net/ipv6/conf/{i}/accept_redirects"),
            "0",
        ));
    }
    if let Some(t) = &config.trunk {
        // The trunk's parent has no address of its own: it answers no ARP for the
        // router's addresses (`arp_ignore`), and takes no advertisement or redirect, from
        // whatever arrives untagged (the ruleset drops and counts that too).
        let i = t.as_str();
        out.push(Sysctl::new(format!("net/ipv4/conf/{i}/arp_ignore"), "1"));
        out.push(Sysctl::new(
            format!("net/ipv4/conf/{i}/accept_redirects"),
            "0",
        ));
        out.push(Sysctl::new(format!("net/ipv6/conf/{i}/accept_ra"), "0"));
        out.push(Sysctl::new(
            format!("net/ipv6/conf/{i}/accept_redirects"),
            "0",
        ));
    }
    for u in &config.uplinks {
        let i = u.interface.as_str();
        out.push(Sysctl::new(
            format!("net/ipv4/conf/{i}/accept_redirects"),
            "0",
        ));
        out.push(Sysctl::new(
            format!("net/ipv6/conf/{i}/accept_redirects"),
            "0",
        ));
        if u.address6.is_none() {
            // With forwarding on, the kernel ignores router advertisements unless
            // accept_ra is 2; an uplink without a static IPv6 address may rely on them.
            out.push(Sysctl::new(format!("net/ipv6/conf/{i}/accept_ra"), "2"));
        }
    }
    out
}

/// IPv4 forwarding, and IPv6 forwarding when a segment has IPv6: switched on last.
pub fn forwarding_on(config: &Config) -> Vec<Sysctl> {
    let mut out = vec![Sysctl::new(FORWARDING_V4, "1")];
    if config.segments.iter().any(|s| s.address6.is_some()) {
        out.push(Sysctl::new(FORWARDING_V6, "1"));
    }
    out
}

/// Both families' forwarding off: how `apply --remove` leaves the box, and what every
/// fail-closed path does when cloison's table is not in place. Needs no configuration
/// (there may be none).
pub fn forwarding_off() -> Vec<Sysctl> {
    vec![
        Sysctl::new(FORWARDING_V4, "0"),
        Sysctl::new(FORWARDING_V6, "0"),
    ]
}

/// The sysctls that switch forwarding (relative to /proc/sys).
pub const FORWARDING_V4: &str = "net/ipv4/ip_forward";
pub const FORWARDING_V6: &str = "net/ipv6/conf/all/forwarding";

impl fmt::Display for LinkPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for v in &self.vlans {
            writeln!(
                f,
                "link add {} link {} type vlan id {}",
                v.name, v.parent, v.id
            )?;
        }
        for a in &self.addresses {
            writeln!(f, "address add {} dev {}", a.address, a.interface)?;
        }
        for i in &self.up {
            writeln!(f, "link set {i} up")?;
        }
        for r in &self.routes {
            let fam = if r.family == Family::V6 { "-6 " } else { "" };
            writeln!(
                f,
                "route {fam}add default via {} dev {} table {} (uplink {})",
                r.via, r.dev, r.table, r.uplink
            )?;
        }
        for r in &self.rules {
            writeln!(f, "rule {r}")?;
        }
        Ok(())
    }
}

/// `[ipv6 ]priority N [iif X] [to P] [ipproto N [sport|dport N]] lookup T`, as `ip
/// rule` reads it.
impl fmt::Display for RoutingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = if self.family == Family::V6 {
            "ipv6 "
        } else {
            ""
        };
        write!(f, "{fam}priority {}", self.priority)?;
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(to) = &self.to {
            write!(f, " to {to}")?;
        }
        if let Some(p) = &self.proto {
            write!(f, " ipproto {}", p.number)?;
            match p.port {
                Some(RulePort::Source(n)) => write!(f, " sport {n}")?,
                Some(RulePort::Destination(n)) => write!(f, " dport {n}")?,
                None => {}
            }
        }
        match self.action {
            RuleAction::MainWithoutDefault => write!(f, " lookup main suppress_prefixlength 0"),
            RuleAction::Table(t) => write!(f, " lookup {t}"),
        }
    }
}
