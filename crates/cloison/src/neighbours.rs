//! The edge that reads the router's neighbour tables (ARP and IPv6 neighbour discovery
//! caches) over rtnetlink: which MAC the kernel resolved on which interface. Inspection
//! uses it to say whose frame an isolation breach is (`inspect::Attribution`).
//!
//! Synchronous (one dump request, read to its end): the capture thread calls it, at most
//! once a second, only when a breach needs attributing.

use std::io;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::neighbour::{NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// `(interface index, MAC)` of every resolved neighbour of the current network namespace:
/// reachable, stale, delayed, probed or permanent entries (not incomplete or failed ones,
/// whose address is not known to belong to anyone).
pub fn dump() -> io::Result<Vec<(u32, [u8; 6])>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::GetNeighbour(
        NeighbourMessage::default(),
    ));
    request.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.finalize();
    let mut buf = vec![0; request.buffer_len()];
    request.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    let mut rx = vec![0u8; 1 << 16];
    loop {
        let n = socket.recv(&mut &mut rx[..], 0)?;
        let mut offset = 0;
        while offset < n {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[offset..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = usize::try_from(msg.header.length).unwrap_or(0);
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return Err(match e.code {
                        Some(code) => io::Error::from_raw_os_error(-code.get()),
                        None => io::Error::other("netlink error without a code"),
                    });
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m)) => {
                    if let Some(entry) = resolved(&m) {
                        out.push(entry);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

fn resolved(m: &NeighbourMessage) -> Option<(u32, [u8; 6])> {
    if matches!(
        m.header.state,
        NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
    ) {
        return None;
    }
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(mac) => <[u8; 6]>::try_from(mac.as_slice())
            .ok()
            .map(|mac| (m.header.ifindex, mac)),
        _ => None,
    })
}
