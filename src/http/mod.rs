//! The HTTP server: `/health`, `/ready` and `/status`.
//!
//! * `/health` answers 200 while the process lives (liveness).
//! * `/ready` answers 200 once the readiness policy holds, 503 before.
//! * `/status` is JSON per secret: state, last success, last error, version,
//!   next attempt; plus the circuit breaker's state and the token's remaining
//!   TTL. It never holds a secret value: the StatusActor only ever receives
//!   redacted error texts.

use actix::Addr;
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::actors::status::{GetSnapshot, StatusActor};
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::Service;
use futures_util::FutureExt;

use crate::actors::vault::{GetVaultHealth, VaultActor};
use crate::telemetry::metrics::Metrics;

/// Builds and binds the server (it runs once spawned or awaited).
pub(crate) fn server(
    bind: &str,
    port: u16,
    status: Addr<StatusActor>,
    vault: Addr<VaultActor>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        let m = Arc::clone(&metrics);
        App::new()
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
            .app_data(web::Data::new(Arc::clone(&metrics)))
            .route("/metrics", web::get().to(metrics_text))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/status", web::get().to(status_doc))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(2)
    .bind((bind, port))?
    .run();
    Ok(server)
}

async fn metrics_text(
    metrics: web::Data<Arc<Metrics>>,
    vault: web::Data<Addr<VaultActor>>,
) -> HttpResponse {
    // Gauges that are states rather than events are read at scrape time:
    // this handler is their only writer.
    if let Ok(v) = vault.send(GetVaultHealth).await {
        metrics.vault_breaker_state.set(v.breaker.as_gauge());
        metrics
            .token_ttl
            .set(v.token_ttl_remaining.map_or(0.0, |ttl| ttl.as_secs_f64()));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn ready(status: web::Data<Addr<StatusActor>>) -> HttpResponse {
    match status.send(GetSnapshot).await {
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
) -> HttpResponse {
    let (Ok(s), Ok(v)) = (
        status.send(GetSnapshot).await,
        vault.send(GetVaultHealth).await,
    ) else {
        return HttpResponse::ServiceUnavailable().json(json!({"error": "status unavailable"}));
    };
    HttpResponse::Ok().json(json!({
        "ready": s.ready,
        "policy": s.policy,
        "synced": s.synced,
        "total": s.total,
        "vault": {
            "circuit_breaker": v.breaker.to_string(),
            "token_ttl_seconds": v.token_ttl_remaining.map(|d| d.as_secs()),
        },
        "secrets": s.secrets,
    }))
}
