//! SyncActor: one per secret. Fetch, render, write, report; then wait for
//! the refresh interval, or for the backoff delay after a failure. Files keep
//! their last good content while the secret fails.

use std::sync::Arc;

use actix::prelude::*;
use tracing::Instrument;

use super::status::{Report, StatusActor};
use super::vault::{ReadSecret, VaultActor};
use super::writer::{WriteFiles, WriteReport, WriterActor};
use crate::backoff::{jitter_interval, Backoff, BackoffPolicy};
use crate::config::duration::GoDuration;
use crate::config::SecretSpec;
use crate::fs::FsError;
use crate::status::SyncReport;
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::series::{Attempt, SecretSeries, SyncStage};
use crate::template::{render_files, RenderError};
use crate::vault::breaker::State;
use crate::vault::VaultError;

/// Why one sync attempt failed. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Write(#[from] FsError),
    #[error("internal: {0} is not running")]
    Mailbox(&'static str),
}

impl SyncError {
    /// Where the attempt failed, for `secret_sync_errors_total`.
    pub fn stage(&self) -> SyncStage {
        match self {
            SyncError::Vault(_) | SyncError::Mailbox(_) => SyncStage::Fetch,
            SyncError::Render(_) => SyncStage::Render,
            SyncError::Write(_) => SyncStage::Write,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Vault(e) => e.kind(),
            SyncError::Render(_) => "render",
            SyncError::Write(_) => "write",
            SyncError::Mailbox(_) => "internal",
        }
    }
}

/// What one successful attempt did.
#[derive(Debug)]
pub struct SyncOutcome {
    pub version: Option<u64>,
    pub written: WriteReport,
}

/// Sent to the supervisor after the single attempt of `run --once`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncFinished {
    pub name: String,
    pub ok: bool,
}

/// Sync attempts in progress at once, process-wide. Four times the Vault
/// requests in flight, so reads, renders and writes overlap; the rest wait
/// as a small future instead of a full attempt. At start-up every secret is
/// due at once: without this bound 10 000 secrets held 10 000 attempts (and
/// their queued Vault reads, ~3 KiB each) until the last read finished.
pub const SYNC_SLOTS: usize = crate::vault::session::MAX_IN_FLIGHT * 4;

/// The actors a SyncActor talks to, and the telemetry it feeds. Shared by
/// every SyncActor behind one `Arc` (each `Addr` clone costs allocations).
pub struct Peers {
    /// Bounds the attempts in progress (see [`SYNC_SLOTS`]); fair, so
    /// secrets start in config order.
    pub slots: Arc<tokio::sync::Semaphore>,
    pub vault: Addr<VaultActor>,
    pub writer: Addr<WriterActor>,
    pub status: Addr<StatusActor>,
    pub metrics: Arc<Metrics>,
    pub audit: Arc<Audit>,
}

pub struct SyncActor {
    spec: Arc<SecretSpec>,
    /// This secret's metric series; also holds the path as Vault and the
    /// metrics name it (`secret/data/app`).
    series: Arc<SecretSeries>,
    peers: Arc<Peers>,
    backoff: Backoff,
    generation: u64,
    /// `Some` in `--once` mode: who to tell when the attempt is done.
    once: Option<Recipient<SyncFinished>>,
    busy: bool,
}

impl SyncActor {
    pub fn new(
        spec: Arc<SecretSpec>,
        series: Arc<SecretSeries>,
        peers: Arc<Peers>,
        policy: BackoffPolicy,
        generation: u64,
        once: Option<Recipient<SyncFinished>>,
    ) -> Self {
        Self {
            spec,
            series,
            peers,
            backoff: Backoff::new(policy),
            generation,
            once,
            busy: false,
        }
    }

    /// Waits for a slot, then attempts a sync.
    fn sync(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let slots = Arc::clone(&self.peers.slots);
        // A closed semaphore (never closed today) would mean: no bound.
        let wait = async move { slots.acquire_owned().await.ok() };
        ctx.spawn(
            wait.into_actor(self)
                .map(|slot, act, ctx| act.attempt(slot, ctx)),
        );
    }

    /// One attempt; `slot` is released when it ends.
    fn attempt(
        &mut self,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
        ctx: &mut Context<Self>,
    ) {
        tracing::trace!(secret = %self.spec.name, "sync attempt started");
        let started = std::time::Instant::now();
        let span = tracing::debug_span!(
            "sync",
            secret = %self.spec.name,
            vault_path = %self.series.vault_path(),
            otel.status_code = tracing::field::Empty,
            error_kind = tracing::field::Empty,
        );
        let fut = sync_once(
            Arc::clone(&self.spec),
            Arc::clone(&self.series),
            Arc::clone(&self.peers),
        )
        .instrument(span.clone());
        ctx.spawn(fut.into_actor(self).map(move |(res, breaker), act, ctx| {
            drop(slot);
            tracing::trace!(secret = %act.spec.name, "sync attempt finished");
            if let Err(e) = &res {
                span.record("otel.status_code", "ERROR");
                span.record("error_kind", e.kind());
            }
            act.busy = false;
            act.record(&res, breaker, started.elapsed());
            act.finish(res, ctx);
        }));
    }

    /// Metrics of one attempt.
    fn record(
        &self,
        res: &Result<SyncOutcome, SyncError>,
        breaker: Option<State>,
        took: std::time::Duration,
    ) {
        let attempt = match res {
            Ok(o) => Attempt::Synced {
                files_written: o.written.changed.len() as u64,
                at: crate::status::unix(std::time::SystemTime::now()) as f64,
            },
            Err(e) => Attempt::Failed {
                stage: e.stage(),
                vault: matches!(e, SyncError::Vault(_)),
            },
        };
        self.series
            .record(took, breaker.map(State::as_gauge), attempt);
    }

    fn finish(&mut self, res: Result<SyncOutcome, SyncError>, ctx: &mut Context<Self>) {
        let name = &self.spec.name;
        let (report, delay) = match res {
            Ok(outcome) => {
                self.backoff.reset();
                let delay = jitter_interval(self.spec.refresh_interval, fastrand::f64());
                if outcome.written.changed.is_empty() {
                    tracing::debug!(secret = %name, version = outcome.version, "secret unchanged");
                } else {
                    tracing::info!(
                        secret = %name,
                        version = outcome.version,
                        files_changed = outcome.written.changed.len(),
                        files = ?outcome.written.changed,
                        "secret synced"
                    );
                }
                (
                    SyncReport::Success {
                        version: outcome.version,
                        next_attempt: delay,
                    },
                    delay,
                )
            }
            Err(e) => {
                let delay = self.backoff.next_delay(fastrand::f64());
                tracing::warn!(
                    secret = %name,
                    error = %e,
                    error_kind = e.kind(),
                    consecutive_failures = self.backoff.failures(),
                    retry_in = %GoDuration(delay),
                    "secret sync failed; keeping the last good files"
                );
                (
                    SyncReport::Failure {
                        error: e.to_string(),
                        consecutive_failures: self.backoff.failures(),
                        next_attempt: delay,
                    },
                    delay,
                )
            }
        };
        let ok = matches!(report, SyncReport::Success { .. });
        self.peers.status.do_send(Report {
            name: name.clone(),
            generation: self.generation,
            report,
        });
        if let Some(done) = &self.once {
            done.do_send(SyncFinished {
                name: name.clone(),
                ok,
            });
            ctx.stop();
            return;
        }
        ctx.run_later(delay, |act, ctx| act.sync(ctx));
    }
}

/// One attempt: read, render, write. Also returns the breaker state the
/// read saw (`None` if the Vault actor did not answer).
async fn sync_once(
    spec: Arc<SecretSpec>,
    series: Arc<SecretSeries>,
    peers: Arc<Peers>,
) -> (Result<SyncOutcome, SyncError>, Option<State>) {
    let reply = match peers
        .vault
        .send(ReadSecret {
            path: spec.path.clone(),
            span: tracing::Span::current(),
        })
        .await
    {
        Ok(r) => r,
        Err(_) => return (Err(SyncError::Mailbox("the Vault actor")), None),
    };
    let breaker = Some(reply.breaker);
    let res = async {
        let data = reply.result?;
        let version = data.version();
        peers
            .audit
            .secret_read(&spec.name, series.vault_path(), version);
        let files = tracing::debug_span!("render", secret = %spec.name, files = spec.files.len())
            .in_scope(|| render_files(&spec, &data))?;
        // The values are in `files` now; drop the secret before the write.
        drop(data);
        let written = peers
            .writer
            .send(WriteFiles {
                secret: spec.name.clone(),
                files,
                span: tracing::Span::current(),
            })
            .await
            .map_err(|_| SyncError::Mailbox("the writer"))??;
        for f in spec
            .files
            .iter()
            .filter(|f| written.changed.contains(&f.path))
        {
            peers.audit.file_written(&spec.name, f, version);
        }
        Ok(SyncOutcome { version, written })
    }
    .await;
    (res, breaker)
}

impl Actor for SyncActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(
            secret = %self.spec.name,
            refresh_interval = %GoDuration(self.spec.refresh_interval),
            "sync started"
        );
        self.sync(ctx);
    }
}

/// Stop this secret (removed or changed by a reload, or shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSync;

impl Handler<StopSync> for SyncActor {
    type Result = ();
    fn handle(&mut self, _: StopSync, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
