//! Cases found by trying secrets-sync as an operator would (issue 12), each
//! against the real OpenBao: a reload whose new store cannot be set up, a
//! short Vault outage with default settings, a login that cannot reach
//! Vault. Assertions read `/metrics` and `/status`, not log wording.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{file_has, unique, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

const RELOAD_FAILED: &str = r#"config_reloads_total{result="failure"}"#;
const RELOAD_OK: &str = r#"config_reloads_total{result="success"}"#;

/// Counts the `/ready` answers that are not 200 until dropped.
struct ReadyWatch {
    stop: Arc<AtomicBool>,
    drops: Arc<AtomicU32>,
    polls: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ReadyWatch {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let drops = Arc::new(AtomicU32::new(0));
        let polls = Arc::new(AtomicU32::new(0));
        let thread = {
            let (stop, drops, polls) = (stop.clone(), drops.clone(), polls.clone());
            std::thread::spawn(move || {
                let host = format!("127.0.0.1:{port}");
                while !stop.load(Ordering::Relaxed) {
                    let ok = common::http(&host, "GET", "/ready", None, None)
                        .is_ok_and(|(s, _)| s == 200);
                    if !ok {
                        drops.fetch_add(1, Ordering::Relaxed);
                    }
                    polls.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            stop,
            drops,
            polls,
            thread: Some(thread),
        }
    }

    /// (polls, not-ready answers)
    fn finish(mut self) -> (u32, u32) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.polls.load(Ordering::Relaxed),
            self.drops.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn a_reload_whose_store_cannot_be_set_up_is_refused_counted_and_the_old_store_keeps_syncing() {
    let bao = require_bao!();
    let path = unique("store-reload");
    bao.kv_put(&path, json!({"v": "one"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out/s");
    let config = |c: ConfigBuilder| c.secret("s", &path, "1s", &out).build();
    let env = [("VAULT_TOKEN", ROOT_TOKEN), ("READY_POLICY", "all")];
    let s = Sync::start(d, &config(ConfigBuilder::new()), &bao.addr, &env);
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&out, "one")
    });
    let watch = ReadyWatch::start(s.http_port);

    // A new store whose CA file does not exist: refused whole.
    let ca = d.join("missing-ca.pem");
    s.write_config(
        d,
        &config(ConfigBuilder::new().store("caCert", ca.to_str().unwrap())),
    );
    s.signal(libc::SIGHUP);
    s.wait_until(
        Duration::from_secs(10),
        "the reload counted as failed",
        || s.metric(RELOAD_FAILED) == Some(1.0),
    );
    assert_eq!(
        s.metric(RELOAD_OK).unwrap_or(0.0),
        0.0,
        "counted as a success"
    );
    assert!(
        s.logs().contains("missing-ca.pem"),
        "the refusal does not name the CA file\n{}",
        s.logs()
    );
    // The old store (and token) still sync.
    bao.kv_put(&path, json!({"v": "two"}));
    s.wait_until(Duration::from_secs(10), "sync with the old store", || {
        file_has(&out, "two")
    });

    // A store change that can be set up: applied, counted, readiness kept.
    s.write_config(d, &config(ConfigBuilder::new().store("skipVerify", true)));
    s.signal(libc::SIGHUP);
    s.wait_until(
        Duration::from_secs(10),
        "the reload counted as applied",
        || s.metric(RELOAD_OK) == Some(1.0),
    );
    bao.kv_put(&path, json!({"v": "three"}));
    s.wait_until(Duration::from_secs(10), "sync with the new store", || {
        file_has(&out, "three")
    });
    let (polls, drops) = watch.finish();
    assert!(polls > 20, "only {polls} polls of /ready");
    assert_eq!(drops, 0, "/ready dropped {drops} times during the reloads");
    assert_eq!(s.metric(RELOAD_FAILED), Some(1.0));
    assert_eq!(s.status()["secrets"]["s"]["state"], "synced");
}

/// Creates the AppRole `outage` with fixed credentials on `bao` (so that a
/// restarted dev server can be given the same ones).
fn fixed_approle(bao: &Bao, role_id: &str, secret_id: &str) {
    bao.api(
        "POST",
        "/v1/sys/auth/approle",
        Some(r#"{"type":"approle"}"#),
    );
    let policy = r#"{"policy":"path \"secret/data/*\" { capabilities = [\"read\"] }"}"#;
    bao.api("PUT", "/v1/sys/policies/acl/outage-read", Some(policy));
    bao.api(
        "POST",
        "/v1/auth/approle/role/outage",
        Some(r#"{"token_policies":"outage-read","token_ttl":"1h"}"#),
    );
    bao.api(
        "POST",
        "/v1/auth/approle/role/outage/role-id",
        Some(&json!({ "role_id": role_id }).to_string()),
    );
    bao.api(
        "POST",
        "/v1/auth/approle/role/outage/custom-secret-id",
        Some(&json!({ "secret_id": secret_id }).to_string()),
    );
}

#[test]
fn after_a_short_outage_files_are_fresh_within_15s_with_default_settings() {
    let Some(bin) = common::bao_bin() else { return };
    let port = common::free_port();
    let host = format!("127.0.0.1:{port}");
    let (role_id, secret_id) = ("outage-role-7f3a", "outage-secret-7f3a");
    let start_bao = |value: &str| {
        let child = common::bao_command(&bin, port, &[]).spawn().expect("bao");
        common::wait_healthy(&host);
        let bao = Bao::at(format!("http://{host}"), bin.clone());
        fixed_approle(&bao, role_id, secret_id);
        for i in 0..4 {
            bao.kv_put(&format!("app/s{i}"), json!({ "v": format!("{value}-{i}") }));
        }
        child
    };
    let mut first = start_bao("before");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cfg = ConfigBuilder::new().store("authMethod", "approle");
    for i in 0..4 {
        cfg = cfg.secret(
            &format!("s{i}"),
            &format!("app/s{i}"),
            "1s",
            &d.join(format!("out/s{i}")),
        );
    }
    // The defaults, not the harness's quick backoff.
    let env = [
        ("VAULT_ROLE_ID", role_id),
        ("VAULT_SECRET_ID", secret_id),
        ("INITIAL_BACKOFF", "1s"),
        ("MAX_BACKOFF", "5m"),
    ];
    let s = Sync::start(d, &cfg.build(), &format!("http://{host}"), &env);
    let all = |value: &str| {
        (0..4).all(|i| file_has(&d.join(format!("out/s{i}")), &format!("{value}-{i}")))
    };
    s.wait_until(Duration::from_secs(15), "first sync", || all("before"));

    first.kill().unwrap();
    first.wait().unwrap();
    let down = Instant::now();
    s.wait_until(Duration::from_secs(8), "the breaker opened", || {
        s.metric("vault_circuit_breaker_state") == Some(2.0)
    });
    std::thread::sleep(Duration::from_secs(8).saturating_sub(down.elapsed()));
    let mut second = start_bao("after");
    let back = Instant::now();
    s.wait_until(
        Duration::from_secs(15),
        "fresh files after the outage",
        || all("after"),
    );
    let took = back.elapsed();
    eprintln!(
        "files fresh {took:?} after Vault came back (down {:?})",
        back - down
    );
    assert_eq!(s.status()["vault"]["circuit_breaker"], "closed");
    for i in 0..4 {
        assert_eq!(s.status()["secrets"][format!("s{i}")]["state"], "synced");
    }
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn a_login_that_cannot_reach_vault_is_a_network_error() {
    let Some(_) = common::bao_bin() else { return };
    // Nothing listens on this port.
    let addr = format!("http://127.0.0.1:{}", common::free_port());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ConfigBuilder::new().store("authMethod", "approle").secret(
        "s",
        "app/s",
        "1s",
        &d.join("s"),
    );
    let env = [
        ("VAULT_ROLE_ID", "role-CANARY-1e2f"),
        ("VAULT_SECRET_ID", "secret-CANARY-1e2f"),
    ];
    let s = Sync::start(d, &cfg.build(), &addr, &env);
    s.wait_until(Duration::from_secs(10), "a failed attempt", || {
        s.status()["secrets"]["s"]["state"] == "failing"
    });
    let st = s.status()["secrets"]["s"].clone();
    assert_eq!(st["last_error_kind"], "network", "{st}");
    let err = st["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("approle login failed"), "{err}");
    assert!(!s.logs().contains("CANARY"), "a credential was logged");
}
