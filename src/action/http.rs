//! `http` actions: one request to the app's reload URL. The answer's body
//! is counted and discarded; a status of 400 or more is a failure.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::Outcome;

/// Most answer bytes read (the rest is not waited for).
const MAX_BODY: u64 = 1024 * 1024;

/// The system roots, read once (for https URLs).
fn tls() -> Result<rustls::ClientConfig, String> {
    static TLS: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    TLS.get_or_init(|| crate::vault::tls::system_tls().map_err(|e| e.to_string()))
        .clone()
}

/// Sends the request; the outcome and the answer's byte count.
pub(super) async fn call(
    url: &Uri,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    timeout: Duration,
) -> (Outcome, u64) {
    let tls = match tls() {
        Ok(t) => t,
        Err(e) => return (Outcome::Failed(format!("TLS setup failed: {e}")), 0),
    };
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let mut req = Request::builder().method(method.clone()).uri(url.clone());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = match req
        .header(
            http::header::USER_AGENT,
            concat!("secrets-sync/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::new()))
    {
        Ok(r) => r,
        Err(e) => return (Outcome::Failed(format!("cannot build the request: {e}")), 0),
    };
    let work = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| crate::vault::client::chain(&e))?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut n: u64 = 0;
        while n < MAX_BODY {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        n = n.saturating_add(d.len() as u64);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
        Ok::<_, String>((status, n))
    };
    match actix_rt::time::timeout(timeout, work).await {
        Ok(Ok((status, n))) if status.as_u16() < 400 => (Outcome::Ok, n),
        Ok(Ok((status, n))) => (
            Outcome::Failed(format!(
                "{} answered HTTP {}",
                redacted(url),
                status.as_u16()
            )),
            n,
        ),
        Ok(Err(e)) => (
            Outcome::Failed(format!("cannot reach {}: {e}", redacted(url))),
            0,
        ),
        Err(_) => (Outcome::TimedOut, 0),
    }
}

/// The URL without user info and query (either may hold a credential).
pub(super) fn redacted(url: &Uri) -> String {
    let host = url.host().unwrap_or_default();
    let port = url.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{host}{port}{}",
        url.scheme_str().unwrap_or("http"),
        url.path()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_no_credentials() {
        let u: Uri = "http://user:pw@127.0.0.1:9090/-/reload?token=abc"
            .parse()
            .unwrap();
        assert_eq!(redacted(&u), "http://127.0.0.1:9090/-/reload");
    }
}
