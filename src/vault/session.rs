//! The authenticated session with Vault: which token to send, one shared
//! login at a time, and re-login when an AppRole token stops working.
//!
//! A session lives on the VaultActor's thread (`Rc`, not `Send`) and is
//! driven only by it. Reads run concurrently; when they find no token they
//! all await the same login instead of logging in once each.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};

use super::auth::{approle_login_body, approle_login_path, parse_login};
use super::client::{ClientError, VaultClient};
use super::error::VaultError;
use super::kv::{parse_read, read_path};
use crate::config::{AuthConfig, StoreConfig};
use crate::secret::{SecretData, SecretString};

/// A permission error less than this long after a login does not trigger
/// another login: the policy, not the token, is the problem then.
pub const RELOGIN_MIN_INTERVAL: Duration = Duration::from_secs(5);

type LoginFuture = Shared<LocalBoxFuture<'static, Result<SecretString, VaultError>>>;

/// One store's client, credentials and current token.
pub struct VaultSession {
    client: VaultClient,
    store: StoreConfig,
    token: RefCell<Option<SecretString>>,
    login: RefCell<Option<LoginFuture>>,
    last_login: Cell<Option<Instant>>,
}

impl VaultSession {
    pub fn new(store: StoreConfig) -> Result<Rc<Self>, ClientError> {
        let client = VaultClient::new(&store)?;
        let token = match &store.auth {
            AuthConfig::Token { token } => Some(token.clone()),
            AuthConfig::AppRole { .. } => None,
        };
        Ok(Rc::new(Self {
            client,
            store,
            token: RefCell::new(token),
            login: RefCell::new(None),
            last_login: Cell::new(None),
        }))
    }

    pub fn store(&self) -> &StoreConfig {
        &self.store
    }

    /// The store-relative path shown in errors and logs (`secret/data/app`).
    pub fn display_path(&self, path: &str) -> String {
        read_path(self.store.kv_version, &self.store.mount_path, path)
            .trim_start_matches("/v1/")
            .to_string()
    }

    /// Reads one secret, logging in first if needed, and once more if an
    /// AppRole token was refused.
    pub async fn read(self: Rc<Self>, path: String) -> Result<SecretData, VaultError> {
        tracing::trace!(path = %path, "vault read started");
        let res = Rc::clone(&self).read_inner(&path).await;
        tracing::trace!(path = %path, ok = res.is_ok(), "vault read finished");
        res
    }

    async fn read_inner(self: Rc<Self>, path: &str) -> Result<SecretData, VaultError> {
        let token = self.current_token().await?;
        match self.read_with(path, &token).await {
            Err(VaultError::PermissionDenied { .. }) if self.may_relogin() => {
                tracing::info!(
                    method = self.store.auth.method(),
                    "token refused; logging in again"
                );
                self.forget_token(&token);
                let token = self.current_token().await?;
                self.read_with(path, &token).await
            }
            other => other,
        }
    }

    async fn read_with(&self, path: &str, token: &SecretString) -> Result<SecretData, VaultError> {
        let api = read_path(self.store.kv_version, &self.store.mount_path, path);
        let answer = self
            .client
            .call("read", Method::GET, &api, Some(token), None)
            .await?;
        parse_read(self.store.kv_version, &answer.body).map_err(|detail| {
            VaultError::InvalidResponse {
                op: "read",
                path: self.display_path(path),
                detail,
            }
        })
    }

    fn may_relogin(&self) -> bool {
        matches!(self.store.auth, AuthConfig::AppRole { .. })
            && self
                .last_login
                .get()
                .is_none_or(|t| t.elapsed() >= RELOGIN_MIN_INTERVAL)
    }

    fn forget_token(&self, refused: &SecretString) {
        let mut t = self.token.borrow_mut();
        if t.as_ref() == Some(refused) {
            *t = None;
        }
    }

    /// The token to use, logging in (once, shared) when there is none.
    async fn current_token(self: &Rc<Self>) -> Result<SecretString, VaultError> {
        if let Some(t) = self.token.borrow().clone() {
            return Ok(t);
        }
        let fut = {
            let mut slot = self.login.borrow_mut();
            match &*slot {
                Some(f) => f.clone(),
                None => {
                    let me = Rc::clone(self);
                    let f = async move {
                        let res = me.login().await;
                        me.last_login.set(Some(Instant::now()));
                        if let Ok(t) = &res {
                            *me.token.borrow_mut() = Some(t.clone());
                        }
                        *me.login.borrow_mut() = None;
                        res
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

    async fn login(&self) -> Result<SecretString, VaultError> {
        match &self.store.auth {
            AuthConfig::Token { token } => Ok(token.clone()),
            AuthConfig::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let body = approle_login_body(role_id, secret_id);
                let answer = self
                    .client
                    .call(
                        "auth",
                        Method::POST,
                        &approle_login_path(mount),
                        None,
                        Some(&body),
                    )
                    .await
                    .map_err(|e| VaultError::Auth {
                        method: "approle",
                        detail: e.to_string(),
                    })?;
                let info = parse_login(&answer.body).map_err(|detail| VaultError::Auth {
                    method: "approle",
                    detail,
                })?;
                tracing::info!(
                    method = "approle",
                    ttl_seconds = info.ttl.as_secs(),
                    renewable = info.renewable,
                    "logged in to Vault"
                );
                Ok(info.token)
            }
        }
    }
}
