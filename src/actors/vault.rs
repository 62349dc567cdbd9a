//! VaultActor: the only thing that talks to Vault.
//!
//! It owns the [`VaultSession`] (client, credentials, token). Each
//! `ReadSecret` runs as its own task on the actor's thread, so reads proceed
//! concurrently over the session's keep-alive connection pool.

use std::rc::Rc;

use actix::prelude::*;

use crate::config::StoreConfig;
use crate::secret::SecretData;
use crate::vault::{ClientError, VaultError, VaultSession};

pub struct VaultActor {
    session: Rc<VaultSession>,
}

impl VaultActor {
    /// Builds the session; must run on the thread the actor will live on.
    pub fn new(store: StoreConfig) -> Result<Self, ClientError> {
        Ok(Self {
            session: VaultSession::new(store)?,
        })
    }
}

impl Actor for VaultActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Thousands of SyncActors may ask at once at start-up.
        ctx.set_mailbox_capacity(1024);
        let s = self.session.store();
        tracing::info!(
            address = %s.address,
            auth_method = s.auth.method(),
            mount_path = %s.mount_path,
            kv_version = ?s.kv_version,
            "vault actor started"
        );
    }
}

/// Read one secret (its path inside the configured KV mount).
#[derive(Message)]
#[rtype(result = "Result<SecretData, VaultError>")]
pub struct ReadSecret {
    pub path: String,
}

impl Handler<ReadSecret> for VaultActor {
    type Result = ResponseFuture<Result<SecretData, VaultError>>;

    fn handle(&mut self, msg: ReadSecret, _: &mut Self::Context) -> Self::Result {
        Box::pin(Rc::clone(&self.session).read(msg.path))
    }
}

/// Switch to a new `secretStore` (after a config reload).
#[derive(Message)]
#[rtype(result = "Result<(), ClientError>")]
pub struct Reconfigure(pub StoreConfig);

impl Handler<Reconfigure> for VaultActor {
    type Result = Result<(), ClientError>;

    fn handle(&mut self, msg: Reconfigure, _: &mut Self::Context) -> Self::Result {
        self.session = VaultSession::new(msg.0)?;
        tracing::info!("vault connection settings replaced");
        Ok(())
    }
}
