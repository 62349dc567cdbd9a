//! The command line without a Vault server: `check`, `isready`, and `run`
//! refusing a bad config.

mod common;

use serde::Deserialize;

use std::path::Path;
use std::process::Command;

use common::run_to_end;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.env_clear();
    c
}

fn check(config: &Path) -> (i32, String, String) {
    let mut c = bin();
    c.args(["check", "--config"]).arg(config);
    run_to_end(c)
}

#[test]
fn every_shipped_example_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config-examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let (code, out, err) = check(&p);
            assert_eq!(code, 0, "{}: {out}{err}", p.display());
            assert!(out.contains("OK"), "{out}");
            n += 1;
        }
    }
    assert!(n >= 2, "expected the seed and demo examples, found {n}");
}

#[test]
fn seed_example_check_warns_about_runtime_credentials() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config-examples/seed-example.yaml");
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 secrets, 4 files"), "{out}");
    assert!(err.contains("VAULT_TOKEN"), "{err}");
}

#[test]
fn bad_config_lists_every_error_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(
        &p,
        r#"
secretStore: {address: "http://v", token: t}
secrets:
  - name: db
    path: app/db
    refreshInterval: 5x
    template:
      data:
        a: "{{ .a }}"
        b: "{{ .b }}"
    files:
      - path: /s/one
  - name: db
    path: app/other
    files:
      - path: /s/two
        mode: "999"
"#,
    )
    .unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("bad.yaml: 4 errors"), "{err}");
    assert!(err.contains(r#"secrets[0] "db".refreshInterval"#), "{err}");
    assert!(
        err.contains(r#"secrets[0] "db".files[0]: cannot tell which template key"#),
        "{err}"
    );
    assert!(
        err.contains(r#"secrets[1] "db".name: duplicate name"#),
        "{err}"
    );
    assert!(err.contains(r#"secrets[1] "db".files[0].mode"#), "{err}");
}

#[test]
fn missing_config_file_is_named() {
    let (code, _, err) = check(Path::new("/nonexistent/secrets.yaml"));
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/secrets.yaml") && err.contains("CONFIG_FILE"),
        "{err}"
    );
}

#[test]
fn run_refuses_an_invalid_config_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    // Valid file, but no token at run time.
    std::fs::write(&p, "secretStore: {address: http://127.0.0.1:1}\nsecrets: [{name: a, path: p, files: [{path: /tmp/x}]}]\n").unwrap();
    let mut c = bin();
    c.args(["run", "--once", "--config"]).arg(&p);
    let (code, out, err) = run_to_end(c);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("VAULT_TOKEN"), "{err}");
}

#[test]
fn isready_reads_the_status_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("state");
    let isready = |f: &Path| {
        let mut c = bin();
        c.arg("isready").env("STATUS_FILE", f);
        run_to_end(c).0
    };
    assert_eq!(isready(&f), 1, "missing file means not ready");
    std::fs::write(&f, r#"{"ready":false,"synced":0,"total":2,"pid":1}"#).unwrap();
    assert_eq!(isready(&f), 1);
    std::fs::write(&f, r#"{"ready":true,"synced":1,"total":2,"pid":1}"#).unwrap();
    assert_eq!(isready(&f), 0);
    std::fs::write(&f, "garbage").unwrap();
    assert_eq!(isready(&f), 1);
}

#[test]
fn help_lists_the_seed_environment_variables() {
    let mut c = bin();
    c.args(["run", "--help"]);
    let (code, out, _) = run_to_end(c);
    assert_eq!(code, 0);
    for var in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_ROLE_ID",
        "VAULT_SECRET_ID",
        "VAULT_NAMESPACE",
        "VAULT_CACERT",
        "VAULT_SKIP_VERIFY",
        "CONFIG_FILE",
        "WATCH_CONFIG",
        "CIRCUIT_BREAKER_MAX_REQUESTS",
        "CIRCUIT_BREAKER_INTERVAL",
        "CIRCUIT_BREAKER_TIMEOUT",
        "LOG_LEVEL",
        "HTTP_PORT",
        "STATUS_FILE",
        "ENABLE_TRACING",
        "OTEL_EXPORTER_ENDPOINT",
        "INITIAL_BACKOFF",
        "MAX_BACKOFF",
        "BACKOFF_MULTIPLIER",
        "READY_POLICY",
    ] {
        assert!(out.contains(var), "--help does not mention {var}");
    }
}

#[test]
fn deployment_configs_pass_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The compose example's config file.
    let (code, out, err) = check(&root.join("compose/config.yaml"));
    assert_eq!(code, 0, "compose/config.yaml: {out}{err}");
    // The config embedded in the Kubernetes ConfigMap.
    let cm: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("k8s/configmap.yaml")).unwrap())
            .unwrap();
    let text = cm["data"]["config.yaml"]
        .as_str()
        .expect("data.config.yaml");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.yaml");
    std::fs::write(&p, text).unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "k8s/configmap.yaml: {out}{err}");
    assert!(out.contains("2 secrets, 4 files"), "{out}");
    // The rotation variants: compose overrides' configs, and the ConfigMaps
    // in the multi-document Kubernetes files.
    for f in ["compose/config.signal.yaml", "compose/config.http.yaml"] {
        let (code, out, err) = check(&root.join(f));
        assert_eq!(code, 0, "{f}: {out}{err}");
        assert!(
            !format!("{out}{err}").contains("never runs"),
            "{f}: {out}{err}"
        );
    }
    for f in [
        "k8s/deployment-native-sidecar-signal.yaml",
        "k8s/deployment-native-sidecar-http.yaml",
        "k8s/deployment-native-sidecar-api.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let cm = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde_yaml::Value::deserialize(d).unwrap())
            .find(|d| d["kind"] == "ConfigMap")
            .unwrap_or_else(|| panic!("{f} has no ConfigMap"));
        std::fs::write(
            &p,
            cm["data"]["config.yaml"]
                .as_str()
                .expect("data.config.yaml"),
        )
        .unwrap();
        let (code, out, err) = check(&p);
        assert_eq!(code, 0, "{f}: {out}{err}");
        // The rotation examples tell the app by an action; the API one
        // needs none (the app asks).
        if !f.ends_with("-api.yaml") {
            assert!(out.contains("1 action"), "{f}: {out}");
        }
    }
}

/// Runs `args` with `env` set, against a valid config.
fn with_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.yaml");
    std::fs::write(
        &p,
        "secretStore: {address: \"http://127.0.0.1:1\", token: t}\nsecrets: [{name: a, path: p, files: [{path: /tmp/secrets-sync-cli-never/a, key: v}]}]\n",
    )
    .unwrap();
    let mut c = bin();
    c.args(args).env("CONFIG_FILE", &p).env("HTTP_PORT", "0");
    for (k, v) in env {
        c.env(k, v);
    }
    run_to_end(c)
}

#[test]
fn out_of_range_settings_exit_2_naming_the_variable_in_check_and_run() {
    for (var, value, says) in [
        (
            "CIRCUIT_BREAKER_INTERVAL",
            "3000000000000000h",
            "between 1s and 24h",
        ),
        (
            "CIRCUIT_BREAKER_TIMEOUT",
            "3000000000000000h",
            "between 1s and 1h",
        ),
        ("CIRCUIT_BREAKER_MAX_REQUESTS", "0", "1..=100"),
        ("BACKOFF_MULTIPLIER", "NaN", "between 1 and 10"),
        ("BACKOFF_MULTIPLIER", "-1", "between 1 and 10"),
        ("BACKOFF_MULTIPLIER", "0.5", "between 1 and 10"),
        ("INITIAL_BACKOFF", "0s", "between 100ms and 1h"),
        ("LOG_LEVEL", "verbose", "not a level"),
    ] {
        for cmd in ["check", "run"] {
            let (code, out, err) = with_env(&[cmd], &[(var, value)]);
            assert_eq!(code, 2, "{cmd} {var}={value}: {out}{err}");
            assert!(
                err.contains(var) && err.contains(says),
                "{cmd} {var}={value}: {err}"
            );
        }
    }
    let (code, _, err) = with_env(
        &["check"],
        &[("INITIAL_BACKOFF", "10s"), ("MAX_BACKOFF", "1s")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("MAX_BACKOFF") && err.contains("INITIAL_BACKOFF"),
        "{err}"
    );
    // In range: check passes.
    let (code, out, err) = with_env(&["check"], &[("BACKOFF_MULTIPLIER", "1.5")]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_refresh_interval_below_the_floor_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fast.yaml");
    std::fs::write(
        &p,
        "secretStore: {address: \"http://v\", token: t}\nsecrets: [{name: fast, path: p, refreshInterval: 1ns, files: [{path: /s/a, key: v}]}]\n",
    )
    .unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(r#"secrets[0] "fast".refreshInterval"#) && err.contains("at least \"1s\""),
        "{err}"
    );
}

#[test]
fn init_writes_a_starter_that_validate_accepts_and_version_prints_ours() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("config.yaml");
    let mut c = bin();
    c.args(["init", "--output"]).arg(&out);
    let (code, _, err) = run_to_end(c);
    assert_eq!(code, 0, "{err}");
    // `validate` is `check` (the Go tool's name).
    let mut c = bin();
    c.args(["validate", "--config"])
        .arg(&out)
        .env("VAULT_ADDR", "http://127.0.0.1:8200")
        .env("VAULT_TOKEN", "t");
    let (code, stdout, err) = run_to_end(c);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("OK (1 secrets, 2 files)"), "{stdout}");
    // An existing file is kept unless --force.
    std::fs::write(&out, "mine").unwrap();
    let mut c = bin();
    c.args(["init", "-o"]).arg(&out);
    let (code, _, err) = run_to_end(c);
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "mine");
    let mut c = bin();
    c.args(["init", "--force", "-o"]).arg(&out);
    assert_eq!(run_to_end(c).0, 0);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("secretStore:"));
    // Standard output without --output.
    let mut c = bin();
    c.arg("init");
    let (_, stdout, _) = run_to_end(c);
    assert!(
        stdout.starts_with("# yaml-language-server: $schema=secrets-sync.schema.json\n# secrets-sync configuration"),
        "{stdout}"
    );
    let mut c = bin();
    c.arg("version");
    let (code, stdout, _) = run_to_end(c);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&format!(
            "secrets-sync version {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    // The Go tool's flags: -v for the version, -c for the config file.
    for flag in ["-v", "-V", "--version"] {
        let mut c = bin();
        c.arg(flag);
        let (code, stdout, _) = run_to_end(c);
        assert_eq!(code, 0, "{flag}");
        assert!(
            stdout.contains(env!("CARGO_PKG_VERSION")),
            "{flag}: {stdout}"
        );
    }
    let mut c = bin();
    c.args(["validate", "-c", "/nonexistent/go-tool.yaml"]);
    let (code, _, stderr) = run_to_end(c);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent/go-tool.yaml"), "{stderr}");
}

/// Every config a user may start from names the JSON Schema on its first
/// line (yaml-language-server's modeline): the repository's examples the
/// committed file, the configs meant to be copied (starter, ConfigMaps) a
/// file `secrets-sync schema` writes next to them.
#[test]
fn every_example_config_names_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // config-examples/*.yaml and compose/config*.yaml.
    let mut files: Vec<_> = [("config-examples", ""), ("compose", "config")]
        .iter()
        .flat_map(|(d, prefix)| {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(move |p| {
                    p.extension().is_some_and(|e| e == "yaml")
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
        })
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| {
                panic!(
                    "{}: first line is not the schema modeline: {first}",
                    p.display()
                )
            });
        let schema = p.parent().unwrap().join(target);
        assert!(
            schema.ends_with("schema/secrets-sync.schema.json") && schema.exists(),
            "{}: names {target}",
            p.display()
        );
    }
    let modeline = "# yaml-language-server: $schema=secrets-sync.schema.json";
    let starter = std::fs::read_to_string(root.join("src/starter.yaml")).unwrap();
    assert!(starter.starts_with(modeline), "src/starter.yaml");
    let mut configmaps = 0;
    for f in [
        "k8s/configmap.yaml",
        "k8s/deployment-native-sidecar-signal.yaml",
        "k8s/deployment-native-sidecar-http.yaml",
        "k8s/deployment-native-sidecar-api.yaml",
        "k8s/deployment-aws-irsa.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc).unwrap();
            if let Some(config) = v["data"]["config.yaml"].as_str() {
                assert!(config.starts_with(modeline), "{f}: {config}");
                configmaps += 1;
            }
        }
    }
    assert_eq!(configmaps, 5);
}

/// `secrets-sync schema` prints the committed schema, a draft-7 JSON Schema
/// that refuses unknown fields.
#[test]
fn schema_command_prints_the_committed_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = bin();
    c.arg("schema");
    let (code, out, err) = run_to_end(c);
    assert_eq!(code, 0, "{err}");
    let committed = std::fs::read_to_string(root.join("schema/secrets-sync.schema.json")).unwrap();
    assert_eq!(out, committed);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(v["additionalProperties"], false);
    assert_eq!(v["definitions"]["RawSecret"]["additionalProperties"], false);
    assert!(v["definitions"]["RawSecret"]["properties"]["refreshInterval"].is_object());
}

/// The configs the schema refuses (tests/fixtures/schema-invalid, checked
/// by scripts/check-config-schema.sh) are refused by `check` too, and the
/// Go tool's example configs that the schema accepts pass `check`.
#[test]
fn schema_and_check_agree_on_the_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(root.join("tests/fixtures/schema-invalid"))
        .unwrap()
        .flatten()
    {
        let (code, out, err) = check(&e.path());
        assert_eq!(code, 2, "{}: {out}{err}", e.path().display());
        n += 1;
    }
    assert_eq!(n, 3);
    for e in std::fs::read_dir(root.join("tests/fixtures/go-tool"))
        .unwrap()
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "yaml") {
            let mut c = bin();
            c.args(["check", "--config"])
                .arg(e.path())
                .env("VAULT_TOKEN", "t")
                .env("TEAM_A_TOKEN", "t")
                .env("TEAM_B_ROLE_ID", "r")
                .env("TEAM_B_SECRET_ID", "s");
            let (code, out, err) = run_to_end(c);
            assert_eq!(code, 0, "{}: {out}{err}", e.path().display());
        }
    }
}

/// `convert` reads regular files only: a FIFO (nobody writing) or
/// `/dev/zero` is refused at once, not read for ever.
#[test]
fn convert_refuses_fifos_and_devices_without_blocking() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("in.yaml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    for input in [fifo.as_path(), std::path::Path::new("/dev/zero")] {
        let t = std::time::Instant::now();
        let out = bin().arg("convert").arg(input).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{err}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }
}

/// A `templateFile` under /proc (the sidecar's own environment, with its
/// credentials) is refused by `check`, naming the field.
#[test]
fn check_refuses_template_files_of_the_system() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "secretStore: {address: http://127.0.0.1:8200, token: t}\nsecrets:\n  - name: a\n    path: p\n    template: {data: {env: {templateFile: /proc/self/environ}}}\n    files: [{path: /tmp/x/env, key: env}]\n",
    )
    .unwrap();
    let (code, out, err) = check(&cfg);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("templateFile") && err.contains("under /proc"),
        "{err}"
    );
}

/// The AWS example's config (Vault and AWS stores in one file) passes
/// `check` as shipped.
#[test]
fn the_aws_example_config_passes_check() {
    use serde::Deserialize;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("k8s/deployment-aws-irsa.yaml")).unwrap();
    let cm = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.yaml");
    std::fs::write(&p, cm["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let (code, out, err) = check(&p);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 secrets"), "{out}");
}

/// The glibc build's relative relocations are packed (DT_RELR, `build.rs`)
/// when the glibc it is built on (2.36+) applies them: unpacked, the loader
/// reads 435 KB of `.rela.dyn` at every start and it stays in memory. On an
/// older glibc the flag must be absent (its loader would ignore DT_RELR and
/// run unrelocated pointers).
#[test]
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn the_glibc_build_packs_its_relative_relocations_when_its_glibc_applies_them() {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf");
    let text = String::from_utf8(out.stdout).unwrap();
    let version = text.trim().strip_prefix("glibc ").expect("glibc version");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    let out = Command::new("readelf")
        .args(["-W", "-d", "-S"])
        .arg(env!("CARGO_BIN_EXE_secrets-sync"))
        .output()
        .expect("readelf (binutils) must be installed");
    assert!(out.status.success());
    let elf = String::from_utf8(out.stdout).unwrap();
    let packed = elf.contains("(RELR)");
    if (major, minor) >= (2, 36) {
        assert!(packed, "no DT_RELR on glibc {version}");
        // What is left unpacked: relocations against symbols (a few KB).
        let rela = elf
            .lines()
            .find(|l| l.contains(" .rela.dyn "))
            .expect(".rela.dyn section");
        let size = rela
            .split_whitespace()
            .skip_while(|w| *w != "RELA")
            .nth(3)
            .expect("size column");
        let size = usize::from_str_radix(size, 16).unwrap();
        assert!(size < 64 * 1024, ".rela.dyn is {size} bytes");
    } else {
        assert!(
            !packed,
            "DT_RELR on glibc {version}, whose loader ignores it"
        );
    }
}
