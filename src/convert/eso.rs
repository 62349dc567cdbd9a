//! External Secrets Operator: `ExternalSecret` (external-secrets.io
//! v1beta1 and v1) and the Vault provider of a `SecretStore` /
//! `ClusterSecretStore` in the same input.
//!
//! An ExternalSecret makes a Kubernetes Secret, which a pod mounts as one
//! file per key: here each key becomes a file under the output directory
//! (`/secrets` unless `--output-dir`; `/secrets/<target name>` when the
//! input holds several ExternalSecrets). `data` items become files taking a
//! Vault field; `dataFrom.extract` feeds a template; `target.template.data`
//! entries are translated templates over the one Vault secret they read.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::gotmpl::{translate, Dialect};
use super::{auth_mount, join, str_at, Draft, Entry, File, Source};

const API_GROUP: &str = "external-secrets.io/";

pub(super) fn is_external_secret(d: &Value) -> bool {
    str_at(d, &["kind"]) == Some("ExternalSecret")
        && str_at(d, &["apiVersion"]).is_some_and(|a| a.starts_with(API_GROUP))
}

pub(super) fn is_store(d: &Value) -> bool {
    matches!(
        str_at(d, &["kind"]),
        Some("SecretStore" | "ClusterSecretStore")
    ) && str_at(d, &["apiVersion"]).is_some_and(|a| a.starts_with(API_GROUP))
}

/// The Vault provider of a SecretStore: address, mount, version, namespace
/// and auth.
pub(super) fn read_store(draft: &mut Draft, d: &Value) {
    if !is_store(d) {
        return;
    }
    let name = str_at(d, &["metadata", "name"]).unwrap_or("?").to_string();
    let provider = d.get("spec").and_then(|s| s.get("provider"));
    if let Some(aws) = provider.and_then(|p| p.get("aws")) {
        return read_aws_store(draft, &name, aws);
    }
    let Some(vault) = provider.and_then(|p| p.get("vault")) else {
        draft.problems.push(format!(
            "SecretStore {name}: its provider is neither vault nor aws; secrets-sync reads Vault/OpenBao and AWS"
        ));
        return;
    };
    let st = &mut draft.store;
    st.address = str_at(vault, &["server"]).map(str::to_string);
    st.mount_path = str_at(vault, &["path"]).map(str::to_string);
    st.kv_version = str_at(vault, &["version"]).map(str::to_string);
    st.namespace = str_at(vault, &["namespace"]).map(str::to_string);
    if vault.get("caBundle").is_some() || vault.get("caProvider").is_some() {
        st.ca_cert = Some(super::env_ref("VAULT_CACERT"));
        draft.notes.push(format!(
            "SecretStore {name}: its CA (caBundle/caProvider) is not carried over: write it to a PEM file and set VAULT_CACERT to its path"
        ));
    }
    let auth = vault.get("auth");
    let get = |p: &[&str]| auth.and_then(|a| str_at(a, p)).map(str::to_string);
    let mount = |p: Option<String>| p.as_deref().map(auth_mount);
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    if auth.and_then(|a| a.get("kubernetes")).is_some() {
        fields.push(("authMethod", "kubernetes".into()));
        fields.extend(get(&["kubernetes", "role"]).map(|r| ("role", r)));
        fields.extend(mount(get(&["kubernetes", "mountPath"])).map(|m| ("authMountPath", m)));
    } else if auth.and_then(|a| a.get("appRole")).is_some() {
        fields.push(("authMethod", "approle".into()));
        fields.push((
            "roleId",
            get(&["appRole", "roleId"]).unwrap_or_else(|| super::env_ref("VAULT_ROLE_ID")),
        ));
        fields.push(("secretId", super::env_ref("VAULT_SECRET_ID")));
        fields.extend(mount(get(&["appRole", "path"])).map(|m| ("authMountPath", m)));
        draft.notes.push(format!(
            "SecretStore {name}: the AppRole secret id was in a Kubernetes Secret; set VAULT_SECRET_ID"
        ));
    } else if auth.and_then(|a| a.get("jwt")).is_some() {
        fields.push(("authMethod", "jwt".into()));
        fields.extend(get(&["jwt", "role"]).map(|r| ("role", r)));
        fields.extend(mount(get(&["jwt", "path"])).map(|m| ("authMountPath", m)));
        fields.push((
            "tokenPath",
            "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
        ));
        draft.notes.push(format!(
            "SecretStore {name}: jwt auth reads the JWT from the service-account token file; change tokenPath if it lives elsewhere"
        ));
    } else if auth.and_then(|a| a.get("tokenSecretRef")).is_some() {
        fields.push(("authMethod", "token".into()));
        fields.push(("token", super::env_ref("VAULT_TOKEN")));
        draft.notes.push(format!(
            "SecretStore {name}: the token was in a Kubernetes Secret; set VAULT_TOKEN"
        ));
    } else if let Some(other) = auth
        .and_then(Value::as_mapping)
        .and_then(|m| m.keys().next())
        .and_then(Value::as_str)
    {
        draft.problems.push(format!(
            "SecretStore {name}: the auth method {other:?} has no counterpart (token, appRole, kubernetes, jwt); the config uses VAULT_TOKEN"
        ));
    }
    st.auth = fields;
}

/// The AWS provider of a SecretStore: Secrets Manager or Parameter Store in
/// a region; its credentials become notes (secrets-sync takes AWS's own
/// chain from the environment).
fn read_aws_store(draft: &mut Draft, name: &str, aws: &Value) {
    let ssm = match str_at(aws, &["service"]) {
        Some("SecretsManager") | None => false,
        Some("ParameterStore") => true,
        Some(other) => {
            draft.problems.push(format!(
                "SecretStore {name}: the AWS service {other:?} has no counterpart (SecretsManager, ParameterStore)"
            ));
            return;
        }
    };
    if aws.get("role").is_some() {
        draft.problems.push(format!(
            "SecretStore {name}: assuming a further role (role) has no counterpart; the pod's own credentials are used"
        ));
    }
    let auth = aws.get("auth");
    if auth.and_then(|a| a.get("jwt")).is_some() {
        draft.notes.push(format!(
            "SecretStore {name}: IRSA: give the pod's ServiceAccount the eks.amazonaws.com/role-arn annotation (EKS then sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
        ));
    } else if auth.and_then(|a| a.get("secretRef")).is_some() {
        draft.notes.push(format!(
            "SecretStore {name}: the access keys were in a Kubernetes Secret; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ));
    }
    draft.aws_stores.insert(
        name.to_string(),
        super::AwsStoreDraft {
            region: str_at(aws, &["region"]).map(str::to_string),
            ssm,
        },
    );
}

/// A `data[]` item: the Secret key, the Vault path and field.
struct Item {
    secret_key: String,
    /// AWS Secrets Manager: `remoteRef.version`.
    version: Option<String>,
    path: String,
    property: Option<String>,
    base64: bool,
}

/// One ExternalSecret.
pub(super) fn read(draft: &mut Draft, loc: &str, d: &Value, several: bool) {
    let name = str_at(d, &["metadata", "name"])
        .unwrap_or("external-secret")
        .to_string();
    let loc = format!("{loc} (ExternalSecret {name})");
    let Some(spec) = d.get("spec") else {
        draft.problems.push(format!("{loc}: has no spec"));
        return;
    };
    // The SecretStore it reads, when that store is an AWS one: (name, SSM?).
    let aws_store: Option<(String, bool)> = str_at(spec, &["secretStoreRef", "name"])
        .and_then(|n| draft.aws_stores.get(n).map(|a| (n.to_string(), a.ssm)));
    let target = str_at(spec, &["target", "name"])
        .unwrap_or(&name)
        .to_string();
    let dir = if several {
        format!("/secrets/{target}")
    } else {
        "/secrets".into()
    };
    let dir = match (&draft.opts.output_dir, several) {
        (Some(o), true) => format!("{}/{target}", o.trim_end_matches('/')),
        (Some(o), false) => o.clone(),
        (None, _) => dir,
    };
    let refresh = match spec.get("refreshInterval") {
        None => Some("1h".to_string()),
        Some(v) => {
            let r = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{v:?}"));
            if r.trim() == "0" || r.trim() == "0s" {
                draft.notes.push(format!(
                    "{loc}: refreshInterval 0 (read once) has no counterpart; the config reads it every 1h"
                ));
                Some("1h".into())
            } else {
                Some(r)
            }
        }
    };
    let mut items = Vec::new();
    for (i, it) in spec
        .get("data")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let iloc = format!("{loc}: spec.data[{i}]");
        let (Some(key), Some(path)) = (
            str_at(it, &["secretKey"]),
            str_at(it, &["remoteRef", "key"]),
        ) else {
            draft
                .problems
                .push(format!("{iloc}: needs secretKey and remoteRef.key"));
            continue;
        };
        for unsupported in ["version", "conversionStrategy", "metadataPolicy"] {
            if unsupported == "version" && aws_store.is_some() {
                continue;
            }
            if let Some(v) = it.get("remoteRef").and_then(|r| r.get(unsupported)) {
                let harmless = matches!(
                    (unsupported, v.as_str()),
                    ("metadataPolicy", Some("None")) | ("conversionStrategy", Some("Default"))
                );
                if !harmless {
                    draft.problems.push(format!(
                        "{iloc}: remoteRef.{unsupported} has no counterpart (secrets-sync reads the latest version's data); left out"
                    ));
                }
            }
        }
        let decoding = str_at(it, &["remoteRef", "decodingStrategy"]).unwrap_or("None");
        let base64 = match decoding {
            "None" => false,
            "Base64" | "Auto" => true,
            other => {
                draft.problems.push(format!(
                    "{iloc}: decodingStrategy {other} has no counterpart; left out"
                ));
                false
            }
        };
        if aws_store.as_ref().is_some_and(|(_, ssm)| *ssm)
            && str_at(it, &["remoteRef", "property"]).is_some()
        {
            draft.problems.push(format!(
                "{iloc}: a property of an SSM parameter has no counterpart (secrets-sync gives the parameter's value as the field value); left out"
            ));
            continue;
        }
        items.push(Item {
            secret_key: key.to_string(),
            version: str_at(it, &["remoteRef", "version"]).map(str::to_string),
            path: if aws_store.as_ref().is_some_and(|(_, ssm)| *ssm) {
                path.to_string()
            } else {
                path.trim_matches('/').to_string()
            },
            property: str_at(it, &["remoteRef", "property"]).map(str::to_string),
            base64,
        });
    }
    let mut extracts = Vec::new();
    for (i, it) in spec
        .get("dataFrom")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let iloc = format!("{loc}: spec.dataFrom[{i}]");
        match str_at(it, &["extract", "key"]) {
            Some(k) if it.get("rewrite").is_none() && it.get("extract").and_then(|e| e.get("property")).is_none() => {
                extracts.push(k.trim_matches('/').to_string());
            }
            Some(_) => draft.problems.push(format!("{iloc}: extract with property or rewrite has no counterpart")),
            None => draft.problems.push(format!(
                "{iloc}: only dataFrom.extract converts (find and sourceRef search Vault, which a config cannot)"
            )),
        }
    }
    let template = spec.get("target").and_then(|t| t.get("template"));
    if template.and_then(|t| t.get("templateFrom")).is_some() {
        draft.problems.push(format!(
            "{loc}: target.template.templateFrom reads a ConfigMap or Secret, which convert cannot see; put the template in template.data"
        ));
    }
    let merge = template.and_then(|t| str_at(t, &["mergePolicy"])) == Some("Merge");
    let entries: Vec<(String, String)> = template
        .and_then(|t| t.get("data"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
        .collect();
    let source = |draft: &Draft, path: &str| match &aws_store {
        Some((store, ssm)) => Source::Aws {
            store: store.clone(),
            ssm: *ssm,
            key: path.to_string(),
            version: None,
        },
        None => Source::Kv {
            mount: draft.mount(),
            path: path.to_string(),
            v2: draft.kv2(),
        },
    };
    if entries.is_empty() || merge {
        // Each data item is a file holding one field (or the JSON of all).
        for it in &items {
            if !super::stays_inside(&it.secret_key, false) {
                draft
                    .problems
                    .push(super::escapes(&loc, "secretKey", &it.secret_key));
                continue;
            }
            let ssm = aws_store.as_ref().is_some_and(|(_, ssm)| *ssm);
            let file = File {
                path: join(&dir, &it.secret_key),
                key: match (&it.property, ssm, aws_store.is_some()) {
                    (Some(p), false, _) => p.clone(),
                    (_, true, _) | (None, false, true) => "value".into(),
                    (None, false, false) => it.secret_key.clone(),
                },
                mode: None,
                base64: it.base64,
            };
            let entry = match (&it.property, ssm) {
                (Some(_), _) | (None, true) => Entry::Field,
                (None, false) if aws_store.is_some() => {
                    draft.notes.push(format!(
                        "{loc}: {} takes the Secrets Manager secret's field \"value\" (a plain SecretString); a JSON secret needs a property per key",
                        it.secret_key
                    ));
                    Entry::Field
                }
                (None, false) => {
                    draft.notes.push(format!(
                        "{loc}: {} holds the whole secret as JSON (keys sorted; ESO's Go encoder also escapes <, > and & as \\u003c...)",
                        it.secret_key
                    ));
                    Entry::Template("{{ secret | json_encode() }}".into())
                }
            };
            let mut src = source(draft, &it.path);
            if let Source::Aws { version, .. } = &mut src {
                version.clone_from(&it.version);
            }
            draft.add(&name, src, entry, file, refresh.clone());
        }
        if entries.is_empty() && !extracts.is_empty() {
            draft.problems.push(format!(
                "{loc}: dataFrom.extract without a template makes one key per field of {:?}, whose names convert cannot know without Vault; list them as data items or add target.template.data",
                extracts
            ));
        }
    }
    if entries.is_empty() {
        return;
    }
    // A template reads one Vault secret: every data item and extract must
    // name the same path.
    let mut paths: Vec<&str> = items
        .iter()
        .map(|i| i.path.as_str())
        .chain(extracts.iter().map(String::as_str))
        .collect();
    paths.sort_unstable();
    paths.dedup();
    let path = match paths.as_slice() {
        [one] => one.to_string(),
        [] => {
            draft.problems.push(format!(
                "{loc}: target.template reads no data (no data and no dataFrom)"
            ));
            return;
        }
        many => {
            draft.problems.push(format!(
                "{loc}: the template combines {} Vault secrets ({}); a secrets-sync template reads one: split it per secret",
                many.len(),
                many.join(", ")
            ));
            return;
        }
    };
    let mut renames = BTreeMap::new();
    for it in &items {
        match &it.property {
            Some(p) => {
                renames.insert(it.secret_key.clone(), p.clone());
            }
            None => draft.problems.push(format!(
                "{loc}: the template's key {} is the whole secret (no property); name a property",
                it.secret_key
            )),
        }
        if it.base64 && !merge {
            draft.problems.push(format!(
                "{loc}: {} is base64-decoded before the template runs; add `| b64dec` in the template by hand",
                it.secret_key
            ));
        }
    }
    for (key, text) in entries {
        if !super::stays_inside(&key, false) {
            draft
                .problems
                .push(super::escapes(&loc, "target.template.data key", &key));
            continue;
        }
        let t = translate(&text, &Dialect::Eso { renames: &renames });
        if !t.problems.is_empty() {
            for p in t.problems {
                draft
                    .problems
                    .push(format!("{loc}: target.template.data[{key:?}]: {p}"));
            }
            continue;
        }
        let file = File {
            path: join(&dir, &key),
            key: key.clone(),
            mode: None,
            base64: false,
        };
        draft.add(
            &name,
            source(draft, &path),
            Entry::Template(t.text),
            file,
            refresh.clone(),
        );
    }
}
