//! `cloison run` as a real process in the lab's router namespace, with a real journald
//! and a notify socket: fail-closed start-up, reloads, drift repair, commit-confirm, and
//! isolation that outlives the daemon.

mod common;

use std::time::Duration;

use cloison_lab::{self as probe, Node, Reach};
use common::daemon::{TIMEOUT, lab_config_with};
use common::{require_root, text};
use nix::sys::signal::Signal;

#[test]
fn ready_only_once_the_rules_are_live() {
    if !require_root("ready_only_once_the_rules_are_live") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    let ready = s.wait_notify("READY=1", Duration::from_secs(30));
    // The very next packet is dropped and counted: the rules were there before READY.
    probe::send_udp_burst(
        s.lab.ns(Node::Kiosk),
        s.addr(Node::MairieSrv, 53),
        1,
        b"right after READY",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        s.counter("kiosk/mairie"),
        1,
        "the packet sent right after READY must be dropped and counted"
    );
    assert!(
        ready.contains("STATUS=3 segments"),
        "READY comes with a status line: {ready}"
    );
    let applied = s.wait_event("config_applied", Duration::from_secs(5));
    assert_eq!(applied[0]["PRIORITY"], "5", "config_applied is a notice");
    assert_eq!(
        s.lab
            .run(Node::Router, &["cat", "/proc/sys/net/ipv4/ip_forward"])
            .unwrap()
            .trim(),
        "1"
    );

    // SIGTERM: STOPPING=1, a clean exit, and the wall stays up.
    s.signal(Signal::SIGTERM);
    s.wait_notify("STOPPING=1", Duration::from_secs(10));
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert_eq!(
        s.kiosk_to_smb(),
        Reach::TimedOut,
        "isolation must not depend on the daemon"
    );
    assert!(
        s.nft(&["list", "table", "inet", "cloison"])
            .status
            .success()
    );
    let status = s.cloison(&["status"]);
    assert!(
        status.status.success(),
        "in sync without a daemon: {}",
        text(&status)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("NOT RUNNING"));
    assert_eq!(
        s.cloison(&["status", "--require-daemon"]).status.code(),
        Some(1)
    );
}

#[test]
fn kill_9_leaves_isolation_intact() {
    if !require_root("kill_9_leaves_isolation_intact") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    s.signal(Signal::SIGKILL);
    s.wait_exit(Duration::from_secs(10));
    assert_eq!(s.kiosk_to_smb(), Reach::TimedOut);
    let web =
        probe::tcp_connect(s.lab.ns(Node::MairiePc), s.addr(Node::InetA, 80), TIMEOUT).unwrap();
    assert!(
        matches!(web, Reach::Open { .. }),
        "ordinary traffic still flows: {web:?}"
    );
    assert!(s.cloison(&["status"]).status.success());
}

#[test]
fn reload_applies_a_good_config_and_refuses_a_bad_one() {
    if !require_root("reload_applies_a_good_config_and_refuses_a_bad_one") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let mairie_to_poste =
        || probe::tcp_connect(s.lab.ns(Node::MairiePc), s.addr(Node::Poste, 80), TIMEOUT).unwrap();
    assert_eq!(mairie_to_poste(), Reach::TimedOut);

    // `-c` naming another file than the daemon's is refused, not silently ignored.
    let other = s
        .lab
        .command(Node::Router, &s.programs().cloison)
        .args(["reload", "-c", "/etc/somewhere/else.toml"])
        .env("CLOISON_RUNTIME_DIR", s.runtime_dir())
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("this daemon runs"),
        "{}",
        text(&other)
    );

    // A good change, by SIGHUP (what `systemctl reload` sends).
    s.write_config(&lab_config_with(
        "[[forbid]]",
        "[[allow]]\nfrom = \"mairie\"\nto = \"poste\"\nproto = \"tcp\"\nports = [80]\n\n[[forbid]]",
    ));
    s.signal(Signal::SIGHUP);
    s.wait_notify("RELOADING=1", Duration::from_secs(10));
    s.wait_notify("READY=1", Duration::from_secs(30));
    assert_ne!(
        mairie_to_poste(),
        Reach::TimedOut,
        "the new allow must be in force"
    );
    let applied = s.events("config_applied");
    let last = applied.last().unwrap();
    assert!(
        last["CLOISON_OLD_HASH"].is_string() && last["CLOISON_NEW_HASH"].is_string(),
        "{last}"
    );
    assert!(
        last["MESSAGE"]
            .as_str()
            .unwrap()
            .contains("mairie->poste tcp/80"),
        "the change is named: {last}"
    );

    // A bad one: refused, the running rules stay, and the journal says why.
    let before = s.nft(&["-j", "list", "table", "inet", "cloison"]).stdout;
    s.write_config(&lab_config_with(
        "address = \"192.168.20.1/24\"",
        "address = \"192.168.20.0/24\"",
    ));
    let out = s.cloison(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rejected = s.wait_event("config_rejected", Duration::from_secs(5));
    assert_eq!(rejected[0]["PRIORITY"], "3");
    assert!(
        rejected[0]["MESSAGE"]
            .as_str()
            .unwrap()
            .contains("network address"),
        "{}",
        rejected[0]
    );
    let after = s.nft(&["-j", "list", "table", "inet", "cloison"]).stdout;
    // Counters may have moved; the rules may not.
    let canon =
        |b: &[u8]| cloison_core::nft::canonical::canonical(&serde_json::from_slice(b).unwrap());
    assert_eq!(
        canon(&before),
        canon(&after),
        "a refused reload changed the ruleset"
    );
    assert_ne!(mairie_to_poste(), Reach::TimedOut);
    assert_eq!(s.kiosk_to_smb(), Reach::TimedOut);
}

#[test]
fn a_bad_config_at_start_uses_the_last_known_good() {
    if !require_root("a_bad_config_at_start_uses_the_last_known_good") {
        return;
    }
    let mut s = common::daemon::setup();
    // Without a last known good: stays closed and fails.
    s.write_config("[segments.kiosk]\nvlan = 4095\n");
    s.start();
    assert_ne!(
        s.wait_exit(Duration::from_secs(30)),
        Some(0),
        "must fail without a usable configuration"
    );
    assert!(
        !s.nft(&["list", "table", "inet", "cloison"])
            .status
            .success(),
        "nothing applied"
    );
    assert_eq!(
        s.lab
            .run(Node::Router, &["cat", "/proc/sys/net/ipv4/ip_forward"])
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(s.events("config_rejected").len(), 1);

    // A good start saves the last known good...
    std::fs::copy(common::LAB_TOML, s.config_path()).unwrap();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    s.signal(Signal::SIGTERM);
    s.wait_exit(Duration::from_secs(10));
    assert!(s.state_dir().join("last-good.toml").exists());

    // ...which a typo at the next start falls back on, so the post office stays open.
    s.write_config(&lab_config_with(
        "[segments.kiosk]",
        "[segments.kiosk]\nvlna = 20",
    ));
    s.start();
    let ready = s.wait_notify("READY=1", Duration::from_secs(30));
    assert!(ready.contains("last known good"), "{ready}");
    let rejected = s.events("config_rejected");
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected[1]["MESSAGE"].as_str().unwrap().contains("vlna"),
        "{}",
        rejected[1]
    );
    assert_eq!(s.kiosk_to_smb(), Reach::TimedOut);
    let web = probe::tcp_connect(s.lab.ns(Node::Kiosk), s.addr(Node::InetB, 80), TIMEOUT).unwrap();
    assert!(
        matches!(web, Reach::Open { .. }),
        "the kiosk still browses: {web:?}"
    );
}

#[test]
fn deleting_the_table_is_repaired_within_5_s_and_counts_are_kept() {
    if !require_root("deleting_the_table_is_repaired_within_5_s_and_counts_are_kept") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    probe::send_udp_burst(
        s.lab.ns(Node::Kiosk),
        s.addr(Node::MairieSrv, 53),
        25,
        b"before",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.counter("kiosk/mairie"), 25);

    let out = s.nft(&["delete", "table", "inet", "cloison"]);
    assert!(out.status.success(), "{}", text(&out));
    let deleted_at = std::time::Instant::now();
    let drift = s.wait_event("ruleset_drift", Duration::from_secs(5));
    assert_eq!(drift[0]["PRIORITY"], "2", "drift is critical");
    assert!(
        drift[0]["MESSAGE"]
            .as_str()
            .unwrap()
            .contains("by nft (pid ")
            && drift[0]["CLOISON_DETAIL"] == "table inet cloison was deleted",
        "{}",
        drift[0]
    );
    assert!(
        s.nft(&["list", "table", "inet", "cloison"])
            .status
            .success(),
        "the table is back"
    );
    assert!(
        deleted_at.elapsed() < Duration::from_secs(5),
        "repaired in {:?}",
        deleted_at.elapsed()
    );
    assert_eq!(s.kiosk_to_smb(), Reach::TimedOut);
    // The smb probe itself adds at least one packet to the 25 carried over.
    assert!(
        s.counter("kiosk/mairie") >= 26,
        "counters stay cumulative across the repair"
    );

    // Editing the table is drift too.
    let out = s.nft(&["insert", "rule", "inet", "cloison", "forward", "accept"]);
    assert!(out.status.success());
    std::thread::sleep(Duration::from_secs(5));
    assert!(s.events("ruleset_drift").len() >= 2);
    assert!(s.cloison(&["status"]).status.success(), "repaired again");
    let status = s.cloison(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(v["daemon"]["drift_repairs"].as_u64().unwrap() >= 2, "{v}");
}

#[test]
fn an_unconfirmed_reload_is_rolled_back() {
    if !require_root("an_unconfirmed_reload_is_rolled_back") {
        return;
    }
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let good = std::fs::read_to_string(s.config_path()).unwrap();
    // An admin working from the mairie removes their own management access by mistake.
    s.write_config(&lab_config_with("management = true", "management = false"));
    let pc = s.lab.ns(Node::MairiePc).to_owned();
    let ssh = || {
        probe::tcp_connect(
            &pc,
            std::net::SocketAddr::new("192.168.10.1".parse().unwrap(), 22),
            TIMEOUT,
        )
        .unwrap()
    };
    assert!(matches!(ssh(), Reach::Open { .. }));
    let out = s.cloison(&["reload", "--confirm", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rolled back in 4 s"),
        "{}",
        text(&out)
    );
    assert_eq!(ssh(), Reach::TimedOut, "the new configuration is in force");
    let status = s.cloison(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("WAITING"),
        "{}",
        text(&status)
    );
    // Nobody confirms: the previous configuration comes back.
    std::thread::sleep(Duration::from_secs(6));
    assert!(matches!(ssh(), Reach::Open { .. }), "access came back");
    let applied = s.events("config_applied");
    assert!(
        applied
            .iter()
            .any(|e| e["MESSAGE"].as_str().unwrap().contains("rolled back")),
        "{applied:?}"
    );
    assert_eq!(
        std::fs::read_to_string(s.state_dir().join("last-good.toml")).unwrap(),
        good,
        "the last known good is the confirmed one"
    );

    // The rolled-back file is still there: a plain reload, a SIGHUP and a restart all
    // refuse it, and the rules stay the confirmed ones.
    let out = s.cloison(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back"),
        "{}",
        text(&out)
    );
    s.signal(Signal::SIGHUP);
    std::thread::sleep(Duration::from_secs(2));
    assert!(matches!(ssh(), Reach::Open { .. }), "SIGHUP applied it");
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    assert!(matches!(ssh(), Reach::Open { .. }), "a restart applied it");
    let status = s.cloison(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("was rolled back"),
        "{}",
        text(&status)
    );
    let rejected = s.events("config_rejected");
    assert!(
        rejected.len() >= 3
            && rejected.iter().all(|e| e["CLOISON_DETAIL"]
                .as_str()
                .unwrap_or("")
                .contains("rolled back")),
        "{rejected:?}"
    );

    // Confirmed in time, it stays.
    let out = s.cloison(&["reload", "--confirm", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.cloison(&["confirm"]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(ssh(), Reach::TimedOut, "a confirmed change stays");
    assert!(
        std::fs::read_to_string(s.state_dir().join("last-good.toml"))
            .unwrap()
            .contains("management = false")
    );
    assert_eq!(
        s.cloison(&["confirm"]).status.code(),
        Some(1),
        "nothing left to confirm"
    );
}

#[test]
fn with_repair_off_drift_is_reported_once_and_left_alone() {
    if !require_root("with_repair_off_drift_is_reported_once_and_left_alone") {
        return;
    }
    let mut s = common::daemon::setup();
    s.write_config(&lab_config_with(
        "[alerts]",
        "[daemon]\nrepair = false\n\n[alerts]",
    ));
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let out = s.nft(&["delete", "table", "inet", "cloison"]);
    assert!(out.status.success(), "{}", text(&out));
    let drift = s.wait_event("ruleset_drift", Duration::from_secs(5));
    assert_eq!(drift[0]["CLOISON_REPAIRED"], "no", "{}", drift[0]);
    assert!(
        drift[0]["MESSAGE"]
            .as_str()
            .unwrap()
            .contains("repair = false"),
        "{}",
        drift[0]
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !s.nft(&["list", "table", "inet", "cloison"])
            .status
            .success(),
        "repair = false: the table is not put back"
    );
    assert_eq!(
        s.events("ruleset_drift").len(),
        1,
        "a drift left in place is reported once, not at every check"
    );
    assert_eq!(s.cloison(&["status"]).status.code(), Some(1));
}

#[test]
fn the_watchdog_is_fed_while_the_loops_run() {
    if !require_root("the_watchdog_is_fed_while_the_loops_run") {
        return;
    }
    let mut s = common::daemon::setup();
    // As systemd does with WatchdogSec=2s: pings are expected every second.
    s.start_with(&[("WATCHDOG_USEC", "2000000")]);
    s.wait_notify("READY=1", Duration::from_secs(30));
    let started = std::time::Instant::now();
    for _ in 0..3 {
        s.wait_notify("WATCHDOG=1", Duration::from_secs(3));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "three pings took {:?}",
        started.elapsed()
    );
    // A stopped process sends none: what systemd would see if the loops hung.
    s.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1500));
    s.drain_notify();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        s.try_notify("WATCHDOG=1").is_none(),
        "a frozen daemon must not feed the watchdog"
    );
    s.signal(Signal::SIGCONT);
    s.wait_notify("WATCHDOG=1", Duration::from_secs(3));
}

#[test]
fn a_flood_of_the_control_socket_leaves_the_daemon_serving() {
    if !require_root("a_flood_of_the_control_socket_leaves_the_daemon_serving") {
        return;
    }
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let socket = s.runtime_dir().join("control.sock");
    // Room for the idle connections this test holds.
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 4096, 4096).unwrap();

    // 10,000 connections opened and closed as fast as 8 threads go, and 300 more opened
    // and left silent, all at once.
    let started = std::time::Instant::now();
    let mut threads = Vec::new();
    for _ in 0..8 {
        let socket = socket.clone();
        threads.push(std::thread::spawn(move || {
            let mut done = 0;
            while done < 1250 {
                if UnixStream::connect(&socket).is_ok() {
                    done += 1;
                }
            }
        }));
    }
    let idle: Vec<UnixStream> = (0..300)
        .filter_map(|_| UnixStream::connect(&socket).ok())
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    eprintln!(
        "10,000 connections and {} idle ones in {:?}",
        idle.len(),
        started.elapsed()
    );

    // A 1 MB request line is refused, not read to the end.
    let mut big = UnixStream::connect(&socket).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let line = vec![b'x'; 1 << 20];
    let _ = big.write_all(&line);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.contains("request longer than 4096 bytes"),
        "answer to a 1 MB line: {answer:?}"
    );

    // Still serving: status answers, while the idle connections are still open.
    let asked = std::time::Instant::now();
    let status = s.cloison(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(v["daemon"]["pid"].as_u64().is_some(), "{v}");
    eprintln!("status answered in {:?}", asked.elapsed());
    drop(idle);
    // And the daemon did not spin: its CPU stays low once the flood is over.
    let pid = s.daemon_pid().unwrap();
    let ticks = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = ticks(pid) - before;
    assert!(
        used < 30,
        "the daemon used {used} ticks in 3 s after the flood"
    );
}

#[test]
fn reloads_under_a_layer_2_flood_lose_no_count() {
    if !require_root("reloads_under_a_layer_2_flood_lose_no_count") {
        return;
    }
    use cloison_core::alert::counter_backed;
    use cloison_core::alert::event::EventKind;
    use cloison_lab::frames::arp_reply;

    let mut s = common::daemon::setup();
    let config = cloison::config_file::load(std::path::Path::new(common::LAB_TOML))
        .unwrap()
        .config;
    // The capture's ground truth, open before the daemon and closed after it.
    let mirror = cloison_lab::mirror::Mirror::start(s.lab.ns(Node::Router), &config)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));

    // The kiosk claims the router's address, 2,000 frames a second, while the policy is
    // reloaded three times (the segments unchanged).
    let kiosk = s.lab.mac(Node::Kiosk, cloison_lab::HOST_IF).unwrap();
    let router = s.lab.mac(Node::Router, "seg-kiosk").unwrap();
    let gw: std::net::Ipv4Addr = "192.168.20.1".parse().unwrap();
    let claims: Vec<Vec<u8>> = (0..100).map(|_| arp_reply(kiosk, gw, router, gw)).collect();
    let ns = s.lab.ns(Node::Kiosk).to_owned();
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = std::sync::Arc::clone(&flooding);
    let flood = std::thread::spawn(move || {
        let mut sent = 0u64;
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            probe::send_frames(&ns, cloison_lab::HOST_IF, &claims).unwrap();
            sent += 100;
            std::thread::sleep(Duration::from_millis(50));
        }
        sent
    });
    let with_allow = lab_config_with(
        "[[forbid]]",
        "[[allow]]\nfrom = \"mairie\"\nto = \"poste\"\nproto = \"tcp\"\nports = [80]\n\n[[forbid]]",
    );
    let without = std::fs::read_to_string(common::LAB_TOML).unwrap();
    for text in [&with_allow, &without, &with_allow] {
        std::thread::sleep(Duration::from_secs(1));
        s.write_config(text);
        s.signal(Signal::SIGHUP);
        s.wait_notify("RELOADING=1", Duration::from_secs(10));
        s.wait_notify("READY=1", Duration::from_secs(30));
    }
    std::thread::sleep(Duration::from_secs(1));
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let sent = flood.join().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    s.signal(Signal::SIGTERM);
    assert_eq!(s.wait_exit(TIMEOUT), Some(0), "{}", s.log());
    let seen = mirror.stop();
    assert!(
        s.events("config_applied").len() >= 3,
        "three reloads applied"
    );
    for (ifname, st) in &seen.stats {
        assert_eq!(
            st.dropped, 0,
            "the test's capture on {ifname} dropped frames"
        );
    }
    let claimed = seen.found.get(&EventKind::ArpSpoof).copied().unwrap_or(0);
    assert!(
        claimed >= sent,
        "the capture points saw {claimed} claims of {sent} sent"
    );
    for kind in EventKind::ALL.into_iter().filter(|k| !counter_backed(*k)) {
        let counted: u64 = s
            .events(kind.name())
            .iter()
            .filter_map(|e| e["CLOISON_PACKETS"].as_str())
            .map(|p| p.parse::<u64>().unwrap())
            .sum();
        let found = seen.found.get(&kind).copied().unwrap_or(0);
        assert_eq!(
            counted, found,
            "{kind}: entries count {counted}, the capture points saw {found}"
        );
    }
}
