//! Applying a plan to the kernel, fail-closed, and removing it.
//!
//! Order: the ruleset first (one nft transaction), verified by listing it back; then the
//! links, sysctls, addresses, routes and rules; forwarding last. If the ruleset cannot be
//! applied, nothing else is touched: the previous table stays as it was, and forwarding
//! is switched on only behind a verified table.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::Config;
use crate::netlink::{LinkError, Netlink};
use crate::nft::canonical::{canonical, differences};
use crate::nft::run::{carry_counters, counters};
use crate::nft::{Counts, Nft, NftError};
use crate::plan::{self, Plan};
use crate::sysctl::{self, SysctlError};

/// How long `apply` waits for IPv6 duplicate address detection.
const IPV6_READY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the ruleset was not applied; {state}")]
    Ruleset {
        state: &'static str,
        #[source]
        source: NftError,
    },
    #[error("the live table differs from the plan right after applying it: {}", .0.join("; "))]
    Verify(Vec<String>),
    #[error("cannot read the live table")]
    Read(#[source] NftError),
    #[error("setting up links failed (the ruleset is in place{})", if *.forwarding_on { "" } else { "; forwarding left off" })]
    Links {
        forwarding_on: bool,
        #[source]
        source: LinkError,
    },
    #[error("setting a sysctl failed (the ruleset is in place)")]
    Sysctl(#[source] SysctlError),
}

/// What applying did to the ruleset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesetChange {
    /// The live table already matched the plan; it was left alone (counters too).
    Unchanged,
    /// There was no table; it was created.
    Installed,
    /// The table was replaced in one transaction; its counters carried over.
    Replaced,
}

#[derive(Debug)]
pub struct Applied {
    pub ruleset: RulesetChange,
    /// The plan's hash, which the live table now has.
    pub hash: String,
    /// One line per change to links, addresses, routes, rules and sysctls.
    pub changes: Vec<String>,
    /// Observations that are not changes (a port without carrier...).
    pub notes: Vec<String>,
}

impl Applied {
    pub fn changed_anything(&self) -> bool {
        self.ruleset != RulesetChange::Unchanged || !self.changes.is_empty()
    }
}

/// Puts the ruleset in place (or leaves it if it already matches) and verifies it.
/// Counters start from the live table's values, or from `seed` where that is higher
/// (the daemon's last reading, when someone deleted the table). Exposed on its own for
/// the daemon's drift repair and reloads.
pub fn apply_ruleset(
    plan: &Plan,
    nft: &Nft,
    seed: &BTreeMap<String, Counts>,
) -> Result<RulesetChange, ApplyError> {
    let want = plan.canonical();
    let live = nft.list_table().map_err(ApplyError::Read)?;
    let change = match &live {
        Some(doc) if differences(&want, &canonical(doc)).is_empty() => {
            return Ok(RulesetChange::Unchanged);
        }
        Some(_) => RulesetChange::Replaced,
        None => RulesetChange::Installed,
    };
    let mut carried = live.as_ref().map(counters).unwrap_or_default();
    for (name, c) in seed {
        let e = carried.entry(name.clone()).or_default();
        if c.packets > e.packets {
            *e = *c;
        }
    }
    let batch = carry_counters(&plan.ruleset_json(), &carried);
    if let Err(source) = nft.apply(&batch) {
        let state = if live.is_some() {
            "the previous table is still in place, unchanged"
        } else {
            "there is no cloison table and forwarding was not switched on"
        };
        return Err(ApplyError::Ruleset { state, source });
    }
    verify(&want, nft)?;
    Ok(change)
}

fn verify(want: &Value, nft: &Nft) -> Result<(), ApplyError> {
    let live = nft.list_table().map_err(ApplyError::Read)?;
    let diffs = match live {
        Some(doc) => differences(want, &canonical(&doc)),
        None => vec!["the table is missing".to_owned()],
    };
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Verify(diffs))
    }
}

/// Applies everything, fail-closed. Runs inside a tokio runtime (netlink is async).
pub async fn apply(
    config: &Config,
    nft: &Nft,
    seed: &BTreeMap<String, Counts>,
) -> Result<Applied, ApplyError> {
    let plan = plan::plan(config);
    let ruleset = match apply_ruleset(&plan, nft, seed) {
        Ok(r) => r,
        Err(e @ ApplyError::Ruleset { .. }) => {
            // With no table of ours in place, forwarding must not stay on.
            if !nft.table_exists().unwrap_or(false) {
                for s in plan::forwarding_off(config) {
                    let _ = sysctl::set(&s);
                }
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };

    let forwarding_on = sysctl::forwarding_on();
    let links_err = |source| ApplyError::Links {
        forwarding_on,
        source,
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let nl = Netlink::connect().map_err(links_err)?;
    nl.ensure_vlans(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    // Hardening before addresses and link up: a new VLAN interface never accepts a
    // router advertisement or answers ARP for another interface.
    let mut sysctl_changes = 0;
    for s in &plan.sysctls {
        match sysctl::set(s) {
            Ok(true) => sysctl_changes += 1,
            Ok(false) => {}
            Err(e) => return Err(ApplyError::Sysctl(e)),
        }
    }
    if sysctl_changes > 0 {
        changes.push(format!(
            "set {sysctl_changes} hardening sysctl{}",
            if sysctl_changes == 1 { "" } else { "s" }
        ));
    }
    nl.ensure_addresses(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    nl.ensure_up(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    // IPv6 addresses are unusable until duplicate address detection ends (about a
    // second after the link comes up): wait, so that when apply returns the router
    // answers on every address.
    for note in nl
        .wait_ipv6_ready(&plan.links, IPV6_READY_WAIT)
        .await
        .map_err(links_err)?
    {
        notes.push(note);
    }
    nl.ensure_routes(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    nl.ensure_rules(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;

    // Forwarding last, behind the verified ruleset.
    verify(&plan.canonical(), nft)?;
    for s in &plan.forwarding {
        if sysctl::set(s).map_err(ApplyError::Sysctl)? {
            changes.push(format!("switched forwarding on ({})", s.key));
        }
    }
    Ok(Applied {
        ruleset,
        hash: plan.hash(),
        changes,
        notes,
    })
}

/// `apply --remove`: forwarding off first (so nothing is forwarded unfiltered), then the
/// table and cloison's routing rules. Links and addresses stay.
pub async fn remove(config: &Config, nft: &Nft) -> Result<Vec<String>, ApplyError> {
    let mut changes = Vec::new();
    for s in plan::forwarding_off(config) {
        if sysctl::set(&s).map_err(ApplyError::Sysctl)? {
            changes.push(format!("switched forwarding off ({})", s.key));
        }
    }
    match nft.delete_table() {
        Ok(true) => changes.push(format!("deleted table inet {}", plan::names::TABLE)),
        Ok(false) => {}
        Err(source) => {
            return Err(ApplyError::Ruleset {
                state: "forwarding is off",
                source,
            });
        }
    }
    let nl = Netlink::connect().map_err(|source| ApplyError::Links {
        forwarding_on: false,
        source,
    })?;
    nl.remove_routing(&mut changes)
        .await
        .map_err(|source| ApplyError::Links {
            forwarding_on: false,
            source,
        })?;
    Ok(changes)
}
