//! Helpers shared by the integration tests: root detection and a throwaway network
//! namespace removed on drop (even when the test panics).

#![allow(dead_code)]

pub mod daemon;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository's root (configurations, docs and the systemd files live there).
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// config/lab.toml, the simulated mairie, as an absolute path.
pub const LAB_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/lab.toml");

/// A file of the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(ROOT).join(path)
}

/// The programs under test: `cloison` and `cloison-lab`, from this build, and not older
/// than their sources.
pub fn programs() -> cloison_lab::Programs {
    let p = cloison_lab::Programs::find().unwrap_or_else(|e| panic!("{e}"));
    p.check_fresh(std::path::Path::new(ROOT))
        .unwrap_or_else(|e| panic!("{e}"));
    p
}

/// Tests that need root print a visible SKIP and return when not root (CI runs as root).
pub fn require_root(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        true
    } else {
        eprintln!("SKIP {test}: needs root (network namespaces, nftables)");
        false
    }
}

/// A network namespace of its own, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "clt{}x{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ns = Netns { name };
        // A new namespace copies the machine's IPv4 settings; start from a fresh box's.
        let out = ns.run(&["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    /// Runs a command inside the namespace, with `input` on stdin.
    pub fn run(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }
}

impl Netns {
    /// A namespace holding veth interfaces named like the router side of `config/lab.toml`
    /// (no traffic: the peers stay in the same namespace, down).
    pub fn with_lab_interfaces(tag: &str) -> Netns {
        Netns::with_interfaces(
            tag,
            &["seg-mairie", "seg-kiosk", "seg-poste", "wan0", "wan1"],
        )
    }

    /// A namespace with a veth pair `NAME` / `p-NAME` for each name (the peer stays down).
    pub fn with_interfaces(tag: &str, names: &[&str]) -> Netns {
        let ns = Netns::new(tag);
        let batch: String = names
            .iter()
            .map(|i| format!("link add {i} type veth peer name p-{i}\n"))
            .collect();
        let out = ns.run(&["ip", "-batch", "-"], &batch);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ns
    }

    /// Runs the cloison binary inside the namespace, with extra environment.
    pub fn cloison(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(programs().cloison)
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run cloison")
    }

    /// `nft -j list table inet cloison` as raw bytes (empty when the table is missing).
    pub fn table_bytes(&self) -> Vec<u8> {
        self.run(&["nft", "-j", "list", "table", "inet", "cloison"], "")
            .stdout
    }

    pub fn sysctl(&self, key: &str) -> String {
        let out = self.run(&["cat", &format!("/proc/sys/{key}")], "");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Runs `f` on a new thread that has entered namespace `ns` (threads can switch network
/// namespace on their own; the test's other threads stay where they are).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
