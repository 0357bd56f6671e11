//! The kernel edge, behind one small trait: the nftables ruleset, links, addresses,
//! routes, policy rules and the second wall (rtnetlink), and sysctls. Beside it, what
//! `cloison verify` alone uses: eBPF programs (`bpf`), tc filters (`tc`) and nftables
//! tracing (`nfnetlink::trace`). `System` is the real kernel (it runs
//! `nft`, talks rtnetlink, writes /proc/sys); `fake::Recorder` (tests only) keeps a table
//! and sysctls in memory and records every call, so that the order of apply's steps,
//! the fail-closed paths, drift repair and commit-confirm rollback are unit-tested
//! without root. The integration tests in cloison-lab keep running on the real kernel.

pub mod bpf;
#[cfg(test)]
pub mod fake;
pub mod netlink;
pub mod nfnetlink;
pub mod nft;
pub mod route_watch;
pub mod routing;
pub mod sysctl;
pub mod tc;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use cloison_core::names::TABLE;
use cloison_core::nft::Counts;

use cloison_core::plan::{FORWARDING_V4, LinkPlan, LiveRouting, RoutingRule, Sysctl, WallRoute};
use serde_json::Value;

pub use netlink::{LinkError, Netlink};
pub use nft::{Nft, NftError};
pub use sysctl::SysctlError;

/// What cloison asks of the kernel. The link steps are async (rtnetlink); they run
/// inside the caller's tokio runtime.
#[allow(async_fn_in_trait)] // used through generics on one thread; no Send bound needed
pub trait Kernel {
    /// Applies a JSON batch in one nftables transaction: all of it, or nothing.
    fn apply_ruleset(&self, batch: &Value) -> Result<(), NftError>;
    /// `nft -j list table inet cloison`, or `None` when the table does not exist.
    fn list_table(&self) -> Result<Option<Value>, NftError>;
    /// Deletes cloison's table; `false` when there was none.
    fn delete_table(&self) -> Result<bool, NftError>;
    /// The named counters of cloison's table; `None` when the table does not exist.
    /// Read over netlink by the real kernel: no process is started.
    fn counters(&self) -> Result<Option<BTreeMap<String, Counts>>, NftError>;
    /// The ruleset's generation: it changes with every committed nftables transaction,
    /// anyone's, so an unchanged value means nothing changed since it was read.
    fn generation(&self) -> Result<u32, NftError>;

    fn sysctl(&self, key: &str) -> Result<String, SysctlError>;
    /// Sets a value; returns whether it changed.
    fn set_sysctl(&self, s: &Sysctl) -> Result<bool, SysctlError>;

    /// Creates missing VLAN sub-interfaces.
    async fn ensure_vlans(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    /// Adds the plan's addresses, removes stale ones on the interfaces cloison owns.
    async fn ensure_addresses(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    async fn ensure_up(&self, plan: &LinkPlan, changes: &mut Vec<String>) -> Result<(), LinkError>;
    /// Waits (at most `limit`) for IPv6 duplicate address detection; returns notes.
    async fn wait_ipv6_ready(
        &self,
        plan: &LinkPlan,
        limit: Duration,
    ) -> Result<Vec<String>, LinkError>;
    async fn ensure_routes(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    /// cloison's policy rules (the uplinks' and the second wall's): exactly `rules`.
    async fn ensure_rules(
        &self,
        rules: &[RoutingRule],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    /// The second wall's routes: exactly `routes` in the wall tables.
    async fn ensure_wall(
        &self,
        routes: &[WallRoute],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    /// cloison's rules and wall routes as the kernel has them.
    async fn read_routing(&self) -> Result<LiveRouting, LinkError>;
    /// Removes cloison's routing rules, routes and second wall.
    async fn remove_routing(&self, changes: &mut Vec<String>) -> Result<(), LinkError>;

    /// Whether `pid` is a process cloison itself started to change the rules (its own
    /// transactions are not drift).
    fn is_own_process(&self, _pid: u32) -> bool {
        false
    }

    /// Whether IPv4 forwarding is on (unreadable counts as off).
    fn forwarding_on(&self) -> bool {
        self.sysctl(FORWARDING_V4).is_ok_and(|v| v == "1")
    }

    /// Whether cloison's table exists.
    fn table_exists(&self) -> Result<bool, NftError> {
        self.list_table().map(|t| t.is_some())
    }
}

/// The real kernel of the current network namespace.
#[derive(Default)]
pub struct System {
    nft: Nft,
    /// Opened on first use, inside the runtime.
    netlink: std::sync::OnceLock<Netlink>,
    /// nf_tables over netlink, for reads that must not start a process; opened on first
    /// use (in the network namespace of the thread that uses it first).
    nfnl: Mutex<Option<nfnetlink::Client>>,
}

impl System {
    pub fn new() -> System {
        System::default()
    }

    fn netlink(&self) -> Result<&Netlink, LinkError> {
        if let Some(n) = self.netlink.get() {
            return Ok(n);
        }
        let n = Netlink::connect()?;
        Ok(self.netlink.get_or_init(|| n))
    }

    fn with_nfnl<T>(
        &self,
        f: impl FnOnce(&mut nfnetlink::Client) -> Result<T, nfnetlink::Error>,
    ) -> Result<T, NftError> {
        let mut slot = self
            .nfnl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(nfnetlink::Client::open().map_err(NftError::Netlink)?);
        }
        let client = slot.as_mut().expect("opened above");
        let result = f(client);
        if result.is_err() {
            // A socket in a bad state is reopened on the next call.
            *slot = None;
        }
        result.map_err(NftError::Netlink)
    }

    /// The nft runner (for `nft -c` checks in tests and benches).
    pub fn nft(&self) -> &Nft {
        &self.nft
    }
}

impl Kernel for System {
    fn apply_ruleset(&self, batch: &Value) -> Result<(), NftError> {
        self.nft.apply(batch)
    }

    fn list_table(&self) -> Result<Option<Value>, NftError> {
        if !self.table_exists()? {
            return Ok(None);
        }
        self.nft
            .list_known_table(|| self.table_exists().unwrap_or(true))
    }

    fn delete_table(&self) -> Result<bool, NftError> {
        self.nft.delete_table()
    }

    fn table_exists(&self) -> Result<bool, NftError> {
        self.with_nfnl(|c| c.table_exists(nfnetlink::Family::Inet, TABLE))
    }

    fn counters(&self) -> Result<Option<BTreeMap<String, Counts>>, NftError> {
        self.with_nfnl(|c| c.counters(nfnetlink::Family::Inet, TABLE))
    }

    fn is_own_process(&self, pid: u32) -> bool {
        self.nft.started(pid)
    }

    fn generation(&self) -> Result<u32, NftError> {
        self.with_nfnl(nfnetlink::Client::generation)
    }

    fn sysctl(&self, key: &str) -> Result<String, SysctlError> {
        sysctl::get(key)
    }

    fn set_sysctl(&self, s: &Sysctl) -> Result<bool, SysctlError> {
        sysctl::set(s)
    }

    async fn ensure_vlans(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_vlans(plan, changes).await
    }

    async fn ensure_addresses(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_addresses(plan, changes).await
    }

    async fn ensure_up(&self, plan: &LinkPlan, changes: &mut Vec<String>) -> Result<(), LinkError> {
        self.netlink()?.ensure_up(plan, changes).await
    }

    async fn wait_ipv6_ready(
        &self,
        plan: &LinkPlan,
        limit: Duration,
    ) -> Result<Vec<String>, LinkError> {
        self.netlink()?.wait_ipv6_ready(plan, limit).await
    }

    async fn ensure_routes(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_routes(plan, changes).await
    }

    async fn ensure_rules(
        &self,
        rules: &[RoutingRule],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_rules(rules, changes).await
    }

    async fn ensure_wall(
        &self,
        routes: &[WallRoute],
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_wall(routes, changes).await
    }

    async fn read_routing(&self) -> Result<LiveRouting, LinkError> {
        self.netlink()?.read_routing().await
    }

    async fn remove_routing(&self, changes: &mut Vec<String>) -> Result<(), LinkError> {
        self.netlink()?.remove_routing(changes).await
    }
}
