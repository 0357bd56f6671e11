//! The `config` target: bytes as a configuration file -> validated configuration ->
//! plan, and everything the daemon derives from a configuration before it touches the
//! kernel (the ruleset in both syntaxes, its hash, `cloison plan`'s two outputs, the
//! alert names, the capture filters). Properties: nothing panics; a refused file gets a
//! message; a configuration that validates gets a plan, twice the same; `plan --json`
//! is JSON; every capture filter the kernel would get passes the kernel's checks.
//! Whether nft itself accepts the planned rulesets is the replay's business
//! (`replay-config`), outside the loop.

use cloison_core::alert::Names;
use cloison_core::config::{self, Config};
use cloison_core::inspect::{Link, Topology, capture_filter, filter};
use cloison_core::plan::{self, Plan};

pub fn check(data: &[u8]) {
    let _ = plan_of(data);
}

/// The plan of a configuration file's bytes, after checking the properties above;
/// `None` when the file is refused.
pub fn plan_of(data: &[u8]) -> Option<Plan> {
    let config = match config::parse_bytes(data, "fuzz.toml") {
        Ok(c) => c,
        Err(diagnostics) => {
            assert!(
                !diagnostics.to_string().is_empty(),
                "a refused file gets a message"
            );
            return None;
        }
    };
    let plan = plan::plan(&config);
    let _ = plan.ruleset_text();
    let hash = plan.hash();
    assert_eq!(
        plan::plan(&config).hash(),
        hash,
        "the plan is deterministic"
    );
    let json = plan.report(true);
    serde_json::from_str::<serde_json::Value>(&json).expect("`cloison plan --json` is JSON");
    let _ = plan.report(false);
    let _ = plan.routing_rules();
    let names = Names::from_config(&config, "fuzz-router");
    for counter in &plan.counters {
        let _ = names.classify_counter(counter);
    }
    capture_filters(&config);
    Some(plan)
}

/// Made-up links for every interface the configuration names, each with a MAC of its
/// own (the longest filters), then the filter of every capture point.
fn capture_filters(config: &Config) {
    let mut names: Vec<&str> = config
        .segments
        .iter()
        .map(|s| s.interface.as_str())
        .chain(config.trunk.as_ref().map(|t| t.as_str()))
        .chain(config.uplinks.iter().map(|u| u.interface.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let links: Vec<Link> = (1u32..)
        .zip(names)
        .map(|(index, name)| {
            let [a, b, c, d] = index.to_be_bytes();
            Link {
                name: name.to_owned(),
                index,
                mac: [0x02, 0xc1, a, b, c, d],
                ipv6: Vec::new(),
            }
        })
        .collect();
    let Ok(topology) = Topology::new(config, &links) else {
        return;
    };
    for (point, _) in topology.capture_points() {
        match capture_filter(&topology, point) {
            Ok(program) => {
                if let Err(e) = filter::check(&program) {
                    panic!("the capture filter for {point:?} fails the kernel's checks: {e}");
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
