//! Settings from the command line and the environment.
//!
//! Every variable of the seed is also a flag (clap's `env`): a flag wins over
//! its variable, and both win over the config file where they overlap
//! (`VAULT_ADDR` over `secretStore.address`, and so on).

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

use super::duration::parse_duration;
use crate::status::ReadyPolicy;

/// Settings shared by `run` and `check`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The YAML file that lists the secrets.
    #[arg(long = "config", env = "CONFIG_FILE", default_value = "/config.yaml")]
    pub config_file: PathBuf,

    /// Vault/OpenBao address; overrides secretStore.address.
    #[arg(long, env = "VAULT_ADDR")]
    pub vault_addr: Option<String>,

    /// Token for token auth; overrides secretStore.token.
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,

    /// AppRole role ID; overrides secretStore.roleId.
    #[arg(long, env = "VAULT_ROLE_ID", hide_env_values = true)]
    pub vault_role_id: Option<String>,

    /// AppRole secret ID; overrides secretStore.secretId.
    #[arg(long, env = "VAULT_SECRET_ID", hide_env_values = true)]
    pub vault_secret_id: Option<String>,

    /// Vault Enterprise / OpenBao namespace (X-Vault-Namespace).
    #[arg(long, env = "VAULT_NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// PEM file with the CA certificate(s) that sign Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT")]
    pub vault_cacert: Option<PathBuf>,

    /// Disable TLS certificate verification (testing only).
    #[arg(long, env = "VAULT_SKIP_VERIFY", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub vault_skip_verify: Option<bool>,
}

/// Settings of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// Reload the config file when it changes.
    #[arg(long, env = "WATCH_CONFIG", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub watch_config: bool,

    /// Probes let through while the circuit breaker is half-open.
    #[arg(long, env = "CIRCUIT_BREAKER_MAX_REQUESTS", default_value_t = 3)]
    pub circuit_breaker_max_requests: u32,

    /// Period after which the closed breaker clears its failure counts.
    #[arg(long, env = "CIRCUIT_BREAKER_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub circuit_breaker_interval: Duration,

    /// Consecutive Vault failures (no answer, 5xx) that open the breaker.
    #[arg(long, env = "CIRCUIT_BREAKER_FAILURE_THRESHOLD", default_value_t = 5)]
    pub circuit_breaker_failure_threshold: u32,

    /// How long the breaker stays open before probing again.
    #[arg(long, env = "CIRCUIT_BREAKER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub circuit_breaker_timeout: Duration,

    /// error, warn, info, debug or trace (or a tracing filter directive).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// json (default) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Port of /health, /ready and /status (0 disables the server).
    #[arg(long, env = "HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// Address the HTTP server binds to.
    #[arg(long, env = "HTTP_BIND", default_value = "0.0.0.0")]
    pub http_bind: String,

    /// Where readiness is written for `secrets-sync isready`.
    #[arg(long, env = "STATUS_FILE", default_value = "/tmp/.ready-state")]
    pub status_file: PathBuf,

    /// any: ready once one secret synced (the seed's rule); all: every secret.
    #[arg(long, env = "READY_POLICY", value_enum, default_value_t = ReadyPolicy::Any)]
    pub ready_policy: ReadyPolicy,

    /// Export OpenTelemetry traces.
    #[arg(long, env = "ENABLE_TRACING", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub enable_tracing: bool,

    /// OTLP/HTTP endpoint for traces.
    #[arg(long, env = "OTEL_EXPORTER_ENDPOINT")]
    pub otel_exporter_endpoint: Option<String>,

    /// First retry delay after a failure.
    #[arg(long, env = "INITIAL_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub initial_backoff: Duration,

    /// Longest retry delay.
    #[arg(long, env = "MAX_BACKOFF", default_value = "5m", value_parser = parse_duration)]
    pub max_backoff: Duration,

    /// Growth of the retry delay per consecutive failure.
    #[arg(long, env = "BACKOFF_MULTIPLIER", default_value_t = 2.0)]
    pub backoff_multiplier: f64,

    /// Write audit lines (secret reads, file writes).
    #[arg(long, env = "AUDIT_LOG", num_args = 0..=1, default_missing_value = "true",
          default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub audit_log: bool,

    /// Append audit lines to this file instead of the log output.
    #[arg(long, env = "AUDIT_LOG_FILE")]
    pub audit_log_file: Option<PathBuf>,

    /// Longest a graceful shutdown may take (SIGTERM/SIGINT).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Quiet time after a config file change before it is reloaded.
    #[arg(long, env = "WATCH_DEBOUNCE", default_value = "500ms", value_parser = parse_duration)]
    pub watch_debounce: Duration,

    /// Sync every secret once and exit: 0 if all succeeded, 1 otherwise.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}
