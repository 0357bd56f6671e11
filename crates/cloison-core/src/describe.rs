//! The configuration and the daemon's numbers in words, for the people who read
//! `cloison status` (an IT agent, an elected official, a DPO): the policy as sentences
//! ("kiosk -> mairie: blocked", "mairie -> kiosk: tcp/5900 allowed (helpdesk)") and
//! durations as "3 h 12 min". Pure; the same words whatever the kernel holds.

use std::collections::BTreeSet;

use crate::config::{Allow, Config, Proto};

/// One line of the policy: from a segment, toward a segment, the router or the Internet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLine {
    pub from: String,
    pub to: String,
    pub verdict: String,
}

/// Where the Internet line points in `PolicyLine::to`.
pub const INTERNET: &str = "Internet";
/// Where the router line points in `PolicyLine::to`.
pub const ROUTER: &str = "router";

/// The policy of `config`, by source segment (sorted), then other segments (sorted), the
/// router and the Internet. Everything not said here is blocked and counted.
pub fn policy(config: &Config) -> Vec<PolicyLine> {
    let mut lines = Vec::new();
    for from in &config.segments {
        let line = |to: &str, verdict: String| PolicyLine {
            from: from.name.to_string(),
            to: to.to_owned(),
            verdict,
        };
        for to in config.segments.iter().filter(|s| s.name != from.name) {
            let allows: Vec<String> = config
                .allows
                .iter()
                .filter(|a| a.from == from.name && a.to == to.name)
                .map(allow_words)
                .collect();
            let verdict = if allows.is_empty() {
                "blocked".to_owned()
            } else {
                format!("{}; everything else blocked", allows.join(", "))
            };
            lines.push(line(to.name.as_str(), verdict));
        }
        let mut services: Vec<String> = from.services.iter().map(|s| s.name().to_owned()).collect();
        if from.management {
            services.push(format!("ssh (tcp/{})", config.router.ssh_port));
        }
        lines.push(line(
            ROUTER,
            if services.is_empty() {
                "blocked".to_owned()
            } else {
                format!("{} only", services.join(", "))
            },
        ));
        lines.push(line(
            INTERNET,
            match &from.uplink {
                Some(u) => format!("via {u} (private addresses elsewhere blocked)"),
                None => "blocked (no uplink)".to_owned(),
            },
        ));
    }
    lines
}

/// "tcp/5900 allowed (helpdesk)", "tcp/80,443 allowed", "ping allowed".
fn allow_words(a: &Allow) -> String {
    let what = match a.proto {
        Proto::Icmp => "ping".to_owned(),
        p => format!("{p}/{}", ports(&a.ports)),
    };
    match &a.comment {
        Some(c) => format!("{what} allowed ({c})"),
        None => format!("{what} allowed"),
    }
}

fn ports(p: &BTreeSet<u16>) -> String {
    p.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// The policy as aligned lines, `  kiosk  -> mairie    blocked`.
pub fn policy_text(config: &Config) -> String {
    let lines = policy(config);
    let wf = lines.iter().map(|l| l.from.len()).max().unwrap_or(0);
    let wt = lines.iter().map(|l| l.to.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for l in &lines {
        let to = format!("{}:", l.to);
        out.push_str(&format!("  {:<wf$} -> {to:<wt$} {}\n", l.from, l.verdict));
    }
    out
}

/// A duration as people say it, to the two largest units: "42 s", "12 min 5 s",
/// "3 h 12 min", "2 d 3 h".
pub fn duration(secs: u64) -> String {
    const MIN: u64 = 60;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match secs {
        s if s >= DAY => two(s / DAY, "d", s % DAY / HOUR, "h"),
        s if s >= HOUR => two(s / HOUR, "h", s % HOUR / MIN, "min"),
        s if s >= MIN => two(s / MIN, "min", s % MIN, "s"),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Config {
        crate::config::parse(include_str!("../../../config/lab.toml"), "config/lab.toml").unwrap()
    }

    fn verdict(lines: &[PolicyLine], from: &str, to: &str) -> String {
        lines
            .iter()
            .find(|l| l.from == from && l.to == to)
            .map(|l| l.verdict.clone())
            .unwrap_or_else(|| panic!("no line {from} -> {to}"))
    }

    #[test]
    fn the_lab_policy_in_words() {
        let p = policy(&lab());
        assert_eq!(verdict(&p, "kiosk", "mairie"), "blocked");
        assert_eq!(verdict(&p, "kiosk", "poste"), "blocked");
        assert_eq!(
            verdict(&p, "mairie", "kiosk"),
            "tcp/5900 allowed (helpdesk reaches the kiosk); everything else blocked"
        );
        assert_eq!(verdict(&p, "kiosk", ROUTER), "dns, dhcp only");
        assert_eq!(
            verdict(&p, "mairie", ROUTER),
            "dns, dhcp, ntp, ping, ssh (tcp/22) only"
        );
        assert_eq!(
            verdict(&p, "kiosk", INTERNET),
            "via laposte (private addresses elsewhere blocked)"
        );
        // 3 segments: 2 others + router + Internet each.
        assert_eq!(p.len(), 12);
        let text = policy_text(&lab());
        assert!(
            text.contains("  kiosk  -> mairie:   blocked\n"),
            "aligned:\n{text}"
        );
    }

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(60), "1 min");
        assert_eq!(duration(725), "12 min 5 s");
        assert_eq!(duration(3 * 3600 + 12 * 60 + 59), "3 h 12 min");
        assert_eq!(duration(3600), "1 h");
        assert_eq!(duration(2 * 86_400 + 3 * 3600 + 5), "2 d 3 h");
    }
}
