//! Validation of where a secret comes from (exactly one of `path`,
//! `dynamic`, `pki`) and of the options that belong to leased and
//! certificate secrets (`revokeOnShutdown`, `atomicSet`). Every error names
//! the secret and the field.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::context::Ctx;
use super::raw::{RawDynamic, RawPki};
use super::settings::duration_in;
use super::{FileSpec, PkiSpec, SecretSource};

/// Shortest certificate TTL or `renewBefore` accepted.
const MIN_PKI_DURATION: Duration = Duration::from_secs(1);
/// Longest certificate TTL or `renewBefore` accepted (ten years).
const MAX_PKI_DURATION: Duration = Duration::from_secs(10 * 8760 * 3600);

/// The secret's fields that say where it comes from.
pub(super) struct RawSource {
    pub(super) path: Option<String>,
    /// The Go tool's name for `path`.
    pub(super) key: Option<String>,
    pub(super) mount_path: Option<String>,
    pub(super) kv_version: Option<String>,
    pub(super) dynamic: Option<RawDynamic>,
    pub(super) pki: Option<RawPki>,
}

/// Checks an API path (KV, dynamic or PKI) and returns it without leading
/// or trailing slashes; `what` says what the path is, for the error.
fn api_path(cx: &mut Ctx, floc: &str, raw: Option<String>, what: &str) -> String {
    let path = cx
        .interp(floc, raw)
        .map(|p| p.trim().trim_matches('/').to_string())
        .unwrap_or_default();
    if path.is_empty() {
        cx.error(floc, format!("missing: give {what}"));
    } else if path.split('/').any(|seg| seg.is_empty() || seg == "..") {
        cx.error(floc, format!("{path:?} has an empty or \"..\" segment"));
    } else if path.starts_with("v1/") {
        cx.error(
            floc,
            format!("{path:?}: give the API path without the /v1/ prefix"),
        );
    }
    path
}

/// Exactly one of `path` (or `key`), `dynamic`, `pki`.
pub(super) fn validate_source(cx: &mut Ctx, loc: &str, mut raw: RawSource) -> Option<SecretSource> {
    if raw.key.is_some() && raw.path.is_some() {
        cx.error(
            format!("{loc}.key"),
            "`key` is the Go tool's name for `path`: give one of them",
        );
        return None;
    }
    let path_field = if raw.key.is_some() { "key" } else { "path" };
    if raw.path.is_none() {
        raw.path = raw.key.take();
    }
    let kv_only = raw.mount_path.is_some() || raw.kv_version.is_some();
    if kv_only && raw.path.is_none() {
        cx.error(
            loc,
            "mountPath and kvVersion apply to KV secrets (`path`/`key`) only",
        );
    }
    let given = [raw.path.is_some(), raw.dynamic.is_some(), raw.pki.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        cx.error(
            loc,
            if given == 0 {
                "missing: give the secret's `path` inside the KV mount (or `dynamic:` for any API path, or `pki:` for a certificate)"
            } else {
                "give exactly one of `path` (KV), `dynamic` or `pki`"
            },
        );
        return None;
    }
    if let Some(p) = raw.path {
        let path = api_path(
            cx,
            &format!("{loc}.{path_field}"),
            Some(p),
            "the secret's path inside the KV mount",
        );
        let mount = match cx.interp(&format!("{loc}.mountPath"), raw.mount_path) {
            None => None,
            Some(m) => {
                let m = m.trim().trim_matches('/').to_string();
                if m.is_empty() || m.split('/').any(|s| s.is_empty() || s == "..") {
                    cx.error(
                        format!("{loc}.mountPath"),
                        format!("{m:?} is not a mount path: name the KV mount, e.g. \"secret\""),
                    );
                }
                Some(m)
            }
        };
        let kv_version = cx
            .interp(&format!("{loc}.kvVersion"), raw.kv_version)
            .and_then(|v| match super::context::kv_version(&v) {
                Ok(v) => Some(v),
                Err(e) => {
                    cx.error(format!("{loc}.kvVersion"), e);
                    None
                }
            });
        return Some(SecretSource::Kv {
            path,
            mount,
            kv_version,
        });
    }
    if let Some(d) = raw.dynamic {
        return validate_dynamic(cx, &format!("{loc}.dynamic"), d);
    }
    raw.pki
        .and_then(|p| validate_pki(cx, &format!("{loc}.pki"), p))
        .map(SecretSource::Pki)
}

fn validate_dynamic(cx: &mut Ctx, dloc: &str, raw: RawDynamic) -> Option<SecretSource> {
    let path = api_path(
        cx,
        &format!("{dloc}.path"),
        raw.path,
        "the API path to read, e.g. database/creds/app",
    );
    let method = match cx
        .interp(&format!("{dloc}.method"), raw.method)
        .map(|m| m.trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("GET") => http::Method::GET,
        Some("POST") => http::Method::POST,
        Some("PUT") => http::Method::PUT,
        Some(other) => {
            cx.error(
                format!("{dloc}.method"),
                format!("{other:?} is not supported: use GET (the default), POST or PUT"),
            );
            return None;
        }
    };
    let parameters = match raw.parameters {
        None | Some(serde_yaml::Value::Null) => None,
        Some(v @ serde_yaml::Value::Mapping(_)) => match serde_json::to_value(&v) {
            Ok(mut j) => {
                interp_strings(cx, &format!("{dloc}.parameters"), &mut j);
                Some(j)
            }
            Err(e) => {
                cx.error(
                    format!("{dloc}.parameters"),
                    format!("cannot be sent as JSON: {e}"),
                );
                return None;
            }
        },
        Some(_) => {
            cx.error(
                format!("{dloc}.parameters"),
                "must be a mapping of request fields (the JSON body)",
            );
            return None;
        }
    };
    // An empty mapping is no body at all.
    let parameters = parameters.filter(|p| p.as_object().is_some_and(|o| !o.is_empty()));
    if parameters.is_some() && method == http::Method::GET {
        cx.error(
            format!("{dloc}.parameters"),
            "a GET request has no body: set `method: POST` (or PUT) to send parameters",
        );
        return None;
    }
    Some(SecretSource::Dynamic {
        path,
        method,
        parameters,
    })
}

/// `${VAR}` in every string of a JSON body, as everywhere else.
fn interp_strings(cx: &mut Ctx, loc: &str, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let Some(out) = cx.interp(loc, Some(std::mem::take(s))) {
                *s = out;
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interp_strings(cx, &format!("{loc}[{i}]"), item);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                interp_strings(cx, &format!("{loc}.{k}"), item);
            }
        }
        _ => {}
    }
}

fn validate_pki(cx: &mut Ctx, ploc: &str, raw: RawPki) -> Option<PkiSpec> {
    let errors_before = cx.errors.len();
    let path = api_path(
        cx,
        &format!("{ploc}.path"),
        raw.path,
        "the PKI role's issue endpoint, e.g. pki/issue/web",
    );
    let common_name = cx
        .interp(&format!("{ploc}.commonName"), raw.common_name)
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    if common_name.is_empty() {
        cx.error(
            format!("{ploc}.commonName"),
            "missing: give the certificate's common name",
        );
    }
    let mut alt_names = Vec::with_capacity(raw.alt_names.len());
    for (i, n) in raw.alt_names.into_iter().enumerate() {
        let floc = format!("{ploc}.altNames[{i}]");
        let n = cx.interp(&floc, Some(n)).unwrap_or_default();
        let n = n.trim();
        if n.is_empty() || n.contains(',') || n.chars().any(char::is_whitespace) {
            cx.error(floc, format!("{n:?} is not a DNS name"));
        } else {
            alt_names.push(n.to_string());
        }
    }
    let mut ip_sans = Vec::with_capacity(raw.ip_sans.len());
    for (i, n) in raw.ip_sans.into_iter().enumerate() {
        let floc = format!("{ploc}.ipSans[{i}]");
        let n = cx.interp(&floc, Some(n)).unwrap_or_default();
        match n.trim().parse::<IpAddr>() {
            Ok(ip) => ip_sans.push(ip),
            Err(_) => cx.error(floc, format!("{n:?} is not an IP address")),
        }
    }
    let parse = duration_in(MIN_PKI_DURATION, MAX_PKI_DURATION, false);
    let duration = |cx: &mut Ctx, field: &str, raw: Option<String>| {
        let floc = format!("{ploc}.{field}");
        let s = cx.interp(&floc, raw)?;
        match parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.error(floc, format!("{s:?}: {e}"));
                None
            }
        }
    };
    let ttl = duration(cx, "ttl", raw.ttl);
    let renew_before = duration(cx, "renewBefore", raw.renew_before);
    if let (Some(ttl), Some(rb)) = (ttl, renew_before) {
        if rb >= ttl {
            cx.error(
                format!("{ploc}.renewBefore"),
                format!(
                    "{} is not shorter than ttl {}: every certificate would be due for renewal when issued; lower renewBefore or raise ttl",
                    super::duration::GoDuration(rb),
                    super::duration::GoDuration(ttl)
                ),
            );
        }
    }
    if cx.errors.len() != errors_before {
        return None;
    }
    Some(PkiSpec {
        path,
        common_name,
        alt_names,
        ip_sans,
        ttl,
        renew_before,
    })
}

/// `revokeOnShutdown` is for leased (dynamic) secrets only.
pub(super) fn validate_revoke(
    cx: &mut Ctx,
    loc: &str,
    raw: Option<bool>,
    source: Option<&SecretSource>,
) -> bool {
    let revoke = raw.unwrap_or(false);
    if revoke && !matches!(source, Some(SecretSource::Dynamic { .. }) | None) {
        cx.error(
            format!("{loc}.revokeOnShutdown"),
            "only a `dynamic:` secret has a lease to revoke; remove revokeOnShutdown",
        );
    }
    revoke
}

/// With `atomicSet`, every file lives in one directory (the set is
/// published by one `..data` symlink there) and no file name starts with
/// `..` (the set's own entries).
pub(super) fn validate_atomic_set(
    cx: &mut Ctx,
    loc: &str,
    raw: Option<bool>,
    files: &[Option<FileSpec>],
) -> bool {
    if raw != Some(true) {
        return false;
    }
    let mut dir: Option<PathBuf> = None;
    for (i, f) in files.iter().enumerate() {
        let Some(f) = f else { continue };
        let parent = crate::fs::parent_of(&f.path);
        match &dir {
            None => dir = Some(parent),
            Some(d) if *d != parent => cx.error(
                format!("{loc}.files[{i}].path"),
                format!(
                    "{} is not in {}: with atomicSet all files of the secret share one directory (the set is swapped by one ..data symlink there)",
                    f.path.display(),
                    d.display()
                ),
            ),
            Some(_) => {}
        }
        if f.in_place {
            cx.error(
                format!("{loc}.files[{i}].writeMode"),
                "inPlace cannot be part of an atomicSet (the set is swapped by a rename); remove one of them",
            );
        }
        if f.path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".."))
        {
            cx.error(
                format!("{loc}.files[{i}].path"),
                "with atomicSet a file name cannot start with \"..\" (reserved for the set's ..data link and directories)",
            );
        }
    }
    true
}

/// `secretStores`: each an AWS store (`provider: aws`) with its region and
/// endpoint, the environment's when not given, or a Vault store
/// (`provider: vault`), returned as written for `validate` to check like
/// `secretStore`. The AWS stores' names are remembered in the context for
/// the secrets' `store:`.
pub(super) fn validate_named_stores(
    cx: &mut Ctx,
    raw: std::collections::BTreeMap<String, super::raw::RawNamedStore>,
) -> (
    Vec<crate::aws::AwsStore>,
    Vec<(String, super::raw::RawStore)>,
) {
    let env_first = |cx: &Ctx, names: &[&str]| {
        names.iter().find_map(|n| {
            (cx.env)(n)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
    };
    let mut out = Vec::new();
    let mut vault = Vec::new();
    for (name, s) in raw {
        let loc = format!("secretStores.{name}");
        if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == '/') {
            cx.error(&loc, "a store name must be a plain, non-empty word");
            continue;
        }
        let (provider, region, endpoint, vault_fields) = s.split();
        let provider = cx
            .interp(&format!("{loc}.provider"), provider)
            .map(|p| p.trim().to_ascii_lowercase());
        match provider.as_deref() {
            Some("aws") => {
                // Remembered valid or not: a secret of an invalid store
                // gets the store's errors, not "not a store" on top.
                cx.aws_stores.push(name.clone());
                let given = vault_fields.given();
                for f in &given {
                    cx.error(
                        format!("{loc}.{f}"),
                        "applies to a Vault store (provider: vault); an AWS store takes region and endpoint",
                    );
                }
                if !given.is_empty() {
                    continue;
                }
            }
            Some("vault") => {
                for (f, given) in [
                    ("region", region.is_some()),
                    ("endpoint", endpoint.is_some()),
                ] {
                    if given {
                        cx.error(
                            format!("{loc}.{f}"),
                            "applies to an AWS store (provider: aws); a Vault store takes the fields of secretStore (address, authMethod, ...)",
                        );
                    }
                }
                vault.push((name, vault_fields));
                continue;
            }
            Some(other) => {
                cx.error(
                    format!("{loc}.provider"),
                    format!("{other:?} is not a provider: use aws or vault"),
                );
                continue;
            }
            None => {
                cx.error(
                    format!("{loc}.provider"),
                    "missing: give the store's provider (aws or vault)",
                );
                continue;
            }
        }
        let region = cx
            .interp(&format!("{loc}.region"), region)
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .or_else(|| env_first(cx, &["AWS_REGION", "AWS_DEFAULT_REGION"]));
        let Some(region) = region else {
            cx.error(
                format!("{loc}.region"),
                "missing: give the AWS region here or in AWS_REGION (or AWS_DEFAULT_REGION)",
            );
            continue;
        };
        if !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            cx.error(
                format!("{loc}.region"),
                format!("{region:?} is not an AWS region (e.g. eu-west-1)"),
            );
            continue;
        }
        let endpoint = cx
            .interp(&format!("{loc}.endpoint"), endpoint)
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .or_else(|| env_first(cx, &["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]));
        if let Some(e) = &endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                cx.error(
                    format!("{loc}.endpoint"),
                    format!("{e:?} must start with http:// or https://"),
                );
                continue;
            }
        }
        out.push(crate::aws::AwsStore {
            name,
            region,
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        });
    }
    (out, vault)
}

/// The fields of a secret that only an AWS store takes, and the Vault-only
/// ones (`namespace`, `credentials`) it refuses.
pub(super) struct AwsFields {
    pub(super) parameter: Option<String>,
    pub(super) version: Option<String>,
    pub(super) vault_only: [(&'static str, bool); 2],
}

/// A secret of the AWS store `store` (of `secretStores`): exactly one of
/// `path` (a Secrets Manager secret id) or `parameter` (SSM; a trailing `/`
/// reads the path); nothing that only Vault understands.
pub(super) fn validate_aws_source(
    cx: &mut Ctx,
    loc: &str,
    store: &str,
    mut raw: RawSource,
    aws: AwsFields,
) -> Option<SecretSource> {
    let mut refused: Vec<&str> = Vec::new();
    if raw.dynamic.is_some() {
        refused.push("dynamic");
    }
    if raw.pki.is_some() {
        refused.push("pki");
    }
    if raw.mount_path.is_some() {
        refused.push("mountPath");
    }
    if raw.kv_version.is_some() {
        refused.push("kvVersion");
    }
    for (f, given) in aws.vault_only {
        if given {
            refused.push(f);
        }
    }
    for f in &refused {
        cx.error(
            format!("{loc}.{f}"),
            format!("applies to Vault secrets only; {store:?} is an AWS store"),
        );
    }
    if raw.key.is_some() && raw.path.is_some() {
        cx.error(
            format!("{loc}.key"),
            "`key` is the Go tool's name for `path`: give one of them",
        );
        return None;
    }
    if raw.path.is_none() {
        raw.path = raw.key.take();
    }
    let path = cx.interp(&format!("{loc}.path"), raw.path);
    let parameter = cx.interp(&format!("{loc}.parameter"), aws.parameter);
    let version = cx
        .interp(&format!("{loc}.version"), aws.version)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let read = match (path, parameter) {
        (Some(id), None) => {
            let id = id.trim().to_string();
            if id.is_empty() {
                cx.error(
                    format!("{loc}.path"),
                    "is empty: give the Secrets Manager secret's name or ARN",
                );
                return None;
            }
            crate::aws::AwsRead::Secret { id, version }
        }
        (None, Some(p)) => {
            let p = p.trim().to_string();
            if version.is_some() {
                cx.error(
                    format!("{loc}.version"),
                    "applies to `path` (Secrets Manager) only",
                );
            }
            if !p.starts_with('/') && p.contains('/') {
                cx.error(
                    format!("{loc}.parameter"),
                    format!("{p:?}: a parameter path starts with /"),
                );
                return None;
            }
            if p.is_empty() {
                cx.error(
                    format!("{loc}.parameter"),
                    "is empty: name the SSM parameter",
                );
                return None;
            }
            if p.ends_with('/') {
                crate::aws::AwsRead::Path { path: p }
            } else {
                crate::aws::AwsRead::Parameter { name: p }
            }
        }
        (Some(_), Some(_)) => {
            cx.error(
                loc,
                "give one of `path` (Secrets Manager) or `parameter` (SSM)",
            );
            return None;
        }
        (None, None) => {
            cx.error(
                loc,
                "missing: give `path` (the Secrets Manager secret) or `parameter` (SSM)",
            );
            return None;
        }
    };
    refused.is_empty().then(|| SecretSource::Aws {
        store: store.to_string(),
        read,
    })
}
