//! The HTTP servers: probes on one listener, inspection on another.
//!
//! * `/health` answers 200 while the actor system answered its heartbeat
//!   within `LIVENESS_TIMEOUT` ([`crate::liveness`]), 503 after: a wedged
//!   process fails its liveness probe and is restarted.
//! * `/ready` answers 200 once the readiness policy holds, 503 before.
//! * `/status` is JSON per secret: state, last success, last error, version,
//!   next attempt; plus the circuit breaker's state and the token's remaining
//!   TTL. It never holds a secret value: the StatusActor only ever receives
//!   redacted error texts. It does name secrets, Vault paths and errors.
//! * `/metrics` is Prometheus text (names and paths as labels, no values).
//! * `POST /refresh` and `POST /refresh/{secret}` (only with
//!   `REFRESH_API=true`) queue a re-read now: 202 with the names queued,
//!   404 for an unknown secret, 429 when rate-limited, 405 for another
//!   method.
//!
//! The probe listener (`HTTP_BIND:HTTP_PORT`, reachable by the kubelet)
//! serves `/health` and `/ready` only; the inspection listener
//! (`METRICS_ADDR:METRICS_PORT`, loopback by default) serves all four, and
//! `/refresh` when it is turned on. On
//! the same port they are one listener with all four ([`Routes::All`]).
//!
//! With `SECRETS_API=true` the inspection listener also serves the local
//! secrets API ([`api`]), as does the unix socket `SECRETS_API_SOCKET`
//! ([`Routes::Api`]: the API only); the probe listener never does.
//!
//! Each listener takes at most [`Limits::connections`] connections at once,
//! and a client has [`HEADER_TIMEOUT`] to send its request head: a flood of
//! idle connections can neither use up the process's file descriptors (the
//! writes and Vault keep a reserve, see [`raise_fd_limit`]) nor hold a slot
//! for long.

pub(crate) mod api;

use actix::Addr;
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::actors::action::{ActionActor, GetActions};
use crate::actors::status::{GetSnapshot, StatusActor};
use crate::actors::supervisor::{Refresh, RefreshError, Supervisor};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use futures_util::FutureExt;

use crate::actors::vault::{GetVaultHealth, VaultActor};
use crate::liveness::Liveness;
use crate::telemetry::metrics::Metrics;

/// Time a client has to send its request head before the connection is
/// closed (a slot held by an idle connection is freed this fast).
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest wait for an actor's answer: a wedged actor thread makes `/ready`
/// and `/status` answer 503 instead of hanging the request.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Idle time of a keep-alive connection between requests.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// File descriptors kept for everything but HTTP clients: files being
/// written, directories, Vault connections, the log and the audit file.
pub(crate) const FD_RESERVE: u64 = 256;

/// Connections one listener takes at most, whatever the fd limit.
const MAX_CONNECTIONS: u64 = 1024;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routes {
    /// `/health` and `/ready`: what probes need and nothing that names a secret.
    Probes,
    /// `/health`, `/ready`, `/status` and `/metrics` (and the secrets
    /// API when it is on).
    All,
    /// The secrets API only (its unix socket).
    Api,
}

/// Where a listener listens.
pub(crate) enum Listen<'a> {
    Tcp(&'a str, u16),
    Unix(std::os::unix::net::UnixListener),
}

/// Raises the soft open-files limit to the hard one (a container's soft
/// limit is often 1024 while the hard one is far higher) and returns the
/// connections each of `listeners` HTTP listeners may take: what the limit
/// leaves after [`FD_RESERVE`], shared, capped at [`MAX_CONNECTIONS`], at
/// least 8.
pub(crate) fn raise_fd_limit(listeners: u64) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => lim = getrlimit(Resource::Nofile),
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-files limit"),
        }
    }
    let soft = lim.current.unwrap_or(u64::MAX);
    connection_budget(soft, listeners)
}

/// See [`raise_fd_limit`] (pure, for tests).
pub(crate) fn connection_budget(fd_limit: u64, listeners: u64) -> usize {
    let per = fd_limit.saturating_sub(FD_RESERVE) / listeners.max(1);
    usize::try_from(per.clamp(8, MAX_CONNECTIONS)).unwrap_or(8)
}

/// What the handlers ask.
#[derive(Clone)]
pub(crate) struct Peers {
    pub(crate) status: Addr<StatusActor>,
    pub(crate) vault: Addr<VaultActor>,
    pub(crate) actions: Addr<ActionActor>,
    pub(crate) metrics: Arc<Metrics>,
    /// `Some` when `REFRESH_API=true`: who queues forced refreshes.
    pub(crate) refresh: Option<Addr<Supervisor>>,
    /// The heartbeat `/health` reports.
    pub(crate) liveness: Arc<Liveness>,
    /// `Some` when `SECRETS_API=true`.
    pub(crate) api: Option<Arc<api::Api>>,
}

/// Builds and binds one listener (it runs once spawned or awaited).
pub(crate) fn server(
    listen: Listen<'_>,
    routes: Routes,
    max_connections: usize,
    peers: Peers,
) -> std::io::Result<Server> {
    let Peers {
        status,
        vault,
        actions,
        metrics,
        refresh,
        liveness,
        api,
    } = peers;
    let server = HttpServer::new(move || {
        let m = Arc::clone(&metrics);
        let app = App::new()
            // One span per request (exported when tracing is on).
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap_fn(move |req, srv| {
                // Count every request by method, route pattern and status.
                let method = req.method().to_string();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let started = Instant::now();
                let m = Arc::clone(&m);
                srv.call(req).map(move |res| {
                    let status = match &res {
                        Ok(r) => r.status().as_u16().to_string(),
                        Err(e) => e.as_response_error().status_code().as_u16().to_string(),
                    };
                    m.http_requests
                        .with_label_values(&[&method, &route, &status])
                        .inc();
                    m.http_duration
                        .with_label_values(&[&method, &route])
                        .observe(started.elapsed().as_secs_f64());
                    res
                })
            })
            .app_data(web::Data::new(status.clone()))
            .app_data(web::Data::new(vault.clone()))
            .app_data(web::Data::new(actions.clone()))
            .app_data(web::Data::new(Arc::clone(&metrics)))
            .app_data(web::Data::new(Arc::clone(&liveness)))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready));
        let app = match &api {
            Some(api) if routes != Routes::Probes => {
                let api = Arc::clone(api);
                app.configure(move |cfg| api::configure(cfg, api))
            }
            _ => app,
        };
        match (routes, &refresh) {
            (Routes::Probes | Routes::Api, _) => app,
            (Routes::All, None) => app
                .route("/metrics", web::get().to(metrics_text))
                .route("/status", web::get().to(status_doc)),
            (Routes::All, Some(sup)) => app
                .route("/metrics", web::get().to(metrics_text))
                .route("/status", web::get().to(status_doc))
                .app_data(web::Data::new(sup.clone()))
                .service(
                    web::resource(["/refresh", "/refresh/{secret}"])
                        .route(web::post().to(refresh_secrets))
                        .default_service(web::to(method_not_allowed)),
                ),
        }
    })
    // The uid of a unix-socket peer, for the API's audit lines.
    .on_connect(|conn, ext| {
        if let Some(s) = conn.downcast_ref::<actix_web::rt::net::UnixStream>() {
            if let Ok(cred) = s.peer_cred() {
                ext.insert(api::PeerUid(cred.uid()));
            }
        }
    })
    .workers(1)
    .max_connections(max_connections)
    .backlog(u32::try_from(max_connections).unwrap_or(1024))
    .client_request_timeout(HEADER_TIMEOUT)
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(KEEP_ALIVE)
    .disable_signals()
    .shutdown_timeout(2);
    let server = match listen {
        Listen::Tcp(bind, port) => server.bind((bind, port))?,
        Listen::Unix(l) => server.listen_uds(l)?,
    };
    Ok(server.run())
}

async fn metrics_text(
    metrics: web::Data<Arc<Metrics>>,
    vault: web::Data<Addr<VaultActor>>,
) -> HttpResponse {
    // Gauges that are states rather than events are read at scrape time:
    // this handler is their only writer.
    if let Ok(v) = vault.send(GetVaultHealth).timeout(ANSWER_TIMEOUT).await {
        metrics
            .vault_breaker_state
            .set(v.default.breaker.as_gauge());
        metrics.token_ttl.set(
            v.default
                .token_ttl_remaining
                .map_or(0.0, |ttl| ttl.as_secs_f64()),
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header(("Allow", "POST"))
        .json(json!({"error": "use POST"}))
}

/// `POST /refresh` (every secret) and `POST /refresh/{secret}`, with
/// `?reissue=true` to replace valid certificates and leases too: 202 with
/// the names queued and those skipped (and why), 404 for an unknown
/// secret, 429 with `Retry-After` when rate-limited (per secret, or the
/// process budget).
async fn refresh_secrets(
    req: actix_web::HttpRequest,
    supervisor: web::Data<Addr<Supervisor>>,
) -> HttpResponse {
    let secret = req.match_info().get("secret").map(str::to_string);
    let reissue = req
        .query_string()
        .split('&')
        .any(|kv| kv == "reissue=true" || kv == "reissue=1" || kv == "reissue");
    match supervisor
        .send(Refresh {
            name: secret,
            reissue,
        })
        .timeout(ANSWER_TIMEOUT)
        .await
    {
        Ok(Ok(answer)) => HttpResponse::Accepted().json(answer),
        Ok(Err(e @ RefreshError::Budget { retry_after })) => HttpResponse::TooManyRequests()
            .insert_header((
                "Retry-After",
                retry_after.as_secs_f64().ceil().max(1.0).to_string(),
            ))
            .json(json!({"error": e.to_string()})),
        Ok(Err(e @ RefreshError::Unknown(_))) => {
            HttpResponse::NotFound().json(json!({"error": e.to_string()}))
        }
        Ok(Err(e @ RefreshError::RateLimited)) => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .json(json!({"error": e.to_string()})),
        Ok(Err(e @ RefreshError::Stopping)) => {
            HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string()}))
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({"error": "not running"})),
    }
}

/// 200 while the actor system answered its heartbeat within the window;
/// 503 (with the heartbeat's age) once it did not: nothing syncs then.
async fn health(liveness: web::Data<Arc<Liveness>>) -> HttpResponse {
    let age = liveness.age().as_secs_f64();
    if liveness.alive() {
        HttpResponse::Ok().json(json!({"status": "ok"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({
            "status": "wedged",
            "heartbeat_age_seconds": age,
            "liveness_timeout_seconds": liveness.window().as_secs_f64(),
        }))
    }
}

async fn ready(status: web::Data<Addr<StatusActor>>) -> HttpResponse {
    match status.send(GetSnapshot).timeout(ANSWER_TIMEOUT).await {
        Ok(s) => {
            let body =
                json!({"ready": s.ready, "policy": s.policy, "synced": s.synced, "total": s.total});
            if s.ready {
                HttpResponse::Ok().json(body)
            } else {
                HttpResponse::ServiceUnavailable().json(body)
            }
        }
        Err(_) => HttpResponse::ServiceUnavailable().json(json!({"ready": false})),
    }
}

async fn status_doc(
    status: web::Data<Addr<StatusActor>>,
    vault: web::Data<Addr<VaultActor>>,
    actions: web::Data<Addr<ActionActor>>,
) -> HttpResponse {
    let (Ok(s), Ok(v), Ok(a)) = (
        status.send(GetSnapshot).timeout(ANSWER_TIMEOUT).await,
        vault.send(GetVaultHealth).timeout(ANSWER_TIMEOUT).await,
        actions.send(GetActions).timeout(ANSWER_TIMEOUT).await,
    ) else {
        return HttpResponse::ServiceUnavailable().json(json!({"error": "status unavailable"}));
    };
    HttpResponse::Ok().json(json!({
        "ready": s.ready,
        "policy": s.policy,
        "synced": s.synced,
        "total": s.total,
        "vault": {
            "circuit_breaker": v.default.breaker.to_string(),
            "token_ttl_seconds": v.default.token_ttl_remaining.map(|d| d.as_secs()),
            // The named Vault stores (`secretStores`, provider vault).
            "stores": v.named.iter().map(|(name, h)| {
                (name.to_string(), json!({
                    "circuit_breaker": h.breaker.to_string(),
                    "token_ttl_seconds": h.token_ttl_remaining.map(|d| d.as_secs()),
                }))
            }).collect::<serde_json::Map<_, _>>(),
        },
        "secrets": s.secrets,
        "actions": a,
    }))
}

#[cfg(test)]
mod tests {
    use super::{connection_budget, FD_RESERVE};

    #[test]
    fn connection_budget_keeps_the_reserve() {
        assert_eq!(
            connection_budget(1024, 2),
            usize::try_from((1024 - FD_RESERVE) / 2).unwrap()
        );
        assert_eq!(connection_budget(1 << 20, 1), 1024);
        assert_eq!(connection_budget(100, 2), 8);
        assert_eq!(connection_budget(0, 0), 8);
    }
}
