//! The JSON Schema of the config file, generated from the types of
//! [`super::raw`] (schemars, a dev-dependency: nothing of it is in the
//! binary) and committed as `schema/secrets-sync.schema.json`; the binary
//! prints that file (`secrets-sync schema`). The test here fails when the
//! committed file is not what the types give (`UPDATE_SCHEMA=1` rewrites
//! it), and `scripts/check-deploy.sh` validates every example config
//! against it.
//!
//! This module owns the fragments the derive cannot infer: fields kept as
//! YAML values (`mode`, `owner`, `group`, `template.data`,
//! `dynamic.parameters`) and the words a field accepts. Every string field
//! may instead hold a `${VAR}` reference, which the fragments allow, and
//! words match case-insensitively as the validation does; the `enum` is
//! there for an editor's completion.

use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Value};

/// Where the committed schema lives, from the crate root.
const SCHEMA_FILE: &str = "schema/secrets-sync.schema.json";

/// A `${VAR}` reference somewhere in a string.
const VAR: &str = r"\$\{";

/// `word` matched without regard to case (ECMA-262 regexes have no `(?i)`).
fn case_insensitive(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                regex_escape(c)
            }
        })
        .collect()
}

fn regex_escape(c: char) -> String {
    if r"\^$.|?*+()[]{}".contains(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

/// One of `words` (any case, spaces around allowed) or a `${VAR}`.
fn words(words: &[&str]) -> Schema {
    let alternatives: Vec<String> = words.iter().map(|w| case_insensitive(w)).collect();
    let pattern = format!(r"^\s*(?:{})\s*$|{VAR}", alternatives.join("|"));
    json_schema!({
        "anyOf": [
            {"type": "string", "enum": words},
            {"type": "string", "pattern": pattern},
        ]
    })
}

pub(super) fn auth_method(_: &mut SchemaGenerator) -> Schema {
    words(&["token", "approle", "kubernetes", "jwt", "cert"])
}

pub(super) fn kv_version(_: &mut SchemaGenerator) -> Schema {
    words(&["v2", "v1", "2", "1"])
}

pub(super) fn dynamic_method(_: &mut SchemaGenerator) -> Schema {
    words(&["GET", "POST", "PUT"])
}

pub(super) fn write_mode(_: &mut SchemaGenerator) -> Schema {
    words(&["atomic", "inPlace"])
}

pub(super) fn encoding(_: &mut SchemaGenerator) -> Schema {
    words(&["base64", "text"])
}

/// A Go duration (`30s`, `1h30m`, `250ms`, `0`) or a `${VAR}`.
pub(super) fn duration(_: &mut SchemaGenerator) -> Schema {
    let unit = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h)";
    let pattern = format!(r"^\s*\+?(?:0|(?:{unit})+)\s*$|{VAR}");
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "examples": ["30s", "5m", "1h30m"],
    })
}

/// An octal mode: a string (`"0640"`, `"0o640"`) or a YAML number read by
/// its digits (`640`).
pub(super) fn mode(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "string", "pattern": format!(r"^\s*(?:0[oO])?[0-7]{{1,4}}\s*$|{VAR}")},
            {"type": "integer", "minimum": 0, "maximum": 777},
        ],
        "examples": ["0600", "0640", "0644"],
    })
}

/// A numeric uid/gid, as a number or a string of digits.
pub(super) fn numeric_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "string", "pattern": format!(r"^\s*[0-9]*\s*$|{VAR}")},
            {"type": "integer", "minimum": 0, "maximum": u32::MAX},
        ]
    })
}

/// `template.data`: each entry a template string or `{templateFile: PATH}`.
pub(super) fn template_data(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "description": "A template (Tera, or {{ .field }} as in the Go tool)."},
                {
                    "type": "object",
                    "properties": {
                        "templateFile": {
                            "type": "string",
                            "description": "A file holding the template, relative to the config file's directory; read at start and at every reload."
                        }
                    },
                    "required": ["templateFile"],
                    "additionalProperties": false
                }
            ]
        }
    })
}

/// `dynamic.parameters`: a mapping sent as the JSON body.
pub(super) fn parameters(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "object"})
}

/// The schema of [`super::raw::RawConfig`] as committed: draft 7, which
/// editors' YAML support (yaml-language-server) reads best.
fn generate() -> String {
    let schema = schemars::generate::SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<super::raw::RawConfig>();
    let mut value: Value = schema.to_value();
    drop_null_defaults(&mut value);
    if let Some(o) = value.as_object_mut() {
        o.insert(
            "$comment".into(),
            json!("Generated from src/config/raw.rs by `UPDATE_SCHEMA=1 cargo test --lib config::schema`; do not edit."),
        );
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// `"default"`s that `#[serde(default)]` adds: `null` on an optional
/// field says nothing and would make an editor offer `null`; an empty list
/// or mapping, or a whole struct of unset fields (the types also serialise,
/// for `convert`), say as little.
fn drop_null_defaults(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let empty = |d: &Value| match d {
                Value::Null => true,
                Value::Array(a) => a.is_empty(),
                Value::Object(_) => true,
                _ => false,
            };
            if o.get("default").is_some_and(empty) {
                o.remove("default");
            }
            o.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

#[test]
fn committed_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_FILE);
    let want = generate();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{SCHEMA_FILE} is not what src/config/raw.rs gives: run `UPDATE_SCHEMA=1 cargo test --lib config::schema` and commit it"
    );
}

#[test]
fn the_binary_prints_the_committed_schema() {
    assert!(
        crate::config::SCHEMA == generate(),
        "the binary holds another schema than the types give: rebuild after `UPDATE_SCHEMA=1`"
    );
}

#[test]
fn word_patterns_match_any_case_and_variables() {
    assert_eq!(case_insensitive("inPlace"), "[Ii][Nn][Pp][Ll][Aa][Cc][Ee]");
    assert_eq!(case_insensitive("v2"), "[Vv]2");
    let s = write_mode(&mut SchemaGenerator::default()).to_value();
    let pattern = s["anyOf"][1]["pattern"].as_str().unwrap();
    assert!(pattern.starts_with(r"^\s*(?:[Aa][Tt]"), "{pattern}");
    assert!(pattern.ends_with(r"|\$\{"), "{pattern}");
}
