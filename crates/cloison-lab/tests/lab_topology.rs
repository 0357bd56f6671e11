//! The simulated mairie itself: built from config/lab.toml, it carries traffic once a
//! router is put in place (emulated here with a few `ip` and `nft` commands inside the
//! router namespace, since cloison is not applied), and it leaves nothing behind: not
//! when dropped, not on panic, not on Ctrl-C, not after its creator was SIGKILLed.
//!
//! Needs root (namespaces); skips with a visible message otherwise.

// Tests build frames and pids from small numbers; the product's cast lints would only
// add noise here (they never ship).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::cast_lossless
)]
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cloison_core::config::{self, Config};
use cloison_lab::{self as lab, Lab, LabError, LabOptions, Node, Reach};

const LAB_TOML: &str = include_str!("../../../config/lab.toml");
const BIN: &str = env!("CARGO_BIN_EXE_cloison-lab");
const T: Duration = Duration::from_millis(1500);
/// For outcomes that are silence: long enough for a lab round trip, short for the suite.
const SILENCE: Duration = Duration::from_millis(400);
const CHILD_ENV: &str = "CLOISON_LAB_TEST_CHILD";

/// The tests of this file build labs and then check that none of this process is left;
/// they take turns so one test's lab is not mistaken for another's leftovers.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: lab_topology needs root (network namespaces); run it as root");
    false
}

fn config() -> Config {
    config::parse(LAB_TOML, "config/lab.toml").unwrap_or_else(|d| panic!("{d}"))
}

fn up(config: &Config) -> Lab {
    Lab::up(&LabOptions::new(config, BIN)).unwrap_or_else(|e| panic!("{}", chain(&e)))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Lab namespaces whose name starts with `prefix`.
fn namespaces_of(prefix: &str) -> Vec<String> {
    lab::lab_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// The prefix of every lab namespace this process makes.
fn my_prefix() -> String {
    format!("cl{}x", std::process::id())
}

/// True while `pid` exists as a process that is not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

fn assert_gone(id: &str, listeners: &[u32]) {
    let prefix = format!("{id}-");
    assert_eq!(
        namespaces_of(&prefix),
        Vec::<String>::new(),
        "namespaces left"
    );
    for pid in listeners {
        assert!(
            wait_until(Duration::from_secs(2), || !running(*pid)),
            "listener {pid} of {id} still runs"
        );
    }
    assert!(
        !std::path::Path::new(lab::STATE_DIR)
            .join(format!("{id}.json"))
            .exists(),
        "record of {id} left"
    );
}

fn host_interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Runs `ip [-4|-6] -n NS -batch -` with `lines`.
fn ip_batch(ns: &str, family: Option<&str>, lines: &[String]) {
    let mut child = Command::new("ip")
        .args(family)
        .args(["-n", ns, "-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ip {family:?} -n {ns}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        lines.join("\n")
    );
}

/// A stand-in for `cloison apply`, just enough to route: addresses from the config, each
/// segment's traffic out by its uplink (policy routing), masquerade on the uplinks, and
/// tcp port 9 dropped so silence can be observed.
fn emulate_router(lab: &Lab, config: &Config) {
    let ns = lab.ns(Node::Router);
    let mut lines = Vec::new();
    // Connected routes first, then each segment's uplink table.
    let mut rules4 = vec!["rule add pref 100 lookup main suppress_prefixlength 0".to_owned()];
    let mut rules6 = rules4.clone();
    for seg in &config.segments {
        let dev = &seg.interface;
        lines.push(format!("addr add {} dev {dev}", seg.address));
        if let Some(a6) = seg.address6 {
            lines.push(format!("addr add {a6} dev {dev} nodad"));
        }
        lines.push(format!("link set {dev} up"));
    }
    for (i, up) in config.uplinks.iter().enumerate() {
        let dev = &up.interface;
        let table = 100 + i;
        lines.push(format!("addr add {} dev {dev}", up.address.unwrap()));
        lines.push(format!("addr add {} dev {dev} nodad", up.address6.unwrap()));
        lines.push(format!("link set {dev} up"));
        lines.push(format!(
            "route add default via {} dev {dev} table {table}",
            up.gateway.unwrap()
        ));
        lines.push(format!(
            "route add ::/0 via {} dev {dev} table {table}",
            up.gateway6.unwrap()
        ));
        for seg in config
            .segments
            .iter()
            .filter(|s| s.uplink.as_ref() == Some(&up.name))
        {
            rules4.push(format!(
                "rule add pref 200 from {} lookup {table}",
                seg.address.subnet()
            ));
            if let Some(a6) = seg.address6 {
                rules6.push(format!(
                    "rule add pref 200 from {} lookup {table}",
                    a6.subnet()
                ));
            }
        }
    }
    // Forwarding on before the links come up (a router sends no router solicitations),
    // and no DAD: while its link-local address is tentative, a router cannot solicit
    // neighbours for the packets it forwards, which costs the first IPv6 packets a 1 s
    // retransmission, or more.
    let interfaces: Vec<&str> = config
        .segments
        .iter()
        .map(|s| s.interface.as_str())
        .chain(config.uplinks.iter().map(|u| u.interface.as_str()))
        .collect();
    lab::in_netns(ns, || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1").unwrap();
        for dev in &interfaces {
            std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/accept_dad"), "0").unwrap();
        }
    })
    .unwrap();
    ip_batch(ns, None, &lines);
    ip_batch(ns, Some("-4"), &rules4);
    ip_batch(ns, Some("-6"), &rules6);
    // Even without DAD, link-locals leave the tentative state a moment after link up.
    assert!(
        lab.settle(Node::Router, Duration::from_secs(3)).unwrap(),
        "router addresses stay tentative"
    );
    let uplinks: Vec<String> = config
        .uplinks
        .iter()
        .map(|u| format!("\"{}\"", u.interface))
        .collect();
    let ruleset = format!(
        "table inet labtest {{
            chain postrouting {{ type nat hook postrouting priority srcnat; oifname {{ {} }} masquerade; }}
            chain forward {{ type filter hook forward priority 0; tcp dport 9 drop; }}
        }}",
        uplinks.join(", ")
    );
    let mut nft = lab
        .command(Node::Router, "nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    nft.stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    let out = nft.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

fn open_from(ip: impl Into<IpAddr>) -> Reach {
    Reach::Open {
        seen_peer: Some(ip.into()),
    }
}

#[test]
fn router_interfaces_are_left_to_cloison() {
    if !root() {
        return;
    }
    let _turn = serial();
    let config = config();
    let lab = up(&config);
    let out = lab
        .run(Node::Router, &["ip", "-j", "addr", "show"])
        .unwrap();
    let links: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let expected: Vec<&str> = config
        .segments
        .iter()
        .map(|s| s.interface.as_str())
        .chain(config.uplinks.iter().map(|u| u.interface.as_str()))
        .collect();
    assert_eq!(
        expected,
        ["seg-kiosk", "seg-mairie", "seg-poste", "wan0", "wan1"]
    );
    for name in &expected {
        let link = links
            .iter()
            .find(|l| l["ifname"] == *name)
            .unwrap_or_else(|| panic!("no {name} in the router namespace: {out}"));
        let flags: Vec<&str> = link["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(!flags.contains(&"UP"), "{name} is up: {flags:?}");
        assert_eq!(
            link["addr_info"],
            serde_json::json!([]),
            "{name} has addresses"
        );
    }
    // Only lo and the configuration's interfaces.
    assert_eq!(links.len(), expected.len() + 1, "{out}");
    let forwarding = lab
        .run(
            Node::Router,
            &["cat", "/proc/sys/net/ipv6/conf/all/forwarding"],
        )
        .unwrap();
    assert_eq!(forwarding.trim(), "0");

    // The explicit way down reports what it could not remove; here, nothing.
    let (id, listeners) = (lab.id().to_owned(), lab.listener_pids());
    lab.down().unwrap();
    assert_gone(&id, &listeners);
}

#[test]
fn topology_carries_traffic_then_leaves_nothing() {
    if !root() {
        return;
    }
    let _turn = serial();
    let config = config();
    let host_before = host_interfaces();

    let lab = up(&config);
    eprintln!("lab {} built in {:?}", lab.id(), lab.build_time());
    assert_eq!(
        host_interfaces(),
        host_before,
        "the machine's own interfaces changed"
    );
    let id = lab.id().to_owned();
    let listeners = lab.listener_pids();
    // router, mairie-srv, isp, inet-a, inet-b.
    assert_eq!(listeners.len(), 5);
    assert_eq!(namespaces_of(&format!("{id}-")).len(), Node::ALL.len());

    let pc = lab.ns(Node::MairiePc);
    let kiosk = lab.ns(Node::Kiosk);
    let srv4 = lab.v4(Node::MairieSrv).unwrap();
    let srv6 = lab.v6(Node::MairieSrv).unwrap();
    let pc4 = lab.v4(Node::MairiePc).unwrap();
    let pc6 = lab.v6(Node::MairiePc).unwrap();
    assert_eq!(srv4, Ipv4Addr::new(192, 168, 10, 5));
    assert_eq!(pc6, "fd00:10::10".parse::<Ipv6Addr>().unwrap());

    // On the mairie wire, before any router exists: the bridge joins the two hosts.
    assert_eq!(
        lab::tcp_connect(pc, sa(srv4, 445), T).unwrap(),
        open_from(pc4)
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(srv6, 445), T).unwrap(),
        open_from(pc6)
    );
    assert_eq!(
        lab::udp_exchange(pc, sa(srv4, 53), T).unwrap(),
        open_from(pc4)
    );
    assert_eq!(
        lab::udp_exchange(pc, sa(srv6, 53), T).unwrap(),
        open_from(pc6)
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(srv4, 3389), T).unwrap(),
        open_from(pc4)
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(srv4, 446), T).unwrap(),
        Reach::Refused
    );
    assert_eq!(
        lab::udp_exchange(pc, sa(srv6, 54), T).unwrap(),
        Reach::Refused
    );
    assert!(lab::ping(pc, srv4.into(), T).unwrap());
    assert!(lab::ping(pc, srv6.into(), T).unwrap());
    // The router is not there yet: the kiosk reaches nothing beyond its wire.
    assert!(!lab::ping(kiosk, srv4.into(), SILENCE).unwrap());

    emulate_router(&lab, &config);
    // The kiosk's failed attempt left its ARP entry for the router incomplete; without a
    // flush, its next packet waits for the next ARP retry (up to 1 s).
    lab.run(Node::Kiosk, &["ip", "neigh", "flush", "all"])
        .unwrap();
    let started = Instant::now();

    // Across the router (no isolation: cloison is not applied), source kept.
    let kiosk4 = lab.v4(Node::Kiosk).unwrap();
    let kiosk6 = lab.v6(Node::Kiosk).unwrap();
    assert_eq!(
        lab::tcp_connect(kiosk, sa(srv4, 445), T).unwrap(),
        open_from(kiosk4)
    );
    assert_eq!(
        lab::tcp_connect(kiosk, sa(srv6, 445), T).unwrap(),
        open_from(kiosk6)
    );
    assert_eq!(
        lab::udp_exchange(kiosk, sa(srv6, 53), T).unwrap(),
        open_from(kiosk6)
    );
    assert!(lab::ping(kiosk, srv4.into(), T).unwrap());
    assert!(lab::ping(kiosk, srv6.into(), T).unwrap());

    // The router's own services answer, from the address they were asked on.
    let router_mairie = config.segment("mairie").unwrap().address.addr();
    let router_poste6 = config.segment("poste").unwrap().address6.unwrap().addr();
    for port in [53, 67, 123] {
        assert_eq!(
            lab::udp_exchange(pc, sa(router_mairie, port), T).unwrap(),
            open_from(pc4),
            "udp {port}"
        );
    }
    assert_eq!(
        lab::udp_exchange(kiosk, sa(router_poste6, 53), T).unwrap(),
        open_from(kiosk6),
        "asked on another segment's address"
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(router_mairie, 22), T).unwrap(),
        open_from(pc4)
    );

    // Out to the Internet: masqueraded to the uplink address, by the segment's uplink.
    let isp = config.uplink("isp").unwrap();
    let laposte = config.uplink("laposte").unwrap();
    let inet_a4 = lab.v4(Node::InetA).unwrap();
    let inet_a6 = lab.v6(Node::InetA).unwrap();
    let inet_b4 = lab.v4(Node::InetB).unwrap();
    let inet_b6 = lab.v6(Node::InetB).unwrap();
    assert_eq!(
        lab::tcp_connect(pc, sa(inet_a4, 443), T).unwrap(),
        open_from(isp.address.unwrap().addr())
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(inet_a6, 80), T).unwrap(),
        open_from(isp.address6.unwrap().addr())
    );
    assert_eq!(
        lab::udp_exchange(pc, sa(inet_a4, 53), T).unwrap(),
        open_from(isp.address.unwrap().addr())
    );
    assert_eq!(
        lab::tcp_connect(kiosk, sa(inet_b4, 80), T).unwrap(),
        open_from(laposte.address.unwrap().addr())
    );
    assert_eq!(
        lab::udp_exchange(kiosk, sa(inet_b6, 53), T).unwrap(),
        open_from(laposte.address6.unwrap().addr())
    );
    // The box's admin page sees the router's uplink address too.
    assert_eq!(
        lab::tcp_connect(pc, sa(lab.v4(Node::Isp).unwrap(), 80), T).unwrap(),
        open_from(isp.address.unwrap().addr())
    );
    // Which uplink was taken shows: the La Poste box has no route to the town's Internet.
    assert!(matches!(
        lab::tcp_connect(kiosk, sa(inet_a4, 80), T).unwrap(),
        Reach::Unreachable(_)
    ));
    let t = Instant::now();
    assert!(!lab::ping(kiosk, inet_a6.into(), T).unwrap());
    assert!(
        t.elapsed() < T,
        "the ICMPv6 error should end the wait early"
    );
    assert!(lab::ping(pc, inet_a4.into(), T).unwrap());
    assert!(lab::ping(pc, inet_a6.into(), T).unwrap());
    // Silence is told from refusal.
    assert_eq!(
        lab::tcp_connect(pc, sa(inet_a4, 9), SILENCE).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        lab::tcp_connect(pc, sa(inet_a4, 81), T).unwrap(),
        Reach::Refused
    );

    // Forged sources arrive as forged, on the wire and across the router.
    let rx4 = lab::bind_udp(lab.ns(Node::MairieSrv), sa(Ipv4Addr::UNSPECIFIED, 5555)).unwrap();
    let rx6 = lab::bind_udp(lab.ns(Node::MairieSrv), sa(Ipv6Addr::UNSPECIFIED, 5556)).unwrap();
    rx4.set_read_timeout(Some(T)).unwrap();
    rx6.set_read_timeout(Some(T)).unwrap();
    let forged4: IpAddr = "192.168.10.77".parse().unwrap();
    let forged6: IpAddr = "fd00:10::77".parse().unwrap();
    for (from, forged, to, rx) in [
        (pc, forged4, sa(srv4, 5555), &rx4),
        (pc, forged6, sa(srv6, 5556), &rx6),
        (kiosk, forged4, sa(srv4, 5555), &rx4),
        (kiosk, forged6, sa(srv6, 5556), &rx6),
    ] {
        lab::send_spoofed_udp(from, forged, to, 3, b"forged").unwrap();
        for _ in 0..3 {
            let mut buf = [0u8; 64];
            let (n, peer) = rx
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("forged {forged} from {from}: {e}"));
            assert_eq!(&buf[..n], b"forged");
            assert_eq!(peer, sa(forged, lab::SPOOF_SOURCE_PORT));
        }
    }

    // An exact burst arrives whole.
    let local = lab::send_udp_burst(pc, sa(srv4, 5555), 50, b"burst").unwrap();
    for i in 0..50 {
        let mut buf = [0u8; 64];
        let (n, peer) = rx4
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("datagram {i} of 50: {e}"));
        assert_eq!((&buf[..n], peer), (&b"burst"[..], sa(pc4, local.port())));
    }
    rx4.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        rx4.recv_from(&mut [0u8; 64]).is_err(),
        "more than 50 arrived"
    );

    // A raw frame crosses the mairie's bridge and nothing else.
    let pc_mac = lab.mac(Node::MairiePc, lab::HOST_IF).unwrap();
    let srv_mac = lab.mac(Node::MairieSrv, lab::HOST_IF).unwrap();
    assert_ne!(pc_mac, srv_mac);
    let on_srv = lab::capture(lab.ns(Node::MairieSrv), lab::HOST_IF).unwrap();
    let on_kiosk = lab::capture(kiosk, lab::HOST_IF).unwrap();
    let marker = format!("cloison-lab frame {}", lab.id());
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&pc_mac);
    frame.extend_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    frame.extend_from_slice(marker.as_bytes());
    lab::send_frame(pc, lab::HOST_IF, &frame).unwrap();
    let ours = |f: &[u8]| f.windows(marker.len()).any(|w| w == marker.as_bytes());
    let got = on_srv
        .wait_for(T, ours)
        .unwrap()
        .expect("frame not seen on mairie-srv");
    assert_eq!(&got[..frame.len()], &frame[..]);
    assert!(on_kiosk.wait_for(SILENCE, ours).unwrap().is_none());
    eprintln!("traffic checks took {:?}", started.elapsed());

    let t = Instant::now();
    drop(lab);
    eprintln!("lab {id} removed in {:?}", t.elapsed());
    assert_gone(&id, &listeners);
    assert_eq!(host_interfaces(), host_before);
}

#[test]
fn panic_while_holding_a_lab_cleans_up() {
    if !root() {
        return;
    }
    let _turn = serial();
    let config = config();
    let seen = Mutex::new(None);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let lab = up(&config);
        *seen.lock().unwrap() = Some((lab.id().to_owned(), lab.listener_pids()));
        assert!(!namespaces_of(&format!("{}-", lab.id())).is_empty());
        panic!("a test fails while holding the lab");
    }));
    assert!(outcome.is_err());
    let (id, listeners) = seen.into_inner().unwrap().expect("lab was built");
    assert_gone(&id, &listeners);
}

#[test]
fn failed_build_removes_what_it_built() {
    if !root() {
        return;
    }
    let _turn = serial();

    // A listener that cannot start: the namespaces built so far go.
    let config = config();
    let options = LabOptions {
        ready_timeout: Duration::from_secs(2),
        ..LabOptions::new(&config, "/bin/false")
    };
    let err = Lab::up(&options).unwrap_err();
    eprintln!("as expected: {}", chain(&err));
    assert!(
        matches!(err, LabError::ListenerNotReady { .. }),
        "{}",
        chain(&err)
    );
    assert_eq!(namespaces_of(&my_prefix()), Vec::<String>::new());

    // An `ip` step that fails: the error names the command, the line and ip's complaint.
    let clash = config::parse(
        &LAB_TOML.replace("interface = \"seg-poste\"", "interface = \"lo\""),
        "clash.toml",
    )
    .unwrap();
    let err = Lab::up(&LabOptions::new(&clash, BIN)).unwrap_err();
    let text = chain(&err);
    eprintln!("as expected: {text}");
    assert!(matches!(err, LabError::Links(_)), "{text}");
    assert!(text.contains("-switch -batch -"), "{text}");
    assert!(text.contains("peer name lo netns"), "{text}");
    assert_eq!(namespaces_of(&my_prefix()), Vec::<String>::new());

    // A configuration the lab cannot build: refused before anything exists.
    let no_poste = config::parse(
        &LAB_TOML
            .replace("[segments.poste]", "[segments.guichet]")
            .replace("\"poste\"", "\"guichet\""),
        "t.toml",
    )
    .unwrap();
    let err = Lab::up(&LabOptions::new(&no_poste, BIN)).unwrap_err();
    assert!(chain(&err).contains("[segments.poste]"), "{}", chain(&err));
    assert_eq!(namespaces_of(&my_prefix()), Vec::<String>::new());
}

#[test]
fn kept_lab_outlives_sweeps_until_its_session_removes_it() {
    if !root() {
        return;
    }
    let _turn = serial();
    let config = config();
    let lab = up(&config);
    let id = lab.id().to_owned();
    let listeners = lab.listener_pids();
    let record = lab.keep().unwrap();
    assert!(record.kept);
    assert_eq!(record.namespaces.len(), Node::ALL.len());
    assert!(!lab::sweep_orphans().unwrap().contains(&id));
    assert_eq!(namespaces_of(&format!("{id}-")).len(), Node::ALL.len());
    assert!(listeners.iter().all(|p| running(*p)));

    let removed = lab::down_mine().unwrap();
    assert!(removed.contains(&id), "{removed:?}");
    assert_gone(&id, &listeners);
}

/// Starts this test binary as a child that builds a lab and waits; returns the child, the
/// lab id and its listener pids.
fn child_with_a_lab() -> (std::process::Child, String, Vec<u32>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_holds_a_lab",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest prints `test child_holds_a_lab ... ` on the same line first.
        if let Some((_, rest)) = line.split_once("LAB ") {
            let mut words = rest.split_whitespace();
            let id = words.next().unwrap().to_owned();
            let pids = words.map(|p| p.parse().unwrap()).collect();
            return (child, id, pids);
        }
    }
    let status = child.wait().unwrap();
    panic!("the child ended ({status}) without building a lab");
}

/// Not a test: the lab holder `child_with_a_lab` starts.
#[test]
#[ignore = "run by other tests in a child process"]
fn child_holds_a_lab() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let config = config();
    let lab = up(&config);
    let pids: Vec<String> = lab.listener_pids().iter().map(u32::to_string).collect();
    println!("LAB {} {}", lab.id(), pids.join(" "));
    std::io::stdout().flush().unwrap();
    // Killed by the parent long before this.
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn orphans_of_a_killed_process_are_swept() {
    if !root() {
        return;
    }
    let _turn = serial();
    let (mut child, id, listeners) = child_with_a_lab();
    assert_eq!(namespaces_of(&format!("{id}-")).len(), Node::ALL.len());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // SIGKILL leaves everything behind, listeners running: that is what the sweep is for.
    // (Under a parallel runner another test's `Lab::up` may sweep it first; the outcome
    // checked below is the same.)
    let removed = lab::sweep_orphans().unwrap();
    if !removed.contains(&id) {
        eprintln!("note: {id} was swept by another process before this test's sweep");
    }
    assert_gone(&id, &listeners);
}

#[test]
fn ctrl_c_removes_the_lab_and_exits_130() {
    if !root() {
        return;
    }
    let _turn = serial();
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let (mut child, id, listeners) = child_with_a_lab();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(i32::from(lab::EXIT_INTERRUPTED)),
            "after {signal}"
        );
        assert_gone(&id, &listeners);
    }
}
