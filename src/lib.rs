//! secrets-sync: keeps secrets from HashiCorp Vault / OpenBao in sync as files.
//!
//! The process is a handful of actix actors (see [`actors`]) around plain,
//! separately tested logic:
//!
//! | module | owns |
//! |---|---|
//! | `action` | change actions: running one (signal, exec, http), coalescing triggers |
//! | [`config`] | the YAML file, `${VAR}` interpolation, env/CLI settings (range-checked), validation |
//! | [`plan`] | config + TLS material -> one resolved job per secret; the diff of two plans |
//! | [`template`] | Tera templates and the Go `{{ .field }}` compatibility |
//! | [`vault`] | HTTP client, auth, KV v1/v2, leased answers, error classification |
//! | `pki` | certificates of `pki:` secrets: NotAfter, names, key match, keeping one at start |
//! | [`fs`] | atomic durable writes and their scheduling |
//! | [`backoff`] | retry delays |
//! | [`status`] | per-secret state and readiness |
//! | [`http`] | `/health`, `/ready`, `/status` |
//! | [`telemetry`] | logging |
//! | [`cli`] | the command line (clap), also the source of the man page and completions |
//! | [`app`] | wiring it all together for `run` |

pub(crate) mod action;
pub mod actors;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod convert;
pub mod fs;
pub mod http;
pub(crate) mod notify;
pub(crate) mod pki;
pub mod plan;
pub mod secret;
pub mod status;
pub mod telemetry;
pub mod template;
pub mod vault;
