//! The `cloison-lab probe` and `cloison-lab frame` commands: the lab's probes,
//! usable from a shell inside any namespace (for `lab --keep`, and the VM test, which
//! has no other tool to connect or forge frames).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::{Reach, ping, send_frame, tcp_connect, udp_exchange};

/// The calling process's own network namespace, in the form the probes take.
const HERE: &str = "/proc/self/ns/net";

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProbeKind {
    Tcp,
    Udp,
    Ping,
}

/// Arguments of `cloison-lab probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    pub kind: ProbeKind,
    /// ADDRESS:PORT for tcp and udp (`[v6]:port` for IPv6), ADDRESS for ping.
    pub target: String,
    #[arg(long, default_value_t = 1500)]
    pub timeout_ms: u64,
}

/// Arguments of `cloison-lab frame`.
#[derive(Debug, clap::Args)]
pub struct FrameArgs {
    /// Interface to send on.
    #[arg(long)]
    pub iface: String,
    /// The whole Ethernet frame, in hex.
    pub hex: String,
}

/// Runs a probe from here; one word (and the peer the listener saw): `open 10.30.0.2`,
/// `refused`, `unreachable`, `timeout`.
pub fn probe(args: &ProbeArgs) -> anyhow::Result<String> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let reach = match args.kind {
        ProbeKind::Tcp => tcp_connect(HERE, args.target.parse::<SocketAddr>()?, timeout)?,
        ProbeKind::Udp => udp_exchange(HERE, args.target.parse::<SocketAddr>()?, timeout)?,
        ProbeKind::Ping => {
            if ping(HERE, args.target.parse::<IpAddr>()?, timeout)? {
                Reach::Open { seen_peer: None }
            } else {
                Reach::TimedOut
            }
        }
    };
    Ok(match reach {
        Reach::Open { seen_peer: Some(p) } => format!("open {p}"),
        Reach::Open { seen_peer: None } => "open".into(),
        Reach::Refused => "refused".into(),
        Reach::Unreachable(_) => "unreachable".into(),
        Reach::TimedOut => "timeout".into(),
    })
}

pub fn frame(args: &FrameArgs) -> anyhow::Result<()> {
    let hex: String = args
        .hex
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    anyhow::ensure!(
        hex.len() % 2 == 0 && hex.len() >= 28,
        "a frame is an even number of hex digits, 14 bytes at least"
    );
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?;
    send_frame(HERE, &args.iface, &bytes)?;
    Ok(())
}
