//! SyncActor: one per secret, running its [`Job`] as one loop: wait for a
//! sync slot, make one attempt (read, render, write), emit one
//! [`AttemptFinished`] event (log, metrics, audit, span) and report it to
//! the status board, then sleep until the refresh interval or the backoff
//! delay has passed (or [`SyncNow`] wakes it), or stop. Files keep their
//! last good content while the secret fails.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use tracing::Instrument;

use super::status::{Report, StatusActor};
use super::vault::{ReadIssuingCa, ReadSecret, RenewLease, RevokeLease, VaultActor};
use super::writer::{WriteFiles, WriterActor};
use crate::attempt::{retry_delay, SyncError};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::blocking::{OffloadError, RENDER_DEADLINE};
use crate::duration::GoDuration;
use crate::fs::Written;
use crate::pki::CertInfo;
use crate::plan::{Job, JobSource};
use crate::telemetry::audit::Audit;
use crate::telemetry::events::{AttemptFinished, CertificateKept, Issued, LeaseKept, LeaseRenewed};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::series::SecretSeries;
use crate::template::RenderError;
use crate::vault::breaker::State;
use crate::vault::lease::{after_fetch, after_renewal, Lease, Step};
use crate::vault::{SessionKey, VaultError};
use std::sync::atomic::AtomicBool;

/// Sent to the supervisor after the single attempt of `run --once`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SyncFinished {
    pub(crate) name: String,
    pub(crate) ok: bool,
}

/// Sync attempts in progress at once, process-wide. Twice the Vault
/// requests in flight, so reads, renders and writes overlap; the rest wait
/// as a small future instead of a full attempt. At start-up every secret is
/// due at once: without this bound 10 000 secrets held 10 000 attempts (and
/// their queued Vault reads, ~3 KiB each) until the last read finished.
pub const SYNC_SLOTS: usize = crate::vault::session::MAX_IN_FLIGHT * 2;

/// The actors a SyncActor talks to, and the telemetry it feeds. Shared by
/// every SyncActor behind one `Arc` (each `Addr` clone costs allocations).
pub(crate) struct Peers {
    /// Bounds the attempts in progress (see [`SYNC_SLOTS`]); fair, so
    /// secrets start in config order.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    pub(crate) vault: Addr<VaultActor>,
    /// Reads the secrets of AWS stores.
    pub(crate) aws: Addr<super::aws::AwsActor>,
    pub(crate) writer: Addr<WriterActor>,
    pub(crate) status: Addr<StatusActor>,
    pub(crate) actions: Addr<super::action::ActionActor>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) audit: Arc<Audit>,
    /// `STATE_DIR`: the identity of the files each secret last wrote.
    pub(crate) state: Option<Arc<crate::state::StateDir>>,
    /// `SECRETS_API`: what the local API serves (the files' content).
    pub(crate) served: Option<Arc<crate::served::Served>>,
}

/// A secret's actor. Between attempts it holds only its state and one
/// timer (`ctx.run_later`): no per-secret loop future, no `Notify`. That
/// keeps a sleeping secret at the actor plus a timer (the loop future it
/// replaced, with a sleep, a wake-up and a semaphore wait inline, cost
/// ~0.4 KiB per secret in bench/run.py).
pub(crate) struct SyncActor {
    job: Arc<Job>,
    /// This secret's metric series (written by this actor only).
    series: Arc<SecretSeries>,
    peers: Arc<Peers>,
    /// `None` while an attempt has it (the attempt hands it back).
    backoff: Option<Backoff>,
    /// Which start of this secret; the status board ignores older ones.
    generation: u64,
    /// `Some` in `--once` mode: who to tell when the attempt is done.
    once: Option<Recipient<SyncFinished>>,
    /// What the actor is doing now.
    phase: Phase,
    /// What the next timer does: read the secret, or renew its lease.
    next: Step,
    /// The lease of the credentials on disk (leased secrets), kept to
    /// renew and, with `revokeOnShutdown`, to revoke it.
    lease: Option<HeldLease>,
    /// The offloaded part of this secret's attempts: a render running,
    /// and what the last full write left (see [`RenderState`]).
    render: Arc<RenderState>,
    /// NotAfter (Unix seconds) of the certificate on disk (`pki:`), as
    /// issued or kept: a forced refresh does not replace a valid one.
    cert_not_after: Option<u64>,
    /// When a forced refresh last re-issued (the per-secret floor).
    last_reissue: Option<Instant>,
    /// A graceful stop waiting for the attempt in flight (it may bring a
    /// lease that must be revoked or reported kept, not dropped with it).
    stop_waiter: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The longest a graceful stop waits for an attempt in flight that may
/// bring a lease (SHUTDOWN_TIMEOUT bounds the whole stop).
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A lease the files' credentials hold.
struct HeldLease {
    lease: Lease,
    /// The duration first granted: what each renewal asks for.
    asked: Duration,
}

/// What a finished attempt leaves for the actor.
struct AttemptEnd {
    /// `Ok` after a success, `Err` after a failure: the delay to the next step.
    next_in: Result<Duration, Duration>,
    next: Step,
    /// After a success: the new credentials' lease (`None`: not leased).
    /// After a failure: `None`, and the old lease stays.
    lease: Option<Option<HeldLease>>,
    /// After a success: the issued certificate's NotAfter (`None`: none).
    /// After a failure: `None`, and the old one stays.
    cert_not_after: Option<Option<u64>>,
    /// New credentials whose files changed: answers once the secret's
    /// `onChange` actions ran (`None`: no action to wait for).
    actions_done: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Between two attempts, or in one.
enum Phase {
    /// Waiting for the next planned attempt; the timer's handle, so that
    /// [`SyncNow`] can cancel it.
    Sleeping(SpawnHandle),
    /// An attempt is in progress; `true` when [`SyncNow`] arrived during it
    /// (the next attempt then starts at once: what the attempt read may be
    /// older than the request).
    Attempting { again: bool },
    /// [`StopSync`] arrived (it may still be revoking the lease): nothing
    /// new starts, no timer is set.
    Stopping,
}

impl SyncActor {
    pub(crate) fn new(
        job: Arc<Job>,
        series: Arc<SecretSeries>,
        peers: Arc<Peers>,
        policy: BackoffPolicy,
        generation: u64,
        once: Option<Recipient<SyncFinished>>,
    ) -> Self {
        Self {
            job,
            series,
            peers,
            backoff: Some(Backoff::new(policy)),
            generation,
            once,
            phase: Phase::Attempting { again: false },
            next: Step::Fetch,
            lease: None,
            render: Arc::default(),
            cert_not_after: None,
            last_reissue: None,
            stop_waiter: None,
        }
    }

    /// Tells the status board about this secret.
    fn report(&self, report: crate::status::SyncReport) {
        self.peers.status.do_send(Report {
            name: self.job.name.clone(),
            generation: self.generation,
            report,
        });
    }

    /// Plans the next step in `delay`.
    fn sleep(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        if let Phase::Stopping = self.phase {
            return;
        }
        let timer = ctx.run_later(delay, |act, ctx| match act.next {
            Step::Fetch => act.start_attempt(ctx),
            Step::Renew => act.start_renewal(ctx),
        });
        self.phase = Phase::Sleeping(timer);
    }

    /// Renews the lease; a failure falls back to fetching new credentials
    /// at once (with the secret's backoff if that fails too), so the files
    /// are replaced before the lease ends whenever Vault lets us.
    fn start_renewal(&mut self, ctx: &mut Context<Self>) {
        if let Phase::Stopping = self.phase {
            return;
        }
        let Some(held) = &self.lease else {
            self.start_attempt(ctx);
            return;
        };
        self.phase = Phase::Attempting { again: false };
        let msg = RenewLease {
            lease: held.lease.clone(),
            increment: held.asked,
        };
        let asked = held.asked;
        let vault = self.peers.vault.clone();
        ctx.spawn(async move { vault.send(msg).await }.into_actor(self).map(
            move |res, act, ctx| {
                let res = res.unwrap_or(Err(VaultError::Network {
                    op: "lease_renew",
                    detail: "the Vault actor is not running".into(),
                }));
                // What comes next is decided here; the event only reports.
                let next = res
                    .as_ref()
                    .ok()
                    .map(|granted| after_renewal(asked, granted, fastrand::f64()));
                let report = LeaseRenewed {
                    job: &act.job,
                    asked,
                    result: &res,
                    next,
                }
                .emit(&act.peers.metrics, &act.peers.audit, &act.series);
                if let Some(report) = report {
                    act.report(report);
                }
                if let Phase::Attempting { again: true } = act.phase {
                    act.start_attempt(ctx);
                    return;
                }
                match (res, next) {
                    (Ok(granted), Some((delay, step))) => {
                        if let Some(held) = &mut act.lease {
                            held.lease = granted;
                        }
                        act.remember_lease();
                        act.next = step;
                        act.sleep(delay, ctx);
                    }
                    _ => act.start_attempt(ctx),
                }
            },
        ));
    }

    /// Keeps the secret's current lease in `STATE_DIR` (or forgets it when
    /// there is none).
    fn remember_lease(&self) {
        let Some(state) = &self.peers.state else {
            return;
        };
        if !matches!(self.job.source, JobSource::Dynamic { .. }) {
            return;
        }
        match &self.lease {
            Some(held) => state.record_lease(lease_record(&self.job, held)),
            None => state.forget_lease(&self.job.name),
        }
    }

    /// A dynamic secret whose credentials on disk an earlier run wrote
    /// (`STATE_DIR`: the files intact, the same request, the lease with
    /// time left): keeps them and plans the lease's renewal instead of
    /// asking for new credentials. `false` when there is nothing to keep.
    fn keep_lease(&mut self, ctx: &mut Context<Self>) -> bool {
        let (Some(state), JobSource::Dynamic { .. }, None) =
            (&self.peers.state, &self.job.source, &self.once)
        else {
            return false;
        };
        if !state.intact_at_start().contains_key(&self.job.name) {
            return false;
        }
        let Some(rec) = state.lease(&self.job.name) else {
            return false;
        };
        let now = crate::status::unix_now();
        let Some(held) = held_lease(&rec, &self.job, now) else {
            return false;
        };
        let (delay, step) = after_fetch(&held.lease, fastrand::f64());
        let reports = LeaseKept {
            job: &self.job,
            expires_at: rec.expires_at,
            next_in: delay,
        }
        .emit(&self.series);
        for r in reports {
            self.report(r);
        }
        serve_kept_files(&self.job, &self.peers);
        self.lease = Some(held);
        self.next = step;
        self.phase = Phase::Attempting { again: false };
        self.sleep(delay, ctx);
        true
    }

    /// A `pki` secret whose certificate and key on disk may be kept (only
    /// for files written straight from the `certificate` and `private_key`
    /// fields): checks them off the actor thread (they are in a directory
    /// the app may write), then [`kept`](Self::kept) keeps them or starts an
    /// attempt. `false` when there is nothing to check.
    fn keep_certificate(&mut self, ctx: &mut Context<Self>) -> bool {
        let JobSource::Pki(pki) = &self.job.source else {
            return false;
        };
        if self.job.template.is_some() {
            return false;
        }
        let file = |field: &str| {
            self.job
                .files
                .iter()
                .find(|f| f.source == field)
                .map(|f| f.target.clone())
        };
        let (Some(cert), Some(key)) = (file("certificate"), file("private_key")) else {
            return false;
        };
        // An atomic set's names are our symlinks into `..data`: read
        // through `..data` (a directory symlink is followed only when ours).
        let (cert, key) = if self.job.atomic_set {
            (
                crate::fs::set::through_data(cert),
                crate::fs::set::through_data(key),
            )
        } else {
            (cert, key)
        };
        let spec = pki.spec.clone();
        self.phase = Phase::Attempting { again: false };
        let vault = self.peers.vault.clone();
        let job = Arc::clone(&self.job);
        let check = async move {
            // The mount's issuing CA, which the certificate must chain to.
            let ca = match vault.send(ReadIssuingCa(Arc::clone(&job))).await {
                Ok(Ok(pem)) => Some(pem),
                Ok(Err(e)) => {
                    tracing::info!(secret = %job.name, error = %e, error_kind = e.kind(), "cannot read the PKI mount's issuing CA; only a certificate in files of this uid can be kept");
                    None
                }
                Err(_) => None,
            };
            crate::blocking::run(
                "reading the certificate on disk",
                crate::blocking::READ_DEADLINE,
                move || {
                    crate::pki::keep_existing(&spec, &cert, &key, SystemTime::now(), ca.as_deref())
                },
            )
            .await
        };
        ctx.spawn(
            check
                .into_actor(self)
                .map(|res, act, ctx| act.kept(res, ctx)),
        );
        true
    }

    /// After [`keep_certificate`](Self::keep_certificate)'s check: marks
    /// the secret synced and plans its renewal from the certificate's
    /// NotAfter, or issues one now.
    fn kept(
        &mut self,
        res: Result<Result<CertInfo, crate::pki::NotKept>, OffloadError>,
        ctx: &mut Context<Self>,
    ) {
        if let Phase::Stopping = self.phase {
            return;
        }
        let cert = match res {
            Ok(Ok(c)) => c,
            Ok(Err(why)) => {
                tracing::debug!(secret = %self.job.name, reason = %why, "certificate on disk not kept; issuing one");
                return self.start_attempt(ctx);
            }
            Err(e) => {
                tracing::warn!(secret = %self.job.name, error = %e, "certificate on disk not kept; issuing one");
                return self.start_attempt(ctx);
            }
        };
        let renew_before = match &self.job.source {
            JobSource::Pki(p) => p.spec.renew_before,
            _ => None,
        };
        let delay = cert.renew_in(renew_before, SystemTime::now(), fastrand::f64());
        self.cert_not_after = Some(cert.not_after);
        let reports = CertificateKept {
            job: &self.job,
            cert: &cert,
            next_in: delay,
        }
        .emit(&self.series);
        for r in reports {
            self.report(r);
        }
        serve_kept_files(&self.job, &self.peers);
        if let Some(done) = &self.once {
            done.do_send(SyncFinished {
                name: self.job.name.clone(),
                ok: true,
            });
            ctx.stop();
            return;
        }
        self.next = Step::Fetch;
        self.sleep(delay, ctx);
    }

    /// Starts one attempt: wait for a slot, attempt, one event; then plan
    /// the next (or, in `--once` mode, report and stop).
    fn start_attempt(&mut self, ctx: &mut Context<Self>) {
        if let Phase::Stopping = self.phase {
            return;
        }
        let Some(mut backoff) = self.backoff.take() else {
            // An attempt is already in progress (it holds the backoff).
            return;
        };
        self.phase = Phase::Attempting { again: false };
        let job = Arc::clone(&self.job);
        let series = Arc::clone(&self.series);
        let peers = Arc::clone(&self.peers);
        let generation = self.generation;
        let render = Arc::clone(&self.render);
        let attempt = async move {
            // The slot first, then the attempt's state, boxed: 10 000
            // secrets queued for a slot at start-up cost a small wait each,
            // not a whole attempt each. A closed semaphore (never closed
            // today) would mean: no bound.
            let slot = Arc::clone(&peers.slots).acquire_owned().await.ok();
            let end = Box::pin(one_attempt(
                &job,
                &series,
                &peers,
                &mut backoff,
                generation,
                &render,
            ))
            .await;
            drop(slot);
            (backoff, end)
        };
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(|(backoff, end), act, ctx| act.attempt_done(backoff, end, ctx)),
        );
    }

    /// Plans the next attempt after one finished.
    fn attempt_done(&mut self, backoff: Backoff, end: AttemptEnd, ctx: &mut Context<Self>) {
        self.backoff = Some(backoff);
        let AttemptEnd {
            next_in,
            next,
            lease,
            cert_not_after,
            actions_done,
        } = end;
        if let Some(lease) = lease {
            let old = std::mem::replace(&mut self.lease, lease);
            if let (Some(old), Some(new)) = (old, &self.lease) {
                if old.lease.id != new.lease.id {
                    self.revoke_superseded(old, actions_done);
                }
            }
            self.remember_lease();
        }
        if let Some(n) = cert_not_after {
            self.cert_not_after = n;
        }
        if let Phase::Stopping = self.phase {
            // A stop waits for this attempt; nothing more is planned.
            if let Some(tx) = self.stop_waiter.take() {
                let _ = tx.send(());
            }
            return;
        }
        self.next = next;
        if let Some(done) = &self.once {
            done.do_send(SyncFinished {
                name: self.job.name.clone(),
                ok: next_in.is_ok(),
            });
            ctx.stop();
            return;
        }
        if let Phase::Attempting { again: true } = self.phase {
            tracing::debug!(secret = %self.job.name, "sync requested during an attempt: again now");
            self.start_attempt(ctx);
            return;
        }
        let next_in = next_in.unwrap_or_else(|d| d);
        self.sleep(next_in, ctx);
    }
}

/// Attempt (the caller holds a slot), one event and its report. Returns
/// the delay before the next step and what it is.
async fn one_attempt(
    job: &Arc<Job>,
    series: &SecretSeries,
    peers: &Peers,
    backoff: &mut Backoff,
    generation: u64,
    render: &Arc<RenderState>,
) -> AttemptEnd {
    tracing::trace!(secret = %job.name, "sync attempt started");
    let started = Instant::now();
    let span = tracing::debug_span!(
        "sync",
        secret = %job.name,
        vault_path = %job.display_path,
        otel.status_code = tracing::field::Empty,
        error_kind = tracing::field::Empty,
    );
    let (read, outcome, breaker, fetched) =
        attempt(job, peers, render).instrument(span.clone()).await;
    tracing::trace!(secret = %job.name, "sync attempt finished");
    let unit = fastrand::f64();
    let (next_in, next) = match (&outcome, &fetched) {
        (Ok(_), Fetched { lease: Some(l), .. }) => after_fetch(l, unit),
        (Ok(_), Fetched { cert: Some(c), .. }) => {
            (certificate_renewal_in(job, c, unit), Step::Fetch)
        }
        (Ok(_), _) => (
            backoff.next_refresh_on_grid(job.refresh_interval, unit),
            Step::Fetch,
        ),
        (Err(e), _) => (retry_delay(backoff, e, unit), Step::Fetch),
    };
    if outcome.is_ok() {
        backoff.reset();
    }
    if let Some(table) = &peers.served {
        table.finished(&job.name, outcome.is_ok());
    }
    let report = AttemptFinished {
        job,
        took: started.elapsed(),
        read,
        outcome: &outcome,
        breaker,
        next_in,
        consecutive_failures: backoff.failures(),
    }
    .emit(&peers.audit, series, &span);
    peers.status.do_send(Report {
        name: job.name.clone(),
        generation,
        report,
    });
    if outcome.is_ok() {
        let expiry = Issued {
            job,
            lease: fetched.lease.as_ref(),
            cert: fetched.cert.as_ref(),
            next_in,
        }
        .emit(&peers.audit, series);
        if let Some(report) = expiry {
            peers.status.do_send(Report {
                name: job.name.clone(),
                generation,
                report,
            });
        }
    }
    // After the files are in place: tell the actions (never for an
    // unchanged refresh). New credentials wait for them before the lease
    // they replace is revoked.
    let mut actions_done = None;
    if let (Ok(written), false) = (&outcome, job.on_change.is_empty()) {
        let files: Vec<_> = job
            .files
            .iter()
            .zip(written)
            .filter(|(_, w)| w.changed())
            .map(|(f, _)| f.target.path.clone())
            .collect();
        if !files.is_empty() {
            let done = fetched.lease.is_some().then(tokio::sync::oneshot::channel);
            let (tx, rx) = done.map_or((None, None), |(t, r)| (Some(t), Some(r)));
            actions_done = rx;
            peers.actions.do_send(super::action::FilesChanged {
                job: Arc::clone(job),
                files,
                done: tx,
            });
        }
    }
    if outcome.is_ok() {
        AttemptEnd {
            next_in: Ok(next_in),
            next,
            actions_done,
            cert_not_after: Some(fetched.cert.as_ref().map(|c| c.not_after)),
            lease: Some(fetched.lease.map(|lease| HeldLease {
                asked: lease.duration,
                lease,
            })),
        }
    } else {
        AttemptEnd {
            next_in: Err(next_in),
            next,
            lease: None,
            cert_not_after: None,
            actions_done: None,
        }
    }
}

/// When a just-issued certificate is renewed: from its NotAfter, less
/// `renewBefore`. A certificate already within `renewBefore` when issued
/// (the role's max TTL is shorter) is renewed at half its remaining life,
/// not in a loop.
fn certificate_renewal_in(job: &Job, cert: &CertInfo, unit: f64) -> Duration {
    let renew_before = match &job.source {
        JobSource::Pki(p) => p.spec.renew_before,
        _ => None,
    };
    let now = SystemTime::now();
    let d = cert.renew_in(renew_before, now, unit);
    if !d.is_zero() {
        return d;
    }
    let left = crate::status::at_unix(cert.not_after)
        .duration_since(now)
        .unwrap_or_default();
    tracing::warn!(
        secret = %job.name,
        not_after = cert.not_after,
        "the certificate was issued within renewBefore of its NotAfter (is the role's max_ttl shorter than ttl?); renewing at half its remaining life"
    );
    (left / 2).max(crate::config::settings::MIN_REFRESH_INTERVAL)
}

/// Why the offloaded part of an attempt failed.
enum RenderOutcome {
    /// The issued certificate cannot be read (the shape, no content).
    Cert(String),
    Render(RenderError),
}

/// Per secret, the offloaded part of its attempts.
#[derive(Default)]
struct RenderState {
    /// Set while a render of this secret runs on the blocking pool (also
    /// one abandoned at its deadline): no second one starts meanwhile.
    busy: AtomicBool,
    /// What the last full write of a KV or AWS secret left: an answer with
    /// the same digest, whose files all still have these stamps, renders
    /// the same bytes into the same files, so the render, the comparison
    /// of every file and the write are skipped (one stat per file
    /// instead). Cleared by a failed write and by a forced refresh.
    last: std::sync::Mutex<Option<LastWrite>>,
    /// A forced refresh asked for the full path (set on the actor thread,
    /// taken by the next render: no lock on the actor thread).
    forced: AtomicBool,
}

/// See [`RenderState::last`].
#[derive(Clone)]
struct LastWrite {
    digest: [u8; 32],
    stamps: Vec<crate::fs::read::Stamp>,
}

impl RenderState {
    fn last(&self) -> Option<LastWrite> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_last(&self, last: Option<LastWrite>) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = last;
    }
}

/// Clears a secret's "render running" flag when its render ends, also by
/// a panic.
struct ClearOnDrop(Arc<RenderState>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0
            .busy
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

/// What the offloaded part of an attempt found. (Moved once per attempt:
/// the size of `Render` costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
enum Offloaded {
    /// The answer and the files are as the last full write left them.
    Same,
    /// The files to write, the certificate issued (`pki:`), the answer's
    /// digest (secrets that may skip a render).
    Render(
        Option<CertInfo>,
        Result<Vec<crate::fs::FileWrite>, RenderOutcome>,
        Option<[u8; 32]>,
    ),
}

/// What a successful read brought besides the fields.
#[derive(Default)]
struct Fetched {
    lease: Option<Lease>,
    cert: Option<CertInfo>,
}

/// One attempt: read, render, write. Returns whether (and at which version)
/// the secret was read, the per-file result or the error, the breaker
/// state the read saw (`None` if the Vault actor did not answer), and the
/// lease or certificate the read brought.
async fn attempt(
    job: &Arc<Job>,
    peers: &Peers,
    render: &Arc<RenderState>,
) -> (
    Option<Option<crate::secret::Version>>,
    Result<Vec<Written>, SyncError>,
    Option<State>,
    Fetched,
) {
    let read = read_source(job, peers).await;
    let breaker = read.breaker;
    match read.result {
        Ok((data, lease)) => render_and_write(job, peers, render, data, lease, breaker).await,
        Err(e) => (None, Err(e), breaker, Fetched::default()),
    }
}

/// What a source answered: the secret and its lease (leased Vault answers
/// only), or why not; and the state of the breaker in front of it.
struct SourceRead {
    result: Result<(crate::secret::SecretData, Option<Lease>), SyncError>,
    /// `None`: the source's actor did not answer.
    breaker: Option<State>,
}

/// The source interface: asks the secret's source for its data. Vault and
/// OpenBao through the VaultActor, AWS stores through the AwsActor; a new
/// source is one more arm here and an actor of its own.
async fn read_source(job: &Arc<Job>, peers: &Peers) -> SourceRead {
    match job.source {
        JobSource::Aws { .. } => match peers.aws.send(super::aws::ReadAws(Arc::clone(job))).await {
            Ok((result, breaker)) => SourceRead {
                result: result.map(|d| (d, None)).map_err(SyncError::Aws),
                breaker,
            },
            Err(_) => SourceRead {
                result: Err(SyncError::Mailbox("the AWS actor")),
                breaker: None,
            },
        },
        JobSource::Kv(_) | JobSource::Dynamic { .. } | JobSource::Pki(_) => {
            let msg = ReadSecret {
                job: Arc::clone(job),
                span: tracing::Span::current(),
            };
            match peers.vault.send(msg).await {
                Ok(r) => SourceRead {
                    result: r.result.map_err(SyncError::from),
                    breaker: Some(r.breaker),
                },
                Err(_) => SourceRead {
                    result: Err(SyncError::Mailbox("the Vault actor")),
                    breaker: None,
                },
            }
        }
    }
}

/// After a read: render (off the actor thread) and write, whatever the
/// source. Returns what [`attempt`] returns.
async fn render_and_write(
    job: &Arc<Job>,
    peers: &Peers,
    render_state: &Arc<RenderState>,
    data: crate::secret::SecretData,
    lease: Option<Lease>,
    breaker: Option<State>,
) -> (
    Option<Option<crate::secret::Version>>,
    Result<Vec<Written>, SyncError>,
    Option<State>,
    Fetched,
) {
    let version = data.version();
    let mut fetched = Fetched { lease, cert: None };
    // Parsing the certificate and rendering the files work on what Vault
    // sent: off the actor thread, under a deadline; one at a time per
    // secret (a render past its deadline keeps the secret from starting
    // another until it ended).
    if render_state
        .busy
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        let e = crate::blocking::OffloadError::Busy {
            what: "rendering the secret's files",
        };
        return (Some(version), Err(e.into()), breaker, fetched);
    }
    // A KV or AWS answer without a lease renders the same files from the
    // same answer: it may skip the render (see RenderState::last).
    let may_skip =
        fetched.lease.is_none() && matches!(job.source, JobSource::Kv(_) | JobSource::Aws { .. });
    let (job2, state) = (Arc::clone(job), Arc::clone(render_state));
    let render = move || {
        let _done = ClearOnDrop(Arc::clone(&state));
        let forced = state
            .forced
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        let digest = may_skip.then(|| data.digest());
        if let (Some(d), Some(last), false) = (digest, state.last(), forced) {
            let same =
                last.digest == d
                    && last.stamps.len() == job2.files.len()
                    && job2.files.iter().zip(&last.stamps).all(|(f, s)| {
                        crate::fs::read::Stamp::of(&f.target.path).as_ref() == Some(s)
                    });
            if same {
                return Offloaded::Same;
            }
        }
        let cert = match job2.source {
            JobSource::Pki(_) => Some(
                data.field_bytes("certificate")
                    .ok_or_else(|| "the answer has no \"certificate\" field".to_string())
                    .and_then(|pem| crate::pki::parse_certificate(&pem)),
            ),
            _ => None,
        };
        if let Some(Err(detail)) = cert {
            return Offloaded::Render(None, Err(RenderOutcome::Cert(detail)), digest);
        }
        let files = tracing::debug_span!("render", secret = %job2.name, files = job2.files.len())
            .in_scope(|| job2.render(&data));
        // The values are in `files` now; the secret is dropped here.
        Offloaded::Render(
            cert.and_then(Result::ok),
            files.map_err(RenderOutcome::Render),
            digest,
        )
    };
    let (files, digest) =
        match crate::blocking::run("rendering the secret's files", RENDER_DEADLINE, render).await {
            Ok(Offloaded::Same) => {
                if let Some(state) = &peers.state {
                    state.confirm(&job.name);
                }
                let same = vec![Written::Unchanged; job.files.len()];
                return (Some(version), Ok(same), breaker, fetched);
            }
            Ok(Offloaded::Render(cert, Ok(files), digest)) => {
                fetched.cert = cert;
                (files, digest)
            }
            Ok(Offloaded::Render(_, Err(RenderOutcome::Cert(detail)), _)) => {
                let e = VaultError::InvalidResponse {
                    op: "issue",
                    path: job.display_path.to_string(),
                    detail,
                };
                return (Some(version), Err(e.into()), breaker, fetched);
            }
            Ok(Offloaded::Render(_, Err(RenderOutcome::Render(e)), _)) => {
                return (Some(version), Err(e.into()), breaker, fetched)
            }
            Err(e) => return (Some(version), Err(e.into()), breaker, fetched),
        };
    // What the local API serves is exactly what the files get.
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| u64::try_from(f.content.len()).unwrap_or(u64::MAX))
        .collect();
    let served: Option<Vec<(String, zeroize::Zeroizing<Vec<u8>>)>> =
        peers.served.as_ref().map(|_| {
            job.files
                .iter()
                .zip(&files)
                .map(|(f, w)| (f.source.clone(), w.content.clone()))
                .collect()
        });
    let written = peers
        .writer
        .send(WriteFiles {
            files,
            set: job.atomic_set,
            span: tracing::Span::current(),
        })
        .await
        .map_err(|_| SyncError::Mailbox("the writer"))
        .and_then(|r| r.map_err(SyncError::from));
    if let (Some(table), Some(files), Ok(_)) = (&peers.served, served, &written) {
        table.put(&job.name, files, version.as_ref().map(ToString::to_string));
    }
    if let (Some(state), Ok(w)) = (&peers.state, &written) {
        if w.iter().any(|f| f.changed()) {
            record_files(state, job).await;
        } else {
            state.confirm(&job.name);
        }
    }
    match (&written, digest) {
        (Ok(_), Some(digest)) => stamp_files(render_state, job, digest, &sizes).await,
        _ => render_state.set_last(None),
    }
    (Some(version), written, breaker, fetched)
}

/// The largest file read back for the local secrets API.
const MAX_SERVED_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// A secret kept at start (its certificate, or a lease from `STATE_DIR`):
/// nothing was rendered, so its local-API entry is read back from its
/// files, as they were written (our uid or the file's owner, its mode, no
/// symlink, no FIFO), off the actor thread.
fn serve_kept_files(job: &Arc<Job>, peers: &Peers) {
    let Some(table) = peers.served.clone() else {
        return;
    };
    let job = Arc::clone(job);
    actix_rt::spawn(async move {
        let j = Arc::clone(&job);
        let read = crate::blocking::run(
            "reading kept files back for the secrets API",
            crate::blocking::READ_DEADLINE,
            move || {
                use crate::fs::read::{read_untrusted, Expect};
                j.files
                    .iter()
                    .map(|f| {
                        let t = &f.target;
                        let expect = Expect {
                            uid: Some(
                                t.owner
                                    .unwrap_or_else(|| rustix::process::geteuid().as_raw()),
                            ),
                            mode: Some(t.mode),
                        };
                        read_untrusted(&t.path, MAX_SERVED_FILE_BYTES, expect)
                            .ok()
                            .map(|b| (f.source.clone(), zeroize::Zeroizing::new(b)))
                    })
                    .collect::<Option<Vec<_>>>()
            },
        )
        .await;
        match read {
            Ok(Some(files)) => table.put(&job.name, files, None),
            _ => tracing::debug!(
                secret = %job.name,
                "the kept files cannot be read back; the secrets API answers 503 for this secret until its next write"
            ),
        }
    });
}

/// `of` of each of `job`'s files, on the blocking pool (`None`: one of
/// them cannot be stat-ed, or the pool did not answer in time).
async fn stat_files<T: Send + 'static>(
    job: &Arc<Job>,
    what: &'static str,
    of: fn(&std::path::Path) -> Option<T>,
) -> Option<Vec<T>> {
    let paths: Vec<std::path::PathBuf> = job.files.iter().map(|f| f.target.path.clone()).collect();
    crate::blocking::run(what, crate::blocking::READ_DEADLINE, move || {
        paths.iter().map(|p| of(p)).collect::<Option<Vec<_>>>()
    })
    .await
    .ok()
    .flatten()
}

/// Remembers what a full write of `job` left (the answer's digest, each
/// file's stamp), so that the next unchanged answer skips the render and
/// the write.
async fn stamp_files(state: &Arc<RenderState>, job: &Arc<Job>, digest: [u8; 32], sizes: &[u64]) {
    let stamps = stat_files(
        job,
        "stamping the written files",
        crate::fs::read::Stamp::of,
    )
    .await;
    // Kept only when every file is as the write left it (mode, owner,
    // size): a change that came between the write and the stat is not
    // taken for ours.
    let stamps = stamps.filter(|stamps| {
        stamps.len() == sizes.len()
            && stamps
                .iter()
                .zip(&job.files)
                .zip(sizes)
                .all(|((s, f), size)| s.as_written(&f.target, *size))
    });
    state.set_last(stamps.map(|stamps| LastWrite { digest, stamps }));
}

/// Records in `STATE_DIR` the identity of the files a write of `job` just
/// left (a stat of each, on the blocking pool).
async fn record_files(state: &Arc<crate::state::StateDir>, job: &Arc<Job>) {
    let ids = stat_files(
        job,
        "reading the written files' identity",
        crate::state::FileId::of,
    )
    .await;
    if let Some(ids) = ids {
        state.record_secret(&job.name, ids);
    }
}

/// The least time a lease kept in `STATE_DIR` must have left to be taken.
const KEPT_LEASE_MARGIN: u64 = 10;

/// A digest of what a dynamic secret asks for (method, API path, body,
/// namespace, session): a lease kept in `STATE_DIR` is taken only by the
/// same request. Hex SHA-256; the body's fields are request parameters.
fn request_digest(job: &Job) -> String {
    let body = match &job.source {
        JobSource::Dynamic { method, body } => format!(
            "{method} {}",
            body.as_ref().map(ToString::to_string).unwrap_or_default()
        ),
        _ => String::new(),
    };
    let text = format!(
        "{} {body} {:?} {:?} {:?}",
        job.api_path, job.namespace, job.session.store, job.session.credentials
    );
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The state record of a job's held lease.
fn lease_record(job: &Job, held: &HeldLease) -> crate::state::LeaseRecord {
    use crate::vault::client::Namespace;
    crate::state::LeaseRecord {
        secret: job.name.clone(),
        request: request_digest(job),
        lease_id: held.lease.id.clone(),
        expires_at: crate::status::unix_now().saturating_add(held.lease.duration.as_secs()),
        asked_secs: held.asked.as_secs(),
        renewable: held.lease.renewable,
        namespace: match &held.lease.namespace {
            Namespace::Store => None,
            Namespace::Root => Some(String::new()),
            Namespace::Named(h) => h.to_str().ok().map(str::to_string),
        },
        store: held.lease.session.store.as_deref().map(str::to_string),
        credentials: held
            .lease
            .session
            .credentials
            .as_deref()
            .map(str::to_string),
    }
}

/// The lease a state record holds for `job` at `now` (Unix seconds), when
/// it is the job's (same request) and has time left.
fn held_lease(rec: &crate::state::LeaseRecord, job: &Job, now: u64) -> Option<HeldLease> {
    use crate::vault::client::Namespace;
    if rec.request != request_digest(job) {
        return None;
    }
    let left = rec.expires_at.checked_sub(now)?;
    if left < KEPT_LEASE_MARGIN {
        return None;
    }
    let namespace = match rec.namespace.as_deref() {
        None => Namespace::Store,
        Some("") => Namespace::Root,
        Some(n) => Namespace::Named(http::HeaderValue::from_str(n).ok()?),
    };
    Some(HeldLease {
        lease: Lease {
            id: rec.lease_id.clone(),
            duration: Duration::from_secs(left),
            renewable: rec.renewable,
            namespace,
            session: job.session.clone(),
        },
        asked: Duration::from_secs(rec.asked_secs.max(1)),
    })
}

/// How long a superseded lease stays when the secret has no `onChange`
/// action (an app reading its files on its own schedule gets this long);
/// with actions it is revoked once they ran, at the latest after
/// [`SUPERSEDED_WAIT_MAX`].
pub(crate) const SUPERSEDED_GRACE: Duration = Duration::from_secs(60);
pub(crate) const SUPERSEDED_WAIT_MAX: Duration = Duration::from_secs(600);

impl SyncActor {
    /// Revokes the lease of credentials that new ones replaced (a forced
    /// re-issue, or a re-fetch before the lease ended), once the app was
    /// told: the secret's actions ran, or after [`SUPERSEDED_GRACE`]
    /// without actions. Leases are not left to pile up in Vault.
    fn revoke_superseded(
        &self,
        old: HeldLease,
        actions_done: Option<tokio::sync::oneshot::Receiver<()>>,
    ) {
        let vault = self.peers.vault.clone();
        let (job, peers) = (Arc::clone(&self.job), Arc::clone(&self.peers));
        actix_rt::spawn(async move {
            match actions_done {
                Some(rx) => {
                    let _ = actix_rt::time::timeout(SUPERSEDED_WAIT_MAX, rx).await;
                }
                None => actix_rt::time::sleep(SUPERSEDED_GRACE).await,
            }
            match vault.send(RevokeLease(old.lease)).await {
                Ok(Ok(())) => {
                    peers.audit.lease_revoked(&job.name, &job.display_path);
                    tracing::info!(secret = %job.name, path = %job.display_path, "superseded lease revoked");
                }
                Ok(Err(e)) => {
                    tracing::warn!(secret = %job.name, error = %e, error_kind = e.kind(), "cannot revoke the superseded lease; it ends at its TTL")
                }
                Err(_) => {}
            }
        });
    }
}

impl Actor for SyncActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(
            secret = %self.job.name,
            refresh_interval = %GoDuration(self.job.refresh_interval),
            "sync started"
        );
        if !self.keep_certificate(ctx) && !self.keep_lease(ctx) {
            self.start_attempt(ctx);
        }
    }
}

/// Stop this secret (removed or changed by a reload, or shutdown). The
/// attempt in progress is dropped; a write already handed to the writer
/// still completes (the writer owns it). With `revoke` (graceful
/// shutdown) a secret with `revokeOnShutdown` revokes its lease first; the
/// answer comes once that is done. It names the session of a lease the
/// secret keeps past the stop (no `revokeOnShutdown`): that session's
/// token must not be revoked, or the lease would go with it.
#[derive(Message)]
#[rtype(result = "Option<SessionKey>")]
pub(crate) struct StopSync {
    pub(crate) revoke: bool,
}

impl Handler<StopSync> for SyncActor {
    type Result = ResponseActFuture<Self, Option<SessionKey>>;

    fn handle(&mut self, msg: StopSync, ctx: &mut Self::Context) -> Self::Result {
        let attempting = matches!(self.phase, Phase::Attempting { .. });
        // No more timers or attempts: only the revocation may still run.
        if let Phase::Sleeping(timer) = self.phase {
            ctx.cancel_future(timer);
        }
        self.phase = Phase::Stopping;
        let may_lease = matches!(
            self.job.source,
            JobSource::Dynamic { .. } | JobSource::Pki(_)
        );
        if msg.revoke && attempting && may_lease {
            // The attempt in flight may bring new credentials with a
            // lease: wait for it (a little), so that lease is revoked
            // (revokeOnShutdown) or reported kept, not lost.
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.stop_waiter = Some(tx);
            return Box::pin(
                async move {
                    let _ = actix_rt::time::timeout(STOP_WAIT, rx).await;
                }
                .into_actor(self)
                .then(move |(), act, _| act.stop_now(msg.revoke)),
            );
        }
        self.stop_now(msg.revoke)
    }
}

impl SyncActor {
    /// Stops: with `revoke` and `revokeOnShutdown`, after revoking the
    /// lease; answers the session of a lease kept past the stop.
    fn stop_now(&mut self, revoke: bool) -> ResponseActFuture<Self, Option<SessionKey>> {
        let held = if revoke && self.job.revoke_on_shutdown {
            self.lease.take()
        } else {
            None
        };
        let Some(held) = held else {
            let kept = self.lease.as_ref().map(|h| h.lease.session.clone());
            // Stopped once the answer is out (an actor stopped in the
            // handler drops its pending answers).
            return Box::pin(fut::ready(kept).map(|kept, _, ctx: &mut Context<Self>| {
                ctx.stop();
                kept
            }));
        };
        let vault = self.peers.vault.clone();
        let (job, peers) = (Arc::clone(&self.job), Arc::clone(&self.peers));
        Box::pin(
            async move {
                let res = vault.send(RevokeLease(held.lease)).await;
                match res {
                    Ok(Ok(())) => {
                        peers.audit.lease_revoked(&job.name, &job.display_path);
                        if let Some(state) = &peers.state {
                            state.forget_lease(&job.name);
                        }
                        tracing::info!(secret = %job.name, path = %job.display_path, "lease revoked (revokeOnShutdown)");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(secret = %job.name, error = %e, error_kind = e.kind(), "cannot revoke the lease; it ends at its TTL")
                    }
                    Err(_) => {
                        tracing::warn!(secret = %job.name, "cannot revoke the lease: the Vault actor is not running")
                    }
                }
            }
            .into_actor(self)
            .map(|(), _, ctx| {
                ctx.stop();
                None
            }),
        )
    }
}

/// Sync now instead of at the next planned time. An attempt in progress
/// finishes, and one more starts right after it. Answers `Err(reason)`
/// when a forced refresh is skipped.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub(crate) enum SyncNow {
    /// The store changed: read again with it, whatever the secret is.
    Store,
    /// A forced refresh (SIGUSR1, `POST /refresh`). A certificate or lease
    /// that is valid is not replaced unless `reissue` (at most once per
    /// [`REISSUE_EVERY`]): re-reading a KV secret is cheap, minting a
    /// certificate or credentials per request is not.
    Forced { reissue: bool },
}

/// A secret re-issues its certificate or credentials on request at most
/// once per this long.
pub(crate) const REISSUE_EVERY: Duration = Duration::from_secs(60);

impl SyncActor {
    /// Why a forced refresh leaves this secret alone, if it does.
    fn skip_forced(&self, reissue: bool, now: Instant) -> Option<String> {
        let valid = match (&self.job.source, self.cert_not_after, &self.lease) {
            (JobSource::Pki(_), Some(not_after), _) => Some(format!(
                "certificate valid until {}; it is renewed before then",
                crate::telemetry::audit::rfc3339(crate::status::at_unix(not_after))
            )),
            (JobSource::Dynamic { .. }, _, Some(held)) => Some(format!(
                "lease of {} valid; it is renewed or replaced before it ends",
                GoDuration(held.lease.duration)
            )),
            _ => None,
        };
        let valid = valid?;
        if !reissue {
            return Some(format!("{valid} (ask with reissue=true to replace it now)"));
        }
        if self
            .last_reissue
            .is_some_and(|t| now.saturating_duration_since(t) < REISSUE_EVERY)
        {
            return Some(
                "re-issued less than a minute ago: at most one re-issue per secret per minute"
                    .into(),
            );
        }
        None
    }
}

impl Handler<SyncNow> for SyncActor {
    type Result = Result<(), String>;
    fn handle(&mut self, msg: SyncNow, ctx: &mut Self::Context) -> Self::Result {
        if let SyncNow::Forced { reissue } = msg {
            let now = Instant::now();
            if let Some(why) = self.skip_forced(reissue, now) {
                return Err(why);
            }
            if reissue && (self.cert_not_after.is_some() || self.lease.is_some()) {
                self.last_reissue = Some(now);
            }
            // A forced refresh renders and compares every file again.
            self.render
                .forced
                .store(true, std::sync::atomic::Ordering::Release);
        }
        match self.phase {
            Phase::Sleeping(timer) => {
                ctx.cancel_future(timer);
                tracing::debug!(secret = %self.job.name, "sync requested early");
                self.start_attempt(ctx);
            }
            Phase::Attempting { ref mut again } => *again = true,
            Phase::Stopping => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;
    use crate::vault::client::Namespace;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: crate::config::settings::ConfigArgs,
    }

    fn job(params: &str) -> Arc<Job> {
        let args = T::parse_from(["t", "--config", "t.yaml"]).args;
        let yaml = format!(
            "secretStore: {{address: \"http://v\", token: t}}\nsecrets:\n  - {{name: db, dynamic: {{path: database/creds/app, method: POST, parameters: {params}}}, files: [{{path: /s/db, key: password}}]}}\n"
        );
        let plan =
            crate::plan::load_str(&yaml, &args, crate::config::Credentials::Required).unwrap();
        Arc::clone(&plan.jobs[0])
    }

    #[test]
    fn a_kept_lease_is_taken_only_by_the_same_request_with_time_left() {
        let j = job("{ttl: 1h}");
        let held = HeldLease {
            lease: Lease {
                id: SecretString::new("database/creds/app/L1"),
                duration: Duration::from_secs(60),
                renewable: true,
                namespace: Namespace::Root,
                session: j.session.clone(),
            },
            asked: Duration::from_secs(60),
        };
        let rec = lease_record(&j, &held);
        let now = crate::status::unix_now();
        let back = held_lease(&rec, &j, now).expect("the same request, time left");
        assert_eq!(back.lease.id.expose(), "database/creds/app/L1");
        assert_eq!(back.lease.namespace, Namespace::Root);
        assert!(back.lease.renewable);
        assert_eq!(back.asked, Duration::from_secs(60));
        assert!(back.lease.duration <= Duration::from_secs(60));
        assert!(back.lease.duration >= Duration::from_secs(50));
        // Another request (other parameters) does not take it.
        assert!(held_lease(&rec, &job("{ttl: 2h}"), now).is_none());
        // Too little left, or ended.
        assert!(held_lease(&rec, &j, rec.expires_at - 5).is_none());
        assert!(held_lease(&rec, &j, rec.expires_at + 1).is_none());
        // The record has no value, only the lease id (it can revoke, not read).
        let text = serde_json::to_string(&rec.request).unwrap();
        assert_eq!(text.len(), 66, "a hex SHA-256: {text}");
    }
}
