//! The plan: a validated configuration in, everything to apply out (the nftables
//! ruleset as data, the links and routes, the sysctls). Pure and deterministic: the same
//! configuration gives byte-identical output; nothing here asks the kernel anything.

mod links;
mod ruleset;
pub mod space;
pub mod wall;

use nftables::schema::Nftables;
use serde_json::Value;

pub use links::{
    Address, FORWARDING_V4, FORWARDING_V6, Family, LinkPlan, Route, RoutingRule, RuleAction,
    RulePort, RuleProto, Sysctl, VlanLink, forwarding_off,
};
pub use ruleset::counter_names;
pub use wall::{LiveRouting, Wall, WallKind, WallRoute, routing_differences};

use crate::config::Config;
use crate::hash::Hash;
use crate::nft::{canonical, text};

#[derive(Debug, Clone)]
pub struct Plan {
    /// One batch replacing `table inet cloison` whole.
    pub ruleset: Nftables<'static>,
    pub links: LinkPlan,
    /// The second wall: policy routing that isolates the segments without nftables.
    pub wall: Wall,
    /// Hardening sysctls, set before forwarding.
    pub sysctls: Vec<Sysctl>,
    /// Forwarding on, set last.
    pub forwarding: Vec<Sysctl>,
    /// Every named counter of the ruleset.
    pub counters: Vec<String>,
}

pub fn plan(config: &Config) -> Plan {
    Plan {
        ruleset: ruleset::build(config),
        links: links::link_plan(config),
        wall: wall::wall(config),
        sysctls: links::sysctls(config),
        forwarding: links::forwarding_on(config),
        counters: ruleset::counter_names(config),
    }
}

impl Plan {
    /// Every policy-routing rule cloison wants: the uplinks' and the second wall's.
    pub fn routing_rules(&self) -> Vec<RoutingRule> {
        let mut rules: Vec<RoutingRule> = self
            .links
            .rules
            .iter()
            .chain(&self.wall.rules)
            .cloned()
            .collect();
        rules.sort();
        rules
    }

    /// What differs between the plan's policy routing and the live one.
    pub fn routing_differences(&self, live: &LiveRouting) -> Vec<String> {
        routing_differences(&self.routing_rules(), &self.wall.routes, live)
    }

    /// The batch as the JSON `nft -j -f` reads.
    pub fn ruleset_json(&self) -> Value {
        serde_json::to_value(&self.ruleset).expect("the nftables schema serializes")
    }

    /// The batch in `nft -f` syntax.
    pub fn ruleset_text(&self) -> String {
        text::render(&self.ruleset_json()).expect("the planner only emits renderable statements")
    }

    /// What `cloison plan` prints. Text: the ruleset in `nft -f` syntax, then the links and
    /// sysctls as comments, so it can be fed to `nft -f` as it is. JSON: one document,
    /// `{"ruleset": .., "ruleset_hash": .., "links": .., "sysctls": ..}`, whose `ruleset`
    /// is exactly the batch `nft -j -f` reads (`jq .ruleset | nft -j -f -`).
    pub fn report(&self, json: bool) -> String {
        if json {
            let doc = JsonReport {
                ruleset: self.ruleset_json(),
                ruleset_hash: self.hash().to_string(),
                links: &self.links,
                wall: &self.wall,
                sysctls: self.sysctls.iter().chain(&self.forwarding).collect(),
            };
            let mut out = serde_json::to_string_pretty(&doc).expect("JSON");
            out.push('\n');
            return out;
        }
        let mut out = self.ruleset_text();
        out.push_str(&format!("\n# ruleset hash {}\n# links\n", self.hash()));
        for line in self.links.to_string().lines() {
            out.push_str(&format!("#   {line}\n"));
        }
        out.push_str("# second wall (policy routing)\n");
        for r in &self.wall.rules {
            out.push_str(&format!("#   rule {r}\n"));
        }
        for r in &self.wall.routes {
            out.push_str(&format!("#   {r}\n"));
        }
        out.push_str("# sysctls (forwarding last)\n");
        for s in self.sysctls.iter().chain(&self.forwarding) {
            out.push_str(&format!("#   {} = {}\n", s.key, s.value));
        }
        out
    }

    /// The table as nft will list it back, for comparison with the live table.
    pub fn canonical(&self) -> Value {
        canonical::canonical(&self.ruleset_json())
    }

    /// SHA-256 of the canonical table: the same for the plan and a live table in sync.
    pub fn hash(&self) -> Hash {
        ruleset_hash(&self.canonical())
    }
}

/// `cloison plan --json`, in this order.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    /// Exactly what `nft -j -f` reads.
    ruleset: Value,
    ruleset_hash: String,
    links: &'a LinkPlan,
    /// The second wall: policy-routing rules and the wall tables' routes.
    wall: &'a Wall,
    /// Forwarding last.
    sysctls: Vec<&'a Sysctl>,
}

pub fn ruleset_hash(canonical: &Value) -> Hash {
    Hash::of(canonical.to_string().as_bytes())
}
