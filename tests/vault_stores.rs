//! Named Vault stores (`secretStores` with `provider: vault`) against two
//! real OpenBao dev servers: the shared one (`secretStore`) and a second
//! one this test binary starts. Each store has its own sessions, token and
//! breaker; a broken store fails its own secrets only; a reload adds,
//! changes and removes stores all or nothing.

mod common;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use common::{file_has, unique, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// The second server (plain HTTP, a KV v1 mount at `kv1`), shared by the
/// tests of this binary; SIGKILLed when the test process exits.
fn second() -> Option<&'static Bao> {
    static B: OnceLock<Option<Bao>> = OnceLock::new();
    B.get_or_init(|| {
        let bin = common::bao_bin()?;
        let host = common::start_bao(&bin, common::free_port(), &[]);
        common::wait_healthy(&host);
        let b = Bao::at(format!("http://{host}"), bin);
        b.ensure_mount("kv1", r#"{"type":"kv","options":{"version":"1"}}"#);
        Some(b)
    })
    .as_ref()
}

/// Writes `{"pw": value}` at `kv1/<path>` on `b`.
fn kv1_put(b: &Bao, path: &str, value: &str) {
    b.api(
        "POST",
        &format!("/v1/kv1/{path}"),
        Some(&json!({ "pw": value }).to_string()),
    );
}

/// A secret of store `store` reading field `pw` of `kv1/<path>`.
fn of_store(name: &str, store: &str, path: &str, file: &Path) -> serde_json::Value {
    json!({"name": name, "store": store, "path": path, "refreshInterval": "1s",
        "files": [{"path": file, "key": "pw"}]})
}

/// Store `b`: the second server, AppRole, KV v1 at `kv1`.
fn store_b(b: &Bao, role_id: &str, secret_id: &str) -> serde_json::Value {
    json!({"provider": "vault", "address": b.addr, "authMethod": "approle",
        "roleId": role_id, "secretId": secret_id, "mountPath": "kv1", "kvVersion": "v1"})
}

#[test]
fn two_vault_stores_sync_side_by_side_and_a_broken_one_fails_alone() {
    let a = require_bao!();
    let Some(b) = second() else { return };
    let (role_id, secret_id) = b.approle(&unique("stores"), "1h");
    let canary = "CANARY-store-b-51e0";
    let pa = unique("stores-a");
    let pb = unique("stores-b");
    a.kv_put(&pa, json!({"v": "from-a"}));
    kv1_put(b, &pb, &format!("{canary}-1"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Store `broken` is the second server with a token it does not know.
    // VAULT_TOKEN (the root token, which that server would take) is the
    // default store's only: a named store never reads the variables.
    let config = ConfigBuilder::new()
        .named_store("b", store_b(b, &role_id, &secret_id))
        .named_store(
            "broken",
            json!({"provider": "vault", "address": b.addr, "token": "not-a-token",
                "mountPath": "kv1", "kvVersion": "v1"}),
        )
        .secret("one", &pa, "1s", &d.join("out/one"))
        .secret_json(of_store("two", "b", &pb, &d.join("out/two")))
        .secret_json(of_store("three", "broken", &pb, &d.join("out/three")))
        .build();
    let s = Sync::start(d, &config, &a.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    s.wait_until(Duration::from_secs(20), "both stores' files", || {
        file_has(&d.join("out/one"), "from-a")
            && file_has(&d.join("out/two"), &format!("{canary}-1"))
    });
    // Vault answers an unknown token with 403: permission denied.
    s.wait_until(Duration::from_secs(15), "store broken is refused", || {
        s.status()["secrets"]["three"]["last_error_kind"] == "permission_denied"
    });
    assert!(!d.join("out/three").exists());
    assert_eq!(s.get("/ready").unwrap().0, 200);
    // A new value on the second server reaches store b's file.
    kv1_put(b, &pb, &format!("{canary}-2"));
    s.wait_until(Duration::from_secs(15), "rotation through store b", || {
        file_has(&d.join("out/two"), &format!("{canary}-2"))
    });
    let st = s.status();
    assert_eq!(st["secrets"]["two"]["path"], format!("kv1/{pb}"), "{st}");
    assert_eq!(st["vault"]["circuit_breaker"], "closed", "{st}");
    let stores = &st["vault"]["stores"];
    assert_eq!(stores["b"]["circuit_breaker"], "closed", "{st}");
    assert!(
        stores["b"]["token_ttl_seconds"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "{st}"
    );
    assert!(stores["broken"].is_object(), "{st}");
    // The default store's secret is still read on schedule.
    a.kv_put(&pa, json!({"v": "from-a-2"}));
    s.wait_until(Duration::from_secs(15), "store a keeps syncing", || {
        file_has(&d.join("out/one"), "from-a-2")
    });
    let logs = s.logs();
    let metrics = s.get("/metrics").unwrap().1;
    for leak in [canary, secret_id.as_str(), "not-a-token"] {
        assert!(!logs.contains(leak), "{leak} in the log");
        assert!(!st.to_string().contains(leak), "{leak} in /status");
        assert!(!metrics.contains(leak), "{leak} in /metrics");
    }
}

/// Writes `config` and sends SIGHUP, then waits (15 s) for `cond`.
fn reload(s: &Sync, d: &Path, config: &ConfigBuilder, what: &str, cond: impl FnMut() -> bool) {
    s.write_config(d, &config.build());
    s.signal(libc::SIGHUP);
    s.wait_until(Duration::from_secs(15), what, cond);
}

/// A reload adds a Vault store and a secret of it, then changes the store
/// (its secret reads with the new one, the default store's token is kept),
/// then removes both.
#[test]
fn a_reload_adds_changes_and_removes_a_vault_store() {
    let a = require_bao!();
    let Some(b) = second() else { return };
    let (role_id, secret_id) = b.approle(&unique("reload"), "1h");
    let pa = unique("reload-a");
    let pb = unique("reload-b");
    a.kv_put(&pa, json!({"v": "a"}));
    kv1_put(b, &pb, "b-value");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let only_a = ConfigBuilder::new().secret("one", &pa, "1s", &d.join("out/one"));
    let s = Sync::start(d, &only_a.build(), &a.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&d.join("out/one"), "a")
    });
    let connecting = |s: &Sync| s.logs().matches("connecting to Vault").count();
    assert_eq!(connecting(&s), 1, "{}", s.logs());

    // 1. Add store b and its secret.
    let with_b = only_a
        .clone()
        .named_store("b", store_b(b, &role_id, &secret_id))
        .secret_json(of_store("two", "b", &pb, &d.join("out/two")));
    reload(&s, d, &with_b, "store b's secret after the reload", || {
        file_has(&d.join("out/two"), "b-value")
    });
    // Only store b connected anew: secretStore kept its session.
    assert_eq!(connecting(&s), 2, "{}", s.logs());

    // 2. Change store b to a secret id the server does not know: its secret
    // reads with the new session at once and fails; store a is untouched.
    let broken_b = only_a
        .clone()
        .named_store(
            "b",
            store_b(b, &role_id, "00000000-0000-0000-0000-000000000000"),
        )
        .secret_json(of_store("two", "b", &pb, &d.join("out/two")));
    reload(&s, d, &broken_b, "store b fails after its change", || {
        s.status()["secrets"]["two"]["last_error_kind"] == "auth"
    });
    assert_eq!(connecting(&s), 3, "{}", s.logs());
    assert!(
        file_has(&d.join("out/two"), "b-value"),
        "the last good file stays"
    );
    a.kv_put(&pa, json!({"v": "a-2"}));
    s.wait_until(Duration::from_secs(15), "store a keeps syncing", || {
        file_has(&d.join("out/one"), "a-2")
    });

    // 3. Remove store b and its secret.
    reload(&s, d, &only_a, "store b removed", || {
        let st = s.status();
        st["secrets"]["two"].is_null()
            && st["vault"]["stores"]
                .as_object()
                .is_some_and(|m| m.is_empty())
    });
    assert_eq!(
        s.metric(r#"config_reloads_total{result="success"}"#),
        Some(3.0)
    );
    assert!(!s.logs().contains(&secret_id));
}

/// `check` names a named Vault store's fields, and refuses a secret of an
/// unknown store listing every store.
#[test]
fn check_validates_named_vault_stores() {
    let (code, out, err) = common::check_config(
        "secretStore: {address: http://127.0.0.1:8200, token: t}\nsecretStores:\n  b: {provider: vault, authMethod: approle, roleId: r, region: eu-west-1}\n  s3: {provider: aws, region: eu-west-1, mountPath: kv}\nsecrets:\n  - {name: one, store: b, path: p, files: [{path: /tmp/x/one, key: v}]}\n  - {name: two, store: nope, path: p, files: [{path: /tmp/x/two, key: v}]}\n",
    );
    assert_eq!(code, 2, "{out}{err}");
    for want in [
        "secretStores.b.address: no Vault address: set secretStores.b.address",
        "secretStores.b.region: applies to an AWS store",
        "secretStores.s3.mountPath: applies to a Vault store (provider: vault)",
        "secrets[1] \"two\".store: \"nope\" is not a store (secretStores has: b, s3",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
}
