//! `cloison verify`'s answer for a person: one line per (from, to, expected, reason) with
//! its probes, what stopped them, and the outcome; then every probe that did not meet
//! the configuration, in a sentence; then the verdict.

use std::collections::BTreeSet;

use super::judge::{Judgement, RoutingVerdict, RulesetVerdict};
use super::result::Expected;

pub fn table(judged: &[Judgement]) -> String {
    let mut groups: Vec<(&Judgement, Vec<&Judgement>)> = Vec::new();
    for j in judged {
        match groups.iter_mut().find(|(first, _)| {
            first.from == j.from
                && first.to == j.to
                && first.expected == j.expected
                && first.reason == j.reason
        }) {
            Some((_, members)) => members.push(j),
            None => groups.push((j, vec![j])),
        }
    }
    let mut rows: Vec<[String; 7]> = vec![[
        "FROM".into(),
        "TO".into(),
        "EXPECTED".into(),
        "PROBES".into(),
        "STOPPED BY".into(),
        "RESULT".into(),
        "WHY".into(),
    ]];
    for (first, members) in &groups {
        let failed = members.iter().filter(|j| !j.as_expected).count();
        rows.push([
            first.from.clone(),
            first.to.clone(),
            match first.expected {
                Expected::Blocked => "blocked".into(),
                Expected::Allowed => "allowed".into(),
            },
            members.len().to_string(),
            stopped_by(members),
            if failed == 0 {
                "ok".into()
            } else {
                format!("{failed} FAILED")
            },
            first.reason.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failures: Vec<&Judgement> = judged.iter().filter(|j| !j.as_expected).collect();
    if !failures.is_empty() {
        out.push_str("\nProbes that did not meet the configuration:\n");
        for j in &failures {
            out.push_str(&format!("  - {}\n", j.explanation));
        }
    }
    out.push('\n');
    out.push_str(&verdict(judged));
    out.push('\n');
    out
}

/// The last line: the outcome in words.
pub fn verdict(judged: &[Judgement]) -> String {
    let failed = judged.iter().filter(|j| !j.as_expected).count();
    let breaches = judged
        .iter()
        .filter(|j| !j.as_expected && j.expected == Expected::Blocked)
        .count();
    if failed == 0 {
        format!(
            "Isolation verified: {} probes, every one as the configuration says.",
            judged.len()
        )
    } else {
        let broken = failed - breaches;
        let mut parts = Vec::new();
        if breaches > 0 {
            parts.push(format!(
                "{breaches} that should be blocked got through at least one wall"
            ));
        }
        if broken > 0 {
            parts.push(format!("{broken} that should pass did not"));
        }
        format!(
            "ISOLATION CHECK FAILED: {failed} of {} probes did not meet the configuration ({}).",
            judged.len(),
            parts.join("; ")
        )
    }
}

/// What stopped a group's blocked probes: `both walls`, `ruleset` (the router's own
/// addresses, the Internet: the second wall does not cover them), or a mix.
fn stopped_by(members: &[&Judgement]) -> String {
    if members
        .first()
        .is_some_and(|j| j.expected == Expected::Allowed)
    {
        return "-".into();
    }
    let mut seen = BTreeSet::new();
    for j in members {
        let ruleset = matches!(j.observation.ruleset, RulesetVerdict::Dropped { .. });
        let routing = j.observation.routing == RoutingVerdict::Stops;
        seen.insert(match (ruleset, routing) {
            (true, true) => "both walls",
            (true, false) => "ruleset",
            (false, true) => "second wall only",
            (false, false) => "NOTHING",
        });
    }
    seen.into_iter().collect::<Vec<_>>().join(", ")
}
