use super::*;

fn run(text: &str, opts: &Options) -> Conversion {
    convert(
        &[Input {
            name: "in.yaml".into(),
            text: text.into(),
            dir: std::path::PathBuf::new(),
        }],
        opts,
    )
}

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    args: crate::config::settings::ConfigArgs,
}

/// The config loads like any other (`check`'s validation), with the
/// variables a run would have.
fn loads(c: &Conversion) -> crate::config::Config {
    loads_with(c, &|k: &str| match k {
        "VAULT_ADDR" => Some("http://127.0.0.1:8200".to_string()),
        "VAULT_TOKEN" | "VAULT_ROLE_ID" | "VAULT_SECRET_ID" => Some("x".to_string()),
        _ => None,
    })
}

/// [`loads`] with these variables.
fn loads_with(c: &Conversion, env: &dyn Fn(&str) -> Option<String>) -> crate::config::Config {
    use clap::Parser;
    crate::config::load_str(
        &c.config,
        std::path::Path::new("converted.yaml"),
        &Args::parse_from(["t"]).args,
        env,
        crate::config::Credentials::Required,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", c.config))
    .config
}

fn yaml(c: &Conversion) -> Value {
    serde_yaml::from_str(&c.config).unwrap()
}

#[test]
fn eso_data_items_become_files_taking_fields_grouped_by_path() {
    let c = run(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  refreshInterval: 30m
  data:
  - {secretKey: db-password, remoteRef: {key: prod/db, property: password}}
  - {secretKey: db-user, remoteRef: {key: prod/db, property: username}}
  - {secretKey: api, remoteRef: {key: prod/api, property: token}}
"#,
        &Options {
            output_dir: Some("/run/app".into()),
            mount_path: Some("kv".into()),
            kv_version: Some("v1".into()),
        },
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let y = yaml(&c);
    assert_eq!(y["secretStore"]["mountPath"], "kv");
    assert_eq!(y["secretStore"]["kvVersion"], "v1");
    assert_eq!(y["secrets"][0]["path"], "prod/db");
    assert_eq!(y["secrets"][0]["refreshInterval"], "30m");
    assert_eq!(y["secrets"][0]["files"][0]["path"], "/run/app/db-password");
    assert_eq!(y["secrets"][0]["files"][0]["key"], "password");
    assert_eq!(y["secrets"][0]["files"][1]["key"], "username");
    assert_eq!(y["secrets"][1]["name"], "app-2");
    assert_eq!(y["secrets"][1]["path"], "prod/api");
    let config = loads(&c);
    assert_eq!(config.secrets.len(), 2);
}

#[test]
fn eso_what_does_not_convert_is_named() {
    let c = run(
        r#"
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {name: app}
spec:
  target:
    template:
      templateFrom: [{configMap: {name: tmpl, items: [{key: a}]}}]
      data:
        both: '{{ .a }}{{ .b }}'
        pf: '{{ printf "%s" .a }}'
  data:
  - {secretKey: a, remoteRef: {key: one, property: x, version: "3"}}
  - {secretKey: b, remoteRef: {key: two, property: y}}
  dataFrom:
  - find: {name: {regexp: ".*"}}
"#,
        &Options::default(),
    );
    let all = c.problems.join("\n");
    for want in [
        "remoteRef.version",
        "only dataFrom.extract converts",
        "templateFrom",
        "combines 2 Vault secrets (one, two)",
        "ExternalSecret app",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
}

#[test]
fn eso_extract_without_template_is_reported_and_with_template_converts() {
    let c = run(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: x}
spec:
  dataFrom: [{extract: {key: app/cfg}}]
"#,
        &Options::default(),
    );
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("names convert cannot know")),
        "{:?}",
        c.problems
    );
    let c = run(
        r#"
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: x}
spec:
  dataFrom: [{extract: {key: app/cfg}}]
  target: {template: {data: {cfg.json: '{"k": "{{ .apiKey | lower }}"}'}}}
"#,
        &Options::default(),
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let y = yaml(&c);
    assert_eq!(
        y["secrets"][0]["template"]["data"]["cfg.json"],
        r#"{"k": "{{ .apiKey | lower }}"}"#
    );
    assert_eq!(y["secrets"][0]["files"][0]["path"], "/secrets/cfg.json");
    loads(&c);
}

#[test]
fn several_external_secrets_get_a_directory_each() {
    let one = |name: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: {name}}}\nspec:\n  data: [{{secretKey: password, remoteRef: {{key: {name}, property: password}}}}]\n"
        )
    };
    let c = run(
        &format!("{}---\n{}", one("a"), one("b")),
        &Options::default(),
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let y = yaml(&c);
    assert_eq!(y["secrets"][0]["files"][0]["path"], "/secrets/a/password");
    assert_eq!(y["secrets"][1]["files"][0]["path"], "/secrets/b/password");
    loads(&c);
}

#[test]
fn store_auth_methods_of_eso_map_to_ours() {
    let store = |auth: &str| {
        format!(
            "apiVersion: external-secrets.io/v1\nkind: ClusterSecretStore\nmetadata: {{name: s}}\nspec:\n  provider:\n    vault:\n      server: https://v:8200\n      path: kv\n      version: v1\n      namespace: team\n      auth: {auth}\n---\napiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {{name: e}}\nspec:\n  data: [{{secretKey: k, remoteRef: {{key: p, property: f}}}}]\n"
        )
    };
    let c = run(
        &store("{appRole: {path: approle-x, roleId: rid, secretRef: {name: s, key: k}}}"),
        &Options::default(),
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let y = yaml(&c);
    assert_eq!(y["secretStore"]["authMethod"], "approle");
    assert_eq!(y["secretStore"]["roleId"], "rid");
    assert_eq!(y["secretStore"]["secretId"], "${VAULT_SECRET_ID}");
    assert_eq!(y["secretStore"]["authMountPath"], "approle-x");
    assert_eq!(y["secretStore"]["namespace"], "team");
    assert_eq!(y["secretStore"]["kvVersion"], "v1");
    assert!(c.notes.iter().any(|n| n.contains("VAULT_SECRET_ID")));
    loads(&c);
    let c = run(
        &store("{tokenSecretRef: {name: t, key: token}}"),
        &Options::default(),
    );
    assert_eq!(yaml(&c)["secretStore"]["token"], "${VAULT_TOKEN}");
    let c = run(&store("{ldap: {path: ldap}}"), &Options::default());
    assert!(
        c.problems.iter().any(|p| p.contains("\"ldap\"")),
        "{:?}",
        c.problems
    );
}

#[test]
fn injector_annotations_convert_on_every_workload_kind() {
    let ann = r#"
        vault.hashicorp.com/agent-inject: "true"
        vault.hashicorp.com/role: app
        vault.hashicorp.com/auth-path: auth/k8s-east
        vault.hashicorp.com/namespace: team-a
        vault.hashicorp.com/secret-volume-path: /etc/secrets
        vault.hashicorp.com/agent-limits-cpu: 250m
        vault.hashicorp.com/agent-inject-secret-db: database/creds/app
        vault.hashicorp.com/agent-inject-template-db: |
          {{- with secret "database/creds/app" -}}
          {{ .Data.username }}:{{ .Data.password }}
          {{- end }}
"#;
    for (kind, wrap) in [
        ("Pod", "metadata:\n  name: w\n  annotations:ANN\n"),
        ("Deployment", "metadata: {name: w}\nspec:\n  template:\n    metadata:\n      annotations:ANN\n"),
        ("CronJob", "metadata: {name: w}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        metadata:\n          annotations:ANN\n"),
    ] {
        let indent = wrap.lines().find(|l| l.contains("annotations:ANN")).unwrap().len() - "annotations:ANN".len() + 2;
        let ann: String = ann.lines().map(|l| format!("{}{}\n", " ".repeat(indent), l.trim_start_matches("        "))).collect();
        let doc = format!("apiVersion: v1\nkind: {kind}\n{}", wrap.replace("ANN\n", &format!("\n{ann}")));
        let c = run(&doc, &Options::default());
        assert!(c.problems.is_empty(), "{kind}: {:?}\n{doc}", c.problems);
        let y = yaml(&c);
        assert_eq!(y["secretStore"]["authMethod"], "kubernetes", "{kind}");
        assert_eq!(y["secretStore"]["role"], "app");
        assert_eq!(y["secretStore"]["authMountPath"], "k8s-east");
        assert_eq!(y["secretStore"]["namespace"], "team-a");
        assert_eq!(y["secrets"][0]["dynamic"]["path"], "database/creds/app");
        assert_eq!(y["secrets"][0]["template"]["data"]["db"], "{{ .username }}:{{ .password }}\n");
        assert_eq!(y["secrets"][0]["files"][0]["path"], "/etc/secrets/db");
        loads(&c);
    }
}

#[test]
fn injector_reports_unknown_annotations_and_kv2_default_templates() {
    let c = run(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    vault.hashicorp.com/role: r
    vault.hashicorp.com/agent-inject-secret-cfg: secret/data/app
    vault.hashicorp.com/agent-configmap: my-agent-config
"#,
        &Options::default(),
    );
    let all = c.problems.join("\n");
    assert!(all.contains("agent-configmap has no counterpart"), "{all}");
    assert!(all.contains("Go's map syntax"), "{all}");
    // Still converted, to one line per field of the KV v2 secret.
    let y = yaml(&c);
    assert_eq!(y["secrets"][0]["path"], "app");
    assert_eq!(
        y["secrets"][0]["template"]["data"]["cfg"],
        "{{ range $k, $v := . }}{{ $k }}: {{ $v }}\n{{ end }}"
    );
    loads(&c);
}

#[test]
fn agent_hcl_templates_auth_and_pki() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.ctmpl"),
        "{{ with secret \"kv/data/x\" }}{{ .Data.data.a }}{{ end }}",
    )
    .unwrap();
    let hcl = r#"
vault { address = "https://v:8200" }
auto_auth {
  method {
    type = "approle"
    mount_path = "auth/ar"
    config = { role_id_file_path = "/r", secret_id_file_path = "/s" }
  }
  sink "file" { config = { path = "/tmp/t" } }
}
template {
  source = "t.ctmpl"
  destination = "/out/a"
  perms = 0640
}
template {
  contents = "{{ with secret \"pki/issue/web\" \"common_name=a.example\" \"alt_names=b.example,c.example\" }}{{ .Data.certificate }}{{ end }}"
  destination = "/out/cert.pem"
  command = ["nginx", "-s", "reload"]
}
"#;
    let c = convert(
        &[Input {
            name: "agent.hcl".into(),
            text: hcl.into(),
            dir: dir.path().into(),
        }],
        &Options::default(),
    );
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let y = yaml(&c);
    assert_eq!(y["secretStore"]["authMethod"], "approle");
    assert_eq!(y["secretStore"]["authMountPath"], "ar");
    assert_eq!(y["secrets"][0]["path"], "x");
    assert_eq!(y["secrets"][0]["mountPath"], "kv");
    assert_eq!(y["secrets"][0]["files"][0]["mode"], "0640");
    assert_eq!(y["secrets"][1]["pki"]["commonName"], "a.example");
    assert_eq!(y["secrets"][1]["pki"]["altNames"][1], "c.example");
    // An argv command runs as it is, no shell.
    let argv: Value = serde_yaml::from_str("[nginx, -s, reload]").unwrap();
    assert_eq!(y["actions"]["cert.pem-command"]["exec"], argv);
    assert!(
        c.notes.iter().any(|n| n.contains("VAULT_ROLE_ID")),
        "{:?}",
        c.notes
    );
    loads(&c);
}

#[test]
fn agent_hcl_problems_name_the_stanza() {
    let hcl = r#"
template {
  contents = "{{ with secret \"a/data/x\" }}{{ with secret \"b/data/y\" }}{{ end }}{{ end }}"
  destination = "/o/two"
}
template {
  source = "missing.ctmpl"
  destination = "/o/m"
}
env_template "X" { contents = "{{ with secret \"a\" }}{{ end }}" }
"#;
    let c = run(hcl, &Options::default());
    let all = c.problems.join("\n");
    assert!(
        all.contains("template[0] (/o/two): the template reads 2 secrets"),
        "{all}"
    );
    assert!(
        all.contains("template[1] (/o/m): cannot read its source"),
        "{all}"
    );
    assert!(all.contains("`env_template`"), "{all}");
}

#[test]
fn garbage_is_refused_with_both_reasons() {
    let c = run("{{ not yaml: [", &Options::default());
    assert!(c.problems[0].contains("neither YAML"), "{:?}", c.problems);
    let c = run(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        &Options::default(),
    );
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("a ConfigMap is neither")),
        "{:?}",
        c.problems
    );
}

/// Issue 25, case 10: the input is data. Literal text renders as itself
/// (not as Tera code), `${VAR}` from the input is not expanded from the
/// sidecar's environment, and keys that would leave the output directory
/// are refused.
#[test]
fn the_input_is_data_not_code_nor_environment_references() {
    let c = run(
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: s}
spec:
  provider:
    vault: {server: "https://${VAULT_TOKEN}.example", path: "kv-${VAULT_TOKEN}", version: v2,
            auth: {tokenSecretRef: {name: t, key: token}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: e}
spec:
  target:
    template:
      data:
        loop: '{% for i in range(end=1000000000000) %}x{% endfor %}{{ .pw }}'
        jinja: '{# not a comment here #}{{ .pw }}'
        "../../etc/cron.d/x": '{{ .pw }}'
  data:
  - {secretKey: pw, remoteRef: {key: "${VAULT_TOKEN}/db", property: password}}
  - {secretKey: "..", remoteRef: {key: "${VAULT_TOKEN}/db", property: f}}
"#,
        &Options {
            output_dir: Some("/out".into()),
            ..Options::default()
        },
    );
    assert!(
        c.problems
            .iter()
            .any(|p| p.contains("\"../../etc/cron.d/x\"")
                && p.contains("outside the output directory")),
        "{:?}",
        c.problems
    );
    assert!(!c.config.contains("cron.d"), "{}", c.config);
    // The placeholder convert writes itself is a reference; the input's is text.
    let y = yaml(&c);
    assert_eq!(y["secretStore"]["token"], "${VAULT_TOKEN}");
    assert_eq!(
        y["secretStore"]["address"],
        "https://$${VAULT_TOKEN}.example"
    );
    // Loaded with a canary token: it appears nowhere but the token.
    let canary = "s.CANARYTOKEN0123456789";
    let cfg = loads_with(&c, &|k: &str| {
        (k == "VAULT_TOKEN").then(|| canary.to_string())
    });
    assert_eq!(cfg.store.address, "https://${VAULT_TOKEN}.example");
    let dump = format!("{:?}", cfg.secrets);
    assert!(!dump.contains("CANARY"), "{dump}");
    // Literal text renders as itself: no loop runs, no comment is dropped.
    let s = cfg.secrets.iter().find(|s| s.template.is_some()).unwrap();
    let t = s.template.as_ref().unwrap();
    let data = crate::secret::SecretData::new(
        serde_json::json!({"password": "pw"})
            .as_object()
            .unwrap()
            .clone(),
        None,
    );
    assert_eq!(
        t.render("loop", &data).unwrap(),
        "{% for i in range(end=1000000000000) %}x{% endfor %}pw"
    );
    assert_eq!(
        t.render("jinja", &data).unwrap(),
        "{# not a comment here #}pw"
    );
}

/// ExternalSecrets whose SecretStore is AWS Secrets Manager or Parameter
/// Store become secrets of AWS stores; the config passes check.
#[test]
fn eso_aws_stores_become_secret_stores() {
    let c = run(
        r#"
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws-sm}
spec:
  provider:
    aws: {service: SecretsManager, region: eu-west-1, auth: {jwt: {serviceAccountRef: {name: app}}}}
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: aws-ssm}
spec:
  provider:
    aws: {service: ParameterStore, region: eu-west-1}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: db}
spec:
  secretStoreRef: {name: aws-sm, kind: SecretStore}
  data:
  - {secretKey: password, remoteRef: {key: prod/db, property: password, version: AWSPREVIOUS}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: flags}
spec:
  secretStoreRef: {name: aws-ssm, kind: SecretStore}
  data:
  - {secretKey: checkout, remoteRef: {key: /prod/flags/checkout}}
"#,
        &Options::default(),
    );
    assert!(c.problems.is_empty(), "{:?}\n{}", c.problems, c.config);
    let y = yaml(&c);
    assert_eq!(y["secretStores"]["aws-sm"]["provider"], "aws");
    assert_eq!(y["secretStores"]["aws-sm"]["region"], "eu-west-1");
    let secrets = y["secrets"].as_sequence().unwrap();
    let db = secrets.iter().find(|s| s["path"] == "prod/db").unwrap();
    assert_eq!(db["store"], "aws-sm");
    assert_eq!(db["version"], "AWSPREVIOUS");
    assert_eq!(db["files"][0]["key"], "password");
    let flags = secrets
        .iter()
        .find(|s| s["parameter"] == "/prod/flags/checkout")
        .unwrap();
    assert_eq!(flags["store"], "aws-ssm");
    assert_eq!(flags["files"][0]["key"], "value");
    assert!(c
        .notes
        .iter()
        .any(|n| n.contains("eks.amazonaws.com/role-arn")));
    let cfg = loads(&c);
    assert_eq!(cfg.aws_stores.len(), 2);
}
