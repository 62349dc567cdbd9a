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
    eprintln!("MEASURED FIFO pidFile: SIGTERM exit after {took:?}");
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
    eprintln!("MEASURED FIFO certificate: run --once ended in {took:?}");
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
    eprintln!("MEASURED wedge: /health 503 after {turned:?} (LIVENESS_TIMEOUT 2s)");
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
    eprintln!(
        "MEASURED wedged SIGTERM: exit {:?} after {took:?} (SHUTDOWN_TIMEOUT 3s)",
        st.code()
    );
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
    let (code, body) = s.post(path);
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

/// Peak resident memory of a process (VmHWM), KiB.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Cases 4 and 5: a YAML alias bomb read through `fromYaml` and a PKCS#12
/// asking for 2 000 000 key-derivation iterations, both as secret values
/// in a real OpenBao. Each fails its own secret at once with an error that
/// names the function; another secret keeps syncing; memory stays small;
/// no value is printed (a canary in each).
#[test]
fn values_that_drive_work_are_bounded() {
    let bao = require_bao!();
    let (pb, pp, pg) = (unique("w-bomb"), unique("w-p12"), unique("w-good"));
    let canary = "CANARY-7f3e9a";
    let bomb = format!(
        "s: &s \"{canary}{}\"\nl: [{}]\n",
        "lol".repeat(1333),
        vec!["*s"; 3000].join(",")
    );
    use base64::Engine as _;
    let p12 = base64::engine::general_purpose::STANDARD.encode(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pki/leaf-2m-iter.p12"
        ))
        .unwrap(),
    );
    bao.kv_put(&pb, json!({"y": bomb}));
    bao.kv_put(&pp, json!({"p12": p12, "pass": canary}));
    bao.kv_put(&pg, json!({"v": "ok"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "bomb", "path": pb, "refreshInterval": "1s",
            "template": {"data": {"out": "{{ .y | fromYaml | toJson }}"}},
            "files": [{"path": d.join("out/bomb"), "key": "out"}]}))
        .secret_json(json!({"name": "p12", "path": pp, "refreshInterval": "1s",
            "template": {"data": {"key": "{{ .p12 | b64dec | pkcs12keyPass .pass }}"}},
            "files": [{"path": d.join("out/key"), "key": "key"}]}))
        .secret("good", &pg, "1s", &d.join("out/good"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("LOG_LEVEL", "trace")],
    );
    s.wait_until(Duration::from_secs(15), "the good secret", || {
        file_has(&d.join("out/good"), "ok")
    });
    s.wait_until(Duration::from_secs(15), "both refused", || {
        let st = s.status();
        let err = |n: &str| {
            st["secrets"][n]["last_error"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        err("bomb").contains("fromYaml") && err("p12").contains("pkcs12keyPass")
    });
    let st = s.status();
    let bomb_err = st["secrets"]["bomb"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bomb_err.contains("more than 8388608 bytes"), "{bomb_err}");
    let p12_err = st["secrets"]["p12"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        p12_err.contains("2000000 key-derivation iterations"),
        "{p12_err}"
    );
    assert!(!d.join("out/bomb").exists() && !d.join("out/key").exists());
    // Several failed attempts later, the good one still rotates.
    bao.kv_put(&pg, json!({"v": "ok2"}));
    s.wait_until(Duration::from_secs(15), "rotation beside them", || {
        file_has(&d.join("out/good"), "ok2")
    });
    let peak = peak_kib(s.child.id());
    eprintln!("MEASURED values: peak RSS {peak} KiB with a 16 KB alias bomb and a 2M-iteration PKCS#12 retried");
    assert!(peak < MEMORY_LIMIT_KIB, "peak {peak} KiB");
    let logs = s.logs();
    assert!(!logs.contains(canary), "a value reached the log");
    assert!(!st.to_string().contains(canary), "a value reached /status");
}

/// The shipped manifests' memory limit.
const MEMORY_LIMIT_KIB: u64 = 64 * 1024;

/// Case 7: a hostile Vault whose lease renewals grant 0 s. The sidecar
/// fetches new credentials instead, and never makes more than a request
/// or two a second for the secret (546 renewals a second before).
#[test]
fn zero_second_renewals_do_not_loop() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let (reads, renewals) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (r2, n2) = (Arc::clone(&reads), Arc::clone(&renewals));
    let port = common::serve_http_with_line(move |line, _| {
        let json = "application/json";
        if line.contains("/v1/auth/token/lookup-self") {
            return (
                "200 OK",
                json,
                br#"{"data":{"ttl":0,"renewable":false}}"#.to_vec(),
            );
        }
        if line.contains("/v1/sys/leases/renew") {
            n2.fetch_add(1, Ordering::Relaxed);
            return (
                "200 OK",
                json,
                br#"{"lease_id":"dyn/creds/app/L","lease_duration":0,"renewable":true}"#.to_vec(),
            );
        }
        if line.contains("/v1/dyn/creds/app") {
            r2.fetch_add(1, Ordering::Relaxed);
            return (
                "200 OK",
                json,
                br#"{"lease_id":"dyn/creds/app/L","lease_duration":3,"renewable":true,"data":{"user":"u"}}"#
                    .to_vec(),
            );
        }
        ("404 Not Found", json, br#"{"errors":[]}"#.to_vec())
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "dyn", "dynamic": {"path": "dyn/creds/app"},
            "files": [{"path": d.join("out/user"), "key": "user"}]}))
        .build();
    let s = Sync::start(
        d,
        &config,
        &format!("http://127.0.0.1:{port}"),
        &[("VAULT_TOKEN", "hostile")],
    );
    s.wait_until(Duration::from_secs(15), "first read", || {
        file_has(&d.join("out/user"), "u")
    });
    let (r0, n0) = (
        reads.load(Ordering::Relaxed),
        renewals.load(Ordering::Relaxed),
    );
    let lines0 = s.logs().lines().count();
    std::thread::sleep(Duration::from_secs(8));
    let (r, n) = (
        reads.load(Ordering::Relaxed) - r0,
        renewals.load(Ordering::Relaxed) - n0,
    );
    let lines = s.logs().lines().count() - lines0;
    eprintln!("MEASURED hostile renewals: {r} reads + {n} renewals, {lines} log lines in 8 s");
    assert!(n >= 1, "the renewal path was not exercised ({r} reads)");
    assert!(r + n <= 16, "{r} reads and {n} renewals in 8 s");
    assert!(lines < 200, "{lines} log lines in 8 s");
}

/// Root runs the sidecar as nobody (65534) from a copy of the binary
/// nobody can reach (the checkout may sit in a directory only root may
/// enter); elsewhere it cannot, and under CI that is a failure.
fn as_nobody(d: &Path) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "this test needs root (to run the sidecar as another uid)"
        );
        eprintln!("SKIPPED: this test needs root");
        return None;
    }
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let program = d.join("secrets-sync");
    std::fs::copy(env!("CARGO_BIN_EXE_secrets-sync"), &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(program)
}

/// `run` of the copy `program` (see [`as_nobody`]) as nobody.
fn start_as_nobody(program: &Path, d: &Path, config: &str, bao: &Bao) -> Sync {
    use std::os::unix::process::CommandExt;
    Sync::start_with(
        program,
        d,
        config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        |c| {
            c.uid(65534).gid(65534);
        },
    )
}

/// Case 11: the process is not dumpable. Run as nobody, its
/// `/proc/<pid>/environ` (which holds VAULT_TOKEN) belongs to root, not to
/// nobody, and another process running as nobody cannot read it.
#[test]
fn the_process_is_not_dumpable() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(program) = as_nobody(d) else { return };
    let p = unique("w-dump");
    bao.kv_put(&p, json!({"v": "1"}));
    let config = ConfigBuilder::new()
        .secret("s", &p, "1s", &d.join("out/v"))
        .build();
    let s = start_as_nobody(&program, d, &config, bao);
    s.wait_until(Duration::from_secs(15), "synced", || {
        file_has(&d.join("out/v"), "1")
    });
    let pid = s.child.id();
    use std::os::unix::fs::MetadataExt;
    let environ = format!("/proc/{pid}/environ");
    assert_eq!(std::fs::metadata(&environ).unwrap().uid(), 0, "dumpable");
    // A neighbour of the same uid.
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys; open(sys.argv[1],'rb').read(); print('READ')",
        ])
        .arg(&environ)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

/// Case 13: `writeMode: inPlace` on a file the app owns (another uid, mode
/// 0644: the sidecar can neither open it for writing nor chmod it) falls
/// back to a rename, with the warning and the metric, instead of failing
/// for ever.
#[test]
fn in_place_on_another_users_file_falls_back_to_a_rename() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(program) = as_nobody(d) else { return };
    let p = unique("w-inplace");
    bao.kv_put(&p, json!({"v": "from-vault"}));
    let shared = d.join("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let target = shared.join("app.conf");
    std::fs::write(&target, "the app's").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&target, Some(1000), Some(1000)).unwrap();
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "conf", "path": p, "refreshInterval": "1s",
            "files": [{"path": target, "key": "v", "mode": "0644", "writeMode": "inPlace"}]}))
        .build();
    let s = start_as_nobody(&program, d, &config, bao);
    s.wait_until(Duration::from_secs(15), "written by rename", || {
        file_has(&target, "from-vault")
    });
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 65534);
    assert!(
        s.logs().contains("the file is another user's"),
        "{}",
        s.logs()
    );
    s.wait_until(Duration::from_secs(5), "counted", || {
        s.metric(r#"secret_inplace_fallbacks_total{secret_name="conf"}"#)
            .unwrap_or(0.0)
            >= 1.0
    });
    // Our own file from now on: later rotations are in place again.
    let ino = std::fs::metadata(&target).unwrap().ino();
    bao.kv_put(&p, json!({"v": "rotated"}));
    s.wait_until(Duration::from_secs(15), "rotated", || {
        file_has(&target, "rotated")
    });
    assert_eq!(
        std::fs::metadata(&target).unwrap().ino(),
        ino,
        "not in place"
    );
}

/// Case 12: a signal by process name reaches the app even when a decoy of
/// another uid has the same name: the decoy is skipped (not permitted),
/// the run is counted `partial`, and nothing aborts.
#[test]
fn a_decoy_of_another_uid_does_not_stop_the_signal() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(program) = as_nobody(d) else { return };
    let name = format!("ssync-app{}", std::process::id() % 100_000);
    let bin = d.join(&name);
    std::fs::copy("/bin/sleep", &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spawn = |uid: u32| {
        std::process::Command::new(&bin)
            .arg("60")
            .uid(uid)
            .gid(uid)
            .spawn()
            .unwrap()
    };
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut app = Killed(spawn(65534));
    let mut decoy = Killed(spawn(1000));
    let p = unique("w-decoy");
    bao.kv_put(&p, json!({"v": "1"}));
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "s", "path": p, "refreshInterval": "1s",
            "files": [{"path": d.join("out/v"), "key": "v"}], "onChange": ["stop-app"]}))
        .action(
            "stop-app",
            json!({"signal": "SIGTERM", "process": name, "wait": "10ms"}),
        )
        .build();
    let s = start_as_nobody(&program, d, &config, bao);
    s.wait_until(Duration::from_secs(15), "a partial run", || {
        s.metric(r#"secret_action_runs_total{action="stop-app",result="partial"}"#)
            .unwrap_or(0.0)
            >= 1.0
    });
    s.wait_until(Duration::from_secs(5), "the app got it", || {
        matches!(app.0.try_wait(), Ok(Some(_)))
    });
    assert!(
        matches!(decoy.0.try_wait(), Ok(None)),
        "the decoy was signalled"
    );
    let reason = s.status()["actions"]["stop-app"]["last_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("not permitted"), "{reason}");
}

/// Case 8: the app plants a directory at the set's old fixed temp name and
/// then at `..data` itself; every rotation still lands, `..data` stays our
/// symlink, and the planted directory is moved aside, never written into.
#[test]
fn planted_directories_do_not_stop_an_atomic_set() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(program) = as_nobody(d) else { return };
    let shared = d.join("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let p = unique("w-set");
    bao.kv_put(&p, json!({"a": "1", "b": "1"}));
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "set", "path": p, "refreshInterval": "1s", "atomicSet": true,
            "files": [{"path": shared.join("a"), "key": "a"}, {"path": shared.join("b"), "key": "b"}]}))
        .build();
    let s = start_as_nobody(&program, d, &config, bao);
    let both = |v: &str| file_has(&shared.join("a"), v) && file_has(&shared.join("b"), v);
    s.wait_until(Duration::from_secs(15), "first set", || both("1"));
    // The app (uid 1000) takes the old fixed name.
    let plant = |path: &Path| {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("a"), "decoy").unwrap();
        std::os::unix::fs::chown(path, Some(1000), Some(1000)).unwrap();
    };
    plant(&shared.join("..data_tmp"));
    bao.kv_put(&p, json!({"a": "2", "b": "2"}));
    s.wait_until(Duration::from_secs(15), "set despite ..data_tmp", || {
        both("2")
    });
    // Then ..data itself.
    std::fs::remove_file(shared.join("..data")).unwrap();
    plant(&shared.join("..data"));
    bao.kv_put(&p, json!({"a": "3", "b": "3"}));
    s.wait_until(Duration::from_secs(15), "set despite ..data", || both("3"));
    assert!(std::fs::symlink_metadata(shared.join("..data"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(s.logs().contains("moved aside"), "{}", s.logs());
}
