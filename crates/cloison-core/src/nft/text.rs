//! Renders a planned batch in `nft -f` syntax, for people (`cloison plan`) and for
//! `nft -c -f -`. Covers the subset of the JSON schema the planner emits; anything else
//! is reported as an error rather than guessed.

use std::fmt::Write;
use std::net::IpAddr;

use serde_json::Value;

/// Bare words nft reads as symbols; every other string is quoted.
const KEYWORDS: &[&str] = &[
    "established",
    "related",
    "local",
    "invalid",
    "new",
    "untracked",
    "confirmed",
    "tcp",
    "udp",
    "icmp",
    "icmpv6",
    "echo-request",
    "host",
    "broadcast",
    "multicast",
    "nd-neighbor-solicit",
    "nd-neighbor-advert",
    "nd-router-solicit",
    "nd-router-advert",
    "mld-listener-query",
    "mld-listener-report",
    "mld2-listener-report",
];

#[derive(Debug, thiserror::Error)]
#[error("cannot render nftables JSON as text: {what}: {json}")]
pub struct RenderError {
    what: &'static str,
    json: String,
}

fn unsupported(what: &'static str, v: &Value) -> RenderError {
    RenderError {
        what,
        json: v.to_string(),
    }
}

/// The batch as an nft script: the same add/delete/add transaction, then the table.
pub fn render(batch: &Value) -> Result<String, RenderError> {
    let items = batch
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| unsupported("not an nftables document", batch))?;
    let mut head = String::new();
    let mut table_name = None;
    let mut counters = Vec::new();
    let mut sets = Vec::new();
    let mut chains = Vec::new();
    let mut rules: Vec<(String, String)> = Vec::new();
    let mut seen_delete = false;
    for item in items {
        let (cmd, obj) = first(item).ok_or_else(|| unsupported("empty command", item))?;
        let (kind, body) = first(obj).ok_or_else(|| unsupported("empty object", obj))?;
        match (cmd, kind) {
            ("add", "table") if !seen_delete => {
                writeln!(
                    head,
                    "add table {} {}",
                    s(body, "family")?,
                    s(body, "name")?
                )
                .expect("string");
            }
            ("delete", "table") => {
                seen_delete = true;
                writeln!(
                    head,
                    "delete table {} {}",
                    s(body, "family")?,
                    s(body, "name")?
                )
                .expect("string");
            }
            ("add", "table") => {
                table_name = Some(format!("{} {}", s(body, "family")?, s(body, "name")?))
            }
            ("add", "counter") => {
                counters.push(format!("\tcounter {} {{\n\t}}\n", s(body, "name")?))
            }
            ("add", "set") => sets.push(set(body)?),
            ("add", "chain") => chains.push((s(body, "name")?.to_owned(), chain_head(body)?)),
            ("add", "rule") => {
                let stmts = body
                    .get("expr")
                    .and_then(Value::as_array)
                    .ok_or_else(|| unsupported("rule without expr", body))?;
                let text = stmts
                    .iter()
                    .map(statement)
                    .collect::<Result<Vec<_>, _>>()?
                    .join(" ");
                rules.push((s(body, "chain")?.to_owned(), text));
            }
            _ => return Err(unsupported("command", item)),
        }
    }
    let table_name = table_name.ok_or_else(|| unsupported("no table", batch))?;
    let mut out = head;
    writeln!(out, "table {table_name} {{").expect("string");
    let mut blocks: Vec<String> = counters;
    blocks.extend(sets);
    for (name, header) in chains {
        let mut block = format!("\tchain {name} {{\n{header}");
        for (_, r) in rules.iter().filter(|(c, _)| *c == name) {
            writeln!(block, "\t\t{r}").expect("string");
        }
        block.push_str("\t}\n");
        blocks.push(block);
    }
    out.push_str(&blocks.join("\n"));
    out.push_str("}\n");
    Ok(out)
}

fn first(v: &Value) -> Option<(&str, &Value)> {
    v.as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.as_str(), v))
}

fn s<'a>(v: &'a Value, key: &'static str) -> Result<&'a str, RenderError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(key, v))
}

fn set(body: &Value) -> Result<String, RenderError> {
    let ty = match body.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" . "),
        _ => return Err(unsupported("set type", body)),
    };
    let mut out = format!("\tset {} {{\n\t\ttype {ty}\n", s(body, "name")?);
    if let Some(flags) = body.get("flags").and_then(Value::as_array) {
        let f: Vec<&str> = flags.iter().filter_map(Value::as_str).collect();
        writeln!(out, "\t\tflags {}", f.join(", ")).expect("string");
    }
    if let Some(elems) = body.get("elem").and_then(Value::as_array) {
        let e = elems.iter().map(expr).collect::<Result<Vec<_>, _>>()?;
        writeln!(out, "\t\telements = {{ {} }}", e.join(",\n\t\t\t     ")).expect("string");
    }
    out.push_str("\t}\n");
    Ok(out)
}

fn chain_head(body: &Value) -> Result<String, RenderError> {
    let Some(hook) = body.get("hook").and_then(Value::as_str) else {
        return Ok(String::new());
    };
    let prio = body
        .get("prio")
        .and_then(Value::as_i64)
        .ok_or_else(|| unsupported("prio", body))?;
    Ok(format!(
        "\t\ttype {} hook {hook} priority {prio}; policy {};\n",
        s(body, "type")?,
        s(body, "policy")?
    ))
}

fn statement(v: &Value) -> Result<String, RenderError> {
    let (kind, body) = first(v).ok_or_else(|| unsupported("statement", v))?;
    Ok(match kind {
        "accept" | "drop" | "masquerade" if body.is_null() => kind.to_owned(),
        "jump" | "goto" => format!("{kind} {}", s(body, "target")?),
        "counter" => match body {
            Value::String(name) => format!("counter name {}", quote(name)),
            _ => "counter".to_owned(),
        },
        "match" => {
            let op = match s(body, "op")? {
                "==" | "in" => String::new(),
                other => format!("{other} "),
            };
            let left = body
                .get("left")
                .ok_or_else(|| unsupported("match left", body))?;
            let right = body
                .get("right")
                .ok_or_else(|| unsupported("match right", body))?;
            format!("{} {op}{}", expr(left)?, expr(right)?)
        }
        "mangle" => {
            let key = body
                .get("key")
                .ok_or_else(|| unsupported("mangle key", body))?;
            let value = body
                .get("value")
                .ok_or_else(|| unsupported("mangle value", body))?;
            format!("{} set {}", expr(key)?, expr(value)?)
        }
        "vmap" => {
            let key = body
                .get("key")
                .ok_or_else(|| unsupported("vmap key", body))?;
            let data = body
                .get("data")
                .ok_or_else(|| unsupported("vmap data", body))?;
            format!("{} vmap {}", expr(key)?, expr(data)?)
        }
        "limit" => {
            let rate = body
                .get("rate")
                .and_then(Value::as_u64)
                .ok_or_else(|| unsupported("limit rate", body))?;
            let per = body.get("per").and_then(Value::as_str).unwrap_or("second");
            match body.get("burst").and_then(Value::as_u64) {
                Some(b) => format!("limit rate {rate}/{per} burst {b} packets"),
                None => format!("limit rate {rate}/{per}"),
            }
        }
        "log" => {
            let mut out = "log".to_owned();
            if let Some(p) = body.get("prefix").and_then(Value::as_str) {
                write!(out, " prefix {}", quote(p)).expect("string");
            }
            if let Some(g) = body.get("group").and_then(Value::as_u64) {
                write!(out, " group {g}").expect("string");
            }
            out
        }
        _ => return Err(unsupported("statement", v)),
    })
}

fn expr(v: &Value) -> Result<String, RenderError> {
    match v {
        Value::String(x) => Ok(word(x)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Object(_) => {
            let (kind, body) = first(v).ok_or_else(|| unsupported("expression", v))?;
            match kind {
                "payload" => Ok(format!("{} {}", s(body, "protocol")?, s(body, "field")?)),
                "meta" => Ok(format!("meta {}", s(body, "key")?)),
                "ct" => match body.get("dir").and_then(Value::as_str) {
                    Some(dir) => Ok(format!("ct {dir} {}", s(body, "key")?)),
                    None => Ok(format!("ct {}", s(body, "key")?)),
                },
                "fib" => {
                    let flags = body
                        .get("flags")
                        .and_then(Value::as_array)
                        .ok_or_else(|| unsupported("fib", v))?
                        .iter()
                        .map(|f| f.as_str().ok_or_else(|| unsupported("fib flag", v)))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(format!("fib {} {}", flags.join(" . "), s(body, "result")?))
                }
                "concat" => {
                    let parts = body.as_array().ok_or_else(|| unsupported("concat", v))?;
                    Ok(parts
                        .iter()
                        .map(expr)
                        .collect::<Result<Vec<_>, _>>()?
                        .join(" . "))
                }
                "prefix" => Ok(format!(
                    "{}/{}",
                    s(body, "addr")?,
                    body.get("len").and_then(Value::as_u64).unwrap_or(0)
                )),
                "range" => {
                    let r = body
                        .as_array()
                        .filter(|r| r.len() == 2)
                        .ok_or_else(|| unsupported("range", v))?;
                    Ok(format!("{}-{}", expr(&r[0])?, expr(&r[1])?))
                }
                "set" => {
                    let items = body.as_array().ok_or_else(|| unsupported("set", v))?;
                    let parts = items
                        .iter()
                        .map(|item| match item {
                            Value::Array(pair) if pair.len() == 2 => {
                                let value = if first(&pair[1]).is_some_and(|(k, _)| is_verdict(k)) {
                                    statement(&pair[1])?
                                } else {
                                    expr(&pair[1])?
                                };
                                Ok(format!("{} : {value}", expr(&pair[0])?))
                            }
                            other => expr(other),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(format!("{{ {} }}", parts.join(", ")))
                }
                _ => Err(unsupported("expression", v)),
            }
        }
        _ => Err(unsupported("expression", v)),
    }
}

fn is_verdict(k: &str) -> bool {
    matches!(
        k,
        "accept" | "drop" | "jump" | "goto" | "return" | "continue"
    )
}

/// A string value: set references, addresses and known symbols bare, the rest quoted.
fn word(x: &str) -> String {
    if x.starts_with('@') || x.parse::<IpAddr>().is_ok() || KEYWORDS.contains(&x) {
        x.to_owned()
    } else {
        quote(x)
    }
}

fn quote(x: &str) -> String {
    format!("\"{}\"", x.replace('\\', "\\\\").replace('"', "\\\""))
}
