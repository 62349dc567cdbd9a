//! One AWS store's client: credentials (cached, refreshed before they
//! expire), SigV4-signed JSON requests (aws-sigv4) on hyper + rustls, and
//! the answers of Secrets Manager and SSM decoded into a secret's fields.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};

use super::credentials::{parse_container, parse_sts, Creds, Provider};
use super::{AwsError, AwsRead, AwsStore};
use crate::breaker::{Breaker, BreakerSettings, Refusal, State};
use crate::secret::SecretData;

/// Longest wait for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer accepted.
const MAX_BODY: usize = 1024 * 1024;
/// Pages of `GetParametersByPath` read at most (10 parameters each).
const MAX_PAGES: usize = 100;
/// Most characters of AWS's own error message kept.
const DETAIL_MAX: usize = 300;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub(crate) struct AwsClient {
    http: Client<Https, Full<Bytes>>,
    store: AwsStore,
    provider: Provider,
    cached: RefCell<Option<Creds>>,
    /// This store's endpoint's breaker (CIRCUIT_BREAKER_*, as Vault's).
    breaker: RefCell<Breaker>,
}

impl AwsClient {
    /// Must be called inside the async runtime.
    pub(crate) fn new(
        store: AwsStore,
        provider: Provider,
        breaker: BreakerSettings,
    ) -> Result<Self, AwsError> {
        let tls = crate::vault::tls::system_tls().map_err(|e| AwsError::Network {
            endpoint: store.region.clone(),
            detail: format!("TLS setup: {e}"),
        })?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Self {
            http,
            store,
            provider,
            cached: RefCell::new(None),
            breaker: RefCell::new(Breaker::new(breaker, Instant::now())),
        })
    }

    fn endpoint(&self, service: &str) -> String {
        match &self.store.endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => format!("https://{service}.{}.amazonaws.com", self.store.region),
        }
    }

    /// The breaker's state now.
    pub(crate) fn breaker_state(&self) -> State {
        self.breaker.borrow_mut().state(Instant::now())
    }

    /// Reads one secret, through the store's circuit breaker.
    pub(crate) async fn read(&self, read: &AwsRead) -> Result<SecretData, AwsError> {
        let permit = {
            let mut b = self.breaker.borrow_mut();
            let res = b.allow(Instant::now());
            log_transitions(&self.store.name, &mut b);
            res
        };
        let permit = permit.map_err(|r| match r {
            Refusal::Open { retry_in } => AwsError::CircuitOpen {
                state: "open",
                retry_in,
            },
            Refusal::TooManyRequests => AwsError::CircuitOpen {
                state: "half-open",
                retry_in: Duration::ZERO,
            },
        })?;
        let res = self.read_unguarded(read).await;
        let ok = !matches!(&res, Err(e) if e.is_store_failure());
        let mut b = self.breaker.borrow_mut();
        b.record(permit, ok, Instant::now());
        log_transitions(&self.store.name, &mut b);
        res
    }

    async fn read_unguarded(&self, read: &AwsRead) -> Result<SecretData, AwsError> {
        match read {
            AwsRead::Secret { id, version } => {
                let mut body = json!({ "SecretId": id });
                if let Some(v) = version {
                    // A version id is a UUID; anything else is a staging label.
                    let key = if v.len() == 36 && v.chars().filter(|c| *c == '-').count() == 4 {
                        "VersionId"
                    } else {
                        "VersionStage"
                    };
                    body[key] = Value::String(v.clone());
                }
                let v = self
                    .call(
                        "secretsmanager",
                        "secretsmanager.GetSecretValue",
                        &body,
                        &read.display(),
                    )
                    .await?;
                secret_value(v)
            }
            AwsRead::Parameter { name } => {
                let body = json!({ "Name": name, "WithDecryption": true });
                let v = self
                    .call("ssm", "AmazonSSM.GetParameter", &body, &read.display())
                    .await?;
                let p = v.get("Parameter").ok_or_else(|| invalid("no Parameter"))?;
                let value = p
                    .get("Value")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("no Parameter.Value"))?;
                let mut fields = Map::new();
                fields.insert("value".into(), Value::String(value.to_string()));
                Ok(SecretData::new(
                    fields,
                    p.get("Version").and_then(Value::as_u64),
                ))
            }
            AwsRead::Path { path } => {
                let mut fields = Map::new();
                let mut next: Option<String> = None;
                for _ in 0..MAX_PAGES {
                    let mut body =
                        json!({ "Path": path, "Recursive": true, "WithDecryption": true });
                    if let Some(t) = &next {
                        body["NextToken"] = Value::String(t.clone());
                    }
                    let v = self
                        .call(
                            "ssm",
                            "AmazonSSM.GetParametersByPath",
                            &body,
                            &read.display(),
                        )
                        .await?;
                    for p in v
                        .get("Parameters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let (Some(name), Some(value)) = (
                            p.get("Name").and_then(Value::as_str),
                            p.get("Value").and_then(Value::as_str),
                        ) else {
                            continue;
                        };
                        let field = name.strip_prefix(path.as_str()).unwrap_or(name);
                        fields.insert(field.to_string(), Value::String(value.to_string()));
                    }
                    next = v
                        .get("NextToken")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string);
                    if next.is_none() {
                        return Ok(SecretData::new(fields, None));
                    }
                }
                Err(invalid(
                    "more pages of parameters than secrets-sync reads (100)",
                ))
            }
        }
    }

    /// Credentials, from the cache while they are fresh.
    async fn creds(&self) -> Result<Creds, AwsError> {
        if let Some(c) = self.cached.borrow().as_ref() {
            if c.fresh(SystemTime::now()) {
                return Ok(c.clone());
            }
        }
        let c = match &self.provider {
            Provider::Static(c) => c.clone(),
            Provider::Missing(why) => {
                return Err(AwsError::Credentials {
                    detail: why.clone(),
                })
            }
            Provider::WebIdentity {
                role_arn,
                token_file,
                session_name,
                sts_endpoint,
            } => {
                // Re-read at every refresh: kubelet rotates the token.
                let token = read_token("reading the web identity token", token_file).await?;
                let base = sts_endpoint.clone().unwrap_or_else(|| self.endpoint("sts"));
                let form = form_urlencoded(&[
                    ("Action", "AssumeRoleWithWebIdentity"),
                    ("Version", "2011-06-15"),
                    ("RoleArn", role_arn),
                    ("RoleSessionName", session_name),
                    ("WebIdentityToken", token.expose()),
                ]);
                let req = Request::post(format!("{}/", base.trim_end_matches('/')))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::new(Bytes::from(form)))
                    .map_err(|e| invalid(&e.to_string()))?;
                let (status, body) = self.send(req, &base).await?;
                if !status.is_success() {
                    return Err(AwsError::Auth {
                        detail: format!("STS AssumeRoleWithWebIdentity answered {status}"),
                    });
                }
                parse_sts(&String::from_utf8_lossy(&body))?
            }
            Provider::Imds { endpoint } => self.imds(endpoint).await?,
            Provider::Container {
                uri,
                token,
                token_file,
            } => {
                let token = match (token, token_file) {
                    (_, Some(f)) => {
                        Some(read_token("reading the container credentials token", f).await?)
                    }
                    (t, None) => t.clone(),
                };
                let mut req = Request::get(uri.as_str());
                if let Some(t) = &token {
                    req = req.header(header::AUTHORIZATION, t.expose());
                }
                let req = req
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| invalid(&e.to_string()))?;
                let (status, body) = self.send(req, uri).await?;
                if !status.is_success() {
                    return Err(AwsError::Credentials {
                        detail: format!("the container credentials endpoint answered {status}"),
                    });
                }
                parse_container(&body)?
            }
        };
        *self.cached.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// Instance metadata, IMDSv2: a session token (PUT), the role's name,
    /// its credentials. Each step has 2 s: off EC2 nothing answers there.
    async fn imds(&self, base: &str) -> Result<Creds, AwsError> {
        const STEP: Duration = Duration::from_secs(2);
        let step = |req: Request<Full<Bytes>>| async move {
            match tokio::time::timeout(STEP, self.send(req, base)).await {
                Ok(Ok((status, body))) if status.is_success() => Ok(body),
                Ok(Ok((status, _))) => Err(AwsError::Credentials {
                    detail: format!("instance metadata answered {status}"),
                }),
                Ok(Err(e)) => Err(AwsError::Credentials {
                    detail: format!("no instance metadata: {e}"),
                }),
                Err(_) => Err(AwsError::Credentials {
                    detail: format!("no instance metadata at {base} within 2s (not on EC2? set AWS credentials, or AWS_EC2_METADATA_DISABLED=true)"),
                }),
            }
        };
        let build = |r: http::request::Builder| {
            r.body(Full::new(Bytes::new()))
                .map_err(|e| invalid(&e.to_string()))
        };
        let token = step(build(
            Request::put(format!("{base}/latest/api/token"))
                .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        )?)
        .await?;
        let token = String::from_utf8_lossy(&token).trim().to_string();
        let roles = step(build(
            Request::get(format!("{base}/latest/meta-data/iam/security-credentials/"))
                .header("x-aws-ec2-metadata-token", token.as_str()),
        )?)
        .await?;
        let roles = String::from_utf8_lossy(&roles);
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.contains('/'))
            .ok_or_else(|| AwsError::Credentials {
                detail: "the instance has no IAM role".into(),
            })?
            .to_string();
        let body = step(build(
            Request::get(format!(
                "{base}/latest/meta-data/iam/security-credentials/{role}"
            ))
            .header("x-aws-ec2-metadata-token", token.as_str()),
        )?)
        .await?;
        parse_container(&body)
    }

    /// One signed JSON request (`X-Amz-Target: target`) to `service`.
    async fn call(
        &self,
        service: &str,
        target: &str,
        body: &Value,
        what: &str,
    ) -> Result<Value, AwsError> {
        let creds = self.creds().await?;
        let base = self.endpoint(service);
        let uri = format!("{base}/");
        let payload = serde_json::to_vec(body).map_err(|e| invalid(&e.to_string()))?;
        let host = uri
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let mut req = Request::post(uri.as_str())
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .body(payload)
            .map_err(|e| invalid(&e.to_string()))?;
        sign(&mut req, &creds, &self.store.region, service)?;
        let (parts, payload) = req.into_parts();
        let req = Request::from_parts(parts, Full::new(Bytes::from(payload)));
        let (status, answer) = self.send(req, &base).await?;
        if status.is_success() {
            return parse_json(&answer);
        }
        Err(classify(status, &answer, what))
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        endpoint: &str,
    ) -> Result<(http::StatusCode, Bytes), AwsError> {
        let network = |detail: String| AwsError::Network {
            endpoint: endpoint.to_string(),
            detail,
        };
        let exchange = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| network(e.to_string()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| network(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(r) => r,
            Err(_) => Err(network(format!(
                "no answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }
}

fn log_transitions(store: &str, b: &mut Breaker) {
    for t in b.take_transitions() {
        if t.to == State::Open {
            tracing::warn!(store, from = %t.from, to = %t.to, "circuit breaker opened: AWS calls of this store paused");
        } else {
            tracing::info!(store, from = %t.from, to = %t.to, "circuit breaker state changed");
        }
    }
}

/// Signs `req` with SigV4 (headers; the body's hash included).
fn sign(
    req: &mut Request<Vec<u8>>,
    creds: &Creds,
    region: &str,
    service: &str,
) -> Result<(), AwsError> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = aws_credential_types::Credentials::new(
        creds.access_key.clone(),
        creds.secret_key.expose().to_string(),
        creds.token.as_ref().map(|t| t.expose().to_string()),
        creds.expires,
        "secrets-sync",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| invalid(&format!("signing: {e}")))?
        .into();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        req.uri().to_string(),
        headers.into_iter(),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| invalid(&format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| invalid(&format!("signing: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

fn invalid(detail: &str) -> AwsError {
    AwsError::Invalid {
        detail: detail.to_string(),
    }
}

/// An error answer: its `__type` (JSON) or `<Code>` (XML) and message,
/// classified. `what` names the secret's path for `not_found`.
fn classify(status: http::StatusCode, body: &[u8], what: &str) -> AwsError {
    let text = String::from_utf8_lossy(body);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let kind = v
        .get("__type")
        .and_then(Value::as_str)
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
        .or_else(|| {
            let start = text.find("<Code>")? + 6;
            let len = text[start..].find("</Code>")?;
            Some(text[start..start + len].to_string())
        })
        .unwrap_or_default();
    let message = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut detail = format!("{status} {kind}: {message}");
    if detail.len() > DETAIL_MAX {
        let mut cut = DETAIL_MAX;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    if kind.contains("NotFound") {
        AwsError::NotFound {
            what: what.to_string(),
            detail,
        }
    } else if kind.contains("Throttl") || kind.contains("TooManyRequests") || status.as_u16() == 429
    {
        AwsError::Throttled { detail }
    } else if status.as_u16() == 401
        || status.as_u16() == 403
        || kind.contains("AccessDenied")
        || kind.contains("Signature")
        || kind.contains("UnrecognizedClient")
        || kind.contains("InvalidClientTokenId")
        || kind.contains("ExpiredToken")
    {
        AwsError::Auth { detail }
    } else {
        AwsError::Invalid { detail }
    }
}

/// `GetSecretValue`'s answer as fields: a `SecretString` that is a JSON
/// object gives its fields, any other `SecretString` the field `value`,
/// `SecretBinary` the field `value` as bytes.
fn secret_value(v: Value) -> Result<SecretData, AwsError> {
    let mut fields = Map::new();
    if let Some(s) = v.get("SecretString").and_then(Value::as_str) {
        match parse_json(s.as_bytes()) {
            Ok(Value::Object(map)) => fields = map,
            _ => {
                fields.insert("value".into(), Value::String(s.to_string()));
            }
        }
    } else if let Some(b) = v.get("SecretBinary").and_then(Value::as_str) {
        fields.insert("value".into(), json!({ "$binary": b }));
    } else {
        return Err(invalid(
            "the answer has neither SecretString nor SecretBinary",
        ));
    }
    let version = v
        .get("VersionId")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(SecretData::new(fields, None).with_version_id(version))
}

/// JSON parsed within a budget (10 000 nodes), as Vault answers are.
fn parse_json(body: &[u8]) -> Result<Value, AwsError> {
    let mut budget = crate::secret::ValueBudget {
        nodes: 10_000,
        bytes: usize::MAX,
        depth: usize::MAX,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    crate::secret::bounded_value(&mut de, &mut budget)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| AwsError::Invalid {
            detail: format!("the answer is not JSON ({} bytes): {e}", body.len()),
        })
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A token file, read off the actor thread (`what` names the job).
async fn read_token(
    what: &'static str,
    path: &std::path::Path,
) -> Result<crate::secret::SecretString, AwsError> {
    let path = path.to_path_buf();
    crate::blocking::run(what, crate::blocking::READ_DEADLINE, move || {
        crate::secret::read_token_file(&path)
    })
    .await
    .map_err(|e| AwsError::Credentials {
        detail: e.to_string(),
    })?
    .map_err(|detail| AwsError::Credentials { detail })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_fields_and_errors_keep_their_kind() {
        let d = secret_value(json!({"SecretString": "{\"password\":\"p\",\"n\":1}"})).unwrap();
        assert_eq!(d.field_bytes("password").unwrap(), b"p");
        let d = secret_value(json!({"SecretString": "plain", "VersionId": "v-1"})).unwrap();
        assert_eq!(d.field_bytes("value").unwrap(), b"plain");
        assert_eq!(d.version().map(|v| v.to_string()).as_deref(), Some("v-1"));
        let d = secret_value(json!({"SecretBinary": "AAEC/w=="})).unwrap();
        assert_eq!(d.field_bytes("value").unwrap(), [0u8, 1, 2, 255]);
        let nf = classify(
            http::StatusCode::BAD_REQUEST,
            br#"{"__type":"com.amazonaws#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
            "secretsmanager:x",
        );
        assert_eq!(nf.kind(), "not_found");
        assert_eq!(
            classify(
                http::StatusCode::FORBIDDEN,
                b"<Error><Code>SignatureDoesNotMatch</Code></Error>",
                "x"
            )
            .kind(),
            "auth"
        );
        assert_eq!(
            classify(
                http::StatusCode::BAD_REQUEST,
                br#"{"__type":"ThrottlingException"}"#,
                "x"
            )
            .kind(),
            "throttled"
        );
        assert_eq!(form_urlencoded(&[("a b", "x/y=z")]), "a%20b=x%2Fy%3Dz");
    }
}
