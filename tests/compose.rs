//! compose/docker-compose.yml run by a real Docker engine (issue 16, part),
//! with tests/compose/override.yml swapping in the local FROM-scratch
//! images (scripts/docker-images.sh). Uses `docker compose` when the plugin
//! is there, else `docker-compose` (v1.29 on Debian). The project is torn
//! down with `down -v` when the test ends, however it ends.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::unique;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docker compose` (plugin) or `docker-compose`.
fn compose_program() -> Option<Vec<String>> {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        return Some(vec!["docker".into(), "compose".into()]);
    }
    let v1 = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    v1.then(|| vec!["docker-compose".into()])
}

fn run(program: &[String], args: &[&str]) -> Result<String, String> {
    let out = Command::new(&program[0])
        .args(&program[1..])
        .args(args)
        .current_dir(root())
        .output()
        .map_err(|e| format!("run {}: {e}", program.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "{} {}: {}{}",
            program.join(" "),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One compose project; `down -v` on drop.
struct Project {
    program: Vec<String>,
    name: String,
    /// Overlays after the base file and the test override.
    extra: Vec<&'static str>,
}

/// Held by the tests that run compose/docker-compose.yml: it publishes
/// fixed host ports, so two of its projects cannot run at once.
static EXAMPLE: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Project {
    fn compose(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec![
            "-f",
            "compose/docker-compose.yml",
            "-f",
            "tests/compose/override.yml",
        ];
        for f in &self.extra {
            all.extend(["-f", f]);
        }
        all.extend(["-p", &self.name]);
        all.extend_from_slice(args);
        run(&self.program, &all)
    }

    /// The container id of a service.
    fn id(&self, service: &str) -> String {
        self.compose(&["ps", "-q", service]).unwrap_or_default()
    }

    fn inspect(&self, service: &str, format: &str) -> String {
        let id = self.id(service);
        run(&["docker".into()], &["inspect", "--format", format, &id]).unwrap_or_default()
    }

    fn exec(&self, service: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", "-T", service];
        args.extend_from_slice(cmd);
        self.compose(&args)
    }

    fn logs(&self) -> String {
        self.compose(&["logs", "--no-color"]).unwrap_or_else(|e| e)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "5"]);
    }
}

/// Docker objects of a project (containers, networks, volumes).
fn leftovers(project: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={project}");
    let mut found = Vec::new();
    for kind in [
        vec!["ps", "-a", "-q", "--filter", &label],
        vec!["network", "ls", "-q", "--filter", &label],
        vec!["volume", "ls", "-q", "--filter", &label],
    ] {
        let out = run(&["docker".into()], &kind).unwrap_or_default();
        found.extend(out.lines().map(str::to_string));
    }
    found
}

/// Unix time in seconds (fractional) of a UTC time as Docker prints it:
/// RFC 3339 (`2026-11-24T14:03:07.123456789Z`, `.State.StartedAt`) or Go's
/// default (`2026-11-24 14:03:07.123456789 +0000 UTC`, health log times).
fn secs(t: &str) -> f64 {
    let t = t
        .trim()
        .trim_end_matches(" +0000 UTC")
        .trim_end_matches('Z');
    let t = t.replacen(' ', "T", 1);
    let t = t.as_str();
    let (date, time) = t.split_once('T').unwrap_or((t, "0:0:0"));
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms.split(':').filter_map(|x| x.parse().ok()).collect();
    if d.len() != 3 || h.len() != 3 {
        return f64::NAN;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac: f64 = format!("0.{frac}").parse().unwrap_or(0.0);
    (days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2]) as f64 + frac
}

#[test]
fn the_compose_example_runs_on_docker_and_carries_a_rotation_to_the_app() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let images_built = run(
        &["docker".into()],
        &[
            "image",
            "inspect",
            "localhost/openbao:test",
            "localhost/busybox:test",
            "localhost/secrets-sync:test",
        ],
    );
    let program = compose_program();
    let problem = match (&program, &images_built) {
        (None, _) => Some("no docker compose / docker-compose".to_string()),
        (_, Err(e)) => Some(format!(
            "local images missing (run scripts/docker-images.sh): {e}"
        )),
        _ => None,
    };
    if let Some(p) = problem {
        assert!(!ci, "CI=true but {p}");
        eprintln!("SKIPPED: {p}");
        return;
    }
    let _one = EXAMPLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let p = Project {
        program: program.unwrap(),
        name: unique("compose-test")
            .to_lowercase()
            .replace(['_', '.'], "-"),
        extra: Vec::new(),
    };
    p.compose(&["up", "-d", "--no-build"])
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    // Everything up: the app runs once secrets-sync is healthy.
    common::wait_for(Duration::from_secs(90), || {
        p.inspect("app", "{{.State.Running}}") == "true"
    })
    .unwrap_or_else(|e| panic!("app not running: {e}\n{}", p.logs()));
    assert_eq!(
        p.inspect("secrets-sync", "{{.State.Health.Status}}"),
        "healthy"
    );

    // Docker's own record: the app started after the sidecar's first
    // passing health check.
    let health_log = p.inspect(
        "secrets-sync",
        "{{range .State.Health.Log}}{{.ExitCode}} {{.End}}\n{{end}}",
    );
    let first_healthy = health_log
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(code, _)| *code == "0")
        .map(|(_, end)| secs(end))
        .fold(f64::INFINITY, f64::min);
    let app_started = secs(&p.inspect("app", "{{.State.StartedAt}}"));
    let sidecar_started = secs(&p.inspect("secrets-sync", "{{.State.StartedAt}}"));
    eprintln!(
        "sidecar started {sidecar_started:.3}, first healthy {first_healthy:.3}, app started {app_started:.3}"
    );
    assert!(
        first_healthy.is_finite(),
        "no passing health check: {health_log}"
    );
    assert!(
        app_started > first_healthy && first_healthy > sidecar_started,
        "app started at {app_started}, sidecar healthy at {first_healthy}"
    );

    // The app reads the synced files from the shared volume.
    assert_eq!(
        p.exec("app", &["cat", "/secrets/db/username"]).unwrap(),
        "app"
    );
    assert_eq!(
        p.exec("app", &["cat", "/secrets/db/password"]).unwrap(),
        "example-password"
    );

    // The sidecar: read-only root, no capabilities, uid 65534, and its
    // files in the volume are its own.
    assert_eq!(
        p.inspect(
            "secrets-sync",
            "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.Config.User}}"
        ),
        "true [ALL] 65534:65534"
    );
    assert_eq!(
        p.exec("app", &["stat", "-c", "%u %a", "/secrets/db/username"])
            .unwrap(),
        "65534 444"
    );

    // A rotation in OpenBao reaches the app's view within the refresh
    // interval (30 s).
    p.exec(
        "openbao",
        &[
            "sh",
            "-c",
            "VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root bao kv put -mount=secret app/database username=app password=rotated-password",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rotated = std::time::Instant::now();
    common::wait_for(Duration::from_secs(40), || {
        p.exec("app", &["cat", "/secrets/db/password"]).as_deref() == Ok("rotated-password")
    })
    .unwrap_or_else(|e| panic!("rotation did not reach the app: {e}\n{}", p.logs()));
    eprintln!(
        "rotation reached the app after {:.1}s",
        rotated.elapsed().as_secs_f64()
    );

    // Restarting the sidecar keeps the files and the app.
    let app_id = p.id("app");
    p.compose(&["restart", "secrets-sync"]).unwrap();
    assert_eq!(
        p.exec("app", &["cat", "/secrets/db/password"]).unwrap(),
        "rotated-password"
    );
    common::wait_for(Duration::from_secs(60), || {
        p.inspect("secrets-sync", "{{.State.Health.Status}}") == "healthy"
    })
    .unwrap_or_else(|e| panic!("not healthy after restart: {e}\n{}", p.logs()));
    assert_eq!(p.id("app"), app_id);
    assert_eq!(p.inspect("app", "{{.State.Running}}"), "true");
    assert_eq!(
        secs(&p.inspect("app", "{{.State.StartedAt}}")),
        app_started,
        "the app restarted"
    );

    // `down -v` leaves nothing of the project.
    let name = p.name.clone();
    drop(p);
    let left = leftovers(&name);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The compose program, when it and the local `images` are there; `None`
/// (said loudly) when not, and a failure under `CI=true`.
fn compose_with(images: &[&str]) -> Option<Vec<String>> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut args = vec!["image", "inspect"];
    args.extend_from_slice(images);
    let images = run(&["docker".into()], &args);
    match (compose_program(), images) {
        (Some(p), Ok(_)) => Some(p),
        (p, i) => {
            let why = format!("compose: {:?}, images: {:?}", p.is_some(), i.err());
            assert!(
                !ci,
                "CI=true but Docker Compose or the local images are missing: {why}"
            );
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// compose/docker-compose.api.yml: the app, in the sidecar's network
/// namespace, lists and reads the secrets over the local API (loopback).
#[test]
fn the_compose_api_example_serves_the_app_over_loopback() {
    let Some(program) = compose_with(&[
        "localhost/openbao:test",
        "localhost/busybox:test",
        "localhost/secrets-sync:test",
    ]) else {
        return;
    };
    let _one = EXAMPLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let p = Project {
        program,
        name: unique("compose-api")
            .to_lowercase()
            .replace(['_', '.'], "-"),
        extra: vec!["compose/docker-compose.api.yml"],
    };
    p.compose(&["up", "-d", "--no-build"])
        .unwrap_or_else(|e| panic!("{e}\n{}", p.logs()));
    common::wait_for(Duration::from_secs(90), || {
        p.compose(&["logs", "--no-color", "app"])
            .is_ok_and(|l| l.contains("read database over the API"))
    })
    .unwrap_or_else(|e| panic!("the app did not read over the API: {e}\n{}", p.logs()));
    let app = p
        .compose(&["logs", "--no-color", "app"])
        .unwrap_or_default();
    assert!(app.contains(r#"{"secrets":["database","api"]}"#), "{app}");
    assert!(
        !app.contains("example-password"),
        "the example prints no value"
    );
    // The API answered on loopback inside the shared namespace; the sidecar
    // audited the read (caller 127.0.0.1).
    let sidecar = p
        .compose(&["logs", "--no-color", "secrets-sync"])
        .unwrap_or_default();
    assert!(sidecar.contains("api_read"), "{sidecar}");
    assert!(!sidecar.contains("example-password"));
    let name = p.name.clone();
    drop(p);
    let left = leftovers(&name);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_compose_service_mounting_one_file_sees_rotations_written_in_place() {
    let bao = require_bao!();
    let Some(program) = compose_with(&["localhost/busybox:test", "localhost/secrets-sync:test"])
    else {
        return;
    };
    let path = unique("single-file");
    bao.kv_put(&path, serde_json::json!({"v": "one"}));
    let tmp = tempfile::tempdir().unwrap();
    let (conf, out) = (tmp.path().join("conf"), tmp.path().join("out"));
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        conf.join("config.yaml"),
        serde_json::json!({"secrets": [{
            "name": "app", "path": path, "refreshInterval": "1s",
            "files": [{"path": "/secrets/app.conf", "key": "v", "mode": "0644", "writeMode": "inPlace"}],
        }]})
        .to_string(),
    )
    .unwrap();
    // The file must exist before the app mounts it (else Docker makes a
    // directory there).
    std::fs::write(out.join("app.conf"), "").unwrap();
    let name = unique("single-file")
        .to_lowercase()
        .replace(['_', '.'], "-");
    let compose = |args: &[&str]| -> Result<String, String> {
        let mut all = vec!["-f", "tests/compose/single-file.yml", "-p", &name];
        all.extend_from_slice(args);
        let out = Command::new(&program[0])
            .args(&program[1..])
            .args(&all)
            .current_dir(root())
            .env("VAULT_ADDR", &bao.addr)
            .env("CONFIG_DIR", &conf)
            .env("SECRETS_DIR", &out)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Result<String, String>);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "-t", "2"]);
        }
    }
    let _down = Down(&compose);
    compose(&["up", "-d"]).unwrap_or_else(|e| panic!("{e}"));
    let app_sees = || compose(&["exec", "-T", "app", "cat", "/app/app.conf"]).unwrap_or_default();
    common::wait_for(Duration::from_secs(30), || app_sees() == "one")
        .unwrap_or_else(|e| panic!("first value: {e}: {:?}", compose(&["logs"])));
    bao.kv_put(&path, serde_json::json!({"v": "two"}));
    common::wait_for(Duration::from_secs(15), || app_sees() == "two")
        .unwrap_or_else(|e| panic!("rotation not seen by the app: {e}"));
}
