//! The Debian package the package and Ansible tests install: `debian/build`'s
//! target/debian/cloison_<version>_<arch>.deb, rebuilt when anything that goes into it is
//! newer, and copied under the lock `debian/build` holds while it writes one, so tests
//! running at the same time never read a package half rewritten (or one a killed build
//! left truncated: such a file is older than nothing, but it fails `dpkg-deb --info`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What goes into the package, relative to the repository: a .deb older than any of it is
/// stale.
const INPUTS: [&str; 8] = [
    "crates/cloison/src",
    "crates/cloison-core/src",
    "crates/cloison/Cargo.toml",
    "systemd",
    "debian",
    "config",
    "docs",
    "README.md",
];

/// A fresh package, copied into `dir`; its path there. `root` is the repository. Builds
/// it with `debian/build` when it is missing, stale or unreadable.
pub fn fresh_copy(root: &Path, dir: &Path) -> Result<PathBuf, String> {
    let out_dir = root.join("target/debian");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("mkdir {}: {e}", out_dir.display()))?;
    let lock_path = out_dir.join(".build.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if locked != 0 {
        return Err(format!(
            "lock {}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let find = || {
        std::fs::read_dir(&out_dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
    };
    let usable = |deb: &Path| {
        let built = modified(deb);
        INPUTS.iter().all(|i| newest(&root.join(i)) <= built) && readable(deb)
    };
    let built = match find().filter(|p| usable(p)) {
        Some(p) => p,
        None => {
            // tests/run builds it first; on its own, or when stale, the test builds it
            // (cargo-deb is installed from crates.io if missing).
            let out = Command::new(root.join("debian/build"))
                .current_dir(root)
                .env("CLOISON_BUILD_LOCKED", "1")
                .output()
                .map_err(|e| format!("run debian/build: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "debian/build failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            find().ok_or("debian/build wrote no package")?
        }
    };
    let path = dir.join(built.file_name().ok_or("a package without a file name")?);
    std::fs::copy(&built, &path).map_err(|e| format!("copy {}: {e}", built.display()))?;
    Ok(path)
}

/// `dpkg-deb --info` reads it: not a file a killed build left half written.
fn readable(deb: &Path) -> bool {
    Command::new("dpkg-deb")
        .arg("--info")
        .arg(deb)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The latest modification under `p` (a file, or a directory's files).
fn newest(p: &Path) -> SystemTime {
    if !p.is_dir() {
        return modified(p);
    }
    std::fs::read_dir(p)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| newest(&e.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
