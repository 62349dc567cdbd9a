//! Circuit breaker with the semantics of sony/gobreaker, as plain code with
//! the clock passed in.
//!
//! * **Closed**: requests pass. `consecutive_failures >= failure_threshold`
//!   opens the breaker. With a non-zero `interval`, the counts are cleared
//!   every `interval` (a new generation).
//! * **Open**: requests are refused without reaching Vault until the open
//!   period has passed; then the breaker is half-open. The first open
//!   period is short ([`FIRST_OPEN`]) and each consecutive re-open (a failed
//!   probe) doubles it, up to `timeout` (CIRCUIT_BREAKER_TIMEOUT), as Envoy's
//!   outlier ejection does: a blip of a few seconds costs seconds, a long
//!   outage is probed at most once per `timeout`. Each period is shortened
//!   by a random 0-25%, so a fleet's probes do not arrive in step. Closing
//!   starts over from the short period. (gobreaker opens for `timeout`
//!   every time.)
//! * **Half-open**: at most `max_requests` requests pass. As many consecutive
//!   successes close it; any failure opens it again.
//!
//! Results are tagged with the generation they started in, so the answer of
//! a request from before a state change cannot flip the new state.
//! A "failure" is what says Vault is unwell (no answer, 5xx, 429); a 403 or
//! 404 is an answer and counts as success here.

use std::fmt;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BreakerSettings {
    /// Requests let through while half-open (CIRCUIT_BREAKER_MAX_REQUESTS; 0 means 1).
    pub(crate) max_requests: u32,
    /// Closed-state count reset period (CIRCUIT_BREAKER_INTERVAL; 0 never resets).
    pub(crate) interval: Duration,
    /// Longest open period (CIRCUIT_BREAKER_TIMEOUT; 0 means 60s); the
    /// first is [`FIRST_OPEN`] and they double up to this.
    pub(crate) timeout: Duration,
    /// Consecutive failures that open a closed breaker (at least 1).
    pub(crate) failure_threshold: u32,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            max_requests: 3,
            interval: Duration::from_secs(60),
            // CIRCUIT_BREAKER_TIMEOUT's default: a sidecar probes a down
            // Vault at most every 10 s, so its files are fresh within about
            // that of Vault's return.
            timeout: Duration::from_secs(10),
            failure_threshold: 5,
        }
    }
}

/// The first open period (or `timeout`, if that is shorter).
pub(crate) const FIRST_OPEN: Duration = Duration::from_secs(1);

/// The share of an open period that jitter may take off.
pub(crate) const OPEN_JITTER: f64 = 0.25;

/// The `n`-th consecutive open period (0: first) before jitter:
/// `min(timeout, FIRST_OPEN * 2^n)`.
pub(crate) fn open_period(timeout: Duration, reopens: u32) -> Duration {
    let factor = 1u32.checked_shl(reopens.min(31)).unwrap_or(u32::MAX);
    FIRST_OPEN
        .checked_mul(factor)
        .unwrap_or(timeout)
        .min(timeout)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Closed,
    HalfOpen,
    Open,
}

impl State {
    /// The gauge value of `circuit_breaker_state`: 0 closed, 1 half-open, 2 open.
    pub(crate) fn as_gauge(self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::HalfOpen => "half-open",
            State::Open => "open",
        })
    }
}

/// Counts of the current generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) requests: u32,
    pub(crate) total_successes: u32,
    pub(crate) total_failures: u32,
    pub(crate) consecutive_successes: u32,
    pub(crate) consecutive_failures: u32,
}

/// A state change, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: State,
    pub(crate) to: State,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Open; it will be half-open in `retry_in`.
    Open { retry_in: Duration },
    /// Half-open and the probes are all taken.
    TooManyRequests,
}

/// A permit to send one request; hand it back to [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) struct Permit {
    generation: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Breaker {
    settings: BreakerSettings,
    state: State,
    generation: u64,
    counts: Counts,
    /// Closed: when counts reset (None: never). Open: when it half-opens.
    expiry: Option<Instant>,
    /// Opens since the breaker was last closed (sets the next open period).
    reopens: u32,
    /// The open period in force (while open).
    open_for: Duration,
    /// Jitter of open periods.
    rng: fastrand::Rng,
    transitions: Vec<Transition>,
}

impl Breaker {
    pub(crate) fn new(settings: BreakerSettings, now: Instant) -> Self {
        Self::with_rng(settings, now, fastrand::Rng::new())
    }

    /// [`new`](Self::new) with a given random source (tests).
    pub(crate) fn with_rng(
        mut settings: BreakerSettings,
        now: Instant,
        rng: fastrand::Rng,
    ) -> Self {
        settings.max_requests = settings.max_requests.max(1);
        settings.failure_threshold = settings.failure_threshold.max(1);
        if settings.timeout.is_zero() {
            settings.timeout = Duration::from_secs(60);
        }
        let mut b = Self {
            settings,
            state: State::Closed,
            generation: 0,
            counts: Counts::default(),
            expiry: None,
            reopens: 0,
            open_for: Duration::ZERO,
            rng,
            transitions: Vec::new(),
        };
        b.new_generation(now);
        b
    }

    /// The state at `now` (moves open -> half-open and clears expired counts).
    pub(crate) fn state(&mut self, now: Instant) -> State {
        self.advance(now);
        self.state
    }

    #[cfg(test)]
    fn counts(&self) -> Counts {
        self.counts
    }

    /// The current open period (meaningful while open).
    pub(crate) fn open_for(&self) -> Duration {
        self.open_for
    }

    /// State changes since the last call, oldest first (for logging).
    pub(crate) fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.transitions)
    }

    /// Asks to send a request.
    pub(crate) fn allow(&mut self, now: Instant) -> Result<Permit, Refusal> {
        self.advance(now);
        match self.state {
            State::Open => Err(Refusal::Open {
                retry_in: self
                    .expiry
                    .map(|e| e.saturating_duration_since(now))
                    .unwrap_or_default(),
            }),
            State::HalfOpen if self.counts.requests >= self.settings.max_requests => {
                Err(Refusal::TooManyRequests)
            }
            _ => {
                self.counts.requests += 1;
                Ok(Permit {
                    generation: self.generation,
                })
            }
        }
    }

    /// Records the outcome of a permitted request.
    pub(crate) fn record(&mut self, permit: Permit, success: bool, now: Instant) {
        self.advance(now);
        if permit.generation != self.generation {
            return;
        }
        if success {
            self.counts.total_successes += 1;
            self.counts.consecutive_successes += 1;
            self.counts.consecutive_failures = 0;
            if self.state == State::HalfOpen
                && self.counts.consecutive_successes >= self.settings.max_requests
            {
                self.set_state(State::Closed, now);
            }
        } else {
            self.counts.total_failures += 1;
            self.counts.consecutive_failures += 1;
            self.counts.consecutive_successes = 0;
            match self.state {
                State::Closed
                    if self.counts.consecutive_failures >= self.settings.failure_threshold =>
                {
                    self.set_state(State::Open, now)
                }
                State::HalfOpen => self.set_state(State::Open, now),
                _ => {}
            }
        }
    }

    fn advance(&mut self, now: Instant) {
        match (self.state, self.expiry) {
            (State::Closed, Some(e)) if e <= now => self.new_generation(now),
            (State::Open, Some(e)) if e <= now => self.set_state(State::HalfOpen, now),
            _ => {}
        }
    }

    fn set_state(&mut self, to: State, now: Instant) {
        if self.state == to {
            return;
        }
        match to {
            State::Open => {
                let base = open_period(self.settings.timeout, self.reopens);
                self.open_for = base.mul_f64(1.0 - OPEN_JITTER * self.rng.f64());
                self.reopens = self.reopens.saturating_add(1);
            }
            State::Closed => self.reopens = 0,
            State::HalfOpen => {}
        }
        self.transitions.push(Transition {
            from: self.state,
            to,
        });
        self.state = to;
        self.new_generation(now);
    }

    fn new_generation(&mut self, now: Instant) {
        self.generation += 1;
        self.counts = Counts::default();
        self.expiry = match self.state {
            // Beyond the clock's range: never clear.
            State::Closed if !self.settings.interval.is_zero() => {
                now.checked_add(self.settings.interval)
            }
            State::Closed | State::HalfOpen => None,
            // Beyond the clock's range: probe now rather than never.
            State::Open => Some(now.checked_add(self.open_for).unwrap_or(now)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            max_requests: 2,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            failure_threshold: 3,
        }
    }

    fn fail(b: &mut Breaker, now: Instant) {
        let p = b.allow(now).unwrap();
        b.record(p, false, now);
    }

    fn succeed(b: &mut Breaker, now: Instant) {
        let p = b.allow(now).unwrap();
        b.record(p, true, now);
    }

    #[test]
    fn closed_opens_after_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        fail(&mut b, t0);
        fail(&mut b, t0);
        succeed(&mut b, t0); // breaks the run
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(t0), State::Closed);
        fail(&mut b, t0);
        assert_eq!(b.state(t0), State::Open);
        assert_eq!(
            b.take_transitions(),
            [Transition {
                from: State::Closed,
                to: State::Open
            }]
        );
    }

    /// A breaker whose open periods have no jitter (the rng's first f64
    /// is used as is; seed 0 is not special, so the bound is checked).
    fn breaker(s: BreakerSettings, t0: Instant) -> Breaker {
        Breaker::with_rng(s, t0, fastrand::Rng::with_seed(7))
    }

    #[test]
    fn open_refuses_until_its_period_then_half_opens() {
        let t0 = Instant::now();
        let mut b = breaker(settings(), t0);
        (0..3).for_each(|_| fail(&mut b, t0));
        let first = b.open_for();
        assert!(
            first <= FIRST_OPEN && first >= FIRST_OPEN.mul_f64(0.75),
            "{first:?}"
        );
        let t1 = t0 + first / 2;
        assert_eq!(
            b.allow(t1),
            Err(Refusal::Open {
                retry_in: first - first / 2
            })
        );
        assert_eq!(b.state(t0 + first), State::HalfOpen);
    }

    #[test]
    fn open_periods_grow_to_the_timeout_and_start_over_after_closing() {
        let t0 = Instant::now();
        let mut b = breaker(settings(), t0);
        (0..3).for_each(|_| fail(&mut b, t0));
        let mut t = t0;
        let mut periods = vec![b.open_for()];
        for _ in 0..7 {
            t += b.open_for();
            assert_eq!(b.state(t), State::HalfOpen);
            fail(&mut b, t); // the probe fails: open again, longer
            periods.push(b.open_for());
        }
        let timeout = settings().timeout;
        for (n, p) in periods.iter().enumerate() {
            let base = open_period(timeout, n as u32);
            assert!(
                *p <= base && *p >= base.mul_f64(0.75),
                "period {n}: {p:?} vs {base:?}"
            );
        }
        assert_eq!(open_period(timeout, 0), Duration::from_secs(1));
        assert_eq!(open_period(timeout, 3), Duration::from_secs(8));
        assert_eq!(open_period(timeout, 5), timeout);
        assert_eq!(open_period(timeout, u32::MAX), timeout);
        // Probes succeed: closed; the next outage starts short again.
        t += b.open_for();
        succeed(&mut b, t);
        succeed(&mut b, t);
        assert_eq!(b.state(t), State::Closed);
        (0..3).for_each(|_| fail(&mut b, t));
        assert!(b.open_for() <= FIRST_OPEN, "{:?}", b.open_for());
    }

    #[test]
    fn jitter_spreads_a_fleet() {
        let t0 = Instant::now();
        let periods: Vec<Duration> = (0..20)
            .map(|seed| {
                let mut b = Breaker::with_rng(settings(), t0, fastrand::Rng::with_seed(seed));
                (0..3).for_each(|_| fail(&mut b, t0));
                b.open_for()
            })
            .collect();
        let (min, max) = (periods.iter().min().unwrap(), periods.iter().max().unwrap());
        assert!(*max - *min >= Duration::from_millis(100), "{periods:?}");
        assert!(*max <= FIRST_OPEN);
    }

    #[test]
    fn an_interval_beyond_the_clock_never_clears_and_does_not_panic() {
        let t0 = Instant::now();
        let mut b = breaker(
            BreakerSettings {
                interval: Duration::MAX,
                timeout: Duration::MAX,
                ..settings()
            },
            t0,
        );
        (0..3).for_each(|_| fail(&mut b, t0));
        assert_eq!(b.state(t0), State::Open);
        let _ = b.allow(t0 + Duration::from_secs(3600));
    }

    #[test]
    fn half_open_limits_probes_and_closes_after_enough_successes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        (0..3).for_each(|_| fail(&mut b, t0));
        let t = t0 + Duration::from_secs(31);
        let p1 = b.allow(t).unwrap();
        let p2 = b.allow(t).unwrap();
        assert_eq!(b.allow(t), Err(Refusal::TooManyRequests));
        b.record(p1, true, t);
        assert_eq!(b.state(t), State::HalfOpen);
        b.record(p2, true, t);
        assert_eq!(b.state(t), State::Closed);
        let tr = b.take_transitions();
        assert_eq!(
            tr.last(),
            Some(&Transition {
                from: State::HalfOpen,
                to: State::Closed
            })
        );
    }

    #[test]
    fn half_open_failure_reopens() {
        let t0 = Instant::now();
        let mut b = breaker(settings(), t0);
        (0..3).for_each(|_| fail(&mut b, t0));
        let t = t0 + Duration::from_secs(31);
        fail(&mut b, t);
        assert_eq!(b.state(t), State::Open);
        // The new open period starts at t.
        let p = b.open_for();
        assert_eq!(b.state(t + p - Duration::from_millis(1)), State::Open);
        assert_eq!(b.state(t + p), State::HalfOpen);
    }

    #[test]
    fn interval_clears_closed_counts() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        fail(&mut b, t0);
        fail(&mut b, t0);
        let t = t0 + Duration::from_secs(60);
        fail(&mut b, t); // counts were cleared: 1 of 3
        assert_eq!(b.state(t), State::Closed);
        assert_eq!(b.counts().consecutive_failures, 1);
    }

    #[test]
    fn zero_interval_never_clears() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerSettings {
                interval: Duration::ZERO,
                ..settings()
            },
            t0,
        );
        fail(&mut b, t0);
        fail(&mut b, t0 + Duration::from_secs(3600));
        fail(&mut b, t0 + Duration::from_secs(7200));
        assert_eq!(b.state(t0 + Duration::from_secs(7200)), State::Open);
    }

    #[test]
    fn stale_results_are_ignored() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings(), t0);
        let old = b.allow(t0).unwrap();
        (0..3).for_each(|_| fail(&mut b, t0));
        let t = t0 + Duration::from_secs(31);
        assert_eq!(b.state(t), State::HalfOpen);
        // A success from before the breaker opened does not count as a probe.
        b.record(old, true, t);
        assert_eq!(b.counts().consecutive_successes, 0);
        assert_eq!(b.state(t), State::HalfOpen);
    }

    #[test]
    fn silly_settings_are_clamped() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            BreakerSettings {
                max_requests: 0,
                interval: Duration::ZERO,
                timeout: Duration::ZERO,
                failure_threshold: 0,
            },
            t0,
        );
        fail(&mut b, t0);
        assert_eq!(b.state(t0), State::Open);
        assert_eq!(b.state(t0 + Duration::from_secs(60)), State::HalfOpen);
        assert!(b.open_for() <= FIRST_OPEN);
        succeed(&mut b, t0 + Duration::from_secs(60));
        assert_eq!(b.state(t0 + Duration::from_secs(60)), State::Closed);
        assert_eq!(State::Open.as_gauge(), 2);
    }
}
