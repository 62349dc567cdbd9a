//! Single files that are bind mounts (issue 16; consul-template #1410,
//! secrets-store-csi #680), with real `mount --bind` (root) and the real
//! OpenBao: a target that is a mount point cannot be renamed over (EBUSY)
//! and is rewritten in place instead; a file bind-mounted elsewhere shows
//! the new content only when it is written in place (`writeMode: inPlace`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{read, unique, ConfigBuilder, Sync, ROOT_TOKEN};
use serde_json::json;

/// A bind mount, unmounted when dropped (lazily, so a test that fails with
/// the file open still cleans up).
struct BindMount(PathBuf);

impl BindMount {
    /// `mount --bind src dst`, or `None` when this process may not mount
    /// (not root) outside CI; under `CI=true` that fails the test.
    fn new(src: &Path, dst: &Path) -> Option<BindMount> {
        let out = Command::new("mount")
            .arg("--bind")
            .arg(src)
            .arg(dst)
            .output()
            .expect("run mount");
        if out.status.success() {
            return Some(BindMount(dst.to_path_buf()));
        }
        let why = String::from_utf8_lossy(&out.stderr);
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but mount --bind failed (the bind-mount tests need root): {why}");
        }
        eprintln!("SKIPPED: mount --bind failed (needs root): {why}");
        None
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_target_that_is_a_mount_point_is_rewritten_in_place_after_ebusy() {
    let bao = require_bao!();
    let path = unique("bind-busy");
    bao.kv_put(&path, json!({"v": "one"}));
    let tmp = tempfile::tempdir().unwrap();
    // The host's file, bind-mounted onto the file the sidecar writes.
    let host = tmp.path().join("host.conf");
    std::fs::write(&host, "initial").unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let target = out.join("app.conf");
    std::fs::write(&target, "").unwrap();
    let Some(_mount) = BindMount::new(&host, &target) else {
        return;
    };
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret("busy", &path, "1s", &target)
        .build();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    s.wait_until(
        Duration::from_secs(15),
        "the host file holds the secret",
        || read(&host).as_deref() == Some("one"),
    );
    assert_eq!(read(&target).as_deref(), Some("one"));
    bao.kv_put(&path, json!({"v": "two"}));
    s.wait_until(
        Duration::from_secs(15),
        "the rotation reaches the host file",
        || read(&host).as_deref() == Some("two"),
    );
    let fallbacks = s
        .metric("secret_inplace_fallbacks_total{secret_name=\"busy\"}")
        .unwrap_or(0.0);
    assert!(fallbacks >= 2.0, "fallbacks counted: {fallbacks}");
    assert!(
        s.logs().contains("rename failed with EBUSY"),
        "no warning logged\n{}",
        s.logs()
    );
    // No temp file left next to the target.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "app.conf")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_bind_mounted_elsewhere_sees_rotations_only_when_written_in_place() {
    let bao = require_bao!();
    let path = unique("bind-reader");
    bao.kv_put(&path, json!({"v": "one"}));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(json!({
            "name": "in-place",
            "path": path,
            "refreshInterval": "1s",
            "files": [{"path": out.join("in-place.conf"), "key": "v", "writeMode": "inPlace"}],
        }))
        .secret_json(json!({
            "name": "atomic",
            "path": path,
            "refreshInterval": "1s",
            "files": [{"path": out.join("atomic.conf"), "key": "v"}],
        }))
        .build();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    s.wait_until(Duration::from_secs(15), "both files written", || {
        read(&out.join("in-place.conf")).as_deref() == Some("one")
            && read(&out.join("atomic.conf")).as_deref() == Some("one")
    });
    // The "app container" sees each file through its own bind mount.
    let app = tmp.path().join("app");
    std::fs::create_dir(&app).unwrap();
    let (seen_in_place, seen_atomic) = (app.join("in-place.conf"), app.join("atomic.conf"));
    std::fs::write(&seen_in_place, "").unwrap();
    std::fs::write(&seen_atomic, "").unwrap();
    let Some(_m1) = BindMount::new(&out.join("in-place.conf"), &seen_in_place) else {
        return;
    };
    let Some(_m2) = BindMount::new(&out.join("atomic.conf"), &seen_atomic) else {
        return;
    };
    assert_eq!(read(&seen_in_place).as_deref(), Some("one"));
    bao.kv_put(&path, json!({"v": "two"}));
    s.wait_until(
        Duration::from_secs(15),
        "the rotation reaches the app's view",
        || read(&seen_in_place).as_deref() == Some("two"),
    );
    // The renamed file is new on disk, but the app's mount still shows the
    // old inode: why writeMode: inPlace exists.
    s.wait_until(
        Duration::from_secs(15),
        "atomic.conf rotated on disk",
        || read(&out.join("atomic.conf")).as_deref() == Some("two"),
    );
    assert_eq!(read(&seen_atomic).as_deref(), Some("one"));
    assert!(s
        .metric("secret_inplace_fallbacks_total{secret_name=\"in-place\"}")
        .is_none());
}
