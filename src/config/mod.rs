//! Configuration: the YAML file, `${VAR}` interpolation, environment/CLI
//! overrides and validation.
//!
//! [`load`] turns a file plus [`settings::ConfigArgs`] into a validated
//! [`Config`] or into *all* the errors found, each naming the secret and the
//! field ([`ConfigErrors`]). Templates are compiled here, once per config, so
//! a syntax error is a config error and rendering never re-parses.

mod actions;
mod auth;
mod context;
/// Go-style durations (`30s`, `1h30m`): parsed here, printed everywhere.
pub use crate::duration;
pub mod interpolate;
pub mod raw;
pub mod settings;
mod sources;
mod validate;

pub(crate) use validate::credential_like;

/// The file-mode rule of `files[].mode`, also used by `convert`.
pub(crate) use validate::parse_mode;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::template::SecretTemplate;
use std::sync::Arc;

pub use context::Credentials;
// What a Vault store is made of belongs to `vault`; the config names it.
pub use crate::vault::store::{AuthConfig, ClientCert, KvVersion};

/// Refresh interval of a secret that does not set one.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Mode of a file that does not set one: readable by its owner only.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// A validated configuration.
#[derive(Debug, PartialEq)]
pub struct Config {
    pub store: StoreConfig,
    /// The Vault stores of `secretStores` (`provider: vault`), by name
    /// (sorted).
    pub vault_stores: Vec<(String, StoreConfig)>,
    /// The AWS stores of `secretStores`, by name (sorted).
    pub aws_stores: Vec<crate::aws::AwsStore>,
    pub secrets: Vec<SecretSpec>,
    /// Change actions by name (sorted).
    pub actions: Vec<ActionSpec>,
    /// The `templateFile`s read: a change of one reloads like the config.
    pub template_files: Vec<PathBuf>,
}

/// A named change action: what to run after a secret's files changed, and
/// how triggers are coalesced.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionSpec {
    pub name: String,
    pub kind: ActionKind,
    /// Quiet period: triggers within it coalesce into one run.
    pub wait: Duration,
    /// A run starts at the latest this long after the first trigger.
    pub max_wait: Duration,
    /// `exec` and `http`: how long a run may take.
    pub timeout: Duration,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Send a signal to a process found by pid file or name.
    Signal {
        signal: rustix::process::Signal,
        /// As written (`SIGHUP`), for logs.
        signal_name: String,
        target: SignalTarget,
    },
    /// Run a program (argv, no shell).
    Exec { argv: Vec<String> },
    /// Call a URL.
    Http {
        url: http::Uri,
        method: http::Method,
        /// Values are marked sensitive: `Debug` does not print them.
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    },
}

impl ActionKind {
    /// `signal`, `exec` or `http`.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Signal { .. } => "signal",
            ActionKind::Exec { .. } => "exec",
            ActionKind::Http { .. } => "http",
        }
    }
}

/// Which process a `signal` action signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalTarget {
    /// The pid in this file.
    PidFile(PathBuf),
    /// Processes whose `/proc/PID/comm` or argv[0]'s base name is this.
    Process(String),
}

/// How to reach and authenticate to Vault/OpenBao.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// Base address without a trailing slash, e.g. `https://vault:8200`.
    pub address: String,
    pub auth: AuthConfig,
    pub kv_version: KvVersion,
    /// Mount path of the KV engine, without slashes (`secret`).
    pub mount_path: String,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// A directory of PEM CA certificates (`tlsCAPath`, `VAULT_CAPATH`).
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key for mutual TLS (both or neither).
    pub client_cert: Option<ClientCert>,
    /// The name checked in Vault's certificate (and sent as SNI) instead of
    /// the address's host (`VAULT_TLS_SERVER_NAME`).
    pub tls_server_name: Option<String>,
    pub skip_verify: bool,
    /// Named credential sets, by name (sorted): each gets its own session.
    pub credentials: Vec<(String, AuthConfig)>,
}

/// Where Kubernetes puts the pod's service-account token.
pub const DEFAULT_K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// One secret: where it lives, how often to read it, what files it becomes.
#[derive(Debug, PartialEq)]
pub struct SecretSpec {
    pub name: String,
    /// Where it comes from: a KV path, any API path, or a PKI role.
    pub source: SecretSource,
    /// For KV secrets and dynamic answers without a lease.
    pub refresh_interval: Duration,
    /// Revoke the lease on graceful stop (dynamic secrets only).
    pub revoke_on_shutdown: bool,
    /// Write the files as one set (all in one directory).
    pub atomic_set: bool,
    /// Namespace override: `None` = `secretStore.namespace`, `Some("")` =
    /// the root namespace.
    pub namespace: Option<String>,
    /// The named credential set to read with (`None`: the default set);
    /// checked to exist in its store.
    pub credentials: Option<String>,
    /// The named Vault store it is read from (`None`: `secretStore`);
    /// checked to exist. An AWS secret names its store in its source.
    pub store: Option<String>,
    /// Shared by the secrets with the same `template.data`.
    pub template: Option<Arc<SecretTemplate>>,
    pub files: Vec<FileSpec>,
    /// Actions (by name, checked to exist) to run after its files changed.
    pub on_change: Vec<String>,
}

/// Where a secret comes from: exactly one of `path`, `dynamic`, `pki`.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    /// Path inside the KV mount, without leading or trailing slashes;
    /// the mount and version default to `secretStore`'s.
    Kv {
        path: String,
        mount: Option<String>,
        kv_version: Option<KvVersion>,
    },
    /// Any API path (without `/v1/`), read with `method`; a `lease_id` in
    /// the answer makes it a leased secret.
    Dynamic {
        path: String,
        method: http::Method,
        /// JSON body for POST/PUT (an object).
        parameters: Option<serde_json::Value>,
    },
    /// A certificate issued by a PKI role.
    Pki(PkiSpec),
    /// A secret or parameter of the AWS store `store`.
    Aws {
        store: String,
        read: crate::aws::AwsRead,
    },
}

/// `pki:` of a secret, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PkiSpec {
    /// The role's issue endpoint (`pki/issue/web`), without `/v1/`.
    pub path: String,
    pub common_name: String,
    pub alt_names: Vec<String>,
    pub ip_sans: Vec<std::net::IpAddr>,
    /// Asked of Vault; `None`: the role's default.
    pub ttl: Option<Duration>,
    /// Renew this long before NotAfter; `None`: a third of the lifetime.
    pub renew_before: Option<Duration>,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: PathBuf,
    /// The template key (with a template) or the secret field (without) the
    /// file's content comes from.
    pub source: String,
    pub mode: u32,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// Rewrite the existing inode instead of renaming a new file over it
    /// (`writeMode: inPlace`, for files that are mount points).
    pub in_place: bool,
    /// The content is base64 and the file gets the decoded bytes
    /// (`encoding: base64`: keystores, `.p12`, `.der`).
    pub base64: bool,
}

/// One problem in a config, located by field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// e.g. `secrets[1] "database-creds" .files[0].mode`
    pub location: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {} error{}",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// A validated config and the warnings met on the way (unset variables,
/// credentials left for run time).
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Reads, interpolates and validates the file named by `args`, taking
/// `${VAR}` values from the process environment.
pub fn load(args: &settings::ConfigArgs, creds: Credentials) -> Result<Loaded, ConfigErrors> {
    let path = &args.config_file;
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.clone(),
        errors: vec![ConfigError {
            location: String::new(),
            message: format!(
                "cannot read the config file: {e} (set CONFIG_FILE or --config to the YAML file)"
            ),
        }],
    })?;
    load_str(&text, path, args, &|name| std::env::var(name).ok(), creds)
}

/// [`load`] on text already read, with an explicit environment (for tests).
pub fn load_str(
    text: &str,
    file: &Path,
    args: &settings::ConfigArgs,
    env: &dyn Fn(&str) -> Option<String>,
    creds: Credentials,
) -> Result<Loaded, ConfigErrors> {
    let wrap = |errors| ConfigErrors {
        file: file.to_path_buf(),
        errors,
    };
    let raw: raw::RawConfig = if text.trim().is_empty() {
        raw::RawConfig::default()
    } else {
        serde_yaml::from_str(text).map_err(|e| {
            wrap(vec![ConfigError {
                location: String::new(),
                message: format!("invalid YAML: {e}"),
            }])
        })?
    };
    validate::validate(raw, file, args, env, creds).map_err(wrap)
}

#[cfg(test)]
mod tests;

/// The config's JSON Schema (generated from [`raw`], kept current by the
/// test in `schema`), printed by `secrets-sync schema`.
pub const SCHEMA: &str = include_str!("../../schema/secrets-sync.schema.json");

#[cfg(test)]
mod schema;
