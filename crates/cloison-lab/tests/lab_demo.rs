//! `cloison-lab` as CI runs it: the binary, non-interactively. The whole story must pass,
//! twice in a row; `--keep` must leave a usable lab that `cloison-lab down` removes, from
//! the session that kept it or by its id, and never another person's;
//! `--scenario arp` plays that part alone; Ctrl-C (or SIGTERM) in the middle removes
//! everything. After each run nothing may be left: no namespace of its lab, no process
//! it started (daemon, journald, listeners, keeper), no mount of its private journal or
//! its namespaces, no file under /run/cloison-lab or in the temp directory.
//!
//! The runs are serialised, also across processes (nextest runs each test in its own):
//! each one floods the lab with 50,000 packets.

// Tests build frames and pids from small numbers; the product's cast lints would only
// add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{require_root, text};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Holds an exclusive lock on this test binary (which exists anyway: nothing is left).
fn one_at_a_time() -> nix::fcntl::Flock<std::fs::File> {
    let me = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
    nix::fcntl::Flock::lock(me, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("lock the test binary: {e}"))
}

const BIN: &str = env!("CARGO_BIN_EXE_cloison-lab");

/// `cloison-lab ARGS` in a session of its own (so that every process it starts can be
/// found by its session id, even once reparented).
fn lab(args: &[&str]) -> Command {
    // The story runs the `cloison` next to BIN: it must be this build's.
    common::programs();
    let mut c = Command::new(BIN);
    c.args(args).env_remove("NO_COLOR");
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab id the story names (`... network namespaces cl1234x1-* ...`).
fn lab_id(story: &str) -> String {
    let at = story
        .find("network namespaces cl")
        .unwrap_or_else(|| panic!("no lab id in:\n{story}"));
    story[at + "network namespaces ".len()..]
        .split("-*")
        .next()
        .unwrap()
        .to_owned()
}

/// The private journald's pid the story names (`... systemd-journald (pid 1234) ...`).
fn journald_pid(story: &str) -> u32 {
    journald_pid_if_told(story).unwrap_or_else(|| panic!("no journald pid in:\n{story}"))
}

fn journald_pid_if_told(story: &str) -> Option<u32> {
    let at = story.find("systemd-journald (pid ")?;
    story[at + "systemd-journald (pid ".len()..]
        .split(')')
        .next()?
        .parse()
        .ok()
}

/// Session id of a live process (None when gone or a zombie).
fn session(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    // After the command: state (3), ppid (4), pgrp (5), session (6).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(3)?.parse().ok()
}

fn processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Everything left of lab `id`, whose processes were in `sessions`, whose journald was
/// `journald`; waits up to 5 s for it to go (a killed journald dies a moment later).
fn leftovers(id: &str, sessions: &[u32], journald: Option<u32>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers_now(id, sessions, journald);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn leftovers_now(id: &str, sessions: &[u32], journald: Option<u32>) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("{id}-");
    for ns in std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = ns.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) {
            left.push(format!("namespace {name}"));
        }
    }
    for pid in processes() {
        if session(pid).is_some_and(|s| sessions.contains(&s)) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            left.push(format!("process {pid} ({cmd})"));
        }
    }
    if let Some(pid) = journald.filter(|p| session(*p).is_some()) {
        left.push(format!("journald {pid}"));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mounts.lines() {
        if line.contains(&format!("/run/netns/{prefix}"))
            || line.contains(&format!("/run/cloison-lab/{id}"))
            || line.contains("cloison-journal")
            || line.contains("cloison-log")
        {
            left.push(format!("mount {line}"));
        }
    }
    for path in [
        format!("/run/cloison-lab/{id}"),
        format!("/run/cloison-lab/{id}.json"),
    ] {
        if std::path::Path::new(&path).exists() {
            left.push(path);
        }
    }
    let tmp = std::env::temp_dir();
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = sessions
            .iter()
            .any(|s| name.starts_with(&format!("cloison-journald-{s}-")))
            || name == format!("cloison-rig-{id}");
        if ours {
            left.push(format!("{}/{name}", tmp.display()));
        }
    }
    left
}

/// Checks the verdict of a story that must pass.
fn assert_passed(out: &Output) {
    let story = stdout(out);
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(story.contains("\nPASSED in "), "{}", text(out));
    for bad in ["FAIL", "GOT THROUGH", "MISSING", "unexpected alert"] {
        assert!(!story.contains(bad), "`{bad}` in:\n{story}");
    }
    assert!(
        !story.contains('\x1b'),
        "no colours when stdout is not a terminal"
    );
    let verdict = story
        .split("== Verdict")
        .nth(1)
        .unwrap_or_else(|| panic!("no verdict in:\n{story}"));
    for line in verdict
        .lines()
        .filter(|l| l.starts_with("    ok") || l.starts_with("    FAIL"))
    {
        assert!(line.starts_with("    ok"), "{line}");
    }
}

fn run_whole_story() -> (Output, String) {
    let t = Instant::now();
    let child = lab(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session = child.id();
    let out = child.wait_with_output().unwrap();
    let story = stdout(&out);
    let id = lab_id(&story);
    eprintln!(
        "cloison lab: exit {:?} in {:?}",
        out.status.code(),
        t.elapsed()
    );
    assert_passed(&out);
    let every_attack = [
        "SMB and RDP scan of the mairie server",
        "ssh to the router",
        "forged mairie source address",
        "ARP reply claiming the router",
        "rogue DHCP offer",
        "rogue IPv6 router advertisement",
        "double-tagged frame (VLAN hopping)",
        "flood of 50,000 packets",
        "every dropped packet in the journal",
        "no false alarm",
    ];
    for title in every_attack {
        assert!(
            story
                .lines()
                .any(|l| l.starts_with("    ok") && l.contains(title)),
            "no passed verdict line for {title}:\n{story}"
        );
    }
    assert!(story.contains("3 of 3 flows worked"), "{story}");
    assert!(
        story.contains("seen from 10.30.0.2"),
        "kiosk masqueraded by the La Poste line:\n{story}"
    );
    assert!(
        story.contains("seen from 192.168.1.2"),
        "mairie masqueraded by the town's box:\n{story}"
    );
    let left = leftovers(&id, &[session], Some(journald_pid(&story)));
    assert!(left.is_empty(), "left behind by {id}: {left:#?}");
    (out, id)
}

#[test]
fn the_whole_story_passes_twice_and_leaves_nothing() {
    if !require_root("the_whole_story_passes_twice_and_leaves_nothing") {
        return;
    }
    let _one = one_at_a_time();
    let (_, first) = run_whole_story();
    let (second, id) = run_whole_story();
    assert_ne!(first, id);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        !err.contains("removed a lab whose creator is gone"),
        "the second run found a lab left by the first: {err}"
    );
}

#[test]
fn keep_leaves_a_usable_lab_that_down_removes() {
    if !require_root("keep_leaves_a_usable_lab_that_down_removes") {
        return;
    }
    let _one = one_at_a_time();
    let relay = lab(&["--keep", "--scenario", "normal,scan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let relay_pid = relay.id();
    // Returns although the keeper lives on: it holds neither pipe.
    let out = relay.wait_with_output().unwrap();
    let story = stdout(&out);
    assert_passed(&out);
    let id = lab_id(&story);
    let keeper: u32 = id
        .strip_prefix("cl")
        .and_then(|r| r.split('x').next())
        .unwrap()
        .parse()
        .unwrap();
    let journald = journald_pid(&story);
    for hint in [
        format!("ip netns exec {id}-kiosk"),
        "bash".to_owned(),
        "journalctl --directory=".to_owned(),
        "cloison-lab probe tcp 192.168.10.5:445".to_owned(),
        "cloison-lab down".to_owned(),
    ] {
        assert!(story.contains(&hint), "no `{hint}` in:\n{story}");
    }

    // Up and usable, as printed.
    assert!(session(journald).is_some(), "journald must stay up");
    let probe = |to: &str| {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{id}-kiosk"),
                BIN,
                "probe",
                "tcp",
                to,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(probe("192.168.10.5:445"), "timeout");
    assert_eq!(probe("203.0.113.10:443"), "open 10.30.0.2");
    let journal_dir = format!("/proc/{journald}/root/run/log/journal");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("journalctl")
            .args([
                &format!("--directory={journal_dir}"),
                "-t",
                "cloison",
                "-o",
                "cat",
            ])
            .output()
            .unwrap();
        let entries = String::from_utf8_lossy(&out.stdout);
        if entries.contains("tried mairie 192.168.10.5 tcp/445 (SMB)") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kept journal: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        leftovers_now(&id, &[keeper], None)
            .iter()
            .any(|l| l.contains("cloison run"))
    );

    // The story ran in a session of its own (as from another terminal): a plain `down`
    // from here leaves it, and says how to remove it.
    let down = Command::new(BIN).args(["down"]).output().unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        stdout(&down).contains(&format!("left lab {id}: made from another session"))
            && stdout(&down).contains(&format!("`cloison-lab down {id}` removes it")),
        "{}",
        text(&down)
    );
    assert_eq!(probe("192.168.10.5:445"), "timeout", "the lab is still up");
    let down = Command::new(BIN).args(["down", &id]).output().unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        stdout(&down).contains(&format!("removed lab {id}")),
        "{}",
        text(&down)
    );
    let left = leftovers(&id, &[relay_pid, keeper], Some(journald));
    assert!(
        left.is_empty(),
        "left behind by {id} after lab down: {left:#?}"
    );
    let again = Command::new(BIN).args(["down"]).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(stdout(&again).contains("no kept lab"), "{}", text(&again));
}

/// A lab as `cloison-lab down` finds one: a namespace and a record, kept by `keeper`.
struct FakeLab {
    id: String,
    ns: String,
}

impl FakeLab {
    fn new(creator: u32, n: u32, kept: bool, session: cloison_lab::Session) -> FakeLab {
        let id = format!("cl{creator}x{n}");
        let ns = format!("{id}-router");
        let out = Command::new("ip")
            .args(["netns", "add", &ns])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        // Removed on drop from here on, even if a step below fails.
        let lab = FakeLab { id, ns };
        let record = cloison_lab::LabRecord {
            id: lab.id.clone(),
            creator_pid: creator,
            creator_start: start_time(creator),
            kept,
            namespaces: [("router".to_owned(), lab.ns.clone())].into(),
            listeners: Vec::new(),
            session: Some(session),
            creator_pid_ns: None,
        };
        std::fs::create_dir_all(cloison_lab::STATE_DIR).unwrap();
        std::fs::write(
            format!("{}/{}.json", cloison_lab::STATE_DIR, lab.id),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
        lab
    }

    fn exists(&self) -> bool {
        std::path::Path::new("/run/netns").join(&self.ns).exists()
    }
}

impl Drop for FakeLab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = std::fs::remove_file(format!("{}/{}.json", cloison_lab::STATE_DIR, self.id));
    }
}

/// A process's start time (0 once it is gone).
fn start_time(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let after = &stat[stat.rfind(')').unwrap() + 1..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A child killed and reaped on drop, even when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn down_removes_this_sessions_labs_and_never_another_persons() {
    if !require_root("down_removes_this_sessions_labs_and_never_another_persons") {
        return;
    }
    // The `--keep` test's plain `down` runs in this same session: not meanwhile.
    let _one = one_at_a_time();
    // Another person's kept lab: its keeper runs in a session of its own (another
    // terminal, another login).
    let mut other_keeper = Reaped(
        Command::new("setsid")
            .args(["sleep", "300"])
            .spawn()
            .unwrap(),
    );
    let other_pid = other_keeper.0.id();
    let someone = cloison_lab::Session {
        audit: None,
        sid: other_pid,
        sid_start: Some(start_time(other_pid)),
        pid_ns: None,
        user: Some("someone-else".to_owned()),
    };
    let theirs = FakeLab::new(other_pid, 1, true, someone);
    // This session's kept lab, whose keeper is gone, and this session's lab in use (its
    // creator, this test, runs and did not keep it).
    let mine = cloison_lab::Session::current();
    let gone = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let my_kept = FakeLab::new(gone, 7, true, mine.clone());
    let in_use = FakeLab::new(std::process::id(), 977, false, mine);

    let out = Command::new(BIN).args(["down"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.contains(&format!("removed lab {}", my_kept.id)),
        "{said}"
    );
    assert!(!my_kept.exists(), "{said}");
    assert!(
        said.contains(&format!(
            "left lab {}: made from another session, by someone-else; `cloison-lab down {}` removes it",
            theirs.id, theirs.id
        )),
        "{said}"
    );
    assert!(theirs.exists(), "another person's lab was removed: {said}");
    assert!(
        other_keeper.0.try_wait().unwrap().is_none(),
        "another person's keeper was signalled"
    );
    assert!(in_use.exists() && !said.contains(&in_use.id), "{said}");

    // Named, a lab in use is refused; another's kept lab is removed, keeper first.
    let out = Command::new(BIN)
        .args(["down", &in_use.id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is in use"), "{}", text(&out));
    assert!(in_use.exists());
    let out = Command::new(BIN)
        .args(["down", &theirs.id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!(
            "removed lab {}: its keeper (pid {other_pid}) stopped",
            theirs.id
        )),
        "{}",
        text(&out)
    );
    assert!(!theirs.exists());
    let status = other_keeper.0.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    let out = Command::new(BIN)
        .args(["down", "cl999999999x1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("there is no lab cl999999999x1"),
        "{}",
        text(&out)
    );
}

#[test]
fn one_part_alone() {
    if !require_root("one_part_alone") {
        return;
    }
    let _one = one_at_a_time();
    let child = lab(&["--scenario", "arp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session = child.id();
    let out = child.wait_with_output().unwrap();
    assert_passed(&out);
    let story = stdout(&out);
    assert!(story.contains("\n  arp    kiosk -> ARP reply"), "{story}");
    assert!(story.contains("arp_spoof"), "{story}");
    for other in [
        "\n  normal ",
        "\n  scan ",
        "\n  router ",
        "\n  flood ",
        "Ordinary traffic",
    ] {
        assert!(!story.contains(other), "`{other}` played too:\n{story}");
    }
    let verdict = story.split("== Verdict").nth(1).unwrap();
    assert!(
        verdict.contains("ARP reply claiming the router"),
        "{verdict}"
    );
    assert!(
        !verdict.contains("flood") && !verdict.contains("scan"),
        "{verdict}"
    );
    let left = leftovers(&lab_id(&story), &[session], Some(journald_pid(&story)));
    assert!(left.is_empty(), "{left:#?}");
}

/// Starts the whole story, waits until `when` is printed and `then` has passed, sends
/// `signal` (to the process alone, or to its process group as a terminal's Ctrl-C does),
/// `times` times, and checks the exit.
fn interrupt(when: &str, then: Duration, signal: Signal, times: usize, whole_group: bool) {
    let mut child: Child = lab(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let collector = std::thread::spawn(move || {
        let mut all = String::new();
        for line in reader.lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("`{when}` never printed"));
        if line.contains(when) {
            break;
        }
    }
    std::thread::sleep(then);
    let target = if whole_group {
        -(pid as i32)
    } else {
        pid as i32
    };
    for _ in 0..times {
        kill(Pid::from_raw(target), signal).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("cloison lab did not stop within 30 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let story = collector.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    eprintln!("stopped {:?} after {signal}: {}", t.elapsed(), err.trim());
    assert_eq!(status.code(), Some(130), "{story}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    let forced = times > 1;
    assert!(
        err.contains(if forced {
            "removed lab"
        } else {
            "nothing left"
        }),
        "{err}"
    );
    let id = lab_id(&story);
    // journald is in the story's session too, whether or not it was named yet.
    let left = leftovers(&id, &[pid], journald_pid_if_told(&story));
    assert!(
        left.is_empty(),
        "left behind by {id} after {signal}: {left:#?}"
    );
}

#[test]
fn ctrl_c_in_the_middle_leaves_nothing() {
    if !require_root("ctrl_c_in_the_middle_leaves_nothing") {
        return;
    }
    let _one = one_at_a_time();
    // As a terminal sends it: to the whole process group (journald included), during the
    // scan's 1.5 s wait for an answer.
    interrupt(
        "time      event",
        Duration::from_millis(500),
        Signal::SIGINT,
        1,
        true,
    );
    // As `kill` sends it: to cloison lab alone, while the daemon starts.
    interrupt(
        "a private systemd-journald",
        Duration::ZERO,
        Signal::SIGTERM,
        1,
        false,
    );
    // Ctrl-C twice: the lab is removed at once, without waiting for the story's next step.
    interrupt(
        "  dhcp   kiosk ->",
        Duration::ZERO,
        Signal::SIGINT,
        2,
        false,
    );
}

#[test]
fn a_leak_in_the_switch_fails_the_story() {
    if !require_root("a_leak_in_the_switch_fails_the_story") {
        return;
    }
    let _one = one_at_a_time();
    let mut child = lab(&["--scenario", "scan,arp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session = child.id();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut story = String::new();
    let id = loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended early:\n{story}"
        );
        story.push_str(&line);
        if line.contains("== Attacks") {
            break lab_id(&story);
        }
    };
    // Someone patches the kiosk's switch ports into the mairie's while the scan runs.
    for cmd in [
        "link add leak0 type veth peer name leak1",
        "link set leak0 master br-kiosk up",
        "link set leak1 master br-mairie up",
    ] {
        let out = Command::new("ip")
            .args(["-n", &format!("{id}-switch")])
            .args(cmd.split(' '))
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {}", text(&out));
    }
    std::io::Read::read_to_string(&mut reader, &mut story).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the story must fail:\n{story}");
    assert!(story.contains("GOT THROUGH"), "{story}");
    assert!(story.contains("FAILED after"), "{story}");
    let verdict = story.split("== Verdict").nth(1).unwrap();
    assert!(
        verdict
            .lines()
            .any(|l| l.starts_with("    FAIL") && l.contains("ARP reply claiming the router")),
        "{verdict}"
    );
    let left = leftovers(&id, &[session], Some(journald_pid(&story)));
    assert!(left.is_empty(), "{left:#?}");
}

#[test]
fn a_daemon_that_cannot_start_fails_the_story_and_leaves_nothing() {
    if !require_root("a_daemon_that_cannot_start_fails_the_story_and_leaves_nothing") {
        return;
    }
    let _one = one_at_a_time();
    // An nft that always fails: `cloison run` refuses to start (fail-closed).
    let child = lab(&["--scenario", "arp"])
        .env("CLOISON_NFT", "/bin/false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let session = child.id();
    let out = child.wait_with_output().unwrap();
    let story = stdout(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(err.contains("no READY=1 (it exited)"), "{err}");
    assert!(
        err.contains("stopped on an error") && err.contains("nothing left"),
        "{err}"
    );
    assert!(!story.contains("PASSED"), "{story}");
    let left = leftovers(&lab_id(&story), &[session], Some(journald_pid(&story)));
    assert!(left.is_empty(), "{left:#?}");
}
