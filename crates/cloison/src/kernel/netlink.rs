//! The edge that makes a `LinkPlan` real through rtnetlink: VLAN sub-interfaces,
//! addresses, link state, per-uplink routing tables and policy rules. Each step reads the
//! current state first and changes only what differs, reporting each change, so applying
//! twice changes nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkUnspec, LinkVlan};

use cloison_core::config::IfName;
use cloison_core::plan::LinkPlan;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open a netlink socket")]
    Connect(#[source] std::io::Error),
    #[error(
        "interface `{0}` does not exist; check the interface names in the configuration (`ip link` lists them)"
    )]
    Missing(IfName),
    #[error(
        "interface `{name}` exists but {detail}; remove or rename it, or change the configuration"
    )]
    Conflict { name: IfName, detail: String },
    #[error("netlink: {op}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
}

pub(super) fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let op = op.into();
    move |source| LinkError::Netlink { op, source }
}

pub struct Netlink {
    pub(super) handle: Handle,
}

impl Netlink {
    /// Opens a netlink connection; must be called inside a tokio runtime.
    pub fn connect() -> Result<Netlink, LinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Connect)?;
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    async fn link(&self, name: &str) -> Result<Option<LinkMessage>, LinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            // The kernel answers ENODEV for an unknown name.
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(nl(format!("looking up interface {name}"))(e)),
        }
    }

    pub(super) async fn ifindex(&self, name: &IfName) -> Result<u32, LinkError> {
        self.link(name.as_str())
            .await?
            .map(|l| l.header.index)
            .ok_or_else(|| LinkError::Missing(name.clone()))
    }

    /// Creates missing VLAN sub-interfaces (down; addresses and state come later).
    pub async fn ensure_vlans(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        for v in &plan.vlans {
            let parent = self.ifindex(&v.parent).await?;
            match self.link(v.name.as_str()).await? {
                Some(existing) => {
                    let (kind, id) = vlan_of(&existing);
                    let link = existing.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Link(i) => Some(*i),
                        _ => None,
                    });
                    if kind != Some(InfoKind::Vlan)
                        || id != Some(v.id.get())
                        || link != Some(parent)
                    {
                        return Err(LinkError::Conflict {
                            name: v.name.clone(),
                            detail: format!("is not VLAN {} on {}", v.id, v.parent),
                        });
                    }
                }
                None => {
                    self.handle
                        .link()
                        .add(LinkVlan::new(v.name.as_str(), parent, v.id.get()).build())
                        .execute()
                        .await
                        .map_err(nl(format!(
                            "creating {} (VLAN {} on {})",
                            v.name, v.id, v.parent
                        )))?;
                    changes.push(format!(
                        "created VLAN interface {} (VLAN {} on {})",
                        v.name, v.id, v.parent
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds missing addresses; on the interfaces cloison owns (segments), removes global
    /// addresses the plan does not hold (left from an earlier configuration).
    pub async fn ensure_addresses(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        let interfaces: BTreeSet<&IfName> = plan.addresses.iter().map(|a| &a.interface).collect();
        for ifname in interfaces {
            let index = self.ifindex(ifname).await?;
            let want: Vec<IpNet> = plan
                .addresses
                .iter()
                .filter(|a| &a.interface == ifname)
                .map(|a| a.address)
                .collect();
            let have = self.addresses(index).await?;
            for a in &want {
                if !have.contains(a) {
                    self.handle
                        .address()
                        .add(index, a.addr(), a.prefix_len())
                        .execute()
                        .await
                        .map_err(nl(format!("adding {a} to {ifname}")))?;
                    changes.push(format!("added address {a} to {ifname}"));
                }
            }
            if plan.owned.contains(ifname) {
                for a in have.iter().filter(|a| !want.contains(a)) {
                    let mut msgs = self
                        .handle
                        .address()
                        .get()
                        .set_link_index_filter(index)
                        .execute();
                    while let Some(msg) = msgs
                        .try_next()
                        .await
                        .map_err(nl(format!("listing addresses of {ifname}")))?
                    {
                        if address_of(&msg).as_ref() == Some(a) {
                            self.handle
                                .address()
                                .del(msg)
                                .execute()
                                .await
                                .map_err(nl(format!("removing {a} from {ifname}")))?;
                            changes.push(format!("removed stale address {a} from {ifname}"));
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Global (not link-local) addresses of an interface.
    async fn addresses(&self, index: u32) -> Result<Vec<IpNet>, LinkError> {
        let mut out = Vec::new();
        let mut msgs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(msg) = msgs.try_next().await.map_err(nl("listing addresses"))? {
            if msg.header.scope == AddressScope::Universe {
                out.extend(address_of(&msg));
            }
        }
        Ok(out)
    }

    pub async fn ensure_up(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        for name in &plan.up {
            let link = self
                .link(name.as_str())
                .await?
                .ok_or_else(|| LinkError::Missing(name.clone()))?;
            if !link.header.flags.contains(LinkFlags::Up) {
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(link.header.index).up().build())
                    .execute()
                    .await
                    .map_err(nl(format!("bringing {name} up")))?;
                changes.push(format!("brought {name} up"));
            }
        }
        Ok(())
    }

    /// Waits, at most `limit`, until every IPv6 address (link-local included) of the
    /// plan's interfaces has finished duplicate address detection: until then the kernel
    /// neither uses the address nor resolves neighbours for forwarded packets. Interfaces
    /// without carrier are not waited for (detection starts when a cable is plugged).
    /// Returns one note per interface or address still not usable.
    pub async fn wait_ipv6_ready(
        &self,
        plan: &LinkPlan,
        limit: Duration,
    ) -> Result<Vec<String>, LinkError> {
        let mut notes = Vec::new();
        let mut watched: Vec<(u32, &IfName)> = Vec::new();
        let names: BTreeSet<&IfName> = plan
            .addresses
            .iter()
            .filter(|a| matches!(a.address, IpNet::V6(_)))
            .map(|a| &a.interface)
            .collect();
        for name in names {
            let link = self
                .link(name.as_str())
                .await?
                .ok_or_else(|| LinkError::Missing(name.clone()))?;
            if link.header.flags.contains(LinkFlags::LowerUp) {
                watched.push((link.header.index, name));
            } else {
                notes.push(format!("{name} has no carrier (cable unplugged?); its IPv6 addresses start working when it has one"));
            }
        }
        let deadline = Instant::now() + limit;
        loop {
            let mut pending = Vec::new();
            let mut msgs = self.handle.address().get().execute();
            while let Some(msg) = msgs.try_next().await.map_err(nl("listing addresses"))? {
                let Some((_, name)) = watched.iter().find(|(i, _)| *i == msg.header.index) else {
                    continue;
                };
                if msg.header.family != AddressFamily::Inet6 {
                    continue;
                }
                let mut flags = AddressFlags::from_bits_retain(u32::from(msg.header.flags.bits()));
                for attr in &msg.attributes {
                    if let AddressAttribute::Flags(f) = attr {
                        flags |= *f;
                    }
                }
                let addr =
                    address_of(&msg).map_or_else(|| "an address".to_owned(), |a| a.to_string());
                if flags.contains(AddressFlags::Dadfailed) {
                    pending.push((true, format!("{addr} on {name}: another host on the link uses this address (duplicate address detection failed)")));
                } else if flags.contains(AddressFlags::Tentative) {
                    pending.push((
                        false,
                        format!("{addr} on {name}: still in duplicate address detection"),
                    ));
                }
            }
            if pending.iter().all(|(failed, _)| *failed) || Instant::now() >= deadline {
                notes.extend(pending.into_iter().map(|(_, n)| n));
                return Ok(notes);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn vlan_of(link: &LinkMessage) -> (Option<InfoKind>, Option<u16>) {
    let mut kind = None;
    let mut id = None;
    for a in &link.attributes {
        if let LinkAttribute::LinkInfo(infos) = a {
            for info in infos {
                match info {
                    LinkInfo::Kind(k) => kind = Some(k.clone()),
                    LinkInfo::Data(InfoData::Vlan(v)) => {
                        id = v.iter().find_map(|x| match x {
                            InfoVlan::Id(i) => Some(*i),
                            _ => None,
                        })
                    }
                    _ => {}
                }
            }
        }
    }
    (kind, id)
}

fn address_of(msg: &netlink_packet_route::address::AddressMessage) -> Option<IpNet> {
    let addr = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) if msg.header.family == AddressFamily::Inet => Some(*ip),
        AddressAttribute::Address(ip) if msg.header.family == AddressFamily::Inet6 => Some(*ip),
        _ => None,
    })?;
    IpNet::new(addr, msg.header.prefix_len).ok()
}
