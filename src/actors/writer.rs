//! WriterActor: every filesystem write goes through it.
//!
//! Batches (one secret's files) run on the blocking thread pool, up to
//! [`MAX_PARALLEL_WRITES`] at once, so that one file's fsync does not hold up
//! another file; batches touching the same file run one after the other in
//! arrival order ([`WriteQueue`]). `Drain` answers once nothing is running or
//! waiting, which graceful shutdown uses.

use std::io;
use std::path::PathBuf;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::fs::{
    sweep_stale_temps, write_batch, write_set, FileWrite, FsError, WriteQueue, Written,
};

/// Batches written at the same time at most.
pub(crate) const MAX_PARALLEL_WRITES: usize = 8;

struct Job {
    files: Vec<FileWrite>,
    /// Publish as one set (`atomicSet`).
    set: bool,
    reply: oneshot::Sender<Result<Vec<Written>, FsError>>,
    span: tracing::Span,
}

#[derive(Default)]
pub(crate) struct WriterActor {
    queue: Option<WriteQueue<Job>>,
    drains: Vec<oneshot::Sender<()>>,
}

impl WriterActor {
    fn queue(&mut self) -> &mut WriteQueue<Job> {
        self.queue
            .get_or_insert_with(|| WriteQueue::new(MAX_PARALLEL_WRITES))
    }

    /// Starts every batch that may run now.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while let Some((paths, job)) = self.queue().start_next() {
            let Job {
                files,
                set,
                reply,
                span,
            } = job;
            let first = paths.first().cloned().unwrap_or_default();
            let task = actix_rt::task::spawn_blocking(move || {
                // A write without a caller's span (the status file) is not traced.
                let span = if span.is_none() {
                    span
                } else {
                    tracing::debug_span!(parent: &span, "write", files = files.len())
                };
                span.in_scope(|| {
                    if set {
                        write_set(&files)
                    } else {
                        write_batch(&files)
                    }
                })
            });
            ctx.spawn(task.into_actor(self).map(move |res, act, ctx| {
                let res = res.unwrap_or_else(|e| {
                    Err(FsError {
                        path: first,
                        step: "write task",
                        source: io::Error::other(e.to_string()),
                    })
                });
                let _ = reply.send(res);
                act.queue().finish(&paths);
                act.pump(ctx);
            }));
        }
        if self.queue().is_idle() {
            for d in self.drains.drain(..) {
                let _ = d.send(());
            }
        }
    }
}

impl Actor for WriterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

/// Write one secret's files (all or none, as far as rename allows), or the
/// status file. The answer has one [`Written`] per file, in input order.
#[derive(Message)]
#[rtype(result = "Result<Vec<Written>, FsError>")]
pub(crate) struct WriteFiles {
    pub(crate) files: Vec<FileWrite>,
    /// Publish the files as one set (`atomicSet`: all in one directory).
    pub(crate) set: bool,
    /// The caller's span, parent of the write span (`Span::none()`: no span).
    pub(crate) span: tracing::Span,
}

impl Handler<WriteFiles> for WriterActor {
    type Result = ResponseFuture<Result<Vec<Written>, FsError>>;

    fn handle(&mut self, msg: WriteFiles, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let paths: Vec<PathBuf> = msg.files.iter().map(|f| f.target.path.clone()).collect();
        let first = paths.first().cloned().unwrap_or_default();
        tracing::trace!(files = paths.len(), "write queued");
        self.queue().push(
            paths,
            Job {
                files: msg.files,
                set: msg.set,
                reply: tx,
                span: msg.span,
            },
        );
        self.pump(ctx);
        Box::pin(async move {
            rx.await.unwrap_or_else(|_| {
                Err(FsError {
                    path: first,
                    step: "write",
                    source: io::Error::other("writer stopped before the write ran"),
                })
            })
        })
    }
}

/// Answers once no write is running or waiting.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain;

impl Handler<Drain> for WriterActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, _: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.queue().is_idle() {
            let _ = tx.send(());
        } else {
            self.drains.push(tx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// Remove temp files an earlier, killed process left in these directories.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SweepTemps(pub(crate) Vec<PathBuf>);

impl Handler<SweepTemps> for WriterActor {
    type Result = ();

    fn handle(&mut self, msg: SweepTemps, _: &mut Self::Context) {
        actix_rt::task::spawn_blocking(move || {
            for dir in msg.0 {
                match sweep_stale_temps(&dir) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(dir = %dir.display(), removed = n, "removed temp files left by an earlier run")
                    }
                    Err(e) => {
                        tracing::debug!(dir = %dir.display(), error = %e, "cannot scan for stale temp files")
                    }
                }
            }
        });
    }
}
