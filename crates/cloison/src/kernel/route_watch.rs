//! Watching cloison's policy routing as it changes: a NETLINK_ROUTE socket subscribed to
//! the rule and route notifications of both families, reporting those that touch
//! cloison's rule priorities or routing tables (the second wall's and the uplinks'),
//! with the netlink port of the socket that asked for the change (for a process using
//! one socket, such as `ip`, its pid). Non-blocking, for tokio's `AsyncFd`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use cloison_core::names::{RULE_PRIORITIES, UPLINK_TABLES, WALL_TABLES};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_sys::{Socket, constants::NETLINK_ROUTE};

/// rtnetlink multicast groups (linux/rtnetlink.h, `enum rtnetlink_groups`).
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV4_RULE: u32 = 8;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_IPV6_RULE: u32 = 19;

/// A change to cloison's policy routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingChange {
    /// "rule 7200 deleted", "route of table 7400 deleted"...
    pub what: String,
    /// The netlink port that asked for it (a process's pid for its first socket; 0 for
    /// the kernel itself).
    pub port: u32,
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Change(RoutingChange),
    /// Notifications were lost (the socket overflowed): re-read everything.
    Overflow,
}

pub struct RouteWatcher {
    socket: Socket,
    buf: Vec<u8>,
}

impl RouteWatcher {
    /// Subscribes in the calling thread's network namespace.
    pub fn open() -> io::Result<RouteWatcher> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for group in [
            RTNLGRP_IPV4_ROUTE,
            RTNLGRP_IPV4_RULE,
            RTNLGRP_IPV6_ROUTE,
            RTNLGRP_IPV6_RULE,
        ] {
            socket.add_membership(group)?;
        }
        crate::sockopt::set_rcvbuf(socket.as_raw_fd(), 1 << 20)?;
        socket.set_non_blocking(true)?;
        Ok(RouteWatcher {
            socket,
            buf: vec![0; 1 << 16],
        })
    }

    /// What is queued now (never blocks): changes to cloison's rules and tables.
    pub fn poll(&mut self) -> io::Result<Vec<Seen>> {
        let mut out = Vec::new();
        loop {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    out.push(Seen::Overflow);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.extend(decode(&self.buf[..n]).into_iter().map(Seen::Change));
        }
    }
}

impl AsRawFd for RouteWatcher {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The changes to cloison's routing in one datagram of notifications. Pure.
pub fn decode(mut datagram: &[u8]) -> Vec<RoutingChange> {
    let mut out = Vec::new();
    while !datagram.is_empty() {
        let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(datagram) else {
            break;
        };
        let len = usize::try_from(msg.header.length).unwrap_or(0);
        let port = msg.header.port_number;
        if let NetlinkPayload::InnerMessage(inner) = &msg.payload {
            let what = match inner {
                RouteNetlinkMessage::NewRule(r) => ours_rule(r).map(|p| format!("rule {p} added")),
                RouteNetlinkMessage::DelRule(r) => {
                    ours_rule(r).map(|p| format!("rule {p} deleted"))
                }
                RouteNetlinkMessage::NewRoute(r) => {
                    ours_route(r).map(|t| format!("a route of table {t} added"))
                }
                RouteNetlinkMessage::DelRoute(r) => {
                    ours_route(r).map(|t| format!("a route of table {t} deleted"))
                }
                _ => None,
            };
            if let Some(what) = what {
                out.push(RoutingChange { what, port });
            }
        }
        if len == 0 || len > datagram.len() {
            break;
        }
        // Messages are aligned to 4 bytes.
        let next = len.next_multiple_of(4).min(datagram.len());
        datagram = &datagram[next..];
    }
    out
}

fn ours_rule(r: &RuleMessage) -> Option<u32> {
    let p = r.attributes.iter().find_map(|a| match a {
        RuleAttribute::Priority(p) => Some(*p),
        _ => None,
    })?;
    RULE_PRIORITIES.contains(&p).then_some(p)
}

fn ours_route(r: &RouteMessage) -> Option<u32> {
    let t = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    (UPLINK_TABLES.contains(&t) || WALL_TABLES.contains(&t)).then_some(t)
}
