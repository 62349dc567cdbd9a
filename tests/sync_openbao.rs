//! End-to-end tests against a real OpenBao dev server (one per test binary,
//! a separate KV path per test).

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::{file_has, read, run_to_end, unique, wait_for, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

const SEED: &str = include_str!("../config-examples/seed-example.yaml");

fn token_env() -> Vec<(&'static str, &'static str)> {
    vec![("VAULT_TOKEN", ROOT_TOKEN)]
}

#[test]
fn seed_example_end_to_end_with_token_auth() {
    let bao = require_bao!();
    bao.kv_put(
        "common/ci-cd-accounts/tls/star-k8s-crealogix-net",
        json!({"tlsCrt": "CERT-PEM", "tlsKey": "KEY-PEM"}),
    );
    bao.kv_put(
        "database/prod/credentials",
        json!({"username": "db-user", "password": "db-pass"}),
    );
    let dir = tempfile::tempdir().unwrap();
    // The seed config verbatim, with its /secrets/ files redirected into the
    // test's directory; its address is overridden by VAULT_ADDR.
    let config = SEED.replace("/secrets/", &format!("{}/", dir.path().display()));
    let d = dir.path();
    let mut s = Sync::start(d, &config, &bao.addr, &token_env());
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("db-username"), "db-user") && file_has(&d.join("tls.crt"), "CERT-PEM")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Declaration order: username file <- username key (the Go tool swapped them).
    assert!(file_has(&d.join("db-password"), "db-pass"));
    let mode = |f: &str| std::fs::metadata(d.join(f)).unwrap().mode() & 0o777;
    assert_eq!(mode("tls.crt"), 0o644);
    assert_eq!(mode("db-username"), 0o600);
    assert_eq!(mode("db-password"), 0o600);
    // tls.key asks for owner 1000:1000, which needs root (or CAP_CHOWN).
    if unsafe { libc::geteuid() } == 0 {
        wait_for(Duration::from_secs(10), || {
            file_has(&d.join("tls.key"), "KEY-PEM")
        })
        .unwrap();
        let m = std::fs::metadata(d.join("tls.key")).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid(), m.gid()), (0o600, 1000, 1000));
    } else {
        wait_for(Duration::from_secs(10), || {
            s.status()["secrets"]["tls-cert"]["state"] == "failing"
        })
        .unwrap();
        assert!(!d.join("tls.crt").exists() || read(&d.join("tls.key")).is_none());
    }
    let (code, body) = s.get("/ready").unwrap();
    assert_eq!(code, 200, "{body}");
    wait_for(Duration::from_secs(5), || {
        s.status()["secrets"]["database-creds"]["version"] == 1
    })
    .unwrap_or_else(|e| panic!("{e}: {}", s.status()));
    let st = s.status();
    assert_eq!(
        st["secrets"]["database-creds"]["path"],
        "secret/data/database/prod/credentials"
    );
    assert!(s.alive());
    assert!(s.stop().success());
}

#[test]
fn approle_auth_syncs() {
    let bao = require_bao!();
    let path = unique("approle");
    bao.kv_put(&path, json!({"password": "from-approle"}));
    let (role_id, secret_id) = bao.approle("sync-test", "1h");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pw");
    let config = ConfigBuilder::new()
        .store("authMethod", "approle")
        .secret_json(json!({
            "name": "pw",
            "path": path,
            "files": [{"path": out, "key": "password"}],
        }))
        .build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_ROLE_ID", &role_id), ("VAULT_SECRET_ID", &secret_id)],
    );
    wait_for(Duration::from_secs(15), || file_has(&out, "from-approle"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(
        s.metric(r#"vault_request_duration_seconds_count{operation="auth"}"#)
            .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        !s.logs().contains(&secret_id),
        "secret ID leaked into the logs"
    );
}

#[test]
fn kv_v1_mount_syncs() {
    let bao = require_bao!();
    bao.ensure_mount("kv1", r#"{"type":"kv","options":{"version":"1"}}"#);
    let path = unique("v1");
    bao.api(
        "POST",
        &format!("/v1/kv1/{path}"),
        Some(r#"{"api-key":"v1-value","n":7}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("api-key");
    let n = dir.path().join("n");
    let config = ConfigBuilder::new()
        .store("kvVersion", "v1")
        .store("mountPath", "kv1")
        .secret_json(json!({
            "name": "v1",
            "path": path,
            "files": [{"path": out}, {"path": n}],
        }))
        .build();
    let s = Sync::start(dir.path(), &config, &bao.addr, &token_env());
    wait_for(Duration::from_secs(15), || {
        file_has(&out, "v1-value") && file_has(&n, "7")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // KV v1 has no versions.
    assert!(s.status()["secrets"]["v1"]["version"].is_null());
}

#[test]
fn changes_reach_the_file_and_unchanged_secrets_are_not_rewritten() {
    let bao = require_bao!();
    let path = unique("rotate");
    bao.kv_put(&path, json!({"password": "one"}));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/dir/password");
    let config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "rot",
            "path": path,
            "refreshInterval": "1s",
            "template": {"data": {"password": "pw={{ .password }}"}},
            "files": [{"path": out}],
        }))
        .build();
    let s = Sync::start(dir.path(), &config, &bao.addr, &token_env());
    wait_for(Duration::from_secs(15), || file_has(&out, "pw=one"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let before = std::fs::metadata(&out).unwrap();
    // Several refreshes of an unchanged secret.
    let unchanged_logs = |s: &Sync| s.logs().matches("secret unchanged").count();
    wait_for(Duration::from_secs(10), || unchanged_logs(&s) >= 3)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let after = std::fs::metadata(&out).unwrap();
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec()),
        "unchanged content was rewritten"
    );
    bao.kv_put(&path, json!({"password": "two"}));
    wait_for(Duration::from_secs(10), || file_has(&out, "pw=two"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // The status report follows the write.
    wait_for(Duration::from_secs(5), || {
        s.status()["secrets"]["rot"]["version"] == 2
    })
    .unwrap_or_else(|e| panic!("{e}: {}", s.status()));
    // No temp file left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "password")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn missing_template_field_fails_only_that_secret_and_never_logs_values() {
    let bao = require_bao!();
    let bad = unique("bad");
    let good = unique("good");
    bao.kv_put(
        &bad,
        json!({"present": "CANARY-7f3a-present", "other": "CANARY-7f3a-other"}),
    );
    bao.kv_put(&good, json!({"v": "CANARY-7f3a-good"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        r#"
secrets:
  - name: broken
    path: {bad}
    refreshInterval: 1s
    template:
      data:
        a: '{{{{ .present }}}}'
        b: '{{{{ .absent }}}}'
    files: [{{path: {d}/broken-a}}, {{path: {d}/broken-b}}]
  - name: fine
    path: {good}
    files: [{{path: {d}/fine, key: v}}]
"#,
        d = d.display()
    );
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("LOG_LEVEL", "trace")],
    );
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("fine"), "CANARY-7f3a-good")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    wait_for(Duration::from_secs(10), || {
        s.status()["secrets"]["broken"]["consecutive_failures"].as_u64() >= Some(2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Neither file of the broken secret was written, not even the one that rendered.
    assert!(!d.join("broken-a").exists());
    assert!(!d.join("broken-b").exists());
    let st = s.status();
    assert_eq!(st["secrets"]["broken"]["state"], "failing");
    let err = st["secrets"]["broken"]["last_error"].as_str().unwrap();
    assert!(err.contains("absent"), "{err}");
    assert_eq!(st["secrets"]["fine"]["state"], "synced");
    // No value in logs, /status or /ready.
    let (_, ready) = s.get("/ready").unwrap();
    for (what, text) in [
        ("logs", s.logs()),
        ("status", st.to_string()),
        ("ready", ready),
    ] {
        assert!(
            !text.contains("CANARY-7f3a"),
            "a secret value leaked into {what}:\n{text}"
        );
    }
}

#[test]
fn bad_token_keeps_running_and_not_ready() {
    let bao = require_bao!();
    let path = unique("badtoken");
    bao.kv_put(&path, json!({"k": "v"}));
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "s",
            "path": path,
            "files": [{"path": dir.path().join("k")}],
        }))
        .build();
    let mut s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", "not-a-real-token")],
    );
    wait_for(Duration::from_secs(10), || {
        s.status()["secrets"]["s"]["consecutive_failures"].as_u64() >= Some(3)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(s.alive());
    assert_eq!(s.get("/health").unwrap().0, 200);
    assert_eq!(s.get("/ready").unwrap().0, 503);
    let err = s.status()["secrets"]["s"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("permission denied"), "{err}");
    assert!(!s.logs().contains("not-a-real-token"));
    let (code, _, _) = run_to_end(isready(&s.status_file));
    assert_eq!(code, 1);
    assert!(!dir.path().join("k").exists());
}

fn isready(status_file: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.arg("isready").env_clear().env("STATUS_FILE", status_file);
    c
}

#[test]
fn ready_file_and_policy_all() {
    let bao = require_bao!();
    let ok = unique("ready-ok");
    bao.kv_put(&ok, json!({"k": "v"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret_json(
            json!({"name": "ok", "path": ok, "files": [{"path": d.join("ok"), "key": "k"}]}),
        )
        .secret_json(json!({
            "name": "missing",
            "path": "does/not/exist",
            "files": [{"path": d.join("missing"), "key": "k"}],
        }))
        .build();
    // Policy any: ready once `ok` synced, although `missing` fails.
    let s = Sync::start(dir.path(), &config, &bao.addr, &token_env());
    wait_for(Duration::from_secs(15), || {
        s.get("/ready").is_ok_and(|(c, _)| c == 200)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    wait_for(Duration::from_secs(5), || {
        run_to_end(isready(&s.status_file)).0 == 0
    })
    .unwrap();
    let st = s.status();
    assert!(st["secrets"]["missing"]["last_error"]
        .as_str()
        .unwrap()
        .contains("not found"));
    drop(s);

    // Policy all: never ready while `missing` fails.
    let dir2 = tempfile::tempdir().unwrap();
    let config2 = config.replace(
        &dir.path().display().to_string(),
        &dir2.path().display().to_string(),
    );
    let env = [("VAULT_TOKEN", ROOT_TOKEN), ("READY_POLICY", "all")];
    let s = Sync::start(dir2.path(), &config2, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        file_has(&dir2.path().join("ok"), "v")
    })
    .unwrap();
    wait_for(Duration::from_secs(5), || {
        s.status()["secrets"]["missing"]["consecutive_failures"].as_u64() >= Some(2)
    })
    .unwrap();
    assert_eq!(s.get("/ready").unwrap().0, 503);
    assert_eq!(run_to_end(isready(&s.status_file)).0, 1);
}

#[test]
fn once_exit_codes() {
    let bao = require_bao!();
    let a = unique("once-a");
    bao.kv_put(&a, json!({"k": "A"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = ConfigBuilder::new()
        .secret_json(json!({"name": "a", "path": a, "files": [{"path": d.join("a"), "key": "k"}]}));
    let bad = good
        .clone()
        .secret_json(json!({
            "name": "b",
            "path": format!("nowhere/{a}"),
            "files": [{"path": d.join("b"), "key": "k"}],
        }))
        .build();
    let good = good.build();
    let cfg = d.join("good.yaml");
    std::fs::write(&cfg, &good).unwrap();
    let mut cmd = common::command(d, &cfg, &bao.addr, &token_env());
    cmd.args(["run", "--once"]);
    let (code, out, err) = run_to_end(cmd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(file_has(&d.join("a"), "A"));

    let cfg = d.join("bad.yaml");
    std::fs::write(&cfg, bad).unwrap();
    let mut cmd = common::command(d, &cfg, &bao.addr, &token_env());
    cmd.args(["run", "--once"]);
    let (code, out, err) = run_to_end(cmd);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!d.join("b").exists());
}

#[test]
fn startup_reads_run_concurrently_and_sigterm_exits_zero() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    const N: usize = 100;
    let mut config = ConfigBuilder::new();
    for i in 0..N {
        let p = unique("many");
        bao.kv_put(&p, json!({"v": format!("value-{i}")}));
        config = config.secret_json(json!({
            "name": format!("s{i}"),
            "path": p,
            "files": [{"path": d.join(format!("out/s{i}")), "key": "v"}],
        }));
    }
    let config = config.build();
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        (
            "LOG_LEVEL",
            "info,secrets_sync::vault=trace,secrets_sync::actors::sync=trace",
        ),
    ];
    let mut s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(20), || {
        (0..N).all(|i| file_has(&d.join(format!("out/s{i}")), &format!("value-{i}")))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    wait_for(Duration::from_secs(5), || s.status()["synced"] == N)
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // Replays start/finish events in log order: the most in flight at once.
    let peak = |start: &str, end: &str| {
        let (mut now, mut peak) = (0i32, 0i32);
        for line in s.logs().lines() {
            if line.contains(start) {
                now += 1;
                peak = peak.max(now);
            } else if line.contains(end) {
                now -= 1;
            }
        }
        peak
    };
    // The start-up reads overlapped...
    let reads = peak("vault read started", "vault read finished");
    assert!(
        reads >= 10,
        "only {reads} reads were in flight at once; start-up is not concurrent"
    );
    // ...but the attempts in progress stayed bounded: the other secrets
    // waited for a slot instead of each holding a whole attempt.
    let attempts = peak("sync attempt started", "sync attempt finished");
    assert!(
        attempts as usize <= secrets_sync::actors::sync::SYNC_SLOTS && attempts >= reads,
        "{attempts} attempts in progress at once for {N} secrets (bound {}, reads {reads})",
        secrets_sync::actors::sync::SYNC_SLOTS
    );
    // Actors were started in batches: the first read went out before the
    // last SyncActor had started (with all started in one go, the Vault
    // actor got its turn only after every SyncActor).
    const { assert!(N > secrets_sync::actors::supervisor::START_BATCH) };
    let logs = s.logs();
    let first_read = logs.find("vault read started").expect("a read was logged");
    let last_start = logs
        .rfind("sync started")
        .expect("actor starts were logged");
    assert!(
        first_read < last_start,
        "the first read waited for all {N} actors to start"
    );
    let st = s.stop();
    assert!(st.success(), "{st:?}\n{}", s.logs());
    assert!(s.logs().contains("shutdown complete"));
    // Not ready after a clean stop.
    assert_eq!(run_to_end(isready(&s.status_file)).0, 1);
}

#[test]
fn namespace_header_reaches_the_namespace() {
    let bao = require_bao!();
    let ns = unique("ns");
    bao.namespace_with_kv(&ns);
    bao.api_ns(
        &ns,
        "POST",
        "/v1/secret/data/app",
        Some(r#"{"data":{"x":"in-namespace"}}"#),
    );
    // The same path outside the namespace holds something else.
    bao.kv_put("app", json!({"x": "root-namespace"}));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "n", "path": "app", "files": [{"path": out}]}))
        .build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_NAMESPACE", &ns)],
    );
    wait_for(Duration::from_secs(15), || file_has(&out, "in-namespace"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
}

#[test]
fn per_secret_key_mount_version_and_namespace_like_the_go_tool() {
    let bao = require_bao!();
    let ns = unique("gons");
    bao.namespace_with_kv(&ns);
    let path = unique("go-app");
    bao.api_ns(
        &ns,
        "POST",
        &format!("/v1/secret/data/{path}"),
        Some(r#"{"data":{"x":"in-namespace"}}"#),
    );
    bao.kv_put(&path, json!({"x": "root-namespace"}));
    let v1 = unique("kv1");
    bao.ensure_mount(&v1, r#"{"type":"kv","options":{"version":"1"}}"#);
    bao.api(
        "POST",
        &format!("/v1/{v1}/{path}"),
        Some(r#"{"x":"kv-v1"}"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The store's namespace is `ns`; secrets override it the Go tool's way.
    let config = ConfigBuilder::new()
        .store("namespace", ns.as_str())
        .secret_json(json!({"name": "store-ns", "key": path, "files": [{"path": d.join("a"), "key": "x"}]}))
        .secret_json(json!({"name": "root", "key": path, "namespace": "", "files": [{"path": d.join("b"), "key": "x"}]}))
        .secret_json(json!({"name": "v1", "key": path, "namespace": "", "mountPath": v1, "kvVersion": "v1", "files": [{"path": d.join("c"), "key": "x"}]}))
        .build();
    let s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("a"), "in-namespace")
            && file_has(&d.join("b"), "root-namespace")
            && file_has(&d.join("c"), "kv-v1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let st = s.status();
    assert_eq!(st["secrets"]["v1"]["path"], format!("{v1}/{path}"));
}

#[test]
fn credential_sets_like_the_go_tool_each_secret_reads_with_its_own_login() {
    let bao = require_bao!();
    let (ns_a, ns_b) = (unique("team-a"), unique("team-b"));
    bao.namespace_with_kv(&ns_a);
    bao.namespace_with_kv(&ns_b);
    let path = unique("go-config");
    for (ns, v) in [(&ns_a, "team-a-key"), (&ns_b, "team-b-key")] {
        bao.api_ns(
            ns,
            "POST",
            &format!("/v1/secret/data/{path}"),
            Some(&json!({"data": {"apiKey": v}}).to_string()),
        );
    }
    bao.kv_put(&path, json!({"apiKey": "root-key"}));
    // team-b: an AppRole (in the root namespace, as the Go tool's example
    // sets it up) whose policy reads team-b's secrets only.
    let mount = unique("approle-b");
    bao.ensure_mount_auth(&mount);
    let policy = unique("team-b-read");
    bao.api(
        "PUT",
        &format!("/v1/sys/policies/acl/{policy}"),
        Some(
            &json!({"policy": format!("path \"{ns_b}/secret/data/*\" {{ capabilities = [\"read\"] }}")})
                .to_string(),
        ),
    );
    bao.api(
        "POST",
        &format!("/v1/auth/{mount}/role/b"),
        Some(&json!({"token_policies": policy, "token_ttl": "1h"}).to_string()),
    );
    let rid: serde_json::Value =
        serde_json::from_str(&bao.api("GET", &format!("/v1/auth/{mount}/role/b/role-id"), None))
            .unwrap();
    let sid: serde_json::Value = serde_json::from_str(&bao.api(
        "POST",
        &format!("/v1/auth/{mount}/role/b/secret-id"),
        Some("{}"),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = |n: &str| json!([{"path": d.join(n), "key": "apiKey"}]);
    let config = ConfigBuilder::new()
        .store("authMethod", "token")
        .store("token", "${VAULT_TOKEN}")
        .store(
            "credentials",
            json!({
                "team-a": {"authMethod": "token", "token": "${TEAM_A_TOKEN}"},
                "team-b": {"authMethod": "approle", "authMountPath": mount,
                           "roleId": rid["data"]["role_id"], "secretId": sid["data"]["secret_id"]},
            }),
        )
        .secret_json(json!({"name": "default", "key": path, "mountPath": "secret", "kvVersion": "v2", "files": file("default")}))
        .secret_json(json!({"name": "a", "key": path, "namespace": ns_a, "credentials": "team-a", "files": file("a")}))
        .secret_json(json!({"name": "b", "key": path, "namespace": ns_b, "credentials": "team-b", "files": file("b")}))
        // team-b's policy does not reach the root namespace's secret.
        .secret_json(json!({"name": "b-root", "key": path, "credentials": "team-b", "files": file("b-root")}))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("TEAM_A_TOKEN", ROOT_TOKEN)],
    );
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("default"), "root-key")
            && file_has(&d.join("a"), "team-a-key")
            && file_has(&d.join("b"), "team-b-key")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    s.wait_until(Duration::from_secs(15), "b-root denied", || {
        s.status()["secrets"]["b-root"]["last_error_kind"] == "permission_denied"
    });
    assert!(!d.join("b-root").exists());
    // team-b logged in with its AppRole.
    let logins = std::fs::read_to_string(&bao.audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("\"type\":\"request\"")
                && l.contains(&format!("\"path\":\"auth/{mount}/login\""))
        })
        .count();
    assert_eq!(logins, 1, "one login for the team-b set");
}

/// The Go tool's three example configs (tests/fixtures/go-tool, byte for
/// byte) against the server its example scripts set up: the namespaces
/// `team-a` and `team-b` with KV v2 at `secret/`, the secrets they read,
/// the token `dev-root-token` and an AppRole for team-b. The environment is
/// the Go tool's: VAULT_ADDR over the config's address, VAULT_TOKEN and the
/// TEAM_* variables the credential-sets example interpolates. Each config
/// runs from its own working directory, where its relative `.work/secrets`
/// paths land.
#[test]
fn the_go_tools_example_configs_run_unchanged() {
    let bao = require_bao!();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-tool");
    // The examples' token, made on this server (root may choose a token's id).
    bao.api(
        "POST",
        "/v1/auth/token/create",
        Some(r#"{"id":"dev-root-token","policies":["root"],"no_parent":true}"#),
    );
    bao.kv_put(
        "common/tls/example-cert",
        json!({"tlsCrt": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
               "tlsKey": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}),
    );
    bao.kv_put(
        "database/prod/credentials",
        json!({"username": "dbuser", "password": "dbpass123"}),
    );
    bao.kv_put(
        "app/config",
        json!({"apiKey": "api-key-12345", "apiSecret": "api-secret-67890"}),
    );
    for ns in ["team-a", "team-b"] {
        bao.namespace_with_kv(ns);
        bao.api_ns(
            ns,
            "POST",
            "/v1/secret/data/app/config",
            Some(&json!({"data": {"apiKey": format!("{ns}-api-key"), "apiSecret": format!("{ns}-secret")}}).to_string()),
        );
    }
    // team-b's AppRole on the default `approle` mount and team-a's token,
    // both in the root namespace, each with a policy that reaches only its
    // team's secrets.
    for team in ["team-a", "team-b"] {
        let policy = format!("path \"{team}/secret/data/*\" {{ capabilities = [\"read\"] }}");
        bao.api(
            "PUT",
            &format!("/v1/sys/policies/acl/go-example-{team}"),
            Some(&json!({ "policy": policy }).to_string()),
        );
    }
    bao.ensure_mount_auth("approle");
    bao.api(
        "POST",
        "/v1/auth/approle/role/go-example-team-b",
        Some(r#"{"token_policies":"go-example-team-b","token_ttl":"1h"}"#),
    );
    let rid: serde_json::Value = serde_json::from_str(&bao.api(
        "GET",
        "/v1/auth/approle/role/go-example-team-b/role-id",
        None,
    ))
    .unwrap();
    let sid: serde_json::Value = serde_json::from_str(&bao.api(
        "POST",
        "/v1/auth/approle/role/go-example-team-b/secret-id",
        Some("{}"),
    ))
    .unwrap();
    let (role_id, secret_id) = (
        rid["data"]["role_id"].as_str().unwrap().to_string(),
        sid["data"]["secret_id"].as_str().unwrap().to_string(),
    );
    let team_a: serde_json::Value = serde_json::from_str(&bao.api(
        "POST",
        "/v1/auth/token/create",
        Some(r#"{"policies":["go-example-team-a"]}"#),
    ))
    .unwrap();
    let team_a_token = team_a["auth"]["client_token"].as_str().unwrap().to_string();

    // Per config: each file under .work/secrets, what it must hold, its mode.
    type Expected<'a> = &'a [(&'a str, &'a str, u32)];
    let cases: [(&str, Expected); 3] = [
        (
            "config.yaml",
            &[
                (
                    "tls.crt",
                    "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----",
                    0o644,
                ),
                (
                    "tls.key",
                    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
                    0o600,
                ),
                ("db-username", "dbuser", 0o600),
                ("db-password", "dbpass123", 0o600),
                ("api-key", "api-key-12345", 0o600),
                ("api-secret", "api-secret-67890", 0o600),
            ],
        ),
        (
            "config-credential-sets.yaml",
            &[
                ("default-api-key", "api-key-12345", 0o600),
                ("team-a-api-key", "team-a-api-key", 0o600),
                ("team-b-api-key", "team-b-api-key", 0o600),
            ],
        ),
        (
            "config-openbao-namespaces.yaml",
            &[
                ("team-a-api-key", "team-a-api-key", 0o600),
                ("team-a-api-secret", "team-a-secret", 0o600),
                ("team-b-api-key", "team-b-api-key", 0o600),
                ("team-b-api-secret", "team-b-secret", 0o600),
                ("root-api-key", "api-key-12345", 0o600),
                ("root-api-secret", "api-secret-67890", 0o600),
            ],
        ),
    ];
    let env = [
        ("VAULT_TOKEN", "dev-root-token"),
        ("TEAM_A_TOKEN", team_a_token.as_str()),
        ("TEAM_B_ROLE_ID", role_id.as_str()),
        ("TEAM_B_SECRET_ID", secret_id.as_str()),
    ];
    let dirs: Vec<_> = cases.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let runs: Vec<_> = cases
        .iter()
        .zip(&dirs)
        .map(|((name, _), dir)| {
            let config = std::fs::read_to_string(fixtures.join(name)).unwrap();
            let d = dir.path().to_path_buf();
            Sync::start_with(
                Path::new(env!("CARGO_BIN_EXE_secrets-sync")),
                &d,
                &config,
                &bao.addr,
                &env,
                |cmd| {
                    cmd.current_dir(&d);
                },
            )
        })
        .collect();
    for (((name, files), dir), s) in cases.iter().zip(&dirs).zip(&runs) {
        let out = dir.path().join(".work/secrets");
        wait_for(Duration::from_secs(20), || {
            files
                .iter()
                .all(|(f, want, _)| read(&out.join(f)).as_deref() == Some(*want))
        })
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", s.logs()));
        for (f, _, mode) in files.iter() {
            let m = std::fs::metadata(out.join(f)).unwrap().mode() & 0o777;
            assert_eq!(m, *mode, "{name}: mode of {f}");
        }
        let st = s.status();
        assert_eq!(st["ready"], true, "{name}: {st}");
    }
    // Each set read with its own login: the audit log names the policy of
    // the token behind each read.
    let audit = std::fs::read_to_string(&bao.audit_log).unwrap_or_default();
    for (ns, who) in [
        ("team-a", "go-example-team-a"),
        ("team-b", "go-example-team-b"),
    ] {
        let reads = audit
            .lines()
            .filter(|l| {
                l.contains("\"type\":\"request\"")
                    && l.contains("\"path\":\"secret/data/app/config\"")
                    && l.contains(&format!("\"path\":\"{ns}/\""))
                    && l.contains(who)
            })
            .count();
        assert!(reads >= 1, "no read in {ns} with the login of {who}");
    }
    // The tokens and the secret id are in no log line.
    for s in &runs {
        let logs = s.logs();
        for canary in [team_a_token.as_str(), secret_id.as_str(), "dev-root-token"] {
            assert!(!logs.contains(canary), "a credential in the log:\n{logs}");
        }
    }
}

/// An unchanged answer skips the render and the write only while every
/// file is as the last write left it (its stamp: inode, size, times,
/// mode, owner): a file rewritten by someone else with the same size,
/// `chmod`-ed or removed is put back at the next refresh, and a new value
/// still arrives.
#[test]
fn files_changed_behind_its_back_are_restored_at_the_next_refresh() {
    use std::os::unix::fs::PermissionsExt;
    let bao = require_bao!();
    let p = unique("restore");
    bao.kv_put(&p, json!({"v": "value-1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = d.join("out/s");
    let config = ConfigBuilder::new().secret("s", &p, "1s", &f).build();
    let s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    s.wait_until(Duration::from_secs(20), "synced", || {
        file_has(&f, "value-1")
    });
    let mode = std::fs::metadata(&f).unwrap().mode() & 0o777;
    // Several unchanged refreshes: the skip is in use.
    std::thread::sleep(Duration::from_secs(3));
    let ino = std::fs::metadata(&f).unwrap().ino();

    // Same size, other bytes, written in place.
    std::fs::write(&f, "VALUE-1").unwrap();
    s.wait_until(Duration::from_secs(10), "content restored", || {
        file_has(&f, "value-1")
    });
    assert_ne!(
        std::fs::metadata(&f).unwrap().ino(),
        ino,
        "replaced by a new file"
    );

    // Another mode.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.wait_until(Duration::from_secs(10), "mode restored", || {
        std::fs::metadata(&f).is_ok_and(|m| m.mode() & 0o777 == mode)
    });

    // Removed.
    std::fs::remove_file(&f).unwrap();
    s.wait_until(Duration::from_secs(10), "file restored", || {
        file_has(&f, "value-1")
    });

    // A new value still arrives.
    bao.kv_put(&p, json!({"v": "value-2"}));
    s.wait_until(Duration::from_secs(10), "the new value", || {
        file_has(&f, "value-2")
    });
}
