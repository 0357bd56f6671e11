//! A rig: the lab, a private journald, and `cloison run` started in the lab's router the
//! way systemd would (inside the journal's mount and UTS namespaces, with NOTIFY_SOCKET, state and
//! runtime directories of its own). Used by the integration tests and `cloison-lab`.
//!
//! Everything a rig adds to the lab is removed with it, whichever way the lab goes (drop,
//! Ctrl-C, `cloison-lab down`, the sweep of labs whose creator died): the daemon runs in
//! the router's namespace, so removing the namespaces kills it; the rig's directory is
//! inside the lab's own directory under /run/cloison-lab; journald dies with the thread
//! that started it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::journal::{JournalOptions, PrivateJournal};
use crate::registry::{self, LabRecord, RegistryError};
use crate::{Lab, LabError, LabOptions, Node, Programs, Reach, tcp_connect};
use cloison_core::config::Config;

pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// A lab, a private journal, a scratch directory with the configuration, state and
/// runtime directories, and (once started) the daemon. Dropping it stops the daemon
/// (SIGKILL: the rules stay, as with any crash), the journal, and removes the lab.
pub struct Rig {
    pub lab: Lab,
    pub journal: PrivateJournal,
    dir: PathBuf,
    programs: Programs,
    pub daemon: Option<Child>,
    notify: Option<UnixDatagram>,
}

#[derive(Debug, thiserror::Error)]
pub enum RigError {
    #[error("cannot build the lab")]
    Lab(#[from] LabError),
    #[error("cannot start a private journald")]
    Journal(#[from] super::journal::JournalError),
    #[error("cannot prepare {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start `cloison run` ({})", bin.display())]
    DaemonSpawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon sent no {what} ({why}); its log:\n{log}")]
    DaemonNotReady {
        what: String,
        /// `it exited`, or `within 30s`.
        why: String,
        log: String,
    },
    #[error("the daemon is not running")]
    NoDaemon,
    #[error("the daemon did not exit within {within:?} after SIGTERM")]
    DaemonStuck { within: Duration },
    #[error("cannot run `cloison {command}` in the router")]
    CloisonSpawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`cloison {command}` in the router answered something unexpected: {detail}")]
    Cloison { command: String, detail: String },
    #[error("cannot record the rig as kept")]
    Keep(#[source] RegistryError),
}

impl Rig {
    /// Builds the lab for `config` (read from `config_path`, which is copied into the
    /// rig's directory so it can be edited) and starts the journal; not the daemon.
    pub fn new(config: &Config, config_path: &Path, programs: &Programs) -> Result<Rig, RigError> {
        Rig::build(config, programs, JournalOptions::default(), |to| {
            std::fs::copy(config_path, to).map(drop)
        })
    }

    /// Like `new`, with the configuration's text (`config` parsed from it) written into
    /// the rig's directory: `cloison-lab` carries config/lab.toml in its binary.
    pub fn with_config_text(
        config: &Config,
        text: &str,
        programs: &Programs,
    ) -> Result<Rig, RigError> {
        Rig::build(config, programs, JournalOptions::default(), |to| {
            std::fs::write(to, text)
        })
    }

    /// Like `with_config_text`, with a journal made as `journal` says (a box of a fleet:
    /// its own hostname and ids; or sealed, persistent storage).
    pub fn with_journal(
        config: &Config,
        text: &str,
        programs: &Programs,
        journal: JournalOptions,
    ) -> Result<Rig, RigError> {
        Rig::build(config, programs, journal, |to| std::fs::write(to, text))
    }

    fn build(
        config: &Config,
        programs: &Programs,
        journal: JournalOptions,
        write_config: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<Rig, RigError> {
        let lab = Lab::up(&LabOptions::new(config, &programs.lab))?;
        let journal = PrivateJournal::start_with(journal)?;
        let dir = registry::log_dir(lab.id()).join("rig");
        let prepare = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            write_config(&dir.join("cloison.toml"))
        };
        prepare().map_err(|source| RigError::Dir {
            path: dir.clone(),
            source,
        })?;
        Ok(Rig {
            lab,
            journal,
            dir,
            programs: programs.clone(),
            daemon: None,
            notify: None,
        })
    }

    /// The programs it runs.
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// The rig's directory (configuration, state, runtime, daemon log), inside the lab's
    /// directory: /run/cloison-lab/<lab id>/rig.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("cloison.toml")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("write the rig's configuration");
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Starts `cloison run` as systemd would (notify socket, state and runtime dirs).
    /// Panics if it cannot be spawned (a rig is a test and demo fixture).
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// `start`, with more environment (e.g. `WATCHDOG_USEC`, as systemd sets it).
    pub fn start_with(&mut self, env: &[(&str, &str)]) {
        self.spawn_daemon(env)
            .unwrap_or_else(|e| panic!("start cloison run: {e:?}"));
    }

    /// Starts `cloison run` as systemd would, with more environment; an error instead of
    /// a panic. The daemon gets a process group of its own, as a service has: a
    /// terminal's Ctrl-C reaches `cloison-lab`, which stops it in order.
    pub fn spawn_daemon(&mut self, env: &[(&str, &str)]) -> Result<(), RigError> {
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| RigError::Dir { path, source }
        };
        let sock = self.dir.join(format!("notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let notify = UnixDatagram::bind(&sock).map_err(dir_err(&sock))?;
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(dir_err(&sock))?;
        let log_path = self.dir.join("daemon.log");
        let log = std::fs::File::create(&log_path).map_err(dir_err(&log_path))?;
        let child = Command::new("nsenter")
            .arg(format!(
                "--mount={}",
                self.journal.mount_ns_path().display()
            ))
            .arg(format!("--uts={}", self.journal.uts_ns_path().display()))
            .arg(format!("--net=/run/netns/{}", self.lab.ns(Node::Router)))
            .arg("--")
            .arg(&self.programs.cloison)
            .args([
                "run",
                "-c",
                self.config_path().to_str().expect("utf-8 path"),
            ])
            .env("NOTIFY_SOCKET", &sock)
            .env("CLOISON_STATE_DIR", self.state_dir())
            .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|source| RigError::DaemonSpawn {
                bin: self.programs.cloison.clone(),
                source,
            })?;
        self.daemon = Some(child);
        self.notify = Some(notify);
        Ok(())
    }

    /// The daemon's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Waits for a notify message containing `what` (e.g. "READY=1"); returns it.
    pub fn wait_notify(&self, what: &str, within: Duration) -> String {
        self.await_notify(what, within)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `wait_notify`, with an error instead of a panic; it also ends early, with an
    /// error, when the daemon exits.
    pub fn await_notify(&self, what: &str, within: Duration) -> Result<String, RigError> {
        let sock = self.notify.as_ref().ok_or(RigError::NoDaemon)?;
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        let mut why = format!("within {within:?}");
        while Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == what) {
                    return Ok(msg);
                }
            }
            if self.daemon_pid().is_none_or(|pid| !alive(pid)) {
                // What it sent before exiting is still queued.
                if let Some(msg) = self.try_notify(what) {
                    return Ok(msg);
                }
                why = "it exited".to_owned();
                break;
            }
        }
        Err(RigError::DaemonNotReady {
            what: what.to_owned(),
            why,
            log: self.log(),
        })
    }

    /// The daemon's process id, once started and until it was waited for.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Stops the daemon as `systemctl stop` does (SIGTERM) and waits for it; its exit
    /// code (None when killed by a signal).
    pub fn stop(&mut self, within: Duration) -> Result<Option<i32>, RigError> {
        let child = self.daemon.as_mut().ok_or(RigError::NoDaemon)?;
        let pid = crate::pid(child.id());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.daemon = None;
                return Ok(status.code());
            }
            if Instant::now() >= deadline {
                return Err(RigError::DaemonStuck { within });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Throws away the notify messages received so far.
    pub fn drain_notify(&self) {
        while self.try_notify("").is_some() {}
    }

    /// The next notify message if one is waiting and contains the line `what` (any
    /// message when `what` is empty); messages that do not match are consumed.
    pub fn try_notify(&self, what: &str) -> Option<String> {
        let sock = self.notify.as_ref().expect("started");
        let mut buf = [0u8; 4096];
        sock.set_nonblocking(true).ok()?;
        let got = loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if what.is_empty() || msg.lines().any(|l| l == what) {
                        break Some(msg);
                    }
                }
                Err(_) => break None,
            }
        };
        let _ = sock.set_nonblocking(false);
        got
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = crate::pid(self.daemon.as_ref().expect("started").id());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Waits for the daemon to exit; its status code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let child = self.daemon.as_mut().expect("started");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.daemon = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A cloison command in the router namespace, talking to this daemon.
    pub fn cloison(&self, args: &[&str]) -> Output {
        self.lab
            .command(Node::Router, &self.programs.cloison)
            .args(args)
            .args(["-c", self.config_path().to_str().expect("utf-8 path")])
            .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
            .env("CLOISON_STATE_DIR", self.state_dir())
            .output()
            .expect("run cloison")
    }

    /// `cloison` as the daemon runs, in the router with the private journal: what it
    /// journals (`cloison verify`'s alerts) is in `events`. Its own process group, so a
    /// test can kill it and whatever it started.
    pub fn cloison_journaled(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!(
            "--mount={}",
            self.journal.mount_ns_path().display()
        ))
        .arg(format!("--uts={}", self.journal.uts_ns_path().display()))
        .arg(format!("--net=/run/netns/{}", self.lab.ns(Node::Router)))
        .arg("--")
        .arg(&self.programs.cloison)
        .args(args)
        .args(["-c", self.config_path().to_str().expect("utf-8 path")])
        .env("CLOISON_STATE_DIR", self.state_dir())
        .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
        .stdin(Stdio::null())
        .process_group(0);
        c
    }

    pub fn nft(&self, args: &[&str]) -> Output {
        self.lab
            .command(Node::Router, "nft")
            .args(args)
            .output()
            .expect("run nft")
    }

    /// Every named counter of the live table (`kiosk/mairie` -> packets), through
    /// `cloison status --json` in the router.
    pub fn counters(&self) -> Result<BTreeMap<String, u64>, RigError> {
        let command = "status --json".to_owned();
        let out = self
            .lab
            .command(Node::Router, &self.programs.cloison)
            .args(["status", "--json", "-c"])
            .arg(self.config_path())
            .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RigError::CloisonSpawn {
                command: command.clone(),
                source,
            })?;
        let bad = |detail: String| RigError::Cloison {
            command: command.clone(),
            detail,
        };
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            bad(format!(
                "{e}; stderr: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        let counters = v["counters"]
            .as_object()
            .ok_or_else(|| bad("no `counters` object".to_owned()))?;
        Ok(counters
            .iter()
            .map(|(name, c)| (name.clone(), c["packets"].as_u64().unwrap_or(0)))
            .collect())
    }

    /// Marks the lab kept in its record, so that `cloison-lab down` finds it and no later
    /// `Lab::up` sweeps it away. Nothing is disarmed: the lab, journald and the daemon
    /// live as long as this rig, so a kept rig's process must keep running and drop it
    /// when asked (`cloison-lab --keep` leaves such a keeper behind).
    pub fn keep(&self) -> Result<LabRecord, RigError> {
        let record = LabRecord {
            kept: true,
            ..self.lab.record()
        };
        registry::write_record(&record).map_err(RigError::Keep)?;
        Ok(record)
    }

    /// Packets counted by `name` in the live table.
    pub fn counter(&self, name: &str) -> u64 {
        let out = self.cloison(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("status --json: {}", String::from_utf8_lossy(&out.stderr)));
        v["counters"][name]["packets"].as_u64().unwrap_or(0)
    }

    /// Journal entries of cloison with CLOISON_EVENT=`event`.
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.journal
            .entries(&["-t", "cloison", &format!("CLOISON_EVENT={event}")])
            .unwrap_or_else(|e| panic!("journal: {e}"))
    }

    /// Waits until at least one entry of `event` is in the journal.
    pub fn wait_event(&self, event: &str, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let e = self.events(event);
            if !e.is_empty() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no {event} entry within {within:?}; daemon log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn addr(&self, node: Node, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.lab.v4(node).unwrap()), port)
    }

    /// What the kiosk meets when it tries the mairie server's SMB port.
    pub fn kiosk_to_smb(&self) -> Reach {
        tcp_connect(
            self.lab.ns(Node::Kiosk),
            self.addr(Node::MairieSrv, 445),
            TIMEOUT,
        )
        .unwrap()
    }
}

/// Whether process `pid` runs; a zombie (exited, not yet waited for) counts as gone.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = &s[s.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
