//! The policy-routing edge, through rtnetlink: the uplinks' routing tables, cloison's
//! rules (the uplinks' and the second wall's), the wall tables' routes, and reading all
//! of it back for the drift check. Each step reads the current state first and changes
//! only what differs; everything in cloison's priority range and tables that the plan
//! does not hold is removed.

use std::collections::BTreeSet;
use std::net::IpAddr;

use cloison_core::config::IfName;
use cloison_core::names::{RULE_PRIORITIES, UPLINK_TABLES, WALL_TABLES};
use cloison_core::plan::{
    Family, LinkPlan, LiveRouting, Route, RoutingRule, RuleAction, RulePort, RuleProto, WallKind,
    WallRoute,
};
use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::RulePortRange;
use netlink_packet_route::rule::{RuleAction as NlRuleAction, RuleAttribute, RuleMessage};
use rtnetlink::{IpVersion, RouteMessageBuilder};

use super::netlink::{LinkError, Netlink, nl};

/// The kernel's main table.
const MAIN: u32 = 254;

fn uplink_table(t: u32) -> bool {
    UPLINK_TABLES.contains(&t)
}

fn wall_table(t: u32) -> bool {
    WALL_TABLES.contains(&t)
}

impl Netlink {
    /// Default routes of the per-uplink tables; routes in those tables that the plan no
    /// longer has are removed.
    pub async fn ensure_routes(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        for family in [Family::V4, Family::V6] {
            let existing: Vec<RouteMessage> = self.routes_in(family, uplink_table).await?;
            for r in plan.routes.iter().filter(|r| r.family == family) {
                let dev = self.ifindex(&r.dev).await?;
                let present = existing.iter().any(|m| {
                    route_table(m) == r.table
                        && route_gateway(m) == Some(r.via)
                        && route_oif(m) == Some(dev)
                });
                if present {
                    continue;
                }
                self.handle
                    .route()
                    .add(default_route(r, dev))
                    .replace()
                    .execute()
                    .await
                    .map_err(nl(format!(
                        "setting the default route of table {} via {} dev {}",
                        r.table, r.via, r.dev
                    )))?;
                changes.push(format!(
                    "routed uplink {} (table {}) via {} dev {}",
                    r.uplink, r.table, r.via, r.dev
                ));
            }
            for m in existing {
                let t = route_table(&m);
                if !plan
                    .routes
                    .iter()
                    .any(|r| r.family == family && r.table == t)
                {
                    self.delete_route(m, &format!("removing a route of table {t}"))
                        .await?;
                    changes.push(format!("removed the route of unused table {t}"));
                }
            }
        }
        Ok(())
    }

    /// The second wall's routes: exactly `want` in the wall tables.
    pub async fn ensure_wall(
        &self,
        want: &[WallRoute],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        let want: BTreeSet<&WallRoute> = want.iter().collect();
        let mut have = BTreeSet::new();
        let (mut added, mut removed) = (0, 0);
        for family in [Family::V4, Family::V6] {
            for m in self.routes_in(family, wall_table).await? {
                match wall_route(&m, family) {
                    Some(r) if want.contains(&r) => {
                        have.insert(r);
                    }
                    _ => {
                        self.delete_route(m, "removing a stale second-wall route")
                            .await?;
                        removed += 1;
                    }
                }
            }
        }
        for r in want.into_iter().filter(|r| !have.contains(*r)) {
            self.handle
                .route()
                .add(wall_message(r))
                .replace()
                .execute()
                .await
                .map_err(nl(format!("adding second-wall {r}")))?;
            added += 1;
        }
        if added > 0 {
            changes.push(format!("second wall: added {added} routes"));
        }
        if removed > 0 {
            changes.push(format!("second wall: removed {removed} stale routes"));
        }
        Ok(())
    }

    /// Policy rules in cloison's priority range: exactly `want` (uplinks' and wall's).
    pub async fn ensure_rules(
        &self,
        want: &[RoutingRule],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        for (family, version) in [(Family::V4, IpVersion::V4), (Family::V6, IpVersion::V6)] {
            let want: BTreeSet<&RoutingRule> = want.iter().filter(|r| r.family == family).collect();
            let mut kept = BTreeSet::new();
            for m in self.our_rules(version).await? {
                match routing_rule(&m, family) {
                    Some(r) if want.contains(&r) && !kept.contains(&r) => {
                        kept.insert(r);
                    }
                    other => {
                        let p = rule_priority(&m);
                        self.handle
                            .rule()
                            .del(m)
                            .execute()
                            .await
                            .map_err(nl(format!("removing rule {p}")))?;
                        changes.push(match other {
                            Some(r) => format!("removed stale routing rule {r}"),
                            None => format!("removed an unknown routing rule at priority {p}"),
                        });
                    }
                }
            }
            for r in want.into_iter().filter(|r| !kept.contains(*r)) {
                self.add_rule(r).await?;
                changes.push(format!("added routing rule {r}"));
            }
        }
        Ok(())
    }

    /// cloison's rules and wall routes as the kernel has them (the drift check's view).
    pub async fn read_routing(&self) -> Result<LiveRouting, LinkError> {
        let mut live = LiveRouting::default();
        for (family, version) in [(Family::V4, IpVersion::V4), (Family::V6, IpVersion::V6)] {
            for m in self.our_rules(version).await? {
                match routing_rule(&m, family) {
                    Some(r) => live.rules.push(r),
                    None => live.unknown_rules.push(rule_priority(&m)),
                }
            }
            for m in self.routes_in(family, wall_table).await? {
                match wall_route(&m, family) {
                    Some(r) => live.routes.push(r),
                    None => live.unknown_rules.push(route_table(&m)),
                }
            }
        }
        live.rules.sort();
        live.routes.sort();
        Ok(live)
    }

    /// Removes cloison's routing rules, the uplinks' routes and the second wall (for
    /// `apply --remove`).
    pub async fn remove_routing(&self, changes: &mut Vec<String>) -> Result<(), LinkError> {
        self.ensure_rules(&[], changes).await?;
        self.ensure_wall(&[], changes).await?;
        let empty = LinkPlan {
            vlans: Vec::new(),
            addresses: Vec::new(),
            owned: Vec::new(),
            up: Vec::new(),
            routes: Vec::new(),
            rules: Vec::new(),
        };
        self.ensure_routes(&empty, changes).await
    }

    async fn routes_in(
        &self,
        family: Family,
        table: fn(u32) -> bool,
    ) -> Result<Vec<RouteMessage>, LinkError> {
        let filter = match family {
            Family::V4 => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .table_id(0)
                .build(),
            Family::V6 => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .table_id(0)
                .build(),
        };
        let mut out = Vec::new();
        let mut routes = self.handle.route().get(filter).execute();
        while let Some(m) = routes.try_next().await.map_err(nl("listing routes"))? {
            if table(route_table(&m)) {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn delete_route(&self, m: RouteMessage, op: &str) -> Result<(), LinkError> {
        self.handle.route().del(m).execute().await.map_err(nl(op))
    }

    async fn our_rules(&self, version: IpVersion) -> Result<Vec<RuleMessage>, LinkError> {
        let mut out = Vec::new();
        let mut rules = self.handle.rule().get(version).execute();
        while let Some(m) = rules
            .try_next()
            .await
            .map_err(nl("listing routing rules"))?
        {
            if RULE_PRIORITIES.contains(&rule_priority(&m)) {
                out.push(m);
            }
        }
        Ok(out)
    }

    async fn add_rule(&self, r: &RoutingRule) -> Result<(), LinkError> {
        let add = self
            .handle
            .rule()
            .add()
            .priority(r.priority)
            .action(NlRuleAction::ToTable);
        let add = match &r.iif {
            Some(i) => add.input_interface(i.as_str()),
            None => add,
        };
        let table = match r.action {
            RuleAction::Table(t) => t,
            RuleAction::MainWithoutDefault => MAIN,
        };
        let result = match (r.family, r.to) {
            (Family::V4, Some(IpNet::V4(n))) => {
                let req = add.v4().table_id(table);
                with_selectors(req.destination_prefix(n.network(), n.prefix_len()), r)
                    .execute()
                    .await
            }
            (Family::V6, Some(IpNet::V6(n))) => {
                let req = add.v6().table_id(table);
                with_selectors(req.destination_prefix(n.network(), n.prefix_len()), r)
                    .execute()
                    .await
            }
            (Family::V4, _) => with_selectors(add.v4().table_id(table), r).execute().await,
            (Family::V6, _) => with_selectors(add.v6().table_id(table), r).execute().await,
        };
        result.map_err(nl(format!("adding routing rule {r}")))
    }
}

/// The attributes of `r` beyond priority, interface, destination and table.
fn with_selectors<T>(
    mut req: rtnetlink::RuleAddRequest<T>,
    r: &RoutingRule,
) -> rtnetlink::RuleAddRequest<T> {
    let attrs = &mut req.message_mut().attributes;
    if r.action == RuleAction::MainWithoutDefault {
        attrs.push(RuleAttribute::SuppressPrefixLen(0));
    }
    if let Some(p) = r.proto {
        attrs.push(RuleAttribute::IpProtocol(p.number.into()));
        let one = |n| RulePortRange { start: n, end: n };
        match p.port {
            Some(RulePort::Source(n)) => attrs.push(RuleAttribute::SourcePortRange(one(n))),
            Some(RulePort::Destination(n)) => {
                attrs.push(RuleAttribute::DestinationPortRange(one(n)));
            }
            None => {}
        }
    }
    req
}

fn default_route(r: &Route, dev: u32) -> RouteMessage {
    match r.via {
        IpAddr::V4(gw) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .table_id(r.table)
            .gateway(gw)
            .output_interface(dev)
            .build(),
        IpAddr::V6(gw) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .table_id(r.table)
            .gateway(gw)
            .output_interface(dev)
            .build(),
    }
}

fn wall_message(r: &WallRoute) -> RouteMessage {
    let kind = match r.kind {
        WallKind::Blackhole => RouteType::BlackHole,
        WallKind::Throw => RouteType::Throw,
    };
    match r.dst {
        IpNet::V4(n) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .table_id(r.table)
            .destination_prefix(n.network(), n.prefix_len())
            .kind(kind)
            .build(),
        IpNet::V6(n) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .table_id(r.table)
            .destination_prefix(n.network(), n.prefix_len())
            .kind(kind)
            .build(),
    }
}

/// A wall table's route as the plan writes it; `None` for anything else.
fn wall_route(m: &RouteMessage, family: Family) -> Option<WallRoute> {
    let kind = match m.header.kind {
        RouteType::BlackHole => WallKind::Blackhole,
        RouteType::Throw => WallKind::Throw,
        _ => return None,
    };
    let dst = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    });
    let dst = match (dst, family) {
        (Some(a), _) => IpNet::new(a, m.header.destination_prefix_length).ok()?,
        (None, Family::V4) => IpNet::V4(ipnet::Ipv4Net::default()),
        (None, Family::V6) => IpNet::V6(ipnet::Ipv6Net::default()),
    };
    Some(WallRoute {
        table: route_table(m),
        family,
        dst,
        kind,
    })
}

fn route_table(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

fn route_gateway(m: &RouteMessage) -> Option<IpAddr> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        _ => None,
    })
}

fn route_oif(m: &RouteMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

fn rule_priority(m: &RuleMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0)
}

/// FRA_SPORT_MASK (28) or FRA_DPORT_MASK (29) at 0xffff: the kernel reports the mask of
/// an exact port selector.
fn full_port_mask(nla: &netlink_packet_core::DefaultNla) -> bool {
    use netlink_packet_core::Nla;
    let mut value = [0u8; 2];
    matches!(nla.kind(), 28 | 29) && nla.value_len() == 2 && {
        nla.emit_value(&mut value);
        value == [0xff, 0xff]
    }
}

/// A rule as cloison writes its own; `None` when it has anything cloison never sets.
fn routing_rule(m: &RuleMessage, family: Family) -> Option<RoutingRule> {
    if m.header.action != NlRuleAction::ToTable || m.header.src_len != 0 || m.header.tos != 0 {
        return None;
    }
    let mut r = RoutingRule {
        priority: rule_priority(m),
        family,
        iif: None,
        to: None,
        proto: None,
        action: RuleAction::Table(u32::from(m.header.table)),
    };
    let (mut table, mut suppress, mut proto, mut port) = (None, None, None, None);
    for a in &m.attributes {
        match a {
            RuleAttribute::Priority(_) | RuleAttribute::Protocol(_) => {}
            RuleAttribute::Iifname(n) => r.iif = Some(IfName::parse(n).ok()?),
            RuleAttribute::Destination(ip) => {
                r.to = Some(IpNet::new(*ip, m.header.dst_len).ok()?);
            }
            RuleAttribute::Table(t) => table = Some(*t),
            // The kernel reports "no suppression" as u32::MAX (-1).
            RuleAttribute::SuppressPrefixLen(n) if *n == u32::MAX => {}
            RuleAttribute::SuppressPrefixLen(n) => suppress = Some(*n),
            RuleAttribute::IpProtocol(p) => proto = Some(u8::from(*p)),
            RuleAttribute::SourcePortRange(p) if p.start == p.end && port.is_none() => {
                port = Some(RulePort::Source(p.start));
            }
            RuleAttribute::DestinationPortRange(p) if p.start == p.end && port.is_none() => {
                port = Some(RulePort::Destination(p.start));
            }
            // FRA_SPORT_MASK and FRA_DPORT_MASK (Linux 6.13+): 0xffff is an exact port.
            RuleAttribute::Other(nla) if full_port_mask(nla) => {}
            _ => return None,
        }
    }
    let table = table.unwrap_or(u32::from(m.header.table));
    r.action = match (table, suppress) {
        (MAIN, Some(0)) => RuleAction::MainWithoutDefault,
        (t, None) => RuleAction::Table(t),
        _ => return None,
    };
    r.proto = match (proto, port) {
        (Some(number), port) => Some(RuleProto { number, port }),
        (None, None) => None,
        (None, Some(_)) => return None,
    };
    Some(r)
}
