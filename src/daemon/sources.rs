//! The threads that feed the daemon's loop: the capture loop (layer-2 evidence).
//! (The NFLOG socket is read by the loop itself, so it can be drained right before each
//! counter reading.) Each runs on its own thread with a
//! short read timeout, beats its heartbeat, and stops when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::alert::event::FlowKey;

/// What the threads send to the daemon's loop.
#[derive(Debug)]
pub enum Event {
    /// Layer-2 findings from the capture, one key per frame.
    Frames(Vec<FlowKey>),
    /// A source stopped working; the daemon logs it and the watchdog sees the silence.
    Failed { source: &'static str, error: String },
}

/// A running source thread.
pub struct Source {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Source {
    pub fn spawn(
        name: &'static str,
        body: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
    ) -> Source {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(flag))
            .expect("spawn a thread");
        Source {
            stop,
            handle: Some(handle),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a source blocks at most before checking whether it must stop.
pub const POLL: Duration = Duration::from_millis(200);
