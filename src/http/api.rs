//! The local secrets API (`SECRETS_API=true`), compatible with
//! vaultmux-server's reads:
//!
//! * `GET /v1/secrets`: the configured secrets, in config order;
//! * `GET /v1/secrets/{name}` (`?refresh=true` reads the source first,
//!   under the budget of `POST /refresh`);
//! * `POST /v1/secrets:batchGet` with `{"names": [...]}`: partial success;
//! * `GET /v1/openapi.json`: the OpenAPI 3 document of these
//!   (`docs/openapi.json`, checked current by a test).
//!
//! What is served is exactly what the files hold ([`crate::served`]): a
//! field no file holds is never served. Served on the inspection listener
//! and `SECRETS_API_SOCKET` only, never on the probe listener. With
//! `SECRETS_API_TOKEN_FILE` every request needs `Authorization: Bearer`
//! (compared in constant time). Every answer carries `Cache-Control:
//! no-store`; bodies are capped at [`MAX_BODY`]; every read is an
//! `api_read` audit line and a `secrets_api_reads_total` count.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix::Addr;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::actors::supervisor::{Refresh, RefreshError, Supervisor};
use crate::served::{Entry, Lookup, Served};
use crate::telemetry::audit::{rfc3339, Audit};
use crate::telemetry::events::ApiRead;
use crate::telemetry::metrics::Metrics;

/// The largest request body (a batchGet's names).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The most names one batchGet may ask for.
pub(crate) const MAX_BATCH: usize = 1000;

/// The longest secret name the API accepts.
const MAX_NAME: usize = 256;

/// How long `?refresh=true` waits for the forced read to end.
const REFRESH_WAIT: Duration = Duration::from_secs(10);

/// How often the token file is checked for a change.
const TOKEN_RECHECK: Duration = Duration::from_secs(1);

/// The largest token file read.
const MAX_TOKEN_BYTES: u64 = 4096;

/// The OpenAPI document, as committed.
pub(crate) const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// The routes of the API, as registered (the OpenAPI document lists the
/// same, a test checks).
#[cfg(test)]
pub(crate) const ROUTES: [&str; 4] = [
    "/v1/secrets",
    "/v1/secrets/{name}",
    "/v1/secrets:batchGet",
    "/v1/openapi.json",
];

/// What the API's handlers use.
pub(crate) struct Api {
    pub(crate) served: Arc<Served>,
    /// Queues the reads of `?refresh=true`.
    pub(crate) supervisor: Addr<Supervisor>,
    /// `SECRETS_API_TOKEN_FILE`, when set.
    pub(crate) token: Option<Arc<TokenFile>>,
    pub(crate) audit: Arc<Audit>,
    pub(crate) metrics: Arc<Metrics>,
}

/// The bearer token of `SECRETS_API_TOKEN_FILE`: read at start (a missing
/// or empty file refuses the start), then re-read off the actor thread
/// when the file changes; an unreadable or empty file later keeps the
/// token before it (with a warning).
pub(crate) struct TokenFile {
    path: PathBuf,
    token: RwLock<Zeroizing<Vec<u8>>>,
}

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("SECRETS_API_TOKEN_FILE: cannot read {}: {source}; create it (the token on one line) or unset the variable", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SECRETS_API_TOKEN_FILE: {} is empty; write the token into it (a long random string, e.g. `openssl rand -hex 32`)", path.display())]
    Empty { path: PathBuf },
    #[error("SECRETS_API_TOKEN_FILE: {} is larger than {MAX_TOKEN_BYTES} bytes; it should hold only the token", path.display())]
    TooLarge { path: PathBuf },
}

impl TokenFile {
    /// Reads the token file (at start: the process is not serving yet).
    pub(crate) fn open(path: PathBuf) -> Result<Arc<Self>, TokenError> {
        let token = read_token(&path)?;
        Ok(Arc::new(Self {
            path,
            token: RwLock::new(token),
        }))
    }

    /// Whether `offered` is the token, in constant time (both are hashed
    /// first, so neither the content nor the length leaks by timing).
    fn accepts(&self, offered: &[u8]) -> bool {
        let want = self.token.read().unwrap_or_else(PoisonError::into_inner);
        let a = ring::digest::digest(&ring::digest::SHA256, &want);
        let b = ring::digest::digest(&ring::digest::SHA256, offered);
        let diff = a
            .as_ref()
            .iter()
            .zip(b.as_ref())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        diff == 0 && !want.is_empty()
    }

    /// Re-reads the file every [`TOKEN_RECHECK`] on the blocking pool, for
    /// as long as the process runs (spawned on the actor system).
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut tick = actix_rt::time::interval(TOKEN_RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tick.tick().await;
            let path = self.path.clone();
            let read = crate::blocking::run(
                "reading SECRETS_API_TOKEN_FILE",
                crate::blocking::READ_DEADLINE,
                move || read_token(&path),
            )
            .await;
            match read {
                Ok(Ok(t)) => {
                    let mut cur = self.token.write().unwrap_or_else(PoisonError::into_inner);
                    if *cur != t {
                        *cur = t;
                        tracing::info!(file = %self.path.display(), "SECRETS_API_TOKEN_FILE changed: the new token is in use");
                    }
                    warned = false;
                }
                Ok(Err(e)) if !warned => {
                    tracing::warn!(error = %e, "the secrets API keeps its last token");
                    warned = true;
                }
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "the secrets API keeps its last token");
                    warned = true;
                }
                _ => {}
            }
        }
    }
}

/// The token in `path` (surrounding whitespace trimmed; symlinks followed,
/// as a Kubernetes Secret volume needs; no FIFO or device).
fn read_token(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>, TokenError> {
    use std::io::Read;
    let io = |source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = crate::fs::read::open_regular(path).map_err(io)?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_TOKEN_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = buf.trim_ascii();
    if text.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Zeroizing::new(text.to_vec()))
}

/// The uid of the peer of a unix-socket connection (`SO_PEERCRED`),
/// stored with the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerUid(pub(crate) u32);

/// Who asks: `uid:N` on the unix socket, else the peer address.
fn caller(req: &HttpRequest) -> String {
    if let Some(PeerUid(uid)) = req.conn_data::<PeerUid>() {
        return format!("uid:{uid}");
    }
    req.peer_addr()
        .map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

/// Registers the API's routes under `/v1`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig, api: Arc<Api>) {
    cfg.service(
        web::scope("/v1")
            .app_data(web::Data::from(api))
            .app_data(web::PayloadConfig::new(MAX_BODY))
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .service(
                web::resource("/secrets")
                    .route(web::get().to(list))
                    .default_service(web::to(use_get)),
            )
            .service(
                web::resource("/secrets:batchGet")
                    .route(web::post().to(batch_get))
                    .default_service(web::to(use_post)),
            )
            .service(
                web::resource("/secrets/{name}")
                    .route(web::get().to(get_one))
                    .default_service(web::to(use_get)),
            )
            .service(
                web::resource("/openapi.json")
                    .route(web::get().to(openapi))
                    .default_service(web::to(use_get)),
            ),
    );
}

/// 405 naming the method the route takes.
fn wrong_method(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .json(json!({"error": format!("use {allow}")}))
}

async fn use_get() -> HttpResponse {
    wrong_method("GET")
}

async fn use_post() -> HttpResponse {
    wrong_method("POST")
}

/// `None` when the request may go on; else the 401 to answer.
fn unauthorized(api: &Api, req: &HttpRequest) -> Option<HttpResponse> {
    let token = api.token.as_ref()?;
    let offered = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if token.accepts(offered.trim_ascii()) {
        return None;
    }
    Some(
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .json(json!({"error": "send Authorization: Bearer <the token of SECRETS_API_TOKEN_FILE>"})),
    )
}

/// A name the API looks up: at most [`MAX_NAME`] bytes, no control
/// characters (it goes into audit lines and, when configured, labels).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.chars().any(char::is_control)
}

async fn list(api: web::Data<Api>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = unauthorized(&api, &req) {
        return denied;
    }
    HttpResponse::Ok().json(json!({"secrets": api.served.names()}))
}

async fn openapi(api: web::Data<Api>, req: HttpRequest) -> HttpResponse {
    if let Some(denied) = unauthorized(&api, &req) {
        return denied;
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// The JSON of one served secret: `data` maps each file's key to its
/// content; `value` is the only file's content, or the JSON of `data`.
/// When a file is not UTF-8, every content is base64 and `encoding` says
/// so.
pub(crate) fn answer(name: &str, entry: &Entry) -> Value {
    let binary = entry
        .files
        .iter()
        .any(|(_, c)| std::str::from_utf8(c).is_err());
    let text = |c: &Zeroizing<Vec<u8>>| -> String {
        if binary {
            base64::engine::general_purpose::STANDARD.encode(c.as_slice())
        } else {
            String::from_utf8_lossy(c).into_owned()
        }
    };
    let mut data = Map::new();
    for (key, content) in &entry.files {
        data.entry(key.clone())
            .or_insert_with(|| Value::String(text(content)));
    }
    let value = match entry.files.as_slice() {
        [(_, only)] => text(only),
        _ => Value::Object(data.clone()).to_string(),
    };
    let mut out = json!({
        "name": name,
        "value": value,
        "data": data,
        "version": entry.version,
        "updated": rfc3339(entry.updated),
    });
    if binary {
        out["encoding"] = Value::String("base64".into());
    }
    out
}

/// `GET /v1/secrets/{name}`: 200 with the secret, 404 unknown, 503 not
/// synced yet (`Retry-After`), 400 for a name the API refuses.
async fn get_one(api: web::Data<Api>, req: HttpRequest) -> HttpResponse {
    let who = caller(&req);
    let name = req.match_info().get("name").unwrap_or_default().to_string();
    if !valid_name(&name) {
        return HttpResponse::BadRequest()
            .json(json!({"error": format!("a secret name is 1 to {MAX_NAME} bytes without control characters")}));
    }
    let configured = !matches!(api.served.get(&name), Lookup::Unknown);
    let emit = |result| {
        ApiRead {
            secret: &name,
            caller: &who,
            result,
            configured,
        }
        .emit(&api.audit, &api.metrics)
    };
    if let Some(denied) = unauthorized(&api, &req) {
        emit("unauthorized");
        return denied;
    }
    let refresh = req
        .query_string()
        .split('&')
        .any(|kv| kv == "refresh=true" || kv == "refresh=1" || kv == "refresh");
    if refresh && configured {
        if let Err(resp) = force_read(&api, &name).await {
            let (result, resp) = resp;
            emit(result);
            return resp;
        }
    }
    match api.served.get(&name) {
        Lookup::Unknown => {
            emit("not_found");
            HttpResponse::NotFound().json(json!({"error": format!("no secret {name:?} is configured; GET /v1/secrets lists them")}))
        }
        Lookup::NotSynced => {
            emit("not_synced");
            HttpResponse::ServiceUnavailable()
                .insert_header((header::RETRY_AFTER, "1"))
                .json(
                    json!({"error": format!("{name:?} is not synced yet; retry, or see /status")}),
                )
        }
        Lookup::Ready(entry) => {
            emit("ok");
            HttpResponse::Ok().json(answer(&name, &entry))
        }
    }
}

/// `?refresh=true`: queue a read of `name` (the per-secret floor and the
/// process budget of `POST /refresh` apply) and wait for it to end.
async fn force_read(api: &Api, name: &str) -> Result<(), (&'static str, HttpResponse)> {
    let asked = Instant::now();
    let queued = api
        .supervisor
        .send(Refresh {
            name: Some(name.to_string()),
            reissue: false,
        })
        .timeout(super::ANSWER_TIMEOUT)
        .await;
    let answer = match queued {
        Ok(Ok(a)) => a,
        Ok(Err(e @ RefreshError::Budget { retry_after })) => {
            return Err((
                "rate_limited",
                HttpResponse::TooManyRequests()
                    .insert_header((
                        header::RETRY_AFTER,
                        retry_after.as_secs_f64().ceil().max(1.0).to_string(),
                    ))
                    .json(json!({"error": e.to_string()})),
            ))
        }
        Ok(Err(e @ RefreshError::RateLimited)) => {
            return Err((
                "rate_limited",
                HttpResponse::TooManyRequests()
                    .insert_header((header::RETRY_AFTER, "1"))
                    .json(json!({"error": e.to_string()})),
            ))
        }
        Ok(Err(e)) => {
            return Err((
                "refresh_failed",
                HttpResponse::ServiceUnavailable().json(json!({"error": e.to_string()})),
            ))
        }
        Err(_) => {
            return Err((
                "refresh_failed",
                HttpResponse::ServiceUnavailable().json(json!({"error": "not running"})),
            ))
        }
    };
    if !answer.queued.iter().any(|n| n == name) {
        // Skipped (a valid certificate or lease is kept): serve what is.
        return Ok(());
    }
    let deadline = asked + REFRESH_WAIT;
    loop {
        match api.served.attempted(name) {
            Some(a) if a.at > asked && a.ok => return Ok(()),
            Some(a) if a.at > asked => {
                return Err((
                    "refresh_failed",
                    HttpResponse::BadGateway().json(json!({"error": format!("the forced read of {name:?} failed; /status says why (the files keep what they held)")})),
                ))
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err((
                "refresh_failed",
                HttpResponse::GatewayTimeout().json(json!({"error": format!("the forced read of {name:?} did not end within {}s; /status says why", REFRESH_WAIT.as_secs())})),
            ));
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /v1/secrets:batchGet` with `{"names": [...]}`: every secret that
/// can be served, and an error per name that cannot; 400 for a malformed
/// body, 413 (by the payload limit) for one over [`MAX_BODY`].
async fn batch_get(api: web::Data<Api>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let who = caller(&req);
    if let Some(denied) = unauthorized(&api, &req) {
        ApiRead {
            secret: "",
            caller: &who,
            result: "unauthorized",
            configured: false,
        }
        .emit(&api.audit, &api.metrics);
        return denied;
    }
    let names = match parse_batch(&body) {
        Ok(n) => n,
        Err(e) => return HttpResponse::BadRequest().json(json!({"error": e})),
    };
    let mut secrets = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        let (result, configured) = match api.served.get(name) {
            Lookup::Unknown => {
                errors.push(json!({"name": name, "error": "not found"}));
                ("not_found", false)
            }
            Lookup::NotSynced => {
                errors.push(json!({"name": name, "error": "not synced yet"}));
                ("not_synced", true)
            }
            Lookup::Ready(entry) => {
                secrets.push(answer(name, &entry));
                ("ok", true)
            }
        };
        ApiRead {
            secret: name,
            caller: &who,
            result,
            configured,
        }
        .emit(&api.audit, &api.metrics);
    }
    HttpResponse::Ok().json(json!({"secrets": secrets, "errors": errors}))
}

/// The names of a batchGet body; the error says what is wrong with it.
pub(crate) fn parse_batch(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch {
        names: Vec<String>,
    }
    let b: Batch = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be JSON {{\"names\": [\"a\", \"b\"]}}: {e}"))?;
    if b.names.len() > MAX_BATCH {
        return Err(format!(
            "{} names asked; at most {MAX_BATCH} per batchGet",
            b.names.len()
        ));
    }
    if let Some(bad) = b.names.iter().position(|n| !valid_name(n)) {
        return Err(format!(
            "names[{bad}]: a secret name is 1 to {MAX_NAME} bytes without control characters"
        ));
    }
    Ok(b.names)
}

/// Creates the unix socket of `SECRETS_API_SOCKET`: bound under a
/// temporary name, given its mode (0600, or 0660 and the group `group`)
/// and only then renamed into place, so no one connects before the mode
/// holds. A socket left by an earlier run is replaced; anything else at
/// `path` is an error.
pub(crate) fn bind_socket(
    path: &std::path::Path,
    group: Option<u32>,
) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a socket is there; remove it or choose another path",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
    let placed = (|| {
        if let Some(gid) = group {
            rustix::fs::chown(&tmp, None, Some(rustix::fs::Gid::from_raw(gid)))?;
        }
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

/// Removes the socket at `path` if it is still a socket (a graceful stop;
/// the listener is closed already). Small and local: run at the very end.
pub(crate) fn remove_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove the secrets API socket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn entry(files: &[(&str, &[u8])]) -> Entry {
        Entry {
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_vec())))
                .collect(),
            version: Some("3".into()),
            updated: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn one_file_is_the_value_several_are_its_json() {
        let one = answer("db", &entry(&[("password", b"pw")]));
        assert_eq!(one["value"], "pw");
        assert_eq!(one["data"], json!({"password": "pw"}));
        assert_eq!(one["version"], "3");
        assert_eq!(one["updated"], "1970-01-01T00:00:00.000Z");
        assert!(one.get("encoding").is_none());
        let two = answer("db", &entry(&[("username", b"u"), ("password", b"p")]));
        let value: Value = serde_json::from_str(two["value"].as_str().unwrap()).unwrap();
        assert_eq!(value, json!({"username": "u", "password": "p"}));
        assert_eq!(two["data"], value);
    }

    #[test]
    fn binary_content_is_base64() {
        let a = answer("p12", &entry(&[("keystore", &[0xff, 0x00, 0x01])]));
        assert_eq!(a["encoding"], "base64");
        assert_eq!(a["value"], "/wAB");
        assert_eq!(a["data"]["keystore"], "/wAB");
    }

    #[test]
    fn batch_bodies_are_checked() {
        assert_eq!(parse_batch(br#"{"names":["a","b"]}"#).unwrap(), ["a", "b"]);
        for bad in [
            &br#"{"names":"a"}"#[..],
            br#"{"name":["a"]}"#,
            br#"not json"#,
            br#"{"names":["a"],"x":1}"#,
            br#"{"names":[""]}"#,
            "{\"names\":[\"a\\u0000\"]}".as_bytes(),
        ] {
            assert!(
                parse_batch(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!("{{\"names\":[{}]}}", vec!["\"a\""; MAX_BATCH + 1].join(","));
        assert!(parse_batch(many.as_bytes())
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn the_token_is_compared_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("token");
        std::fs::write(&p, "s3cret-token\n").unwrap();
        let t = TokenFile::open(p.clone()).unwrap();
        assert!(t.accepts(b"s3cret-token"));
        assert!(!t.accepts(b"s3cret-toke"));
        assert!(!t.accepts(b""));
        assert!(!t.accepts(b"s3cret-token2"));
        std::fs::write(&p, "  \n").unwrap();
        let e = TokenFile::open(p.clone()).err().unwrap().to_string();
        assert!(
            e.contains("SECRETS_API_TOKEN_FILE") && e.contains("empty"),
            "{e}"
        );
        let e = TokenFile::open(d.path().join("missing"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("SECRETS_API_TOKEN_FILE"), "{e}");
    }

    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut paths: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        paths.sort_unstable();
        let mut routes = ROUTES.to_vec();
        routes.sort_unstable();
        assert_eq!(paths, routes);
    }
}
