//! `Alert`: one journal entry, with its one-line `MESSAGE` and its `CLOISON_*` fields.
//! Headers only: every value here comes from a `FlowKey`, a count, a time, or text the
//! daemon wrote itself (validation errors, hashes). Nothing can carry packet payload.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::event::{Destination, EventKind, FlowKey, L4, Origin, Technique, format_mac};
use super::names::Names;
use super::ports::service_name;
use crate::counter::{Pair, TO_INTERNET, TO_PRIVATE, TRUNK_UNTAGGED};

/// The journal field names of the contract (docs/alerts.md). Scripts rely on them.
pub mod field {
    pub const MESSAGE: &str = "MESSAGE";
    pub const MESSAGE_ID: &str = "MESSAGE_ID";
    pub const PRIORITY: &str = "PRIORITY";
    pub const SYSLOG_IDENTIFIER: &str = "SYSLOG_IDENTIFIER";
    pub const EVENT: &str = "CLOISON_EVENT";
    pub const ROUTER: &str = "CLOISON_ROUTER";
    /// `1` on summaries (folded repeats); absent on first alerts.
    pub const SUMMARY: &str = "CLOISON_SUMMARY";
    pub const VERDICT: &str = "CLOISON_VERDICT";
    pub const SRC_SEGMENT: &str = "CLOISON_SRC_SEGMENT";
    pub const DST_SEGMENT: &str = "CLOISON_DST_SEGMENT";
    pub const SRC_IP: &str = "CLOISON_SRC_IP";
    pub const DST_IP: &str = "CLOISON_DST_IP";
    pub const PROTO: &str = "CLOISON_PROTO";
    pub const DST_PORT: &str = "CLOISON_DST_PORT";
    pub const SRC_MAC: &str = "CLOISON_SRC_MAC";
    pub const VLAN: &str = "CLOISON_VLAN";
    /// The inner tag of a double-tagged frame: the VLAN a hopping attempt aims at.
    pub const VLAN_INNER: &str = "CLOISON_VLAN_INNER";
    pub const INTERFACE: &str = "CLOISON_INTERFACE";
    /// How the attempt was made, when its headers say (`tcp_fin`, `traceroute`,
    /// `neighbour_advert`...): `event::Technique`.
    pub const TECHNIQUE: &str = "CLOISON_TECHNIQUE";
    /// `isolation_breach`: `forged`, `leaked` or `unknown` (`event::Origin`).
    pub const ORIGIN: &str = "CLOISON_ORIGIN";
    /// The ruleset counter (`kiosk/mairie`) whose packets an entry reports.
    pub const COUNTER: &str = "CLOISON_COUNTER";
    pub const PACKETS: &str = "CLOISON_PACKETS";
    /// Distinct flows sampled in the interval a counter summary covers.
    pub const FLOWS: &str = "CLOISON_FLOWS";
    /// Flows whose packets an overflow summary carries without an entry of their own.
    pub const FOLDED_FLOWS: &str = "CLOISON_FOLDED_FLOWS";
    /// Summaries of several flows: the most frequent destinations, `address proto/port
    /// count` separated by commas (counts are packets, or samples for counters).
    pub const TOP_DESTINATIONS: &str = "CLOISON_TOP_DESTINATIONS";
    /// Summaries of several flows: their distinct sources (addresses or MACs), `N`, or
    /// `N+` when there were more than could be remembered.
    pub const SOURCES: &str = "CLOISON_SOURCES";
    pub const FIRST_SEEN: &str = "CLOISON_FIRST_SEEN";
    pub const LAST_SEEN: &str = "CLOISON_LAST_SEEN";
    /// Free text from the daemon: what drifted, the validation errors, what changed.
    pub const DETAIL: &str = "CLOISON_DETAIL";
    pub const OLD_HASH: &str = "CLOISON_OLD_HASH";
    pub const NEW_HASH: &str = "CLOISON_NEW_HASH";
    pub const CONFIG: &str = "CLOISON_CONFIG";
    /// `yes` or `no`: whether the drift was repaired.
    pub const REPAIRED: &str = "CLOISON_REPAIRED";
    /// The process that made a change to the rules (from the kernel's notification).
    pub const ACTOR_PID: &str = "CLOISON_ACTOR_PID";
    pub const ACTOR_COMM: &str = "CLOISON_ACTOR_COMM";
    /// Its parent, `comm pid`, when it could be read while the actor was alive.
    pub const ACTOR_PARENT: &str = "CLOISON_ACTOR_PARENT";
    /// Which wall drifted: `ruleset`, `routing` or `both`.
    pub const WALL: &str = "CLOISON_WALL";
    /// `verify_*`: SHA-256 of the configuration the probes were checked against.
    pub const CONFIG_HASH: &str = "CLOISON_CONFIG_HASH";
    /// `verify_*`: probes sent, and how many did not meet the configuration.
    pub const VERIFY_PROBES: &str = "CLOISON_VERIFY_PROBES";
    pub const VERIFY_FAILURES: &str = "CLOISON_VERIFY_FAILURES";
    /// `verify_*`: the whole result, a JSON document (`report::VerifyResult`).
    pub const VERIFY_RESULT: &str = "CLOISON_VERIFY_RESULT";
    /// `1` on entries about `cloison verify`'s own probes: never an attack.
    pub const VERIFY: &str = "CLOISON_VERIFY";
}

/// Who changed the rules, as the kernel names them: the committing process's pid and
/// command name, and its parent when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub pid: u32,
    pub comm: Option<String>,
    /// `(pid, comm)` of its parent.
    pub parent: Option<(u32, String)>,
}

impl std::fmt::Display for Actor {
    /// `nft (pid 4242, started by bash, pid 4200)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.comm {
            Some(c) => write!(f, "{c} (pid {}", self.pid)?,
            None => write!(f, "a process (pid {}", self.pid)?,
        }
        if let Some((pid, comm)) = &self.parent {
            write!(f, ", started by {comm}, pid {pid}")?;
        }
        f.write_str(")")
    }
}

/// `SYSLOG_IDENTIFIER` of every entry, so `journalctl -t cloison` finds them all.
pub const SYSLOG_IDENTIFIER: &str = "cloison";

/// Longest value kept in a field; the rest is cut (entries stay small datagrams).
pub const MAX_VALUE_LEN: usize = 4096;

/// Longest `CLOISON_VERIFY_RESULT` (a JSON document is useless cut).
pub const MAX_VERIFY_RESULT_LEN: usize = 64 * 1024;

/// Fields the constructors set themselves; free-form details may not override them.
const OWN_FIELDS: [&str; 6] = [
    field::MESSAGE,
    field::MESSAGE_ID,
    field::PRIORITY,
    field::SYSLOG_IDENTIFIER,
    field::EVENT,
    field::ROUTER,
];

/// What cloison did about the traffic (`CLOISON_VERDICT`).
pub fn verdict(kind: EventKind) -> Option<&'static str> {
    match kind {
        EventKind::CrossSegment | EventKind::RouterAccess | EventKind::SpoofedSource => {
            Some("blocked")
        }
        EventKind::IsolationBreach
        | EventKind::ArpSpoof
        | EventKind::RogueDhcp
        | EventKind::RogueRa
        | EventKind::VlanHopping => Some("observed"),
        EventKind::RulesetDrift
        | EventKind::ConfigRejected
        | EventKind::ConfigApplied
        | EventKind::VerifyPassed
        | EventKind::VerifyFailed => None,
    }
}

/// Whether a kind's ground truth is a ruleset counter (its observations are samples).
pub fn counter_backed(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::CrossSegment | EventKind::RouterAccess | EventKind::SpoofedSource
    )
}

/// Whether a kind is about traffic (folded and counted) rather than about the daemon.
pub fn traffic_kind(kind: EventKind) -> bool {
    verdict(kind).is_some()
}

/// A journal field name journald accepts: `[A-Z0-9_]`, not starting with `_` or a digit,
/// at most 64 bytes.
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    kind: EventKind,
    message: String,
    /// `CLOISON_*` fields, `CLOISON_EVENT` and `CLOISON_ROUTER` first.
    fields: Vec<(&'static str, String)>,
}

impl Alert {
    fn base(kind: EventKind, router: &str, message: String) -> Alert {
        Alert {
            kind,
            message: one_line(&message),
            fields: vec![
                (field::EVENT, kind.name().to_owned()),
                (field::ROUTER, cut(router)),
            ],
        }
    }

    fn push(&mut self, key: &'static str, value: impl ToString) {
        self.fields.push((key, cut(&value.to_string())));
    }

    /// An alert from the daemon (`ruleset_drift`, `config_rejected`, `config_applied`, or
    /// any kind when there is no flow) with free-form detail fields. `MESSAGE` is made one
    /// line; details may span lines. A detail whose name journald would refuse, or that
    /// would replace one of the contract's own fields, is left out (and trips a debug
    /// assertion: names are constants in the code).
    pub fn daemon(
        kind: EventKind,
        router: &str,
        message: impl Into<String>,
        details: &[(&'static str, String)],
    ) -> Alert {
        let mut a = Alert::base(kind, router, message.into());
        for (k, v) in details {
            let ok = valid_field_name(k) && !OWN_FIELDS.contains(k);
            debug_assert!(ok, "{k} cannot be a detail field");
            if ok {
                a.push(k, v);
            }
        }
        a
    }

    /// `config_rejected`: the configuration at `path` was refused; `errors` is the whole
    /// diagnostic text (one error per line) and `kept` says what stays in force.
    pub fn config_rejected(router: &str, path: &str, errors: &str, kept: &str) -> Alert {
        let n = errors.lines().filter(|l| !l.trim().is_empty()).count();
        let first = errors.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let more = if n > 1 {
            format!(" (and {} more)", n - 1)
        } else {
            String::new()
        };
        Alert::daemon(
            EventKind::ConfigRejected,
            router,
            format!("configuration {path} rejected, {kept} stays in force: {first}{more}"),
            &[
                (field::CONFIG, path.to_owned()),
                (field::DETAIL, errors.to_owned()),
            ],
        )
    }

    /// `config_applied`: a configuration went live. `old_hash` is `None` at first start.
    pub fn config_applied(
        router: &str,
        path: &str,
        old_hash: Option<&str>,
        new_hash: &str,
        summary: &str,
    ) -> Alert {
        let short = |h: &str| h.chars().take(12).collect::<String>();
        let change = match old_hash {
            Some(old) => format!("{} -> {}", short(old), short(new_hash)),
            None => short(new_hash),
        };
        let mut details = vec![
            (field::CONFIG, path.to_owned()),
            (field::NEW_HASH, new_hash.to_owned()),
            (field::DETAIL, summary.to_owned()),
        ];
        if let Some(old) = old_hash {
            details.push((field::OLD_HASH, old.to_owned()));
        }
        Alert::daemon(
            EventKind::ConfigApplied,
            router,
            format!("configuration {path} applied ({change}): {summary}"),
            &details,
        )
    }

    /// `verify_passed` or `verify_failed`: one run of `cloison verify`, its counts, the
    /// configuration it checked, and the result document (`result_json`, at most
    /// `MAX_VERIFY_RESULT_LEN` bytes: the one field not cut at `MAX_VALUE_LEN`, since a
    /// cut document would not parse; the caller sheds detail to fit).
    pub fn verify_run(
        router: &str,
        probes: usize,
        failures: usize,
        config_hash: &str,
        result_json: &str,
        message: &str,
    ) -> Alert {
        let kind = if failures == 0 {
            EventKind::VerifyPassed
        } else {
            EventKind::VerifyFailed
        };
        let mut a = Alert::daemon(
            kind,
            router,
            message,
            &[
                (field::VERIFY_PROBES, probes.to_string()),
                (field::VERIFY_FAILURES, failures.to_string()),
                (field::CONFIG_HASH, config_hash.to_owned()),
            ],
        );
        if result_json.len() <= MAX_VERIFY_RESULT_LEN {
            a.fields
                .push((field::VERIFY_RESULT, result_json.to_owned()));
        }
        a
    }

    /// `isolation_breach` found by `cloison verify` (`CLOISON_VERIFY=1`): a probe the
    /// configuration blocks got through a wall. `wall` says which let it (`ruleset`,
    /// `routing`, or `none` when neither stopped it); `detail` is the whole judgement.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_breach(
        router: &str,
        from: &str,
        to_segment: Option<&str>,
        to: &str,
        dst_ip: &str,
        probe: &str,
        wall: &str,
        detail: &str,
    ) -> Alert {
        let how = match wall {
            "ruleset" => "got through the ruleset (the second wall stopped it)",
            "routing" => "got through the second wall (the ruleset stopped it)",
            _ => "got through both walls",
        };
        let mut details = vec![
            (field::VERIFY, "1".to_owned()),
            (field::SRC_SEGMENT, from.to_owned()),
        ];
        if let Some(t) = to_segment {
            details.push((field::DST_SEGMENT, t.to_owned()));
        }
        details.push((field::DST_IP, dst_ip.to_owned()));
        let (proto, port) = probe.split_once('/').unwrap_or((probe, ""));
        details.push((field::PROTO, proto.to_owned()));
        if !port.is_empty() {
            details.push((field::DST_PORT, port.to_owned()));
        }
        details.push((field::WALL, wall.to_owned()));
        details.push((field::DETAIL, detail.to_owned()));
        Alert::daemon(
            EventKind::IsolationBreach,
            router,
            format!(
                "isolation breach found by cloison verify: {from} -> {to} {dst_ip} {probe} {how}"
            ),
            &details,
        )
    }

    /// `ruleset_drift`: the live table differs from the plan; `changes` says how.
    /// The rules differ from the plan. `wall` names which (`ruleset`, `routing`, `both`);
    /// `actor` is who changed them, when the kernel said so.
    pub fn ruleset_drift(
        router: &str,
        changes: &str,
        repaired: bool,
        wall: &str,
        actor: Option<&Actor>,
    ) -> Alert {
        let first = changes.lines().next().unwrap_or("");
        let n = changes.lines().count();
        let more = if n > 1 {
            format!(" (and {} more differences)", n - 1)
        } else {
            String::new()
        };
        let action = if repaired {
            "re-applied the configured rules"
        } else {
            "left as is (repair = false)"
        };
        let who = actor.map_or_else(String::new, |a| format!(" by {a}"));
        let mut fields = vec![
            (field::DETAIL, changes.to_owned()),
            (
                field::REPAIRED,
                if repaired { "yes" } else { "no" }.to_owned(),
            ),
            (field::WALL, wall.to_owned()),
        ];
        if let Some(a) = actor {
            fields.push((field::ACTOR_PID, a.pid.to_string()));
            if let Some(c) = &a.comm {
                fields.push((field::ACTOR_COMM, c.clone()));
            }
            if let Some((pid, comm)) = &a.parent {
                fields.push((field::ACTOR_PARENT, format!("{comm} {pid}")));
            }
        }
        Alert::daemon(
            EventKind::RulesetDrift,
            router,
            format!("firewall rules changed outside cloison{who}: {first}{more}; {action}"),
            &fields,
        )
    }

    pub fn kind(&self) -> EventKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn message_id(&self) -> &'static str {
        self.kind.message_id()
    }

    pub fn priority(&self) -> u8 {
        self.kind.priority()
    }

    /// The value of one `CLOISON_*` field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `CLOISON_PACKETS`, 0 when absent.
    pub fn packets(&self) -> u64 {
        self.field(field::PACKETS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn is_summary(&self) -> bool {
        self.field(field::SUMMARY).is_some()
    }

    /// Every field of the journal entry, in a stable order: `MESSAGE`, `MESSAGE_ID`,
    /// `PRIORITY`, `SYSLOG_IDENTIFIER`, then the `CLOISON_*` fields.
    pub fn journal_fields(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            (field::MESSAGE, self.message.as_str()),
            (field::MESSAGE_ID, self.kind.message_id()),
            (field::PRIORITY, priority_str(self.kind.priority())),
            (field::SYSLOG_IDENTIFIER, SYSLOG_IDENTIFIER),
        ]
        .into_iter()
        .chain(self.fields.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// The entry as one JSON object of strings (the stderr form; `journalctl -o json`
    /// shows the same fields).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.journal_fields()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
                .collect(),
        )
    }
}

fn priority_str(p: u8) -> &'static str {
    ["0", "1", "2", "3", "4", "5", "6", "7"]
        .get(usize::from(p))
        .copied()
        .unwrap_or("7")
}

fn one_line(s: &str) -> String {
    let joined = s.split(['\n', '\r']).collect::<Vec<_>>().join(" ");
    cut(&joined)
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_VALUE_LEN {
        return s.to_owned();
    }
    let mut end = MAX_VALUE_LEN - "...".len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Microseconds since the UNIX epoch; times before it (a broken clock) count as 0.
pub(super) fn usec(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// RFC 3339, UTC, microseconds: `2026-05-04T09:12:03.000417Z`.
pub fn rfc3339(us: u64) -> String {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The time a span of packets covers, for messages ("in 12 s").
fn span_text(first: u64, last: u64) -> String {
    let d = Duration::from_micros(last.saturating_sub(first));
    match d.as_secs() {
        0 => "within 1 s".to_owned(),
        s if s < 120 => format!("in {s} s"),
        s if s < 7200 => format!("in {} min", s / 60),
        s => format!("in {} h", s / 3600),
    }
}

fn packets_text(n: u64) -> String {
    if n == 1 {
        "1 packet".to_owned()
    } else {
        format!("{n} packets")
    }
}

/// The protocol and port part: `tcp/445 (SMB)`, `icmp`, `udp/40000`.
fn service_text(key: &FlowKey) -> Option<String> {
    let proto = key.proto?;
    let mut s = proto.name();
    if let Some(port) = key.dst_port {
        let _ = write!(s, "/{port}");
        if let Some(name) = service_name(proto, port) {
            let _ = write!(s, " ({name})");
        }
    }
    Some(s)
}

fn join_some(parts: &[Option<String>]) -> String {
    parts
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

fn ip(a: Option<IpAddr>) -> Option<String> {
    a.map(|a| a.to_string())
}

fn mac(m: Option<[u8; 6]>) -> Option<String> {
    m.as_ref().map(format_mac)
}

/// Where a layer-2 frame was seen: `seg-kiosk (kiosk) vlan 20`.
fn place_text(names: &Names, key: &FlowKey, seen_segment: Option<&str>) -> String {
    let iface = key.ifindex.and_then(|i| names.interface(i));
    let seg = seen_segment.or_else(|| iface.and_then(|i| names.segment_on(i)));
    let mut s = match (iface, seg) {
        (Some(i), Some(seg)) if i != seg => format!("{seg} ({i})"),
        (Some(i), _) => i.to_owned(),
        (None, Some(seg)) => seg.to_owned(),
        (None, None) => "an interface".to_owned(),
    };
    if let Some(v) = key.vlan {
        let _ = write!(s, " vlan {v}");
    }
    s
}

/// The first part of a flow's message, before the verdict.
fn flow_headline(names: &Names, key: &FlowKey) -> String {
    let seg = |id| names.segment(id).map(str::to_owned);
    let src_seg = key.src_segment.and_then(seg);
    let dst_seg = match key.dst {
        Some(Destination::Segment(id)) => seg(id),
        _ => None,
    };
    let service = service_text(key);
    // The MAC is in CLOISON_SRC_MAC; the message names it only when there is no address.
    let src_host = ip(key.src_ip).or_else(|| mac(key.src_mac));
    let src = join_some(&[src_seg.clone(), src_host]);
    let src = if src.is_empty() {
        "a host".to_owned()
    } else {
        src
    };
    let technique = key.technique.map(|t| format!(", {}", t.description()));
    match key.kind {
        EventKind::CrossSegment => {
            let dst = match key.dst {
                Some(Destination::Private) => {
                    join_some(&[Some("private address".into()), ip(key.dst_ip)])
                        + " (in no segment)"
                }
                Some(Destination::Internet) => {
                    join_some(&[Some("the Internet".into()), ip(key.dst_ip)])
                }
                _ => join_some(&[dst_seg, ip(key.dst_ip)]),
            };
            join_some(&[Some(src), Some("tried".into()), Some(dst), service])
                + technique.as_deref().unwrap_or("")
        }
        EventKind::RouterAccess if key.src_segment.is_none() => {
            let trunk = key
                .ifindex
                .and_then(|i| names.interface(i))
                .unwrap_or("the trunk");
            join_some(&[
                Some(format!("untagged on {trunk}:")),
                ip(key.src_ip).or_else(|| mac(key.src_mac)),
                Some("tried the router".into()),
                ip(key.dst_ip),
                service,
            ]) + technique.as_deref().unwrap_or("")
        }
        EventKind::RouterAccess => {
            join_some(&[
                Some(src),
                Some("tried the router".into()),
                ip(key.dst_ip),
                service,
            ]) + technique.as_deref().unwrap_or("")
        }
        EventKind::SpoofedSource => {
            let who = src_seg.unwrap_or_else(|| "a segment".into());
            let from_mac = mac(key.src_mac).map(|m| format!("from {m}"));
            let to = ip(key.dst_ip).map(|d| format!("to {d}"));
            join_some(&[
                Some(who),
                Some("sent a packet with forged source".into()),
                ip(key.src_ip),
                from_mac,
                to,
                service,
            ])
        }
        EventKind::IsolationBreach => {
            let whose = src_seg.as_ref().map(|s| format!("of {s}"));
            let here = dst_seg.as_deref().unwrap_or("this segment");
            let other = src_seg.as_deref().unwrap_or("another segment");
            let origin = match key.origin {
                Some(Origin::Forged) => format!(
                    "; forged: the router knows this MAC as a host of {here}, which sends with an address of {other}"
                ),
                Some(Origin::Leaked) => format!(
                    "; leaked: the router's own frames from {other} reach this wire too (a bridge, a loop or a switch joins them)"
                ),
                Some(Origin::Unknown) => format!(
                    "; cannot tell whether {other} leaks onto this wire or a host of {here} forges the address"
                ),
                None => String::new(),
            };
            format!(
                "isolation breach: {} {}seen on {}{origin}",
                join_some(&[ip(key.src_ip), mac(key.src_mac)]),
                whose.map(|w| w + " ").unwrap_or_default(),
                place_text(names, key, dst_seg.as_deref()),
            )
        }
        EventKind::ArpSpoof if key.technique == Some(Technique::RouterMac) => format!(
            "router MAC spoofing on {}: a frame from the wire carries the router's own MAC {} (a host impersonating the router, or a loop)",
            place_text(names, key, src_seg.as_deref()),
            mac(key.src_mac).unwrap_or_else(|| "address".into()),
        ),
        EventKind::ArpSpoof => {
            let owner = match key.dst {
                Some(Destination::Router) => Some("the router's address".to_owned()),
                Some(Destination::Segment(id)) => {
                    names.segment(id).map(|s| format!("an address of {s}"))
                }
                _ => None,
            };
            let (what, how) = match key.technique {
                Some(t @ (Technique::NeighbourAdvert | Technique::NeighbourSolicit)) => {
                    ("IPv6 neighbour spoofing", format!(" in a {}", t.description()))
                }
                Some(Technique::ArpRequest) => ("ARP spoofing", " in an ARP request".to_owned()),
                _ => ("ARP spoofing", String::new()),
            };
            format!(
                "{what} on {}: {} claims {}{}{how}",
                place_text(names, key, src_seg.as_deref()),
                mac(key.src_mac).unwrap_or_else(|| "a host".into()),
                ip(key.src_ip).unwrap_or_else(|| "an address".into()),
                owner.map(|o| format!(" ({o})")).unwrap_or_default(),
            )
        }
        EventKind::RogueDhcp | EventKind::RogueRa => {
            let what = if key.kind == EventKind::RogueDhcp {
                "rogue DHCP server"
            } else {
                "rogue IPv6 router advertisement"
            };
            format!(
                "{what} on {}: {}",
                place_text(names, key, src_seg.as_deref()),
                join_some(&[mac(key.src_mac), ip(key.src_ip)]),
            )
        }
        EventKind::VlanHopping => {
            let how = match (key.vlan, key.inner_vlan) {
                (Some(outer), Some(inner)) => {
                    format!(", double-tagged (VLAN {outer}, then {inner})")
                }
                _ => String::new(),
            };
            format!(
                "VLAN hopping attempt on {}{how}: from {}",
                place_text(names, key, src_seg.as_deref()),
                join_some(&[mac(key.src_mac), ip(key.src_ip)]),
            )
        }
        EventKind::RulesetDrift
        | EventKind::ConfigRejected
        | EventKind::ConfigApplied
        | EventKind::VerifyPassed
        | EventKind::VerifyFailed => {
            format!("{} {src}", key.kind)
        }
    }
    .trim_end()
    .to_owned()
}

/// The flow fields of a key, those that apply.
fn push_flow_fields(a: &mut Alert, names: &Names, key: &FlowKey) {
    if let Some(s) = key.src_segment.and_then(|id| names.segment(id)) {
        a.push(field::SRC_SEGMENT, s);
    }
    if let Some(Destination::Segment(id)) = key.dst
        && let Some(s) = names.segment(id)
    {
        a.push(field::DST_SEGMENT, s);
    }
    if let Some(v) = key.src_ip {
        a.push(field::SRC_IP, v);
    }
    if let Some(v) = key.dst_ip {
        a.push(field::DST_IP, v);
    }
    if let Some(v) = key.proto {
        a.push(field::PROTO, v.name());
    }
    if let Some(v) = key.dst_port
        && key.proto.is_some_and(|p| matches!(p, L4::Tcp | L4::Udp))
    {
        a.push(field::DST_PORT, v);
    }
    if let Some(v) = key.src_mac {
        a.push(field::SRC_MAC, format_mac(&v));
    }
    if let Some(v) = key.vlan {
        a.push(field::VLAN, v);
    }
    if let Some(v) = key.inner_vlan {
        a.push(field::VLAN_INNER, v);
    }
    if let Some(i) = key.ifindex.and_then(|i| names.interface(i)) {
        a.push(field::INTERFACE, i);
    }
    if let Some(t) = key.technique {
        a.push(field::TECHNIQUE, t.name());
        if t == Technique::VerifyProbe {
            a.push(field::VERIFY, 1);
        }
    }
    if let Some(o) = key.origin {
        a.push(field::ORIGIN, o.name());
    }
}

fn push_counts(a: &mut Alert, packets: u64, first: u64, last: u64) {
    a.push(field::PACKETS, packets);
    a.push(field::FIRST_SEEN, rfc3339(first));
    a.push(field::LAST_SEEN, rfc3339(last));
}

/// Whether an entry follows an earlier one about the same flow or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// A first alert.
    First,
    /// A summary of what followed an earlier entry: "37 more packets".
    More,
    /// A summary of something no earlier entry named (its first alert was held back by
    /// the bound): "37 packets", not "more".
    Unnamed,
}

/// A destination as summaries name it: address, protocol and port (for `arp_spoof`,
/// the address claimed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub dst_ip: Option<IpAddr>,
    pub proto: Option<L4>,
    pub dst_port: Option<u16>,
}

impl Target {
    pub fn of(key: &FlowKey) -> Target {
        Target {
            dst_ip: if key.kind == EventKind::ArpSpoof {
                key.src_ip
            } else {
                key.dst_ip
            },
            proto: key.proto,
            dst_port: key.dst_port,
        }
    }

    fn text(&self) -> String {
        let mut k = FlowKey::new(EventKind::CrossSegment);
        k.proto = self.proto;
        k.dst_port = self.dst_port;
        join_some(&[ip(self.dst_ip), service_text(&k)])
    }
}

/// What a summary folds, beyond its count: a few flows named one by one, how many
/// flows, the top destinations and the number of distinct sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// Flows named in the message.
    pub shown: Vec<FlowKey>,
    /// Distinct flows folded.
    pub flows: u64,
    /// The most frequent destinations, with their packets (layer-2 kinds) or samples
    /// (counter-backed kinds), most first.
    pub top: Vec<(Target, u64)>,
    /// Distinct sources (address or MAC) of the folded flows.
    pub sources: u64,
    /// `sources` is a floor: there were more than could be remembered.
    pub sources_at_least: bool,
}

impl Folded {
    fn sources_text(&self) -> String {
        if self.sources_at_least {
            format!("{}+", self.sources)
        } else {
            self.sources.to_string()
        }
    }

    fn top_text(&self) -> String {
        self.top
            .iter()
            .map(|(t, n)| format!("{} {n}", t.text()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `; top destinations: 192.168.10.5 tcp/445 (SMB) 1200, ...; 8123 distinct sources`.
    fn message_text(&self, unit: &str) -> String {
        let mut out = String::new();
        if !self.top.is_empty() {
            let _ = write!(out, "; top destinations ({unit}): {}", self.top_text());
        }
        if self.sources > 1 {
            let _ = write!(out, "; {} distinct sources", self.sources_text());
        }
        out
    }

    fn push_fields(&self, a: &mut Alert) {
        if !self.top.is_empty() {
            a.push(field::TOP_DESTINATIONS, self.top_text());
        }
        if self.sources > 0 {
            a.push(field::SOURCES, self.sources_text());
        }
    }
}

/// `blocked, first packet` / `observed, 37 more packets in 12 s`.
fn outcome(kind: EventKind, packets: u64, first: u64, last: u64, repeat: Repeat) -> String {
    let v = verdict(kind).unwrap_or("seen");
    match repeat {
        Repeat::First if packets == 1 => format!("{v}, first packet"),
        Repeat::More => {
            let unit = if packets == 1 { "packet" } else { "packets" };
            format!("{v}, {packets} more {unit} {}", span_text(first, last))
        }
        Repeat::First | Repeat::Unnamed => {
            format!("{v}, {} {}", packets_text(packets), span_text(first, last))
        }
    }
}

/// A first alert or the summary of one flow.
pub(super) fn flow_alert(
    names: &Names,
    key: &FlowKey,
    counter: Option<&str>,
    packets: u64,
    (first, last): (u64, u64),
    repeat: Repeat,
) -> Alert {
    let msg = format!(
        "{}: {}",
        flow_headline(names, key),
        outcome(key.kind, packets, first, last, repeat)
    );
    let mut a = Alert::base(key.kind, names.router(), msg);
    if repeat != Repeat::First {
        a.push(field::SUMMARY, 1);
    }
    if let Some(v) = verdict(key.kind) {
        a.push(field::VERDICT, v);
    }
    push_flow_fields(&mut a, names, key);
    if let Some(c) = counter {
        a.push(field::COUNTER, c);
    }
    push_counts(&mut a, packets, first, last);
    a
}

/// The packets of one ruleset counter (`kiosk/mairie`) since its last entry, naming the
/// flows sampled meanwhile. With exactly one sampled flow, that flow's fields are set too
/// (the count stays the counter's).
pub(super) fn counter_alert(
    names: &Names,
    kind: EventKind,
    counter: &str,
    packets: u64,
    (first, last): (u64, u64),
    folded: &Folded,
    repeat: Repeat,
) -> Alert {
    let Pair { from, to } = Pair::parse(counter).unwrap_or(Pair::new(counter, ""));
    let what = match kind {
        EventKind::RouterAccess if counter == TRUNK_UNTAGGED => {
            "traffic untagged on the trunk tried the router".to_owned()
        }
        EventKind::RouterAccess => format!("{from} tried the router"),
        EventKind::SpoofedSource => format!("{from} sent packets with forged sources"),
        _ => match to {
            TO_PRIVATE => format!("{from} tried private addresses in no segment"),
            TO_INTERNET => format!("{from} tried the Internet"),
            _ => format!("{from} tried {to}"),
        },
    };
    let mut msg = format!("{what}: {}", outcome(kind, packets, first, last, repeat));
    let flows = folded.flows;
    if !folded.shown.is_empty() {
        let list: Vec<String> = folded
            .shown
            .iter()
            .map(|k| {
                join_some(&[
                    ip(k.src_ip),
                    Some("->".into()),
                    ip(k.dst_ip),
                    service_text(k),
                ])
            })
            .collect();
        let _ = write!(msg, "; sampled: {}", list.join(", "));
        let shown = folded.shown.len() as u64;
        if flows > shown {
            let _ = write!(msg, " and {} other flows", flows - shown);
        }
        if flows > shown {
            msg.push_str(&folded.message_text("samples"));
        }
    } else if repeat != Repeat::First {
        msg.push_str("; no flow sampled");
    }
    let mut a = Alert::base(kind, names.router(), msg);
    if repeat != Repeat::First {
        a.push(field::SUMMARY, 1);
    }
    if let Some(v) = verdict(kind) {
        a.push(field::VERDICT, v);
    }
    match folded.shown.as_slice() {
        [one] if flows == 1 => push_flow_fields(&mut a, names, one),
        _ => {
            if names.segment_id(from).is_some() {
                a.push(field::SRC_SEGMENT, from);
            }
            if names.segment_id(to).is_some() {
                a.push(field::DST_SEGMENT, to);
            }
        }
    }
    a.push(field::COUNTER, counter);
    a.push(field::FLOWS, flows);
    if flows > 1 {
        folded.push_fields(&mut a);
    }
    push_counts(&mut a, packets, first, last);
    a
}

/// One entry carrying everything of a kind that did not get an entry of its own because
/// of the bound. `parts` names where the packets come from (counters or flows).
pub(super) fn overflow_alert(
    names: &Names,
    kind: EventKind,
    packets: u64,
    (first, last): (u64, u64),
    parts: &[(String, u64)],
    bound: u32,
    folded: &Folded,
) -> Alert {
    let unit = if counter_backed(kind) {
        "samples"
    } else {
        "packets"
    };
    let mut msg = format!(
        "{kind}: {} {} {}, from {} flows not listed one by one (limit of {bound} alerts a minute)",
        verdict(kind).unwrap_or("seen"),
        packets_text(packets),
        span_text(first, last),
        folded.flows,
    );
    if !parts.is_empty() {
        let list: Vec<String> = parts.iter().map(|(n, p)| format!("{n} {p}")).collect();
        let _ = write!(msg, "; {}", list.join(", "));
    }
    msg.push_str(&folded.message_text(unit));
    let mut a = Alert::base(kind, names.router(), msg);
    a.push(field::SUMMARY, 1);
    if let Some(v) = verdict(kind) {
        a.push(field::VERDICT, v);
    }
    a.push(field::FOLDED_FLOWS, folded.flows);
    folded.push_fields(&mut a);
    push_counts(&mut a, packets, first, last);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::event::SegmentId;
    use std::net::Ipv4Addr;

    fn names() -> Names {
        let c =
            crate::config::parse(include_str!("../../../../config/lab.toml"), "lab.toml").unwrap();
        Names::from_config(&c, "unused").with_interfaces([(7, "seg-kiosk".to_owned())])
    }

    fn smb() -> FlowKey {
        let mut k = FlowKey::new(EventKind::CrossSegment);
        k.src_segment = Some(SegmentId(0));
        k.dst = Some(Destination::Segment(SegmentId(1)));
        k.src_ip = Some(Ipv4Addr::new(192, 168, 20, 15).into());
        k.dst_ip = Some(Ipv4Addr::new(192, 168, 10, 5).into());
        k.proto = Some(L4::Tcp);
        k.dst_port = Some(445);
        k.ifindex = Some(7);
        k
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_001), "2000-02-29T00:00:00.000001Z");
        assert_eq!(
            rfc3339(1_777_885_923_000_417),
            "2026-05-04T09:12:03.000417Z"
        );
    }

    #[test]
    fn cross_segment_reads_like_the_issue() {
        let t0 = 1_777_885_923_000_000;
        let a = flow_alert(
            &names(),
            &smb(),
            Some("kiosk/mairie"),
            37,
            (t0, t0 + 12_400_000),
            Repeat::More,
        );
        assert_eq!(
            a.message(),
            "kiosk 192.168.20.15 tried mairie 192.168.10.5 tcp/445 (SMB): blocked, 37 more packets in 12 s"
        );
        assert_eq!(a.field(field::SRC_SEGMENT), Some("kiosk"));
        assert_eq!(a.field(field::DST_SEGMENT), Some("mairie"));
        assert_eq!(a.field(field::DST_PORT), Some("445"));
        assert_eq!(a.field(field::PROTO), Some("tcp"));
        assert_eq!(a.field(field::INTERFACE), Some("seg-kiosk"));
        assert_eq!(a.field(field::ROUTER), Some("mairie-lab"));
        assert_eq!(a.field(field::VERDICT), Some("blocked"));
        assert_eq!(a.field(field::SUMMARY), Some("1"));
        assert_eq!(a.packets(), 37);
        assert_eq!(a.priority(), 4);
        let first = flow_alert(&names(), &smb(), None, 1, (t0, t0), Repeat::First);
        assert!(first.message().ends_with("(SMB): blocked, first packet"));
        assert!(!first.is_summary());
    }

    #[test]
    fn a_verify_probe_is_marked_and_says_it_is_no_attack() {
        let mut k = smb();
        k.technique = Some(Technique::VerifyProbe);
        let a = flow_alert(&names(), &k, None, 1, (0, 0), Repeat::First);
        assert_eq!(a.field(field::VERIFY), Some("1"));
        assert_eq!(a.field(field::TECHNIQUE), Some("verify_probe"));
        assert!(a.message().contains("not an attack"), "{}", a.message());
        assert_eq!(
            flow_alert(&names(), &smb(), None, 1, (0, 0), Repeat::First).field(field::VERIFY),
            None
        );
    }

    #[test]
    fn every_kind_gets_a_readable_message() {
        for kind in EventKind::ALL.into_iter().filter(|k| traffic_kind(*k)) {
            let mut k = smb();
            k.kind = kind;
            k.src_mac = Some([2, 0, 0, 0, 0, 9]);
            let a = flow_alert(&names(), &k, None, 1, (0, 0), Repeat::First);
            assert!(!a.message().contains('\n'));
            assert!(a.message().len() > 20, "{kind}: {}", a.message());
            assert_eq!(a.field(field::SRC_MAC), Some("02:00:00:00:00:09"));
            assert_eq!(a.field(field::EVENT), Some(kind.name()));
        }
    }

    #[test]
    fn daemon_alerts_keep_details_and_one_line_messages() {
        let a = Alert::config_rejected(
            "r",
            "/etc/cloison/cloison.toml",
            "cloison.toml:14:9: segments.kiosk.vlan = 4095: VLAN IDs go from 1 to 4094\ncloison.toml:20:1: unknown key `foo`\n",
            "the previous configuration",
        );
        assert!(!a.message().contains('\n'));
        assert!(a.message().contains("(and 1 more)"), "{}", a.message());
        assert!(a.field(field::DETAIL).unwrap().contains('\n'));
        assert_eq!(a.priority(), 3);
        let b = Alert::config_applied("r", "/c.toml", Some("aa"), "bb", "3 segments");
        assert_eq!(b.field(field::OLD_HASH), Some("aa"));
        assert_eq!(b.field(field::NEW_HASH), Some("bb"));
        assert_eq!(b.priority(), 5);
        let c = Alert::ruleset_drift("r", "table inet cloison is missing", true, "ruleset", None);
        assert_eq!(c.field(field::REPAIRED), Some("yes"));
        assert_eq!(c.priority(), 2);
    }

    #[test]
    fn values_are_cut_and_bad_names_are_refused() {
        assert!(valid_field_name("CLOISON_DETAIL"));
        assert!(!valid_field_name("_PID"));
        assert!(!valid_field_name("lower"));
        assert!(!valid_field_name("1ABC"));
        let long = "é".repeat(MAX_VALUE_LEN);
        let a = Alert::daemon(EventKind::ConfigApplied, "r", "m", &[(field::DETAIL, long)]);
        let v = a.field(field::DETAIL).unwrap();
        assert!(v.len() <= MAX_VALUE_LEN && v.ends_with("..."));
    }
}
