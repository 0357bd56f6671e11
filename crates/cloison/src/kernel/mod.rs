//! The kernel edge, behind one small trait: the nftables ruleset, links, addresses,
//! routes and policy rules (rtnetlink), and sysctls. `System` is the real kernel (it runs
//! `nft`, talks rtnetlink, writes /proc/sys); `fake::Recorder` (tests only) keeps a table
//! and sysctls in memory and records every call, so that the order of apply's steps,
//! the fail-closed paths, drift repair and commit-confirm rollback are unit-tested
//! without root. The integration tests in cloison-lab keep running on the real kernel.

#[cfg(test)]
pub mod fake;
pub mod netlink;
pub mod nfnetlink;
pub mod nft;
pub mod sysctl;

use std::time::Duration;

use cloison_core::plan::{FORWARDING_V4, LinkPlan, Sysctl};
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
    async fn ensure_rules(
        &self,
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError>;
    /// Removes cloison's routing rules and routes.
    async fn remove_routing(&self, changes: &mut Vec<String>) -> Result<(), LinkError>;

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
        self.nft.list_table()
    }

    fn delete_table(&self) -> Result<bool, NftError> {
        self.nft.delete_table()
    }

    fn table_exists(&self) -> Result<bool, NftError> {
        self.nft.table_exists()
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
        plan: &LinkPlan,
        changes: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.netlink()?.ensure_rules(plan, changes).await
    }

    async fn remove_routing(&self, changes: &mut Vec<String>) -> Result<(), LinkError> {
        self.netlink()?.remove_routing(changes).await
    }
}
