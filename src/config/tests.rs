use std::path::Path;

use clap::Parser;

use super::settings::ConfigArgs;
use super::*;

#[derive(Parser)]
struct T {
    #[command(flatten)]
    args: ConfigArgs,
}

fn args(extra: &[&str]) -> ConfigArgs {
    let mut argv = vec!["t"];
    argv.extend_from_slice(extra);
    T::parse_from(argv).args
}

fn env(name: &str) -> Option<String> {
    match name {
        "VAULT_TOKEN" => Some("tok".into()),
        "SECRETS_DIR" => Some("/out".into()),
        _ => None,
    }
}

fn load(yaml: &str) -> Result<Loaded, ConfigErrors> {
    load_str(
        yaml,
        Path::new("t.yaml"),
        &args(&[]),
        &env,
        Credentials::Required,
    )
}

fn errors(yaml: &str) -> Vec<String> {
    load(yaml)
        .expect_err("config should be rejected")
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

const SEED: &str = include_str!("../../config-examples/seed-example.yaml");

#[test]
fn seed_example_loads_with_positional_mapping() {
    let loaded = load(SEED).unwrap();
    let c = &loaded.config;
    assert_eq!(c.store.address, "https://vault.example.com");
    assert_eq!(c.store.kv_version, KvVersion::V2);
    assert_eq!(c.store.mount_path, "secret");
    assert!(matches!(&c.store.auth, AuthConfig::Token { token } if token.expose() == "tok"));
    let tls = &c.secrets[0];
    assert_eq!(tls.name, "tls-cert");
    assert_eq!(tls.refresh_interval, Duration::from_secs(1800));
    assert_eq!(tls.files[0].source, "tls.crt");
    assert_eq!(tls.files[0].mode, 0o644);
    assert_eq!(tls.files[1].source, "tls.key");
    assert_eq!(
        (tls.files[1].owner, tls.files[1].group),
        (Some(1000), Some(1000))
    );
    let db = &c.secrets[1];
    // Declaration order, not sorted order: username file <- username key.
    assert_eq!(db.files[0].path, PathBuf::from("/secrets/db-username"));
    assert_eq!(db.files[0].source, "username");
    assert_eq!(db.files[1].source, "password");
    // roleId/secretId reference unset variables: a warning, not an error.
    assert!(loaded.warnings.iter().any(|w| w.contains("VAULT_ROLE_ID")));
}

#[test]
fn environment_overrides_file() {
    let a = args(&[
        "--vault-addr",
        "http://127.0.0.1:8200/",
        "--vault-namespace",
        "/team/",
    ]);
    let l = load_str(SEED, Path::new("t.yaml"), &a, &env, Credentials::Required).unwrap();
    assert_eq!(l.config.store.address, "http://127.0.0.1:8200");
    assert_eq!(l.config.store.namespace.as_deref(), Some("team"));
}

#[test]
fn missing_token_is_error_for_run_and_warning_for_check() {
    let yaml =
        "secretStore: {address: http://v}\nsecrets: [{name: a, path: p, files: [{path: /x/a}]}]";
    let no_env = |_: &str| None;
    let e = load_str(
        yaml,
        Path::new("t.yaml"),
        &args(&[]),
        &no_env,
        Credentials::Required,
    )
    .unwrap_err();
    assert!(e.to_string().contains("VAULT_TOKEN"), "{e}");
    let ok = load_str(
        yaml,
        Path::new("t.yaml"),
        &args(&[]),
        &no_env,
        Credentials::Optional,
    )
    .unwrap();
    assert!(ok.warnings.iter().any(|w| w.contains("VAULT_TOKEN")));
}

#[test]
fn approle_config() {
    let yaml = "secretStore: {address: http://v, authMethod: approle, roleId: r, secretId: s, authMountPath: /ar/}\n\
                secrets: [{name: a, path: p, files: [{path: /x/a}]}]";
    let c = load(yaml).unwrap().config;
    match c.store.auth {
        AuthConfig::AppRole {
            mount,
            role_id,
            secret_id,
        } => {
            assert_eq!(
                (mount.as_str(), role_id.as_str(), secret_id.expose()),
                ("ar", "r", "s")
            );
        }
        other => panic!("wrong auth {other:?}"),
    }
}

#[test]
fn every_error_is_reported_with_secret_and_field() {
    let yaml = r#"
secretStore: {address: "ftp://v", authMethod: magic, kvVersion: v3}
secrets:
  - name: one
    path: a/../b
    refreshInterval: 5 minutes
    template:
      data:
        a: '{{ .x'
    files:
      - path: /s/one
      - path: /s/two
        mode: "0999"
        owner: www-data
  - name: one
    path: p
    files: []
  - path: q
    files: [{path: /s/one}]
"#;
    let errs = errors(yaml);
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(has("secretStore.address"), "{errs:#?}");
    assert!(
        has("secretStore.authMethod: unknown auth method \"magic\""),
        "{errs:#?}"
    );
    assert!(has("secretStore.kvVersion"), "{errs:#?}");
    assert!(has("secrets[0] \"one\".path"), "{errs:#?}");
    assert!(
        has("secrets[0] \"one\".refreshInterval: invalid duration"),
        "{errs:#?}"
    );
    assert!(
        has("secrets[0] \"one\".template.data[\"a\"]: template syntax error"),
        "{errs:#?}"
    );
    assert!(has("secrets[0] \"one\".files[1].mode"), "{errs:#?}");
    assert!(has("secrets[0] \"one\".files[1].owner"), "{errs:#?}");
    assert!(has("secrets[1] \"one\".name: duplicate name"), "{errs:#?}");
    assert!(has("secrets[1] \"one\".files: no files"), "{errs:#?}");
    assert!(has("secrets[2].name: missing"), "{errs:#?}");
    assert!(has("already written by secret"), "{errs:#?}");
}

#[test]
fn absurd_intervals_are_rejected() {
    let y = "secretStore: {address: http://v, token: t}\nsecrets: [{name: a, path: p, refreshInterval: 2562047788015215h, files: [{path: /x/a}]}]";
    assert!(
        errors(y).iter().any(|e| e.contains("at most 8760h")),
        "{:?}",
        errors(y)
    );
}

#[test]
fn unknown_fields_are_rejected_with_location() {
    let errs = errors("secrets:\n  - name: a\n    path: p\n    refreshIntervall: 5m\n");
    assert!(
        errs[0].contains("refreshIntervall") && errs[0].contains("line 4"),
        "{errs:?}"
    );
}

fn sources(yaml: &str) -> Vec<String> {
    let c = load(yaml).unwrap().config;
    c.secrets[0]
        .files
        .iter()
        .map(|f| f.source.clone())
        .collect()
}

fn with_files(data: &str, files: &str) -> String {
    format!(
        "secretStore: {{address: http://v, token: t}}\nsecrets:\n  - name: a\n    path: p\n    template:\n      data: {data}\n    files: {files}\n"
    )
}

#[test]
fn file_mapping_key_then_name_then_position() {
    let y = with_files(
        r#"{first: "1", cfg.json: "2", third: "3"}"#,
        "[{path: /o/third}, {path: /o/cfg.json}, {path: /o/z, key: first}]",
    );
    assert_eq!(sources(&y), ["third", "cfg.json", "first"]);
    let y = with_files(
        r#"{username: "u", password: "p"}"#,
        "[{path: /o/db-user}, {path: /o/db-pass}]",
    );
    assert_eq!(sources(&y), ["username", "password"]);
    // Same key for two files is allowed when asked for explicitly.
    let y = with_files(
        r#"{a: "1"}"#,
        "[{path: /o/x, key: a}, {path: /o/y, key: a}]",
    );
    assert_eq!(sources(&y), ["a", "a"]);
}

#[test]
fn file_mapping_ambiguity_is_an_error() {
    // files[0] would take "first" by position, but files[1] names it.
    let y = with_files(
        r#"{first: "1", second: "2"}"#,
        "[{path: /o/x}, {path: /o/first}]",
    );
    let errs = errors(&y);
    assert!(
        errs.iter()
            .any(|e| e.contains("files[0]") && e.contains("ambiguous")),
        "{errs:?}"
    );
    // Counts differ and no name matches.
    let y = with_files(r#"{a: "1", b: "2"}"#, "[{path: /o/x}]");
    let errs = errors(&y);
    assert!(
        errs.iter()
            .any(|e| e.contains("files[0]") && e.contains("add `key:`")),
        "{errs:?}"
    );
    // An explicit key that does not exist.
    let y = with_files(r#"{a: "1"}"#, "[{path: /o/x, key: nope}]");
    let errs = errors(&y);
    assert!(
        errs.iter()
            .any(|e| e.contains("files[0].key") && e.contains("\"nope\"")),
        "{errs:?}"
    );
}

#[test]
fn without_template_key_names_a_field() {
    let y = "secretStore: {address: http://v, token: t}\nsecrets:\n  - name: a\n    path: p\n    files: [{path: /o/api-key}, {path: /o/y, key: password}]\n";
    assert_eq!(sources(y), ["api-key", "password"]);
}

#[test]
fn modes_and_ids() {
    let y = "secretStore: {address: http://v, token: t}\nsecrets:\n  - name: a\n    path: p\n    files: [{path: /o/a, mode: 640, owner: 1000, group: \"${GID:-5}\"}, {path: /o/b, mode: \"0o444\"}, {path: /o/c}]\n";
    let c = load(y).unwrap().config;
    let f = &c.secrets[0].files;
    assert_eq!(
        (f[0].mode, f[0].owner, f[0].group),
        (0o640, Some(1000), Some(5))
    );
    assert_eq!(f[1].mode, 0o444);
    assert_eq!(f[2].mode, DEFAULT_FILE_MODE);
    let y = y.replace("mode: 640", "mode: 4755");
    assert!(errors(&y).iter().any(|e| e.contains("setuid")));
}

#[test]
fn interpolation_in_paths() {
    let y = "secretStore: {address: http://v, token: t}\nsecrets:\n  - name: a\n    path: p\n    files: [{path: \"${SECRETS_DIR}/a\"}]\n";
    let c = load(y).unwrap().config;
    assert_eq!(c.secrets[0].files[0].path, PathBuf::from("/out/a"));
}

#[test]
fn empty_file_and_bad_yaml() {
    assert!(errors("")
        .iter()
        .any(|e| e.contains("no secrets configured")));
    assert!(errors("secrets: [")
        .iter()
        .any(|e| e.contains("invalid YAML")));
}

#[test]
fn kubernetes_and_jwt_auth() {
    let k8s = "secretStore: {address: http://v, authMethod: kubernetes, role: app}\nsecrets: [{name: a, path: p, files: [{path: /x/a}]}]";
    match load(k8s).unwrap().config.store.auth {
        AuthConfig::Kubernetes {
            mount,
            role,
            token_path,
        } => {
            assert_eq!((mount.as_str(), role.as_str()), ("kubernetes", "app"));
            assert_eq!(token_path, PathBuf::from(DEFAULT_K8S_TOKEN_PATH));
        }
        other => panic!("wrong auth {other:?}"),
    }
    let jwt = "secretStore: {address: http://v, authMethod: jwt, role: ci, authMountPath: gitlab, tokenPath: /run/jwt}\nsecrets: [{name: a, path: p, files: [{path: /x/a}]}]";
    match load(jwt).unwrap().config.store.auth {
        AuthConfig::Jwt {
            mount,
            role,
            token_path,
        } => {
            assert_eq!((mount.as_str(), role.as_str()), ("gitlab", "ci"));
            assert_eq!(token_path, PathBuf::from("/run/jwt"));
        }
        other => panic!("wrong auth {other:?}"),
    }
    let errs = errors("secretStore: {address: http://v, authMethod: jwt}\nsecrets: [{name: a, path: p, files: [{path: /x/a}]}]");
    assert!(
        errs.iter().any(|e| e.starts_with("secretStore.role")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("secretStore.tokenPath")),
        "{errs:?}"
    );
}

#[test]
fn the_same_file_spelled_two_ways_is_a_duplicate() {
    let yaml = r#"
secrets:
  - name: a
    path: p
    files: [{path: /s/out/x}]
  - name: b
    path: q
    files: [{path: /s/out/../out/./x}]
"#;
    let errs = errors(yaml);
    assert!(
        errs.iter()
            .any(|e| e.contains("files[0].path") && e.contains("already written by secret \"a\"")),
        "{errs:#?}"
    );
    assert_eq!(
        validate::lexical_normal(Path::new("./out/../out/x")),
        Path::new("out/x")
    );
    assert_eq!(
        validate::lexical_normal(Path::new("/../a/./b/..")),
        Path::new("/a")
    );
    assert_eq!(
        validate::lexical_normal(Path::new("../a")),
        Path::new("../a")
    );
}

#[test]
fn a_relative_file_path_is_a_warning() {
    let loaded = load("secretStore: {address: \"http://v:8200\", token: t}\nsecrets:\n  - name: a\n    path: p\n    files: [{path: out/x}]\n").unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("files[0].path") && w.contains("relative")),
        "{:?}",
        loaded.warnings
    );
}

const STORE: &str = "secretStore: {address: \"http://v\", token: t}\n";

#[test]
fn dynamic_and_pki_sources_are_read_with_their_defaults() {
    let y = format!(
        "{STORE}secrets:
  - name: db
    dynamic: {{path: /database/creds/app/}}
    revokeOnShutdown: true
    files: [{{path: /s/db.env, key: username}}]
  - name: post
    dynamic: {{path: aws/sts/x, method: post, parameters: {{ttl: 15m, dir: \"${{SECRETS_DIR}}\"}}}}
    files: [{{path: /s/aws, key: secret_key}}]
  - name: web
    pki:
      path: pki/issue/web
      commonName: web.example.internal
      altNames: [web, web.default.svc]
      ipSans: [10.0.0.7]
      ttl: 24h
      renewBefore: 8h
    atomicSet: true
    files:
      - {{path: /tls/tls.crt, key: certificate}}
      - {{path: /tls/tls.key, key: private_key}}
"
    );
    let c = load(&y).unwrap().config;
    assert_eq!(
        c.secrets[0].source,
        SecretSource::Dynamic {
            path: "database/creds/app".into(),
            method: http::Method::GET,
            parameters: None
        }
    );
    assert!(c.secrets[0].revoke_on_shutdown && !c.secrets[0].atomic_set);
    match &c.secrets[1].source {
        SecretSource::Dynamic {
            method, parameters, ..
        } => {
            assert_eq!(*method, http::Method::POST);
            assert_eq!(parameters.as_ref().unwrap()["ttl"], "15m");
            assert_eq!(parameters.as_ref().unwrap()["dir"], "/out");
        }
        other => panic!("{other:?}"),
    }
    let SecretSource::Pki(p) = &c.secrets[2].source else {
        panic!("not pki")
    };
    assert_eq!(p.common_name, "web.example.internal");
    assert_eq!(p.alt_names, ["web", "web.default.svc"]);
    assert_eq!(p.ip_sans, ["10.0.0.7".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(p.ttl, Some(Duration::from_secs(86400)));
    assert_eq!(p.renew_before, Some(Duration::from_secs(8 * 3600)));
    assert!(c.secrets[2].atomic_set);
}

#[test]
fn the_new_blocks_are_checked_field_by_field() {
    let e = errors(&format!(
        "{STORE}secrets:
  - name: both
    path: app
    dynamic: {{path: database/creds/app}}
    files: [{{path: /s/a, key: a}}]
  - name: none
    files: [{{path: /s/b, key: a}}]
  - name: method
    dynamic: {{path: x/y, method: DELETE}}
    files: [{{path: /s/c, key: a}}]
  - name: get-body
    dynamic: {{path: x/y, parameters: {{a: 1}}}}
    files: [{{path: /s/d, key: a}}]
  - name: v1
    dynamic: {{path: v1/database/creds/app}}
    files: [{{path: /s/e, key: a}}]
  - name: cert
    pki: {{path: pki/issue/web, ttl: 1h, renewBefore: 2h, ipSans: [not-an-ip]}}
    atomicSet: true
    files: [{{path: /tls/a.crt, key: certificate}}, {{path: /other/a.key, key: private_key}}]
  - name: revoke
    pki: {{path: pki/issue/web, commonName: web}}
    revokeOnShutdown: true
    files: [{{path: /tls/b.crt, key: certificate}}]
"
    ));
    let has = |needle: &str| e.iter().any(|m| m.contains(needle));
    assert!(
        has("secrets[0] \"both\": give exactly one of `path` (KV), `dynamic` or `pki`"),
        "{e:#?}"
    );
    assert!(
        has("secrets[1] \"none\": missing: give the secret's `path`"),
        "{e:#?}"
    );
    assert!(
        has("secrets[2] \"method\".dynamic.method: \"DELETE\" is not supported"),
        "{e:#?}"
    );
    assert!(
        has("secrets[3] \"get-body\".dynamic.parameters: a GET request has no body"),
        "{e:#?}"
    );
    assert!(has("secrets[4] \"v1\".dynamic.path: \"v1/database/creds/app\": give the API path without the /v1/ prefix"), "{e:#?}");
    assert!(has("secrets[5] \"cert\".pki.commonName: missing"), "{e:#?}");
    assert!(
        has("secrets[5] \"cert\".pki.renewBefore: 2h0m0s is not shorter than ttl 1h0m0s"),
        "{e:#?}"
    );
    assert!(
        has("secrets[5] \"cert\".pki.ipSans[0]: \"not-an-ip\" is not an IP address"),
        "{e:#?}"
    );
    assert!(
        has("secrets[6] \"revoke\".revokeOnShutdown: only a `dynamic:` secret"),
        "{e:#?}"
    );
    assert!(
        has("secrets[5] \"cert\".files[1].path: /other/a.key is not in /tls"),
        "{e:#?}"
    );
}

#[test]
fn write_mode_is_atomic_or_in_place_and_not_in_a_set() {
    let c = load(&format!(
        "{STORE}secrets:\n  - {{name: a, path: p, files: [{{path: /s/a, key: v, writeMode: inPlace}}, {{path: /s/b, key: w}}]}}\n"
    ))
    .unwrap()
    .config;
    assert!(c.secrets[0].files[0].in_place && !c.secrets[0].files[1].in_place);
    let e = errors(&format!(
        "{STORE}secrets:
  - {{name: a, path: p, files: [{{path: /s/a, key: v, writeMode: copy}}]}}
  - {{name: b, path: q, atomicSet: true, files: [{{path: /t/b, key: v, writeMode: inPlace}}]}}
"
    ));
    assert!(
        e.iter().any(
            |m| m.contains("secrets[0] \"a\".files[0].writeMode: \"copy\" is not a write mode")
        ),
        "{e:#?}"
    );
    assert!(
        e.iter().any(|m| m.contains(
            "secrets[1] \"b\".files[0].writeMode: inPlace cannot be part of an atomicSet"
        )),
        "{e:#?}"
    );
}

#[test]
fn two_atomic_sets_in_one_directory_are_refused_naming_both() {
    let e = errors(&format!(
        "{STORE}secrets:
  - {{name: web, path: p, atomicSet: true, files: [{{path: /tls/a.crt, key: v}}]}}
  - {{name: api, path: q, atomicSet: true, files: [{{path: /tls/b.crt, key: v}}]}}
  - {{name: db, path: r, atomicSet: true, files: [{{path: /db/p, key: v}}]}}
"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains(
            "secret \"api\": atomicSet: /tls already holds the atomic set of secret \"web\""
        ),
        "{e:#?}"
    );
}

#[test]
fn the_go_tools_key_and_per_secret_mount_version_and_namespace() {
    let c = load(&format!(
        "{STORE}secrets:
  - {{name: a, key: app/a, mountPath: kv, kvVersion: v1, namespace: team-a, files: [{{path: /s/a, key: v}}]}}
  - {{name: b, path: app/b, namespace: \"\", files: [{{path: /s/b, key: v}}]}}
  - {{name: c, path: app/c, files: [{{path: /s/c, key: v}}]}}
"
    ))
    .unwrap()
    .config;
    assert_eq!(
        c.secrets[0].source,
        SecretSource::Kv {
            path: "app/a".into(),
            mount: Some("kv".into()),
            kv_version: Some(KvVersion::V1)
        }
    );
    assert_eq!(c.secrets[0].namespace.as_deref(), Some("team-a"));
    // `""` is the root namespace; absent is the store's.
    assert_eq!(c.secrets[1].namespace.as_deref(), Some(""));
    assert_eq!(c.secrets[2].namespace, None);
    let e = errors(&format!(
        "{STORE}secrets:
  - {{name: both, key: x, path: x, files: [{{path: /s/a, key: v}}]}}
  - {{name: dyn, dynamic: {{path: db/creds/x}}, mountPath: kv, files: [{{path: /s/b, key: v}}]}}
  - {{name: ver, key: x, kvVersion: v3, files: [{{path: /s/c, key: v}}]}}
"
    ));
    let has = |n: &str| e.iter().any(|m| m.contains(n));
    assert!(
        has("secrets[0] \"both\".key: `key` is the Go tool's name for `path`"),
        "{e:#?}"
    );
    assert!(
        has("secrets[1] \"dyn\": mountPath and kvVersion apply to KV secrets"),
        "{e:#?}"
    );
    assert!(
        has("secrets[2] \"ver\".kvVersion: unknown KV version \"v3\""),
        "{e:#?}"
    );
}

#[test]
fn credential_sets_are_checked_by_name_and_field() {
    let c = load(
        "secretStore:
  address: http://v
  token: t
  credentials:
    team-a: {authMethod: token, token: ta}
    team-b: {authMethod: approle, roleId: r, secretId: s}
secrets:
  - {name: a, path: p, credentials: team-a, files: [{path: /s/a, key: v}]}
",
    )
    .unwrap()
    .config;
    assert_eq!(c.store.credentials.len(), 2);
    assert_eq!(c.store.credentials[1].0, "team-b");
    assert!(matches!(
        c.store.credentials[1].1,
        AuthConfig::AppRole { .. }
    ));
    assert_eq!(c.secrets[0].credentials.as_deref(), Some("team-a"));
    let e = errors(
        "secretStore:
  address: http://v
  token: t
  credentials:
    team-b: {authMethod: approle, roleId: r}
    team-c: {authMethod: ldap}
secrets:
  - {name: a, path: p, credentials: team-x, files: [{path: /s/a, key: v}]}
",
    );
    let has = |n: &str| e.iter().any(|m| m.contains(n));
    assert!(has("secretStore.credentials.team-b.secretId: secretId is empty: set secretStore.credentials.team-b.secretId"), "{e:#?}");
    assert!(
        has("secretStore.credentials.team-c.authMethod: unknown auth method \"ldap\""),
        "{e:#?}"
    );
    assert!(has("secrets[0] \"a\".credentials: \"team-x\" is not a credential set (secretStore.credentials has: team-b, team-c)"), "{e:#?}");
}

#[test]
fn the_go_tools_tls_fields_and_cert_auth() {
    let c = load(
        "secretStore:
  address: https://v
  authMethod: cert
  role: web
  tlsCACert: /tls/ca.pem
  tlsCAPath: /tls/cas
  tlsClientCert: /tls/c.pem
  tlsClientKey: /tls/c.key
  tlsSkipVerify: false
secrets:
  - {name: a, path: p, files: [{path: /s/a, key: v}]}
",
    )
    .unwrap()
    .config;
    assert_eq!(c.store.ca_cert.as_deref(), Some(Path::new("/tls/ca.pem")));
    assert_eq!(c.store.ca_path.as_deref(), Some(Path::new("/tls/cas")));
    let client = c.store.client_cert.as_ref().unwrap();
    assert_eq!(client.cert, Path::new("/tls/c.pem"));
    assert_eq!(client.key, Path::new("/tls/c.key"));
    assert_eq!(
        c.store.auth,
        AuthConfig::Cert {
            mount: "cert".into(),
            role: "web".into()
        }
    );
    // The variables win over the file, as for VAULT_CACERT.
    let over = load_str(
        "secretStore: {address: https://v, token: t, tlsCAPath: /a, tlsClientCert: /c, tlsClientKey: /k}
secrets: [{name: a, path: p, files: [{path: /s/a, key: v}]}]
",
        Path::new("t.yaml"),
        &args(&[
            "--vault-capath",
            "/env/cas",
            "--vault-client-cert",
            "/env/c.pem",
            "--vault-client-key",
            "/env/c.key",
            "--vault-tls-server-name",
            "vault.internal",
        ]),
        &env,
        Credentials::Required,
    )
    .unwrap()
    .config;
    assert_eq!(over.store.ca_path.as_deref(), Some(Path::new("/env/cas")));
    assert_eq!(
        over.store.client_cert.as_ref().unwrap().key,
        Path::new("/env/c.key")
    );
    assert_eq!(
        over.store.tls_server_name.as_deref(),
        Some("vault.internal")
    );

    let e = errors(
        "secretStore:
  address: https://v
  authMethod: cert
  caCert: /a.pem
  tlsCACert: /b.pem
  skipVerify: true
  tlsSkipVerify: true
  tlsClientKey: /c.key
secrets:
  - {name: a, path: p, files: [{path: /s/a, key: v}]}
",
    );
    let has = |n: &str| e.iter().any(|m| m.contains(n));
    assert!(
        has("secretStore.tlsCACert: is the Go tool's name for caCert: give one of them"),
        "{e:#?}"
    );
    assert!(
        has("secretStore.tlsSkipVerify: is the Go tool's name for skipVerify"),
        "{e:#?}"
    );
    assert!(
        has("secretStore.tlsClientCert: a client key needs its certificate"),
        "{e:#?}"
    );
    assert!(
        has("secretStore.tlsClientCert: cert auth logs in with the TLS client certificate"),
        "{e:#?}"
    );
}

#[test]
fn template_files_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.tmpl"), "{{ .user }}").unwrap();
    let cfg = dir.path().join("config.yaml");
    let yaml = |t: &str, enc: &str| {
        format!(
            "{STORE}secrets:\n  - name: a\n    path: p\n    template: {{data: {{a: {t}}}}}\n    files: [{{path: /s/a, key: a, encoding: {enc}}}]\n"
        )
    };
    let load_at = |text: &str| load_str(text, &cfg, &args(&[]), &env, Credentials::Required);
    let c = load_at(&yaml("{templateFile: a.tmpl}", "base64"))
        .unwrap()
        .config;
    assert_eq!(c.template_files, vec![dir.path().join("a.tmpl")]);
    assert!(c.secrets[0].files[0].base64);
    let e = load_at(&yaml("{templateFile: gone.tmpl}", "hex"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("secrets[0] \"a\".template.data[\"a\"].templateFile: cannot read"),
        "{e}"
    );
    assert!(e.contains("gone.tmpl"), "{e}");
    assert!(
        e.contains(".files[0].encoding: \"hex\" is not an encoding"),
        "{e}"
    );
    let e = load_at(&yaml("{file: a.tmpl}", "base64"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field \"file\""), "{e}");
    // The sidecar's own environment, the system's files, a FIFO: refused
    // (the FIFO without blocking), also behind a symlink.
    std::os::unix::fs::symlink("/proc/self/environ", dir.path().join("env.tmpl")).unwrap();
    for t in [
        "/proc/self/environ",
        "env.tmpl",
        "/dev/zero",
        "/sys/kernel/mm/transparent_hugepage/enabled",
    ] {
        let e = load_at(&yaml(&format!("{{templateFile: {t}}}"), "base64"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("under /proc, /sys or /dev") || e.contains("cannot read"),
            "{t}: {e}"
        );
    }
    let fifo = dir.path().join("fifo.tmpl");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let e = load_at(&yaml("{templateFile: fifo.tmpl}", "base64"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
}

/// A second Vault store under `secretStores` (`provider: vault`) takes the
/// fields of `secretStore`; the VAULT_* variables stay the default store's.
#[test]
fn a_named_vault_store_takes_secret_store_fields_and_no_variables() {
    let l = load_str(
        "secretStore: {address: http://a:8200}
secretStores:
  b:
    provider: vault
    address: https://b:8200/
    authMethod: approle
    roleId: r
    secretId: s
    mountPath: kv
    kvVersion: v1
    namespace: team
    credentials:
      ops: {token: ops-token}
secrets:
  - {name: one, path: app, files: [{path: /s/one, key: v}]}
  - {name: two, store: b, path: app, credentials: ops, files: [{path: /s/two, key: v}]}
",
        Path::new("t.yaml"),
        &args(&["--vault-namespace", "env-ns", "--vault-token", "tok"]),
        &env,
        Credentials::Required,
    )
    .unwrap();
    let c = l.config;
    // The default store takes VAULT_TOKEN and the flag's namespace ...
    assert!(matches!(&c.store.auth, AuthConfig::Token { token } if token.expose() == "tok"));
    assert_eq!(c.store.namespace.as_deref(), Some("env-ns"));
    // ... the named one only its own fields.
    assert_eq!(c.vault_stores.len(), 1);
    let (name, b) = &c.vault_stores[0];
    assert_eq!(name, "b");
    assert_eq!(b.address, "https://b:8200");
    assert_eq!(b.auth.method(), "approle");
    assert_eq!((b.mount_path.as_str(), b.kv_version), ("kv", KvVersion::V1));
    assert_eq!(b.namespace.as_deref(), Some("team"));
    assert_eq!(b.credentials[0].0, "ops");
    assert_eq!(c.secrets[0].store, None);
    assert_eq!(c.secrets[1].store.as_deref(), Some("b"));
    assert_eq!(c.secrets[1].credentials.as_deref(), Some("ops"));
    assert!(c.aws_stores.is_empty());
}

#[test]
fn named_store_errors_name_the_store_and_field() {
    let errs = errors(
        "secretStore: {address: http://a:8200, token: a, credentials: {main: {token: m}}}
secretStores:
  b: {provider: vault, token: t, region: eu-west-1}
  c: {provider: vault, address: http://c:8200, tlsClientKey: /k.pem}
  s3: {provider: aws, region: eu-west-1, address: http://x}
secrets:
  - {name: one, store: b, path: app, files: [{path: /s/one, key: v}]}
  - {name: two, store: c, path: app, credentials: main, files: [{path: /s/two, key: v}]}
  - {name: three, store: d, path: app, files: [{path: /s/three, key: v}]}
",
    );
    let all = errors_text(&errs);
    for want in [
        "secretStores.b.address: no Vault address: set secretStores.b.address",
        "secretStores.b.region: applies to an AWS store",
        "secretStores.c.tlsClientCert: a client key needs its certificate: set secretStores.c.tlsClientCert",
        "secretStores.s3.address: applies to a Vault store (provider: vault)",
        "secrets[1] \"two\".credentials: \"main\" is not a credential set: there is no secretStores.c.credentials",
        "secrets[2] \"three\".store: \"d\" is not a store (secretStores has: b, c, s3",
    ] {
        assert!(all.contains(want), "{want}\n{all}");
    }
    // No variable is offered for a named store's fields.
    assert!(!all.contains("VAULT_CLIENT_CERT"), "{all}");
    assert!(!all.contains("or VAULT_ADDR"), "{all}");
    // The secret of the invalid store b gets b's errors, not "not a store".
    assert!(!all.contains("\"b\" is not a store"), "{all}");
}

fn errors_text(errs: &[String]) -> String {
    errs.join("\n")
}

#[test]
fn secrets_with_the_same_template_share_one_compiled_template() {
    let yaml = r#"
secretStore: {address: "https://v", authMethod: token, token: t}
secrets:
  - {name: a, path: p/a, template: {data: {v: '{{ .username }}:{{ .password }}'}}, files: [{path: /s/a, key: v}]}
  - {name: b, path: p/b, template: {data: {v: '{{ .username }}:{{ .password }}'}}, files: [{path: /s/b, key: v}]}
  - {name: c, path: p/c, template: {data: {w: '{{ .username }}:{{ .password }}'}}, files: [{path: /s/c, key: w}]}
"#;
    let loaded = load(yaml).unwrap();
    let t = |i: usize| loaded.config.secrets[i].template.clone().unwrap();
    assert!(std::sync::Arc::ptr_eq(&t(0), &t(1)));
    // Another key is another template (the entries are the identity).
    assert!(!std::sync::Arc::ptr_eq(&t(0), &t(2)));
    assert!(t(2).has_key("w") && !t(2).has_key("v"));
}

#[test]
fn template_engine_env_and_file_dirs_are_checked_by_name() {
    let y = |template: &str| {
        format!(
            "secretStore: {{address: http://v, token: t}}\nsecrets:\n  - name: a\n    path: p\n    template: {template}\n    files: [{{path: /o/x, key: x}}]\n"
        )
    };
    // env: a listed variable's value is read when the config loads.
    let c = load(&y(
        r#"{engine: go, env: [APP_DIR, REGION], fileDirs: [/etc/app], data: {x: '{{ env "REGION" }}'}}"#,
    ));
    assert!(c.is_ok(), "{:?}", c.err());
    for (template, want) in [
        (
            r#"{env: [VAULT_TOKEN], data: {x: '{{ env "VAULT_TOKEN" }}'}}"#,
            "\"a\".template.env[0]: VAULT_TOKEN may hold a credential",
        ),
        (
            r#"{env: [DB_PASSWORD], data: {x: "y"}}"#,
            "DB_PASSWORD may hold a credential",
        ),
        (r#"{env: ["A-B"], data: {x: "y"}}"#, "is not an environment variable name"),
        (
            r#"{fileDirs: [etc/app], data: {x: "y"}}"#,
            "\"a\".template.fileDirs[0]: must be an absolute directory",
        ),
        (r#"{fileDirs: [/etc/../root], data: {x: "y"}}"#, "no `.` or `..`"),
        (r#"{engine: jinja, data: {x: "y"}}"#, "\"jinja\" is not an engine"),
        (
            r#"{data: {x: '{{ env "REGION" }}'}}"#,
            "the function env is not available: list the variables it may read in the secret's template.env",
        ),
        // engine: go runs Go even where auto would pick Tera.
        (r#"{engine: go, data: {x: "{{ secret.x }}"}}"#, "template syntax error"),
    ] {
        let errs = errors(&y(template)).join("\n");
        assert!(errs.contains(want), "{template}: {errs}");
    }
}
