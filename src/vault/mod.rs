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
pub mod breaker;
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
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            // Vault's own default `max_entry_size`.
            max_bytes: 1024 * 1024,
            max_fields: 10_000,
        }
    }
}
pub(crate) use session::VaultSession;
