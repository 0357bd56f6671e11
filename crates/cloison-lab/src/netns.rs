//! Named network namespaces (`/run/netns/NAME`, as `ip netns` makes them): creating them,
//! running `ip` scripts and writing sysctls inside them, running a closure in a thread
//! that entered one, and removing them with every process still inside.
//!
//! Nothing here changes the calling process's own namespace: work inside a namespace is
//! done by a fresh thread that enters it and ends, or by a child process.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot open network namespace {ns}: {source}")]
    Open {
        ns: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter network namespace {ns}: {source}")]
    Enter {
        ns: String,
        #[source]
        source: Errno,
    },
    #[error("cannot start a thread for network namespace {ns}: {source}")]
    Thread {
        ns: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },
    #[error("`{command}` failed: {stderr}\nthe script was:\n{script}")]
    Ip {
        command: String,
        stderr: String,
        script: String,
    },
    #[error("cannot set {key} = {value} in network namespace {ns}: {source}")]
    Sysctl {
        ns: String,
        key: &'static str,
        value: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot remove network namespace {ns}: {source}")]
    Remove {
        ns: String,
        #[source]
        source: io::Error,
    },
}

pub fn path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

/// Runs `f` in a fresh thread that first entered network namespace `ns`; the thread ends
/// with `f`. Sockets `f` creates stay in `ns` after it returns. A panic in `f` is resumed
/// in the caller.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = File::open(path(ns)).map_err(|source| NetnsError::Open {
        ns: ns.to_owned(),
        source,
    })?;
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name(format!("netns {ns}"))
            .spawn_scoped(scope, move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
                    ns: ns.to_owned(),
                    source,
                })?;
                drop(file);
                Ok(f())
            })
            .map_err(|source| NetnsError::Thread {
                ns: ns.to_owned(),
                source,
            })?;
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// An `ip` process started with a script on its stdin; `wait` collects the outcome.
pub struct IpRun {
    child: std::process::Child,
    command: String,
    script: String,
}

/// Starts `ip [-n NS] -batch -` with `lines`. `ns` None runs in the caller's namespace,
/// which is only used for `netns add` (it touches /run/netns, not the network).
pub fn start_ip(ns: Option<&str>, lines: &[String]) -> Result<IpRun, NetnsError> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["-n", ns]);
    }
    cmd.args(["-batch", "-"]);
    let command = match ns {
        Some(ns) => format!("ip -n {ns} -batch -"),
        None => "ip -batch -".to_owned(),
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetnsError::Spawn {
            command: command.clone(),
            source,
        })?;
    let mut script = String::new();
    for line in lines {
        script.push_str(line);
        script.push('\n');
    }
    // ip reads its whole stdin; a script is a few hundred bytes, far below a pipe's buffer.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(script.as_bytes()));
    if let Some(Err(source)) = written {
        let _ = child.kill();
        let _ = child.wait();
        return Err(NetnsError::Spawn { command, source });
    }
    Ok(IpRun {
        child,
        command,
        script,
    })
}

impl IpRun {
    pub fn wait(self) -> Result<(), NetnsError> {
        let output = self
            .child
            .wait_with_output()
            .map_err(|source| NetnsError::Spawn {
                command: self.command.clone(),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        // `ip -batch` names the failing line as `-:N`; number the script to match.
        let script = self
            .script
            .lines()
            .enumerate()
            .map(|(i, l)| format!("  {}: {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n");
        Err(NetnsError::Ip {
            command: self.command,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            script,
        })
    }
}

/// Runs the scripts concurrently (one `ip` process per namespace) and waits for all; the
/// first error is returned after every process has ended.
pub fn run_scripts<'a>(
    scripts: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Result<(), NetnsError> {
    let mut runs = Vec::new();
    let mut first_err = None;
    for (ns, lines) in scripts {
        match start_ip(Some(ns), lines) {
            Ok(run) => runs.push(run),
            Err(e) => {
                first_err.get_or_insert(e);
                break;
            }
        }
    }
    for run in runs {
        if let Err(e) = run.wait() {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Creates the namespaces with one `ip netns add` process.
pub fn add_all(names: &[&str]) -> Result<(), NetnsError> {
    let lines: Vec<String> = names.iter().map(|n| format!("netns add {n}")).collect();
    start_ip(None, &lines)?.wait()
}

/// Writes sysctls inside `ns` (through /proc/sys, which follows the writing thread's
/// network namespace).
pub fn write_sysctls(ns: &str, sysctls: &[(&'static str, &'static str)]) -> Result<(), NetnsError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    in_netns(ns, || {
        for (key, value) in sysctls {
            std::fs::write(Path::new("/proc/sys").join(key), value).map_err(|source| {
                NetnsError::Sysctl {
                    ns: ns.to_owned(),
                    key,
                    value,
                    source,
                }
            })?;
        }
        Ok(())
    })?
}

/// The identity of a namespace file: (device, inode) of the nsfs object it is bound to.
/// None when the namespace does not exist (or is no longer mounted).
fn identity(ns: &str) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path(ns)).ok()?;
    // An unmounted leftover is a plain empty file on /run's tmpfs, not an nsfs inode.
    let dir = std::fs::metadata(NETNS_DIR).ok()?;
    (meta.dev() != dir.dev()).then_some((meta.dev(), meta.ino()))
}

/// Processes (thread group leaders, other than this process) inside any of `namespaces`.
pub fn processes_in(namespaces: &[&str]) -> Vec<Pid> {
    let ids: HashSet<(u64, u64)> = namespaces.iter().filter_map(|n| identity(n)).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let me = std::process::id();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            // A zombie has no namespaces left; a process that vanished meanwhile neither.
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| ids.contains(&(m.dev(), m.ino())))
        })
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

/// Kills every process inside the namespaces, then removes them. Idempotent: a namespace
/// already gone is not an error. Every namespace is attempted; the errors are returned.
pub fn remove_all(namespaces: &[&str]) -> Vec<NetnsError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let inside = processes_in(namespaces);
        if inside.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in inside {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut errors = Vec::new();
    for ns in namespaces {
        let p = path(ns);
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (already unmounted); ENOENT: no such file.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => errors.push(NetnsError::Remove {
                ns: (*ns).to_owned(),
                source: e.into(),
            }),
        }
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => errors.push(NetnsError::Remove {
                ns: (*ns).to_owned(),
                source,
            }),
        }
    }
    errors
}

/// Names in /run/netns.
pub fn list() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}
