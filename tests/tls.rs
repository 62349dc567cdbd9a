//! TLS to Vault: a `bao server -dev-tls` with its own generated CA.
//! Verified with VAULT_CACERT, refused without it, accepted with
//! VAULT_SKIP_VERIFY.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::{read, unique, wait_for, ConfigBuilder, Sync, ROOT_TOKEN};

struct TlsBao {
    /// https://localhost:PORT (the certificate names localhost and 127.0.0.1).
    addr: String,
    ca: PathBuf,
}

fn tls_bao() -> Option<&'static TlsBao> {
    static TLS: OnceLock<Option<TlsBao>> = OnceLock::new();
    TLS.get_or_init(|| {
        let bin = common::bao_bin()?;
        let dir = common::test_tmp().join(unique("secrets-sync-tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = common::free_port();
        common::start_bao(
            &bin,
            port,
            &[
                "-dev-tls".into(),
                format!("-dev-tls-cert-dir={}", dir.display()),
            ],
        );
        let ca = dir.join("vault-ca.pem");
        wait_for(Duration::from_secs(30), || ca.is_file()).expect("bao -dev-tls wrote no CA");
        // Seed over TLS with the bao CLI itself, which proves the server is up.
        let seeded = wait_for(Duration::from_secs(30), || {
            std::process::Command::new(&bin)
                .args(["kv", "put", "-mount=secret", "tls-test", "v=over-tls"])
                .env("VAULT_ADDR", format!("https://127.0.0.1:{port}"))
                .env("VAULT_TOKEN", ROOT_TOKEN)
                .env("VAULT_CACERT", &ca)
                .output()
                .is_ok_and(|o| o.status.success())
        });
        seeded.expect("could not seed the TLS dev server");
        Some(TlsBao {
            addr: format!("https://localhost:{port}"),
            ca,
        })
    })
    .as_ref()
}

fn config(out: &std::path::Path) -> String {
    ConfigBuilder::new()
        .secret_json(serde_json::json!({"name": "t", "path": "tls-test", "files": [{"path": out, "key": "v"}]}))
        .build()
}

#[test]
fn verifies_with_vault_cacert() {
    let Some(b) = tls_bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let ca = b.ca.display().to_string();
    let s = Sync::start(
        dir.path(),
        &config(&out),
        &b.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_CACERT", &ca)],
    );
    wait_for(Duration::from_secs(15), || {
        read(&out).as_deref() == Some("over-tls")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
}

#[test]
fn unknown_ca_is_refused_and_reported() {
    let Some(b) = tls_bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let mut s = Sync::start(
        dir.path(),
        &config(&out),
        &b.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
    );
    wait_for(Duration::from_secs(15), || {
        s.status()["secrets"]["t"]["consecutive_failures"].as_u64() >= Some(1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let err = s.status()["secrets"]["t"]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        err.contains("cannot reach vault") && err.contains("certificate"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(s.alive());
}

#[test]
fn skip_verify_accepts_the_unknown_ca() {
    let Some(b) = tls_bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let s = Sync::start(
        dir.path(),
        &config(&out),
        &b.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_SKIP_VERIFY", "true")],
    );
    wait_for(Duration::from_secs(15), || {
        read(&out).as_deref() == Some("over-tls")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
}

/// A dev server with a second listener that demands a client certificate
/// (`tls_require_and_verify_client_cert`), the cert auth method enabled, and
/// the certificates for both ends issued by the shared server's PKI engine.
struct MtlsBao {
    /// `https://127.0.0.1:PORT`: the server certificate names only
    /// `vault.test`, so this address verifies only with VAULT_TLS_SERVER_NAME.
    addr: String,
    dir: PathBuf,
}

impl MtlsBao {
    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn issue(b: &common::Bao, mount: &str, cn: &str) -> serde_json::Value {
    let body = serde_json::json!({"common_name": cn, "ttl": "2h"}).to_string();
    let answer = b.api("POST", &format!("/v1/{mount}/issue/any"), Some(&body));
    serde_json::from_str::<serde_json::Value>(&answer).unwrap()["data"].clone()
}

fn mtls_bao() -> Option<&'static MtlsBao> {
    static MTLS: OnceLock<Option<MtlsBao>> = OnceLock::new();
    MTLS.get_or_init(|| {
        let pki_server = common::bao()?;
        let bin = common::bao_bin()?;
        let dir = common::test_tmp().join(unique("secrets-sync-mtls"));
        std::fs::create_dir_all(&dir).unwrap();
        // Certificates from the shared server's PKI engine.
        let mount = unique("mtls-pki");
        pki_server.api(
            "POST",
            &format!("/v1/sys/mounts/{mount}"),
            Some(r#"{"type":"pki","config":{"max_lease_ttl":"24h"}}"#),
        );
        let root = pki_server.api(
            "POST",
            &format!("/v1/{mount}/root/generate/internal"),
            Some(r#"{"common_name":"secrets-sync mtls test CA","ttl":"24h"}"#),
        );
        let ca = serde_json::from_str::<serde_json::Value>(&root).unwrap()["data"]["certificate"]
            .as_str()
            .unwrap()
            .to_string();
        pki_server.api(
            "POST",
            &format!("/v1/{mount}/roles/any"),
            Some(r#"{"allow_any_name":true,"enforce_hostnames":false,"allow_ip_sans":false,"key_type":"ec","key_bits":256}"#),
        );
        let server = issue(pki_server, &mount, "vault.test");
        let client = issue(pki_server, &mount, "sidecar");
        let put = |name: &str, v: &serde_json::Value| {
            std::fs::write(dir.join(name), v.as_str().unwrap()).unwrap();
        };
        std::fs::write(dir.join("ca.pem"), &ca).unwrap();
        put("server.pem", &server["certificate"]);
        put("server.key", &server["private_key"]);
        put("client.pem", &client["certificate"]);
        put("client.key", &client["private_key"]);
        // A CA directory as VAULT_CAPATH knows it: the CA plus a file that
        // holds none.
        std::fs::create_dir_all(dir.join("cadir")).unwrap();
        std::fs::write(dir.join("cadir/ca.pem"), &ca).unwrap();
        std::fs::write(dir.join("cadir/README"), "CA certificates for Vault\n").unwrap();

        let admin_port = common::free_port();
        let tls_port = common::free_port();
        let hcl = dir.join("mtls.hcl");
        std::fs::write(
            &hcl,
            format!(
                r#"listener "tcp" {{
  address = "127.0.0.1:{tls_port}"
  tls_cert_file = "{d}/server.pem"
  tls_key_file = "{d}/server.key"
  tls_client_ca_file = "{d}/ca.pem"
  tls_require_and_verify_client_cert = true
}}
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let admin = common::start_bao(&bin, admin_port, &[format!("-config={}", hcl.display())]);
        common::wait_healthy(&admin);
        let admin = common::Bao::at(format!("http://{admin}"), bin);
        admin.api("POST", "/v1/sys/auth/cert", Some(r#"{"type":"cert"}"#));
        admin.api(
            "POST",
            "/v1/sys/policies/acl/read-mtls",
            Some(r#"{"policy":"path \"secret/data/mtls\" { capabilities = [\"read\"] }"}"#),
        );
        let role = serde_json::json!({"certificate": ca, "token_policies": "read-mtls", "token_ttl": "1h"});
        admin.api(
            "POST",
            "/v1/auth/cert/certs/sidecar",
            Some(&role.to_string()),
        );
        admin.kv_put("mtls", serde_json::json!({"v": "over-mtls"}));
        Some(MtlsBao {
            addr: format!("https://127.0.0.1:{tls_port}"),
            dir,
        })
    })
    .as_ref()
}

fn mtls_config(m: &MtlsBao, out: &std::path::Path, store: serde_json::Value) -> String {
    let mut cfg = serde_json::json!({
        "secretStore": {"address": m.addr},
        "secrets": [{"name": "m", "key": "mtls", "files": [{"path": out, "key": "v"}]}],
    });
    for (k, v) in store.as_object().unwrap() {
        cfg["secretStore"][k] = v.clone();
    }
    serde_json::to_string(&cfg).unwrap()
}

/// The Go tool's TLS fields, cert auth, and the server name override: the
/// login proves the client certificate, the token it gives reads the secret.
#[test]
fn cert_auth_over_mutual_tls() {
    let Some(m) = mtls_bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let store = serde_json::json!({
        "authMethod": "cert",
        "role": "sidecar",
        "tlsCACert": m.file("ca.pem"),
        "tlsClientCert": m.file("client.pem"),
        "tlsClientKey": m.file("client.key"),
    });
    let s = Sync::start(
        dir.path(),
        &mtls_config(m, &out, store),
        &m.addr,
        &[
            ("VAULT_TLS_SERVER_NAME", "vault.test"),
            ("LOG_LEVEL", "trace"),
        ],
    );
    wait_for(Duration::from_secs(20), || {
        read(&out).as_deref() == Some("over-mtls")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let logs = s.logs();
    assert!(logs.contains("\"method\":\"cert\""), "{logs}");
    // Neither the client key nor the token reaches the log.
    let key = std::fs::read_to_string(m.dir.join("client.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!logs.contains(key_body), "client key in the log");
    assert!(!has_token(&logs), "a token in the log");
}

/// Does `text` hold something shaped like an OpenBao service token
/// (`s.` or `hvs.` and at least 24 base62 characters)?
fn has_token(text: &str) -> bool {
    text.match_indices("s.").any(|(i, _)| {
        text[i + 2..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .count()
            >= 24
    })
}

/// The environment variables of the Go tool (and Vault's CLI): a CA
/// directory, the client certificate pair; token auth over mutual TLS.
#[test]
fn capath_and_client_cert_from_the_environment() {
    let Some(m) = mtls_bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let (cadir, cert, key) = (m.file("cadir"), m.file("client.pem"), m.file("client.key"));
    let s = Sync::start(
        dir.path(),
        &mtls_config(m, &out, serde_json::json!({})),
        &m.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("VAULT_CAPATH", &cadir),
            ("VAULT_CLIENT_CERT", &cert),
            ("VAULT_CLIENT_KEY", &key),
            ("VAULT_TLS_SERVER_NAME", "vault.test"),
        ],
    );
    wait_for(Duration::from_secs(20), || {
        read(&out).as_deref() == Some("over-mtls")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
}

/// Without the client certificate the server ends the handshake; without
/// the server name the certificate (`vault.test`) does not match the IP.
#[test]
fn mutual_tls_fails_without_client_cert_or_server_name() {
    let Some(m) = mtls_bao() else { return };
    let (ca, cert, key) = (m.file("ca.pem"), m.file("client.pem"), m.file("client.key"));
    let cases: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "no client certificate",
            vec![
                ("VAULT_CACERT", &ca),
                ("VAULT_TLS_SERVER_NAME", "vault.test"),
            ],
        ),
        (
            "no server name",
            vec![
                ("VAULT_CACERT", &ca),
                ("VAULT_CLIENT_CERT", &cert),
                ("VAULT_CLIENT_KEY", &key),
            ],
        ),
    ];
    for (case, env) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("v");
        let mut env = env;
        env.push(("VAULT_TOKEN", ROOT_TOKEN));
        let mut s = Sync::start(
            dir.path(),
            &mtls_config(m, &out, serde_json::json!({})),
            &m.addr,
            &env,
        );
        wait_for(Duration::from_secs(15), || {
            s.status()["secrets"]["m"]["consecutive_failures"].as_u64() >= Some(1)
        })
        .unwrap_or_else(|e| panic!("{case}: {e}\n{}", s.logs()));
        let err = s.status()["secrets"]["m"]["last_error"]
            .as_str()
            .unwrap()
            .to_lowercase();
        assert!(err.contains("cannot reach vault"), "{case}: {err}");
        assert!(!out.exists(), "{case}");
        assert!(s.alive(), "{case}");
    }
}
