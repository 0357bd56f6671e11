//! Namespaces of any shape, for tests whose topology is not the mairie's (the randomized
//! isolation oracle builds one per random configuration). The caller says what each
//! namespace holds (sysctls, `ip -batch` lines in waves, listeners); this module creates
//! them under the lab's registry, so `Drop`, Ctrl-C/SIGTERM and the next run's orphan
//! sweep remove them exactly as they remove a `Lab`.
//!
//! It must never touch the machine's own network namespace: every line runs inside a
//! namespace it created.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{self, NetnsError};
use crate::registry::{self, LabRecord, RegistryError};

/// One namespace of a testbed.
#[derive(Debug, Clone, Default)]
pub struct BedNode {
    /// The role part of the namespace name (`<id>-<role>`): `[a-z0-9-]`, short.
    pub role: String,
    /// Written (path under /proc/sys, value) before any interface exists.
    pub sysctls: Vec<(&'static str, &'static str)>,
    /// `ip -batch` lines run inside the namespace (`lo` is brought up first); `{ROLE}`
    /// stands for the namespace name of the node with that role (`netns {r}`).
    pub script: Vec<String>,
    /// Scripts of wave n run after every script of wave n-1 (links before routes over
    /// them); 1 or more.
    pub wave: u8,
    /// `cloison-lab serve` listeners started inside once the scripts have run.
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("cannot record the testbed or watch for Ctrl-C")]
    Registry(#[source] RegistryError),
    #[error("cannot create the testbed's namespaces")]
    Namespaces(#[source] NetnsError),
    #[error("cannot set the sysctls of {role}")]
    Sysctls {
        role: String,
        #[source]
        source: NetnsError,
    },
    #[error("cannot build the testbed's links, addresses and routes")]
    Links(#[source] NetnsError),
    #[error("cannot start the listener of {role} ({bin})")]
    ListenerSpawn {
        role: String,
        bin: String,
        #[source]
        source: io::Error,
    },
    #[error("the listener of {role} did not start: {reason}")]
    ListenerNotReady { role: String, reason: String },
    #[error("no namespace with role {0} in this testbed")]
    NoRole(String),
}

/// Built namespaces; dropping removes them with every process inside.
#[derive(Debug)]
pub struct Testbed {
    id: String,
    /// (role, namespace name)
    names: Vec<(String, String)>,
    listeners: Vec<Child>,
    armed: bool,
}

impl Testbed {
    /// Builds the namespaces, runs their scripts wave by wave, starts the listeners
    /// (`lab_bin serve`); on error removes whatever was built.
    pub fn up(
        nodes: &[BedNode],
        lab_bin: &Path,
        ready_timeout: Duration,
    ) -> Result<Testbed, TestbedError> {
        registry::install_signal_handler().map_err(TestbedError::Registry)?;
        let _ = registry::sweep_orphans();
        let id = registry::next_id();
        let names: Vec<(String, String)> = nodes
            .iter()
            .map(|n| (n.role.clone(), format!("{id}-{}", n.role)))
            .collect();
        // Registered before anything exists: from here on, Drop and the signal handler
        // remove whatever part of it was built.
        registry::live().insert(id.clone(), names.iter().map(|(_, n)| n.clone()).collect());
        let mut bed = Testbed {
            id,
            names,
            listeners: Vec::new(),
            armed: true,
        };
        registry::write_record(&bed.record()).map_err(TestbedError::Registry)?;
        let names = bed.names.clone();
        let ns: Vec<&str> = bed.names.iter().map(|(_, n)| n.as_str()).collect();
        netns::add_all(&ns).map_err(TestbedError::Namespaces)?;
        for (node, (_, name)) in nodes.iter().zip(&bed.names) {
            netns::write_sysctls(name, &node.sysctls).map_err(|source| TestbedError::Sysctls {
                role: node.role.clone(),
                source,
            })?;
        }
        let scripts: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                let mut s = vec!["link set lo up".to_owned()];
                s.extend(n.script.iter().map(|line| {
                    names.iter().fold(line.clone(), |l, (role, name)| {
                        l.replace(&format!("{{{role}}}"), name)
                    })
                }));
                s
            })
            .collect();
        let max_wave = nodes.iter().map(|n| n.wave).max().unwrap_or(1);
        for wave in 1..=max_wave {
            netns::run_scripts(
                nodes
                    .iter()
                    .zip(&bed.names)
                    .zip(&scripts)
                    .filter(|((n, _), _)| n.wave.max(1) == wave)
                    .map(|((_, (_, name)), s)| (name.as_str(), s.as_slice())),
            )
            .map_err(TestbedError::Links)?;
        }
        bed.start_listeners(nodes, lab_bin, ready_timeout)?;
        registry::write_record(&bed.record()).map_err(TestbedError::Registry)?;
        Ok(bed)
    }

    fn start_listeners(
        &mut self,
        nodes: &[BedNode],
        lab_bin: &Path,
        ready_timeout: Duration,
    ) -> Result<(), TestbedError> {
        let mut started = Vec::new();
        for (node, (role, name)) in nodes.iter().zip(&self.names) {
            if node.tcp.is_empty() && node.udp.is_empty() {
                continue;
            }
            let spawn_err = |source| TestbedError::ListenerSpawn {
                role: role.clone(),
                bin: lab_bin.display().to_string(),
                source,
            };
            let ns_file = File::open(netns::path(name)).map_err(spawn_err)?;
            let mut cmd = Command::new(lab_bin);
            cmd.arg("serve");
            for (flag, ports) in [("--tcp", &node.tcp), ("--udp", &node.udp)] {
                if !ports.is_empty() {
                    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                    cmd.args([flag, &list.join(",")]);
                }
            }
            cmd.env("CLOISON_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
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
            let child = cmd.spawn().map_err(spawn_err)?;
            drop(ns_file);
            self.listeners.push(child);
            started.push(role.clone());
        }
        let deadline = Instant::now() + ready_timeout;
        for (child, role) in self.listeners.iter_mut().zip(started) {
            let outcome = match child.stdout.take() {
                Some(stdout) => crate::wait_ready(stdout, deadline),
                None => Err("no stdout".to_owned()),
            };
            if let Err(reason) = outcome {
                return Err(TestbedError::ListenerNotReady { role, reason });
            }
        }
        Ok(())
    }

    /// The testbed id, the prefix of its namespace names (`cl4242x1`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The namespace of the node with this role.
    pub fn ns(&self, role: &str) -> Result<&str, TestbedError> {
        self.names
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, n)| n.as_str())
            .ok_or_else(|| TestbedError::NoRole(role.to_owned()))
    }

    /// Every namespace name of the testbed.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|(_, n)| n.as_str())
    }

    fn record(&self) -> LabRecord {
        LabRecord {
            id: self.id.clone(),
            creator_pid: std::process::id(),
            creator_pid_ns: registry::pid_namespace(),
            creator_start: registry::start_time(std::process::id()).unwrap_or(0),
            kept: false,
            namespaces: self.names.iter().cloned().collect(),
            listeners: self.listeners.iter().map(Child::id).collect(),
            session: Some(registry::Session::current()),
        }
    }

    /// Removes the testbed now, reporting what could not be removed.
    pub fn down(mut self) -> Result<(), RegistryError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), RegistryError> {
        if !self.armed {
            return Ok(());
        }
        self.armed = false;
        // Held throughout, so a signal arriving now waits for this teardown to finish.
        let mut live = registry::live();
        for child in &mut self.listeners {
            let _ = child.kill();
            let _ = child.wait();
        }
        let names: Vec<&str> = self.names.iter().map(|(_, n)| n.as_str()).collect();
        let result = registry::remove_lab(&self.id, &names);
        live.remove(&self.id);
        result
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("cloison-lab: {e}: {}", crate::error_chain(&e));
        }
    }
}
