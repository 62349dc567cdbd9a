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
