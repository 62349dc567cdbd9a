//! Prometheus metrics, named by Prometheus conventions (base units,
//! `_total` counters). The seed's four metrics keep their names and labels.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `secret_fetch_total` | counter | secret_name, vault_path |
//! | `secret_fetch_errors_total` | counter | secret_name, vault_path |
//! | `secret_sync_errors_total` | counter | secret_name, vault_path, stage (fetch, render, write) |
//! | `secret_sync_duration_seconds` | histogram | secret_name, vault_path |
//! | `secret_last_success_timestamp_seconds` | gauge | secret_name, vault_path |
//! | `secret_files_written_total` | counter | secret_name, vault_path |
//! | `circuit_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | secret_name, vault_path |
//! | `vault_circuit_breaker_state` | gauge | none |
//! | `vault_request_duration_seconds` | histogram | operation (auth, lookup, renew, read) |
//! | `vault_request_errors_total` | counter | operation, kind |
//! | `vault_token_ttl_seconds` | gauge | none |
//! | `config_reloads_total` | counter | result (success, failure) |
//! | `secrets_configured` | gauge | none |
//! | `secrets_ready` | gauge (0/1) | none |
//! | `http_requests_total` | counter | method, route, status |
//! | `http_request_duration_seconds` | histogram | method, route |
//!
//! Series of a secret removed by a reload are deleted. No label ever holds a
//! value: labels are names, paths, operations and error kinds.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

const SECRET_LABELS: &[&str] = &["secret_name", "vault_path"];

/// Every metric family this process exports (the table above).
pub const METRIC_NAMES: &[&str] = &[
    "secret_fetch_total",
    "secret_fetch_errors_total",
    "secret_sync_errors_total",
    "secret_sync_duration_seconds",
    "secret_last_success_timestamp_seconds",
    "secret_files_written_total",
    "circuit_breaker_state",
    "vault_circuit_breaker_state",
    "vault_request_duration_seconds",
    "vault_request_errors_total",
    "vault_token_ttl_seconds",
    "config_reloads_total",
    "secrets_configured",
    "secrets_ready",
    "http_requests_total",
    "http_request_duration_seconds",
];

/// Every metric of the process, registered in one registry.
pub struct Metrics {
    registry: Registry,
    pub fetch_total: IntCounterVec,
    pub fetch_errors_total: IntCounterVec,
    pub sync_errors_total: IntCounterVec,
    pub sync_duration: HistogramVec,
    pub last_success: GaugeVec,
    pub files_written: IntCounterVec,
    pub breaker_state: IntGaugeVec,
    pub vault_breaker_state: IntGauge,
    pub vault_request_duration: HistogramVec,
    pub vault_request_errors: IntCounterVec,
    pub token_ttl: Gauge,
    pub config_reloads: IntCounterVec,
    pub secrets_configured: IntGauge,
    pub secrets_ready: IntGauge,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
}

/// Latency buckets from 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// Builds and registers every metric.
    pub fn new() -> Arc<Self> {
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
        Arc::new(Self {
            fetch_total: reg!(IntCounterVec::new(
                Opts::new("secret_fetch_total", "Secret reads attempted, per secret."),
                SECRET_LABELS
            )),
            fetch_errors_total: reg!(IntCounterVec::new(
                Opts::new("secret_fetch_errors_total", "Secret reads that failed, per secret."),
                SECRET_LABELS
            )),
            sync_errors_total: reg!(IntCounterVec::new(
                Opts::new("secret_sync_errors_total", "Failed syncs by stage (fetch, render, write)."),
                &["secret_name", "vault_path", "stage"]
            )),
            sync_duration: reg!(HistogramVec::new(
                hist("secret_sync_duration_seconds", "Duration of a sync attempt (fetch, render, write)."),
                SECRET_LABELS
            )),
            last_success: reg!(GaugeVec::new(
                Opts::new(
                    "secret_last_success_timestamp_seconds",
                    "Unix time of the last successful sync, per secret."
                ),
                SECRET_LABELS
            )),
            files_written: reg!(IntCounterVec::new(
                Opts::new("secret_files_written_total", "Files replaced on disk (unchanged files are not counted)."),
                SECRET_LABELS
            )),
            breaker_state: reg!(IntGaugeVec::new(
                Opts::new(
                    "circuit_breaker_state",
                    "Circuit breaker state seen by the secret's last attempt: 0 closed, 1 half-open, 2 open."
                ),
                SECRET_LABELS
            )),
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
            config_reloads: reg!(IntCounterVec::new(
                Opts::new("config_reloads_total", "Config reloads by result."),
                &["result"]
            )),
            secrets_configured: reg!(IntGauge::new("secrets_configured", "Secrets in the running config.")),
            secrets_ready: reg!(IntGauge::new("secrets_ready", "1 when the readiness policy holds, else 0.")),
            http_requests: reg!(IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests served, by method, route and status."),
                &["method", "route", "status"]
            )),
            http_duration: reg!(HistogramVec::new(
                hist("http_request_duration_seconds", "HTTP request latency by method and route."),
                &["method", "route"]
            )),
            registry,
        })
    }

    /// Deletes every series of a secret (after a reload removed it).
    pub fn remove_secret(&self, name: &str, path: &str) {
        let l = [name, path];
        let _ = self.fetch_total.remove_label_values(&l);
        let _ = self.fetch_errors_total.remove_label_values(&l);
        let _ = self.sync_duration.remove_label_values(&l);
        let _ = self.last_success.remove_label_values(&l);
        let _ = self.files_written.remove_label_values(&l);
        let _ = self.breaker_state.remove_label_values(&l);
        for stage in ["fetch", "render", "write"] {
            let _ = self
                .sync_errors_total
                .remove_label_values(&[name, path, stage]);
        }
    }

    /// Records one Vault request.
    pub fn vault_request(&self, op: &str, took: Duration, error_kind: Option<&str>) {
        self.vault_request_duration
            .with_label_values(&[op])
            .observe(took.as_secs_f64());
        if let Some(kind) = error_kind {
            self.vault_request_errors
                .with_label_values(&[op, kind])
                .inc();
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
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

    /// Gives every family a series, so that all appear in the output.
    fn touch_all(m: &Metrics) {
        let l = ["s", "p"];
        m.fetch_total.with_label_values(&l).inc();
        m.fetch_errors_total.with_label_values(&l).inc();
        m.sync_errors_total
            .with_label_values(&["s", "p", "write"])
            .inc();
        m.sync_duration.with_label_values(&l).observe(0.1);
        m.last_success.with_label_values(&l).set(1.0);
        m.files_written.with_label_values(&l).inc();
        m.breaker_state.with_label_values(&l).set(2);
        m.vault_request("read", Duration::from_millis(1), Some("network"));
        m.config_reloads.with_label_values(&["success"]).inc();
        m.http_requests
            .with_label_values(&["GET", "/ready", "200"])
            .inc();
        m.http_duration
            .with_label_values(&["GET", "/ready"])
            .observe(0.001);
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
        m.fetch_total
            .with_label_values(&["db", "secret/data/db"])
            .inc();
        m.sync_errors_total
            .with_label_values(&["db", "secret/data/db", "render"])
            .inc();
        m.vault_request("read", Duration::from_millis(3), Some("network"));
        let text = m.render();
        assert!(
            text.contains(r#"secret_fetch_total{secret_name="db",vault_path="secret/data/db"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vault_request_errors_total{kind="network",operation="read"} 1"#),
            "{text}"
        );
        m.remove_secret("db", "secret/data/db");
        let text = m.render();
        assert!(!text.contains(r#"secret_name="db""#), "{text}");
    }
}
