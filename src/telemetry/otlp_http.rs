//! The OTLP exporter's HTTP client: one HTTP/1.1 `POST` per batch of spans
//! over plain TCP, blocking, on the SDK's own export thread (the batch
//! processor drives each export with `block_on` on a thread of its own, so
//! blocking there stalls nothing else; the actor thread never gets here).
//!
//! Why not the SDK's default client: it is reqwest's blocking client, a
//! second HTTP stack (with its own runtime thread) beside the hyper client
//! that talks to Vault, for one POST every few seconds; it spoke plain HTTP
//! only too (no TLS feature). This one speaks exactly what the exporter
//! needs: a request it built, a status line, `Retry-After`, and a bounded
//! body (the OTLP partial-success message).
//!
//! Owns: the deadline of one export (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`,
//! then `OTEL_EXPORTER_OTLP_TIMEOUT`, in milliseconds, as the SDK reads
//! them; 10 s by default) and the limits on what a collector may answer.
//! The request's headers (`OTEL_EXPORTER_OTLP_HEADERS` may hold a
//! collector's credentials) are sent and never logged nor put in an error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use opentelemetry_http::{HttpClient, HttpError};

/// The deadline of one export when no variable sets it (the SDK's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest deadline a variable may set (an export longer than this is a
/// wedged collector; the batch processor waits for each export).
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// The most of a collector's answer body kept (an OTLP partial-success
/// message is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;
/// The most bytes of status line and headers read from a collector.
const MAX_HEAD: usize = 16 * 1024;

/// Why one export's request failed (the exporter logs it; the SDK retries
/// or drops the batch).
#[derive(Debug, thiserror::Error)]
pub(crate) enum OtlpHttpError {
    #[error("the OTLP endpoint {0:?} is not http:// (set OTEL_EXPORTER_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT to the collector's plain-HTTP port, e.g. http://localhost:4318; TLS to the collector is not supported: run a local collector)")]
    Scheme(String),
    #[error("the OTLP endpoint {0:?} names no host")]
    NoHost(String),
    #[error("cannot resolve the OTLP collector {authority}")]
    Resolve {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to the OTLP collector {authority}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the OTLP collector {authority} did not answer within {timeout:?} (OTEL_EXPORTER_OTLP_TIMEOUT)")]
    Timeout {
        authority: String,
        timeout: Duration,
    },
    #[error("talking to the OTLP collector {authority} failed")]
    Io {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the OTLP collector {authority} sent a malformed answer: {what}")]
    Malformed {
        authority: String,
        what: &'static str,
    },
}

/// The exporter's HTTP client (see the module doc).
#[derive(Debug, Clone)]
pub(crate) struct PlainHttp {
    /// The deadline of one export, connect to last byte.
    timeout: Duration,
}

impl PlainHttp {
    /// A client with the deadline the OTLP variables set.
    pub(crate) fn from_env() -> Self {
        let var = |name| std::env::var(name).ok();
        Self {
            timeout: timeout_from(
                var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").as_deref(),
                var("OTEL_EXPORTER_OTLP_TIMEOUT").as_deref(),
            ),
        }
    }
}

/// The deadline from the traces variable, else the general one (both in
/// milliseconds, as the OTLP specification has them), else 10 s; a value
/// that is not a number of milliseconds in 1..=300 000 is passed over.
fn timeout_from(traces: Option<&str>, general: Option<&str>) -> Duration {
    [traces, general]
        .into_iter()
        .flatten()
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .find(|d| !d.is_zero() && *d <= MAX_TIMEOUT)
        .unwrap_or(DEFAULT_TIMEOUT)
}

#[async_trait::async_trait]
impl HttpClient for PlainHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        post(&request, self.timeout).map_err(|e| Box::new(e) as HttpError)
    }
}

/// Sends `request` and reads the answer, all within `timeout`.
fn post(request: &Request<Bytes>, timeout: Duration) -> Result<Response<Bytes>, OtlpHttpError> {
    let uri = request.uri();
    if uri.scheme_str() != Some("http") {
        return Err(OtlpHttpError::Scheme(uri.to_string()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| OtlpHttpError::NoHost(uri.to_string()))?
        .clone();
    let name = authority.as_str().to_string();
    let deadline = Instant::now().checked_add(timeout);
    let left = || -> Result<Duration, OtlpHttpError> {
        deadline
            .and_then(|d| d.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
            .ok_or_else(|| OtlpHttpError::Timeout {
                authority: name.clone(),
                timeout,
            })
    };
    let addrs: Vec<SocketAddr> = (authority.host(), authority.port_u16().unwrap_or(80))
        .to_socket_addrs()
        .map_err(|source| OtlpHttpError::Resolve {
            authority: name.clone(),
            source,
        })?
        .collect();
    let mut stream = None;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = stream.ok_or_else(|| OtlpHttpError::Connect {
        authority: name.clone(),
        source: last.unwrap_or_else(|| std::io::Error::other("the name resolved to no address")),
    })?;
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => OtlpHttpError::Timeout {
            authority: name.clone(),
            timeout,
        },
        _ => OtlpHttpError::Io {
            authority: name.clone(),
            source,
        },
    };
    stream.set_nodelay(true).map_err(io)?;

    let mut head = Vec::with_capacity(256);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    head.extend_from_slice(format!("POST {path} HTTP/1.1\r\nHost: {name}\r\n").as_bytes());
    for (k, v) in request.headers() {
        if k == http::header::HOST
            || k == http::header::CONTENT_LENGTH
            || k == http::header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(k.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(v.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let body = request.body();
    head.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut writer = &stream;
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    writer.write_all(&head).map_err(io)?;
    writer.write_all(body).map_err(io)?;

    let malformed = |what| OtlpHttpError::Malformed {
        authority: name.clone(),
        what,
    };
    let mut reader = BufReader::new(&stream);
    let mut head_left = MAX_HEAD;
    let mut line = |reader: &mut BufReader<&TcpStream>| -> Result<String, OtlpHttpError> {
        stream.set_read_timeout(Some(left()?)).map_err(io)?;
        let mut buf = Vec::new();
        let cap = u64::try_from(head_left).unwrap_or(0);
        reader.take(cap).read_until(b'\n', &mut buf).map_err(io)?;
        if !buf.ends_with(b"\n") {
            return Err(malformed(
                "a status line or header over 16 KiB, or cut short",
            ));
        }
        head_left = head_left.saturating_sub(buf.len());
        String::from_utf8(buf)
            .map(|s| s.trim_end().to_string())
            .map_err(|_| malformed("a header that is not text"))
    };
    let status_line = line(&mut reader)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|c| http::StatusCode::from_bytes(c.as_bytes()).ok())
        .ok_or_else(|| malformed("no HTTP/1.x status line"))?;
    let mut answer = Response::builder().status(status);
    let mut length = None;
    let mut chunked = false;
    loop {
        let header = line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        let Some((k, v)) = header.split_once(':') else {
            return Err(malformed("a header without a colon"));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| malformed("a Content-Length that is not a number"))?,
            );
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("retry-after") {
            answer = answer.header(http::header::RETRY_AFTER, v);
        }
    }
    stream.set_read_timeout(Some(left()?)).map_err(io)?;
    // The body is kept up to MAX_BODY; a longer or chunked one is cut there
    // (the connection closes after it anyway).
    let mut kept = Vec::new();
    let cap = match (chunked, length) {
        (true, _) => 0,
        (false, Some(n)) => n.min(MAX_BODY),
        (false, None) => MAX_BODY,
    };
    reader
        .take(u64::try_from(cap).unwrap_or(0))
        .read_to_end(&mut kept)
        .map_err(io)?;
    answer
        .body(Bytes::from(kept))
        .map_err(|_| malformed("a Retry-After header that is not a header value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot collector: answers `reply` to the first request and
    /// returns what it received.
    fn collector(reply: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then the Content-Length bytes of the body.
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    while got.len() < end + 4 + len {
                        let n = s.read(&mut buf).unwrap();
                        got.extend_from_slice(&buf[..n]);
                    }
                    break;
                }
            }
            s.write_all(reply).unwrap();
            got
        });
        (addr, h)
    }

    fn request(url: &str, body: &'static [u8]) -> Request<Bytes> {
        Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/x-protobuf")
            .header("authorization", "Bearer canary-otlp-credential")
            .body(Bytes::from_static(body))
            .unwrap()
    }

    #[test]
    fn posts_the_batch_and_reads_status_retry_after_and_body() {
        let (addr, h) = collector(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 3\r\n\r\nabc",
        );
        let url = format!("http://{addr}/v1/traces");
        let answer = post(&request(&url, b"\x0a\x01span"), Duration::from_secs(5)).unwrap();
        assert_eq!(answer.status(), 429);
        assert_eq!(answer.headers()["retry-after"], "7");
        assert_eq!(answer.body().as_ref(), b"abc");
        let got = String::from_utf8_lossy(&h.join().unwrap()).to_string();
        assert!(got.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{got}");
        assert!(got.contains(&format!("\r\nHost: {addr}\r\n")), "{got}");
        assert!(got.contains("\r\ncontent-type: application/x-protobuf\r\n"));
        assert!(got.contains("\r\nauthorization: Bearer canary-otlp-credential\r\n"));
        assert!(got.contains("\r\nContent-Length: 6\r\n"), "{got:?}");
        assert!(got.ends_with("\r\n\r\n\x0a\x01span"), "{got:?}");
    }

    #[test]
    fn a_body_without_length_is_read_to_the_close_and_capped() {
        static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let reply = BIG.get_or_init(|| {
            let mut r = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
            r.extend(std::iter::repeat_n(b'x', MAX_BODY + 100));
            r
        });
        let (addr, h) = collector(reply);
        let answer = post(
            &request(&format!("http://{addr}/v1/traces"), b""),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.body().len(), MAX_BODY);
        h.join().unwrap();
    }

    #[test]
    fn errors_name_the_collector_and_never_a_header() {
        let e = post(&request("https://c:4318/v1/traces", b""), DEFAULT_TIMEOUT).unwrap_err();
        assert!(e.to_string().contains("not http://"), "{e}");

        // A collector that accepts and never answers: the deadline holds.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = Instant::now();
        let e = post(
            &request(&format!("http://{addr}/v1/traces"), b"x"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5));
        let text = format!("{e} {e:?}");
        assert!(
            text.contains(&addr) && text.contains("did not answer"),
            "{text}"
        );
        assert!(!text.contains("canary-otlp-credential"));
        drop(l);

        // A collector that answers garbage.
        let (addr, h) = collector(b"SSH-2.0-nope\r\n\r\n");
        let e = post(
            &request(&format!("http://{addr}/v1/traces"), b""),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no HTTP/1.x status line"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn the_deadline_comes_from_the_otlp_variables() {
        assert_eq!(timeout_from(None, None), DEFAULT_TIMEOUT);
        assert_eq!(
            timeout_from(Some("2500"), Some("100")),
            Duration::from_millis(2500)
        );
        assert_eq!(timeout_from(None, Some("100")), Duration::from_millis(100));
        assert_eq!(
            timeout_from(Some("soon"), Some("100")),
            Duration::from_millis(100)
        );
        assert_eq!(timeout_from(Some("0"), None), DEFAULT_TIMEOUT);
        assert_eq!(timeout_from(Some("999999999"), None), DEFAULT_TIMEOUT);
    }
}
