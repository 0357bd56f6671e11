//! Running `cloison run` the way systemd would, for the integration tests: in the lab's
//! router namespace, inside a private journald's mount namespace, with NOTIFY_SOCKET
//! pointing at a socket the test reads.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cloison::lab::journal::PrivateJournal;
use cloison::lab::{self as probe, Lab, LabOptions, Node, Reach};

pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// A lab, a private journal, a scratch directory with the configuration, state and
/// runtime directories, and (once started) the daemon.
pub struct Setup {
    pub lab: Lab,
    pub journal: PrivateJournal,
    pub dir: tempfile::TempDir,
    pub daemon: Option<Child>,
    pub notify: Option<UnixDatagram>,
}

impl Setup {
    pub fn new() -> Setup {
        let config = cloison::config::load("config/lab.toml".as_ref())
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let lab = Lab::up(&LabOptions::new(&config, env!("CARGO_BIN_EXE_cloison")))
            .unwrap_or_else(|e| panic!("lab: {e:#?}"));
        let journal = PrivateJournal::start().unwrap_or_else(|e| panic!("journal: {e}"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy("config/lab.toml", dir.path().join("cloison.toml")).unwrap();
        Setup {
            lab,
            journal,
            dir,
            daemon: None,
            notify: None,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("cloison.toml")
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Starts `cloison run` as systemd would (notify socket, state and runtime dirs).
    pub fn start(&mut self) {
        let sock = self
            .dir
            .path()
            .join(format!("notify-{}", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let notify = UnixDatagram::bind(&sock).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).unwrap();
        let child = Command::new("nsenter")
            .arg(format!(
                "--mount={}",
                self.journal.mount_ns_path().display()
            ))
            .arg(format!("--net=/run/netns/{}", self.lab.ns(Node::Router)))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_cloison"))
            .args(["run", "-c", self.config_path().to_str().unwrap()])
            .env("NOTIFY_SOCKET", &sock)
            .env("CLOISON_STATE_DIR", self.state_dir())
            .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cloison run");
        self.daemon = Some(child);
        self.notify = Some(notify);
    }

    /// The daemon's stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits for a notify message containing `what` (e.g. "READY=1"); returns it.
    pub fn wait_notify(&self, what: &str, within: Duration) -> String {
        let sock = self.notify.as_ref().expect("started");
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if msg.lines().any(|l| l == what) {
                    return msg;
                }
            }
        }
        panic!(
            "no {what} from the daemon within {within:?}; its log:\n{}",
            self.log()
        );
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = self.daemon.as_ref().expect("started").id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
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
            .command(Node::Router, env!("CARGO_BIN_EXE_cloison"))
            .args(args)
            .args(["-c", self.config_path().to_str().unwrap()])
            .env("CLOISON_RUNTIME_DIR", self.runtime_dir())
            .output()
            .expect("run cloison")
    }

    pub fn nft(&self, args: &[&str]) -> Output {
        self.lab
            .command(Node::Router, "nft")
            .args(args)
            .output()
            .expect("run nft")
    }

    /// Packets counted by `name` in the live table.
    pub fn counter(&self, name: &str) -> u64 {
        let out = self.cloison(&["status", "--json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", super::text(&out)));
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
        probe::tcp_connect(
            self.lab.ns(Node::Kiosk),
            self.addr(Node::MairieSrv, 445),
            TIMEOUT,
        )
        .unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The lab's configuration with `from` replaced by `to` (panics if `from` is absent).
pub fn lab_config_with(from: &str, to: &str) -> String {
    let src = std::fs::read_to_string("config/lab.toml").unwrap();
    assert!(src.contains(from), "config/lab.toml has no {from:?}");
    src.replacen(from, to, 1)
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
