//! `cloison::kernel::nfnetlink` against the real kernel. Each test makes a network namespace of its own
//! (`nftw-<pid>-<n>`, deleted on drop, panics included), opens its sockets from a thread
//! that entered it (a socket stays in the namespace it was opened in, whatever thread
//! uses it later) and runs `nft` there with `ip netns exec`. The machine's own
//! namespace is never entered nor changed. Needs root; prints SKIP otherwise.
//!
//! Timings are printed (`cargo test -- --nocapture`); the 60 s CPU measurement is
//! ignored by default: `cargo test -p cloison-lab --test nfnetlink -- --ignored --nocapture`.

// Tests build netlink messages and read clocks from small numbers; the product's cast
// lints would only add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cloison::kernel::nfnetlink::{
    Change, ChangeKind, Client, Counts, Error, Event, Family, Transaction, Watcher,
};

fn root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIP {test}: needs root (network namespaces, nftables)");
    }
    root
}

/// A network namespace of its own, deleted on drop.
struct Netns {
    name: String,
}

/// An `nft` run: its pid, when it was started and when it had exited.
struct Run {
    pid: u32,
    started: Instant,
    exited: Instant,
    output: Output,
}

impl Netns {
    fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "nftw-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        let ns = Netns { name };
        let lo = ns.run(&["ip", "link", "set", "lo", "up"], "");
        assert!(lo.output.status.success(), "{:?}", lo.output);
        ns
    }

    /// Runs a command inside the namespace with `input` on stdin.
    fn run(&self, args: &[&str], input: &str) -> Run {
        run_in(&self.name, args, input)
    }

    /// `nft ARGS` in the namespace; panics if it fails.
    fn nft(&self, args: &[&str]) -> Run {
        let mut full = vec!["nft"];
        full.extend_from_slice(args);
        let run = self.run(&full, "");
        assert!(
            run.output.status.success(),
            "nft {args:?}: {:?}",
            run.output
        );
        run
    }

    /// `nft -f -` with `script`; panics if it fails.
    fn nft_script(&self, script: &str) -> Run {
        let run = self.run(&["nft", "-f", "-"], script);
        assert!(run.output.status.success(), "nft -f: {:?}", run.output);
        run
    }

    /// Runs `f` on a thread that entered the namespace, and returns what it returns.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            let handle = std::thread::Builder::new()
                .name(format!("in-{}", self.name))
                .spawn_scoped(s, move || {
                    enter_netns(&path);
                    f()
                })
                .expect("spawn thread");
            match handle.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs a command inside namespace `ns` with `input` on stdin.
fn run_in(ns: &str, args: &[&str], input: &str) -> Run {
    let started = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ip netns exec");
    // `ip netns exec` execs the command: the child's pid is the command's.
    let pid = child.id();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    Run {
        pid,
        started,
        exited: Instant::now(),
        output,
    }
}

/// Moves the calling thread (only it) into the namespace at `path`.
fn enter_netns(path: &str) {
    let file = std::fs::File::open(path).expect("open netns");
    // SAFETY: a valid namespace fd; CLONE_NEWNET affects the calling thread only.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A watcher with the events `wait` returned but the test has not looked at yet, each
/// with the instant `wait` returned it.
struct Watch {
    w: Watcher,
    queue: VecDeque<(Event, Instant)>,
}

impl Watch {
    fn new(w: Watcher) -> Watch {
        Watch {
            w,
            queue: VecDeque::new(),
        }
    }

    /// The next event within `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<(Event, Instant)> {
        let deadline = Instant::now() + timeout;
        while self.queue.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let events = self.w.wait(left).expect("watch");
            let at = Instant::now();
            self.queue.extend(events.into_iter().map(|e| (e, at)));
        }
        self.queue.pop_front()
    }

    /// The next transaction within `timeout`; an overflow fails the test.
    fn transaction(&mut self, timeout: Duration) -> Option<(Transaction, Instant)> {
        match self.next(timeout)? {
            (Event::Transaction(t), at) => Some((t, at)),
            (Event::Overflow, _) => panic!("unexpected overflow"),
        }
    }

    /// Whether nothing at all arrives within `d`.
    fn quiet(&mut self, d: Duration) -> bool {
        self.next(d).is_none()
    }
}

/// A table with `n` named counters `c00`.., plus `c1` preset to 5 packets / 300 bytes,
/// `big` beyond 32 bits, and `traffic` counting UDP packets sent to port 9999.
fn counters_table(n: usize) -> String {
    let mut s = String::from("table inet cloison {\n");
    for i in 0..n {
        s += &format!("  counter c{i:02} {{ }}\n");
    }
    s += "  counter c1 { packets 5 bytes 300 }\n";
    s += "  counter big { packets 4294967301 bytes 1099511627776 }\n";
    s += "  counter traffic { }\n";
    s += "  chain output { type filter hook output priority 0; policy accept;\n";
    s += "    udp dport 9999 counter name \"traffic\"\n  }\n}\n";
    s
}

#[test]
fn counters_are_exact_and_64_bit() {
    if !root("counters_are_exact_and_64_bit") {
        return;
    }
    let ns = Netns::new();
    let mut client = ns.enter(Client::open).expect("client");
    assert_eq!(client.counters(Family::Inet, "cloison").unwrap(), None);
    assert!(!client.table_exists(Family::Inet, "cloison").unwrap());

    ns.nft_script(&counters_table(28));
    assert!(client.table_exists(Family::Inet, "cloison").unwrap());
    assert!(
        !client.table_exists(Family::Ip, "cloison").unwrap(),
        "family matters"
    );

    // 10 UDP datagrams of 100 bytes: 128 bytes each at the IP layer.
    ns.enter(|| {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            s.send_to(&[0u8; 100], "127.0.0.1:9999").unwrap();
        }
    });

    let got = client.counters(Family::Inet, "cloison").unwrap().unwrap();
    let mut expected: BTreeMap<String, Counts> = (0..28)
        .map(|i| (format!("c{i:02}"), Counts::default()))
        .collect();
    let counts = |packets, bytes| Counts { packets, bytes };
    expected.insert("c1".into(), counts(5, 300));
    expected.insert("big".into(), counts(4_294_967_301, 1 << 40));
    expected.insert("traffic".into(), counts(10, 1280));
    assert_eq!(got, expected);
    assert_eq!(got.len(), 31);

    // `add counter` on a counter that exists changes nothing: no values, no generation.
    let before = client.generation().unwrap();
    ns.nft(&[
        "add",
        "counter",
        "inet",
        "cloison",
        "c1",
        "{ packets 9 bytes 900 }",
    ]);
    assert_eq!(client.generation().unwrap(), before);
    let again = client.counters(Family::Inet, "cloison").unwrap().unwrap();
    assert_eq!(again["c1"], counts(5, 300));

    // Another family's table of the same name is not mixed in.
    ns.nft_script("table ip cloison {\n counter c1 { packets 1 bytes 1 }\n}\n");
    let inet = client.counters(Family::Inet, "cloison").unwrap().unwrap();
    assert_eq!(inet["c1"], counts(5, 300));
    let ip = client.counters(Family::Ip, "cloison").unwrap().unwrap();
    assert_eq!(ip.len(), 1);

    // A table without counters is Some(empty); a deleted one None.
    ns.nft_script("table inet empty { }\n");
    assert_eq!(
        client.counters(Family::Inet, "empty").unwrap(),
        Some(BTreeMap::new())
    );
    ns.nft(&["delete", "table", "inet", "cloison"]);
    assert_eq!(client.counters(Family::Inet, "cloison").unwrap(), None);
}

#[test]
fn the_generation_moves_with_commits_only() {
    if !root("the_generation_moves_with_commits_only") {
        return;
    }
    let ns = Netns::new();
    let mut client = ns.enter(Client::open).expect("client");
    let g0 = client.generation().unwrap();
    ns.nft(&["list", "ruleset"]);
    assert_eq!(client.generation().unwrap(), g0, "reading commits nothing");
    ns.nft_script(&counters_table(2));
    let g1 = client.generation().unwrap();
    assert_eq!(g1, g0 + 1, "one batch, one generation");
    ns.nft(&["add", "table", "inet", "cloison"]);
    assert_eq!(client.generation().unwrap(), g1, "an empty transaction");
    ns.nft(&["reset", "counter", "inet", "cloison", "c1"]);
    assert_eq!(client.generation().unwrap(), g1, "resetting counters");
    ns.nft(&["insert", "rule", "inet", "cloison", "output", "counter"]);
    assert_eq!(client.generation().unwrap(), g1 + 1);
}

#[test]
fn the_watcher_reports_who_changed_what() {
    if !root("the_watcher_reports_who_changed_what") {
        return;
    }
    let ns = Netns::new();
    let mut w = Watch::new(ns.enter(Watcher::open).expect("watcher"));
    let wait = Duration::from_secs(5);

    // nft runs on another thread while this one blocks in `wait`, as a daemon would.
    let spawn = |args: &[&str], input: &str| {
        let (name, input) = (ns.name.clone(), input.to_owned());
        let mut full = vec!["nft".to_owned()];
        full.extend(args.iter().map(|a| a.to_string()));
        std::thread::spawn(move || {
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            let run = run_in(&name, &args, &input);
            assert!(run.output.status.success(), "{args:?}: {:?}", run.output);
            run
        })
    };
    let check = |w: &mut Watch, what: &str, run: std::thread::JoinHandle<Run>| {
        let (t, at) = w
            .transaction(wait)
            .unwrap_or_else(|| panic!("{what}: no event"));
        let run = run.join().unwrap();
        let after_start = at.duration_since(run.started);
        let vs_exit = if at >= run.exited {
            format!("{:?} after nft exited", at - run.exited)
        } else {
            format!("{:?} before nft exited", run.exited - at)
        };
        println!(
            "{what}: generation {} by pid {:?} comm {:?}, {} changes; event {after_start:?} \
             after spawning nft, {vs_exit}",
            t.generation,
            t.pid,
            t.comm,
            t.changes.len()
        );
        assert_eq!(t.pid, Some(run.pid), "{what}: the pid of the nft we ran");
        assert_eq!(t.comm.as_deref(), Some("nft"), "{what}");
        assert!(t.complete, "{what}");
        assert_eq!(w.w.pending(), 0, "{what}: NEWGEN comes last");
        t
    };

    let run = spawn(&["-f", "-"], &counters_table(3));
    let load = check(&mut w, "load", run);
    assert_eq!(
        load.changes.len(),
        1 + 1 + 3 + 3 + 1,
        "table, chain, objs, rule"
    );

    let run = spawn(
        &[
            "insert", "rule", "inet", "cloison", "output", "ip", "daddr", "10.9.9.9", "counter",
        ],
        "",
    );
    let t = check(&mut w, "insert", run);
    let rule = |kind| Change {
        kind,
        family: Family::Inet,
        table: "cloison".into(),
        name: Some("output".into()),
    };
    assert_eq!(t.changes, vec![rule(ChangeKind::NewRule)]);
    assert_eq!(t.generation, load.generation + 1);

    // Read-only: nothing at all.
    ns.nft(&["list", "ruleset"]);
    ns.nft(&["list", "counters"]);
    assert!(w.quiet(Duration::from_millis(300)), "reading is silent");

    let run = spawn(&["delete", "table", "inet", "cloison"], "");
    let t = check(&mut w, "delete table", run);
    let kinds: Vec<_> = t.changes.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(
        kinds,
        [
            vec![DelRule, DelRule],
            vec![DelObj; 6],
            vec![DelChain, DelTable]
        ]
        .concat()
    );
    assert!(t.changes.iter().all(|c| c.table == "cloison"));

    ns.nft_script(&counters_table(3));
    ns.nft_script("table ip nat {\n chain post { type nat hook postrouting priority 100; }\n}\n");
    ns.nft_script("table bridge br { }\n");
    for _ in 0..3 {
        w.transaction(wait).expect("reload");
    }
    let run = spawn(&["flush", "ruleset"], "");
    let t = check(&mut w, "flush ruleset", run);
    let mut tables: Vec<_> = t
        .changes
        .iter()
        .filter(|c| c.kind == DelTable)
        .map(|c| format!("{} {}", c.family, c.table))
        .collect();
    tables.sort();
    assert_eq!(tables, ["bridge br", "inet cloison", "ip nat"]);

    // Flushing an empty ruleset commits nothing.
    ns.nft(&["flush", "ruleset"]);
    assert!(w.quiet(Duration::from_millis(300)), "nothing to flush");
}

#[test]
fn our_own_commits_carry_our_thread_id_and_name_and_port() {
    if !root("our_own_commits_carry_our_thread_id_and_name_and_port") {
        return;
    }
    let ns = Netns::new();
    let mut w = Watch::new(ns.enter(Watcher::open).expect("watcher"));
    let path = format!("/run/netns/{}", ns.name);
    let rounds = 30;
    // The committer sends one batch every 20 ms; the watcher blocks in `wait` on this
    // thread, so the latency includes waking it up.
    let committer = std::thread::Builder::new()
        .name("nftw-committer".into())
        .spawn(move || {
            enter_netns(&path);
            let mut socket = netlink_sys::Socket::new(netlink_sys::constants::NETLINK_NETFILTER)
                .expect("socket");
            let addr = socket.bind_auto().expect("bind");
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() } as u32;
            let mut sent = Vec::new();
            for i in 0..rounds {
                std::thread::sleep(Duration::from_millis(20));
                let t0 = Instant::now();
                commit_new_table(&socket, &format!("own{i}"), 100 + 10 * i);
                sent.push(t0);
            }
            (addr.port_number(), tid, sent)
        })
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < rounds as usize {
        let (t, at) = w.transaction(Duration::from_secs(5)).expect("own commit");
        seen.push((t, at));
    }
    let (portid, tid, sent) = committer.join().unwrap();
    assert_ne!(
        tid,
        std::process::id(),
        "the committer is not the main thread"
    );
    let mut latencies = Vec::new();
    for ((t, at), t0) in seen.iter().zip(&sent) {
        // `task_pid_nr(current)`: the committing thread's id, not the process id.
        assert_eq!(t.pid, Some(tid), "the committing thread's tid");
        assert_eq!(
            t.comm.as_deref(),
            Some("nftw-committer"),
            "the thread's name"
        );
        assert_eq!(t.portid, portid, "our socket's port id");
        assert_eq!(t.changes.len(), 1);
        latencies.push(at.duration_since(*t0));
    }
    latencies.sort();
    println!(
        "own commit -> event (watcher blocked in poll on another thread), {rounds} commits: \
         min {:?}, median {:?}, max {:?}",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(latencies[latencies.len() / 2] < Duration::from_millis(50));
}

/// Commits a batch creating `table inet NAME` on `socket`, the way nft does, and waits
/// for its acknowledgement.
fn commit_new_table(socket: &netlink_sys::Socket, name: &str, seq: u32) {
    const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
    const NFNL_MSG_BATCH_END: u16 = 0x11;
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    fn msg(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&(flags | 1).to_ne_bytes()); // NLM_F_REQUEST
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&[family, 0]);
        out.extend_from_slice(&res_id.to_be_bytes());
    }
    fn end(out: &mut [u8], start: usize) {
        let len = (out.len() - start) as u32;
        out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }
    let mut b = Vec::new();
    msg(
        &mut b,
        NFNL_MSG_BATCH_BEGIN,
        0,
        seq,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    end(&mut b, 0);
    let start = b.len();
    // NEWTABLE, NLM_F_CREATE | NLM_F_ACK, family inet, NFTA_TABLE_NAME.
    msg(&mut b, NFNL_SUBSYS_NFTABLES << 8, 0x400 | 4, seq + 1, 1, 0);
    let attr_len = 4 + name.len() + 1;
    b.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    b.extend_from_slice(&1u16.to_ne_bytes());
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    b.resize((b.len() + 3) & !3, 0);
    end(&mut b, start);
    let start = b.len();
    msg(
        &mut b,
        NFNL_MSG_BATCH_END,
        0,
        seq + 2,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    end(&mut b, start);
    socket.send(&b, 0).expect("send batch");
    let mut buf = Vec::with_capacity(8192);
    socket.recv(&mut buf, 0).expect("ack");
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 2, "NLMSG_ERROR");
    assert_eq!(code, 0, "NEWTABLE {name} acknowledged");
}

#[test]
fn dumps_interrupted_by_commits_are_started_again() {
    if !root("dumps_interrupted_by_commits_are_started_again") {
        return;
    }
    let ns = Netns::new();
    // 3000 counters: a dump of about 240 KB, several datagrams, long enough to be cut.
    let mut script = String::from("table inet big {\n");
    for i in 0..3000u64 {
        script += &format!(" counter n{i} {{ packets {i} bytes {} }}\n", i << 33);
    }
    script += "}\n";
    ns.nft_script(&script);
    let mut client = ns.enter(Client::open).expect("client");

    let quiet = dump_while_committing(&ns, &mut client, None);
    println!("no commits: {quiet}");
    assert_eq!(
        (quiet.restarts, quiet.failed),
        (0, 0),
        "nothing interrupts a quiet dump"
    );
    let slow = dump_while_committing(&ns, &mut client, Some(Duration::from_millis(50)));
    println!("a commit every 50 ms: {slow}");
    assert!(slow.dumps > 0);
    let storm = dump_while_committing(&ns, &mut client, Some(Duration::from_millis(2)));
    println!("a commit every 2 ms: {storm}");
    assert!(
        slow.restarts + storm.restarts > 0,
        "commits during dumps interrupt them"
    );
}

struct Hammered {
    dumps: u32,
    failed: u32,
    restarts: u64,
    commits: u32,
    per_dump: Duration,
}

impl std::fmt::Display for Hammered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} complete dumps ({:?} each), {} commits, {} restarts, {} given up after 5 \
             interruptions in a row",
            self.dumps, self.per_dump, self.commits, self.restarts, self.failed
        )
    }
}

/// Dumps table `inet big` for 2 s while another thread commits a new table every
/// `period` (never with `None`); checks every complete dump.
fn dump_while_committing(ns: &Netns, client: &mut Client, period: Option<Duration>) -> Hammered {
    let path = format!("/run/netns/{}", ns.name);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    static BASE: AtomicU32 = AtomicU32::new(0);
    let committer = std::thread::spawn(move || {
        let Some(period) = period else { return 0 };
        enter_netns(&path);
        let mut socket =
            netlink_sys::Socket::new(netlink_sys::constants::NETLINK_NETFILTER).unwrap();
        socket.bind_auto().unwrap();
        let mut n = 0;
        while !stop2.load(Ordering::Relaxed) {
            let id = BASE.fetch_add(1, Ordering::Relaxed);
            commit_new_table(&socket, &format!("t{id}"), 10 * id);
            n += 1;
            std::thread::sleep(period);
        }
        n
    });
    let restarts0 = client.restarted_dumps();
    let (mut dumps, mut failed) = (0, 0);
    let t0 = Instant::now();
    let mut in_dumps = Duration::ZERO;
    while t0.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        match client.counters(Family::Inet, "big") {
            Ok(Some(c)) => {
                in_dumps += t.elapsed();
                assert_eq!(c.len(), 3000);
                assert_eq!(
                    c["n2999"],
                    Counts {
                        packets: 2999,
                        bytes: 2999 << 33
                    }
                );
                dumps += 1;
            }
            Err(Error::Interrupted { .. }) => failed += 1,
            other => panic!("{other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    Hammered {
        dumps,
        failed,
        restarts: client.restarted_dumps() - restarts0,
        commits: committer.join().unwrap(),
        per_dump: in_dumps / dumps.max(1),
    }
}

#[test]
fn namespaces_do_not_see_each_other() {
    if !root("namespaces_do_not_see_each_other") {
        return;
    }
    let (a, b) = (Netns::new(), Netns::new());
    let mut wa = Watch::new(a.enter(Watcher::open).expect("watcher"));
    let mut cb = b.enter(Client::open).expect("client");
    b.nft_script(&counters_table(1));
    assert!(
        wa.quiet(Duration::from_millis(300)),
        "b's change is not seen in a"
    );
    assert!(cb.table_exists(Family::Inet, "cloison").unwrap());
    let mut ca = a.enter(Client::open).expect("client");
    assert!(!ca.table_exists(Family::Inet, "cloison").unwrap());
    a.nft_script("table inet mine { }\n");
    let (t, _) = wa
        .transaction(Duration::from_secs(5))
        .expect("own namespace");
    assert_eq!(t.changes[0].table, "mine");
}

#[test]
fn an_overflow_is_reported_and_watching_goes_on() {
    if !root("an_overflow_is_reported_and_watching_goes_on") {
        return;
    }
    let ns = Netns::new();
    let w = ns
        .enter(|| Watcher::with_buffer(64 * 1024))
        .expect("watcher");
    println!("granted receive buffer: {} bytes", w.buffer().unwrap());
    let mut w = Watch::new(w);
    // One transaction of 3000 rules, not read while it is committed.
    let mut script = String::from("table inet flood {\n chain c {\n");
    for i in 0..3000 {
        script += &format!("  ip daddr 10.0.{}.{} counter\n", i / 250, i % 250);
    }
    script += " }\n}\n";
    ns.nft_script(&script);
    let events = w.w.poll().unwrap();
    assert_eq!(
        events.first(),
        Some(&Event::Overflow),
        "{} events",
        events.len()
    );
    // Watching goes on: the next transactions arrive, the first one after the overflow
    // possibly marked incomplete, the one after it complete.
    for (i, table) in ["after1", "after2"].into_iter().enumerate() {
        let run = ns.nft_script(&format!("table inet {table} {{ }}\n"));
        let (t, _) = w.transaction(Duration::from_secs(5)).expect("after");
        assert_eq!(t.pid, Some(run.pid));
        if i == 1 {
            assert!(t.complete);
            assert_eq!(t.changes[0].table, "after2");
        }
    }
}

#[test]
fn the_watcher_works_under_tokio_async_fd() {
    if !root("the_watcher_works_under_tokio_async_fd") {
        return;
    }
    let ns = Netns::new();
    let w = ns.enter(Watcher::open).expect("watcher");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let name = ns.name.clone();
    let changer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let run = run_in(&name, &["nft", "add", "table", "inet", "async"], "");
        assert!(run.output.status.success(), "{:?}", run.output);
        run.pid
    });
    let t = rt.block_on(async move {
        use tokio::io::{Interest, unix::AsyncFd};
        // SAFETY: the watcher owns its socket; the fd stays open and the same until the
        // AsyncFd (which owns the watcher) is dropped.
        let mut fd = unsafe { AsyncFd::register_with_interest(w, Interest::READABLE) }.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let mut guard = fd.readable_mut().await.unwrap();
                // `poll` reads until EAGAIN, so the readiness can be cleared after it.
                let events = guard.get_inner_mut().poll().unwrap();
                guard.clear_ready();
                if let Some(Event::Transaction(t)) = events.into_iter().next() {
                    return t;
                }
            }
        })
        .await
        .expect("event within 5 s")
    });
    assert_eq!(t.pid, Some(changer.join().unwrap()));
    assert_eq!(t.changes[0].table, "async");
}

#[test]
fn without_cap_net_admin_nothing_is_allowed() {
    if !root("without_cap_net_admin_nothing_is_allowed") {
        return;
    }
    let ns = Netns::new();
    ns.enter(|| {
        drop_net_admin();
        match Watcher::open() {
            Err(Error::Subscribe(e)) => assert_eq!(e.raw_os_error(), Some(libc::EPERM)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("subscribed without CAP_NET_ADMIN"),
        }
        match Client::open().and_then(|mut c| c.generation()) {
            Err(Error::Kernel { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::EPERM))
            }
            other => panic!("{other:?}"),
        }
    });
}

/// Clears CAP_NET_ADMIN from the calling thread's effective set (capabilities are per
/// thread; the thread ends right after).
fn drop_net_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data structs, as they expect.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
        d[0].effective &= !(1 << CAP_NET_ADMIN);
        assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
    }
}

/// The CPU this thread has used (user + system), from CLOCK_THREAD_CPUTIME_ID (precise
/// to the nanosecond). The kernel's side of a request runs in the caller's system calls,
/// so it is included.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// This thread's (user, system) CPU from getrusage(RUSAGE_THREAD): the split is sampled
/// at clock ticks, so only meaningful over many calls.
fn thread_user_sys() -> (Duration, Duration) {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid pointer.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(r.ru_utime), tv(r.ru_stime))
}

#[test]
fn counters_cost_per_call() {
    if !root("counters_cost_per_call") {
        return;
    }
    let ns = Netns::new();
    ns.nft_script(&counters_table(28));
    let (cpu, (user, sys), wall, calls) = ns.enter(|| {
        let mut c = Client::open().unwrap();
        assert_eq!(
            c.counters(Family::Inet, "cloison").unwrap().unwrap().len(),
            31
        );
        let calls = 5000;
        let (cpu0, us0, t0) = (thread_cpu(), thread_user_sys(), Instant::now());
        for _ in 0..calls {
            c.counters(Family::Inet, "cloison").unwrap().unwrap();
        }
        let us1 = thread_user_sys();
        (
            thread_cpu() - cpu0,
            (us1.0 - us0.0, us1.1 - us0.1),
            t0.elapsed(),
            calls,
        )
    });
    println!(
        "counters() of 31 counters, {calls} calls back to back (dev build): {:?} CPU per call \
         ({:?} user, {:?} kernel), {:?} wall",
        cpu / calls,
        user / calls,
        sys / calls,
        wall / calls
    );
}

#[test]
#[ignore = "takes 60 s: cargo test -p cloison-lab --test nfnetlink -- --ignored --nocapture"]
fn counters_every_2s_for_60s() {
    if !root("counters_every_2s_for_60s") {
        return;
    }
    let ns = Netns::new();
    ns.nft_script(&counters_table(28));
    let r = ns.enter(|| {
        let mut c = Client::open().unwrap();
        let (cpu0, us0, t0) = (thread_cpu(), thread_user_sys(), Instant::now());
        let (mut calls, mut in_calls, mut slowest, mut wall) =
            (0u32, Duration::ZERO, Duration::ZERO, Duration::ZERO);
        while t0.elapsed() < Duration::from_secs(60) {
            let (c0, w0) = (thread_cpu(), Instant::now());
            assert_eq!(
                c.counters(Family::Inet, "cloison").unwrap().unwrap().len(),
                31
            );
            let w = w0.elapsed();
            in_calls += thread_cpu() - c0;
            wall += w;
            slowest = slowest.max(w);
            calls += 1;
            std::thread::sleep(Duration::from_secs(2));
        }
        let us1 = thread_user_sys();
        (
            thread_cpu() - cpu0,
            (us1.0 - us0.0, us1.1 - us0.1),
            t0.elapsed(),
            calls,
            in_calls,
            wall,
            slowest,
        )
    });
    let (total, (user, sys), elapsed, calls, in_calls, wall, slowest) = r;
    println!(
        "counters() every 2 s for {elapsed:?} (dev build): {calls} calls; CPU in the calls \
         {in_calls:?} ({:?} per call, {:?} wall per call, slowest {slowest:?}); the thread \
         in all (with its wake-ups) {total:?} = {:.4} % of one core (getrusage: {user:?} user, \
         {sys:?} system)",
        in_calls / calls,
        wall / calls,
        total.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
    );
}
