//! The Debian package, inspected: what it installs and where, the conffile that keeps
//! the operator's configuration across upgrades and removal, its dependency on nftables,
//! maintainer scripts that enable but never start the service, the unit's exposure
//! score, and a packaged binary that validates the packaged configuration.
//! (Installing it on a real Debian system is the VM test's job: tests/vm/run.)

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root: the package is built and the unit read from there.
fn at_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(root).expect("cd to the repository root");
}

fn package() -> PathBuf {
    at_root();
    let find = || {
        std::fs::read_dir("target/debian")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
    };
    if let Some(p) = find() {
        return p;
    }
    // tests/run builds it first; on its own, this test builds it (cargo-deb is installed
    // from crates.io if missing).
    let out = Command::new("debian/build")
        .output()
        .expect("run debian/build");
    assert!(
        out.status.success(),
        "debian/build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    find().expect("debian/build wrote no package")
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_package_installs_what_a_mairie_box_needs() {
    let deb = package();
    assert_eq!(
        dpkg_deb(&["-f"], &deb)
            .lines()
            .find(|l| l.starts_with("Package:")),
        Some("Package: cloison")
    );
    let depends = dpkg_deb(&["-f"], &deb)
        .lines()
        .find(|l| l.starts_with("Depends:"))
        .unwrap_or("")
        .to_owned();
    for dep in ["nftables", "netbase", "procps", "adduser"] {
        assert!(depends.contains(dep), "{dep} missing: {depends}");
    }

    let files = dpkg_deb(&["-c"], &deb);
    for (path, mode) in [
        ("./usr/sbin/cloison", "-rwxr-xr-x"),
        ("./etc/cloison/cloison.toml", "-rw-r--r--"),
        ("./usr/lib/systemd/system/cloison.service", "-rw-r--r--"),
        (
            "./usr/lib/systemd/system/cloison-metrics.service",
            "-rw-r--r--",
        ),
        (
            "./usr/lib/systemd/system/cloison-metrics.timer",
            "-rw-r--r--",
        ),
        ("./usr/share/doc/cloison/fleet.md", "-rw-r--r--"),
        (
            "./usr/share/doc/cloison/examples/prometheus/cloison.rules.yml",
            "-rw-r--r--",
        ),
        (
            "./usr/share/doc/cloison/examples/grafana/cloison-fleet.json",
            "-rw-r--r--",
        ),
        (
            "./usr/share/doc/cloison/examples/ansible/roles/cloison/tasks/main.yml",
            "-rw-r--r--",
        ),
        ("./usr/lib/systemd/catalog/cloison.catalog", "-rw-r--r--"),
        ("./usr/share/man/man8/cloison.8.gz", "-rw-r--r--"),
        ("./usr/share/man/man8/cloison-check.8.gz", "-rw-r--r--"),
        ("./usr/share/doc/cloison/config.md", "-rw-r--r--"),
        ("./usr/share/doc/cloison/alerts.md", "-rw-r--r--"),
    ] {
        let line = files
            .lines()
            .find(|l| l.ends_with(path))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{files}"));
        assert!(line.starts_with(mode), "{path}: {line}");
    }

    // The configuration is a conffile: dpkg keeps the operator's edits on upgrade and
    // removal (only purge deletes it).
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(dir.path().join("DEBIAN"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let conffiles = std::fs::read_to_string(dir.path().join("DEBIAN/conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/cloison/cloison.toml");
    let postinst = std::fs::read_to_string(dir.path().join("DEBIAN/postinst")).unwrap();
    assert!(
        postinst.contains("journalctl --update-catalog"),
        "postinst updates the journal catalog"
    );
    assert!(
        postinst.contains("deb-systemd-helper") && postinst.contains("enable"),
        "the unit is enabled:\n{postinst}"
    );
    // Only the metrics timer (read-only) starts on installation; cloison.service is at
    // most restarted on upgrade, if it ran.
    for line in postinst
        .lines()
        .filter(|l| l.contains("deb-systemd-invoke"))
    {
        assert!(
            !line.contains("cloison.service") || line.contains("try-restart"),
            "installing must not start a firewall on the example configuration: {line}\n{postinst}"
        );
    }
    assert!(
        postinst.contains("addgroup --system --quiet cloison"),
        "postinst creates the cloison group (status readers):\n{postinst}"
    );
    assert!(
        postinst.find("addgroup").unwrap() < postinst.find("deb-systemd").unwrap(),
        "the group exists before any unit that names it starts"
    );
    let postrm = std::fs::read_to_string(dir.path().join("DEBIAN/postrm")).unwrap();
    let commands: Vec<&str> = postrm
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(
        !commands
            .iter()
            .any(|l| l.contains("apply --remove") || l.contains("nft ")),
        "removing the package must not open the wall:\n{postrm}"
    );

    // The packaged binary, unit and configuration.
    let root = dir.path().join("root");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    for name in [
        "cloison-metrics.service",
        "cloison-metrics.timer",
        "cloison.service",
    ] {
        assert_eq!(
            std::fs::read_to_string(root.join("usr/lib/systemd/system").join(name)).unwrap(),
            std::fs::read_to_string(Path::new("systemd").join(name)).unwrap(),
            "{name}"
        );
    }
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/cloison.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("Before=network-pre.target"));
    assert!(
        !unit.lines().any(|l| l.starts_with("ExecStop")),
        "nothing may flush the rules when the service stops"
    );
    let bin = root.join("usr/sbin/cloison");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("cloison "),
        "{out:?}"
    );
    // No harness ships: one program, and no lab among its commands.
    let programs: Vec<&str> = files
        .lines()
        .filter(|l| l.contains("/bin/") || l.contains("/sbin/"))
        .filter(|l| !l.ends_with('/'))
        .collect();
    assert_eq!(programs.len(), 1, "{programs:?}");
    let help = Command::new(&bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("check") && !help.contains("lab"), "{help}");
    let out = Command::new(&bin)
        .arg("check")
        .arg("-c")
        .arg(root.join("etc/cloison/cloison.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the packaged example must validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_unit_exposure_is_at_most_2() {
    at_root();
    for unit in ["systemd/cloison.service", "systemd/cloison-metrics.service"] {
        exposure_at_most_2(unit);
    }
}

fn exposure_at_most_2(unit: &str) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", unit])
        .output()
        .expect("systemd-analyze (package systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        score <= 2.0,
        "{unit}: exposure {score} (goal 2.0 or less): {line}"
    );
}
