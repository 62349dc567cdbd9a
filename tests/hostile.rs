//! A compromised neighbour, played for real against the real OpenBao: an
//! attacker process running as another uid (65534) with write access to the
//! secrets directory swaps FIFOs and huge files in at a target
//! (`renameat2(RENAME_EXCHANGE)` in a loop), plants a symlinked parent and
//! pre-creates temp names; templates try to read the environment and leak
//! transformed values; a flood of idle connections hits the HTTP port.
//!
//! Each case checks: the process stays up, `/health` answers, another secret
//! keeps syncing, nothing lands outside its directory, memory stays under
//! the shipped 64 MiB limit, and shutdown ends on time.
//!
//! The attacker needs a second uid, so these tests run as root (fail under
//! `CI=true` otherwise, say so loudly outside CI).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{file_has, read, unique, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

const ATTACKER_UID: u32 = 65534;

/// The shipped manifests' memory limit.
const MEMORY_LIMIT_KIB: u64 = 64 * 1024;

/// The attacker: exchanges `dir/name` with a decoy (a FIFO or a 512 MiB
/// sparse file) as fast as it can for `secs` seconds, or plants a symlink.
const ATTACKER: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
mode, d, name, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
target, decoy = os.path.join(d, name), os.path.join(d, ".decoy-%d" % os.getpid())
if mode == "symlink":
    os.symlink(sys.argv[5], target)
    sys.exit(0)
if mode == "fifo":
    os.mkfifo(decoy)
else:
    with open(decoy, "wb") as f:
        f.truncate(512 << 20)
end, n = time.time() + secs, 0
while time.time() < end:
    if libc.renameat2(AT_FDCWD, target.encode(), AT_FDCWD, decoy.encode(), RENAME_EXCHANGE) == 0:
        n += 1
print(n)
"#;

/// `true` when the attacker can run as another uid; fails under CI otherwise.
fn can_attack() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the hostile-neighbour tests need root (to run the attacker as uid {ATTACKER_UID})");
    }
    eprintln!("SKIPPED: the hostile-neighbour tests need root");
    false
}

/// The shared OpenBao, when the attacker can run too.
fn attack_setup() -> Option<&'static Bao> {
    let bao = common::bao()?;
    can_attack().then_some(bao)
}

fn attacker(args: &[&str]) -> Child {
    Command::new("python3")
        .arg("-c")
        .arg(ATTACKER)
        .args(args)
        .uid(ATTACKER_UID)
        .gid(ATTACKER_UID)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 for the attacker")
}

/// A directory anyone may write into, as an `emptyDir` shared with the app.
fn shared_dir(parent: &Path, name: &str) -> std::path::PathBuf {
    let d = parent.join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn peak_rss_kib(s: &Sync) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn world_readable_root(d: &Path) {
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Swaps `decoy` in and out at a target while the secret rotates every
/// second; afterwards the latest value must land, the other secret must have
/// kept syncing, and the process must stop on time.
fn swap_attack(bao: &Bao, decoy: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    world_readable_root(dir.path());
    let shared = shared_dir(dir.path(), "shared");
    let other = dir.path().join("other");
    let (p, q) = (unique("swap"), unique("steady"));
    bao.kv_put(&p, json!({"v": "v0"}));
    bao.kv_put(&q, json!({"v": "q0"}));
    let target = shared.join("pw");
    let config = ConfigBuilder::new()
        .secret("pw", &p, "1s", &target)
        .secret("steady", &q, "1s", &other.join("v"))
        .build();
    let mut s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("SHUTDOWN_TIMEOUT", "5s")],
    );
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&target, "v0") && file_has(&other.join("v"), "q0")
    });
    let a = attacker(&[decoy, shared.to_str().unwrap(), "pw", "6"]);
    let started = Instant::now();
    let mut i = 0;
    let mut health_ok = 0;
    while started.elapsed() < Duration::from_secs(6) {
        i += 1;
        bao.kv_put(&p, json!({"v": format!("v{i}")}));
        bao.kv_put(&q, json!({"v": format!("q{i}")}));
        std::thread::sleep(Duration::from_millis(1000));
        if s.get("/health").is_ok_and(|(c, _)| c == 200) {
            health_ok += 1;
        }
    }
    let swaps = a.wait_with_output().unwrap();
    assert!(swaps.status.success());
    let swaps = String::from_utf8_lossy(&swaps.stdout).trim().to_string();
    eprintln!("{decoy}: {swaps} exchanges, {i} rotations");
    assert!(
        swaps.parse::<u64>().unwrap() > 100,
        "the attack did not run: {swaps}"
    );
    assert_eq!(health_ok, i, "/health did not answer during the attack");
    // The other secret kept syncing during the attack.
    s.wait_until(Duration::from_secs(5), "the other secret synced", || {
        file_has(&other.join("v"), &format!("q{i}"))
    });
    // After it, the attacked file gets the latest value, as a regular file.
    s.wait_until(Duration::from_secs(10), "the rotated value landed", || {
        std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_file())
            && file_has(&target, &format!("v{i}"))
    });
    assert!(s.alive());
    let peak = peak_rss_kib(&s);
    eprintln!("{decoy}: peak RSS {peak} KiB");
    assert!(peak < MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
    let t = Instant::now();
    let st = s.stop();
    assert!(st.success(), "{st:?}\n{}", s.logs());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
    // `run --once` under the same attack ends on time too.
    bao.kv_put(&p, json!({"v": "once"}));
    let a = attacker(&[decoy, shared.to_str().unwrap(), "pw", "4"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut once = common::command(
        dir.path(),
        &dir.path().join("config.yaml"),
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
    );
    once.arg("run").arg("--once");
    let t = Instant::now();
    let (code, out, err) = common::run_to_end(once);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "--once took {:?}",
        t.elapsed()
    );
    assert!(a.wait_with_output().unwrap().status.success());
    peak
}

#[test]
fn a_fifo_swapped_in_neither_freezes_writes_nor_shutdown() {
    let Some(bao) = attack_setup() else { return };
    swap_attack(bao, "fifo");
}

#[test]
fn a_huge_file_swapped_in_is_not_read_into_memory() {
    let Some(bao) = attack_setup() else { return };
    swap_attack(bao, "big");
}

#[test]
fn a_planted_parent_symlink_is_not_followed_and_temp_names_cannot_be_taken() {
    let Some(bao) = attack_setup() else { return };
    let dir = tempfile::tempdir().unwrap();
    world_readable_root(dir.path());
    let shared = shared_dir(dir.path(), "shared");
    let elsewhere = shared_dir(dir.path(), "elsewhere");
    let mut planted = attacker(&[
        "symlink",
        shared.to_str().unwrap(),
        "db",
        "0",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(planted.wait().unwrap().success());
    assert_eq!(
        std::fs::symlink_metadata(shared.join("db")).unwrap().uid(),
        ATTACKER_UID
    );
    // The attacker also pre-creates every temp name the old scheme used
    // (pid 1 in a container, counters 0..999) and a few of the new shape.
    for n in 0..1000 {
        std::fs::write(shared.join(format!(".ok.secrets-sync-tmp.1.{n}")), "").unwrap();
    }
    let (p, q) = (unique("planted"), unique("ok"));
    bao.kv_put(&p, json!({"v": "CANARY-planted-41"}));
    bao.kv_put(&q, json!({"v": "ok"}));
    let config = ConfigBuilder::new()
        .secret("planted", &p, "1s", &shared.join("db/pw"))
        .secret("ok", &q, "1s", &shared.join("ok"))
        .build();
    let s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
    );
    s.wait_until(Duration::from_secs(15), "the other secret synced", || {
        file_has(&shared.join("ok"), "ok")
    });
    s.wait_until(Duration::from_secs(10), "the planted one failed", || {
        s.status()["secrets"]["planted"]["consecutive_failures"].as_u64() >= Some(1)
    });
    let err = s.status()["secrets"]["planted"]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("uid {ATTACKER_UID}")) && err.contains("shared/db"),
        "{err}"
    );
    assert!(
        !elsewhere.join("pw").exists(),
        "written through the symlink"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(s.get("/health").unwrap().0, 200);
    assert!(!s.logs().contains("CANARY-planted-41"));
}

#[test]
fn templates_leak_neither_transformed_values_nor_the_environment() {
    let bao = require_bao!();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = unique("tpl-leak");
    bao.kv_put(&p, json!({"password": "hunter2-swordfish"}));
    // The environment is out of reach: refused when the config is loaded.
    let env_config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "env",
            "path": p,
            "template": {"data": {"t": "{{ get_env(name=\"VAULT_TOKEN\") }}"}},
            "files": [{"path": d.join("env"), "key": "t"}],
        }))
        .build();
    std::fs::write(d.join("env.yaml"), &env_config).unwrap();
    let mut cmd = common::command(
        d,
        &d.join("env.yaml"),
        &bao.addr,
        &[("VAULT_TOKEN", "CANARY-token-77")],
    );
    cmd.arg("check");
    let (code, out, err) = common::run_to_end(cmd);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("get_env") && err.contains("not available"),
        "{err}"
    );
    assert!(!d.join("env").exists());
    // A filter chain that fails on a transformed value: the error names the
    // key, the filter and the place, and carries no form of the value.
    let config = ConfigBuilder::new()
        .secret_json(json!({
            "name": "upper",
            "path": p,
            "refreshInterval": "1s",
            "template": {"data": {"t": "{{ password | upper | round }}"}},
            "files": [{"path": d.join("upper"), "key": "t"}],
        }))
        .build();
    let s = Sync::start(d, &config, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    s.wait_until(Duration::from_secs(15), "the render failed", || {
        s.status()["secrets"]["upper"]["consecutive_failures"].as_u64() >= Some(1)
    });
    let (_, status) = s.get("/status").unwrap();
    assert!(
        status.contains("round") && status.contains("line 1"),
        "{status}"
    );
    let (_, metrics) = s.get("/metrics").unwrap();
    for text in [status, metrics, s.logs()] {
        let t = text.to_lowercase();
        assert!(!t.contains("hunter2") && !t.contains("swordfish"), "{text}");
    }
}

#[test]
fn an_idle_connection_flood_starves_neither_probes_nor_writes() {
    let Some(bao) = attack_setup() else { return };
    // The test opens more sockets than the usual soft limit of 1024.
    let lim = libc::rlimit {
        rlim_cur: 8192,
        rlim_max: 8192,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v");
    let p = unique("flood");
    bao.kv_put(&p, json!({"v": "v0"}));
    let config = ConfigBuilder::new().secret("s", &p, "1s", &out).build();
    // The sidecar gets 1024 files, soft and hard: it cannot raise them.
    let s = Sync::start_with(
        Path::new(env!("CARGO_BIN_EXE_secrets-sync")),
        dir.path(),
        &config,
        &bao.addr,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        |c| unsafe {
            c.pre_exec(|| {
                let l = libc::rlimit {
                    rlim_cur: 1024,
                    rlim_max: 1024,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        },
    );
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&out, "v0")
    });
    let host = format!("127.0.0.1:{}", s.http_port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Keep 1100 idle connections open, reconnecting whatever is closed.
    let flood = {
        let (host, stop) = (host.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let addr: std::net::SocketAddr = host.parse().unwrap();
            let mut conns: Vec<std::net::TcpStream> = Vec::new();
            let mut opened = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conns.retain(|c| {
                    let mut b = [0u8; 1];
                    c.set_nonblocking(true).ok();
                    !matches!(std::io::Read::read(&mut &*c, &mut b), Ok(0))
                });
                while conns.len() < 1100 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
                        Ok(c) => {
                            conns.push(c);
                            opened += 1;
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            opened
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    for i in 1..=5 {
        bao.kv_put(&p, json!({"v": format!("v{i}")}));
        let t = Instant::now();
        s.wait_until(
            Duration::from_secs(10),
            "/health answered during the flood",
            || common::http(&host, "GET", "/health", None, None).is_ok_and(|(c, _)| c == 200),
        );
        worst = worst.max(t.elapsed());
        s.wait_until(Duration::from_secs(10), "a write during the flood", || {
            file_has(&out, &format!("v{i}"))
        });
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = flood.join().unwrap();
    eprintln!(
        "{opened} flood connections over {:?}; slowest /health {worst:?}",
        started.elapsed()
    );
    assert!(opened >= 1100, "the flood did not run: {opened}");
    assert!(!s.logs().contains("Too many open files"), "{}", s.logs());
    assert!(read(&out).is_some());
}

/// A Vault stand-in that misbehaves by path: `/v1/secret/data/huge` answers
/// 15 MB with a million fields, `/many` 10 000+ fields under 1 MiB, `/hang`
/// never answers, `/ok` answers `{"v": <current>}` from `ok_value`.
fn hostile_vault(ok_value: std::sync::Arc<std::sync::Mutex<String>>) -> u16 {
    use std::io::{BufRead, Write};
    let huge = {
        let mut b = String::from(r#"{"data":{"data":{"#);
        for i in 0..1_000_000 {
            if i > 0 {
                b.push(',');
            }
            b.push_str(&format!(r#""k{i}":"v""#));
        }
        b.push_str(r#"},"metadata":{"version":1}}}"#);
        std::sync::Arc::new(b)
    };
    let many = {
        let fields: Vec<String> = (0..20_000).map(|i| format!(r#""f{i}":1"#)).collect();
        std::sync::Arc::new(format!(
            r#"{{"data":{{"data":{{{}}},"metadata":{{"version":1}}}}}}"#,
            fields.join(",")
        ))
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (huge, many, ok_value) = (huge.clone(), many.clone(), ok_value.clone());
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let body = match path.as_str() {
                        "/v1/auth/token/lookup-self" => {
                            r#"{"data":{"ttl":0,"renewable":false}}"#.to_string()
                        }
                        "/v1/secret/data/huge" => huge.to_string(),
                        "/v1/secret/data/many" => many.to_string(),
                        "/v1/secret/data/hang" => {
                            std::thread::sleep(Duration::from_secs(120));
                            return;
                        }
                        _ => format!(
                            r#"{{"data":{{"data":{{"v":"{}"}},"metadata":{{"version":1}}}}}}"#,
                            ok_value.lock().unwrap()
                        ),
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    if conn
                        .write_all(head.as_bytes())
                        .and_then(|()| conn.write_all(body.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn huge_answers_cost_bounded_memory_and_short_errors() {
    let ok = std::sync::Arc::new(std::sync::Mutex::new("ok-0".to_string()));
    let port = hostile_vault(ok.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut config = ConfigBuilder::new().secret("ok", "ok", "1s", &d.join("ok"));
    for i in 0..8 {
        config = config.secret(
            &format!("huge{i}"),
            "huge",
            "1s",
            &d.join(format!("huge{i}")),
        );
    }
    let config = config.secret("many", "many", "1s", &d.join("many")).build();
    let mut s = Sync::start(
        d,
        &config,
        &format!("http://127.0.0.1:{port}"),
        &[("VAULT_TOKEN", "t")],
    );
    s.wait_until(Duration::from_secs(15), "the huge ones failed", || {
        let st = s.status();
        (0..8)
            .all(|i| st["secrets"][format!("huge{i}")]["consecutive_failures"].as_u64() >= Some(2))
            && st["secrets"]["many"]["consecutive_failures"].as_u64() >= Some(2)
    });
    *ok.lock().unwrap() = "ok-1".into();
    s.wait_until(
        Duration::from_secs(10),
        "the healthy secret kept syncing",
        || file_has(&d.join("ok"), "ok-1"),
    );
    let st = s.status();
    let huge_err = st["secrets"]["huge0"]["last_error"].as_str().unwrap();
    assert!(huge_err.contains("VAULT_MAX_RESPONSE_BYTES"), "{huge_err}");
    let many_err = st["secrets"]["many"]["last_error"].as_str().unwrap();
    assert!(many_err.contains("VAULT_MAX_SECRET_FIELDS"), "{many_err}");
    // Errors are short; so is /status.
    assert!(huge_err.len() < 500 && many_err.len() < 500);
    assert!(s.get("/status").unwrap().1.len() < 20_000);
    // A path's bad answers are not the server's: the breaker stays closed.
    assert_eq!(st["vault"]["circuit_breaker"], "closed");
    assert_eq!(s.get("/health").unwrap().0, 200);
    assert!(s.alive());
    let peak = peak_rss_kib(&s);
    eprintln!("peak RSS {peak} KiB with 8 secrets answering 15 MB each");
    assert!(peak < MEMORY_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[test]
fn hanging_paths_do_not_open_the_breaker_for_the_others() {
    let ok = std::sync::Arc::new(std::sync::Mutex::new("ok-0".to_string()));
    let port = hostile_vault(ok.clone());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut config = ConfigBuilder::new().secret("ok", "ok", "1s", &d.join("ok"));
    for i in 0..6 {
        config = config.secret(
            &format!("hang{i}"),
            "hang",
            "1s",
            &d.join(format!("hang{i}")),
        );
    }
    let s = Sync::start(
        d,
        &config.build(),
        &format!("http://127.0.0.1:{port}"),
        &[
            ("VAULT_TOKEN", "t"),
            ("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3"),
        ],
    );
    s.wait_until(Duration::from_secs(15), "first sync", || {
        file_has(&d.join("ok"), "ok-0")
    });
    // The six reads time out after 30 s; the healthy secret goes on.
    s.wait_until(
        Duration::from_secs(45),
        "the hanging reads timed out",
        || {
            let st = s.status();
            (0..6).all(|i| st["secrets"][format!("hang{i}")]["last_error_kind"] == "timeout")
        },
    );
    *ok.lock().unwrap() = "ok-1".into();
    s.wait_until(
        Duration::from_secs(10),
        "the healthy secret kept syncing",
        || file_has(&d.join("ok"), "ok-1"),
    );
    let st = s.status();
    assert_eq!(st["vault"]["circuit_breaker"], "closed", "{st}");
    assert!(
        s.metric(r#"vault_request_errors_total{kind="timeout",operation="read"}"#) >= Some(6.0),
        "{}",
        s.get("/metrics").unwrap().1
    );
}
