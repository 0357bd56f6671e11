//! The second wall's verdict on a probe: a route query (RTM_GETROUTE, `ip route get ...
//! iif <segment>`) with the probe's input interface, addresses, protocol, ports and mark,
//! so the kernel runs the same policy-routing rules a host's packet meets. A blackhole
//! (or prohibit, unreachable) route answers with an error for an input lookup (EINVAL
//! for IPv4) or a route of that type (IPv6): the wall stops it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAttribute, RouteType};
use rtnetlink::{Handle, RouteMessageBuilder};

use cloison_core::names::VERIFY_MARK;
use cloison_core::verify::judge::RoutingVerdict;

/// One probe's flow, as the router receives it.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub iif: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

pub async fn ask(h: &Handle, q: &Query, names: &BTreeMap<u32, String>) -> RoutingVerdict {
    let mut msg = match (q.src, q.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => RouteMessageBuilder::<Ipv4Addr>::new()
            .source_prefix(s, 32)
            .destination_prefix(d, 32)
            .input_interface(q.iif)
            .ip_protocol(q.proto)
            .mark(VERIFY_MARK)
            .build(),
        (IpAddr::V6(s), IpAddr::V6(d)) => RouteMessageBuilder::<Ipv6Addr>::new()
            .source_prefix(s, 128)
            .destination_prefix(d, 128)
            .input_interface(q.iif)
            .ip_protocol(q.proto)
            .mark(VERIFY_MARK)
            .build(),
        _ => {
            return RoutingVerdict::Unknown {
                error: "mixed address families".into(),
            };
        }
    };
    if let Some(p) = q.sport {
        msg.attributes.push(RouteAttribute::Sport(p));
    }
    if let Some(p) = q.dport {
        msg.attributes.push(RouteAttribute::Dport(p));
    }
    let mut answers = h.route().get(msg).execute();
    match answers.try_next().await {
        Ok(Some(route)) => match route.header.kind {
            RouteType::BlackHole | RouteType::Unreachable | RouteType::Prohibit => {
                RoutingVerdict::Stops
            }
            RouteType::Local | RouteType::Broadcast => RoutingVerdict::Local,
            _ => RoutingVerdict::Routes {
                oif: route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => {
                        Some(names.get(i).cloned().unwrap_or_else(|| format!("#{i}")))
                    }
                    _ => None,
                }),
            },
        },
        Ok(None) => RoutingVerdict::Unknown {
            error: "no answer".into(),
        },
        Err(rtnetlink::Error::NetlinkError(e))
            if matches!(
                -e.raw_code(),
                libc::EINVAL | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES
            ) =>
        {
            RoutingVerdict::Stops
        }
        Err(e) => RoutingVerdict::Unknown {
            error: e.to_string(),
        },
    }
}

/// Interface names by index, to name where routing sends a probe.
pub async fn link_names(h: &Handle) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    let mut links = h.link().get().execute();
    while let Ok(Some(l)) = links.try_next().await {
        if let Some(name) = l.attributes.iter().find_map(|a| match a {
            netlink_packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        }) {
            out.insert(l.header.index, name);
        }
    }
    out
}
