//! The wire format, pure (no I/O): netlink headers, `struct nfgenmsg`, nf_tables
//! attributes, the requests this module sends and the decoders of what the kernel sends
//! back. Numbers come from `linux/netfilter/nfnetlink.h` and `nf_tables.h`.

use std::fmt;

use netlink_packet_core::{
    NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HEADER_SIZE, NLM_F_DUMP, NLM_F_REQUEST,
};

/// `sizeof(struct nlmsghdr)`.
pub const NETLINK_HEADER_LEN: usize = 16;

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNLGRP_NFTABLES`: the multicast group of ruleset changes.
pub const NFNLGRP_NFTABLES: u32 = 7;
/// `sizeof(struct nfgenmsg)`: family (u8), version (u8), res_id (be16).
pub const NFGENMSG_LEN: usize = 4;
const NFNETLINK_V0: u8 = 0;

/// `enum nf_tables_msg_types`, the low byte of the message type.
pub mod msg {
    pub const NEWTABLE: u8 = 0;
    pub const GETTABLE: u8 = 1;
    pub const DELTABLE: u8 = 2;
    pub const NEWCHAIN: u8 = 3;
    pub const DELCHAIN: u8 = 5;
    pub const NEWRULE: u8 = 6;
    pub const DELRULE: u8 = 8;
    pub const NEWSET: u8 = 9;
    pub const DELSET: u8 = 11;
    pub const NEWSETELEM: u8 = 12;
    pub const DELSETELEM: u8 = 14;
    pub const NEWGEN: u8 = 15;
    pub const GETGEN: u8 = 16;
    pub const NEWOBJ: u8 = 18;
    pub const GETOBJ: u8 = 19;
    pub const DELOBJ: u8 = 20;
    pub const NEWFLOWTABLE: u8 = 22;
    pub const DELFLOWTABLE: u8 = 24;
    /// `NFT_MSG_DESTROYTABLE` .. `NFT_MSG_DESTROYFLOWTABLE` (kernel 6.3+): "delete if
    /// it exists"; their notifications carry these types.
    pub const DESTROYTABLE: u8 = 26;
    pub const DESTROYFLOWTABLE: u8 = 32;
}

/// Attribute numbers. Every object's table name is attribute 1 (`NFTA_TABLE_NAME`,
/// `NFTA_CHAIN_TABLE`, `NFTA_RULE_TABLE`, `NFTA_SET_TABLE`, `NFTA_SET_ELEM_LIST_TABLE`,
/// `NFTA_OBJ_TABLE`, `NFTA_FLOWTABLE_TABLE`).
pub mod attr {
    pub const TABLE: u16 = 1;
    /// `NFTA_CHAIN_NAME`.
    pub const CHAIN_NAME: u16 = 3;
    /// `NFTA_RULE_CHAIN`.
    pub const RULE_CHAIN: u16 = 2;
    /// `NFTA_SET_NAME`, `NFTA_SET_ELEM_LIST_SET`, `NFTA_OBJ_NAME`, `NFTA_FLOWTABLE_NAME`.
    pub const OBJ_NAME: u16 = 2;
    pub const OBJ_TYPE: u16 = 3;
    pub const OBJ_DATA: u16 = 4;
    pub const COUNTER_BYTES: u16 = 1;
    pub const COUNTER_PACKETS: u16 = 2;
    pub const GEN_ID: u16 = 1;
    pub const GEN_PROC_PID: u16 = 2;
    pub const GEN_PROC_NAME: u16 = 3;
}

/// `NFT_OBJECT_COUNTER`.
pub const NFT_OBJECT_COUNTER: u32 = 1;

/// `NFPROTO_*`: the family of a table, as `nfgen_family` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `NFPROTO_UNSPEC` (0): every family, in requests.
    Unspec,
    /// `NFPROTO_INET` (1).
    Inet,
    /// `NFPROTO_IPV4` (2), nft's `ip`.
    Ip,
    /// `NFPROTO_ARP` (3).
    Arp,
    /// `NFPROTO_NETDEV` (5).
    Netdev,
    /// `NFPROTO_BRIDGE` (7).
    Bridge,
    /// `NFPROTO_IPV6` (10), nft's `ip6`.
    Ip6,
    /// Any other value.
    Other(u8),
}

impl Family {
    pub fn from_raw(raw: u8) -> Family {
        match raw {
            0 => Family::Unspec,
            1 => Family::Inet,
            2 => Family::Ip,
            3 => Family::Arp,
            5 => Family::Netdev,
            7 => Family::Bridge,
            10 => Family::Ip6,
            n => Family::Other(n),
        }
    }

    pub fn raw(self) -> u8 {
        match self {
            Family::Unspec => 0,
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Arp => 3,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
            Family::Other(n) => n,
        }
    }
}

impl fmt::Display for Family {
    /// The name `nft` uses (`inet`, `ip`, `ip6`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Family::Unspec => f.write_str("unspec"),
            Family::Inet => f.write_str("inet"),
            Family::Ip => f.write_str("ip"),
            Family::Arp => f.write_str("arp"),
            Family::Netdev => f.write_str("netdev"),
            Family::Bridge => f.write_str("bridge"),
            Family::Ip6 => f.write_str("ip6"),
            Family::Other(n) => write!(f, "family-{n}"),
        }
    }
}

/// What a change notification says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    NewTable,
    DelTable,
    NewChain,
    DelChain,
    NewRule,
    DelRule,
    NewSet,
    DelSet,
    NewSetElem,
    DelSetElem,
    NewObj,
    DelObj,
    NewFlowtable,
    DelFlowtable,
}

impl ChangeKind {
    /// The kind of an nf_tables message type (low byte); `None` for requests, NEWGEN and
    /// traces. `NFT_MSG_DESTROY*` map to the matching `Del*`: for a watcher, "deleted".
    pub fn from_msg(m: u8) -> Option<ChangeKind> {
        use ChangeKind::*;
        Some(match m {
            msg::NEWTABLE => NewTable,
            msg::DELTABLE | msg::DESTROYTABLE => DelTable,
            msg::NEWCHAIN => NewChain,
            msg::DELCHAIN | 27 => DelChain,
            msg::NEWRULE => NewRule,
            msg::DELRULE | 28 => DelRule,
            msg::NEWSET => NewSet,
            msg::DELSET | 29 => DelSet,
            msg::NEWSETELEM => NewSetElem,
            msg::DELSETELEM | 30 => DelSetElem,
            msg::NEWOBJ => NewObj,
            msg::DELOBJ | 31 => DelObj,
            msg::NEWFLOWTABLE => NewFlowtable,
            msg::DELFLOWTABLE | msg::DESTROYFLOWTABLE => DelFlowtable,
            _ => return None,
        })
    }

    /// The kernel's name without its `NFT_MSG_` prefix, e.g. `DELTABLE`.
    pub fn as_str(self) -> &'static str {
        use ChangeKind::*;
        match self {
            NewTable => "NEWTABLE",
            DelTable => "DELTABLE",
            NewChain => "NEWCHAIN",
            DelChain => "DELCHAIN",
            NewRule => "NEWRULE",
            DelRule => "DELRULE",
            NewSet => "NEWSET",
            DelSet => "DELSET",
            NewSetElem => "NEWSETELEM",
            DelSetElem => "DELSETELEM",
            NewObj => "NEWOBJ",
            DelObj => "DELOBJ",
            NewFlowtable => "NEWFLOWTABLE",
            DelFlowtable => "DELFLOWTABLE",
        }
    }

    /// The attribute that names the object itself (chain, set, object, flowtable; the
    /// chain for rules); tables have none beyond their own name.
    fn name_attr(self) -> Option<u16> {
        use ChangeKind::*;
        match self {
            NewTable | DelTable => None,
            NewChain | DelChain => Some(attr::CHAIN_NAME),
            NewRule | DelRule => Some(attr::RULE_CHAIN),
            NewSet | DelSet | NewSetElem | DelSetElem | NewObj | DelObj | NewFlowtable
            | DelFlowtable => Some(attr::OBJ_NAME),
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object changed by a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub family: Family,
    /// The table the object belongs to (the table itself for NEWTABLE/DELTABLE).
    pub table: String,
    /// The object's own name: chain (for rules, their chain), set (for elements, their
    /// set), object or flowtable; `None` for tables.
    pub name: Option<String>,
}

/// What NFT_MSG_NEWGEN says about the commit that made a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenInfo {
    /// `NFTA_GEN_ID`: the ruleset generation after the commit.
    pub id: u32,
    /// `NFTA_GEN_PROC_PID`: `task_pid_nr(current)`, the committing thread's id as the
    /// initial pid namespace sees it (in a GETGEN answer: the asker's).
    pub pid: Option<u32>,
    /// `NFTA_GEN_PROC_NAME`: that thread's `comm` (at most 15 bytes).
    pub comm: Option<String>,
}

/// A decoded multicast notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// One object changed; `res_id` is `nfgenmsg.res_id`, the low 16 bits of the
    /// generation the change belongs to.
    Change { change: Change, res_id: u16 },
    /// The commit is complete: the changes announced since the previous NEWGEN are its.
    NewGen(GenInfo),
}

/// A message that does not parse as the wire format says it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMessage<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub portid: u32,
    /// What follows the 16-byte netlink header.
    pub payload: &'a [u8],
}

impl RawMessage<'_> {
    /// The nf_tables message type (low byte) if this is an nf_tables message.
    pub fn nft_type(&self) -> Option<u8> {
        (self.kind >> 8 == NFNL_SUBSYS_NFTABLES).then_some((self.kind & 0xff) as u8)
    }
}

/// The netlink messages of one datagram, in order. Stops at the first malformed one.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages {
        rest: datagram,
        failed: false,
    }
}

/// Iterator returned by [`messages`].
pub struct Messages<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<RawMessage<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let fail = |this: &mut Self, what: String| {
            this.failed = true;
            Some(Err(malformed(what)))
        };
        if b.len() < NETLINK_HEADER_LEN {
            return fail(
                self,
                format!("{} trailing bytes, short of a header", b.len()),
            );
        }
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < NETLINK_HEADER_LEN || len > b.len() {
            return fail(
                self,
                format!("message length {len} with {} bytes left", b.len()),
            );
        }
        let m = RawMessage {
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            portid: u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
            payload: &b[NETLINK_HEADER_LEN..len],
        };
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok(m))
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The `struct nfgenmsg` at the head of an nf_tables payload, and the attributes after.
pub fn split_nfgenmsg(payload: &[u8]) -> Result<(Family, u16, &[u8]), Malformed> {
    if payload.len() < NFGENMSG_LEN {
        return Err(malformed(format!(
            "{}-byte payload, short of a struct nfgenmsg",
            payload.len()
        )));
    }
    let family = Family::from_raw(payload[0]);
    let res_id = u16::from_be_bytes([payload[2], payload[3]]);
    Ok((family, res_id, &payload[NFGENMSG_LEN..]))
}

/// The attributes (type without the nested/byte-order flags, value) of a TLV area.
pub fn attrs(area: &[u8]) -> Attrs<'_> {
    Attrs {
        rest: area,
        failed: false,
    }
}

/// Iterator returned by [`attrs`].
pub struct Attrs<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        // Fewer bytes than a header are padding (the kernel never sends them).
        if self.failed || self.rest.len() < NLA_HEADER_SIZE {
            return None;
        }
        let b = self.rest;
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
        if len < NLA_HEADER_SIZE || len > b.len() {
            self.failed = true;
            return Some(Err(malformed(format!(
                "attribute {kind} of length {len} with {} bytes left",
                b.len()
            ))));
        }
        self.rest = &b[align4(len).min(b.len())..];
        Some(Ok((kind, &b[NLA_HEADER_SIZE..len])))
    }
}

/// An `NLA_STRING`: up to its first NUL.
pub fn string(v: &[u8]) -> String {
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// A big-endian `NLA_U32`.
pub fn be32(v: &[u8]) -> Result<u32, Malformed> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| malformed(format!("{}-byte value where a be32 goes", v.len())))
}

/// A big-endian `NLA_U64`.
pub fn be64(v: &[u8]) -> Result<u64, Malformed> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| malformed(format!("{}-byte value where a be64 goes", v.len())))
}

/// Decodes one message from the NFNLGRP_NFTABLES group; `Ok(None)` for messages that
/// are not ruleset changes (traces, other subsystems, `NLMSG_*` control messages).
pub fn decode_notification(m: &RawMessage<'_>) -> Result<Option<Notification>, Malformed> {
    let Some(t) = m.nft_type() else {
        return Ok(None);
    };
    if t == msg::NEWGEN {
        let (_, _, area) = split_nfgenmsg(m.payload)?;
        return decode_gen(area).map(|g| Some(Notification::NewGen(g)));
    }
    let Some(kind) = ChangeKind::from_msg(t) else {
        return Ok(None);
    };
    let (family, res_id, area) = split_nfgenmsg(m.payload)?;
    let mut table = None;
    let mut name = None;
    let name_attr = kind.name_attr();
    for a in attrs(area) {
        let (k, v) = a?;
        if k == attr::TABLE {
            table = Some(string(v));
        } else if Some(k) == name_attr && name.is_none() {
            name = Some(string(v));
        }
    }
    let table = table.ok_or_else(|| malformed(format!("{kind} without a table name")))?;
    Ok(Some(Notification::Change {
        change: Change {
            kind,
            family,
            table,
            name,
        },
        res_id,
    }))
}

/// The attributes of NEWGEN (a notification, or the answer to GETGEN).
pub fn decode_gen(area: &[u8]) -> Result<GenInfo, Malformed> {
    let mut id = None;
    let mut pid = None;
    let mut comm = None;
    for a in attrs(area) {
        let (k, v) = a?;
        match k {
            attr::GEN_ID => id = Some(be32(v)?),
            attr::GEN_PROC_PID => pid = Some(be32(v)?),
            attr::GEN_PROC_NAME => comm = Some(string(v)),
            _ => {}
        }
    }
    Ok(GenInfo {
        id: id.ok_or_else(|| malformed("NEWGEN without NFTA_GEN_ID"))?,
        pid,
        comm,
    })
}

/// Packet and byte counts of one named counter (the same type the listings give).
pub use cloison_core::nft::Counts;

/// A named counter from a GETOBJ answer (the attributes after the nfgenmsg): its table,
/// name and counts; `Ok(None)` for objects of another type.
pub fn decode_counter(area: &[u8]) -> Result<Option<(String, String, Counts)>, Malformed> {
    let mut table = None;
    let mut name = None;
    let mut kind = None;
    let mut data = None;
    for a in attrs(area) {
        let (k, v) = a?;
        match k {
            attr::TABLE => table = Some(string(v)),
            attr::OBJ_NAME => name = Some(string(v)),
            attr::OBJ_TYPE => kind = Some(be32(v)?),
            attr::OBJ_DATA => data = Some(v),
            _ => {}
        }
    }
    if kind != Some(NFT_OBJECT_COUNTER) {
        return Ok(None);
    }
    let (Some(table), Some(name), Some(data)) = (table, name, data) else {
        return Err(malformed("counter object without table, name or data"));
    };
    let mut counts = Counts::default();
    for a in attrs(data) {
        let (k, v) = a?;
        match k {
            attr::COUNTER_PACKETS => counts.packets = be64(v)?,
            attr::COUNTER_BYTES => counts.bytes = be64(v)?,
            _ => {}
        }
    }
    Ok(Some((table, name, counts)))
}

/// The errno of an `NLMSG_ERROR` payload (positive; 0 for an acknowledgement) and the
/// sequence number of the request it answers.
pub fn decode_error(payload: &[u8]) -> Result<(i32, u32), Malformed> {
    if payload.len() < 4 + NETLINK_HEADER_LEN {
        return Err(malformed(format!(
            "{}-byte NLMSG_ERROR payload",
            payload.len()
        )));
    }
    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
    let seq = u32::from_ne_bytes([payload[12], payload[13], payload[14], payload[15]]);
    Ok((-code, seq))
}

/// Builds an nf_tables request: netlink header, nfgenmsg, attributes.
#[derive(Debug)]
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// A request of nf_tables type `t`: `NLM_F_REQUEST`, plus `NLM_F_DUMP` when `dump`.
    /// No `NLM_F_ACK`: a plain GET is answered by exactly one message (the object, or an
    /// `NLMSG_ERROR`), a dump by its parts and `NLMSG_DONE`.
    pub fn new(t: u8, family: Family, seq: u32, dump: bool) -> Request {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | u16::from(t);
        let flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // portid: the kernel fills it in
        buf.extend_from_slice(&[family.raw(), NFNETLINK_V0, 0, 0]);
        Request { buf }
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Request {
        let len = NLA_HEADER_SIZE + value.len();
        let len16 = u16::try_from(len).expect("attribute longer than 64 KiB");
        self.buf.extend_from_slice(&len16.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Adds an `NLA_STRING` (NUL-terminated, as the kernel's policies expect).
    pub fn string(self, kind: u16, value: &str) -> Request {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
        self.attr(kind, &v)
    }

    /// Adds a big-endian `NLA_U32`.
    pub fn be32(self, kind: u16, value: u32) -> Request {
        self.attr(kind, &value.to_be_bytes())
    }

    /// The bytes to send.
    pub fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).expect("request longer than 4 GiB");
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}
