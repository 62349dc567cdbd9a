//! The image on a real Docker engine (issue 16, part): the HEALTHCHECK of
//! `Dockerfile.prebuilt` under `docker run`, read-only, as uid 65534, with
//! no capabilities. Images come from scripts/docker-images.sh (run by
//! scripts/test.sh); under `CI=true` a missing engine or image fails the
//! test. Containers are removed when a test ends, however it ends.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{docker, unique, ROOT_TOKEN};
use serde_json::json;

const IMAGE: &str = "localhost/secrets-sync:test";

/// Is the engine up and the image built? Under `CI=true` a "no" fails.
fn docker_ready() -> bool {
    let problem = match docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]) {
        Ok(_) => return true,
        Err(e) if docker(&["info", "--format", "{{.ServerVersion}}"]).is_err() => {
            format!("no Docker engine: {e}")
        }
        Err(e) => format!("{IMAGE} is not built (run scripts/docker-images.sh): {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {problem}");
    }
    eprintln!("SKIPPED: {problem}");
    false
}

/// A container removed (with its anonymous volumes) when dropped.
struct Container(String);

impl Container {
    fn health(&self) -> String {
        docker(&["inspect", "--format", "{{.State.Health.Status}}", &self.0]).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let out = Command::new("docker").args(["logs", &self.0]).output();
        out.map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
    }

    fn wait_health(&self, want: &str, timeout: Duration) {
        common::wait_for(timeout, || self.health() == want).unwrap_or_else(|e| {
            panic!(
                "container not {want} (is {}): {e}\n{}",
                self.health(),
                self.logs()
            )
        });
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.0]);
    }
}

fn write_config(dir: &Path, secrets: &[(&str, &str)]) {
    let secrets: Vec<_> = secrets
        .iter()
        .map(|(name, path)| json!({"name": name, "path": path, "refreshInterval": "1s", "files": [{"path": format!("/secrets/{name}"), "key": "v"}]}))
        .collect();
    std::fs::write(
        dir.join("config.yaml"),
        json!({ "secrets": secrets }).to_string(),
    )
    .unwrap();
}

#[test]
fn the_image_healthcheck_follows_readiness() {
    let bao = require_bao!();
    if !docker_ready() {
        return;
    }
    let first = unique("health-a");
    let second = unique("health-b");
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    let out = tmp.path().join("secrets");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // The sidecar writes as uid 65534 into its (bind-mounted) volume.
    std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    write_config(&conf, &[("a", &first)]);
    let name = unique("secrets-sync-health");
    let vault = format!("VAULT_ADDR={}", bao.addr);
    let token = format!("VAULT_TOKEN={ROOT_TOKEN}");
    let http_port = format!("HTTP_PORT={}", common::free_port());
    let metrics_port = format!("METRICS_PORT={}", common::free_port());
    let conf_mount = format!("{}:/conf:ro", conf.display());
    let out_mount = format!("{}:/secrets", out.display());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp:mode=1777",
        "--cap-drop",
        "ALL",
        "--user",
        "65534:65534",
        // The image's HEALTHCHECK command, checked more often than its
        // 5 s interval so the test is quick.
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        "--health-start-period",
        "1s",
        "-v",
        &conf_mount,
        "-v",
        &out_mount,
        "-e",
        &vault,
        "-e",
        &token,
        "-e",
        "CONFIG_FILE=/conf/config.yaml",
        "-e",
        "READY_POLICY=all",
        "-e",
        &http_port,
        "-e",
        &metrics_port,
        IMAGE,
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let c = Container(name);
    // The secret does not exist yet: never synced, unhealthy.
    c.wait_health("unhealthy", Duration::from_secs(20));
    bao.kv_put(&first, json!({"v": "one"}));
    c.wait_health("healthy", Duration::from_secs(20));
    assert_eq!(common::read(&out.join("a")).as_deref(), Some("one"));
    let meta = std::fs::metadata(out.join("a")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
    // A reload adds a secret that cannot sync: with READY_POLICY=all the
    // status file says not ready, and the healthcheck follows.
    write_config(&conf, &[("a", &first), ("b", &second)]);
    docker(&["kill", "--signal", "HUP", &c.0]).unwrap();
    c.wait_health("unhealthy", Duration::from_secs(20));
    bao.kv_put(&second, json!({"v": "two"}));
    c.wait_health("healthy", Duration::from_secs(20));
    // Read-only root, no capabilities, uid 65534: as Docker reports it.
    let cfg = docker(&[
        "inspect",
        "--format",
        "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.Config.User}}",
        &c.0,
    ])
    .unwrap();
    assert_eq!(cfg, "true [ALL] 65534:65534");
}
