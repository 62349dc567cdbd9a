//! Talking to Vault/OpenBao: plain code that the VaultActor drives.
//!
//! * [`client`]: the HTTP client (hyper, HTTP/1.1, rustls, CA file, namespace header) and
//!   the classification of every answer into a [`VaultError`].
//! * [`auth`]: token and AppRole login.
//! * [`kv`]: KV v1/v2 paths and response decoding.
//! * [`session`]: the token a process holds, shared logins, re-login.

pub mod auth;
pub mod breaker;
pub mod client;
pub mod error;
pub mod kv;
pub mod session;

pub(crate) use error::VaultError;
pub(crate) use session::VaultSession;
