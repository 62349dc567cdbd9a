//! Nothing wedges it (issue 25), with real processes and the real OpenBao:
//! a FIFO where the app's pid file should be, a FIFO or a planted
//! certificate where a `pki:` secret's files go, and an actor thread
//! blocked on purpose (a failpoint compiled only with `--features
//! failpoints`, which scripts/test.sh turns on): `/health` turns 503 within
//! the liveness window and back when released, `isready` fails while it
//! is wedged, and SIGTERM still ends the process within SHUTDOWN_TIMEOUT.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{file_has, pki_mount, run_to_end, unique, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a plain mkfifo(3) on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn exit_within(s: &mut Sync, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    s.signal(libc::SIGTERM);
    loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            return (st, t.elapsed());
        }
        assert!(
            t.elapsed() < limit,
            "no exit {limit:?} after SIGTERM\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Case 1: the app's pid file is a FIFO (the app owns that directory). The
/// signal action fails for that run; every other secret keeps rotating,
/// `/ready` answers, and SIGTERM ends the process at once.
#[test]
fn a_fifo_at_the_pid_file_stops_nothing() {
    let bao = require_bao!();
    let (pa, pb) = (unique("wedge-a"), unique("wedge-b"));
    bao.kv_put(&pa, json!({"v": "a1"}));
    bao.kv_put(&pb, json!({"v": "b1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pid = d.join("run/app.pid");
    std::fs::create_dir_all(pid.parent().unwrap()).unwrap();
    mkfifo(&pid);
    let (fa, fb) = (d.join("out/a"), d.join("out/b"));
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "a", "path": pa, "refreshInterval": "1s",
            "files": [{"path": fa, "key": "v"}], "onChange": ["reload-app"]}))
        .secret("b", &pb, "1s", &fb)
        .action(
            "reload-app",
            json!({"signal": "SIGHUP", "pidFile": pid, "wait": "100ms"}),
        )
        .build();
    let mut s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&fa, "a1") && file_has(&fb, "b1")
    });
    // The action ran against the FIFO: refused at once, counted as failed.
    s.wait_until(Duration::from_secs(15), "the action failed", || {
        s.metric(r#"secret_action_runs_total{action="reload-app",result="failed"}"#)
            .unwrap_or(0.0)
            >= 1.0
    });
    assert!(is_fifo(&pid), "the FIFO was replaced");
    // Rotations keep arriving, for both secrets.
    bao.kv_put(&pa, json!({"v": "a2"}));
    bao.kv_put(&pb, json!({"v": "b2"}));
    s.wait_until(Duration::from_secs(15), "rotation after the FIFO", || {
        file_has(&fa, "a2") && file_has(&fb, "b2")
    });
    let (code, body) = s.get("/ready").expect("/ready answers");
    assert_eq!(code, 200, "{body}");
    let (code, _) = s.get("/health").unwrap();
    assert_eq!(code, 200);
    let status = s.status();
    let reason = status["actions"]["reload-app"]["last_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("FIFO"), "{status}");
    let (st, took) = exit_within(&mut s, Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{}", s.logs());
    assert!(took < Duration::from_secs(5), "{took:?}");
}

fn pki_config(mount: &str, out: &Path) -> String {
    ConfigBuilder::new()
        .secret_json(json!({
            "name": "web",
            "pki": {"path": format!("{mount}/issue/web"),
                    "commonName": "web.example.internal", "altNames": ["web"],
                    "ipSans": ["10.0.0.7"], "ttl": "1h"},
            "files": [
                {"path": out.join("tls.crt"), "key": "certificate", "mode": "0600"},
                {"path": out.join("tls.key"), "key": "private_key", "mode": "0600"},
            ],
        }))
        .build()
}

fn once(d: &Path, config: &str, bao: &Bao) -> (i32, Duration, String) {
    let cfg = d.join("config.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = common::command(d, &cfg, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    cmd.args(["run", "--once"]);
    let t = Instant::now();
    let (code, out, err) = run_to_end(cmd);
    (code, t.elapsed(), format!("{out}{err}"))
}

/// Case 2: a FIFO at the certificate's path at start. The keep-at-start
/// check refuses it without blocking; `run --once` issues a certificate.
#[test]
fn a_fifo_at_a_certificate_path_does_not_hang_start() {
    let bao = require_bao!();
    let mount = pki_mount(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("tls");
    std::fs::create_dir_all(&out).unwrap();
    mkfifo(&out.join("tls.crt"));
    let (code, took, logs) = once(d, &pki_config(&mount, &out), bao);
    assert_eq!(code, 0, "{logs}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(!is_fifo(&out.join("tls.crt")));
    let crt = std::fs::read_to_string(out.join("tls.crt")).unwrap();
    assert!(crt.contains("BEGIN CERTIFICATE"), "{logs}");
}

/// Case 3: a valid certificate and key for the same names, planted by
/// someone else with the mode and owner we would have given them: it does
/// not chain to the PKI mount's issuing CA, so it is not kept and a new
/// one is issued.
#[test]
fn a_planted_certificate_is_not_kept() {
    let bao = require_bao!();
    let mount = pki_mount(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("tls");
    std::fs::create_dir_all(&out).unwrap();
    let planted = include_str!("fixtures/pki/web.crt");
    let (crt, key) = (out.join("tls.crt"), out.join("tls.key"));
    std::fs::write(&crt, planted).unwrap();
    std::fs::write(&key, include_str!("fixtures/pki/web.key")).unwrap();
    // As we would have written them (the configured mode, our uid): only
    // the check against the mount's issuing CA can tell.
    use std::os::unix::fs::PermissionsExt;
    for p in [&crt, &key] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, _, logs) = once(d, &pki_config(&mount, &out), bao);
    assert_eq!(code, 0, "{logs}");
    let now = std::fs::read_to_string(&crt).unwrap();
    assert!(now.contains("BEGIN CERTIFICATE"));
    assert_ne!(now, planted, "the planted certificate was kept\n{logs}");
    assert!(logs.contains("not kept"), "{logs}");
    assert!(logs.contains("does not chain"), "{logs}");
}

/// Without the feature there is no way to wedge the thread on purpose.
#[cfg(not(feature = "failpoints"))]
#[test]
fn failpoints_are_compiled_in() {
    let msg = "the liveness tests need `cargo test --features failpoints` (scripts/test.sh)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
}

/// The liveness failpoint: while the file exists the actor thread blocks.
#[cfg(feature = "failpoints")]
#[test]
fn a_wedged_actor_thread_fails_liveness_and_recovers() {
    let bao = require_bao!();
    let p = unique("wedge-live");
    bao.kv_put(&p, json!({"v": "1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wedge = d.join("wedge");
    let f = d.join("out/v");
    let config = ConfigBuilder::new().secret("s", &p, "1s", &f).build();
    let wedge_s = wedge.to_str().unwrap();
    let mut s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("LIVENESS_TIMEOUT", "2s"),
            ("SHUTDOWN_TIMEOUT", "3s"),
            ("SECRETS_SYNC_FAILPOINT_WEDGE", wedge_s),
        ],
    );
    s.wait_until(Duration::from_secs(15), "first sync", || file_has(&f, "1"));
    let isready = |d: &Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
        cmd.env_clear()
            .env("STATUS_FILE", d.join("status.json"))
            .env("LIVENESS_TIMEOUT", "2s")
            .arg("isready");
        run_to_end(cmd)
    };
    s.wait_until(Duration::from_secs(10), "ready", || isready(d).0 == 0);
    assert_eq!(s.get("/health").unwrap().0, 200);

    // Wedge it: /health 503 within the window (2 s) plus a beat or two.
    std::fs::write(&wedge, "").unwrap();
    let t = Instant::now();
    s.wait_until(Duration::from_secs(8), "/health 503 while wedged", || {
        s.get("/health").is_ok_and(|(c, _)| c == 503)
    });
    let turned = t.elapsed();
    assert!(turned < Duration::from_secs(5), "{turned:?}");
    // /ready answers (503) instead of hanging on the stuck actor.
    let t = Instant::now();
    let (code, _) = s.get("/ready").expect("/ready answers");
    assert_eq!(code, 503);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // isready sees the stale heartbeat.
    s.wait_until(Duration::from_secs(8), "isready fails while wedged", || {
        isready(d).0 == 1
    });
    let (_, _, err) = isready(d);
    assert!(err.contains("wedged"), "{err}");
    // Rotations wait while wedged...
    bao.kv_put(&p, json!({"v": "2"}));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        file_has(&f, "1"),
        "synced while the actor thread was blocked?"
    );

    // ...and resume once released; /health is 200 again.
    std::fs::remove_file(&wedge).unwrap();
    s.wait_until(Duration::from_secs(8), "/health 200 again", || {
        s.get("/health").is_ok_and(|(c, _)| c == 200)
    });
    s.wait_until(Duration::from_secs(10), "rotation after release", || {
        file_has(&f, "2")
    });
    s.wait_until(Duration::from_secs(10), "isready again", || {
        isready(d).0 == 0
    });

    // SIGTERM while wedged: the signal thread's deadline ends it within
    // SHUTDOWN_TIMEOUT (3 s), with its own exit status and a log line.
    std::fs::write(&wedge, "").unwrap();
    s.wait_until(Duration::from_secs(8), "wedged again", || {
        s.get("/health").is_ok_and(|(c, _)| c == 503)
    });
    let (st, took) = exit_within(&mut s, Duration::from_secs(10));
    assert_eq!(st.code(), Some(3), "{}", s.logs());
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(
        s.logs()
            .contains("shutdown did not finish within SHUTDOWN_TIMEOUT"),
        "{}",
        s.logs()
    );
}

fn post(s: &Sync, path: &str) -> (u16, serde_json::Value) {
    let (code, body) = common::http(
        &format!("127.0.0.1:{}", s.metrics_port),
        "POST",
        path,
        None,
        None,
    )
    .expect("POST");
    (code, serde_json::from_str(&body).unwrap_or_default())
}

/// Case 6: a forced refresh does not mint a certificate while the one on
/// disk is valid (it says so); `reissue=true` does, at most once a minute.
#[test]
fn a_forced_refresh_keeps_a_valid_certificate_unless_asked_to_reissue() {
    let bao = require_bao!();
    let mount = pki_mount(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("tls");
    let s = Sync::start(
        d,
        &pki_config(&mount, &out),
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("REFRESH_API", "true")],
    );
    let crt = out.join("tls.crt");
    s.wait_until(Duration::from_secs(15), "issued", || {
        std::fs::read_to_string(&crt).is_ok_and(|c| c.contains("BEGIN CERTIFICATE"))
    });
    let first = std::fs::read_to_string(&crt).unwrap();
    let (code, body) = post(&s, "/refresh");
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["queued"], json!([]), "{body}");
    assert_eq!(body["skipped"][0]["name"], "web", "{body}");
    let reason = body["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("certificate valid until"), "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(std::fs::read_to_string(&crt).unwrap(), first, "re-issued");

    let (code, body) = post(&s, "/refresh/web?reissue=true");
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["queued"], json!(["web"]), "{body}");
    s.wait_until(Duration::from_secs(15), "re-issued on request", || {
        std::fs::read_to_string(&crt).is_ok_and(|c| c != first && c.contains("BEGIN"))
    });
    std::thread::sleep(Duration::from_millis(1100));
    let (code, body) = post(&s, "/refresh/web?reissue=true");
    assert_eq!(code, 202, "{body}");
    let reason = body["skipped"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("at most one re-issue per secret per minute"),
        "{body}"
    );
}

/// Case 15: a loop on `POST /refresh` with many secrets is held to the
/// process budget (50 at once, 10 a second): the rest are skipped with the
/// reason, then 429 with Retry-After.
#[test]
fn forced_refreshes_have_a_process_budget() {
    let bao = require_bao!();
    let p = unique("wedge-budget");
    bao.kv_put(&p, json!({"v": "x"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut cfg = ConfigBuilder::new();
    for i in 0..60 {
        cfg = cfg.secret(&format!("s{i}"), &p, "1h", &d.join(format!("out/{i}")));
    }
    let s = Sync::start(
        d,
        &cfg.build(),
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("REFRESH_API", "true")],
    );
    s.wait_until(Duration::from_secs(20), "all synced", || {
        (0..60).all(|i| file_has(&d.join(format!("out/{i}")), "x"))
    });
    let (code, body) = post(&s, "/refresh");
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["queued"].as_array().map(Vec::len), Some(50), "{body}");
    assert_eq!(body["skipped"].as_array().map(Vec::len), Some(10), "{body}");
    assert!(body["skipped"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("budget"));
    // Right after: 429, with the time until the budget has room again.
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.metrics_port)).unwrap();
    c.write_all(b"POST /refresh HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 429"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("budget"), "{answer}");
}

/// Host pids of the processes whose parent is `ppid`, with their state.
fn children_of(ppid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut f = after.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            out.push((pid, state));
        }
    }
    out
}

/// Case 12: as pid 1 (its own PID namespace, as in a container without an
/// init), secrets-sync reaps the orphans its `exec` actions leave behind,
/// and SIGTERM to pid 1 still ends it cleanly.
#[test]
fn as_pid_1_it_reaps_orphans_of_its_actions() {
    let bao = require_bao!();
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "the pid 1 test needs root (a PID namespace)"
        );
        eprintln!("SKIPPED: the pid 1 test needs root");
        return;
    }
    let p = unique("wedge-pid1");
    bao.kv_put(&p, json!({"v": "0"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wrapper = d.join("as-pid1.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --pid --fork --kill-child --mount-proc {} \"$@\"\n",
            env!("CARGO_BIN_EXE_secrets-sync")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let f = d.join("out/v");
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "s", "path": p, "refreshInterval": "1s",
            "files": [{"path": f, "key": "v"}], "onChange": ["orphan"]}))
        // The shell exits at once and leaves its background child to pid 1.
        .action(
            "orphan",
            json!({"exec": ["/bin/sh", "-c", "sleep 0.2 & exit 0"], "wait": "10ms"}),
        )
        .build();
    let mut s = Sync::start_with(
        &wrapper,
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        |_| {},
    );
    for i in 1..=5 {
        bao.kv_put(&p, json!({"v": i.to_string()}));
        s.wait_until(Duration::from_secs(10), "rotation", || {
            file_has(&f, &i.to_string())
        });
        s.wait_until(Duration::from_secs(10), "the action ran", || {
            s.metric(r#"secret_action_runs_total{action="orphan",result="ok"}"#)
                .unwrap_or(0.0)
                >= f64::from(i + 1)
        });
    }
    std::thread::sleep(Duration::from_millis(600));
    // unshare -> pid 1 (the init) -> the sidecar; the orphans' parent is pid 1.
    let unshare = s.child.id();
    let init = children_of(unshare);
    assert_eq!(init.len(), 1, "{init:?}");
    let init = init[0].0;
    let under_init = children_of(init);
    let zombies: Vec<_> = under_init.iter().filter(|(_, st)| *st == 'Z').collect();
    assert!(zombies.is_empty(), "zombies under pid 1: {under_init:?}");
    let sidecar: Vec<_> = under_init.iter().filter(|(_, st)| *st != 'Z').collect();
    assert_eq!(sidecar.len(), 1, "{under_init:?}");
    // SIGTERM to pid 1 is forwarded; the sidecar's exit status comes back.
    // SAFETY: kill(2) on a pid of this test's own process tree.
    unsafe { libc::kill(init as i32, libc::SIGTERM) };
    let t = Instant::now();
    let st = loop {
        if let Ok(Some(st)) = s.child.try_wait() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{}", s.logs());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(0), "{}", s.logs());
    assert!(s.logs().contains("shutdown complete"), "{}", s.logs());
}
