//! The authenticated session with Vault: the circuit breaker every request
//! passes, the token and its lifecycle (lookup, renewal at two thirds of the
//! TTL, re-login), and reads.
//!
//! A session lives on the VaultActor's thread (`Rc`, not `Send`) and is
//! driven only by it: the actor calls [`VaultSession::start`] once and
//! [`VaultSession::maintain`] on a timer. Reads run concurrently; when they
//! find no token they all await the same login instead of logging in once
//! each.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use http::Method;
use serde_json::json;
use tracing::Instrument;

use super::auth::{
    approle_login_body, cert_login_body, jwt_login_body, login_path, parse_login, parse_lookup,
    TokenInfo,
};
use super::breaker::{Breaker, BreakerSettings, Refusal, State};
use super::client::{Answer, Endpoint, Namespace, VaultClient};
use super::error::VaultError;
use super::kv::parse_read;
use super::lease::{parse_leased, parse_renewal, Lease, Leased};
use super::store::AuthConfig;
use super::ResponseLimits;
use super::{Decode, Request};
use crate::duration::GoDuration;
use crate::secret::SecretString;
use crate::telemetry::metrics::Metrics;

/// Delay before retrying a failed renewal, lookup or login in the background.
pub(crate) const LIFECYCLE_RETRY: Duration = Duration::from_secs(5);
/// Vault requests in flight at once (the rest queue). As many as the
/// client's keep-alive pool holds, so requests reuse connections. Was half
/// of it: the cold sync of 1000 templated secrets (bench/cold_sync.py)
/// took 1.25-1.31x a bare client keeping 32 in flight, 1.14-1.25x with 32.
/// Only a first sync (or a forced refresh of everything) fills it; refreshes
/// are spread, and the catch-up after an outage is paced by time.
pub(crate) const MAX_IN_FLIGHT: usize = super::client::MAX_CONNECTIONS;

/// A renewal that grants less than this means the token is at its max TTL.
pub(crate) const MIN_RENEWED_TTL: Duration = Duration::from_secs(2);

type LoginFuture = Shared<LocalBoxFuture<'static, Result<SecretString, VaultError>>>;

/// The token in use and what is known of its lease.
#[derive(Clone)]
struct TokenState {
    token: SecretString,
    /// Zero: does not expire.
    ttl: Duration,
    renewable: bool,
    /// When `ttl` was measured.
    since: Instant,
}

impl TokenState {
    /// `None` for a token that does not expire (or whose TTL, as Vault gave
    /// it, is beyond what the clock can represent).
    fn expires_at(&self) -> Option<Instant> {
        if self.ttl.is_zero() {
            return None;
        }
        self.since.checked_add(self.ttl)
    }

    /// Renew (or log in again) at two thirds of the lease.
    fn refresh_at(&self) -> Option<Instant> {
        if self.ttl.is_zero() {
            return None;
        }
        self.since.checked_add(self.ttl / 3 * 2)
    }
}

/// One store's client, breaker, credentials and current token.
/// What every session to one Vault address shares: the circuit breaker
/// (per address, whichever credentials a request carries) and the bound on
/// requests in flight.
pub(crate) struct SessionShared {
    breaker: RefCell<Breaker>,
    /// Bounds the requests in flight, so thousands of secrets share a few
    /// keep-alive connections instead of opening one each.
    in_flight: tokio::sync::Semaphore,
    /// After a 429, no request of the store goes out before this (its
    /// `Retry-After`, else [`RATE_LIMIT_PAUSE`]): one rate-limited secret
    /// pauses them all instead of each finding out on its own.
    paused_until: Cell<Option<Instant>>,
}

/// The store's pause after a 429 without `Retry-After`.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(1);

impl SessionShared {
    pub(crate) fn new(breaker: BreakerSettings) -> Rc<Self> {
        Rc::new(Self {
            breaker: RefCell::new(Breaker::new(breaker, Instant::now())),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            paused_until: Cell::new(None),
        })
    }

    /// What is left of a rate-limit pause at `now`.
    fn paused_for(&self, now: Instant) -> Option<Duration> {
        self.paused_until
            .get()
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Pauses the store for `d` from `now` (a longer pause already set
    /// stays).
    fn pause(&self, now: Instant, d: Duration) {
        let until = now.checked_add(d).unwrap_or(now);
        if self.paused_until.get().is_none_or(|u| u < until) {
            self.paused_until.set(Some(until));
        }
    }
}

pub(crate) struct VaultSession {
    client: VaultClient,
    /// The credentials of this session (the store's default set or a
    /// named one).
    auth: AuthConfig,
    shared: Rc<SessionShared>,
    token: RefCell<Option<TokenState>>,
    login: RefCell<Option<LoginFuture>>,
    /// Bumped by every [`schedule`](Self::schedule): only the latest timer acts.
    timer: Cell<u64>,
    /// The static token's lookup failed (Vault unreachable) and is due again.
    lookup_pending: Cell<bool>,
    metrics: std::sync::Arc<Metrics>,
    /// Answer size and secret field caps.
    limits: ResponseLimits,
    /// `STATE_DIR`, where a login token is kept across an ungraceful
    /// restart (`None`: not set, or a token given to the process).
    state: Option<std::sync::Arc<crate::state::StateDir>>,
    /// What a kept token is for: address, namespace, auth method, mount
    /// and identity (no secret).
    state_key: String,
}

/// A kept token is reused only with at least this much life left.
const REUSE_MARGIN: Duration = Duration::from_secs(60);

impl VaultSession {
    pub(crate) fn new(
        store: Endpoint<'_>,
        auth: AuthConfig,
        shared: Rc<SessionShared>,
        limits: ResponseLimits,
        metrics: std::sync::Arc<Metrics>,
        state: Option<std::sync::Arc<crate::state::StateDir>>,
    ) -> Rc<Self> {
        let state_key = format!(
            "{}|{}|{}",
            store.address,
            store.namespace.and_then(|n| n.to_str().ok()).unwrap_or(""),
            auth.identity()
        );
        let state = state.filter(|_| auth.can_login());
        let client = VaultClient::new(store, limits.max_bytes);
        let token = match &auth {
            AuthConfig::Token { token } => Some(TokenState {
                token: token.clone(),
                ttl: Duration::ZERO,
                renewable: false,
                since: Instant::now(),
            }),
            _ => None,
        };
        Rc::new(Self {
            client,
            auth,
            shared,
            token: RefCell::new(token),
            login: RefCell::new(None),
            timer: Cell::new(0),
            lookup_pending: Cell::new(false),
            metrics,
            limits,
            state,
            state_key,
        })
    }

    pub(crate) fn breaker_state(&self) -> State {
        self.shared.breaker.borrow_mut().state(Instant::now())
    }

    /// Time left on the token's lease; `None` when unknown or not expiring.
    pub(crate) fn token_ttl_remaining(&self) -> Option<Duration> {
        self.token
            .borrow()
            .as_ref()
            .and_then(TokenState::expires_at)
            .map(|e| e.saturating_duration_since(Instant::now()))
    }

    /// One request through the circuit breaker.
    async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, VaultError> {
        self.call_in(&Namespace::Store, op, method, path, token, body)
            .await
    }

    /// [`call`](Self::call) in namespace `ns`.
    async fn call_in(
        &self,
        ns: &Namespace,
        op: &'static str,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, VaultError> {
        // A rate-limited store sends nothing until its pause is over.
        if let Some(left) = self.shared.paused_for(Instant::now()) {
            return Err(VaultError::RateLimited {
                op,
                path: path.to_string(),
                detail: "paused: Vault rate-limited an earlier request of this store".into(),
                retry_after: Some(left),
            });
        }
        // Wait for a slot first, so that time queued here does not count
        // against the breaker's probes.
        let _slot = self.shared.in_flight.acquire().await.ok();
        let permit = {
            let mut b = self.shared.breaker.borrow_mut();
            let res = b.allow(Instant::now());
            self.log_transitions(&mut b);
            res
        };
        let permit = permit.map_err(|r| {
            let (state, retry_in) = match r {
                Refusal::Open { retry_in } => ("open", retry_in),
                Refusal::TooManyRequests => ("half-open", Duration::ZERO),
            };
            VaultError::CircuitOpen {
                op,
                state,
                retry_in,
            }
        })?;
        tracing::trace!(op, path, "vault request");
        let started = Instant::now();
        let span = tracing::debug_span!(
            "vault.request",
            op,
            path,
            error_kind = tracing::field::Empty
        );
        let res = self
            .client
            .call(op, method, path, token, body, ns)
            .instrument(span.clone())
            .await;
        if let Err(e) = &res {
            span.record("error_kind", e.kind());
        }
        self.metrics.vault_request(
            op,
            started.elapsed(),
            res.as_ref().err().map(VaultError::kind),
        );
        match &res {
            Err(VaultError::RateLimited { retry_after, .. }) => {
                self.metrics.vault_rate_limited.inc();
                let pause = retry_after
                    .unwrap_or(RATE_LIMIT_PAUSE)
                    .min(self.limits.max_retry_after);
                tracing::warn!(
                    op,
                    path,
                    pause = %GoDuration(pause),
                    "Vault rate-limited a request (429): the store pauses"
                );
                self.shared.pause(Instant::now(), pause);
            }
            Err(VaultError::Server {
                retry_after: Some(_),
                ..
            }) => self.metrics.vault_rate_limited.inc(),
            _ => {}
        }
        let ok = !matches!(&res, Err(e) if e.is_vault_failure());
        let mut b = self.shared.breaker.borrow_mut();
        b.record(permit, ok, Instant::now());
        self.log_transitions(&mut b);
        res
    }

    fn log_transitions(&self, b: &mut Breaker) {
        for t in b.take_transitions() {
            if t.to == State::Open {
                tracing::warn!(
                    from = %t.from,
                    to = %t.to,
                    open_for = %GoDuration(b.open_for()),
                    "circuit breaker opened: Vault calls paused"
                );
            } else {
                tracing::info!(from = %t.from, to = %t.to, "circuit breaker state changed");
            }
        }
    }

    /// Reads one secret (at the API path the plan resolved, with its
    /// method and body), logging in first if needed, and once more if an
    /// AppRole token turns out to be invalid.
    pub(crate) async fn read(self: Rc<Self>, req: Request<'_>) -> Result<Leased, VaultError> {
        tracing::trace!(path = %req.display_path, "vault read started");
        let op = req.op();
        let res = match self
            .with_token(
                req.namespace,
                op,
                req.method.clone(),
                req.api_path,
                req.body,
            )
            .await
        {
            Ok(answer) => match req.decode {
                Decode::Kv(kv) => {
                    parse_read(kv, &answer.body, self.limits.max_fields).map(|d| (d, None))
                }
                Decode::Leased | Decode::Issued => {
                    parse_leased(&answer.body, self.limits.max_fields).map(|(d, lease)| {
                        let lease = lease.map(|l| l.issued_by(req.namespace, req.session));
                        (d, lease)
                    })
                }
            }
            .map_err(|detail| VaultError::InvalidResponse {
                op,
                path: req.display_path.to_string(),
                detail,
            }),
            Err(e) => Err(e),
        };
        tracing::trace!(path = %req.display_path, ok = res.is_ok(), "vault read finished");
        res
    }

    /// The issuing CA of a `pki:` secret's mount (`GET <mount>/cert/ca`),
    /// as PEM: what a certificate kept from an earlier run must chain to.
    pub(crate) async fn issuing_ca(
        self: Rc<Self>,
        req: Request<'_>,
    ) -> Result<Vec<u8>, VaultError> {
        let invalid = |detail: String| VaultError::InvalidResponse {
            op: "ca",
            path: req.display_path.to_string(),
            detail,
        };
        let mount = pki_mount_of(req.api_path)
            .ok_or_else(|| invalid("the path has no /issue/ or /sign/ after its mount".into()))?;
        let path = format!("{mount}/cert/ca");
        let answer = self
            .with_token(req.namespace, "ca", Method::GET, &path, None)
            .await?;
        let v = super::kv::parse_bounded(&answer.body, 16).map_err(invalid)?;
        v.get("data")
            .and_then(|d| d.get("certificate"))
            .and_then(serde_json::Value::as_str)
            .filter(|c| !c.is_empty())
            .map(|c| c.as_bytes().to_vec())
            .ok_or_else(|| invalid("the answer has no data.certificate".into()))
    }

    /// Renews a lease for `increment` (`sys/leases/renew`).
    pub(crate) async fn renew_lease(
        self: Rc<Self>,
        lease: &Lease,
        increment: Duration,
    ) -> Result<Lease, VaultError> {
        let path = "/v1/sys/leases/renew";
        let body = serde_json::json!({
            "lease_id": lease.id.expose(),
            "increment": increment.as_secs(),
        });
        let res = self
            .with_token(
                &lease.namespace,
                "lease_renew",
                Method::PUT,
                path,
                Some(&body),
            )
            .await;
        let mut body = body;
        crate::secret::zeroize_value(&mut body);
        let answer = res?;
        parse_renewal(&answer.body, lease).map_err(|detail| VaultError::InvalidResponse {
            op: "lease_renew",
            path: "sys/leases/renew".into(),
            detail,
        })
    }

    /// Revokes a lease (`sys/leases/revoke`).
    pub(crate) async fn revoke_lease(self: Rc<Self>, lease: &Lease) -> Result<(), VaultError> {
        let mut body = serde_json::json!({ "lease_id": lease.id.expose() });
        let res = self
            .with_token(
                &lease.namespace,
                "lease_revoke",
                Method::PUT,
                "/v1/sys/leases/revoke",
                Some(&body),
            )
            .await;
        crate::secret::zeroize_value(&mut body);
        res.map(drop)
    }

    /// Revokes the token this session obtained by logging in
    /// (`auth/token/revoke-self`), at a graceful stop: a sidecar's token
    /// should not outlive it. A token given to the process (token auth) is
    /// never revoked; nor is anything when no login happened. After this
    /// the session holds no token and plans nothing more.
    pub(crate) async fn revoke_own_token(self: Rc<Self>) -> Result<bool, VaultError> {
        if !self.can_login() {
            return Ok(false);
        }
        // No timer acts after this (renewal, re-login).
        self.timer.set(self.timer.get().wrapping_add(1));
        let Some(state) = self.token.borrow_mut().take() else {
            return Ok(false);
        };
        if let Some(st) = &self.state {
            st.forget_token(&self.state_key);
        }
        self.call(
            "token_revoke",
            Method::POST,
            "/v1/auth/token/revoke-self",
            Some(&state.token),
            None,
        )
        .await
        .map(|_| true)
    }

    /// One request with the current token (logging in first if needed);
    /// when it is refused and the token turns out to be invalid, logs in
    /// again and retries once.
    async fn with_token(
        self: &Rc<Self>,
        ns: &Namespace,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, VaultError> {
        let token = self.current_token().await?;
        match self
            .call_in(ns, op, method.clone(), path, Some(&token), body)
            .await
        {
            Err(denied @ VaultError::PermissionDenied { .. }) if self.can_login() => {
                // Invalid token, or a policy that does not allow the path?
                if !self.token_is_invalid(&token).await {
                    return Err(denied);
                }
                tracing::info!(
                    method = self.auth.method(),
                    "token no longer valid; logging in again"
                );
                self.forget_token(&token);
                let token = self.current_token().await?;
                self.call_in(ns, op, method, path, Some(&token), body).await
            }
            other => other,
        }
    }

    /// Can a new token be had by logging in (all methods but `token`)?
    pub(crate) fn can_login(&self) -> bool {
        self.auth.can_login()
    }

    async fn lookup(&self, token: &SecretString) -> Result<(Duration, bool), VaultError> {
        let path = "/v1/auth/token/lookup-self";
        let answer = self
            .call("lookup", Method::GET, path, Some(token), None)
            .await?;
        parse_lookup(&answer.body).map_err(|detail| VaultError::InvalidResponse {
            op: "lookup",
            path: path.trim_start_matches("/v1/").into(),
            detail,
        })
    }

    async fn token_is_invalid(&self, token: &SecretString) -> bool {
        matches!(
            self.lookup(token).await,
            Err(VaultError::PermissionDenied { .. })
        )
    }

    fn forget_token(&self, refused: &SecretString) {
        let mut t = self.token.borrow_mut();
        if t.as_ref().is_some_and(|s| &s.token == refused) {
            *t = None;
            if let Some(st) = &self.state {
                st.forget_token(&self.state_key);
            }
        }
    }

    fn set_token(self: &Rc<Self>, info: TokenInfo) {
        if let Some(st) = &self.state {
            st.keep_token(&self.state_key, &info.token, info.ttl);
        }
        let state = TokenState {
            token: info.token,
            ttl: info.ttl,
            renewable: info.renewable,
            since: Instant::now(),
        };
        if let Some(at) = state.refresh_at() {
            self.schedule(at);
        }
        *self.token.borrow_mut() = Some(state);
    }

    /// Runs [`maintain`](Self::maintain) at `at`, replacing any earlier plan.
    /// The timer holds only a weak reference: a replaced session stops.
    fn schedule(self: &Rc<Self>, at: Instant) {
        let id = self.timer.get() + 1;
        self.timer.set(id);
        let weak = Rc::downgrade(self);
        actix_rt::spawn(async move {
            actix_rt::time::sleep_until(at.into()).await;
            if let Some(me) = weak.upgrade() {
                if me.timer.get() == id {
                    me.maintain().await;
                }
            }
        });
    }

    /// The token to use, logging in (once, shared) when there is none.
    async fn current_token(self: &Rc<Self>) -> Result<SecretString, VaultError> {
        if let Some(t) = self.token.borrow().as_ref() {
            return Ok(t.token.clone());
        }
        let fut = {
            let mut slot = self.login.borrow_mut();
            match &*slot {
                Some(f) => f.clone(),
                None => {
                    let me = Rc::clone(self);
                    let f = async move {
                        // A token STATE_DIR kept is tried before a login.
                        let res = match me.reuse_kept_token().await {
                            Some(info) => Ok(info),
                            None => me.login().await,
                        };
                        *me.login.borrow_mut() = None;
                        match res {
                            Ok(info) => {
                                let t = info.token.clone();
                                me.set_token(info);
                                Ok(t)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    .boxed_local()
                    .shared();
                    *slot = Some(f.clone());
                    f
                }
            }
        };
        fut.await
    }

    async fn login(&self) -> Result<TokenInfo, VaultError> {
        let auth = &self.auth;
        let method = auth.method();
        let auth_err = |detail: String| VaultError::Auth { method, detail };
        let (mount, body) = match auth {
            AuthConfig::Token { token } => {
                return Ok(TokenInfo {
                    token: token.clone(),
                    ttl: Duration::ZERO,
                    renewable: false,
                })
            }
            AuthConfig::AppRole {
                mount,
                role_id,
                secret_id,
            } => (mount, approle_login_body(role_id, secret_id)),
            AuthConfig::Kubernetes {
                mount,
                role,
                token_path,
            }
            | AuthConfig::Jwt {
                mount,
                role,
                token_path,
            } => {
                // Re-read at every login: kubelet rotates projected tokens.
                let p = token_path.clone();
                let jwt = crate::blocking::run(
                    "reading the token file",
                    crate::blocking::READ_DEADLINE,
                    move || crate::secret::read_token_file(&p),
                )
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(auth_err)?;
                (mount, jwt_login_body(role, &jwt))
            }
            // The proof is the connection's client certificate.
            AuthConfig::Cert { mount, role } => (mount, cert_login_body(role)),
        };
        let mut body = body;
        let answer = self
            .call("auth", Method::POST, &login_path(mount), None, Some(&body))
            .instrument(tracing::debug_span!("vault.auth", method))
            .await;
        // The body holds the secret ID or the JWT.
        crate::secret::zeroize_value(&mut body);
        let answer = answer.map_err(|e| VaultError::Login {
            method,
            source: Box::new(e),
        })?;
        let info = parse_login(&answer.body).map_err(auth_err)?;
        tracing::info!(
            method,
            ttl_seconds = info.ttl.as_secs(),
            renewable = info.renewable,
            "logged in to Vault"
        );
        Ok(info)
    }

    /// First contact: look the static token up (TTL, renewable), or reuse
    /// the token `STATE_DIR` kept from an earlier run, or log in.
    pub(crate) async fn start(self: Rc<Self>) {
        match &self.auth {
            AuthConfig::Token { token } => self.lookup_static(token.clone()).await,
            _ => {
                if let Err(e) = self.current_token().await {
                    tracing::warn!(error = %e, "initial login failed; retrying");
                    self.schedule(Instant::now() + LIFECYCLE_RETRY);
                }
            }
        }
    }

    /// Takes the token `STATE_DIR` kept for this session when it still has
    /// time left: one `lookup-self`, no login. A token Vault refuses is
    /// forgotten (a login follows); when Vault cannot be reached, the kept
    /// token is used as it is (its expiry is known), so a restart during
    /// an outage does not log in again once Vault is back.
    async fn reuse_kept_token(&self) -> Option<TokenInfo> {
        let kept = self
            .state
            .as_ref()
            .and_then(|s| s.token(&self.state_key, REUSE_MARGIN))?;
        let method = self.auth.method();
        match self.lookup(&kept.token).await {
            Ok((ttl, renewable)) => {
                tracing::info!(
                    method,
                    ttl_seconds = ttl.as_secs(),
                    "reusing the token kept in STATE_DIR (no login)"
                );
                Some(TokenInfo {
                    token: kept.token,
                    ttl,
                    renewable,
                })
            }
            Err(VaultError::PermissionDenied { .. }) => {
                tracing::info!(
                    method,
                    "the token kept in STATE_DIR is no longer valid; logging in"
                );
                if let Some(st) = &self.state {
                    st.forget_token(&self.state_key);
                }
                None
            }
            Err(e) => {
                tracing::warn!(
                    method,
                    error = %e,
                    "cannot look up the token kept in STATE_DIR; using it until Vault answers"
                );
                Some(TokenInfo {
                    token: kept.token,
                    ttl: kept.left.unwrap_or(Duration::ZERO),
                    renewable: true,
                })
            }
        }
    }

    async fn lookup_static(self: &Rc<Self>, token: SecretString) {
        match self.lookup(&token).await {
            Ok((ttl, renewable)) => {
                if ttl.is_zero() {
                    tracing::info!(method = "token", "token does not expire");
                } else {
                    tracing::info!(
                        method = "token",
                        ttl_seconds = ttl.as_secs(),
                        renewable,
                        "token looked up"
                    );
                }
                self.set_token(TokenInfo {
                    token,
                    ttl,
                    renewable,
                });
            }
            Err(VaultError::PermissionDenied { .. }) => {
                tracing::error!(
                    method = "token",
                    "VAULT_TOKEN is invalid, expired or revoked: every read will fail until a valid token is configured"
                );
            }
            Err(e) => {
                // Vault unreachable: look again later (maintain does it).
                tracing::warn!(error = %e, "token lookup failed; will retry");
                self.lookup_pending.set(true);
                self.schedule(Instant::now() + LIFECYCLE_RETRY);
            }
        }
    }

    /// Renews the token at two thirds of its lease, or logs in again; for a
    /// static token that cannot be renewed, says loudly that it will expire.
    pub(crate) async fn maintain(self: Rc<Self>) {
        if self.lookup_pending.replace(false) {
            if let AuthConfig::Token { token } = &self.auth {
                return self.lookup_static(token.clone()).await;
            }
        }
        let state = self.token.borrow().clone();
        match state {
            None if self.can_login() => self.relogin().await,
            None => {}
            Some(st) if st.renewable => self.renew(st).await,
            Some(st) if self.can_login() => {
                tracing::info!(
                    method = self.auth.method(),
                    "token not renewable; logging in again before it expires"
                );
                self.forget_token(&st.token);
                self.relogin().await;
            }
            Some(st) => self.warn_static_expiry(&st),
        }
    }

    async fn relogin(self: &Rc<Self>) {
        if let Err(e) = self.current_token().await {
            tracing::warn!(error = %e, "re-login failed; will retry");
            self.schedule(Instant::now() + LIFECYCLE_RETRY);
        }
    }

    async fn renew(self: &Rc<Self>, st: TokenState) {
        let res = self
            .call(
                "renew",
                Method::POST,
                "/v1/auth/token/renew-self",
                Some(&st.token),
                Some(&json!({})),
            )
            .await
            .and_then(|a| {
                parse_login(&a.body).map_err(|detail| VaultError::InvalidResponse {
                    op: "renew",
                    path: "auth/token/renew-self".into(),
                    detail,
                })
            });
        match res {
            Ok(info) if info.ttl < MIN_RENEWED_TTL && self.can_login() => {
                // The max TTL is reached: a fresh login, not another renewal.
                tracing::info!(
                    method = self.auth.method(),
                    "token at its max TTL; logging in again"
                );
                self.forget_token(&st.token);
                self.relogin().await;
            }
            Ok(info) => {
                tracing::debug!(ttl_seconds = info.ttl.as_secs(), "token renewed");
                // Renewal keeps the token; the new lease sets the next renewal.
                self.set_token(TokenInfo {
                    token: st.token,
                    ttl: info.ttl,
                    renewable: info.renewable,
                });
            }
            Err(e) if self.can_login() => {
                tracing::warn!(error = %e, "token renewal failed; logging in again");
                self.forget_token(&st.token);
                self.relogin().await;
            }
            Err(e) => {
                let left = st
                    .expires_at()
                    .map(|x| x.saturating_duration_since(Instant::now()))
                    .unwrap_or_default();
                tracing::error!(
                    error = %e,
                    expires_in = %GoDuration(left),
                    "renewal of VAULT_TOKEN failed; retrying"
                );
                if !left.is_zero() {
                    self.schedule(Instant::now() + LIFECYCLE_RETRY.min(left / 2));
                }
            }
        }
    }

    fn warn_static_expiry(self: &Rc<Self>, st: &TokenState) {
        let left = st
            .expires_at()
            .map(|e| e.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        if left.is_zero() {
            tracing::error!(
                method = "token",
                "VAULT_TOKEN has expired and cannot be renewed: reads will fail until a new token is configured"
            );
        } else {
            tracing::warn!(
                method = "token",
                expires_in = %GoDuration(left),
                "VAULT_TOKEN is not renewable and will expire: provide a new token before then"
            );
            if let Some(at) = st.expires_at() {
                self.schedule(at);
            }
        }
    }
}

/// `/v1/<mount>` of a PKI issue (or sign) API path.
fn pki_mount_of(api_path: &str) -> Option<&str> {
    ["/issue/", "/sign/"]
        .iter()
        .filter_map(|m| api_path.rfind(m))
        .max()
        .map(|i| &api_path[..i])
        .filter(|m| m.len() > "/v1/".len())
}
