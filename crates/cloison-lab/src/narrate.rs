//! How `cloison-lab` writes its story: plain ASCII lines that read well in a terminal, a
//! CI log or a README, with colours only where they help and only when allowed (stdout is
//! a terminal, no `--no-color`, no `NO_COLOR`). Also the alert table's rows, made from
//! the journal entries as `journalctl -o json` gives them: headers only, as the entries.

use std::io::IsTerminal;

use serde_json::Value;

use cloison_core::alert::event::L4;
use cloison_core::alert::{field, service_name};

/// Colours (ANSI SGR) or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colours when stdout is a terminal, unless `--no-color` or `NO_COLOR` (any
    /// non-empty value, as no-color.org says) asks otherwise.
    pub fn detect(no_color: bool) -> Style {
        let env_off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && !env_off && std::io::stdout().is_terminal(),
        }
    }

    #[cfg(test)]
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn good(self, s: &str) -> String {
        self.paint("32", s)
    }

    pub fn bad(self, s: &str) -> String {
        self.paint("1;31", s)
    }

    pub fn alert(self, s: &str) -> String {
        self.paint("33", s)
    }

    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }

    pub fn title(self, s: &str) -> String {
        self.paint("1", s)
    }

    /// `ok` or `FAIL`, padded to the same width.
    pub fn mark(self, ok: bool) -> String {
        if ok {
            self.good("ok  ")
        } else {
            self.bad("FAIL")
        }
    }
}

/// A section title: `== Ordinary traffic ...`.
pub fn section(style: Style, title: &str) -> String {
    format!("\n{}", style.title(&format!("== {title}")))
}

/// One row of the alert table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub time: String,
    pub event: String,
    pub from: String,
    pub to: String,
    pub what: String,
    pub packets: String,
}

/// time, event, from, to, what; then packets, right-aligned in 7.
const WIDTHS: [usize; 5] = [8, 16, 23, 19, 18];

impl AlertRow {
    pub fn header() -> AlertRow {
        AlertRow {
            time: "time".into(),
            event: "event".into(),
            from: "from".into(),
            to: "to".into(),
            what: "what".into(),
            packets: "packets".into(),
        }
    }

    /// The row, indented by `indent` spaces.
    pub fn render(&self, indent: usize) -> String {
        let cells = [&self.time, &self.event, &self.from, &self.to, &self.what];
        let mut line = " ".repeat(indent);
        for (cell, width) in cells.iter().zip(WIDTHS) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        line.push_str(&format!("{:>7}", self.packets));
        line.trim_end().to_owned()
    }
}

fn text<'a>(entry: &'a Value, key: &str) -> Option<&'a str> {
    entry[key].as_str().filter(|s| !s.is_empty())
}

/// The alert table's row for a journal entry.
pub fn alert_row(entry: &Value) -> AlertRow {
    let event = text(entry, field::EVENT).unwrap_or("?");
    let summary = text(entry, field::SUMMARY).is_some();
    let join = |parts: &[Option<&str>]| {
        let v: Vec<&str> = parts.iter().flatten().copied().collect();
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.join(" ")
        }
    };
    let layer2 = matches!(
        event,
        "arp_spoof" | "rogue_dhcp" | "rogue_ra" | "vlan_hopping" | "isolation_breach"
    );
    // A frame is known by its MAC (an ARP reply's "source" address is the one it claims).
    let src_host = if layer2 {
        text(entry, field::SRC_MAC).or_else(|| text(entry, field::SRC_IP))
    } else {
        text(entry, field::SRC_IP).or_else(|| text(entry, field::SRC_MAC))
    };
    let from = join(&[text(entry, field::SRC_SEGMENT), src_host]);
    let to = if layer2 {
        // Frames seen on a wire: where they were seen.
        match text(entry, field::INTERFACE) {
            Some(i) => format!("wire {i}"),
            None => "-".to_owned(),
        }
    } else {
        let dst_name = match event {
            "router_access" => Some("router"),
            _ => text(entry, field::DST_SEGMENT),
        };
        join(&[dst_name, text(entry, field::DST_IP)])
    };
    let what = match event {
        "arp_spoof" => match text(entry, field::SRC_IP) {
            Some(ip) => format!("claims {ip}"),
            None => "ARP".to_owned(),
        },
        "rogue_dhcp" => "DHCP server".to_owned(),
        "rogue_ra" => "router advert.".to_owned(),
        "vlan_hopping" => match (text(entry, field::VLAN), text(entry, field::VLAN_INNER)) {
            (Some(v), Some(inner)) => format!("VLAN {v} then {inner}"),
            (Some(v), None) => format!("VLAN tag {v}"),
            _ => "VLAN tag".to_owned(),
        },
        _ => port_text(entry)
            .or_else(|| text(entry, field::COUNTER).map(str::to_owned))
            .unwrap_or_else(|| "-".to_owned()),
    };
    let what = match (summary, text(entry, field::FLOWS)) {
        (false, _) => what,
        (true, Some(n)) if n != "1" => format!("summary, {n} flows"),
        (true, _) if what == "-" => "summary".to_owned(),
        (true, _) => format!("summary {what}"),
    };
    AlertRow {
        time: entry_time(entry),
        event: event.to_owned(),
        from,
        to,
        what,
        packets: text(entry, field::PACKETS)
            .and_then(|p| p.parse::<u64>().ok())
            .map(super::scenario::thousands)
            .unwrap_or_else(|| "-".to_owned()),
    }
}

/// `tcp/445 SMB`, `udp/53 DNS`, `icmp`.
fn port_text(entry: &Value) -> Option<String> {
    let proto = text(entry, field::PROTO)?;
    let Some(port) = text(entry, field::DST_PORT).and_then(|p| p.parse::<u16>().ok()) else {
        return Some(proto.to_owned());
    };
    let l4 = match proto {
        "tcp" => L4::Tcp,
        "udp" => L4::Udp,
        _ => L4::Other(0),
    };
    Some(match service_name(l4, port) {
        Some(name) => format!("{proto}/{port} {name}"),
        None => format!("{proto}/{port}"),
    })
}

/// When journald received the entry, local time of day (`__REALTIME_TIMESTAMP`).
fn entry_time(entry: &Value) -> String {
    let Some(us) = text(entry, "__REALTIME_TIMESTAMP").and_then(|t| t.parse::<i64>().ok()) else {
        return "-".to_owned();
    };
    let secs: libc::time_t = us / 1_000_000;
    // SAFETY: localtime_r only writes the tm it is given; tm is plain data.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if !ok {
        return "-".to_owned();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cross_segment_entry_reads_as_one_row() {
        let entry = serde_json::json!({
            "__REALTIME_TIMESTAMP": "1700000000000000",
            "CLOISON_EVENT": "cross_segment",
            "CLOISON_SRC_SEGMENT": "kiosk", "CLOISON_SRC_IP": "192.168.20.15",
            "CLOISON_DST_SEGMENT": "mairie", "CLOISON_DST_IP": "192.168.10.5",
            "CLOISON_PROTO": "tcp", "CLOISON_DST_PORT": "445", "CLOISON_PACKETS": "1",
        });
        let row = alert_row(&entry);
        assert_eq!(row.event, "cross_segment");
        assert_eq!(row.from, "kiosk 192.168.20.15");
        assert_eq!(row.to, "mairie 192.168.10.5");
        assert_eq!(row.what, "tcp/445 SMB");
        assert_eq!(row.packets, "1");
        assert_eq!(row.time.len(), 8);
        let line = row.render(4);
        assert!(line.starts_with("    "));
        assert!(line.ends_with("      1"), "{line:?}");
    }

    #[test]
    fn layer_2_and_summary_entries() {
        let arp = serde_json::json!({
            "CLOISON_EVENT": "arp_spoof", "CLOISON_SRC_SEGMENT": "kiosk",
            "CLOISON_SRC_MAC": "52:54:00:00:20:05", "CLOISON_INTERFACE": "seg-kiosk",
            "CLOISON_PACKETS": "1",
        });
        let row = alert_row(&arp);
        assert_eq!(row.from, "kiosk 52:54:00:00:20:05");
        assert_eq!(row.to, "wire seg-kiosk");
        assert_eq!(row.what, "ARP");
        assert_eq!(row.time, "-");
        let summary = serde_json::json!({
            "CLOISON_EVENT": "cross_segment", "CLOISON_SUMMARY": "1",
            "CLOISON_SRC_SEGMENT": "kiosk", "CLOISON_DST_SEGMENT": "mairie",
            "CLOISON_COUNTER": "kiosk/mairie", "CLOISON_FLOWS": "3", "CLOISON_PACKETS": "49999",
        });
        let row = alert_row(&summary);
        assert_eq!(row.what, "summary, 3 flows");
        assert_eq!(row.packets, "49,999");
    }

    #[test]
    fn no_colour_unless_asked() {
        let s = Style::plain();
        assert_eq!(s.bad("x"), "x");
        assert_eq!(s.mark(true), "ok  ");
        let c = Style { color: true };
        assert_eq!(c.good("x"), "\x1b[32mx\x1b[0m");
    }
}
