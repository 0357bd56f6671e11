//! Start-up: which configuration to run (the file, or the last known good one when the
//! file is refused), applying it fail-closed (waiting for interfaces that appear late at
//! boot), and recording it. With no configuration at all, forwarding goes off and the
//! daemon stops: nothing is forwarded without rules of cloison's in place. The example the
//! package installs, unedited, is refused before anything is touched: installed but not
//! yet configured, the box keeps routing as it did.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cloison_core::alert::{Alert, Sink};

use super::supervisor::{Running, hostname};
use super::{DaemonError, Options, changes, notify, state};
use crate::apply::{self, ApplyError};
use crate::config_file;
use crate::kernel::{Kernel, LinkError};

/// How long start-up waits for an interface the configuration names (at boot, the trunk
/// NIC may appear after cloison starts; the ruleset is in place meanwhile, forwarding off).
const WAIT_FOR_INTERFACES: Duration = Duration::from_secs(60);

/// Chooses, applies and records the configuration to run.
pub async fn start<K: Kernel, S: Sink>(
    opts: &Options,
    kernel: &K,
    sink: &mut S,
) -> Result<Running, DaemonError> {
    config_file::refuse_untouched_example(&opts.config_path)?;
    let path = opts.config_path.display().to_string();
    let last_good = state::load(&opts.state_dir).unwrap_or_else(|e| {
        tracing::warn!(cause = %e, "ignoring the saved last known good configuration");
        None
    });
    let rolled_back = |hash: &cloison_core::hash::Hash| {
        state::rolled_back(&opts.state_dir)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|r| &r.hash == hash)
    };
    let loaded = config_file::load(&opts.config_path)
        .map_err(|e| e.lines())
        .and_then(|l| match rolled_back(&l.hash) {
            // Rolled back unconfirmed: never applied again by a restart or a reboot.
            Some(rb) => Err(super::supervisor::rolled_back_reason(
                &opts.config_path,
                &rb,
            )),
            None => Ok(l),
        });
    let (running, rejected) = match loaded {
        Ok(l) => (Running::from_file(l), None),
        Err(errors) => {
            let Some(lkg) = &last_good else {
                sink.write(&Alert::config_rejected(
                    &hostname(),
                    &path,
                    &errors,
                    "nothing (no last known good configuration)",
                ));
                // Closed: without rules of ours in place, nothing is forwarded.
                if let Err(e) = apply::close_if_unprotected(kernel) {
                    tracing::error!(cause = %e, "cannot switch forwarding off: this box may forward unfiltered traffic");
                }
                return Err(DaemonError::NoConfig {
                    errors,
                    state_dir: opts.state_dir.clone(),
                });
            };
            let running = Running {
                config: lkg.config.clone(),
                hash: lkg.hash.clone(),
                source: lkg.source.clone(),
                origin: "the last known good configuration",
            };
            (running, Some(errors))
        }
    };
    let router = running.config.router.name.clone().unwrap_or_else(hostname);
    if let Some(errors) = &rejected {
        sink.write(&Alert::config_rejected(
            &router,
            &path,
            errors,
            "the last known good configuration",
        ));
    }

    let applied = apply_waiting_for_interfaces(&running.config, kernel).await?;
    tracing::info!(ruleset = ?applied.ruleset, changes = applied.changes.len(), "configuration applied");
    for n in &applied.notes {
        tracing::info!("{n}");
    }
    if rejected.is_none() {
        if let Err(e) = state::save(&opts.state_dir, &running.source) {
            tracing::warn!(cause = %e, "cannot save the last known good configuration");
        }
    }
    let previous = last_good.as_ref();
    sink.write(&Alert::config_applied(
        &router,
        &path,
        previous.map(|l| l.hash.as_str()),
        running.hash.as_str(),
        &changes::summary(previous.map(|l| &l.config), &running.config),
    ));
    Ok(running)
}

async fn apply_waiting_for_interfaces<K: Kernel>(
    config: &cloison_core::config::Config,
    kernel: &K,
) -> Result<apply::Applied, DaemonError> {
    let deadline = Instant::now() + WAIT_FOR_INTERFACES;
    loop {
        match apply::apply(config, kernel, &BTreeMap::new()).await {
            Err(ApplyError::Links {
                source: LinkError::Missing(name),
                ..
            }) if Instant::now() < deadline => {
                let line = format!(
                    "waiting for interface {name}; the ruleset is in place, forwarding stays off"
                );
                notify::status(&line);
                tracing::warn!("{line}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other.map_err(DaemonError::Apply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::Recorder;
    use cloison_core::alert::Alert;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn options(dir: &std::path::Path) -> Options {
        Options {
            config_path: dir.join("cloison.toml"),
            state_dir: dir.join("state"),
            runtime_dir: dir.join("run"),
        }
    }

    #[test]
    fn the_untouched_example_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        std::fs::write(
            &opts.config_path,
            include_bytes!("../../../../config/cloison.toml"),
        )
        .unwrap();
        // Even with a last known good configuration to fall back to: the admin put the
        // example back, which is not a configuration for this box.
        state::save(&opts.state_dir, include_str!("../../../../config/lab.toml")).unwrap();
        let kernel = Recorder::new();
        let mut sink: Vec<Alert> = Vec::new();
        match run(start(&opts, &kernel, &mut sink)) {
            Err(DaemonError::UntouchedExample(e)) => {
                assert!(e.to_string().contains("unedited"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            kernel.calls(),
            Vec::<String>::new(),
            "no table, no sysctl, no link"
        );
        assert!(sink.is_empty(), "{sink:?}");
    }

    #[test]
    fn an_edited_example_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path());
        let mut text = include_str!("../../../../config/lab.toml").to_owned();
        text.push_str("# edited\n");
        std::fs::write(&opts.config_path, text).unwrap();
        let kernel = Recorder::new();
        let mut sink: Vec<Alert> = Vec::new();
        run(start(&opts, &kernel, &mut sink)).unwrap();
        assert!(
            !kernel.calls_of(&["apply_ruleset"]).is_empty(),
            "{:?}",
            kernel.calls()
        );
    }
}
