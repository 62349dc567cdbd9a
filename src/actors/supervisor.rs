//! Supervisor: owns the SyncActors.
//!
//! `ApplyConfig` diffs the running config against a new one: removed secrets
//! stop, added ones start, changed ones restart, unchanged ones keep their
//! schedule (a change of `secretStore` reconfigures the VaultActor and
//! restarts every secret). New secrets are registered (status, metrics) at
//! once but their SyncActors are started [`START_BATCH`] per turn of the
//! event loop, so the first reads go out while thousands of actors are
//! still to be started. `Shutdown` stops all scheduling and waits for the
//! writes in flight. In `--once` mode it counts `SyncFinished` and stops the
//! system with exit code 0 (all synced) or 1.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::status::{MarkStopping, Register, Unregister};
use super::sync::{Peers, StopSync, SyncActor, SyncFinished};
use super::vault::Reconfigure;
use super::writer::{Drain, SweepTemps};
use crate::backoff::BackoffPolicy;
use crate::config::diff::{diff, Diff};
use crate::config::{Config, SecretSpec, StoreConfig};
use crate::telemetry::series::SecretSeries;
use crate::vault::kv::display_path;

/// SyncActors started per turn of the event loop. When every actor was
/// started in one handler, the Vault actor got its first turn only after
/// all of them (1000 secrets: the first read went out ~5 ms later than
/// now); one batch is enough to fill every sync slot.
pub const START_BATCH: usize = super::sync::SYNC_SLOTS;

/// A registered secret whose SyncActor has not been started yet.
struct PendingStart {
    spec: Arc<SecretSpec>,
    series: Arc<SecretSeries>,
    generation: u64,
}

/// A configured secret: waiting for its turn to start, or running.
enum Slot {
    Pending(PendingStart),
    Running(Addr<SyncActor>),
}

pub struct Supervisor {
    peers: Arc<Peers>,
    backoff: BackoffPolicy,
    config: Option<Config>,
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
}

#[derive(Default)]
struct OnceState {
    pending: usize,
    failed: usize,
}

impl Supervisor {
    pub fn new(peers: Arc<Peers>, backoff: BackoffPolicy, once: bool) -> Self {
        Self {
            peers,
            backoff,
            config: None,
            running: HashMap::new(),
            starts: VecDeque::new(),
            starting: false,
            generation: 0,
            once: once.then(OnceState::default),
            stopping: false,
        }
    }

    /// Registers a secret (status board, metrics, `--once` count) and queues
    /// its actor's start.
    fn add_secret(&mut self, spec: &Arc<SecretSpec>, store: &StoreConfig) {
        self.generation += 1;
        let generation = self.generation;
        let vault_path = display_path(store.kv_version, &store.mount_path, &spec.path);
        // Registered before the actor starts, so no report can arrive first,
        // and so readiness counts every secret from the start.
        self.peers.status.do_send(Register {
            name: spec.name.clone(),
            path: vault_path.clone(),
            generation,
        });
        if let Some(o) = self.once.as_mut() {
            o.pending += 1;
        }
        let series = self.peers.metrics.secrets.register(&spec.name, &vault_path);
        self.running.insert(
            spec.name.clone(),
            Slot::Pending(PendingStart {
                spec: Arc::clone(spec),
                series,
                generation,
            }),
        );
        self.starts.push_back((spec.name.clone(), generation));
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
                Arc::clone(&p.spec),
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

    fn stop_secret(&mut self, name: &str) {
        if let Some(Slot::Running(addr)) = self.running.remove(name) {
            addr.do_send(StopSync);
        }
        self.peers.metrics.secrets.remove(name);
        self.peers.status.do_send(Unregister {
            name: name.to_string(),
        });
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;
}

/// Run this config (the first one, or a reload).
#[derive(Message)]
#[rtype(result = "Diff")]
pub struct ApplyConfig(pub Config);

impl Handler<ApplyConfig> for Supervisor {
    type Result = MessageResult<ApplyConfig>;

    fn handle(&mut self, msg: ApplyConfig, ctx: &mut Self::Context) -> Self::Result {
        let new = msg.0;
        if self.stopping {
            return MessageResult(Diff::default());
        }
        let old_secrets = self
            .config
            .as_ref()
            .map(|c| c.secrets.clone())
            .unwrap_or_default();
        let mut d = diff(&old_secrets, &new.secrets);
        let store_changed = self.config.as_ref().is_some_and(|c| c.store != new.store);
        if store_changed {
            tracing::info!("secretStore changed; reconnecting and restarting every secret");
            self.peers.vault.do_send(Reconfigure(new.store.clone()));
            d.changed.append(&mut d.unchanged);
        }
        let mut dirs: Vec<std::path::PathBuf> = Vec::new();
        for f in new.secrets.iter().flat_map(|s| &s.files) {
            let p = match f.path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => std::path::Path::new("."),
            };
            if !dirs.iter().any(|d| d == p) {
                dirs.push(p.to_path_buf());
            }
        }
        self.peers.writer.do_send(SweepTemps(dirs));
        for name in d.removed.iter().chain(&d.changed) {
            self.stop_secret(name);
        }
        let to_start: std::collections::HashSet<&str> = d
            .added
            .iter()
            .chain(&d.changed)
            .map(String::as_str)
            .collect();
        for spec in &new.secrets {
            if to_start.contains(spec.name.as_str()) {
                self.add_secret(spec, &new.store);
            }
        }
        self.start_batch(ctx);
        if self.config.is_some() {
            tracing::info!(
                added = ?d.added,
                removed = ?d.removed,
                changed = ?d.changed,
                unchanged = d.unchanged.len(),
                "config applied"
            );
        }
        self.peers
            .metrics
            .secrets_configured
            .set(new.secrets.len() as i64);
        self.config = Some(new);
        MessageResult(d)
    }
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

/// Stop scheduling, let in-flight writes finish, then answer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let secrets = self.running.len();
        self.starts.clear();
        for (_, slot) in self.running.drain() {
            if let Slot::Running(addr) = slot {
                addr.do_send(StopSync);
            }
        }
        tracing::info!(
            secrets,
            "shutting down: scheduling stopped, waiting for writes"
        );
        let writer = self.peers.writer.clone();
        let status = self.peers.status.clone();
        Box::pin(async move {
            let _ = writer.send(Drain).await;
            let _ = status.send(MarkStopping).await;
        })
    }
}
