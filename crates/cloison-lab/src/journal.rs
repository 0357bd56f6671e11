//! A private systemd-journald for the lab and the tests. It runs in a mount namespace of
//! its own, with tmpfs on `/run/systemd` and `/run/log`, so processes entered into that
//! namespace (`nsenter --mount=...`) log to it through the fixed socket path, the host's
//! journal (if there is one) is never touched, and nothing stays mounted on the host:
//! mount propagation is private, and the namespace disappears with its last process.
//! Needs root (and util-linux's `unshare` and `nsenter`).
//!
//! Keep the `PrivateJournal` in the thread that started it: journald is killed when that
//! thread ends (so a killed test run leaves no journald behind).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};

/// journald's binary on Debian.
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// How long journald may take to create its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where, inside the namespace, the lab keeps what it adds (on the /run/systemd tmpfs).
const LAB_DIR: &str = "/run/systemd/cloison-lab";

/// journald settings for the lab: volatile storage; no kernel log, syslog, wall or console;
/// no rate limit (the tests check cloison's own bound, not journald's).
const JOURNALD_CONF: &str = "[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\n\
ForwardToWall=no\nForwardToConsole=no\nRateLimitIntervalSec=0\n";

/// Runs as root inside the new mount namespace, then becomes journald.
const START_SCRIPT: &str = r#"set -e
mount -t tmpfs -o mode=0755,size=64m cloison-journal /run/systemd
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d
printf '%s' "$1" > /run/systemd/journald.conf.d/cloison-lab.conf
mount -t tmpfs -o mode=0755,size=64m cloison-log /run/log
exec "$2"
"#;

/// Adds a catalog file to the namespace's view of the system catalog and rebuilds the
/// database, all on tmpfs inside the namespace.
const CATALOG_SCRIPT: &str = r#"set -e
src=/run/systemd/cloison-lab/catalog
db=/run/systemd/cloison-lab/catalog-db
mkdir -p "$src" "$db"
if ! mountpoint -q /usr/lib/systemd/catalog; then
  cp /usr/lib/systemd/catalog/*.catalog "$src"/ 2>/dev/null || true
  mount --bind "$src" /usr/lib/systemd/catalog
fi
if ! mountpoint -q /var/lib/systemd/catalog; then
  mkdir -p /var/lib/systemd/catalog 2>/dev/null || mount -t tmpfs cloison-catalog /var/lib/systemd
  mkdir -p /var/lib/systemd/catalog
  mount --bind "$db" /var/lib/systemd/catalog
fi
cp "$1" /usr/lib/systemd/catalog/
journalctl --update-catalog
"#;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot start {JOURNALD} in a private mount namespace (needs root, unshare)")]
    Spawn(#[source] std::io::Error),
    #[error("systemd-journald did not create its socket within {timeout:?}: {stderr}")]
    NotReady { timeout: Duration, stderr: String },
    #[error("cannot run {what}")]
    Run {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {stderr}")]
    Failed {
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("journalctl printed a line that is not JSON: {line}")]
    Json {
        line: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A systemd-journald of its own, in a private mount namespace. `Drop` kills it.
#[derive(Debug)]
pub struct PrivateJournal {
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl PrivateJournal {
    /// Starts journald in a new mount namespace and waits for its socket.
    pub fn start() -> Result<PrivateJournal, JournalError> {
        let log = std::env::temp_dir().join(format!(
            "cloison-journald-{}-{}.log",
            std::process::id(),
            unique()
        ));
        let stderr = fs::File::create(&log).map_err(JournalError::Spawn)?;
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(START_SCRIPT)
            .args(["sh", JOURNALD_CONF, JOURNALD])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(JournalError::Spawn)?;
        let pid = child.id();
        let mut journal = PrivateJournal { child, pid, log };
        journal.wait_ready()?;
        Ok(journal)
    }

    fn wait_ready(&mut self) -> Result<(), JournalError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let socket = self.root().join("run/systemd/journal/socket");
        loop {
            // The socket must be journald's own, not one the host might have.
            let comm = fs::read_to_string(format!("/proc/{}/comm", self.pid)).unwrap_or_default();
            if comm.trim() == "systemd-journal" && socket.exists() {
                return Ok(());
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                return Err(JournalError::NotReady {
                    timeout: START_TIMEOUT,
                    stderr: fs::read_to_string(&self.log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// journald's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The namespace, for `nsenter --mount=<this>` (add `--net=/run/netns/X` to run a
    /// process of a lab namespace that logs here).
    pub fn mount_ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/mnt", self.pid))
    }

    /// The namespace's root, as seen from the host.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The journal files, readable from the host with `journalctl --directory`.
    pub fn journal_dir(&self) -> PathBuf {
        self.root().join("run/log/journal")
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount={}", self.mount_ns_path().display()))
            .arg("--")
            .arg(program);
        c
    }

    fn run(&self, what: &str, mut cmd: Command) -> Result<Output, JournalError> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|source| JournalError::Run {
                what: what.to_owned(),
                source,
            })?;
        if !out.status.success() {
            return Err(JournalError::Failed {
                what: what.to_owned(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(out)
    }

    /// Waits until journald has written out everything it received (`journalctl --sync`).
    pub fn sync(&self) -> Result<(), JournalError> {
        let mut c = self.command("journalctl");
        c.arg("--sync");
        self.run("journalctl --sync", c).map(|_| ())
    }

    /// The entries matching `args` (`journalctl -o json ARGS`, read from the host with
    /// `--directory`), after a sync.
    pub fn entries<S: AsRef<OsStr>>(
        &self,
        args: &[S],
    ) -> Result<Vec<serde_json::Value>, JournalError> {
        self.sync()?;
        let mut c = Command::new("journalctl");
        c.arg(format!("--directory={}", self.journal_dir().display()))
            .args(["--no-pager", "-o", "json"])
            .args(args);
        let out = self.run("journalctl -o json", c)?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|source| JournalError::Json {
                    line: line.to_owned(),
                    source,
                })
            })
            .collect()
    }

    /// `journalctl ARGS` as text, run inside the namespace so an installed catalog
    /// applies (`-x`).
    pub fn text<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String, JournalError> {
        self.text_in(args, None)
    }

    /// Like `text`, in a locale such as `fr_FR.UTF-8`. A locale the system lacks is
    /// compiled with `localedef` into the namespace's tmpfs (needs the locale sources of
    /// glibc, `/usr/share/i18n`).
    pub fn text_in<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        locale: Option<&str>,
    ) -> Result<String, JournalError> {
        self.sync()?;
        let mut c = self.command("journalctl");
        c.arg("--no-pager")
            .args(args)
            .env("SYSTEMD_COLORS", "0")
            .env_remove("LANGUAGE")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES");
        if let Some(loc) = locale {
            let locpath = self.compile_locale(loc)?;
            c.env("LANG", loc).env("LOCPATH", locpath);
        }
        let out = self.run("journalctl", c)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Compiles `locale` (e.g. `fr_FR.UTF-8`) into the namespace; returns its LOCPATH.
    fn compile_locale(&self, locale: &str) -> Result<String, JournalError> {
        let dir = format!("{LAB_DIR}/locale");
        let target = format!("{dir}/{locale}");
        if self.root().join(target.trim_start_matches('/')).exists() {
            return Ok(dir);
        }
        let (lang, charmap) = locale.split_once('.').unwrap_or((locale, "UTF-8"));
        let mut c = self.command("sh");
        c.args([
            "-c",
            r#"mkdir -p "$1" && localedef -i "$2" -f "$3" "$4""#,
            "sh",
            &dir,
            lang,
            charmap,
            &target,
        ]);
        self.run("localedef", c)?;
        Ok(dir)
    }

    /// Installs a journald message catalog file so `journalctl -x` (through `text`) shows
    /// it. Everything happens on tmpfs inside the namespace.
    pub fn install_catalog(&self, catalog: &Path) -> Result<(), JournalError> {
        let path = catalog.canonicalize().map_err(|source| JournalError::Run {
            what: format!("catalog {}", catalog.display()),
            source,
        })?;
        let mut c = self.command("sh");
        c.args(["-c", CATALOG_SCRIPT, "sh"]).arg(path);
        self.run("journalctl --update-catalog", c).map(|_| ())
    }
}

impl Drop for PrivateJournal {
    fn drop(&mut self) {
        let _ = kill(crate::pid(self.pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = fs::remove_file(&self.log);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
