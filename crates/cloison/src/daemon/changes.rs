//! A one-line account of what changed between two configurations, for the
//! `config_applied` alert ("segments: +guest; allows: -mairie->kiosk tcp/5900").

use std::collections::BTreeSet;

use cloison_core::config::{Allow, Config};

fn allow_text(a: &Allow) -> String {
    let ports: Vec<String> = a.ports.iter().map(u16::to_string).collect();
    if ports.is_empty() {
        format!("{}->{} {}", a.from, a.to, a.proto)
    } else {
        format!("{}->{} {}/{}", a.from, a.to, a.proto, ports.join(","))
    }
}

/// Differences in segments, uplinks, allows and forbids; "first configuration" when
/// there was none before.
pub fn summary(old: Option<&Config>, new: &Config) -> String {
    let Some(old) = old else {
        return format!("first configuration: {}", new.summary());
    };
    let mut parts = Vec::new();
    let diff = |label: &str, a: BTreeSet<String>, b: BTreeSet<String>, parts: &mut Vec<String>| {
        let added: Vec<String> = b.difference(&a).map(|x| format!("+{x}")).collect();
        let removed: Vec<String> = a.difference(&b).map(|x| format!("-{x}")).collect();
        if !added.is_empty() || !removed.is_empty() {
            parts.push(format!(
                "{label}: {}",
                added
                    .into_iter()
                    .chain(removed)
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    };
    let segs = |c: &Config| {
        c.segments
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<BTreeSet<_>>()
    };
    let seg_names = |c: &Config| {
        c.segments
            .iter()
            .map(|s| s.name.to_string())
            .collect::<BTreeSet<_>>()
    };
    diff("segments", seg_names(old), seg_names(new), &mut parts);
    let changed: Vec<String> = new
        .segments
        .iter()
        .filter(|s| old.segment(s.name.as_str()).is_some_and(|o| o != *s))
        .map(|s| s.name.to_string())
        .collect();
    if !changed.is_empty() && segs(old) != segs(new) {
        parts.push(format!("changed segments: {}", changed.join(" ")));
    }
    diff(
        "uplinks",
        old.uplinks.iter().map(|u| u.name.to_string()).collect(),
        new.uplinks.iter().map(|u| u.name.to_string()).collect(),
        &mut parts,
    );
    diff(
        "allows",
        old.allows.iter().map(allow_text).collect(),
        new.allows.iter().map(allow_text).collect(),
        &mut parts,
    );
    if old.forbids != new.forbids {
        parts.push("forbids changed".to_owned());
    }
    if old.router != new.router || old.alerts != new.alerts || old.daemon != new.daemon {
        parts.push("settings changed".to_owned());
    }
    if parts.is_empty() {
        "no change".to_owned()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_changed() {
        let old =
            cloison_core::config::parse(include_str!("../../../../config/lab.toml"), "a").unwrap();
        let src = include_str!("../../../../config/lab.toml")
            .replace("ports = [5900]", "ports = [5900, 3389]");
        let new = cloison_core::config::parse(&src, "b").unwrap();
        assert_eq!(
            summary(Some(&old), &new),
            "allows: +mairie->kiosk tcp/3389,5900 -mairie->kiosk tcp/5900"
        );
        assert_eq!(summary(Some(&old), &old), "no change");
        assert!(summary(None, &old).starts_with("first configuration: 3 segments"));
    }
}
