//! `cloison-lab --keep` and `cloison-lab down`.
//!
//! A kept lab needs a process that stays: the private journald lives exactly as long as
//! the thread that started it (`PrivateJournal` starts it with PDEATHSIG, so that a
//! killed test never leaves one behind). So `--keep` tells the story in a child process,
//! the keeper, in a session of its own, while this process relays Ctrl-C to it and exits
//! with the story's status as soon as the keeper holds the lab. The keeper then closes
//! its output and waits until `cloison-lab down` sends it SIGTERM; it then stops the
//! daemon and journald and removes the lab, as a run without `--keep` does at its end.
//!
//! Several people run labs on one machine, all as root: `cloison-lab down` removes the
//! labs made from the caller's login session (the keeper carries the session of the
//! command that asked for it), or the one lab whose id it is given, and never a lab whose
//! creator still runs.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};

use crate::demo::{DemoError, shell_lines, teardown};
use crate::narrate::{Style, section};
use crate::registry::{self, LabRecord, Owner, SESSION_ENV, STATE_DIR, Session};
use crate::rig::Rig;
use crate::{Node, interrupt};

/// The keeper's descriptor for telling the relay the story's status.
const HANDOFF_FD: i32 = 3;
/// How long `cloison-lab down` waits for a keeper to remove its lab.
const KEEPER_TIMEOUT: Duration = Duration::from_secs(20);

/// The keeper's end of the pipe to the relay.
pub struct Handoff(OwnedFd);

impl Handoff {
    /// Takes the descriptor `--handoff-fd` names, so that nothing the keeper starts
    /// inherits it.
    pub fn adopt(fd: i32) -> Handoff {
        // SAFETY: the relay opened this descriptor for this process alone, and nothing
        // else here owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Handoff(owned)
    }

    fn send(self, code: u8) {
        let mut f = File::from(self.0);
        let _ = f.write_all(&[code]);
    }
}

static KEEPER: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: libc::c_int) {
    let pid = KEEPER.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// Starts the keeper (this command again, with `--handoff-fd`), forwards Ctrl-C,
/// SIGTERM and SIGHUP to it, and returns the story's status once it holds the lab, or
/// its exit status if it ended without keeping it.
pub fn relay() -> io::Result<u8> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(std::env::args_os().skip(1))
        .arg(format!("--handoff-fd={HANDOFF_FD}"))
        .env(SESSION_ENV, Session::current().to_env())
        .stdin(Stdio::null());
    let w = write.as_raw_fd();
    // SAFETY: between fork and exec the child only calls setsid, dup2 and fcntl, which
    // are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: the terminal's signals and hang-up never reach it.
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            let rc = if w == HANDOFF_FD {
                libc::fcntl(w, libc::F_SETFD, 0)
            } else {
                libc::dup2(w, HANDOFF_FD)
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut keeper = cmd.spawn()?;
    drop(write);
    KEEPER.store(crate::pid(keeper.id()).as_raw(), Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only calls kill(2).
        unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    }
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&read, &mut byte) {
            Ok(1) => return Ok(byte[0]),
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // The keeper ended without keeping the lab: an error, or Ctrl-C.
    let status = keeper.wait()?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(sig)) => 128u8.saturating_add(u8::try_from(sig).unwrap_or(0)),
        (None, None) => 1,
    })
}

/// In the keeper, once the story is told: marks the lab kept, says how to use it, tells
/// the relay the story's status, then waits for `cloison-lab down` (SIGTERM) and removes
/// everything.
pub fn keep(rig: Rig, handoff: Handoff, code: u8, style: Style) -> Result<(), DemoError> {
    if let Err(e) = rig.keep() {
        let id = rig.lab.id().to_owned();
        let _ = teardown(rig, &id);
        return Err(e.into());
    }
    print_instructions(&rig, style);
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    handoff.send(code);
    detach();
    interrupt::wait();
    let id = rig.lab.id().to_owned();
    teardown(rig, &id).map(drop)
}

/// Points stdin, stdout and stderr at /dev/null: whoever ran `cloison-lab --keep` (a
/// terminal, a pipe) is not held open by the keeper.
fn detach() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

fn print_instructions(rig: &Rig, style: Style) {
    let lab = &rig.lab;
    let tool = rig.programs().lab.display();
    let bin = rig.programs().cloison.display();
    let kiosk = lab.ns(Node::Kiosk);
    let server = lab
        .v4(Node::MairieSrv)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let inet_b = lab
        .v4(Node::InetB)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let journal = rig.journal.journal_dir();
    println!(
        "{}",
        section(
            style,
            &format!(
                "The lab stays up (lab {}, kept by process {})",
                lab.id(),
                std::process::id()
            )
        )
    );
    println!("    a shell in a host:");
    for line in shell_lines(rig) {
        println!("        {line}");
    }
    println!("    watch the alerts as they come:");
    println!(
        "        journalctl --directory={} -t cloison -f",
        journal.display()
    );
    println!(
        "        nsenter --mount={} journalctl -t cloison -f    # the same, inside the journal's namespace",
        rig.journal.mount_ns_path().display()
    );
    println!("    try attacks by hand, from the kiosk:");
    println!(
        "        ip netns exec {kiosk} {tool} probe tcp {server}:445    # SMB: expect `timeout`"
    );
    println!(
        "        ip netns exec {kiosk} {tool} probe tcp {inet_b}:443    # the Internet: expect `open 10.30.0.2`"
    );
    println!(
        "    the daemon's view: ip netns exec {} env CLOISON_RUNTIME_DIR={} {bin} status -c {}",
        lab.ns(Node::Router),
        rig.runtime_dir().display(),
        rig.config_path().display()
    );
    println!(
        "    remove it all (namespaces, daemon, journald, files): {}   (from this terminal; from another: {tool} down {})",
        style.title(&format!("{tool} down")),
        lab.id()
    );
}

/// Why `cloison-lab down ID` removes nothing.
#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error("there is no lab {0} (`ip netns list` and /run/cloison-lab name none)")]
    NoSuchLab(String),
    #[error(
        "lab {id} is in use: the process that made it (pid {pid}) still runs and removes it when it ends; it was not kept"
    )]
    InUse { id: String, pid: u32 },
}

/// What `down` did: one line per lab removed, and one per lab of another session it left.
#[derive(Debug, Default)]
pub struct Down {
    pub removed: Vec<String>,
    pub left: Vec<String>,
}

/// Removes the labs made from the caller's session that are kept or whose creator died,
/// or, given `only`, that one lab whoever made it (unless its creator still runs without
/// having kept it: someone's test or story in progress). Each live keeper is asked to
/// remove its own lab (SIGTERM); what is left of the chosen labs is then removed.
pub fn down(only: Option<&str>) -> Result<Down, DemoError> {
    let me = Session::current();
    let labs = registry::all_labs();
    let owners: Vec<(String, Owner)> = {
        let live = registry::live();
        labs.keys()
            .map(|id| (id.clone(), registry::owner(id, &live)))
            .collect()
    };
    let mut done = Down::default();
    let mut targets: Vec<String> = Vec::new();
    match only {
        Some(id) => match owners.iter().find(|(i, _)| i == id) {
            None => return Err(DownError::NoSuchLab(id.to_owned()).into()),
            Some((_, Owner::Alive)) => {
                let pid = registry::parse_ns_name(&format!("{id}-x")).map_or(0, |(_, p)| p);
                return Err(DownError::InUse {
                    id: id.to_owned(),
                    pid,
                }
                .into());
            }
            Some(_) => targets.push(id.to_owned()),
        },
        None => {
            for (id, owner) in &owners {
                if *owner == Owner::Alive {
                    continue;
                }
                let session = registry::read_record(id).and_then(|r| r.session);
                if session.as_ref().is_some_and(|s| s.same(&me)) {
                    targets.push(id.clone());
                } else {
                    let by = session
                        .and_then(|s| s.user)
                        .map(|u| format!(", by {u}"))
                        .unwrap_or_default();
                    done.left.push(format!(
                        "left lab {id}: made from another session{by}; `cloison-lab down {id}` removes it"
                    ));
                }
            }
        }
    }

    let mut waiting = Vec::new();
    for record in records()
        .into_iter()
        .filter(|r| r.kept && targets.contains(&r.id))
    {
        if keeper_alive(&record) {
            let _ = kill(crate::pid(record.creator_pid), Signal::SIGTERM);
            waiting.push(record);
        }
    }
    let deadline = Instant::now() + KEEPER_TIMEOUT;
    for record in waiting {
        while keeper_alive(&record) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if keeper_alive(&record) {
            // Removing the namespaces below kills the daemon; journald dies with it.
            let _ = kill(crate::pid(record.creator_pid), Signal::SIGKILL);
            done.removed.push(format!(
                "lab {}: its keeper (pid {}) did not stop within {KEEPER_TIMEOUT:?}; killed it",
                record.id, record.creator_pid
            ));
        } else {
            done.removed.push(format!(
                "removed lab {}: its keeper (pid {}) stopped cloison run and journald and removed {} namespaces and {}",
                record.id,
                record.creator_pid,
                record.namespaces.len(),
                registry::log_dir(&record.id).display()
            ));
        }
    }
    let (removed, mut errors) = registry::remove_where(|id, owner| {
        owner != Owner::Alive && targets.iter().any(|t| t == id)
    });
    if let Some(e) = errors.pop() {
        return Err(DemoError::Remove(crate::LabError::Remove(e)));
    }
    for id in removed {
        done.removed
            .push(format!("removed lab {id} (namespaces, processes, files)"));
    }
    Ok(done)
}

/// Whether the process that kept the lab still runs (and is that process, not a reuse of
/// its pid).
fn keeper_alive(record: &LabRecord) -> bool {
    registry::start_time(record.creator_pid) == Some(record.creator_start)
        && super::rig::alive(record.creator_pid)
}

/// Every lab record under /run/cloison-lab.
fn records() -> Vec<LabRecord> {
    let Ok(dir) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let id = name.to_str()?.strip_suffix(".json")?.to_owned();
            registry::read_record(&id)
        })
        .collect()
}
