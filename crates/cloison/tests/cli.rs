//! The `cloison` program as an admin runs it, without root: what `check` prints and its
//! exit status for the files a person really writes (values of the wrong type, a table
//! copied and not renamed, a file saved in Latin-1), and what `plan --json` prints.

use std::path::Path;
use std::process::{Command, Output};

fn cloison(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloison"))
        .args(args)
        .env_remove("CLOISON_CONFIG")
        .output()
        .expect("run cloison")
}

fn check(path: &Path) -> (i32, String) {
    let out = cloison(&["check", "-c", path.to_str().expect("UTF-8 path")]);
    (
        out.status.code().expect("exit status"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_mistake_of_a_file_is_located_and_exit_is_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloison.toml");
    std::fs::write(
        &path,
        "[trunk]\ninterface = \"lan0\"\n\n[segments.kiosk]\nvlan = \"30\"\naddress = \"192.168.20.1/24\"\nmanagement = \"yes\"\n\n[segments.mairie]\nvlan = 10\naddress = \"192.168.10.1/24\"\n\n[[allow]]\nfrom = \"mairie\"\nto = \"kiosk\"\nproto = \"tcp\"\nports = [\"5900\"]\n",
    )
    .unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 1, "{err}");
    let p = path.display();
    let want = format!(
        "{p}:5:8: segments.kiosk.vlan = \"30\": expected a whole number, found text in quotes; write it without quotes: `vlan = 30`\n\
         {p}:7:14: segments.kiosk.management = \"yes\": expected true or false, found text in quotes; write it without quotes: `management = true`\n\
         {p}:17:10: [[allow]] #1 ports = [\"5900\"]: expected a list of whole numbers, found text in quotes in it; write it without quotes: `ports = [5900]`\n\
         {p}: 3 errors found; nothing was applied\n"
    );
    assert_eq!(err, want);
}

#[test]
fn a_table_defined_twice_names_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloison.toml");
    std::fs::write(
        &path,
        "[segments.kiosk]\ninterface = \"eth1\"\naddress = \"192.168.20.1/24\"\n\n[segments.kiosk]\ninterface = \"eth2\"\naddress = \"192.168.30.1/24\"\n",
    )
    .unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "{}:5:11: segments.kiosk: defined twice (first at line 1);",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn a_latin1_file_is_invalid_not_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cloison.toml");
    std::fs::write(
        &path,
        b"# R\xe9seau de la mairie\n[segments.a]\ninterface = \"eth1\"\naddress = \"10.0.0.1/24\"\n",
    )
    .unwrap();
    let (code, err) = check(&path);
    assert_eq!(
        code, 1,
        "not UTF-8 is an error of the file (1), not a read error (2): {err}"
    );
    let p = path.display();
    assert!(
        err.starts_with(&format!(
            "{p}:1:4: the file is not UTF-8: byte 0xE9 here (`é` in Latin-1); save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 {p} > {p}.utf8 && mv {p}.utf8 {p}`\n"
        )),
        "{err}"
    );
    // The hint works: converted, the file is valid.
    let converted = Command::new("iconv")
        .args(["-f", "latin1", "-t", "utf-8"])
        .arg(&path)
        .output()
        .expect("iconv (libc-bin)");
    assert!(converted.status.success());
    std::fs::write(&path, converted.stdout).unwrap();
    let (code, err) = check(&path);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_unreadable_file_exits_2() {
    let (code, err) = check(Path::new("/nonexistent/cloison.toml"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("cannot read /nonexistent/cloison.toml"),
        "{err}"
    );
}

#[test]
fn plan_json_is_one_json_document() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/cloison.toml");
    let out = cloison(&["plan", "--json", "-c", example]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("cloison plan --json is not JSON: {e}"));
    assert!(doc["ruleset"]["nftables"].is_array(), "{doc}");
    assert_eq!(doc["ruleset_hash"].as_str().map(str::len), Some(64));
    assert!(doc["links"]["vlans"].is_array());
    assert_eq!(
        doc["sysctls"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(|s| s["key"].as_str()),
        Some("net/ipv6/conf/all/forwarding")
    );
    // The text form still ends with the links and sysctls as nft comments.
    let text = cloison(&["plan", "-c", example]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("\n# ruleset hash ") && text.contains("\n# sysctls (forwarding last)\n"));
}
