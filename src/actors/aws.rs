//! AwsActor: the only thing that talks to AWS. One client per AWS store
//! (`secretStores`), all with the credential chain read from the
//! environment at start; SyncActors of AWS secrets ask it (`ReadAws`), a
//! reload replaces the stores (`SetAwsStores`).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;

use crate::aws::client::AwsClient;
use crate::aws::credentials::{self, Provider};
use crate::aws::{AwsError, AwsStore};
use crate::breaker::{BreakerSettings, State};
use crate::plan::{Job, JobSource};
use crate::secret::SecretData;

pub(crate) struct AwsActor {
    stores: Vec<AwsStore>,
    /// Built when the actor starts (inside the runtime); a store whose
    /// client could not be built answers its error.
    clients: HashMap<String, Result<Rc<AwsClient>, AwsError>>,
    provider: Provider,
    /// Each store's breaker takes these (CIRCUIT_BREAKER_*).
    breaker: BreakerSettings,
}

impl AwsActor {
    pub(crate) fn new(stores: Vec<AwsStore>, breaker: BreakerSettings) -> Self {
        Self {
            stores,
            clients: HashMap::new(),
            provider: credentials::from_env(&|k| std::env::var(k).ok()),
            breaker,
        }
    }

    fn build(&mut self) {
        self.clients = self
            .stores
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    AwsClient::new(s.clone(), self.provider.clone(), self.breaker).map(Rc::new),
                )
            })
            .collect();
        if !self.stores.is_empty() {
            tracing::info!(
                stores = self.stores.len(),
                credentials = match &self.provider {
                    Provider::Static(_) => "environment keys",
                    Provider::WebIdentity { .. } => "web identity",
                    Provider::Container { .. } => "container credentials",
                    Provider::Imds { .. } => "instance metadata",
                    Provider::Missing(_) => "none found",
                },
                "AWS stores ready"
            );
        }
    }
}

impl Actor for AwsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        self.build();
    }
}

/// Read one AWS secret; the answer comes with the store's breaker state
/// after the read (`None`: the store has no client).
#[derive(Message)]
#[rtype(result = "(Result<SecretData, AwsError>, Option<State>)")]
pub(crate) struct ReadAws(pub(crate) Arc<Job>);

impl Handler<ReadAws> for AwsActor {
    type Result = ResponseFuture<(Result<SecretData, AwsError>, Option<State>)>;

    fn handle(&mut self, msg: ReadAws, _: &mut Self::Context) -> Self::Result {
        let internal = |detail: String| (Err(AwsError::Invalid { detail }), None);
        let JobSource::Aws { store, .. } = &msg.0.source else {
            let r = internal("internal: not an AWS secret".into());
            return Box::pin(async move { r });
        };
        let client = match self.clients.get(store) {
            Some(Ok(c)) => Rc::clone(c),
            Some(Err(e)) => {
                let e = e.clone();
                return Box::pin(async move { (Err(e), None) });
            }
            None => {
                let r = internal(format!("internal: no store {store:?}"));
                return Box::pin(async move { r });
            }
        };
        Box::pin(async move {
            let JobSource::Aws { read, .. } = &msg.0.source else {
                return internal("internal: not an AWS secret".into());
            };
            let res = client.read(read).await;
            (res, Some(client.breaker_state()))
        })
    }
}

/// The AWS stores of a reloaded plan.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetAwsStores(pub(crate) Vec<AwsStore>);

impl Handler<SetAwsStores> for AwsActor {
    type Result = ();

    fn handle(&mut self, msg: SetAwsStores, _: &mut Self::Context) {
        if msg.0 != self.stores {
            self.stores = msg.0;
            self.build();
        }
    }
}
