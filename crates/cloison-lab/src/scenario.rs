//! The parts of `cloison-lab`'s story: ordinary traffic that must work, then what a
//! compromised kiosk would try. Each part acts from inside the lab's hosts, checks what
//! happened with evidence (the far end's answer, a capture on the mairie server's wire,
//! the ruleset's counters) and says which journal entries it must produce. It prints
//! nothing and reads no journal: `demo` narrates and waits for the alerts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::frames as fixtures;
use crate::rig::{Rig, RigError};
use crate::{
    Capture, HOST_IF, Node, ProbeError, Reach, SPOOF_SOURCE_PORT, capture, send_frame,
    send_spoofed_udp, send_udp_burst, tcp_connect,
};
use cloison_core::alert::event::format_mac;
use cloison_core::alert::field;
use cloison_core::config::Config;

/// How long a connection attempt waits for an answer: cloison drops silently, so a
/// blocked attempt is one that hears nothing in this time.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long frames reaching the mairie server's wire are looked for after an attack.
const CAPTURE_WINDOW: Duration = Duration::from_millis(300);
/// Packets in the flood, sent in bursts from one socket each.
pub const FLOOD_PACKETS: u64 = 50_000;
/// The share of the flood that must reach the router's rules: a burst can overflow a
/// virtual link's queue on the way (the kernel drops it before any rule sees it).
const FLOOD_MUST_REACH_PERCENT: u64 = 99;
const FLOOD_BURSTS: u64 = 5;
/// Forged packets sent with a mairie source address.
const SPOOFED_PACKETS: u64 = 3;

/// One part of the story, as `--scenario` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Part {
    /// Ordinary traffic that must work: the kiosk browses the Internet through the La
    /// Poste line, the mairie PC reaches its file server and the Internet through the
    /// town's box
    Normal,
    /// The kiosk scans the mairie server's SMB and RDP ports
    Scan,
    /// The kiosk tries ssh on the router
    Router,
    /// The kiosk sends packets with a forged mairie source address
    Spoof,
    /// The kiosk sends an ARP reply claiming the router's address
    Arp,
    /// The kiosk answers as a DHCP server (a rogue offer)
    Dhcp,
    /// The kiosk announces itself as an IPv6 router (a rogue router advertisement)
    Ra,
    /// The kiosk sends a double-tagged frame toward the mairie's VLAN (VLAN hopping)
    Vlan,
    /// The kiosk floods the mairie server with 50,000 packets
    Flood,
}

impl Part {
    pub const ALL: [Part; 9] = [
        Part::Normal,
        Part::Scan,
        Part::Router,
        Part::Spoof,
        Part::Arp,
        Part::Dhcp,
        Part::Ra,
        Part::Vlan,
        Part::Flood,
    ];

    /// The `--scenario` value.
    pub fn name(self) -> &'static str {
        match self {
            Part::Normal => "normal",
            Part::Scan => "scan",
            Part::Router => "router",
            Part::Spoof => "spoof",
            Part::Arp => "arp",
            Part::Dhcp => "dhcp",
            Part::Ra => "ra",
            Part::Vlan => "vlan",
            Part::Flood => "flood",
        }
    }

    /// What the part is, in the verdict.
    pub fn title(self) -> &'static str {
        match self {
            Part::Normal => "ordinary traffic",
            Part::Scan => "SMB and RDP scan of the mairie server",
            Part::Router => "ssh to the router",
            Part::Spoof => "forged mairie source address",
            Part::Arp => "ARP reply claiming the router",
            Part::Dhcp => "rogue DHCP offer",
            Part::Ra => "rogue IPv6 router advertisement",
            Part::Vlan => "double-tagged frame (VLAN hopping)",
            Part::Flood => "flood of 50,000 packets",
        }
    }

    pub fn is_attack(self) -> bool {
        self != Part::Normal
    }
}

/// One step of a part, narrated in one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepId {
    /// The kiosk browses the Internet host behind the La Poste line.
    KioskBrowses,
    /// The mairie PC opens its file server's share.
    PcFileServer,
    /// The mairie PC browses the Internet host behind the town's box.
    PcBrowses,
    /// The one step of an attack.
    Attack(Part),
}

impl StepId {
    /// The steps of a part, in order.
    pub fn of(part: Part) -> Vec<StepId> {
        match part {
            Part::Normal => vec![
                StepId::KioskBrowses,
                StepId::PcFileServer,
                StepId::PcBrowses,
            ],
            attack => vec![StepId::Attack(attack)],
        }
    }

    pub fn part(self) -> Part {
        match self {
            StepId::KioskBrowses | StepId::PcFileServer | StepId::PcBrowses => Part::Normal,
            StepId::Attack(p) => p,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the lab's configuration lacks {what}; use config/lab.toml")]
    Config { what: &'static str },
    #[error("the lab has no address for {0}")]
    Address(Node),
    #[error("cannot act from the lab's hosts")]
    Probe(#[from] ProbeError),
    #[error("cannot read the ruleset's counters")]
    Counters(#[source] RigError),
}

/// A journal entry a step must produce: its `CLOISON_EVENT` and fields it must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub event: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

impl Expected {
    fn new(event: &'static str, fields: &[(&'static str, &dyn ToString)]) -> Expected {
        Expected {
            event,
            fields: fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    /// Whether `entry` (`journalctl -o json`) is this alert.
    pub fn matches(&self, entry: &Value) -> bool {
        entry[field::EVENT] == self.event
            && self
                .fields
                .iter()
                .all(|(k, v)| entry[*k].as_str() == Some(v.as_str()))
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.event)?;
        for (k, v) in &self.fields {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// What one step did and what it found.
#[derive(Debug, Clone)]
pub struct Step {
    pub part: Part,
    /// What was tried: `kiosk -> mairie-srv 192.168.10.5 tcp/445 (SMB)`.
    pub tried: String,
    /// What happened: `no answer: dropped`.
    pub seen: String,
    /// Ordinary traffic: it worked as it must. An attack: nothing got through.
    pub ok: bool,
    /// How an attack was stopped, for the verdict: `dropped by the ruleset`.
    pub stopped: String,
    /// The entries it must produce (none for ordinary traffic).
    pub expected: Vec<Expected>,
}

/// The mairie as the parts see it: the rig, and the addresses they use.
pub struct Mairie<'a> {
    rig: &'a Rig,
    kiosk: Ipv4Addr,
    kiosk6: Ipv6Addr,
    kiosk_mac: [u8; 6],
    kiosk_link_local: Ipv6Addr,
    kiosk_iface: String,
    kiosk_gateway: Ipv4Addr,
    router_kiosk_mac: [u8; 6],
    server: Ipv4Addr,
    pc: Ipv4Addr,
    inet_a: Ipv4Addr,
    inet_b: Ipv4Addr,
    isp_addr: Ipv4Addr,
    laposte_addr: Ipv4Addr,
    ssh_port: u16,
}

impl<'a> Mairie<'a> {
    pub fn new(rig: &'a Rig, config: &Config) -> Result<Mairie<'a>, ScenarioError> {
        let lab = &rig.lab;
        let v4 = |n: Node| lab.v4(n).ok_or(ScenarioError::Address(n));
        let kiosk_seg = config.segment("kiosk").ok_or(ScenarioError::Config {
            what: "segment `kiosk`",
        })?;
        let uplink = |name, what| {
            config
                .uplink(name)
                .and_then(|u| u.address)
                .map(|a| a.addr())
                .ok_or(ScenarioError::Config { what })
        };
        let kiosk_mac = lab.mac(Node::Kiosk, HOST_IF)?;
        Ok(Mairie {
            rig,
            kiosk: v4(Node::Kiosk)?,
            kiosk6: lab
                .v6(Node::Kiosk)
                .ok_or(ScenarioError::Address(Node::Kiosk))?,
            kiosk_mac,
            kiosk_link_local: link_local(kiosk_mac),
            kiosk_iface: kiosk_seg.interface.to_string(),
            kiosk_gateway: kiosk_seg.address.addr(),
            router_kiosk_mac: lab.mac(Node::Router, kiosk_seg.interface.as_str())?,
            server: v4(Node::MairieSrv)?,
            pc: v4(Node::MairiePc)?,
            inet_a: v4(Node::InetA)?,
            inet_b: v4(Node::InetB)?,
            isp_addr: uplink("isp", "uplink `isp` with a static address")?,
            laposte_addr: uplink("laposte", "uplink `laposte` with a static address")?,
            ssh_port: config.router.ssh_port,
        })
    }

    /// The kiosk's MAC address, as alerts show it.
    pub fn kiosk_mac(&self) -> String {
        format_mac(&self.kiosk_mac)
    }

    /// Plays one step. `before_each` is called first with what the step tries, so it can
    /// be narrated while it runs (a blocked attempt takes `PROBE_TIMEOUT`).
    pub fn play(
        &self,
        step: StepId,
        before_each: &mut dyn FnMut(&str),
    ) -> Result<Step, ScenarioError> {
        match step {
            StepId::KioskBrowses => self.flow(
                (Node::Kiosk, self.inet_b, 443),
                ("kiosk -> Internet", "via the La Poste line"),
                (self.laposte_addr, "the La Poste line, masqueraded"),
                before_each,
            ),
            StepId::PcFileServer => self.flow(
                (Node::MairiePc, self.server, 445),
                ("mairie-pc -> file server", ""),
                (self.pc, "itself: same segment"),
                before_each,
            ),
            StepId::PcBrowses => self.flow(
                (Node::MairiePc, self.inet_a, 443),
                ("mairie-pc -> Internet", "via the town's box"),
                (self.isp_addr, "the town box's line, masqueraded"),
                before_each,
            ),
            StepId::Attack(Part::Normal) => Err(ScenarioError::Config {
                what: "an attack named `normal`",
            }),
            StepId::Attack(Part::Scan) => self.scan(before_each),
            StepId::Attack(Part::Router) => self.router(before_each),
            StepId::Attack(Part::Spoof) => self.spoof(before_each),
            StepId::Attack(Part::Arp) => self.arp(before_each),
            StepId::Attack(Part::Dhcp) => self.dhcp(before_each),
            StepId::Attack(Part::Ra) => self.ra(before_each),
            StepId::Attack(Part::Vlan) => self.vlan(before_each),
            StepId::Attack(Part::Flood) => self.flood(before_each),
        }
    }

    fn ns(&self, node: Node) -> &str {
        self.rig.lab.ns(node)
    }

    /// Ordinary traffic that must work, and whom the far end saw: the masquerade proves
    /// which uplink it left by.
    fn flow(
        &self,
        (from, to, port): (Node, Ipv4Addr, u16),
        (who, how): (&str, &str),
        (want, meaning): (Ipv4Addr, &str),
        before_each: &mut dyn FnMut(&str),
    ) -> Result<Step, ScenarioError> {
        let tried = format!("{who} {to} {} {how}", tcp_service(port))
            .trim_end()
            .to_owned();
        before_each(&tried);
        let reach = tcp_connect(
            self.ns(from),
            SocketAddr::new(to.into(), port),
            PROBE_TIMEOUT,
        )?;
        let (ok, seen) = match reach {
            Reach::Open {
                seen_peer: Some(peer),
            } if peer == IpAddr::V4(want) => {
                (true, format!("connected, seen from {peer} ({meaning})"))
            }
            Reach::Open {
                seen_peer: Some(peer),
            } => (
                false,
                format!("connected, but seen from {peer}, not {want} ({meaning})"),
            ),
            Reach::Open { seen_peer: None } => (
                false,
                "connected, but the far end did not say whom it saw".to_owned(),
            ),
            other => (false, format!("FAILED: {}", reach_text(other))),
        };
        Ok(Step {
            part: Part::Normal,
            tried,
            seen,
            ok,
            stopped: String::new(),
            expected: Vec::new(),
        })
    }

    /// A capture on the mairie server's wire, to see whether anything from the kiosk
    /// arrives there.
    fn watch_mairie(&self) -> Result<Capture, ScenarioError> {
        Ok(capture(self.ns(Node::MairieSrv), HOST_IF)?)
    }

    /// Whether a frame from the kiosk (its MAC, its addresses, or a forged packet)
    /// reached the mairie server's wire since `watch` was opened.
    fn arrived(&self, watch: &Capture) -> Result<Option<String>, ScenarioError> {
        let frame = watch
            .wait_for(CAPTURE_WINDOW, |f| self.is_from_kiosk(f))
            .map_err(|source| ProbeError::Socket {
                ns: self.ns(Node::MairieSrv).to_owned(),
                what: "capture",
                source,
            })?;
        Ok(frame.map(|f| describe_frame(&f)))
    }

    fn is_from_kiosk(&self, frame: &[u8]) -> bool {
        if frame.get(6..12) == Some(&self.kiosk_mac[..]) {
            return true;
        }
        let Some(h) = ip_header(frame) else {
            return false;
        };
        h.src == IpAddr::V4(self.kiosk)
            || h.src == IpAddr::V6(self.kiosk6)
            || (h.proto == 17 && h.src_port == Some(SPOOF_SOURCE_PORT))
    }

    fn scan(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let ports = [445u16, 3389];
        let list: Vec<String> = ports.iter().map(|p| tcp_service(*p)).collect();
        let tried = format!("kiosk -> mairie-srv {} {}", self.server, list.join(", "));
        before_each(&tried);
        let watch = self.watch_mairie()?;
        let ns = self.ns(Node::Kiosk);
        // Both at once: a scanner does not wait for one port before the next.
        let reaches = std::thread::scope(|s| {
            let handles: Vec<_> = ports
                .iter()
                .map(|&port| {
                    let to = SocketAddr::new(self.server.into(), port);
                    s.spawn(move || tcp_connect(ns, to, PROBE_TIMEOUT))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<Reach>, ProbeError>>()
        })?;
        let arrived = self.arrived(&watch)?;
        let answered: Vec<String> = ports
            .iter()
            .zip(&reaches)
            .filter(|(_, r)| answered(**r))
            .map(|(p, r)| format!("tcp/{p} {}", reach_text(*r)))
            .collect();
        let expected = ports
            .iter()
            .map(|p| {
                Expected::new(
                    "cross_segment",
                    &[
                        (field::SRC_IP, &self.kiosk),
                        (field::DST_IP, &self.server),
                        (field::DST_PORT, p),
                    ],
                )
            })
            .collect();
        Ok(blocked_step(Part::Scan, tried, answered, arrived, expected))
    }

    fn router(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let tried = format!(
            "kiosk -> router {} {}",
            self.kiosk_gateway,
            tcp_service(self.ssh_port)
        );
        before_each(&tried);
        let reach = tcp_connect(
            self.ns(Node::Kiosk),
            SocketAddr::new(self.kiosk_gateway.into(), self.ssh_port),
            PROBE_TIMEOUT,
        )?;
        let answered = if answered(reach) {
            vec![reach_text(reach)]
        } else {
            Vec::new()
        };
        let expected = vec![Expected::new(
            "router_access",
            &[
                (field::SRC_IP, &self.kiosk),
                (field::DST_IP, &self.kiosk_gateway),
                (field::DST_PORT, &self.ssh_port),
            ],
        )];
        Ok(blocked_step(Part::Router, tried, answered, None, expected))
    }

    fn spoof(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let tried = format!(
            "kiosk -> mairie-srv {} udp/53 as mairie-pc {}, {SPOOFED_PACKETS} packets",
            self.server, self.pc
        );
        before_each(&tried);
        let watch = self.watch_mairie()?;
        let before = self.counter("kiosk/spoofed")?;
        send_spoofed_udp(
            self.ns(Node::Kiosk),
            self.pc.into(),
            SocketAddr::new(self.server.into(), 53),
            usize::try_from(SPOOFED_PACKETS).expect("a few packets"),
            b"cloison-lab: forged source",
        )?;
        let counted = self.counted_since("kiosk/spoofed", before, SPOOFED_PACKETS)?;
        let arrived = self.arrived(&watch)?;
        let expected = vec![Expected::new(
            "spoofed_source",
            &[
                (field::SRC_SEGMENT, &"kiosk"),
                (field::SRC_IP, &self.pc),
                (field::DST_IP, &self.server),
            ],
        )];
        let mut step = blocked_step(Part::Spoof, tried, Vec::new(), arrived, expected);
        step.seen = format!("{}, {counted}/{SPOOFED_PACKETS} counted", step.seen);
        if counted != SPOOFED_PACKETS {
            step.ok = false;
        }
        step.stopped = format!("dropped ({counted}/{SPOOFED_PACKETS} counted)");
        Ok(step)
    }

    /// Sends a frame from the kiosk's wire; the frame's fate is checked on the mairie's.
    fn frame_step(
        &self,
        part: Part,
        tried: String,
        frame: &[u8],
        expected: Expected,
        before_each: &mut dyn FnMut(&str),
    ) -> Result<Step, ScenarioError> {
        before_each(&tried);
        let watch = self.watch_mairie()?;
        send_frame(self.ns(Node::Kiosk), HOST_IF, frame)?;
        let arrived = self.arrived(&watch)?;
        let ok = arrived.is_none();
        Ok(Step {
            part,
            tried,
            seen: match &arrived {
                None => "nothing reached the mairie's wire".to_owned(),
                Some(f) => format!("GOT THROUGH: the mairie server received {f}"),
            },
            ok,
            stopped: "contained on the kiosk's wire".to_owned(),
            expected: vec![expected],
        })
    }

    fn arp(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        // Unsolicited, to everyone on the segment: every host that believes it sends
        // its traffic for the Internet through the kiosk.
        let frame = fixtures::arp_reply(
            self.kiosk_mac,
            self.kiosk_gateway,
            fixtures::BROADCAST,
            self.kiosk_gateway,
        );
        let tried = format!(
            "kiosk -> ARP reply to all \"{} (the router) is at {}\"",
            self.kiosk_gateway,
            self.kiosk_mac()
        );
        let expected = Expected::new(
            "arp_spoof",
            &[
                (field::SRC_MAC, &self.kiosk_mac()),
                (field::INTERFACE, &self.kiosk_iface),
            ],
        );
        self.frame_step(Part::Arp, tried, &frame, expected, before_each)
    }

    fn dhcp(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let frame = fixtures::dhcp_offer(self.kiosk_mac, self.kiosk);
        let tried = "kiosk -> DHCP offer to all, as if it were the DHCP server".to_owned();
        let expected = Expected::new(
            "rogue_dhcp",
            &[
                (field::SRC_MAC, &self.kiosk_mac()),
                (field::INTERFACE, &self.kiosk_iface),
            ],
        );
        self.frame_step(Part::Dhcp, tried, &frame, expected, before_each)
    }

    fn ra(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let frame = fixtures::router_advertisement(self.kiosk_mac, self.kiosk_link_local);
        let tried = "kiosk -> IPv6 router advertisement to all (prefix fd00:66::/64)".to_owned();
        let expected = Expected::new(
            "rogue_ra",
            &[
                (field::SRC_MAC, &self.kiosk_mac()),
                (field::INTERFACE, &self.kiosk_iface),
            ],
        );
        self.frame_step(Part::Ra, tried, &frame, expected, before_each)
    }

    fn vlan(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        // The mairie's VLAN on a trunk (config/cloison.toml): 10, under the kiosk's 20.
        let inner = fixtures::udp4(
            self.kiosk_mac,
            self.router_kiosk_mac,
            self.kiosk,
            self.server,
            40000,
            445,
        );
        let frame = fixtures::dot1q(&fixtures::dot1q(&inner, 10), 20);
        let tried = format!(
            "kiosk -> frame tagged VLAN 20 then 10, for mairie-srv {} udp/445",
            self.server
        );
        let expected = Expected::new(
            "vlan_hopping",
            &[
                (field::SRC_MAC, &self.kiosk_mac()),
                (field::INTERFACE, &self.kiosk_iface),
            ],
        );
        self.frame_step(Part::Vlan, tried, &frame, expected, before_each)
    }

    fn flood(&self, before_each: &mut dyn FnMut(&str)) -> Result<Step, ScenarioError> {
        let port = 53;
        let tried = format!(
            "kiosk -> mairie-srv {} udp/{port}, {} packets at once",
            self.server,
            thousands(FLOOD_PACKETS)
        );
        before_each(&tried);
        let watch = self.watch_mairie()?;
        let before = self.counter("kiosk/mairie")?;
        let started = Instant::now();
        let per_burst = (FLOOD_PACKETS / FLOOD_BURSTS) as usize;
        for _ in 0..FLOOD_BURSTS {
            send_udp_burst(
                self.ns(Node::Kiosk),
                SocketAddr::new(self.server.into(), port),
                per_burst,
                b"cloison-lab: flood",
            )?;
        }
        let sending = started.elapsed();
        let counted = self.counted_since("kiosk/mairie", before, FLOOD_PACKETS)?;
        let arrived = self.arrived(&watch)?;
        let expected = vec![Expected::new(
            "cross_segment",
            &[
                (field::SRC_IP, &self.kiosk),
                (field::DST_IP, &self.server),
                (field::PROTO, &"udp"),
                (field::DST_PORT, &port),
            ],
        )];
        let mut step = blocked_step(Part::Flood, tried, Vec::new(), arrived, expected);
        let lost = FLOOD_PACKETS.saturating_sub(counted);
        let lost_text = if lost > 0 {
            format!(
                " ({} lost under the burst before the router's rules)",
                thousands(lost)
            )
        } else {
            String::new()
        };
        step.seen = format!(
            "sent in {:.1} s, {}, {}/{} counted{lost_text}",
            sending.as_secs_f64(),
            step.seen,
            thousands(counted),
            thousands(FLOOD_PACKETS)
        );
        if counted * 100 < FLOOD_PACKETS * FLOOD_MUST_REACH_PERCENT || counted > FLOOD_PACKETS {
            step.ok = false;
        }
        step.stopped = format!(
            "dropped ({}/{} counted)",
            thousands(counted),
            thousands(FLOOD_PACKETS)
        );
        Ok(step)
    }

    fn counter(&self, name: &str) -> Result<u64, ScenarioError> {
        let counters = self.rig.counters().map_err(ScenarioError::Counters)?;
        Ok(counters.get(name).copied().unwrap_or(0))
    }

    /// How much `name` grew since `before`, waiting (up to 3 s) for it to reach `want`:
    /// the last packets may still be on their way through the veths.
    fn counted_since(&self, name: &str, before: u64, want: u64) -> Result<u64, ScenarioError> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let grown = self.counter(name)?.saturating_sub(before);
            if grown >= want || Instant::now() >= deadline {
                return Ok(grown);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An attack the ruleset must drop: nothing may answer, nothing may arrive.
fn blocked_step(
    part: Part,
    tried: String,
    answered: Vec<String>,
    arrived: Option<String>,
    expected: Vec<Expected>,
) -> Step {
    let mut through = answered;
    if let Some(f) = arrived {
        through.push(format!("the mairie server received {f}"));
    }
    let ok = through.is_empty();
    Step {
        part,
        tried,
        seen: if ok {
            "no answer, nothing arrived".to_owned()
        } else {
            format!("GOT THROUGH: {}", through.join("; "))
        },
        ok,
        stopped: "dropped by the ruleset".to_owned(),
        expected,
    }
}

/// `tcp/445 (SMB)`.
fn tcp_service(port: u16) -> String {
    match cloison_core::alert::service_name(cloison_core::alert::event::L4::Tcp, port) {
        Some(s) => format!("tcp/{port} ({s})"),
        None => format!("tcp/{port}"),
    }
}

/// Whether the far end (or anything on the way) answered.
fn answered(r: Reach) -> bool {
    matches!(r, Reach::Open { .. } | Reach::Refused)
}

fn reach_text(r: Reach) -> String {
    match r {
        Reach::Open { seen_peer: Some(p) } => format!("connected (the far end saw {p})"),
        Reach::Open { seen_peer: None } => "connected".to_owned(),
        Reach::Refused => "refused by the host (it was reached)".to_owned(),
        Reach::Unreachable(kind) => format!("unreachable ({kind})"),
        Reach::TimedOut => "no answer".to_owned(),
    }
}

/// 50,000.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The link-local address the kernel gives an interface with this MAC (EUI-64).
fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let w = |a: u8, b: u8| u16::from_be_bytes([a, b]);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        w(mac[0] ^ 0x02, mac[1]),
        w(mac[2], 0xff),
        w(0xfe, mac[3]),
        w(mac[4], mac[5]),
    )
}

/// The IP header fields a crossing check looks at.
struct IpHeader {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: Option<u16>,
}

/// Parses the IP header of an Ethernet frame (behind any 802.1Q/802.1ad tags), with the
/// frame kit's parsers.
fn ip_header(frame: &[u8]) -> Option<IpHeader> {
    use crate::frames::wire::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, Ethernet, Ipv4, Ipv6, Vlan};
    let (eth, mut rest) = Ethernet::parse(frame).ok()?;
    let mut ether_type = eth.ether_type;
    while ether_type == 0x8100 || ether_type == 0x88a8 {
        let (tag, after) = Vlan::parse(rest).ok()?;
        ether_type = tag.ether_type;
        rest = after;
    }
    let port = |l4: &[u8]| l4.get(0..2).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match ether_type {
        ETHERTYPE_IPV4 => {
            let (ip, l4) = Ipv4::parse(rest).ok()?;
            Some(IpHeader {
                src: ip.src.into(),
                dst: ip.dst.into(),
                proto: ip.proto,
                src_port: port(l4),
            })
        }
        ETHERTYPE_IPV6 => {
            let (ip, l4) = Ipv6::parse(rest).ok()?;
            Some(IpHeader {
                src: ip.src.into(),
                dst: ip.dst.into(),
                proto: ip.next_header,
                src_port: port(l4),
            })
        }
        _ => None,
    }
}

/// Headers only: `a frame from 52:54:00:00:20:05, 192.168.20.15 -> 192.168.10.5 proto 17`.
fn describe_frame(frame: &[u8]) -> String {
    let mac: Option<[u8; 6]> = frame.get(6..12).and_then(|m| m.try_into().ok());
    let from = mac.map(|m| format_mac(&m)).unwrap_or_default();
    match ip_header(frame) {
        Some(h) => format!(
            "a frame from {from}, {} -> {} ip proto {}",
            h.src, h.dst, h.proto
        ),
        None => format!("a frame from {from}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_follows_eui64() {
        assert_eq!(
            link_local([0x52, 0x54, 0x00, 0x00, 0x20, 0x05]),
            "fe80::5054:ff:fe00:2005".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(link_local(fixtures::HOST_KIOSK), fixtures::LINK_LOCAL_HOST6);
    }

    #[test]
    fn headers_are_found_behind_tags() {
        let inner = fixtures::udp4(
            fixtures::HOST_KIOSK,
            fixtures::ROUTER_KIOSK,
            fixtures::KIOSK_HOST4,
            fixtures::MAIRIE_HOST4,
            SPOOF_SOURCE_PORT,
            445,
        );
        for frame in [
            inner.clone(),
            fixtures::dot1q(&fixtures::dot1q(&inner, 10), 20),
        ] {
            let h = ip_header(&frame).unwrap();
            assert_eq!(h.src, IpAddr::V4(fixtures::KIOSK_HOST4));
            assert_eq!(h.dst, IpAddr::V4(fixtures::MAIRIE_HOST4));
            assert_eq!((h.proto, h.src_port), (17, Some(SPOOF_SOURCE_PORT)));
        }
        let ra = fixtures::router_advertisement(fixtures::HOST_KIOSK, fixtures::LINK_LOCAL_HOST6);
        let h = ip_header(&ra).unwrap();
        assert_eq!(h.proto, 58);
        assert_eq!(h.src, IpAddr::V6(fixtures::LINK_LOCAL_HOST6));
        assert!(ip_header(&fixtures::ARP_REPLY_CLAIMING_ROUTER).is_none());
        assert!(ip_header(&[0u8; 5]).is_none());
    }

    #[test]
    fn counts_read_like_a_person_writes_them() {
        assert_eq!(thousands(50_000), "50,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(0), "0");
    }

    #[test]
    fn expectations_match_on_event_and_fields() {
        let e = Expected::new("arp_spoof", &[(field::SRC_MAC, &"52:54:00:00:20:05")]);
        let entry = serde_json::json!({
            "CLOISON_EVENT": "arp_spoof", "CLOISON_SRC_MAC": "52:54:00:00:20:05", "PRIORITY": "3"
        });
        assert!(e.matches(&entry));
        let other = serde_json::json!({ "CLOISON_EVENT": "arp_spoof", "CLOISON_SRC_MAC": "x" });
        assert!(!e.matches(&other));
        assert_eq!(e.to_string(), "arp_spoof CLOISON_SRC_MAC=52:54:00:00:20:05");
    }

    #[test]
    fn every_part_has_a_distinct_name() {
        use clap::ValueEnum;
        for p in Part::ALL {
            assert_eq!(
                p.to_possible_value().unwrap().get_name(),
                p.name(),
                "the --scenario value is the name"
            );
        }
        assert_eq!(Part::value_variants().len(), Part::ALL.len());
    }
}
