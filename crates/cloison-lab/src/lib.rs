//! The simulated mairie: network namespaces and veth pairs on one machine, for the
//! integration tests and `cloison-lab` (`demo`, which plays the `scenario` on a
//! `rig::Rig`).
//!
//! `Lab::up` builds, from a validated `Config`, a router namespace holding the
//! configuration's interfaces (down and unaddressed: `cloison apply` is what is tested), a
//! switch with one bridge per segment, the segments' hosts, the two uplink boxes and the
//! Internet behind each, plus listener processes (`cloison-lab serve`). `Drop` removes it
//! all, also on panic; Ctrl-C and SIGTERM remove every lab of the process; a later
//! `Lab::up` removes labs whose creator was killed.
//!
//! It must never touch the machine's own network namespace: every link, address, route
//! and sysctl is made inside a namespace the lab created, and traffic only flows between
//! them.

pub mod cli;
pub mod deb;
pub mod demo;
pub mod fleet;
pub mod frames;
mod interrupt;
pub mod journal;
mod keep;
pub mod mirror;
mod narrate;
mod netns;
pub mod packages;
mod probe;
pub mod programs;
mod registry;
pub mod rig;
pub mod scenario;
mod serve;
pub mod testbed;
mod tools;
mod topology;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use cloison_core::config::Config;

pub use netns::{NetnsError, in_netns};
pub use probe::{
    Capture, ProbeError, Reach, SPOOF_SOURCE_PORT, bind_udp, capture, mac, ping, send_frame,
    send_frames, send_spoofed_udp, send_udp_burst, tcp_connect, udp_exchange,
};
pub use programs::{Programs, ProgramsError};
pub use registry::{EXIT_INTERRUPTED, LabRecord, RegistryError, STATE_DIR, Session};
pub use serve::{ServeError, parse_greeting};
pub use testbed::{BedNode, Testbed, TestbedError};
pub use tools::{FrameArgs, ProbeArgs, ProbeKind, frame, probe};
pub use topology::{
    BOX_INET_IF, HOST_IF, Node, NodePlan, SWITCH_TRUNK_PORT, Topology, TopologyError,
};

/// Arguments of the hidden `cloison-lab serve` command.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TCP ports to listen on.
    #[arg(long, value_delimiter = ',')]
    pub tcp: Vec<u16>,
    /// UDP ports to answer on.
    #[arg(long, value_delimiter = ',')]
    pub udp: Vec<u16>,
}

/// Runs the lab's listeners in the current network namespace until killed; prints
/// `ready` on stdout once every socket is bound.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    serve::run(&args.tcp, &args.udp)?;
    Ok(())
}

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabOptions<'a> {
    /// Router interface names, segment subnets and uplink gateways come from here.
    pub config: &'a Config,
    /// The `cloison-lab` binary, run as `cloison-lab serve` for the listeners.
    pub lab_bin: PathBuf,
    /// How long the listeners may take to bind their sockets.
    pub ready_timeout: Duration,
}

impl<'a> LabOptions<'a> {
    pub fn new(config: &'a Config, lab_bin: impl Into<PathBuf>) -> Self {
        LabOptions {
            config,
            lab_bin: lab_bin.into(),
            ready_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the configuration does not fit the lab")]
    Plan(#[from] TopologyError),
    #[error("cannot watch for Ctrl-C")]
    Signals(#[source] RegistryError),
    #[error("cannot record the lab")]
    Record(#[source] RegistryError),
    #[error("cannot create the lab's namespaces")]
    Namespaces(#[source] NetnsError),
    #[error("cannot set the sysctls of the lab's hosts")]
    Sysctls(#[source] NetnsError),
    #[error("cannot build the lab's links, addresses and routes")]
    Links(#[source] NetnsError),
    #[error("cannot start the listener of {node} ({})", bin.display())]
    ListenerSpawn {
        node: Node,
        bin: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the listener of {node} did not start: {reason}; its log: {log}")]
    ListenerNotReady {
        node: Node,
        reason: String,
        log: String,
    },
    #[error("cannot run `{command}` in {node}")]
    RunSpawn {
        node: Node,
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` in {node} failed ({status}): {stderr}")]
    Run {
        node: Node,
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot remove a lab")]
    Remove(#[source] RegistryError),
}

/// A built lab. Dropping it removes every namespace and kills every process inside.
pub struct Lab {
    topology: Topology,
    listeners: Vec<(Node, Child)>,
    build_time: Duration,
    /// False once kept: then nothing is removed on drop.
    armed: bool,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("id", &self.topology.id)
            .field("listeners", &self.listener_pids())
            .finish()
    }
}

impl Lab {
    /// Builds the lab, or removes what was built and says which step failed. First removes
    /// labs whose creator process is dead.
    pub fn up(options: &LabOptions<'_>) -> Result<Lab, LabError> {
        let started = Instant::now();
        registry::install_signal_handler().map_err(LabError::Signals)?;
        let (swept, errors) = registry::sweep_orphans();
        for id in swept {
            tracing::info!(lab = %id, "removed a lab whose creator is gone");
        }
        for e in errors {
            tracing::warn!(cause = %e, "cannot remove an orphaned lab");
        }

        let topology = topology::plan(options.config, &registry::next_id())?;
        // Registered before anything exists: from here on, Drop and the signal handler
        // remove whatever part of it was built.
        registry::live().insert(
            topology.id.clone(),
            topology.namespaces().map(str::to_owned).collect(),
        );
        let mut lab = Lab {
            topology,
            listeners: Vec::new(),
            build_time: Duration::ZERO,
            armed: true,
        };
        registry::write_record(&lab.record()).map_err(LabError::Record)?;

        let names: Vec<&str> = lab.topology.namespaces().collect();
        netns::add_all(&names).map_err(LabError::Namespaces)?;
        for node in &lab.topology.nodes {
            netns::write_sysctls(&node.ns, &node.sysctls).map_err(LabError::Sysctls)?;
        }
        for wave in 1..=lab.topology.max_wave() {
            netns::run_scripts(
                lab.topology
                    .nodes
                    .iter()
                    .filter(|n| n.wave == wave)
                    .map(|n| (n.ns.as_str(), n.script.as_slice())),
            )
            .map_err(LabError::Links)?;
        }
        lab.start_listeners(options)?;
        registry::write_record(&lab.record()).map_err(LabError::Record)?;
        lab.build_time = started.elapsed();
        Ok(lab)
    }

    fn start_listeners(&mut self, options: &LabOptions<'_>) -> Result<(), LabError> {
        let log_dir = registry::log_dir(&self.topology.id);
        let spawn_err = |node, source| LabError::ListenerSpawn {
            node,
            bin: options.lab_bin.clone(),
            source,
        };
        std::fs::create_dir_all(&log_dir).map_err(|e| spawn_err(Node::Router, e))?;
        let mut logs = Vec::new();
        for plan in &self.topology.nodes {
            if plan.tcp.is_empty() && plan.udp.is_empty() {
                continue;
            }
            let node = plan.node;
            let ns_file = File::open(netns::path(&plan.ns)).map_err(|e| spawn_err(node, e))?;
            let log_path = log_dir.join(format!("{node}.log"));
            let log = File::create(&log_path).map_err(|e| spawn_err(node, e))?;
            let mut cmd = Command::new(&options.lab_bin);
            cmd.arg("serve");
            for (flag, ports) in [("--tcp", &plan.tcp), ("--udp", &plan.udp)] {
                if !ports.is_empty() {
                    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                    cmd.args([flag, &list.join(",")]);
                }
            }
            cmd.env("CLOISON_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(log)
                // Its own process group: a terminal's Ctrl-C reaches this process, whose
                // handler removes the lab; a kept lab's listeners survive the shell's.
                .process_group(0);
            let fd = ns_file.as_raw_fd();
            // SAFETY: between fork and exec the child only calls setns(2), which is
            // async-signal-safe; `ns_file` outlives `spawn`.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.spawn().map_err(|e| spawn_err(node, e))?;
            drop(ns_file);
            self.listeners.push((node, child));
            logs.push(log_path);
        }
        let deadline = Instant::now() + options.ready_timeout;
        for ((node, child), log_path) in self.listeners.iter_mut().zip(logs) {
            let outcome = match child.stdout.take() {
                Some(stdout) => wait_ready(stdout, deadline),
                None => Err("no stdout".to_owned()),
            };
            if let Err(mut reason) = outcome {
                let _ = child.kill();
                if let Ok(status) = child.wait() {
                    reason = format!("{reason} ({status})");
                }
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let log = match log.trim() {
                    "" => "(empty)".to_owned(),
                    text => text.to_owned(),
                };
                return Err(LabError::ListenerNotReady {
                    node: *node,
                    reason,
                    log,
                });
            }
        }
        Ok(())
    }

    /// The lab id, the prefix of its namespace names (`cl4242x1`).
    pub fn id(&self) -> &str {
        &self.topology.id
    }

    /// The namespace of `node`.
    pub fn ns(&self, node: Node) -> &str {
        &self.topology.node(node).ns
    }

    /// The node's IPv4 address as the lab reaches it: a host's address, a box's address
    /// on the uplink, an Internet host's address. None for the router and the switch.
    pub fn v4(&self, node: Node) -> Option<Ipv4Addr> {
        self.topology.node(node).v4
    }

    pub fn v6(&self, node: Node) -> Option<Ipv6Addr> {
        self.topology.node(node).v6
    }

    /// The MAC address of `ifname` in the node's namespace.
    pub fn mac(&self, node: Node, ifname: &str) -> Result<[u8; 6], ProbeError> {
        probe::mac(self.ns(node), ifname)
    }

    /// The plan the lab was built from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How long `up` took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    pub fn listener_pids(&self) -> Vec<u32> {
        self.listeners.iter().map(|(_, c)| c.id()).collect()
    }

    /// `program` to be run inside the node's namespace (through `ip netns exec`, which
    /// also gives it the namespace's view of /sys).
    pub fn command(&self, node: Node, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.ns(node)]).arg(program);
        cmd
    }

    /// Runs `args` inside the node's namespace; its stdout, or an error with its stderr.
    pub fn run(&self, node: Node, args: &[&str]) -> Result<String, LabError> {
        let command = args.join(" ");
        let (program, rest) = args.split_first().ok_or_else(|| LabError::RunSpawn {
            node,
            command: command.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "empty command"),
        })?;
        let output = self
            .command(node, program)
            .args(rest)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::RunSpawn {
                node,
                command: command.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(LabError::Run {
                node,
                command,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits until no IPv6 address in the node's namespace is tentative; false after
    /// `timeout`. Call it after bringing the router's interfaces up: while its link-local
    /// address is tentative (DAD, and a moment after link up even without DAD), a router
    /// sends no neighbour solicitations for the packets it forwards, so the first IPv6
    /// packets wait for a 1 s retransmission, or are lost.
    pub fn settle(&self, node: Node, timeout: Duration) -> Result<bool, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            let tentative = self.run(node, &["ip", "-6", "addr", "show", "tentative"])?;
            if tentative.trim().is_empty() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What /run/cloison-lab records of this lab.
    pub fn record(&self) -> LabRecord {
        LabRecord {
            id: self.topology.id.clone(),
            creator_pid: std::process::id(),
            creator_start: registry::start_time(std::process::id()).unwrap_or(0),
            kept: !self.armed,
            namespaces: self
                .topology
                .nodes
                .iter()
                .map(|n| (n.node.role().to_owned(), n.ns.clone()))
                .collect(),
            listeners: self.listener_pids(),
            session: Some(registry::Session::current()),
            creator_pid_ns: registry::pid_namespace(),
        }
    }

    /// Leaves the lab up after this process ends (its listeners keep running); only
    /// `cloison-lab down` (or `down_mine`) from the same login session removes it. Returns
    /// its record.
    pub fn keep(mut self) -> Result<LabRecord, LabError> {
        self.armed = false;
        let record = self.record();
        registry::write_record(&record).map_err(LabError::Record)?;
        registry::live().remove(&self.topology.id);
        // Dropping a Child neither kills nor waits for it.
        self.listeners.clear();
        Ok(record)
    }

    /// Removes the lab now, reporting what could not be removed (dropping does the same
    /// but can only print it).
    pub fn down(mut self) -> Result<(), LabError> {
        self.teardown().map_err(LabError::Remove)
    }

    fn teardown(&mut self) -> Result<(), RegistryError> {
        if !self.armed {
            return Ok(());
        }
        self.armed = false;
        // Held throughout, so a signal arriving now waits for this teardown to finish.
        let mut live = registry::live();
        for (_, child) in &mut self.listeners {
            let _ = child.kill();
            let _ = child.wait();
        }
        let names: Vec<&str> = self.topology.namespaces().collect();
        let result = registry::remove_lab(&self.topology.id, &names);
        live.remove(&self.topology.id);
        result
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            // Printed rather than logged: a test or `cloison-lab` may have no subscriber,
            // and a namespace left behind must not go unnoticed.
            eprintln!("cloison-lab: {e}: {}", error_chain(&e));
        }
    }
}

/// A process id as nix takes it (Linux pids are at most 2^22).
pub fn pid(id: u32) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(i32::try_from(id).expect("Linux pids fit an i32"))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.join(": ")
}

/// Reads the listener's stdout until its `ready` line.
fn wait_ready(mut stdout: std::process::ChildStdout, deadline: Instant) -> Result<(), String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out waiting for `ready`".to_owned());
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("cannot wait for `ready`: {e}")),
        }
        match stdout.read(&mut buf) {
            Ok(0) => return Err("it exited".to_owned()),
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read its stdout: {e}")),
        }
    }
    if line.starts_with(serve::READY.as_bytes()) {
        Ok(())
    } else {
        Err(format!(
            "it said {:?} instead of `ready`",
            String::from_utf8_lossy(&line)
        ))
    }
}

/// Removes the labs left up with `Lab::keep`, and those whose creator died, that were made
/// from this process's login session (what `cloison-lab down` removes); another person's
/// labs and labs of running processes are left alone. Returns the ids removed.
pub fn down_mine() -> Result<Vec<String>, LabError> {
    let me = registry::Session::current();
    let (removed, mut errors) = registry::remove_where(|id, owner| {
        owner != registry::Owner::Alive
            && registry::read_record(id)
                .and_then(|r| r.session)
                .is_some_and(|s| s.same(&me))
    });
    match errors.pop() {
        None => Ok(removed),
        Some(e) => Err(LabError::Remove(e)),
    }
}

/// Removes the labs whose creator died (what `Lab::up` does first). Returns the ids
/// removed.
pub fn sweep_orphans() -> Result<Vec<String>, LabError> {
    let (removed, mut errors) = registry::sweep_orphans();
    match errors.pop() {
        None => Ok(removed),
        Some(e) => Err(LabError::Remove(e)),
    }
}

/// The namespaces on the machine whose names are a lab's (`cl<pid>x<n>-<role>`).
pub fn lab_namespaces() -> Vec<String> {
    netns::list()
        .into_iter()
        .filter(|n| registry::parse_ns_name(n).is_some())
        .collect()
}
