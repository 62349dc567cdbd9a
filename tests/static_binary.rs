//! The static binary alone in an empty root filesystem (no libc, no
//! /etc/passwd, no shell), run by `chroot` as uid 65534, syncs a secret from
//! OpenBao over TLS by host name, verifying the certificate with the CA
//! bundle at the standard path. `scripts/test.sh` builds the binary
//! (`scripts/build-static.sh`) and passes it as `SECRETS_SYNC_STATIC_BIN`.

mod common;

use std::os::unix::fs::{chown, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{unique, wait_for, ROOT_TOKEN};

fn static_bin() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let bin = std::env::var_os("SECRETS_SYNC_STATIC_BIN").map(PathBuf::from);
    match bin {
        Some(ref b) if b.is_file() => {}
        _ if ci => panic!("CI=true but SECRETS_SYNC_STATIC_BIN is not set: run scripts/test.sh"),
        _ => {
            eprintln!(
                "SKIPPED: set SECRETS_SYNC_STATIC_BIN (scripts/build-static.sh) to run this test"
            );
            return None;
        }
    }
    if unsafe { libc::geteuid() } != 0 {
        assert!(!ci, "CI=true but not root: chroot needs root");
        eprintln!("SKIPPED: chroot needs root");
        return None;
    }
    bin
}

#[test]
fn static_binary_syncs_in_an_empty_root_as_nobody_over_tls() {
    let Some(bin) = static_bin() else { return };
    let Some(bao_bin) = common::bao_bin() else {
        return;
    };
    // An OpenBao dev server with its own TLS CA.
    let certs = tempfile::tempdir().unwrap();
    let port = common::free_port();
    common::start_bao(
        &bao_bin,
        port,
        &[
            "-dev-tls".into(),
            format!("-dev-tls-cert-dir={}", certs.path().display()),
        ],
    );
    let ca = certs.path().join("vault-ca.pem");
    let path = unique("static");
    wait_for(Duration::from_secs(30), || {
        Command::new(&bao_bin)
            .args(["kv", "put", "-mount=secret", &path, "v=from-scratch"])
            .env("VAULT_ADDR", format!("https://127.0.0.1:{port}"))
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("VAULT_CACERT", &ca)
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .expect("could not seed the TLS dev server");

    // The root: the binary, a CA bundle, /etc/hosts, the config, and two
    // directories nobody may write to. Nothing else.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(&bin, r.join("secrets-sync")).unwrap();
    std::fs::create_dir_all(r.join("etc/ssl/certs")).unwrap();
    std::fs::copy(&ca, r.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    // The dev certificate names localhost4; only /etc/hosts can resolve it here.
    std::fs::write(r.join("etc/hosts"), "127.0.0.1 localhost localhost4\n").unwrap();
    std::fs::write(
        r.join("config.yaml"),
        format!(
            "secrets:\n  - name: s\n    path: {path}\n    files: [{{path: /secrets/v, key: v}}]\n"
        ),
    )
    .unwrap();
    for d in ["secrets", "tmp"] {
        std::fs::create_dir(r.join(d)).unwrap();
        chown(r.join(d), Some(65534), Some(65534)).unwrap();
    }
    let chroot_bin = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("chroot"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/chroot"));
    let chroot = |args: &[&str]| {
        let mut c = Command::new(&chroot_bin);
        c.arg("--userspec=65534:65534")
            .arg(r)
            .args(args)
            .env_clear()
            .env("VAULT_ADDR", format!("https://localhost4:{port}"))
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env("CONFIG_FILE", "/config.yaml")
            .env("STATUS_FILE", "/tmp/.ready-state")
            .env("HTTP_PORT", "0")
            .stdin(Stdio::null());
        c
    };
    let size = std::fs::metadata(&bin).unwrap().len();
    eprintln!(
        "static binary: {size} bytes ({:.2} MiB)",
        size as f64 / 1048576.0
    );

    let started = Instant::now();
    let out = chroot(&["/secrets-sync", "run", "--once"])
        .output()
        .expect("chroot");
    assert!(
        out.status.success(),
        "run --once in the empty root failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("run --once in the empty root took {:?}", started.elapsed());
    let written = r.join("secrets/v");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "from-scratch");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), 65534);

    // The long-running mode and the healthcheck subcommand, in the same root.
    let mut run = chroot(&["/secrets-sync", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chroot run");
    let isready = || {
        chroot(&["/secrets-sync", "isready"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ready = wait_for(Duration::from_secs(15), isready);
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    let status = run.wait().unwrap();
    ready.expect("isready never succeeded in the empty root");
    assert!(status.success(), "{status:?}");
    assert!(!isready(), "still ready after a clean stop");
}
