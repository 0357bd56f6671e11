//! Raw configuration in, `Config` out. Every rule that spans more than one value lives
//! here (duplicates, overlaps, references, forbids) and every problem is collected, so a
//! user fixes a file in one pass.

mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use toml::Spanned;

use super::diagnostic::{Diagnostic, hint};
use super::raw::{OneOrMany, RawAllow, RawConfig, RawForbid, RawSegment, RawUplink};
use super::types::{IfAddr4, IfAddr6, IfName, Name, Proto, Service, VlanId};
use super::{
    AlertSettings, Allow, Attachment, Config, DaemonSettings, Forbid, Router, Segment,
    UnmanagedInput, Uplink,
};

/// Collects problems; each check pushes and carries on.
#[derive(Default)]
struct Problems {
    found: Vec<Diagnostic>,
    /// Keys the file sets to a value of the wrong type (already reported, and removed
    /// before deserializing): not reported again as missing, and what holds them is not
    /// valid.
    mistyped: BTreeSet<String>,
}

impl Problems {
    /// Whether a key of the table `table` (or the table itself) was given a value of the
    /// wrong type: the table cannot be valid, and what looks missing in it is not.
    fn mistyped_in(&self, table: &str) -> bool {
        self.mistyped.iter().any(|k| {
            k == table
                || k.strip_prefix(table)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with(' '))
        })
    }

    fn push(&mut self, span: Range<usize>, key: impl Into<String>, msg: impl Into<String>) {
        self.found.push(Diagnostic::new(span, key, msg));
    }

    /// Runs a parser on a spanned value; on error, records it and returns `None`.
    fn check<T, V>(
        &mut self,
        v: &Spanned<V>,
        key: impl Into<String>,
        f: impl FnOnce(&V) -> Result<T, String>,
    ) -> Option<T> {
        match f(v.get_ref()) {
            Ok(t) => Some(t),
            Err(msg) => {
                self.push(v.span(), key, msg);
                None
            }
        }
    }

    /// A key that must be present in the table at `table_span`.
    fn required<'a, T>(
        &mut self,
        v: &'a Option<Spanned<T>>,
        table_span: Range<usize>,
        key: &str,
        why: &str,
    ) -> Option<&'a Spanned<T>> {
        if v.is_none() && !self.mistyped.contains(key) {
            self.push(
                table_span,
                key.to_owned(),
                format!("this key is required: {why}"),
            );
        }
        v.as_ref()
    }
}

/// Validates what deserialized; `mistyped` holds the keys `shape` removed for their type
/// (`segments.kiosk.vlan`, `[[allow]] #1 ports`).
pub fn validate(
    raw: RawConfig,
    source: &str,
    mistyped: BTreeSet<String>,
) -> Result<Config, Vec<Diagnostic>> {
    let mut p = Problems {
        found: Vec::new(),
        mistyped,
    };

    let router = router(&raw, &mut p);
    let trunk = raw.trunk.as_ref().and_then(|t| {
        let i = p.required(
            &t.get_ref().interface,
            t.span(),
            "trunk.interface",
            "the port carrying the tagged VLANs, e.g. `interface = \"lan0\"`",
        )?;
        p.check(i, format!("trunk.interface = {:?}", i.get_ref()), |s| {
            IfName::parse(s)
        })
    });

    let uplinks: Vec<Uplink> = raw
        .uplinks
        .iter()
        .filter_map(|(n, u)| uplink(n, u, &mut p))
        .collect();
    check_count(&raw.uplinks, "uplinks", super::MAX_UPLINKS, "", &mut p);
    if raw.uplinks.len() > 1 {
        for (name, u) in &raw.uplinks {
            let key = format!("uplinks.{}", name.get_ref());
            if u.get_ref().gateway.is_none() && !p.mistyped_in(&key) {
                p.push(
                    u.span(),
                    key,
                    "`gateway` is required when there is more than one uplink (cloison routes each segment to its own uplink); add `gateway = \"a.b.c.d\"`",
                );
            }
        }
    }

    let uplink_names: Vec<&str> = raw.uplinks.keys().map(|k| k.get_ref().as_str()).collect();
    let segments: Vec<Segment> = raw
        .segments
        .iter()
        .filter_map(|(n, s)| {
            segment(
                n,
                s,
                raw.trunk.as_ref().map(|_| trunk.clone()),
                &uplink_names,
                &mut p,
            )
        })
        .collect();
    if raw.segments.is_empty() && !p.mistyped_in("segments") {
        p.push(
            0..0,
            "segments",
            "no segment is defined; add at least one `[segments.NAME]` table",
        );
    }

    check_count(
        &raw.segments,
        "segments",
        super::MAX_SEGMENTS,
        " (its ruleset and the table it reads back every 2 s grow with the square of their number, see /usr/share/doc/cloison/performance.md); group hosts into fewer segments",
        &mut p,
    );

    check_duplicate_vlans(&raw, &mut p);
    check_interfaces(&raw, trunk.as_ref(), &segments, &uplinks, &mut p);
    check_names_disjoint(&raw, &mut p);
    check_overlaps(&raw, &segments, &uplinks, &mut p);

    let seg_names: Vec<&str> = raw.segments.keys().map(|k| k.get_ref().as_str()).collect();
    let allows: Vec<(usize, Allow)> = raw
        .allow
        .iter()
        .enumerate()
        .filter_map(|(i, a)| allow(i, a, &seg_names, &mut p).map(|x| (i, x)))
        .collect();
    let forbids: Vec<(usize, Forbid)> = raw
        .forbid
        .iter()
        .enumerate()
        .filter_map(|(i, f)| forbid(i, f, &seg_names, &mut p).map(|x| (i, x)))
        .collect();
    check_forbids(&raw, source, &allows, &forbids, &mut p);

    let alerts = alerts(&raw, &mut p);
    let daemon = DaemonSettings {
        repair: raw
            .daemon
            .as_ref()
            .and_then(|d| d.get_ref().repair.as_ref())
            .is_none_or(|r| *r.get_ref()),
    };

    let verify = verify::settings(&raw, &segments, &mut p);

    if !p.found.is_empty() {
        return Err(p.found);
    }
    Ok(Config {
        router: router.expect("no problems implies a router"),
        trunk,
        uplinks,
        segments,
        allows: allows.into_iter().map(|(_, a)| a).collect(),
        forbids: forbids.into_iter().map(|(_, f)| f).collect(),
        alerts: alerts.expect("no problems implies alert settings"),
        daemon,
        verify: verify.expect("no problems implies verify settings"),
        _validated: (),
    })
}

fn router(raw: &RawConfig, p: &mut Problems) -> Option<Router> {
    let Some(r) = &raw.router else {
        return Some(Router {
            name: None,
            ssh_port: 22,
            trusted_interfaces: Vec::new(),
            unmanaged_input: UnmanagedInput::Drop,
        });
    };
    let r = r.get_ref();
    let name = match &r.name {
        None => Some(None),
        Some(n) => p.check(n, format!("router.name = {:?}", n.get_ref()), |s| {
            if s.is_empty() || s.len() > 64 || s.chars().any(char::is_control) {
                Err("the router name must be 1 to 64 printable characters".to_owned())
            } else {
                Ok(Some(s.clone()))
            }
        }),
    };
    let ssh_port = match &r.ssh_port {
        None => Some(22),
        Some(port) => p.check(port, format!("router.ssh_port = {}", port.get_ref()), |v| {
            port_number(*v)
        }),
    };
    let mut trusted = Vec::new();
    let mut trusted_ok = true;
    if let Some(list) = &r.trusted_interfaces {
        for i in list.get_ref() {
            match p.check(
                i,
                format!("router.trusted_interfaces: {:?}", i.get_ref()),
                |s| IfName::parse(s),
            ) {
                Some(n) => trusted.push(n),
                None => trusted_ok = false,
            }
        }
    }
    trusted.sort();
    trusted.dedup();
    let unmanaged_input = match &r.unmanaged_input {
        None => Some(UnmanagedInput::Drop),
        Some(v) => p.check(
            v,
            format!("router.unmanaged_input = {:?}", v.get_ref()),
            |s| match s.as_str() {
                "drop" => Ok(UnmanagedInput::Drop),
                "accept" => Ok(UnmanagedInput::Accept),
                _ => Err(
                    "`unmanaged_input` is \"drop\" (the default) or \"accept\"; to let an interface in, list it in `trusted_interfaces` instead".to_owned(),
                ),
            },
        ),
    };
    Some(Router {
        name: name?,
        ssh_port: ssh_port?,
        trusted_interfaces: trusted_ok.then_some(trusted)?,
        unmanaged_input: unmanaged_input?,
    })
}

fn port_number(v: i64) -> Result<u16, String> {
    match u16::try_from(v) {
        Ok(port @ 1..) => Ok(port),
        _ => Err("ports go from 1 to 65535".into()),
    }
}

fn uplink(name: &Spanned<String>, u: &Spanned<RawUplink>, p: &mut Problems) -> Option<Uplink> {
    let key = format!("uplinks.{}", name.get_ref());
    let n = p.check(name, &key, |s| Name::parse(s));
    let span = u.span();
    let u = u.get_ref();
    let interface = p
        .required(
            &u.interface,
            span,
            &format!("{key}.interface"),
            "the port toward this uplink, e.g. `interface = \"wan0\"`",
        )
        .and_then(|i| {
            p.check(i, format!("{key}.interface = {:?}", i.get_ref()), |s| {
                IfName::parse(s)
            })
        });
    let address = opt(p, &u.address, format!("{key}.address"), |s| {
        IfAddr4::parse(s)
    });
    let address6 = opt(p, &u.address6, format!("{key}.address6"), |s| {
        IfAddr6::parse(s)
    });
    let gateway = opt(p, &u.gateway, format!("{key}.gateway"), |s| {
        s.parse::<Ipv4Addr>().map_err(|_| {
            format!("`{s}` is not an IPv4 address; write the next hop like `192.168.1.254`")
        })
    });
    let gateway6 = opt(p, &u.gateway6, format!("{key}.gateway6"), |s| {
        s.parse::<Ipv6Addr>().map_err(|_| {
            format!(
                "`{s}` is not an IPv6 address; write the next hop like `2001:db8::1` or `fe80::1`"
            )
        })
    });
    let label = opt(p, &u.label, format!("{key}.label"), |s| parse_label(s));
    if let (Some(Some(a)), Some(Some(g)), Some(gs)) = (&address, &gateway, &u.gateway) {
        if !a.subnet().contains(g) || *g == a.addr() {
            p.push(
                gs.span(),
                format!("{key}.gateway = {:?}", gs.get_ref()),
                format!(
                    "the gateway must be another address inside the uplink's subnet {}",
                    a.subnet()
                ),
            );
        }
    }
    if p.mistyped_in(&key) {
        return None;
    }
    Some(Uplink {
        name: n?,
        interface: interface?,
        gateway: gateway?,
        address: address?,
        gateway6: gateway6?,
        address6: address6?,
        masquerade: u.masquerade.as_ref().is_none_or(|m| *m.get_ref()),
        label: label?,
    })
}

/// The longest `label`: a short phrase, not a description.
pub const MAX_LABEL_LEN: usize = 60;

/// A `label`: what people call a segment or uplink (`le poste public`), shown by
/// `cloison report`.
fn parse_label(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("a label cannot be empty; remove the key or write a short phrase like \"le poste public\"".into());
    }
    if t.chars().count() > MAX_LABEL_LEN {
        return Err(format!(
            "a label is at most {MAX_LABEL_LEN} characters; keep it short (\"le poste public\"), comments can say more"
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("a label is one line of text, without control characters".into());
    }
    Ok(t.to_owned())
}

/// Parses an optional value: `Some(None)` when absent, `None` when present and invalid.
fn opt<T>(
    p: &mut Problems,
    v: &Option<Spanned<String>>,
    key: String,
    f: impl FnOnce(&String) -> Result<T, String>,
) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => p
            .check(v, format!("{key} = {:?}", v.get_ref()), f)
            .map(Some),
    }
}

fn segment(
    name: &Spanned<String>,
    s: &Spanned<RawSegment>,
    trunk: Option<Option<IfName>>,
    uplinks: &[&str],
    p: &mut Problems,
) -> Option<Segment> {
    let key = format!("segments.{}", name.get_ref());
    let n = p.check(name, &key, |s| Name::parse(s));
    let span = s.span();
    let s = s.get_ref();

    let attachment = match (&s.vlan, &s.interface) {
        (Some(_), Some(i)) => {
            p.push(
                i.span(),
                format!("{key}.interface"),
                "a segment takes exactly one of `vlan` (a VLAN on the trunk) or `interface` (its own port), not both; remove one",
            );
            None
        }
        (None, None) if p.mistyped_in(&key) => None,
        (None, None) => {
            p.push(
                span.clone(),
                key.clone(),
                "a segment needs either `vlan = N` (a VLAN on the trunk) or `interface = \"NAME\"` (its own port)",
            );
            None
        }
        (Some(v), None) => {
            let id = p.check(v, format!("{key}.vlan = {}", v.get_ref()), |x| {
                VlanId::new(*x)
            });
            match (&trunk, id) {
                (None, Some(_)) => {
                    p.push(
                        v.span(),
                        format!("{key}.vlan = {}", v.get_ref()),
                        "`vlan` needs a trunk; add a `[trunk]` table with `interface = \"NAME\"` (the port carrying the tagged VLANs)",
                    );
                    None
                }
                (Some(Some(t)), Some(id)) => {
                    let ifname = format!("{t}.{id}");
                    match IfName::parse(&ifname) {
                        Ok(i) => Some((
                            i,
                            Attachment::Vlan {
                                trunk: t.clone(),
                                id,
                            },
                        )),
                        Err(_) => {
                            p.push(
                                v.span(),
                                format!("{key}.vlan = {}", v.get_ref()),
                                format!("the VLAN interface name `{ifname}` would be longer than 15 bytes; use a shorter trunk interface name"),
                            );
                            None
                        }
                    }
                }
                _ => None,
            }
        }
        (None, Some(i)) => p
            .check(i, format!("{key}.interface = {:?}", i.get_ref()), |x| {
                IfName::parse(x)
            })
            .map(|i| (i, Attachment::Port)),
    };

    let address = p
        .required(
            &s.address,
            span.clone(),
            &format!("{key}.address"),
            "the router's address on this segment with the subnet's prefix, e.g. `address = \"192.168.20.1/24\"`",
        )
        .and_then(|a| p.check(a, format!("{key}.address = {:?}", a.get_ref()), |x| IfAddr4::parse(x)));
    let address6 = opt(p, &s.address6, format!("{key}.address6"), |x| {
        IfAddr6::parse(x)
    });
    let uplink = match &s.uplink {
        None => Some(None),
        Some(u) => p.check(u, format!("{key}.uplink = {:?}", u.get_ref()), |x| {
            if uplinks.contains(&x.as_str()) {
                Name::parse(x).map(Some)
            } else if uplinks.is_empty() {
                Err(format!(
                    "there is no uplink named `{x}`; define it in an `[uplinks.{x}]` table"
                ))
            } else {
                Err(format!(
                    "there is no uplink named `{x}`{}; the uplinks are `{}`",
                    hint(x, uplinks.iter().copied()),
                    uplinks.join("`, `")
                ))
            }
        }),
    };
    let label = opt(p, &s.label, format!("{key}.label"), |x| parse_label(x));
    let mut services = BTreeSet::new();
    let mut ok = true;
    for sv in &s.services {
        let names = Service::ALL.map(Service::name);
        match Service::parse(sv.get_ref()) {
            Some(x) => {
                if !services.insert(x) {
                    p.push(
                        sv.span(),
                        format!("{key}.services"),
                        format!("`{}` is listed twice", sv.get_ref()),
                    );
                    ok = false;
                }
            }
            None => {
                p.push(
                    sv.span(),
                    format!("{key}.services"),
                    format!(
                        "unknown service `{}`{}; the services are `{}`",
                        sv.get_ref(),
                        hint(sv.get_ref(), names),
                        names.join("`, `")
                    ),
                );
                ok = false;
            }
        }
    }
    let (interface, attachment) = attachment?;
    if !ok || p.mistyped_in(&key) {
        return None;
    }
    Some(Segment {
        name: n?,
        interface,
        attachment,
        address: address?,
        address6: address6?,
        uplink: uplink?,
        services,
        management: s.management.as_ref().is_some_and(|m| *m.get_ref()),
        label: label?,
    })
}

/// At most `max` tables in `[what.NAME]`: the first one too many is pointed at.
fn check_count<T>(
    tables: &std::collections::BTreeMap<Spanned<String>, Spanned<T>>,
    what: &str,
    max: usize,
    why: &str,
    p: &mut Problems,
) {
    if let Some((name, t)) = tables.iter().nth(max) {
        p.push(
            t.span(),
            format!("{what}.{}", name.get_ref()),
            format!(
                "{} {what} are defined; cloison handles at most {max}{why}",
                tables.len()
            ),
        );
    }
}

fn check_duplicate_vlans(raw: &RawConfig, p: &mut Problems) {
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    for (name, s) in &raw.segments {
        if let Some(v) = &s.get_ref().vlan {
            if let Some(first) = seen.insert(*v.get_ref(), name.get_ref()) {
                p.push(
                    v.span(),
                    format!("segments.{}.vlan = {}", name.get_ref(), v.get_ref()),
                    format!("VLAN {} is already used by segment `{first}`; each segment needs its own VLAN", v.get_ref()),
                );
            }
        }
    }
}

/// The same interface may carry only one role: trunk, an uplink, or one segment.
fn check_interfaces(
    raw: &RawConfig,
    trunk: Option<&IfName>,
    segments: &[Segment],
    uplinks: &[Uplink],
    p: &mut Problems,
) {
    let mut users: BTreeMap<String, String> = BTreeMap::new();
    if let Some(t) = trunk {
        users.insert(t.to_string(), "the trunk".into());
    }
    for (name, u) in &raw.uplinks {
        let Some(i) = &u.get_ref().interface else {
            continue;
        };
        if uplinks.iter().any(|x| x.interface.as_str() == i.get_ref()) {
            if let Some(first) =
                users.insert(i.get_ref().clone(), format!("uplink `{}`", name.get_ref()))
            {
                p.push(
                    i.span(),
                    format!("uplinks.{}.interface = {:?}", name.get_ref(), i.get_ref()),
                    format!(
                        "interface `{}` is already used by {first}; each interface has one role",
                        i.get_ref()
                    ),
                );
            }
        }
    }
    for (name, s) in &raw.segments {
        let Some(seg) = segments.iter().find(|x| x.name.as_str() == name.get_ref()) else {
            continue;
        };
        let vlan_taken = seg.vlan().is_some()
            && segments
                .iter()
                .any(|o| o.name != seg.name && o.vlan() == seg.vlan());
        if vlan_taken {
            // Already reported as a duplicate VLAN.
            continue;
        }
        let span = s.get_ref().interface.as_ref().map_or_else(
            || s.get_ref().vlan.as_ref().map_or(s.span(), |v| v.span()),
            |i| i.span(),
        );
        if let Some(first) = users.insert(
            seg.interface.to_string(),
            format!("segment `{}`", name.get_ref()),
        ) {
            p.push(
                span,
                format!("segments.{}", name.get_ref()),
                format!(
                    "interface `{}` is already used by {first}; each interface has one role",
                    seg.interface
                ),
            );
        }
    }
    let trusted = raw
        .router
        .as_ref()
        .and_then(|r| r.get_ref().trusted_interfaces.as_ref());
    for i in trusted.map(|l| l.get_ref().as_slice()).unwrap_or_default() {
        let name = i.get_ref();
        let why = match users.get(name) {
            Some(user) => format!(
                "`{name}` is {user}'s interface: cloison decides what it may ask of the router; trust only interfaces cloison does not manage"
            ),
            None if name == "lo" => "`lo` is always accepted; remove it from the list".to_owned(),
            None => continue,
        };
        p.push(
            i.span(),
            format!("router.trusted_interfaces: {name:?}"),
            why,
        );
    }
}

fn check_names_disjoint(raw: &RawConfig, p: &mut Problems) {
    for name in raw.segments.keys() {
        if raw.uplinks.keys().any(|u| u.get_ref() == name.get_ref()) {
            p.push(
                name.span(),
                format!("segments.{}", name.get_ref()),
                "a segment and an uplink share this name; counters and alerts need distinct names, rename one",
            );
        }
    }
}

fn check_overlaps(raw: &RawConfig, segments: &[Segment], uplinks: &[Uplink], p: &mut Problems) {
    let span_of = |name: &str, six: bool| -> Range<usize> {
        raw.segments
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(_, s)| {
                let s = s.get_ref();
                if six {
                    s.address6
                        .as_ref()
                        .or(s.address.as_ref())
                        .map_or(0..0, |a| a.span())
                } else {
                    s.address.as_ref().map_or(0..0, |a| a.span())
                }
            })
            .unwrap_or(0..0)
    };
    for (i, a) in segments.iter().enumerate() {
        for b in &segments[..i] {
            if nets4_overlap(a.address.subnet(), b.address.subnet()) {
                p.push(
                    span_of(a.name.as_str(), false),
                    format!("segments.{}.address = \"{}\"", a.name, a.address),
                    format!(
                        "subnet {} overlaps segment `{}` ({}); segments need separate subnets",
                        a.address.subnet(),
                        b.name,
                        b.address.subnet()
                    ),
                );
            }
            if let (Some(x), Some(y)) = (a.address6, b.address6) {
                if nets6_overlap(x.subnet(), y.subnet()) {
                    p.push(
                        span_of(a.name.as_str(), true),
                        format!("segments.{}.address6 = \"{x}\"", a.name),
                        format!(
                            "prefix {} overlaps segment `{}` ({}); segments need separate prefixes",
                            x.subnet(),
                            b.name,
                            y.subnet()
                        ),
                    );
                }
            }
        }
        for u in uplinks {
            if let Some(ua) = u.address {
                if nets4_overlap(a.address.subnet(), ua.subnet()) {
                    p.push(
                        span_of(a.name.as_str(), false),
                        format!("segments.{}.address = \"{}\"", a.name, a.address),
                        format!("subnet {} overlaps uplink `{}` ({}); a segment cannot share the uplink's network", a.address.subnet(), u.name, ua.subnet()),
                    );
                }
            }
            if let (Some(x), Some(ua)) = (a.address6, u.address6) {
                if nets6_overlap(x.subnet(), ua.subnet()) {
                    p.push(
                        span_of(a.name.as_str(), true),
                        format!("segments.{}.address6 = \"{x}\"", a.name),
                        format!("prefix {} overlaps uplink `{}` ({}); a segment cannot share the uplink's network", x.subnet(), u.name, ua.subnet()),
                    );
                }
            }
        }
    }
}

fn nets4_overlap(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn nets6_overlap(a: Ipv6Net, b: Ipv6Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn segment_ref(
    p: &mut Problems,
    v: &Spanned<String>,
    key: String,
    segments: &[&str],
) -> Option<Name> {
    p.check(v, format!("{key} = {:?}", v.get_ref()), |x| {
        if segments.contains(&x.as_str()) {
            Name::parse(x)
        } else {
            Err(format!(
                "there is no segment named `{x}`{}; the segments are `{}`",
                hint(x, segments.iter().copied()),
                segments.join("`, `")
            ))
        }
    })
}

fn proto(p: &mut Problems, v: &Spanned<String>, key: String) -> Option<Proto> {
    p.check(v, format!("{key} = {:?}", v.get_ref()), |x| {
        let names = Proto::ALL.map(Proto::name);
        Proto::parse(x).ok_or_else(|| {
            format!(
                "unknown protocol `{x}`{}; use `tcp`, `udp` or `icmp`",
                hint(x, names)
            )
        })
    })
}

fn ports(
    p: &mut Problems,
    v: &Option<Spanned<Vec<Spanned<i64>>>>,
    key: &str,
) -> Option<BTreeSet<u16>> {
    let mut out = BTreeSet::new();
    let mut ok = true;
    for port in v.iter().flat_map(|v| v.get_ref()) {
        match p.check(port, format!("{key} ports"), |x| {
            port_number(*x).map_err(|e| format!("{x}: {e}"))
        }) {
            Some(n) => {
                if !out.insert(n) {
                    p.push(
                        port.span(),
                        format!("{key} ports"),
                        format!("port {n} is listed twice"),
                    );
                    ok = false;
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn allow(i: usize, a: &Spanned<RawAllow>, segments: &[&str], p: &mut Problems) -> Option<Allow> {
    let key = format!("[[allow]] #{}", i + 1);
    let span = a.span();
    let a = a.get_ref();
    let from = p
        .required(
            &a.from,
            span.clone(),
            &format!("{key} from"),
            "the segment the exception starts from",
        )
        .and_then(|v| segment_ref(p, v, format!("{key} from"), segments));
    let to_raw = p.required(
        &a.to,
        span.clone(),
        &format!("{key} to"),
        "the segment the exception reaches",
    );
    let to = to_raw.and_then(|v| segment_ref(p, v, format!("{key} to"), segments));
    let proto_raw = p.required(
        &a.proto,
        span.clone(),
        &format!("{key} proto"),
        "`tcp`, `udp` or `icmp`",
    );
    let proto = proto_raw.and_then(|v| proto(p, v, format!("{key} proto")));
    let ports = ports(p, &a.ports, &key);
    if let (Some(f), Some(t), Some(to_raw)) = (&from, &to, to_raw) {
        if f == t {
            p.push(
                to_raw.span(),
                format!("{key} to = {:?}", to_raw.get_ref()),
                "an allow from a segment to itself means nothing (hosts of one segment talk directly); remove it",
            );
            return None;
        }
    }
    let (proto, ports) = (proto?, ports?);
    if p.mistyped_in(&key) {
        return None;
    }
    match (proto, ports.is_empty(), &a.ports) {
        (Proto::Icmp, false, Some(v)) => {
            p.push(
                v.span(),
                format!("{key} ports"),
                "ICMP has no ports; remove `ports` (an icmp allow lets ping through)",
            );
            return None;
        }
        (Proto::Tcp | Proto::Udp, true, _) => {
            let span = a.ports.as_ref().map_or(span, |v| v.span());
            p.push(
                span,
                format!("{key} ports"),
                format!("a {proto} allow needs the ports it opens, e.g. `ports = [5900]`; exceptions stay narrow"),
            );
            return None;
        }
        _ => {}
    }
    Some(Allow {
        from: from?,
        to: to?,
        proto,
        ports,
        comment: a.comment.as_ref().map(|c| c.get_ref().clone()),
    })
}

fn forbid(i: usize, f: &Spanned<RawForbid>, segments: &[&str], p: &mut Problems) -> Option<Forbid> {
    let key = format!("[[forbid]] #{}", i + 1);
    let span = f.span();
    let f = f.get_ref();
    let mut names = |v: &Option<Spanned<OneOrMany>>, end: &str| -> Option<Vec<Name>> {
        let v = p.required(
            v,
            span.clone(),
            &format!("{key} {end}"),
            "a segment name or a list of segment names",
        )?;
        let items = OneOrMany::items(v);
        if items.is_empty() {
            p.push(
                v.span(),
                format!("{key} {end}"),
                "the list names no segment",
            );
            return None;
        }
        let names: Vec<Option<Name>> = items
            .iter()
            .map(|x| segment_ref(p, x, format!("{key} {end}"), segments))
            .collect();
        names.into_iter().collect()
    };
    let from = names(&f.from, "from");
    let to = names(&f.to, "to");
    let proto = match &f.proto {
        None => Some(None),
        Some(v) => proto(p, v, format!("{key} proto")).map(Some),
    };
    let ports = ports(p, &f.ports, &key);
    if p.mistyped_in(&key) {
        return None;
    }
    Some(Forbid {
        from: from?,
        to: to?,
        proto: proto?,
        ports: ports?,
        comment: f.comment.as_ref().map(|c| c.get_ref().clone()),
    })
}

/// Does this allow open anything the forbid closes?
pub fn allow_overlaps(a: &Allow, f: &Forbid) -> bool {
    let pair = f.from.contains(&a.from) && f.to.contains(&a.to);
    let proto = f.proto.is_none_or(|p| p == a.proto);
    let ports = f.ports.is_empty() || a.ports.intersection(&f.ports).next().is_some();
    pair && proto && ports
}

fn check_forbids(
    raw: &RawConfig,
    source: &str,
    allows: &[(usize, Allow)],
    forbids: &[(usize, Forbid)],
    p: &mut Problems,
) {
    for (ai, a) in allows {
        for (fi, f) in forbids {
            if allow_overlaps(a, f) {
                let fspan = raw.forbid[*fi].span();
                let ports: Vec<String> = a.ports.iter().map(u16::to_string).collect();
                let what = if ports.is_empty() {
                    a.proto.to_string()
                } else {
                    format!("{}/{}", a.proto, ports.join(","))
                };
                p.push(
                    raw.allow[*ai].span(),
                    format!("[[allow]] #{}", ai + 1),
                    format!(
                        "allows {} -> {} {what}, which [[forbid]] #{} (line {}{}) forbids; remove the allow, or change the forbid if the exception is really wanted",
                        a.from,
                        a.to,
                        fi + 1,
                        super::diagnostic::line_col(source, fspan.start).0,
                        f.comment.as_ref().map(|c| format!(", \"{c}\"")).unwrap_or_default(),
                    ),
                );
            }
        }
    }
}

fn alerts(raw: &RawConfig, p: &mut Problems) -> Option<AlertSettings> {
    let mut out = AlertSettings::default();
    let Some(a) = &raw.alerts else {
        return Some(out);
    };
    let a = a.get_ref();
    let mut ok = true;
    if let Some(v) = &a.summary_every {
        match p.check(
            v,
            format!("alerts.summary_every = {:?}", v.get_ref()),
            |s| parse_duration(s),
        ) {
            Some(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(3600) => {
                out.summary_every = d
            }
            Some(_) => {
                p.push(
                    v.span(),
                    format!("alerts.summary_every = {:?}", v.get_ref()),
                    "use a period between 1s and 1h",
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    if let Some(v) = &a.max_per_minute {
        match p.check(
            v,
            format!("alerts.max_per_minute = {}", v.get_ref()),
            |n| match u32::try_from(*n) {
                Ok(bound @ 10..=10_000) => Ok(bound),
                _ => Err("use a bound between 10 and 10000 entries per minute".into()),
            },
        ) {
            Some(n) => out.max_per_minute = n,
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `"60s"`, `"5m"`, `"1h"`, `"500ms"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("`{s}` is not a duration; write it like \"60s\", \"5m\" or \"1h\"");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("60").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
