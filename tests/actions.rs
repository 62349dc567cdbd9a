//! Change actions and refresh on demand (issue 14), with real processes and
//! the real OpenBao: a program that writes a pid file and counts the
//! SIGHUPs it gets, an HTTP listener counting requests, shell scripts.
//! Assertions read the program's own counts, `/metrics` and `/status`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{file_has, read, run_to_end, unique, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// The app: writes its pid file, counts SIGHUPs into a file.
const COUNTER: &str = r#"
import os, signal, sys, time
pidfile, countfile = sys.argv[1], sys.argv[2]
n = 0
def put(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
def hup(sig, frame):
    global n
    n += 1
    put(countfile, str(n))
signal.signal(signal.SIGHUP, hup)
put(countfile, "0")
put(pidfile, str(os.getpid()))
while True:
    time.sleep(1)
"#;

/// A child process killed when the test ends, however it ends.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_counter(dir: &Path) -> (App, PathBuf, PathBuf) {
    let pid = dir.join("app.pid");
    let count = dir.join("hups");
    let script = dir.join("counter.py");
    std::fs::write(&script, COUNTER).unwrap();
    let child = Command::new("python3")
        .arg(&script)
        .arg(&pid)
        .arg(&count)
        .spawn()
        .expect("python3 is needed for the signal test (scripts/test.sh installs it)");
    let app = App(child);
    common::wait_for(Duration::from_secs(10), || pid.exists()).expect("counter started");
    (app, pid, count)
}

fn hups(count: &Path) -> u32 {
    read(count).and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

fn runs(s: &Sync, action: &str, result: &str) -> f64 {
    s.metric(&format!(
        r#"secret_action_runs_total{{action="{action}",result="{result}"}}"#
    ))
    .unwrap_or(0.0)
}

#[test]
fn one_rotation_of_two_secrets_signals_once_and_unchanged_refreshes_never() {
    let bao = require_bao!();
    let (pa, pb) = (unique("act-a"), unique("act-b"));
    bao.kv_put(&pa, json!({"v": "a1"}));
    bao.kv_put(&pb, json!({"v": "b1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_app, pid, count) = start_counter(d);
    let (fa, fb) = (d.join("out/a"), d.join("out/b"));
    let secret = |name: &str, path: &str, file: &Path| {
        json!({"name": name, "path": path, "refreshInterval": "1s",
               "files": [{"path": file, "key": "v"}], "onChange": ["reload-app"]})
    };
    let config = ConfigBuilder::new()
        .secret_json(secret("a", &pa, &fa))
        .secret_json(secret("b", &pb, &fb))
        .action(
            "reload-app",
            json!({"signal": "SIGHUP", "pidFile": pid, "wait": "2s"}),
        )
        .build();
    let s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    // The first sync creates both files: one run for both.
    s.wait_until(Duration::from_secs(15), "first run", || hups(&count) == 1);
    assert!(file_has(&fa, "a1") && file_has(&fb, "b1"));
    // Unchanged refreshes over several intervals: no run.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(hups(&count), 1, "an unchanged refresh ran the action");
    assert_eq!(runs(&s, "reload-app", "ok"), 1.0);

    // One rotation touching both secrets, within `wait`: exactly one signal.
    bao.kv_put(&pa, json!({"v": "a2"}));
    bao.kv_put(&pb, json!({"v": "b2"}));
    s.wait_until(Duration::from_secs(15), "second run", || hups(&count) >= 2);
    assert!(file_has(&fa, "a2") && file_has(&fb, "b2"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hups(&count), 2, "two secrets in one wait must signal once");
    assert_eq!(runs(&s, "reload-app", "ok"), 2.0);
    let st = s.status();
    let a = &st["actions"]["reload-app"];
    assert_eq!(a["last_result"], "ok", "{st}");
    assert_eq!(a["last_secrets"], json!(["a", "b"]), "{st}");
    assert_eq!(a["runs"], 2, "{st}");
    let logs = s.logs();
    assert!(logs.contains("action_run"), "no audit line:\n{logs}");
    // Off by default: no refresh endpoint.
    assert_eq!(s.post("/refresh").0, 404);
}

#[test]
fn exec_gets_names_and_paths_never_values_in_logs_and_a_hang_is_killed() {
    let bao = require_bao!();
    let canary = format!("CANARY-ACTION-{}", std::process::id());
    let (p1, p2) = (unique("act-exec"), unique("act-hang"));
    bao.kv_put(&p1, json!({"v": canary}));
    bao.kv_put(&p2, json!({"v": "x"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (f1, f2) = (d.join("out/one"), d.join("out/hang"));
    let seen = d.join("seen");
    let envdump = d.join("env");
    let grandchild = d.join("grandchild.pid");
    // Prints the secret (stdout and stderr): it must not reach the logs.
    let script = format!(
        "echo \"$SECRETS_SYNC_ACTION|$SECRETS_SYNC_SECRETS|$SECRETS_SYNC_FILES\" > {seen}; env > {envdump}; cat \"$SECRETS_SYNC_FILES\"; cat \"$SECRETS_SYNC_FILES\" >&2",
        seen = seen.display(),
        envdump = envdump.display()
    );
    let hang = format!("sleep 300 & echo $! > {}; wait", grandchild.display());
    let config = ConfigBuilder::new()
        .secret_json(json!({"name": "one", "path": p1, "refreshInterval": "1s",
            "files": [{"path": f1, "key": "v"}], "onChange": ["script"]}))
        .secret_json(json!({"name": "hang", "path": p2, "refreshInterval": "1s",
            "files": [{"path": f2, "key": "v"}], "onChange": ["hang"]}))
        .action(
            "script",
            json!({"exec": ["/bin/sh", "-c", script], "wait": "0s"}),
        )
        .action(
            "hang",
            json!({"exec": ["/bin/sh", "-c", hang], "wait": "0s", "timeout": "1s"}),
        )
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("READY_POLICY", "all")],
    );
    s.wait_until(Duration::from_secs(15), "script ran", || {
        runs(&s, "script", "ok") == 1.0
    });
    let got = read(&seen).unwrap_or_default();
    assert_eq!(got.trim(), format!("script|one|{}", f1.display()));
    let env = read(&envdump).unwrap_or_default();
    assert!(
        !env.contains("VAULT_TOKEN") && !env.contains("CONFIG_FILE"),
        "the action saw this process's environment:\n{env}"
    );
    assert!(env.contains("SECRETS_SYNC_ACTION=script"), "{env}");

    // The hang: killed (with its child) at its timeout, retried 3 times.
    s.wait_until(Duration::from_secs(30), "hang timed out 4 times", || {
        runs(&s, "hang", "timeout") == 4.0
    });
    let first_child: i32 = read(&grandchild)
        .and_then(|t| t.trim().parse().ok())
        .expect("the hanging script wrote its child's pid");
    common::wait_for(Duration::from_secs(5), || !alive(first_child))
        .unwrap_or_else(|_| panic!("process {first_child} of the hung action still runs"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        runs(&s, "hang", "timeout"),
        4.0,
        "retried more than 3 times"
    );
    // The syncs stayed green.
    assert_eq!(s.get("/ready").unwrap().0, 200);
    let st = s.status();
    assert_eq!(st["actions"]["hang"]["last_result"], "timeout", "{st}");
    assert_eq!(st["secrets"]["hang"]["state"], "synced", "{st}");

    let logs = s.logs();
    assert!(!logs.contains(&canary), "a value reached the logs:\n{logs}");
    assert!(!st.to_string().contains(&canary), "a value reached /status");
    let (_, metrics) = s.get("/metrics").unwrap();
    assert!(!metrics.contains(&canary));
    assert!(logs.contains("output_bytes"), "{logs}");
}

fn alive(pid: i32) -> bool {
    // Gone, or a zombie waiting for its reaper.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn a_missing_pid_file_is_skipped_and_http_500_is_retried_then_failed_while_sync_stays_green() {
    let bao = require_bao!();
    let (p1, p2, p3) = (unique("act-pid"), unique("act-http"), unique("act-ok"));
    for p in [&p1, &p2, &p3] {
        bao.kv_put(p, json!({"v": "x"}));
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let failing = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&failing);
    let bad_port = common::serve_http(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        (
            "500 Internal Server Error",
            "text/plain",
            b"SECRET-IN-BODY".to_vec(),
        )
    });
    let good = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&good);
    let good_port = common::serve_http(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        ("200 OK", "text/plain", b"reloaded".to_vec())
    });
    let secret = |name: &str, path: &str, action: &str| {
        json!({"name": name, "path": path, "refreshInterval": "1s",
               "files": [{"path": d.join("out").join(name), "key": "v"}], "onChange": [action]})
    };
    let config = ConfigBuilder::new()
        .secret_json(secret("pid", &p1, "nobody-home"))
        .secret_json(secret("web", &p2, "broken-reload"))
        .secret_json(secret("prom", &p3, "prometheus"))
        .action(
            "nobody-home",
            json!({"signal": "SIGHUP", "pidFile": d.join("missing.pid"), "wait": "0s"}),
        )
        .action(
            "broken-reload",
            json!({"http": {"url": format!("http://127.0.0.1:{bad_port}/-/reload")}, "wait": "0s", "timeout": "2s"}),
        )
        .action(
            "prometheus",
            json!({"http": {"url": format!("http://127.0.0.1:{good_port}/-/reload"), "method": "POST",
                             "headers": {"X-Reload": "1"}}, "wait": "0s"}),
        )
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("READY_POLICY", "all")],
    );
    s.wait_until(Duration::from_secs(15), "skipped", || {
        runs(&s, "nobody-home", "skipped") == 1.0
    });
    s.wait_until(Duration::from_secs(15), "prometheus reloaded", || {
        runs(&s, "prometheus", "ok") == 1.0
    });
    assert_eq!(good.load(Ordering::SeqCst), 1);
    // 1 run + 3 retries, with the backoff (200ms, 400ms, 800ms in tests).
    s.wait_until(Duration::from_secs(20), "4 failed runs", || {
        runs(&s, "broken-reload", "failed") == 4.0
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(failing.load(Ordering::SeqCst), 4, "1 run + 3 retries");
    assert_eq!(runs(&s, "broken-reload", "failed"), 4.0);
    assert_eq!(s.get("/ready").unwrap().0, 200);
    let st = s.status();
    assert_eq!(st["secrets"]["web"]["state"], "synced", "{st}");
    assert_eq!(
        st["actions"]["nobody-home"]["last_result"], "skipped",
        "{st}"
    );
    let reason = st["actions"]["broken-reload"]["last_reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("HTTP 500"), "{st}");
    assert!(s.metric(r#"secret_action_duration_seconds_count{action="prometheus"}"#) == Some(1.0));
    assert!(!s.logs().contains("SECRET-IN-BODY"));
}

#[test]
fn sigusr1_and_post_refresh_fetch_within_a_second_and_are_rate_limited() {
    let bao = require_bao!();
    let path = unique("act-refresh");
    bao.kv_put(&path, json!({"v": "r1"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out/r");
    let config = ConfigBuilder::new()
        .secret("r", &path, "1h", &out)
        .secret("other", &path, "1h", &d.join("out/o"))
        .build();
    let s = Sync::start(
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("REFRESH_API", "true")],
    );
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&out, "r1")
    });

    bao.kv_put(&path, json!({"v": "r2"}));
    let t = Instant::now();
    s.signal(libc::SIGUSR1);
    s.wait_until(Duration::from_secs(1), "SIGUSR1 refresh within 1 s", || {
        file_has(&out, "r2")
    });
    let took_signal = t.elapsed();

    // Over HTTP, for one secret, after the signal's rate limit.
    std::thread::sleep(Duration::from_millis(1100));
    bao.kv_put(&path, json!({"v": "r3"}));
    let t = Instant::now();
    let (code, body) = s.post("/refresh/r");
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["queued"],
        json!(["r"])
    );
    s.wait_until(Duration::from_secs(1), "POST refresh within 1 s", || {
        file_has(&out, "r3")
    });
    let took_post = t.elapsed();
    // Again at once: rate-limited.
    let (code, body) = s.post("/refresh/r");
    assert_eq!(code, 429, "{body}");
    // All: only the other one is queued.
    let (code, body) = s.post("/refresh");
    assert_eq!(code, 202, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["queued"],
        json!(["other"])
    );
    let (code, _) = s.post("/refresh");
    assert_eq!(code, 429);
    assert_eq!(s.post("/refresh/nope").0, 404);
    let (code, _) = common::http(
        &format!("127.0.0.1:{}", s.metrics_port),
        "GET",
        "/refresh",
        None,
        None,
    )
    .unwrap();
    assert_eq!(code, 405);
    // Not on the probe listener.
    let (code, _) = common::http(
        &format!("127.0.0.1:{}", s.http_port),
        "POST",
        "/refresh",
        None,
        None,
    )
    .unwrap();
    assert_eq!(code, 404);
    eprintln!("refresh latency: SIGUSR1 {took_signal:?}, POST {took_post:?}");
}

#[test]
fn check_rejects_each_bad_action_by_name_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("bad.yaml");
    let config = ConfigBuilder::new()
        .store("address", "http://127.0.0.1:1")
        .store("token", "t")
        .secret_json(json!({"name": "db", "path": "app/db",
            "files": [{"path": d.join("db"), "key": "v"}],
            "onChange": ["no-such-action", "bad-signal"]}))
        .action(
            "bad-signal",
            json!({"signal": "SIGNOPE", "pidFile": "/run/app.pid"}),
        )
        .action("empty-argv", json!({"exec": []}))
        .action(
            "two-kinds",
            json!({"signal": "SIGHUP", "process": "nginx", "exec": ["/bin/true"]}),
        )
        .action("bad-url", json!({"http": {"url": "ftp://x/reload"}}))
        .action("no-target", json!({"signal": "SIGHUP"}))
        .build();
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    cmd.env_clear().arg("check").arg("--config").arg(&cfg);
    let (code, out, err) = run_to_end(cmd);
    let text = format!("{out}{err}");
    assert_ne!(code, 0, "{text}");
    for want in [
        r#"onChange[0]: unknown action "no-such-action""#,
        r#"actions.bad-signal.signal: unknown signal "SIGNOPE""#,
        "actions.empty-argv.exec: is empty",
        "actions.two-kinds: give exactly one of `signal`, `exec` or `http` (found: signal and exec)",
        "actions.bad-url.http.url: is not an http:// or https:// URL",
        "actions.no-target: a signal action needs its target",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}
