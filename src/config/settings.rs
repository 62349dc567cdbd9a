//! Settings from the command line and the environment.
//!
//! Every variable of the seed is also a flag (clap's `env`): a flag wins over
//! its variable, and both win over the config file where they overlap
//! (`VAULT_ADDR` over `secretStore.address`, and so on).
//!
//! Every value is parsed and range-checked here, by name: a value outside its
//! range is refused with exit code 2 and a message naming the variable and
//! the allowed range, by `check` as well as `run`. Nothing is clamped
//! silently. Checks that involve two variables (`MAX_BACKOFF` against
//! `INITIAL_BACKOFF`) and the ones that need more than the value itself
//! (`LOG_LEVEL` as a filter) are done by [`RuntimeArgs::validate`]. The
//! ranges are listed in `docs/environment-variables.md`.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, ValueEnum};

use super::duration::{parse_duration, GoDuration};
use crate::backoff::BackoffPolicy;
use crate::secret::SecretString;
use crate::status::ReadyPolicy;
use crate::vault::breaker::BreakerSettings;

/// Shortest `refreshInterval`, `INITIAL_BACKOFF` and `MAX_BACKOFF` floors.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A value parser for a duration in `[min, max]` (and `0` when `zero_ok`,
/// which then means "off"). The message states the range; clap adds the
/// variable's name.
pub(crate) fn duration_in(
    min: Duration,
    max: Duration,
    zero_ok: bool,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let d = parse_duration(s).map_err(|e| e.to_string())?;
        if (zero_ok && d.is_zero()) || (min..=max).contains(&d) {
            return Ok(d);
        }
        let zero = if zero_ok {
            " (or 0 to turn it off)"
        } else {
            ""
        };
        Err(format!(
            "must be between {} and {}{zero}",
            GoDuration(min),
            GoDuration(max)
        ))
    }
}

fn multiplier(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number such as 2 or 1.5"))?;
    if v.is_finite() && (1.0..=10.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be a number between 1 and 10".into())
    }
}

fn secret(s: &str) -> Result<SecretString, String> {
    Ok(SecretString::new(s))
}

fn bind_address(s: &str) -> Result<String, String> {
    if s == "localhost" || s.parse::<std::net::IpAddr>().is_ok() {
        Ok(s.to_string())
    } else {
        Err("must be an IP address such as 0.0.0.0, 127.0.0.1 or ::".into())
    }
}

fn http_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        // Unset in effect: the OpenTelemetry SDK's own variables apply.
        return Ok(String::new());
    }
    match s.parse::<http::Uri>() {
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {
            Ok(s.to_string())
        }
        _ => Err("must be an http:// or https:// URL such as http://otel-collector:4318".into()),
    }
}

/// Settings shared by `run` and `check`: where the config file is and the
/// variables that override its `secretStore`.
///
/// The credentials are [`SecretString`]s: `Debug` does not print them and
/// they are cleared from memory when dropped.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The YAML file that lists the secrets.
    #[arg(
        short = 'c',
        long = "config",
        env = "CONFIG_FILE",
        default_value = "/config.yaml"
    )]
    pub config_file: PathBuf,

    /// Vault/OpenBao address; overrides secretStore.address.
    #[arg(long, env = "VAULT_ADDR")]
    pub vault_addr: Option<String>,

    /// Token for token auth; overrides secretStore.token.
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true, value_parser = secret)]
    pub vault_token: Option<SecretString>,

    /// AppRole role ID; overrides secretStore.roleId.
    #[arg(long, env = "VAULT_ROLE_ID", hide_env_values = true)]
    pub vault_role_id: Option<String>,

    /// AppRole secret ID; overrides secretStore.secretId.
    #[arg(long, env = "VAULT_SECRET_ID", hide_env_values = true, value_parser = secret)]
    pub vault_secret_id: Option<SecretString>,

    /// Vault Enterprise / OpenBao namespace (X-Vault-Namespace).
    #[arg(long, env = "VAULT_NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// PEM file with the CA certificate(s) that sign Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT")]
    pub vault_cacert: Option<PathBuf>,

    /// Directory of PEM CA certificates; overrides secretStore.tlsCAPath.
    #[arg(long, env = "VAULT_CAPATH")]
    pub vault_capath: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS and cert auth; overrides
    /// secretStore.tlsClientCert.
    #[arg(long, env = "VAULT_CLIENT_CERT")]
    pub vault_client_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM); overrides
    /// secretStore.tlsClientKey.
    #[arg(long, env = "VAULT_CLIENT_KEY")]
    pub vault_client_key: Option<PathBuf>,

    /// Name to verify in Vault's certificate (and send as SNI) instead of
    /// the address's host.
    #[arg(long, env = "VAULT_TLS_SERVER_NAME")]
    pub vault_tls_server_name: Option<String>,

    /// Disable TLS certificate verification (testing only).
    #[arg(long, env = "VAULT_SKIP_VERIFY", num_args = 0..=1, default_missing_value = "true",
          action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub vault_skip_verify: Option<bool>,
}

/// Settings of the running process (not of the config file): each parsed and
/// range-checked by name.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Reload the config file when it changes.
    #[arg(long, env = "WATCH_CONFIG", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub watch_config: bool,

    /// Largest Vault answer accepted, in bytes (64 KiB - 64 MiB; Vault's own
    /// default entry size is 1 MiB).
    #[arg(long, env = "VAULT_MAX_RESPONSE_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(64 * 1024..=64 * 1024 * 1024))]
    pub vault_max_response_bytes: u64,

    /// Most fields and nested values one secret may have (1 - 1 000 000).
    #[arg(long, env = "VAULT_MAX_SECRET_FIELDS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub vault_max_secret_fields: u64,

    /// Probes let through while the circuit breaker is half-open (1-100).
    #[arg(long, env = "CIRCUIT_BREAKER_MAX_REQUESTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub circuit_breaker_max_requests: u32,

    /// Period after which the closed breaker clears its failure counts (1s-24h, 0: never).
    #[arg(long, env = "CIRCUIT_BREAKER_INTERVAL", default_value = "60s",
          value_parser = duration_in(Duration::from_secs(1), DAY, true))]
    pub circuit_breaker_interval: Duration,

    /// Consecutive Vault failures (no answer, 5xx) that open the breaker (1-1000).
    #[arg(long, env = "CIRCUIT_BREAKER_FAILURE_THRESHOLD", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub circuit_breaker_failure_threshold: u32,

    /// Longest time the breaker stays open before probing again (1s-1h); the
    /// first open period is shorter and grows with each re-open up to this.
    /// It bounds how long files stay old after Vault returns from an outage.
    #[arg(long, env = "CIRCUIT_BREAKER_TIMEOUT", default_value = "10s",
          value_parser = duration_in(Duration::from_secs(1), HOUR, false))]
    pub circuit_breaker_timeout: Duration,

    /// error, warn, info, debug or trace (or a tracing filter directive).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// json (default) or text.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Port of the probes, /health and /ready (0 disables that server).
    #[arg(long, env = "HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// Address the probe server binds to.
    #[arg(long, env = "HTTP_BIND", default_value = "0.0.0.0", value_parser = bind_address)]
    pub http_bind: String,

    /// Port of /status and /metrics, which name secrets, paths and errors
    /// (0 disables that server). Equal to HTTP_PORT: one server on
    /// HTTP_BIND serves all four endpoints.
    #[arg(long, env = "METRICS_PORT", default_value_t = 8081)]
    pub metrics_port: u16,

    /// Address of the /status and /metrics server: loopback unless set.
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1", value_parser = bind_address)]
    pub metrics_addr: String,

    /// Serve the inspection listener (METRICS_ADDR:METRICS_PORT); false
    /// turns it off like METRICS_PORT=0 (the Go tool's switch).
    #[arg(long, env = "ENABLE_METRICS", num_args = 0..=1, default_missing_value = "true",
          default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub enable_metrics: bool,

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

    /// OTLP/HTTP endpoint for traces (http:// or https:// URL).
    #[arg(long, env = "OTEL_EXPORTER_ENDPOINT", value_parser = http_url)]
    pub otel_exporter_endpoint: Option<String>,

    /// First retry delay after a failure (100ms-1h).
    #[arg(long, env = "INITIAL_BACKOFF", default_value = "1s",
          value_parser = duration_in(MIN_BACKOFF, HOUR, false))]
    pub initial_backoff: Duration,

    /// Longest retry delay (100ms-24h, at least INITIAL_BACKOFF).
    #[arg(long, env = "MAX_BACKOFF", default_value = "5m",
          value_parser = duration_in(MIN_BACKOFF, DAY, false))]
    pub max_backoff: Duration,

    /// Growth of the retry delay per consecutive failure (1-10).
    #[arg(long, env = "BACKOFF_MULTIPLIER", default_value = "2", value_parser = multiplier,
          allow_negative_numbers = true)]
    pub backoff_multiplier: f64,

    /// Spread of refreshes: each comes at its interval +- this share
    /// (0%-50%, or 0-0.5), and a secret's first refresh after its initial
    /// sync at a random point of its interval; 0 turns both off.
    #[arg(long, env = "REFRESH_JITTER", default_value = "10%", value_parser = share)]
    pub refresh_jitter: f64,

    /// A directory of the sidecar's own, kept across container restarts
    /// (mode 0700): the tokens it obtained by logging in are kept there
    /// (0600), so a restart after SIGKILL, OOM or a crash reuses a valid
    /// token instead of logging in again. Unset: nothing is kept.
    #[arg(long, env = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Count stale secrets (files an earlier run wrote, checked against
    /// STATE_DIR, while the source cannot be read) as synced for
    /// READY_POLICY, so a restart during a Vault outage keeps the app up.
    #[arg(long, env = "READY_ALLOW_STALE", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub ready_allow_stale: bool,

    /// Write audit lines (secret reads, file writes).
    #[arg(long, env = "AUDIT_LOG", num_args = 0..=1, default_missing_value = "true",
          default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub audit_log: bool,

    /// Append audit lines to this file instead of the log output.
    #[arg(long, env = "AUDIT_LOG_FILE")]
    pub audit_log_file: Option<PathBuf>,

    /// Longest a graceful shutdown may take, SIGTERM/SIGINT (1s-10m).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(600), false))]
    pub shutdown_timeout: Duration,

    /// Longest time the actor system may go without answering its
    /// heartbeat before `/health` answers 503 and `isready` fails (2s-10m).
    #[arg(long, env = "LIVENESS_TIMEOUT", default_value = "10s",
          value_parser = duration_in(Duration::from_secs(2), Duration::from_secs(600), false))]
    pub liveness_timeout: Duration,

    /// Serve `POST /refresh` and `POST /refresh/{secret}` on the inspection
    /// listener (METRICS_ADDR:METRICS_PORT).
    #[arg(long, env = "REFRESH_API", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub refresh_api: bool,

    /// Serve the local secrets API (`GET /v1/secrets`, `GET
    /// /v1/secrets/{name}`, `POST /v1/secrets:batchGet`) on the inspection
    /// listener (METRICS_ADDR:METRICS_PORT) and SECRETS_API_SOCKET; never
    /// on the probe listener. It serves what the files hold.
    #[arg(long, env = "SECRETS_API", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub secrets_api: bool,

    /// A file holding the bearer token every secrets API request must
    /// send (`Authorization: Bearer ...`); re-read when it changes.
    /// Required when METRICS_ADDR is not a loopback address.
    #[arg(long, env = "SECRETS_API_TOKEN_FILE")]
    pub secrets_api_token_file: Option<PathBuf>,

    /// Also serve the secrets API on this unix socket (mode 0600, or 0660
    /// with SECRETS_API_SOCKET_GROUP): for hosts where every user shares
    /// loopback.
    #[arg(long, env = "SECRETS_API_SOCKET")]
    pub secrets_api_socket: Option<PathBuf>,

    /// Numeric group id given the secrets API socket, which then gets
    /// mode 0660 (the group's members may ask).
    #[arg(long, env = "SECRETS_API_SOCKET_GROUP")]
    pub secrets_api_socket_group: Option<u32>,

    /// Quiet time after a config file change before it is reloaded (10ms-1m).
    #[arg(long, env = "WATCH_DEBOUNCE", default_value = "500ms",
          value_parser = duration_in(Duration::from_millis(10), Duration::from_secs(60), false))]
    pub watch_debounce: Duration,
}

impl RuntimeArgs {
    /// Whether the inspection listener runs on a port of its own (not
    /// off, not shared with the probes).
    fn inspection_apart(&self) -> bool {
        let port = if self.enable_metrics {
            self.metrics_port
        } else {
            0
        };
        port != 0 && port != self.http_port
    }

    /// The secrets API's settings: where it may be served, and by whom.
    fn secrets_api_errors(&self) -> Vec<SettingError> {
        let err = |var, flag, message: String| SettingError { var, flag, message };
        let mut errors = Vec::new();
        if !self.secrets_api {
            for (set, var, flag) in [
                (
                    self.secrets_api_token_file.is_some(),
                    "SECRETS_API_TOKEN_FILE",
                    "secrets-api-token-file",
                ),
                (
                    self.secrets_api_socket.is_some(),
                    "SECRETS_API_SOCKET",
                    "secrets-api-socket",
                ),
                (
                    self.secrets_api_socket_group.is_some(),
                    "SECRETS_API_SOCKET_GROUP",
                    "secrets-api-socket-group",
                ),
            ] {
                if set {
                    errors.push(err(
                        var,
                        flag,
                        "is set but SECRETS_API is not true: set SECRETS_API=true or unset it"
                            .into(),
                    ));
                }
            }
            return errors;
        }
        let enabled = self.metrics_port != 0 && self.enable_metrics;
        let shared = enabled && self.metrics_port == self.http_port;
        if shared {
            errors.push(err(
                "SECRETS_API",
                "secrets-api",
                format!("the API is never served on the probe listener, and METRICS_PORT equals HTTP_PORT ({}): give METRICS_PORT a port of its own", self.http_port),
            ));
        }
        if !shared && !self.inspection_apart() && self.secrets_api_socket.is_none() {
            errors.push(err(
                "SECRETS_API",
                "secrets-api",
                "has nowhere to be served: the inspection listener is off (METRICS_PORT=0 or ENABLE_METRICS=false); turn it on or set SECRETS_API_SOCKET".into(),
            ));
        }
        if self.inspection_apart()
            && !is_loopback(&self.metrics_addr)
            && self.secrets_api_token_file.is_none()
        {
            errors.push(err(
                "SECRETS_API",
                "secrets-api",
                format!(
                    "METRICS_ADDR is {:?}, not a loopback address, and SECRETS_API_TOKEN_FILE is not set: anyone who reaches that address could read every secret; set SECRETS_API_TOKEN_FILE, or METRICS_ADDR=127.0.0.1",
                    self.metrics_addr
                ),
            ));
        }
        if self.secrets_api_socket_group.is_some() && self.secrets_api_socket.is_none() {
            errors.push(err(
                "SECRETS_API_SOCKET_GROUP",
                "secrets-api-socket-group",
                "is set without SECRETS_API_SOCKET: name the socket, or unset it".into(),
            ));
        }
        if let Some(p) = &self.secrets_api_socket {
            if !p.is_absolute() {
                errors.push(err(
                    "SECRETS_API_SOCKET",
                    "secrets-api-socket",
                    format!(
                        "{} is not an absolute path: give the socket's full path",
                        p.display()
                    ),
                ));
            }
        }
        errors
    }
}

/// A loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub(crate) fn is_loopback(addr: &str) -> bool {
    let a = addr.trim().trim_start_matches('[').trim_end_matches(']');
    a.eq_ignore_ascii_case("localhost")
        || a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A share of an interval: `10%` or `0.1`, from 0 to 50 %.
fn share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a share: give a percentage (10%) or a fraction (0.1)"))?;
    if !(0.0..=crate::backoff::MAX_REFRESH_JITTER).contains(&v) {
        return Err(format!("{s:?} is out of range: between 0% and 50%"));
    }
    Ok(v)
}

/// Settings of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,

    /// Sync every secret once and exit: 0 if all succeeded, 1 otherwise.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// A level name, or a filter with directives (`info,secrets_sync=debug`).
/// A lone word that is not a level would be read by tracing as a target
/// name and silence every log line, so it is refused.
fn log_level_ok(s: &str) -> bool {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let s = s.trim();
    if !s.contains([',', '=']) {
        return LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s));
    }
    tracing_subscriber::EnvFilter::try_new(s).is_ok()
}

/// A runtime setting that is out of range; names the variable and its flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var} (--{flag}): {message}")]
pub struct SettingError {
    pub var: &'static str,
    pub flag: &'static str,
    pub message: String,
}

/// The runtime settings the actors use, every one checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Runtime {
    pub(crate) breaker: BreakerSettings,
    pub(crate) backoff: BackoffPolicy,
    pub(crate) limits: crate::vault::ResponseLimits,
}

impl RuntimeArgs {
    /// The checks that need more than one value, or more than the value:
    /// every error found, each naming its variable.
    pub fn validate(&self) -> Result<(), Vec<SettingError>> {
        let mut errors = Vec::new();
        if self.max_backoff < self.initial_backoff {
            errors.push(SettingError {
                var: "MAX_BACKOFF",
                flag: "max-backoff",
                message: format!(
                    "{} is shorter than INITIAL_BACKOFF ({}): set it to at least that",
                    GoDuration(self.max_backoff),
                    GoDuration(self.initial_backoff)
                ),
            });
        }
        if !log_level_ok(&self.log_level) {
            errors.push(SettingError {
                var: "LOG_LEVEL",
                flag: "log-level",
                message: format!(
                    "{:?} is not a level (error, warn, info, debug, trace) nor a tracing filter such as \"info,secrets_sync=debug\"",
                    self.log_level
                ),
            });
        }
        errors.extend(self.secrets_api_errors());
        if self.status_file.as_os_str().is_empty() {
            errors.push(SettingError {
                var: "STATUS_FILE",
                flag: "status-file",
                message: "is empty: name the file `secrets-sync isready` reads".into(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The settings the actors use (call after [`validate`](Self::validate)).
    pub(crate) fn runtime(&self) -> Runtime {
        Runtime {
            breaker: BreakerSettings {
                max_requests: self.circuit_breaker_max_requests,
                interval: self.circuit_breaker_interval,
                timeout: self.circuit_breaker_timeout,
                failure_threshold: self.circuit_breaker_failure_threshold,
            },
            backoff: BackoffPolicy {
                initial: self.initial_backoff,
                max: self.max_backoff,
                multiplier: self.backoff_multiplier,
                refresh_jitter: self.refresh_jitter,
                outage_cap: self.circuit_breaker_timeout,
            },
            // Both ranges fit a usize on every target this builds for.
            limits: crate::vault::ResponseLimits {
                max_bytes: usize::try_from(self.vault_max_response_bytes).unwrap_or(usize::MAX),
                max_fields: usize::try_from(self.vault_max_secret_fields).unwrap_or(usize::MAX),
                max_retry_after: self.max_backoff.max(self.initial_backoff),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(argv: &[&str]) -> Result<RunArgs, String> {
        let mut all = vec!["t"];
        all.extend_from_slice(argv);
        T::try_parse_from(all)
            .map(|t| t.run)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_in_range() {
        let a = parse(&[]).unwrap();
        assert!(a.runtime.validate().is_ok());
        let r = a.runtime.runtime();
        assert_eq!(r.breaker.timeout, Duration::from_secs(10));
        assert_eq!(r.backoff.initial, Duration::from_secs(1));
    }

    #[test]
    fn the_secrets_api_is_refused_where_it_would_be_exposed() {
        let vars = |argv: &[&str]| -> Vec<&'static str> {
            match parse(argv).unwrap().runtime.validate() {
                Ok(()) => Vec::new(),
                Err(e) => e.iter().map(|e| e.var).collect(),
            }
        };
        assert!(
            vars(&["--secrets-api", "true"]).is_empty(),
            "loopback is fine"
        );
        assert_eq!(
            vars(&["--secrets-api", "true", "--metrics-addr", "0.0.0.0"]),
            ["SECRETS_API"]
        );
        assert!(vars(&[
            "--secrets-api",
            "true",
            "--metrics-addr",
            "0.0.0.0",
            "--secrets-api-token-file",
            "/run/token"
        ])
        .is_empty());
        assert_eq!(
            vars(&["--secrets-api", "true", "--metrics-port", "8080"]),
            ["SECRETS_API"],
            "shared with the probe listener"
        );
        assert_eq!(
            vars(&["--secrets-api", "true", "--metrics-port", "0"]),
            ["SECRETS_API"],
            "nowhere to serve"
        );
        assert!(vars(&[
            "--secrets-api",
            "true",
            "--metrics-port",
            "0",
            "--secrets-api-socket",
            "/run/s.sock"
        ])
        .is_empty());
        assert_eq!(
            vars(&["--secrets-api-socket", "/run/s.sock"]),
            ["SECRETS_API_SOCKET"],
            "set without the API"
        );
        assert_eq!(
            vars(&["--secrets-api", "true", "--secrets-api-socket-group", "10"]),
            ["SECRETS_API_SOCKET_GROUP"]
        );
        assert!(is_loopback("127.0.0.2") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("0.0.0.0") && !is_loopback("10.0.0.1") && !is_loopback("::"));
    }

    #[test]
    fn out_of_range_values_name_the_variable() {
        for (argv, var, says) in [
            (
                ["--circuit-breaker-interval", "3000000000000000h"],
                "CIRCUIT_BREAKER_INTERVAL",
                "between 1s and 24h",
            ),
            (
                ["--circuit-breaker-timeout", "3000000000000000h"],
                "CIRCUIT_BREAKER_TIMEOUT",
                "between 1s and 1h",
            ),
            (
                ["--circuit-breaker-max-requests", "0"],
                "CIRCUIT_BREAKER_MAX_REQUESTS",
                "1..=100",
            ),
            (
                ["--backoff-multiplier", "NaN"],
                "BACKOFF_MULTIPLIER",
                "between 1 and 10",
            ),
            (
                ["--backoff-multiplier=-1", "--once"],
                "BACKOFF_MULTIPLIER",
                "between 1 and 10",
            ),
            (
                ["--backoff-multiplier", "0.5"],
                "BACKOFF_MULTIPLIER",
                "between 1 and 10",
            ),
            (
                ["--initial-backoff", "0s"],
                "INITIAL_BACKOFF",
                "between 100ms and 1h",
            ),
            (
                ["--watch-debounce", "1ns"],
                "WATCH_DEBOUNCE",
                "between 10ms",
            ),
            (["--http-bind", "nowhere"], "HTTP_BIND", "IP address"),
            (
                ["--otel-exporter-endpoint", "collector:4318"],
                "OTEL_EXPORTER_ENDPOINT",
                "http://",
            ),
        ] {
            let e = parse(&argv).unwrap_err();
            assert!(e.contains(var) && e.contains(says), "{argv:?}: {e}");
        }
    }

    #[test]
    fn zero_interval_means_never_and_is_allowed() {
        let a = parse(&["--circuit-breaker-interval", "0"]).unwrap();
        assert_eq!(a.runtime.circuit_breaker_interval, Duration::ZERO);
        assert!(parse(&["--circuit-breaker-timeout", "0"]).is_err());
    }

    #[test]
    fn cross_checks_name_every_variable() {
        let a = parse(&[
            "--initial-backoff",
            "10s",
            "--max-backoff",
            "1s",
            "--log-level",
            "verbose",
        ])
        .unwrap();
        let errs = a.runtime.validate().unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("MAX_BACKOFF (--max-backoff)"),
            "{text:?}"
        );
        assert!(text[1].starts_with("LOG_LEVEL (--log-level)"), "{text:?}");
    }

    #[test]
    fn credentials_do_not_print() {
        let a = parse(&[
            "--vault-token",
            "CANARY-tok",
            "--vault-secret-id",
            "CANARY-sid",
        ])
        .unwrap();
        let d = format!("{a:?}");
        assert!(!d.contains("CANARY"), "{d}");
        assert_eq!(a.config.vault_token.unwrap().expose(), "CANARY-tok");
    }
}
