//! Vault Agent injector annotations on a Pod, or on the pod template of a
//! Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
//!
//! Each `vault.hashicorp.com/agent-inject-secret-NAME: PATH` is a file,
//! `/vault/secrets/NAME` (or `secret-volume-path[-NAME]`, `agent-inject-
//! file-NAME`, `--output-dir`), rendered by `agent-inject-template-NAME`
//! or else by the injector's default template (one `key: value` line per
//! field); `-perms-NAME` is its mode, `-command-NAME` an action run after
//! it changed. `role`, `auth-path`, `namespace`, `service`, `ca-cert` and
//! `tls-skip-verify` make the store. Annotations about the agent container
//! itself (image, resources, init-first, ...) have no counterpart and need
//! none; any other `vault.hashicorp.com/` annotation is reported.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::gotmpl::{translate, Dialect};
use super::{auth_mount, mode_string, str_at, Command, Draft, Entry, File};

const PREFIX: &str = "vault.hashicorp.com/";

/// Annotations that shape the agent container, not the files.
const IGNORED: [&str; 22] = [
    "agent-inject",
    "agent-inject-status",
    "agent-init-first",
    "agent-pre-populate",
    "agent-pre-populate-only",
    "agent-image",
    "agent-run-as-user",
    "agent-run-as-group",
    "agent-run-as-same-user",
    "agent-set-security-context",
    "agent-cache-enable",
    "agent-cache-use-auto-auth-token",
    "agent-cache-listener-port",
    "agent-revoke-on-shutdown",
    "agent-revoke-grace",
    "agent-inject-containers",
    "agent-copy-volume-mounts",
    "agent-share-process-namespace",
    "preserve-secret-case",
    "log-level",
    "log-format",
    "agent-enable-quit",
];

/// The injector's default template (`agent-inject-default-template: map`).
fn default_template(path: &str) -> String {
    format!("{{{{ with secret \"{path}\" }}}}{{{{ range $k, $v := .Data }}}}{{{{ $k }}}}: {{{{ $v }}}}\n{{{{ end }}}}{{{{ end }}}}")
}

/// The pod template's annotations of a workload, if it is one.
fn annotations(d: &Value) -> Option<&serde_yaml::Mapping> {
    let pod_meta = match str_at(d, &["kind"])? {
        "Pod" => d.get("metadata"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            d.get("spec")?.get("template")?.get("metadata")
        }
        "CronJob" => d
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("metadata"),
        _ => None,
    }?;
    pod_meta.get("annotations")?.as_mapping()
}

/// Reads a workload's annotations; `false` when it has none of the
/// injector's `agent-inject-secret-*`.
pub(super) fn read(draft: &mut Draft, loc: &str, d: &Value) -> bool {
    let Some(ann) = annotations(d) else {
        return false;
    };
    let ann: BTreeMap<&str, &str> = ann
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.strip_prefix(PREFIX)?, v.as_str()?)))
        .collect();
    let names: Vec<&str> = ann
        .keys()
        .filter_map(|k| k.strip_prefix("agent-inject-secret-"))
        .collect();
    if names.is_empty() {
        return false;
    }
    let kind = str_at(d, &["kind"]).unwrap_or("?");
    let wname = str_at(d, &["metadata", "name"]).unwrap_or("?");
    let loc = format!("{loc} ({kind} {wname})");
    store(draft, &loc, &ann);
    let refresh = ann
        .get("template-static-secret-render-interval")
        .map(|s| s.to_string())
        .or_else(|| Some("5m".into()));
    let json_default = ann.get("agent-inject-default-template") == Some(&"json");
    let mut known: Vec<String> = Vec::new();
    for name in &names {
        for k in [
            "agent-inject-secret-",
            "agent-inject-template-",
            "agent-inject-file-",
            "agent-inject-perms-",
            "agent-inject-command-",
            "secret-volume-path-",
        ] {
            known.push(format!("{k}{name}"));
        }
        let path = ann[format!("agent-inject-secret-{name}").as_str()].trim_matches('/');
        let aloc = format!("{loc}: agent-inject-secret-{name}");
        if ann.contains_key(format!("agent-inject-template-file-{name}").as_str()) {
            known.push(format!("agent-inject-template-file-{name}"));
            draft.problems.push(format!(
                "{aloc}: agent-inject-template-file-{name} names a file inside the container, which convert cannot read; paste it as agent-inject-template-{name}"
            ));
            continue;
        }
        let (source_text, defaulted) =
            match ann.get(format!("agent-inject-template-{name}").as_str()) {
                Some(t) => (t.to_string(), false),
                None => (default_template(path), true),
            };
        if defaulted && json_default {
            draft.problems.push(format!(
                "{aloc}: the json default template (the Vault answer as JSON) has no exact counterpart; write agent-inject-template-{name}"
            ));
            continue;
        }
        let mut t = translate(&source_text, &Dialect::Agent);
        let kv2_path = path.split('/').nth(1) == Some("data");
        if defaulted && kv2_path {
            // Over KV v2 the default template prints Go's `data: map[...]`;
            // the nearest: one line per field of the secret.
            draft.problems.push(format!(
                "{aloc}: without a template Vault Agent writes Go's map syntax (`data: map[k:v ...]`) for a KV v2 secret; converted to one `key: value` line per field: add agent-inject-template-{name} for exact content"
            ));
            t = translate(
                &source_text.replace(".Data }}", ".Data.data }}"),
                &Dialect::Agent,
            );
        }
        if !t.problems.is_empty() {
            for p in t.problems {
                draft
                    .problems
                    .push(format!("{loc}: agent-inject-template-{name}: {p}"));
            }
            continue;
        }
        let what = format!("{loc}: agent-inject-template-{name}");
        let Some(call) = draft.one_call(&what, &t.calls) else {
            continue;
        };
        let Some(source) = draft.agent_source(&aloc, &call, t.kv2) else {
            continue;
        };
        let dir = ann
            .get(format!("secret-volume-path-{name}").as_str())
            .or_else(|| ann.get("secret-volume-path"))
            .copied()
            .unwrap_or("/vault/secrets");
        let file_name = ann
            .get(format!("agent-inject-file-{name}").as_str())
            .copied()
            .unwrap_or(name);
        let mode = match ann.get(format!("agent-inject-perms-{name}").as_str()) {
            Some(p) => match mode_string(p) {
                Some(m) => Some(m),
                None => {
                    draft.problems.push(format!("{aloc}: agent-inject-perms-{name} {p:?} is not a mode secrets-sync writes (octal, at most 0777); left out"));
                    None
                }
            },
            None => Some("0644".into()),
        };
        if !super::stays_inside(file_name, true) {
            draft.problems.push(super::escapes(
                &aloc,
                &format!("agent-inject-file-{name}"),
                file_name,
            ));
            continue;
        }
        let file = File {
            path: draft.file_path(dir, file_name),
            key: file_name
                .rsplit('/')
                .next()
                .unwrap_or(file_name)
                .to_string(),
            mode,
            base64: false,
        };
        draft.add(
            name,
            source.clone(),
            Entry::Template(t.text),
            file,
            refresh.clone(),
        );
        if let Some(cmd) = ann.get(format!("agent-inject-command-{name}").as_str()) {
            draft.command_action(
                &format!("{name}-command"),
                Command::Shell(cmd.to_string()),
                &source,
            );
        }
    }
    for key in ann.keys() {
        let handled = known.iter().any(|k| k == key)
            || IGNORED.contains(key)
            || key.starts_with("agent-limits-")
            || key.starts_with("agent-requests-")
            || matches!(
                *key,
                "role"
                    | "auth-path"
                    | "namespace"
                    | "service"
                    | "ca-cert"
                    | "tls-skip-verify"
                    | "secret-volume-path"
                    | "template-static-secret-render-interval"
                    | "agent-inject-default-template"
                    | "auth-type"
            );
        if !handled {
            draft.problems.push(format!(
                "{loc}: the annotation {PREFIX}{key} has no counterpart; left out"
            ));
        }
    }
    true
}

/// `role`, `auth-path`, `auth-type`, `namespace`, `service`, `ca-cert`,
/// `tls-skip-verify`.
fn store(draft: &mut Draft, loc: &str, ann: &BTreeMap<&str, &str>) {
    let st = &mut draft.store;
    if let Some(a) = ann.get("service") {
        st.address = Some(a.to_string());
    }
    if let Some(ns) = ann.get("namespace") {
        st.namespace = Some(ns.to_string());
    }
    if let Some(ca) = ann.get("ca-cert") {
        st.ca_cert = Some(ca.to_string());
    }
    if let Some(s) = ann.get("tls-skip-verify") {
        st.skip_verify = Some(s.eq_ignore_ascii_case("true"));
    }
    let auth_type = ann.get("auth-type").copied().unwrap_or("kubernetes");
    if !matches!(auth_type, "kubernetes" | "jwt") {
        draft.problems.push(format!(
            "{loc}: auth-type {auth_type:?} has no counterpart here (kubernetes, jwt); the config uses kubernetes"
        ));
    }
    let method = if auth_type == "jwt" {
        "jwt"
    } else {
        "kubernetes"
    };
    let mut auth: Vec<(&'static str, String)> = vec![("authMethod", method.into())];
    match ann.get("role") {
        Some(r) => auth.push(("role", r.to_string())),
        None => draft.problems.push(format!(
            "{loc}: no vault.hashicorp.com/role: kubernetes auth needs the Vault role; set secretStore.role"
        )),
    }
    if let Some(p) = ann.get("auth-path") {
        let m = auth_mount(p);
        if m != method {
            auth.push(("authMountPath", m));
        }
    }
    if method == "jwt" {
        auth.push((
            "tokenPath",
            "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
        ));
    }
    st.auth = auth;
}
