//! Sync state of every secret and the readiness rule, as plain data.
//!
//! The StatusActor keeps a [`StatusBoard`]; `/ready`, `/status` and the
//! status file all read from it. Nothing here holds a secret value: errors
//! are stored as the already-redacted texts the SyncActors report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// When the sidecar counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyPolicy {
    /// At least one secret has synced (the seed's rule).
    #[default]
    Any,
    /// Every configured secret has synced at least once.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SyncState {
    /// Not attempted yet.
    Pending,
    /// Last attempt succeeded.
    Synced,
    /// Last attempt failed (files keep their last good content).
    Failing,
    /// Not synced yet in this run, its last attempt failed, and its files
    /// are still the ones an earlier run wrote (`STATE_DIR`): what the app
    /// reads is the last content the source gave, of unknown age.
    Stale,
}

/// What `/status` shows for one secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SecretStatus {
    pub(crate) state: SyncState,
    /// Shared with the job.
    pub(crate) path: Arc<str>,
    /// Unix seconds of the last success.
    pub(crate) last_success: Option<u64>,
    pub(crate) last_error: Option<String>,
    /// The stable kind of the last error (`network`, `auth`,
    /// `permission_denied`, `circuit_open`, `render`, `write`, ...).
    pub(crate) last_error_kind: Option<&'static str>,
    pub(crate) consecutive_failures: u32,
    pub(crate) version: Option<crate::secret::Version>,
    /// Unix seconds of the next planned attempt.
    pub(crate) next_attempt: Option<u64>,
    /// Has synced at least once since it was (re)started.
    pub(crate) ever_synced: bool,
    /// Leased secrets: Unix seconds when the lease ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lease_expires: Option<u64>,
    /// `pki` secrets: the certificate's NotAfter (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) certificate_expires: Option<u64>,
    /// Which start of this secret the entry belongs to; reports from an
    /// earlier (stopped) SyncActor of the same name are ignored.
    #[serde(skip)]
    pub(crate) generation: u64,
}

impl SecretStatus {
    pub(crate) fn new(path: impl Into<Arc<str>>, generation: u64) -> Self {
        Self {
            generation,
            state: SyncState::Pending,
            path: path.into(),
            last_success: None,
            last_error: None,
            last_error_kind: None,
            consecutive_failures: 0,
            version: None,
            next_attempt: None,
            ever_synced: false,
            lease_expires: None,
            certificate_expires: None,
        }
    }
}

/// The outcome of one sync attempt, as a SyncActor reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SyncReport {
    Success {
        version: Option<crate::secret::Version>,
        next_attempt: Duration,
    },
    Failure {
        /// Redacted error text.
        error: String,
        kind: &'static str,
        consecutive_failures: u32,
        next_attempt: Duration,
    },
    /// A lease was granted or renewed, or a certificate issued or kept:
    /// when they end, and the next planned step.
    Expiry {
        /// Unix seconds.
        lease: Option<u64>,
        /// Unix seconds (NotAfter).
        certificate: Option<u64>,
        next_attempt: Duration,
    },
}

/// All secrets' states.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusBoard {
    policy: ReadyPolicy,
    secrets: BTreeMap<String, SecretStatus>,
    /// How many entries have `ever_synced` (kept so readiness is O(1)).
    synced: usize,
    /// `READY_ALLOW_STALE`: stale secrets count as synced for readiness.
    allow_stale: bool,
    /// The secrets whose files were, at start, the ones an earlier run
    /// wrote (`STATE_DIR`), with when (Unix seconds).
    intact: std::collections::HashMap<String, u64>,
    /// How many entries are [`SyncState::Stale`] (O(1) readiness).
    stale: usize,
}

/// The content of STATUS_FILE, read back by `secrets-sync isready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyFile {
    pub ready: bool,
    pub synced: usize,
    pub total: usize,
    pub pid: u32,
    /// Unix seconds when the actor thread last wrote this file: it is
    /// rewritten at least every third of `LIVENESS_TIMEOUT`, so `isready`
    /// sees a wedged process. Absent in files of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
}

impl StatusBoard {
    pub(crate) fn new(policy: ReadyPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// With `STATE_DIR`: which secrets' files were intact at start (and
    /// when they were written), and whether stale ones count for readiness.
    pub(crate) fn with_stale(
        mut self,
        intact: std::collections::HashMap<String, u64>,
        allow_stale: bool,
    ) -> Self {
        self.intact = intact;
        self.allow_stale = allow_stale;
        self
    }

    /// Moves `s` to `state`, keeping the stale count.
    fn set_state(stale: &mut usize, s: &mut SecretStatus, state: SyncState) {
        if s.state == SyncState::Stale {
            *stale = stale.saturating_sub(1);
        }
        if state == SyncState::Stale {
            *stale += 1;
        }
        s.state = state;
    }

    /// Adds (or resets) a secret as pending. With `keep_synced`, a secret
    /// restarted with the same files keeps its state (and counts as synced
    /// for readiness) until its new generation reports.
    pub(crate) fn register(
        &mut self,
        name: &str,
        path: &Arc<str>,
        generation: u64,
        keep_synced: bool,
    ) {
        if keep_synced {
            if let Some(s) = self.secrets.get_mut(name) {
                s.generation = generation;
                s.path = Arc::clone(path);
                return;
            }
        }
        let mut entry = SecretStatus::new(Arc::clone(path), generation);
        // Files an earlier run wrote: when (until this run confirms them).
        entry.last_success = self.intact.get(name).copied();
        let old = self.secrets.insert(name.to_string(), entry);
        self.forget(old);
    }

    pub(crate) fn remove(&mut self, name: &str) {
        let old = self.secrets.remove(name);
        self.forget(old);
    }

    /// Takes a replaced or removed entry out of the counts.
    fn forget(&mut self, old: Option<SecretStatus>) {
        if let Some(o) = old {
            if o.ever_synced {
                self.synced = self.synced.saturating_sub(1);
            }
            if o.state == SyncState::Stale {
                self.stale = self.stale.saturating_sub(1);
            }
        }
    }

    /// Applies a report; reports for unknown names (a secret removed
    /// meanwhile) or an older generation are ignored.
    pub(crate) fn apply(
        &mut self,
        name: &str,
        generation: u64,
        report: SyncReport,
        now: SystemTime,
    ) {
        let Some(s) = self
            .secrets
            .get_mut(name)
            .filter(|s| s.generation == generation)
        else {
            return;
        };
        // A huge interval must not overflow the clock.
        let at = |d: Duration| unix(now.checked_add(d).unwrap_or(now));
        match report {
            SyncReport::Success {
                version,
                next_attempt,
            } => {
                Self::set_state(&mut self.stale, s, SyncState::Synced);
                s.last_success = Some(unix(now));
                s.consecutive_failures = 0;
                s.version = version;
                s.next_attempt = Some(at(next_attempt));
                if !s.ever_synced {
                    s.ever_synced = true;
                    self.synced += 1;
                }
            }
            SyncReport::Failure {
                error,
                kind,
                consecutive_failures,
                next_attempt,
            } => {
                // Never synced in this run, but its files are the ones an
                // earlier run wrote: stale, not failing.
                let state = if !s.ever_synced && self.intact.contains_key(name) {
                    SyncState::Stale
                } else {
                    SyncState::Failing
                };
                Self::set_state(&mut self.stale, s, state);
                s.last_error = Some(error);
                s.last_error_kind = Some(kind);
                s.consecutive_failures = consecutive_failures;
                s.next_attempt = Some(at(next_attempt));
            }
            SyncReport::Expiry {
                lease,
                certificate,
                next_attempt,
            } => {
                s.lease_expires = lease;
                s.certificate_expires = certificate;
                s.next_attempt = Some(at(next_attempt));
            }
        }
    }

    pub(crate) fn synced_count(&self) -> usize {
        self.synced
    }

    pub(crate) fn is_ready(&self) -> bool {
        let stale = if self.allow_stale { self.stale } else { 0 };
        let synced = self.synced_count().saturating_add(stale);
        match self.policy {
            ReadyPolicy::Any => synced > 0,
            ReadyPolicy::All => !self.secrets.is_empty() && synced == self.secrets.len(),
        }
    }

    pub(crate) fn ready_file(&self) -> ReadyFile {
        ReadyFile {
            ready: self.is_ready(),
            synced: self.synced_count(),
            total: self.secrets.len(),
            pid: std::process::id(),
            heartbeat: Some(unix(SystemTime::now())),
        }
    }

    /// Every secret has had at least one attempt (none is pending).
    pub(crate) fn all_tried(&self) -> bool {
        self.secrets.values().all(|s| s.state != SyncState::Pending)
    }

    pub(crate) fn secrets(&self) -> &BTreeMap<String, SecretStatus> {
        &self.secrets
    }

    pub(crate) fn policy(&self) -> ReadyPolicy {
        self.policy
    }
}

/// The time `secs` after the epoch (the epoch itself if that does not fit
/// the platform's clock type: never for a certificate's NotAfter).
pub(crate) fn at_unix(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH)
}

/// The current Unix time in seconds.
pub(crate) fn unix_now() -> u64 {
    unix(SystemTime::now())
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> SyncReport {
        SyncReport::Success {
            version: Some(crate::secret::Version::Number(2)),
            next_attempt: Duration::from_secs(60),
        }
    }

    fn fail() -> SyncReport {
        SyncReport::Failure {
            error: "permission denied".into(),
            kind: "permission_denied",
            consecutive_failures: 1,
            next_attempt: Duration::from_secs(1),
        }
    }

    #[test]
    fn intact_files_are_stale_not_failing_and_count_only_when_allowed() {
        let intact: std::collections::HashMap<String, u64> = [
            ("a".to_string(), 1_700_000_000),
            ("b".to_string(), 1_700_000_100),
        ]
        .into();
        for (allow, ready) in [(false, false), (true, true)] {
            let mut b = StatusBoard::new(ReadyPolicy::All).with_stale(intact.clone(), allow);
            for n in ["a", "b", "c"] {
                b.register(n, &Arc::from(n), 1, false);
            }
            // The earlier run's write time is shown until this run confirms.
            assert_eq!(b.secrets()["a"].last_success, Some(1_700_000_000));
            assert_eq!(b.secrets()["c"].last_success, None);
            b.apply("a", 1, fail(), SystemTime::now());
            b.apply("b", 1, fail(), SystemTime::now());
            assert_eq!(b.secrets()["a"].state, SyncState::Stale);
            // Without files of an earlier run: failing.
            b.apply("c", 1, fail(), SystemTime::now());
            assert_eq!(b.secrets()["c"].state, SyncState::Failing);
            assert!(!b.is_ready(), "c has nothing on disk");
            b.apply("c", 1, ok(), SystemTime::now());
            assert_eq!(b.is_ready(), ready, "allow_stale {allow}");
            // Once synced in this run, a failure is a failure again.
            b.apply("a", 1, ok(), SystemTime::now());
            b.apply("a", 1, fail(), SystemTime::now());
            assert_eq!(b.secrets()["a"].state, SyncState::Failing);
            assert_eq!(b.stale, 1);
            b.remove("b");
            assert_eq!(b.stale, 0);
            assert!(b.is_ready());
        }
    }

    #[test]
    fn all_tried_once_no_secret_is_pending() {
        let mut b = StatusBoard::new(ReadyPolicy::Any);
        b.register("a", &Arc::from("p/a"), 1, false);
        b.register("b", &Arc::from("p/b"), 1, false);
        b.apply("a", 1, ok(), SystemTime::now());
        assert!(!b.all_tried());
        b.apply("b", 1, fail(), SystemTime::now());
        assert!(b.all_tried());
        b.register("c", &Arc::from("p/c"), 1, false);
        assert!(!b.all_tried());
    }

    #[test]
    fn any_policy_needs_one_secret() {
        let mut b = StatusBoard::new(ReadyPolicy::Any);
        assert!(!b.is_ready());
        b.register("a", &Arc::from("p/a"), 1, false);
        b.register("b", &Arc::from("p/b"), 1, false);
        assert!(!b.is_ready());
        b.apply("b", 1, fail(), SystemTime::now());
        assert!(!b.is_ready());
        b.apply("a", 1, ok(), SystemTime::now());
        assert!(b.is_ready());
        // A later failure keeps the last good files, so stays ready.
        b.apply("a", 1, fail(), SystemTime::now());
        assert!(b.is_ready());
        assert_eq!(b.secrets()["a"].state, SyncState::Failing);
    }

    #[test]
    fn all_policy_needs_every_secret() {
        let mut b = StatusBoard::new(ReadyPolicy::All);
        b.register("a", &Arc::from("p/a"), 1, false);
        b.register("b", &Arc::from("p/b"), 1, false);
        b.apply("a", 1, ok(), SystemTime::now());
        assert!(!b.is_ready());
        b.apply("b", 1, ok(), SystemTime::now());
        assert!(b.is_ready());
        b.register("c", &Arc::from("p/c"), 1, false);
        assert!(!b.is_ready());
        b.remove("c");
        assert!(b.is_ready());
        assert_eq!(b.ready_file().synced, 2);
    }

    #[test]
    fn synced_count_follows_restarts_and_removals() {
        let mut b = StatusBoard::new(ReadyPolicy::All);
        b.register("a", &Arc::from("p/a"), 1, false);
        b.register("b", &Arc::from("p/b"), 1, false);
        b.apply("a", 1, ok(), SystemTime::now());
        b.apply("a", 1, ok(), SystemTime::now());
        assert_eq!(b.synced_count(), 1);
        // A changed secret restarts as pending.
        b.register("a", &Arc::from("p/a"), 2, false);
        assert_eq!(b.synced_count(), 0);
        b.apply("a", 2, ok(), SystemTime::now());
        b.apply("b", 1, ok(), SystemTime::now());
        assert_eq!(b.synced_count(), 2);
        assert!(b.is_ready());
        b.remove("b");
        b.remove("b");
        assert_eq!(b.synced_count(), 1);
        assert_eq!(
            b.synced_count(),
            b.secrets().values().filter(|s| s.ever_synced).count()
        );
    }

    #[test]
    fn a_restart_with_the_same_files_keeps_readiness() {
        let mut b = StatusBoard::new(ReadyPolicy::All);
        b.register("a", &Arc::from("p/a"), 1, false);
        b.apply("a", 1, ok(), SystemTime::now());
        assert!(b.is_ready());
        b.register("a", &Arc::from("kv/a"), 2, true);
        assert!(b.is_ready());
        assert_eq!(&*b.secrets()["a"].path, "kv/a");
        // Reports of the old generation no longer count.
        b.apply("a", 1, fail(), SystemTime::now());
        assert_eq!(b.secrets()["a"].state, SyncState::Synced);
        b.apply("a", 2, fail(), SystemTime::now());
        assert_eq!(b.secrets()["a"].state, SyncState::Failing);
        assert!(b.is_ready(), "last good files are still in place");
    }

    #[test]
    fn reports_for_unknown_secrets_are_ignored() {
        let mut b = StatusBoard::new(ReadyPolicy::Any);
        b.apply("ghost", 1, ok(), SystemTime::now());
        assert!(b.secrets().is_empty());
    }

    #[test]
    fn reports_of_an_older_generation_are_ignored() {
        let mut b = StatusBoard::new(ReadyPolicy::Any);
        b.register("a", &Arc::from("p/a"), 2, false);
        b.apply("a", 1, ok(), SystemTime::now());
        assert!(!b.is_ready());
        b.apply("a", 2, ok(), SystemTime::now());
        assert!(b.is_ready());
    }

    #[test]
    fn success_records_version_and_times() {
        let mut b = StatusBoard::new(ReadyPolicy::Any);
        b.register("a", &Arc::from("p/a"), 1, false);
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        b.apply("a", 1, fail(), now);
        b.apply("a", 1, ok(), now);
        let s = &b.secrets()["a"];
        assert_eq!(s.version, Some(crate::secret::Version::Number(2)));
        assert_eq!(s.last_success, Some(1000));
        assert_eq!(s.next_attempt, Some(1060));
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.last_error.as_deref(), Some("permission denied"));
    }
}
