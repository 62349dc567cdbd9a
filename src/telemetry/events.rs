//! Events that feed several outputs from one place (the pattern of vector's
//! `internal_events`): one struct per event, one `emit()` that writes the
//! log line, the metrics, the audit lines and the span fields, so that the
//! outputs cannot disagree. An event writes to sinks (log, metrics, audit,
//! span) and returns what the actor must report; it never sends a message
//! nor decides what happens next.

use std::time::{Duration, SystemTime};

use crate::attempt::SyncError;
use crate::duration::GoDuration;
use crate::fs::Written;
use crate::pki::CertInfo;
use crate::plan::{Job, JobSource};
use crate::status::SyncReport;
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::series::{Attempt, SecretSeries};
use crate::vault::breaker::State;
use crate::vault::lease::{Lease, Step};
use crate::vault::VaultError;

/// One sync attempt of one secret, finished.
pub(crate) struct AttemptFinished<'a> {
    pub(crate) job: &'a Job,
    pub(crate) took: Duration,
    /// `Some(version)` once the secret was read from its source (the version is
    /// `None` for KV v1), whatever happened after.
    pub(crate) read: Option<Option<crate::secret::Version>>,
    /// Per file, in the job's order; or why the attempt failed.
    pub(crate) outcome: &'a Result<Vec<Written>, SyncError>,
    /// The breaker state the read saw (`None`: the Vault actor did not answer).
    pub(crate) breaker: Option<State>,
    /// When the next attempt is due.
    pub(crate) next_in: Duration,
    pub(crate) consecutive_failures: u32,
}

impl AttemptFinished<'_> {
    /// Audit lines, metrics, span fields and the log line; returns what the
    /// status board records. Nothing here carries a secret value: errors
    /// are already redacted, files are named by path.
    pub(crate) fn emit(
        &self,
        audit: &Audit,
        series: &SecretSeries,
        span: &tracing::Span,
    ) -> SyncReport {
        let job = self.job;
        let version = self.read.clone().flatten();
        if self.read.is_some() {
            audit.secret_read(&job.name, &job.display_path, version.as_ref());
        }
        // The targets this attempt replaced, in the job's order (one pass
        // serves the audit lines, the counter and the log line).
        let changed: Vec<&crate::fs::WriteTarget> = match self.outcome {
            Ok(written) => job
                .files
                .iter()
                .zip(written)
                .filter(|(_, w)| w.changed())
                .map(|(f, _)| &f.target)
                .collect(),
            Err(_) => Vec::new(),
        };
        for target in &changed {
            audit.file_written(&job.name, target, version.as_ref());
        }
        if let Ok(written) = self.outcome {
            let busy = written
                .iter()
                .filter(|w| matches!(w, Written::InPlaceAfterBusy | Written::RenamedNotOurs))
                .count();
            if busy > 0 {
                series.count_inplace_fallbacks(busy as u64);
            }
        }
        let attempt = match self.outcome {
            Ok(_) => Attempt::Synced {
                files_written: changed.len() as u64,
                at: crate::status::unix(SystemTime::now()) as f64,
            },
            Err(e) => Attempt::Failed {
                stage: e.stage(),
                vault: matches!(e, SyncError::Vault(_)),
            },
        };
        series.record(self.took, self.breaker.map(State::as_gauge), attempt);
        match self.outcome {
            Ok(_) => {
                if changed.is_empty() {
                    tracing::debug!(secret = %job.name, version = version.as_ref().map(tracing::field::display), "secret unchanged");
                } else {
                    tracing::info!(
                        secret = %job.name,
                        version = version.as_ref().map(tracing::field::display),
                        files_changed = changed.len(),
                        files = ?changed.iter().map(|t| t.path.display().to_string()).collect::<Vec<_>>(),
                        "secret synced"
                    );
                }
                SyncReport::Success {
                    version,
                    next_attempt: self.next_in,
                }
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("error_kind", e.kind());
                tracing::warn!(
                    secret = %job.name,
                    error = %e,
                    error_kind = e.kind(),
                    consecutive_failures = self.consecutive_failures,
                    retry_in = %GoDuration(self.next_in),
                    "secret sync failed; keeping the last good files"
                );
                SyncReport::Failure {
                    error: e.to_string(),
                    kind: e.kind(),
                    consecutive_failures: self.consecutive_failures,
                    next_attempt: self.next_in,
                }
            }
        }
    }
}

/// One run of a change action, finished.
pub(crate) struct ActionRan<'a> {
    pub(crate) spec: &'a crate::config::ActionSpec,
    pub(crate) trigger: &'a crate::action::Trigger,
    pub(crate) result: &'a crate::action::RunResult,
    /// Which run of this batch (1 = the first, 2.. = retries).
    pub(crate) attempt: u32,
    /// After a failure: when the next retry is due, or `None` when the
    /// batch was given up.
    pub(crate) retry_in: Option<Duration>,
}

impl ActionRan<'_> {
    /// The log line, `secret_action_runs_total`,
    /// `secret_action_duration_seconds`, the `action_run` audit line and
    /// the span's status. Names, paths, results and counts only: what a
    /// program printed or an answer held is never kept.
    pub(crate) fn emit(
        &self,
        metrics: &crate::telemetry::metrics::Metrics,
        audit: &Audit,
        span: &tracing::Span,
    ) {
        let name = self.spec.name.as_str();
        let outcome = &self.result.outcome;
        let result = outcome.label();
        metrics.action_runs.with_label_values(&[name, result]).inc();
        metrics
            .action_duration
            .with_label_values(&[name])
            .observe(self.result.took.as_secs_f64());
        audit.action_run(name, &self.trigger.secrets, result);
        let reason = outcome.reason(self.spec.timeout);
        let took_ms = u64::try_from(self.result.took.as_millis()).unwrap_or(u64::MAX);
        let secrets = self.trigger.secrets.join(",");
        match outcome {
            crate::action::Outcome::Ok => tracing::info!(
                action = name,
                kind = self.spec.kind.name(),
                secrets = %secrets,
                files = self.trigger.files.len(),
                took_ms,
                output_bytes = self.result.output_bytes,
                pids = ?self.result.signalled,
                attempt = self.attempt,
                "action ran"
            ),
            crate::action::Outcome::Skipped(_) => tracing::debug!(
                action = name,
                kind = self.spec.kind.name(),
                secrets = %secrets,
                reason = reason.as_deref().unwrap_or_default(),
                "action skipped: nothing to tell yet"
            ),
            _ => {
                span.record("otel.status_code", "ERROR");
                let retry = self
                    .retry_in
                    .map(|d| GoDuration(d).to_string())
                    .unwrap_or_else(|| "no (given up until the next change)".into());
                tracing::warn!(
                    action = name,
                    kind = self.spec.kind.name(),
                    secrets = %secrets,
                    result,
                    reason = reason.as_deref().unwrap_or_default(),
                    took_ms,
                    output_bytes = self.result.output_bytes,
                    attempt = self.attempt,
                    retry_in = %retry,
                    "action failed; the secrets' files are in place and their sync is not affected"
                );
            }
        }
    }
}

/// Unix seconds `d` from now.
fn unix_in(d: Duration) -> u64 {
    let now = SystemTime::now();
    crate::status::unix(now.checked_add(d).unwrap_or(now))
}

/// A fetch that succeeded brought a lease or a certificate.
pub(crate) struct Issued<'a> {
    pub(crate) job: &'a Job,
    pub(crate) lease: Option<&'a Lease>,
    pub(crate) cert: Option<&'a CertInfo>,
    /// When the next step (renewal or fetch) is due.
    pub(crate) next_in: Duration,
}

impl Issued<'_> {
    /// The expiry gauges, the `certificate_issued` audit line and the log
    /// line; returns the expiry for `/status` (`None` for a KV secret).
    /// Never the lease id or the key.
    pub(crate) fn emit(&self, audit: &Audit, series: &SecretSeries) -> Option<SyncReport> {
        let job = self.job;
        let lease = self.lease.map(|l| unix_in(l.duration));
        series.set_lease_expiry(lease);
        if let Some(l) = self.lease {
            tracing::info!(
                secret = %job.name,
                path = %job.display_path,
                lease_ttl = %GoDuration(l.duration),
                renewable = l.renewable,
                next_step_in = %GoDuration(self.next_in),
                "new credentials with a lease"
            );
        }
        let certificate = self.cert.map(|c| c.not_after);
        if let Some(c) = self.cert {
            series.set_certificate_expiry(certificate);
            let not_after = crate::status::at_unix(c.not_after);
            audit.certificate_issued(&job.name, &job.display_path, &c.serial, not_after);
            tracing::info!(
                secret = %job.name,
                path = %job.display_path,
                serial_number = %c.serial,
                not_after = %crate::telemetry::audit::rfc3339(not_after),
                renew_in = %GoDuration(self.next_in),
                "certificate issued"
            );
        }
        // Also for an answer without a lease: a lease shown before is gone.
        matches!(job.source, JobSource::Dynamic { .. } | JobSource::Pki(_)).then_some(
            SyncReport::Expiry {
                lease,
                certificate,
                next_attempt: self.next_in,
            },
        )
    }
}

/// A lease renewal finished.
pub(crate) struct LeaseRenewed<'a> {
    pub(crate) job: &'a Job,
    /// The duration the renewal asked for.
    pub(crate) asked: Duration,
    pub(crate) result: &'a Result<Lease, VaultError>,
    /// What the actor decided comes next after a granted renewal.
    pub(crate) next: Option<(Duration, Step)>,
}

impl LeaseRenewed<'_> {
    /// `vault_lease_renewals_total`, the expiry gauge, the `lease_renewed`
    /// audit line and the log line; returns the expiry for `/status`
    /// (`None` after a failure).
    pub(crate) fn emit(
        &self,
        metrics: &Metrics,
        audit: &Audit,
        series: &SecretSeries,
    ) -> Option<SyncReport> {
        let job = self.job;
        let (granted, (next_in, step)) = match (self.result, self.next) {
            (Ok(g), Some(next)) => (g, next),
            (Ok(_), None) => return None,
            (Err(e), _) => {
                metrics.lease_renewals.with_label_values(&["failure"]).inc();
                tracing::warn!(
                    secret = %job.name,
                    path = %job.display_path,
                    error = %e,
                    error_kind = e.kind(),
                    "lease renewal failed; fetching new credentials"
                );
                return None;
            }
        };
        let result = if step == Step::Renew {
            "success"
        } else {
            "short"
        };
        metrics.lease_renewals.with_label_values(&[result]).inc();
        let expires = unix_in(granted.duration);
        series.set_lease_expiry(Some(expires));
        audit.lease_renewed(
            &job.name,
            &job.display_path,
            crate::status::at_unix(expires),
        );
        tracing::info!(
            secret = %job.name,
            path = %job.display_path,
            lease_ttl = %GoDuration(granted.duration),
            asked = %GoDuration(self.asked),
            next = if step == Step::Renew { "renew" } else { "new credentials" },
            next_in = %GoDuration(next_in),
            "lease renewed"
        );
        Some(SyncReport::Expiry {
            lease: Some(expires),
            certificate: None,
            next_attempt: next_in,
        })
    }
}

/// A dynamic secret's lease was kept at start (`STATE_DIR`: the files it
/// wrote are intact and the lease has time left): it is renewed, no new
/// credentials are asked for.
pub(crate) struct LeaseKept<'a> {
    pub(crate) job: &'a Job,
    /// Unix seconds when the lease ends.
    pub(crate) expires_at: u64,
    pub(crate) next_in: Duration,
}

impl LeaseKept<'_> {
    /// Sets the expiry gauge and logs it; returns what marks the secret
    /// synced on `/status` (no Vault request was made).
    pub(crate) fn emit(&self, series: &SecretSeries) -> [SyncReport; 2] {
        series.set_lease_expiry(Some(self.expires_at));
        tracing::info!(
            secret = %self.job.name,
            path = %self.job.display_path,
            expires = %crate::telemetry::audit::rfc3339(crate::status::at_unix(self.expires_at)),
            next_step_in = %GoDuration(self.next_in),
            "credentials on disk and their lease kept from STATE_DIR: renewal scheduled"
        );
        [
            SyncReport::Success {
                version: None,
                next_attempt: self.next_in,
            },
            SyncReport::Expiry {
                lease: Some(self.expires_at),
                certificate: None,
                next_attempt: self.next_in,
            },
        ]
    }
}

/// A `pki` secret's certificate on disk was kept at start.
pub(crate) struct CertificateKept<'a> {
    pub(crate) job: &'a Job,
    pub(crate) cert: &'a CertInfo,
    pub(crate) next_in: Duration,
}

impl CertificateKept<'_> {
    /// Sets the expiry gauge and logs the serial kept; returns what marks
    /// the secret synced on `/status` (no Vault request was made).
    pub(crate) fn emit(&self, series: &SecretSeries) -> [SyncReport; 2] {
        let job = self.job;
        series.set_certificate_expiry(Some(self.cert.not_after));
        let not_after = crate::status::at_unix(self.cert.not_after);
        tracing::info!(
            secret = %job.name,
            serial_number = %self.cert.serial,
            not_after = %crate::telemetry::audit::rfc3339(not_after),
            renew_in = %GoDuration(self.next_in),
            "certificate on disk is still valid: kept, renewal scheduled"
        );
        [
            SyncReport::Success {
                version: None,
                next_attempt: self.next_in,
            },
            SyncReport::Expiry {
                lease: None,
                certificate: Some(self.cert.not_after),
                next_attempt: self.next_in,
            },
        ]
    }
}

/// The local secrets API answered a read of one secret (or refused it).
pub(crate) struct ApiRead<'a> {
    /// The name asked for (bounded and free of control characters: the
    /// API checked it before).
    pub(crate) secret: &'a str,
    /// A peer address, or `uid:N` on the unix socket.
    pub(crate) caller: &'a str,
    /// ok, not_found, not_synced, refresh_failed, rate_limited, unauthorized.
    pub(crate) result: &'static str,
    /// A configured secret: only those get a metric series.
    pub(crate) configured: bool,
}

impl ApiRead<'_> {
    /// The audit line, the counter and a debug log line (names only).
    pub(crate) fn emit(&self, audit: &Audit, metrics: &Metrics) {
        audit.api_read(self.secret, self.caller, self.result);
        if self.configured {
            metrics
                .api_reads
                .with_label_values(&[self.secret, self.result])
                .inc();
        }
        tracing::debug!(
            secret = %self.secret,
            caller = %self.caller,
            result = self.result,
            "secrets API read"
        );
    }
}
