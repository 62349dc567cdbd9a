//! StatusActor: the one place that knows every secret's sync state.
//!
//! SyncActors report to it; `/ready` and `/status` ask it; whenever
//! readiness changes it has STATUS_FILE written, for `isready`, through the
//! WriterActor like every other file (atomic, ordered with earlier writes of
//! the same file), and tells systemd `READY=1` when the readiness policy
//! first holds. It is the only writer of the `secrets_ready` and `secrets_synced`
//! gauges.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

use std::sync::Arc;

use super::writer::{WriteFiles, WriterActor};
use crate::fs::{FileWrite, WriteTarget};
use crate::notify::Notifier;
use crate::status::{ReadyFile, ReadyPolicy, SecretStatus, StatusBoard, SyncReport};
use crate::telemetry::metrics::Metrics;

pub(crate) struct StatusActor {
    board: StatusBoard,
    /// STATUS_FILE; `None` in `--once` mode (nobody asks `isready`).
    status_file: Option<PathBuf>,
    /// Readiness as last handed to the writer.
    written: Option<bool>,
    metrics: Arc<Metrics>,
    writer: Addr<WriterActor>,
    /// Told `READY=1` when the policy first holds (systemd `Type=notify`).
    notifier: Arc<Notifier>,
    /// The status file is rewritten (a fresh heartbeat) at least this often,
    /// a third of `LIVENESS_TIMEOUT`, so `isready` sees a wedge.
    rewrite_every: Duration,
    /// When the status file was last handed to the writer.
    last_write: Option<Instant>,
    /// The start-up's freed memory was given back (once every secret had
    /// been tried).
    released: bool,
}

impl StatusActor {
    pub(crate) fn new(
        policy: ReadyPolicy,
        status_file: Option<PathBuf>,
        metrics: Arc<Metrics>,
        writer: Addr<WriterActor>,
        notifier: Arc<Notifier>,
        liveness_window: Duration,
        stale: (std::collections::HashMap<String, u64>, bool),
    ) -> Self {
        Self {
            board: StatusBoard::new(policy).with_stale(stale.0, stale.1),
            status_file,
            written: None,
            metrics,
            writer,
            notifier,
            rewrite_every: liveness_window / 3,
            last_write: None,
            released: false,
        }
    }

    /// Has STATUS_FILE written when readiness differs from what it says;
    /// the returned future ends when the write has (`None`: nothing to do).
    fn sync_file(&mut self, force: bool) -> Option<impl std::future::Future<Output = ()>> {
        let ready = self.board.is_ready();
        self.metrics.secrets_ready.set(i64::from(ready));
        self.metrics
            .secrets_synced
            .set(i64::try_from(self.board.synced_count()).unwrap_or(i64::MAX));
        if ready {
            self.notifier.ready();
        }
        if !force && self.written == Some(ready) {
            return None;
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
        let path = self.status_file.clone()?;
        self.last_write = Some(Instant::now());
        let content = match serde_json::to_vec(&self.board.ready_file()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the status file");
                return None;
            }
        };
        let write = self.writer.send(WriteFiles {
            files: vec![FileWrite {
                target: WriteTarget {
                    path,
                    mode: 0o644,
                    owner: None,
                    group: None,
                    in_place: false,
                },
                content: Zeroizing::new(content),
            }],
            set: false,
            span: tracing::Span::none(),
        });
        Some(async move {
            match write.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "cannot write the status file; `isready` will not see readiness"
                ),
                Err(_) => tracing::warn!("writer not running; status file not written"),
            }
        })
    }

    /// [`sync_file`](Self::sync_file), run in the background.
    fn update_file(&mut self, ctx: &mut Context<Self>) {
        if let Some(w) = self.sync_file(false) {
            ctx.spawn(w.into_actor(self));
        }
    }
}

impl Actor for StatusActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        // Replace whatever an earlier run left: not ready until proven.
        if let Some(w) = self.sync_file(true) {
            ctx.spawn(w.into_actor(self));
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Register {
    pub(crate) name: String,
    pub(crate) path: Arc<str>,
    pub(crate) generation: u64,
    /// A restart that keeps the secret's files (e.g. a changed interval):
    /// keep counting it as synced for readiness until its first report.
    pub(crate) keep_synced: bool,
}

impl Handler<Register> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Register, ctx: &mut Self::Context) {
        self.board
            .register(&m.name, &m.path, m.generation, m.keep_synced);
        self.update_file(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unregister {
    pub(crate) name: String,
}

impl Handler<Unregister> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Unregister, ctx: &mut Self::Context) {
        self.board.remove(&m.name);
        self.update_file(ctx);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) report: SyncReport,
}

impl Handler<Report> for StatusActor {
    type Result = ();
    fn handle(&mut self, m: Report, ctx: &mut Self::Context) {
        self.board
            .apply(&m.name, m.generation, m.report, SystemTime::now());
        self.update_file(ctx);
        if !self.released && self.board.all_tried() {
            self.released = true;
            let release = crate::blocking::run(
                "giving freed memory back",
                crate::blocking::READ_DEADLINE,
                crate::memory::release_freed,
            );
            ctx.spawn(async move { drop(release.await) }.into_actor(self));
        }
    }
}

/// Marks the process as not ready (shutdown); answers once the file says so.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct MarkStopping;

impl Handler<MarkStopping> for StatusActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: MarkStopping, _: &mut Self::Context) -> Self::Result {
        let names: Vec<String> = self.board.secrets().keys().cloned().collect();
        for n in names {
            self.board.remove(&n);
        }
        match self.sync_file(false) {
            Some(w) => Box::pin(w),
            None => Box::pin(async {}),
        }
    }
}

/// Everything `/ready` and `/status` show.
#[derive(Debug, Clone, Serialize, Message)]
#[rtype(result = "()")]
pub(crate) struct Snapshot {
    pub(crate) ready: bool,
    pub(crate) policy: ReadyPolicy,
    pub(crate) synced: usize,
    pub(crate) total: usize,
    pub(crate) secrets: BTreeMap<String, SecretStatus>,
}

#[derive(Message)]
#[rtype(result = "Snapshot")]
pub(crate) struct GetSnapshot;

/// The heartbeat (see [`crate::liveness`]), answered at once: the proof
/// that the actor thread still runs. Also rewrites the status file when its
/// heartbeat is a third of the liveness window old.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Alive;

impl Handler<Alive> for StatusActor {
    type Result = ();
    fn handle(&mut self, _: Alive, ctx: &mut Self::Context) {
        #[cfg(feature = "failpoints")]
        crate::liveness::failpoint_wedge();
        let due = self
            .last_write
            .is_none_or(|t| t.elapsed() >= self.rewrite_every);
        if self.status_file.is_some() && due {
            if let Some(w) = self.sync_file(true) {
                ctx.spawn(w.into_actor(self));
            }
        }
    }
}

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
