//! The Debian packages the fleet tests and benchmarks run (Prometheus, node_exporter,
//! systemd-journal-remote, ansible-core...), installed when missing: CI starts from a
//! fresh Debian 12 and runs as root. A test that cannot get them fails with a message
//! saying which package to install; it never passes without running.
//!
//! Installing never starts the packages' services on the machine (a test machine must
//! not get a Prometheus listening on its own network): while apt runs, a
//! `policy-rc.d` that refuses every start is in place, unless the machine already has one.

use std::path::Path;
use std::process::Command;

/// Where Debian's `invoke-rc.d` asks whether a service may start.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";
/// Held while installing.
const LOCK: &str = "/run/lock/cloison-lab-packages.lock";

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error(
        "missing {missing}: install the Debian package(s) {packages} (as root: apt-get install {packages}), or run the tests as root"
    )]
    NotRoot { missing: String, packages: String },
    #[error("cannot run apt-get")]
    Spawn(#[source] std::io::Error),
    #[error("apt-get install {packages} failed: {stderr}")]
    Install { packages: String, stderr: String },
    #[error("cannot manage {POLICY_RC_D}")]
    Policy(#[source] std::io::Error),
    #[error("{path} is still missing after installing {package}")]
    StillMissing { path: String, package: String },
}

/// Makes sure each `(path, package)` pair's file exists, installing the packages of the
/// missing ones in one apt-get run (as root).
pub fn ensure(needs: &[(&str, &str)]) -> Result<(), PackagesError> {
    let missing: Vec<&(&str, &str)> = needs
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<&str> = missing.iter().map(|(_, pkg)| *pkg).collect();
    packages.sort_unstable();
    packages.dedup();
    let list = packages.join(" ");
    if !nix::unistd::Uid::effective().is_root() {
        return Err(PackagesError::NotRoot {
            missing: missing
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", "),
            packages: list,
        });
    }
    // One installer at a time on the machine (tests run in parallel processes): the
    // second finds the packages there, and the policy file is never removed under it.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOCK)
        .map_err(PackagesError::Policy)?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| PackagesError::Policy(e.into()))?;
    if needs.iter().all(|(p, _)| Path::new(p).exists()) {
        return Ok(());
    }
    eprintln!("cloison-lab: installing {list} (missing: needed by the fleet tests)");
    let guard = NoServiceStarts::new()?;
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(PackagesError::Spawn)
    };
    let mut out = install()?;
    if !out.status.success() {
        // A fresh machine may have no package lists yet.
        let _ = Command::new("apt-get")
            .args(["update", "-o", "DPkg::Lock::Timeout=600"])
            .output();
        out = install()?;
    }
    drop(guard);
    if !out.status.success() {
        return Err(PackagesError::Install {
            packages: list,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    for (path, package) in missing {
        if !Path::new(path).exists() {
            return Err(PackagesError::StillMissing {
                path: (*path).to_owned(),
                package: (*package).to_owned(),
            });
        }
    }
    Ok(())
}

/// A `policy-rc.d` that refuses every service start, removed on drop; nothing when the
/// machine has its own (then that one decides).
struct NoServiceStarts {
    ours: bool,
}

impl NoServiceStarts {
    fn new() -> Result<NoServiceStarts, PackagesError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(POLICY_RC_D);
        match created {
            Ok(mut f) => {
                f.write_all(b"#!/bin/sh\n# cloison-lab: no service starts while it installs test packages\nexit 101\n")
                    .map_err(PackagesError::Policy)?;
                Ok(NoServiceStarts { ours: true })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(NoServiceStarts { ours: false })
            }
            Err(e) => Err(PackagesError::Policy(e)),
        }
    }
}

impl Drop for NoServiceStarts {
    fn drop(&mut self) {
        if self.ours {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}
