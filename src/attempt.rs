//! One sync attempt's failure, as plain data: why it failed
//! ([`SyncError`], never carrying a value), at which stage, of which kind,
//! and how long to wait before the next attempt ([`retry_delay`]). The
//! SyncActor (`crate::actors::sync`) makes attempts; the events in
//! `crate::telemetry::events` report them; both take this type from here.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::blocking::OffloadError;
use crate::fs::FsError;
use crate::template::RenderError;
use crate::vault::VaultError;

/// Where a failed sync attempt stopped, the `stage` label of
/// `secret_sync_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncStage {
    Fetch,
    Render,
    Write,
}

impl SyncStage {
    pub(crate) const ALL: [SyncStage; 3] = [SyncStage::Fetch, SyncStage::Render, SyncStage::Write];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SyncStage::Fetch => "fetch",
            SyncStage::Render => "render",
            SyncStage::Write => "write",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why one sync attempt failed. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Write(#[from] FsError),
    #[error(transparent)]
    Offload(#[from] OffloadError),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
    #[error("internal: {0} is not running")]
    Mailbox(&'static str),
}

impl SyncError {
    /// Where the attempt failed, for `secret_sync_errors_total`.
    pub(crate) fn stage(&self) -> SyncStage {
        match self {
            SyncError::Vault(_) | SyncError::Aws(_) | SyncError::Mailbox(_) => SyncStage::Fetch,
            SyncError::Render(_) | SyncError::Offload(_) => SyncStage::Render,
            SyncError::Write(_) => SyncStage::Write,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SyncError::Vault(e) => e.kind(),
            SyncError::Aws(e) => e.kind(),
            SyncError::Render(_) => "render",
            SyncError::Offload(OffloadError::TimedOut { .. }) => "render_timeout",
            SyncError::Offload(_) => "render",
            SyncError::Write(_) => "write",
            SyncError::Mailbox(_) => "internal",
        }
    }

    /// When the circuit breaker refused the read: how long until it lets a
    /// probe through again.
    fn breaker_retry_in(&self) -> Option<Duration> {
        match self {
            SyncError::Vault(VaultError::CircuitOpen { retry_in, .. })
            | SyncError::Aws(crate::aws::AwsError::CircuitOpen { retry_in, .. }) => Some(*retry_in),
            SyncError::Vault(VaultError::Login { source, .. }) => match **source {
                VaultError::CircuitOpen { retry_in, .. } => Some(retry_in),
                _ => None,
            },
            _ => None,
        }
    }
}

/// How far past the breaker's next probe (or a server's `Retry-After`) the
/// retries of a sidecar's secrets are spread (plus 100 ms). Measured by
/// `bench/fleet.py` (10 secrets per sidecar, a 30 s cut): with one second
/// the catch-up's busiest second was 3.7-3.8x the steady rate and the
/// files fresh 10.7 s after Vault's return; with three, 3.0x (20
/// sidecars) and 3.3x (100), fresh after 12.0-12.9 s.
pub(crate) const CATCH_UP_SPREAD: Duration = Duration::from_millis(2900);

/// The delay before the next attempt after a failure: the secret's own
/// exponential backoff, but no later than just after the circuit breaker
/// lets probes through again when it was the breaker that refused (so a
/// secret is not left waiting its long backoff once Vault is back; the
/// breaker still limits what reaches Vault). `unit` in `[0, 1)` spreads the
/// retries of many secrets over [`CATCH_UP_SPREAD`]: when Vault is back, a
/// sidecar with many secrets catches up paced, not in one burst.
///
/// When the server asked for a wait (`Retry-After` of a 429 or 503, or
/// the store's rate-limit pause), the next attempt comes no earlier than
/// that (plus the spread), capped by MAX_BACKOFF.
pub(crate) fn retry_delay(backoff: &mut Backoff, error: &SyncError, unit: f64) -> Duration {
    let delay = backoff.next_delay(unit);
    let spread =
        Duration::from_millis(100).saturating_add(CATCH_UP_SPREAD.mul_f64(unit.clamp(0.0, 1.0)));
    if let SyncError::Vault(e) = error {
        if let Some(wait) = e.retry_after() {
            return delay
                .max(wait.saturating_add(spread))
                .min(backoff.max_delay());
        }
        // Vault itself failed (no answer, 5xx): no later than the breaker's
        // longest open period, so the files are fresh soon after Vault is
        // back (the breaker decides what reaches Vault meanwhile).
        if e.is_vault_failure() {
            return delay.min(backoff.outage_cap().saturating_add(spread));
        }
    }
    match error.breaker_retry_in() {
        Some(retry_in) => delay.min(retry_in.saturating_add(spread)),
        None => delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::BackoffPolicy;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            refresh_jitter: 0.1,
            outage_cap: Duration::from_secs(10),
        }
    }

    fn refused(retry_in: Duration) -> SyncError {
        SyncError::Vault(VaultError::CircuitOpen {
            op: "read",
            state: "open",
            retry_in,
        })
    }

    #[test]
    fn a_breaker_refusal_retries_just_after_the_breaker_reopens() {
        let mut b = Backoff::new(policy());
        for _ in 0..8 {
            b.next_delay(0.5);
        }
        // The own backoff is at minutes by now; the breaker opens in 2 s.
        let d = retry_delay(&mut b, &refused(Duration::from_secs(2)), 0.5);
        assert!(d >= Duration::from_secs(2), "{d:?}");
        assert!(d <= Duration::from_secs(5), "{d:?}");
        // Half-open with its probes taken: retry within about a second.
        let d = retry_delay(&mut b, &refused(Duration::ZERO), 0.0);
        assert_eq!(d, Duration::from_millis(100));
    }

    #[test]
    fn other_failures_keep_the_backoff() {
        let mut b = Backoff::new(policy());
        let e = SyncError::Vault(VaultError::Network {
            op: "read",
            detail: "refused".into(),
        });
        let delays: Vec<u64> = (0..4)
            .map(|_| retry_delay(&mut b, &e, 1.0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8]);
        // Vault down for long: never later than the breaker's longest open
        // period (10 s here) and the spread.
        for _ in 0..6 {
            let d = retry_delay(&mut b, &e, 1.0);
            assert!(d <= Duration::from_secs(13), "{d:?}");
        }
        // A refusal by Vault (403) is not an outage: its own backoff.
        let denied = SyncError::Vault(VaultError::PermissionDenied {
            op: "read",
            path: "secret/data/x".into(),
            detail: String::new(),
        });
        let mut b = Backoff::new(policy());
        let d: Vec<u64> = (0..6)
            .map(|_| retry_delay(&mut b, &denied, 1.0).as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 8, 16, 32]);
        // A refusal further out than the backoff does not lengthen it.
        let mut b = Backoff::new(policy());
        let d = retry_delay(&mut b, &refused(Duration::from_secs(30)), 1.0);
        assert_eq!(d, Duration::from_secs(1));
    }

    #[test]
    fn a_retry_after_is_honoured_and_capped_by_max_backoff() {
        let limited = |secs| {
            SyncError::Vault(VaultError::RateLimited {
                op: "read",
                path: "/v1/secret/data/x".into(),
                detail: String::new(),
                retry_after: Some(Duration::from_secs(secs)),
            })
        };
        // Not the 1 s of the first backoff: the 6 s Vault asked for.
        let mut b = Backoff::new(policy());
        let d = retry_delay(&mut b, &limited(6), 0.0);
        assert!(d >= Duration::from_secs(6), "{d:?}");
        assert!(d <= Duration::from_secs(9), "{d:?}");
        // A 503 with Retry-After too, through a login.
        let mut b = Backoff::new(policy());
        let login = SyncError::Vault(VaultError::Login {
            method: "approle",
            source: Box::new(VaultError::Server {
                op: "auth",
                path: "/v1/auth/approle/login".into(),
                status: 503,
                detail: String::new(),
                retry_after: Some(Duration::from_secs(9)),
            }),
        });
        assert!(retry_delay(&mut b, &login, 0.5) >= Duration::from_secs(9));
        // Never past MAX_BACKOFF (300 s here).
        let mut b = Backoff::new(policy());
        assert_eq!(
            retry_delay(&mut b, &limited(3600), 0.5),
            Duration::from_secs(300)
        );
    }
}
