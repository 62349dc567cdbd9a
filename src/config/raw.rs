//! The configuration file exactly as written, before interpolation and
//! validation. Unknown fields are rejected so that a typo such as
//! `refreshIntervall` is an error instead of a silently ignored line.
//!
//! They also serialise (`convert` writes the configs it makes through
//! them, so the file's fields have one source). These types are also the
//! source of the config's JSON Schema
//! (`schema/secrets-sync.schema.json`, made by the test in
//! [`super::schema`]): a field's doc comment is its description in an
//! editor, so it is written for the user of the file.

use serde::{Deserialize, Serialize};

/// A secrets-sync configuration file. Any string may hold `${VAR}`,
/// `${VAR:-default}` (from the environment) and `$$` (a literal `$`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(title = "secrets-sync configuration"))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// Where Vault/OpenBao is and how to log in.
    #[serde(default)]
    pub secret_store: RawStore,
    /// Named stores besides `secretStore` (AWS Secrets Manager and SSM
    /// Parameter Store, or another Vault/OpenBao); a secret picks one with
    /// `store:`.
    #[serde(default)]
    pub secret_stores: std::collections::BTreeMap<String, RawNamedStore>,
    /// The secrets to keep in sync as files.
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    /// Named change actions, run after a secret's files changed (a
    /// secret lists them in `onChange`).
    #[serde(default)]
    pub actions: std::collections::BTreeMap<String, RawAction>,
}

/// The Vault/OpenBao server, its TLS and the default credentials.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStore {
    /// Vault/OpenBao URL, `http://` or `https://` (VAULT_ADDR overrides it).
    pub address: Option<String>,
    /// How to log in: token (default), approle, kubernetes, jwt or cert.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::auth_method"))]
    pub auth_method: Option<String>,
    /// token auth: the token (VAULT_TOKEN overrides it).
    pub token: Option<String>,
    /// approle auth: the role id (VAULT_ROLE_ID overrides it).
    pub role_id: Option<String>,
    /// approle auth: the secret id (VAULT_SECRET_ID overrides it).
    pub secret_id: Option<String>,
    /// Where the auth method is mounted (default: the method's name).
    pub auth_mount_path: Option<String>,
    /// kubernetes and jwt auth: the Vault role to log in as; cert auth: the
    /// certificate role (optional).
    pub role: Option<String>,
    /// kubernetes and jwt auth: the file holding the JWT (kubernetes
    /// default: the service-account token).
    pub token_path: Option<String>,
    /// KV engine version of the secrets: v1 or v2 (default v2).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::kv_version"))]
    pub kv_version: Option<String>,
    /// Where the KV engine is mounted (default `secret`).
    pub mount_path: Option<String>,
    /// Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace
    /// (VAULT_NAMESPACE overrides it).
    pub namespace: Option<String>,
    /// PEM file with the CA of Vault's certificate (VAULT_CACERT overrides
    /// it; default: the system roots).
    pub ca_cert: Option<String>,
    /// Accept any server certificate (VAULT_SKIP_VERIFY). Testing only.
    pub skip_verify: Option<bool>,
    /// The Go tool's name for `caCert` (an error when both are given).
    #[serde(rename = "tlsCACert")]
    pub tls_ca_cert: Option<String>,
    /// The Go tool's name for `skipVerify` (an error when both are given).
    pub tls_skip_verify: Option<bool>,
    /// A directory of PEM CA certificates, every file in it read
    /// (VAULT_CAPATH overrides it).
    #[serde(rename = "tlsCAPath")]
    pub tls_ca_path: Option<String>,
    /// Client certificate (PEM, leaf first) for mutual TLS and `cert` auth
    /// (VAULT_CLIENT_CERT overrides it).
    pub tls_client_cert: Option<String>,
    /// The client certificate's private key, PEM (VAULT_CLIENT_KEY
    /// overrides it).
    pub tls_client_key: Option<String>,
    /// Named credential sets (the Go tool's `credentials`): a secret picks
    /// one with `credentials: NAME`.
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, RawCredentialSet>,
}

/// A named credential set: its own auth method and credentials.
// The auth fields of `RawStore` again: serde's `flatten` does not combine
// with `deny_unknown_fields`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCredentialSet {
    /// How this set logs in: token (default), approle, kubernetes, jwt or cert.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::auth_method"))]
    pub auth_method: Option<String>,
    /// token auth: the token.
    pub token: Option<String>,
    /// approle auth: the role id.
    pub role_id: Option<String>,
    /// approle auth: the secret id.
    pub secret_id: Option<String>,
    /// Where the auth method is mounted (default: the method's name).
    pub auth_mount_path: Option<String>,
    /// kubernetes and jwt auth: the Vault role; cert auth: the certificate role.
    pub role: Option<String>,
    /// kubernetes and jwt auth: the file holding the JWT.
    pub token_path: Option<String>,
}

/// One secret: where it is read (`path`/`key`, `dynamic` or `pki`) and the
/// files it becomes.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(extend("required" = ["name", "files"])))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSecret {
    /// Unique name, used in logs, metrics and /status.
    pub name: Option<String>,
    /// Path inside the KV mount (`database/prod/credentials`).
    pub path: Option<String>,
    /// Go duration between reads (`30s`, `5m`, `1h30m`; default 5m).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub refresh_interval: Option<String>,
    /// Templates that build the files' content from the secret's fields.
    pub template: Option<RawTemplate>,
    /// The files to write (at least one).
    #[serde(default)]
    #[cfg_attr(test, schemars(length(min = 1)))]
    pub files: Vec<RawFile>,
    /// Names of `actions` to run after this secret's files changed.
    #[serde(default)]
    pub on_change: Vec<String>,
    /// Any Vault API path (database credentials, ...), instead of `path`.
    pub dynamic: Option<RawDynamic>,
    /// A certificate from a PKI role, instead of `path`.
    pub pki: Option<RawPki>,
    /// `dynamic` only: revoke the secret's lease on a graceful stop.
    pub revoke_on_shutdown: Option<bool>,
    /// Write the secret's files as one set (`..data` symlink swap).
    pub atomic_set: Option<bool>,
    /// The Go tool's name for `path`.
    pub key: Option<String>,
    /// KV mount of this secret (default: `secretStore.mountPath`).
    pub mount_path: Option<String>,
    /// KV version of this secret (default: `secretStore.kvVersion`).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::kv_version"))]
    pub kv_version: Option<String>,
    /// Namespace of this secret; `""` is the root namespace (default:
    /// `secretStore.namespace`).
    pub namespace: Option<String>,
    /// The named credential set (of `secretStore.credentials`, or of the
    /// named Vault store's `credentials`) to read with.
    pub credentials: Option<String>,
    /// The named store (of `secretStores`) to read from (default:
    /// `secretStore`). With an AWS store, `path` is the Secrets Manager
    /// secret id (name or ARN); with a Vault store, every field means what
    /// it means for `secretStore`, against that store.
    pub store: Option<String>,
    /// AWS store: an SSM parameter (its value is the field `value`), or a
    /// path ending in `/` (every parameter below it, a field per name).
    pub parameter: Option<String>,
    /// AWS store, with `path`: a staging label (`AWSCURRENT`) or a
    /// version id.
    pub version: Option<String>,
}

/// A named store (`secretStores.NAME`): an AWS store (`provider: aws`,
/// with `region` and `endpoint`) or a second Vault/OpenBao store
/// (`provider: vault`, with the fields of `secretStore`).
// The fields of `RawStore` again: serde's `flatten` does not combine with
// `deny_unknown_fields`. Unlike `secretStore`, no environment variable
// overrides them (VAULT_ADDR, VAULT_TOKEN, ... are the default store's).
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNamedStore {
    /// The kind of store: aws (Secrets Manager and SSM Parameter Store) or
    /// vault (Vault/OpenBao, the fields of secretStore).
    pub provider: Option<String>,
    /// aws: the region (default: AWS_REGION, then AWS_DEFAULT_REGION).
    pub region: Option<String>,
    /// aws: base URL of the AWS services, for emulators and VPC endpoints
    /// (default: AWS_ENDPOINT_URL, then AWS_ENDPOINT; else AWS's own).
    pub endpoint: Option<String>,
    /// vault: Vault/OpenBao URL, `http://` or `https://`.
    pub address: Option<String>,
    /// vault: how to log in: token (default), approle, kubernetes, jwt or cert.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::auth_method"))]
    pub auth_method: Option<String>,
    /// vault, token auth: the token.
    pub token: Option<String>,
    /// vault, approle auth: the role id.
    pub role_id: Option<String>,
    /// vault, approle auth: the secret id.
    pub secret_id: Option<String>,
    /// vault: where the auth method is mounted (default: the method's name).
    pub auth_mount_path: Option<String>,
    /// vault, kubernetes and jwt auth: the Vault role; cert auth: the
    /// certificate role (optional).
    pub role: Option<String>,
    /// vault, kubernetes and jwt auth: the file holding the JWT.
    pub token_path: Option<String>,
    /// vault: KV engine version of its secrets: v1 or v2 (default v2).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::kv_version"))]
    pub kv_version: Option<String>,
    /// vault: where the KV engine is mounted (default `secret`).
    pub mount_path: Option<String>,
    /// vault: namespace, sent as X-Vault-Namespace.
    pub namespace: Option<String>,
    /// vault: PEM file with the CA of the server's certificate (default:
    /// the system roots).
    pub ca_cert: Option<String>,
    /// vault: accept any server certificate. Testing only.
    pub skip_verify: Option<bool>,
    /// vault: the Go tool's name for `caCert`.
    #[serde(rename = "tlsCACert")]
    pub tls_ca_cert: Option<String>,
    /// vault: the Go tool's name for `skipVerify`.
    pub tls_skip_verify: Option<bool>,
    /// vault: a directory of PEM CA certificates.
    #[serde(rename = "tlsCAPath")]
    pub tls_ca_path: Option<String>,
    /// vault: client certificate (PEM, leaf first) for mutual TLS and `cert`
    /// auth.
    pub tls_client_cert: Option<String>,
    /// vault: the client certificate's private key, PEM.
    pub tls_client_key: Option<String>,
    /// vault: named credential sets of this store; a secret of it picks one
    /// with `credentials: NAME`.
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, RawCredentialSet>,
}

impl RawNamedStore {
    /// Splits it into the AWS fields and the Vault ones (a `RawStore`).
    pub(crate) fn split(self) -> (Option<String>, Option<String>, Option<String>, RawStore) {
        let store = RawStore {
            address: self.address,
            auth_method: self.auth_method,
            token: self.token,
            role_id: self.role_id,
            secret_id: self.secret_id,
            auth_mount_path: self.auth_mount_path,
            role: self.role,
            token_path: self.token_path,
            kv_version: self.kv_version,
            mount_path: self.mount_path,
            namespace: self.namespace,
            ca_cert: self.ca_cert,
            skip_verify: self.skip_verify,
            tls_ca_cert: self.tls_ca_cert,
            tls_skip_verify: self.tls_skip_verify,
            tls_ca_path: self.tls_ca_path,
            tls_client_cert: self.tls_client_cert,
            tls_client_key: self.tls_client_key,
            credentials: self.credentials,
        };
        (self.provider, self.region, self.endpoint, store)
    }
}

impl RawStore {
    /// The names of the fields given (for an AWS store, which takes none).
    pub(crate) fn given(&self) -> Vec<&'static str> {
        let opt = [
            ("address", self.address.is_some()),
            ("authMethod", self.auth_method.is_some()),
            ("token", self.token.is_some()),
            ("roleId", self.role_id.is_some()),
            ("secretId", self.secret_id.is_some()),
            ("authMountPath", self.auth_mount_path.is_some()),
            ("role", self.role.is_some()),
            ("tokenPath", self.token_path.is_some()),
            ("kvVersion", self.kv_version.is_some()),
            ("mountPath", self.mount_path.is_some()),
            ("namespace", self.namespace.is_some()),
            ("caCert", self.ca_cert.is_some()),
            ("skipVerify", self.skip_verify.is_some()),
            ("tlsCACert", self.tls_ca_cert.is_some()),
            ("tlsSkipVerify", self.tls_skip_verify.is_some()),
            ("tlsCAPath", self.tls_ca_path.is_some()),
            ("tlsClientCert", self.tls_client_cert.is_some()),
            ("tlsClientKey", self.tls_client_key.is_some()),
            ("credentials", !self.credentials.is_empty()),
        ];
        opt.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect()
    }
}

/// `dynamic:` of a secret: one request to any API path.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawDynamic {
    /// API path without `/v1/` (`database/creds/app`).
    #[cfg_attr(test, schemars(required))]
    pub path: Option<String>,
    /// GET (default), POST or PUT.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::dynamic_method"))]
    pub method: Option<String>,
    /// JSON body (a mapping), POST/PUT only.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::parameters"))]
    pub parameters: Option<serde_yaml::Value>,
}

/// `pki:` of a secret: a certificate issued by a PKI role.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawPki {
    /// The role's issue endpoint (`pki/issue/web`).
    #[cfg_attr(test, schemars(required))]
    pub path: Option<String>,
    /// The certificate's common name.
    #[cfg_attr(test, schemars(required))]
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    #[serde(default)]
    pub alt_names: Vec<String>,
    /// IP subject alternative names.
    #[serde(default)]
    pub ip_sans: Vec<String>,
    /// Requested lifetime, Go duration (default: the role's).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub ttl: Option<String>,
    /// Renew this long before NotAfter (default: a third of the lifetime).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub renew_before: Option<String>,
}

/// One change action: exactly one of `signal`, `exec`, `http`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAction {
    /// Send this signal (SIGHUP, HUP, SIGUSR1, ...) to the process named by
    /// `pidFile` or `process`.
    pub signal: Option<String>,
    /// `signal`: the pid is the first line of this file.
    pub pid_file: Option<String>,
    /// `signal`: the processes whose comm or argv[0]'s base name is this.
    pub process: Option<String>,
    /// Run this argv (no shell): `["/usr/local/bin/rehash", "--graceful"]`.
    pub exec: Option<Vec<String>>,
    /// Send an HTTP request.
    pub http: Option<RawHttpAction>,
    /// Triggers within this Go duration coalesce into one run (default 1s).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub wait: Option<String>,
    /// A run starts at the latest this long after the first trigger
    /// (default 10 × wait).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub max_wait: Option<String>,
    /// `exec`/`http`: give up after this long (default 30s exec, 10s http).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::duration"))]
    pub timeout: Option<String>,
}

/// `http:` of an action: one request.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHttpAction {
    /// `http://` or `https://` URL.
    #[cfg_attr(test, schemars(required))]
    pub url: Option<String>,
    /// HTTP method (default POST).
    pub method: Option<String>,
    /// Request headers; values may use `${VAR}` and are never logged.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// Templates of a secret.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplate {
    /// Map of key → template (Tera, or the Go tool's `{{ .field }}` forms),
    /// or `{templateFile: PATH}`. Each key can become a file. Kept as a
    /// YAML mapping so that declaration order survives.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::template_data"))]
    pub data: serde_yaml::Mapping,
    /// `go` (Go's text/template semantics, as ESO, Vault Agent and the Go
    /// tool run them), `tera`, or `auto` (the default: each entry by its
    /// syntax, Go unless it holds a Tera tag or does not parse as Go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, schemars(regex(pattern = "^(auto|go|tera)$")))]
    pub engine: Option<String>,
    /// Environment variables a Go template's `env "NAME"` may read (read
    /// once, when the config is loaded). Credentials are refused (names
    /// holding TOKEN, SECRET, PASSWORD, ... and secrets-sync's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Absolute directories under which a Go template's `file "PATH"` may
    /// read (a regular file of at most 1 MiB, no symlink at its last step).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_dirs: Vec<String>,
}

/// One file a secret is written to.
#[derive(Debug, Default, Deserialize, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The target file; parent directories are created.
    #[cfg_attr(test, schemars(required))]
    pub path: Option<String>,
    /// The template key (with a template) or the secret field (without);
    /// default: the file's base name, else its position.
    pub key: Option<String>,
    /// `"0600"` (octal string) or `600`/`0600` as a YAML number read as
    /// octal digits; at most 0777 (default 0600).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::mode"))]
    pub mode: Option<serde_yaml::Value>,
    /// Numeric uid (needs root or CAP_CHOWN).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::numeric_id"))]
    pub owner: Option<serde_yaml::Value>,
    /// Numeric gid (needs root or CAP_CHOWN).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::numeric_id"))]
    pub group: Option<serde_yaml::Value>,
    /// `atomic` (default: a new file renamed over the old) or `inPlace` (the
    /// existing file rewritten, for a file that is a mount point).
    #[serde(rename = "writeMode")]
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::write_mode"))]
    pub write_mode: Option<String>,
    /// `base64`: the content is base64, the file gets the decoded bytes.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "super::schema::encoding"))]
    pub encoding: Option<String>,
}
