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
/// Idle keep-alive connections kept to Vault at most.
pub(crate) const MAX_CONNECTIONS: usize = 32;

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
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(MAX_CONNECTIONS)
            .build(https);
        Self {
            http,
            base: store.address.to_string(),
            namespace: store.namespace.cloned(),
            max_body,
        }
    }

    /// Sends one request. `op` names the operation for errors and metrics;
    /// `path` is the API path (`/v1/...`).
    pub(crate) async fn call(
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
            Ok::<_, VaultError>((status, body))
        };
        let res = actix_rt::time::timeout(REQUEST_TIMEOUT, exchange).await;
        drop(wipe);
        let (status, body) = res.map_err(|_| VaultError::Timeout {
            op,
            path: path.to_string(),
            secs: REQUEST_TIMEOUT.as_secs(),
        })??;
        classify(op, path, status, body)
    }
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
        429 | 500..=599 => VaultError::Server {
            op,
            path,
            status: status.as_u16(),
            detail,
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
        )
    }

    #[test]
    fn classification() {
        assert!(status(200).is_ok());
        assert_eq!(status(403).unwrap_err().kind(), "permission_denied");
        assert_eq!(status(401).unwrap_err().kind(), "permission_denied");
        assert_eq!(status(404).unwrap_err().kind(), "not_found");
        assert_eq!(status(503).unwrap_err().kind(), "server_error");
        assert_eq!(status(429).unwrap_err().kind(), "server_error");
        assert_eq!(status(400).unwrap_err().kind(), "rejected");
        assert!(status(500).unwrap_err().to_string().contains("boom"));
    }
}
