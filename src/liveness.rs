//! Liveness: proof that the actor thread still makes progress.
//!
//! Every actor runs on one thread. If anything ever blocked it (a file open
//! that hangs, a computation that does not end), every secret would stop
//! while the HTTP workers, which run on threads of their own, kept
//! answering. So liveness is not "the process answers HTTP" but "the actor
//! system answered a heartbeat recently":
//!
//! * a task on the actor thread sends the StatusActor an `Alive` message
//!   every [`BEAT_EVERY`] and, when it is answered, calls [`Liveness::beat`];
//! * `/health` answers 200 only while the last beat is younger than the
//!   window (`LIVENESS_TIMEOUT`, default 10 s), 503 after (the kubelet, or
//!   compose's healthcheck, then restarts the process);
//! * the status file that `isready` reads carries the time of the last beat
//!   it was written at (rewritten at least every third of the window), so
//!   `isready` fails for a wedged process too;
//! * the systemd `WATCHDOG=1` ping is sent only after an answered `Alive`.
//!
//! This module owns the clock of the last beat; it is read from other
//! threads (the HTTP workers), hence atomics and no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the actor thread is asked to prove it runs.
pub(crate) const BEAT_EVERY: Duration = Duration::from_secs(1);

/// The default `LIVENESS_TIMEOUT`.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// The last heartbeat, shared between the actor thread (writer) and the
/// HTTP workers (readers).
#[derive(Debug)]
pub(crate) struct Liveness {
    /// The origin of `last_ms`.
    origin: Instant,
    /// Milliseconds after `origin` of the last answered heartbeat.
    last_ms: AtomicU64,
    /// A beat older than this is a wedge (`LIVENESS_TIMEOUT`).
    window: Duration,
}

impl Liveness {
    /// Alive as of now (the process just started).
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            window,
        }
    }

    /// The actor system answered a heartbeat now.
    pub(crate) fn beat(&self) {
        self.beat_at(Instant::now());
    }

    fn beat_at(&self, now: Instant) {
        let ms = u64::try_from(now.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last answered heartbeat.
    pub(crate) fn age(&self) -> Duration {
        self.age_at(Instant::now())
    }

    fn age_at(&self, now: Instant) -> Duration {
        let last = self
            .origin
            .checked_add(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
            .unwrap_or(self.origin);
        now.saturating_duration_since(last)
    }

    /// Did the actor system answer within the window?
    pub(crate) fn alive(&self) -> bool {
        self.age() <= self.window
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

/// Is a status file's heartbeat (Unix seconds) recent enough at `now`
/// (Unix seconds)? Used by `isready`; a clock step back counts as fresh.
pub fn heartbeat_fresh(heartbeat: u64, now: u64, window: Duration) -> bool {
    now.saturating_sub(heartbeat) <= window.as_secs().saturating_add(1)
}

/// Test-only failpoint (`--features failpoints`): while the file named by
/// `SECRETS_SYNC_FAILPOINT_WEDGE` exists, the thread that calls this blocks.
/// Called by the StatusActor's heartbeat handler, so it wedges the actor
/// thread on purpose; never compiled into a release build of the product.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint_wedge() {
    let Some(path) = std::env::var_os("SECRETS_SYNC_FAILPOINT_WEDGE") else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    if path.exists() {
        tracing::warn!("failpoint: wedging the actor thread");
        while path.exists() {
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!("failpoint: actor thread released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_beat_turns_liveness_off_and_a_beat_back_on() {
        let l = Liveness::new(Duration::from_secs(10));
        let t0 = l.origin;
        assert!(l.age_at(t0) == Duration::ZERO);
        let later = t0 + Duration::from_secs(11);
        assert!(l.age_at(later) > l.window());
        l.beat_at(later);
        assert_eq!(l.age_at(later), Duration::ZERO);
        assert_eq!(
            l.age_at(later + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        // An older beat never moves the clock back.
        l.beat_at(t0 + Duration::from_secs(1));
        assert_eq!(l.age_at(later), Duration::ZERO);
    }

    #[test]
    fn status_file_heartbeats_age_out() {
        let w = Duration::from_secs(10);
        assert!(heartbeat_fresh(100, 105, w));
        assert!(heartbeat_fresh(100, 111, w));
        assert!(!heartbeat_fresh(100, 112, w));
        // A clock stepped back: fresh, not an underflow.
        assert!(heartbeat_fresh(100, 50, w));
    }
}
