//! What `cloison metrics` prints: one reading of a box (the live ruleset, the daemon's
//! counts, the last `cloison verify`) in the Prometheus text exposition format (version
//! 0.0.4, what node_exporter's textfile collector reads). Pure: the `cloison` crate
//! gathers the `Reading`, this module only writes it.
//!
//! The metric names and labels are a contract with the fleet's alerting rules and
//! dashboards (contrib/prometheus, contrib/grafana, docs/fleet.md): rename nothing.
//! Counters are exact (the kernel's counts, the daemon's counts), never sampled.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::alert::event::EventKind;
use crate::counter::Pair;
use crate::hash::Hash;
use crate::nft::Counts;
use crate::verify::VerifyRecord;

/// Everything one `cloison metrics` run knows about the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// cloison's version (`CARGO_PKG_VERSION` of the binary).
    pub version: String,
    /// The router's name, as alerts carry it in `CLOISON_ROUTER`.
    pub router: String,
    /// The configuration in force: the daemon's when it runs, else the file's.
    pub config_hash: Hash,
    /// False when the configuration file does not validate (the daemon keeps running
    /// the configuration it had; the other metrics then come from it).
    pub config_file_valid: bool,
    /// The live table, or `None` when it could not be read (no permission and no
    /// daemon to ask).
    pub ruleset: Option<RulesetReading>,
    /// The daemon's counts, or `None` when it does not answer.
    pub daemon: Option<DaemonReading>,
    /// The last `cloison verify`, when its record exists.
    pub verify: Option<VerifyRecord>,
}

/// The live table against the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesetReading {
    pub in_sync: bool,
    /// False when cloison's table is not in the kernel at all.
    pub present: bool,
    /// Every named counter of the live table (`kiosk/mairie`, `invalid`...).
    pub counters: BTreeMap<String, Counts>,
}

/// What only the daemon knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonReading {
    /// Unix time the daemon started, in seconds.
    pub start_time: u64,
    /// Journal entries written since the daemon started, by `CLOISON_EVENT`.
    pub alerts_total: BTreeMap<String, u64>,
    /// Per capture interface: frames inspected and frames the kernel dropped.
    pub capture: BTreeMap<String, CaptureReading>,
    pub drift_repairs: u64,
    /// A `reload --confirm` is waiting for `cloison confirm`.
    pub confirm_pending: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureReading {
    pub received: u64,
    pub dropped: u64,
}

/// One metric family being written: `# HELP`, `# TYPE`, then its samples.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
        writeln!(out, "# HELP {name} {}", escape_help(help)).expect("string");
        writeln!(out, "# TYPE {name} {kind}").expect("string");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                write!(self.out, "{k}=\"{}\"", escape_label(v)).expect("string");
            }
            self.out.push('}');
        }
        writeln!(self.out, " {value}").expect("string");
    }
}

fn bit(b: bool) -> u8 {
    u8::from(b)
}

impl Reading {
    /// The exposition text, families in a fixed order, samples sorted by label.
    pub fn render(&self) -> String {
        let mut out = String::new();
        Family::new(
            &mut out,
            "cloison_build_info",
            "gauge",
            "The cloison version that wrote these metrics (always 1).",
        )
        .sample(&[("version", &self.version)], 1);
        Family::new(
            &mut out,
            "cloison_config_info",
            "gauge",
            "The configuration in force (its SHA-256) and the router's name (always 1).",
        )
        .sample(
            &[
                ("hash", self.config_hash.as_str()),
                ("router", &self.router),
            ],
            1,
        );
        Family::new(
            &mut out,
            "cloison_config_file_valid",
            "gauge",
            "1 when the configuration file validates; 0 when it does not (the daemon keeps the configuration it runs).",
        )
        .sample(&[], bit(self.config_file_valid));
        Family::new(
            &mut out,
            "cloison_ruleset_check_success",
            "gauge",
            "1 when the live ruleset could be read (directly or through the daemon), 0 when not: then the in-sync and drop metrics are absent.",
        )
        .sample(&[], bit(self.ruleset.is_some()));
        if let Some(r) = &self.ruleset {
            self.render_ruleset(&mut out, r);
        }
        Family::new(
            &mut out,
            "cloison_daemon_up",
            "gauge",
            "1 when the cloison daemon answered on its control socket.",
        )
        .sample(&[], bit(self.daemon.is_some()));
        if let Some(d) = &self.daemon {
            render_daemon(&mut out, d);
        }
        if let Some(v) = &self.verify {
            self.render_verify(&mut out, v);
        }
        out
    }

    fn render_ruleset(&self, out: &mut String, r: &RulesetReading) {
        Family::new(
            out,
            "cloison_ruleset_in_sync",
            "gauge",
            "1 when the live nftables table is exactly what the configuration asks for; 0 when it drifted or is missing.",
        )
        .sample(&[], bit(r.in_sync));
        Family::new(
            out,
            "cloison_ruleset_present",
            "gauge",
            "1 when cloison's table (inet cloison) is in the kernel.",
        )
        .sample(&[], bit(r.present));
        for (name, kind, help) in [
            (
                "cloison_dropped_packets_total",
                Kind::Packets,
                "Packets dropped by cloison's ruleset, per counter: from a segment or uplink (from) toward a segment or a pseudo-destination (to); trunk/untagged (what arrived untagged on the trunk's parent) has from=trunk, to=untagged. Counters without a source (invalid, unrouted, unmanaged) have no from label.",
            ),
            (
                "cloison_dropped_bytes_total",
                Kind::Bytes,
                "Bytes dropped by cloison's ruleset, per counter, as cloison_dropped_packets_total.",
            ),
        ] {
            let mut f = Family::new(out, name, "counter", help);
            for (counter, counts) in &r.counters {
                let value = match kind {
                    Kind::Packets => counts.packets,
                    Kind::Bytes => counts.bytes,
                };
                match Pair::parse(counter) {
                    Some(p) => f.sample(&[("from", p.from), ("to", p.to)], value),
                    None => f.sample(&[("to", counter)], value),
                }
            }
        }
    }

    fn render_verify(&self, out: &mut String, v: &VerifyRecord) {
        Family::new(
            out,
            "cloison_verify_last_run_timestamp_seconds",
            "gauge",
            "When the last `cloison verify` finished (Unix time).",
        )
        .sample(&[], v.finished);
        Family::new(
            out,
            "cloison_verify_last_success",
            "gauge",
            "1 when the last `cloison verify` found every probe as the policy says.",
        )
        .sample(&[], bit(v.success));
        Family::new(
            out,
            "cloison_verify_last_probes",
            "gauge",
            "Probes the last `cloison verify` sent.",
        )
        .sample(&[], v.probes);
        Family::new(
            out,
            "cloison_verify_last_failures",
            "gauge",
            "Probes of the last `cloison verify` whose outcome differed from the policy.",
        )
        .sample(&[], v.failures);
        Family::new(
            out,
            "cloison_verify_last_config_current",
            "gauge",
            "1 when the last `cloison verify` checked the configuration now in force.",
        )
        .sample(&[], bit(v.config_hash == self.config_hash));
    }
}

enum Kind {
    Packets,
    Bytes,
}

fn render_daemon(out: &mut String, d: &DaemonReading) {
    Family::new(
        out,
        "cloison_daemon_start_time_seconds",
        "gauge",
        "When the running cloison daemon started (Unix time).",
    )
    .sample(&[], d.start_time);
    let mut f = Family::new(
        out,
        "cloison_alerts_total",
        "counter",
        "Journal entries cloison wrote since the daemon started, by CLOISON_EVENT (first alerts and summaries; the packets they stand for are in cloison_dropped_packets_total).",
    );
    // Every kind, zeros included, so that rate() sees a series from the daemon's start.
    let mut all: BTreeMap<&str, u64> = EventKind::ALL.iter().map(|k| (k.name(), 0)).collect();
    for (event, n) in &d.alerts_total {
        all.insert(event, *n);
    }
    for (event, n) in all {
        f.sample(&[("event", event)], n);
    }
    Family::new(
        out,
        "cloison_drift_repairs_total",
        "counter",
        "Times the daemon put back a ruleset someone else changed, since it started.",
    )
    .sample(&[], d.drift_repairs);
    Family::new(
        out,
        "cloison_reload_confirm_pending",
        "gauge",
        "1 while a `cloison reload --confirm` waits for `cloison confirm` (it is rolled back otherwise).",
    )
    .sample(&[], bit(d.confirm_pending));
    for (name, help, pick) in [
        (
            "cloison_capture_frames_total",
            "Frames the layer-2 capture inspected, per interface, since the daemon started.",
            (|c: &CaptureReading| c.received) as fn(&CaptureReading) -> u64,
        ),
        (
            "cloison_capture_dropped_frames_total",
            "Frames the kernel dropped before the capture could inspect them (socket full), per interface, since the daemon started.",
            |c: &CaptureReading| c.dropped,
        ),
    ] {
        let mut f = Family::new(out, name, "counter", help);
        for (iface, c) in &d.capture {
            f.sample(&[("interface", iface)], pick(c));
        }
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading() -> Reading {
        Reading {
            version: "0.1.0".into(),
            router: "mairie-\"x\"\\\nlab".into(),
            config_hash: Hash::of(b"config"),
            config_file_valid: true,
            ruleset: Some(RulesetReading {
                in_sync: true,
                present: true,
                counters: [
                    (
                        "kiosk/mairie".to_owned(),
                        Counts {
                            packets: 50_000,
                            bytes: 1_400_000,
                        },
                    ),
                    ("invalid".to_owned(), Counts::default()),
                ]
                .into(),
            }),
            daemon: Some(DaemonReading {
                start_time: 1_764_403_200,
                alerts_total: [("cross_segment".to_owned(), 12)].into(),
                capture: [(
                    "seg-kiosk".to_owned(),
                    CaptureReading {
                        received: 9,
                        dropped: 2,
                    },
                )]
                .into(),
                drift_repairs: 1,
                confirm_pending: false,
            }),
            verify: None,
        }
    }

    /// The value of the sample whose line starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_owned)
    }

    #[test]
    fn counters_are_exact_with_from_and_to() {
        let t = reading().render();
        assert_eq!(
            value(
                &t,
                r#"cloison_dropped_packets_total{from="kiosk",to="mairie"}"#
            ),
            Some("50000".into())
        );
        assert_eq!(
            value(
                &t,
                r#"cloison_dropped_bytes_total{from="kiosk",to="mairie"}"#
            ),
            Some("1400000".into())
        );
        assert_eq!(
            value(&t, r#"cloison_dropped_packets_total{to="invalid"}"#),
            Some("0".into())
        );
        assert_eq!(value(&t, "cloison_ruleset_in_sync"), Some("1".into()));
        assert_eq!(value(&t, "cloison_daemon_up"), Some("1".into()));
        assert_eq!(
            value(
                &t,
                r#"cloison_capture_dropped_frames_total{interface="seg-kiosk"}"#
            ),
            Some("2".into())
        );
    }

    #[test]
    fn every_event_kind_has_a_series() {
        let t = reading().render();
        for k in EventKind::ALL {
            let want = if k == EventKind::CrossSegment {
                "12"
            } else {
                "0"
            };
            assert_eq!(
                value(
                    &t,
                    &format!("cloison_alerts_total{{event=\"{}\"}}", k.name())
                ),
                Some(want.into()),
                "{k:?}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let t = reading().render();
        assert!(
            t.contains(r#"router="mairie-\"x\"\\\nlab""#),
            "escaped router label:\n{t}"
        );
        for line in t.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line.starts_with("cloison_"),
                "{line}"
            );
        }
    }

    #[test]
    fn what_cannot_be_read_is_absent_not_zero() {
        let r = Reading {
            ruleset: None,
            daemon: None,
            verify: None,
            ..reading()
        };
        let t = r.render();
        assert_eq!(value(&t, "cloison_ruleset_check_success"), Some("0".into()));
        assert_eq!(value(&t, "cloison_daemon_up"), Some("0".into()));
        for absent in [
            "cloison_ruleset_in_sync ",
            "cloison_dropped_packets_total{",
            "cloison_alerts_total{",
            "cloison_verify_last_success ",
        ] {
            assert!(!t.contains(absent), "{absent} must be absent:\n{t}");
        }
    }

    #[test]
    fn the_last_verify_is_reported_against_the_config_in_force() {
        let mut r = reading();
        r.verify = Some(VerifyRecord {
            version: 1,
            finished: 1_764_403_260,
            success: false,
            probes: 40,
            failures: 2,
            config_hash: Hash::of(b"older config"),
        });
        let t = r.render();
        assert_eq!(
            value(&t, "cloison_verify_last_run_timestamp_seconds"),
            Some("1764403260".into())
        );
        assert_eq!(value(&t, "cloison_verify_last_success"), Some("0".into()));
        assert_eq!(value(&t, "cloison_verify_last_failures"), Some("2".into()));
        assert_eq!(
            value(&t, "cloison_verify_last_config_current"),
            Some("0".into())
        );
    }

    #[test]
    fn each_family_is_declared_once_before_its_samples() {
        let t = reading().render();
        let mut declared = std::collections::BTreeSet::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_owned()), "{name} declared twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} sampled before its TYPE");
            }
        }
    }
}
