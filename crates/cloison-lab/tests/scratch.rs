mod common;
use std::time::Duration;
#[test]
#[ignore]
fn scratch_lab() {
    let mut s = common::daemon::setup();
    s.start();
    s.wait_notify("READY=1", Duration::from_secs(30));
    let info = format!("{} {}\n", s.lab.id(), s.journal.journal_dir().display());
    std::fs::write("/tmp/scratch_lab", info).unwrap();
    let _ = std::fs::remove_file("/tmp/scratch_stop");
    for _ in 0..3600 {
        if std::path::Path::new("/tmp/scratch_stop").exists() { break; }
        std::thread::sleep(Duration::from_secs(1));
    }
}
