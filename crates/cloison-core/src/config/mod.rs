//! The configuration: the file's bytes in, a validated `Config` out, or every problem of
//! the file with its location: bytes that are not UTF-8, TOML syntax and definitions made
//! twice (`syntax`), unknown keys and values of the wrong type (`shape`), then the rules
//! of a valid configuration (`validate`). After `parse`, no code re-checks the
//! configuration, and nothing outside this module can build a `Config` that skipped
//! validation.

mod diagnostic;
mod raw;
mod shape;
mod syntax;
mod types;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::hash::Hash;
use toml::de::DeTable;

pub use diagnostic::{Diagnostic, Diagnostics, did_you_mean, line_col};
pub use types::{
    IfAddr4, IfAddr6, IfName, Name, Proto, RESERVED_NAMES, Service, VlanId, is_link_local6,
};

/// Where the daemon and the CLI look when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/cloison/cloison.toml";

/// The most segments a configuration may define: enough for any town hall, and the
/// policy-routing rule priorities cloison owns are sized for it.
pub const MAX_SEGMENTS: usize = 64;

/// The most uplinks: each with a gateway gets a routing table of its own, in a range
/// cloison owns.
pub const MAX_UPLINKS: usize = 16;

/// A configuration that passed validation.
// A private field rather than #[non_exhaustive]: the latter would still let the rest of
// the crate build a `Config` by hand.
#[allow(clippy::manual_non_exhaustive)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub router: Router,
    pub trunk: Option<IfName>,
    /// Sorted by name.
    pub uplinks: Vec<Uplink>,
    /// Sorted by name.
    pub segments: Vec<Segment>,
    /// In file order.
    pub allows: Vec<Allow>,
    pub forbids: Vec<Forbid>,
    pub alerts: AlertSettings,
    pub daemon: DaemonSettings,
    pub verify: VerifySettings,
    /// Private: a `Config` only comes out of validation.
    _validated: (),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    /// `None` means "use the hostname" (resolved at the edges, never here).
    pub name: Option<String>,
    pub ssh_port: u16,
    /// Interfaces cloison does not manage whose traffic to the router is accepted (an
    /// out-of-band management port, a VPN). Sorted, none of cloison's own.
    pub trusted_interfaces: Vec<IfName>,
    /// What the router does with traffic to itself from every other interface it does
    /// not manage.
    pub unmanaged_input: UnmanagedInput,
}

/// `router.unmanaged_input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmanagedInput {
    /// Counted (`unmanaged`) and dropped: the default.
    Drop,
    /// Accepted, as before cloison knew about it; `cloison check` warns.
    Accept,
}

/// Something valid but probably not what the admin wants, for `cloison check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The key it is about (`router.unmanaged_input`).
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A VLAN on the trunk; cloison creates the sub-interface.
    Vlan { trunk: IfName, id: VlanId },
    /// A dedicated, untagged port.
    Port,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: Name,
    /// The interface the segment lives on: the dedicated port, or `trunk.vlan`.
    pub interface: IfName,
    pub attachment: Attachment,
    pub address: IfAddr4,
    pub address6: Option<IfAddr6>,
    pub uplink: Option<Name>,
    pub services: BTreeSet<Service>,
    pub management: bool,
    /// What people call it (`le poste public`), for `cloison report`.
    pub label: Option<String>,
}

impl Segment {
    pub fn vlan(&self) -> Option<VlanId> {
        match &self.attachment {
            Attachment::Vlan { id, .. } => Some(*id),
            Attachment::Port => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub name: Name,
    pub interface: IfName,
    pub gateway: Option<Ipv4Addr>,
    pub address: Option<IfAddr4>,
    pub gateway6: Option<Ipv6Addr>,
    pub address6: Option<IfAddr6>,
    pub masquerade: bool,
    /// What people call it (`la box de la commune`), for `cloison report`.
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    pub from: Name,
    pub to: Name,
    pub proto: Proto,
    /// Empty for ICMP (which allows echo requests).
    pub ports: BTreeSet<u16>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbid {
    pub from: Vec<Name>,
    pub to: Vec<Name>,
    /// `None`: every protocol.
    pub proto: Option<Proto>,
    /// Empty: every port.
    pub ports: BTreeSet<u16>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub summary_every: Duration,
    pub max_per_minute: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            summary_every: Duration::from_secs(60),
            max_per_minute: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Re-apply the ruleset when someone else changed it (otherwise only alert).
    pub repair: bool,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings { repair: true }
    }
}

/// `[verify]`: how `cloison verify` probes the isolation (docs/verify.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySettings {
    /// How often the daemon verifies; `None`: only when asked (`cloison verify`).
    pub every: Option<Duration>,
    /// The TCP ports probed toward segments, the router and private addresses.
    pub ports: BTreeSet<u16>,
    /// An Internet address probed from the segments that have an uplink; `None`: none.
    pub internet: Option<Ipv4Addr>,
    pub internet6: Option<Ipv6Addr>,
    /// The probe's address per segment, where the operator chose it (otherwise a free
    /// address of the subnet is found at run time).
    pub probe_addresses: BTreeMap<Name, Ipv4Addr>,
    /// Hosts of a segment to probe, besides the router and the other segments' probes.
    pub targets: BTreeMap<Name, Vec<std::net::IpAddr>>,
}

impl VerifySettings {
    /// Ports where a mairie's sensitive services listen: SSH, DNS, HTTP, NetBIOS, HTTPS,
    /// SMB, RDP, VNC.
    pub const DEFAULT_PORTS: [u16; 8] = [22, 53, 80, 139, 443, 445, 3389, 5900];
    /// Quad9, a public resolver that answers on 53 and 443, run by a non-profit.
    pub const DEFAULT_INTERNET: Ipv4Addr = Ipv4Addr::new(9, 9, 9, 9);
    pub const DEFAULT_INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2620, 0xfe, 0, 0, 0, 0, 0, 0xfe);
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            every: None,
            ports: Self::DEFAULT_PORTS.into_iter().collect(),
            internet: Some(Self::DEFAULT_INTERNET),
            internet6: Some(Self::DEFAULT_INTERNET6),
            probe_addresses: BTreeMap::new(),
            targets: BTreeMap::new(),
        }
    }
}

impl Config {
    pub fn segment(&self, name: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.name.as_str() == name)
    }

    pub fn uplink(&self, name: &str) -> Option<&Uplink> {
        self.uplinks.iter().find(|u| u.name.as_str() == name)
    }

    /// What `cloison check` warns about: valid, but probably not what is meant.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        if self.router.unmanaged_input == UnmanagedInput::Accept {
            out.push(Warning {
                key: "router.unmanaged_input".into(),
                message: "\"accept\" leaves the router's input open: every interface cloison does not manage, and any added later, reaches all the router's services (ssh, DNS...), uncounted and unalerted; list the ones you trust in router.trusted_interfaces and remove this key".into(),
            });
        }
        if self.router.trusted_interfaces.is_empty() && !self.segments.iter().any(|s| s.management)
        {
            out.push(Warning {
                key: "router".into(),
                message: format!(
                    "no segment has `management = true` and router.trusted_interfaces is empty: ssh to the router (tcp/{}) is reachable from nowhere but its console",
                    self.router.ssh_port
                ),
            });
        }
        out
    }

    /// One line for logs and `cloison check`.
    pub fn summary(&self) -> String {
        let segs: Vec<String> = self
            .segments
            .iter()
            .map(|s| match s.vlan() {
                Some(v) => format!("{} (vlan {v})", s.name),
                None => format!("{} ({})", s.name, s.interface),
            })
            .collect();
        let ups: Vec<&str> = self.uplinks.iter().map(|u| u.name.as_str()).collect();
        format!(
            "{} segment{}: {}; {} uplink{}: {}; {} allow{}, {} forbid{}",
            self.segments.len(),
            plural(self.segments.len()),
            segs.join(", "),
            ups.len(),
            plural(ups.len()),
            if ups.is_empty() {
                "none".into()
            } else {
                ups.join(", ")
            },
            self.allows.len(),
            plural(self.allows.len()),
            self.forbids.len(),
            plural(self.forbids.len()),
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A configuration read from a file, with what is needed to account for it (reading the
/// file is the edge's job: `cloison::config_file::load`).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: PathBuf,
    /// The file's bytes, kept so a good configuration can be saved as last known good.
    pub source: String,
    /// SHA-256 of the file.
    pub hash: Hash,
}

impl Loaded {
    /// Validates the bytes of the file at `path`.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Loaded, Diagnostics> {
        let origin = path.display().to_string();
        let hash = Hash::of(&bytes);
        let source = match String::from_utf8(bytes) {
            Ok(source) => source,
            Err(e) => return Err(not_utf8(e.as_bytes(), &origin)),
        };
        let config = parse(&source, &origin)?;
        Ok(Loaded {
            config,
            path: path.to_owned(),
            hash,
            source,
        })
    }
}

/// Parses and validates configuration text. `origin` names the file in messages.
pub fn parse(source: &str, origin: &str) -> Result<Config, Diagnostics> {
    read(source).map_err(|items| Diagnostics::new(origin, source, items))
}

/// Parses and validates the bytes of a configuration file, which must be UTF-8.
pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Config, Diagnostics> {
    match std::str::from_utf8(bytes) {
        Ok(source) => parse(source, origin),
        Err(_) => Err(not_utf8(bytes, origin)),
    }
}

fn read(source: &str) -> Result<Config, Vec<Diagnostic>> {
    let syntax::Checked { text, mut problems } = syntax::check(source);
    let Some(text) = text else {
        return Err(problems);
    };
    let mut root = match DeTable::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            let msg = e.message().trim().replace('\n', " ");
            problems.push(Diagnostic::new(
                e.span().unwrap_or(0..0),
                "",
                format!("malformed TOML: {msg}"),
            ));
            return Err(problems);
        }
    };
    // Unknown keys and values of the wrong type are reported and removed, so the rest of
    // the file is still checked.
    let misfits = shape::take_misfits(root.get_mut(), &text);
    problems.extend(misfits.problems);
    match <raw::RawConfig as serde::Deserialize>::deserialize(toml::Deserializer::from(root)) {
        Err(e) => {
            // Not expected once `shape` has removed what does not fit; reported all the same.
            let span = e.span().unwrap_or(0..0);
            problems.push(Diagnostic::new(
                span,
                "",
                e.message().trim().replace('\n', " "),
            ));
            Err(problems)
        }
        Ok(raw) => match validate::validate(raw, &text, misfits.mistyped) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        },
    }
}

/// The errors of a file that is not UTF-8: where its first such byte is, and how to
/// convert it; then every other problem of the file, read with those bytes replaced.
fn not_utf8(bytes: &[u8], origin: &str) -> Diagnostics {
    let mut text = String::with_capacity(bytes.len());
    let mut bad: Vec<(usize, u8)> = Vec::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if let Some(&first) = chunk.invalid().first() {
            bad.push((text.len(), first));
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    let mut lines: Vec<usize> = bad.iter().map(|(at, _)| line_col(&text, *at).0).collect();
    lines.dedup();
    let (at, byte) = bad.first().copied().unwrap_or((0, 0));
    let latin1 = char::from(byte);
    let shown = if latin1.is_control() {
        String::new()
    } else {
        format!(" (`{latin1}` in Latin-1)")
    };
    let more = match lines.len() {
        0 | 1 => String::new(),
        2 => "; 1 more line has such bytes".to_owned(),
        n => format!("; {} more lines have such bytes", n - 1),
    };
    let mut items = read(&text).err().unwrap_or_default();
    items.push(Diagnostic::new(
        at..at + 1,
        "",
        format!(
            "the file is not UTF-8: byte 0x{byte:02X} here{shown}{more}; save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {origin} > {origin}.utf8 && mv {origin}.utf8 {origin}`"
        ),
    ));
    Diagnostics::new(origin, &text, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../config/cloison.toml");
    const LAB: &str = include_str!("../../../../config/lab.toml");

    #[test]
    fn example_is_valid() {
        let c = parse(EXAMPLE, "cloison.toml").unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(c.segments.len(), 3);
        let kiosk = c.segment("kiosk").unwrap();
        assert_eq!(kiosk.interface.as_str(), "lan0.20");
        assert_eq!(kiosk.vlan().map(VlanId::get), Some(20));
        assert_eq!(kiosk.uplink.as_ref().map(Name::as_str), Some("laposte"));
        assert_eq!(
            c.allows[0].ports.iter().copied().collect::<Vec<_>>(),
            [5900]
        );
        assert_eq!(c.router.ssh_port, 22);
        assert_eq!(c.alerts, AlertSettings::default());
    }

    #[test]
    fn lab_is_valid() {
        let c = parse(LAB, "lab.toml").unwrap_or_else(|d| panic!("{d}"));
        assert!(c.trunk.is_none());
        assert!(c.segments.iter().all(|s| s.vlan().is_none()));
        assert_eq!(c.alerts.summary_every, Duration::from_secs(10));
    }

    #[test]
    fn defaults_apply() {
        let c = parse(
            "[segments.a]\ninterface = \"eth1\"\naddress = \"10.0.0.1/24\"\n",
            "t.toml",
        )
        .unwrap();
        let a = &c.segments[0];
        assert!(a.services.is_empty());
        assert!(!a.management);
        assert!(a.uplink.is_none());
        assert!(c.daemon.repair);
        assert_eq!(c.router.name, None);
    }
}
