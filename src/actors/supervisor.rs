//! Supervisor: owns the SyncActors and applies plans.
//!
//! `ApplyPlan` takes a [`Plan`] (already resolved: nothing in it can fail
//! because of the config). When its store differs from the running one, the
//! VaultActor is switched first and the switch awaited; then the jobs are
//! diffed: removed secrets stop, added ones start, changed ones restart,
//! unchanged ones keep their schedule (and, after a store change, sync at
//! once with the new store, keeping their readiness). The handler is atomic:
//! no other message is handled until the plan is applied or refused, and a
//! refused plan leaves the running one untouched.
//!
//! New secrets are registered (status, metrics) at once but their
//! SyncActors are started [`START_BATCH`] per turn of the event loop, so the
//! first reads go out while thousands of actors are still to be started.
//! `Shutdown` stops all scheduling and waits for the writes in flight. In
//! `--once` mode it counts `SyncFinished` and stops the system with exit
//! code 0 (all synced) or 1.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::status::{MarkStopping, Register, Unregister};
use super::sync::{Peers, StopSync, SyncActor, SyncFinished, SyncNow};
use super::vault::Reconfigure;
use super::writer::{Drain, SweepTemps};
use crate::backoff::{BackoffPolicy, TokenBucket};
use crate::plan::{diff, directories, Diff, Job, Plan, VaultStores};
use crate::telemetry::series::SecretSeries;

/// SyncActors started per turn of the event loop. When every actor was
/// started in one handler, the Vault actor got its first turn only after
/// all of them (1000 secrets: the first read went out ~5 ms later than
/// now); one batch is enough to fill every sync slot.
pub const START_BATCH: usize = super::sync::SYNC_SLOTS;

/// A registered secret whose SyncActor has not been started yet.
struct PendingStart {
    job: Arc<Job>,
    series: Arc<SecretSeries>,
    generation: u64,
}

/// A configured secret: waiting for its turn to start, or running.
enum Slot {
    Pending(PendingStart),
    Running(Addr<SyncActor>),
}

pub(crate) struct Supervisor {
    peers: Arc<Peers>,
    backoff: BackoffPolicy,
    /// The running plan's Vault stores and jobs (`None` before the first
    /// plan).
    stores: Option<Arc<VaultStores>>,
    jobs: Vec<Arc<Job>>,
    /// Configured secrets and their actor (once started).
    running: HashMap<String, Slot>,
    /// Secrets to start, in config order, with the generation they were
    /// registered with; an entry whose slot was removed or replaced since
    /// is skipped.
    starts: VecDeque<(String, u64)>,
    /// A timer for the next [`start_batch`](Self::start_batch) is set.
    starting: bool,
    generation: u64,
    once: Option<OnceState>,
    stopping: bool,
    /// When each secret's last forced refresh was queued ([`Refresh`]).
    forced: HashMap<String, Instant>,
    /// The process-wide budget of forced refreshes.
    refresh_budget: TokenBucket,
}

#[derive(Default)]
struct OnceState {
    pending: usize,
    failed: usize,
}

impl Supervisor {
    pub(crate) fn new(peers: Arc<Peers>, backoff: BackoffPolicy, once: bool) -> Self {
        Self {
            peers,
            backoff,
            stores: None,
            jobs: Vec::new(),
            running: HashMap::new(),
            starts: VecDeque::new(),
            starting: false,
            generation: 0,
            once: once.then(OnceState::default),
            stopping: false,
            forced: HashMap::new(),
            refresh_budget: TokenBucket::new(REFRESH_RATE, REFRESH_BURST, Instant::now()),
        }
    }

    /// Registers a secret (status board, metrics, `--once` count) and queues
    /// its actor's start. `keep_synced`: a restart that writes the same
    /// files, so readiness need not wait for its first sync.
    fn add_secret(&mut self, job: &Arc<Job>, keep_synced: bool) {
        self.generation += 1;
        let generation = self.generation;
        // Registered before the actor starts, so no report can arrive first,
        // and so readiness counts every secret from the start.
        self.peers.status.do_send(Register {
            name: job.name.clone(),
            path: Arc::clone(&job.display_path),
            generation,
            keep_synced,
        });
        if let Some(o) = self.once.as_mut() {
            o.pending += 1;
        }
        let series = self
            .peers
            .metrics
            .secrets
            .register(&job.name, Arc::clone(&job.display_path));
        // Files an earlier run wrote (STATE_DIR): their age counts from
        // that write until this run confirms them.
        if let Some(at) = self
            .peers
            .state
            .as_ref()
            .and_then(|s| s.intact_at_start().get(&job.name))
        {
            series.seed_last_success(*at as f64);
        }
        self.running.insert(
            job.name.clone(),
            Slot::Pending(PendingStart {
                job: Arc::clone(job),
                series,
                generation,
            }),
        );
        self.starts.push_back((job.name.clone(), generation));
    }

    /// Starts up to [`START_BATCH`] queued actors, then yields to the event
    /// loop (so their reads go out) before the next batch.
    fn start_batch(&mut self, ctx: &mut Context<Self>) {
        let mut started = 0;
        while started < START_BATCH {
            let Some((name, generation)) = self.starts.pop_front() else {
                break;
            };
            // Skip a secret removed since, or replaced (its own entry comes later).
            let Some(Slot::Pending(p)) = self.running.get(&name) else {
                continue;
            };
            if p.generation != generation {
                continue;
            }
            let once = self.once.is_some().then(|| ctx.address().recipient());
            let actor = SyncActor::new(
                Arc::clone(&p.job),
                Arc::clone(&p.series),
                Arc::clone(&self.peers),
                self.backoff,
                generation,
                once,
            );
            self.running.insert(name, Slot::Running(actor.start()));
            started += 1;
        }
        self.schedule_starts(ctx);
    }

    fn schedule_starts(&mut self, ctx: &mut Context<Self>) {
        if self.starting || self.starts.is_empty() || self.stopping {
            return;
        }
        self.starting = true;
        // A zero timer fires after the runtime has polled its I/O and the
        // tasks already queued (the actors just started, the Vault actor).
        ctx.run_later(Duration::ZERO, |act, ctx| {
            act.starting = false;
            act.start_batch(ctx);
        });
    }

    /// Stops a secret's actor; a removed secret also leaves the status
    /// board and the metrics (a restarted one is registered again).
    fn stop_secret(&mut self, name: &str, removed: bool) {
        self.forced.remove(name);
        if let Some(Slot::Running(addr)) = self.running.remove(name) {
            addr.do_send(StopSync { revoke: false });
        }
        if removed {
            self.peers.metrics.secrets.remove(name);
            self.peers.status.do_send(Unregister {
                name: name.to_string(),
            });
        }
    }

    /// Applies a plan whose store is already in place.
    /// `changed_stores`: the Vault stores the plan changed (by name,
    /// `None`: `secretStore`), already switched.
    fn apply(
        &mut self,
        plan: Plan,
        changed_stores: &[Option<Arc<str>>],
        ctx: &mut Context<Self>,
    ) -> Diff {
        // Before any secret starts: its first sync may trigger them. A
        // one-shot run (an init container: no app yet) runs no actions.
        let actions = if self.once.is_some() {
            Vec::new()
        } else {
            plan.actions.clone()
        };
        self.peers
            .actions
            .do_send(super::action::SetActions(actions));
        // Before any secret reads: the AWS stores of this plan (a reload may
        // add, change or remove them; unchanged ones keep their clients).
        self.peers
            .aws
            .do_send(super::aws::SetAwsStores(plan.aws_stores.clone()));
        let d = diff(&self.jobs, &plan.jobs);
        let old: HashMap<&str, &Job> = self.jobs.iter().map(|j| (j.name.as_str(), &**j)).collect();
        let new: HashMap<&str, &Job> = plan.jobs.iter().map(|j| (j.name.as_str(), &**j)).collect();
        // Restarts that write the same files keep their readiness.
        let same_files: HashSet<String> = d
            .changed
            .iter()
            .filter(|n| match (old.get(n.as_str()), new.get(n.as_str())) {
                (Some(o), Some(n)) => o
                    .files
                    .iter()
                    .map(|f| &f.target)
                    .eq(n.files.iter().map(|f| &f.target)),
                _ => false,
            })
            .cloned()
            .collect();
        if let Some(served) = &self.peers.served {
            // A secret whose files moved is served again once written there.
            let moved: Vec<String> = d
                .changed
                .iter()
                .filter(|n| !same_files.contains(*n))
                .cloned()
                .collect();
            served.set_names(plan.jobs.iter().map(|j| j.name.clone()).collect(), &moved);
        }
        self.peers
            .writer
            .do_send(SweepTemps(directories(&plan.jobs)));
        for name in &d.removed {
            self.stop_secret(name, true);
        }
        for name in &d.changed {
            self.stop_secret(name, false);
        }
        let to_start: HashSet<&str> = d
            .added
            .iter()
            .chain(&d.changed)
            .map(String::as_str)
            .collect();
        for job in &plan.jobs {
            if to_start.contains(job.name.as_str()) {
                self.add_secret(job, same_files.contains(&job.name));
            }
        }
        if !changed_stores.is_empty() {
            // The rest of a changed store read with it now, not at their
            // next refresh.
            for name in &d.unchanged {
                let of_changed = new
                    .get(name.as_str())
                    .is_some_and(|j| changed_stores.contains(&j.session.store));
                if let (true, Some(Slot::Running(addr))) = (of_changed, self.running.get(name)) {
                    addr.do_send(SyncNow::Store);
                }
            }
        }
        self.start_batch(ctx);
        if self.stores.is_some() {
            tracing::info!(
                added = ?d.added,
                removed = ?d.removed,
                changed = ?d.changed,
                unchanged = d.unchanged.len(),
                stores_changed = ?changed_stores
                    .iter()
                    .map(|s| s.as_deref().unwrap_or("secretStore"))
                    .collect::<Vec<_>>(),
                "config applied"
            );
        }
        self.peers
            .metrics
            .secrets_configured
            .set(i64::try_from(plan.jobs.len()).unwrap_or(i64::MAX));
        self.stores = Some(plan.stores);
        self.jobs = plan.jobs;
        d
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

/// Why a plan was not applied; the running plan stays.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error("shutting down")]
    Stopping,
    #[error("the Vault actor is not running; the store was not switched")]
    Vault,
}

/// Run this plan (the first one, or a reload).
#[derive(Message)]
#[rtype(result = "Result<Diff, ApplyError>")]
pub(crate) struct ApplyPlan(pub(crate) Plan);

impl Handler<ApplyPlan> for Supervisor {
    type Result = AtomicResponse<Self, Result<Diff, ApplyError>>;

    fn handle(&mut self, msg: ApplyPlan, _: &mut Self::Context) -> Self::Result {
        let plan = msg.0;
        if self.stopping {
            return AtomicResponse::new(Box::pin(fut::ready(Err(ApplyError::Stopping))));
        }
        // The first plan's store is the one the VaultActor was built with.
        let changed = self
            .stores
            .as_ref()
            .map(|s| s.changed(&plan.stores))
            .unwrap_or_default();
        let switch = (!changed.is_empty()).then(|| {
            tracing::info!("a Vault store changed; switching its connection");
            self.peers.vault.send(Reconfigure(Arc::clone(&plan.stores)))
        });
        let switched = async move {
            match switch {
                Some(s) => s.await.map_err(|_| ApplyError::Vault),
                None => Ok(()),
            }
        };
        AtomicResponse::new(Box::pin(switched.into_actor(self).map(
            move |res, act, ctx| {
                res?;
                Ok(act.apply(plan, &changed, ctx))
            },
        )))
    }
}

/// A reloaded config (SIGHUP or the config watcher), as planned (or why it
/// could not be): applied whole or refused whole. Counted once, by
/// outcome, in `config_reloads_total`: `success` only when it was applied
/// (store switched and secrets started/stopped); a plan that failed
/// (parse, validation, TLS material, reading it took too long) or could not
/// be applied is `failure`, logged with every reason, and the running
/// config stays.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Reload(pub(crate) Result<Plan, ReloadError>);

/// Why a reloaded config could not be planned.
#[derive(Debug)]
pub(crate) enum ReloadError {
    Invalid(crate::config::ConfigErrors),
    /// Reading it did not finish in time (off the actor thread).
    Read(crate::blocking::OffloadError),
}

impl Handler<Reload> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Reload, ctx: &mut Self::Context) -> Self::Result {
        let metrics = Arc::clone(&self.peers.metrics);
        let plan = match msg.0 {
            Ok(p) => p,
            Err(ReloadError::Invalid(e)) => {
                let errors = e.errors.iter().map(ToString::to_string).collect();
                reload_failed(
                    &metrics,
                    &format!("{} is invalid", e.file.display()),
                    errors,
                );
                return Box::pin(async {});
            }
            Err(ReloadError::Read(e)) => {
                reload_failed(&metrics, &e.to_string(), Vec::new());
                return Box::pin(async {});
            }
        };
        for w in &plan.warnings {
            tracing::warn!(warning = %w, "config warning");
        }
        // Applied as the next message, after those already queued.
        let applied = ctx.address().send(ApplyPlan(plan));
        Box::pin(async move {
            match applied.await {
                Ok(Ok(d)) => {
                    metrics.config_reloads.with_label_values(&["success"]).inc();
                    tracing::info!(
                        added = d.added.len(),
                        removed = d.removed.len(),
                        changed = d.changed.len(),
                        unchanged = d.unchanged.len(),
                        "config reloaded"
                    );
                }
                Ok(Err(e)) => reload_failed(&metrics, &e.to_string(), Vec::new()),
                Err(_) => reload_failed(&metrics, "the supervisor is not running", Vec::new()),
            }
        })
    }
}

/// A reload that was refused: counted and logged with every reason.
fn reload_failed(metrics: &crate::telemetry::metrics::Metrics, reason: &str, errors: Vec<String>) {
    metrics.config_reloads.with_label_values(&["failure"]).inc();
    tracing::error!(
        reason,
        errors = ?errors,
        "config reload rejected; the running config stays"
    );
}

impl Handler<SyncFinished> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: SyncFinished, _: &mut Self::Context) {
        self.running.remove(&msg.name);
        let Some(once) = self.once.as_mut() else {
            return;
        };
        once.pending = once.pending.saturating_sub(1);
        if !msg.ok {
            once.failed += 1;
        }
        if once.pending == 0 {
            let code = i32::from(once.failed > 0);
            tracing::info!(
                failed = once.failed,
                exit_code = code,
                "one-shot sync finished"
            );
            System::current().stop_with_code(code);
        }
    }
}

/// Forced refreshes a secret gets at most, one per this long.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The process-wide budget of forced refreshes: this many secrets a
/// second, and at most [`REFRESH_BURST`] at once (a refresh of a config
/// with 300 secrets queues the first 50 and skips the rest, saying why).
pub(crate) const REFRESH_RATE: f64 = 10.0;
pub(crate) const REFRESH_BURST: u32 = 50;

/// Re-read one secret (`Some(name)`) or every secret now (SIGUSR1,
/// `POST /refresh[/{secret}]`). A secret whose attempt is in progress gets
/// one more right after it; one forced refresh per secret per
/// [`REFRESH_EVERY`], and [`REFRESH_RATE`] secrets a second for the
/// process. A `pki:` or leased `dynamic:` secret whose certificate or lease
/// is valid is skipped unless `reissue` (at most one re-issue per secret
/// per minute). Answers the names queued and those skipped, with why.
#[derive(Message)]
#[rtype(result = "Result<RefreshAnswer, RefreshError>")]
pub(crate) struct Refresh {
    pub(crate) name: Option<String>,
    pub(crate) reissue: bool,
}

/// What a forced refresh did.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct RefreshAnswer {
    pub(crate) queued: Vec<String>,
    pub(crate) skipped: Vec<Skipped>,
}

/// A secret a forced refresh left alone, and why (names and times only).
#[derive(Debug, serde::Serialize)]
pub(crate) struct Skipped {
    pub(crate) name: String,
    pub(crate) reason: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RefreshError {
    #[error("no secret named {0:?} is configured")]
    Unknown(String),
    #[error("refreshed less than a second ago: at most one forced refresh per secret per second")]
    RateLimited,
    #[error("the forced-refresh budget ({REFRESH_RATE} secrets a second, {REFRESH_BURST} at once) is spent; retry later")]
    Budget { retry_after: Duration },
    #[error("shutting down")]
    Stopping,
}

impl Handler<Refresh> for Supervisor {
    type Result = ResponseFuture<Result<RefreshAnswer, RefreshError>>;

    fn handle(&mut self, msg: Refresh, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let picked = self.pick_refresh(msg.name, now);
        let (names, skipped) = match picked {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let asks: Vec<_> = names
            .into_iter()
            .filter_map(|name| match self.running.get(&name) {
                Some(Slot::Running(addr)) => Some((
                    name,
                    Some(addr.send(SyncNow::Forced {
                        reissue: msg.reissue,
                    })),
                )),
                // Its first attempt is about to start anyway.
                Some(Slot::Pending(_)) => Some((name, None)),
                None => None,
            })
            .collect();
        for (name, _) in &asks {
            self.forced.insert(name.clone(), now);
        }
        Box::pin(async move {
            let mut answer = RefreshAnswer {
                queued: Vec::new(),
                skipped,
            };
            for (name, ask) in asks {
                match ask {
                    Some(ask) => match ask.await {
                        Ok(Ok(())) => answer.queued.push(name),
                        Ok(Err(reason)) => answer.skipped.push(Skipped { name, reason }),
                        // Stopped meanwhile (a reload): nothing to refresh.
                        Err(_) => {}
                    },
                    None => answer.queued.push(name),
                }
            }
            Ok(answer)
        })
    }
}

impl Supervisor {
    /// Which secrets a forced refresh may ask now (the per-secret floor and
    /// the process budget), and those the budget leaves out.
    fn pick_refresh(
        &mut self,
        name: Option<String>,
        now: Instant,
    ) -> Result<(Vec<String>, Vec<Skipped>), RefreshError> {
        if self.stopping {
            return Err(RefreshError::Stopping);
        }
        let names: Vec<String> = match name {
            Some(n) if self.running.contains_key(&n) => vec![n],
            Some(n) => return Err(RefreshError::Unknown(n)),
            None => self.jobs.iter().map(|j| j.name.clone()).collect(),
        };
        let due: Vec<String> = names
            .into_iter()
            .filter(|n| {
                self.forced
                    .get(n)
                    .is_none_or(|t| now.saturating_duration_since(*t) >= REFRESH_EVERY)
            })
            .filter(|n| self.running.contains_key(n))
            .collect();
        if due.is_empty() {
            return if self.jobs.is_empty() {
                Ok((Vec::new(), Vec::new()))
            } else {
                Err(RefreshError::RateLimited)
            };
        }
        let granted = self.refresh_budget.take(due.len(), now);
        if granted == 0 {
            return Err(RefreshError::Budget {
                retry_after: self.refresh_budget.next_in(now),
            });
        }
        let mut due = due;
        let left: Vec<Skipped> = due
            .split_off(granted)
            .into_iter()
            .map(|name| Skipped {
                name,
                reason: format!(
                    "the forced-refresh budget ({REFRESH_RATE} secrets a second, {REFRESH_BURST} at once) is spent; it is read at its next refresh"
                ),
            })
            .collect();
        Ok((due, left))
    }
}

/// Stop scheduling, let in-flight writes finish, then answer.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Shutdown;

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let secrets = self.running.len();
        self.starts.clear();
        // Secrets with `revokeOnShutdown` revoke their lease before they
        // stop; the shutdown timeout bounds the wait.
        let mut stops = Vec::new();
        for (_, slot) in self.running.drain() {
            if let Slot::Running(addr) = slot {
                stops.push(addr.send(StopSync { revoke: true }));
            }
        }
        tracing::info!(
            secrets,
            "shutting down: scheduling stopped, waiting for writes"
        );
        let writer = self.peers.writer.clone();
        let status = self.peers.status.clone();
        let vault = self.peers.vault.clone();
        Box::pin(async move {
            // The sessions of leases kept past the stop.
            let kept: Vec<_> = futures_util::future::join_all(stops)
                .await
                .into_iter()
                .filter_map(|r| r.ok().flatten())
                .collect();
            tracing::debug!(kept = kept.len(), "leases kept past the stop");
            // After the leases: a token that logged in is revoked, unless
            // it holds a lease kept past the stop (revoking a token revokes
            // its leases).
            let _ = vault.send(super::vault::RevokeTokens { kept }).await;
            let _ = writer.send(Drain).await;
            let _ = status.send(MarkStopping).await;
        })
    }
}
