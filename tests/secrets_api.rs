//! The local secrets API (`SECRETS_API=true`) against a real OpenBao:
//! list, get (one file and several, binary), batchGet with an unknown and a
//! not-yet-synced name, a rotation served within one refresh, a field no
//! file holds never served, `?refresh=true`, the bearer token (and its
//! file changing), the unix socket (its mode, `SO_PEERCRED` in the audit
//! line), 404 on the probe listener, the refusal on a non-loopback address
//! without a token, malformed and oversized bodies, canaries (no value or
//! token in logs, metrics or audit lines), and the OpenAPI document
//! validated by openapi-spec-validator.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use common::{unique, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::{json, Value};

/// One HTTP/1.0 exchange over `stream`: (status, headers, body).
fn exchange(
    mut stream: impl Read + Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    stream.write_all(req.as_bytes()).unwrap();
    // A server may answer (413) before reading all of a large body.
    let _ = stream.write_all(body);
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn tcp(port: u16) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

/// GET on the inspection listener: (status, headers, body).
fn get(s: &Sync, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    exchange(tcp(s.metrics_port), "GET", path, headers, b"")
}

fn post(s: &Sync, path: &str, body: &[u8]) -> (u16, String, String) {
    exchange(tcp(s.metrics_port), "POST", path, &[], body)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The API's lines of the audit file.
fn api_lines(audit: &Path) -> Vec<Value> {
    std::fs::read_to_string(audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "api_read")
        .collect()
}

#[test]
fn the_api_serves_exactly_what_the_files_hold() {
    let bao = require_bao!();
    let (db, api, bin, later) = (
        unique("api-db"),
        unique("api-token"),
        unique("api-bin"),
        unique("api-later"),
    );
    let canary_user = unique("canary-user");
    let canary_pass = unique("canary-pass");
    let canary_extra = unique("canary-extra-field");
    let canary_token = unique("canary-token");
    bao.kv_put(
        &db,
        json!({"username": canary_user, "password": canary_pass, "extra": canary_extra}),
    );
    bao.kv_put(&api, json!({"token": canary_token}));
    // Bytes that are not UTF-8, stored base64 and written decoded.
    bao.kv_put(&bin, json!({"p12": "/wABAgM="}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let config = ConfigBuilder::new()
        .secret_json(
            json!({"name": "db", "path": db, "refreshInterval": "1s", "files": [
                {"path": out.join("db-user"), "key": "username"},
                {"path": out.join("db-pass"), "key": "password"},
            ]}),
        )
        .secret_json(
            json!({"name": "api", "path": api, "refreshInterval": "1h", "files": [
                {"path": out.join("api-token"), "key": "token"},
            ]}),
        )
        .secret_json(
            json!({"name": "bin", "path": bin, "refreshInterval": "1h", "files": [
                {"path": out.join("keystore.p12"), "key": "p12", "encoding": "base64"},
            ]}),
        )
        .secret_json(
            json!({"name": "later", "path": later, "refreshInterval": "1h", "files": [
                {"path": out.join("later"), "key": "v"},
            ]}),
        )
        .build();
    let audit = d.join("audit.log");
    let audit_s = audit.display().to_string();
    let (otlp, spans) = common::otlp_sink();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("SECRETS_API", "true"),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
            ("REFRESH_JITTER", "0"),
            ("ENABLE_TRACING", "true"),
            ("OTEL_EXPORTER_ENDPOINT", otlp.as_str()),
        ],
    );
    s.wait_until(Duration::from_secs(20), "three secrets synced", || {
        ["db-pass", "api-token", "keystore.p12"]
            .iter()
            .all(|f| out.join(f).exists())
    });
    // The table is filled right after the write.
    s.wait_until(Duration::from_secs(5), "bin served", || {
        get(&s, "/v1/secrets/bin", &[]).0 == 200
    });

    // List, in config order.
    let (code, head, body) = get(&s, "/v1/secrets", &[]);
    assert_eq!(code, 200);
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(
        json_of(&body),
        json!({"secrets": ["db", "api", "bin", "later"]})
    );

    // Several files: data by key, value the JSON of data; the field no
    // file holds is not there.
    let (code, head, body) = get(&s, "/v1/secrets/db", &[]);
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(
        !body.contains(&canary_extra),
        "a field no file holds was served"
    );
    let v = json_of(&body);
    assert_eq!(v["name"], "db");
    assert_eq!(
        v["data"],
        json!({"username": canary_user, "password": canary_pass})
    );
    assert_eq!(
        json_of(v["value"].as_str().unwrap()),
        json!({"username": canary_user, "password": canary_pass})
    );
    assert_eq!(v["version"], "1");
    assert!(v["updated"].as_str().unwrap().ends_with('Z'), "{v}");

    // One file: its content is the value.
    let v = json_of(&get(&s, "/v1/secrets/api", &[]).2);
    assert_eq!(v["value"], canary_token.as_str());
    assert_eq!(
        std::fs::read_to_string(out.join("api-token")).unwrap(),
        canary_token
    );

    // Binary content: base64, said so.
    let v = json_of(&get(&s, "/v1/secrets/bin", &[]).2);
    assert_eq!(v["encoding"], "base64");
    assert_eq!(v["value"], "/wABAgM=");
    assert_eq!(
        std::fs::read(out.join("keystore.p12")).unwrap(),
        [0xff, 0, 1, 2, 3]
    );

    // Unknown: 404; not synced yet: 503 with Retry-After.
    assert_eq!(get(&s, "/v1/secrets/nope", &[]).0, 404);
    let (code, head, _) = get(&s, "/v1/secrets/later", &[]);
    assert_eq!(code, 503);
    assert!(head.contains("retry-after: 1"), "{head}");

    // batchGet: partial success.
    let (code, head, body) = post(
        &s,
        "/v1/secrets:batchGet",
        br#"{"names": ["db", "nope", "later", "api"]}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("cache-control: no-store"));
    let v = json_of(&body);
    let names: Vec<&str> = v["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "api"]);
    assert_eq!(
        v["errors"],
        json!([{"name": "nope", "error": "not found"}, {"name": "later", "error": "not synced yet"}])
    );

    // Malformed and oversized bodies; the process is fine after.
    assert_eq!(post(&s, "/v1/secrets:batchGet", b"{\"names\": 3}").0, 400);
    assert_eq!(post(&s, "/v1/secrets:batchGet", b"not json").0, 400);
    let big = format!("{{\"names\": [\"{}\"]}}", "a".repeat(70 * 1024));
    assert_eq!(post(&s, "/v1/secrets:batchGet", big.as_bytes()).0, 413);
    assert_eq!(
        exchange(tcp(s.metrics_port), "DELETE", "/v1/secrets/db", &[], b"").0,
        405
    );
    assert_eq!(s.get("/health").unwrap().0, 200);

    // Never on the probe listener.
    let (code, _, _) = exchange(tcp(s.http_port), "GET", "/v1/secrets/db", &[], b"");
    assert_eq!(code, 404, "the probe listener serves the API");

    // A rotation is served within one refresh (1 s).
    let rotated = unique("canary-rotated");
    bao.kv_put(
        &db,
        json!({"username": canary_user, "password": rotated, "extra": canary_extra}),
    );
    s.wait_until(Duration::from_secs(5), "the rotation served", || {
        json_of(&get(&s, "/v1/secrets/db", &[]).2)["data"]["password"] == rotated.as_str()
    });

    // ?refresh=true reads first (api refreshes hourly).
    let token2 = unique("canary-token2");
    bao.kv_put(&api, json!({"token": token2}));
    assert_eq!(
        json_of(&get(&s, "/v1/secrets/api", &[]).2)["value"],
        canary_token.as_str(),
        "not read yet"
    );
    let (code, _, body) = get(&s, "/v1/secrets/api?refresh=true", &[]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["value"], token2.as_str());

    // Audit lines and the counter.
    let lines = api_lines(&audit);
    assert!(
        lines.iter().any(|l| l["secret"] == "db"
            && l["result"] == "ok"
            && l["caller"].as_str().unwrap().starts_with("127.0.0.1:")),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .any(|l| l["secret"] == "later" && l["result"] == "not_synced"));
    assert!(lines
        .iter()
        .any(|l| l["secret"] == "nope" && l["result"] == "not_found"));
    assert!(
        s.metric(r#"secrets_api_reads_total{result="ok",secret_name="db"}"#)
            .is_some_and(|n| n >= 3.0),
        "{:?}",
        s.get("/metrics")
    );
    assert!(s
        .metric(r#"secrets_api_reads_total{result="not_synced",secret_name="later"}"#)
        .is_some());
    let metrics = s.get("/metrics").unwrap().1;
    assert!(
        !metrics.contains("secret_name=\"nope\""),
        "an unknown name made a series"
    );
    assert!(
        metrics.contains(r#"route="/v1/secrets/{name}""#),
        "{metrics}"
    );

    // Canaries: no value in logs, metrics, audit or /status.
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    let status = s.get("/status").unwrap().1;
    for canary in [
        &canary_user,
        &canary_pass,
        &canary_extra,
        &canary_token,
        &rotated,
        &token2,
    ] {
        for (what, text) in [
            ("log", s.logs()),
            ("metrics", metrics.clone()),
            ("audit", audit_text.clone()),
            ("status", status.clone()),
        ] {
            assert!(!text.contains(canary.as_str()), "a value is in the {what}");
        }
    }
    // Spans of the API's requests are exported (the batch exporter sends
    // within seconds), none holds a value.
    s.wait_until(
        Duration::from_secs(15),
        "spans of the API requests exported",
        || common::exported(&spans, "/v1/secrets"),
    );
    for canary in [
        &canary_user,
        &canary_pass,
        &canary_extra,
        &canary_token,
        &rotated,
        &token2,
    ] {
        assert!(!common::exported(&spans, canary), "a value is in a span");
    }
}

#[test]
fn a_token_guards_every_request_and_its_file_is_reread() {
    let bao = require_bao!();
    let p = unique("api-guarded");
    bao.kv_put(&p, json!({"v": "guarded-value"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token_file = d.join("api-token");
    let token = unique("canary-api-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let tf = token_file.display().to_string();
    let audit = d.join("audit.log");
    let audit_s = audit.display().to_string();
    let config = ConfigBuilder::new()
        .secret("g", &p, "1h", &d.join("out/g"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("SECRETS_API", "true"),
            ("SECRETS_API_TOKEN_FILE", tf.as_str()),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
        ],
    );
    s.wait_until(Duration::from_secs(20), "synced", || {
        common::file_has(&d.join("out/g"), "guarded-value")
    });
    let bearer = format!("Bearer {token}");
    for path in ["/v1/secrets", "/v1/secrets/g", "/v1/openapi.json"] {
        let (code, head, body) = get(&s, path, &[]);
        assert_eq!(code, 401, "{path} without a token");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        assert!(!body.contains("guarded-value"));
        assert_eq!(
            get(&s, path, &[("Authorization", "Bearer wrong")]).0,
            401,
            "{path} with a wrong token"
        );
    }
    s.wait_until(Duration::from_secs(5), "served with the token", || {
        get(&s, "/v1/secrets/g", &[("Authorization", &bearer)]).0 == 200
    });
    assert_eq!(
        exchange(
            tcp(s.metrics_port),
            "POST",
            "/v1/secrets:batchGet",
            &[],
            br#"{"names":["g"]}"#
        )
        .0,
        401
    );
    // The file changes: the new token works, the old one no more.
    let token2 = unique("canary-api-token2");
    std::fs::write(&token_file, &token2).unwrap();
    let bearer2 = format!("Bearer {token2}");
    s.wait_until(Duration::from_secs(10), "the new token accepted", || {
        get(&s, "/v1/secrets/g", &[("Authorization", &bearer2)]).0 == 200
    });
    assert_eq!(
        get(&s, "/v1/secrets/g", &[("Authorization", &bearer)]).0,
        401
    );
    let lines = api_lines(&audit);
    assert!(
        lines.iter().any(|l| l["result"] == "unauthorized"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l["result"] == "ok"));
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    let metrics = s.get("/metrics").unwrap().1;
    for t in [&token, &token2] {
        assert!(
            !s.logs().contains(t.as_str()),
            "the API token is in the log"
        );
        assert!(
            !audit_text.contains(t.as_str()),
            "the API token is in the audit log"
        );
        assert!(!metrics.contains(t.as_str()));
    }
}

#[test]
fn the_unix_socket_is_private_and_its_peer_uid_is_audited() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let bao = require_bao!();
    let p = unique("api-socket");
    bao.kv_put(&p, json!({"v": "over-the-socket"}));
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    for (group, mode) in [(None, 0o600), (Some(gid), 0o660)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sock = d.join("api.sock");
        let sock_s = sock.display().to_string();
        let gid_s = group.map(|g| g.to_string()).unwrap_or_default();
        let audit = d.join("audit.log");
        let audit_s = audit.display().to_string();
        let config = ConfigBuilder::new()
            .secret("s", &p, "1h", &d.join("out/s"))
            .build();
        let mut env = vec![
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("SECRETS_API", "true"),
            ("SECRETS_API_SOCKET", sock_s.as_str()),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
        ];
        if group.is_some() {
            env.push(("SECRETS_API_SOCKET_GROUP", gid_s.as_str()));
        }
        let s = Sync::start(d, &config, &bao.addr, &env);
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, mode, "group {group:?}");
        let via_socket = || {
            let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            exchange(c, "GET", "/v1/secrets/s", &[], b"")
        };
        s.wait_until(Duration::from_secs(20), "served on the socket", || {
            via_socket().0 == 200
        });
        let (_, head, body) = via_socket();
        assert!(head.contains("cache-control: no-store"));
        assert_eq!(json_of(&body)["value"], "over-the-socket");
        // The socket serves the API only.
        let c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        assert_eq!(exchange(c, "GET", "/status", &[], b"").0, 404);
        let lines = api_lines(&audit);
        let caller = format!("uid:{uid}");
        assert!(
            lines
                .iter()
                .any(|l| l["caller"] == caller.as_str() && l["result"] == "ok"),
            "{lines:?}"
        );
        // A graceful stop removes the socket.
        let mut s = s;
        assert!(s.stop().success());
        assert!(!sock.exists(), "the socket is left after a graceful stop");
    }
}

#[test]
fn the_api_is_refused_on_a_non_loopback_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("config.yaml");
    std::fs::write(
        &cfg,
        ConfigBuilder::new()
            .secret("s", "x", "1h", &d.join("out/s"))
            .build(),
    )
    .unwrap();
    // The harness turns the inspection listener off; the API needs it.
    let port = common::free_port().to_string();
    let mut cmd = common::command(
        d,
        &cfg,
        "http://127.0.0.1:1",
        &[
            ("VAULT_TOKEN", "t"),
            ("SECRETS_API", "true"),
            ("METRICS_ADDR", "0.0.0.0"),
            ("METRICS_PORT", port.as_str()),
        ],
    );
    cmd.arg("run");
    let (code, _, err) = common::run_to_end(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("SECRETS_API")
            && err.contains("SECRETS_API_TOKEN_FILE")
            && err.contains("METRICS_ADDR"),
        "{err}"
    );
    // A token file that does not exist refuses the start too.
    let mut cmd = common::command(
        d,
        &cfg,
        "http://127.0.0.1:1",
        &[
            ("VAULT_TOKEN", "t"),
            ("SECRETS_API", "true"),
            ("SECRETS_API_TOKEN_FILE", "/nonexistent/token"),
            ("METRICS_PORT", port.as_str()),
        ],
    );
    cmd.arg("run");
    let (code, _, err) = common::run_to_end(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SECRETS_API_TOKEN_FILE"), "{err}");
}

/// The committed OpenAPI document is valid OpenAPI 3 (by
/// openapi-spec-validator, installed by scripts/install-openapi-validator.sh)
/// and is what the API serves.
#[test]
fn the_openapi_document_is_valid_and_served() {
    let python = std::env::var("OPENAPI_PYTHON").unwrap_or_else(|_| "python3".into());
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let has = std::process::Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        assert!(
            std::env::var("CI").is_err(),
            "openapi-spec-validator is missing (scripts/install-openapi-validator.sh installs it)"
        );
        eprintln!("SKIPPED: openapi-spec-validator is not installed");
        return;
    }
    let out = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret("s", &unique("api-doc"), "1h", &d.join("out/s"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("SECRETS_API", "true")],
    );
    let (code, _, body) = get(&s, "/v1/openapi.json", &[]);
    assert_eq!(code, 200);
    assert_eq!(body, std::fs::read_to_string(&doc).unwrap());
}
