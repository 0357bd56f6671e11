//! Traffic control, as much as `cloison verify` needs: a `clsact` qdisc on an interface
//! (created only where there is none, and removed only by whoever created it), and the
//! verify's eBPF filters on it, named `cloison-verify`, added at one priority and
//! removed by that priority; and a listing of the filters so named, to clean up after a
//! run that was killed.

use netlink_packet_core::NetlinkMessage;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use rtnetlink::Handle;
use std::os::fd::{AsRawFd, OwnedFd};

use super::bpf::FILTER_NAME;

/// The priority of cloison's verify filters: one number, so they are found and removed
/// by it and never collide with another tool's (which would have to pick this one).
pub const PRIORITY: u16 = 0xc105;
/// `ETH_P_ALL`, in network byte order, as `tcm_info` wants it.
const ETH_P_ALL_BE: u16 = 0x0003_u16.to_be();

#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct TcError {
    op: String,
    #[source]
    source: rtnetlink::Error,
}

fn err(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> TcError {
    let op = op.into();
    move |source| TcError { op, source }
}

/// Which side of the interface a filter sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ingress,
    Egress,
}

impl Side {
    fn parent(self) -> TcHandle {
        TcHandle {
            major: TcHandle::CLSACT.major,
            minor: match self {
                Side::Ingress => TcHandle::MIN_INGRESS,
                Side::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }
}

async fn send(
    handle: &Handle,
    msg: RouteNetlinkMessage,
    flags: u16,
) -> Result<(), rtnetlink::Error> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut response = handle.clone().request(req)?;
    while let Some(message) = futures::StreamExt::next(&mut response).await {
        if let netlink_packet_core::NetlinkPayload::Error(e) = message.payload {
            return Err(rtnetlink::Error::NetlinkError(e));
        }
    }
    Ok(())
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Adds a `clsact` qdisc to `ifindex`; `false` when one is there already (not ours).
pub async fn add_clsact(handle: &Handle, ifindex: u32, ifname: &str) -> Result<bool, TcError> {
    let mut msg = TcMessage::with_index(index(ifindex));
    msg.header.parent = TcHandle::CLSACT;
    msg.header.handle = TcHandle {
        major: TcHandle::CLSACT.major,
        minor: 0,
    };
    msg.attributes.push(TcAttribute::Kind("clsact".into()));
    match send(
        handle,
        RouteNetlinkMessage::NewQueueDiscipline(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(err(format!("adding a clsact qdisc to {ifname}"))(e)),
    }
}

/// Removes the `clsact` qdisc of `ifindex` (and every filter on it).
pub async fn del_clsact(handle: &Handle, ifindex: u32, ifname: &str) -> Result<(), TcError> {
    let mut msg = TcMessage::with_index(index(ifindex));
    msg.header.parent = TcHandle::CLSACT;
    msg.header.handle = TcHandle {
        major: TcHandle::CLSACT.major,
        minor: 0,
    };
    msg.attributes.push(TcAttribute::Kind("clsact".into()));
    match send(handle, RouteNetlinkMessage::DelQueueDiscipline(msg), 0).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::EINVAL | libc::ENODEV)) => Ok(()),
        Err(e) => Err(err(format!("removing the clsact qdisc of {ifname}"))(e)),
    }
}

/// Attaches the eBPF program `prog` (direct action) on `side` of `ifindex`.
pub async fn add_filter(
    handle: &Handle,
    ifindex: u32,
    ifname: &str,
    side: Side,
    prog: &OwnedFd,
) -> Result<(), TcError> {
    let mut msg = TcMessage::with_index(index(ifindex));
    msg.header.parent = side.parent();
    msg.header.handle = TcHandle { major: 0, minor: 1 };
    msg.header.info = (u32::from(PRIORITY) << 16) | u32::from(ETH_P_ALL_BE);
    msg.attributes.push(TcAttribute::Kind("bpf".into()));
    msg.attributes.push(TcAttribute::Options(vec![
        TcOption::Bpf(TcFilterBpfOption::ProgFd(
            u32::try_from(prog.as_raw_fd()).expect("a descriptor is not negative"),
        )),
        TcOption::Bpf(TcFilterBpfOption::ProgName(FILTER_NAME.into())),
        TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
    ]));
    send(
        handle,
        RouteNetlinkMessage::NewTrafficFilter(msg),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .await
    .map_err(err(format!("attaching the verify filter to {ifname}")))
}

/// Removes cloison's verify filter from `side` of `ifindex`, if it is there.
pub async fn del_filter(
    handle: &Handle,
    ifindex: u32,
    ifname: &str,
    side: Side,
) -> Result<(), TcError> {
    let mut msg = TcMessage::with_index(index(ifindex));
    msg.header.parent = side.parent();
    msg.header.info = (u32::from(PRIORITY) << 16) | u32::from(ETH_P_ALL_BE);
    msg.attributes.push(TcAttribute::Kind("bpf".into()));
    match send(handle, RouteNetlinkMessage::DelTrafficFilter(msg), 0).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::EINVAL | libc::ENODEV)) => Ok(()),
        Err(e) => Err(err(format!("removing the verify filter of {ifname}"))(e)),
    }
}

/// What is attached on `side` of `ifindex`: (priority, whether it is cloison's verify
/// filter). Empty when the interface has no clsact.
pub async fn filters(
    handle: &Handle,
    ifindex: u32,
    side: Side,
) -> Result<Vec<(u16, bool)>, TcError> {
    let mut msg = TcMessage::with_index(index(ifindex));
    msg.header.parent = side.parent();
    let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetTrafficFilter(msg));
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut out = Vec::new();
    let response = handle
        .clone()
        .request(req)
        .map_err(err("listing tc filters"))?;
    let mut response = std::pin::pin!(response);
    while let Some(message) = futures::StreamExt::next(&mut response).await {
        match message.payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(
                RouteNetlinkMessage::NewTrafficFilter(f),
            ) => {
                let prio = u16::try_from(f.header.info >> 16).unwrap_or(0);
                let ours = f.attributes.iter().any(|a| match a {
                    TcAttribute::Options(opts) => opts.iter().any(|o| {
                        matches!(o, TcOption::Bpf(TcFilterBpfOption::ProgName(n)) if n.starts_with(FILTER_NAME))
                    }),
                    _ => false,
                });
                // The kernel lists a filter once per handle plus a header entry per
                // priority: count each priority once.
                if !out.iter().any(|(p, _)| *p == prio) {
                    out.push((prio, ours));
                } else if ours {
                    for e in out.iter_mut().filter(|(p, _)| *p == prio) {
                        e.1 = true;
                    }
                }
            }
            netlink_packet_core::NetlinkPayload::Error(e) => {
                let e = rtnetlink::Error::NetlinkError(e);
                if matches!(errno(&e), Some(libc::EINVAL | libc::ENOENT)) {
                    return Ok(Vec::new());
                }
                return Err(err("listing tc filters")(e));
            }
            _ => {}
        }
    }
    Ok(out)
}

fn index(ifindex: u32) -> i32 {
    i32::try_from(ifindex).expect("interface indexes fit an int")
}
