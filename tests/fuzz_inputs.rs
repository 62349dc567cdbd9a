//! Property tests over every input a user or Vault controls: config text,
//! durations, `${VAR}` interpolation, the `{{ .field }}` translation and
//! template compilation, and Vault answers (random bytes, random JSON, huge
//! and deeply nested documents, wrong types). Any input must give a value or
//! a clear error, never a panic.
//!
//! The suite runs a fixed seed (256 cases per property). A longer run:
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz_inputs`.

use std::path::Path;

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::Value;

use secrets_sync::config::duration::{parse_duration, GoDuration};
use secrets_sync::config::interpolate::interpolate;
use secrets_sync::config::settings::ConfigArgs;
use secrets_sync::config::{load_str, Credentials, KvVersion};
use secrets_sync::template::{translate_go, SecretTemplate};
use secrets_sync::vault::auth::{parse_login, parse_lookup};
use secrets_sync::vault::kv::parse_read;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x005e_c7e7_55e0),
        failure_persistence: None,
        ..Config::default()
    }
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

fn args() -> ConfigArgs {
    Args::parse_from(["t"]).config
}

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "value".to_string())
}

/// Random JSON documents, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z.\\-_]{0,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// YAML built from the config's own keys with random values.
fn config_yaml() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        ".{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<i64>().prop_map(|i| i.to_string()),
        Just("true".to_string()),
        Just("~".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        "[0-9]{1,4}(ms|s|m|h)".prop_map(|s| s),
        Just("'{{ .x }}'".to_string()),
        Just("'{{ .x'".to_string()),
        Just("\"${SET}\"".to_string()),
        Just("\"${UNSET\"".to_string()),
    ];
    let store_key = prop::sample::select(vec![
        "address",
        "authMethod",
        "token",
        "roleId",
        "secretId",
        "role",
        "tokenPath",
        "authMountPath",
        "kvVersion",
        "mountPath",
        "namespace",
        "caCert",
        "skipVerify",
        "bogus",
    ]);
    let file_key = prop::sample::select(vec!["path", "key", "mode", "owner", "group", "bogus"]);
    let secret_key = prop::sample::select(vec!["name", "path", "refreshInterval", "bogus"]);
    (
        prop::collection::vec((store_key, scalar.clone()), 0..6),
        prop::collection::vec(
            (
                prop::collection::vec((secret_key, scalar.clone()), 0..4),
                prop::collection::vec(("[a-z.]{1,6}", scalar.clone()), 0..3),
                prop::collection::vec(prop::collection::vec((file_key, scalar), 0..4), 0..3),
            ),
            0..4,
        ),
    )
        .prop_map(|(store, secrets)| {
            let mut y = String::from("secretStore:\n");
            for (k, v) in store {
                y.push_str(&format!("  {k}: {v}\n"));
            }
            y.push_str("secrets:\n");
            for (fields, template, files) in secrets {
                y.push_str("  - bogus0: 1\n");
                for (k, v) in fields {
                    y.push_str(&format!("    {k}: {v}\n"));
                }
                if !template.is_empty() {
                    y.push_str("    template:\n      data:\n");
                    for (k, v) in template {
                        y.push_str(&format!("        {k:?}: {v}\n"));
                    }
                }
                y.push_str("    files:\n");
                for f in files {
                    y.push_str("      - {");
                    let parts: Vec<String> = f.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    y.push_str(&parts.join(", "));
                    y.push_str("}\n");
                }
            }
            y.replace("  - bogus0: 1\n", "  - name: n\n")
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_text_never_panics(text in ".{0,400}") {
        let _ = load_str(&text, Path::new("f.yaml"), &args(), &env, Credentials::Required);
    }

    #[test]
    fn structured_configs_load_or_explain(yaml in config_yaml()) {
        match load_str(&yaml, Path::new("f.yaml"), &args(), &env, Credentials::Optional) {
            Ok(l) => prop_assert!(!l.config.secrets.is_empty()),
            Err(e) => {
                prop_assert!(!e.errors.is_empty());
                for err in &e.errors {
                    prop_assert!(!err.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn durations_parse_or_explain(s in "[0-9.a-zµ+\\- ]{0,24}") {
        match parse_duration(&s) {
            Ok(d) => {
                // What parses, prints back to the same duration (to the ms).
                let again = parse_duration(&GoDuration(d).to_string()).unwrap();
                prop_assert!(again.abs_diff(d).as_micros() <= 1000, "{s:?}: {d:?} vs {again:?}");
            }
            Err(e) => prop_assert!(e.to_string().contains("invalid duration")),
        }
    }

    #[test]
    fn any_duration_text_never_panics(s in ".{0,40}") {
        let _ = parse_duration(&s);
    }

    #[test]
    fn interpolation_never_panics_and_keeps_plain_text(s in ".{0,80}") {
        let r = interpolate(&s, &env);
        if !s.contains('$') {
            prop_assert_eq!(r.unwrap().value, s);
        }
    }

    #[test]
    fn go_translation_and_compilation_never_panic(s in ".{0,80}", field in "[a-zA-Z_][a-zA-Z0-9_]{0,8}") {
        let t = translate_go(&s);
        if !s.contains("{{") && !s.contains("{%") {
            prop_assert_eq!(&t, &s);
        }
        let _ = SecretTemplate::compile(vec![("k".into(), s.clone())]);
        let go = format!("{{{{ .{field} }}}}");
        prop_assert_eq!(translate_go(&go), format!("{{{{ secret[\"{field}\"] }}}}"));
    }

    #[test]
    fn vault_answers_as_random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_read(KvVersion::V1, &b, 10_000);
        let _ = parse_read(KvVersion::V2, &b, 10_000);
        let _ = parse_login(&b);
        let _ = parse_lookup(&b);
    }

    #[test]
    fn vault_answers_as_random_json_decode_or_explain(v in json_value(), wrap in 0u8..3) {
        let doc = match wrap {
            0 => v,
            1 => serde_json::json!({"data": v}),
            _ => serde_json::json!({"data": {"data": v, "metadata": {"version": "x"}}, "auth": v.clone()}),
        };
        let body = doc.to_string();
        for kv in [KvVersion::V1, KvVersion::V2] {
            match parse_read(kv, body.as_bytes(), 10_000) {
                Ok(d) => prop_assert!(d.field_names().count() <= body.len()),
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
        let _ = parse_login(body.as_bytes());
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_read(KvVersion::V2, deep.as_bytes(), 10_000).is_err());
    let deep_obj = format!(
        r#"{{"data":{{"data":{}1{}}}}}"#,
        r#"{"a":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(parse_read(KvVersion::V2, deep_obj.as_bytes(), 10_000).is_err());
}

#[test]
fn huge_answers_decode() {
    let big = "x".repeat(8 * 1024 * 1024);
    let body =
        serde_json::json!({"data": {"data": {"big": big}, "metadata": {"version": 1}}}).to_string();
    let d = parse_read(KvVersion::V2, body.as_bytes(), 10_000).unwrap();
    assert_eq!(d.field_bytes("big").unwrap().len(), 8 * 1024 * 1024);
}

#[test]
fn non_utf8_and_wrong_types_are_clear_errors() {
    let bad = b"{\"data\":{\"data\":{\"k\":\"\xff\xfe\"}}}";
    let e = parse_read(KvVersion::V2, bad, 10_000).unwrap_err();
    assert!(e.contains("not JSON"), "{e}");
    let e = parse_read(KvVersion::V2, br#"{"data":{"data":[1,2]}}"#, 10_000).unwrap_err();
    assert!(e.contains("not an object"), "{e}");
    let e = parse_read(KvVersion::V1, br#"{"data":"s"}"#, 10_000).unwrap_err();
    assert!(e.contains("not an object"), "{e}");
}
