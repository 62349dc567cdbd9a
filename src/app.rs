//! Wiring for `run`: start the actors and the HTTP server, apply the config,
//! and turn signals into reloads (SIGHUP), refreshes (SIGUSR1) or a graceful
//! shutdown (SIGTERM/SIGINT).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;

use crate::actors::action::ActionActor;
use crate::actors::config_watcher::ConfigWatcher;
use crate::actors::status::{Alive, StatusActor};
use crate::actors::supervisor::{ApplyPlan, Refresh, Reload, ReloadError, Shutdown, Supervisor};
use crate::actors::sync::{Peers, SYNC_SLOTS};
use crate::actors::vault::VaultActor;
use crate::actors::writer::WriterActor;
use crate::blocking::RELOAD_DEADLINE;
use crate::config::settings::RunArgs;
use crate::config::Credentials;
use crate::liveness::{Liveness, BEAT_EVERY};
use crate::notify::Notifier;
use crate::plan::{self, Plan};
use crate::signals::Sig;
use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;

/// Start-up failed before anything ran.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "cannot listen on {addr}: {source} (set {var} to a free port, or 0 to disable that server)"
    )]
    Http {
        addr: String,
        var: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open AUDIT_LOG_FILE {path}: {source}")]
    Audit {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("actor system failed: {0}")]
    System(#[source] std::io::Error),
    #[error("cannot install the signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// SECRETS_API_TOKEN_FILE cannot be used (the message says why).
    #[error("{0}")]
    ApiToken(String),
    #[error("SECRETS_API_SOCKET: cannot create the socket {path}: {source}; check that its directory exists and is writable by this user")]
    ApiSocket {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    /// 2 for a setting that cannot be used (as an invalid setting), 1 for
    /// the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::ApiToken(_) | StartError::ApiSocket { .. } => 2,
            _ => 1,
        }
    }
}

/// Runs a plan until a signal (or, with `--once`, until every secret was
/// tried). `args` were validated (`RuntimeArgs::validate`). Returns the
/// process exit code.
pub fn run(args: RunArgs, plan: Plan) -> Result<i32, StartError> {
    not_dumpable();
    // Before the actor system: a signal is caught from now on, and its
    // deadline does not depend on the actor thread.
    let signals =
        crate::signals::start(args.runtime.shutdown_timeout).map_err(StartError::Signals)?;
    // The actor thread's runtime, with a bounded blocking pool: the jobs of
    // `blocking::run` (at most `blocking::SLOTS`) and the writer's batches
    // share it. Unbounded, the first sync of 100 secrets left 22 idle
    // threads behind (each with its stack); with room for every slot and a
    // few writes, a runaway job can still not starve the writes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(crate::blocking::MAX_THREADS)
        .thread_keep_alive(crate::blocking::KEEP_ALIVE)
        .build()
        .map_err(StartError::System)?;
    let sys = actix_rt::System::with_tokio_rt(move || rt);
    let state = sys.block_on(async { start(&args, plan, signals) })?;
    let code = sys.run_with_code().map_err(StartError::System);
    if let Some(state) = state {
        state.save_at_stop();
    }
    code
}

/// `PR_SET_DUMPABLE` 0: other processes of our uid (an `exec` action's
/// program, an app run as the same user) can neither read
/// `/proc/<pid>/environ` or `/proc/<pid>/mem` (VAULT_TOKEN, secrets in
/// memory) nor ptrace us, and no core dump is written. Logged, never fatal.
fn not_dumpable() {
    use rustix::process::{set_dumpable_behavior, DumpableBehavior};
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!(error = %e, "cannot mark the process not dumpable (PR_SET_DUMPABLE)");
    }
}

/// Starts the actors and servers; returns the `STATE_DIR` state (if any),
/// for its last save after the system ended.
fn start(
    args: &RunArgs,
    plan: Plan,
    signals: tokio::sync::mpsc::UnboundedReceiver<Sig>,
) -> Result<Option<Arc<crate::state::StateDir>>, StartError> {
    // Before any write: temp files older than this are an earlier run's.
    crate::fs::mark_start();
    let rt = &args.runtime;
    let settings = rt.runtime();
    let metrics = Metrics::new();
    let audit = Audit::new(rt.audit_log, rt.audit_log_file.as_deref()).map_err(|source| {
        StartError::Audit {
            path: rt
                .audit_log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        }
    })?;
    // STATE_DIR: read once, here, before any actor runs.
    let state = match &rt.state_dir {
        None => None,
        Some(dir) => match crate::state::StateDir::open(dir) {
            Ok((s, warnings)) => {
                for w in warnings {
                    tracing::warn!(warning = %w, "STATE_DIR");
                }
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "STATE_DIR");
                None
            }
        },
    };
    let state_dir = state;
    let vault = VaultActor::new(
        &plan.stores,
        settings.breaker,
        settings.limits,
        Arc::clone(&metrics),
        state_dir.clone(),
    )
    .start();
    let writer = WriterActor::default().start();
    let status_file = (!args.once).then(|| rt.status_file.clone());
    // A one-shot run is not a service: it tells systemd nothing.
    let notifier = Arc::new(if args.once {
        Notifier::off()
    } else {
        Notifier::from_env()
    });
    let status = StatusActor::new(
        rt.ready_policy,
        status_file,
        Arc::clone(&metrics),
        writer.clone(),
        Arc::clone(&notifier),
        rt.liveness_timeout,
        (
            state_dir
                .as_ref()
                .map(|s| s.intact_at_start().clone())
                .unwrap_or_default(),
            rt.ready_allow_stale,
        ),
    )
    .start();
    let liveness = Arc::new(Liveness::new(rt.liveness_timeout));
    actix_rt::spawn(heartbeat(
        status.clone(),
        Arc::clone(&liveness),
        notifier.watchdog_interval(),
        Arc::clone(&notifier),
    ));
    let audit = Arc::new(audit);
    // SECRETS_API: the table the sync actors fill and the token, read now
    // (a missing token file refuses the start).
    let served = rt.secrets_api.then(crate::served::Served::new);
    let api_token = match &rt.secrets_api_token_file {
        Some(p) if rt.secrets_api => Some(
            crate::http::api::TokenFile::open(p.clone())
                .map_err(|e| StartError::ApiToken(e.to_string()))?,
        ),
        _ => None,
    };
    let actions =
        ActionActor::new(settings.backoff, Arc::clone(&metrics), Arc::clone(&audit)).start();
    let aws = crate::actors::aws::AwsActor::new(plan.aws_stores.clone(), settings.breaker).start();
    let peers = Arc::new(Peers {
        aws,
        slots: Arc::new(tokio::sync::Semaphore::new(SYNC_SLOTS)),
        vault,
        writer,
        status,
        actions,
        metrics: Arc::clone(&metrics),
        audit: Arc::clone(&audit),
        state: state_dir.clone(),
        served: served.clone(),
    });
    let http_peers = crate::http::Peers {
        status: peers.status.clone(),
        vault: peers.vault.clone(),
        actions: peers.actions.clone(),
        metrics: Arc::clone(&metrics),
        refresh: None,
        liveness,
        api: None,
    };
    let supervisor = Supervisor::new(peers, settings.backoff, args.once).start();
    let api = served.map(|served| {
        if let Some(t) = &api_token {
            actix_rt::spawn(Arc::clone(t).watch());
        }
        Arc::new(crate::http::api::Api {
            served,
            supervisor: supervisor.clone(),
            token: api_token,
            audit: Arc::clone(&audit),
            metrics: Arc::clone(&metrics),
        })
    });
    let servers = if args.once {
        Vec::new()
    } else {
        let refresh = rt.refresh_api.then(|| supervisor.clone());
        start_servers(
            rt,
            crate::http::Peers {
                refresh,
                api,
                ..http_peers
            },
        )?
    };
    tracing::info!(
        secrets = plan.secret_count(),
        once = args.once,
        version = env!("CARGO_PKG_VERSION"),
        "secrets-sync starting"
    );
    let template_files = plan.template_files.clone();
    supervisor.do_send(ApplyPlan(plan));
    if rt.watch_config && !args.once {
        ConfigWatcher::new(
            args.config.clone(),
            supervisor.clone(),
            rt.watch_debounce,
            template_files,
        )
        .start();
    }
    actix_rt::spawn(handle_signals(
        signals,
        supervisor,
        servers,
        args.clone(),
        notifier,
    ));
    Ok(state_dir)
}

/// The heartbeat ([`crate::liveness`]): every [`BEAT_EVERY`] the
/// StatusActor is asked `Alive`; each answer is a beat, and the systemd
/// `WATCHDOG=1` (every `watchdog`, half of `WATCHDOG_USEC`) follows an
/// answer too. A wedged actor system stops both, so `/health` turns 503
/// and systemd restarts the service.
async fn heartbeat(
    status: Addr<StatusActor>,
    liveness: Arc<Liveness>,
    watchdog: Option<Duration>,
    notifier: Arc<Notifier>,
) {
    let every = watchdog.map_or(BEAT_EVERY, |w| w.min(BEAT_EVERY));
    let mut tick = actix_rt::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ping: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        if status.send(Alive).await.is_err() {
            continue;
        }
        liveness.beat();
        if let Some(w) = watchdog {
            if last_ping.is_none_or(|t| t.elapsed() >= w) {
                notifier.watchdog();
                last_ping = Some(std::time::Instant::now());
            }
        }
    }
}

async fn handle_signals(
    mut signals: tokio::sync::mpsc::UnboundedReceiver<Sig>,
    supervisor: Addr<Supervisor>,
    servers: Vec<ServerHandle>,
    args: RunArgs,
    notifier: Arc<Notifier>,
) {
    let name = loop {
        let Some(sig) = signals.recv().await else {
            tracing::error!("the signal thread ended; SIGTERM will end the process abruptly");
            return;
        };
        match sig {
            Sig::Term | Sig::Int => break sig.name(),
            Sig::Hup => {
                // RELOADING=1 now, READY=1 when the guard drops.
                let _reloading = notifier.reloading();
                let config = args.config.clone();
                // Reading the config, its template and TLS files: off the
                // actor thread, under a deadline.
                let planned = crate::blocking::run("reading the config", RELOAD_DEADLINE, move || {
                    plan::load(&config, Credentials::Required)
                })
                .await;
                let planned = match planned {
                    Ok(p) => p.map_err(ReloadError::Invalid),
                    Err(e) => Err(ReloadError::Read(e)),
                };
                // Awaited: READY=1 follows once the reload was applied.
                let _ = supervisor.send(Reload(planned)).await;
            }
            Sig::Usr1 => match supervisor
                .send(Refresh {
                    name: None,
                    reissue: false,
                })
                .await
            {
                Ok(Ok(answer)) => tracing::info!(
                    signal = "SIGUSR1",
                    secrets = answer.queued.len(),
                    skipped = answer.skipped.len(),
                    "refresh requested: re-reading secrets now (valid certificates and leases are kept)"
                ),
                Ok(Err(e)) => tracing::info!(signal = "SIGUSR1", reason = %e, "refresh not queued"),
                Err(_) => {}
            },
        }
    };
    tracing::info!(signal = name, "shutdown requested");
    notifier.stopping();
    // The deadline (SHUTDOWN_TIMEOUT) is kept by the signal thread
    // (crate::signals), which exits with its own status when this does not
    // finish in time, whatever the actor thread is doing.
    let _ = supervisor.send(Shutdown).await;
    for h in servers {
        h.stop(true).await;
    }
    // The secrets API's socket goes with the process (a stale one would
    // be replaced at the next start anyway).
    if let Some(path) = args
        .runtime
        .secrets_api_socket
        .as_deref()
        .filter(|_| args.runtime.secrets_api && !args.once)
    {
        crate::http::api::remove_socket(path);
    }
    tracing::info!("shutdown complete");
    // An interrupted one-shot run did not sync everything.
    System::current().stop_with_code(i32::from(args.once));
}

/// The HTTP listeners `rt` asks for: the probe listener (HTTP_BIND:HTTP_PORT,
/// `/health` and `/ready`) and the inspection listener
/// (METRICS_ADDR:METRICS_PORT, all four endpoints), or one listener with
/// all four when the ports are equal; ENABLE_METRICS=false leaves the
/// inspection listener out. Raises the open-files limit first and
/// shares what it leaves between them.
fn start_servers(
    rt: &crate::config::settings::RuntimeArgs,
    peers: crate::http::Peers,
) -> Result<Vec<ServerHandle>, StartError> {
    use crate::http::{Listen, Routes};
    let mut wanted: Vec<(&str, u16, Routes, &'static str)> = Vec::new();
    // ENABLE_METRICS=false: no inspection listener, as with METRICS_PORT=0.
    let metrics_port = if rt.enable_metrics {
        rt.metrics_port
    } else {
        0
    };
    if rt.http_port != 0 && rt.http_port == metrics_port {
        tracing::warn!(
            bind = %rt.http_bind,
            port = rt.http_port,
            "METRICS_PORT equals HTTP_PORT: /status and /metrics are served on HTTP_BIND with the probes"
        );
        wanted.push((&rt.http_bind, rt.http_port, Routes::All, "HTTP_PORT"));
    } else {
        if rt.http_port != 0 {
            wanted.push((&rt.http_bind, rt.http_port, Routes::Probes, "HTTP_PORT"));
        }
        if metrics_port != 0 {
            wanted.push((&rt.metrics_addr, metrics_port, Routes::All, "METRICS_PORT"));
        }
    }
    let socket = match (&peers.api, &rt.secrets_api_socket) {
        (Some(_), Some(path)) => Some(
            crate::http::api::bind_socket(path, rt.secrets_api_socket_group).map_err(|source| {
                StartError::ApiSocket {
                    path: path.display().to_string(),
                    source,
                }
            })?,
        ),
        _ => None,
    };
    let listeners = wanted.len() + usize::from(socket.is_some());
    if listeners == 0 {
        return Ok(Vec::new());
    }
    let per_listener = crate::http::raise_fd_limit(listeners as u64);
    let mut handles = Vec::new();
    if let Some(l) = socket {
        let s = crate::http::server(Listen::Unix(l), Routes::Api, per_listener, peers.clone())
            .map_err(|source| StartError::ApiSocket {
                path: rt
                    .secrets_api_socket
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                source,
            })?;
        handles.push(s.handle());
        actix_rt::spawn(s);
        tracing::info!(
            socket = %rt.secrets_api_socket.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            group = rt.secrets_api_socket_group,
            "secrets API listening on its unix socket"
        );
    }
    for (bind, port, routes, var) in wanted {
        let s = crate::http::server(Listen::Tcp(bind, port), routes, per_listener, peers.clone())
            .map_err(|source| StartError::Http {
            addr: format!("{bind}:{port}"),
            var,
            source,
        })?;
        handles.push(s.handle());
        actix_rt::spawn(s);
        tracing::info!(
            bind = %bind,
            port,
            endpoints = match (routes, rt.refresh_api) {
                (Routes::All, true) => "/health /ready /status /metrics /refresh",
                (Routes::All, false) => "/health /ready /status /metrics",
                (Routes::Probes, _) => "/health /ready",
                (Routes::Api, _) => "/v1",
            },
            secrets_api = routes == Routes::All && peers.api.is_some(),
            max_connections = per_listener,
            "HTTP server listening"
        );
    }
    Ok(handles)
}
