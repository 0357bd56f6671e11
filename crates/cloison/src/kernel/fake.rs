//! A kernel in memory for unit tests: cloison's table (kept in the form `nft -j list`
//! prints), the sysctls, and a log of every call in order. Steps can be made to fail by
//! name, to test what each failure leaves behind.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use cloison_core::plan::{LinkPlan, LiveRouting, RoutingRule, Sysctl, WallRoute};
use serde_json::{Value, json};

use super::{Kernel, LinkError, NftError, SysctlError};

#[derive(Default)]
pub struct Recorder {
    /// Every call, in order: `apply_ruleset`, `set_sysctl net/ipv4/ip_forward=1`...
    pub calls: RefCell<Vec<String>>,
    /// The live table, as a listing; `None` when there is none.
    pub table: RefCell<Option<Value>>,
    pub sysctls: RefCell<BTreeMap<String, String>>,
    /// Calls that fail: a step name (`apply_ruleset`, `ensure_routes`) or a sysctl key.
    pub failing: RefCell<BTreeSet<String>>,
    /// cloison's policy rules and second-wall routes, as applied.
    pub routing: RefCell<LiveRouting>,
    /// The ruleset generation, moved by every change to the table.
    pub generation: std::cell::Cell<u32>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Makes `step` (a method name or a sysctl key) fail from now on.
    pub fn fail(&self, step: &str) {
        self.failing.borrow_mut().insert(step.to_owned());
    }

    pub fn heal(&self, step: &str) {
        self.failing.borrow_mut().remove(step);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    /// The calls whose name starts with one of `prefixes`, in order.
    pub fn calls_of(&self, prefixes: &[&str]) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| prefixes.iter().any(|p| c.starts_with(p)))
            .cloned()
            .collect()
    }

    pub fn forget_calls(&self) {
        self.calls.borrow_mut().clear();
    }

    pub fn sysctl_value(&self, key: &str) -> Option<String> {
        self.sysctls.borrow().get(key).cloned()
    }

    /// Sets a named counter of the live table, as traffic would.
    pub fn count(&self, counter: &str, packets: u64) {
        let mut table = self.table.borrow_mut();
        let items = table
            .as_mut()
            .and_then(|t| t.get_mut("nftables"))
            .and_then(Value::as_array_mut)
            .expect("a table to count in");
        for item in items {
            if let Some(c) = item.get_mut("counter") {
                if c["name"] == counter {
                    c["packets"] = json!(packets);
                    c["bytes"] = json!(packets * 100);
                }
            }
        }
    }

    /// Someone else changes the table: the rules of `chain` are removed.
    pub fn flush_chain(&self, chain: &str) {
        if let Some(items) = self
            .table
            .borrow_mut()
            .as_mut()
            .and_then(|t| t.get_mut("nftables"))
            .and_then(Value::as_array_mut)
        {
            items.retain(|i| i.get("rule").is_none_or(|r| r["chain"] != chain));
        }
        self.generation.set(self.generation.get() + 1);
    }

    fn record(&self, call: String) -> bool {
        let failing = {
            let f = self.failing.borrow();
            let name = call.split([' ', '=']).next().unwrap_or("");
            let key = call.split(' ').nth(1).and_then(|kv| kv.split('=').next());
            f.contains(name) || key.is_some_and(|k| f.contains(k))
        };
        self.calls.borrow_mut().push(call);
        failing
    }

    fn link_step(&self, name: &str) -> Result<(), LinkError> {
        if self.record(name.to_owned()) {
            Err(LinkError::Connect(std::io::Error::other(format!(
                "{name}: injected failure"
            ))))
        } else {
            Ok(())
        }
    }
}

fn nft_failure(args: &str) -> NftError {
    NftError::Failed {
        args: args.to_owned(),
        stderr: "injected failure".to_owned(),
    }
}

/// The listing nft would print after applying `batch` (commands unwrapped, deletes
/// dropped: the planner's batches replace the table whole).
fn as_listing(batch: &Value) -> Value {
    let items: Vec<Value> = batch["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("add").cloned())
        .collect();
    json!({ "nftables": items })
}

impl Kernel for Recorder {
    fn apply_ruleset(&self, batch: &Value) -> Result<(), NftError> {
        if self.record("apply_ruleset".into()) {
            return Err(nft_failure("-j -f -"));
        }
        *self.table.borrow_mut() = Some(as_listing(batch));
        self.generation.set(self.generation.get() + 1);
        Ok(())
    }

    fn list_table(&self) -> Result<Option<Value>, NftError> {
        if self.record("list_table".into()) {
            return Err(nft_failure("-j list table inet cloison"));
        }
        Ok(self.table.borrow().clone())
    }

    fn delete_table(&self) -> Result<bool, NftError> {
        if self.record("delete_table".into()) {
            return Err(nft_failure("delete table inet cloison"));
        }
        self.generation.set(self.generation.get() + 1);
        Ok(self.table.borrow_mut().take().is_some())
    }

    fn counters(&self) -> Result<Option<BTreeMap<String, cloison_core::nft::Counts>>, NftError> {
        if self.record("counters".into()) {
            return Err(nft_failure("counters"));
        }
        Ok(self
            .table
            .borrow()
            .as_ref()
            .map(cloison_core::nft::counters))
    }

    fn generation(&self) -> Result<u32, NftError> {
        Ok(self.generation.get())
    }

    fn sysctl(&self, key: &str) -> Result<String, SysctlError> {
        Ok(self
            .sysctls
            .borrow()
            .get(key)
            .cloned()
            .unwrap_or_else(|| "0".into()))
    }

    fn set_sysctl(&self, s: &Sysctl) -> Result<bool, SysctlError> {
        if self.record(format!("set_sysctl {}={}", s.key, s.value)) {
            return Err(SysctlError::Write {
                path: PathBuf::from("/proc/sys").join(&s.key),
                value: s.value.clone(),
                source: std::io::Error::other("injected failure"),
            });
        }
        let old = self
            .sysctls
            .borrow_mut()
            .insert(s.key.clone(), s.value.clone());
        Ok(old.as_deref() != Some(s.value.as_str()))
    }

    async fn ensure_vlans(&self, _: &LinkPlan, _: &mut Vec<String>) -> Result<(), LinkError> {
        self.link_step("ensure_vlans")
    }

    async fn ensure_addresses(&self, _: &LinkPlan, _: &mut Vec<String>) -> Result<(), LinkError> {
        self.link_step("ensure_addresses")
    }

    async fn ensure_up(&self, _: &LinkPlan, _: &mut Vec<String>) -> Result<(), LinkError> {
        self.link_step("ensure_up")
    }

    async fn wait_ipv6_ready(&self, _: &LinkPlan, _: Duration) -> Result<Vec<String>, LinkError> {
        self.link_step("wait_ipv6_ready").map(|()| Vec::new())
    }

    async fn ensure_routes(&self, _: &LinkPlan, _: &mut Vec<String>) -> Result<(), LinkError> {
        self.link_step("ensure_routes")
    }

    async fn ensure_rules(
        &self,
        rules: &[RoutingRule],
        _: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.link_step("ensure_rules")?;
        let mut rules = rules.to_vec();
        rules.sort();
        self.routing.borrow_mut().rules = rules;
        self.routing.borrow_mut().unknown_rules.clear();
        Ok(())
    }

    async fn ensure_wall(
        &self,
        routes: &[WallRoute],
        _: &mut Vec<String>,
    ) -> Result<(), LinkError> {
        self.link_step("ensure_wall")?;
        let mut routes = routes.to_vec();
        routes.sort();
        self.routing.borrow_mut().routes = routes;
        Ok(())
    }

    async fn read_routing(&self) -> Result<LiveRouting, LinkError> {
        if self.record("read_routing".into()) {
            return Err(LinkError::Connect(std::io::Error::other(
                "injected failure",
            )));
        }
        Ok(self.routing.borrow().clone())
    }

    async fn remove_routing(&self, _: &mut Vec<String>) -> Result<(), LinkError> {
        self.link_step("remove_routing")?;
        *self.routing.borrow_mut() = LiveRouting::default();
        Ok(())
    }
}
