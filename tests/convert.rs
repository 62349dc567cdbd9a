//! `secrets-sync convert` round trips against OpenBao: each fixture of
//! tests/fixtures/convert (written after the examples of ESO's, the Vault
//! Agent injector's and Vault Agent's documentation) is converted, the
//! config passes `check` unchanged, and `run --once` writes the bytes the
//! original would: Vault Agent's by running the real agent (`bao agent`)
//! on the same templates against the same server; ESO's as worked out from
//! its documented semantics (no ESO here), written down in the test.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_to_end, ROOT_TOKEN};
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/convert")
}

/// The fixed secrets every fixture reads.
fn seed(bao: &common::Bao) {
    bao.kv_put(
        "convert/foo",
        json!({"my-value": "hello-foo", "password": "s3cr3t"}),
    );
    bao.kv_put("convert/bin", json!({"keystore": "AAEC//4="}));
    bao.kv_put(
        "convert/app",
        json!({"username": "app-user", "password": "pa55", "token": "aGVsbG8="}),
    );
    bao.kv_put(
        "convert/db",
        json!({"username": "db-user", "password": "db-pass"}),
    );
    bao.kv_put(
        "convert/tls",
        json!({"cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "private.key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"}),
    );
    bao.ensure_mount("kv1", r#"{"type":"kv","options":{"version":"1"}}"#);
    bao.api(
        "POST",
        "/v1/kv1/convert/legacy",
        Some(r#"{"api_key":"k-1","region":"eu"}"#),
    );
}

/// `convert FIXTURE --output-dir OUT`: (exit code, config, stderr).
fn convert(fixture: &str, out: &Path) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.env_clear()
        .arg("convert")
        .arg(fixtures().join(fixture))
        .arg("--output-dir")
        .arg(out);
    run_to_end(c)
}

/// `check` on the converted config as it is, with the variables it names.
fn check(dir: &Path, config: &str) {
    let p = dir.join("converted.yaml");
    std::fs::write(&p, config).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.env_clear()
        .args(["check", "--config"])
        .arg(&p)
        .env("VAULT_ADDR", "http://127.0.0.1:8200")
        .env("VAULT_TOKEN", "t");
    let (code, out, err) = run_to_end(c);
    assert_eq!(code, 0, "check: {out}{err}\n{config}");
}

/// `run --once` of the converted config with the store's login swapped
/// for the test server's token, and its change actions left out (they
/// would signal or reload things of this machine).
fn run_once(bao: &common::Bao, dir: &Path, config: &str) {
    let mut v: serde_yaml::Value = serde_yaml::from_str(config).unwrap();
    let store = &mut v["secretStore"];
    let (mount, kv) = (store["mountPath"].clone(), store["kvVersion"].clone());
    *store = serde_yaml::from_str("{authMethod: token, token: '${VAULT_TOKEN}'}").unwrap();
    store["mountPath"] = mount;
    store["kvVersion"] = kv;
    if let Some(m) = v.as_mapping_mut() {
        m.remove("actions");
    }
    for s in v["secrets"].as_sequence_mut().unwrap() {
        if let Some(m) = s.as_mapping_mut() {
            m.remove("onChange");
        }
    }
    let p = dir.join("run.yaml");
    std::fs::write(&p, serde_yaml::to_string(&v).unwrap()).unwrap();
    let mut c = common::command(dir, &p, &bao.addr, &[("VAULT_TOKEN", ROOT_TOKEN)]);
    c.args(["run", "--once"]);
    let (code, out, err) = run_to_end(c);
    assert_eq!(code, 0, "run --once: {out}{err}");
}

/// Runs the real Vault Agent (`bao agent`) once with `config` (JSON, its
/// vault and auto_auth filled in here) from `cwd`.
fn agent(bao: &common::Bao, cwd: &Path, mut config: serde_json::Value) {
    let token = cwd.join("agent-token");
    std::fs::write(&token, ROOT_TOKEN).unwrap();
    config["vault"] = json!({"address": bao.addr});
    config["auto_auth"] =
        json!({"method": [{"type": "token_file", "config": {"token_file_path": token}}]});
    config["exit_after_auth"] = json!(true);
    let p = cwd.join("agent.json");
    std::fs::write(&p, config.to_string()).unwrap();
    let mut c = Command::new(&bao.bin);
    c.arg("agent")
        .arg(format!("-config={}", p.display()))
        .current_dir(cwd)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR");
    let (code, out, err) = run_to_end(c);
    assert_eq!(code, 0, "bao agent: {out}{err}");
}

/// Every file under `agent_dir` is in `ours` with the same bytes and mode.
fn same_files(agent_dir: &Path, ours: &Path, names: &[&str]) {
    for name in names {
        let want =
            std::fs::read(agent_dir.join(name)).unwrap_or_else(|e| panic!("agent {name}: {e}"));
        let have = std::fs::read(ours.join(name)).unwrap_or_else(|e| panic!("ours {name}: {e}"));
        assert_eq!(
            String::from_utf8_lossy(&have),
            String::from_utf8_lossy(&want),
            "{name}: not the agent's bytes"
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode(&ours.join(name)),
            mode(&agent_dir.join(name)),
            "{name}: mode"
        );
    }
}

#[test]
fn vault_agent_hcl_renders_the_agents_bytes() {
    let bao = require_bao!();
    seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = d.join("ours");
    let (code, config, err) = convert("agent.hcl", &ours);
    assert_eq!(code, 0, "{err}\n{config}");
    assert!(err.contains("through `sh -c`"), "{err}");
    check(d, &config);
    run_once(bao, d, &config);
    // The agent on the fixture's own templates: the heredoc as written
    // (after HCL's `<<-` indentation strip) and the source file.
    let hcl = std::fs::read_to_string(fixtures().join("agent.hcl")).unwrap();
    let heredoc: String = hcl
        .split("<<-EOT\n")
        .nth(1)
        .and_then(|s| s.split("  EOT").next())
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    std::fs::copy(
        fixtures().join("agent-tls.ctmpl"),
        d.join("agent-tls.ctmpl"),
    )
    .unwrap();
    let theirs = d.join("agent-out");
    agent(
        bao,
        d,
        json!({"template": [
            {"contents": heredoc, "destination": theirs.join("app.env"), "perms": "0600"},
            {"source": "agent-tls.ctmpl", "destination": theirs.join("tls.pem")},
        ]}),
    );
    same_files(&theirs, &ours, &["app.env", "tls.pem"]);
    assert!(std::fs::read_to_string(ours.join("tls.pem"))
        .unwrap()
        .contains("MIIE"));
}

/// Agent templates that use Go's text/template beyond field reads
/// (variables, if/else if/else, range over the secret, printf verbs,
/// and/or/not/eq/ne/lt, define/template, trim markers and comments,
/// consul-template's functions): `convert` + `run --once` writes the bytes
/// and modes `bao agent` renders from the same templates.
#[test]
fn vault_agent_go_templates_render_the_agents_bytes() {
    let bao = require_bao!();
    seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = d.join("ours");
    let (code, config, err) = convert("agent-go.hcl", &ours);
    assert_eq!(code, 0, "{err}\n{config}");
    check(d, &config);
    run_once(bao, d, &config);
    for f in ["agent-features.ctmpl", "agent-define.ctmpl"] {
        std::fs::copy(fixtures().join(f), d.join(f)).unwrap();
    }
    let theirs = d.join("agent-out");
    agent(
        bao,
        d,
        json!({"template": [
            {"source": "agent-features.ctmpl", "destination": theirs.join("features.conf"), "perms": "0640"},
            {"source": "agent-define.ctmpl", "destination": theirs.join("greeting.txt")},
        ]}),
    );
    same_files(&theirs, &ours, &["features.conf", "greeting.txt"]);
    // The templates did run their constructs (not an empty agreement).
    let features = std::fs::read_to_string(ours.join("features.conf")).unwrap();
    for want in [
        "user=APP-USER",
        "has-password",
        "password=pa55;",
        "app_user",
        "a+b+c",
    ] {
        assert!(features.contains(want), "{want}: {features}");
    }
    assert!(std::fs::read_to_string(ours.join("greeting.txt"))
        .unwrap()
        .contains("hello db-user!"));
}

#[test]
fn injector_annotations_render_the_agents_bytes() {
    let bao = require_bao!();
    seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = d.join("ours");
    let (code, config, err) = convert("injector-deployment.yaml", &ours);
    assert_eq!(code, 0, "{err}\n{config}");
    check(d, &config);
    run_once(bao, d, &config);
    // What the injector gives its agent: each annotated template, or its
    // default one, at /vault/secrets/<file> with the annotated mode.
    let doc: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(fixtures().join("injector-deployment.yaml")).unwrap(),
    )
    .unwrap();
    let ann = &doc["spec"]["template"]["metadata"]["annotations"];
    let a = |k: &str| {
        ann[format!("vault.hashicorp.com/{k}").as_str()]
            .as_str()
            .unwrap()
            .to_string()
    };
    let theirs = d.join("agent-out");
    let default = "{{ with secret \"kv1/convert/legacy\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";
    agent(
        bao,
        d,
        json!({"template": [
            {"contents": a("agent-inject-template-database-config.txt"), "destination": theirs.join("db.url"), "perms": "0440"},
            {"contents": a("agent-inject-template-env"), "destination": theirs.join("env"), "perms": "0644"},
            {"contents": default, "destination": theirs.join("legacy"), "perms": "0644"},
        ]}),
    );
    same_files(&theirs, &ours, &["db.url", "env", "legacy"]);
    assert_eq!(
        std::fs::read_to_string(ours.join("env")).unwrap(),
        "export PASSWORD=\"db-pass\"\nexport USERNAME=\"db-user\"\n\n"
    );
}

#[test]
fn external_secrets_render_what_eso_would_put_in_the_secret() {
    let bao = require_bao!();
    seed(bao);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ours = d.join("ours");
    // data items, a base64-decoded keystore, the SecretStore's settings.
    let (code, config, err) = convert("eso-store-and-data.yaml", &ours);
    assert_eq!(code, 0, "{err}\n{config}");
    assert!(
        config.contains("address: http://vault.vault.svc:8200"),
        "{config}"
    );
    assert!(config.contains("authMethod: kubernetes"), "{config}");
    check(d, &config);
    run_once(bao, d, &config);
    let read = |n: &str| std::fs::read(ours.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(read("foobar"), b"hello-foo");
    assert_eq!(read("password"), b"s3cr3t");
    // No property: the secret's data as JSON, as ESO's encoder writes it.
    assert_eq!(
        read("all.json"),
        br#"{"my-value":"hello-foo","password":"s3cr3t"}"#
    );
    assert!(
        err.contains("note:") && err.contains("all.json holds the whole secret as JSON"),
        "{err}"
    );
    assert_eq!(read("keystore.p12"), [0u8, 1, 2, 0xff, 0xfe]);
    // target.template with data + dataFrom.extract and ESO's functions.
    let ours2 = d.join("ours2");
    let (code, config, err) = convert("eso-template.yaml", &ours2);
    assert_eq!(code, 0, "{err}\n{config}");
    check(d, &config);
    run_once(bao, d, &config);
    let read =
        |n: &str| std::fs::read_to_string(ours2.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(
        read("config.yml"),
        "database:\n  url: postgres://app-user:pa55@db:5432/app\n  password_sha256: 6fcb5c247e745f625b524676ff53a8280d309762f246385973f32830fe311a0a\n"
    );
    assert_eq!(read("auth-header"), "Basic app-user:cGE1NQ==");
    assert_eq!(read("token"), "HELLO");
}

#[test]
fn what_does_not_convert_is_listed_and_exits_1_from_stdin() {
    let input = r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  target:
    template:
      data:
        auth: '{{ now | date "2006" }}{{ .user }}'
        ok: '{{ .user }}'
        basic: '{{ printf "%s:%s" .user .password | b64enc }}'
  data:
  - {secretKey: user, remoteRef: {key: app, property: username}}
  - {secretKey: password, remoteRef: {key: app, property: password}}
"#;
    let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.env_clear()
        .arg("convert")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("not converted: standard input: document 1 (ExternalSecret app): target.template.data[\"auth\"]")
            && stderr.contains("the function now is not available: templates have no clock"),
        "{stderr}"
    );
    // The rest is still printed, and is a valid config: Go's printf and
    // pipelines run as they are, ESO's keys renamed to the Vault fields.
    assert!(stdout.contains("ok: '{{ .username }}'"), "{stdout}");
    assert!(
        stdout.contains(r#"basic: '{{ printf "%s:%s" .username .password | b64enc }}'"#),
        "{stdout}"
    );
    let dir = tempfile::tempdir().unwrap();
    check(dir.path(), &stdout);
    // A file that cannot be read: exit 2, named.
    let mut c = Command::new(env!("CARGO_BIN_EXE_secrets-sync"));
    c.env_clear().args(["convert", "/nonexistent/es.yaml"]);
    let (code, _, err) = run_to_end(c);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/es.yaml"), "{err}");
}
