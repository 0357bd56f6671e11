//! The canonical form of cloison's table, used to hash a plan and to compare it with
//! what the kernel lists back. Pure JSON in, JSON out.
//!
//! What is ignored: handles, counter values, the order of set elements (nft sorts them),
//! and the `metainfo` header. Everything else must match exactly, so the planner writes
//! rules in the form nft prints them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::names::TABLE;

/// Canonical form of a document: either the planner's batch (`add`/`delete` commands)
/// or `nft -j list table inet cloison` output.
pub fn canonical(doc: &Value) -> Value {
    let mut table = Value::Null;
    let mut counters = BTreeMap::new();
    let mut sets = BTreeMap::new();
    let mut chains = BTreeMap::new();
    let mut rules: BTreeMap<String, Vec<Value>> = BTreeMap::new();

    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in items {
        let Some(obj) = item.as_object() else {
            continue;
        };
        // Planner batches wrap objects in commands; keep what is added, skip the rest.
        let (kind, body) = match obj.iter().next() {
            Some((cmd, inner)) if cmd == "add" => {
                match inner.as_object().and_then(|m| m.iter().next()) {
                    Some((k, v)) => (k.clone(), v.clone()),
                    None => continue,
                }
            }
            Some((cmd, _)) if cmd == "delete" || cmd == "metainfo" => continue,
            Some((k, v)) => (k.clone(), v.clone()),
            None => continue,
        };
        let Some(mut body) = body.as_object().cloned() else {
            continue;
        };
        if !belongs_to_table(&kind, &body) {
            continue;
        }
        body.remove("handle");
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match kind.as_str() {
            "table" => table = Value::Object(body),
            "counter" => {
                body.insert("packets".into(), json!(0));
                body.insert("bytes".into(), json!(0));
                counters.insert(name, Value::Object(body));
            }
            "set" | "map" => {
                let mut v = Value::Object(body);
                sort_sets(&mut v);
                if let Some(elem) = v.get_mut("elem").and_then(Value::as_array_mut) {
                    elem.sort_by_key(|e| e.to_string());
                }
                sets.insert(format!("{kind} {name}"), v);
            }
            "chain" => {
                chains.insert(name, Value::Object(body));
            }
            "rule" => {
                let chain = body
                    .get("chain")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let mut expr = body.remove("expr").unwrap_or(Value::Null);
                zero_anonymous_counters(&mut expr);
                protocol_numbers(&mut expr);
                sort_sets(&mut expr);
                let mut rule = Map::new();
                rule.insert("expr".into(), expr);
                if let Some(c) = body.remove("comment") {
                    rule.insert("comment".into(), c);
                }
                rules.entry(chain).or_default().push(Value::Object(rule));
            }
            other => {
                // Objects cloison never creates (quotas, flowtables...) are part of the
                // comparison too: someone added them.
                sets.insert(format!("{other} {name}"), Value::Object(body));
            }
        }
    }
    json!({
        "table": table,
        "counters": counters,
        "sets": sets,
        "chains": chains,
        "rules": rules,
    })
}

fn belongs_to_table(kind: &str, body: &Map<String, Value>) -> bool {
    let family_ok = body.get("family").and_then(Value::as_str) == Some("inet");
    let table = if kind == "table" {
        body.get("name")
    } else {
        body.get("table")
    };
    family_ok && table.and_then(Value::as_str) == Some(TABLE)
}

/// Layer-4 protocols as numbers. nft names them from /etc/protocols when the file is
/// there (`tcp`) and prints the number when it is not (`6`, a minimal system without
/// netbase); the comparison must not depend on that file.
fn protocol_numbers(v: &mut Value) {
    fn number(name: &str) -> Option<u64> {
        match name {
            "icmp" => Some(1),
            "tcp" => Some(6),
            "udp" => Some(17),
            "icmpv6" | "ipv6-icmp" => Some(58),
            _ => None,
        }
    }
    match v {
        Value::Object(m) => {
            // `meta l4proto X`: the right-hand side is a protocol.
            let l4proto = m
                .get("left")
                .and_then(|l| l.get("meta"))
                .and_then(|meta| meta.get("key"))
                .is_some_and(|k| k == "l4proto");
            if l4proto {
                if let Some(Value::String(s)) = m.get("right") {
                    if let Some(n) = number(s) {
                        m.insert("right".into(), n.into());
                    }
                }
            }
            // In `meta l4proto . th dport` sets, the protocol is the concat's first item.
            if let Some(Value::Array(items)) = m.get_mut("concat") {
                if let Some(Value::String(s)) = items.first() {
                    if let Some(n) = number(s) {
                        items[0] = n.into();
                    }
                }
            }
            m.values_mut().for_each(protocol_numbers);
        }
        Value::Array(items) => items.iter_mut().for_each(protocol_numbers),
        _ => {}
    }
}

/// nft lists anonymous set elements in its own order; compare them as sets.
fn sort_sets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m.iter_mut() {
                sort_sets(inner);
                if k == "set" || k == "flags" {
                    if let Value::Array(items) = inner {
                        items.sort_by_key(|e| e.to_string());
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_sets),
        _ => {}
    }
}

fn zero_anonymous_counters(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(c)) = m.get_mut("counter") {
                c.insert("packets".into(), json!(0));
                c.insert("bytes".into(), json!(0));
            }
            m.values_mut().for_each(zero_anonymous_counters);
        }
        Value::Array(items) => items.iter_mut().for_each(zero_anonymous_counters),
        _ => {}
    }
}

/// Human-readable differences between two canonical forms (`want` is the plan), for
/// drift reports: "chain fwd/kiosk: rule 2 differs", "counter kiosk/mairie missing".
fn differences(want: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if live.get("table").is_none_or(Value::is_null) {
        out.push(format!("table inet {TABLE} is missing"));
        return out;
    }
    for (section, label) in [("counters", "counter"), ("sets", ""), ("chains", "chain")] {
        let w = want
            .get(section)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let l = live
            .get(section)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let prefix = if label.is_empty() {
            String::new()
        } else {
            format!("{label} ")
        };
        for (k, v) in &w {
            match l.get(k) {
                None => out.push(format!("{prefix}{k} is missing")),
                Some(lv) if lv != v => out.push(format!("{prefix}{k} was changed")),
                Some(_) => {}
            }
        }
        for k in l.keys().filter(|k| !w.contains_key(*k)) {
            out.push(format!("{prefix}{k} was added"));
        }
    }
    let empty = Map::new();
    let wr = want
        .get("rules")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let lr = live
        .get("rules")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut chains: Vec<&String> = wr.keys().chain(lr.keys()).collect();
    chains.sort();
    chains.dedup();
    for chain in chains {
        let w = wr
            .get(chain)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let l = lr
            .get(chain)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if w == l {
            continue;
        }
        if w.len() != l.len() {
            out.push(format!(
                "chain {chain}: {} rules instead of {}",
                l.len(),
                w.len()
            ));
        } else {
            let first = w.iter().zip(l).position(|(a, b)| a != b).unwrap_or(0);
            out.push(format!("chain {chain}: rule {} differs", first + 1));
        }
    }
    out
}

/// How the live table stands against the plan: the one comparison behind apply's
/// "unchanged", its verification, the drift check and `cloison status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "differences")]
pub enum Sync {
    InSync,
    /// What differs, one line each ("chain fwd/kiosk: rule 2 differs").
    Drifted(Vec<String>),
    Missing,
}

impl Sync {
    pub fn in_sync(&self) -> bool {
        *self == Sync::InSync
    }

    /// What differs, one line each; the missing table is one line too.
    pub fn differences(&self) -> Vec<String> {
        match self {
            Sync::InSync => Vec::new(),
            Sync::Drifted(d) => d.clone(),
            Sync::Missing => vec![format!("table inet {TABLE} is missing")],
        }
    }
}

/// Compares a live listing (`None`: the table does not exist) with the plan's canonical
/// table.
pub fn compare(want: &Value, live: Option<&Value>) -> Sync {
    let Some(doc) = live else {
        return Sync::Missing;
    };
    let diffs = differences(want, &canonical(doc));
    if diffs.is_empty() {
        Sync::InSync
    } else {
        Sync::Drifted(diffs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_handles_counter_values_and_element_order() {
        let listed = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "cloison", "handle": 3}},
            {"counter": {"family": "inet", "name": "a/b", "table": "cloison", "handle": 7, "packets": 12, "bytes": 900}},
            {"rule": {"family": "inet", "table": "cloison", "chain": "c", "handle": 9,
                      "expr": [{"match": {"op": "==", "left": "x", "right": {"set": ["b", "a"]}}}]}},
            {"table": {"family": "inet", "name": "other", "handle": 4}}
        ]});
        let planned = json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "cloison"}}},
            {"delete": {"table": {"family": "inet", "name": "cloison"}}},
            {"add": {"table": {"family": "inet", "name": "cloison"}}},
            {"add": {"counter": {"family": "inet", "name": "a/b", "table": "cloison", "bytes": null}}},
            {"add": {"rule": {"family": "inet", "table": "cloison", "chain": "c",
                      "expr": [{"match": {"op": "==", "left": "x", "right": {"set": ["a", "b"]}}}]}}}
        ]});
        assert_eq!(canonical(&listed), canonical(&planned));
        assert!(differences(&canonical(&planned), &canonical(&listed)).is_empty());
    }

    #[test]
    fn protocol_names_and_numbers_compare_equal() {
        let named = json!({"nftables": [
            {"table": {"family": "inet", "name": "cloison"}},
            {"rule": {"family": "inet", "table": "cloison", "chain": "c",
                      "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]},
                                          "right": {"set": [{"concat": ["udp", 68]}, {"concat": ["tcp", 22]}]}}}]}}
        ]});
        let numeric = json!({"nftables": [
            {"table": {"family": "inet", "name": "cloison"}},
            {"rule": {"family": "inet", "table": "cloison", "chain": "c",
                      "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]},
                                          "right": {"set": [{"concat": [6, 22]}, {"concat": [17, 68]}]}}}]}}
        ]});
        assert_eq!(canonical(&named), canonical(&numeric));
    }

    #[test]
    fn reports_what_changed() {
        let want = canonical(&json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": "cloison"}}},
            {"add": {"chain": {"family": "inet", "table": "cloison", "name": "c"}}},
            {"add": {"rule": {"family": "inet", "table": "cloison", "chain": "c", "expr": [{"drop": null}]}}}
        ]}));
        let flushed = canonical(&json!({"nftables": [
            {"table": {"family": "inet", "name": "cloison", "handle": 1}},
            {"chain": {"family": "inet", "table": "cloison", "name": "c", "handle": 2}}
        ]}));
        assert_eq!(
            differences(&want, &flushed),
            ["chain c: 0 rules instead of 1"]
        );
        let gone = canonical(&json!({"nftables": [{"metainfo": {}}]}));
        assert_eq!(differences(&want, &gone), ["table inet cloison is missing"]);
    }
}
