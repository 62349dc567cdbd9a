//! Talking to Vault/OpenBao: plain code that the VaultActor drives.
//!
//! * [`client`]: the HTTP client (hyper, HTTP/1.1, namespace header) and the
//!   classification of every answer into a [`VaultError`].
//! * [`tls`]: the TLS files (CA file and directory, client certificate) and the rustls
//!   configuration built from them.
//! * [`auth`]: login bodies (AppRole, Kubernetes, JWT, cert) and their answers.
//! * [`kv`]: KV v1/v2 paths and response decoding.
//! * [`lease`]: leased answers (dynamic secrets) and when to renew them.
//! * [`session`]: the token a process holds, shared logins, re-login.
//! * [`store`]: what a store is made of (auth method, KV version, client
//!   certificate), as `vault` takes it.

pub mod auth;
/// The circuit breaker (shared with the other sources: `crate::breaker`).
pub use crate::breaker;
pub mod client;
pub mod error;
pub mod kv;
pub(crate) mod lease;
pub mod session;
pub mod store;
pub(crate) mod tls;

pub(crate) use error::VaultError;

/// How much of an answer is accepted: bounds the memory a broken or hostile
/// Vault can make one request cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseLimits {
    /// Largest answer body, in bytes (`VAULT_MAX_RESPONSE_BYTES`).
    pub(crate) max_bytes: usize,
    /// Most fields and nested values in a secret read
    /// (`VAULT_MAX_SECRET_FIELDS`).
    pub(crate) max_fields: usize,
    /// The longest pause a 429's `Retry-After` may impose on a store
    /// (`MAX_BACKOFF`).
    pub(crate) max_retry_after: std::time::Duration,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            // Vault's own default `max_entry_size`.
            max_bytes: 1024 * 1024,
            max_fields: 10_000,
            max_retry_after: std::time::Duration::from_secs(300),
        }
    }
}
pub(crate) use session::VaultSession;

/// How an answer is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// A KV read of this version.
    Kv(store::KvVersion),
    /// Any API path: its `data`, and its lease if it has one.
    Leased,
    /// A certificate issued (`pki/issue/ROLE`): decoded like a leased answer.
    Issued,
}

/// One read of a secret: the session's own input type, which the plan
/// builds for each secret (`plan::Job::request`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a http::Method,
    /// `/v1/...`, encoded.
    pub(crate) api_path: &'a str,
    pub(crate) body: Option<&'a serde_json::Value>,
    pub(crate) namespace: &'a client::Namespace,
    pub(crate) decode: Decode,
    /// The path as the config names it, for errors and logs.
    pub(crate) display_path: &'a str,
    /// The session it is read with: its store and credential set.
    pub(crate) session: &'a SessionKey,
}

/// Which session of which store a request (and a lease it gets) goes
/// through: opaque names the plan chose, routed by the VaultActor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    /// The named Vault store (`secretStores.NAME`; `None`: `secretStore`).
    pub(crate) store: Option<std::sync::Arc<str>>,
    /// The store's credential set (`credentials: NAME`; `None`: its
    /// default set).
    pub(crate) credentials: Option<std::sync::Arc<str>>,
}

impl Request<'_> {
    /// The operation, for errors and metrics: `read` or `issue`.
    pub(crate) fn op(&self) -> &'static str {
        match self.decode {
            Decode::Issued => "issue",
            Decode::Kv(_) | Decode::Leased => "read",
        }
    }
}
