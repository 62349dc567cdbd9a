//! Faults a production cluster throws at the sidecar, against the real
//! OpenBao: the server dying and coming back, SIGTERM mid-write, an
//! unwritable target directory, readers racing rewrites.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{file_has, read, unique, wait_for, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

const TEMP_MARKER: &str = ".secrets-sync-tmp";

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(TEMP_MARKER) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn vault_killed_then_replaced_breaker_opens_files_kept_then_updated() {
    let Some(bin) = common::bao_bin() else { return };
    let port = common::free_port();
    let host = format!("127.0.0.1:{port}");
    let mut first = common::bao_command(&bin, port, &[]).spawn().expect("bao");
    common::wait_healthy(&host);
    let bao = Bao::at(format!("http://{host}"), bin.clone());
    bao.kv_put("app/a", json!({"v": "a-1"}));
    bao.kv_put("app/b", json!({"v": "b-1"}));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = ConfigBuilder::new()
        .secret("a", "app/a", "1s", &d.join("a"))
        .secret("b", "app/b", "1s", &d.join("b"))
        .build();
    let env = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3"),
        ("CIRCUIT_BREAKER_TIMEOUT", "3s"),
        ("CIRCUIT_BREAKER_MAX_REQUESTS", "1"),
        ("MAX_BACKOFF", "1s"),
        ("LOG_LEVEL", "info,secrets_sync::vault=trace"),
    ];
    let mut s = Sync::start(d, &config, &bao.addr, &env);
    wait_for(Duration::from_secs(15), || {
        file_has(&d.join("a"), "a-1") && file_has(&d.join("b"), "b-1")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let before = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("b")).unwrap(),
    );

    first.kill().unwrap();
    first.wait().unwrap();
    s.wait_until(Duration::from_secs(20), "the breaker opens", || {
        s.status()["vault"]["circuit_breaker"] == "open"
    });
    // Through a whole open period and into half-open. The order of requests
    // and transitions is only in the trace log (metrics count, they do not
    // order), so this part reads it.
    wait_for(Duration::from_secs(10), || {
        s.logs().contains(r#""to":"half-open""#)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(s.alive());
    assert_eq!(s.get("/health").unwrap().0, 200);
    assert_eq!(
        s.get("/ready").unwrap().0,
        200,
        "last good files still count as synced"
    );
    let breaker = s.status()["vault"]["circuit_breaker"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(breaker == "open" || breaker == "half-open", "{breaker}");
    let after = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("b")).unwrap(),
    );
    assert_eq!(before, after, "files changed while Vault was down");
    // While open, no request went out, and syncs were refused by the breaker.
    let logs = s.logs();
    let open_at = logs.find("circuit breaker opened").unwrap();
    let open_period = &logs[open_at..];
    let open_period = &open_period[..open_period.find(r#""to":"half-open""#).unwrap()];
    assert_eq!(
        open_period.matches(r#""message":"vault request""#).count(),
        0,
        "{open_period}"
    );
    assert!(
        open_period.contains(r#""error_kind":"circuit_open""#),
        "{open_period}"
    );

    // A new server on the same port, with new values.
    let mut second = common::bao_command(&bin, port, &[]).spawn().expect("bao");
    common::wait_healthy(&host);
    bao.kv_put("app/a", json!({"v": "a-2"}));
    bao.kv_put("app/b", json!({"v": "b-2"}));
    let t = Instant::now();
    // MAX_BACKOFF (1s) + refresh (1s) + breaker timeout (3s), with slack.
    wait_for(Duration::from_secs(12), || {
        file_has(&d.join("a"), "a-2") && file_has(&d.join("b"), "b-2")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    eprintln!(
        "files updated {:?} after the new server was seeded",
        t.elapsed()
    );
    assert_eq!(s.status()["vault"]["circuit_breaker"], "closed");
    assert!(s.stop().success());
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn sigterm_during_writes_exits_zero_and_leaves_no_temp_files() {
    let bao = require_bao!();
    // On disk (not tmpfs), with big files, so that writes are slow enough to
    // be in flight when the signal lands.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = dir.path();
    let big = "s".repeat(512 * 1024);
    let mut config = ConfigBuilder::new();
    for i in 0..30 {
        let p = unique("big");
        bao.kv_put(&p, json!({ "v": format!("{i}:{big}") }));
        config = config.secret_json(json!({
            "name": format!("s{i}"),
            "path": p,
            "files": [{"path": d.join(format!("out/s{i}")), "key": "v"}],
        }));
    }
    let config = config.build();
    let mut s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    wait_for(Duration::from_secs(15), || {
        std::fs::read_dir(d.join("out")).is_ok_and(|mut r| r.next().is_some())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let status = s.stop();
    // Exit 0 only when the shutdown finished within SHUTDOWN_TIMEOUT (a
    // timed-out one exits 1).
    assert!(status.success(), "{status:?}\n{}", s.logs());
    assert_eq!(temp_files(d), Vec::<PathBuf>::new());
    // Whatever was written is whole.
    for e in std::fs::read_dir(d.join("out")).unwrap().flatten() {
        let content = std::fs::read_to_string(e.path()).unwrap();
        let i: usize = e.file_name().to_string_lossy()[1..].parse().unwrap();
        assert_eq!(
            content,
            format!("{i}:{big}"),
            "partial file {}",
            e.path().display()
        );
    }
}

#[test]
fn unwritable_target_directory_fails_only_that_secret() {
    let bao = require_bao!();
    let ok = unique("rw-ok");
    let ro = unique("rw-ro");
    bao.kv_put(&ok, json!({"v": "ok"}));
    bao.kv_put(&ro, json!({"v": "CANARY-ro-9c1e"}));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    let ro_dir = d.join("readonly");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "ok",
            "path": ok,
            "files": [{"path": d.join("ok/v"), "key": "v"}],
        }))
        .secret("ro", &ro, "1s", &d.join("readonly/v"))
        .build();
    // Root ignores directory permissions: run the sidecar as nobody then,
    // from a copy of the binary that nobody can reach (the checkout may sit
    // in a directory only root may enter).
    let as_root = unsafe { libc::geteuid() } == 0;
    let program = d.join("secrets-sync");
    std::fs::copy(env!("CARGO_BIN_EXE_secrets-sync"), &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = Sync::start_with(
        &program,
        d,
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        |c| {
            if as_root {
                c.uid(65534).gid(65534);
            }
        },
    );
    wait_for(Duration::from_secs(15), || file_has(&d.join("ok/v"), "ok"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    wait_for(Duration::from_secs(10), || {
        s.status()["secrets"]["ro"]["consecutive_failures"].as_u64() >= Some(2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let err = s.status()["secrets"]["ro"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("readonly") && err.contains("ermission denied"),
        "{err}"
    );
    assert!(s.alive());
    assert_eq!(s.get("/ready").unwrap().0, 200);
    assert!(!ro_dir.join("v").exists());
    assert!(!s.logs().contains("CANARY-ro-9c1e"));
}

#[test]
fn readers_never_see_a_partial_or_empty_file() {
    let bao = require_bao!();
    let path = unique("race");
    let body = "x".repeat(256 * 1024);
    let value = |i: u32| format!("{i:04}:{body}");
    bao.kv_put(&path, json!({ "v": value(0) }));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let config = ConfigBuilder::new().secret("r", &path, "1s", &out).build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
    );
    wait_for(Duration::from_secs(15), || out.exists())
        .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (done, out, body) = (Arc::clone(&done), out.clone(), body.clone());
        std::thread::spawn(move || {
            let (mut reads, mut bad, mut seen) = (0u32, 0u32, std::collections::BTreeSet::new());
            while !done.load(Ordering::Relaxed) {
                let c = std::fs::read_to_string(&out).unwrap_or_default();
                reads += 1;
                match c.split_once(':') {
                    Some((n, rest)) if n.len() == 4 && rest == body => {
                        seen.insert(n.to_string());
                    }
                    _ => bad += 1,
                }
            }
            (reads, bad, seen.len())
        })
    };
    // One new value per refresh (the floor is 1s).
    for i in 1..=8 {
        bao.kv_put(&path, json!({ "v": value(i) }));
        std::thread::sleep(Duration::from_millis(1100));
    }
    wait_for(Duration::from_secs(5), || {
        read(&out).is_some_and(|c| c.starts_with("0008:"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    done.store(true, Ordering::Relaxed);
    let (reads, bad, versions) = reader.join().unwrap();
    eprintln!("{reads} reads, {versions} versions seen, {bad} bad");
    assert_eq!(bad, 0, "a reader saw a partial or empty file");
    assert!(
        versions >= 5,
        "only {versions} versions seen; the race was not exercised"
    );
    assert!(temp_files(dir.path()).is_empty());
}
