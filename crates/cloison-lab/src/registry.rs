//! Which labs exist, so none is left behind: the labs of this process (torn down on
//! Ctrl-C/SIGTERM), a state file per lab under /run/cloison-lab (for labs kept on purpose
//! and for `cloison-lab down`), and the sweep of labs whose creator died without
//! cleaning up (SIGKILL). Each record names the login session the lab was made from, so
//! that `cloison-lab down` removes the caller's labs and never another person's.
//!
//! A lab id is `cl<creator pid>x<n>`; its namespaces are `<id>-<role>`. The pid in the
//! name is what lets a later run decide that a lab is orphaned, in the creator's PID
//! namespace (recorded): a lab made in another one is judged by whether that namespace
//! still has processes, and only from the initial namespace, which sees them all.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::netns::{self, NetnsError};

/// Where lab records live; /run is emptied at boot, like the namespaces.
pub const STATE_DIR: &str = "/run/cloison-lab";

/// Exit status after tearing the labs down on a signal (128 + SIGINT, what a shell shows
/// for Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot write lab record {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot install the signal handler that removes labs on Ctrl-C: {source}")]
    Signal {
        #[source]
        source: nix::errno::Errno,
    },
    #[error("cannot remove lab {id}: {source}")]
    Remove {
        id: String,
        #[source]
        source: NetnsError,
    },
}

/// What is recorded of a lab in /run/cloison-lab/<id>.json.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabRecord {
    pub id: String,
    pub creator_pid: u32,
    /// The creator's start time (clock ticks after boot, /proc/PID/stat field 22), so a
    /// reused pid is not mistaken for the creator.
    pub creator_start: u64,
    /// Left up on purpose (`Lab::keep`): only `cloison-lab down` removes it.
    pub kept: bool,
    /// Role -> namespace name.
    pub namespaces: BTreeMap<String, String>,
    /// Listener processes (informational: removal kills whatever is inside the namespaces).
    pub listeners: Vec<u32>,
    /// The session the lab was made from (records written before sessions were recorded
    /// have none: they belong to no session, and only `cloison-lab down ID` removes them).
    #[serde(default)]
    pub session: Option<Session>,
    /// The creator's PID namespace (the inode of its /proc/self/ns/pid): its pid means
    /// something only there. None in records written before it was recorded.
    #[serde(default)]
    pub creator_pid_ns: Option<u64>,
}

/// A login session: who made a lab. Everyone here is root (the lab needs it), so the user
/// id tells nobody apart; the session the command was typed in does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The kernel's audit session (/proc/self/sessionid), set at login by pam_loginuid and
    /// kept across sudo and setsid: one per login. None where logins are not audited.
    pub audit: Option<u32>,
    /// Else the terminal's session: its id and its leader's start time, so a session id
    /// reused later is not the same session. Under sudo, the session sudo was typed in
    /// (sudo's `use_pty`, Debian's default, gives each command a session of its own).
    pub sid: u32,
    pub sid_start: Option<u64>,
    /// Else, when the session's leader is outside this process's PID namespace (the kernel
    /// then shows session 0: a container, a CI runner), that namespace (the inode of
    /// /proc/self/ns/pid): everything started in it is one session.
    #[serde(default)]
    pub pid_ns: Option<u64>,
    /// Who, to name in messages: SUDO_USER, else USER.
    pub user: Option<String>,
}

/// The session of the terminal this process was started from: its own, or, when it runs
/// under sudo, that of the outermost sudo of the nearest chain of sudo ancestors.
fn terminal_session() -> u32 {
    let own = nix::unistd::getsid(None).map_or(0, |p| p.as_raw().unsigned_abs());
    let mut chosen = own;
    let mut pid = std::process::id();
    let mut under_sudo = false;
    for _ in 0..64 {
        let Some((comm, ppid, sid)) = stat_fields(pid) else {
            break;
        };
        if comm == "sudo" {
            chosen = sid;
            under_sudo = true;
        } else if under_sudo {
            break;
        }
        if ppid <= 1 {
            break;
        }
        pid = ppid;
    }
    chosen
}

/// The initial PID namespace's inode (the kernel's PROC_PID_INIT_INO): a process there
/// sees every process of the machine.
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// This process's PID namespace, as the inode /proc/self/ns/pid links to.
pub fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// A process's command name, parent and session (/proc/PID/stat fields 2, 4 and 6).
fn stat_fields(pid: u32) -> Option<(String, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let ppid = rest.nth(1)?.parse().ok()?;
    let sid = rest.nth(1)?.parse().ok()?;
    Some((comm, ppid, sid))
}

/// Carries the caller's session to the keeper of `--keep`, which runs in a session of its
/// own.
pub const SESSION_ENV: &str = "CLOISON_LAB_SESSION";

impl Session {
    /// The session of this process, or the one `SESSION_ENV` carries.
    pub fn current() -> Session {
        if let Some(s) = std::env::var_os(SESSION_ENV)
            .and_then(|v| serde_json::from_slice(v.as_encoded_bytes()).ok())
        {
            return s;
        }
        let audit = std::fs::read_to_string("/proc/self/sessionid")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|id| *id != u32::MAX);
        let sid = terminal_session();
        Session {
            audit,
            sid,
            sid_start: start_time(sid),
            pid_ns: (sid == 0).then(pid_namespace).flatten(),
            user: std::env::var("SUDO_USER")
                .or_else(|_| std::env::var("USER"))
                .ok(),
        }
    }

    /// The same login session.
    pub fn same(&self, other: &Session) -> bool {
        match (self.audit, other.audit) {
            (Some(a), Some(b)) => a == b,
            _ if self.sid != 0 => self.sid == other.sid && self.sid_start == other.sid_start,
            _ => other.sid == 0 && self.pid_ns.is_some() && self.pid_ns == other.pid_ns,
        }
    }

    /// As `SESSION_ENV` carries it.
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl LabRecord {
    pub fn namespace_names(&self) -> Vec<&str> {
        self.namespaces.values().map(String::as_str).collect()
    }
}

/// The labs of this process, by id, with their namespaces.
static LIVE: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

pub fn live() -> MutexGuard<'static, BTreeMap<String, Vec<String>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A new lab id, unique in this process and, through the pid, on the machine.
pub fn next_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!("cl{}x{n}", std::process::id())
}

/// The lab id and the creator pid of a namespace name, if it is a lab's.
pub fn parse_ns_name(name: &str) -> Option<(&str, u32)> {
    let (id, role) = name.split_once('-')?;
    let rest = id.strip_prefix("cl")?;
    let (pid, n) = rest.split_once('x')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pid) || !all_digits(n) || role.is_empty() {
        return None;
    }
    Some((id, pid.parse().ok()?))
}

/// The start time of a process (clock ticks after boot), None if it does not exist.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields resume after the
    // last `)`. starttime is field 22, the 20th after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

pub fn record_path(id: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{id}.json"))
}

/// The lab's directory of listener logs.
pub fn log_dir(id: &str) -> PathBuf {
    Path::new(STATE_DIR).join(id)
}

pub fn write_record(record: &LabRecord) -> Result<(), RegistryError> {
    let path = record_path(&record.id);
    let write = || -> io::Result<()> {
        std::fs::create_dir_all(STATE_DIR)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(record)?)?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|source| RegistryError::Write { path, source })
}

pub fn read_record(id: &str) -> Option<LabRecord> {
    let bytes = std::fs::read(record_path(id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn remove_record(id: &str) {
    let _ = std::fs::remove_file(record_path(id));
    let _ = std::fs::remove_dir_all(log_dir(id));
}

/// Removes a lab's namespaces (killing what runs inside) and its record.
pub fn remove_lab(id: &str, namespaces: &[&str]) -> Result<(), RegistryError> {
    let mut errors = netns::remove_all(namespaces);
    remove_record(id);
    match errors.pop() {
        None => Ok(()),
        Some(source) => Err(RegistryError::Remove {
            id: id.to_owned(),
            source,
        }),
    }
}

/// Every lab on the machine: ids from namespace names and from records, with the
/// namespaces found for each.
pub fn all_labs() -> BTreeMap<String, BTreeSet<String>> {
    let mut labs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in netns::list() {
        if let Some((id, _)) = parse_ns_name(&name) {
            labs.entry(id.to_owned()).or_default().insert(name);
        }
    }
    if let Ok(dir) = std::fs::read_dir(STATE_DIR) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if parse_ns_name(&format!("{id}-x")).is_some() {
                labs.entry(id.to_owned()).or_default();
            }
        }
    }
    for (id, names) in labs.iter_mut() {
        if let Some(record) = read_record(id) {
            names.extend(record.namespaces.into_values());
        }
    }
    labs
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Its creator runs (this process's registered labs included).
    Alive,
    /// Left up on purpose.
    Kept,
    /// Its creator is gone.
    Orphaned,
}

pub fn owner(id: &str, live: &BTreeMap<String, Vec<String>>) -> Owner {
    let Some((_, pid)) = parse_ns_name(&format!("{id}-x")) else {
        return Owner::Alive;
    };
    let record = read_record(id);
    if record.as_ref().is_some_and(|r| r.kept) {
        return Owner::Kept;
    }
    let ours = pid_namespace();
    if let Some(theirs) = record.as_ref().and_then(|r| r.creator_pid_ns)
        && Some(theirs) != ours
    {
        // Made in another PID namespace (a CI runner, `unshare -p`): the pid in its name
        // is not one this process can look up. From the initial namespace, which sees
        // every process, it is orphaned once no process is left in that namespace; from
        // anywhere else, it cannot be judged and is left alone.
        return if ours == Some(INIT_PID_NS) && !pid_namespace_has_processes(theirs) {
            Owner::Orphaned
        } else {
            Owner::Alive
        };
    }
    if pid == std::process::id() {
        // Labs of this process register before creating anything.
        return if live.contains_key(id) {
            Owner::Alive
        } else {
            Owner::Orphaned
        };
    }
    match (start_time(pid), record) {
        (None, _) => Owner::Orphaned,
        (Some(now), Some(r)) if r.creator_start != now => Owner::Orphaned,
        _ => Owner::Alive,
    }
}

/// Whether some process of the machine runs in the PID namespace of inode `ns`.
fn pid_namespace_has_processes(ns: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .any(|e| std::fs::metadata(e.path().join("ns/pid")).is_ok_and(|m| m.ino() == ns))
}

/// Removes the labs whose creator is dead (not the kept ones). Returns the removed ids.
pub fn sweep_orphans() -> (Vec<String>, Vec<RegistryError>) {
    remove_where(|_, o| o == Owner::Orphaned)
}

/// Removes the labs `pick` chooses by id and owner.
pub fn remove_where(pick: impl Fn(&str, Owner) -> bool) -> (Vec<String>, Vec<RegistryError>) {
    let live = live();
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    for (id, names) in all_labs() {
        if !pick(&id, owner(&id, &live)) {
            continue;
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match remove_lab(&id, &names) {
            Ok(()) => removed.push(id),
            Err(e) => errors.push(e),
        }
    }
    (removed, errors)
}

/// Write end of the self-pipe the signal handler writes to (-1 until installed).
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Once = Once::new();

extern "C" fn on_signal(signal: libc::c_int) {
    write_signal(&SIGNAL_PIPE, signal);
}

/// The body of a signal handler that hands the signal to a thread: writes its number to
/// the self-pipe `pipe`. Async-signal-safe: one write(2), errno preserved.
pub(super) fn write_signal(pipe: &AtomicI32, signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; write has no other effect.
    unsafe {
        let errno = *libc::__errno_location();
        // Signal numbers are below 65: the low byte is the number.
        let byte = signal.to_le_bytes()[0];
        libc::write(
            pipe.load(Ordering::Relaxed),
            std::ptr::from_ref(&byte).cast(),
            1,
        );
        *libc::__errno_location() = errno;
    }
}

/// Routes SIGINT, SIGTERM and SIGHUP to `watch`, run on a thread named `thread` with the
/// read end of a new self-pipe; `handler` (which calls `write_signal(pipe, ..)`) writes to
/// its write end, stored in `pipe`. Replaces earlier handlers of those signals.
pub(super) fn install_self_pipe(
    pipe: &'static AtomicI32,
    handler: extern "C" fn(libc::c_int),
    thread: &str,
    watch: fn(OwnedFd),
) -> Result<(), RegistryError> {
    let err = |source| RegistryError::Signal { source };
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || watch(read))
        .map_err(|e| err(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    pipe.store(write.as_raw_fd(), Ordering::Relaxed);
    // The write end lives as long as the process.
    std::mem::forget(write);
    let action = SigAction::new(
        SigHandler::Handler(handler),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only calls write(2).
        unsafe { sigaction(signal, &action) }.map_err(err)?;
    }
    Ok(())
}

/// Removes every lab of this process on the spot (namespaces, every process in them, the
/// lab's files), saying so on stderr after `note`. The registry stays locked until the
/// process exits, which callers do next: a lab dropped meanwhile waits.
pub(super) fn remove_live_labs(note: &str) {
    let live = live();
    for (id, names) in live.iter() {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        match remove_lab(id, &names) {
            Ok(()) => eprintln!("cloison-lab: {note}removed lab {id}"),
            Err(e) => eprintln!("cloison-lab: {note}{e}"),
        }
    }
    // Never unlocked: the process is about to exit.
    std::mem::forget(live);
}

/// Installs, once per process, the handler that removes this process's labs on SIGINT,
/// SIGTERM or SIGHUP and exits with status 130. It replaces earlier handlers of those
/// signals.
pub fn install_signal_handler() -> Result<(), RegistryError> {
    let mut result = Ok(());
    INSTALL.call_once(|| {
        result = install_self_pipe(&SIGNAL_PIPE, on_signal, "cloison-lab-signals", watch);
    });
    result
}

fn watch(read: OwnedFd) {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&read, &mut byte) {
            Ok(1) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
    remove_live_labs("interrupted; ");
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_carry_the_creator() {
        assert_eq!(
            parse_ns_name("cl4242x1-mairie-srv"),
            Some(("cl4242x1", 4242))
        );
        assert_eq!(parse_ns_name("cl4242x12-router"), Some(("cl4242x12", 4242)));
        assert_eq!(parse_ns_name("cl4242-router"), None);
        assert_eq!(parse_ns_name("clax1-router"), None);
        assert_eq!(parse_ns_name("cl1x1-"), None);
        assert_eq!(parse_ns_name("netavark-1"), None);
        let id = next_id();
        assert!(
            parse_ns_name(&format!("{id}-router"))
                .is_some_and(|(i, p)| i == id && p == std::process::id())
        );
    }

    #[test]
    fn sessions_tell_logins_apart() {
        let me = Session::current();
        assert!(me.same(&me.clone()));
        let terminal = |sid, start| Session {
            audit: None,
            sid,
            sid_start: start,
            pid_ns: None,
            user: None,
        };
        assert!(terminal(10, Some(5)).same(&terminal(10, Some(5))));
        assert!(
            !terminal(10, Some(5)).same(&terminal(10, Some(6))),
            "a reused id"
        );
        assert!(!terminal(10, Some(5)).same(&terminal(11, Some(5))));
        assert!(
            !terminal(0, None).same(&terminal(0, None)),
            "no session is nobody's"
        );
        let contained = |ns| Session {
            pid_ns: Some(ns),
            ..terminal(0, None)
        };
        assert!(
            contained(7).same(&contained(7)),
            "one PID namespace whose session leader is outside it"
        );
        assert!(!contained(7).same(&contained(8)));
        assert!(!contained(7).same(&terminal(10, Some(5))));
        let login = |audit, sid| Session {
            audit: Some(audit),
            ..terminal(sid, Some(1))
        };
        assert!(
            login(3, 10).same(&login(3, 99)),
            "two terminals of one login"
        );
        assert!(!login(3, 10).same(&login(4, 10)));
        let carried: Session = serde_json::from_str(&me.to_env()).unwrap();
        assert_eq!(carried, me);
    }

    #[test]
    fn reads_its_own_stat() {
        let (comm, ppid, sid) = stat_fields(std::process::id()).unwrap();
        assert!(!comm.is_empty());
        assert_eq!(ppid, std::os::unix::process::parent_id());
        assert_eq!(
            i32::try_from(sid).unwrap(),
            nix::unistd::getsid(None).unwrap().as_raw()
        );
    }

    #[test]
    fn a_pid_namespace_is_alive_while_a_process_runs_in_it() {
        let ours = pid_namespace().expect("/proc/self/ns/pid");
        assert!(pid_namespace_has_processes(ours));
        // No namespace has inode 1 (the procfs root's).
        assert!(!pid_namespace_has_processes(1));
    }

    #[test]
    fn start_time_of_self_is_stable() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(u32::MAX), None);
    }
}
