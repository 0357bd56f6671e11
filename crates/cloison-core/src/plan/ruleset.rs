//! The nftables ruleset for a configuration, as data (the `nftables` crate's schema).
//!
//! Shape (per-packet cost independent of the number of segments, subnets and allows):
//! - `sources` (prerouting, raw priority, before conntrack): a packet entering a segment
//!   must come from that segment's subnets, one lookup in an `ifname . addr` interval
//!   set; anything else jumps to `spoof/<seg>` (counted, sampled to NFLOG, dropped).
//!   (No rule here sets `nftrace`: `cloison verify` brings its own table for that, see
//!   `verify::trace_rule` in the daemon's crate.)
//! - `segments` (prerouting, after conntrack, before routing): first, whatever arrives
//!   untagged on the trunk's parent interface (the switch's native VLAN) meets
//!   `untagged`: sampled, counted `trunk/untagged` and dropped, whether it was for the
//!   router or for elsewhere. Then where a packet from a
//!   segment may go is decided here, before the routing decision, because the second
//!   wall (policy routing, see `wall`) stops crossing packets at routing: a drop made
//!   later, in `forward`, would never see them, and their counts would be lost.
//!   Established flows pass, and so do the later packets of a connection whose first
//!   packet passed (`confirmed_new`); link-layer broadcast and multicast go on to `input`; every
//!   other packet, new, related (ICMP errors) or invalid alike, meets `from/<seg>`,
//!   where one `daddr vmap` sends each destination class to its pair chain
//!   (`pair/<seg>/<other>` or `pair/<seg>/private`): first, a packet for one of the
//!   router's own addresses goes on to `input` (a `fib` lookup, made only on the way to
//!   a drop); then the allowed exceptions; then count and drop. The segment's own
//!   subnet and the Internet pass with no further lookup.
//! - `forward` (policy drop): established flows pass (and `confirmed_new`); a segment's packets leave only by
//!   its own uplink or toward a segment (already judged in `segments`); related packets
//!   from the uplinks pass (ICMP errors for the segments' own flows).
//! - `input` (policy drop unless `router.unmanaged_input = "accept"`): loopback and the
//!   trusted interfaces pass; per segment, only the listed services on the segment's own
//!   router address, and ICMP errors only about flows to that address; per uplink, DHCP
//!   and neighbour discovery; every other interface (unmanaged, or added later) is
//!   counted `unmanaged` and dropped.
//! - `postrouting`: masquerade on uplinks that ask for it.
//!
//! Every drop goes through a named counter `<from>/<to>`; the NFLOG sample before it is
//! rate-limited in its own rule, so the limit never limits the drop.
//!
//! The rules are written in the form `nft` lists them back, so the live table can be
//! compared with the plan (see `nft::canonical`).

use std::borrow::Cow;
use std::collections::BTreeSet;

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nftables::expr::{
    CT, CTDir, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload,
    PayloadField, Prefix, Range, SetItem,
};
use nftables::schema::{
    Chain, Counter, NfCmd, NfListObject, NfObject, Nftables, Rule, Set, SetFlag, SetType,
    SetTypeValue, Table,
};
use nftables::stmt::{self, JumpTarget, Limit, Log, Match, Operator, Statement, VerdictMap};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::space::{self, Piece};
use crate::config::{Config, Proto, Segment, Service, UnmanagedInput};
use crate::counter::*;
use crate::names::*;

type E = Expression<'static>;
type St = Statement<'static>;

/// nftables base chain priorities (from `nft(8)`: raw -300, conntrack -200, mangle
/// -150, filter 0, srcnat 100). `segments` runs at mangle: after conntrack (it reads the
/// connection state), before routing.
const PRIORITY_RAW: i32 = -300;
const PRIORITY_MANGLE: i32 = -150;
const PRIORITY_FILTER: i32 = 0;
const PRIORITY_SRCNAT: i32 = 100;

/// ICMPv6 messages a segment's hosts must be able to send the router for IPv6 to work
/// at all (neighbour discovery, router solicitation, multicast listener reports).
const ICMPV6_LINK: &[&str] = &[
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "nd-router-solicit",
    "mld-listener-report",
    "mld2-listener-report",
];

/// ICMPv6 an uplink needs (neighbour discovery, router advertisements for SLAAC).
const ICMPV6_UPLINK: &[&str] = &[
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "nd-router-advert",
    "mld-listener-query",
];

/// The whole ruleset for `config`: a batch that replaces table `inet cloison` atomically
/// (add, delete, add, then its contents), so nft applies all of it or nothing.
pub fn build(config: &Config) -> Nftables<'static> {
    let mut b = Builder::default();
    b.objects.push(add(NfListObject::Table(table())));
    b.objects
        .push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(
            table(),
        ))));
    b.objects.push(add(NfListObject::Table(table())));

    for name in counter_names(config) {
        b.objects.push(add(NfListObject::Counter(Counter {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            handle: None,
            packets: None,
            bytes: None,
        })));
    }
    b.sets(config);
    b.sources(config);
    b.segments(config);
    b.forward(config);
    b.input(config);
    b.postrouting(config);

    let mut objects = b.objects;
    for (name, hook) in b.chains.iter() {
        objects.push(add(NfListObject::Chain(chain(name, *hook))));
    }
    for (name, rules) in b.rules {
        for expr in rules {
            objects.push(add(NfListObject::Rule(Rule {
                family: NfFamily::INet,
                table: TABLE.into(),
                chain: name.clone().into(),
                expr: expr.into(),
                handle: None,
                index: None,
                comment: None,
            })));
        }
    }
    Nftables {
        objects: objects.into(),
    }
}

/// Every counter the ruleset declares, sorted: `<segment>/<destination>` for each
/// segment, `<uplink>/router` for each uplink, then `invalid` and `unrouted`.
pub fn counter_names(config: &Config) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in &config.segments {
        for t in &config.segments {
            if t.name != s.name {
                out.insert(pair(s.name.as_str(), t.name.as_str()));
            }
        }
        for to in [TO_PRIVATE, TO_INTERNET, TO_ROUTER, TO_BROADCAST, TO_SPOOFED] {
            out.insert(pair(s.name.as_str(), to));
        }
    }
    for u in &config.uplinks {
        out.insert(pair(u.name.as_str(), TO_ROUTER));
    }
    out.insert(INVALID.to_owned());
    out.insert(UNROUTED.to_owned());
    if config.trunk.is_some() {
        out.insert(TRUNK_UNTAGGED.to_owned());
    }
    if config.router.unmanaged_input == UnmanagedInput::Drop {
        out.insert(UNMANAGED.to_owned());
    }
    out.into_iter().collect()
}

#[derive(Clone, Copy)]
enum Hook {
    None,
    Filter(NfHook, i32, NfChainPolicy),
    Nat(NfHook, i32),
}

#[derive(Default)]
struct Builder {
    objects: Vec<NfObject<'static>>,
    /// Chains in declaration order, with their hook.
    chains: Vec<(String, Hook)>,
    /// Rules per chain, in chain declaration order.
    rules: Vec<(String, Vec<Vec<St>>)>,
}

impl Builder {
    fn chain(&mut self, name: String, hook: Hook, rules: Vec<Vec<St>>) {
        self.chains.push((name.clone(), hook));
        self.rules.push((name, rules));
    }

    fn sets(&mut self, config: &Config) {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for s in &config.segments {
            let ifname = || str_(s.interface.as_str());
            // The subnet, plus what a host legitimately sends before it has an address:
            // DHCP discovers from 0.0.0.0, IPv4 link-local, IPv6 DAD from :: and
            // link-local neighbour discovery.
            let mut nets4: Vec<IpNet> = vec![
                IpNet::V4(s.address.subnet()),
                "0.0.0.0/32".parse().expect("constant"),
                "169.254.0.0/16".parse().expect("constant"),
            ];
            nets4.sort();
            for n in nets4 {
                v4.push(concat(vec![ifname(), net(n)]));
            }
            let mut nets6: Vec<IpNet> = vec![
                "::/128".parse().expect("constant"),
                "fe80::/10".parse().expect("constant"),
            ];
            if let Some(a6) = s.address6 {
                nets6.push(IpNet::V6(a6.subnet()));
            }
            nets6.sort();
            for n in nets6 {
                v6.push(concat(vec![ifname(), net(n)]));
            }
        }
        for (name, addr_type, elems) in [
            (SET_SOURCES_V4, SetType::Ipv4Addr, v4),
            (SET_SOURCES_V6, SetType::Ipv6Addr, v6),
        ] {
            self.objects.push(add(NfListObject::Set(Box::new(Set {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: name.into(),
                handle: None,
                set_type: SetTypeValue::Concatenated(vec![SetType::Ifname, addr_type].into()),
                policy: None,
                flags: Some([SetFlag::Interval].into_iter().collect()),
                elem: if elems.is_empty() {
                    None
                } else {
                    Some(elems.into())
                },
                timeout: None,
                gc_interval: None,
                size: None,
                comment: None,
            }))));
        }
    }

    fn sources(&mut self, config: &Config) {
        // No rule of the table sets `nftrace` (`cloison verify` adds its own table for
        // the time of a run): while any rule can, the kernel hashes every packet at every
        // base chain.
        let mut rules = vec![
            vec![
                eq(
                    concat(vec![meta(MetaKey::Iifname), payload("ip", "saddr")]),
                    str_(format!("@{SET_SOURCES_V4}")),
                ),
                accept(),
            ],
            vec![
                eq(
                    concat(vec![meta(MetaKey::Iifname), payload("ip6", "saddr")]),
                    str_(format!("@{SET_SOURCES_V6}")),
                ),
                accept(),
            ],
        ];
        let spoof: Vec<(E, St)> = config
            .segments
            .iter()
            .map(|s| {
                (
                    str_(s.interface.as_str()),
                    jump(chain_spoofed(s.name.as_str())),
                )
            })
            .collect();
        if !spoof.is_empty() {
            rules.push(vec![vmap(meta(MetaKey::Iifname), spoof)]);
        }
        self.chain(
            CHAIN_SOURCES.into(),
            Hook::Filter(NfHook::Prerouting, PRIORITY_RAW, NfChainPolicy::Accept),
            rules,
        );
        for s in &config.segments {
            let name = s.name.as_str();
            self.chain(
                chain_spoofed(name),
                Hook::None,
                log_and_drop(&pair(name, TO_SPOOFED)),
            );
        }
    }

    /// The decisions on packets from segments, before routing: `segments` and the
    /// `from/<seg>` and `pair/<seg>/<to>` chains.
    fn segments(&mut self, config: &Config) {
        let from: Vec<(E, St)> = config
            .segments
            .iter()
            .map(|s| {
                (
                    str_(s.interface.as_str()),
                    jump(chain_from(s.name.as_str())),
                )
            })
            .collect();
        let mut rules = Vec::new();
        if let Some(trunk) = &config.trunk {
            // Nothing is meant to arrive untagged on the trunk's parent: not for the
            // router, not for routing elsewhere, established or not.
            rules.push(vec![
                eq(meta(MetaKey::Iifname), str_(trunk.as_str())),
                jump(CHAIN_UNTAGGED.to_owned()),
            ]);
        }
        rules.extend([
            vec![eq(ct_state(), str_("established")), accept()],
            confirmed_new(),
            // Link-layer broadcast and multicast are never forwarded (the kernel drops
            // them before forwarding); `input` decides what the router accepts of them.
            vec![ne(meta(MetaKey::Pkttype), str_("host")), accept()],
        ]);
        if !from.is_empty() {
            rules.push(vec![vmap(meta(MetaKey::Iifname), from)]);
        }
        self.chain(
            CHAIN_SEGMENTS.into(),
            Hook::Filter(NfHook::Prerouting, PRIORITY_MANGLE, NfChainPolicy::Accept),
            rules,
        );
        if config.trunk.is_some() {
            self.chain(
                CHAIN_UNTAGGED.into(),
                Hook::None,
                log_and_drop(TRUNK_UNTAGGED),
            );
        }

        let subnets4: Vec<Ipv4Net> = config.segments.iter().map(|s| s.address.subnet()).collect();
        let subnets6: Vec<Ipv6Net> = config
            .segments
            .iter()
            .filter_map(|s| s.address6.map(|a| a.subnet()))
            .collect();
        // Never "Internet": the non-public ranges, and the uplinks' own link networks
        // (the boxes' admin pages live there, public addresses or not).
        let mut never4 = space::non_internet_v4();
        never4.extend(
            config
                .uplinks
                .iter()
                .filter_map(|u| u.address.map(|a| a.subnet())),
        );
        let mut never6 = space::non_internet_v6();
        never6.extend(
            config
                .uplinks
                .iter()
                .filter_map(|u| u.address6.map(|a| a.subnet())),
        );
        let private4 = space::subtract_v4(&never4, &subnets4);
        let private6 = space::subtract_v6(&never6, &subnets6);

        for s in &config.segments {
            self.segment_destinations(config, s, &private4, &private6);
        }
    }

    /// Where segment `s` may send, by destination: its own subnet (hairpin), the pair
    /// chains; the Internet is left to `forward`'s uplink check, or dropped here when the
    /// segment has no uplink.
    fn segment_destinations(
        &mut self,
        config: &Config,
        s: &Segment,
        private4: &[Piece],
        private6: &[Piece],
    ) {
        let name = s.name.as_str();
        let private_chain = chain_pair(name, TO_PRIVATE);
        let mut by_dst4: Vec<(Piece, St)> = private4
            .iter()
            .map(|p| (*p, jump(private_chain.clone())))
            .collect();
        let mut by_dst6: Vec<(Piece, St)> = private6
            .iter()
            .map(|p| (*p, jump(private_chain.clone())))
            .collect();
        for t in &config.segments {
            // A segment's own subnet: hairpin traffic stays inside the segment.
            let verdict = || {
                if t.name == s.name {
                    accept()
                } else {
                    jump(chain_pair(name, t.name.as_str()))
                }
            };
            by_dst4.push((Piece::Net(IpNet::V4(t.address.subnet())), verdict()));
            if let Some(a6) = t.address6 {
                by_dst6.push((Piece::Net(IpNet::V6(a6.subnet())), verdict()));
            }
        }
        // nft lists interval elements by start address.
        by_dst4.sort_by_key(|(p, _)| start(p));
        by_dst6.sort_by_key(|(p, _)| start(p));

        let mut rules = vec![
            vec![vmap(
                payload("ip", "daddr"),
                by_dst4.into_iter().map(|(p, v)| (piece(p), v)).collect(),
            )],
            vec![vmap(
                payload("ip6", "daddr"),
                by_dst6.into_iter().map(|(p, v)| (piece(p), v)).collect(),
            )],
        ];
        if s.uplink.is_none() {
            // No uplink: the Internet is dropped here, silently and counted, before the
            // routing (without a default route it would answer "network unreachable";
            // found by the randomized oracle). The router's own addresses go on to
            // `input`, which decides.
            rules.push(router_own_address());
            rules.push(vec![counter_ref(&pair(name, TO_INTERNET)), drop_()]);
        }
        self.chain(chain_from(name), Hook::None, rules);

        for t in &config.segments {
            if t.name == s.name {
                continue;
            }
            let mut rules = vec![router_own_address()];
            rules.extend(errors_on_allowed_flows(config, t, s));
            rules.extend(allow_rules(config, s, t));
            rules.extend(log_and_drop(&pair(name, t.name.as_str())));
            self.chain(chain_pair(name, t.name.as_str()), Hook::None, rules);
        }
        let mut rules = vec![router_own_address()];
        rules.extend(log_and_drop(&pair(name, TO_PRIVATE)));
        self.chain(private_chain, Hook::None, rules);
    }

    /// `forward`: what routing decided to forward. A segment's packets leave only by its
    /// own uplink or toward a segment (judged in `segments` already).
    fn forward(&mut self, config: &Config) {
        let from: Vec<(E, St)> = config
            .segments
            .iter()
            .map(|s| {
                (
                    str_(s.interface.as_str()),
                    jump(chain_forward_from(s.name.as_str())),
                )
            })
            .collect();
        let mut rules = vec![established_or_invalid(), confirmed_new()];
        if !from.is_empty() {
            rules.push(vec![vmap(meta(MetaKey::Iifname), from)]);
        }
        // Related packets that did not come from a segment: ICMP errors from the
        // uplinks about the segments' own flows (path MTU, unreachable).
        rules.push(vec![eq(ct_state(), str_("related")), accept()]);
        rules.push(vec![counter_ref(UNROUTED), drop_()]);
        self.chain(
            CHAIN_FORWARD.into(),
            Hook::Filter(NfHook::Forward, PRIORITY_FILTER, NfChainPolicy::Drop),
            rules,
        );
        self.chain(
            CHAIN_INVALID.into(),
            Hook::None,
            vec![vec![counter_ref(INVALID), drop_()]],
        );
        let segment_ifaces: Vec<E> = config
            .segments
            .iter()
            .map(|s| str_(s.interface.as_str()))
            .collect();
        for s in &config.segments {
            let mut out = segment_ifaces.clone();
            if let Some(uplink) = s.uplink.as_ref().and_then(|u| config.uplink(u.as_str())) {
                out.push(str_(uplink.interface.as_str()));
            }
            out.sort_by_key(|e| match e {
                Expression::String(x) => x.to_string(),
                _ => String::new(),
            });
            let name = s.name.as_str();
            self.chain(
                chain_forward_from(name),
                Hook::None,
                vec![
                    vec![eq(meta(MetaKey::Oifname), set(out)), accept()],
                    // Internet-bound traffic the segment may not send (no uplink, or
                    // another one): counted, not sampled; ordinary noise, not an attempt
                    // to cross.
                    vec![counter_ref(&pair(name, TO_INTERNET)), drop_()],
                ],
            );
        }
    }

    fn input(&mut self, config: &Config) {
        let mut from: Vec<(E, St)> = config
            .segments
            .iter()
            .map(|s| {
                (
                    str_(s.interface.as_str()),
                    jump(chain_input_from(s.name.as_str())),
                )
            })
            .collect();
        from.extend(config.uplinks.iter().map(|u| {
            (
                str_(u.interface.as_str()),
                jump(chain_input_from(u.name.as_str())),
            )
        }));
        let mut rules = vec![vec![eq(meta(MetaKey::Iifname), str_("lo")), accept()]];
        let trusted: Vec<E> = config
            .router
            .trusted_interfaces
            .iter()
            .map(|i| str_(i.as_str()))
            .collect();
        if !trusted.is_empty() {
            rules.push(vec![eq(meta(MetaKey::Iifname), set(trusted)), accept()]);
        }
        rules.push(established_or_invalid());
        if !from.is_empty() {
            rules.push(vec![vmap(meta(MetaKey::Iifname), from)]);
        }
        // Every other interface: the trunk's parent never gets here (dropped before
        // routing), what cloison does not manage is counted and dropped, unless the
        // configuration keeps the input open.
        let policy = match config.router.unmanaged_input {
            UnmanagedInput::Drop => {
                rules.push(vec![counter_ref(UNMANAGED), drop_()]);
                NfChainPolicy::Drop
            }
            UnmanagedInput::Accept => NfChainPolicy::Accept,
        };
        self.chain(
            CHAIN_INPUT.into(),
            Hook::Filter(NfHook::Input, PRIORITY_FILTER, policy),
            rules,
        );
        for s in &config.segments {
            self.input_from_segment(config, s);
        }
        for u in &config.uplinks {
            let name = u.name.as_str();
            let rules = vec![
                // ICMP errors about the router's own flows out of this uplink.
                vec![eq(ct_state(), str_("related")), accept()],
                vec![
                    eq(
                        payload("icmpv6", "type"),
                        set(ICMPV6_UPLINK.iter().map(|t| str_(*t)).collect()),
                    ),
                    accept(),
                ],
                // DHCP and DHCPv6 clients on the uplink.
                vec![
                    eq(
                        concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]),
                        set(vec![
                            concat(vec![str_("udp"), num(68)]),
                            concat(vec![str_("udp"), num(546)]),
                        ]),
                    ),
                    accept(),
                ],
                // No NFLOG: the Internet knocking on the door is not a segment event.
                vec![counter_ref(&pair(name, TO_ROUTER)), drop_()],
            ];
            self.chain(chain_input_from(name), Hook::None, rules);
        }
    }

    fn input_from_segment(&mut self, config: &Config, s: &Segment) {
        let name = s.name.as_str();
        let mut ports: BTreeSet<(Proto, u16)> = s
            .services
            .iter()
            .flat_map(|x| x.ports().iter().copied())
            .collect();
        if s.management {
            ports.insert((Proto::Tcp, config.router.ssh_port));
        }
        let mut ports6 = ports.clone();
        if s.services.contains(&Service::Dhcp) {
            // DHCP is IPv4 (udp/67); over IPv6 the server listens on DHCPv6's port only
            // (found by the randomized oracle: 67 was open over IPv6 too).
            ports6.remove(&(Proto::Udp, 67));
            ports6.insert((Proto::Udp, 547));
        }
        let own4 = str_(s.address.addr().to_string());
        let mut own6: Vec<E> = s
            .address6
            .iter()
            .map(|a| str_(a.addr().to_string()))
            .collect();
        own6.push(net("fe80::/10".parse().expect("constant")));
        // ICMP errors only about the router's flows with this segment (to its own
        // address here): an error quoting any other flow is an injection attempt.
        let mut rules = vec![
            vec![
                eq(ct_state(), str_("related")),
                eq(payload("ip", "daddr"), own4.clone()),
                accept(),
            ],
            vec![
                eq(ct_state(), str_("related")),
                eq(payload("ip6", "daddr"), set(own6.clone())),
                accept(),
            ],
        ];
        if !ports.is_empty() {
            rules.push(vec![
                eq(
                    payload("ip", "daddr"),
                    set(vec![own4.clone(), str_("255.255.255.255")]),
                ),
                eq(
                    concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]),
                    service_set(&ports),
                ),
                accept(),
            ]);
        }
        if !ports6.is_empty() {
            let mut dst6 = own6.clone();
            dst6.push(net("ff02::/16".parse().expect("constant")));
            rules.push(vec![
                eq(payload("ip6", "daddr"), set(dst6)),
                eq(
                    concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]),
                    service_set(&ports6),
                ),
                accept(),
            ]);
        }
        if s.services.contains(&Service::Ping) {
            rules.push(vec![
                eq(payload("ip", "daddr"), own4),
                eq(payload("icmp", "type"), str_("echo-request")),
                accept(),
            ]);
            rules.push(vec![
                eq(payload("ip6", "daddr"), set(own6)),
                eq(payload("icmpv6", "type"), str_("echo-request")),
                accept(),
            ]);
        }
        rules.push(vec![
            eq(
                payload("icmpv6", "type"),
                set(ICMPV6_LINK.iter().map(|t| str_(*t)).collect()),
            ),
            accept(),
        ]);
        // Broadcast and multicast chatter (NetBIOS, SSDP, mDNS...) that is not a listed
        // service: counted, not alerted.
        rules.push(vec![
            ne(meta(MetaKey::Pkttype), str_("host")),
            counter_ref(&pair(name, TO_BROADCAST)),
            drop_(),
        ]);
        rules.extend(log_and_drop(&pair(name, TO_ROUTER)));
        self.chain(chain_input_from(name), Hook::None, rules);
    }

    fn postrouting(&mut self, config: &Config) {
        let masq: Vec<E> = config
            .uplinks
            .iter()
            .filter(|u| u.masquerade)
            .map(|u| str_(u.interface.as_str()))
            .collect();
        if masq.is_empty() {
            return;
        }
        self.chain(
            CHAIN_POSTROUTING.into(),
            Hook::Nat(NfHook::Postrouting, PRIORITY_SRCNAT),
            vec![vec![
                eq(meta(MetaKey::Oifname), set(masq)),
                Statement::Masquerade(None),
            ]],
        );
    }
}

/// What an `[[allow]]` from `s` to `t` lets through, before the pair's drop.
fn allow_rules(config: &Config, s: &Segment, t: &Segment) -> Vec<Vec<St>> {
    let allows: Vec<_> = config
        .allows
        .iter()
        .filter(|a| a.from == s.name && a.to == t.name)
        .collect();
    let ports: BTreeSet<(Proto, u16)> = allows
        .iter()
        .filter(|a| a.proto != Proto::Icmp)
        .flat_map(|a| a.ports.iter().map(|p| (a.proto, *p)))
        .collect();
    let mut rules = Vec::new();
    if !ports.is_empty() {
        rules.push(vec![
            eq(
                concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]),
                service_set(&ports),
            ),
            accept(),
        ]);
    }
    if allows.iter().any(|a| a.proto == Proto::Icmp) {
        rules.push(vec![
            eq(payload("icmp", "type"), str_("echo-request")),
            accept(),
        ]);
        rules.push(vec![
            eq(payload("icmpv6", "type"), str_("echo-request")),
            accept(),
        ]);
    }
    rules
}

/// ICMP errors `s` may send toward `t`: only about flows `t` opened toward `s` through
/// an allow (the path of such a flow crosses `s`); errors quoting any other flow are
/// injection attempts and meet the pair's drop. Nothing when no allow goes from `t` to
/// `s`.
fn errors_on_allowed_flows(config: &Config, t: &Segment, s: &Segment) -> Vec<Vec<St>> {
    if !config
        .allows
        .iter()
        .any(|a| a.from == t.name && a.to == s.name)
    {
        return Vec::new();
    }
    let original_daddr = |family: &'static str| {
        Expression::Named(NamedExpression::CT(CT {
            key: format!("{family} daddr").into(),
            family: None,
            dir: Some(CTDir::Original),
        }))
    };
    let mut rules = vec![vec![
        eq(ct_state(), str_("related")),
        eq(original_daddr("ip"), net(IpNet::V4(s.address.subnet()))),
        accept(),
    ]];
    if let Some(a6) = s.address6 {
        rules.push(vec![
            eq(ct_state(), str_("related")),
            eq(original_daddr("ip6"), net(IpNet::V6(a6.subnet()))),
            accept(),
        ]);
    }
    rules
}

fn service_set(ports: &BTreeSet<(Proto, u16)>) -> E {
    set(ports
        .iter()
        .map(|(p, port)| concat(vec![str_(p.name()), num(u32::from(*port))]))
        .collect())
}

/// Sample to NFLOG (rate-limited, its own rule), then count and drop (never limited).
/// The first rule of every chain that drops a segment's packets before routing: a packet
/// for one of the router's own addresses (on another segment, an uplink, loopback) goes
/// on to `input`, which decides. It is asked here, on the way to a drop, and not at the
/// top of `segments`: a `fib` lookup for every new packet toward the Internet cost 1%
/// of a core at 100 kpps (docs/performance.md).
fn router_own_address() -> Vec<St> {
    vec![eq(fib_daddr_type(), str_("local")), accept()]
}

fn log_and_drop(counter_name: &str) -> Vec<Vec<St>> {
    vec![
        vec![
            Statement::Limit(Limit {
                rate: LOG_RATE_PER_SECOND,
                rate_unit: None,
                per: Some("second".into()),
                burst: Some(LOG_BURST),
                burst_unit: None,
                inv: None,
            }),
            Statement::Log(Some(Log {
                prefix: Some(counter_name.to_owned().into()),
                group: Some(NFLOG_GROUP),
                snaplen: None,
                queue_threshold: None,
                level: None,
                flags: None,
            })),
        ],
        vec![counter_ref(counter_name), drop_()],
    ]
}

/// Established flows pass; packets conntrack finds invalid are counted and dropped.
/// Related packets are not let through here: each chain says which it accepts.
fn established_or_invalid() -> Vec<St> {
    vec![vmap(
        ct_state(),
        vec![
            (str_("established"), accept()),
            (str_("invalid"), jump(CHAIN_INVALID.to_owned())),
        ],
    )]
}

/// Packets of a connection whose first packet passed every check already, and which
/// has seen no reply yet (a one-way UDP stream, a retransmitted SYN): conntrack confirms
/// a connection only once its first packet has left the last hook, so a connection
/// whose first packet was dropped is never confirmed, and its later packets meet the
/// checks again. Such packets pass as established ones do: the decision depends on
/// nothing the connection's tuple does not fix. Without it, every packet of a one-way
/// stream was judged anew: the lookups cost 4% of a core at 100 kpps
/// (docs/performance.md).
fn confirmed_new() -> Vec<St> {
    vec![
        eq(ct_state(), str_("new")),
        // A flag test (`in`), not an equality: a masqueraded connection has NAT bits too.
        Statement::Match(Match {
            left: ct_key("status"),
            right: str_("confirmed"),
            op: Operator::IN,
        }),
        accept(),
    ]
}

fn ct_state() -> E {
    ct_key("state")
}

fn ct_key(key: &'static str) -> E {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

/// `fib daddr type`: the type of the route to the destination, as the kernel's FIB
/// sees it (`local` for the router's own addresses).
fn fib_daddr_type() -> E {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    }))
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn chain(name: &str, hook: Hook) -> Chain<'static> {
    let (kind, hook, prio, policy) = match hook {
        Hook::None => (None, None, None, None),
        Hook::Filter(h, p, pol) => (Some(NfChainType::Filter), Some(h), Some(p), Some(pol)),
        Hook::Nat(h, p) => (
            Some(NfChainType::NAT),
            Some(h),
            Some(p),
            Some(NfChainPolicy::Accept),
        ),
    };
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_owned().into(),
        newname: None,
        handle: None,
        _type: kind,
        hook,
        prio,
        dev: None,
        policy,
    }
}

fn add(o: NfListObject<'static>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(o))
}

fn str_(s: impl Into<String>) -> E {
    Expression::String(Cow::Owned(s.into()))
}

fn num(n: u32) -> E {
    Expression::Number(n)
}

fn meta(key: MetaKey) -> E {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> E {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: field.into(),
        },
    )))
}

fn concat(items: Vec<E>) -> E {
    Expression::Named(NamedExpression::Concat(items))
}

/// A prefix as nft prints it: a host route is a bare address.
fn net(n: IpNet) -> E {
    if n.prefix_len() == n.max_prefix_len() {
        str_(n.addr().to_string())
    } else {
        Expression::Named(NamedExpression::Prefix(Prefix {
            addr: Box::new(str_(n.network().to_string())),
            len: u32::from(n.prefix_len()),
        }))
    }
}

fn start(p: &Piece) -> IpAddr {
    match p {
        Piece::Net(n) => n.network(),
        Piece::Range(a, _) => *a,
    }
}

fn piece(p: Piece) -> E {
    match p {
        Piece::Net(n) => net(n),
        Piece::Range(a, b) => Expression::Range(Box::new(Range {
            range: [str_(a.to_string()), str_(b.to_string())],
        })),
    }
}

/// An anonymous set; nft prints a one-element set as the bare element (except for
/// concatenations, which must stay in a set).
fn set(mut items: Vec<E>) -> E {
    let concat = matches!(
        items.first(),
        Some(Expression::Named(NamedExpression::Concat(_)))
    );
    if items.len() == 1 && !concat {
        items.pop().expect("one item")
    } else {
        Expression::Named(NamedExpression::Set(
            items.into_iter().map(SetItem::Element).collect(),
        ))
    }
}

fn vmap(key: E, entries: Vec<(E, St)>) -> St {
    Statement::VerdictMap(VerdictMap {
        key,
        data: Expression::Named(NamedExpression::Set(
            entries
                .into_iter()
                .map(|(k, v)| SetItem::MappingStatement(k, v))
                .collect(),
        )),
    })
}

fn eq(left: E, right: E) -> St {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn ne(left: E, right: E) -> St {
    Statement::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

fn jump(target: String) -> St {
    Statement::Jump(JumpTarget {
        target: target.into(),
    })
}

fn accept() -> St {
    Statement::Accept(None)
}

fn drop_() -> St {
    Statement::Drop(None)
}

fn counter_ref(name: &str) -> St {
    Statement::Counter(stmt::Counter::Named(name.to_owned().into()))
}
