//! The journald message catalog (systemd/cloison.catalog, built in): what each event
//! kind means and what to do, in English and French. The report quotes it, so the reader
//! of a report and the reader of `journalctl -x` are told the same thing.

use super::Lang;
use crate::alert::event::EventKind;

/// The catalog as installed in /usr/lib/systemd/catalog/.
pub const CATALOG: &str = include_str!("../../../../systemd/cloison.catalog");

/// What the catalog says about one kind, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The `Subject:` without the leading `cloison:`.
    pub subject: String,
    /// The body's paragraphs, `@CLOISON_ROUTER@` replaced by the router's name.
    pub paragraphs: Vec<String>,
}

/// The catalog's text for `kind` in `lang` (English when the language is missing).
pub fn explain(kind: EventKind, lang: Lang, router: &str) -> Option<Explanation> {
    let wanted = match lang {
        Lang::Fr => Some("fr"),
        Lang::En => None,
    };
    section(kind.message_id(), wanted)
        .or_else(|| section(kind.message_id(), None))
        .map(|text| parse_section(text, router))
}

/// The lines after `-- ID [LANG]` up to the next section.
fn section(id: &str, lang: Option<&str>) -> Option<&'static str> {
    let mut start = None;
    let mut offset = 0;
    for line in CATALOG.split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        let Some(head) = line.trim_end().strip_prefix("-- ") else {
            continue;
        };
        if start.is_some() {
            return start.map(|s| &CATALOG[s..here]);
        }
        let mut words = head.split_whitespace();
        if words.next() == Some(id) && words.next() == lang {
            start = Some(offset);
        }
    }
    start.map(|s| &CATALOG[s..])
}

fn parse_section(text: &str, router: &str) -> Explanation {
    let (headers, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let subject = headers
        .lines()
        .find_map(|l| l.strip_prefix("Subject:"))
        .unwrap_or("")
        .trim();
    let subject = subject
        .strip_prefix("cloison :")
        .or_else(|| subject.strip_prefix("cloison:"))
        .unwrap_or(subject)
        .trim();
    let paragraphs = body
        .split("\n\n")
        .map(|p| {
            p.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("@CLOISON_ROUTER@", router)
        })
        .filter(|p| !p.is_empty())
        .collect();
    Explanation {
        subject: capitalise(subject),
        paragraphs,
    }
}

/// The first letter in upper case (`trafic bloqué` -> `Trafic bloqué`).
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_explained_in_both_languages() {
        for kind in EventKind::ALL {
            for lang in [Lang::Fr, Lang::En] {
                let want = match lang {
                    Lang::Fr => Some("fr"),
                    Lang::En => None,
                };
                assert!(
                    section(kind.message_id(), want).is_some(),
                    "{kind} has no {lang:?} section in systemd/cloison.catalog"
                );
                let e = explain(kind, lang, "mairie-lab").unwrap();
                assert!(!e.subject.is_empty() && !e.paragraphs.is_empty(), "{kind}");
                assert!(!e.paragraphs.iter().any(|p| p.contains('@')), "{kind}");
            }
        }
    }

    #[test]
    fn quotes_the_catalog() {
        let fr = explain(EventKind::CrossSegment, Lang::Fr, "mairie-ducey").unwrap();
        assert_eq!(fr.subject, "Trafic bloqué entre segments du réseau");
        assert!(fr.paragraphs[0].contains("Le routeur mairie-ducey l'a bloqué"));
        assert!(fr.paragraphs[1].starts_with("Que faire"));
        let en = explain(EventKind::CrossSegment, Lang::En, "r").unwrap();
        assert_eq!(en.subject, "Blocked traffic between network segments");
        assert_eq!(en.paragraphs.len(), 2);
    }
}
