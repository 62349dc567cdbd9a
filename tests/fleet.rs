//! Fleet safety: many sidecars against one Vault. Refreshes spread over
//! the interval (splay and jitter), the server's `Retry-After` is honoured
//! (429 for the whole store, never opening the breaker; 503 for the
//! request; 412 retried at once), and a graceful stop revokes the token a
//! login obtained, unless a lease kept past the stop depends on it.
//! After a cut line (`common::proxy`) a fleet catches up within 15 s
//! without a stampede.
//! Assertions are on Vault's audit log, a stand-in server's request log
//! and `/metrics`, not on log wording.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{file_has, unique, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// Seconds of the day of an RFC 3339 UTC timestamp (`...T12:28:52.116Z`).
fn second_of_day(ts: &str) -> Option<f64> {
    let t = ts.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = t.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The times (seconds of the day) of every KV read of `secret/data/<p>`
/// for each path `p` in `paths`, from the server's audit log.
fn read_times(audit: &std::path::Path, paths: &[String]) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(audit).unwrap_or_default();
    let mut out = vec![Vec::new(); paths.len()];
    for line in text.lines() {
        if !line.contains("\"type\":\"request\"") || !line.contains("\"operation\":\"read\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let path = v["request"]["path"].as_str().unwrap_or("");
        if let Some(i) = paths
            .iter()
            .position(|p| path == format!("secret/data/{p}"))
        {
            if let Some(t) = v["time"].as_str().and_then(second_of_day) {
                out[i].push(t);
            }
        }
    }
    out
}

/// A fleet of sidecars started together spreads its refreshes over the
/// interval: after the initial reads, the busiest second of two intervals
/// holds at most 2.5 times the mean (without the splay every refresh of
/// the fleet landed in the same second).
/// Held by the two tests that run a fleet of 20 sidecars: on 2 cores, two
/// fleets at once starve the server, whose stalls then bunch the reads
/// these tests measure.
static FLEETS: Mutex<()> = Mutex::new(());

#[test]
fn a_fleet_started_together_spreads_its_refreshes() {
    let bao = require_bao!();
    let _one = FLEETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const N: usize = 20;
    const INTERVAL: f64 = 5.0;
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = (0..N).map(|i| unique(&format!("fleet-{i}"))).collect();
    for p in &paths {
        bao.kv_put(p, json!({"v": "1"}));
    }
    let fleet: Vec<Sync> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = dir.path().join(format!("pod{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let config = ConfigBuilder::new()
                .secret("s", p, "5s", &d.join("out/s"))
                .build();
            Sync::start(&d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)])
        })
        .collect();
    for (i, s) in fleet.iter().enumerate() {
        let f = dir.path().join(format!("pod{i}/out/s"));
        s.wait_until(Duration::from_secs(20), "initial sync", || {
            file_has(&f, "1")
        });
    }
    // Two intervals and a bit of refreshes.
    std::thread::sleep(Duration::from_secs_f64(2.0 * INTERVAL + 2.0));
    let times = read_times(&bao.audit_log, &paths);
    drop(fleet);
    // The initial read of each sidecar is the first; the window is the two
    // intervals after the last of them.
    let start = times
        .iter()
        .filter_map(|t| t.first().copied())
        .fold(0.0_f64, f64::max);
    let end = start + 2.0 * INTERVAL;
    let refreshes: Vec<f64> = times
        .iter()
        .flat_map(|t| t.iter().skip(1).copied())
        .filter(|t| *t > start && *t <= end)
        .collect();
    let seconds = (2.0 * INTERVAL) as usize;
    let mut per_second = vec![0usize; seconds];
    for t in &refreshes {
        let i = ((t - start) as usize).min(seconds - 1);
        per_second[i] += 1;
    }
    let mean = refreshes.len() as f64 / seconds as f64;
    let busiest = per_second.iter().copied().max().unwrap_or(0);
    eprintln!(
        "MEASURED fleet of {N}, interval 5s: {} refreshes in 10 s, per second {per_second:?}, busiest {busiest}, mean {mean:.1}",
        refreshes.len()
    );
    // Every sidecar refreshed about twice.
    assert!(refreshes.len() >= 2 * N - N / 2, "{times:?}");
    assert!(
        busiest as f64 <= 2.5 * mean,
        "busiest second {busiest} > 2.5 x mean {mean:.1}: {per_second:?}"
    );
}

/// A stand-in Vault: token lookups succeed; every KV read is logged with
/// its time and answered by `answer(path, nth read of that path)`.
type Answer = fn(&str, usize) -> &'static str;

struct FakeVault {
    port: u16,
    /// (path, when) of every KV read.
    reads: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl FakeVault {
    fn start(answer: Answer) -> FakeVault {
        let reads: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let log = Arc::clone(&reads);
        let port = common::serve_http_with_line(move |line, _| {
            let json = "application/json";
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            if path == "/v1/auth/token/lookup-self" {
                return (
                    "200 OK",
                    json,
                    br#"{"data":{"ttl":0,"renewable":false}}"#.to_vec(),
                );
            }
            let nth = {
                let mut r = log.lock().unwrap();
                r.push((path.clone(), Instant::now()));
                r.iter().filter(|(p, _)| *p == path).count()
            };
            let status = answer(&path, nth);
            let body = if status.starts_with("200") {
                br#"{"data":{"data":{"v":"ok"},"metadata":{"version":1}}}"#.to_vec()
            } else {
                br#"{"errors":["slow down"]}"#.to_vec()
            };
            (status, json, body)
        });
        FakeVault { port, reads }
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn times_of(&self, path: &str) -> Vec<Instant> {
        self.reads
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| *t)
            .collect()
    }

    fn all(&self) -> Vec<(String, Instant)> {
        self.reads.lock().unwrap().clone()
    }
}

/// A 429 with `Retry-After: 3` on one secret pauses every request of the
/// store for 3 s, is counted, and does not open the breaker.
#[test]
fn a_429_pauses_the_whole_store_for_its_retry_after() {
    let Some(_) = common::bao_bin() else { return };
    // `a`'s second read answers 429 (its first one syncs the file).
    let vault = FakeVault::start(|path, nth| match (path, nth) {
        ("/v1/secret/data/a", 2) => "429 Too Many Requests\r\nretry-after: 3",
        _ => "200 OK",
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret("a", "a", "1s", &d.join("out/a"))
        .secret("b", "b", "1s", &d.join("out/b"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &vault.addr(),
        &[
            ("VAULT_TOKEN", "t"),
            ("REFRESH_JITTER", "0"),
            // MAX_BACKOFF caps a Retry-After: the harness's own is shorter.
            ("MAX_BACKOFF", "10s"),
        ],
    );
    s.wait_until(
        Duration::from_secs(15),
        "the 429 and the read after it",
        || vault.times_of("/v1/secret/data/a").len() >= 3,
    );
    let a = vault.times_of("/v1/secret/data/a");
    let limited_at = a[1];
    let waited = a[2] - limited_at;
    eprintln!("MEASURED after a 429 with Retry-After: 3, the next read of the secret came {waited:?} later");
    assert!(waited >= Duration::from_millis(2900), "{waited:?}");
    // Nothing of the store went out during the pause (but what was already
    // in flight when the 429 came).
    let during: Vec<(String, Duration)> = vault
        .all()
        .into_iter()
        .filter(|(_, t)| *t > limited_at + Duration::from_millis(200))
        .filter(|(_, t)| *t < limited_at + Duration::from_millis(2900))
        .map(|(p, t)| (p, t - limited_at))
        .collect();
    assert!(during.is_empty(), "requests during the pause: {during:?}");
    s.wait_until(
        Duration::from_secs(10),
        "b reads again after the pause",
        || {
            vault
                .times_of("/v1/secret/data/b")
                .iter()
                .any(|t| *t > limited_at + Duration::from_millis(2900))
        },
    );
    assert_eq!(s.metric("vault_rate_limited_total"), Some(1.0));
    assert_eq!(s.metric("vault_circuit_breaker_state"), Some(0.0));
    assert!(file_has(&d.join("out/a"), "ok") && file_has(&d.join("out/b"), "ok"));
}

/// A 503 with `Retry-After: 2` delays that secret's retry (not the 1 s of
/// the backoff); a 412 (a standby not caught up) is retried at once on the
/// same request.
#[test]
fn a_503_retry_after_delays_its_secret_and_a_412_is_retried_at_once() {
    let Some(_) = common::bao_bin() else { return };
    let vault = FakeVault::start(|path, nth| match (path, nth) {
        ("/v1/secret/data/c", 1) => "503 Service Unavailable\r\nretry-after: 2",
        ("/v1/secret/data/d", 1 | 2) => "412 Precondition Failed",
        _ => "200 OK",
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret("c", "c", "1h", &d.join("out/c"))
        .secret("d", "d", "1h", &d.join("out/d"))
        .build();
    let started = Instant::now();
    // MAX_BACKOFF caps a Retry-After: the harness's own is shorter.
    let s = Sync::start(
        d,
        &config,
        &vault.addr(),
        &[("VAULT_TOKEN", "t"), ("MAX_BACKOFF", "10s")],
    );
    s.wait_until(Duration::from_secs(10), "d synced", || {
        file_has(&d.join("out/d"), "ok")
    });
    let d_reads = vault.times_of("/v1/secret/data/d");
    assert_eq!(d_reads.len(), 3, "412, 412, 200");
    let took = d_reads[2] - d_reads[0];
    eprintln!("MEASURED two 412s then 200 within {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(
        s.status()["secrets"]["d"]["state"],
        "synced",
        "a retried 412 is not a failed sync"
    );
    s.wait_until(Duration::from_secs(10), "c synced", || {
        file_has(&d.join("out/c"), "ok")
    });
    let c = vault.times_of("/v1/secret/data/c");
    let waited = c[1] - c[0];
    eprintln!("MEASURED after a 503 with Retry-After: 2, the retry came {waited:?} later");
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(s.metric("vault_rate_limited_total"), Some(1.0));
    assert_eq!(s.metric("vault_circuit_breaker_state"), Some(0.0));
}

/// Held by every test that logs in or counts the server's tokens: one at
/// a time (the tests of this binary run in parallel on one server).
static TOKENS: Mutex<()> = Mutex::new(());

/// Live token accessors on the server.
fn accessors(bao: &common::Bao) -> usize {
    let v: serde_json::Value =
        serde_json::from_str(&bao.api("LIST", "/v1/auth/token/accessors", None)).unwrap();
    v["data"]["keys"].as_array().map_or(0, Vec::len)
}

/// An AppRole role whose tokens may read `secret/*` and issue from the PKI
/// role `mount/issue/web`; returns (role_id, secret_id).
fn approle_with_pki(bao: &common::Bao, mount: &str) -> (String, String) {
    let name = unique("fleet-role");
    let policy = format!(
        "path \"secret/data/*\" {{ capabilities = [\"read\"] }}\npath \"{mount}/issue/web\" {{ capabilities = [\"create\", \"update\"] }}"
    );
    bao.approle_with("approle", &name, "1h", &name, &policy)
}

/// Graceful stops revoke the tokens logins obtained: the server's live
/// tokens are back to the count before the fleet started. A sidecar that
/// keeps a lease past its stop (no `revokeOnShutdown`) keeps its token too
/// (revoking the token would revoke the lease); with `revokeOnShutdown`
/// both go.
#[test]
fn graceful_stops_revoke_login_tokens_unless_a_kept_lease_needs_one() {
    let bao = require_bao!();
    let _one = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    let mount = common::pki_mount(bao);
    bao.api(
        "POST",
        &format!("/v1/{mount}/roles/web"),
        Some(r#"{"allowed_domains":["web"],"allow_bare_domains":true,"key_type":"ec","key_bits":256,"max_ttl":"24h","generate_lease":true}"#),
    );
    let (role_id, secret_id) = approle_with_pki(bao, &mount);
    let p = unique("fleet-tokens");
    bao.kv_put(&p, json!({"v": "1"}));
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
    ];
    let kv_only = |d: &std::path::Path| {
        ConfigBuilder::new()
            .store("authMethod", "approle")
            .secret("s", &p, "1s", &d.join("out/s"))
    };
    let leased = |d: &std::path::Path, revoke: bool| {
        kv_only(d)
            .secret_json(json!({"name": "cert", "revokeOnShutdown": revoke,
                "dynamic": {"path": format!("{mount}/issue/web"), "method": "POST",
                    "parameters": {"common_name": "web", "ttl": "1h"}},
                "files": [{"path": d.join("out/cert.pem"), "key": "certificate"}]}))
            .build()
    };
    let leases = || {
        let (status, text) = common::http(
            bao.host(),
            "LIST",
            &format!("/v1/sys/leases/lookup/{mount}/issue/web"),
            Some(ROOT_TOKEN),
            None,
        )
        .unwrap();
        if status == 404 {
            return 0;
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["data"]["keys"].as_array().map_or(0, Vec::len)
    };

    // 1. Five sidecars, KV only: five logins, five revocations.
    let baseline = accessors(bao);
    let mut fleet: Vec<Sync> = (0..5)
        .map(|i| {
            let d = dir.path().join(format!("kv{i}"));
            std::fs::create_dir_all(&d).unwrap();
            Sync::start(&d, &kv_only(&d).build(), &bao.addr, &env)
        })
        .collect();
    for (i, s) in fleet.iter().enumerate() {
        let f = dir.path().join(format!("kv{i}/out/s"));
        s.wait_until(Duration::from_secs(20), "initial sync", || {
            file_has(&f, "1")
        });
    }
    assert_eq!(accessors(bao), baseline + 5, "one token per login");
    for s in &mut fleet {
        assert!(s.stop().success(), "{}", s.logs());
    }
    assert_eq!(
        accessors(bao),
        baseline,
        "graceful stops left tokens behind"
    );

    // 2. A lease kept past the stop keeps its token (and the lease lives).
    let d = dir.path().join("kept");
    std::fs::create_dir_all(&d).unwrap();
    let leases_before = leases();
    let mut s = Sync::start(&d, &leased(&d, false), &bao.addr, &env);
    s.wait_until(Duration::from_secs(20), "certificate issued", || {
        common::read(&d.join("out/cert.pem")).is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    });
    assert!(s.stop().success(), "{}", s.logs());
    assert_eq!(
        accessors(bao),
        baseline + 1,
        "the kept lease's token was revoked\n{}",
        s.logs()
    );
    assert_eq!(leases(), leases_before + 1, "the kept lease was revoked");

    // 3. With revokeOnShutdown, the lease and then the token go.
    let d = dir.path().join("revoked");
    std::fs::create_dir_all(&d).unwrap();
    let before = accessors(bao);
    let leases_before = leases();
    let mut s = Sync::start(&d, &leased(&d, true), &bao.addr, &env);
    s.wait_until(Duration::from_secs(20), "certificate issued", || {
        common::read(&d.join("out/cert.pem")).is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    });
    assert!(s.stop().success(), "{}", s.logs());
    assert_eq!(accessors(bao), before, "the token outlived the stop");
    assert_eq!(leases(), leases_before, "the lease outlived the stop");
    assert!(!s.logs().contains(&secret_id));
}

/// How many AppRole logins the server has seen (its audit log).
fn logins(bao: &common::Bao) -> usize {
    std::fs::read_to_string(&bao.audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("\"type\":\"request\"") && l.contains("\"path\":\"auth/approle/login\"")
        })
        .count()
}

/// With `STATE_DIR`, a sidecar killed with SIGKILL and started again
/// reuses its token: no second login, no second live token. A graceful
/// stop then revokes it and removes it from the state. A state file that
/// is corrupt is ignored (one login more); the file never holds the AppRole
/// secret id nor a value.
#[test]
fn state_dir_keeps_the_login_token_across_a_sigkill() {
    let bao = require_bao!();
    let _one = TOKENS.lock().unwrap_or_else(|e| e.into_inner());
    let (role_id, secret_id) = bao.approle(&unique("state-role"), "1h");
    let p = unique("state");
    let canary = "CANARY-state-2d4e";
    bao.kv_put(&p, json!({ "v": canary }));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state");
    let state_s = state.display().to_string();
    let env = [
        ("VAULT_ROLE_ID", role_id.as_str()),
        ("VAULT_SECRET_ID", secret_id.as_str()),
        ("STATE_DIR", state_s.as_str()),
    ];
    let config = ConfigBuilder::new()
        .store("authMethod", "approle")
        .secret("s", &p, "1s", &d.join("out/s"))
        .build();
    let tokens0 = accessors(bao);
    let logins0 = logins(bao);
    let start = || Sync::start(d, &config, &bao.addr, &env);

    let mut s = start();
    s.wait_until(Duration::from_secs(20), "first sync", || {
        file_has(&d.join("out/s"), canary)
    });
    let state_file = state.join("state.json");
    s.wait_until(Duration::from_secs(10), "the token kept", || {
        common::read(&state_file).is_some_and(|t| t.contains("approle"))
    });
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state_file), 0o600);
    }
    let kept = std::fs::read_to_string(&state_file).unwrap();
    assert!(!kept.contains(&secret_id), "the secret id is in the state");
    assert!(!kept.contains(canary), "a value is in the state");
    assert_eq!((logins(bao) - logins0, accessors(bao) - tokens0), (1, 1));

    // SIGKILL: nothing is revoked; the next start reuses the token.
    s.signal(libc::SIGKILL);
    let _ = s.stop();
    std::fs::remove_file(d.join("out/s")).unwrap();
    let mut s = start();
    s.wait_until(Duration::from_secs(20), "sync after the restart", || {
        file_has(&d.join("out/s"), canary)
    });
    assert_eq!(
        (logins(bao) - logins0, accessors(bao) - tokens0),
        (1, 1),
        "a login after the restart\n{}",
        s.logs()
    );
    assert!(s.logs().contains("reusing the token kept in STATE_DIR"));

    // A graceful stop revokes it and forgets it.
    assert!(s.stop().success(), "{}", s.logs());
    assert_eq!(accessors(bao), tokens0, "the token outlived the stop");
    let after = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        !after.contains("approle"),
        "the revoked token is still kept: {after}"
    );

    // A corrupt state is ignored with a warning: one more login.
    std::fs::write(&state_file, "{corrupt").unwrap();
    let mut s = start();
    s.wait_until(Duration::from_secs(20), "sync with a corrupt state", || {
        logins(bao) - logins0 == 2 && file_has(&d.join("out/s"), canary)
    });
    assert!(s.logs().contains("it is ignored"), "{}", s.logs());
    assert!(s.stop().success());
    assert_eq!(accessors(bao), tokens0);
    for leak in [secret_id.as_str(), canary] {
        assert!(!s.logs().contains(leak), "{leak} in the log");
    }
}

/// With `STATE_DIR`, a restart while Vault cannot be reached reports the
/// secrets whose files are still the ones the earlier run wrote as
/// `stale` (others as failing); `READY_ALLOW_STALE=true` counts them for
/// readiness, and `secret_age_seconds` counts from the earlier run's last
/// confirmation of the content.
#[test]
fn state_dir_reports_intact_files_stale_during_an_outage_at_start() {
    let bao = require_bao!();
    let (ps, pt) = (unique("stale-s"), unique("stale-t"));
    bao.kv_put(&ps, json!({"v": "s1"}));
    bao.kv_put(&pt, json!({"v": "t1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state").display().to_string();
    let config = ConfigBuilder::new()
        .secret("s", &ps, "1s", &d.join("out/s"))
        .secret("t", &pt, "1s", &d.join("out/t"))
        .build();
    let mut s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("STATE_DIR", state.as_str())],
    );
    s.wait_until(Duration::from_secs(20), "both written and recorded", || {
        file_has(&d.join("out/s"), "s1")
            && file_has(&d.join("out/t"), "t1")
            && common::read(&d.join("state/state.json"))
                .is_some_and(|t| t.contains("\"t\"") && t.contains("\"s\""))
    });
    // Later reads that find s unchanged are recorded as confirmations
    // (what `secret_age_seconds` counts from after a restart), not as
    // writes; those of the last minute are saved at the graceful stop.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(s.stop().success());
    let saved: serde_json::Value =
        serde_json::from_str(&common::read(&d.join("state/state.json")).unwrap()).unwrap();
    let rec = saved["secrets"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["secret"] == "s"))
        .unwrap_or_else(|| panic!("no record of s in {saved}"));
    assert!(
        rec["confirmed_at"].as_u64() > rec["written_at"].as_u64(),
        "{rec}"
    );
    // Someone else replaces t's file: it is no longer the one written.
    std::fs::write(d.join("out/t.new"), "t-other").unwrap();
    std::fs::rename(d.join("out/t.new"), d.join("out/t")).unwrap();

    let dead = format!("http://127.0.0.1:{}", common::free_port());
    for (allow, ready) in [("false", 503), ("true", 200)] {
        let s = Sync::start(
            d,
            &config,
            &dead,
            &[
                ("VAULT_TOKEN", ROOT_TOKEN),
                ("STATE_DIR", state.as_str()),
                ("READY_POLICY", "any"),
                ("READY_ALLOW_STALE", allow),
            ],
        );
        s.wait_until(Duration::from_secs(15), "both attempted", || {
            let st = s.status();
            st["secrets"]["s"]["state"] == "stale" && st["secrets"]["t"]["state"] == "failing"
        });
        assert_eq!(
            s.get("/ready").unwrap().0,
            ready,
            "READY_ALLOW_STALE={allow}"
        );
        let age = s.metric(r#"secret_age_seconds{secret_name="s"}"#);
        assert!(age.is_some_and(|a| (0.0..120.0).contains(&a)), "{age:?}");
        assert_eq!(s.metric(r#"secret_age_seconds{secret_name="t"}"#), None);
        assert!(file_has(&d.join("out/s"), "s1"), "the stale file is kept");
    }
}

/// Seconds of the day (UTC) now, as the audit log's timestamps count.
fn now_second_of_day() -> f64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    since.as_secs_f64() % 86_400.0
}

/// After the line to Vault is cut for 20 s (and every secret changed
/// meanwhile), a fleet of 20 sidecars with 5 secrets each, on the default
/// backoff and breaker settings, catches up: every file holds the new
/// value within 15 s of the line coming back, and the busiest second of
/// the catch-up holds at most 3 times the fleet's steady read rate
/// (measured from the audit log in the two intervals before the cut).
#[test]
fn a_fleet_catches_up_within_15s_of_an_outage_without_a_stampede() {
    let bao = require_bao!();
    let _one = FLEETS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const PODS: usize = 20;
    const SECRETS: usize = 5;
    const INTERVAL: f64 = 5.0;
    let proxy = common::proxy::Proxy::start(bao.host().to_string());
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<Vec<String>> = (0..PODS)
        .map(|i| {
            (0..SECRETS)
                .map(|j| unique(&format!("catch-{i}-{j}")))
                .collect()
        })
        .collect();
    let files = |i: usize, j: usize| dir.path().join(format!("pod{i}/out/s{j}"));
    for p in paths.iter().flatten() {
        bao.kv_put(p, json!({"v": "before"}));
    }
    let fleet: Vec<Sync> = paths
        .iter()
        .enumerate()
        .map(|(i, ps)| {
            let d = dir.path().join(format!("pod{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let mut config = ConfigBuilder::new();
            for (j, p) in ps.iter().enumerate() {
                config = config.secret(&format!("s{j}"), p, "5s", &files(i, j));
            }
            // The product's defaults, not the harness's short backoff.
            Sync::start(
                &d,
                &config.build(),
                &via_proxy,
                &[
                    ("VAULT_TOKEN", ROOT_TOKEN),
                    ("INITIAL_BACKOFF", "1s"),
                    ("MAX_BACKOFF", "5m"),
                    ("LOG_LEVEL", "info"),
                ],
            )
        })
        .collect();
    let all_hold =
        |want: &str| (0..PODS).all(|i| (0..SECRETS).all(|j| file_has(&files(i, j), want)));
    fleet[0].wait_until(Duration::from_secs(30), "initial sync", || {
        all_hold("before")
    });
    // Steady state: two intervals, after the first refreshes are spread.
    std::thread::sleep(Duration::from_secs_f64(INTERVAL));
    let steady_from = now_second_of_day();
    std::thread::sleep(Duration::from_secs_f64(2.0 * INTERVAL));
    let steady_to = now_second_of_day();

    proxy.set_up(false);
    for p in paths.iter().flatten() {
        bao.kv_put(p, json!({"v": "after"}));
    }
    std::thread::sleep(Duration::from_secs(20));
    proxy.set_up(true);
    let back = Instant::now();
    let back_at = now_second_of_day();
    let fresh = wait_for_fresh(&|| all_hold("after"), Duration::from_secs(30));
    // The rest of the catch-up window, for the rate.
    let window = 15.0;
    let left = Duration::from_secs_f64(window).saturating_sub(back.elapsed());
    std::thread::sleep(left);
    let flat: Vec<String> = paths.iter().flatten().cloned().collect();
    let times: Vec<f64> = read_times(&bao.audit_log, &flat)
        .into_iter()
        .flatten()
        .collect();
    drop(fleet);
    let steady = times
        .iter()
        .filter(|t| **t >= steady_from && **t < steady_to)
        .count() as f64
        / (steady_to - steady_from);
    let mut per_second = vec![0usize; window as usize];
    for t in times
        .iter()
        .filter(|t| **t >= back_at && **t < back_at + window)
    {
        let i = ((t - back_at) as usize).min(window as usize - 1);
        per_second[i] += 1;
    }
    let busiest = per_second.iter().copied().max().unwrap_or(0);
    eprintln!(
        "MEASURED catch-up of {PODS} sidecars x {SECRETS} secrets after a 20 s cut: fresh after {fresh:?}, steady {steady:.1} reads/s, catch-up per second {per_second:?}, busiest {busiest} ({:.2}x steady)",
        busiest as f64 / steady
    );
    let fresh = fresh.expect("every file fresh within 30 s of the line's return");
    assert!(fresh <= Duration::from_secs(15), "fresh after {fresh:?}");
    // The steady rate is what the fleet's refreshes make: PODS x SECRETS per interval.
    let expected = (PODS * SECRETS) as f64 / INTERVAL;
    assert!(
        steady > 0.6 * expected && steady < 1.5 * expected,
        "steady {steady:.1}/s, expected about {expected:.1}/s"
    );
    assert!(
        busiest as f64 <= 3.0 * steady,
        "busiest second {busiest} > 3 x steady {steady:.1}/s: {per_second:?}"
    );
}

/// How long until `cond` holds, polled every 100 ms; `None` after `limit`.
fn wait_for_fresh(cond: &dyn Fn() -> bool, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}
