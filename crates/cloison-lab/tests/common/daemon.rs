//! The rig (lab + private journald + `cloison run` as systemd would), as the tests use it.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

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

/// A rig for config/lab.toml with its daemon started and ready.
#[allow(dead_code)]
pub fn started() -> Setup {
    let mut s = setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    s
}

/// A journal entry's field, which must be there.
#[allow(dead_code)]
pub fn field<'a>(e: &'a Value, name: &str) -> &'a str {
    e[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {e}"))
}

/// The first entry of `event` that satisfies `pred`, waiting up to 5 s.
#[allow(dead_code)]
pub fn find(s: &Setup, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(e) = s.events(event).into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no matching {event} entry; entries: {:#?}\ndaemon log:\n{}",
            s.events(event),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
