//! systemd's notify protocol end to end: secrets-sync started with
//! `NOTIFY_SOCKET` naming an abstract socket this test owns and binds, and
//! `WATCHDOG_USEC`; what arrives there around a sync, a SIGHUP reload and a
//! SIGTERM.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{read, unique, wait_for, ConfigBuilder, Sync, ROOT_TOKEN};

/// Every datagram received, in order, by a thread that ends with the test.
fn listen(name: &str) -> Arc<Mutex<Vec<String>>> {
    let sock =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // The test holds the other Arc; once it is gone, stop.
        while Arc::strong_count(&sink) > 1 {
            if let Ok(n) = sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push(m);
            }
        }
    });
    got
}

fn states(got: &Mutex<Vec<String>>) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .filter(|m| m != "WATCHDOG=1")
        .collect()
}

#[test]
fn ready_reloading_stopping_and_the_watchdog() {
    let Some(bao) = common::bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = unique("notify");
    let out = dir.path().join("v");
    let config = ConfigBuilder::new().secret("n", &path, "1h", &out).build();
    let name = unique("secrets-sync-notify");
    let got = listen(&name);
    let socket = format!("@{name}");
    // The secret does not exist yet: not ready, so no READY=1.
    let mut s = Sync::start(
        dir.path(),
        &config,
        &bao.addr,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("NOTIFY_SOCKET", &socket),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    // The watchdog pings every 200 ms from the start.
    wait_for(Duration::from_secs(5), || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|m| *m == "WATCHDOG=1\n")
            .count()
            >= 3
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    assert!(states(&got).is_empty(), "{:?}", states(&got));
    bao.kv_put(&path, serde_json::json!({"v": "1"}));
    s.signal(libc::SIGUSR1);
    wait_for(Duration::from_secs(15), || states(&got) == ["READY=1"])
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", states(&got), s.logs()));
    assert_eq!(
        read(&out).as_deref(),
        Some("1"),
        "READY=1 came before the file was written"
    );

    s.signal(libc::SIGHUP);
    wait_for(Duration::from_secs(10), || states(&got).len() == 3)
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", states(&got), s.logs()));
    assert_eq!(states(&got)[1..], ["RELOADING=1", "READY=1"]);
    let reloading = got
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.starts_with("RELOADING=1"))
        .cloned()
        .unwrap();
    assert!(reloading.contains("\nMONOTONIC_USEC="), "{reloading}");

    s.signal(libc::SIGTERM);
    wait_for(Duration::from_secs(10), || !s.alive()).unwrap();
    wait_for(Duration::from_secs(2), || states(&got).len() == 4)
        .unwrap_or_else(|e| panic!("{e}: {:?}", states(&got)));
    assert_eq!(states(&got)[3], "STOPPING=1");
}

/// `systemd-analyze` from SYSTEMD_ANALYZE (scripts/test.sh) or PATH; under
/// CI=true a missing one fails.
fn systemd_analyze() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("SYSTEMD_ANALYZE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join("systemd-analyze"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but systemd-analyze was not found: run scripts/install-systemd-analyze.sh"
        );
        eprintln!("SKIPPED: systemd-analyze not found");
    }
    found
}

/// The shipped unit passes `systemd-analyze verify` without a single
/// warning (with this build's binary in place of /usr/local/bin), and its
/// offline security exposure stays low.
#[test]
fn the_unit_verifies_and_is_hardened() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging/systemd/secrets-sync.service"),
    )
    .unwrap();
    for want in [
        "Type=notify",
        "ProtectSystem=strict",
        "ReadWritePaths=",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.contains(want), "the unit lacks {want:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets-sync.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/secrets-sync",
            env!("CARGO_BIN_EXE_secrets-sync"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(&analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");

    let out = std::process::Command::new(&analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for secrets-sync.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
    eprintln!("systemd-analyze security exposure: {level}");
    assert!(level <= 2.0, "exposure {level}:\n{text}");
}
