//! What an observed probe means. Each probe is observed three ways, independently: what
//! came back to the probe host, the ruleset's verdict on its first packet (nftables
//! tracing), and the routing's (a route query as the segment's hosts would meet it). A
//! blocked probe meets the configuration only when the ruleset dropped it, the second
//! wall stops it where the plan says it must, and nothing answered; an allowed one when
//! both walls let it through and, where the target surely answers, it answered. A probe
//! that does not is a failure naming which wall let it through (or stopped it).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Probe;
use super::result::{Expected, Failure, PairResult, RESULT_VERSION, VerifyResult};
use crate::config::Config;
use crate::names::TABLE;
use crate::plan::wall::{Packet, Wall};
use crate::policy::{Destination, L4, Verdict};

/// What came back to the probe host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// The TCP handshake completed.
    Open,
    /// A TCP reset.
    Refused,
    /// An echo reply or a UDP answer.
    Replied,
    /// An ICMP error: `port unreachable` from the target itself means it was reached.
    IcmpError {
        what: String,
        from_target: bool,
    },
    NoAnswer,
    /// The probe could not be sent.
    NotSent {
        error: String,
    },
}

impl Answer {
    /// Whether the target (or something on its behalf) answered.
    pub fn reached(&self) -> bool {
        match self {
            Answer::Open | Answer::Refused | Answer::Replied => true,
            Answer::IcmpError { from_target, .. } => *from_target,
            Answer::NoAnswer | Answer::NotSent { .. } => false,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Answer::Open => "open".into(),
            Answer::Refused => "refused (reset)".into(),
            Answer::Replied => "answered".into(),
            Answer::IcmpError { what, .. } => format!("ICMP {what}"),
            Answer::NoAnswer => "no answer".into(),
            Answer::NotSent { error } => format!("not sent: {error}"),
        }
    }
}

/// The ruleset's verdict on a probe's first packet, from nftables tracing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RulesetVerdict {
    /// Dropped in this chain.
    Dropped { table: String, chain: String },
    /// Let through; the rule that accepted it where the decision was made (the last
    /// verdict of the packet's path), by chain and handle.
    Accepted {
        table: String,
        chain: String,
        handle: Option<u64>,
    },
    /// No trace of the packet: cloison's table, whose first rule turns tracing on for
    /// the probes, is missing or changed, so nothing proves the ruleset stops anything.
    Unseen,
}

impl RulesetVerdict {
    fn text(&self) -> String {
        match self {
            RulesetVerdict::Dropped { table, chain } => {
                format!(
                    "the ruleset dropped it (chain {chain} of {})",
                    table_name(table)
                )
            }
            RulesetVerdict::Accepted {
                table,
                chain,
                handle,
            } => {
                let rule = handle
                    .map(|h| format!("rule handle {h} of "))
                    .unwrap_or_default();
                format!(
                    "the ruleset let it through ({rule}chain {chain} of {})",
                    table_name(table)
                )
            }
            RulesetVerdict::Unseen => {
                "the ruleset did not see it (cloison's table is missing or changed)".into()
            }
        }
    }
}

fn table_name(t: &str) -> String {
    if t == TABLE {
        format!("table inet {TABLE}")
    } else {
        format!("table {t}, not cloison's")
    }
}

/// The routing's verdict, from a route query with the segment's interface as input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoutingVerdict {
    /// A blackhole (or prohibit, unreachable) route: the second wall.
    Stops,
    /// Routed on, out of this interface.
    Routes { oif: Option<String> },
    /// Delivered to the router itself.
    Local,
    /// The query failed otherwise.
    Unknown { error: String },
}

impl RoutingVerdict {
    fn text(&self) -> String {
        match self {
            RoutingVerdict::Stops => "the second wall stops it".into(),
            RoutingVerdict::Routes { oif: Some(o) } => format!("routing sends it out of {o}"),
            RoutingVerdict::Routes { oif: None } => "routing lets it through".into(),
            RoutingVerdict::Local => "routing delivers it to the router".into(),
            RoutingVerdict::Unknown { error } => format!("the route query failed: {error}"),
        }
    }
}

/// Everything observed of one probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The source port (the echo identifier for ICMP), for the second wall's
    /// port-based exceptions.
    pub sport: Option<u16>,
    pub answer: Answer,
    pub ruleset: RulesetVerdict,
    pub routing: RoutingVerdict,
}

/// One probe judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Judgement {
    pub from: String,
    pub to: String,
    pub target: String,
    /// `the probe of mairie`, `the router`...
    pub what: String,
    pub probe: String,
    pub expected: Expected,
    pub reason: String,
    /// Whether the plan's second wall stops this probe too.
    pub wall_expected: bool,
    pub observation: Observation,
    pub as_expected: bool,
    /// For a failure: which wall let a blocked probe through (`ruleset`, `routing`,
    /// `none` when neither stopped it), or stopped an allowed one.
    pub wall: Option<String>,
    /// One sentence: what was expected, what each wall did, what came back.
    pub explanation: String,
}

pub fn judge(config: &Config, wall: &Wall, probe: &Probe, obs: &Observation) -> Judgement {
    let from = config.segment(probe.from.as_str());
    let wall_expected = match (&probe.decision.destination, from) {
        (Destination::Router | Destination::Own, _) | (_, None) => false,
        (_, Some(s)) => wall.stops(&Packet {
            iif: s.interface.as_str(),
            dst: probe.target,
            proto: ip_proto(probe),
            sport: obs.sport.filter(|_| probe.l4 != L4::Icmp),
            dport: probe.l4.port(),
        }),
    };
    let dropped = matches!(obs.ruleset, RulesetVerdict::Dropped { .. });
    let accepted = matches!(obs.ruleset, RulesetVerdict::Accepted { .. });
    let stops = obs.routing == RoutingVerdict::Stops;
    let reached = obs.answer.reached();
    let (as_expected, wall) = match probe.decision.verdict {
        Verdict::Blocked => {
            let ruleset_holds = dropped;
            let routing_holds = !wall_expected || stops;
            let ok = ruleset_holds && routing_holds && !reached;
            let wall = match (ruleset_holds, routing_holds) {
                _ if ok => None,
                (false, true) if wall_expected => Some("ruleset"),
                (true, false) => Some("routing"),
                _ => Some("none"),
            };
            (ok, wall)
        }
        Verdict::Allowed => {
            let answered = !probe.must_answer() || reached;
            let ok = accepted && !stops && answered;
            let wall = match (accepted, stops) {
                _ if ok => None,
                (false, _) => Some("ruleset"),
                (true, true) => Some("routing"),
                (true, false) => Some("none"),
            };
            (ok, wall)
        }
    };
    let expected = match probe.decision.verdict {
        Verdict::Blocked => Expected::Blocked,
        Verdict::Allowed => Expected::Allowed,
    };
    let explanation = format!(
        "{} -> {} {} {}: expected {} ({}); {}; {}; {}",
        probe.from,
        probe.decision.destination.name(),
        probe.target,
        probe.l4,
        match expected {
            Expected::Blocked => "blocked",
            Expected::Allowed => "allowed",
        },
        probe.decision.reason,
        obs.ruleset.text(),
        obs.routing.text(),
        obs.answer.text(),
    );
    Judgement {
        from: probe.from.to_string(),
        to: probe.decision.destination.name().to_owned(),
        target: probe.target.to_string(),
        what: probe.kind.to_string(),
        probe: probe.l4.to_string(),
        expected,
        reason: probe.decision.reason.clone(),
        wall_expected,
        observation: obs.clone(),
        as_expected,
        wall: wall.map(str::to_owned),
        explanation,
    }
}

fn ip_proto(p: &Probe) -> u8 {
    match p.l4 {
        L4::Tcp(_) => 6,
        L4::Udp(_) => 17,
        L4::Icmp if p.target.is_ipv4() => 1,
        L4::Icmp => 58,
    }
}

/// The judged probes as journaled: one entry per (from, to, expected, reason), in the
/// order first met.
pub fn summarize(judged: &[Judgement]) -> VerifyResult {
    let mut order: Vec<(String, String, Expected, String)> = Vec::new();
    let mut pairs: BTreeMap<(String, String, Expected, String), PairResult> = BTreeMap::new();
    for j in judged {
        let key = (j.from.clone(), j.to.clone(), j.expected, j.reason.clone());
        let pair = pairs.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            PairResult {
                from: j.from.clone(),
                to: j.to.clone(),
                expected: j.expected,
                reason: j.reason.clone(),
                probes: 0,
                as_expected: 0,
                failures: Vec::new(),
            }
        });
        pair.probes += 1;
        if j.as_expected {
            pair.as_expected += 1;
        } else {
            pair.failures.push(Failure {
                probe: j.probe.clone(),
                target: j.target.clone(),
                observed: j.observation.answer.text(),
                wall: j.wall.clone().unwrap_or_default(),
                detail: j.explanation.clone(),
            });
        }
    }
    VerifyResult {
        version: RESULT_VERSION,
        pairs: order.into_iter().filter_map(|k| pairs.remove(&k)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Name;
    use crate::plan::wall::wall;
    use crate::verify::{ProbeHost, probes};

    fn lab() -> Config {
        crate::config::parse(include_str!("../../../../config/lab.toml"), "lab.toml").unwrap()
    }

    fn one(c: &Config, from: &str, target: &str, l4: L4) -> Probe {
        let hosts: Vec<ProbeHost> = [("kiosk", 20), ("mairie", 10), ("poste", 30)]
            .iter()
            .map(|(s, n)| ProbeHost {
                segment: Name::parse(s).unwrap(),
                v4: format!("192.168.{n}.250").parse().unwrap(),
                v6: None,
            })
            .collect();
        probes(c, &hosts)
            .into_iter()
            .find(|p| p.from.as_str() == from && p.target.to_string() == target && p.l4 == l4)
            .unwrap_or_else(|| panic!("no probe {from} -> {target} {l4}"))
    }

    fn obs(answer: Answer, ruleset: RulesetVerdict, routing: RoutingVerdict) -> Observation {
        Observation {
            sport: Some(41000),
            answer,
            ruleset,
            routing,
        }
    }

    fn dropped() -> RulesetVerdict {
        RulesetVerdict::Dropped {
            table: "cloison".into(),
            chain: "pair/kiosk/mairie".into(),
        }
    }

    fn accepted(handle: u64) -> RulesetVerdict {
        RulesetVerdict::Accepted {
            table: "cloison".into(),
            chain: "pair/kiosk/mairie".into(),
            handle: Some(handle),
        }
    }

    #[test]
    fn a_blocked_probe_needs_both_walls_and_silence() {
        let c = lab();
        let w = wall(&c);
        let p = one(&c, "kiosk", "192.168.10.250", L4::Tcp(445));
        let good = judge(
            &c,
            &w,
            &p,
            &obs(Answer::NoAnswer, dropped(), RoutingVerdict::Stops),
        );
        assert!(good.as_expected && good.wall_expected && good.wall.is_none());

        // A hole in the ruleset alone: the second wall still stopped it.
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::NoAnswer, accepted(57), RoutingVerdict::Stops),
        );
        assert!(!j.as_expected);
        assert_eq!(j.wall.as_deref(), Some("ruleset"));
        assert!(
            j.explanation
                .contains("rule handle 57 of chain pair/kiosk/mairie"),
            "{}",
            j.explanation
        );
        // A hole in the second wall alone.
        let routes = RoutingVerdict::Routes {
            oif: Some("seg-mairie".into()),
        };
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::NoAnswer, dropped(), routes.clone()),
        );
        assert_eq!(j.wall.as_deref(), Some("routing"));
        // Both: it crossed.
        let j = judge(&c, &w, &p, &obs(Answer::Refused, accepted(57), routes));
        assert_eq!(j.wall.as_deref(), Some("none"));
        // No trace at all is no proof.
        let j = judge(
            &c,
            &w,
            &p,
            &obs(
                Answer::NoAnswer,
                RulesetVerdict::Unseen,
                RoutingVerdict::Stops,
            ),
        );
        assert_eq!(j.wall.as_deref(), Some("ruleset"));
    }

    #[test]
    fn the_router_is_guarded_by_the_ruleset_alone() {
        let c = lab();
        let w = wall(&c);
        let p = one(&c, "kiosk", "192.168.20.1", L4::Tcp(22));
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::NoAnswer, dropped(), RoutingVerdict::Local),
        );
        assert!(j.as_expected && !j.wall_expected);
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::Refused, accepted(3), RoutingVerdict::Local),
        );
        assert_eq!(j.wall.as_deref(), Some("none"));
    }

    #[test]
    fn an_allowed_probe_must_pass_both_walls_and_be_answered() {
        let c = lab();
        let w = wall(&c);
        let p = one(&c, "mairie", "192.168.20.250", L4::Tcp(5900));
        let routes = RoutingVerdict::Routes {
            oif: Some("seg-kiosk".into()),
        };
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::Refused, accepted(9), routes.clone()),
        );
        assert!(j.as_expected && !j.wall_expected, "{j:?}");
        let j = judge(&c, &w, &p, &obs(Answer::NoAnswer, accepted(9), routes));
        assert_eq!(j.wall.as_deref(), Some("none"));
        let j = judge(
            &c,
            &w,
            &p,
            &obs(Answer::NoAnswer, dropped(), RoutingVerdict::Stops),
        );
        assert_eq!(j.wall.as_deref(), Some("ruleset"));
    }

    #[test]
    fn the_summary_groups_by_pair_and_reason_and_keeps_each_failure() {
        let c = lab();
        let w = wall(&c);
        let p445 = one(&c, "kiosk", "192.168.10.250", L4::Tcp(445));
        let p22 = one(&c, "kiosk", "192.168.10.250", L4::Tcp(22));
        let judged = vec![
            judge(
                &c,
                &w,
                &p22,
                &obs(Answer::NoAnswer, dropped(), RoutingVerdict::Stops),
            ),
            judge(
                &c,
                &w,
                &p445,
                &obs(Answer::NoAnswer, accepted(57), RoutingVerdict::Stops),
            ),
        ];
        let r = summarize(&judged);
        assert_eq!(r.pairs.len(), 1);
        let pair = &r.pairs[0];
        assert_eq!((pair.probes, pair.as_expected), (2, 1));
        assert_eq!(pair.failures[0].probe, "tcp/445");
        assert_eq!(pair.failures[0].wall, "ruleset");
        let json = serde_json::to_string(&r).unwrap();
        let back: VerifyResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
