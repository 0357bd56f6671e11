//! Telling systemd how the daemon is doing (sd_notify), and the watchdog: systemd gets
//! `WATCHDOG=1` only while every loop that could stall has shown a sign of life
//! recently, so a stuck capture or drift loop gets the service restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        notify(&[NotifyState::Reloading, now]);
    } else {
        notify(&[NotifyState::Reloading]);
    }
}

pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    notify(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping; the ruleset stays in place"),
    ]);
}

pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

fn notify(states: &[NotifyState<'_>]) {
    // Without NOTIFY_SOCKET (not under systemd) this does nothing.
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(cause = %e, "cannot notify systemd");
    }
}

/// The watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Signs of life from the loops, as milliseconds since the daemon started.
#[derive(Debug)]
pub struct Heartbeats {
    start: Instant,
    beats: Vec<(&'static str, AtomicU64)>,
}

/// One loop's handle to its heartbeat.
#[derive(Debug, Clone)]
pub struct Beat {
    hearts: Arc<Heartbeats>,
    index: usize,
}

impl Heartbeats {
    pub fn new(names: &[&'static str]) -> Arc<Heartbeats> {
        Arc::new(Heartbeats {
            start: Instant::now(),
            beats: names.iter().map(|n| (*n, AtomicU64::new(0))).collect(),
        })
    }

    pub fn beat(self: &Arc<Self>, name: &str) -> Beat {
        let index = self
            .beats
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown heartbeat {name}"));
        Beat {
            hearts: Arc::clone(self),
            index,
        }
    }

    /// The loops silent for longer than `limit`.
    pub fn stalled(&self, limit: Duration) -> Vec<&'static str> {
        let now = millis(self.start.elapsed());
        self.beats
            .iter()
            .filter(|(_, at)| now.saturating_sub(at.load(Ordering::Relaxed)) > millis(limit))
            .map(|(n, _)| *n)
            .collect()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Marks a loop that is not running (so its silence is not a stall).
const RETIRED: u64 = u64::MAX;

impl Beat {
    pub fn retire(&self) {
        self.hearts.beats[self.index]
            .1
            .store(RETIRED, Ordering::Relaxed);
    }

    pub fn now(&self) {
        let ms = millis(self.hearts.start.elapsed());
        self.hearts.beats[self.index].1.store(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_loop_is_reported() {
        let h = Heartbeats::new(&["capture", "drift"]);
        let capture = h.beat("capture");
        let drift = h.beat("drift");
        capture.now();
        drift.now();
        assert!(h.stalled(Duration::from_secs(5)).is_empty());
        std::thread::sleep(Duration::from_millis(30));
        capture.now();
        assert_eq!(h.stalled(Duration::from_millis(20)), ["drift"]);
    }
}
