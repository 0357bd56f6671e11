//! `cloison report`: runs `journalctl -o json` over the period, feeds its lines to the
//! pure `cloison_core::report` (digest, then render) and writes the page. The only I/O
//! here: the journal, the clock, the time zone, the output file.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use cloison_core::alert::SYSLOG_IDENTIFIER;
use cloison_core::report::{self, Digest, EntryError, Lang, Report};

use crate::cli::Cli;
use crate::daemon::supervisor::hostname;

/// What `cloison report` was asked for.
pub struct Options<'a> {
    pub since: &'a str,
    pub lang: &'a str,
    pub output: &'a Path,
    pub directory: Option<&'a Path>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--since: {0}")]
    Since(String),
    #[error("--lang: {0}")]
    Lang(String),
    #[error("cannot run journalctl (install systemd's journalctl)")]
    JournalctlSpawn(#[source] std::io::Error),
    #[error("cannot read journalctl's output")]
    JournalctlRead(#[source] std::io::Error),
    #[error("journalctl failed ({status}): {stderr}")]
    JournalctlFailed {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("journalctl printed something unexpected")]
    Entry(#[from] EntryError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn run(cli: &Cli, opts: &Options<'_>) -> anyhow::Result<ExitCode> {
    let loaded = match super::load(cli) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let lang: Lang = opts.lang.parse().map_err(ReportError::Lang)?;
    let period = report::parse_since(opts.since).map_err(ReportError::Since)?;
    let now = now_us();
    let since = now.saturating_sub(period);
    let router = loaded.config.router.name.clone().unwrap_or_else(hostname);

    let mut digest = Digest::new(&router, since, now);
    read_journal(&mut digest, opts.directory)?;

    let config_path = loaded.path.display().to_string();
    let page = report::render(
        &Report {
            lang,
            config: &loaded.config,
            config_path: &config_path,
            config_hash: &loaded.hash,
            generated: now,
            utc_offset: &local_offset,
        },
        &digest,
    );
    write_page(opts.output, &page)?;
    if opts.output != Path::new("-") {
        let verify = match digest.latest_verify() {
            Some(run) if run.passed => "latest check passed",
            Some(_) => "latest check FAILED",
            None => "no check in the period",
        };
        println!(
            "{}: {} alerts, {} rule changes, {verify} (router {router}, last {})",
            opts.output.display(),
            digest.alert_entries(),
            digest.change_counts.values().sum::<u64>(),
            opts.since,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `journalctl -o json` over the digest's period, line by line into the digest.
fn read_journal(digest: &mut Digest, directory: Option<&Path>) -> Result<(), ReportError> {
    let mut cmd = Command::new("journalctl");
    cmd.args([
        "-o",
        "json",
        "--all",
        "--quiet",
        "--no-pager",
        "-t",
        SYSLOG_IDENTIFIER,
    ])
    .arg(format!("--since=@{}", digest.since / 1_000_000))
    .arg(format!("--until=@{}", digest.until.div_ceil(1_000_000)));
    if let Some(dir) = directory {
        cmd.arg("--directory").arg(dir);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ReportError::JournalctlSpawn)?;
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut parsed = Ok(());
    for (i, line) in stdout.lines().enumerate() {
        let line = line.map_err(ReportError::JournalctlRead)?;
        if let Err(e) = digest.add_line(&line, i + 1) {
            parsed = Err(e);
            break;
        }
    }
    // Stop journalctl if the lines stopped making sense; reap it either way.
    if parsed.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(ReportError::JournalctlRead)?;
    let stderr = errors.join().unwrap_or_default();
    parsed?;
    if !status.success() {
        return Err(ReportError::JournalctlFailed {
            status,
            stderr: stderr.trim().to_owned(),
        });
    }
    // Hints (not allowed to read the system's journal...) are for the user to see.
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        eprintln!("journalctl: {line}");
    }
    Ok(())
}

/// The local time's offset from UTC at a moment, from the system's time zone.
fn local_offset(us: u64) -> i32 {
    let Ok(t) = libc::time_t::try_from(us / 1_000_000) else {
        return 0;
    };
    // SAFETY: localtime_r only writes the `tm` it is given; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    } else {
        0
    }
}

/// Writes the page whole: into a temporary file next to it, then renamed, so a reader
/// never sees half a report; `-` is standard output.
fn write_page(path: &Path, page: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(page.as_bytes())
            .and_then(|()| out.flush())
            .map_err(err);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, page).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.html");
        write_page(&path, "<p>one</p>").unwrap();
        write_page(&path, "<p>two</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<p>two</p>");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        let missing = dir.path().join("no/such/dir/r.html");
        let err = write_page(&missing, "x").unwrap_err().to_string();
        assert!(err.contains("no/such/dir/r.html"), "{err}");
    }

    #[test]
    fn an_unreadable_journal_is_an_error_with_journalctls_words() {
        let mut d = Digest::new("r", 0, now_us());
        let err =
            read_journal(&mut d, Some(Path::new("/nonexistent/cloison-test-journal"))).unwrap_err();
        match err {
            ReportError::JournalctlFailed { stderr, .. } => {
                assert!(
                    stderr.contains("/nonexistent/cloison-test-journal"),
                    "{stderr}"
                );
            }
            other => panic!("{other:?}"),
        }
        // An empty directory is an empty journal: nothing to report, no error.
        let empty = tempfile::tempdir().unwrap();
        read_journal(&mut d, Some(empty.path())).unwrap();
        assert_eq!(d.alert_entries(), 0);
    }
}
