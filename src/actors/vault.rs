//! VaultActor: the only thing that talks to Vault.
//!
//! It owns the [`VaultSession`] (client, circuit breaker, credentials,
//! token). Each `ReadSecret` runs as its own task on the actor's thread, so
//! reads proceed concurrently over the session's keep-alive connection pool.
//! The session schedules its own token lifecycle (renewal, re-login) with
//! timers that end when the session is replaced.

use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use tracing::Instrument;

use std::sync::Arc;

use crate::plan::{Job, StorePlan};
use crate::telemetry::metrics::Metrics;
use crate::vault::breaker::{BreakerSettings, State};
use crate::vault::lease::Lease;
use crate::vault::session::SessionShared;
use crate::vault::{ResponseLimits, VaultError, VaultSession};

pub(crate) struct VaultActor {
    /// The session of the store's default credentials.
    session: Rc<VaultSession>,
    /// One session per named credential set (`secretStore.credentials`),
    /// each logging in and renewing on its own; all share the breaker.
    sets: SetSessions,
    /// The store the sessions were built for (what `start_session` logs).
    store: Arc<StorePlan>,
    metrics: Arc<Metrics>,
}

/// The sessions of the named credential sets, by set name.
type SetSessions = Vec<(Arc<str>, Rc<VaultSession>)>;

/// The sessions of a store: the default one and one per named set, sharing
/// one breaker and request bound (per Vault address).
fn sessions(
    store: &StorePlan,
    breaker: BreakerSettings,
    limits: ResponseLimits,
    metrics: &Arc<Metrics>,
) -> (Rc<VaultSession>, SetSessions) {
    let shared = SessionShared::new(breaker);
    let sets = store
        .config
        .credentials
        .iter()
        .map(|(name, auth)| {
            (
                Arc::from(name.as_str()),
                VaultSession::new(
                    store.endpoint(),
                    auth.clone(),
                    Rc::clone(&shared),
                    limits,
                    Arc::clone(metrics),
                ),
            )
        })
        .collect();
    let auth = store.config.auth.clone();
    let default = VaultSession::new(store.endpoint(), auth, shared, limits, Arc::clone(metrics));
    (default, sets)
}

impl VaultActor {
    /// Builds the sessions from a planned store (its TLS material already
    /// read); must run on the thread the actor will live on.
    pub(crate) fn new(
        store: Arc<StorePlan>,
        breaker: BreakerSettings,
        limits: ResponseLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (session, sets) = sessions(&store, breaker, limits, &metrics);
        Self {
            session,
            sets,
            store,
            metrics,
        }
    }

    /// The session of credential set `set` (`None`: the default). A set
    /// name is checked to exist when the config is loaded; an unknown one
    /// falls back to the default set.
    fn session(&self, set: Option<&Arc<str>>) -> Rc<VaultSession> {
        set.and_then(|name| self.sets.iter().find(|(n, _)| n == name))
            .map_or_else(|| Rc::clone(&self.session), |(_, s)| Rc::clone(s))
    }

    fn start_session(&self) {
        let s = &self.store.config;
        tracing::info!(
            address = %s.address,
            auth_method = s.auth.method(),
            credential_sets = self.sets.len(),
            mount_path = %s.mount_path,
            kv_version = ?s.kv_version,
            "connecting to Vault"
        );
        actix_rt::spawn(Rc::clone(&self.session).start());
        for (_, s) in &self.sets {
            actix_rt::spawn(Rc::clone(s).start());
        }
    }
}

impl Actor for VaultActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Thousands of SyncActors may ask at once at start-up.
        ctx.set_mailbox_capacity(1024);
        self.start_session();
    }
}

/// Read one job's secret (at the API path the plan resolved).
#[derive(Message)]
#[rtype(result = "ReadReply")]
pub(crate) struct ReadSecret {
    pub(crate) job: Arc<Job>,
    /// The caller's span, parent of this read's spans.
    pub(crate) span: tracing::Span,
}

/// The answer to [`ReadSecret`], with the breaker state after the read.
pub(crate) struct ReadReply {
    /// The secret and, for a leased answer, its lease.
    pub(crate) result: Result<crate::vault::lease::Leased, VaultError>,
    pub(crate) breaker: State,
}

impl Handler<ReadSecret> for VaultActor {
    type Result = ResponseFuture<ReadReply>;

    fn handle(&mut self, msg: ReadSecret, _: &mut Self::Context) -> Self::Result {
        let session = self.session(msg.job.credentials.as_ref());
        let span =
            tracing::debug_span!(parent: &msg.span, "vault.read", path = %msg.job.display_path);
        Box::pin(
            async move {
                let job = msg.job;
                let result = match job.request() {
                    Some(req) => Rc::clone(&session).read(req).await,
                    None => Err(not_vault(&job)),
                };
                ReadReply {
                    result,
                    breaker: session.breaker_state(),
                }
            }
            .instrument(span),
        )
    }
}

/// The issuing CA (PEM) of a `pki:` job's mount.
#[derive(Message)]
#[rtype(result = "Result<Vec<u8>, VaultError>")]
pub(crate) struct ReadIssuingCa(pub(crate) Arc<Job>);

impl Handler<ReadIssuingCa> for VaultActor {
    type Result = ResponseFuture<Result<Vec<u8>, VaultError>>;

    fn handle(&mut self, msg: ReadIssuingCa, _: &mut Self::Context) -> Self::Result {
        let session = self.session(msg.0.credentials.as_ref());
        Box::pin(async move {
            match msg.0.request() {
                Some(req) => session.issuing_ca(req).await,
                None => Err(not_vault(&msg.0)),
            }
        })
    }
}

/// A secret of another source sent here (a bug, never a user's doing).
fn not_vault(job: &Job) -> VaultError {
    VaultError::InvalidResponse {
        op: "read",
        path: job.display_path.to_string(),
        detail: "internal: not a Vault secret".into(),
    }
}

/// Switch to a new `secretStore` (after a config reload). The store was
/// planned (TLS material read and checked) before this is sent, so the
/// switch itself cannot fail; the supervisor awaits it before it applies
/// the rest of the plan.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reconfigure(pub(crate) Arc<StorePlan>);

impl Handler<Reconfigure> for VaultActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Self::Context) {
        let breaker = self.session.breaker_settings();
        let limits = self.session.limits();
        (self.session, self.sets) = sessions(&msg.0, breaker, limits, &self.metrics);
        self.store = msg.0;
        tracing::info!("secretStore changed; Vault connection replaced");
        self.start_session();
    }
}

/// Renew a leased secret's lease for `increment`.
#[derive(Message)]
#[rtype(result = "Result<Lease, VaultError>")]
pub(crate) struct RenewLease {
    pub(crate) lease: Lease,
    pub(crate) increment: Duration,
}

impl Handler<RenewLease> for VaultActor {
    type Result = ResponseFuture<Result<Lease, VaultError>>;

    fn handle(&mut self, msg: RenewLease, _: &mut Self::Context) -> Self::Result {
        let session = self.session(msg.lease.credentials.as_ref());
        Box::pin(async move { session.renew_lease(&msg.lease, msg.increment).await })
    }
}

/// Revoke a leased secret's lease (graceful stop with `revokeOnShutdown`).
#[derive(Message)]
#[rtype(result = "Result<(), VaultError>")]
pub(crate) struct RevokeLease(pub(crate) Lease);

impl Handler<RevokeLease> for VaultActor {
    type Result = ResponseFuture<Result<(), VaultError>>;

    fn handle(&mut self, msg: RevokeLease, _: &mut Self::Context) -> Self::Result {
        let session = self.session(msg.0.credentials.as_ref());
        Box::pin(async move { session.revoke_lease(&msg.0).await })
    }
}

/// Breaker state and token TTL, for `/status` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VaultHealth {
    pub(crate) breaker: State,
    pub(crate) token_ttl_remaining: Option<Duration>,
}

#[derive(Message)]
#[rtype(result = "VaultHealth")]
pub(crate) struct GetVaultHealth;

impl Handler<GetVaultHealth> for VaultActor {
    type Result = MessageResult<GetVaultHealth>;

    fn handle(&mut self, _: GetVaultHealth, _: &mut Self::Context) -> Self::Result {
        MessageResult(VaultHealth {
            breaker: self.session.breaker_state(),
            token_ttl_remaining: self.session.token_ttl_remaining(),
        })
    }
}
