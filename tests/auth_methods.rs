//! Kubernetes and JWT auth against the real OpenBao. The JWTs are signed
//! with a key pair made here (openssl); for Kubernetes auth, OpenBao asks a
//! small TokenReview endpoint in this test, the only stand-in for the
//! Kubernetes API.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{read, unique, wait_for, ConfigBuilder, Sync};
use serde_json::{json, Value};

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key pair: (private key file, public key PEM).
fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("signing-key.pem");
    let k = key.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        k,
    ]);
    let public = String::from_utf8(openssl(&["pkey", "-in", k, "-pubout"])).unwrap();
    (key, public)
}

fn sign_jwt(key: &Path, claims: &Value) -> String {
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    let input = format!("{header}.{payload}");
    let msg = key.with_extension("msg");
    std::fs::write(&msg, &input).unwrap();
    let sig = openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        key.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    format!("{input}.{}", b64url(&sig))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn read_policy(bao: &common::Bao) {
    bao.api(
        "PUT",
        "/v1/sys/policies/acl/auth-read",
        Some(r#"{"policy":"path \"secret/data/*\" { capabilities = [\"read\"] }"}"#),
    );
}

#[test]
fn jwt_auth_logs_in_with_a_token_file() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keypair(d);
    read_policy(bao);
    let mount = unique("jwt");
    bao.api(
        "POST",
        &format!("/v1/sys/auth/{mount}"),
        Some(r#"{"type":"jwt"}"#),
    );
    bao.api(
        "POST",
        &format!("/v1/auth/{mount}/config"),
        Some(&json!({"jwt_validation_pubkeys": [public]}).to_string()),
    );
    bao.api(
        "POST",
        &format!("/v1/auth/{mount}/role/ci"),
        Some(r#"{"role_type":"jwt","user_claim":"sub","bound_audiences":["secrets-sync"],"token_policies":["auth-read"],"token_ttl":"1h"}"#),
    );
    let path = unique("jwt-secret");
    bao.kv_put(&path, json!({"v": "via-jwt"}));
    let jwt = sign_jwt(
        &key,
        &json!({"sub": "ci-job", "aud": "secrets-sync", "iat": now(), "nbf": now() - 5, "exp": now() + 600}),
    );
    let token_file = d.join("jwt");
    std::fs::write(&token_file, format!("{jwt}\n")).unwrap();
    let out = d.join("out");
    let config = ConfigBuilder::new()
        .store("authMethod", "jwt")
        .store("role", "ci")
        .store("authMountPath", mount.as_str())
        .store("tokenPath", token_file.to_str().unwrap())
        .secret_json(json!({"name": "s", "path": path, "files": [{"path": out, "key": "v"}]}))
        .build();
    let s = Sync::start(d, &config, &bao.addr, &[]);
    wait_for(Duration::from_secs(15), || {
        read(&out).as_deref() == Some("via-jwt")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(
        s.metric(r#"vault_request_duration_seconds_count{operation="auth"}"#)
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        !s.logs().contains(&jwt[jwt.len() - 20..]),
        "the JWT leaked into the logs"
    );
}

/// A TokenReview endpoint that approves the tokens in `valid`; returns its
/// port and the tokens it was asked about.
fn token_review_server(valid: Arc<Mutex<Vec<String>>>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let port = common::serve_http(move |body| {
        let review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let token = review["spec"]["token"].as_str().unwrap_or("").to_string();
        log.lock().unwrap().push(token.clone());
        let status = if valid.lock().unwrap().contains(&token) {
            json!({"authenticated": true, "user": {"username": "system:serviceaccount:shop:app", "uid": "uid-app", "groups": ["system:serviceaccounts"]}})
        } else {
            json!({"authenticated": false, "error": "invalid token"})
        };
        let answer = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status});
        (
            "201 Created",
            "application/json",
            answer.to_string().into_bytes(),
        )
    });
    (port, seen)
}

fn sa_token(key: &Path, jti: &str) -> String {
    sign_jwt(
        key,
        &json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:shop:app",
            "jti": jti,
            "kubernetes.io/serviceaccount/namespace": "shop",
            "kubernetes.io/serviceaccount/service-account.name": "app",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-app",
            "kubernetes.io/serviceaccount/secret.name": "app-token",
        }),
    )
}

#[test]
fn kubernetes_auth_rereads_the_rotated_token_at_every_login() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, _) = keypair(d);
    let first = sa_token(&key, "first");
    let valid = Arc::new(Mutex::new(vec![first.clone()]));
    let (port, seen) = token_review_server(Arc::clone(&valid));
    // Required by OpenBao; unused, the endpoint here is plain HTTP.
    let ca = String::from_utf8(openssl(&[
        "req",
        "-x509",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=test-ca",
        "-days",
        "1",
    ]))
    .unwrap();
    read_policy(bao);
    let mount = unique("k8s");
    bao.api(
        "POST",
        &format!("/v1/sys/auth/{mount}"),
        Some(r#"{"type":"kubernetes"}"#),
    );
    bao.api(
        "POST",
        &format!("/v1/auth/{mount}/config"),
        Some(&json!({"kubernetes_host": format!("http://127.0.0.1:{port}"), "kubernetes_ca_cert": ca, "disable_local_ca_jwt": true, "token_reviewer_jwt": "reviewer"}).to_string()),
    );
    bao.api(
        "POST",
        &format!("/v1/auth/{mount}/role/app"),
        Some(r#"{"bound_service_account_names":["app"],"bound_service_account_namespaces":["shop"],"token_policies":["auth-read"],"token_ttl":"1h"}"#),
    );
    let path = unique("k8s-secret");
    bao.kv_put(&path, json!({"v": "via-k8s"}));
    let token_file = d.join("token");
    std::fs::write(&token_file, &first).unwrap();
    let out = d.join("out");
    let config = ConfigBuilder::new()
        .store("authMethod", "kubernetes")
        .store("role", "app")
        .store("authMountPath", mount.as_str())
        .store("tokenPath", token_file.to_str().unwrap())
        .secret("s", &path, "1s", &out)
        .build();
    let s = Sync::start(d, &config, &bao.addr, &[]);
    wait_for(Duration::from_secs(15), || {
        read(&out).as_deref() == Some("via-k8s")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(seen.lock().unwrap().contains(&first));
    // kubelet rotates the token; the old one stops being valid and every
    // Vault token this mount issued is revoked.
    let second = sa_token(&key, "second");
    std::fs::write(&token_file, &second).unwrap();
    *valid.lock().unwrap() = vec![second.clone()];
    bao.api(
        "PUT",
        &format!("/v1/sys/leases/revoke-prefix/auth/{mount}/login"),
        Some("{}"),
    );
    bao.kv_put(&path, json!({"v": "after-rotation"}));
    wait_for(Duration::from_secs(15), || {
        read(&out).as_deref() == Some("after-rotation")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(
        seen.lock().unwrap().contains(&second),
        "the rotated token was not used"
    );
    assert!(!s.logs().contains(&second[second.len() - 20..]));
}
