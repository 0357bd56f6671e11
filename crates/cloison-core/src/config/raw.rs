//! The configuration file exactly as written: serde structs with `deny_unknown_fields`
//! and spans on every value, so validation can point at the line. Nothing here is
//! trusted; `validate` turns it into `Config`. Required keys are `Option` here too, so
//! that a missing key is reported by validation with the others, not by serde alone.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub router: Option<S<RawRouter>>,
    pub trunk: Option<S<RawTrunk>>,
    #[serde(default)]
    pub uplinks: BTreeMap<S<String>, S<RawUplink>>,
    #[serde(default)]
    pub segments: BTreeMap<S<String>, S<RawSegment>>,
    #[serde(default)]
    pub allow: Vec<S<RawAllow>>,
    #[serde(default)]
    pub forbid: Vec<S<RawForbid>>,
    pub alerts: Option<S<RawAlerts>>,
    pub daemon: Option<S<RawDaemon>>,
    pub verify: Option<S<RawVerify>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouter {
    pub name: Option<S<String>>,
    pub ssh_port: Option<S<i64>>,
    pub trusted_interfaces: Option<S<Vec<S<String>>>>,
    pub unmanaged_input: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrunk {
    pub interface: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUplink {
    pub interface: Option<S<String>>,
    pub gateway: Option<S<String>>,
    pub address: Option<S<String>>,
    pub gateway6: Option<S<String>>,
    pub address6: Option<S<String>>,
    pub masquerade: Option<S<bool>>,
    pub label: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    pub vlan: Option<S<i64>>,
    pub interface: Option<S<String>>,
    pub address: Option<S<String>>,
    pub address6: Option<S<String>>,
    pub uplink: Option<S<String>>,
    #[serde(default)]
    pub services: Vec<S<String>>,
    pub management: Option<S<bool>>,
    pub label: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub from: Option<S<String>>,
    pub to: Option<S<String>>,
    pub proto: Option<S<String>>,
    #[serde(default)]
    pub ports: Option<S<Vec<S<i64>>>>,
    pub comment: Option<S<String>>,
}

/// `from` and `to` of a forbid take one name or a list of names. Hand-written because
/// serde's untagged enums lose toml's spans.
#[derive(Debug)]
pub enum OneOrMany {
    One(String),
    Many(Vec<S<String>>),
}

impl OneOrMany {
    /// The names, each with its span (a single name takes the span of the value).
    pub fn items(this: &S<OneOrMany>) -> Vec<S<String>> {
        match this.get_ref() {
            OneOrMany::One(s) => vec![Spanned::new(this.span(), s.clone())],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a segment name or a list of segment names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<S<String>>()? {
                    out.push(item);
                }
                Ok(OneOrMany::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForbid {
    pub from: Option<S<OneOrMany>>,
    pub to: Option<S<OneOrMany>>,
    pub proto: Option<S<String>>,
    pub ports: Option<S<Vec<S<i64>>>>,
    pub comment: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub summary_every: Option<S<String>>,
    pub max_per_minute: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub repair: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    pub every: Option<S<String>>,
    pub ports: Option<S<Vec<S<i64>>>>,
    pub internet: Option<S<String>>,
    pub internet6: Option<S<String>>,
    #[serde(default)]
    pub probe_address: BTreeMap<S<String>, S<String>>,
    #[serde(default)]
    pub targets: BTreeMap<S<String>, S<Vec<S<String>>>>,
}
