//! What the lab benchmarks share: command-line options, CPU and memory readings from
//! /proc, the machine's load, traffic generators and sinks that run in lab namespaces
//! (threads that `setns` into a namespace; the bench process itself never leaves the
//! machine's namespace and never changes it), interface and nftables counters, and
//! median/spread formatting.
//!
//! Every namespace comes from `cloison_lab::Lab` (through `Rig`), which removes it on
//! drop, on panic and on Ctrl-C.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The programs under test: `cloison` and `cloison-lab`, built by cargo next to this
/// bench (`cargo bench --workspace` builds them).
pub fn programs() -> cloison_lab::Programs {
    cloison_lab::Programs::find().unwrap_or_else(|e| panic!("{e}"))
}

/// config/lab.toml, as an absolute path.
pub const LAB_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/lab.toml");

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Options shared by the lab benches: `--reps N`, `--secs S`, `--quick`, plus any
/// `--name value` pair the bench asks for.
pub struct Args {
    pairs: Vec<(String, String)>,
    pub quick: bool,
}

impl Args {
    /// The options, or `None` when the binary was not started by `cargo bench` (which
    /// passes `--bench`): `cargo test --all-targets` builds and runs bench targets too,
    /// and a benchmark is not a test (nothing is printed on stdout then, so test
    /// runners listing tests find none).
    pub fn parse(name: &str) -> Option<Args> {
        let mut pairs = Vec::new();
        let mut quick = false;
        let mut bench = false;
        let mut it = std::env::args().skip(1).peekable();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--bench" => bench = true,
                "--quick" => quick = true,
                s if s.starts_with("--") && it.peek().is_some_and(|v| !v.starts_with("--")) => {
                    let v = it.next().unwrap_or_default();
                    pairs.push((s.trim_start_matches("--").to_owned(), v));
                }
                // A filter cargo passes through (`cargo bench NAME`), or a flag of
                // another runner: ignored.
                _ => {}
            }
        }
        if !bench {
            eprintln!("{name}: a benchmark, not a test; run it with `cargo bench --bench {name}`");
            return None;
        }
        Some(Args { pairs, quick })
    }

    /// `parse` for a bench that builds labs: also `None`, after a SKIP line saying what
    /// it `needs`, when not run as root.
    pub fn parse_as_root(name: &str, needs: &str) -> Option<Args> {
        let args = Args::parse(name)?;
        if !is_root() {
            eprintln!("SKIP {name}: needs root ({needs})");
            return None;
        }
        Some(args)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name)
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("--{name} {v}: not a number"))
            })
            .unwrap_or(default)
    }

    pub fn list(&self, name: &str, default: &[usize]) -> Vec<usize> {
        match self.get(name) {
            Some(v) => v
                .split(',')
                .map(|x| x.trim().parse().expect("a comma-separated list of numbers"))
                .collect(),
            None => default.to_vec(),
        }
    }
}

/// Spawns a thread that enters network namespace `ns` and runs `f` there. Sockets it
/// makes stay in `ns`. The calling thread (and process) stay where they are.
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .expect("spawn a thread")
}

/// Runs `f` in namespace `ns` and waits for it.
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(ns, "bench-netns", f)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

// ---------------------------------------------------------------------------------------
// CPU, memory and load

/// Clock ticks of a process from /proc/PID/stat: its own threads (utime + stime, every
/// thread, alive or exited) and its reaped children (cutime + cstime: the `nft`
/// processes the daemon runs).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcTimes {
    pub own: u64,
    pub children: u64,
}

pub fn proc_times(pid: u32) -> Option<ProcTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15, cutime 16, cstime 17.
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcTimes {
        own: n(14)? + n(15)?,
        children: n(16)? + n(17)?,
    })
}

pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// Percent of one core used by `ticks` over `secs`.
pub fn pct(ticks: u64, secs: f64) -> f64 {
    ticks as f64 / ticks_per_sec() / secs * 100.0
}

/// VmRSS and VmHWM (peak) of a process, KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub fn mem(pid: u32) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Busy and total jiffies of the whole machine (/proc/stat, all cores).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

pub fn machine_cpu() -> MachineCpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    MachineCpu {
        busy: total - idle,
        total,
    }
}

/// Cores busy (0..=cores) between two readings.
pub fn cores_busy(a: MachineCpu, b: MachineCpu) -> f64 {
    let total = b.total.saturating_sub(a.total) as f64;
    if total == 0.0 {
        return f64::NAN;
    }
    b.busy.saturating_sub(a.busy) as f64 / total * cores() as f64
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Processes other than ours using the CPU right now (from /proc, `ps`-like), for the
/// record: name and percent of a core over the last `window`.
pub fn busy_others(window: Duration) -> Vec<(String, f64)> {
    fn snapshot() -> Vec<(u32, String, u64)> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let name = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
                Some((pid, name, proc_times(pid)?.own))
            })
            .collect()
    }
    let a = snapshot();
    std::thread::sleep(window);
    let b = snapshot();
    let me = std::process::id();
    let mut out: Vec<(String, f64)> = b
        .iter()
        .filter(|(pid, _, _)| *pid != me)
        .filter_map(|(pid, name, t)| {
            let before = a.iter().find(|(p, n, _)| p == pid && n == name)?.2;
            let p = pct(t.saturating_sub(before), window.as_secs_f64());
            (p >= 5.0).then(|| (name.clone(), p))
        })
        .collect();
    out.sort_by(|x, y| y.1.total_cmp(&x.1));
    out
}

/// One measurement window: wall time, the daemon's CPU (if any), and the machine's load.
pub struct Window {
    start: Instant,
    pid: Option<u32>,
    cpu: Option<ProcTimes>,
    machine: MachineCpu,
    pub load1: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct WindowResult {
    pub secs: f64,
    /// The daemon's own threads, % of one core.
    pub daemon_pct: f64,
    /// Its `nft` children, % of one core.
    pub children_pct: f64,
    /// Cores busy on the whole machine (ours, the traffic's and everybody else's).
    pub machine_cores: f64,
    pub load1: f64,
}

impl Window {
    pub fn start(pid: Option<u32>) -> Window {
        Window {
            start: Instant::now(),
            cpu: pid.and_then(proc_times),
            pid,
            machine: machine_cpu(),
            load1: loadavg(),
        }
    }

    pub fn end(&self) -> WindowResult {
        let secs = self.start.elapsed().as_secs_f64();
        let after = self.pid.and_then(proc_times);
        let (daemon_pct, children_pct) = match (self.cpu, after) {
            (Some(a), Some(b)) => (pct(b.own - a.own, secs), pct(b.children - a.children, secs)),
            _ => (f64::NAN, f64::NAN),
        };
        WindowResult {
            secs,
            daemon_pct,
            children_pct,
            machine_cores: cores_busy(self.machine, machine_cpu()),
            load1: self.load1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Counters in the lab

fn ip_json(ns: &str, args: &[&str]) -> serde_json::Value {
    let out = sh(ns, &[&["ip", "-j"], args].concat());
    serde_json::from_str(&out).expect("ip -j prints JSON")
}

/// (rx packets, tx packets, rx bytes, tx bytes) of `ifname` in namespace `ns`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

pub fn link_stats(ns: &str, ifname: &str) -> LinkStats {
    let v = ip_json(ns, &["-s", "link", "show", "dev", ifname]);
    let s = &v[0]["stats64"];
    let n = |dir: &str, what: &str| s[dir][what].as_u64().unwrap_or(0);
    LinkStats {
        rx_packets: n("rx", "packets"),
        tx_packets: n("tx", "packets"),
        rx_bytes: n("rx", "bytes"),
        tx_bytes: n("tx", "bytes"),
    }
}

/// Packets of the named counter of `table inet cloison` in `ns` (0 without the table).
pub fn nft_counter(ns: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-j", "list", "counter", "inet", "cloison", name,
        ])
        .output()
        .expect("run nft");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["counter"]["packets"].as_u64())
        .unwrap_or(0)
}

/// Every named counter of `table inet cloison` in `ns`: name -> packets.
pub fn nft_counters(ns: &str) -> std::collections::BTreeMap<String, u64> {
    let out = Command::new("ip")
        .args([
            "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "inet", "cloison",
        ])
        .output()
        .expect("run nft");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let c = o.get("counter")?;
            Some((c["name"].as_str()?.to_owned(), c["packets"].as_u64()?))
        })
        .collect()
}

/// Runs `args` in namespace `ns`; panics with its stderr when it fails.
pub fn sh(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run ip netns exec");
    assert!(
        out.status.success(),
        "{} in {ns}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` in `ns` with `input` on stdin.
pub fn sh_input(ns: &str, args: &[&str], input: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{} in {ns}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Traffic

/// A running generator or sink: a count it advances, and a stop flag.
pub struct Running {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    handles: Vec<JoinHandle<()>>,
}

impl Running {
    fn new() -> Running {
        Running {
            stop: Arc::new(AtomicBool::new(false)),
            count: Arc::new(AtomicU64::new(0)),
            handles: Vec::new(),
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops and joins; returns the final count.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        self.count()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Runs `f` every `period` on a thread of its own (in this process's namespace) until
/// stopped; the count is the number of calls.
pub fn every(period: Duration, mut f: impl FnMut() + Send + 'static) -> Running {
    let mut r = Running::new();
    let (stop, count) = (Arc::clone(&r.stop), Arc::clone(&r.count));
    let h = std::thread::Builder::new()
        .name("bench-every".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                f();
                count.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(period);
            }
        })
        .expect("spawn a thread");
    r.handles.push(h);
    r
}

/// A TCP bulk transfer from `from_ns` to a sink listening on `to` inside `to_ns`; the
/// count is the bytes the sink received.
pub fn tcp_bulk(from_ns: &str, to_ns: &str, to: SocketAddrV4) -> Running {
    let mut r = Running::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, count) = (Arc::clone(&r.stop), Arc::clone(&r.count));
    let sink = spawn_in(to_ns, "tcp-sink", move || {
        let listener = TcpListener::bind(SocketAddrV4::new(*to.ip(), to.port())).expect("bind");
        ready_tx.send(()).expect("ready");
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    count.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(_) => {}
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("tcp sink ready");
    let stop = Arc::clone(&r.stop);
    let sender = spawn_in(from_ns, "tcp-send", move || {
        let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(3))
            .expect("connect to the tcp sink");
        stream
            .set_write_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let buf = vec![0x5au8; 256 << 10];
        while !stop.load(Ordering::Relaxed) {
            let _ = stream.write(&buf);
        }
    });
    // Sender first, so the sink sees the end of the stream.
    r.handles.push(sender);
    r.handles.push(sink);
    r
}

/// How a UDP flood picks its destination ports.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// One flow.
    One,
    /// Every datagram to the next port (1..=65535): a new flow each time.
    Spread,
}

/// A UDP flood from `from_ns` to `to`, datagrams of `payload` bytes, as fast as one
/// thread sends with `sendmmsg`; the count is datagrams the kernel accepted.
pub fn udp_flood(from_ns: &str, to: SocketAddrV4, payload: usize, ports: Ports) -> Running {
    let mut r = Running::new();
    let (stop, count) = (Arc::clone(&r.stop), Arc::clone(&r.count));
    let h = spawn_in(from_ns, "udp-flood", move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind");
        // The first datagram alone, so ARP resolves before the burst.
        socket.send_to(&vec![0u8; payload], to).expect("send");
        std::thread::sleep(Duration::from_millis(50));
        let data = vec![0x42u8; payload];
        const BATCH: usize = 64;
        let mut port: u16 = 1;
        let mut addrs: Vec<libc::sockaddr_in> = (0..BATCH).map(|_| sockaddr(to)).collect();
        let mut iovs: Vec<libc::iovec> = (0..BATCH)
            .map(|_| libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            })
            .collect();
        while !stop.load(Ordering::Relaxed) {
            if let Ports::Spread = ports {
                for a in &mut addrs {
                    a.sin_port = port.to_be();
                    port = port.checked_add(1).unwrap_or(1);
                }
            }
            // SAFETY: mmsghdr is plain data; each points at live iovecs and addresses.
            let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
                .map(|i| {
                    // SAFETY: mmsghdr is plain data; zeroed is a valid value.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
                    m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    m.msg_hdr.msg_iov = &mut iovs[i];
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            // SAFETY: msgs is a valid array of BATCH mmsghdr.
            let n =
                unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), BATCH as u32, 0) };
            if n > 0 {
                count.fetch_add(n as u64, Ordering::Relaxed);
            } else {
                // ENOBUFS and friends: the qdisc or a queue is full; go on.
                std::thread::yield_now();
            }
        }
    });
    r.handles.push(h);
    r
}

/// One `mmsghdr` per iovec (no address), for `sendmmsg`/`recvmmsg`; the iovecs must
/// outlive the call that uses them.
fn mmsghdrs(iovs: &mut [libc::iovec]) -> Vec<libc::mmsghdr> {
    iovs.iter_mut()
        .map(|iov| {
            // SAFETY: mmsghdr is plain data; zeroed is valid, the iovec set below.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect()
}

/// setsockopt with an int value; best effort (a bench runs on without it).
fn set_int_option(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) {
    // SAFETY: valid fd, option and value size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        );
    }
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as u16;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

/// A UDP sink on `addr` in `ns`, receiving with `recvmmsg`; the count is datagrams.
pub fn udp_sink(ns: &str, addr: SocketAddrV4) -> Running {
    let mut r = Running::new();
    let (stop, count) = (Arc::clone(&r.stop), Arc::clone(&r.count));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = spawn_in(ns, "udp-sink", move || {
        let socket = UdpSocket::bind(addr).expect("bind the udp sink");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        set_int_option(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            8 << 20,
        );
        ready_tx.send(()).expect("ready");
        const BATCH: usize = 64;
        let mut bufs = vec![[0u8; 2048]; BATCH];
        while !stop.load(Ordering::Relaxed) {
            let mut iovs: Vec<libc::iovec> = bufs
                .iter_mut()
                .map(|b| libc::iovec {
                    iov_base: b.as_mut_ptr().cast(),
                    iov_len: b.len(),
                })
                .collect();
            let mut msgs = mmsghdrs(&mut iovs);
            // SAFETY: msgs is a valid array of BATCH mmsghdr over live buffers.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    BATCH as u32,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n > 0 {
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("udp sink ready");
    r.handles.push(h);
    r
}

/// Raw Ethernet frames sent on `ifname` in `ns` as fast as one thread can
/// (`sendmmsg` on an AF_PACKET socket, qdisc bypassed), cycling through `frames`, or
/// paced at `rate` frames a second; the count is frames the kernel accepted.
pub fn frame_flood(ns: &str, ifname: &str, frames: Vec<Vec<u8>>, rate: Option<f64>) -> Running {
    let mut r = Running::new();
    let (stop, count) = (Arc::clone(&r.stop), Arc::clone(&r.count));
    let ifname = ifname.to_owned();
    let h = spawn_in(ns, "frame-flood", move || {
        let index = nix::net::if_::if_nametoindex(ifname.as_str()).expect("interface");
        // SAFETY: socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        assert!(
            raw >= 0,
            "packet socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: raw is a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // PACKET_QDISC_BYPASS (linux/if_packet.h): straight to the driver.
        set_int_option(fd.as_raw_fd(), libc::SOL_PACKET, 20, 1);
        // SAFETY: sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index as i32;
        addr.sll_halen = 6;
        // SAFETY: valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        const BATCH: usize = 64;
        let mut next = 0usize;
        let started = Instant::now();
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if let Some(rate) = rate {
                // Small batches on a 100 µs grid: close to a steady stream.
                let due = (started.elapsed().as_secs_f64() * rate) as u64;
                if sent + 8 > due {
                    std::thread::sleep(Duration::from_micros(100));
                    continue;
                }
            }
            let batch = if rate.is_some() { 8 } else { BATCH };
            let mut iovs: Vec<libc::iovec> = (0..batch)
                .map(|_| {
                    let f = &frames[next % frames.len()];
                    next = next.wrapping_add(1);
                    libc::iovec {
                        iov_base: f.as_ptr() as *mut libc::c_void,
                        iov_len: f.len(),
                    }
                })
                .collect();
            let mut msgs = mmsghdrs(&mut iovs);
            // SAFETY: msgs is a valid array of `batch` mmsghdr over live frames.
            let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), batch as u32, 0) };
            if n > 0 {
                sent += n as u64;
                count.fetch_add(n as u64, Ordering::Relaxed);
            } else {
                std::thread::yield_now();
            }
        }
    });
    r.handles.push(h);
    r
}

// ---------------------------------------------------------------------------------------
// Configurations

/// The lab of config/lab.toml with its rig (journald, `cloison` as systemd would run
/// it); nothing applied yet.
pub fn lab_rig() -> (cloison_core::config::Config, cloison_lab::rig::Rig) {
    let path = Path::new(LAB_TOML);
    let config = cloison::config_file::load(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let rig = cloison_lab::rig::Rig::new(&config, path, &programs())
        .unwrap_or_else(|e| panic!("rig: {e:#?}"));
    (config, rig)
}

/// `cloison apply` in the rig's router; panics with its stderr when it fails.
pub fn apply(rig: &cloison_lab::rig::Rig) {
    let out = rig.cloison(&["apply"]);
    assert!(
        out.status.success(),
        "cloison apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn lab_config_text() -> String {
    std::fs::read_to_string(LAB_TOML).expect("config/lab.toml")
}

/// config/lab.toml plus `n - 3` segments of their own interface (`x1`, `x2`...), each
/// with an IPv4 /24 in 172.16.0.0/12 and an IPv6 /64, reaching the Internet through
/// `isp`, offering DNS. The lab gives each its bridge and router port; no host uses them.
pub fn config_with_segments(n: usize) -> String {
    assert!((3..=3 + 4000).contains(&n), "between 3 and 4003 segments");
    let mut text = lab_config_text();
    for i in 1..=n - 3 {
        let (hi, lo) = (16 + i / 256, i % 256);
        text.push_str(&format!(
            "\n[segments.x{i}]\ninterface = \"x{i}\"\naddress = \"172.{hi}.{lo}.1/24\"\n\
             address6 = \"fd01:{i:x}::1/64\"\nuplink = \"isp\"\nservices = [\"dns\"]\n"
        ));
    }
    text
}

/// Writes `text` to a fresh file under the temp directory; removed by the caller.
pub fn temp_file(tag: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("cloison-bench-{}-{tag}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write a temp file");
    path
}

// ---------------------------------------------------------------------------------------
// Statistics

pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// "median (min–max)" with `prec` decimals.
pub fn spread(v: &[f64], prec: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    if v.len() == 1 {
        return format!("{:.prec$}", v[0]);
    }
    format!("{:.prec$} ({:.prec$}–{:.prec$})", median(v), min(v), max(v))
}

/// The machine, for the header of every bench's output.
pub fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let others: Vec<String> = busy_others(Duration::from_secs(1))
        .into_iter()
        .map(|(n, p)| format!("{n} {p:.0}%"))
        .collect();
    format!(
        "machine: {model}, {} cores, kernel {}, load {:.2}; busy now: {}",
        cores(),
        kernel.trim(),
        loadavg(),
        if others.is_empty() {
            "nothing above 5% of a core".to_owned()
        } else {
            others.join(", ")
        }
    )
}

/// Runs `program args...` to completion under `/usr/bin/time` (a small process that
/// forks it, so the peak it reports is the program's own, not this bench's, whose memory
/// a child spawned from here would inherit in its accounting); (wall seconds, peak RSS
/// KiB, stdout). `prefix` runs first (e.g. `ip netns exec NS`). Panics on failure.
pub fn timed(prefix: &[&str], program: &str, args: &[&str]) -> (f64, u64, Vec<u8>) {
    try_timed(prefix, program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `timed`, with the failure (and the program's stderr) as an error.
pub fn try_timed(
    prefix: &[&str],
    program: &str,
    args: &[&str],
) -> Result<(f64, u64, Vec<u8>), String> {
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest);
            c.arg("/usr/bin/time");
            c
        }
        None => Command::new("/usr/bin/time"),
    };
    cmd.args(["-f", "maxrss-kib=%M", "--"])
        .arg(program)
        .args(args);
    let start = Instant::now();
    let out = cmd
        .output()
        .expect("run /usr/bin/time (Debian package `time`)");
    let secs = start.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{program} {}: {}", args.join(" "), stderr.trim()));
    }
    let kib = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("maxrss-kib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((secs, kib, out.stdout))
}

// ---------------------------------------------------------------------------------------
// What the daemon reports

/// `cloison status --json`'s capture counters of the kiosk's port: (received, dropped).
pub fn capture(rig: &cloison_lab::rig::Rig) -> (u64, u64) {
    let out = rig.cloison(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let c = &v["daemon"]["capture"]["seg-kiosk"];
    (
        c["received"].as_u64().unwrap_or(0),
        c["dropped"].as_u64().unwrap_or(0),
    )
}

/// Counters whose drops are cross_segment events: `<segment>/<segment or private>`.
pub fn cross_segment_total(
    counters: &std::collections::BTreeMap<String, u64>,
    segments: &[&str],
) -> u64 {
    counters
        .iter()
        .filter(|(name, _)| {
            name.split_once('/').is_some_and(|(from, to)| {
                segments.contains(&from) && (to == "private" || segments.contains(&to))
            })
        })
        .map(|(_, v)| v)
        .sum()
}

/// An entry's `CLOISON_PACKETS` (0 when absent).
pub fn packets(e: &serde_json::Value) -> u64 {
    e["CLOISON_PACKETS"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
