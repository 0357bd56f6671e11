//! Every invalid fixture under tests/config/invalid/ yields exactly the located errors
//! written at its end (`# expect: line:col: key: message`), in order, and nothing else.
//! Fixtures are read as bytes, as `cloison check` reads a file (one is not UTF-8).

use std::fs;
use std::path::Path;

use cloison_core::config;

#[test]
fn every_invalid_fixture_reports_exactly_its_expected_errors() {
    let dir = Path::new("tests/config/invalid");
    let mut checked = 0;
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&path).expect("read fixture");
        let source = String::from_utf8_lossy(&bytes);
        let expected: Vec<String> = source
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|l| format!("{name}:{l}"))
            .collect();
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let diags = match config::parse_bytes(&bytes, &name) {
            Ok(_) => panic!("{name} was accepted but must be rejected"),
            Err(d) => d,
        };
        assert_eq!(diags.lines(), expected, "errors reported for {name}");
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} fixtures found");
}

#[test]
fn shipped_examples_are_valid() {
    let mut names = vec!["cloison.toml".to_owned(), "lab.toml".to_owned()];
    for e in fs::read_dir("../../config/examples").expect("config/examples") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            names.push(format!("examples/{name}"));
        }
    }
    assert!(names.len() >= 5, "{names:?}");
    for name in &names {
        let path = Path::new("../../config").join(name);
        let source = fs::read_to_string(&path).expect("read the shipped example");
        if let Err(e) = config::parse(&source, name) {
            panic!("{}: {e}", path.display());
        }
    }
}
