//! docs/services.md's dnsmasq example, for real: Debian's dnsmasq serving DHCP and DNS in
//! a router namespace behind cloison's ruleset (the example's file as it is, its VLAN
//! interfaces renamed to the lab's ports), and a host on the kiosk's segment (busybox's
//! udhcpc) getting a lease, then a DNS answer. Without `services` on the segment, the same
//! host gets neither: the ports are cloison's to open, the answers dnsmasq's to give.
//! Needs root, dnsmasq (package dnsmasq-base) and udhcpc (package udhcpc).

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Netns, require_root};

/// The dnsmasq file of docs/services.md, as documented.
fn documented_dnsmasq_conf() -> String {
    let doc = std::fs::read_to_string(common::repo("docs/services.md")).expect("docs/services.md");
    let after = doc
        .split("# /etc/dnsmasq.d/cloison.conf")
        .nth(1)
        .expect("docs/services.md holds the dnsmasq example");
    let block = after.split("```").next().expect("the example's code block");
    format!("# /etc/dnsmasq.d/cloison.conf{block}")
}

/// dnsmasq in the foreground inside a namespace, killed on drop.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(services: &str) -> String {
    format!(
        "[segments.kiosk]\ninterface = \"seg-kiosk\"\naddress = \"192.168.20.1/24\"\nservices = {services}\n\n\
         [segments.mairie]\ninterface = \"seg-mairie\"\naddress = \"192.168.10.1/24\"\nservices = [\"dns\", \"dhcp\"]\n"
    )
}

/// Runs udhcpc once on the host's eth0: the lease line its script printed, if any. With
/// `-B` the client asks for broadcast answers: dnsmasq's unicast offer to an address the
/// veth peer does not hold yet never reaches udhcpc's raw socket in a namespace.
fn lease(host: &Netns, script: &std::path::Path) -> Option<String> {
    let out = host.run(
        &[
            "udhcpc",
            "-B",
            "-i",
            "eth0",
            "-f",
            "-q",
            "-n",
            "-t",
            "3",
            "-T",
            "1",
            "-A",
            "1",
            "-s",
            script.to_str().expect("UTF-8 path"),
        ],
        "",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("LEASE "))
        .map(str::to_owned)
}

fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x43, 0x4c, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend(label.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

/// The first A record of an answer to `dns_query`.
fn first_a(answer: &[u8], query_len: usize) -> Option<Ipv4Addr> {
    let answers = u16::from_be_bytes([*answer.get(6)?, *answer.get(7)?]);
    if answer.get(..2)? != [0x43, 0x4c] || answers == 0 {
        return None;
    }
    // The question is echoed; the first answer's name is a 2-byte pointer to it.
    let rr = answer.get(query_len..)?;
    let (kind, len) = (
        u16::from_be_bytes([*rr.get(2)?, *rr.get(3)?]),
        u16::from_be_bytes([*rr.get(10)?, *rr.get(11)?]),
    );
    (kind == 1 && len == 4).then(|| Ipv4Addr::new(rr[12], rr[13], rr[14], rr[15]))
}

/// Asks the kiosk's router address for `name`, from the host's namespace.
fn resolve(host: &Netns, name: &str) -> Option<Ipv4Addr> {
    let query = dns_query(name);
    cloison_lab::in_netns(&host.name, || {
        let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
        sock.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        sock.send_to(&query, "192.168.20.1:53").ok()?;
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).ok()?;
        first_a(&buf[..n], query.len())
    })
    .expect("enter the host's namespace")
}

#[test]
fn dnsmasq_behind_cloison_serves_the_segments_that_list_the_services() {
    if !require_root("dnsmasq_behind_cloison_serves_the_segments_that_list_the_services") {
        return;
    }
    for program in ["dnsmasq", "udhcpc"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{program} is missing: apt-get install dnsmasq-base udhcpc (.ci/run and tests/run do)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let router = Netns::with_interfaces("svc-r", &["seg-mairie"]);
    let host = Netns::new("svc-k");
    let setup = format!(
        "link add seg-kiosk type veth peer name eth0 netns {}\nlink set seg-kiosk up\n",
        host.name
    );
    let out = router.run(&["ip", "-batch", "-"], &setup);
    assert!(out.status.success(), "{out:?}");
    let out = host.run(&["ip", "-batch", "-"], "link set lo up\nlink set eth0 up\n");
    assert!(out.status.success(), "{out:?}");

    // First without the services: cloison's ruleset alone stands between the host and
    // the server.
    let path = dir.path().join("cloison.toml");
    let path_str = path.to_str().unwrap();
    std::fs::write(&path, config("[]")).unwrap();
    let out = router.cloison(&["apply", "-c", path_str], &[]);
    assert!(out.status.success(), "{out:?}");

    let conf = documented_dnsmasq_conf()
        .replace("lan0.10", "seg-mairie")
        .replace("lan0.20", "seg-kiosk")
        .replace("lan0.30", "seg-poste");
    let mut conf_file = std::fs::File::create(dir.path().join("dnsmasq.conf")).unwrap();
    write!(
        conf_file,
        "{conf}\n# The test's own: files in its directory, nothing of the machine's.\n\
         no-hosts\nuser=root\ndhcp-leasefile={d}/leases\npid-file={d}/dnsmasq.pid\nlog-facility=-\n",
        d = dir.path().display()
    )
    .unwrap();
    drop(conf_file);
    let log = std::fs::File::create(dir.path().join("dnsmasq.log")).unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &router.name,
            "dnsmasq",
            "--keep-in-foreground",
        ])
        .arg(format!(
            "--conf-file={}",
            dir.path().join("dnsmasq.conf").display()
        ))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start dnsmasq");
    let _dnsmasq = Dnsmasq(child);
    let dnsmasq_log =
        || std::fs::read_to_string(dir.path().join("dnsmasq.log")).unwrap_or_default();
    // dnsmasq binds as the interfaces are seen: wait until it serves the kiosk's range.
    let ready = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        dnsmasq_log().contains("192.168.20.100 -- 192.168.20.199")
    });
    assert!(ready, "dnsmasq did not start:\n{}", dnsmasq_log());

    let script = dir.path().join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in bound|renew)\n  echo \"LEASE ip=$ip router=$router dns=$dns\"\n  ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n;; esac\n",
    )
    .unwrap();
    let out = Command::new("chmod")
        .arg("755")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success());

    assert_eq!(
        lease(&host, &script),
        None,
        "a lease without the dhcp service:\n{}",
        dnsmasq_log()
    );

    // With the services: a lease from the documented range, the router as gateway and
    // DNS server, and an answer for the mairie's name.
    std::fs::write(&path, config("[\"dns\", \"dhcp\"]")).unwrap();
    let out = router.cloison(&["apply", "-c", path_str], &[]);
    assert!(out.status.success(), "{out:?}");
    let line = lease(&host, &script)
        .unwrap_or_else(|| panic!("no lease with the dhcp service:\n{}", dnsmasq_log()));
    let ip: Ipv4Addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ip="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        (100..=199).contains(&ip.octets()[3]) && ip.octets()[..3] == [192, 168, 20],
        "{line}"
    );
    assert!(
        line.contains("router=192.168.20.1") && line.contains("dns=192.168.20.1"),
        "{line}"
    );
    assert_eq!(
        resolve(&host, "imprimante.mairie.lan"),
        Some(Ipv4Addr::new(192, 168, 10, 20)),
        "{}",
        dnsmasq_log()
    );

    // And back without them: the host keeps its address, but DNS is closed again.
    std::fs::write(&path, config("[]")).unwrap();
    let out = router.cloison(&["apply", "-c", path_str], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(resolve(&host, "imprimante.mairie.lan"), None);
}
