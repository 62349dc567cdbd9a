//! secrets-sync: keeps secrets from HashiCorp Vault / OpenBao in sync as files.
//!
//! The process is a handful of actix actors (see [`actors`]) around plain,
//! separately tested logic:
//!
//! | module | owns |
//! |---|---|
//! | `action` | change actions: running one (signal, exec, http), coalescing triggers |
//! | [`duration`] | Go-style durations (`30s`, `1h30m`): parsing and printing |
//! | [`config`] | the YAML file, `${VAR}` interpolation, env/CLI settings (range-checked), validation |
//! | [`plan`] | config + TLS material -> the Vault stores and one resolved job per secret; the diff of two plans |
//! | [`template`] | Templates: Go's `text/template` with Go's semantics (`template::go`: the one Go lexer/parser, shared with `convert`; Sprig, ESO and consul-template functions) and Tera; bounds on value-driven work |
//! | [`convert`] | `secrets-sync convert`: ExternalSecrets, injector annotations, Agent HCL -> a config |
//! | [`secret`] | types that hold secret material (zeroized, never printed) and the bounded value parser |
//! | `served` | what the local secrets API serves: each secret's files as last written (only with `SECRETS_API`) |
//! | [`aws`] | AWS as a source: Secrets Manager and SSM Parameter Store, SigV4, the credential chain |
//! | [`vault`] | Vault/OpenBao as a source: HTTP client, auth, KV v1/v2, leased answers, error classification; takes its own input types |
//! | `pki` | certificates of `pki:` secrets: NotAfter, names, key match, keeping one at start |
//! | [`fs`] | atomic durable writes and their scheduling |
//! | `attempt` | one sync attempt's failure: why, where, and the delay before the next |
//! | [`breaker`] | the circuit breaker (gobreaker semantics), one per source endpoint |
//! | [`backoff`] | retry delays (full jitter), the splay and jitter of refreshes, the per-process refresh grid, the forced-refresh budget |
//! | `blocking` | the bounded blocking pool: file I/O and renders off the actor thread, under deadlines |
//! | [`memory`] | one malloc arena; the start-up's freed pages returned once every secret was tried |
//! | [`init`] | as pid 1: a tiny init that reaps orphans and runs the sidecar as its child |
//! | [`signals`] | signals on a thread of their own, and the shutdown deadline |
//! | [`status`] | per-secret state and readiness |
//! | `state` | `STATE_DIR`: login tokens kept across an ungraceful restart |
//! | [`http`] | `/health`, `/ready`, `/status`, `/metrics`, `/refresh`, the local secrets API (`/v1/secrets`) |
//! | [`liveness`] | the heartbeat that proves the actor thread runs (`/health`, `isready`) |
//! | [`telemetry`] | logs, metrics, audit lines, traces: events that emit, never send |
//! | `notify` | the systemd notify protocol |
//! | [`cli`] | the command line (clap), also the source of the man page and completions |
//! | [`actors`] | the actors and the messages between them |
//! | [`app`] | wiring it all together for `run` |

pub(crate) mod action;
pub mod actors;
pub mod app;
pub(crate) mod attempt;
pub mod aws;
pub mod backoff;
pub(crate) mod blocking;
pub mod breaker;
pub mod cli;
pub mod config;
pub mod convert;
pub mod duration;
pub mod fs;
pub mod http;
pub mod init;
pub mod liveness;
pub mod memory;
pub(crate) mod notify;
pub(crate) mod pki;
pub mod plan;
pub mod secret;
pub(crate) mod served;
pub mod signals;
pub(crate) mod state;
pub mod status;
pub mod telemetry;
pub mod template;
pub mod vault;
