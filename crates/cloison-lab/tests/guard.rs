//! The guard, measured with real packets: `cloison run` in the lab's router while the
//! kiosk floods a mairie host with UDP as fast as one thread sends, and someone changes
//! the rules from outside, as a Debian box's other tools would (`nft flush ruleset`, as
//! nftables.service does on every restart; `nft delete table`; an `accept` inserted in
//! cloison's forward chain; cloison's policy-routing rules deleted). Each time: not one
//! datagram reaches the mairie host, the daemon puts everything back, and the journal
//! names the process that made the change. (How fast the guard repairs is a benchmark:
//! crates/cloison-lab/benches/guard.rs.)

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloison_lab::{Node, bind_udp, in_netns};
use common::daemon::Setup;
use common::{require_root, text};

/// A kiosk thread sending to the mairie server without pause; a mairie thread counting
/// what arrives.
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Flood {
    fn start(s: &Setup) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let target = s.addr(Node::MairieSrv, 9999);
        let sink = bind_udp(
            s.lab.ns(Node::MairieSrv),
            SocketAddr::new(target.ip(), 9999),
        )
        .expect("bind the mairie's counter");
        sink.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut threads = Vec::new();
        {
            let (stop, received) = (Arc::clone(&stop), Arc::clone(&received));
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if sink.recv(&mut buf).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        {
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            let ns = s.lab.ns(Node::Kiosk).to_owned();
            threads.push(std::thread::spawn(move || {
                in_netns(&ns, move || {
                    let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("kiosk socket");
                    while !stop.load(Ordering::Relaxed) {
                        // Errors (ICMP "prohibited" coming back, full queues) count as
                        // nothing sent; the flood goes on.
                        if socket.send_to(b"kiosk flood", target).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .expect("enter the kiosk");
            }));
        }
        Flood {
            stop,
            sent,
            received,
            threads,
        }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("flood thread");
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Waits until `cloison status` says both walls match the configuration.
fn wait_in_sync(s: &Setup, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let out = s.cloison(&["status"]);
        if out.status.success() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "not repaired within {within:?}: {}\ndaemon log:\n{}",
            text(&out),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn outside_changes_during_a_flood_let_nothing_cross_and_name_who_made_them() {
    if !require_root("outside_changes_during_a_flood_let_nothing_cross_and_name_who_made_them") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let flood = Flood::start(&s);
    std::thread::sleep(Duration::from_millis(300));

    // (what, program, arguments or batch on stdin, the command name the kernel reports)
    let changes: [(&str, &str, &[&str], &str, &str); 4] = [
        ("nft flush ruleset", "nft", &["flush", "ruleset"], "", "nft"),
        (
            "nft delete table inet cloison",
            "nft",
            &["delete", "table", "inet", "cloison"],
            "",
            "nft",
        ),
        (
            "an accept inserted in cloison's forward chain",
            "nft",
            &["insert", "rule", "inet", "cloison", "forward", "accept"],
            "",
            "nft",
        ),
        (
            "cloison's policy-routing rules deleted",
            "ip",
            &["-batch", "-"],
            // Every IPv4 rule of cloison's (the flood is IPv4), from one `ip` process.
            "rule del priority 7100\nrule del priority 7100\nrule del priority 7200\n\
             rule del priority 7201\nrule del priority 7202\nrule del priority 7300\n\
             rule del priority 7310\nrule del priority 7311\nrule del priority 7312\n",
            "ip",
        ),
    ];
    let mut seen = 0;
    for (what, program, args, stdin, comm) in changes {
        let mut child = s
            .lab
            .command(Node::Router, program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{what}: {}", text(&out));
        let took = wait_in_sync(&s, Duration::from_secs(10));
        eprintln!("{what}: both walls back in {took:?}");
        let drift = s.wait_event("ruleset_drift", Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut drift = drift;
        while drift.len() <= seen && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            drift = s.events("ruleset_drift");
        }
        assert!(drift.len() > seen, "{what}: no new ruleset_drift entry");
        let entry = &drift[drift.len() - 1];
        seen = drift.len();
        assert_eq!(
            entry["CLOISON_ACTOR_COMM"], comm,
            "{what}: the journal names who changed the rules: {entry}"
        );
        assert!(
            entry["CLOISON_ACTOR_PID"]
                .as_str()
                .is_some_and(|p| p.parse::<u32>().is_ok())
        );
        assert_eq!(entry["CLOISON_REPAIRED"], "yes", "{what}: {entry}");
        assert!(
            entry["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("by {comm} (pid "))),
            "{what}: {entry}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let (sent, received) = flood.stop();
    assert!(sent > 10_000, "the kiosk sent only {sent} datagrams");
    assert_eq!(
        received, 0,
        "{received} of {sent} datagrams from the kiosk reached the mairie server"
    );
}
