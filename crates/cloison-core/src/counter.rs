//! The names of the ruleset's counters, a contract with the alerts, `cloison status`, the
//! metrics and whoever reads them (docs/alerts.md): `<from>/<to>` for drops from a
//! segment (or an uplink) toward a destination, where the destination is another segment
//! or one of the pseudo-destinations below; and a few bare names (`invalid`,
//! `unrouted`). The counter name is also the NFLOG prefix of the drop's samples.
//!
//! `Pair` is the one place that writes and reads that shape.

use std::fmt;

/// Pseudo-destinations in counter names; validation reserves them as segment names.
pub const TO_ROUTER: &str = "router";
pub const TO_PRIVATE: &str = "private";
pub const TO_INTERNET: &str = "internet";
pub const TO_SPOOFED: &str = "spoofed";
pub const TO_BROADCAST: &str = "broadcast";

/// Counters that belong to no segment.
pub const INVALID: &str = "invalid";
pub const UNROUTED: &str = "unrouted";
/// Packets to the router from interfaces the configuration neither manages nor trusts.
pub const UNMANAGED: &str = "unmanaged";

/// What arrives untagged on the trunk's parent interface (the switch's native VLAN):
/// counted, sampled and alerted (`router_access`, no source segment). `untagged` is a
/// reserved name, so no pair of segments can be called that.
pub const TRUNK_UNTAGGED: &str = "trunk/untagged";
pub const UNTAGGED: &str = "untagged";

/// A `<from>/<to>` counter name, borrowed from the string it was read from or the names
/// it was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair<'a> {
    pub from: &'a str,
    pub to: &'a str,
}

impl<'a> Pair<'a> {
    pub const fn new(from: &'a str, to: &'a str) -> Pair<'a> {
        Pair { from, to }
    }

    /// Reads a counter name; `None` for a bare name (`invalid`) or anything that is not
    /// exactly two non-empty parts.
    pub fn parse(name: &'a str) -> Option<Pair<'a>> {
        let (from, to) = name.split_once('/')?;
        if from.is_empty() || to.is_empty() || to.contains('/') {
            return None;
        }
        Some(Pair { from, to })
    }

    /// The counter's name, as the ruleset declares it.
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Pair<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.from, self.to)
    }
}

/// The name of the counter of drops from `from` toward `to`.
pub fn pair(from: &str, to: &str) -> String {
    Pair::new(from, to).name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_the_same_shape() {
        let p = Pair::new("kiosk", "mairie");
        assert_eq!(p.name(), "kiosk/mairie");
        assert_eq!(Pair::parse(&p.name()), Some(p));
        assert_eq!(pair("isp", TO_ROUTER), "isp/router");
        for bad in ["invalid", "/mairie", "kiosk/", "a/b/c", ""] {
            assert_eq!(Pair::parse(bad), None, "{bad:?}");
        }
    }
}
