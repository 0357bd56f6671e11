//! TOML syntax, with every definition made twice located: the key, the line of its first
//! definition, and how to fix it. The later definition is then blanked out (its bytes
//! replaced by spaces, so every offset stays) and the file parsed again, so the rest of
//! the file is still checked. Any other syntax error stops there: what follows it cannot
//! be trusted. Knows TOML, not what cloison's keys mean.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use toml::de::DeTable;
use toml_parser::parser::{Event, EventKind, RecursionGuard, ValidateWhitespace};
use toml_parser::{Raw, Source};

use super::diagnostic::{Diagnostic, line_col};

/// The text to read the configuration from (the source, or the source with later
/// duplicate definitions blanked out), or `None` when a syntax error leaves nothing
/// trustworthy to read; and the problems found.
pub struct Checked<'s> {
    pub text: Option<Cow<'s, str>>,
    pub problems: Vec<Diagnostic>,
}

/// Checks the syntax of `source`.
pub fn check(source: &str) -> Checked<'_> {
    if DeTable::parse(source).is_ok() {
        return Checked {
            text: Some(Cow::Borrowed(source)),
            problems: Vec::new(),
        };
    }
    let duplicates = find_duplicates(source);
    let (_, mut errors) = DeTable::parse_recoverable(source);
    // Syntax errors come before the duplicates the assembly of the tables finds.
    errors.sort_by_key(|e| e.span().map_or(0, |s| s.start));
    let mut reported: Vec<&Duplicate> = Vec::new();
    let mut problems = Vec::new();
    for e in &errors {
        let at = e.span().map_or(0, |s| s.start);
        match duplicates.iter().find(|d| d.blank.contains(&at)) {
            Some(d) => {
                if !reported.iter().any(|r| r.second == d.second) {
                    reported.push(d);
                }
            }
            None => {
                // Not a definition made twice: report it as TOML states it, and stop.
                problems.extend(reported.iter().map(|d| d.diagnostic(source)));
                problems.push(malformed(e));
                return Checked {
                    text: None,
                    problems,
                };
            }
        }
    }
    problems.extend(reported.iter().map(|d| d.diagnostic(source)));
    let mut blanked = source.as_bytes().to_vec();
    for d in &reported {
        for b in &mut blanked[d.blank.clone()] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    let Ok(blanked) = String::from_utf8(blanked) else {
        // Unreachable: ASCII spaces replace whole characters or whole bytes of a range
        // that starts and ends on character boundaries.
        return Checked {
            text: None,
            problems,
        };
    };
    match DeTable::parse(&blanked) {
        Ok(_) => Checked {
            text: Some(Cow::Owned(blanked)),
            problems,
        },
        Err(e) => {
            problems.push(malformed(&e));
            Checked {
                text: None,
                problems,
            }
        }
    }
}

fn malformed(e: &toml::de::Error) -> Diagnostic {
    let msg = e.message().trim().replace('\n', " ");
    Diagnostic::new(
        e.span().unwrap_or(0..0),
        "",
        format!("malformed TOML: {msg}"),
    )
}

/// A key or table defined a second time.
#[derive(Debug, Clone)]
struct Duplicate {
    /// The key as a path (`segments.kiosk`, `[[allow]] #2 ports`).
    key: String,
    /// Whether the second definition is a table header (`[segments.kiosk]`).
    table: bool,
    /// The key of the second definition, where the error points.
    second: Range<usize>,
    /// The key of the first definition.
    first: Range<usize>,
    /// What goes with the second definition: a table header to the next header, or a
    /// `key = value` line.
    blank: Range<usize>,
}

impl Duplicate {
    fn diagnostic(&self, source: &str) -> Diagnostic {
        let (line, _) = line_col(source, self.first.start);
        let message = if self.table {
            format!(
                "defined twice (first at line {line}); rename this one (each needs a name of its own) or merge the two tables into one"
            )
        } else {
            format!("set twice (first at line {line}); keep one of the two")
        };
        Diagnostic::new(self.second.clone(), self.key.clone(), message)
    }
}

/// How a path came to be defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A `[table]` header.
    Table,
    /// A `[[table]]` header (an array of tables).
    ArrayOfTables,
    /// `key = value`.
    Value,
    /// A table made by a dotted key (`a.b = 1` makes `a`).
    Dotted,
}

/// One component of a resolved path: a key, or the index of an array-of-tables element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Key(String),
    Index(usize),
}

/// The definitions of a document, in order, as TOML's rules see them: the duplicates.
fn find_duplicates(source: &str) -> Vec<Duplicate> {
    let src = Source::new(source);
    let tokens = src.lex().into_vec();
    let mut events: Vec<Event> = Vec::with_capacity(tokens.len());
    {
        let mut validate = ValidateWhitespace::new(&mut events, src);
        let mut guard = RecursionGuard::new(&mut validate, 80);
        toml_parser::parser::parse_document(&tokens, &mut guard, &mut ());
    }
    let mut scan = Scan::new(source);
    let mut i = 0;
    while i < events.len() {
        let e = &events[i];
        match e.kind() {
            EventKind::StdTableOpen | EventKind::ArrayTableOpen => {
                let array = e.kind() == EventKind::ArrayTableOpen;
                let start = e.span().start();
                let mut keys = Vec::new();
                i += 1;
                while let Some(e) = events.get(i) {
                    match e.kind() {
                        EventKind::SimpleKey => keys.push(scan.key(e)),
                        EventKind::StdTableClose | EventKind::ArrayTableClose => break,
                        _ => {}
                    }
                    i += 1;
                }
                let end = next_header(&events, i + 1).unwrap_or(source.len());
                scan.header(keys, array, start..end);
            }
            EventKind::SimpleKey => {
                let start = e.span().start();
                let mut keys = Vec::new();
                while let Some(e) = events.get(i) {
                    match e.kind() {
                        EventKind::SimpleKey => keys.push(scan.key(e)),
                        EventKind::KeyValSep => break,
                        _ => {}
                    }
                    i += 1;
                }
                // The value: to the end of the line, past nested arrays and tables.
                let mut depth = 0usize;
                let mut end = events.get(i).map_or(start, |e| e.span().end());
                i += 1;
                while let Some(e) = events.get(i) {
                    match e.kind() {
                        EventKind::ArrayOpen | EventKind::InlineTableOpen => depth += 1,
                        EventKind::ArrayClose | EventKind::InlineTableClose => {
                            depth = depth.saturating_sub(1)
                        }
                        EventKind::Newline | EventKind::Comment if depth == 0 => break,
                        EventKind::Whitespace | EventKind::Newline | EventKind::Comment => {}
                        _ => {}
                    }
                    if !matches!(
                        e.kind(),
                        EventKind::Whitespace | EventKind::Newline | EventKind::Comment
                    ) {
                        end = e.span().end();
                    }
                    i += 1;
                }
                scan.key_value(keys, start..end);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan.duplicates
}

/// The start of the next table header at or after event `from`.
fn next_header(events: &[Event], from: usize) -> Option<usize> {
    events.get(from..)?.iter().find_map(|e| {
        matches!(
            e.kind(),
            EventKind::StdTableOpen | EventKind::ArrayTableOpen
        )
        .then(|| e.span().start())
    })
}

struct Scan<'s> {
    source: &'s str,
    defined: HashMap<Vec<Part>, (Kind, Range<usize>)>,
    /// Elements so far of each array of tables.
    elements: HashMap<Vec<Part>, usize>,
    /// The table `key = value` lines go into.
    current: Vec<Part>,
    /// The current table is itself a duplicate: its lines are not checked again.
    in_duplicate: bool,
    duplicates: Vec<Duplicate>,
}

impl<'s> Scan<'s> {
    fn new(source: &'s str) -> Self {
        Scan {
            source,
            defined: HashMap::new(),
            elements: HashMap::new(),
            current: Vec::new(),
            in_duplicate: false,
            duplicates: Vec::new(),
        }
    }

    fn key(&self, e: &Event) -> (String, Range<usize>) {
        let span = e.span();
        let range = span.start()..span.end();
        let raw = Raw::new_unchecked(
            self.source.get(range.clone()).unwrap_or(""),
            e.encoding(),
            span,
        );
        let mut name = String::new();
        raw.decode_key(&mut name, &mut ());
        (name, range)
    }

    /// `keys` appended to `base`, each array of tables on the way resolved to its last
    /// element, as TOML resolves them.
    fn resolve(&self, base: &[Part], keys: &[(String, Range<usize>)]) -> Vec<Part> {
        let mut path = base.to_vec();
        for (name, _) in keys {
            path.push(Part::Key(name.clone()));
            if let Some((Kind::ArrayOfTables, _)) = self.defined.get(&path) {
                let n = self.elements.get(&path).copied().unwrap_or(1);
                path.push(Part::Index(n));
            }
        }
        path
    }

    fn header(&mut self, keys: Vec<(String, Range<usize>)>, array: bool, extent: Range<usize>) {
        let Some((_, last)) = keys.last().cloned() else {
            return;
        };
        let parent = self.resolve(&[], &keys[..keys.len() - 1]);
        let mut path = parent;
        path.push(Part::Key(keys[keys.len() - 1].0.clone()));
        let previous = self.defined.get(&path).cloned();
        self.in_duplicate = false;
        match (array, previous) {
            (true, None) | (true, Some((Kind::ArrayOfTables, _))) => {
                self.defined
                    .entry(path.clone())
                    .or_insert((Kind::ArrayOfTables, last));
                let n = self.elements.entry(path.clone()).or_insert(0);
                *n += 1;
                let n = *n;
                self.current = path;
                self.current.push(Part::Index(n));
            }
            (false, None) => {
                self.defined.insert(path.clone(), (Kind::Table, last));
                self.current = path;
            }
            (_, Some((_, first))) => {
                self.duplicates.push(Duplicate {
                    key: display(&path),
                    table: true,
                    second: last,
                    first,
                    blank: extent,
                });
                self.in_duplicate = true;
            }
        }
    }

    fn key_value(&mut self, keys: Vec<(String, Range<usize>)>, extent: Range<usize>) {
        if self.in_duplicate || keys.is_empty() {
            return;
        }
        let mut path = self.current.clone();
        for (i, (name, span)) in keys.iter().enumerate() {
            path.push(Part::Key(name.clone()));
            let last = i + 1 == keys.len();
            match self.defined.get(&path).cloned() {
                None => {
                    let kind = if last { Kind::Value } else { Kind::Dotted };
                    self.defined.insert(path.clone(), (kind, span.clone()));
                }
                Some((Kind::Dotted, _)) if !last => {}
                Some((_, first)) => {
                    self.duplicates.push(Duplicate {
                        key: display(&path),
                        table: false,
                        second: span.clone(),
                        first,
                        blank: extent,
                    });
                    return;
                }
            }
        }
    }
}

/// A path as messages show keys: `segments.kiosk.vlan`, `[[allow]] #2 ports`.
fn display(path: &[Part]) -> String {
    let mut out = String::new();
    for (i, part) in path.iter().enumerate() {
        match part {
            Part::Key(k) => {
                if i > 0 {
                    out.push(if matches!(path[i - 1], Part::Index(_)) {
                        ' '
                    } else {
                        '.'
                    });
                }
                out.push_str(k);
            }
            Part::Index(n) => {
                out = format!("[[{out}]] #{n}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(source: &str) -> Vec<String> {
        check(source)
            .problems
            .iter()
            .map(|d| {
                let (l, c) = line_col(source, d.span.start);
                format!("{l}:{c}: {}: {}", d.key, d.message)
            })
            .collect()
    }

    #[test]
    fn a_valid_file_is_read_as_is() {
        let c = check("[a]\nb = 1\n");
        assert!(c.problems.is_empty());
        assert!(matches!(c.text, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn a_table_defined_twice_names_the_first_line() {
        let src = "[segments.kiosk]\nvlan = 20\n\n[segments.poste]\nvlan = 30\n\n[segments.kiosk]\nvlan = 40\n";
        assert_eq!(
            lines(src),
            [
                "7:11: segments.kiosk: defined twice (first at line 1); rename this one (each needs a name of its own) or merge the two tables into one"
            ]
        );
        // The second definition is blanked out, every offset kept.
        let text = check(src).text.unwrap();
        assert_eq!(text.len(), src.len());
        assert!(
            text.ends_with("\n\n                \n         \n"),
            "{text:?}"
        );
    }

    #[test]
    fn a_key_set_twice_names_the_first_line() {
        let src = "[segments.kiosk]\nvlan = 20\naddress = \"x\"\nvlan = [\n  30,\n]\n";
        assert_eq!(
            lines(src),
            ["4:1: segments.kiosk.vlan: set twice (first at line 2); keep one of the two"]
        );
        let text = check(src).text.unwrap();
        assert!(text.contains("vlan = 20") && !text.contains("30"), "{text}");
    }

    #[test]
    fn quoted_and_dotted_keys_and_arrays_of_tables() {
        assert_eq!(
            lines("[segments]\nkiosk.vlan = 1\n[segments.\"kiosk\"]\nvlan = 2\n"),
            [
                "3:11: segments.kiosk: defined twice (first at line 2); rename this one (each needs a name of its own) or merge the two tables into one"
            ]
        );
        assert_eq!(
            lines("[[allow]]\nfrom = \"a\"\n[[allow]]\nfrom = \"b\"\nfrom = \"c\"\n"),
            ["5:1: [[allow]] #2 from: set twice (first at line 4); keep one of the two"]
        );
        assert_eq!(
            lines("[[allow]]\nfrom = \"a\"\n[allow]\n"),
            [
                "3:2: allow: defined twice (first at line 1); rename this one (each needs a name of its own) or merge the two tables into one"
            ]
        );
        // Legal: a super-table after its sub-table.
        assert!(lines("[a.b]\nc = 1\n[a]\nd = 2\n").is_empty());
    }

    #[test]
    fn other_syntax_errors_stop_after_the_duplicates_before_them() {
        let src = "[a]\nb = 1\nb = 2\n[c\n";
        let c = check(src);
        assert!(c.text.is_none());
        let l = lines(src);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].starts_with("3:1: a.b: set twice"), "{l:?}");
        assert!(l[1].contains("malformed TOML"), "{l:?}");
    }
}
