//! Newtypes of the validated configuration. A value of one of these types is valid by
//! construction: the constructors are the only place the rules live.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::counter;

/// Names cloison itself uses as destinations in counters and alerts
/// (`kiosk/router`, `kiosk/private`...); a segment or uplink may not take them.
pub const RESERVED_NAMES: &[&str] = &[
    counter::TO_ROUTER,
    counter::TO_PRIVATE,
    counter::TO_INTERNET,
    counter::TO_SPOOFED,
    counter::TO_BROADCAST,
    counter::UNROUTED,
    counter::UNTAGGED,
    counter::UNMANAGED,
];

/// A segment or uplink name: `[a-z][a-z0-9_-]{0,14}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn parse(s: &str) -> Result<Name, String> {
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !first_ok || !rest_ok || s.len() > 15 {
            return Err(format!(
                "`{s}` is not a valid name: use 1 to 15 characters, a lowercase letter first, then lowercase letters, digits, `_` or `-`"
            ));
        }
        if RESERVED_NAMES.contains(&s) {
            return Err(format!(
                "`{s}` is reserved (cloison uses it in counter and alert names); pick another name"
            ));
        }
        Ok(Name(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Linux interface name: 1 to 15 bytes, no `/`, `:`, whitespace or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfName(String);

impl IfName {
    /// The kernel's IFNAMSIZ is 16 bytes including the terminating NUL.
    pub const MAX_LEN: usize = 15;

    pub fn parse(s: &str) -> Result<IfName, String> {
        if s.is_empty() {
            return Err("an interface name cannot be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "`{s}` is {} bytes long; Linux interface names are at most 15 bytes",
                s.len()
            ));
        }
        if s == "." || s.contains("..") {
            return Err(format!(
                "`{s}` is not a valid interface name: `.` and `..` are not allowed"
            ));
        }
        if let Some(c) = s
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control() || *c == '"')
        {
            return Err(format!(
                "`{s}` is not a valid interface name: {c:?} is not allowed (no `/`, `:`, quotes or spaces)"
            ));
        }
        Ok(IfName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An 802.1Q VLAN ID, 1..=4094 (0 and 4095 are reserved by the standard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VlanId(u16);

impl VlanId {
    pub fn new(id: i64) -> Result<VlanId, String> {
        match u16::try_from(id) {
            Ok(v @ 1..=4094) => Ok(VlanId(v)),
            _ => Err("VLAN IDs go from 1 to 4094".into()),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A router service a segment's hosts may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Dns,
    Dhcp,
    Ntp,
    Ping,
}

impl Service {
    pub const ALL: [Service; 4] = [Service::Dns, Service::Dhcp, Service::Ntp, Service::Ping];

    pub fn parse(s: &str) -> Option<Service> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Dns => "dns",
            Service::Dhcp => "dhcp",
            Service::Ntp => "ntp",
            Service::Ping => "ping",
        }
    }

    /// The (protocol, port) pairs the service listens on; ping has none (ICMP echo).
    pub fn ports(self) -> &'static [(Proto, u16)] {
        match self {
            Service::Dns => &[(Proto::Udp, 53), (Proto::Tcp, 53)],
            Service::Dhcp => &[(Proto::Udp, 67)],
            Service::Ntp => &[(Proto::Udp, 123)],
            Service::Ping => &[],
        }
    }
}

/// Layer-4 protocol of an allow or forbid rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
}

impl Proto {
    pub const ALL: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Icmp];

    pub fn parse(s: &str) -> Option<Proto> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The router's IPv4 address on a link, with the link's prefix (`192.168.10.1/24`).
/// Never a network address, broadcast address or host route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfAddr4(Ipv4Net);

impl IfAddr4 {
    pub fn parse(s: &str) -> Result<IfAddr4, String> {
        let net: Ipv4Net = s.parse().map_err(|_| {
            format!(
                "`{s}` is not an IPv4 address with a prefix length; write it like `192.168.10.1/24`"
            )
        })?;
        if net.prefix_len() > 30 {
            return Err(format!(
                "`{s}` leaves no room for hosts; use a prefix of /30 or shorter, e.g. `{}/24`",
                net.addr()
            ));
        }
        if net.addr() == net.network() {
            return Err(format!(
                "`{s}` is the network address of its subnet, not an interface address; use a host address such as `{}/{}`",
                Ipv4Addr::from(u32::from(net.network()) + 1),
                net.prefix_len()
            ));
        }
        if net.addr() == net.broadcast() {
            return Err(format!(
                "`{s}` is the broadcast address of its subnet; use a host address such as `{}/{}`",
                Ipv4Addr::from(u32::from(net.network()) + 1),
                net.prefix_len()
            ));
        }
        Ok(IfAddr4(net))
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// The subnet (`192.168.10.0/24`).
    pub fn subnet(&self) -> Ipv4Net {
        self.0.trunc()
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        self.0.broadcast()
    }
}

impl fmt::Display for IfAddr4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The router's IPv6 address on a link with its prefix (`fd00:10::1/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct IfAddr6(Ipv6Net);

impl IfAddr6 {
    pub fn parse(s: &str) -> Result<IfAddr6, String> {
        let net: Ipv6Net = s.parse().map_err(|_| {
            format!(
                "`{s}` is not an IPv6 address with a prefix length; write it like `fd00:10::1/64`"
            )
        })?;
        if net.prefix_len() > 126 {
            return Err(format!(
                "`{s}` leaves no room for hosts; use a prefix of /126 or shorter, usually /64"
            ));
        }
        if net.addr() == net.network() {
            return Err(format!(
                "`{s}` is the subnet-router anycast address of its prefix, not an interface address; use a host address such as `{}/{}`",
                Ipv6Addr::from(u128::from(net.network()) + 1),
                net.prefix_len()
            ));
        }
        let a = net.addr();
        if a.is_multicast() || a.is_loopback() || a.is_unspecified() || is_link_local6(a) {
            return Err(format!(
                "`{s}` cannot be a segment or uplink address (multicast, loopback or link-local); use a global or ULA (fd00::/8) address"
            ));
        }
        Ok(IfAddr6(net))
    }

    pub fn addr(&self) -> Ipv6Addr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn subnet(&self) -> Ipv6Net {
        self.0.trunc()
    }
}

impl fmt::Display for IfAddr6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

pub fn is_link_local6(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(Name::parse("kiosk").is_ok());
        assert!(Name::parse("la-poste_2").is_ok());
        assert!(Name::parse("Kiosk").is_err());
        assert!(Name::parse("2kiosk").is_err());
        assert!(Name::parse("abcdefghijklmnop").is_err());
        assert!(Name::parse("router").unwrap_err().contains("reserved"));
    }

    #[test]
    fn interface_names() {
        assert!(IfName::parse("lan0.10").is_ok());
        assert!(IfName::parse("a-very-long-name0").is_err());
        assert!(IfName::parse("eth/0").is_err());
        assert!(IfName::parse("eth 0").is_err());
        assert!(IfName::parse("a..b").is_err());
        assert!(IfName::parse("").is_err());
    }

    #[test]
    fn vlan_ids() {
        assert!(VlanId::new(1).is_ok());
        assert!(VlanId::new(4094).is_ok());
        assert!(VlanId::new(0).is_err());
        assert!(VlanId::new(4095).is_err());
    }

    #[test]
    fn interface_addresses() {
        let a = IfAddr4::parse("192.168.10.1/24").unwrap();
        assert_eq!(a.subnet().to_string(), "192.168.10.0/24");
        assert!(
            IfAddr4::parse("192.168.10.0/24")
                .unwrap_err()
                .contains("network address")
        );
        assert!(
            IfAddr4::parse("192.168.10.255/24")
                .unwrap_err()
                .contains("broadcast")
        );
        assert!(
            IfAddr4::parse("192.168.10.1/32")
                .unwrap_err()
                .contains("no room")
        );
        assert!(IfAddr4::parse("192.168.10.1").is_err());
        assert!(IfAddr6::parse("fd00:10::1/64").is_ok());
        assert!(IfAddr6::parse("fd00:10::/64").is_err());
        assert!(IfAddr6::parse("fe80::1/64").is_err());
    }
}
