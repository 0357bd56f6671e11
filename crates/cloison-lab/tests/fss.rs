//! Forward Secure Sealing, as docs/fleet.md sets it up on a box: persistent storage,
//! `Seal=yes`, keys made with `journalctl --setup-keys`. The daemon runs in the lab and
//! alerts into that sealed journal; once the file is closed, `journalctl --verify` with
//! the verification key passes on it, and fails after one byte of an alert's field is
//! changed, or an alert's timestamp is moved by one microsecond (which the journal's
//! hashes alone do not cover), or with another key. Real journald, real daemon, real
//! journalctl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cloison_lab::Reach;
use cloison_lab::journal::{JournalOptions, random_id};
use cloison_lab::rig::Rig;
use common::{require_root, text};

/// `journalctl --verify` on one file: (passed, what it said).
fn verify(file: &Path, key: Option<&str>) -> (bool, String) {
    let mut c = Command::new("journalctl");
    c.arg(format!("--file={}", file.display())).arg("--verify");
    if let Some(k) = key {
        c.arg(format!("--verify-key={k}"));
    }
    let out = c.output().expect("run journalctl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A copy of `file` next to it, for one tampering.
fn copy(file: &Path, name: &str) -> PathBuf {
    let to = file.with_file_name(name);
    std::fs::copy(file, &to).unwrap();
    to
}

fn find(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    hay.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_sealed_journal_of_alerts_shows_any_alteration() {
    if !require_root("a_sealed_journal_of_alerts_shows_any_alteration") {
        return;
    }
    let storage = tempfile::tempdir().unwrap();
    let machine_id = random_id();
    let text_config = std::fs::read_to_string(common::LAB_TOML).unwrap();
    let config = cloison_core::config::parse(&text_config, "lab.toml").unwrap();
    let mut rig = Rig::with_journal(
        &config,
        &text_config,
        &common::programs(),
        JournalOptions {
            hostname: Some("mairie-sealed".into()),
            machine_id: Some(machine_id.clone()),
            persistent: Some(storage.path().to_owned()),
            seal_every: Some(Duration::from_secs(10)),
        },
    )
    .unwrap_or_else(|e| panic!("{e:#?}"));
    let key = rig
        .journal
        .verification_key()
        .expect("journalctl --setup-keys printed a verification key");
    rig.start();
    rig.wait_notify("READY=1", Duration::from_secs(30));
    assert_eq!(rig.kiosk_to_smb(), Reach::TimedOut);
    let alerts = rig.wait_event("cross_segment", Duration::from_secs(10));
    assert_eq!(alerts[0]["CLOISON_SRC_IP"], "192.168.20.15");
    assert_eq!(alerts[0]["_HOSTNAME"], "mairie-sealed");
    assert_eq!(alerts[0]["_MACHINE_ID"], machine_id.as_str());

    // Closing the file writes its last seal.
    assert_eq!(rig.stop(Duration::from_secs(10)).unwrap(), Some(0));
    rig.journal.stop();
    let file = storage.path().join(&machine_id).join("system.journal");
    let header = Command::new("journalctl")
        .arg(format!("--file={}", file.display()))
        .arg("--header")
        .output()
        .unwrap();
    let header = String::from_utf8_lossy(&header.stdout);
    assert!(header.contains("SEALED"), "a sealed file:\n{header}");
    assert!(header.contains("State: OFFLINE"), "closed:\n{header}");
    let listed = Command::new("journalctl")
        .arg(format!("--file={}", file.display()))
        .args(["-o", "json", "CLOISON_EVENT=cross_segment"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("\"CLOISON_ROUTER\":\"mairie-lab\""),
        "the sealed file holds cloison's alerts: {}",
        text(&listed)
    );

    let (ok, said) = verify(&file, Some(&key));
    assert!(ok, "the intact sealed journal verifies: {said}");
    let (ok, said) = verify(&file, None);
    assert!(!ok, "a sealed journal asks for its key: {said}");
    let wrong = format!(
        "{}{}",
        if key.starts_with('0') { '1' } else { '0' },
        &key[1..]
    );
    let (ok, said) = verify(&file, Some(&wrong));
    assert!(!ok, "another key does not verify it: {said}");

    // One byte of an alert's field: the kiosk's address becomes another host's.
    let a = copy(&file, "tampered-field.journal");
    let mut bytes = std::fs::read(&a).unwrap();
    let at = find(&bytes, b"CLOISON_SRC_IP=192.168.20.15");
    assert_eq!(at.len(), 1, "one data object for the field");
    let last = at[0] + b"CLOISON_SRC_IP=192.168.20.15".len() - 1;
    bytes[last] = b'6';
    std::fs::write(&a, &bytes).unwrap();
    let (ok, said) = verify(&a, Some(&key));
    assert!(!ok, "an altered field is detected: {said}");

    // An alert moved by one microsecond: only the seal covers timestamps.
    let realtime: u64 = {
        let out = Command::new("journalctl")
            .arg(format!("--file={}", file.display()))
            .args(["-o", "export", "CLOISON_EVENT=cross_segment", "-n", "1"])
            .output()
            .unwrap();
        let export = String::from_utf8_lossy(&out.stdout);
        export
            .lines()
            .find_map(|l| l.strip_prefix("__REALTIME_TIMESTAMP="))
            .unwrap()
            .parse()
            .unwrap()
    };
    let b = copy(&file, "tampered-time.journal");
    let mut bytes = std::fs::read(&b).unwrap();
    // An ENTRY object: type 3 at its start, seqnum at +16, realtime at +24.
    let at: Vec<usize> = find(&bytes, &realtime.to_le_bytes())
        .into_iter()
        .filter(|&i| i >= 24 && bytes[i - 24] == 3)
        .collect();
    assert_eq!(at.len(), 1, "one entry object with that time");
    bytes[at[0]..at[0] + 8].copy_from_slice(&(realtime + 1).to_le_bytes());
    std::fs::write(&b, &bytes).unwrap();
    let (ok, said) = verify(&b, Some(&key));
    assert!(!ok, "a moved timestamp is detected with the key: {said}");
}
