//! Coalescing of triggers into runs: a [`Batch`] collects the secrets and
//! files that changed, and says when it is due (pure, tested with explicit
//! instants).
//!
//! A batch is due `wait` after its last trigger, but no later than
//! `maxWait` after its first: a steady trickle of changes cannot postpone a
//! run for ever. A batch whose run failed is retried: it is due after the
//! retry delay and, if new triggers joined it, after their quiet period too.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Runs of one batch that may fail before it is given up (the first run
/// plus this many retries).
pub(crate) const MAX_RETRIES: u32 = 3;

/// Triggers not yet run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    /// Names of the secrets whose files changed.
    pub(crate) secrets: BTreeSet<String>,
    /// The files that changed.
    pub(crate) files: BTreeSet<PathBuf>,
    first: Instant,
    last: Instant,
    /// Failed runs of this batch so far.
    pub(crate) failures: u32,
    /// Set after a failed run: not before this instant.
    retry_at: Option<Instant>,
}

impl Batch {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            secrets: BTreeSet::new(),
            files: BTreeSet::new(),
            first: now,
            last: now,
            failures: 0,
            retry_at: None,
        }
    }

    /// One secret's changed files.
    pub(crate) fn add(&mut self, secret: &str, files: &[PathBuf], now: Instant) {
        self.secrets.insert(secret.to_string());
        self.files.extend(files.iter().cloned());
        self.last = self.last.max(now);
    }

    /// When the run is due, given the action's `wait` and `maxWait`.
    pub(crate) fn due(&self, wait: Duration, max_wait: Duration) -> Instant {
        let quiet = later(self.last, wait).min(later(self.first, max_wait));
        match self.retry_at {
            Some(r) => quiet.max(r),
            None => quiet,
        }
    }

    /// After a failed run at `now`: the same batch, due again after `delay`,
    /// or `None` once it failed [`MAX_RETRIES`] + 1 times.
    pub(crate) fn retry(mut self, now: Instant, delay: Duration) -> Option<Self> {
        self.failures = self.failures.saturating_add(1);
        if self.failures > MAX_RETRIES {
            return None;
        }
        self.first = now;
        self.last = now;
        self.retry_at = Some(later(now, delay));
        Some(self)
    }

    /// Joins triggers that arrived while this batch was running into it.
    pub(crate) fn merge(&mut self, other: Batch) {
        self.secrets.extend(other.secrets);
        self.files.extend(other.files);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn triggers_within_wait_coalesce_and_max_wait_bounds_the_delay() {
        let t0 = Instant::now();
        let mut b = Batch::new(t0);
        b.add("db", &["/s/db".into()], t0);
        assert_eq!(b.due(2 * S, 20 * S), t0 + 2 * S);
        b.add("api", &["/s/api".into()], t0 + S);
        assert_eq!(b.due(2 * S, 20 * S), t0 + 3 * S);
        assert_eq!(b.secrets.iter().collect::<Vec<_>>(), ["api", "db"]);
        // A trigger every second for ever: due at maxWait after the first.
        for i in 2..30 {
            b.add("db", &["/s/db".into()], t0 + i * S);
        }
        assert_eq!(b.due(2 * S, 20 * S), t0 + 20 * S);
        assert_eq!(b.files.len(), 2);
    }

    #[test]
    fn a_failed_batch_is_retried_three_times_then_given_up() {
        let t0 = Instant::now();
        let mut b = Batch::new(t0);
        b.add("db", &[], t0);
        for n in 1..=MAX_RETRIES {
            let now = t0 + n * 10 * S;
            b = b.retry(now, 4 * S).expect("retries left");
            assert_eq!(b.failures, n);
            assert_eq!(b.due(S, 10 * S), now + 4 * S);
        }
        assert!(b.retry(t0 + 100 * S, S).is_none());
    }

    #[test]
    fn triggers_during_a_retry_wait_join_the_batch() {
        let t0 = Instant::now();
        let mut b = Batch::new(t0);
        b.add("db", &[], t0);
        let mut b = b.retry(t0, 2 * S).unwrap();
        let mut late = Batch::new(t0 + 3 * S);
        late.add("api", &[], t0 + 3 * S);
        b.merge(late);
        // The retry delay has passed; the new trigger's quiet period has not.
        assert_eq!(b.due(S, 10 * S), t0 + 4 * S);
        assert_eq!(b.secrets.len(), 2);
        assert_eq!(b.failures, 1);
    }
}
