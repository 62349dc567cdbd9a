//! When a secret is read next, as plain arithmetic: after a failure, an
//! exponential backoff with full jitter; after a success, the refresh
//! interval with a splay and a jitter.
//!
//! * The delay after the n-th consecutive failure is a uniformly random
//!   point of `min(max, initial * multiplier^(n-1))` ("full jitter", at
//!   least [`MIN_RETRY`]), so many secrets (or sidecars) failing together
//!   do not retry in lockstep.
//! * The first refresh after a secret's initial sync lands at a uniformly
//!   random point of its interval (the splay): a fleet of sidecars started
//!   together spreads its reads over one interval instead of reading in the
//!   same second every interval. Later refreshes come at the interval ±
//!   `REFRESH_JITTER` (default 10 %; 0 turns both off: exact intervals).
//! * Each refresh is then moved later onto the process's refresh grid
//!   ([`on_grid`]: steps of 1/20 of the interval, at most 1 s, a random
//!   phase per process), so one sidecar's secrets due within a step share a
//!   wake-up while the fleet stays spread.

use std::time::Duration;

/// Retry and refresh timing (INITIAL_BACKOFF, MAX_BACKOFF,
/// BACKOFF_MULTIPLIER, REFRESH_JITTER).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BackoffPolicy {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
    /// The share of a refresh interval a refresh may come early or late
    /// (0-0.5); 0: exact intervals and no splay.
    pub(crate) refresh_jitter: f64,
    /// The latest retry after Vault itself failed (no answer, 5xx): the
    /// breaker's longest open period (CIRCUIT_BREAKER_TIMEOUT). The breaker
    /// limits what reaches Vault meanwhile; once Vault is back, every such
    /// secret is read again within about this.
    pub(crate) outage_cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            refresh_jitter: DEFAULT_REFRESH_JITTER,
            outage_cap: Duration::from_secs(10),
        }
    }
}

/// REFRESH_JITTER's default: ±10 %.
pub(crate) const DEFAULT_REFRESH_JITTER: f64 = 0.1;
/// The largest REFRESH_JITTER accepted: ±50 %.
pub(crate) const MAX_REFRESH_JITTER: f64 = 0.5;
/// The shortest retry delay (full jitter would otherwise allow ~0) and the
/// shortest splay.
pub(crate) const MIN_RETRY: Duration = Duration::from_millis(100);

/// One secret's timing state: its consecutive failures, and whether its
/// first refresh was splayed yet.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    policy: BackoffPolicy,
    failures: u32,
    splayed: bool,
}

/// This process's phase on the refresh grid, a fraction of a step in
/// `[0, 1)`, drawn once: the sidecars of a fleet started together do not
/// share their grid points.
static PHASE: std::sync::LazyLock<f64> = std::sync::LazyLock::new(fastrand::f64);

/// The origin of the refresh grid (the first refresh planned).
static ORIGIN: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

/// The grid step for refreshes every `interval`: 1/[`GRID_STEPS`] of it,
/// at most [`MAX_GRID_STEP`].
pub(crate) const GRID_STEPS: u32 = 20;
/// The longest grid step (an interval of 20 s and more).
pub(crate) const MAX_GRID_STEP: Duration = Duration::from_secs(1);

/// `delay` (from now, `since_start` after the process's clock origin)
/// moved later to the next point of the grid `(k + phase) * step`,
/// `step` = min(`interval` / [`GRID_STEPS`], [`MAX_GRID_STEP`]). Reads that
/// a spread refresh schedule puts a few milliseconds apart each cost a
/// wake-up of the actor thread and of a pool thread; on the grid, a
/// process with 1000 secrets every 30 s wakes 30 times per interval, not
/// 1000 (bench/run.py: CPU per refresh of 1000 unchanged secrets 0.46 s
/// spread, 0.12 s all at once). A delay moves by less than one step (5 %
/// of the interval); the fleet's spread holds at a step's resolution.
pub(crate) fn on_grid(
    delay: Duration,
    interval: Duration,
    since_start: Duration,
    phase: f64,
) -> Duration {
    let step = (interval / GRID_STEPS).min(MAX_GRID_STEP).as_secs_f64();
    if step <= 0.0 || !step.is_finite() || !phase.is_finite() {
        return delay;
    }
    let due = since_start.saturating_add(delay).as_secs_f64();
    let k = (due / step - phase).ceil();
    let point = (k + phase) * step;
    let moved = point - since_start.as_secs_f64();
    match Duration::try_from_secs_f64(moved) {
        Ok(d) if d >= delay => d,
        _ => delay,
    }
}

impl Backoff {
    pub(crate) fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            splayed: false,
        }
    }

    /// The delay before the next refresh of a secret read every
    /// `interval`, after a successful read: the splay the first time, then
    /// the interval ± the jitter. `unit` is a random number in `[0, 1)`.
    pub(crate) fn next_refresh(&mut self, interval: Duration, unit: f64) -> Duration {
        let jitter = self.policy.refresh_jitter;
        let unit = unit.clamp(0.0, 1.0);
        // NaN or 0: no jitter.
        if jitter.is_nan() || jitter <= 0.0 {
            return interval;
        }
        let jitter = jitter.min(MAX_REFRESH_JITTER);
        if !self.splayed {
            self.splayed = true;
            return interval.mul_f64(unit).max(MIN_RETRY.min(interval));
        }
        interval.mul_f64(1.0 + jitter * (2.0 * unit - 1.0))
    }

    /// [`next_refresh`](Self::next_refresh), then moved later onto the
    /// process's refresh grid ([`on_grid`]): the secrets of one process
    /// that fall due within one grid step are read together, one wake-up
    /// for all of them, while the fleet stays spread (each process has its
    /// own phase).
    pub(crate) fn next_refresh_on_grid(&mut self, interval: Duration, unit: f64) -> Duration {
        let delay = self.next_refresh(interval, unit);
        if self.policy.refresh_jitter.is_nan() || self.policy.refresh_jitter <= 0.0 {
            return delay;
        }
        on_grid(delay, interval, ORIGIN.elapsed(), *PHASE)
    }

    /// Consecutive failures so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure and returns the delay before the next attempt: a
    /// uniformly random point (`unit` in `[0, 1]`, injected so tests are
    /// exact) of the exponential delay, at least [`MIN_RETRY`].
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
        let floor = MIN_RETRY.as_secs_f64().min(base);
        let delay = (base * unit.clamp(0.0, 1.0)).clamp(floor, max);
        Duration::try_from_secs_f64(delay).unwrap_or(p.max.max(p.initial))
    }

    /// The longest delay the policy allows (MAX_BACKOFF): caps what a
    /// server asks for with `Retry-After`.
    pub(crate) fn max_delay(&self) -> Duration {
        self.policy.max.max(self.policy.initial)
    }

    /// The latest retry after Vault itself failed ([`BackoffPolicy::outage_cap`]).
    pub(crate) fn outage_cap(&self) -> Duration {
        self.policy.outage_cap
    }

    /// Records a success: the next failure starts from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    #[test]
    fn delays_move_later_onto_the_grid_by_less_than_a_step() {
        let interval = Duration::from_secs(30);
        let start = Duration::from_secs(1000);
        let mut points = std::collections::HashSet::new();
        for i in 0..1000u32 {
            let delay = Duration::from_millis(27_000 + u64::from(i) * 6);
            let d = on_grid(delay, interval, start, 0.25);
            assert!(
                d >= delay && d - delay < Duration::from_secs(1),
                "{delay:?} -> {d:?}"
            );
            // On the grid: (k + 0.25) s after the origin.
            let at = (start + d).as_secs_f64();
            assert!(((at - 0.25) - (at - 0.25).round()).abs() < 1e-6, "{at}");
            points.insert((at * 1000.0).round() as u64);
        }
        // 6 s of due times share 7 grid points (one wake-up each).
        assert!(points.len() <= 7, "{}", points.len());
        // A short interval gets a fine grid: 1 s -> 50 ms steps.
        let d = on_grid(
            Duration::from_millis(1001),
            Duration::from_secs(1),
            start,
            0.0,
        );
        assert_eq!(d, Duration::from_millis(1050));
        // Nonsense phase or a zero interval: unchanged.
        assert_eq!(
            on_grid(Duration::from_secs(3), Duration::ZERO, start, 0.5),
            Duration::from_secs(3)
        );
        assert_eq!(
            on_grid(Duration::from_secs(3), interval, start, f64::NAN),
            Duration::from_secs(3)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            refresh_jitter: 0.1,
            outage_cap: Duration::from_secs(10),
        }
    }

    #[test]
    fn grows_exponentially_to_the_cap() {
        let mut b = Backoff::new(policy());
        let top: Vec<u64> = (0..6)
            .map(|_| b.next_delay(1.0).as_millis() as u64)
            .collect();
        assert_eq!(top, [1000, 2000, 4000, 8000, 10000, 10000]);
        assert_eq!(b.failures(), 6);
    }

    #[test]
    fn full_jitter_spans_the_whole_delay_above_a_floor() {
        let mut b = Backoff::new(policy());
        assert_eq!(b.next_delay(0.0), MIN_RETRY);
        let mut b = Backoff::new(policy());
        assert_eq!(b.next_delay(0.5), Duration::from_millis(500));
        let mut b = Backoff::new(policy());
        for _ in 0..10 {
            assert!(b.next_delay(0.999) <= Duration::from_secs(10));
        }
        // Many secrets failing together spread over the whole delay.
        let mut rng = fastrand::Rng::with_seed(3);
        let delays: Vec<f64> = (0..1000)
            .map(|_| {
                let mut b = Backoff::new(policy());
                b.next_delay(1.0);
                b.next_delay(1.0);
                b.next_delay(rng.f64()).as_secs_f64()
            })
            .collect();
        let below_one = delays.iter().filter(|d| **d < 1.0).count();
        let above_three = delays.iter().filter(|d| **d > 3.0).count();
        assert!((200..300).contains(&below_one), "{below_one}");
        assert!((200..300).contains(&above_three), "{above_three}");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(policy());
        b.next_delay(1.0);
        b.next_delay(1.0);
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_secs(1));
    }

    #[test]
    fn silly_policies_do_not_panic() {
        let mut b = Backoff::new(BackoffPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(1),
            multiplier: f64::NAN,
            refresh_jitter: f64::NAN,
            outage_cap: Duration::from_secs(10),
        });
        for _ in 0..100 {
            assert_eq!(b.next_delay(1.0), Duration::from_secs(5));
        }
        assert_eq!(
            b.next_refresh(Duration::from_secs(7), 0.3),
            Duration::from_secs(7)
        );
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
            refresh_jitter: 0.5,
            outage_cap: Duration::MAX,
        });
        for _ in 0..5 {
            let _ = b.next_delay(0.999);
        }
        let _ = b.next_refresh(Duration::from_secs(u64::MAX / 4), 0.999);
        let _ = b.next_refresh(Duration::from_secs(u64::MAX / 4), 0.999);
    }

    #[test]
    fn the_first_refresh_is_splayed_over_the_interval_then_jittered() {
        let i = Duration::from_secs(100);
        let mut b = Backoff::new(policy());
        assert_eq!(b.next_refresh(i, 0.25), Duration::from_secs(25));
        // Then the interval +- 10 %.
        assert_eq!(b.next_refresh(i, 0.0), Duration::from_secs(90));
        assert_eq!(b.next_refresh(i, 1.0), Duration::from_secs(110));
        assert_eq!(b.next_refresh(i, 0.5), i);
        // The splay never fires at once.
        let mut b = Backoff::new(policy());
        assert_eq!(b.next_refresh(i, 0.0), MIN_RETRY);
        // A failure in between does not splay again.
        let _ = b.next_delay(0.5);
        b.reset();
        assert_eq!(b.next_refresh(i, 0.0), Duration::from_secs(90));
    }

    #[test]
    fn a_fleet_started_together_spreads_over_one_interval() {
        // 40 sidecars, one secret each, interval 5 s: the second of each
        // one's first refresh; the busiest second holds few of them.
        let i = Duration::from_secs(5);
        let mut rng = fastrand::Rng::with_seed(11);
        let mut per_second = [0u32; 6];
        for _ in 0..40 {
            let mut b = Backoff::new(policy());
            let at = b.next_refresh(i, rng.f64()).as_secs() as usize;
            per_second[at.min(5)] += 1;
        }
        let busiest = per_second.iter().copied().max().unwrap_or(0);
        assert!(busiest <= 20, "{per_second:?}");
        assert!(per_second[..5].iter().all(|n| *n > 0), "{per_second:?}");
    }

    #[test]
    fn no_jitter_means_exact_intervals_and_no_splay() {
        let mut b = Backoff::new(BackoffPolicy {
            refresh_jitter: 0.0,
            ..policy()
        });
        let i = Duration::from_secs(30);
        for u in [0.0, 0.3, 0.99] {
            assert_eq!(b.next_refresh(i, u), i);
        }
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
