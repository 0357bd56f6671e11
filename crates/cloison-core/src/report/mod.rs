//! `cloison report`: journal entries in, one self-contained HTML page out, for people who
//! are not network engineers (a mayor, the council, the DPO). Pure: the edge runs
//! `journalctl -o json` and feeds its lines to a `Digest`, then `render` writes the page.
//!
//! - `journal`: one entry of `journalctl -o json`.
//! - `digest`: the figures of a period (sums of what the entries say, bounded).
//! - `verify`: the `verify_passed` / `verify_failed` contract.
//! - `catalog`: what each kind means, from systemd/cloison.catalog.
//! - `html`: `Out`, the only way text gets into the page (escaped), and formatting.
//! - `render`, `svg`, `text`: the page, its two drawings, its words in French and English.
//!
//! The page holds no script and loads nothing: inline CSS and SVG only, printable on A4.
//! It shows nothing the entries do not say (headers only, like the alerts).

mod catalog;
mod digest;
mod html;
mod journal;
mod render;
mod svg;
mod text;
mod verify;

use std::fmt;
use std::str::FromStr;

pub use catalog::{CATALOG, Explanation, explain};
pub use digest::{Digest, MAX_CHANGES, MAX_SOURCES, MAX_VERIFY_RUNS, Route, Source, Tally};
pub use journal::{Entry, EntryError, REALTIME};
pub use render::render;
pub use verify::{Expected, Failure, PairResult, RESULT_VERSION, VerifyResult, VerifyRun};

use crate::config::Config;
use crate::hash::Hash;

/// The report's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        match s {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            _ => Err(format!("`{s}` is not a report language; use `fr` or `en`")),
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        })
    }
}

/// What the page is about, besides the journal's figures.
pub struct Report<'a> {
    pub lang: Lang,
    pub config: &'a Config,
    /// The configuration file, as given (`/etc/cloison/cloison.toml`).
    pub config_path: &'a str,
    pub config_hash: &'a Hash,
    /// When the report is made, microseconds since the epoch.
    pub generated: u64,
    /// The local time's offset from UTC, in seconds, at a moment (microseconds since the
    /// epoch): the edge asks the system's time zone, tests pass a constant.
    pub utc_offset: &'a dyn Fn(u64) -> i32,
}

/// The period `--since` names: `30d`, `12h`, `2w`, `90m`. Microseconds.
pub fn parse_since(s: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "`{s}` is not a period; write it like `30d` (days), `2w` (weeks), `12h` (hours) or `90m` (minutes)"
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(err()),
    };
    if n == 0 {
        return Err(format!("`{s}` is an empty period; give at least `1h`"));
    }
    n.checked_mul(secs)
        .and_then(|t| t.checked_mul(1_000_000))
        .filter(|us| *us <= 100 * 366 * 86_400 * 1_000_000)
        .ok_or_else(|| format!("`{s}` is longer than a century"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_since("30d"), Ok(30 * 86_400 * 1_000_000));
        assert_eq!(parse_since("2w"), Ok(14 * 86_400 * 1_000_000));
        assert_eq!(parse_since("12h"), Ok(12 * 3600 * 1_000_000));
        assert_eq!(parse_since("90m"), Ok(90 * 60 * 1_000_000));
        assert!(parse_since("30").unwrap_err().contains("`30d`"));
        assert!(parse_since("0d").unwrap_err().contains("empty"));
        assert!(parse_since("99999999999d").unwrap_err().contains("century"));
        assert!(parse_since("d").is_err());
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
        assert!("de".parse::<Lang>().is_err());
    }
}
