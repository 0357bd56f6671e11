//! Located configuration errors: where (file:line:column and the TOML key), what is
//! wrong, and how to fix it. Owns rendering and "did you mean" hints; knows nothing of
//! what a valid configuration is.

use std::fmt;
use std::ops::Range;

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the source the problem points at.
    pub span: Range<usize>,
    /// The key as the user wrote it, with its value when that helps
    /// (`segments.kiosk.vlan = 4095`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, key: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one file, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics {
    /// How the file is named in messages (usually its path).
    pub origin: String,
    /// Source text, kept to turn byte offsets into line:column.
    source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(origin: impl Into<String>, source: &str, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by_key(|d| (d.span.start, d.span.end));
        items.dedup();
        Diagnostics {
            origin: origin.into(),
            source: source.to_owned(),
            items,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// One line per problem: `origin:line:col: key: message`.
    pub fn lines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|d| {
                let (line, col) = self.line_col(d.span.start);
                if d.key.is_empty() {
                    format!("{}:{line}:{col}: {}", self.origin, d.message)
                } else {
                    format!("{}:{line}:{col}: {}: {}", self.origin, d.key, d.message)
                }
            })
            .collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            writeln!(f, "{line}")?;
        }
        write!(
            f,
            "{}: {} error{} found; nothing was applied",
            self.origin,
            self.items.len(),
            if self.items.len() == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Diagnostics {}

pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The closest candidate to `word`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or nothing.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 999), (3, 1));
    }

    #[test]
    fn suggests_near_misses_only() {
        let keys = ["vlan", "interface", "address", "address6"];
        assert_eq!(did_you_mean("vlna", keys), Some("vlan"));
        assert_eq!(did_you_mean("adress", keys), Some("address"));
        assert_eq!(did_you_mean("colour", keys), None);
    }
}
