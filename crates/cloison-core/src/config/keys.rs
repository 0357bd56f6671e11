//! Unknown-key detection over the whole file before deserializing, so every misspelt key
//! is reported at once (serde stops at the first) with a "did you mean" hint. The known
//! keys come from the raw serde structs themselves, so the two cannot disagree.

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, hint};
use super::raw::{
    RawAlerts, RawAllow, RawConfig, RawDaemon, RawForbid, RawRouter, RawSegment, RawTrunk,
    RawUplink,
};

/// Removes every key that no raw struct declares from `root`, and reports each one, so
/// deserialization and validation can still run on the rest of the file.
pub fn take_unknown_keys(root: &mut DeTable<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    check(root, "", field_names::<RawConfig>(), &mut out);
    for (key, value) in root.iter_mut() {
        let section: &str = key.get_ref().as_ref();
        let fields = match section {
            "router" => field_names::<RawRouter>(),
            "trunk" => field_names::<RawTrunk>(),
            "alerts" => field_names::<RawAlerts>(),
            "daemon" => field_names::<RawDaemon>(),
            "allow" => field_names::<RawAllow>(),
            "forbid" => field_names::<RawForbid>(),
            "uplinks" => field_names::<RawUplink>(),
            "segments" => field_names::<RawSegment>(),
            _ => continue,
        };
        let path = match section {
            "allow" | "forbid" => format!("[[{section}]]"),
            _ => section.to_owned(),
        };
        if section == "uplinks" || section == "segments" {
            if let DeValue::Table(t) = value.get_mut() {
                for (name, item) in t.iter_mut() {
                    let path = format!("{section}.{}", name.get_ref());
                    each_table(item, &path, fields, &mut out);
                }
            }
        } else {
            each_table(value, &path, fields, &mut out);
        }
    }
    out
}

/// Checks a table, or each table of an array of tables (`[[allow]]`), numbered from 1.
fn each_table(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    fields: &[&str],
    out: &mut Vec<Diagnostic>,
) {
    match value.get_mut() {
        DeValue::Table(t) => check(t, path, fields, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let DeValue::Table(t) = item.get_mut() {
                    check(t, &format!("{path} #{}", i + 1), fields, out);
                }
            }
        }
        // A wrong type is reported by deserialization, with its location.
        _ => {}
    }
}

fn check(table: &mut DeTable<'_>, path: &str, fields: &[&str], out: &mut Vec<Diagnostic>) {
    let unknown: Vec<Spanned<_>> = table
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !fields.contains(&k.get_ref().as_ref()))
        .cloned()
        .collect();
    for key in unknown {
        let k: &str = key.get_ref().as_ref();
        let shown = if path.is_empty() {
            k.to_owned()
        } else if path.starts_with("[[") {
            format!("{path} {k}")
        } else {
            format!("{path}.{k}")
        };
        let known = fields.join("`, `");
        out.push(Diagnostic::new(
            key.span(),
            shown,
            format!(
                "unknown key{}; the keys here are `{known}`",
                hint(k, fields.iter().copied())
            ),
        ));
        table.remove(&key);
    }
}

/// The field names a serde struct declares, read from its `Deserialize` impl.
pub fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut found = None;
    let _ = T::deserialize(FieldProbe { found: &mut found });
    found.unwrap_or(&[])
}

/// A deserializer that records the field list of the struct asked for, then stops.
struct FieldProbe<'a> {
    found: &'a mut Option<&'static [&'static str]>,
}

#[derive(Debug)]
struct ProbeDone;

impl std::fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe done")
    }
}

impl std::error::Error for ProbeDone {}

impl de::Error for ProbeDone {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        ProbeDone
    }
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = ProbeDone;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        *self.found = Some(fields);
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_field_names() {
        assert_eq!(field_names::<RawTrunk>(), &["interface"]);
        assert!(field_names::<RawSegment>().contains(&"vlan"));
    }

    #[test]
    fn finds_every_unknown_key_with_a_hint() {
        let src = "[segments.kiosk]\nvlna = 20\naddress = \"192.168.20.1/24\"\n[router]\nnmae = \"x\"\n[[allow]]\nform = \"a\"\n";
        let mut root = DeTable::parse(src).unwrap();
        let mut diags = take_unknown_keys(root.get_mut());
        diags.sort_by_key(|d| d.span.start);
        let keys: Vec<_> = diags.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(
            keys,
            ["segments.kiosk.vlna", "router.nmae", "[[allow]] #1 form"]
        );
        assert!(diags[0].message.contains("did you mean `vlan`?"));
        assert!(diags[2].message.contains("did you mean `from`?"));
        let seg = &root.get_ref()["segments"];
        let DeValue::Table(t) = seg.get_ref() else {
            panic!()
        };
        let DeValue::Table(kiosk) = t["kiosk"].get_ref() else {
            panic!()
        };
        assert_eq!(
            kiosk.len(),
            1,
            "the unknown key is removed, the known one kept"
        );
    }
}
