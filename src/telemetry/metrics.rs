//! Prometheus metrics, named by Prometheus conventions (base units,
//! `_total` counters). The seed's four metrics keep their names and labels.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `secret_fetch_total` | counter | secret_name, vault_path, status (success, error: the read) |
//! | `secret_fetch_errors_total` | counter | secret_name, vault_path |
//! | `secret_sync_errors_total` | counter | secret_name, vault_path, stage (fetch, render, write) |
//! | `secret_sync_duration_seconds` | histogram | secret_name, vault_path |
//! | `secret_last_success_timestamp_seconds` | gauge | secret_name, vault_path |
//! | `secret_files_written_total` | counter | secret_name, vault_path |
//! | `circuit_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | secret_name, vault_path |
//! | `secret_lease_expiry_timestamp_seconds` | gauge | secret_name |
//! | `secret_certificate_expiry_timestamp_seconds` | gauge | secret_name |
//! | `vault_lease_renewals_total` | counter | result (success, short, failure) |
//! | `secret_inplace_fallbacks_total` | counter | secret_name |
//! | `secret_age_seconds` | gauge (seconds since the source last confirmed the content) | secret_name |
//! | `vault_circuit_breaker_state` | gauge | none |
//! | `vault_request_duration_seconds` | histogram | operation (auth, lookup, renew, read, issue, ca, lease_renew, lease_revoke, token_revoke) |
//! | `vault_request_errors_total` | counter | operation, kind |
//! | `vault_token_ttl_seconds` | gauge | none |
//! | `vault_rate_limited_total` | counter | none (429s, and 503s with `Retry-After`) |
//! | `config_reloads_total` | counter | result (success, failure) |
//! | `secrets_configured` | gauge | none |
//! | `secrets_ready` | gauge (0/1) | none |
//! | `secrets_synced` | gauge | none |
//! | `secret_action_runs_total` | counter | action, result (ok, failed, timeout, skipped) |
//! | `secret_action_duration_seconds` | histogram | action |
//! | `http_requests_total` | counter | method, route, status |
//! | `http_request_duration_seconds` | histogram | method, route |
//! | `secrets_api_reads_total` | counter | secret_name (configured names only), result (ok, not_synced, refresh_failed, rate_limited, unauthorized) |
//!
//! The eleven per-secret families live in [`super::series`] (one compact
//! block per secret instead of a `prometheus` child per series); the rest are
//! plain `prometheus` metrics. Series of a secret removed by a reload are
//! deleted. No label ever holds a value: labels are names, paths, operations
//! and error kinds.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use super::series::{SecretSeriesSet, SharedSeries, LATENCY_BUCKETS};

/// Every metric family this process exports (the table above).
#[cfg(test)]
const METRIC_NAMES: &[&str] = &[
    "secret_fetch_total",
    "secret_fetch_errors_total",
    "secret_sync_errors_total",
    "secret_sync_duration_seconds",
    "secret_last_success_timestamp_seconds",
    "secret_files_written_total",
    "circuit_breaker_state",
    "secret_lease_expiry_timestamp_seconds",
    "secret_certificate_expiry_timestamp_seconds",
    "vault_lease_renewals_total",
    "secret_inplace_fallbacks_total",
    "secret_age_seconds",
    "vault_circuit_breaker_state",
    "vault_request_duration_seconds",
    "vault_request_errors_total",
    "vault_token_ttl_seconds",
    "vault_rate_limited_total",
    "config_reloads_total",
    "secrets_configured",
    "secrets_ready",
    "secrets_synced",
    "http_requests_total",
    "http_request_duration_seconds",
    "secret_action_runs_total",
    "secret_action_duration_seconds",
    "secrets_api_reads_total",
];

/// Every metric of the process, registered in one registry.
pub(crate) struct Metrics {
    registry: Registry,
    /// The per-secret families.
    pub(crate) secrets: Arc<SecretSeriesSet>,
    pub(crate) vault_breaker_state: IntGauge,
    pub(crate) vault_request_duration: HistogramVec,
    pub(crate) vault_request_errors: IntCounterVec,
    pub(crate) token_ttl: Gauge,
    /// Answers that asked the process to slow down: 429 (a rate-limit
    /// quota), 503 with `Retry-After`.
    pub(crate) vault_rate_limited: IntCounter,
    pub(crate) config_reloads: IntCounterVec,
    pub(crate) secrets_configured: IntGauge,
    pub(crate) secrets_ready: IntGauge,
    /// The Go tool's gauge: secrets synced at least once (and still configured).
    pub(crate) secrets_synced: IntGauge,
    pub(crate) http_requests: IntCounterVec,
    pub(crate) http_duration: HistogramVec,
    pub(crate) action_runs: IntCounterVec,
    pub(crate) action_duration: HistogramVec,
    /// `vault_lease_renewals_total{result}`: success (granted what was
    /// asked), short (less: the max TTL is near, new credentials follow),
    /// failure.
    pub(crate) lease_renewals: IntCounterVec,
    /// Reads of the local secrets API by secret (configured names only:
    /// a caller cannot add series) and result.
    pub(crate) api_reads: IntCounterVec,
}

impl Metrics {
    /// Builds and registers every metric.
    pub(crate) fn new() -> Arc<Self> {
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definition is valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("metric names are unique");
                m
            }};
        }
        let hist = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())
        };
        let secrets = Arc::new(SecretSeriesSet::new().expect("metric definitions are valid"));
        registry
            .register(Box::new(SharedSeries(Arc::clone(&secrets))))
            .expect("metric names are unique");
        Arc::new(Self {
            secrets,
            vault_breaker_state: reg!(IntGauge::new(
                "vault_circuit_breaker_state",
                "Current circuit breaker state: 0 closed, 1 half-open, 2 open."
            )),
            vault_request_duration: reg!(HistogramVec::new(
                hist("vault_request_duration_seconds", "Vault request latency by operation."),
                &["operation"]
            )),
            vault_request_errors: reg!(IntCounterVec::new(
                Opts::new("vault_request_errors_total", "Failed Vault requests by operation and error kind."),
                &["operation", "kind"]
            )),
            token_ttl: reg!(Gauge::new(
                "vault_token_ttl_seconds",
                "Remaining TTL of the Vault token at scrape time (0 for a token that does not expire)."
            )),
            vault_rate_limited: reg!(IntCounter::new(
                "vault_rate_limited_total",
                "Vault answers that asked to slow down: 429 (rate-limit quota) and 503 with Retry-After."
            )),
            config_reloads: reg!(IntCounterVec::new(
                Opts::new("config_reloads_total", "Config reloads by result."),
                &["result"]
            )),
            secrets_configured: reg!(IntGauge::new("secrets_configured", "Secrets in the running config.")),
            secrets_ready: reg!(IntGauge::new("secrets_ready", "1 when the readiness policy holds, else 0.")),
            secrets_synced: reg!(IntGauge::new("secrets_synced", "Secrets synced at least once.")),
            http_requests: reg!(IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests served, by method, route and status."),
                &["method", "route", "status"]
            )),
            http_duration: reg!(HistogramVec::new(
                hist("http_request_duration_seconds", "HTTP request latency by method and route."),
                &["method", "route"]
            )),
            action_runs: reg!(IntCounterVec::new(
                Opts::new("secret_action_runs_total", "Change action runs by action and result (ok, failed, timeout, skipped)."),
                &["action", "result"]
            )),
            action_duration: reg!(HistogramVec::new(
                hist("secret_action_duration_seconds", "Change action run time by action."),
                &["action"]
            )),
            lease_renewals: reg!(IntCounterVec::new(
                Opts::new("vault_lease_renewals_total", "Lease renewals by result (success, short: granted less than asked, failure)."),
                &["result"]
            )),
            api_reads: reg!(IntCounterVec::new(
                Opts::new("secrets_api_reads_total", "Reads of the local secrets API by secret and result (ok, not_synced, refresh_failed, rate_limited, unauthorized)."),
                &["secret_name", "result"]
            )),
            registry,
        })
    }

    /// Records one Vault request.
    pub(crate) fn vault_request(&self, op: &str, took: Duration, error_kind: Option<&str>) {
        self.vault_request_duration
            .with_label_values(&[op])
            .observe(took.as_secs_f64());
        if let Some(kind) = error_kind {
            self.vault_request_errors
                .with_label_values(&[op, kind])
                .inc();
        }
    }

    /// Drops the series of an action removed by a reload.
    pub(crate) fn remove_action(&self, action: &str) {
        for result in crate::action::RESULT_LABELS {
            let _ = self.action_runs.remove_label_values(&[action, result]);
        }
        let _ = self.action_duration.remove_label_values(&[action]);
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::series::{Attempt, SyncStage};

    /// Gives every family a series, so that all appear in the output.
    fn touch_all(m: &Metrics) {
        m.api_reads.with_label_values(&["s", "ok"]).inc();
        let s = m.secrets.register("s", "p".into());
        s.record(
            Duration::from_millis(100),
            Some(2),
            Attempt::Synced {
                files_written: 1,
                at: 1.0,
            },
        );
        s.record(
            Duration::from_millis(100),
            Some(2),
            Attempt::Failed {
                stage: SyncStage::Write,
                vault: true,
            },
        );
        m.vault_request("read", Duration::from_millis(1), Some("network"));
        m.config_reloads.with_label_values(&["success"]).inc();
        m.http_requests
            .with_label_values(&["GET", "/ready", "200"])
            .inc();
        m.http_duration
            .with_label_values(&["GET", "/ready"])
            .observe(0.001);
        m.action_runs.with_label_values(&["reload", "ok"]).inc();
        m.lease_renewals.with_label_values(&["success"]).inc();
        s.set_lease_expiry(Some(2));
        s.set_certificate_expiry(Some(3));
        s.count_inplace_fallbacks(1);
        m.action_duration
            .with_label_values(&["reload"])
            .observe(0.01);
    }

    #[test]
    fn metric_names_list_is_exactly_what_is_exported() {
        let m = Metrics::new();
        touch_all(&m);
        let text = m.render();
        let mut exported: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        exported.sort();
        let mut listed = METRIC_NAMES.to_vec();
        listed.sort();
        assert_eq!(exported, listed);
    }

    #[test]
    fn dashboard_uses_only_exported_metrics() {
        let dash = include_str!("../../monitoring/grafana-dashboard.json");
        let v: serde_json::Value = serde_json::from_str(dash).unwrap();
        let mut used = 0;
        for p in v["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
                // Label names are not metrics.
                let words = words.filter(|w| !["secret_name", "vault_path"].contains(w));
                for w in words.filter(|w| {
                    [
                        "secret_", "secrets_", "vault_", "circuit_", "config_", "http_",
                    ]
                    .iter()
                    .any(|p| w.starts_with(p))
                }) {
                    let base = ["_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| w.strip_suffix(s))
                        .unwrap_or(w);
                    assert!(
                        METRIC_NAMES.contains(&base),
                        "dashboard uses unknown metric {w}"
                    );
                    used += 1;
                }
            }
        }
        assert!(used >= 14, "only {used} metric references found");
    }

    #[test]
    fn renders_and_removes_secret_series() {
        let m = Metrics::new();
        m.secrets.register("db", "secret/data/db".into()).record(
            Duration::from_millis(1),
            None,
            Attempt::Failed {
                stage: SyncStage::Render,
                vault: false,
            },
        );
        m.vault_request("read", Duration::from_millis(3), Some("network"));
        let text = m.render();
        assert!(
            text.contains(r#"secret_fetch_total{secret_name="db",status="success",vault_path="secret/data/db"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vault_request_errors_total{kind="network",operation="read"} 1"#),
            "{text}"
        );
        m.secrets.remove("db");
        let text = m.render();
        assert!(!text.contains(r#"secret_name="db""#), "{text}");
    }
}
