//! Wiring for `run`: start the actors and the HTTP server, apply the config,
//! and turn signals into reloads (SIGHUP) or a graceful shutdown
//! (SIGTERM/SIGINT).

use actix::prelude::*;
use actix_web::dev::ServerHandle;

use crate::actors::config_watcher::ConfigWatcher;
use crate::actors::status::StatusActor;
use crate::actors::supervisor::{ApplyConfig, Shutdown, Supervisor};
use crate::actors::sync::{Peers, SYNC_SLOTS};
use crate::actors::vault::VaultActor;
use crate::actors::writer::WriterActor;
use crate::backoff::BackoffPolicy;
use crate::config::duration::GoDuration;
use crate::config::settings::RunArgs;
use crate::config::{self, Config, Credentials};
use std::sync::Arc;

use crate::telemetry::audit::Audit;
use crate::telemetry::metrics::Metrics;
use crate::vault::breaker::BreakerSettings;
use crate::vault::ClientError;

/// Start-up failed before anything ran.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot set up the Vault client: {0}")]
    Vault(#[from] ClientError),
    #[error("cannot listen on {addr}: {source} (set HTTP_PORT to a free port, or 0 to disable the server)")]
    Http {
        addr: String,
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
}

/// Runs until a signal (or, with `--once`, until every secret was tried).
/// Returns the process exit code.
pub fn run(args: RunArgs, config: Config) -> Result<i32, StartError> {
    let sys = actix_rt::System::new();
    sys.block_on(async { start(&args, config) })?;
    sys.run_with_code().map_err(StartError::System)
}

fn start(args: &RunArgs, config: Config) -> Result<(), StartError> {
    let breaker = BreakerSettings {
        max_requests: args.circuit_breaker_max_requests,
        interval: args.circuit_breaker_interval,
        timeout: args.circuit_breaker_timeout,
        failure_threshold: args.circuit_breaker_failure_threshold,
    };
    let metrics = Metrics::new();
    let audit = Audit::new(args.audit_log, args.audit_log_file.as_deref()).map_err(|source| {
        StartError::Audit {
            path: args
                .audit_log_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        }
    })?;
    let vault = VaultActor::new(config.store.clone(), breaker, Arc::clone(&metrics))?.start();
    let writer = WriterActor::default().start();
    let status_file = (!args.once).then(|| args.status_file.clone());
    let status = StatusActor::new(args.ready_policy, status_file, Arc::clone(&metrics)).start();
    let server = if args.once || args.http_port == 0 {
        None
    } else {
        let s = crate::http::server(
            &args.http_bind,
            args.http_port,
            status.clone(),
            vault.clone(),
            Arc::clone(&metrics),
        )
        .map_err(|source| StartError::Http {
            addr: format!("{}:{}", args.http_bind, args.http_port),
            source,
        })?;
        let handle = s.handle();
        actix_rt::spawn(s);
        tracing::info!(bind = %args.http_bind, port = args.http_port, "HTTP server listening");
        Some(handle)
    };
    let peers = Arc::new(Peers {
        slots: Arc::new(tokio::sync::Semaphore::new(SYNC_SLOTS)),
        vault,
        writer,
        status,
        metrics: Arc::clone(&metrics),
        audit: Arc::new(audit),
    });
    let backoff = BackoffPolicy {
        initial: args.initial_backoff,
        max: args.max_backoff,
        multiplier: args.backoff_multiplier,
    };
    let supervisor = Supervisor::new(peers, backoff, args.once).start();
    tracing::info!(
        secrets = config.secrets.len(),
        once = args.once,
        version = env!("CARGO_PKG_VERSION"),
        "secrets-sync starting"
    );
    supervisor.do_send(ApplyConfig(config));
    if args.watch_config && !args.once {
        ConfigWatcher::new(
            args.config.clone(),
            supervisor.clone(),
            args.watch_debounce,
            Arc::clone(&metrics),
        )
        .start();
    }
    actix_rt::spawn(handle_signals(supervisor, server, args.clone(), metrics));
    Ok(())
}

async fn handle_signals(
    supervisor: Addr<Supervisor>,
    server: Option<ServerHandle>,
    args: RunArgs,
    metrics: Arc<Metrics>,
) {
    use actix_rt::signal::unix::{signal, SignalKind};
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            tracing::error!(
                "cannot install signal handlers; SIGTERM will end the process abruptly"
            );
            return;
        }
    };
    let name = loop {
        tokio::select! {
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => reload(&supervisor, &args, &metrics).await,
        }
    };
    tracing::info!(signal = name, "shutdown requested");
    let graceful = async {
        let _ = supervisor.send(Shutdown).await;
        if let Some(h) = server {
            h.stop(true).await;
        }
    };
    if actix_rt::time::timeout(args.shutdown_timeout, graceful)
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = %GoDuration(args.shutdown_timeout),
            "shutdown timed out; exiting"
        );
    } else {
        tracing::info!("shutdown complete");
    }
    // An interrupted one-shot run did not sync everything.
    System::current().stop_with_code(i32::from(args.once));
}

/// Re-reads the config file; an invalid one is logged and the old one kept.
pub async fn reload(supervisor: &Addr<Supervisor>, args: &RunArgs, metrics: &Metrics) {
    let loaded = config::load(&args.config, Credentials::Required);
    let Some(config) = accept_reload(loaded, metrics) else {
        return;
    };
    match supervisor.send(ApplyConfig(config)).await {
        Ok(d) => tracing::info!(
            added = d.added.len(),
            removed = d.removed.len(),
            changed = d.changed.len(),
            unchanged = d.unchanged.len(),
            "config reloaded"
        ),
        Err(_) => tracing::error!("supervisor not running; reload dropped"),
    }
}

/// What every reload (SIGHUP or file watcher) does with a freshly loaded
/// config: count it, log its warnings, or log all its errors and keep the
/// running config (`None`).
pub fn accept_reload(
    loaded: Result<config::Loaded, config::ConfigErrors>,
    metrics: &Metrics,
) -> Option<Config> {
    match loaded {
        Ok(loaded) => {
            metrics.config_reloads.with_label_values(&["success"]).inc();
            for w in &loaded.warnings {
                tracing::warn!(warning = %w, "config warning");
            }
            Some(loaded.config)
        }
        Err(e) => {
            metrics.config_reloads.with_label_values(&["failure"]).inc();
            let errors: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
            tracing::error!(
                file = %e.file.display(),
                errors = ?errors,
                "config reload rejected; the running config stays"
            );
            None
        }
    }
}
