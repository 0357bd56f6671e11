//! The second wall: the isolation matrix enforced a second time, in policy routing, a
//! kernel mechanism that `nft flush ruleset`, `nft delete table` or an edit of cloison's
//! table cannot touch. Stateless and coarser than the ruleset, it stops, with nftables
//! gone, every packet from a segment toward another segment or toward non-Internet
//! space, and lets the allowed exceptions and their replies through.
//!
//! Shape (measured against per-destination rules, which collapsed to 6 kpps at 64
//! segments: see docs/isolation.md):
//! - one rule per segment, `iif <seg> lookup <its wall table>`, before the routes the
//!   segments use; the table holds `blackhole` routes for the non-Internet space, the
//!   uplinks' link networks and every other segment's subnets, and `throw` routes for
//!   the segment's own subnets (a `throw` ends the table's lookup as if nothing matched,
//!   so the segment's own traffic and the Internet go on to the usual tables). One
//!   lookup in a table per packet, whatever the number of segments.
//! - before those, the exceptions: for each `[[allow]]` port, `iif <from> to <to's
//!   subnet> ipproto P dport N lookup main`, and its replies, `iif <to> to <from's subnet>
//!   ipproto P sport N lookup main` (stateless: any packet from that source port passes
//!   this wall; the ruleset, stateful, still checks it).
//! - `blackhole`, not `prohibit` or `unreachable`: a silent drop. With nftables gone a
//!   `prohibit` route answers every stopped packet with an ICMP error, to whatever source
//!   it carries, forged ones included (the kernel checks no source on that path): a kiosk
//!   could make the router spray about 1,000 errors a second at chosen Internet hosts
//!   (measured). A route query (`ip route get ... iif <seg>`, RTM_GETROUTE) for a
//!   blackholed flow fails with EINVAL, which `cloison verify`, asking with a source of
//!   the segment itself, reads as "the second wall stops this". While the ruleset
//!   stands, it drops these packets first (in its `segments` chain, before routing), so
//!   the wall is never reached.
//!
//! - the trunk's parent interface: `iif <trunk> lookup <trunk table>`, a table that
//!   blackholes everything. Nothing arriving untagged is ever routed anywhere (the
//!   ruleset drops it before routing, this wall without nftables).
//!
//! Addresses of the router itself are looked up in the `local` table first (rule 0):
//! this wall covers forwarding, not the router's own services (the ruleset's `input`
//! chain does).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::links::{Family, RoutingRule, RuleAction, RulePort, RuleProto};
use super::space;
use crate::config::{Config, Proto};
use crate::names::{
    RULE_PRIORITY_WALL, RULE_PRIORITY_WALL_EXCEPTIONS, RULE_PRIORITY_WALL_TRUNK, WALL_TABLE_BASE,
    WALL_TABLE_TRUNK,
};

/// What a wall route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WallKind {
    /// Dropped, silently.
    Blackhole,
    /// Not decided here: the lookup goes on to the next rule.
    Throw,
}

/// A route of a segment's wall table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WallRoute {
    pub table: u32,
    pub family: Family,
    pub dst: IpNet,
    pub kind: WallKind,
}

/// The second wall of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wall {
    /// Sorted; several share the exceptions' priority.
    pub rules: Vec<RoutingRule>,
    /// Sorted.
    pub routes: Vec<WallRoute>,
}

/// The wall table of the segment at `index` in `Config::segments`.
pub fn table_of(index: usize) -> u32 {
    WALL_TABLE_BASE + u32::try_from(index).expect("at most MAX_SEGMENTS segments")
}

pub fn wall(config: &Config) -> Wall {
    let mut rules = Vec::new();
    let mut routes = Vec::new();
    let mut never4: Vec<IpNet> = space::non_internet_v4()
        .into_iter()
        .map(IpNet::V4)
        .collect();
    never4.extend(
        config
            .uplinks
            .iter()
            .filter_map(|u| u.address.map(|a| IpNet::V4(a.subnet()))),
    );
    let mut never6: Vec<IpNet> = space::non_internet_v6()
        .into_iter()
        .map(IpNet::V6)
        .collect();
    never6.extend(
        config
            .uplinks
            .iter()
            .filter_map(|u| u.address6.map(|a| IpNet::V6(a.subnet()))),
    );

    for (i, s) in config.segments.iter().enumerate() {
        let table = table_of(i);
        let mut route = |family, dst, kind| {
            routes.push(WallRoute {
                table,
                family,
                dst,
                kind,
            });
        };
        for n in &never4 {
            route(Family::V4, *n, WallKind::Blackhole);
        }
        for n in &never6 {
            route(Family::V6, *n, WallKind::Blackhole);
        }
        for t in config.segments.iter().filter(|t| t.name != s.name) {
            route(
                Family::V4,
                IpNet::V4(t.address.subnet()),
                WallKind::Blackhole,
            );
            if let Some(a6) = t.address6 {
                route(Family::V6, IpNet::V6(a6.subnet()), WallKind::Blackhole);
            }
        }
        route(Family::V4, IpNet::V4(s.address.subnet()), WallKind::Throw);
        if let Some(a6) = s.address6 {
            route(Family::V6, IpNet::V6(a6.subnet()), WallKind::Throw);
        }
        for family in [Family::V4, Family::V6] {
            rules.push(RoutingRule {
                priority: RULE_PRIORITY_WALL + u32::try_from(i).expect("at most MAX_SEGMENTS"),
                family,
                iif: Some(s.interface.clone()),
                to: None,
                proto: None,
                action: RuleAction::Table(table),
            });
        }
    }
    if let Some(trunk) = &config.trunk {
        for (family, everything) in [(Family::V4, "0.0.0.0/0"), (Family::V6, "::/0")] {
            routes.push(WallRoute {
                table: WALL_TABLE_TRUNK,
                family,
                dst: everything.parse().expect("constant"),
                kind: WallKind::Blackhole,
            });
            rules.push(RoutingRule {
                priority: RULE_PRIORITY_WALL_TRUNK,
                family,
                iif: Some(trunk.clone()),
                to: None,
                proto: None,
                action: RuleAction::Table(WALL_TABLE_TRUNK),
            });
        }
    }
    for a in &config.allows {
        let (Some(from), Some(to)) = (
            config.segment(a.from.as_str()),
            config.segment(a.to.as_str()),
        ) else {
            continue;
        };
        let mut pairs = vec![(from.address.subnet().into(), to.address.subnet().into())];
        if let (Some(f6), Some(t6)) = (from.address6, to.address6) {
            pairs.push((IpNet::V6(f6.subnet()), IpNet::V6(t6.subnet())));
        }
        for (from_net, to_net) in pairs {
            let family = family_of(&to_net);
            let mut exception = |iif: &crate::config::IfName, to: IpNet, proto: RuleProto| {
                rules.push(RoutingRule {
                    priority: RULE_PRIORITY_WALL_EXCEPTIONS,
                    family,
                    iif: Some(iif.clone()),
                    to: Some(to),
                    proto: Some(proto),
                    action: RuleAction::Table(MAIN_TABLE),
                });
            };
            match a.proto {
                Proto::Icmp => {
                    // Echo requests one way, replies the other: the protocol, not the type.
                    let number = if family == Family::V4 { 1 } else { 58 };
                    let p = RuleProto { number, port: None };
                    exception(&from.interface, to_net, p);
                    exception(&to.interface, from_net, p);
                }
                Proto::Tcp | Proto::Udp => {
                    let number = if a.proto == Proto::Tcp { 6 } else { 17 };
                    for port in &a.ports {
                        exception(
                            &from.interface,
                            to_net,
                            RuleProto {
                                number,
                                port: Some(RulePort::Destination(*port)),
                            },
                        );
                        exception(
                            &to.interface,
                            from_net,
                            RuleProto {
                                number,
                                port: Some(RulePort::Source(*port)),
                            },
                        );
                    }
                }
            }
        }
    }
    rules.sort();
    rules.dedup();
    routes.sort();
    routes.dedup();
    Wall { rules, routes }
}

/// A packet as the second wall sees it: the interface it came in by, where it goes, its
/// IP protocol number and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub iif: &'a str,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

impl Wall {
    /// Whether this wall stops `packet`: the rules in priority order, each wall table's
    /// longest matching route (a `blackhole` stops, a `throw` goes on to the next rule),
    /// an exception's `lookup main` lets it through. What no rule stops is the usual
    /// routing's business (the router's own addresses never reach this wall).
    pub fn stops(&self, packet: &Packet<'_>) -> bool {
        let family = if packet.dst.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let mut rules: Vec<&RoutingRule> = self
            .rules
            .iter()
            .filter(|r| r.family == family && matches(r, packet))
            .collect();
        rules.sort_by_key(|r| r.priority);
        for rule in rules {
            let RuleAction::Table(table) = rule.action else {
                return false;
            };
            if table == MAIN_TABLE {
                return false;
            }
            let best = self
                .routes
                .iter()
                .filter(|r| r.table == table && r.family == family && r.dst.contains(&packet.dst))
                .max_by_key(|r| r.dst.prefix_len());
            if best.is_some_and(|r| r.kind == WallKind::Blackhole) {
                return true;
            }
        }
        false
    }
}

fn matches(rule: &RoutingRule, p: &Packet<'_>) -> bool {
    rule.iif.as_ref().is_none_or(|i| i.as_str() == p.iif)
        && rule.to.is_none_or(|n| n.contains(&p.dst))
        && rule.proto.is_none_or(|x| {
            x.number == p.proto
                && match x.port {
                    None => true,
                    Some(RulePort::Source(n)) => p.sport == Some(n),
                    Some(RulePort::Destination(n)) => p.dport == Some(n),
                }
        })
}

/// cloison's policy routing as the kernel has it: the rules in its priority range and
/// the routes of its wall tables. A rule there that cloison cannot read as one of its
/// own (another selector, another action) is listed by priority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveRouting {
    pub rules: Vec<RoutingRule>,
    pub unknown_rules: Vec<u32>,
    pub routes: Vec<WallRoute>,
}

/// What differs between the rules and wall routes a plan wants and the live ones, one
/// line each; empty when they match (the order of rules at one priority is free).
pub fn routing_differences(
    want_rules: &[RoutingRule],
    want_routes: &[WallRoute],
    live: &LiveRouting,
) -> Vec<String> {
    use std::collections::BTreeSet;
    let mut out = Vec::new();
    let (w, l): (BTreeSet<_>, BTreeSet<_>) =
        (want_rules.iter().collect(), live.rules.iter().collect());
    for r in w.difference(&l) {
        out.push(format!("routing rule `{r}` is missing"));
    }
    for r in l.difference(&w) {
        out.push(format!("routing rule `{r}` was added"));
    }
    for p in &live.unknown_rules {
        out.push(format!(
            "an unknown routing rule sits at cloison's priority {p}"
        ));
    }
    let (w, l): (BTreeSet<_>, BTreeSet<_>) =
        (want_routes.iter().collect(), live.routes.iter().collect());
    let missing = w.difference(&l).count();
    let added = l.difference(&w).count();
    // A flushed table loses dozens of routes: one line says it.
    for (n, what) in [(missing, "missing"), (added, "added")] {
        if n > 0 {
            let tables: BTreeSet<u32> = if what == "missing" {
                w.difference(&l).map(|r| r.table).collect()
            } else {
                l.difference(&w).map(|r| r.table).collect()
            };
            let list: Vec<String> = tables.iter().map(u32::to_string).collect();
            out.push(format!(
                "{n} second-wall route{} {what} (table{} {})",
                if n == 1 { "" } else { "s" },
                if tables.len() == 1 { "" } else { "s" },
                list.join(", ")
            ));
        }
    }
    out
}

/// The kernel's main routing table (`RT_TABLE_MAIN`).
pub const MAIN_TABLE: u32 = 254;

fn family_of(n: &IpNet) -> Family {
    match n.addr() {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

impl std::fmt::Display for WallRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fam = if self.family == Family::V6 { "-6 " } else { "" };
        let kind = match self.kind {
            WallKind::Blackhole => "blackhole",
            WallKind::Throw => "throw",
        };
        write!(f, "route {fam}add {kind} {} table {}", self.dst, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_what_is_missing_or_added() {
        let w = wall(&lab());
        let live = LiveRouting {
            rules: w.rules.clone(),
            unknown_rules: Vec::new(),
            routes: w.routes.clone(),
        };
        assert!(routing_differences(&w.rules, &w.routes, &live).is_empty());
        let mut shuffled = live.clone();
        shuffled.rules.reverse();
        assert!(routing_differences(&w.rules, &w.routes, &shuffled).is_empty());
        let mut flushed = live.clone();
        flushed.rules.retain(|r| r.proto.is_some());
        flushed.routes.retain(|r| r.table != table_of(0));
        flushed.unknown_rules.push(7250);
        let d = routing_differences(&w.rules, &w.routes, &flushed);
        assert!(
            d.contains(
                &"routing rule `priority 7200 iif seg-kiosk lookup 7400` is missing".to_owned()
            ),
            "{d:?}"
        );
        assert!(
            d.contains(&"an unknown routing rule sits at cloison's priority 7250".to_owned()),
            "{d:?}"
        );
        assert!(
            d.iter()
                .any(|l| l.ends_with("second-wall routes missing (table 7400)")),
            "{d:?}"
        );
    }

    fn lab() -> Config {
        crate::config::parse(include_str!("../../../../config/lab.toml"), "lab.toml").unwrap()
    }

    fn table(w: &Wall, number: u32) -> Vec<String> {
        w.routes
            .iter()
            .filter(|r| r.table == number)
            .map(|r| format!("{:?} {}", r.kind, r.dst))
            .collect()
    }

    #[test]
    fn each_segment_meets_the_others_and_private_space_but_not_itself() {
        let w = wall(&lab());
        // Segments are sorted by name: the kiosk's table is the first.
        let kiosk = table(&w, table_of(0));
        for want in [
            "Blackhole 192.168.10.0/24",
            "Blackhole 192.168.30.0/24",
            "Blackhole fd00:10::/64",
            "Blackhole 10.0.0.0/8",
            "Blackhole 192.168.0.0/16",
            "Blackhole fc00::/7",
            "Blackhole 10.30.0.0/24",
            "Blackhole 2001:db8:1::/64",
            "Throw 192.168.20.0/24",
            "Throw fd00:20::/64",
        ] {
            assert!(kiosk.contains(&want.to_owned()), "{want} not in {kiosk:?}");
        }
        assert!(!kiosk.iter().any(|r| r == "Blackhole 192.168.20.0/24"));
        // One rule per segment and family, each to its own table.
        let per_segment: Vec<String> = w
            .rules
            .iter()
            .filter(|r| r.proto.is_none())
            .map(ToString::to_string)
            .collect();
        assert_eq!(per_segment.len(), 6, "{per_segment:?}");
        assert!(per_segment.contains(&"priority 7200 iif seg-kiosk lookup 7400".to_owned()));
    }

    #[test]
    fn the_wall_stops_crossings_and_private_space_and_lets_the_exceptions_through() {
        let w = wall(&lab());
        let p = |iif, dst: &str, proto, sport, dport| Packet {
            iif,
            dst: dst.parse().unwrap(),
            proto,
            sport,
            dport,
        };
        assert!(w.stops(&p("seg-kiosk", "192.168.10.5", 6, Some(40000), Some(445))));
        assert!(w.stops(&p("seg-kiosk", "fd00:10::5", 17, Some(40000), Some(53))));
        assert!(w.stops(&p("seg-kiosk", "10.9.9.9", 1, None, None)));
        assert!(!w.stops(&p("seg-kiosk", "203.0.113.10", 6, Some(40000), Some(443))));
        assert!(!w.stops(&p("seg-kiosk", "192.168.20.9", 6, Some(40000), Some(22))));
        // The allowed port, and its replies (stateless: any packet from that port).
        assert!(!w.stops(&p("seg-mairie", "192.168.20.9", 6, Some(40000), Some(5900))));
        assert!(w.stops(&p("seg-mairie", "192.168.20.9", 6, Some(40000), Some(5901))));
        assert!(!w.stops(&p("seg-kiosk", "192.168.10.9", 6, Some(5900), Some(40000))));
        assert!(w.stops(&p(
            "seg-mairie",
            "192.168.20.9",
            17,
            Some(40000),
            Some(5900)
        )));
    }

    #[test]
    fn an_allow_opens_its_port_both_ways_and_nothing_else() {
        let w = wall(&lab());
        let exceptions: Vec<String> = w
            .rules
            .iter()
            .filter(|r| r.proto.is_some())
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            exceptions,
            [
                "priority 7100 iif seg-kiosk to 192.168.10.0/24 ipproto 6 sport 5900 lookup 254",
                "priority 7100 iif seg-mairie to 192.168.20.0/24 ipproto 6 dport 5900 lookup 254",
                "ipv6 priority 7100 iif seg-kiosk to fd00:10::/64 ipproto 6 sport 5900 lookup 254",
                "ipv6 priority 7100 iif seg-mairie to fd00:20::/64 ipproto 6 dport 5900 lookup 254",
            ]
        );
    }
}
