//! Applying a plan to the kernel, fail-closed, and removing it.
//!
//! Order: the ruleset first (one nft transaction), verified by listing it back; then the
//! second wall (policy routing: its tables' routes, then every rule of cloison's); then
//! the links, sysctls, addresses and the uplinks' routes; both walls verified again, and
//! forwarding last. If the ruleset cannot be
//! applied, nothing else is touched: the previous table stays as it was, and forwarding
//! is switched on only behind a verified table. Where no table of cloison's stands,
//! forwarding is switched off (`close`), and a failure to do so is an error of its own,
//! never dropped.

use std::collections::BTreeMap;

use cloison_core::config::Config;
use cloison_core::hash::Hash;
use cloison_core::names::TABLE;
use cloison_core::nft::{Counts, Sync, carry_counters, compare, counters, keep_highest};
use cloison_core::plan::{self, Plan};
use serde_json::Value;

use crate::kernel::{Kernel, LinkError, NftError, SysctlError};

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
    #[error("the second wall (policy routing) differs from the plan right after applying it: {}", .0.join("; "))]
    WallVerify(Vec<String>),
    #[error(
        "{cause}; and forwarding could NOT be switched off, so this box may forward unfiltered traffic: {source}; switch it off by hand (sysctl -w net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0)"
    )]
    NotClosed {
        cause: Box<ApplyError>,
        source: SysctlError,
    },
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
    pub hash: Hash,
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
pub fn apply_ruleset<K: Kernel>(
    plan: &Plan,
    kernel: &K,
    seed: &BTreeMap<String, Counts>,
) -> Result<RulesetChange, ApplyError> {
    let live = kernel.list_table().map_err(ApplyError::Read)?;
    replace_ruleset(plan, kernel, seed, live)
}

/// `apply_ruleset` over a listing the caller just read (the guard has one: one `nft`
/// process fewer on the way to a repaired table).
pub fn replace_ruleset<K: Kernel>(
    plan: &Plan,
    kernel: &K,
    seed: &BTreeMap<String, Counts>,
    live: Option<Value>,
) -> Result<RulesetChange, ApplyError> {
    let want = plan.canonical();
    let change = match compare(&want, live.as_ref()) {
        Sync::InSync => return Ok(RulesetChange::Unchanged),
        Sync::Drifted(_) => RulesetChange::Replaced,
        Sync::Missing => RulesetChange::Installed,
    };
    let mut carried = live.as_ref().map(counters).unwrap_or_default();
    keep_highest(&mut carried, seed);
    let batch = carry_counters(&plan.ruleset_json(), &carried);
    if let Err(source) = kernel.apply_ruleset(&batch) {
        let state = if live.is_some() {
            "the previous table is still in place, unchanged"
        } else {
            "there is no cloison table and forwarding was not switched on"
        };
        return Err(ApplyError::Ruleset { state, source });
    }
    verify(&want, kernel)?;
    Ok(change)
}

/// Replaces the ruleset whatever the live table holds (the guard knows it was changed:
/// the kernel said so), counters from `seed`, and verifies it: one `nft` to apply, one
/// to list back.
pub fn force_ruleset<K: Kernel>(
    plan: &Plan,
    kernel: &K,
    seed: &BTreeMap<String, Counts>,
) -> Result<(), ApplyError> {
    let batch = carry_counters(&plan.ruleset_json(), seed);
    kernel
        .apply_ruleset(&batch)
        .map_err(|source| ApplyError::Ruleset {
            state: "cloison's table stays as someone else left it",
            source,
        })?;
    verify(&plan.canonical(), kernel)
}

/// Puts the second wall in place (its routes, then every rule of cloison's) if it
/// differs from the plan; true when something changed. Exposed for the daemon's repair.
pub async fn apply_wall<K: Kernel>(
    plan: &Plan,
    kernel: &K,
    changes: &mut Vec<String>,
) -> Result<bool, LinkError> {
    let before = changes.len();
    kernel.ensure_wall(&plan.wall.routes, changes).await?;
    kernel.ensure_rules(&plan.routing_rules(), changes).await?;
    Ok(changes.len() > before)
}

/// The live policy routing matches the plan's, or what differs.
async fn verify_wall<K: Kernel>(plan: &Plan, kernel: &K) -> Result<(), ApplyError> {
    let live = kernel
        .read_routing()
        .await
        .map_err(|source| ApplyError::Links {
            forwarding_on: kernel.forwarding_on(),
            source,
        })?;
    let diffs = plan.routing_differences(&live);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::WallVerify(diffs))
    }
}

/// The live table matches `want` (a plan's canonical table), or what differs.
fn verify<K: Kernel>(want: &Value, kernel: &K) -> Result<(), ApplyError> {
    let live = kernel.list_table().map_err(ApplyError::Read)?;
    match compare(want, live.as_ref()) {
        Sync::InSync => Ok(()),
        other => Err(ApplyError::Verify(other.differences())),
    }
}

/// The fail-closed reaction: IPv4 and IPv6 forwarding off. Returns what changed.
pub fn close<K: Kernel>(kernel: &K) -> Result<Vec<String>, SysctlError> {
    let mut changes = Vec::new();
    for s in plan::forwarding_off() {
        if kernel.set_sysctl(&s)? {
            changes.push(format!("switched forwarding off ({})", s.key));
        }
    }
    Ok(changes)
}

/// Forwarding off, unless a table of cloison's stands: the one fail-closed rule.
pub fn close_if_unprotected<K: Kernel>(kernel: &K) -> Result<(), SysctlError> {
    if kernel.table_exists().unwrap_or(false) {
        return Ok(());
    }
    close(kernel).map(drop)
}

/// `error`, after closing forwarding if no table stands; a failure to close is reported
/// with it, loudly.
fn fail_closed<K: Kernel>(kernel: &K, error: ApplyError) -> ApplyError {
    match close_if_unprotected(kernel) {
        Ok(()) => error,
        Err(source) => {
            tracing::error!(cause = %source, "cannot switch forwarding off after a failed apply");
            ApplyError::NotClosed {
                cause: Box::new(error),
                source,
            }
        }
    }
}

/// Applies everything, fail-closed. Runs inside a tokio runtime (netlink is async).
pub async fn apply<K: Kernel>(
    config: &Config,
    kernel: &K,
    seed: &BTreeMap<String, Counts>,
) -> Result<Applied, ApplyError> {
    let plan = plan::plan(config);
    let ruleset = match apply_ruleset(&plan, kernel, seed) {
        Ok(r) => r,
        Err(e @ ApplyError::Ruleset { .. }) => return Err(fail_closed(kernel, e)),
        Err(e) => return Err(e),
    };

    let forwarding_on = kernel.forwarding_on();
    let links_err = |source| ApplyError::Links {
        forwarding_on,
        source,
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    // The second wall next, before any link exists or comes up: rules match interface
    // names, so they hold for VLAN interfaces created below.
    apply_wall(&plan, kernel, &mut changes)
        .await
        .map_err(links_err)?;
    kernel
        .ensure_vlans(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    // Hardening before addresses and link up: a new VLAN interface never accepts a
    // router advertisement or answers ARP for another interface.
    let mut sysctl_changes = 0;
    for s in &plan.sysctls {
        if kernel.set_sysctl(s).map_err(ApplyError::Sysctl)? {
            sysctl_changes += 1;
        }
    }
    if sysctl_changes > 0 {
        changes.push(format!(
            "set {sysctl_changes} hardening sysctl{}",
            if sysctl_changes == 1 { "" } else { "s" }
        ));
    }
    kernel
        .ensure_addresses(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    kernel
        .ensure_up(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;
    // IPv6 addresses are unusable until duplicate address detection ends (about a
    // second after the link comes up): wait, so that when apply returns the router
    // answers on every address.
    notes.extend(
        kernel
            .wait_ipv6_ready(&plan.links, IPV6_READY_WAIT)
            .await
            .map_err(links_err)?,
    );
    kernel
        .ensure_routes(&plan.links, &mut changes)
        .await
        .map_err(links_err)?;

    // Forwarding last, behind both walls, verified.
    verify(&plan.canonical(), kernel)?;
    verify_wall(&plan, kernel).await?;
    for s in &plan.forwarding {
        if kernel.set_sysctl(s).map_err(ApplyError::Sysctl)? {
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
pub async fn remove<K: Kernel>(kernel: &K) -> Result<Vec<String>, ApplyError> {
    let mut changes = close(kernel).map_err(ApplyError::Sysctl)?;
    match kernel.delete_table() {
        Ok(true) => changes.push(format!("deleted table inet {TABLE}")),
        Ok(false) => {}
        Err(source) => {
            return Err(ApplyError::Ruleset {
                state: "forwarding is off",
                source,
            });
        }
    }
    kernel
        .remove_routing(&mut changes)
        .await
        .map_err(|source| ApplyError::Links {
            forwarding_on: false,
            source,
        })?;
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::Recorder;
    use cloison_core::plan::{FORWARDING_V4, FORWARDING_V6};

    fn lab() -> Config {
        cloison_core::config::parse(include_str!("../../../config/lab.toml"), "lab.toml").unwrap()
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// The steps of one apply, without the reads.
    fn steps(k: &Recorder) -> Vec<String> {
        k.calls()
            .into_iter()
            .filter(|c| c != "list_table")
            .map(|c| {
                if c.starts_with("set_sysctl net/ipv4/conf")
                    || c.starts_with("set_sysctl net/ipv6/conf/seg")
                    || c.starts_with("set_sysctl net/ipv6/conf/wan")
                    || c.starts_with("set_sysctl net/ipv6/conf/all/accept")
                {
                    "hardening".to_owned()
                } else {
                    c
                }
            })
            .fold(Vec::new(), |mut v, c| {
                if v.last() != Some(&c) {
                    v.push(c);
                }
                v
            })
    }

    #[test]
    fn ruleset_first_hardening_before_addresses_forwarding_last() {
        let k = Recorder::new();
        let applied = run(apply(&lab(), &k, &BTreeMap::new())).unwrap();
        assert_eq!(applied.ruleset, RulesetChange::Installed);
        assert_eq!(
            steps(&k),
            [
                "apply_ruleset",
                "ensure_wall",
                "ensure_rules",
                "ensure_vlans",
                "hardening",
                "ensure_addresses",
                "ensure_up",
                "wait_ipv6_ready",
                "ensure_routes",
                "read_routing",
                &format!("set_sysctl {FORWARDING_V4}=1"),
                &format!("set_sysctl {FORWARDING_V6}=1"),
            ]
        );
        // Applying again leaves the table alone.
        k.forget_calls();
        let again = run(apply(&lab(), &k, &BTreeMap::new())).unwrap();
        assert_eq!(again.ruleset, RulesetChange::Unchanged);
        assert!(k.calls_of(&["apply_ruleset"]).is_empty());
    }

    #[test]
    fn a_refused_ruleset_touches_nothing_else_and_closes_forwarding() {
        let k = Recorder::new();
        k.sysctls
            .borrow_mut()
            .insert(FORWARDING_V4.into(), "1".into());
        k.fail("apply_ruleset");
        let err = run(apply(&lab(), &k, &BTreeMap::new())).unwrap_err();
        assert!(matches!(err, ApplyError::Ruleset { .. }), "{err}");
        assert_eq!(
            k.calls_of(&["apply_ruleset", "ensure", "set_sysctl"]),
            [
                "apply_ruleset".to_owned(),
                format!("set_sysctl {FORWARDING_V4}=0"),
                format!("set_sysctl {FORWARDING_V6}=0"),
            ],
            "no link, no hardening: forwarding off, as there is no table"
        );
        assert_eq!(k.sysctl_value(FORWARDING_V4).as_deref(), Some("0"));
    }

    #[test]
    fn a_refused_replacement_keeps_the_previous_table_and_forwarding() {
        let k = Recorder::new();
        run(apply(&lab(), &k, &BTreeMap::new())).unwrap();
        let before = k.table.borrow().clone();
        let other = lab_with("ports = [5900]", "ports = [5900, 3389]");
        k.forget_calls();
        k.fail("apply_ruleset");
        let err = run(apply(&other, &k, &BTreeMap::new())).unwrap_err();
        assert!(
            err.to_string().contains("previous table is still in place"),
            "{err}"
        );
        assert_eq!(*k.table.borrow(), before);
        assert!(
            k.calls_of(&["set_sysctl", "ensure"]).is_empty(),
            "{:?}",
            k.calls()
        );
        assert_eq!(k.sysctl_value(FORWARDING_V4).as_deref(), Some("1"));
    }

    #[test]
    fn a_forwarding_that_cannot_be_closed_is_an_error_of_its_own() {
        let k = Recorder::new();
        k.fail("apply_ruleset");
        k.fail(FORWARDING_V4);
        let err = run(apply(&lab(), &k, &BTreeMap::new())).unwrap_err();
        assert!(matches!(err, ApplyError::NotClosed { .. }), "{err}");
        assert!(
            err.to_string().contains("could NOT be switched off"),
            "{err}"
        );
    }

    #[test]
    fn a_link_failure_leaves_forwarding_off_behind_the_table() {
        let k = Recorder::new();
        k.fail("ensure_routes");
        let err = run(apply(&lab(), &k, &BTreeMap::new())).unwrap_err();
        assert!(
            matches!(
                err,
                ApplyError::Links {
                    forwarding_on: false,
                    ..
                }
            ),
            "{err}"
        );
        assert!(k.table.borrow().is_some(), "the ruleset stays in place");
        assert_eq!(
            k.calls_of(&[&format!("set_sysctl {FORWARDING_V4}")]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn counters_carry_over_a_replacement_from_the_highest_reading() {
        let k = Recorder::new();
        run(apply(&lab(), &k, &BTreeMap::new())).unwrap();
        k.count("kiosk/mairie", 40);
        let seed = BTreeMap::from([
            (
                "kiosk/mairie".to_owned(),
                Counts {
                    packets: 10,
                    bytes: 1,
                },
            ),
            (
                "kiosk/router".to_owned(),
                Counts {
                    packets: 7,
                    bytes: 700,
                },
            ),
        ]);
        let other = lab_with("ports = [5900]", "ports = [5900, 3389]");
        let applied = run(apply(&other, &k, &seed)).unwrap();
        assert_eq!(applied.ruleset, RulesetChange::Replaced);
        let live = counters(k.table.borrow().as_ref().unwrap());
        assert_eq!(
            live["kiosk/mairie"].packets, 40,
            "the live reading was higher"
        );
        assert_eq!(live["kiosk/router"].packets, 7, "the seed was higher");
    }

    #[test]
    fn remove_closes_forwarding_before_deleting_the_table() {
        let k = Recorder::new();
        run(apply(&lab(), &k, &BTreeMap::new())).unwrap();
        k.forget_calls();
        let changes = run(remove(&k)).unwrap();
        assert_eq!(
            k.calls(),
            [
                format!("set_sysctl {FORWARDING_V4}=0"),
                format!("set_sysctl {FORWARDING_V6}=0"),
                "delete_table".to_owned(),
                "remove_routing".to_owned(),
            ]
        );
        assert!(changes.iter().any(|c| c == "deleted table inet cloison"));
        assert!(k.table.borrow().is_none());
    }

    fn lab_with(from: &str, to: &str) -> Config {
        let src = include_str!("../../../config/lab.toml").replacen(from, to, 1);
        cloison_core::config::parse(&src, "lab.toml").unwrap()
    }
}
