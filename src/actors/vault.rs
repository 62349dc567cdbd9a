//! VaultActor: the only thing that talks to Vault.
//!
//! It owns, for each Vault store of the plan (`secretStore` and the named
//! `secretStores` with `provider: vault`), the [`VaultSession`]s of that
//! store (client, credentials, token; one per credential set) and the
//! store's circuit breaker. A request is routed by its [`SessionKey`]
//! (store, credential set), which the plan computed once per secret and a
//! lease carries back for its renewals and revocation. Each `ReadSecret`
//! runs as its own task on the actor's thread, so reads proceed
//! concurrently over the sessions' keep-alive connection pools. A session
//! schedules its own token lifecycle (renewal, re-login) with timers that
//! end when the session is replaced.

use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use tracing::Instrument;

use std::sync::Arc;

use crate::plan::{Job, StorePlan, VaultStores};
use crate::telemetry::metrics::Metrics;
use crate::vault::breaker::{BreakerSettings, State};
use crate::vault::lease::Lease;
use crate::vault::session::SessionShared;
use crate::vault::{ResponseLimits, SessionKey, VaultError, VaultSession};

pub(crate) struct VaultActor {
    /// One entry per Vault store of the plan: `secretStore` first, then
    /// the named ones (`secretStores` with `provider: vault`).
    stores: Vec<StoreSessions>,
    /// What every store's breaker takes (CIRCUIT_BREAKER_*).
    breaker: BreakerSettings,
    /// The bound on answers (VAULT_MAX_*), the same for every store.
    limits: ResponseLimits,
    metrics: Arc<Metrics>,
    /// `STATE_DIR`: where login tokens are kept across restarts.
    state: Option<Arc<crate::state::StateDir>>,
}

/// The sessions of one store: the default credentials and one per named
/// credential set, sharing one breaker and request bound (per store).
struct StoreSessions {
    /// `None`: `secretStore`.
    name: Option<Arc<str>>,
    /// The store the sessions were built for (compared on reload: an
    /// unchanged store keeps its sessions and token).
    plan: Arc<StorePlan>,
    /// The session of the store's default credentials.
    default: Rc<VaultSession>,
    /// One session per named credential set (`credentials:`), each logging
    /// in and renewing on its own.
    sets: Vec<(Arc<str>, Rc<VaultSession>)>,
}

impl StoreSessions {
    /// Builds the sessions of `plan`; must run on the actor's thread.
    fn new(
        name: Option<Arc<str>>,
        plan: Arc<StorePlan>,
        breaker: BreakerSettings,
        limits: ResponseLimits,
        metrics: &Arc<Metrics>,
        state: Option<&Arc<crate::state::StateDir>>,
    ) -> Self {
        let shared = SessionShared::new(breaker);
        let sets = plan
            .config
            .credentials
            .iter()
            .map(|(set, auth)| {
                (
                    Arc::from(set.as_str()),
                    VaultSession::new(
                        plan.endpoint(),
                        auth.clone(),
                        Rc::clone(&shared),
                        limits,
                        Arc::clone(metrics),
                        state.cloned(),
                    ),
                )
            })
            .collect();
        let auth = plan.config.auth.clone();
        let default = VaultSession::new(
            plan.endpoint(),
            auth,
            shared,
            limits,
            Arc::clone(metrics),
            state.cloned(),
        );
        Self {
            name,
            plan,
            default,
            sets,
        }
    }

    /// Logs in (and keeps the tokens renewed) on every session.
    fn start(&self) {
        let s = &self.plan.config;
        tracing::info!(
            store = self.name.as_deref().unwrap_or("secretStore"),
            address = %s.address,
            auth_method = s.auth.method(),
            credential_sets = self.sets.len(),
            mount_path = %s.mount_path,
            kv_version = ?s.kv_version,
            "connecting to Vault"
        );
        actix_rt::spawn(Rc::clone(&self.default).start());
        for (_, s) in &self.sets {
            actix_rt::spawn(Rc::clone(s).start());
        }
    }

    fn health(&self) -> StoreHealth {
        StoreHealth {
            breaker: self.default.breaker_state(),
            token_ttl_remaining: self.default.token_ttl_remaining(),
        }
    }
}

impl VaultActor {
    /// Builds the sessions of every store of a plan (TLS material already
    /// read); must run on the thread the actor will live on.
    pub(crate) fn new(
        stores: &VaultStores,
        breaker: BreakerSettings,
        limits: ResponseLimits,
        metrics: Arc<Metrics>,
        state: Option<Arc<crate::state::StateDir>>,
    ) -> Self {
        let mut me = Self {
            stores: Vec::new(),
            breaker,
            limits,
            metrics,
            state,
        };
        me.stores = me.build(stores, &mut Vec::new(), false);
        me
    }

    /// The sessions for `plans`: those of `old` whose store is unchanged
    /// (taken out of it), new ones for the rest, started when `start` (in
    /// the runtime; the first ones start with the actor).
    fn build(
        &self,
        plans: &VaultStores,
        old: &mut Vec<StoreSessions>,
        start: bool,
    ) -> Vec<StoreSessions> {
        let all = std::iter::once((None, &plans.default))
            .chain(plans.named.iter().map(|(n, p)| (Some(n), p)));
        all.map(|(name, plan)| {
            match old
                .iter()
                .position(|s| s.name.as_ref() == name && *s.plan == **plan)
            {
                Some(i) => old.swap_remove(i),
                None => {
                    let s = StoreSessions::new(
                        name.cloned(),
                        Arc::clone(plan),
                        self.breaker,
                        self.limits,
                        &self.metrics,
                        self.state.as_ref(),
                    );
                    if start {
                        s.start();
                    }
                    s
                }
            }
        })
        .collect()
    }

    /// The session a request goes through: its store's, its credential
    /// set's (an unknown set name falls back to the store's default set; a
    /// set is checked to exist when the config is loaded).
    fn session(&self, key: &SessionKey) -> Result<Rc<VaultSession>, VaultError> {
        let Some(store) = self.stores.iter().find(|s| s.name == key.store) else {
            return Err(VaultError::InvalidResponse {
                op: "route",
                path: key.store.as_deref().unwrap_or("secretStore").to_string(),
                detail: "the store is no longer configured (removed by a reload)".into(),
            });
        };
        Ok(key
            .credentials
            .as_ref()
            .and_then(|name| store.sets.iter().find(|(n, _)| n == name))
            .map_or_else(|| Rc::clone(&store.default), |(_, s)| Rc::clone(s)))
    }
}

impl Actor for VaultActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Thousands of SyncActors may ask at once at start-up.
        ctx.set_mailbox_capacity(1024);
        for s in &self.stores {
            s.start();
        }
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
        let session = self.session(&msg.job.session);
        let span =
            tracing::debug_span!(parent: &msg.span, "vault.read", path = %msg.job.display_path);
        Box::pin(
            async move {
                let job = msg.job;
                let session = match session {
                    Ok(s) => s,
                    Err(e) => {
                        return ReadReply {
                            result: Err(e),
                            breaker: State::Closed,
                        }
                    }
                };
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
        let session = self.session(&msg.0.session);
        Box::pin(async move {
            let session = session?;
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

/// Switch to the Vault stores of a reloaded plan. They were planned (TLS
/// material read and checked) before this is sent, so the switch itself
/// cannot fail; the supervisor awaits it before it applies the rest of the
/// plan. A store whose plan is unchanged keeps its sessions (its tokens);
/// a changed or new one gets new sessions; a dropped one ends.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reconfigure(pub(crate) Arc<VaultStores>);

impl Handler<Reconfigure> for VaultActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, _: &mut Self::Context) {
        let mut old = std::mem::take(&mut self.stores);
        self.stores = self.build(&msg.0, &mut old, true);
        let dropped: Vec<&str> = old
            .iter()
            .map(|s| s.name.as_deref().unwrap_or("secretStore"))
            .collect();
        tracing::info!(replaced_or_removed = ?dropped, "Vault stores changed; connections replaced");
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
        let session = self.session(&msg.lease.session);
        Box::pin(async move { session?.renew_lease(&msg.lease, msg.increment).await })
    }
}

/// Revoke a leased secret's lease (graceful stop with `revokeOnShutdown`).
#[derive(Message)]
#[rtype(result = "Result<(), VaultError>")]
pub(crate) struct RevokeLease(pub(crate) Lease);

impl Handler<RevokeLease> for VaultActor {
    type Result = ResponseFuture<Result<(), VaultError>>;

    fn handle(&mut self, msg: RevokeLease, _: &mut Self::Context) -> Self::Result {
        let session = self.session(&msg.0.session);
        Box::pin(async move { session?.revoke_lease(&msg.0).await })
    }
}

/// Revoke the tokens the sessions obtained by logging in (a graceful stop,
/// after the `revokeOnShutdown` leases), except those of the sessions in
/// `kept` (they hold leases kept past the stop, which revoking the token
/// would revoke): answers how many were revoked.
#[derive(Message)]
#[rtype(result = "usize")]
pub(crate) struct RevokeTokens {
    pub(crate) kept: Vec<SessionKey>,
}

impl Handler<RevokeTokens> for VaultActor {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: RevokeTokens, _: &mut Self::Context) -> Self::Result {
        let keep: Vec<Rc<VaultSession>> = msg
            .kept
            .iter()
            .filter_map(|k| self.session(k).ok())
            .collect();
        let sessions: Vec<(String, Rc<VaultSession>)> = self
            .stores
            .iter()
            .flat_map(|s| {
                let store = s.name.as_deref().unwrap_or("secretStore").to_string();
                std::iter::once(Rc::clone(&s.default))
                    .chain(s.sets.iter().map(|(_, sess)| Rc::clone(sess)))
                    .map(move |sess| (store.clone(), sess))
            })
            .filter(|(store, sess)| {
                let kept = keep.iter().any(|k| Rc::ptr_eq(k, sess));
                if kept && sess.can_login() {
                    tracing::info!(
                        store = store.as_str(),
                        "login token kept: it holds leases of dynamic secrets without revokeOnShutdown (revoking it would revoke them)"
                    );
                }
                !kept
            })
            .collect();
        Box::pin(async move {
            let revokes = sessions.into_iter().map(|(store, s)| async move {
                match s.revoke_own_token().await {
                    Ok(revoked) => revoked,
                    Err(e) => {
                        tracing::warn!(store, error = %e, "could not revoke the login token; it expires with its TTL");
                        false
                    }
                }
            });
            let n = futures_util::future::join_all(revokes)
                .await
                .into_iter()
                .filter(|r| *r)
                .count();
            if n > 0 {
                tracing::info!(tokens = n, "login tokens revoked");
            }
            n
        })
    }
}

/// One store's breaker state and token TTL (of its default credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreHealth {
    pub(crate) breaker: State,
    pub(crate) token_ttl_remaining: Option<Duration>,
}

/// Every Vault store's health, for `/status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VaultHealth {
    /// `secretStore`'s.
    pub(crate) default: StoreHealth,
    /// The named Vault stores', by name.
    pub(crate) named: Vec<(Arc<str>, StoreHealth)>,
}

#[derive(Message)]
#[rtype(result = "VaultHealth")]
pub(crate) struct GetVaultHealth;

impl Handler<GetVaultHealth> for VaultActor {
    type Result = MessageResult<GetVaultHealth>;

    fn handle(&mut self, _: GetVaultHealth, _: &mut Self::Context) -> Self::Result {
        let mut default = None;
        let mut named = Vec::new();
        for s in &self.stores {
            match &s.name {
                None => default = Some(s.health()),
                Some(n) => named.push((Arc::clone(n), s.health())),
            }
        }
        MessageResult(VaultHealth {
            default: default.unwrap_or(StoreHealth {
                breaker: State::Closed,
                token_ttl_remaining: None,
            }),
            named,
        })
    }
}
