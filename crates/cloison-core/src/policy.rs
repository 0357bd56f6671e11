//! What the configuration means, one packet at a time: where a packet a segment's host
//! sends is going (another segment, the router, private space, the Internet) and
//! whether the configuration lets it through, with the reason in the configuration's
//! own words. The ruleset (`plan::ruleset`) implements this meaning for every packet at
//! once; `cloison verify` holds the live box to it, probe by probe. It is written from
//! the configuration alone, never from the ruleset, so that the one can check the other.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Config, Name, Proto, Segment, Service};
use crate::counter;
use crate::plan::space;

/// Where a packet from a segment is going.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Destination {
    /// Its own subnet: the router is not on the path.
    Own,
    /// Another segment.
    Segment(Name),
    /// One of the router's own addresses (on any segment or uplink).
    Router,
    /// Non-Internet space outside every segment (RFC 1918, the uplinks' link networks...).
    Private,
    Internet,
}

impl Destination {
    /// The destination as counters and verify results name it (`mairie`, `router`...).
    pub fn name(&self) -> &str {
        match self {
            Destination::Own => "own",
            Destination::Segment(n) => n.as_str(),
            Destination::Router => counter::TO_ROUTER,
            Destination::Private => counter::TO_PRIVATE,
            Destination::Internet => counter::TO_INTERNET,
        }
    }
}

/// The layer-4 part of a probe: a TCP or UDP destination port, or an ICMP echo request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    Tcp(u16),
    Udp(u16),
    Icmp,
}

impl L4 {
    pub fn proto(self) -> Proto {
        match self {
            L4::Tcp(_) => Proto::Tcp,
            L4::Udp(_) => Proto::Udp,
            L4::Icmp => Proto::Icmp,
        }
    }

    pub fn port(self) -> Option<u16> {
        match self {
            L4::Tcp(p) | L4::Udp(p) => Some(p),
            L4::Icmp => None,
        }
    }
}

impl fmt::Display for L4 {
    /// `tcp/445`, `udp/53`, `icmp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L4::Tcp(p) => write!(f, "tcp/{p}"),
            L4::Udp(p) => write!(f, "udp/{p}"),
            L4::Icmp => f.write_str("icmp"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Allowed,
    Blocked,
}

/// What the configuration says of one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub destination: Destination,
    pub verdict: Verdict,
    /// Why, in the configuration's words: `[[forbid]] kiosk -> mairie`, `service dns of
    /// kiosk`, `kiosk has no uplink`.
    pub reason: String,
}

/// Where a packet from `from` to `dst` is going.
pub fn destination(config: &Config, from: &Segment, dst: IpAddr) -> Destination {
    if is_router_address(config, dst) {
        return Destination::Router;
    }
    if in_subnets(from, dst) {
        return Destination::Own;
    }
    if let Some(t) = config.segments.iter().find(|t| in_subnets(t, dst)) {
        return Destination::Segment(t.name.clone());
    }
    let uplink_net = config.uplinks.iter().any(|u| match dst {
        IpAddr::V4(a) => u.address.is_some_and(|n| n.subnet().contains(&a)),
        IpAddr::V6(a) => u.address6.is_some_and(|n| n.subnet().contains(&a)),
    });
    if uplink_net || !space::is_internet(dst) {
        Destination::Private
    } else {
        Destination::Internet
    }
}

/// What the configuration says of a packet `from` a host of that segment sends to `dst`.
pub fn decide(config: &Config, from: &Segment, dst: IpAddr, l4: L4) -> Decision {
    let destination = destination(config, from, dst);
    let (verdict, reason) = match &destination {
        Destination::Own => (
            Verdict::Allowed,
            format!("inside {} (the router is not on the path)", from.name),
        ),
        Destination::Router => router(config, from, dst, l4),
        Destination::Segment(to) => between(config, from, to, l4),
        Destination::Private => (
            Verdict::Blocked,
            "private address space outside every segment".to_owned(),
        ),
        Destination::Internet => match &from.uplink {
            Some(u) => (
                Verdict::Allowed,
                format!("{} goes to the Internet through {u}", from.name),
            ),
            None => (
                Verdict::Blocked,
                format!("{} has no uplink (`uplink` is not set)", from.name),
            ),
        },
    };
    Decision {
        destination,
        verdict,
        reason,
    }
}

fn router(config: &Config, from: &Segment, dst: IpAddr, l4: L4) -> (Verdict, String) {
    let own = match dst {
        IpAddr::V4(a) => a == from.address.addr(),
        IpAddr::V6(a) => from.address6.is_some_and(|x| x.addr() == a) || is_link_local(a),
    };
    if !own {
        return (
            Verdict::Blocked,
            format!(
                "the router answers {} only on its own address there ({})",
                from.name,
                from.address.addr()
            ),
        );
    }
    let mut open: Vec<(L4, String)> = Vec::new();
    for service in &from.services {
        for (proto, port) in service.ports() {
            if *service == Service::Dhcp && dst.is_ipv6() {
                // DHCP is IPv4; DHCPv6 (udp/547) below.
                continue;
            }
            let l4 = match proto {
                Proto::Tcp => L4::Tcp(*port),
                Proto::Udp => L4::Udp(*port),
                Proto::Icmp => continue,
            };
            open.push((l4, format!("service {} of {}", service.name(), from.name)));
        }
        if *service == Service::Dhcp && dst.is_ipv6() {
            open.push((
                L4::Udp(547),
                format!("service dhcp of {} (DHCPv6)", from.name),
            ));
        }
        if *service == Service::Ping {
            open.push((L4::Icmp, format!("service ping of {}", from.name)));
        }
    }
    if from.management {
        open.push((
            L4::Tcp(config.router.ssh_port),
            format!("{} is a management segment (ssh)", from.name),
        ));
    }
    match open.into_iter().find(|(x, _)| *x == l4) {
        Some((_, why)) => (Verdict::Allowed, why),
        None => {
            let listed: Vec<&str> = from.services.iter().map(|s| s.name()).collect();
            let services = if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            };
            (
                Verdict::Blocked,
                format!("not a service of {} (services: {services})", from.name),
            )
        }
    }
}

fn between(config: &Config, from: &Segment, to: &Name, l4: L4) -> (Verdict, String) {
    let allowed = config.allows.iter().find(|a| {
        a.from == from.name
            && a.to == *to
            && a.proto == l4.proto()
            && l4.port().is_none_or(|p| a.ports.contains(&p))
    });
    if let Some(a) = allowed {
        return (
            Verdict::Allowed,
            with_comment(
                format!("[[allow]] {} -> {} {l4}", a.from, a.to),
                a.comment.as_deref(),
            ),
        );
    }
    let forbidden = config.forbids.iter().find(|f| {
        f.from.contains(&from.name)
            && f.to.contains(to)
            && f.proto.is_none_or(|p| p == l4.proto())
            && (f.ports.is_empty() || l4.port().is_some_and(|p| f.ports.contains(&p)))
    });
    match forbidden {
        Some(f) => (
            Verdict::Blocked,
            with_comment(
                format!("[[forbid]] {} -> {to}", from.name),
                f.comment.as_deref(),
            ),
        ),
        None => (
            Verdict::Blocked,
            format!("no [[allow]] from {} to {to}", from.name),
        ),
    }
}

fn with_comment(what: String, comment: Option<&str>) -> String {
    match comment {
        Some(c) => format!("{what} ({c})"),
        None => what,
    }
}

fn in_subnets(s: &Segment, dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => s.address.subnet().contains(&a),
        IpAddr::V6(a) => s.address6.is_some_and(|n| n.subnet().contains(&a)),
    }
}

fn is_link_local(a: std::net::Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Whether `dst` is one of the router's addresses (segments and uplinks).
pub fn is_router_address(config: &Config, dst: IpAddr) -> bool {
    let segment = config.segments.iter().any(|s| match dst {
        IpAddr::V4(a) => s.address.addr() == a,
        IpAddr::V6(a) => s.address6.is_some_and(|x| x.addr() == a),
    });
    let uplink = config.uplinks.iter().any(|u| match dst {
        IpAddr::V4(a) => u.address.is_some_and(|x| x.addr() == a),
        IpAddr::V6(a) => u.address6.is_some_and(|x| x.addr() == a),
    });
    segment || uplink
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Config {
        crate::config::parse(include_str!("../../../config/lab.toml"), "lab.toml").unwrap()
    }

    fn says(from: &str, dst: &str, l4: L4) -> (Verdict, String, String) {
        let c = lab();
        let d = decide(&c, c.segment(from).unwrap(), dst.parse().unwrap(), l4);
        (d.verdict, d.destination.name().to_owned(), d.reason)
    }

    #[test]
    fn segments_meet_only_through_an_allow() {
        let (v, to, why) = says("kiosk", "192.168.10.5", L4::Tcp(445));
        assert_eq!((v, to.as_str()), (Verdict::Blocked, "mairie"));
        assert_eq!(why, "[[forbid]] kiosk -> mairie");
        let (v, _, why) = says("mairie", "192.168.20.7", L4::Tcp(5900));
        assert_eq!(v, Verdict::Allowed);
        assert_eq!(
            why,
            "[[allow]] mairie -> kiosk tcp/5900 (helpdesk reaches the kiosk)"
        );
        let (v, _, why) = says("mairie", "fd00:20::7", L4::Tcp(5901));
        assert_eq!(v, Verdict::Blocked);
        assert_eq!(why, "no [[allow]] from mairie to kiosk");
        assert_eq!(says("mairie", "192.168.30.9", L4::Icmp).0, Verdict::Blocked);
    }

    #[test]
    fn the_router_answers_a_segment_on_its_own_address_and_services_only() {
        assert_eq!(
            says("kiosk", "192.168.20.1", L4::Udp(53)).0,
            Verdict::Allowed
        );
        let (v, to, why) = says("kiosk", "192.168.20.1", L4::Tcp(22));
        assert_eq!((v, to.as_str()), (Verdict::Blocked, "router"));
        assert_eq!(why, "not a service of kiosk (services: dns, dhcp)");
        assert_eq!(
            says("mairie", "192.168.10.1", L4::Tcp(22)).0,
            Verdict::Allowed
        );
        assert_eq!(says("kiosk", "192.168.20.1", L4::Icmp).0, Verdict::Blocked);
        assert_eq!(says("poste", "fd00:30::1", L4::Icmp).0, Verdict::Allowed);
        // The router's address on another segment, or on an uplink: never.
        let (v, to, _) = says("kiosk", "192.168.10.1", L4::Udp(53));
        assert_eq!((v, to.as_str()), (Verdict::Blocked, "router"));
        assert_eq!(says("mairie", "10.30.0.2", L4::Tcp(22)).1, "router");
    }

    #[test]
    fn private_space_is_blocked_and_the_internet_needs_an_uplink() {
        let (v, to, _) = says("kiosk", "10.1.2.3", L4::Tcp(80));
        assert_eq!((v, to.as_str()), (Verdict::Blocked, "private"));
        // The uplinks' link networks are private, whatever their addresses.
        assert_eq!(says("mairie", "10.30.0.1", L4::Tcp(80)).1, "private");
        assert_eq!(says("mairie", "2001:db8:1::1", L4::Tcp(80)).1, "private");
        let (v, to, why) = says("kiosk", "203.0.113.10", L4::Tcp(443));
        assert_eq!((v, to.as_str()), (Verdict::Allowed, "internet"));
        assert_eq!(why, "kiosk goes to the Internet through laposte");
        assert_eq!(says("kiosk", "192.168.20.9", L4::Tcp(1)).1, "own");
    }
}
