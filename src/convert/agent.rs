//! A Vault Agent config (HCL): its `template` stanzas, the `vault` block
//! (address, namespace, TLS), `auto_auth` (the method and its role) and
//! `template_config.static_secret_render_interval`.
//!
//! Each stanza is a file at its `destination` (or under `--output-dir`)
//! with its `perms`, rendered from `contents` or the `source` file (read
//! relative to the config's directory); `command` becomes an action. Other
//! blocks (listener, cache, sink, api_proxy, ...) serve clients of the
//! agent and need no counterpart; `env_template` and `exec` are reported.

use hcl::{Map, Value};

use super::gotmpl::{translate, Dialect};
use super::{auth_mount, mode_string, Draft, Entry, File};

/// Blocks and attributes with no file to write.
const IGNORED: [&str; 10] = [
    "listener",
    "cache",
    "api_proxy",
    "pid_file",
    "exit_after_auth",
    "log_level",
    "log_file",
    "telemetry",
    "disable_mlock",
    "template_config",
];

/// A block that may appear once (an object) or several times (an array).
fn blocks(v: Option<&Value>) -> Vec<&Map<String, Value>> {
    match v {
        Some(Value::Object(o)) => vec![o],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    }
}

fn string(m: &Map<String, Value>, key: &str) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn read(draft: &mut Draft, name: &str, body: &Value) {
    let Some(top) = body.as_object() else {
        draft
            .problems
            .push(format!("{name}: not a Vault Agent config"));
        return;
    };
    for vault in blocks(top.get("vault")) {
        draft.store.address = string(vault, "address");
        draft.store.namespace = string(vault, "namespace");
        draft.store.ca_cert = string(vault, "ca_cert");
        draft.store.skip_verify = vault.get("tls_skip_verify").and_then(Value::as_bool);
        if vault.contains_key("client_cert") || vault.contains_key("client_key") {
            draft.store.auth.push((
                "tlsClientCert",
                string(vault, "client_cert").unwrap_or_default(),
            ));
            draft.store.auth.push((
                "tlsClientKey",
                string(vault, "client_key").unwrap_or_default(),
            ));
        }
    }
    for auto in blocks(top.get("auto_auth")) {
        auth(draft, name, auto);
    }
    let refresh = blocks(top.get("template_config"))
        .into_iter()
        .find_map(|c| string(c, "static_secret_render_interval"))
        .or_else(|| Some("5m".into()));
    for key in ["env_template", "exec"] {
        if top.contains_key(key) {
            draft.problems.push(format!(
                "{name}: `{key}` (the agent running the app with secrets in its environment) has no counterpart: secrets-sync writes files"
            ));
        }
    }
    for key in top.keys() {
        if !IGNORED.contains(&key.as_str())
            && !matches!(
                key.as_str(),
                "vault" | "auto_auth" | "template" | "env_template" | "exec"
            )
        {
            draft.notes.push(format!(
                "{name}: `{key}` has no counterpart and was left out"
            ));
        }
    }
    let stanzas = blocks(top.get("template"));
    if stanzas.is_empty() {
        draft.problems.push(format!("{name}: no template stanza"));
    }
    for (i, st) in stanzas.into_iter().enumerate() {
        template(
            draft,
            &format!("{name}: template[{i}]"),
            st,
            refresh.clone(),
        );
    }
}

fn template(draft: &mut Draft, loc: &str, st: &Map<String, Value>, refresh: Option<String>) {
    let Some(dest) = string(st, "destination") else {
        draft.problems.push(format!("{loc}: has no destination"));
        return;
    };
    let loc = format!("{loc} ({dest})");
    for key in ["left_delimiter", "right_delimiter"] {
        if st.contains_key(key) {
            draft.problems.push(format!(
                "{loc}: {key} has no counterpart; rewrite the template with {{{{ }}}}"
            ));
            return;
        }
    }
    let text = match (string(st, "contents"), string(st, "source")) {
        (Some(c), _) => c,
        (None, Some(src)) => {
            let p = draft.base_dir.join(&src);
            match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) => {
                    draft.problems.push(format!(
                        "{loc}: cannot read its source {}: {e} (a relative path is read from the config's directory)",
                        p.display()
                    ));
                    return;
                }
            }
        }
        (None, None) => {
            draft
                .problems
                .push(format!("{loc}: has neither contents nor source"));
            return;
        }
    };
    let t = translate(&text, &Dialect::Agent);
    if !t.problems.is_empty() {
        for p in t.problems {
            draft.problems.push(format!("{loc}: {p}"));
        }
        return;
    }
    let call = match t.calls.as_slice() {
        [one] => one.clone(),
        [] => {
            draft
                .problems
                .push(format!("{loc}: the template reads no secret"));
            return;
        }
        many => {
            draft.problems.push(format!(
                "{loc}: the template reads {} secrets; a secrets-sync template reads one: split it",
                many.len()
            ));
            return;
        }
    };
    let Some(source) = draft.agent_source(&loc, &call, t.kv2) else {
        return;
    };
    let (dir, file_name) = match dest.rsplit_once('/') {
        Some((d, f)) => (if d.is_empty() { "/" } else { d }, f),
        None => (".", dest.as_str()),
    };
    if draft.opts.output_dir.is_some() && !super::stays_inside(file_name, false) {
        draft
            .problems
            .push(super::escapes(&loc, "destination", &dest));
        return;
    }
    let mode = match string(st, "perms") {
        Some(p) => mode_string(&p).or_else(|| {
            draft
                .problems
                .push(format!("{loc}: perms {p:?} is not a mode secrets-sync writes (octal, at most 0777); left out"));
            None
        }),
        None => Some("0644".into()),
    };
    let file = File {
        path: draft.file_path(dir, file_name),
        key: file_name.to_string(),
        mode,
        base64: false,
    };
    let secret_name = file_name.to_string();
    draft.add(
        &secret_name,
        source.clone(),
        Entry::Template(t.text),
        file,
        refresh,
    );
    let command = command(st.get("command")).or_else(|| {
        blocks(st.get("exec"))
            .first()
            .and_then(|e| command(e.get("command")))
    });
    if let Some(argv) = command {
        draft.command_action(&format!("{secret_name}-command"), argv, &source);
    }
}

/// A template's `command`: a string (run by a shell) or an argv list.
fn command(v: Option<&Value>) -> Option<super::Command> {
    match v? {
        Value::String(c) => Some(super::Command::Shell(c.clone())),
        Value::Array(a) => Some(super::Command::Argv(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        )),
        _ => None,
    }
}

/// `auto_auth { method "TYPE" { mount_path, config { ... } } }` (or
/// `method { type = "TYPE" ... }`).
fn auth(draft: &mut Draft, name: &str, auto: &Map<String, Value>) {
    let Some(m) = blocks(auto.get("method")).into_iter().next() else {
        return;
    };
    // Labeled form: {TYPE: {...}}; the other: {type = ..., config = ...}.
    let (kind, body) = match string(m, "type") {
        Some(t) => (t, m),
        None => match m.iter().next() {
            Some((k, Value::Object(b))) => (k.clone(), b),
            _ => return,
        },
    };
    let config = blocks(body.get("config")).into_iter().next();
    let cfg = |k: &str| config.and_then(|c| string(c, k));
    let mount = string(body, "mount_path").as_deref().map(auth_mount);
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    match kind.as_str() {
        "kubernetes" => {
            fields.push(("authMethod", "kubernetes".into()));
            fields.extend(cfg("role").map(|r| ("role", r)));
            fields.extend(cfg("token_path").map(|p| ("tokenPath", p)));
        }
        "jwt" => {
            fields.push(("authMethod", "jwt".into()));
            fields.extend(cfg("role").map(|r| ("role", r)));
            fields.extend(cfg("path").map(|p| ("tokenPath", p)));
        }
        "approle" => {
            fields.push(("authMethod", "approle".into()));
            fields.push(("roleId", super::env_ref("VAULT_ROLE_ID")));
            fields.push(("secretId", super::env_ref("VAULT_SECRET_ID")));
            draft.notes.push(format!(
                "{name}: the agent read the AppRole ids from files ({}, {}); set VAULT_ROLE_ID and VAULT_SECRET_ID to their contents",
                cfg("role_id_file_path").unwrap_or_default(),
                cfg("secret_id_file_path").unwrap_or_default()
            ));
        }
        "cert" => {
            fields.push(("authMethod", "cert".into()));
            fields.extend(cfg("name").map(|r| ("role", r)));
        }
        "token_file" => {
            fields.push(("authMethod", "token".into()));
            fields.push(("token", super::env_ref("VAULT_TOKEN")));
            draft.notes.push(format!(
                "{name}: the agent read its token from {}; set VAULT_TOKEN to it",
                cfg("token_file_path").unwrap_or_default()
            ));
        }
        other => {
            draft.problems.push(format!(
                "{name}: the auto_auth method {other:?} has no counterpart (kubernetes, jwt, approle, cert, token_file); the config uses VAULT_TOKEN"
            ));
            return;
        }
    }
    if let Some(m) = mount {
        if m != kind {
            fields.push(("authMountPath", m));
        }
    }
    // TLS client files from the vault block stay.
    let tls: Vec<_> = draft
        .store
        .auth
        .iter()
        .filter(|(k, _)| k.starts_with("tls"))
        .cloned()
        .collect();
    fields.extend(tls);
    draft.store.auth = fields;
}
