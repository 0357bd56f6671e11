//! A private systemd-journald for the lab and the tests. It runs in a mount namespace of
//! its own, with tmpfs on `/run/systemd` and `/run/log`, so processes entered into that
//! namespace (`nsenter --mount=...`) log to it through the fixed socket path, the host's
//! journal (if there is one) is never touched, and nothing stays mounted on the host:
//! mount propagation is private, and the namespace disappears with its last process.
//! Needs root (and util-linux's `unshare` and `nsenter`).
//!
//! Keep the `PrivateJournal` in the thread that started it: journald is killed when that
//! thread ends (so a killed test run leaves no journald behind).
//!
//! `JournalOptions` make it one box of a fleet: a UTS namespace with the box's hostname
//! (`_HOSTNAME`), a machine id and boot id of its own (bind-mounted inside the namespace
//! only: without them every box's entries carry the host's ids, and journals of several
//! boxes mixed on a collector fail `journalctl --verify`), and persistent storage with
//! Forward Secure Sealing (a host directory bound on /var/log/journal; the keys are made
//! with `journalctl --setup-keys` before journald starts).

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

/// journald settings for the lab: no kernel log, syslog, wall or console; no rate limit
/// (the tests check cloison's own bound, not journald's). The storage line comes first.
const JOURNALD_CONF: &str = "ReadKMsg=no\nForwardToSyslog=no\n\
ForwardToWall=no\nForwardToConsole=no\nRateLimitIntervalSec=0\n";

/// Runs as root inside the new mount and UTS namespaces, then becomes journald.
/// $1 journald.conf, $2 journald, $3 hostname or "", $4 machine id or "", $5 host
/// directory for /var/log/journal or "", $6 sealing interval or "".
/// - The boot id is bound over /proc/sys/kernel/random/boot_id, which journald reads.
/// - /var/log is a tmpfs first, so the bind needs nothing on the host (creating the
///   host's /var/log/journal would make the host's own journald persistent).
/// - `--setup-keys` writes /var/log/journal/<machine id>/fss whatever `--directory` says,
///   and needs that directory; the "flushed" flag makes journald write straight to
///   /var/log/journal (entries flushed later from /run would be older than the first
///   seal, which `--verify` in systemd 252 rejects).
const START_SCRIPT: &str = r#"set -e
mount -t tmpfs -o mode=0755,size=64m cloison-journal /run/systemd
mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/systemd/cloison-lab
printf '%s' "$1" > /run/systemd/journald.conf.d/cloison-lab.conf
mount -t tmpfs -o mode=0755,size=64m cloison-log /run/log
if [ -n "$3" ]; then hostname "$3"; fi
if [ -n "$4" ]; then
  printf '%s\n' "$4" > /run/systemd/cloison-lab/machine-id
  mount --bind /run/systemd/cloison-lab/machine-id /etc/machine-id
  cat /proc/sys/kernel/random/uuid > /run/systemd/cloison-lab/boot_id
  mount --bind /run/systemd/cloison-lab/boot_id /proc/sys/kernel/random/boot_id
fi
if [ -n "$5" ]; then
  mount -t tmpfs -o mode=0755,size=1m cloison-varlog /var/log
  mkdir /var/log/journal
  mount --bind "$5" /var/log/journal
fi
if [ -n "$6" ]; then
  mkdir -p "/var/log/journal/$(cat /etc/machine-id)"
  journalctl --setup-keys --interval="$6" > /run/systemd/cloison-lab/fss.key
  touch /run/systemd/journal/flushed
fi
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

/// What makes a private journal a box of its own (the default: the lab's one box, volatile
/// storage, the host's hostname and ids).
#[derive(Debug, Clone, Default)]
pub struct JournalOptions {
    /// The hostname inside the namespace (`_HOSTNAME` of every entry).
    pub hostname: Option<String>,
    /// A machine id (32 lowercase hex digits) of its own, and a fresh boot id.
    pub machine_id: Option<String>,
    /// Persistent storage: this host directory is /var/log/journal inside.
    pub persistent: Option<PathBuf>,
    /// Forward Secure Sealing, with this interval between seals (needs `persistent`).
    pub seal_every: Option<Duration>,
}

impl JournalOptions {
    /// A box of a fleet: its hostname, a random machine id and boot id.
    pub fn fleet_box(hostname: &str) -> JournalOptions {
        JournalOptions {
            hostname: Some(hostname.to_owned()),
            machine_id: Some(random_id()),
            ..JournalOptions::default()
        }
    }
}

/// 32 random lowercase hex digits (a machine id's shape), from the kernel.
pub fn random_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("/proc/sys/kernel/random/uuid")
        .trim()
        .replace('-', "")
}

/// A systemd-journald of its own, in a private mount namespace. `Drop` kills it.
#[derive(Debug)]
pub struct PrivateJournal {
    child: Child,
    pid: u32,
    log: PathBuf,
    options: JournalOptions,
}

impl PrivateJournal {
    /// Starts journald in a new mount namespace and waits for its socket.
    pub fn start() -> Result<PrivateJournal, JournalError> {
        PrivateJournal::start_with(JournalOptions::default())
    }

    /// Starts journald as `options` say (see `JournalOptions`) and waits for its socket.
    pub fn start_with(options: JournalOptions) -> Result<PrivateJournal, JournalError> {
        let log = std::env::temp_dir().join(format!(
            "cloison-journald-{}-{}.log",
            std::process::id(),
            unique()
        ));
        let stderr = fs::File::create(&log).map_err(JournalError::Spawn)?;
        let storage = if options.persistent.is_some() {
            "Storage=persistent\n"
        } else {
            "Storage=volatile\n"
        };
        let seal = if options.seal_every.is_some() {
            "Seal=yes\n"
        } else {
            ""
        };
        let conf = format!("[Journal]\n{storage}{seal}{JOURNALD_CONF}");
        let text = |o: Option<&OsStr>| o.map(OsStr::to_owned).unwrap_or_default();
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(START_SCRIPT)
        .args(["sh", &conf, JOURNALD])
        .arg(text(options.hostname.as_deref().map(OsStr::new)))
        .arg(text(options.machine_id.as_deref().map(OsStr::new)))
        .arg(text(options.persistent.as_deref().map(Path::as_os_str)))
        .arg(
            options
                .seal_every
                .map(|d| format!("{}s", d.as_secs().max(1)))
                .unwrap_or_default(),
        )
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
        let mut journal = PrivateJournal {
            child,
            pid,
            log,
            options,
        };
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

    /// The UTS namespace (the box's hostname), for `nsenter --uts=<this>`.
    pub fn uts_ns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/uts", self.pid))
    }

    /// The namespace's root, as seen from the host.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The journal files, readable from the host with `journalctl --directory`: the
    /// persistent directory when there is one (it outlives journald), else /run/log/journal
    /// inside the namespace.
    pub fn journal_dir(&self) -> PathBuf {
        match &self.options.persistent {
            Some(dir) => dir.clone(),
            None => self.root().join("run/log/journal"),
        }
    }

    /// The options it was started with.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// The verification key `journalctl --setup-keys` printed (sealed journals only).
    pub fn verification_key(&self) -> Option<String> {
        self.options.seal_every?;
        fs::read_to_string(self.root().join("run/systemd/cloison-lab/fss.key"))
            .ok()
            .map(|k| k.trim().to_owned())
    }

    /// A command that runs `program` inside the namespace (mount and UTS).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount={}", self.mount_ns_path().display()))
            .arg(format!("--uts={}", self.uts_ns_path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Stops journald (SIGTERM) and waits: every file is closed (state OFFLINE; a sealed
    /// journal gets its last tag). The namespace lives on while other processes are in it.
    pub fn stop(&mut self) {
        stop_child(&mut self.child, self.pid);
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

/// SIGTERM, up to 3 s, then SIGKILL; reaped either way.
fn stop_child(child: &mut Child, pid: u32) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(crate::pid(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for PrivateJournal {
    fn drop(&mut self) {
        stop_child(&mut self.child, self.pid);
        let _ = fs::remove_file(&self.log);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
