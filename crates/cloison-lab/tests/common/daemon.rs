//! The rig (lab + private journald + `cloison run` as systemd would), as the tests use it.

use std::path::Path;

#[allow(unused_imports)]
pub use cloison_lab::rig::Rig as Setup;
#[allow(unused_imports)]
pub use cloison_lab::rig::TIMEOUT;

/// A rig for config/lab.toml, with this test build's cloison binary.
pub fn setup() -> Setup {
    let config = cloison::config_file::load(Path::new(super::LAB_TOML))
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    Setup::new(&config, Path::new(super::LAB_TOML), &super::programs())
        .unwrap_or_else(|e| panic!("rig: {e:#?}"))
}

/// The lab's configuration with `from` replaced by `to` (panics if `from` is absent).
pub fn lab_config_with(from: &str, to: &str) -> String {
    let src = std::fs::read_to_string(super::LAB_TOML).unwrap();
    assert!(src.contains(from), "config/lab.toml has no {from:?}");
    src.replacen(from, to, 1)
}
