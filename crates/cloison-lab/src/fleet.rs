//! The fleet lab: N boxes and the département's collector, with the engines the IT
//! services already run, nothing home-made between them.
//!
//! - Each box is a `Rig` (the lab's mairie: router, hosts, `cloison run`) whose private
//!   journald is a box of its own (hostname `box-K`, its own machine id and boot id) and
//!   whose configuration names the router `box-K`. In the router's namespace run
//!   `systemd-journal-upload` (HTTPS with a client certificate, reading the box's journal)
//!   and `prometheus-node-exporter` with only its textfile collector, fed by
//!   `cloison metrics --output` (what cloison-metrics.timer does on a real box).
//! - The collector namespace holds a bridge every box is wired to (198.18.0.0/24, the
//!   benchmarking range: box K is 198.18.0.(10+K) on its `fleet0`, the collector
//!   198.18.0.1), `systemd-journal-remote` (HTTPS, one journal file per box) and a real
//!   `prometheus` scraping every box every second, with contrib/prometheus's rules.
//!
//! Debian's journal-remote cannot check client certificates (built without `--trust`);
//! the boxes still present theirs, as journal-upload requires. docs/fleet.md says what to
//! put in front of it in production.
//!
//! Cleaning up: the collector namespace is registered like a lab (Ctrl-C, the sweep of
//! labs whose creator died and `Drop` remove it and kill what runs inside); everything a
//! box adds runs in its router's namespace and lives in its lab's directory, so it goes
//! with the box's lab. `Drop` first stops the engines in order (uploads, journal-remote,
//! Prometheus, exporters) so that their files are closed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::journal::JournalOptions;
use crate::netns::{self, NetnsError};
use crate::registry::{self, LabRecord, RegistryError};
use crate::rig::{Rig, RigError, alive};
use crate::{Node, Programs};
use cloison_core::config::Config;

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
pub const JOURNAL_UPLOAD: &str = "/lib/systemd/systemd-journal-upload";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
pub const OPENSSL: &str = "/usr/bin/openssl";

/// What the fleet runs, and the Debian package of each (installed when missing).
pub const PACKAGES: [(&str, &str); 5] = [
    (JOURNAL_REMOTE, "systemd-journal-remote"),
    (PROMETHEUS, "prometheus"),
    (PROMTOOL, "prometheus"),
    (NODE_EXPORTER, "prometheus-node-exporter"),
    (OPENSSL, "openssl"),
];

/// The collector's address on the fleet's bridge.
pub const COLLECTOR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// journal-remote's HTTPS port (systemd's default for it; 19531 is gatewayd's).
pub const JOURNAL_REMOTE_PORT: u16 = 19532;
pub const PROMETHEUS_PORT: u16 = 9090;
pub const NODE_EXPORTER_PORT: u16 = 9100;
/// Boxes fit in 198.18.0.11 ..= 198.18.0.250.
pub const MAX_BOXES: usize = 240;
/// The box's side of its wire to the collector.
const BOX_IF: &str = "fleet0";

/// How long an engine may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("a fleet has 1 to {MAX_BOXES} boxes, not {0}")]
    Size(usize),
    #[error("cannot get the fleet's programs")]
    Packages(#[from] crate::packages::PackagesError),
    #[error("cannot build box {name}")]
    Box {
        name: String,
        #[source]
        source: Box<RigError>,
    },
    #[error("cannot record the collector")]
    Record(#[source] RegistryError),
    #[error("cannot wire the fleet")]
    Wire(#[source] NetnsError),
    #[error("cannot prepare {}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("{what} not ready within {within:?}: {log}")]
    NotReady {
        what: String,
        within: Duration,
        log: String,
    },
    #[error("Prometheus answered {path} with something unexpected: {detail}")]
    Prometheus { path: String, detail: String },
}

/// How to build a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub boxes: usize,
    /// Prometheus's scrape and rule evaluation interval.
    pub scrape_every: Duration,
    /// Box K's configuration (K from 1), from config/lab.toml already named `box-K`:
    /// e.g. `[daemon] repair = false` on one box, shorter summaries.
    pub box_config: fn(usize, String) -> String,
    /// The alerting rules Prometheus loads (contrib/prometheus/cloison.rules.yml).
    pub rules: Option<PathBuf>,
}

impl FleetOptions {
    pub fn new(boxes: usize) -> FleetOptions {
        FleetOptions {
            boxes,
            scrape_every: Duration::from_secs(1),
            box_config: |_, text| text,
            rules: None,
        }
    }
}

/// One box: its rig and the engines that report it.
pub struct FleetBox {
    pub name: String,
    pub addr: Ipv4Addr,
    pub rig: Rig,
    /// Its files: certificate and key, the upload state, the textfile directory.
    dir: PathBuf,
    uploader: Option<Child>,
    exporter: Option<Child>,
}

/// The collector namespace and its engines.
pub struct Collector {
    id: String,
    ns: String,
    dir: PathBuf,
    pub journal_remote: Option<Child>,
    pub prometheus: Option<Child>,
    armed: bool,
}

/// N boxes and a collector. Dropping it stops everything and removes every namespace.
pub struct Fleet {
    pub boxes: Vec<FleetBox>,
    pub collector: Collector,
    /// The first destination port of the next flood: each flood's flows are new ones.
    next_port: std::sync::atomic::AtomicU16,
}

/// Runs `cmd`; its stdout, or an error with its stderr.
fn run(what: &str, cmd: &mut Command) -> Result<Output, FleetError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FleetError::Spawn {
            what: what.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(FleetError::Failed {
            what: what.to_owned(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out)
}

/// A long-running engine: its own process group (a terminal's Ctrl-C reaches the test,
/// which stops it in order), killed if the thread that started it dies, stderr to `log`.
fn spawn(what: &str, mut cmd: Command, log: &Path) -> Result<Child, FleetError> {
    let err = |source| FleetError::Spawn {
        what: what.to_owned(),
        source,
    };
    let log = std::fs::File::create(log).map_err(err)?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().map_err(err)?)
        .stderr(log)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().map_err(err)
}

/// SIGTERM to each (once: a second one can kill journal-upload while it exits), then
/// waits for all, SIGKILL after `within`. Exit codes, None when killed by a signal.
fn stop_all(children: Vec<&mut Child>, within: Duration) -> Vec<Option<i32>> {
    for c in &children {
        let _ = nix::sys::signal::kill(crate::pid(c.id()), nix::sys::signal::Signal::SIGTERM);
    }
    let deadline = Instant::now() + within;
    children
        .into_iter()
        .map(|c| {
            loop {
                match c.try_wait() {
                    Ok(Some(status)) => break status.code(),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break None;
                    }
                }
            }
        })
        .collect()
}

/// Whether something listens on TCP `port` in namespace `ns` (its /proc/net/tcp).
fn listening(ns: &str, port: u16) -> bool {
    netns::in_netns(ns, || {
        std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap_or_default()
    })
    .unwrap_or_default()
    .lines()
    .skip(1)
    .any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3
            && f[3] == "0A"
            && f[1]
                .rsplit(':')
                .next()
                .is_some_and(|p| u16::from_str_radix(p, 16) == Ok(port))
    })
}

/// One HTTP GET from inside `ns`; the body of a 200 answer.
pub fn http_get(ns: &str, addr: SocketAddr, path: &str) -> Result<String, FleetError> {
    let what = format!("GET http://{addr}{path}");
    let answer = netns::in_netns(ns, || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n"
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        Ok(buf)
    })
    .map_err(|e| FleetError::Failed {
        what: what.clone(),
        detail: e.to_string(),
    })?
    .map_err(|source| FleetError::Spawn {
        what: what.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(FleetError::Failed {
            what,
            detail: format!("{}: {body}", head.lines().next().unwrap_or("")),
        });
    }
    Ok(body.to_owned())
}

/// Percent-encoding of a query parameter.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The certificates: a CA, the collector's (its address in subjectAltName: journal-upload
/// checks the name), one client certificate per box. EC P-256, valid two days.
fn make_pki(dir: &Path, boxes: &[String]) -> Result<(), FleetError> {
    let openssl = |what: &str, args: &[&str]| {
        run(what, Command::new(OPENSSL).args(args).current_dir(dir)).map(drop)
    };
    openssl(
        "openssl (CA)",
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/O=cloison fleet lab/CN=fleet lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    let leaf = |name: &str, ext: String| -> Result<(), FleetError> {
        let ext_file = dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, ext).map_err(|source| FleetError::Dir {
            path: ext_file.clone(),
            source,
        })?;
        openssl(
            "openssl (request)",
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/O=cloison fleet lab/CN={name}"),
            ],
        )?;
        openssl(
            "openssl (certificate)",
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        )
    };
    leaf(
        "collector",
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:{COLLECTOR},DNS:collector\n"
        ),
    )?;
    for name in boxes {
        leaf(
            name,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
                .to_owned(),
        )?;
    }
    Ok(())
}

impl Fleet {
    /// Builds the collector (certificates, journal-remote, Prometheus), then the boxes,
    /// starts every daemon and engine, and waits until Prometheus scrapes every box.
    pub fn up(options: &FleetOptions, programs: &Programs) -> Result<Fleet, FleetError> {
        if options.boxes == 0 || options.boxes > MAX_BOXES {
            return Err(FleetError::Size(options.boxes));
        }
        crate::packages::ensure(&PACKAGES)?;
        let mut collector = Collector::create()?;
        let names: Vec<String> = (1..=options.boxes).map(|k| format!("box-{k}")).collect();
        let pki = collector.dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(|source| FleetError::Dir {
            path: pki.clone(),
            source,
        })?;
        make_pki(&pki, &names)?;
        collector.start_journal_remote()?;
        let boxes_addr: Vec<Ipv4Addr> = (1..=options.boxes)
            .map(|k| Ipv4Addr::new(198, 18, 0, u8::try_from(10 + k).expect("at most 240")))
            .collect();
        collector.start_prometheus(&boxes_addr, options)?;

        // The box's wire to the collector is an interface cloison does not manage: trusted,
        // as an admin's management network would be, or the scrapes are dropped on input.
        let lab_text = include_str!("../../../config/lab.toml").replacen(
            "ssh_port = 22",
            &format!("ssh_port = 22\ntrusted_interfaces = [\"{BOX_IF}\"]"),
            1,
        );
        let mut fleet = Fleet {
            boxes: Vec::new(),
            collector,
            next_port: 10_000.into(),
        };
        for (k, (name, addr)) in names.iter().zip(&boxes_addr).enumerate() {
            let text = (options.box_config)(
                k + 1,
                lab_text.replacen("name = \"mairie-lab\"", &format!("name = \"{name}\""), 1),
            );
            let config =
                cloison_core::config::parse(&text, name).map_err(|e| FleetError::Failed {
                    what: format!("the configuration of {name}"),
                    detail: e.to_string(),
                })?;
            let b = FleetBox::build(name, *addr, &config, &text, programs, &fleet.collector)?;
            fleet.boxes.push(b);
        }
        for b in &mut fleet.boxes {
            b.rig.spawn_daemon(&[]).map_err(|source| FleetError::Box {
                name: b.name.clone(),
                source: Box::new(source),
            })?;
        }
        for b in &mut fleet.boxes {
            b.rig
                .await_notify("READY=1", Duration::from_secs(60))
                .map_err(|source| FleetError::Box {
                    name: b.name.clone(),
                    source: Box::new(source),
                })?;
            b.write_metrics()?;
            b.start_engines(&fleet.collector)?;
        }
        fleet.collector.wait_targets_up(options.boxes)?;
        Ok(fleet)
    }

    /// Floods from every box's kiosk at once: `packets` UDP datagrams to the mairie
    /// server, spread over `flows` destination ports not used before (each a new flow,
    /// with its own first alert), all dropped and counted as `kiosk/mairie`. How long the
    /// sending took.
    pub fn flood(&self, packets: usize, flows: u16) -> Result<Duration, FleetError> {
        let started = Instant::now();
        let flows = flows.max(1);
        let first = self
            .next_port
            .fetch_add(flows, std::sync::atomic::Ordering::Relaxed);
        let per_flow = packets / usize::from(flows);
        std::thread::scope(|scope| {
            let sends: Vec<_> = self
                .boxes
                .iter()
                .map(|b| {
                    scope.spawn(move || {
                        for port in first..first.saturating_add(flows) {
                            crate::send_udp_burst(
                                b.rig.lab.ns(Node::Kiosk),
                                b.rig.addr(Node::MairieSrv, port),
                                per_flow,
                                b"cloison fleet lab: flood",
                            )?;
                        }
                        Ok::<(), crate::ProbeError>(())
                    })
                })
                .collect();
            for (b, s) in self.boxes.iter().zip(sends) {
                s.join()
                    .expect("flood thread")
                    .map_err(|e| FleetError::Failed {
                        what: format!("the flood from {}'s kiosk", b.name),
                        detail: e.to_string(),
                    })?;
            }
            Ok(started.elapsed())
        })
    }

    /// Waits until `done(box)` holds for every box (checked in turn, each box once it
    /// holds is not checked again); the boxes still not done after `within`.
    pub fn wait_each(
        &self,
        within: Duration,
        mut done: impl FnMut(&FleetBox) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut pending: Vec<&FleetBox> = self.boxes.iter().collect();
        loop {
            pending.retain(|b| !done(b));
            if pending.is_empty() || Instant::now() > deadline {
                return pending.iter().map(|b| b.name.clone()).collect();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the engines in order: uploads, journal-remote (its files closed), Prometheus,
    /// exporters. The boxes and the collector namespace go on drop.
    pub fn stop_engines(&mut self) -> Vec<Option<i32>> {
        let uploads = stop_all(
            self.boxes
                .iter_mut()
                .filter_map(|b| b.uploader.as_mut())
                .collect(),
            Duration::from_secs(10),
        );
        for b in &mut self.boxes {
            b.uploader = None;
        }
        self.collector.stop();
        stop_all(
            self.boxes
                .iter_mut()
                .filter_map(|b| b.exporter.as_mut())
                .collect(),
            Duration::from_secs(5),
        );
        for b in &mut self.boxes {
            b.exporter = None;
        }
        uploads
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_engines();
    }
}

impl FleetBox {
    fn build(
        name: &str,
        addr: Ipv4Addr,
        config: &Config,
        text: &str,
        programs: &Programs,
        collector: &Collector,
    ) -> Result<FleetBox, FleetError> {
        let rig = Rig::with_journal(config, text, programs, JournalOptions::fleet_box(name))
            .map_err(|source| FleetError::Box {
                name: name.to_owned(),
                source: Box::new(source),
            })?;
        let dir = registry::log_dir(rig.lab.id()).join("fleet");
        let textfile = dir.join("textfile");
        std::fs::create_dir_all(&textfile).map_err(|source| FleetError::Dir {
            path: textfile,
            source,
        })?;
        for ext in ["crt", "key"] {
            let from = collector.dir.join("pki").join(format!("{name}.{ext}"));
            std::fs::copy(&from, dir.join(format!("box.{ext}")))
                .map_err(|source| FleetError::Dir { path: from, source })?;
        }
        // The wire: made in the collector's namespace, its peer pushed straight into the
        // box's router namespace.
        let k = u32::from(addr) - u32::from(COLLECTOR);
        let port = format!("fb{k}");
        let router = rig.lab.ns(Node::Router).to_owned();
        netns::start_ip(
            Some(&collector.ns),
            &[
                format!("link add {port} type veth peer name {BOX_IF} netns {router}"),
                format!("link set {port} master br0 up"),
            ],
        )
        .and_then(netns::IpRun::wait)
        .map_err(FleetError::Wire)?;
        netns::start_ip(
            Some(&router),
            &[
                format!("addr add {addr}/24 dev {BOX_IF}"),
                format!("link set {BOX_IF} up"),
            ],
        )
        .and_then(netns::IpRun::wait)
        .map_err(FleetError::Wire)?;
        Ok(FleetBox {
            name: name.to_owned(),
            addr,
            rig,
            dir,
            uploader: None,
            exporter: None,
        })
    }

    /// The directory node_exporter's textfile collector reads.
    pub fn textfile_dir(&self) -> PathBuf {
        self.dir.join("textfile")
    }

    /// journal-upload's state file (`LAST_CURSOR=`), rewritten after every accepted POST.
    pub fn upload_state(&self) -> PathBuf {
        self.dir.join("upload.state")
    }

    /// `cloison metrics --output <textfile>/cloison.prom` in the router, as
    /// cloison-metrics.service runs it.
    pub fn write_metrics(&self) -> Result<(), FleetError> {
        let out = self.textfile_dir().join("cloison.prom");
        run(
            &format!("cloison metrics on {}", self.name),
            self.rig
                .lab
                .command(Node::Router, &self.rig.programs().cloison)
                .args(["metrics", "-c"])
                .arg(self.rig.config_path())
                .arg("--output")
                .arg(out)
                .env("CLOISON_RUNTIME_DIR", self.rig.runtime_dir())
                .env("CLOISON_STATE_DIR", self.rig.state_dir()),
        )
        .map(drop)
    }

    fn start_engines(&mut self, collector: &Collector) -> Result<(), FleetError> {
        let router = self.rig.lab.ns(Node::Router).to_owned();
        let mut exporter = Command::new("nsenter");
        exporter
            .arg(format!("--net=/run/netns/{router}"))
            .arg("--")
            .arg(NODE_EXPORTER)
            .arg(format!(
                "--web.listen-address={}:{NODE_EXPORTER_PORT}",
                self.addr
            ))
            .args([
                "--collector.disable-defaults",
                "--collector.textfile",
                "--web.disable-exporter-metrics",
                "--log.level=warn",
            ])
            .arg(format!(
                "--collector.textfile.directory={}",
                self.textfile_dir().display()
            ));
        self.exporter = Some(spawn(
            "prometheus-node-exporter",
            exporter,
            &self.dir.join("node-exporter.log"),
        )?);
        self.uploader = Some(self.spawn_uploader(collector)?);
        Ok(())
    }

    /// journal-upload inside the box (its journal's mount and UTS namespaces, the
    /// router's network), following the box's journal.
    fn spawn_uploader(&self, collector: &Collector) -> Result<Child, FleetError> {
        let j = &self.rig.journal;
        let mut up = Command::new("nsenter");
        up.arg(format!("--mount={}", j.mount_ns_path().display()))
            .arg(format!("--uts={}", j.uts_ns_path().display()))
            .arg(format!(
                "--net=/run/netns/{}",
                self.rig.lab.ns(Node::Router)
            ))
            .arg("--")
            .arg(JOURNAL_UPLOAD)
            .arg(format!("--url=https://{COLLECTOR}:{JOURNAL_REMOTE_PORT}"))
            .arg(format!("--key={}", self.dir.join("box.key").display()))
            .arg(format!("--cert={}", self.dir.join("box.crt").display()))
            .arg(format!(
                "--trust={}",
                collector.dir.join("pki/ca.crt").display()
            ))
            .arg(format!("--save-state={}", self.upload_state().display()))
            .env("SYSTEMD_LOG_TARGET", "console");
        spawn(
            &format!("systemd-journal-upload on {}", self.name),
            up,
            &self.dir.join("journal-upload.log"),
        )
    }

    /// `cloison status --json` in the box's router, with its exit status.
    pub fn status(&self) -> Result<(Value, Option<i32>), FleetError> {
        let out = self.rig.cloison(&["status", "--json"]);
        let v = serde_json::from_slice(&out.stdout).map_err(|e| FleetError::Failed {
            what: format!("cloison status --json on {}", self.name),
            detail: format!("{e}: {}", String::from_utf8_lossy(&out.stderr)),
        })?;
        Ok((v, out.status.code()))
    }

    /// Writes the metrics while the counters hold still (read before and after the same),
    /// so what Prometheus will show can be compared with `cloison status`. That status.
    pub fn publish_metrics(&self) -> Result<Value, FleetError> {
        for _ in 0..20 {
            let (before, _) = self.status()?;
            self.write_metrics()?;
            let (after, _) = self.status()?;
            if before["counters"] == after["counters"] && before["sync"] == after["sync"] {
                return Ok(after);
            }
        }
        Err(FleetError::Failed {
            what: format!("metrics of {}", self.name),
            detail: "the counters never held still".into(),
        })
    }

    /// cloison's own entries in the box's journal (`-t cloison`, every field).
    pub fn alerts(&self) -> Result<Vec<Value>, FleetError> {
        self.rig
            .journal
            .entries(&["--all", "-t", "cloison"])
            .map_err(|e| FleetError::Failed {
                what: format!("the journal of {}", self.name),
                detail: e.to_string(),
            })
    }

    /// Whether the box's journal reports every packet `counter` dropped (the sum of
    /// CLOISON_PACKETS of its entries equals the live counter).
    pub fn accounted(&self, counter: &str) -> bool {
        let Ok((status, _)) = self.status() else {
            return false;
        };
        let live = status["counters"][counter]["packets"].as_u64();
        let Ok(alerts) = self.alerts() else {
            return false;
        };
        live.is_some_and(|n| n > 0 && n == packets_of(&alerts, counter))
    }

    pub fn uploader_pid(&self) -> Option<u32> {
        self.uploader.as_ref().map(Child::id)
    }

    pub fn exporter_pid(&self) -> Option<u32> {
        self.exporter.as_ref().map(Child::id)
    }
}

impl Collector {
    /// The collector's namespace with its bridge, registered for removal.
    fn create() -> Result<Collector, FleetError> {
        registry::install_signal_handler().map_err(FleetError::Record)?;
        let id = registry::next_id();
        let ns = format!("{id}-collector");
        registry::live().insert(id.clone(), vec![ns.clone()]);
        let mut c = Collector {
            dir: registry::log_dir(&id),
            id,
            ns,
            journal_remote: None,
            prometheus: None,
            armed: true,
        };
        registry::write_record(&c.record()).map_err(FleetError::Record)?;
        netns::add_all(&[c.ns.as_str()]).map_err(FleetError::Wire)?;
        netns::start_ip(
            Some(&c.ns),
            &[
                "link set lo up".to_owned(),
                "link add br0 type bridge".to_owned(),
                format!("addr add {COLLECTOR}/24 dev br0"),
                "link set br0 up".to_owned(),
            ],
        )
        .and_then(netns::IpRun::wait)
        .map_err(FleetError::Wire)?;
        for d in ["journal", "tsdb"] {
            let path = c.dir.join(d);
            std::fs::create_dir_all(&path).map_err(|source| FleetError::Dir { path, source })?;
        }
        c.armed = true;
        Ok(c)
    }

    fn record(&self) -> LabRecord {
        LabRecord {
            id: self.id.clone(),
            creator_pid: std::process::id(),
            creator_pid_ns: registry::pid_namespace(),
            creator_start: registry::start_time(std::process::id()).unwrap_or(0),
            kept: false,
            namespaces: [("collector".to_owned(), self.ns.clone())].into(),
            listeners: Vec::new(),
            session: Some(registry::Session::current()),
        }
    }

    /// The collector's network namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Where journal-remote writes (one `remote-<box address>.journal` per box).
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("journal")
    }

    fn in_ns(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .arg(program);
        c
    }

    fn start_journal_remote(&mut self) -> Result<(), FleetError> {
        let mut cmd = self.in_ns(JOURNAL_REMOTE);
        let pki = self.dir.join("pki");
        cmd.arg(format!("--listen-https={COLLECTOR}:{JOURNAL_REMOTE_PORT}"))
            .arg(format!("--key={}", pki.join("collector.key").display()))
            .arg(format!("--cert={}", pki.join("collector.crt").display()))
            .arg(format!("--output={}/", self.journal_dir().display()))
            .arg("--split-mode=host")
            .env("SYSTEMD_LOG_TARGET", "console");
        let log = self.dir.join("journal-remote.log");
        let child = spawn("systemd-journal-remote", cmd, &log)?;
        let child = self.journal_remote.insert(child);
        let pid = child.id();
        self.wait_listening("systemd-journal-remote", JOURNAL_REMOTE_PORT, pid, &log)
    }

    fn wait_listening(
        &self,
        what: &str,
        port: u16,
        pid: u32,
        log: &Path,
    ) -> Result<(), FleetError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while !listening(&self.ns, port) {
            if Instant::now() > deadline || !alive(pid) {
                return Err(FleetError::NotReady {
                    what: what.to_owned(),
                    within: START_TIMEOUT,
                    log: std::fs::read_to_string(log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Prometheus, scraping every box's node exporter (checked by `promtool check
    /// config` first), with the rules when given.
    fn start_prometheus(
        &mut self,
        boxes: &[Ipv4Addr],
        options: &FleetOptions,
    ) -> Result<(), FleetError> {
        let every = format!("{}ms", options.scrape_every.as_millis());
        let mut yml = format!(
            "global:\n  scrape_interval: {every}\n  scrape_timeout: {every}\n  evaluation_interval: {every}\n"
        );
        if let Some(rules) = &options.rules {
            let to = self.dir.join("cloison.rules.yml");
            std::fs::copy(rules, &to).map_err(|source| FleetError::Dir {
                path: rules.clone(),
                source,
            })?;
            yml.push_str(&format!("rule_files:\n  - {}\n", to.display()));
        }
        yml.push_str(
            "scrape_configs:\n  - job_name: cloison\n    static_configs:\n      - targets:\n",
        );
        for a in boxes {
            yml.push_str(&format!("          - \"{a}:{NODE_EXPORTER_PORT}\"\n"));
        }
        let config = self.dir.join("prometheus.yml");
        std::fs::write(&config, yml).map_err(|source| FleetError::Dir {
            path: config.clone(),
            source,
        })?;
        run(
            "promtool check config",
            Command::new(PROMTOOL)
                .args(["check", "config"])
                .arg(&config),
        )?;
        let mut cmd = self.in_ns(PROMETHEUS);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("tsdb").display()
            ))
            .arg("--storage.tsdb.retention.time=2h")
            .arg(format!(
                "--web.listen-address={COLLECTOR}:{PROMETHEUS_PORT}"
            ))
            .arg("--log.level=warn");
        let log = self.dir.join("prometheus.log");
        let child = spawn("prometheus", cmd, &log)?;
        let pid = self.prometheus.insert(child).id();
        self.wait_listening("prometheus", PROMETHEUS_PORT, pid, &log)?;
        let deadline = Instant::now() + START_TIMEOUT;
        while self.get("/-/ready").is_err() {
            if Instant::now() > deadline {
                return Err(FleetError::NotReady {
                    what: "prometheus /-/ready".into(),
                    within: START_TIMEOUT,
                    log: std::fs::read_to_string(&log).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A GET to Prometheus's HTTP API; the body.
    pub fn get(&self, path: &str) -> Result<String, FleetError> {
        http_get(
            &self.ns,
            SocketAddr::new(COLLECTOR.into(), PROMETHEUS_PORT),
            path,
        )
    }

    /// `/api/v1/query?query=Q`: the result vector (each `{metric, value}`).
    pub fn query(&self, q: &str) -> Result<Vec<Value>, FleetError> {
        let path = format!("/api/v1/query?query={}", url_encode(q));
        let body = self.get(&path)?;
        let bad = |detail: String| FleetError::Prometheus {
            path: path.clone(),
            detail,
        };
        let v: Value = serde_json::from_str(&body).map_err(|e| bad(format!("{e}: {body}")))?;
        if v["status"] != "success" {
            return Err(bad(body));
        }
        v["data"]["result"]
            .as_array()
            .cloned()
            .ok_or_else(|| bad(body.clone()))
    }

    /// The samples of `q` by the value of `label`: label value -> sample value.
    pub fn values_by(&self, q: &str, label: &str) -> Result<BTreeMap<String, f64>, FleetError> {
        Ok(self
            .query(q)?
            .iter()
            .filter_map(|r| {
                let key = r["metric"][label].as_str()?.to_owned();
                let value = r["value"][1].as_str()?.parse().ok()?;
                Some((key, value))
            })
            .collect())
    }

    /// Waits until Prometheus scrapes `n` targets successfully (its first scrape comes at
    /// least 5 s after it started, whatever the interval).
    fn wait_targets_up(&self, n: usize) -> Result<(), FleetError> {
        let within = Duration::from_secs(60);
        let deadline = Instant::now() + within;
        loop {
            let up = self
                .get("/api/v1/targets?state=active")
                .ok()
                .and_then(|b| serde_json::from_str::<Value>(&b).ok())
                .map(|v| {
                    v["data"]["activeTargets"]
                        .as_array()
                        .map_or(0, |t| t.iter().filter(|t| t["health"] == "up").count())
                })
                .unwrap_or(0);
            if up == n {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(FleetError::NotReady {
                    what: format!("prometheus targets ({up} of {n} up)"),
                    within,
                    log: std::fs::read_to_string(self.dir.join("prometheus.log"))
                        .unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `journalctl --directory=<collector> ARGS -o json --all` (fields over 4 KiB
    /// included): one JSON object per entry.
    pub fn entries(&self, args: &[&str]) -> Result<Vec<Value>, FleetError> {
        let out = run(
            "journalctl on the collector",
            Command::new("journalctl")
                .arg(format!("--directory={}", self.journal_dir().display()))
                .args(["--no-pager", "-o", "json", "--all"])
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// cloison's entries on the collector, by the box that sent them (`_HOSTNAME`).
    pub fn alerts_by_box(&self) -> Result<BTreeMap<String, Vec<Value>>, FleetError> {
        let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for e in self.entries(&["SYSLOG_IDENTIFIER=cloison"])? {
            let host = e["_HOSTNAME"].as_str().unwrap_or("?").to_owned();
            by.entry(host).or_default().push(e);
        }
        Ok(by)
    }

    /// `metric` of every box as Prometheus has it, joined with cloison_config_info for
    /// the router's name (as the rules and the dashboard do): router -> the rest of the
    /// labels (`from/to` for counters, empty otherwise) -> value.
    pub fn by_router(
        &self,
        metric: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, f64>>, FleetError> {
        let q = format!("{metric} * on(instance) group_left(router) cloison_config_info");
        let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for r in self.query(&q)? {
            let m = &r["metric"];
            let Some(router) = m["router"].as_str() else {
                continue;
            };
            let key = match (m["from"].as_str(), m["to"].as_str()) {
                (Some(f), Some(t)) => format!("{f}/{t}"),
                (None, Some(t)) => t.to_owned(),
                _ => String::new(),
            };
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN);
            out.entry(router.to_owned()).or_default().insert(key, value);
        }
        Ok(out)
    }

    /// journal-remote and Prometheus: (pid, name) of those running.
    pub fn engines(&self) -> Vec<(u32, &'static str)> {
        let mut v = Vec::new();
        if let Some(c) = &self.journal_remote {
            v.push((c.id(), "systemd-journal-remote"));
        }
        if let Some(c) = &self.prometheus {
            v.push((c.id(), "prometheus"));
        }
        v
    }

    /// Stops journal-remote (its files closed: OFFLINE) and Prometheus.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.journal_remote.take() {
            stop_all(vec![&mut c], Duration::from_secs(10));
        }
        if let Some(mut c) = self.prometheus.take() {
            stop_all(vec![&mut c], Duration::from_secs(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
        if !self.armed {
            return;
        }
        self.armed = false;
        let mut live = registry::live();
        if let Err(e) = registry::remove_lab(&self.id, &[self.ns.as_str()]) {
            eprintln!("cloison-lab: cannot remove the fleet's collector: {e}");
        }
        live.remove(&self.id);
    }
}

/// The packets a set of entries reports for `counter` (sum of CLOISON_PACKETS where
/// CLOISON_COUNTER is it).
pub fn packets_of(entries: &[Value], counter: &str) -> u64 {
    entries
        .iter()
        .filter(|e| e["CLOISON_COUNTER"] == counter)
        .filter_map(|e| e["CLOISON_PACKETS"].as_str()?.parse::<u64>().ok())
        .sum()
}

/// An entry as the collector must have it: every field but the cursor (which names a
/// position in one journal file).
pub fn comparable(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(o) = e.as_object_mut() {
        o.remove("__CURSOR");
    }
    e
}

/// A process's resident memory, peak resident memory (KiB) and CPU time used so far.
pub fn usage(pid: u32) -> Option<(u64, u64, Duration)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after the command name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()?
        .max(1);
    Some((
        kib("VmRSS:")?,
        kib("VmHWM:")?,
        Duration::from_millis(ticks * 1000 / hz),
    ))
}
