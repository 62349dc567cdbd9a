//! Exponential backoff with jitter, as plain arithmetic.
//!
//! The delay after the n-th consecutive failure is
//! `min(max, initial * multiplier^(n-1))`, then spread by ±20% so that many
//! secrets failing together do not retry in lockstep, and never above `max`.

use std::time::Duration;

/// Backoff parameters (INITIAL_BACKOFF, MAX_BACKOFF, BACKOFF_MULTIPLIER).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BackoffPolicy {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
        }
    }
}

/// The share of the delay that jitter may add or remove.
pub(crate) const JITTER: f64 = 0.2;

/// Counts consecutive failures of one secret.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
        }
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns the delay before the next attempt.
    /// `unit` is a random number in `[0, 1)` (injected so tests are exact).
    pub(crate) fn next_delay(&mut self, unit: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let p = &self.policy;
        let mult = if p.multiplier.is_finite() && p.multiplier >= 1.0 {
            p.multiplier
        } else {
            1.0
        };
        let max = p.max.max(p.initial).as_secs_f64();
        let exp = i32::try_from(self.failures - 1).unwrap_or(i32::MAX);
        let base = (p.initial.as_secs_f64() * mult.powi(exp)).min(max);
        let spread = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::try_from_secs_f64((base * spread).clamp(0.0, max)).unwrap_or(p.max.max(p.initial))
    }

    /// Records a success: the next failure starts from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Spreads a refresh interval by up to -10%, so that secrets configured with
/// the same interval do not all fire in the same tick. Never longer than the
/// interval the user asked for.
pub(crate) fn jitter_interval(interval: Duration, unit: f64) -> Duration {
    interval.mul_f64(1.0 - 0.1 * unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }

    #[test]
    fn grows_exponentially_to_the_cap() {
        let mut b = Backoff::new(policy());
        let mid: Vec<u64> = (0..6)
            .map(|_| b.next_delay(0.5).as_millis() as u64)
            .collect();
        assert_eq!(mid, [1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn jitter_stays_within_bounds_and_cap() {
        let mut b = Backoff::new(policy());
        let low = b.next_delay(0.0).as_secs_f64();
        assert!((low - 0.8).abs() < 1e-6, "{low}");
        let mut b = Backoff::new(policy());
        let high = b.next_delay(0.999_999_999).as_secs_f64();
        assert!((high - 1.2).abs() < 1e-6, "{high}");
        let mut b = Backoff::new(policy());
        for _ in 0..10 {
            assert!(b.next_delay(0.999) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(policy());
        b.next_delay(0.5);
        b.next_delay(0.5);
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_secs(1));
    }

    #[test]
    fn silly_policies_do_not_panic() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
            multiplier: f64::NAN,
        });
        for _ in 0..100 {
            assert_eq!(b.next_delay(0.5), Duration::from_secs(5));
        }
        let mut b = Backoff::new(BackoffPolicy {
            multiplier: 1e300,
            ..policy()
        });
        for _ in 0..2000 {
            assert!(b.next_delay(0.3) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn enormous_policies_do_not_overflow() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_secs(u64::MAX / 2),
            max: Duration::MAX,
            multiplier: 2.0,
        });
        for _ in 0..5 {
            let _ = b.next_delay(0.999);
        }
    }

    #[test]
    fn interval_jitter_only_shortens() {
        let i = Duration::from_secs(100);
        assert_eq!(jitter_interval(i, 0.0), i);
        assert_eq!(jitter_interval(i, 1.0), Duration::from_secs(90));
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up. The
/// process-wide budget of forced refreshes (`POST /refresh`, SIGUSR1), so
/// that a client looping on `/refresh` cannot turn into a read of every
/// secret per request.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl TokenBucket {
    /// Full at `now`.
    pub(crate) fn new(rate: f64, burst: u32, now: std::time::Instant) -> Self {
        Self {
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn refill(&mut self, now: std::time::Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes up to `want` whole tokens; returns how many it took.
    pub(crate) fn take(&mut self, want: usize, now: std::time::Instant) -> usize {
        self.refill(now);
        let have = self.tokens.floor().max(0.0);
        let n = (want as f64).min(have);
        self.tokens -= n;
        // `n` is a whole number no larger than `want`.
        (n as usize).min(want)
    }

    /// How long until one token is there.
    pub(crate) fn next_in(&mut self, now: std::time::Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.rate).min(3600.0))
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn the_bucket_gives_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 50, t0);
        assert_eq!(b.take(300, t0), 50);
        assert_eq!(b.take(1, t0), 0);
        assert!(b.next_in(t0) > Duration::from_millis(90));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.take(300, t1), 10);
        // Never more than the burst, however long it rested.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(b.take(300, t2), 50);
    }
}
