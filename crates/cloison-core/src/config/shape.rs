//! The file's shape, checked over the whole file before deserializing, so every problem is
//! reported at once (serde stops at the first): keys that no raw struct declares (with a
//! "did you mean" hint), and values of the wrong type (`vlan = "30"`), each with how to
//! write it. Both are reported and removed, so deserialization and validation still run
//! on the rest. The keys and the types come from the raw serde structs themselves (probed
//! through serde), so the two cannot disagree.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::diagnostic::{Diagnostic, hint};
use super::raw::{
    RawAlerts, RawAllow, RawConfig, RawDaemon, RawForbid, RawRouter, RawSegment, RawTrunk,
    RawUplink, RawVerify,
};

/// How the tables of one section sit in the file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One table: `[router]`.
    Single,
    /// One table per name: `[segments.NAME]`.
    Named,
    /// An array of tables: `[[allow]]`.
    List,
}

/// What reads one kind of table: its keys, and a probe of whether a value fits a key.
#[derive(Clone, Copy)]
struct Schema {
    fields: &'static [&'static str],
    fits: fn(&str, &Spanned<DeValue<'_>>) -> bool,
    forms: fn(&str) -> Vec<Form>,
}

impl Schema {
    fn of<T: DeserializeOwned>() -> Schema {
        Schema {
            fields: field_names::<T>(),
            fits: fits::<T>,
            forms: forms::<T>,
        }
    }
}

fn section(name: &str) -> Option<(Layout, Schema)> {
    Some(match name {
        "router" => (Layout::Single, Schema::of::<RawRouter>()),
        "trunk" => (Layout::Single, Schema::of::<RawTrunk>()),
        "alerts" => (Layout::Single, Schema::of::<RawAlerts>()),
        "daemon" => (Layout::Single, Schema::of::<RawDaemon>()),
        "verify" => (Layout::Single, Schema::of::<RawVerify>()),
        "uplinks" => (Layout::Named, Schema::of::<RawUplink>()),
        "segments" => (Layout::Named, Schema::of::<RawSegment>()),
        "allow" => (Layout::List, Schema::of::<RawAllow>()),
        "forbid" => (Layout::List, Schema::of::<RawForbid>()),
        _ => return None,
    })
}

/// What `take_misfits` removed.
pub struct Misfits {
    /// One per unknown key or value of the wrong type.
    pub problems: Vec<Diagnostic>,
    /// The keys whose value had the wrong type (`segments.kiosk.vlan`, `[[allow]] #1
    /// ports`, `segments.kiosk` for a segment that is not a table): validation must not
    /// report them missing.
    pub mistyped: BTreeSet<String>,
}

/// Removes from `root` every key no raw struct declares and every value of the wrong
/// type, and reports each one.
pub fn take_misfits(root: &mut DeTable<'_>, source: &str) -> Misfits {
    let mut out = Vec::new();
    let mut mistyped = BTreeSet::new();
    unknown_keys(root, "", field_names::<RawConfig>(), &mut out);
    for (key, value) in root.iter_mut() {
        let name: &str = key.get_ref().as_ref();
        let Some((layout, schema)) = section(name) else {
            continue;
        };
        match (layout, value.get_mut()) {
            (Layout::Single, DeValue::Table(t)) => {
                table(t, name, schema, source, &mut out, &mut mistyped)
            }
            (Layout::Named, DeValue::Table(t)) => {
                let misplaced: Vec<_> = t
                    .iter()
                    .filter(|(_, v)| !matches!(v.get_ref(), DeValue::Table(_)))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in misplaced {
                    let item = t.remove(&k).expect("listed above");
                    let path = format!("{name}.{}", k.get_ref());
                    mistyped.insert(path.clone());
                    out.push(Diagnostic::new(
                        item.span(),
                        shown(&path, &item, source),
                        format!(
                            "expected a table, found {}; write `[{path}]` on a line of its own, then its keys on the lines below",
                            found(item.get_ref())
                        ),
                    ));
                }
                for (k, item) in t.iter_mut() {
                    if let DeValue::Table(t) = item.get_mut() {
                        let path = format!("{name}.{}", k.get_ref());
                        table(t, &path, schema, source, &mut out, &mut mistyped);
                    }
                }
            }
            (Layout::List, DeValue::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(t) = item.get_mut() {
                        let path = format!("[[{name}]] #{}", i + 1);
                        table(t, &path, schema, source, &mut out, &mut mistyped);
                    }
                }
            }
            _ => {}
        }
    }
    // What is left that does not fit is the shape of a whole section.
    let misfits: Vec<_> = root
        .iter()
        .filter(|(k, v)| section(k.get_ref()).is_some() && !fits::<RawConfig>(k.get_ref(), v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in misfits {
        let value = root.remove(&k).expect("listed above");
        let name: &str = k.get_ref().as_ref();
        mistyped.insert(name.to_owned());
        let how = match section(name).map(|(layout, _)| layout) {
            Some(Layout::Single) => {
                format!("write `[{name}]` on a line of its own, then its keys on the lines below")
            }
            Some(Layout::Named) => format!(
                "write one table per name, `[{name}.NAME]` on a line of its own, then its keys on the lines below"
            ),
            _ => format!(
                "write `[[{name}]]`, with double brackets, on a line of its own before each one, then its keys on the lines below"
            ),
        };
        let what = match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .find(|i| !matches!(i.get_ref(), DeValue::Table(_)))
                .map_or("a list".to_owned(), |i| {
                    format!("a list holding {}", found(i.get_ref()))
                }),
            v => found(v),
        };
        let span = value.span();
        out.push(Diagnostic::new(
            span.clone(),
            shown(name, &value, source),
            format!("this section has the wrong form ({what}); {how}"),
        ));
    }
    Misfits {
        problems: out,
        mistyped,
    }
}

/// One table read by `schema`: its unknown keys, then its values of the wrong type.
fn table(
    t: &mut DeTable<'_>,
    path: &str,
    schema: Schema,
    source: &str,
    out: &mut Vec<Diagnostic>,
    mistyped: &mut BTreeSet<String>,
) {
    unknown_keys(t, path, schema.fields, out);
    let misfits: Vec<_> = t
        .iter()
        .filter(|(k, v)| !(schema.fits)(k.get_ref(), v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in misfits {
        let value = t.remove(&k).expect("listed above");
        let field: &str = k.get_ref().as_ref();
        let forms = (schema.forms)(field);
        let key = join(path, field);
        out.push(wrong_type(&key, field, &value, &forms, source));
        mistyped.insert(key);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else if path.starts_with("[[") {
        format!("{path} {key}")
    } else {
        format!("{path}.{key}")
    }
}

fn unknown_keys(table: &mut DeTable<'_>, path: &str, fields: &[&str], out: &mut Vec<Diagnostic>) {
    let unknown: Vec<Spanned<_>> = table
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !fields.contains(&k.get_ref().as_ref()))
        .cloned()
        .collect();
    for key in unknown {
        let k: &str = key.get_ref().as_ref();
        let known = fields.join("`, `");
        out.push(Diagnostic::new(
            key.span(),
            join(path, k),
            format!(
                "unknown key{}; the keys here are `{known}`",
                hint(k, fields.iter().copied())
            ),
        ));
        table.remove(&key);
    }
}

/// Whether `value` deserializes as the field `key` of `T` (every raw struct takes each of
/// its fields alone: required keys are `Option` too).
fn fits<T: DeserializeOwned>(key: &str, value: &Spanned<DeValue<'_>>) -> bool {
    let mut one = DeTable::new();
    one.insert(
        Spanned::new(0..0, DeString::Owned(key.to_owned())),
        value.clone(),
    );
    T::deserialize(toml::Deserializer::from(Spanned::new(value.span(), one))).is_ok()
}

/// The forms of value a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Number,
    Boolean,
    Text,
    Numbers,
    Texts,
}

impl Form {
    const ALL: [(Form, &'static str); 5] = [
        (Form::Number, "1"),
        (Form::Boolean, "true"),
        (Form::Text, "\"x\""),
        (Form::Numbers, "[1]"),
        (Form::Texts, "[\"x\"]"),
    ];

    fn describe(self) -> &'static str {
        match self {
            Form::Number => "a whole number",
            Form::Boolean => "true or false",
            Form::Text => "text in double quotes",
            Form::Numbers => "a list of whole numbers",
            Form::Texts => "a list of texts in double quotes",
        }
    }
}

fn forms<T: DeserializeOwned>(field: &str) -> Vec<Form> {
    Form::ALL
        .iter()
        .filter(|(_, sample)| {
            let doc = format!("{field} = {sample}");
            DeTable::parse(&doc).is_ok_and(|t| T::deserialize(toml::Deserializer::from(t)).is_ok())
        })
        .map(|(f, _)| *f)
        .collect()
}

/// What a value is, in words.
fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(_) => "text in quotes",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
    .to_owned()
}

/// The value as written in the file.
fn raw<'s>(v: &Spanned<DeValue<'_>>, source: &'s str) -> &'s str {
    source.get(v.span()).unwrap_or("").trim()
}

/// `key = value` when the value is short enough to repeat, else `key`.
fn shown(key: &str, v: &Spanned<DeValue<'_>>, source: &str) -> String {
    let r = raw(v, source);
    if matches!(v.get_ref(), DeValue::Table(_)) || r.is_empty() || r.len() > 40 || r.contains('\n')
    {
        key.to_owned()
    } else {
        format!("{key} = {r}")
    }
}

fn wrong_type(
    key: &str,
    field: &str,
    value: &Spanned<DeValue<'_>>,
    forms: &[Form],
    source: &str,
) -> Diagnostic {
    let expected: Vec<&str> = forms.iter().map(|f| f.describe()).collect();
    let expected = if expected.is_empty() {
        "another form".to_owned()
    } else {
        expected.join(" or ")
    };
    // In a list, point at the first element that does not fit.
    let list_of = forms
        .iter()
        .find(|f| matches!(f, Form::Numbers | Form::Texts));
    let bad_item = match (value.get_ref(), list_of) {
        (DeValue::Array(items), Some(Form::Numbers)) => items
            .iter()
            .find(|i| !matches!(i.get_ref(), DeValue::Integer(_))),
        (DeValue::Array(items), Some(_)) => items
            .iter()
            .find(|i| !matches!(i.get_ref(), DeValue::String(_))),
        _ => None,
    };
    let (span, what) = match bad_item {
        Some(item) => (item.span(), format!("{} in it", found(item.get_ref()))),
        None => (value.span(), found(value.get_ref())),
    };
    let how = match fixed(value, forms, source) {
        Some(fix) if unquotes(value, &fix) => {
            format!("write it without quotes: `{field} = {fix}`")
        }
        Some(fix) => format!("write `{field} = {fix}`"),
        None => format!("write {expected} instead"),
    };
    Diagnostic::new(
        span,
        shown(key, value, source),
        format!("expected {expected}, found {what}; {how}"),
    )
}

/// Whether the fix is the same text without its quotes (`"30"` -> `30`, `["5900"]` ->
/// `[5900]`).
fn unquotes(value: &Spanned<DeValue<'_>>, fix: &str) -> bool {
    let strings = match value.get_ref() {
        DeValue::String(_) => true,
        DeValue::Array(items) => items
            .iter()
            .any(|i| matches!(i.get_ref(), DeValue::String(_))),
        _ => false,
    };
    strings && !fix.contains('"')
}

const TRUE_WORDS: [&str; 5] = ["true", "yes", "oui", "on", "1"];
const FALSE_WORDS: [&str; 5] = ["false", "no", "non", "off", "0"];

/// The value rewritten in a form the field accepts, when the intent is clear.
fn fixed(value: &Spanned<DeValue<'_>>, forms: &[Form], source: &str) -> Option<String> {
    let v = value.get_ref();
    let number = |v: &Spanned<DeValue<'_>>| -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(_) => raw(v, source).replace('_', "").parse().ok(),
            DeValue::String(s) => s.trim().parse().ok(),
            DeValue::Float(_) => {
                let f: f64 = raw(v, source).replace('_', "").parse().ok()?;
                let s = format!("{f:.0}");
                (f.is_finite() && f.fract() == 0.0)
                    .then(|| s.parse().ok())
                    .flatten()
            }
            _ => None,
        }
    };
    let text = |v: &Spanned<DeValue<'_>>| -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(format!("{:?}", s.as_ref())),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                Some(format!("{:?}", raw(v, source)))
            }
            _ => None,
        }
    };
    for form in forms {
        let fix = match (form, v) {
            (Form::Number, _) => number(value).map(|n| n.to_string()),
            (Form::Boolean, DeValue::String(s)) => {
                let s = s.trim().to_lowercase();
                if TRUE_WORDS.contains(&s.as_str()) {
                    Some("true".to_owned())
                } else if FALSE_WORDS.contains(&s.as_str()) {
                    Some("false".to_owned())
                } else {
                    None
                }
            }
            (Form::Boolean, DeValue::Integer(_)) => match raw(value, source) {
                "1" => Some("true".to_owned()),
                "0" => Some("false".to_owned()),
                _ => None,
            },
            (Form::Text, DeValue::Array(_)) => None,
            (Form::Text, _) => text(value),
            (Form::Numbers, DeValue::Array(items)) => items
                .iter()
                .map(number)
                .collect::<Option<Vec<_>>>()
                .map(|ns| list(ns.iter().map(i64::to_string))),
            (Form::Numbers, _) => number(value).map(|n| format!("[{n}]")),
            (Form::Texts, DeValue::Array(items)) => items
                .iter()
                .map(text)
                .collect::<Option<Vec<_>>>()
                .map(|ts| list(ts.into_iter())),
            (Form::Texts, _) => text(value).map(|t| format!("[{t}]")),
            _ => None,
        };
        if fix.is_some() {
            return fix;
        }
    }
    None
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
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

    fn misfits(src: &str) -> Vec<Diagnostic> {
        let mut root = DeTable::parse(src).unwrap();
        let mut diags = take_misfits(root.get_mut(), src).problems;
        diags.sort_by_key(|d| d.span.start);
        diags
    }

    #[test]
    fn probes_field_names() {
        assert_eq!(field_names::<RawTrunk>(), &["interface"]);
        assert!(field_names::<RawSegment>().contains(&"vlan"));
    }

    #[test]
    fn probes_the_forms_a_field_takes() {
        assert_eq!(forms::<RawSegment>("vlan"), [Form::Number]);
        assert_eq!(forms::<RawSegment>("management"), [Form::Boolean]);
        assert_eq!(forms::<RawSegment>("services"), [Form::Texts]);
        assert_eq!(forms::<RawAllow>("ports"), [Form::Numbers]);
        assert_eq!(forms::<RawForbid>("from"), [Form::Text, Form::Texts]);
    }

    #[test]
    fn finds_every_unknown_key_with_a_hint() {
        let src = "[segments.kiosk]\nvlna = 20\naddress = \"192.168.20.1/24\"\n[router]\nnmae = \"x\"\n[[allow]]\nform = \"a\"\n";
        let mut root = DeTable::parse(src).unwrap();
        let mut diags = take_misfits(root.get_mut(), src).problems;
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

    #[test]
    fn every_wrong_type_is_reported_with_its_fix() {
        let src = "[segments.kiosk]\nvlan = \"30\"\nmanagement = \"yes\"\nservices = \"dns\"\naddress = 5\n[[allow]]\nports = [80, \"5900\"]\n[[forbid]]\nfrom = 3\n";
        let got: Vec<(String, String)> = misfits(src)
            .into_iter()
            .map(|d| (d.key, d.message))
            .collect();
        let want = [
            (
                "segments.kiosk.vlan = \"30\"",
                "expected a whole number, found text in quotes; write it without quotes: `vlan = 30`",
            ),
            (
                "segments.kiosk.management = \"yes\"",
                "expected true or false, found text in quotes; write it without quotes: `management = true`",
            ),
            (
                "segments.kiosk.services = \"dns\"",
                "expected a list of texts in double quotes, found text in quotes; write `services = [\"dns\"]`",
            ),
            (
                "segments.kiosk.address = 5",
                "expected text in double quotes, found a number; write `address = \"5\"`",
            ),
            (
                "[[allow]] #1 ports = [80, \"5900\"]",
                "expected a list of whole numbers, found text in quotes in it; write it without quotes: `ports = [80, 5900]`",
            ),
            (
                "[[forbid]] #1 from = 3",
                "expected text in double quotes or a list of texts in double quotes, found a number; write `from = \"3\"`",
            ),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, m)| (k.to_string(), m.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_list_element_is_pointed_at() {
        let src = "[[allow]]\nports = [80, \"5900\"]\n";
        let d = &misfits(src)[0];
        assert_eq!(&src[d.span.clone()], "\"5900\"");
    }

    #[test]
    fn sections_of_the_wrong_form() {
        let src = "router = 1\n[allow]\nfrom = \"a\"\n[segments]\nkiosk = 5\n";
        let got: Vec<String> = misfits(src)
            .into_iter()
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(
            got[0].starts_with(
                "router = 1: this section has the wrong form (a number); write `[router]`"
            ),
            "{got:#?}"
        );
        assert!(got[1].starts_with("allow: this section has the wrong form (a table); write `[[allow]]`, with double brackets"), "{got:#?}");
        assert!(
            got[2].starts_with(
                "segments.kiosk = 5: expected a table, found a number; write `[segments.kiosk]`"
            ),
            "{got:#?}"
        );
    }

    #[test]
    fn what_fits_is_kept() {
        let src = "[segments.kiosk]\nvlan = 20\nservices = [\"dns\"]\n[[forbid]]\nfrom = [\"a\", \"b\"]\nto = \"c\"\n";
        assert!(misfits(src).is_empty());
    }
}
