//! ActionActor: owns the change actions of the running plan and their
//! schedule. SyncActors tell it which files a sync changed
//! ([`FilesChanged`]); it coalesces the triggers of each action
//! ([`crate::action::debounce`]), runs the action once they are due
//! ([`crate::action::run`]), retries a failed run with the backoff (three
//! times), and reports every run through one event
//! ([`ActionRan`]: log, metrics, audit, span). A run never fails a sync:
//! it happens after the files are in place, on this actor.
//!
//! A reload ([`SetActions`]) replaces the definitions: a changed action
//! keeps its pending triggers and runs with the new definition, a removed
//! one drops them; a run in progress is not killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::action::debounce::Batch;
use crate::action::{self, RunResult, Trigger};
use crate::backoff::{Backoff, BackoffPolicy};
use crate::config::ActionSpec;
use crate::plan::Job;
use crate::telemetry::audit::{rfc3339, Audit};
use crate::telemetry::events::ActionRan;
use crate::telemetry::metrics::Metrics;

/// One action's schedule and last run.
struct ActionState {
    spec: Arc<ActionSpec>,
    /// Triggers waiting for their run (or for a retry).
    pending: Option<Batch>,
    /// The timer of the pending batch.
    timer: Option<SpawnHandle>,
    /// A run is in progress.
    running: bool,
    runs: u64,
    last: Option<LastRun>,
    /// Told when the pending batch has run (or was given up): callers that
    /// wait for "the app was told" (a superseded lease's revocation).
    pending_waiters: Vec<oneshot::Sender<()>>,
    /// The same, for the batch running now.
    running_waiters: Vec<oneshot::Sender<()>>,
}

struct LastRun {
    at: SystemTime,
    result: &'static str,
    reason: Option<String>,
    took: Duration,
    secrets: Vec<String>,
}

pub(crate) struct ActionActor {
    actions: BTreeMap<String, ActionState>,
    /// Delays between the runs of a failed batch.
    backoff: BackoffPolicy,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
}

impl ActionActor {
    pub(crate) fn new(backoff: BackoffPolicy, metrics: Arc<Metrics>, audit: Arc<Audit>) -> Self {
        Self {
            actions: BTreeMap::new(),
            backoff,
            metrics,
            audit,
        }
    }

    /// (Re)sets the timer of `name`'s pending batch.
    fn schedule(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(st) = self.actions.get_mut(name) else {
            return;
        };
        if let Some(t) = st.timer.take() {
            ctx.cancel_future(t);
        }
        if st.running {
            // Scheduled when the run finishes.
            return;
        }
        let Some(batch) = &st.pending else {
            return;
        };
        let due = batch.due(st.spec.wait, st.spec.max_wait);
        let key = name.to_string();
        let delay = due.saturating_duration_since(Instant::now());
        st.timer = Some(ctx.run_later(delay, move |act, ctx| act.fire(&key, ctx)));
    }

    /// Starts the run of `name`'s pending batch.
    fn fire(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(st) = self.actions.get_mut(name) else {
            return;
        };
        st.timer = None;
        let Some(batch) = st.pending.take() else {
            return;
        };
        st.running = true;
        st.running_waiters = std::mem::take(&mut st.pending_waiters);
        let spec = Arc::clone(&st.spec);
        let trigger = Trigger {
            secrets: batch.secrets.iter().cloned().collect(),
            files: batch.files.iter().cloned().collect(),
        };
        let span = tracing::info_span!(
            "action",
            action = %spec.name,
            kind = spec.kind.name(),
            secrets = trigger.secrets.len(),
            otel.status_code = tracing::field::Empty,
        );
        let run_span = span.clone();
        let work = async move {
            let result = action::run(&spec, &trigger).await;
            (spec, trigger, result)
        }
        .instrument(run_span);
        ctx.spawn(
            work.into_actor(self)
                .map(move |(spec, trigger, result), act, ctx| {
                    act.finished(spec, batch, trigger, result, &span, ctx)
                }),
        );
    }

    fn finished(
        &mut self,
        spec: Arc<ActionSpec>,
        batch: Batch,
        trigger: Trigger,
        result: RunResult,
        span: &tracing::Span,
        ctx: &mut Context<Self>,
    ) {
        let attempt = batch.failures.saturating_add(1);
        let now = Instant::now();
        let retry = if result.outcome.failed() {
            let mut b = Backoff::new(self.backoff);
            let mut delay = Duration::ZERO;
            for _ in 0..attempt {
                delay = b.next_delay(fastrand::f64());
            }
            batch.retry(now, delay).map(|b| (b, delay))
        } else {
            None
        };
        ActionRan {
            spec: &spec,
            trigger: &trigger,
            result: &result,
            attempt,
            retry_in: retry.as_ref().map(|(_, d)| *d),
        }
        .emit(&self.metrics, &self.audit, span);
        let name = spec.name.clone();
        // Removed by a reload while it ran: nothing more to do.
        let Some(st) = self.actions.get_mut(&name) else {
            return;
        };
        st.running = false;
        st.runs = st.runs.saturating_add(1);
        st.last = Some(LastRun {
            at: SystemTime::now(),
            result: result.outcome.label(),
            reason: result.outcome.reason(spec.timeout),
            took: result.took,
            secrets: trigger.secrets,
        });
        if let Some((mut retried, _)) = retry {
            if let Some(newer) = st.pending.take() {
                retried.merge(newer);
            }
            st.pending = Some(retried);
            // Still to run: the waiters wait for the retry.
            let waiting = std::mem::take(&mut st.running_waiters);
            st.pending_waiters.extend(waiting);
        } else {
            for w in st.running_waiters.drain(..) {
                let _ = w.send(());
            }
        }
        self.schedule(&name, ctx);
    }
}

impl Actor for ActionActor {
    type Context = Context<Self>;
}

/// The actions of a (re)loaded plan.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct SetActions(pub(crate) Vec<Arc<ActionSpec>>);

impl Handler<SetActions> for ActionActor {
    type Result = ();

    fn handle(&mut self, msg: SetActions, ctx: &mut Self::Context) {
        let mut next: BTreeMap<String, ActionState> = BTreeMap::new();
        for spec in msg.0 {
            let name = spec.name.clone();
            let state = match self.actions.remove(&name) {
                Some(mut st) => {
                    st.spec = spec;
                    st
                }
                None => ActionState {
                    spec,
                    pending: None,
                    timer: None,
                    running: false,
                    runs: 0,
                    last: None,
                    pending_waiters: Vec::new(),
                    running_waiters: Vec::new(),
                },
            };
            next.insert(name, state);
        }
        for (name, st) in std::mem::take(&mut self.actions) {
            if let Some(t) = st.timer {
                ctx.cancel_future(t);
            }
            if st.pending.is_some() {
                tracing::info!(action = %name, "action removed by a reload; its pending run is dropped");
            }
            self.metrics.remove_action(&name);
        }
        self.actions = next;
        // A changed wait applies to what is pending.
        let names: Vec<String> = self.actions.keys().cloned().collect();
        for name in names {
            if self.actions.get(&name).is_some_and(|s| s.pending.is_some()) {
                self.schedule(&name, ctx);
            }
        }
    }
}

/// A sync changed files of a secret with `onChange` actions.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct FilesChanged {
    /// The secret (its name and `onChange`).
    pub(crate) job: Arc<Job>,
    pub(crate) files: Vec<PathBuf>,
    /// Told once every one of the secret's actions ran for these files
    /// (or gave up, or was removed by a reload).
    pub(crate) done: Option<oneshot::Sender<()>>,
}

impl Handler<FilesChanged> for ActionActor {
    type Result = ();

    fn handle(&mut self, msg: FilesChanged, ctx: &mut Self::Context) {
        let now = Instant::now();
        let mut each_done = Vec::new();
        for name in msg.job.on_change.iter() {
            let Some(st) = self.actions.get_mut(&**name) else {
                // The plan that named it is being replaced.
                continue;
            };
            if msg.done.is_some() {
                let (tx, rx) = oneshot::channel();
                st.pending_waiters.push(tx);
                each_done.push(rx);
            }
            st.pending
                .get_or_insert_with(|| Batch::new(now))
                .add(&msg.job.name, &msg.files, now);
            tracing::debug!(action = %name, secret = %msg.job.name, "action triggered");
            self.schedule(name, ctx);
        }
        if let Some(done) = msg.done {
            // A dropped sender (the action removed) counts as done too.
            actix_rt::spawn(async move {
                for rx in each_done {
                    let _ = rx.await;
                }
                let _ = done.send(());
            });
        }
    }
}

/// One action in `/status`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ActionStatus {
    kind: &'static str,
    /// What it signals, runs or calls (no credential).
    target: String,
    /// idle, pending, running or retrying.
    state: &'static str,
    runs: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pending_secrets: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run_in_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_run: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_duration_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    last_secrets: Vec<String>,
}

/// The state of every action, by name.
#[derive(Message)]
#[rtype(result = "BTreeMap<String, ActionStatus>")]
pub(crate) struct GetActions;

impl Handler<GetActions> for ActionActor {
    type Result = MessageResult<GetActions>;

    fn handle(&mut self, _: GetActions, _: &mut Self::Context) -> Self::Result {
        let now = Instant::now();
        let out = self
            .actions
            .iter()
            .map(|(name, st)| {
                let state = match (&st.pending, st.running) {
                    (_, true) => "running",
                    (Some(b), false) if b.failures > 0 => "retrying",
                    (Some(_), false) => "pending",
                    (None, false) => "idle",
                };
                let last = st.last.as_ref();
                (
                    name.clone(),
                    ActionStatus {
                        kind: st.spec.kind.name(),
                        target: action::describe(&st.spec.kind),
                        state,
                        runs: st.runs,
                        pending_secrets: st
                            .pending
                            .as_ref()
                            .map(|b| b.secrets.iter().cloned().collect())
                            .unwrap_or_default(),
                        // Due when not running (a run reschedules it after).
                        next_run_in_seconds: st.pending.as_ref().filter(|_| !st.running).map(|b| {
                            b.due(st.spec.wait, st.spec.max_wait)
                                .saturating_duration_since(now)
                                .as_secs_f64()
                        }),
                        last_run: last.map(|l| rfc3339(l.at)),
                        last_result: last.map(|l| l.result),
                        last_reason: last.and_then(|l| l.reason.clone()),
                        last_duration_seconds: last.map(|l| l.took.as_secs_f64()),
                        last_secrets: last.map(|l| l.secrets.clone()).unwrap_or_default(),
                    },
                )
            })
            .collect();
        MessageResult(out)
    }
}
