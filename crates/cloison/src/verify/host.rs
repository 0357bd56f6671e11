//! A probe host attached to a segment: a network namespace of its own (made by a thread
//! that `unshare`s, so nothing is mounted and the namespace dies with the process), a
//! veth pair into it, and two eBPF redirects that make its frames enter the router by
//! the segment's interface and send the router's answers back to it, never onto the
//! wire. Static neighbour entries on both sides stand in for ARP. `detach` removes
//! everything `attach` made, in reverse order; if the process is killed instead, the
//! namespace and the veth pair go with it, and `leftovers` removes the rest at the next
//! run (the filter by its name, the neighbour entries by the probe MAC prefix).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread::JoinHandle;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourState};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use cloison_core::config::Segment;
use cloison_core::names::VERIFY_MARK;

use super::VerifyError;
use super::leftovers::Lock;
use super::send::{self, Sent, Spec};
use crate::kernel::bpf::{self, Redirect};
use crate::kernel::tc::{self, Side};

/// The first three bytes of every probe host's MAC: locally administered, unicast, and
/// cloison's (`c1:05`), so a later run finds the neighbour entries a killed one left.
pub const MAC_PREFIX: [u8; 3] = [0x02, 0xc1, 0x05];

/// The interface names of probe host `i`'s veth pair.
pub fn veth_names(i: usize) -> (String, String) {
    (format!("cloison-vh{i}"), format!("cloison-vp{i}"))
}

enum Job {
    Sysctls(Vec<(String, String)>, mpsc::Sender<Result<(), String>>),
    Probe(Vec<Spec>, mpsc::Sender<Vec<Sent>>),
}

/// The thread that lives in the probe host's namespace: it writes the namespace's
/// sysctls and sends the probes (sockets belong to the namespace of the thread that
/// makes them).
struct NsThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl NsThread {
    /// A new namespace; its file descriptor and a netlink handle inside it.
    fn spawn() -> Result<(NsThread, OwnedFd, Handle), VerifyError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        // The netlink socket made in the thread is driven by the caller's runtime.
        let runtime = tokio::runtime::Handle::current();
        let thread = std::thread::Builder::new()
            .name("verify-probe".into())
            .spawn(move || {
                let setup = || -> std::io::Result<(OwnedFd, _)> {
                    // SAFETY: unshare affects this thread only (CLONE_NEWNET on a thread
                    // of a multi-threaded process is allowed and per-thread).
                    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let ns = std::fs::File::open("/proc/thread-self/ns/net")?;
                    let _inside = runtime.enter();
                    let conn = rtnetlink::new_connection()?;
                    Ok((OwnedFd::from(ns), conn))
                };
                match setup() {
                    Ok((ns, (conn, handle, _))) => {
                        if ready_tx.send(Ok((ns, conn, handle))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                }
                for job in jobs_rx {
                    match job {
                        Job::Sysctls(list, reply) => {
                            let r = list.iter().try_for_each(|(k, v)| {
                                std::fs::write(format!("/proc/sys/{k}"), v)
                                    .map_err(|e| format!("/proc/sys/{k}: {e}"))
                            });
                            let _ = reply.send(r);
                        }
                        Job::Probe(specs, reply) => {
                            let _ = reply.send(send::send_all(&specs));
                        }
                    }
                }
            })
            .map_err(|e| VerifyError::Namespace(e.to_string()))?;
        let (ns, conn, handle) = ready_rx
            .recv()
            .map_err(|_| VerifyError::Namespace("the probe thread died".into()))?
            .map_err(|e| VerifyError::Namespace(format!("cannot make a network namespace: {e}")))?;
        tokio::spawn(conn);
        Ok((
            NsThread {
                jobs: Some(jobs_tx),
                thread: Some(thread),
            },
            ns,
            handle,
        ))
    }

    fn sysctls(&self, list: Vec<(String, String)>) -> Result<(), VerifyError> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .and_then(|j| j.send(Job::Sysctls(list, tx)).ok())
            .ok_or_else(|| VerifyError::Namespace("the probe thread is gone".into()))?;
        rx.recv()
            .map_err(|_| VerifyError::Namespace("the probe thread died".into()))?
            .map_err(VerifyError::Namespace)
    }

    /// Starts sending; the answer comes on the returned channel.
    fn probe(&self, specs: Vec<Spec>) -> Result<mpsc::Receiver<Vec<Sent>>, VerifyError> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .and_then(|j| j.send(Job::Probe(specs, tx)).ok())
            .ok_or_else(|| VerifyError::Namespace("the probe thread is gone".into()))?;
        Ok(rx)
    }

    /// Ends the thread (and with it, once its sockets are closed, the namespace). A thread
    /// still sending (an interrupted run) is left to finish on its own.
    fn stop(&mut self, join: bool) {
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && (join || t.is_finished())
        {
            let _ = t.join();
        }
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// The addresses a probe host uses.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
    pub mac: [u8; 6],
}

/// A probe host attached to a segment. What `attach` made is recorded field by field, so
/// `detach` undoes exactly that, also after a failure half-way.
pub struct Attached {
    pub segment: String,
    pub iface: String,
    pub ifindex: u32,
    pub addresses: Addresses,
    index: usize,
    thread: Option<NsThread>,
    ns: Option<OwnedFd>,
    ns_handle: Option<Handle>,
    veth_index: Option<u32>,
    neighbours: Vec<IpAddr>,
    clsact_ours: bool,
    egress_filter: bool,
}

/// A link's index, MAC and whether it is up.
pub async fn link(h: &Handle, name: &str) -> Result<Option<(u32, [u8; 6], bool)>, VerifyError> {
    let mut links = h.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(Some((l.header.index, mac_of(&l), up(&l)))),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(VerifyError::netlink(format!("looking up {name}"), e)),
    }
}

fn mac_of(l: &LinkMessage) -> [u8; 6] {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
            _ => None,
        })
        .unwrap_or([0; 6])
}

fn up(l: &LinkMessage) -> bool {
    l.header.flags.contains(LinkFlags::Up)
}

impl Attached {
    /// Attaches probe host `index` to segment `s`; `h` is a netlink handle in the
    /// router's namespace.
    pub async fn attach(
        h: &Handle,
        lock: &Lock,
        s: &Segment,
        index: usize,
        addresses: Addresses,
    ) -> Result<Attached, VerifyError> {
        let iface = s.interface.as_str();
        let (ifindex, seg_mac, is_up) = link(h, iface).await?.ok_or_else(|| {
            VerifyError::Segment(format!("{}: its interface {iface} does not exist", s.name))
        })?;
        if !is_up {
            return Err(VerifyError::Segment(format!(
                "{}: its interface {iface} is down; bring it up (`ip link set {iface} up`) or apply the configuration first",
                s.name
            )));
        }
        let mut a = Attached {
            segment: s.name.to_string(),
            iface: iface.to_owned(),
            ifindex,
            addresses,
            index,
            thread: None,
            ns: None,
            ns_handle: None,
            veth_index: None,
            neighbours: Vec::new(),
            clsact_ours: false,
            egress_filter: false,
        };
        match a.build(h, lock, s, seg_mac).await {
            Ok(()) => Ok(a),
            Err(e) => {
                a.detach(h).await;
                Err(e)
            }
        }
    }

    async fn build(
        &mut self,
        h: &Handle,
        lock: &Lock,
        s: &Segment,
        seg_mac: [u8; 6],
    ) -> Result<(), VerifyError> {
        let (thread, ns, ns_handle) = NsThread::spawn()?;
        let v6 = self.addresses.v6.is_some();
        let mut sysctls = vec![
            ("net/ipv4/icmp_ratelimit", "0"),
            ("net/ipv6/icmp/ratelimit", "0"),
            ("net/ipv4/ping_group_range", "0 2147483647"),
            ("net/ipv6/conf/default/accept_ra", "0"),
            ("net/ipv6/conf/default/router_solicitations", "0"),
            ("net/ipv6/conf/default/dad_transmits", "0"),
            ("net/ipv6/conf/default/addr_gen_mode", "1"),
        ];
        if !v6 {
            sysctls.push(("net/ipv6/conf/default/disable_ipv6", "1"));
        }
        thread.sysctls(
            sysctls
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )?;
        self.thread = Some(thread);

        let (host, peer) = veth_names(self.index);
        for name in [&host, &peer] {
            if let Some((i, _, _)) = link(h, name).await? {
                h.link()
                    .del(i)
                    .execute()
                    .await
                    .map_err(|e| VerifyError::netlink(format!("removing a stale {name}"), e))?;
            }
        }
        h.link()
            .add(LinkVeth::new(&host, &peer).build())
            .execute()
            .await
            .map_err(|e| {
                VerifyError::netlink(format!("creating the veth pair {host}/{peer}"), e)
            })?;
        let (host_index, _, _) = link(h, &host)
            .await?
            .ok_or_else(|| VerifyError::Namespace(format!("{host} vanished")))?;
        self.veth_index = Some(host_index);
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{host}/disable_ipv6"), "1")
            .map_err(|e| VerifyError::Namespace(format!("disabling IPv6 on {host}: {e}")))?;
        let (peer_index, _, _) = link(h, &peer)
            .await?
            .ok_or_else(|| VerifyError::Namespace(format!("{peer} vanished")))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(peer_index)
                    .address(self.addresses.mac.to_vec())
                    .setns_by_fd(ns.as_raw_fd())
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| {
                VerifyError::netlink(format!("moving {peer} into the probe's namespace"), e)
            })?;
        self.ns = Some(ns);
        h.link()
            .set(LinkUnspec::new_with_index(host_index).up().build())
            .execute()
            .await
            .map_err(|e| VerifyError::netlink(format!("bringing {host} up"), e))?;

        // Inside: the probe's addresses, the router as a static neighbour and gateway.
        let (inner, _, _) = link(&ns_handle, &peer).await?.ok_or_else(|| {
            VerifyError::Namespace(format!("{peer} is not in the probe's namespace"))
        })?;
        ns_handle
            .link()
            .set(LinkUnspec::new_with_index(inner).up().build())
            .execute()
            .await
            .map_err(|e| VerifyError::netlink("bringing the probe's interface up", e))?;
        let prefix4 = s.address.prefix_len();
        ns_handle
            .address()
            .add(inner, IpAddr::V4(self.addresses.v4), prefix4)
            .execute()
            .await
            .map_err(|e| VerifyError::netlink("addressing the probe", e))?;
        neighbour(&ns_handle, inner, IpAddr::V4(s.address.addr()), seg_mac).await?;
        ns_handle
            .route()
            .add(
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .gateway(s.address.addr())
                    .output_interface(inner)
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| VerifyError::netlink("routing the probe through the router", e))?;
        if let (Some(v6), Some(r6)) = (self.addresses.v6, s.address6) {
            let mut req = ns_handle
                .address()
                .add(inner, IpAddr::V6(v6), r6.prefix_len());
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            req.execute()
                .await
                .map_err(|e| VerifyError::netlink("addressing the probe (IPv6)", e))?;
            neighbour(&ns_handle, inner, IpAddr::V6(r6.addr()), seg_mac).await?;
            ns_handle
                .route()
                .add(
                    RouteMessageBuilder::<Ipv6Addr>::new()
                        .gateway(r6.addr())
                        .output_interface(inner)
                        .build(),
                )
                .execute()
                .await
                .map_err(|e| {
                    VerifyError::netlink("routing the probe through the router (IPv6)", e)
                })?;
        }
        self.ns_handle = Some(ns_handle);

        // The router side: the probe as a static neighbour of the segment interface.
        let mut mine = vec![IpAddr::V4(self.addresses.v4)];
        mine.extend(self.addresses.v6.map(IpAddr::V6));
        for a in mine {
            self.neighbours.push(a);
            neighbour(h, self.ifindex, a, self.addresses.mac).await?;
        }

        // The redirects.
        let into_segment = bpf::load(&Redirect {
            match_dst: seg_mac,
            mark: Some(VERIFY_MARK),
            ifindex: self.ifindex,
            ingress: true,
            drop_others: true,
        })
        .map_err(VerifyError::Bpf)?;
        let to_probe = bpf::load(&Redirect {
            match_dst: self.addresses.mac,
            mark: None,
            ifindex: host_index,
            ingress: false,
            drop_others: false,
        })
        .map_err(VerifyError::Bpf)?;
        tc::add_clsact(h, host_index, &host)
            .await
            .map_err(VerifyError::Tc)?;
        tc::add_filter(h, host_index, &host, Side::Ingress, &into_segment)
            .await
            .map_err(VerifyError::Tc)?;
        // Recorded first: if this process dies now, the next run removes it.
        lock.record_qdisc(&self.iface);
        self.clsact_ours = tc::add_clsact(h, self.ifindex, &self.iface)
            .await
            .map_err(VerifyError::Tc)?;
        self.egress_filter = true;
        tc::add_filter(h, self.ifindex, &self.iface, Side::Egress, &to_probe)
            .await
            .map_err(VerifyError::Tc)?;
        Ok(())
    }

    /// Sends `specs` from this probe host; blocks the calling thread until done.
    pub fn probe(&self, specs: Vec<Spec>) -> Result<mpsc::Receiver<Vec<Sent>>, VerifyError> {
        self.thread
            .as_ref()
            .ok_or_else(|| VerifyError::Namespace("no probe thread".into()))?
            .probe(specs)
    }

    /// Removes what `attach` made, in reverse order. Errors are collected, not fatal:
    /// everything that can be removed is.
    pub async fn detach(&mut self, h: &Handle) -> Vec<String> {
        self.detach_now(h, true).await
    }

    /// `detach`, not waiting for a probe thread still at work when `join` is false.
    pub async fn detach_now(&mut self, h: &Handle, join: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if self.egress_filter {
            if let Err(e) = tc::del_filter(h, self.ifindex, &self.iface, Side::Egress).await {
                problems.push(crate::status::error_text(&e));
            }
            self.egress_filter = false;
        }
        if self.clsact_ours {
            if let Err(e) = tc::del_clsact(h, self.ifindex, &self.iface).await {
                problems.push(crate::status::error_text(&e));
            }
            self.clsact_ours = false;
        }
        for a in std::mem::take(&mut self.neighbours) {
            if let Err(e) = del_neighbour(h, self.ifindex, a, &self.addresses.mac).await {
                problems.push(e.to_string());
            }
        }
        if let Some(i) = self.veth_index.take()
            && let Err(e) = h.link().del(i).execute().await
            && !matches!(&e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -libc::ENODEV)
        {
            problems.push(format!("removing the probe's veth pair: {e}"));
        }
        self.ns_handle = None;
        if let Some(mut t) = self.thread.take() {
            t.stop(join);
        }
        self.ns = None;
        problems
    }
}

async fn neighbour(h: &Handle, ifindex: u32, ip: IpAddr, mac: [u8; 6]) -> Result<(), VerifyError> {
    h.neighbours()
        .add(ifindex, ip)
        .link_layer_address(&mac)
        .state(NeighbourState::Permanent)
        .replace()
        .execute()
        .await
        .map_err(|e| VerifyError::netlink(format!("adding the neighbour entry {ip}"), e))
}

/// Removes the neighbour entry of `ip` on `ifindex` if it is the probe's (`mac`).
pub async fn del_neighbour(
    h: &Handle,
    ifindex: u32,
    ip: IpAddr,
    mac: &[u8; 6],
) -> Result<(), VerifyError> {
    let mut entries = h.neighbours().get().execute();
    while let Some(n) = entries
        .try_next()
        .await
        .map_err(|e| VerifyError::netlink("listing neighbour entries", e))?
    {
        if n.header.ifindex != ifindex {
            continue;
        }
        let (dst, lladdr) = neighbour_of(&n);
        if dst == Some(ip) && lladdr.as_ref() == Some(mac) {
            h.neighbours().del(n).execute().await.map_err(|e| {
                VerifyError::netlink(format!("removing the neighbour entry {ip}"), e)
            })?;
            return Ok(());
        }
    }
    Ok(())
}

/// A neighbour entry's address and link-layer address.
pub fn neighbour_of(
    n: &netlink_packet_route::neighbour::NeighbourMessage,
) -> (Option<IpAddr>, Option<[u8; 6]>) {
    use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
    let mut dst = None;
    let mut ll = None;
    for a in &n.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                dst = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                dst = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(m) => ll = <[u8; 6]>::try_from(m.as_slice()).ok(),
            _ => {}
        }
    }
    (dst, ll)
}

/// Whether a neighbour entry is alive (some host answers for that address).
pub fn neighbour_alive(n: &netlink_packet_route::neighbour::NeighbourMessage) -> bool {
    let s = n.header.state;
    !matches!(
        s,
        NeighbourState::Failed | NeighbourState::Incomplete | NeighbourState::None
    ) && !n.header.flags.contains(NeighbourFlags::Proxy)
}
