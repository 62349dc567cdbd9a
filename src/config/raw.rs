//! The configuration file exactly as written, before interpolation and
//! validation. Unknown fields are rejected so that a typo such as
//! `refreshIntervall` is an error instead of a silently ignored line.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    #[serde(default)]
    pub secret_store: RawStore,
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    /// Named change actions, run after a secret's files changed.
    #[serde(default)]
    pub actions: std::collections::BTreeMap<String, RawAction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStore {
    pub address: Option<String>,
    pub auth_method: Option<String>,
    pub token: Option<String>,
    pub role_id: Option<String>,
    pub secret_id: Option<String>,
    /// Where the auth method is mounted (default: the method's name).
    pub auth_mount_path: Option<String>,
    /// Role for kubernetes and jwt auth.
    pub role: Option<String>,
    /// Token file for kubernetes (default: the service-account token) and jwt auth.
    pub token_path: Option<String>,
    pub kv_version: Option<String>,
    pub mount_path: Option<String>,
    pub namespace: Option<String>,
    pub ca_cert: Option<String>,
    pub skip_verify: Option<bool>,
    /// The Go tool's name for `caCert` (an error when both are given).
    #[serde(rename = "tlsCACert")]
    pub tls_ca_cert: Option<String>,
    /// The Go tool's name for `skipVerify` (an error when both are given).
    pub tls_skip_verify: Option<bool>,
    /// A directory of PEM CA certificates (every file in it is read).
    #[serde(rename = "tlsCAPath")]
    pub tls_ca_path: Option<String>,
    /// Client certificate (PEM, leaf first) for mutual TLS and `cert` auth.
    pub tls_client_cert: Option<String>,
    /// The client certificate's private key (PEM).
    pub tls_client_key: Option<String>,
    /// Named credential sets (the Go tool's `credentials`).
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, RawCredentialSet>,
}

/// One named credential set: its own auth method and credentials (the
/// auth fields of [`RawStore`] again: serde's `flatten` does not combine
/// with `deny_unknown_fields`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCredentialSet {
    pub auth_method: Option<String>,
    pub token: Option<String>,
    pub role_id: Option<String>,
    pub secret_id: Option<String>,
    pub auth_mount_path: Option<String>,
    pub role: Option<String>,
    pub token_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSecret {
    pub name: Option<String>,
    pub path: Option<String>,
    pub refresh_interval: Option<String>,
    pub template: Option<RawTemplate>,
    #[serde(default)]
    pub files: Vec<RawFile>,
    /// Names of `actions` to run after this secret's files changed.
    #[serde(default)]
    pub on_change: Vec<String>,
    /// Any Vault API path (database credentials, ...), instead of `path`.
    pub dynamic: Option<RawDynamic>,
    /// A certificate from a PKI role, instead of `path`.
    pub pki: Option<RawPki>,
    /// Revoke the secret's lease on graceful stop.
    pub revoke_on_shutdown: Option<bool>,
    /// Write the secret's files as one set (`..data` symlink swap).
    pub atomic_set: Option<bool>,
    /// The Go tool's name for `path`.
    pub key: Option<String>,
    /// KV mount of this secret (default: `secretStore.mountPath`).
    pub mount_path: Option<String>,
    /// KV version of this secret (default: `secretStore.kvVersion`).
    pub kv_version: Option<String>,
    /// Namespace of this secret; `""` is the root namespace (default:
    /// `secretStore.namespace`).
    pub namespace: Option<String>,
    /// The named credential set (of `secretStore.credentials`) to read with.
    pub credentials: Option<String>,
}

/// `dynamic:` of a secret: one request to any API path.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDynamic {
    pub path: Option<String>,
    pub method: Option<String>,
    pub parameters: Option<serde_yaml::Value>,
}

/// `pki:` of a secret: a certificate issued by a PKI role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPki {
    pub path: Option<String>,
    pub common_name: Option<String>,
    #[serde(default)]
    pub alt_names: Vec<String>,
    #[serde(default)]
    pub ip_sans: Vec<String>,
    pub ttl: Option<String>,
    pub renew_before: Option<String>,
}

/// One change action: exactly one of `signal`, `exec`, `http`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAction {
    pub signal: Option<String>,
    pub pid_file: Option<String>,
    pub process: Option<String>,
    pub exec: Option<Vec<String>>,
    pub http: Option<RawHttpAction>,
    pub wait: Option<String>,
    pub max_wait: Option<String>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpAction {
    pub url: Option<String>,
    pub method: Option<String>,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    /// Kept as a YAML mapping so that declaration order survives.
    #[serde(default)]
    pub data: serde_yaml::Mapping,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub path: Option<String>,
    pub key: Option<String>,
    /// `"0600"` (octal string) or `600`/`0600` as a YAML number read as octal digits.
    pub mode: Option<serde_yaml::Value>,
    pub owner: Option<serde_yaml::Value>,
    pub group: Option<serde_yaml::Value>,
    /// `atomic` (default) or `inPlace`.
    #[serde(rename = "writeMode")]
    pub write_mode: Option<String>,
    /// `base64`: the content is base64, the file gets the decoded bytes.
    pub encoding: Option<String>,
}
