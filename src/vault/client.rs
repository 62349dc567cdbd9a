//! The HTTP client that reaches Vault: one keep-alive connection pool
//! (hyper, HTTP/1.1 only), TLS by rustls as [`super::tls`] set it up (plus
//! `VAULT_TLS_SERVER_NAME`), the namespace header, and the
//! classification of every answer into a [`VaultError`].
//!
//! Vault speaks HTTP/1.1, so the client has no HTTP/2 code at all (which
//! also keeps the h2 crate and its advisories out of the build).

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::error::{truncate, vault_error_detail, VaultError};
use super::tls::StoreTls;
use crate::secret::SecretString;

/// Time allowed for one request, connection included.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed to open a TCP connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight to Vault at most (the session's limit): as many
/// connections are open during a burst (a first sync, a catch-up).
pub(crate) const MAX_CONNECTIONS: usize = 32;
/// Idle keep-alive connections kept after a burst. A busy sync returns each
/// connection to the next request at once, so the pool stays small while
/// it runs; what a burst leaves beyond this is closed instead of held for
/// [`POOL_IDLE`]: each idle connection holds ~20 KB of buffers here (32 of
/// them were 40 % of a sidecar's heap at 100 secrets) and a socket in Vault
/// (times every sidecar of a fleet). Steady refreshes, spread over the
/// interval, use one or two.
const MAX_IDLE: usize = 8;
/// How long an idle keep-alive connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Retries of a request a standby answered 412 (not caught up yet with
/// the write the request follows), after 50, 100 and 200 ms.
const STALE_RETRIES: u32 = 3;
const STALE_FIRST_DELAY: Duration = Duration::from_millis(50);
/// The longest `Retry-After` taken from a server (a hostile or broken one
/// could ask for years); MAX_BACKOFF caps it further per secret.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

const USER_AGENT: &str = concat!("secrets-sync/", env!("CARGO_PKG_VERSION"));

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Which namespace a request goes to (`X-Vault-Namespace`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Namespace {
    /// `secretStore.namespace` (none: the root namespace).
    #[default]
    Store,
    /// The root namespace, whatever the store says (`namespace: ""`).
    Root,
    /// This one (checked to be a valid header value).
    Named(HeaderValue),
}

/// An HTTP client bound to one Vault address.
pub(crate) struct VaultClient {
    http: Client<Https, Full<Bytes>>,
    base: String,
    namespace: Option<HeaderValue>,
    /// Largest answer body accepted (`VAULT_MAX_RESPONSE_BYTES`).
    max_body: usize,
}

/// A successful (2xx) answer. The body may hold secret values, so `Debug`
/// shows only its length.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Drop for Answer {
    fn drop(&mut self) {
        // The body may hold secret values or a token: clear it when this is
        // its only reference (the usual case).
        if let Ok(mut b) = std::mem::take(&mut self.body).try_into_mut() {
            zeroize::Zeroize::zeroize(&mut b[..]);
        }
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The message of an error and of everything it wraps.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let part = s.to_string();
        if !msg.contains(&part) {
            msg.push_str(": ");
            msg.push_str(&part);
        }
        src = s.source();
    }
    msg
}

/// Where and how to reach Vault: the client's own input type (the plan
/// builds it from a store, `plan::StorePlan::endpoint`).
pub(crate) struct Endpoint<'a> {
    /// `https://vault.example.com:8200`, without a trailing `/`.
    pub(crate) address: &'a str,
    /// TLS material, already read and parsed.
    pub(crate) tls: &'a StoreTls,
    /// `X-Vault-Namespace` of every request that names no other.
    pub(crate) namespace: Option<&'a HeaderValue>,
}

impl VaultClient {
    /// Builds the client for `store` (TLS material already read). Must be
    /// called inside the async runtime.
    pub(crate) fn new(store: Endpoint<'_>, max_body: usize) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*store.tls.config).clone())
            .https_or_http();
        let https = match &store.tls.server_name {
            Some(name) => https.with_server_name_resolver(
                hyper_rustls::FixedServerNameResolver::new(name.clone()),
            ),
            None => https,
        };
        let https = https.enable_http1().wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(MAX_IDLE)
            .build(https);
        Self {
            http,
            base: store.address.to_string(),
            namespace: store.namespace.cloned(),
            max_body,
        }
    }

    /// Sends one request. `op` names the operation for errors and metrics;
    /// `path` is the API path (`/v1/...`). A 412 (a performance standby
    /// not caught up yet) is retried on the same request a few times after
    /// a short delay.
    pub(crate) async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&Value>,
        namespace: &Namespace,
    ) -> Result<Answer, VaultError> {
        let mut delay = STALE_FIRST_DELAY;
        for _ in 0..STALE_RETRIES {
            match self
                .call_once(op, method.clone(), path, token, body, namespace)
                .await
            {
                Err(VaultError::Rejected { status: 412, .. }) => {
                    tracing::debug!(op, path, "412 from a standby not caught up; retrying");
                    actix_rt::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
        self.call_once(op, method, path, token, body, namespace)
            .await
    }

    async fn call_once(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&Value>,
        namespace: &Namespace,
    ) -> Result<Answer, VaultError> {
        let network = |detail: String| VaultError::Network {
            op,
            detail: truncate(&detail, 300),
        };
        let uri: Uri = format!("{}{}", self.base, path)
            .parse()
            .map_err(|e| network(format!("invalid URL: {e}")))?;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::USER_AGENT, USER_AGENT);
        let ns = match namespace {
            Namespace::Store => self.namespace.as_ref(),
            Namespace::Root => None,
            Namespace::Named(h) => Some(h),
        };
        if let Some(ns) = ns {
            req = req.header("X-Vault-Namespace", ns.clone());
        }
        // The token header and the body (credentials in a login) are kept
        // by reference here and cleared once the request is done.
        let mut wipe = Wipe::default();
        if let Some(t) = token {
            let bytes = wipe.keep(Bytes::copy_from_slice(t.expose().as_bytes()));
            let mut v = HeaderValue::from_maybe_shared(bytes).map_err(|_| VaultError::Auth {
                method: "token",
                detail: "the token contains characters not allowed in an HTTP header".into(),
            })?;
            v.set_sensitive(true);
            req = req.header("X-Vault-Token", v);
        }
        let payload = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                wipe.keep(Bytes::from(
                    serde_json::to_vec(b).map_err(|e| network(e.to_string()))?,
                ))
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(payload))
            .map_err(|e| network(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| network(chain(&e)))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, std::time::SystemTime::now()));
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        VaultError::InvalidResponse {
                            op,
                            path: path.to_string(),
                            detail: format!(
                                "the answer is larger than {} bytes (VAULT_MAX_RESPONSE_BYTES; raise it if this secret really is that big)",
                                self.max_body
                            ),
                        }
                    } else {
                        network(format!("reading the answer: {}", chain(&*e)))
                    }
                })?
                .to_bytes();
            Ok::<_, VaultError>((status, body, retry_after))
        };
        let res = actix_rt::time::timeout(REQUEST_TIMEOUT, exchange).await;
        drop(wipe);
        let (status, body, retry_after) = res.map_err(|_| VaultError::Timeout {
            op,
            path: path.to_string(),
            secs: REQUEST_TIMEOUT.as_secs(),
        })??;
        classify(op, path, status, body, retry_after)
    }
}

/// A `Retry-After` value: seconds, or an HTTP date (`now` for its
/// distance), at most [`MAX_RETRY_AFTER`]; `None` when it is neither.
pub(crate) fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    let d = match v.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(v)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// Buffers that held a token or credentials: zeroed on drop when this is
/// their last reference (hyper has let go of the request by then). Copies
/// in hyper's own write buffer are out of reach (see the README).
#[derive(Default)]
struct Wipe(Vec<Bytes>);

impl Wipe {
    fn keep(&mut self, b: Bytes) -> Bytes {
        self.0.push(b.clone());
        b
    }
}

impl Drop for Wipe {
    fn drop(&mut self) {
        for b in self.0.drain(..) {
            if let Ok(mut m) = b.try_into_mut() {
                zeroize::Zeroize::zeroize(&mut m[..]);
            }
        }
    }
}

/// Maps a status code to success or a [`VaultError`].
pub(crate) fn classify(
    op: &'static str,
    path: &str,
    status: StatusCode,
    body: Bytes,
    retry_after: Option<Duration>,
) -> Result<Answer, VaultError> {
    if status.is_success() {
        return Ok(Answer { status, body });
    }
    let detail = vault_error_detail(&body);
    let path = path.to_string();
    Err(match status.as_u16() {
        401 | 403 => VaultError::PermissionDenied { op, path, detail },
        // Vault answers 404 with an empty errors list for a missing secret.
        404 => VaultError::NotFound { op, path },
        429 => VaultError::RateLimited {
            op,
            path,
            detail,
            retry_after,
        },
        500..=599 => VaultError::Server {
            op,
            path,
            status: status.as_u16(),
            detail,
            retry_after,
        },
        s => VaultError::Rejected {
            op,
            path,
            status: s,
            detail,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Result<Answer, VaultError> {
        classify(
            "read",
            "/v1/secret/data/x",
            StatusCode::from_u16(code).unwrap(),
            Bytes::from_static(br#"{"errors":["boom"]}"#),
            None,
        )
    }

    #[test]
    fn classification() {
        assert!(status(200).is_ok());
        assert_eq!(status(403).unwrap_err().kind(), "permission_denied");
        assert_eq!(status(401).unwrap_err().kind(), "permission_denied");
        assert_eq!(status(404).unwrap_err().kind(), "not_found");
        assert_eq!(status(503).unwrap_err().kind(), "server_error");
        assert_eq!(status(429).unwrap_err().kind(), "rate_limited");
        assert!(!status(429).unwrap_err().is_vault_failure());
        assert!(status(503).unwrap_err().is_vault_failure());
        assert_eq!(status(400).unwrap_err().kind(), "rejected");
        assert!(status(500).unwrap_err().to_string().contains("boom"));
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after("6", now), Some(Duration::from_secs(6)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        // 2015-10-21 07:28:00 GMT is 1_445_412_480 s; 30 s later:
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date in the past: now.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn a_429_keeps_its_retry_after() {
        let e = classify(
            "read",
            "/v1/secret/data/x",
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::new(),
            Some(Duration::from_secs(6)),
        )
        .unwrap_err();
        assert_eq!(e.retry_after(), Some(Duration::from_secs(6)));
        assert!(e.to_string().contains("retry after 6s"), "{e}");
    }
}
