//! `[verify]`: when the daemon verifies, what it probes, and the addresses the operator
//! chose for the probes and targets. Every address is checked against the segment it
//! names, so a probe can never stand in for the router or leave its segment.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use toml::Spanned;

use super::super::VerifySettings;
use super::super::types::Name;
use super::{Problems, RawConfig, Segment, hint, parse_duration, port_number};
use crate::plan::space;

/// The shortest and longest periods of the daemon's verification: probing more often
/// than every 10 minutes would only add noise to the counters; a month is the longest
/// gap a report can still call recent.
const EVERY_MIN: Duration = Duration::from_secs(600);
const EVERY_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

pub(super) fn settings(
    raw: &RawConfig,
    segments: &[Segment],
    p: &mut Problems,
) -> Option<VerifySettings> {
    let mut out = VerifySettings::default();
    let Some(v) = &raw.verify else {
        return Some(out);
    };
    let v = v.get_ref();
    let mut ok = true;
    if let Some(every) = &v.every {
        let key = format!("verify.every = {:?}", every.get_ref());
        match p.check(every, &key, |s| parse_duration(s)) {
            Some(d) if (EVERY_MIN..=EVERY_MAX).contains(&d) => out.every = Some(d),
            Some(_) => {
                p.push(
                    every.span(),
                    key,
                    "use a period between 10m and 720h (30 days), e.g. \"24h\"; leave the key out to verify only on demand",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(ports) = &v.ports {
        let mut set = BTreeSet::new();
        for port in ports.get_ref() {
            match p.check(port, "verify.ports", |x| {
                port_number(*x).map_err(|e| format!("{x}: {e}"))
            }) {
                Some(n) if set.insert(n) => {}
                Some(n) => {
                    p.push(
                        port.span(),
                        "verify.ports",
                        format!("port {n} is listed twice"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        if ports.get_ref().is_empty() {
            p.push(
                ports.span(),
                "verify.ports",
                "list at least one TCP port, e.g. `ports = [445]`; leave the key out for the default list",
            );
            ok = false;
        }
        out.ports = set;
    }
    if v.internet.is_some() {
        match internet(&v.internet, "verify.internet", p, |a: Ipv4Addr| {
            space::is_internet(IpAddr::V4(a))
        }) {
            Ok(a) => out.internet = a,
            Err(()) => ok = false,
        }
    }
    if v.internet6.is_some() {
        match internet(&v.internet6, "verify.internet6", p, |a: Ipv6Addr| {
            space::is_internet(IpAddr::V6(a))
        }) {
            Ok(a) => out.internet6 = a,
            Err(()) => ok = false,
        }
    }

    let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
    for (seg, addr) in &v.probe_address {
        let key = format!("verify.probe_address.{}", seg.get_ref());
        let Some(s) = segment(seg, &key, segments, &names, p) else {
            ok = false;
            continue;
        };
        match p.check(addr, format!("{key} = {:?}", addr.get_ref()), |a| {
            let ip: Ipv4Addr = a.parse().map_err(|_| {
                format!("`{a}` is not an IPv4 address; write it like \"192.168.20.250\"")
            })?;
            host_of(s, IpAddr::V4(ip)).map(|()| ip)
        }) {
            Some(ip) => {
                out.probe_addresses.insert(s.name.clone(), ip);
            }
            None => ok = false,
        }
    }
    let mut targets: BTreeMap<Name, Vec<IpAddr>> = BTreeMap::new();
    for (seg, list) in &v.targets {
        let key = format!("verify.targets.{}", seg.get_ref());
        let Some(s) = segment(seg, &key, segments, &names, p) else {
            ok = false;
            continue;
        };
        let mut seen = BTreeSet::new();
        for t in list.get_ref() {
            match p.check(t, format!("{key} = {:?}", t.get_ref()), |a| {
                let ip: IpAddr = a.parse().map_err(|_| {
                    format!("`{a}` is not an IP address; write it like \"192.168.10.5\"")
                })?;
                host_of(s, ip).map(|()| ip)
            }) {
                Some(ip) if seen.insert(ip) => targets.entry(s.name.clone()).or_default().push(ip),
                Some(ip) => {
                    p.push(t.span(), key.clone(), format!("{ip} is listed twice"));
                    ok = false;
                }
                None => ok = false,
            }
        }
    }
    out.targets = targets;
    for (seg, ip) in &out.probe_addresses {
        if out
            .targets
            .get(seg)
            .is_some_and(|t| t.contains(&IpAddr::V4(*ip)))
        {
            let span = v
                .probe_address
                .iter()
                .find(|(k, _)| k.get_ref() == seg.as_str())
                .map(|(_, a)| a.span())
                .unwrap_or(0..0);
            p.push(
                span,
                format!("verify.probe_address.{seg}"),
                format!(
                    "{ip} is also a target of {seg}: the probe must use an address no host has"
                ),
            );
            ok = false;
        }
    }
    ok.then_some(out)
}

/// An Internet address, or `""` for none.
fn internet<A: std::str::FromStr + Copy>(
    v: &Option<Spanned<String>>,
    key: &str,
    p: &mut Problems,
    public: impl Fn(A) -> bool,
) -> Result<Option<A>, ()> {
    let Some(v) = v else {
        return Ok(None);
    };
    if v.get_ref().is_empty() {
        return Ok(None);
    }
    p.check(v, format!("{key} = {:?}", v.get_ref()), |s| {
        let a: A = s
            .parse()
            .map_err(|_| format!("`{s}` is not an address of the right family; write `\"\"` to probe no Internet address"))?;
        if public(a) {
            Ok(a)
        } else {
            Err(format!("`{s}` is not an Internet address (private, link-local or reserved space): the probe must leave by the uplink; give a public address that answers, or `\"\"` for none"))
        }
    })
    .map(Some)
    .ok_or(())
}

fn segment<'a>(
    name: &Spanned<String>,
    key: &str,
    segments: &'a [Segment],
    names: &[&str],
    p: &mut Problems,
) -> Option<&'a Segment> {
    let found = segments.iter().find(|s| s.name.as_str() == name.get_ref());
    if found.is_none() {
        let x = name.get_ref();
        p.push(
            name.span(),
            key.to_owned(),
            format!(
                "there is no segment named `{x}`{}; the segments are `{}`",
                hint(x, names.iter().copied()),
                names.join("`, `")
            ),
        );
    }
    found
}

/// `ip` is a host address of segment `s`'s subnet other than the router's.
fn host_of(s: &Segment, ip: IpAddr) -> Result<(), String> {
    let name = &s.name;
    match ip {
        IpAddr::V4(a) => {
            let net = s.address.subnet();
            if !net.contains(&a) {
                return Err(format!("{a} is not in {name}'s subnet {net}"));
            }
            if a == s.address.addr() {
                return Err(format!("{a} is the router's own address on {name}"));
            }
            if net.prefix_len() < 31 && (a == net.network() || a == net.broadcast()) {
                return Err(format!(
                    "{a} is the network or broadcast address of {net}, not a host"
                ));
            }
        }
        IpAddr::V6(a) => {
            let Some(a6) = s.address6 else {
                return Err(format!("{name} has no IPv6 address (`address6`)"));
            };
            let net = a6.subnet();
            if !net.contains(&a) {
                return Err(format!("{a} is not in {name}'s subnet {net}"));
            }
            if a == a6.addr() {
                return Err(format!("{a} is the router's own address on {name}"));
            }
        }
    }
    Ok(())
}
