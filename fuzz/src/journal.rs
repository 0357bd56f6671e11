//! The `journal` target: what `cloison report` reads, `journalctl -o json` lines (the
//! edge reads them as UTF-8 lines and stops at the first it cannot parse), into a
//! digest of a 30-day period, then the page, for the lab's configuration. Properties:
//! nothing panics; the page stays free of markup the entries could smuggle in (it
//! holds no script and loads nothing).

use std::sync::OnceLock;

use cloison_core::config::Config;
use cloison_core::hash::Hash;
use cloison_core::report::{Digest, Lang, Report, render};

/// The period's end: 2026-04-24 03:06:40 UTC, microseconds. Seeds are moved into it.
pub const UNTIL: u64 = 1_777_000_000_000_000;
/// 30 days, `cloison report`'s default.
pub const PERIOD: u64 = 30 * 86_400 * 1_000_000;

fn config() -> &'static (Config, Hash) {
    static CONFIG: OnceLock<(Config, Hash)> = OnceLock::new();
    CONFIG.get_or_init(|| (cloison_core::testkit::lab_config(), Hash::of(b"lab.toml")))
}

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let router = "mairie-lab";
    let mut digest = Digest::new(router, UNTIL - PERIOD, UNTIL);
    for (i, line) in text.lines().enumerate() {
        if digest.add_line(line, i + 1).is_err() {
            break;
        }
    }
    let (config, hash) = config();
    let lang = if data.len() % 2 == 1 {
        Lang::En
    } else {
        Lang::Fr
    };
    let page = render(
        &Report {
            lang,
            config,
            config_path: "/etc/cloison/cloison.toml",
            config_hash: hash,
            generated: UNTIL,
            utc_offset: &|_| 7200,
        },
        &digest,
    );
    let lower = page.to_ascii_lowercase();
    for smuggled in [
        "<script",
        "<iframe",
        "<img",
        "<object",
        "javascript:",
        " onerror=",
    ] {
        assert!(!lower.contains(smuggled), "the page holds {smuggled}");
    }
}
