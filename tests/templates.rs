//! Templates people already write for External Secrets, against a real
//! OpenBao: ESO's functions on a PKCS#12 keystore made by openssl (the
//! fixture), a `templateFile` that reloads when it changes, and a binary
//! file written with `encoding: base64`.

mod common;

use std::time::Duration;

use common::{unique, wait_for, Sync, ROOT_TOKEN};
use serde_json::json;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pki/");

/// PEM blocks of `text` with their bodies joined (line lengths aside).
fn blocks(text: &str) -> Vec<String> {
    text.split("-----END ")
        .filter_map(|b| b.split("-----BEGIN ").nth(1))
        .map(|b| b.chars().filter(|c| !c.is_whitespace()).collect())
        .collect()
}

#[test]
fn eso_functions_template_file_and_binary_files() {
    let Some(bao) = common::bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p12 = std::fs::read(format!("{FIXTURES}leaf.p12")).unwrap();
    let path = unique("eso");
    bao.kv_put(
        &path,
        json!({"keystore": common::b64(&p12), "password": "changeit"}),
    );
    std::fs::write(
        d.join("key.tmpl"),
        "{{ .keystore | b64dec | pkcs12keyPass .password }}",
    )
    .unwrap();
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let config = json!({
        "secretStore": {"address": bao.addr},
        "secrets": [{
            "name": "tls",
            "key": path,
            "template": {"data": {
                "tls.crt": "{{ .keystore | b64dec | pkcs12certPass \"changeit\" | filterCertChain \"leaf\" }}",
                "tls.key": {"templateFile": "key.tmpl"},
                "app.p12": "{{ .keystore }}",
            }},
            "files": [
                {"path": out.join("tls.crt"), "key": "tls.crt"},
                {"path": out.join("tls.key"), "key": "tls.key", "mode": "0600"},
                {"path": out.join("app.p12"), "key": "app.p12", "encoding": "base64"},
            ],
        }],
    })
    .to_string();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("WATCH_CONFIG", "true"),
            ("WATCH_DEBOUNCE", "100ms"),
            ("LOG_LEVEL", "trace"),
        ],
    );
    wait_for(Duration::from_secs(15), || out.join("app.p12").exists())
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // The binary file is the keystore's bytes, exactly.
    assert_eq!(std::fs::read(out.join("app.p12")).unwrap(), p12);
    let fixture = |n: &str| std::fs::read_to_string(format!("{FIXTURES}{n}")).unwrap();
    assert_eq!(
        blocks(&std::fs::read_to_string(out.join("tls.crt")).unwrap()),
        blocks(&fixture("leaf.pem"))
    );
    let key = std::fs::read_to_string(out.join("tls.key")).unwrap();
    assert_eq!(blocks(&key), blocks(&fixture("leaf.pk8.pem")));

    // The template file changes: reloaded like the config, the key file
    // re-rendered.
    std::fs::write(
        d.join("key.tmpl"),
        "# managed by secrets-sync\n{{ .keystore | b64dec | pkcs12keyPass .password }}",
    )
    .unwrap();
    wait_for(Duration::from_secs(15), || {
        std::fs::read_to_string(out.join("tls.key"))
            .is_ok_and(|k| k.starts_with("# managed by secrets-sync\n-----BEGIN PRIVATE KEY"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));

    // Neither the password nor the key nor the keystore in any log line.
    let logs = s.logs();
    for canary in [
        "changeit",
        &blocks(&key)[0][20..60],
        &common::b64(&p12)[40..80],
    ] {
        assert!(!logs.contains(canary), "{canary} in the log");
    }
    let status = s.get("/status").unwrap().1;
    assert!(!status.contains("changeit"), "{status}");
}

/// A value that is not base64 under `encoding: base64`: the sync fails,
/// the error names the file and never quotes the content.
#[test]
fn encoding_base64_of_non_base64_content_is_refused_by_name() {
    let Some(bao) = common::bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = unique("not-b64");
    bao.kv_put(&path, json!({"v": "CANARY not base64 !"}));
    let out = dir.path().join("v.bin");
    let config = json!({
        "secretStore": {"address": bao.addr},
        "secrets": [{"name": "b", "key": path,
                     "files": [{"path": out, "key": "v", "encoding": "base64"}]}],
    })
    .to_string();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
    );
    wait_for(Duration::from_secs(15), || {
        s.status()["secrets"]["b"]["consecutive_failures"].as_u64() >= Some(1)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let err = s.status()["secrets"]["b"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("v.bin") && err.contains("encoding: base64"),
        "{err}"
    );
    assert!(!s.logs().contains("CANARY"), "content in the log");
    assert!(!out.exists());
}
