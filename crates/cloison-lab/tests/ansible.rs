//! The Ansible example (contrib/ansible) run for real with Debian's ansible-core against a
//! box of the lab: the playbook runs inside the router's network namespace
//! (`-c local`), installs the real .deb, writes the configuration from inventory
//! variables (validated by `cloison check`), applies it with `cloison reload --confirm`
//! to the running daemon, verifies, confirms, and rolls back when the verify step fails.
//!
//! The package is really installed with dpkg, but into a throwaway layer: the playbook's
//! mount namespace has overlays on /etc, /usr and /var whose upper layers live in the
//! test's temporary directory, so nothing is written to the machine's system. /run is
//! shared, which is how the installed `cloison` reaches the rig's daemon and its
//! configuration file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cloison_lab::Node;
use common::daemon::Setup;
use common::{repo, require_root, text};
use serde_json::{Value, json};

/// The lab's configuration (config/lab.toml) as inventory variables.
fn lab_vars() -> Value {
    json!({
        "cloison_router": {"name": "mairie-lab", "ssh_port": 22},
        "cloison_uplinks": {
            "isp": {"interface": "wan0", "gateway": "192.168.1.254", "address": "192.168.1.2/24",
                    "gateway6": "2001:db8:1::1", "address6": "2001:db8:1::2/64"},
            "laposte": {"interface": "wan1", "gateway": "10.30.0.1", "address": "10.30.0.2/24",
                        "gateway6": "2001:db8:30::1", "address6": "2001:db8:30::2/64"}
        },
        "cloison_segments": {
            "mairie": {"interface": "seg-mairie", "address": "192.168.10.1/24", "address6": "fd00:10::1/64",
                       "uplink": "isp", "services": ["dns", "dhcp", "ntp", "ping"], "management": true},
            "kiosk": {"interface": "seg-kiosk", "address": "192.168.20.1/24", "address6": "fd00:20::1/64",
                      "uplink": "laposte", "services": ["dns", "dhcp"]},
            "poste": {"interface": "seg-poste", "address": "192.168.30.1/24", "address6": "fd00:30::1/64",
                      "uplink": "laposte", "services": ["dns", "dhcp", "ping"]}
        },
        "cloison_allows": [
            {"from": "mairie", "to": "kiosk", "proto": "tcp", "ports": [5900],
             "comment": "helpdesk reaches the kiosk"}
        ],
        "cloison_forbids": [
            {"from": ["kiosk", "poste"], "to": "mairie"},
            {"from": "kiosk", "to": "poste"}
        ],
        "cloison_alerts": {"summary_every": "10s", "max_per_minute": 120},
        "cloison_verify_settings": {"internet": "198.51.100.10", "internet6": "2001:db8:100::10",
                                    "targets": {"mairie": ["192.168.10.5", "fd00:10::5"]}}
    })
}

/// Runs the playbook in the router's namespace over a throwaway system layer, then
/// reports what dpkg and the group database say there.
struct Playbook<'a> {
    rig: &'a Setup,
    tmp: PathBuf,
    deb: PathBuf,
}

/// Mounts the overlays, runs ansible-playbook, then prints the installed version and the
/// cloison group as the box sees them (after a `--- box` line).
const RUN: &str = r#"set -e
t=$1; shift
for d in etc usr var; do
  mkdir -p "$t/upper/$d" "$t/work/$d"
  mount -t overlay "cloison-ansible-$d" -o "lowerdir=/$d,upperdir=$t/upper/$d,workdir=$t/work/$d" "/$d"
done
set +e
ansible-playbook "$@"
rc=$?
echo "--- box"
dpkg-query -W -f='version=${Version} status=${Status}\n' cloison 2>/dev/null || echo "version=none"
getent group cloison || echo "no cloison group"
exit $rc
"#;

impl Playbook<'_> {
    /// Runs site.yml with `vars` on top of the lab's variables; the outcome and output.
    fn run(&self, run: &str, vars: Value) -> (bool, String) {
        let mut all = lab_vars();
        let base = json!({
            "cloison_deb": self.deb,
            "cloison_bin": "/usr/sbin/cloison",
            "cloison_config_path": self.rig.config_path(),
            "cloison_environment": {
                "CLOISON_RUNTIME_DIR": self.rig.runtime_dir(),
                "CLOISON_STATE_DIR": self.rig.state_dir(),
            },
            "cloison_confirm_seconds": 120,
        });
        for extra in [base, vars] {
            for (k, v) in extra.as_object().unwrap() {
                all[k] = v.clone();
            }
        }
        // One system layer for every run, as one box keeps what earlier runs installed.
        let layer = self.tmp.join("box");
        let run_dir = self.tmp.join(format!("run-{run}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let vars_file = run_dir.join("vars.json");
        std::fs::write(&vars_file, all.to_string()).unwrap();
        let inventory = run_dir.join("inventory.yml");
        std::fs::write(
            &inventory,
            "cloison:\n  hosts:\n    box:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n      ansible_become: false\n",
        )
        .unwrap();
        let ansible_tmp = run_dir.join("ansible");
        let out: Output = self
            .rig
            .lab
            .command(Node::Router, "unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                RUN,
                "sh",
            ])
            .arg(&layer)
            .arg("-i")
            .arg(&inventory)
            .arg(repo("contrib/ansible/site.yml"))
            .arg("-e")
            .arg(format!("@{}", vars_file.display()))
            .env("ANSIBLE_HOME", &ansible_tmp)
            .env("ANSIBLE_LOCAL_TEMP", ansible_tmp.join("tmp"))
            .env("ANSIBLE_REMOTE_TEMP", ansible_tmp.join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env("ANSIBLE_LOCALHOST_WARNING", "0")
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            .env_remove("ANSIBLE_CONFIG")
            .output()
            .expect("run ansible-playbook");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// The daemon's view: (config hash, a confirm pending).
fn daemon(rig: &Setup) -> (String, bool) {
    let out = rig.cloison(&["status", "--json"]);
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (
        v["daemon"]["config_hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        !v["daemon"]["confirm_pending_secs"].is_null(),
    )
}

fn sha256(path: &Path) -> String {
    cloison_core::hash::Hash::of(&std::fs::read(path).unwrap()).to_string()
}

/// The play recap's `changed=N` for the box.
fn changed(output: &str) -> u32 {
    output
        .lines()
        .find(|l| l.starts_with("box "))
        .and_then(|l| l.split("changed=").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no recap in:\n{output}"))
}

#[test]
fn the_ansible_example_installs_applies_confirms_and_rolls_back() {
    if !require_root("the_ansible_example_installs_applies_confirms_and_rolls_back") {
        return;
    }
    cloison_lab::packages::ensure(&[
        ("/usr/bin/ansible-playbook", "ansible-core"),
        (
            "/usr/lib/python3/dist-packages/apt/__init__.py",
            "python3-apt",
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let copy = tempfile::tempdir().unwrap();
    let deb =
        cloison_lab::deb::fresh_copy(&repo(""), copy.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut rig = common::daemon::setup();
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    let tmp = tempfile::tempdir().unwrap();
    let play = Playbook {
        rig: &rig,
        tmp: tmp.path().to_owned(),
        deb,
    };
    let (first_hash, _) = daemon(&rig);

    // A: install, write (summaries every 20 s instead of 10), reload, prove the isolation
    // with the installed `cloison verify` against the configuration on trial, confirm.
    let (ok, out) = play.run(
        "a",
        json!({"cloison_verify": true,
               "cloison_alerts": {"summary_every": "20s", "max_per_minute": 120}}),
    );
    assert!(ok, "{out}");
    let record = std::fs::read_to_string(rig.state_dir().join("verify-last.json"))
        .unwrap_or_else(|e| panic!("the verify step recorded no run ({e}):\n{out}"));
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["success"], true, "{record}\n{out}");
    assert_eq!(
        record["config_hash"],
        sha256(&rig.config_path()),
        "it verified the configuration on trial"
    );
    let box_view = out.split("--- box").nth(1).unwrap_or_default();
    assert!(
        box_view.contains(&format!("version={}", env!("CARGO_PKG_VERSION")))
            && box_view.contains("install ok installed"),
        "the package is installed on the box:\n{out}"
    );
    assert!(
        box_view.contains("cloison:x:"),
        "its postinst made the cloison group:\n{out}"
    );
    let a_hash = sha256(&rig.config_path());
    assert_ne!(a_hash, first_hash);
    assert_eq!(
        daemon(&rig),
        (a_hash.clone(), false),
        "the daemon runs the new file, confirmed:\n{out}"
    );
    let text_a = std::fs::read_to_string(rig.config_path()).unwrap();
    assert!(text_a.contains("summary_every = \"20s\""), "{text_a}");
    assert_eq!(
        std::fs::read_to_string(rig.state_dir().join("last-good.toml")).unwrap(),
        text_a,
        "confirmed: the last known good"
    );
    // The template writes the lab's policy faithfully: the same ruleset as config/lab.toml.
    let plan = |path: &Path| {
        let out = Command::new(&rig.programs().cloison)
            .args(["plan", "-c"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    };
    assert!(
        plan(&rig.config_path()) == plan(&repo("config/lab.toml")),
        "the rendered configuration plans the same ruleset as config/lab.toml:\n{text_a}"
    );

    // B: a change whose verification fails is rolled back: the file and the daemon.
    let (ok, out) = play.run(
        "b",
        json!({"cloison_verify": true, "cloison_verify_argv": ["/bin/false"],
               "cloison_alerts": {"summary_every": "30s", "max_per_minute": 120}}),
    );
    assert!(!ok, "a failed verify fails the play:\n{out}");
    assert!(
        out.contains("Prove the isolation")
            && out.contains("the previous configuration was put back and applied"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(rig.config_path()).unwrap(),
        text_a,
        "the previous file is back"
    );
    assert_eq!(
        daemon(&rig),
        (a_hash.clone(), false),
        "the daemon runs the previous configuration again, nothing pending"
    );

    // C: the same package and configuration again change nothing and reload nothing.
    let applied_before = rig.events("config_applied").len();
    let (ok, out) = play.run(
        "c",
        json!({"cloison_verify": false,
               "cloison_alerts": {"summary_every": "20s", "max_per_minute": 120}}),
    );
    assert!(ok, "{out}");
    assert_eq!(changed(&out), 0, "{out}");
    assert_eq!(rig.events("config_applied").len(), applied_before);

    // D: an invalid configuration never replaces the file (`cloison check` refuses it).
    let mut segments = lab_vars()["cloison_segments"].clone();
    segments["kiosk"]["address"] = json!("192.168.20.0/24");
    let (ok, out) = play.run(
        "d",
        json!({"cloison_verify": false, "cloison_segments": segments}),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("192.168.20.0/24"),
        "cloison check's message:\n{out}"
    );
    assert_eq!(std::fs::read_to_string(rig.config_path()).unwrap(), text_a);
    assert_eq!(daemon(&rig), (a_hash, false));
}
