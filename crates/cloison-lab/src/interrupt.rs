//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during `cloison-lab`: the demo is asked to stop at
//! its next step, so it unwinds normally and the rig is dropped in order (daemon, then
//! journald, then the lab's namespaces and files). If it has not ended within
//! `GRACE`, or at a second signal, every lab of this process is removed on the spot and
//! the process exits, as the lab's own handler does (`registry`); journald then dies with
//! its parent (PDEATHSIG).
//!
//! This replaces the lab's handler for the whole process; it must not be used by tests,
//! which rely on the lab's.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::registry::{self, EXIT_INTERRUPTED, RegistryError};

/// How long the demo may take to stop by itself after a signal (a probe times out in
/// 1.5 s, the daemon stops in well under a second, journald in less).
pub const GRACE: Duration = Duration::from_secs(12);

static REQUESTED: AtomicBool = AtomicBool::new(false);
static PIPE: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Once = Once::new();

extern "C" fn on_signal(signal: libc::c_int) {
    registry::write_signal(&PIPE, signal);
}

/// Installs the handler, once per process. The lab's own handler is installed first, so
/// that a later `Lab::up` does not replace this one.
pub fn install() -> Result<(), RegistryError> {
    registry::install_signal_handler()?;
    let mut result = Ok(());
    INSTALL.call_once(|| {
        result = registry::install_self_pipe(&PIPE, on_signal, "cloison-lab-interrupt", watch);
    });
    result
}

/// Whether a signal asked the demo to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Sleeps up to `d`, waking early when a stop is requested; true if it was.
pub fn sleep(d: Duration) -> bool {
    let deadline = std::time::Instant::now() + d;
    while !requested() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    true
}

/// Blocks until a signal asks to stop (what a kept lab's keeper does).
pub fn wait() {
    while !sleep(Duration::from_secs(3600)) {}
}

fn read_byte(fd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let ms = timeout.map_or(PollTimeout::NONE, |t| {
        PollTimeout::from(u16::try_from(t.as_millis()).unwrap_or(u16::MAX))
    });
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(fd, &mut byte) {
            Ok(1) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}

fn watch(read: OwnedFd) {
    if !read_byte(&read, None) {
        return;
    }
    REQUESTED.store(true, Ordering::Relaxed);
    eprintln!(
        "\ncloison-lab: interrupted; stopping the daemon and journald and removing the lab \
         (a second Ctrl-C forces it)"
    );
    // A second signal, or the grace period running out: remove what the lab registry
    // knows of (namespaces, and every process inside them, the daemon included; the
    // lab's files) and exit. journald dies with this process.
    read_byte(&read, Some(GRACE));
    registry::remove_live_labs("");
    remove_journald_logs();
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}

/// journald's stderr logs of this process: `PrivateJournal` keeps them in the temp
/// directory as `cloison-journald-<pid>-<n>.log` and removes them on drop, which this
/// path skips.
fn remove_journald_logs() {
    let prefix = format!("cloison-journald-{}-", std::process::id());
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".log") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
