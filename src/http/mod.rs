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
use crate::actors::vault::{GetVaultHealth, VaultActor};

/// Builds and binds the server (it runs once spawned or awaited).
pub fn server(
    bind: &str,
    port: u16,
    status: Addr<StatusActor>,
    vault: Addr<VaultActor>,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(status.clone()))
            .app_data(web::Data::new(vault.clone()))
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
