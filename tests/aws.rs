//! AWS as a second source (issue 26), against moto_server with SigV4
//! checking on (`INITIAL_NO_AUTH_ACTION_COUNT`: the first requests create
//! an IAM user and its key unsigned, every later one must be signed with a
//! real key) and the real OpenBao beside it: one config reads both.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{file_has, free_port, unique, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// A moto_server of this test's own, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto_server on a free port; `unsigned`: how many requests it takes
/// without a signature (then every request must be signed); `None`: no
/// signature checks at all.
fn moto(unsigned: Option<u32>) -> Option<Moto> {
    let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let port = free_port();
    let mut cmd = Command::new(&bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(n) = unsigned {
        cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
    }
    let child = match cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(c) => c,
        Err(e) => {
            let msg =
                format!("moto_server cannot start ({e}); scripts/install-moto.sh installs it");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
    };
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    common::wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .expect("moto_server listens");
    Some(m)
}

/// Runs boto3 against `url`; `script` sees `url`, `key`, `secret`.
fn boto(url: &str, key: &str, secret: &str, script: &str) -> String {
    let prelude = "import sys, json, boto3\nurl, key, secret = sys.argv[1:4]\nc = lambda s: boto3.client(s, endpoint_url=url, region_name='us-east-1', aws_access_key_id=key, aws_secret_access_key=secret)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .args([url, key, secret])
        .output()
        .expect("python3 with boto3 (scripts/install-moto.sh installs it)");
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An IAM user with every permission and its key, made with the unsigned
/// requests moto allows (three).
fn iam_key(url: &str) -> (String, String) {
    let out = boto(
        url,
        "unsigned",
        "unsigned",
        "iam = c('iam')\niam.create_user(UserName='sidecar')\niam.put_user_policy(UserName='sidecar', PolicyName='all', PolicyDocument=json.dumps({'Version':'2012-10-17','Statement':[{'Effect':'Allow','Action':'*','Resource':'*'}]}))\nk = iam.create_access_key(UserName='sidecar')['AccessKey']\nprint(k['AccessKeyId'], k['SecretAccessKey'])",
    );
    let mut it = out.split_whitespace();
    (
        it.next().unwrap().to_string(),
        it.next().unwrap().to_string(),
    )
}

/// A config builder with the store `aws` (us-east-1) at `url`.
fn with_store(url: &str) -> ConfigBuilder {
    ConfigBuilder::new().named_store(
        "aws",
        json!({"provider": "aws", "region": "us-east-1", "endpoint": url}),
    )
}

/// The secret `db`: `{id}/db`'s field password into `out/db`.
fn db_secret(d: &Path, id: &str) -> serde_json::Value {
    json!({"name": "db", "store": "aws", "path": format!("{id}/db"),
        "files": [{"path": d.join("out/db"), "key": "password"}]})
}

fn aws_config(d: &Path, url: &str, vault_path: &str, id: &str) -> String {
    with_store(url)
        .secret("from-vault", vault_path, "1s", &d.join("out/vault"))
        .secret_json(json!({"name": "db", "store": "aws", "path": format!("{id}/db"),
            "refreshInterval": "1s",
            "files": [{"path": d.join("out/db-password"), "key": "password"}]}))
        .secret_json(json!({"name": "blob", "store": "aws", "path": format!("{id}/blob"),
            "files": [{"path": d.join("out/blob"), "key": "value"}]}))
        .secret_json(json!({"name": "flag", "store": "aws", "parameter": format!("/{id}/single"),
            "files": [{"path": d.join("out/flag"), "key": "value"}]}))
        .secret_json(json!({"name": "app", "store": "aws", "parameter": format!("/{id}/app/"),
            "template": {"data": {"app.env": "A={{ secret[\"a\"] }}\nB={{ secret[\"nested/b\"] }}\n"}},
            "files": [{"path": d.join("out/app.env"), "key": "app.env"}]}))
        .build()
}

#[test]
fn one_config_reads_openbao_and_aws_secrets_manager_and_ssm() {
    let bao = require_bao!();
    let Some(m) = moto(Some(3)) else { return };
    let (key, secret) = iam_key(&m.url);
    let id = unique("app");
    let canary = "CANARY-aws-7c1d";
    boto(
        &m.url,
        &key,
        &secret,
        &format!(
            "sm = c('secretsmanager')\nsm.create_secret(Name='{id}/db', SecretString=json.dumps({{'username':'u','password':'{canary}-1'}}))\nsm.create_secret(Name='{id}/blob', SecretBinary=bytes([0,1,2,255,254]))\nssm = c('ssm')\nssm.put_parameter(Name='/{id}/single', Value='on', Type='String')\nssm.put_parameter(Name='/{id}/app/a', Value='1', Type='String')\nssm.put_parameter(Name='/{id}/app/nested/b', Value='two', Type='SecureString')"
        ),
    );
    let vp = unique("aws-vault");
    bao.kv_put(&vp, json!({"v": "from-openbao"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let audit = d.join("audit.log");
    let audit_s = audit.display().to_string();
    let (otlp, spans) = common::otlp_sink();
    let s = Sync::start(
        d,
        &aws_config(d, &m.url, &vp, &id),
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("LOG_LEVEL", "trace"),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
            ("ENABLE_TRACING", "true"),
            ("OTEL_EXPORTER_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    s.wait_until(Duration::from_secs(20), "every file", || {
        file_has(&d.join("out/vault"), "from-openbao")
            && file_has(&d.join("out/db-password"), &format!("{canary}-1"))
            && file_has(&d.join("out/flag"), "on")
            && file_has(&d.join("out/app.env"), "A=1\nB=two\n")
            && std::fs::read(d.join("out/blob")).is_ok_and(|b| b == [0, 1, 2, 255, 254])
    });
    // A new value reaches the file at the next refresh.
    boto(
        &m.url,
        &key,
        &secret,
        &format!("c('secretsmanager').put_secret_value(SecretId='{id}/db', SecretString=json.dumps({{'username':'u','password':'{canary}-2'}}))"),
    );
    s.wait_until(Duration::from_secs(15), "rotation from AWS", || {
        file_has(&d.join("out/db-password"), &format!("{canary}-2"))
    });
    let status = s.status();
    assert_eq!(
        status["secrets"]["db"]["path"],
        format!("secretsmanager:{id}/db"),
        "{status}"
    );
    // Audit lines name the AWS secret's path and version; spans export.
    let audit_text = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(
        audit_text.contains(&format!("secretsmanager:{id}/db")),
        "{audit_text}"
    );
    s.wait_until(Duration::from_secs(10), "spans exported", || {
        common::exported(&spans, "sync")
    });
    let logs = s.logs();
    for leak in [canary, secret.as_str()] {
        assert!(!logs.contains(leak), "{leak} in the log");
        assert!(!status.to_string().contains(leak));
        assert!(!s.get("/metrics").unwrap().1.contains(leak));
        assert!(!audit_text.contains(leak), "{leak} in the audit log");
        assert!(!common::exported(&spans, leak), "{leak} in a span");
    }
}

#[test]
fn a_wrong_aws_key_fails_its_secrets_only() {
    let bao = require_bao!();
    let Some(m) = moto(Some(3)) else { return };
    let (key, secret) = iam_key(&m.url);
    let id = unique("bad");
    boto(
        &m.url,
        &key,
        &secret,
        &format!("c('secretsmanager').create_secret(Name='{id}/db', SecretString='{{\"password\":\"p\"}}')"),
    );
    let vp = unique("aws-vault2");
    bao.kv_put(&vp, json!({"v": "still"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wrong = "wrongwrongwrongwrongwrongwrongwrongwrong";
    let config = with_store(&m.url)
        .secret("from-vault", &vp, "1s", &d.join("out/vault"))
        .secret_json(db_secret(d, &id))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", wrong),
        ],
    );
    s.wait_until(
        Duration::from_secs(15),
        "the AWS secret fails with auth",
        || {
            let st = s.status();
            st["secrets"]["db"]["last_error_kind"] == "auth"
                || st["secrets"]["db"]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("refused the credentials"))
        },
    );
    assert!(file_has(&d.join("out/vault"), "still"));
    assert!(!d.join("out/db").exists());
    assert_eq!(s.get("/ready").unwrap().0, 200);
    assert!(!s.logs().contains(wrong));
}

/// `check` validates stores and AWS secrets, naming secret and field.
#[test]
fn check_validates_stores_and_aws_fields() {
    let (code, out, err) = common::check_config(
        "secretStore: {address: http://127.0.0.1:8200, token: t}\nsecretStores:\n  aws: {provider: aws, region: eu-west-1}\n  other: {provider: gcp}\nsecrets:\n  - {name: a, store: aws, path: p, pki: {path: pki/issue/x, commonName: x}, files: [{path: /tmp/x/a, key: v}]}\n  - {name: b, store: nope, path: p, files: [{path: /tmp/x/b, key: v}]}\n  - {name: c, parameter: /x, files: [{path: /tmp/x/c, key: value}]}\n  - {name: d, store: aws, path: p, parameter: /x, files: [{path: /tmp/x/d, key: value}]}\n",
    );
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "secretStores.other.provider: \"gcp\" is not a provider",
        "secrets[0] \"a\".pki: applies to Vault secrets only",
        "secrets[1] \"b\".store: \"nope\" is not a store (secretStores has: aws",
        "secrets[2] \"c\".parameter: applies to a secret of an AWS store",
        "secrets[3] \"d\": give one of `path` (Secrets Manager) or `parameter` (SSM)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}

/// IRSA: no static keys; a web identity token file and a role. STS (a moto
/// without signature checks: its checker cannot take the unsigned
/// `AssumeRoleWithWebIdentity` real STS takes) gives temporary
/// credentials, which sign the reads.
#[test]
fn irsa_web_identity_reads_without_static_keys() {
    let Some(m) = moto(None) else { return };
    let id = unique("irsa");
    boto(
        &m.url,
        "setup",
        "setup",
        &format!("c('secretsmanager').create_secret(Name='{id}/db', SecretString='{{\"password\":\"from-irsa\"}}')"),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = d.join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXBwOmFwcCJ9.c2ln",
    )
    .unwrap();
    let config = with_store(&m.url).secret_json(db_secret(d, &id)).build();
    let role = "arn:aws:iam::123456789012:role/secrets-sync-irsa";
    let token_s = token.display().to_string();
    let s = Sync::start(
        d,
        &config,
        "http://127.0.0.1:1",
        &[
            ("VAULT_TOKEN", "unused"),
            ("AWS_ROLE_ARN", role),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_s.as_str()),
            ("AWS_ENDPOINT_URL_STS", m.url.as_str()),
        ],
    );
    s.wait_until(Duration::from_secs(20), "read with IRSA", || {
        file_has(&d.join("out/db"), "from-irsa")
    });
    // moto saw the role assumed through STS.
    let (_, state) = common::http(
        m.url.trim_start_matches("http://"),
        "GET",
        "/moto-api/data.json",
        None,
        None,
    )
    .unwrap();
    assert!(
        state.contains("secrets-sync-irsa"),
        "no AssumeRoleWithWebIdentity seen"
    );
    assert!(!s.logs().contains("c2ln"), "the token reached the log");
}

/// A store config for `url` with one secret `{id}/db` read into `out/db`.
fn one_secret(d: &Path, url: &str, id: &str) -> String {
    with_store(url).secret_json(db_secret(d, id)).build()
}

/// EKS Pod Identity / ECS (a container credentials endpoint with its
/// authorization token in a file) and IMDSv2 (token, role, credentials),
/// each played by a small local server; the reads go to moto.
#[test]
fn container_credentials_and_instance_metadata() {
    use std::sync::{Arc, Mutex};
    let Some(m) = moto(None) else { return };
    let id = unique("chain");
    boto(
        &m.url,
        "setup",
        "setup",
        &format!("c('secretsmanager').create_secret(Name='{id}/db', SecretString='{{\"password\":\"from-chain\"}}')"),
    );
    let creds = br#"{"AccessKeyId":"ASIACHAIN","SecretAccessKey":"CANARY-chain-secret","Token":"CANARY-chain-token","Expiration":"2099-01-01T00:00:00Z"}"#;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&seen);
    let port = common::serve_http_with_line(move |line, _| {
        log.lock().unwrap().push(line.to_string());
        if line.starts_with("PUT /latest/api/token") {
            ("200 OK", "text/plain", b"imds-session".to_vec())
        } else if line.starts_with("GET /latest/meta-data/iam/security-credentials/ ") {
            ("200 OK", "text/plain", b"node-role\n".to_vec())
        } else if line.contains("/security-credentials/node-role") || line.starts_with("GET /creds")
        {
            ("200 OK", "application/json", creds.to_vec())
        } else {
            ("404 Not Found", "text/plain", Vec::new())
        }
    });
    let local = format!("http://127.0.0.1:{port}");
    // Container credentials, the token from a file.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pod-identity-token"), "pod-identity").unwrap();
    let token_file = d.join("pod-identity-token").display().to_string();
    let uri = format!("{local}/creds");
    let s = Sync::start(
        d,
        &one_secret(d, &m.url, &id),
        "http://127.0.0.1:1",
        &[
            ("VAULT_TOKEN", "unused"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.as_str(),
            ),
        ],
    );
    s.wait_until(
        Duration::from_secs(20),
        "read with container credentials",
        || file_has(&d.join("out/db"), "from-chain"),
    );
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("GET /creds")));
    assert!(
        !s.logs().contains("CANARY-chain"),
        "credentials reached the log"
    );
    drop(s);
    // IMDSv2.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Sync::start(
        d,
        &one_secret(d, &m.url, &id),
        "http://127.0.0.1:1",
        &[
            ("VAULT_TOKEN", "unused"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", local.as_str()),
        ],
    );
    s.wait_until(
        Duration::from_secs(20),
        "read with instance metadata",
        || file_has(&d.join("out/db"), "from-chain"),
    );
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.starts_with("PUT /latest/api/token")),
        "{lines:?}"
    );
    assert!(
        !s.logs().contains("CANARY-chain"),
        "credentials reached the log"
    );
}

/// An unreachable AWS endpoint opens that store's circuit breaker (its own,
/// not Vault's): its secret then fails without a request, and a Vault
/// secret beside it keeps syncing.
#[test]
fn an_unreachable_aws_endpoint_opens_its_own_breaker() {
    let bao = require_bao!();
    let vp = unique("aws-breaker");
    bao.kv_put(&vp, json!({"v": "fine"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = with_store(&dead)
        .secret("from-vault", &vp, "1s", &d.join("out/vault"))
        .secret_json(db_secret(d, "gone"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("AWS_ACCESS_KEY_ID", "AKIADEAD"),
            ("AWS_SECRET_ACCESS_KEY", "dead"),
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "2"),
        ],
    );
    s.wait_until(
        Duration::from_secs(20),
        "the AWS store's breaker opens",
        || {
            s.status()["secrets"]["db"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("circuit breaker of this AWS store is open"))
        },
    );
    assert!(file_has(&d.join("out/vault"), "fine"));
    assert_eq!(s.status()["vault"]["circuit_breaker"], "closed");
    assert!(s.logs().contains("AWS calls of this store paused"));
}

/// A reload adds an AWS store and a secret of it (all or nothing, like
/// secrets), and the new secret syncs without a restart.
#[test]
fn a_reload_adds_an_aws_store() {
    let bao = require_bao!();
    let Some(m) = moto(None) else { return };
    let id = unique("reload");
    boto(
        &m.url,
        "k",
        "s",
        &format!("c('secretsmanager').create_secret(Name='{id}/db', SecretString='{{\"password\":\"added\"}}')"),
    );
    let vp = unique("aws-reload");
    bao.kv_put(&vp, json!({"v": "v"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = ConfigBuilder::new()
        .secret("from-vault", &vp, "1s", &d.join("out/vault"))
        .build();
    let s = Sync::start(
        d,
        &first,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    );
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&d.join("out/vault"), "v")
    });
    let second = with_store(&m.url)
        .secret("from-vault", &vp, "1s", &d.join("out/vault"))
        .secret_json(db_secret(d, &id))
        .build();
    s.write_config(d, &second);
    s.signal(libc::SIGHUP);
    s.wait_until(
        Duration::from_secs(15),
        "the AWS secret after the reload",
        || file_has(&d.join("out/db"), "added"),
    );
    assert_eq!(
        s.metric(r#"config_reloads_total{result="success"}"#),
        Some(1.0)
    );
}
