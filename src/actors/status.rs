//! StatusActor: the one place that knows every secret's sync state.
//!
//! SyncActors report to it; `/ready` and `/status` ask it; it writes
//! STATUS_FILE (atomically) whenever readiness changes, for `isready`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use actix::prelude::*;
use serde::Serialize;

use std::sync::Arc;

use crate::config::FileSpec;
use crate::fs::{write_batch, FileWrite};
use crate::status::{ReadyFile, ReadyPolicy, SecretStatus, StatusBoard, SyncReport};
use crate::telemetry::metrics::Metrics;

pub struct StatusActor {
    board: StatusBoard,
    status_file: Option<PathBuf>,
    written: Option<bool>,
    metrics: Arc<Metrics>,
}

impl StatusActor {
    pub fn new(policy: ReadyPolicy, status_file: Option<PathBuf>, metrics: Arc<Metrics>) -> Self {
        Self {
            board: StatusBoard::new(policy),
            status_file,
            written: None,
            metrics,
        }
    }

    /// Writes STATUS_FILE when readiness differs from what it says.
    fn sync_file(&mut self, force: bool) {
        let ready = self.board.is_ready();
        self.metrics.secrets_ready.set(i64::from(ready));
        if !force && self.written == Some(ready) {
            return;
        }
        if self.written != Some(ready) {
            tracing::info!(
                ready,
                synced = self.board.synced_count(),
                total = self.board.secrets().len(),
                "readiness changed"
            );
        }
        self.written = Some(ready);
        let Some(path) = &self.status_file else {
            return;
        };
        let content = match serde_json::to_vec(&self.board.ready_file()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the status file");
                return;
            }
        };
        let file = FileWrite {
            spec: FileSpec {
                path: path.clone(),
                source: String::new(),
                mode: 0o644,
                owner: None,
                group: None,
            },
            content,
        };
        if let Err(e) = write_batch(&[file]) {
            tracing::warn!(error = %e, "cannot write the status file; `isready` will not see readiness");
        }
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        // Replace whatever an earlier run left: not ready until proven.
        self.sync_file(true);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Register {
    pub name: String,
    pub path: String,
    pub generation: u64,
}

impl Handler<Register> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Register, _: &mut Self::Context) {
        self.board.register(&m.name, &m.path, m.generation);
        self.sync_file(false);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregister {
    pub name: String,
}

impl Handler<Unregister> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Unregister, _: &mut Self::Context) {
        self.board.remove(&m.name);
        self.sync_file(false);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Report {
    pub name: String,
    pub generation: u64,
    pub report: SyncReport,
}

impl Handler<Report> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Report, _: &mut Self::Context) {
        self.board
            .apply(&m.name, m.generation, m.report, SystemTime::now());
        self.sync_file(false);
    }
}

/// Marks the process as not ready (shutdown) and writes the file.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MarkStopping;

impl Handler<MarkStopping> for StatusActor {
    type Result = ();
    fn handle(&mut self, _: MarkStopping, _: &mut Self::Context) {
        let names: Vec<String> = self.board.secrets().keys().cloned().collect();
        for n in names {
            self.board.remove(&n);
        }
        self.sync_file(false);
    }
}

/// Everything `/ready` and `/status` show.
#[derive(Debug, Clone, Serialize, Message)]
#[rtype(result = "()")]
pub struct Snapshot {
    pub ready: bool,
    pub policy: ReadyPolicy,
    pub synced: usize,
    pub total: usize,
    pub secrets: BTreeMap<String, SecretStatus>,
}

#[derive(Message)]
#[rtype(result = "Snapshot")]
pub struct GetSnapshot;

impl Handler<GetSnapshot> for StatusActor {
    type Result = MessageResult<GetSnapshot>;
    fn handle(&mut self, _: GetSnapshot, _: &mut Self::Context) -> Self::Result {
        let ReadyFile {
            ready,
            synced,
            total,
            ..
        } = self.board.ready_file();
        MessageResult(Snapshot {
            ready,
            policy: self.board.policy(),
            synced,
            total,
            secrets: self.board.secrets().clone(),
        })
    }
}
