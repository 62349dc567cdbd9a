//! Leased credentials from OpenBao's database engine against a real
//! PostgreSQL (issue 15): renewal keeps the user until the role's max TTL,
//! then new credentials that work; revokeOnShutdown leaves no role behind;
//! Vault unreachable across a renewal time.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pg::{Postgres, SUPER_PASSWORD};
use common::{read, unique, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// A database mount of this test's own, connected to `pg`, with a role
/// `role` whose users live `default_ttl`, renewable up to `max_ttl`.
fn database_mount(
    bao: &Bao,
    pg: &Postgres,
    role: &str,
    default_ttl: &str,
    max_ttl: &str,
) -> String {
    let mount = unique("db");
    bao.ensure_mount(&mount, r#"{"type":"database"}"#);
    bao.api(
        "POST",
        &format!("/v1/{mount}/config/pg"),
        Some(
            &json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": format!(
                    "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                    pg.port
                ),
                "username": "postgres",
                "password": SUPER_PASSWORD,
                "allowed_roles": [role],
            })
            .to_string(),
        ),
    );
    bao.api(
        "POST",
        &format!("/v1/{mount}/roles/{role}"),
        Some(
            &json!({
                "db_name": "pg",
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
                ],
                "default_ttl": default_ttl,
                "max_ttl": max_ttl,
            })
            .to_string(),
        ),
    );
    mount
}

fn db_secret(name: &str, mount: &str, role: &str, dir: &Path, revoke: bool) -> serde_json::Value {
    json!({
        "name": name,
        "dynamic": {"path": format!("{mount}/creds/{role}")},
        "revokeOnShutdown": revoke,
        "template": {"data": {"db.env": "DB_USER={{ .username }}\nDB_PASSWORD={{ .password }}\n"}},
        "files": [{"path": dir.join("db.env"), "key": "db.env"}],
    })
}

/// (user, password) from the env file.
fn creds(file: &Path) -> Option<(String, String)> {
    let text = read(file)?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::to_string)
    };
    Some((get("DB_USER=")?, get("DB_PASSWORD=")?))
}

/// The usernames Vault makes for a token and `role`: `v-token-<role>-...`.
fn prefix(role: &str) -> String {
    format!("v-token-{role}-")
}

#[test]
fn renewals_keep_the_user_until_max_ttl_then_new_credentials_work_and_shutdown_revokes() {
    let bao = require_bao!();
    let Some(pg) = Postgres::start() else { return };
    let role = "app";
    let mount = database_mount(bao, &pg, role, "10s", "30s");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let env_file = out.join("db.env");
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(db_secret("db-creds", &mount, role, &out, true))
        .build();
    let started = Instant::now();
    let audit = tmp.path().join("audit.log");
    let audit_s = audit.display().to_string();
    let (otlp, spans) = common::otlp_sink();
    let mut s = Sync::start(
        tmp.path(),
        &cfg,
        &bao.addr,
        &[
            ("LOG_LEVEL", "trace"),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
            ("ENABLE_TRACING", "true"),
            ("OTEL_EXPORTER_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    s.wait_until(Duration::from_secs(15), "first credentials", || {
        creds(&env_file).is_some()
    });
    let (user1, pw1) = creds(&env_file).unwrap();
    assert!(user1.starts_with(&prefix(role)), "{user1}");
    assert_eq!(pg.psql(&user1, &pw1, "select current_user").unwrap(), user1);
    let st = s.status();
    assert!(
        st["secrets"]["db-creds"]["lease_expires"]
            .as_u64()
            .is_some(),
        "{st}"
    );
    let gauge = "secret_lease_expiry_timestamp_seconds{secret_name=\"db-creds\"}";
    assert!(s.metric(gauge).is_some());

    // Renewed (10 s leases at ~6.7 s) with the same user until the max TTL
    // (30 s) cuts a renewal short; then a new user is written.
    s.wait_until(
        Duration::from_secs(45),
        "new credentials near max TTL",
        || creds(&env_file).is_some_and(|(u, _)| u != user1),
    );
    let switched = started.elapsed();
    let (user2, pw2) = creds(&env_file).unwrap();
    let renewed = s
        .metric("vault_lease_renewals_total{result=\"success\"}")
        .unwrap_or(0.0);
    let short = s
        .metric("vault_lease_renewals_total{result=\"short\"}")
        .unwrap_or(0.0);
    eprintln!(
        "user switched after {:.1}s; renewals: {renewed} success, {short} short",
        switched.as_secs_f64()
    );
    assert!(
        renewed >= 2.0,
        "{renewed} renewals before max TTL\n{}",
        s.logs()
    );
    assert!(
        short >= 1.0,
        "no renewal was cut short by max TTL\n{}",
        s.logs()
    );
    assert!(
        switched >= Duration::from_secs(20) && switched <= Duration::from_secs(32),
        "switched after {switched:?}, max TTL 30 s"
    );
    assert_eq!(pg.psql(&user2, &pw2, "select current_user").unwrap(), user2);
    // The first user is expired by Vault at its max TTL.
    common::wait_for(Duration::from_secs(20), || {
        !pg.roles_like(&prefix(role)).contains(&user1)
    })
    .unwrap_or_else(|e| panic!("{user1} still in pg_roles: {e}"));
    assert!(pg.psql(&user1, &pw1, "select 1").is_err());

    // Canary, before the stop: no password or lease id on /status,
    // /metrics, in the audit log.
    let lease_prefix = format!("{mount}/creds/{role}/");
    let mut outputs = vec![
        ("status", s.get("/status").unwrap().1),
        ("metrics", s.get("/metrics").unwrap().1),
    ];
    // Graceful stop revokes the current lease: no role of ours is left.
    assert!(s.stop().success());
    let roles = pg.roles_like(&prefix(role));
    assert!(
        roles.is_empty(),
        "roles left after SIGTERM: {roles:?}\n{}",
        s.logs()
    );
    assert!(s.logs().contains("lease revoked"), "{}", s.logs());
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    for event in ["lease_renewed", "lease_revoked"] {
        assert!(audit_text.contains(event), "no {event} audit line");
    }
    outputs.push(("log", s.logs()));
    outputs.push(("audit", audit_text));
    assert!(outputs[2].1.contains("TRACE"), "trace logging was not on");
    for (what, text) in &outputs {
        for secret in [pw1.as_str(), pw2.as_str(), lease_prefix.as_str()] {
            assert!(
                !text.contains(secret),
                "a password or lease id is in the {what}"
            );
        }
    }
    assert!(!spans.lock().unwrap().is_empty(), "no spans were exported");
    for secret in [pw1.as_str(), pw2.as_str(), lease_prefix.as_str()] {
        assert!(
            !common::exported(&spans, secret),
            "a password or lease id was exported in a span"
        );
    }
}

#[test]
fn vault_unreachable_across_a_renewal_files_keep_the_credentials_then_new_ones_come() {
    let bao = require_bao!();
    let Some(pg) = Postgres::start() else { return };
    let role = "app2";
    let mount = database_mount(bao, &pg, role, "6s", "10m");
    let proxy = common::proxy::Proxy::start(bao.host().to_string());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let env_file = out.join("db.env");
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(db_secret("db-creds", &mount, role, &out, false))
        .build();
    let s = Sync::start(
        tmp.path(),
        &cfg,
        &format!("http://127.0.0.1:{}", proxy.port),
        &[("CIRCUIT_BREAKER_TIMEOUT", "2s")],
    );
    s.wait_until(Duration::from_secs(15), "first credentials", || {
        creds(&env_file).is_some()
    });
    let first = read(&env_file).unwrap();
    let (user1, _) = creds(&env_file).unwrap();
    // Cut Vault off before the renewal (at ~4 s of a 6 s lease) and keep
    // it away past the lease's end.
    proxy.set_up(false);
    let down_at = Instant::now();
    while down_at.elapsed() < Duration::from_secs(9) {
        assert_eq!(
            read(&env_file).as_deref(),
            Some(first.as_str()),
            "the file changed while Vault was unreachable"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let failures = s
        .metric("vault_lease_renewals_total{result=\"failure\"}")
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "no failed renewal counted\n{}", s.logs());
    proxy.set_up(true);
    let back = Instant::now();
    s.wait_until(
        Duration::from_secs(20),
        "new credentials once Vault is back",
        || creds(&env_file).is_some_and(|(u, _)| u != user1),
    );
    eprintln!(
        "new credentials {:.1}s after Vault came back",
        back.elapsed().as_secs_f64()
    );
    let (user2, pw2) = creds(&env_file).unwrap();
    assert_eq!(pg.psql(&user2, &pw2, "select current_user").unwrap(), user2);
    assert!(s
        .logs()
        .contains("lease renewal failed; fetching new credentials"));
}

#[test]
fn a_post_with_parameters_and_no_lease_is_read_again_every_refresh_interval() {
    let bao = require_bao!();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("out/random");
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(json!({
            "name": "random",
            "dynamic": {
                "path": "sys/tools/random/16",
                "method": "POST",
                "parameters": {"format": "hex"},
            },
            "refreshInterval": "1s",
            "files": [{"path": file, "key": "random_bytes"}],
        }))
        .build();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    let mut seen: Vec<String> = Vec::new();
    s.wait_until(Duration::from_secs(15), "three different answers", || {
        if let Some(v) = read(&file) {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen.len() >= 3
    });
    // The body was sent: 16 bytes in hex.
    assert!(
        seen.iter()
            .all(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())),
        "{seen:?}"
    );
    assert!(s.status()["secrets"]["random"]["lease_expires"].is_null());
}

/// Issue 25, case 6: a forced refresh keeps valid credentials (it says so);
/// `reissue=true` makes new ones, and the lease they replace is revoked
/// once the secret's action ran: the old database user is gone.
#[test]
fn a_forced_reissue_revokes_the_superseded_lease_after_the_actions_ran() {
    let bao = require_bao!();
    let Some(pg) = Postgres::start() else { return };
    let role = "reissue";
    let mount = database_mount(bao, &pg, role, "1h", "2h");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let env_file = out.join("db.env");
    let told = tmp.path().join("told");
    let mut secret = db_secret("db", &mount, role, &out, false);
    secret["onChange"] = json!(["tell-app"]);
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(secret)
        .action(
            "tell-app",
            json!({"exec": ["/bin/sh", "-c", format!("echo x >> {}", told.display())], "wait": "10ms"}),
        )
        .build();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[("REFRESH_API", "true")]);
    let runs = || read(&told).map_or(0, |t| t.lines().count());
    s.wait_until(Duration::from_secs(15), "first credentials", || {
        creds(&env_file).is_some() && runs() == 1
    });
    let (user1, _) = creds(&env_file).unwrap();
    let post = |path: &str| {
        let (code, body) = s.post(path);
        (
            code,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (code, body) = post("/refresh");
    assert_eq!(code, 202, "{body}");
    assert!(
        body["skipped"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("lease of")),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        creds(&env_file).unwrap().0,
        user1,
        "new credentials without reissue"
    );
    let (code, body) = post("/refresh/db?reissue=true");
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["queued"], json!(["db"]), "{body}");
    s.wait_until(Duration::from_secs(15), "new credentials, app told", || {
        creds(&env_file).is_some_and(|(u, _)| u != user1) && runs() == 2
    });
    let (user2, _) = creds(&env_file).unwrap();
    s.wait_until(Duration::from_secs(15), "the old user revoked", || {
        !pg.roles_like(&prefix(role)).contains(&user1)
    });
    assert_eq!(pg.roles_like(&prefix(role)), vec![user2]);
    assert!(
        s.logs().contains("superseded lease revoked"),
        "{}",
        s.logs()
    );
}

/// With `STATE_DIR`, a sidecar killed with SIGKILL and started again keeps
/// the database credentials on disk and renews their lease: no new
/// database user. A file another writer replaced is not kept: new
/// credentials come.
#[test]
fn state_dir_keeps_database_credentials_and_their_lease_across_a_sigkill() {
    let bao = require_bao!();
    let Some(pg) = Postgres::start() else { return };
    let role = "kept";
    let mount = database_mount(bao, &pg, role, "20s", "10m");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let env_file = out.join("db.env");
    let state = tmp.path().join("state").display().to_string();
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(db_secret("db-creds", &mount, role, &out, false))
        .build();
    let env = [("STATE_DIR", state.as_str())];
    let mut s = Sync::start(tmp.path(), &cfg, &bao.addr, &env);
    s.wait_until(
        Duration::from_secs(20),
        "first credentials and their lease kept",
        || {
            creds(&env_file).is_some()
                && read(&tmp.path().join("state/state.json"))
                    .is_some_and(|t| t.contains("lease_id"))
        },
    );
    let (user1, _) = creds(&env_file).unwrap();
    assert_eq!(pg.roles_like(&prefix(role)), vec![user1.clone()]);
    s.signal(libc::SIGKILL);
    let _ = s.stop();

    // Restarted: the same credentials, their lease renewed later, no new user.
    let mut s = Sync::start(tmp.path(), &cfg, &bao.addr, &env);
    s.wait_until(
        Duration::from_secs(15),
        "synced from the kept lease",
        || s.status()["secrets"]["db-creds"]["state"] == "synced",
    );
    assert!(
        s.logs().contains("lease kept from STATE_DIR"),
        "{}",
        s.logs()
    );
    assert_eq!(creds(&env_file).map(|c| c.0), Some(user1.clone()));
    assert_eq!(pg.roles_like(&prefix(role)), vec![user1.clone()]);
    assert!(s.status()["secrets"]["db-creds"]["lease_expires"]
        .as_u64()
        .is_some());
    // The kept lease is renewed (at two thirds of what it had left).
    s.wait_until(Duration::from_secs(20), "the kept lease renewed", || {
        s.metric(r#"vault_lease_renewals_total{result="success"}"#) >= Some(1.0)
    });
    assert_eq!(creds(&env_file).map(|c| c.0), Some(user1.clone()));
    assert_eq!(pg.roles_like(&prefix(role)), vec![user1.clone()]);
    s.signal(libc::SIGKILL);
    let _ = s.stop();

    // Another writer replaced the file: not the one written, new credentials.
    std::fs::write(&env_file, "DB_USER=x\nDB_PASSWORD=y\n").unwrap();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &env);
    s.wait_until(Duration::from_secs(15), "new credentials", || {
        creds(&env_file).is_some_and(|(u, _)| u != "x" && u != user1)
    });
    assert_eq!(pg.roles_like(&prefix(role)).len(), 2);
    assert!(!read(&tmp.path().join("state/state.json"))
        .unwrap_or_default()
        .contains("DB_PASSWORD"));
}
