//! Reloads and the token lifecycle against the real OpenBao (shared dev
//! server with a file audit device, so Vault's own request count is checked).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{file_has, unique, wait_for, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

fn templated(name: &str, path: &str, out: &Path, template: &str) -> serde_json::Value {
    json!({
        "name": name,
        "path": path,
        "refreshInterval": "1h",
        "template": {"data": {"v": template}},
        "files": [{"path": out}],
    })
}

/// Replaces the config the way editors do: write elsewhere, rename over.
fn replace_config(dir: &Path, content: &str) {
    let tmp = dir.join(".config.yaml.new");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join("config.yaml")).unwrap();
}

struct Paths {
    keep: String,
    change: String,
    remove: String,
    add: String,
}

fn seed(bao: &common::Bao) -> Paths {
    let p = Paths {
        keep: unique("keep"),
        change: unique("change"),
        remove: unique("remove"),
        add: unique("add"),
    };
    for (path, v) in [
        (&p.keep, "K"),
        (&p.change, "C"),
        (&p.remove, "R"),
        (&p.add, "A"),
    ] {
        bao.kv_put(path, json!({ "v": v }));
    }
    p
}

/// `keep`, `change` (rendered with `change_template`) and a third secret.
fn config_with(p: &Paths, d: &Path, change_template: &str, third: (&str, &str)) -> String {
    let (name, path) = third;
    ConfigBuilder::new()
        .secret_json(templated("keep", &p.keep, &d.join("keep"), "{{ .v }}"))
        .secret_json(templated(
            "change",
            &p.change,
            &d.join("change"),
            change_template,
        ))
        .secret_json(templated(name, path, &d.join(name), "{{ .v }}"))
        .build()
}

fn config_a(p: &Paths, d: &Path) -> String {
    config_with(p, d, "{{ .v }}", ("remove", &p.remove))
}

fn config_b(p: &Paths, d: &Path) -> String {
    config_with(p, d, "changed={{ .v }}", ("add", &p.add))
}

/// The checks both reload paths share: on disk, in /status, and in Vault's
/// audit log (the unchanged secret is not fetched again).
fn assert_reloaded(bao: &common::Bao, s: &Sync, p: &Paths, d: &Path) {
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("add"), "A") && file_has(&d.join("change"), "changed=C")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let st = s.status();
    let names: Vec<&String> = st["secrets"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["add", "change", "keep"], "{st}");
    // The removed secret's file is left as it was (no data lost).
    assert!(file_has(&d.join("remove"), "R"));
    assert_eq!(
        bao.reads_of(&p.keep),
        1,
        "the unchanged secret was fetched again"
    );
    assert_eq!(bao.reads_of(&p.remove), 1);
    assert_eq!(bao.reads_of(&p.change), 2);
}

fn assert_invalid_reload_keeps_running(s: &mut Sync, bao: &common::Bao, p: &Paths) {
    s.wait_until(
        Duration::from_secs(10),
        "the reload counted as failed",
        || s.metric(r#"config_reloads_total{result="failure"}"#) == Some(1.0),
    );
    assert!(
        s.logs().contains("refreshInterval"),
        "the errors are not logged"
    );
    assert!(s.alive());
    assert_eq!(s.status()["total"], 3);
    assert_eq!(bao.reads_of(&p.keep), 1);
}

const BROKEN: &str =
    "secrets:\n  - name: x\n    path: p\n    refreshInterval: soon\n    files: [{path: /tmp/x}]\n";

#[test]
fn reload_on_file_change() {
    let bao = require_bao!();
    let p = seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Exact intervals (no splay): the test counts Vault reads.
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("WATCH_CONFIG", "true"),
        ("WATCH_DEBOUNCE", "200ms"),
        ("REFRESH_JITTER", "0"),
    ];
    let mut s = Sync::start(d, &config_a(&p, d), &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("remove"), "R") && file_has(&d.join("keep"), "K")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    replace_config(d, &config_b(&p, d));
    assert_reloaded(bao, &s, &p, d);
    replace_config(d, BROKEN);
    assert_invalid_reload_keeps_running(&mut s, bao, &p);
}

#[test]
fn reload_on_sighup() {
    let bao = require_bao!();
    let p = seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut s = Sync::start(
        d,
        &config_a(&p, d),
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("REFRESH_JITTER", "0")],
    );
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("remove"), "R") && file_has(&d.join("keep"), "K")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Without WATCH_CONFIG a file change alone does nothing...
    std::fs::write(d.join("config.yaml"), config_b(&p, d)).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert!(!d.join("add").exists());
    // ...and SIGHUP reloads it.
    s.signal(libc::SIGHUP);
    assert_reloaded(bao, &s, &p, d);
    std::fs::write(d.join("config.yaml"), BROKEN).unwrap();
    s.signal(libc::SIGHUP);
    assert_invalid_reload_keeps_running(&mut s, bao, &p);
}

#[test]
fn reload_survives_configmap_symlink_swap() {
    let bao = require_bao!();
    let a = unique("cm-a");
    let b = unique("cm-b");
    bao.kv_put(&a, json!({"v": "first"}));
    bao.kv_put(&b, json!({"v": "second"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    let cm = d.join("configmap");
    std::fs::create_dir(&cm).unwrap();
    // The layout kubelet makes: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>
    let version = |n: u32, path: &str| {
        let v = cm.join(format!("..2026_11_23_00_00_0{n}.000"));
        std::fs::create_dir(&v).unwrap();
        std::fs::write(
            v.join("config.yaml"),
            ConfigBuilder::new()
                .secret_json(templated("s", path, &out.join("s"), "{{ .v }}"))
                .build(),
        )
        .unwrap();
        v
    };
    let v1 = version(1, &a);
    std::os::unix::fs::symlink(v1.file_name().unwrap(), cm.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.yaml", cm.join("config.yaml")).unwrap();
    let cfg = cm.join("config.yaml");
    let config_text = std::fs::read_to_string(&cfg).unwrap();
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("WATCH_CONFIG", "true"),
        ("WATCH_DEBOUNCE", "200ms"),
        ("CONFIG_FILE", cfg.to_str().unwrap()),
    ];
    let s = Sync::start(d, &config_text, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        file_has(&out.join("s"), "first")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // kubelet's update: new timestamped dir, ..data_tmp -> it, rename over ..data.
    let v2 = version(2, &b);
    std::os::unix::fs::symlink(v2.file_name().unwrap(), cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    wait_for(Duration::from_secs(15), || {
        file_has(&out.join("s"), "second")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
}

#[test]
fn revoked_approle_token_leads_to_relogin() {
    let bao = require_bao!();
    let path = unique("revoke");
    bao.kv_put(&path, json!({"v": "before"}));
    let (role_id, secret_id) = bao.approle_at("approle-revoke", "revoker", "1h");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let config = ConfigBuilder::new()
        .store("authMethod", "approle")
        .store("authMountPath", "approle-revoke")
        .secret("s", &path, "1s", &out)
        .build();
    let env = [
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ];
    let s = Sync::start(dir.path(), &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || file_has(&out, "before"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Revoke every token this auth mount has issued.
    bao.api(
        "PUT",
        "/v1/sys/leases/revoke-prefix/auth/approle-revoke/login",
        Some("{}"),
    );
    bao.kv_put(&path, json!({"v": "after"}));
    wait_for(Duration::from_secs(15), || file_has(&out, "after"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Logged in again: a second login request.
    assert!(
        s.metric(r#"vault_request_duration_seconds_count{operation="auth"}"#)
            .unwrap_or(0.0)
            >= 2.0,
        "{}",
        s.logs()
    );
    assert!(!s.logs().contains(&secret_id));
}

fn keeps_working_over_several_ttls(s: &Sync, bao: &common::Bao, path: &str, out: &Path) {
    wait_for(Duration::from_secs(15), || file_has(out, "v0"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Three TTLs of 3s, changing the secret each second.
    for i in 1..=9 {
        std::thread::sleep(Duration::from_secs(1));
        bao.kv_put(path, json!({"v": format!("v{i}")}));
    }
    wait_for(Duration::from_secs(5), || file_has(out, "v9"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let ttl = s.status()["vault"]["token_ttl_seconds"].as_u64().unwrap();
    assert!(ttl <= 3, "token TTL {ttl}s");
    let renewals = s
        .metric(r#"vault_request_duration_seconds_count{operation="renew"}"#)
        .unwrap_or(0.0);
    let failed_renewals = s
        .metric(r#"vault_request_errors_total{kind="auth",operation="renew"}"#)
        .unwrap_or(0.0);
    assert_eq!(failed_renewals, 0.0, "{}", s.logs());
    assert!(
        renewals >= 3.0,
        "only {renewals} renewals in 9s with a 3s TTL\n{}",
        s.logs()
    );
    assert!(!s.logs().contains("permission denied"), "{}", s.logs());
}

#[test]
fn short_lived_approle_token_is_renewed() {
    let bao = require_bao!();
    let path = unique("renew-approle");
    bao.kv_put(&path, json!({"v": "v0"}));
    let (role_id, secret_id) = bao.approle_at("approle-short", "short", "3s");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let config = ConfigBuilder::new()
        .store("authMethod", "approle")
        .store("authMountPath", "approle-short")
        .secret("s", &path, "1s", &out)
        .build();
    let env = [
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ];
    let s = Sync::start(dir.path(), &config, &bao.addr, &env);
    keeps_working_over_several_ttls(&s, bao, &path, &out);
}

#[test]
fn short_lived_static_token_is_renewed() {
    let bao = require_bao!();
    let path = unique("renew-token");
    bao.kv_put(&path, json!({"v": "v0"}));
    bao.api(
        "PUT",
        "/v1/sys/policies/acl/renew-test",
        Some(r#"{"policy":"path \"secret/data/*\" { capabilities = [\"read\"] }"}"#),
    );
    let created: serde_json::Value = serde_json::from_str(&bao.api(
        "POST",
        "/v1/auth/token/create",
        Some(r#"{"policies":["renew-test"],"ttl":"3s","explicit_max_ttl":"1h","renewable":true}"#),
    ))
    .unwrap();
    let token = created["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let config = ConfigBuilder::new().secret("s", &path, "1s", &out).build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", token.as_str())],
    );
    keeps_working_over_several_ttls(&s, bao, &path, &out);
    assert!(!s.logs().contains(&token), "the token leaked into the logs");
}

#[test]
fn secret_store_change_reconfigures_vault_and_restarts_secrets() {
    let bao = require_bao!();
    bao.ensure_mount("kv1", r#"{"type":"kv","options":{"version":"1"}}"#);
    let path = unique("store-switch");
    bao.kv_put(&path, json!({"v": "from-kv2"}));
    bao.api(
        "POST",
        &format!("/v1/kv1/{path}"),
        Some(r#"{"v":"from-kv1"}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("v");
    let config = |c: ConfigBuilder| c.secret("s", &path, "1h", &out).build();
    let secrets = config(ConfigBuilder::new());
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("WATCH_CONFIG", "true"),
        ("WATCH_DEBOUNCE", "200ms"),
    ];
    let s = Sync::start(d, &secrets, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || file_has(&out, "from-kv2"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Same secret list, other store settings: the secret is fetched again
    // (its refresh interval of 1h would not have done it).
    replace_config(
        d,
        &config(
            ConfigBuilder::new()
                .store("kvVersion", "v1")
                .store("mountPath", "kv1"),
        ),
    );
    s.wait_until(Duration::from_secs(15), "read with the new store", || {
        file_has(&out, "from-kv1")
    });
    assert_eq!(
        s.metric(r#"config_reloads_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(s.status()["secrets"]["s"]["path"], format!("kv1/{path}"));
}
