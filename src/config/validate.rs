//! Validation of a [`RawConfig`] into a [`Config`], collecting every error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::context::{kv_version, Credentials, Ctx};
use super::duration::{parse_duration, GoDuration};
use super::interpolate::interpolate;
use super::raw::{RawConfig, RawFile, RawSecret, RawStore};
use super::settings::ConfigArgs;
use super::settings::MIN_REFRESH_INTERVAL;
use super::{
    AuthConfig, ClientCert, Config, ConfigError, FileSpec, KvVersion, Loaded, SecretSource,
    SecretSpec, StoreConfig, DEFAULT_FILE_MODE, DEFAULT_REFRESH_INTERVAL,
};
use crate::template::SecretTemplate;

/// Longest refresh interval accepted.
pub const MAX_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(8760 * 3600);

pub(super) fn validate(
    raw: RawConfig,
    file: &Path,
    args: &ConfigArgs,
    env: &dyn Fn(&str) -> Option<String>,
    creds: Credentials,
) -> Result<Loaded, Vec<ConfigError>> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut cx = Ctx {
        env,
        dir,
        template_files: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        missing_vars: Vec::new(),
        aws_stores: Vec::new(),
    };
    let sets: Vec<String> = raw.secret_store.credentials.keys().cloned().collect();
    let store = validate_store(&mut cx, raw.secret_store, args, creds);
    let aws_stores = super::sources::validate_named_stores(&mut cx, raw.secret_stores);

    if raw.secrets.is_empty() {
        cx.error(
            "secrets",
            "no secrets configured: add at least one entry under `secrets:`",
        );
    }
    // Names of every action, valid or not: a secret naming an invalid
    // action gets that action's errors, not "unknown action" on top.
    let action_names: Vec<String> = raw.actions.keys().cloned().collect();
    let actions: Vec<_> = raw
        .actions
        .into_iter()
        .filter_map(|(name, a)| super::actions::validate_action(&mut cx, &name, a))
        .collect();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut paths: HashMap<PathBuf, String> = HashMap::new();
    let mut secrets = Vec::new();
    for (i, s) in raw.secrets.into_iter().enumerate() {
        if let Some(spec) =
            validate_secret(&mut cx, i, s, &mut names, &mut paths, &action_names, &sets)
        {
            secrets.push(spec);
        }
    }
    // Two sets in one directory would swap one `..data` link between
    // them: each publish would hide the other's files.
    let mut set_dirs: HashMap<PathBuf, &str> = HashMap::new();
    for s in secrets.iter().filter(|s| s.atomic_set) {
        let Some(dir) = s
            .files
            .first()
            .map(|f| f.path.parent().map(PathBuf::from).unwrap_or_default())
        else {
            continue;
        };
        match set_dirs.get(&dir) {
            Some(first) => cx.error(
                format!("secret {:?}: atomicSet", s.name),
                format!(
                    "{} already holds the atomic set of secret {first:?}: two sets in one directory would replace each other's files; give each set a directory of its own",
                    dir.display()
                ),
            ),
            None => {
                set_dirs.insert(dir, &s.name);
            }
        }
    }
    for a in &actions {
        if !secrets
            .iter()
            .any(|s: &SecretSpec| s.on_change.contains(&a.name))
        {
            cx.warnings.push(format!(
                "actions.{} is not in any secret's onChange: it never runs",
                a.name
            ));
        }
    }
    if !cx.missing_vars.is_empty() {
        let vars = cx.missing_vars.join(", ");
        cx.warnings.push(format!(
            "environment variable(s) {vars} not set; their ${{...}} references were replaced by empty strings"
        ));
    }
    match (store, cx.errors.is_empty()) {
        (Some(store), true) => Ok(Loaded {
            config: Config {
                store,
                aws_stores,
                secrets,
                actions,
                template_files: cx.template_files,
            },
            warnings: cx.warnings,
        }),
        _ => Err(cx.errors),
    }
}

fn validate_store(
    cx: &mut Ctx,
    raw: RawStore,
    args: &ConfigArgs,
    creds: Credentials,
) -> Option<StoreConfig> {
    let errors_before = cx.errors.len();
    // Flag/environment values win over the file.
    let address = args
        .vault_addr
        .clone()
        .or_else(|| cx.interp("secretStore.address", raw.address))
        .unwrap_or_default();
    let address = address.trim().trim_end_matches('/').to_string();
    if address.is_empty() {
        match creds {
            Credentials::Required => cx.error(
                "secretStore.address",
                "no Vault address: set secretStore.address or VAULT_ADDR",
            ),
            Credentials::Optional => cx.warnings.push(
                "secretStore.address is empty here; VAULT_ADDR must be set when secrets-sync runs"
                    .into(),
            ),
        }
    } else if !(address.starts_with("http://") || address.starts_with("https://")) {
        cx.error(
            "secretStore.address",
            format!("{address:?} must start with http:// or https://"),
        );
    }

    let auth = super::auth::validate_auth(
        cx,
        "secretStore",
        super::auth::AuthFields {
            method: raw.auth_method,
            token: raw.token,
            role_id: raw.role_id,
            secret_id: raw.secret_id,
            auth_mount_path: raw.auth_mount_path,
            role: raw.role,
            token_path: raw.token_path,
        },
        super::auth::Overrides {
            token: args.vault_token.as_ref(),
            role_id: args.vault_role_id.clone(),
            secret_id: args.vault_secret_id.as_ref(),
            env: true,
        },
        creds,
    );

    let mut credentials = Vec::with_capacity(raw.credentials.len());
    for (name, set) in raw.credentials {
        let prefix = format!("secretStore.credentials.{name}");
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            cx.error(&prefix, "a credential set needs a plain, non-empty name");
            continue;
        }
        let fields = super::auth::AuthFields {
            method: set.auth_method,
            token: set.token,
            role_id: set.role_id,
            secret_id: set.secret_id,
            auth_mount_path: set.auth_mount_path,
            role: set.role,
            token_path: set.token_path,
        };
        if let Some(a) =
            super::auth::validate_auth(cx, &prefix, fields, super::auth::Overrides::none(), creds)
        {
            credentials.push((name, a));
        }
    }

    let kv_version = match cx.interp("secretStore.kvVersion", raw.kv_version) {
        None => Some(KvVersion::V2),
        Some(v) => match kv_version(&v) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.error("secretStore.kvVersion", e);
                None
            }
        },
    };
    let mount_path = cx
        .interp("secretStore.mountPath", raw.mount_path)
        .map(|m| m.trim().trim_matches('/').to_string())
        .unwrap_or_else(|| "secret".into());
    if mount_path.is_empty() {
        cx.error(
            "secretStore.mountPath",
            "is empty: name the KV mount, e.g. \"secret\"",
        );
    }
    let namespace = args
        .vault_namespace
        .clone()
        .or_else(|| cx.interp("secretStore.namespace", raw.namespace))
        .map(|n| n.trim().trim_matches('/').to_string())
        .filter(|n| !n.is_empty());
    let path_field = |cx: &mut Ctx, arg: &Option<PathBuf>, loc: &str, v: Option<String>| {
        arg.clone().or_else(|| {
            cx.interp(loc, v)
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
        })
    };
    let ca_cert = either(
        cx,
        ("secretStore.caCert", raw.ca_cert),
        ("secretStore.tlsCACert", raw.tls_ca_cert),
    );
    let ca_cert = path_field(cx, &args.vault_cacert, "secretStore.caCert", ca_cert);
    let ca_path = path_field(
        cx,
        &args.vault_capath,
        "secretStore.tlsCAPath",
        raw.tls_ca_path,
    );
    let cert = path_field(
        cx,
        &args.vault_client_cert,
        "secretStore.tlsClientCert",
        raw.tls_client_cert,
    );
    let key = path_field(
        cx,
        &args.vault_client_key,
        "secretStore.tlsClientKey",
        raw.tls_client_key,
    );
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            cx.error(
                "secretStore.tlsClientKey",
                "a client certificate needs its private key: set secretStore.tlsClientKey or VAULT_CLIENT_KEY",
            );
            None
        }
        (None, Some(_)) => {
            cx.error(
                "secretStore.tlsClientCert",
                "a client key needs its certificate: set secretStore.tlsClientCert or VAULT_CLIENT_CERT",
            );
            None
        }
    };
    let tls_server_name = args
        .vault_tls_server_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let skip_verify = either(
        cx,
        ("secretStore.skipVerify", raw.skip_verify),
        ("secretStore.tlsSkipVerify", raw.tls_skip_verify),
    );
    let skip_verify = args.vault_skip_verify.or(skip_verify).unwrap_or(false);
    let cert_auth = |a: &AuthConfig| matches!(a, AuthConfig::Cert { .. });
    if client_cert.is_none()
        && (auth.as_ref().is_some_and(cert_auth) || credentials.iter().any(|(_, a)| cert_auth(a)))
    {
        cx.error(
            "secretStore.tlsClientCert",
            "cert auth logs in with the TLS client certificate: set secretStore.tlsClientCert and tlsClientKey (or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)",
        );
    }

    if cx.errors.len() != errors_before {
        return None;
    }
    Some(StoreConfig {
        address,
        auth: auth?,
        kv_version: kv_version?,
        mount_path,
        namespace,
        ca_cert,
        ca_path,
        client_cert,
        tls_server_name,
        skip_verify,
        credentials,
    })
}

/// A credential: the variable/flag if set, else the file's field
/// (interpolated), trimmed.
/// `{templateFile: PATH}`: the file's text (PATH relative to the config
/// file's directory), remembered for the config watcher.
fn template_file(cx: &mut Ctx, kloc: &str, m: serde_yaml::Mapping) -> Option<String> {
    let mut path = None;
    for (k, v) in m {
        match (k.as_str(), v) {
            (Some("templateFile"), Value::String(p)) => path = Some(p),
            (Some("templateFile"), _) => {
                cx.error(format!("{kloc}.templateFile"), "must be a file path");
                return None;
            }
            (other, _) => {
                cx.error(
                    kloc,
                    format!(
                        "unknown field {:?}: a template entry is a string or {{templateFile: PATH}}",
                        other.unwrap_or("?")
                    ),
                );
                return None;
            }
        }
    }
    let floc = format!("{kloc}.templateFile");
    let path = cx.interp(&floc, path).filter(|p| !p.trim().is_empty());
    let Some(path) = path else {
        cx.error(floc, "is empty: name the template's file");
        return None;
    };
    let path = cx.dir.join(path.trim());
    match read_template_file(&path) {
        Ok(text) => {
            if !cx.template_files.contains(&path) {
                cx.template_files.push(path);
            }
            Some(text)
        }
        Err(why) => {
            cx.error(floc, why);
            None
        }
    }
}

/// Largest `templateFile` read.
const TEMPLATE_FILE_MAX: u64 = 1024 * 1024;

/// Reads a `templateFile`: a regular file, not under `/proc`, `/sys` or
/// `/dev` once every symlink is resolved (`/proc/self/environ` would put
/// the sidecar's credentials into a file the app reads), opened without
/// blocking (a FIFO is refused, not waited on), at most 1 MiB.
fn read_template_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        format!(
            "cannot read {}: {e} (a relative path is under the config file's directory)",
            path.display()
        )
    };
    let real = std::fs::canonicalize(path).map_err(cannot)?;
    if ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| real.starts_with(p))
    {
        return Err(format!(
            "{} is {}, under /proc, /sys or /dev: a template file must be a file of the config's, not of the system",
            path.display(),
            real.display()
        ));
    }
    let f = match crate::fs::read::open_regular(&real) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(format!("{} is not a regular file", path.display()))
        }
        Err(e) => return Err(cannot(e)),
    };
    let meta = f.metadata().map_err(cannot)?;
    if meta.len() > TEMPLATE_FILE_MAX {
        return Err(format!(
            "{} is larger than {TEMPLATE_FILE_MAX} bytes",
            path.display()
        ));
    }
    let mut text = String::new();
    f.take(TEMPLATE_FILE_MAX)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    Ok(text)
}

/// A field the config may give under our name or the Go tool's: one of
/// them, an error naming both when both are given.
fn either<T>(cx: &mut Ctx, ours: (&str, Option<T>), theirs: (&str, Option<T>)) -> Option<T> {
    match (ours.1, theirs.1) {
        (Some(a), Some(_)) => {
            cx.error(
                theirs.0,
                format!(
                    "is the Go tool's name for {}: give one of them",
                    ours.0.rsplit('.').next().unwrap_or(ours.0)
                ),
            );
            Some(a)
        }
        (a, b) => a.or(b),
    }
}

fn validate_secret(
    cx: &mut Ctx,
    index: usize,
    raw: RawSecret,
    names: &mut HashMap<String, usize>,
    all_paths: &mut HashMap<PathBuf, String>,
    actions: &[String],
    sets: &[String],
) -> Option<SecretSpec> {
    let errors_before = cx.errors.len();
    let name = cx
        .interp(&format!("secrets[{index}].name"), raw.name)
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    let loc = if name.is_empty() {
        format!("secrets[{index}]")
    } else {
        format!("secrets[{index}] {name:?}")
    };
    if name.is_empty() {
        cx.error(
            format!("{loc}.name"),
            "missing: every secret needs a unique name",
        );
    } else if name.chars().any(char::is_control) {
        cx.error(format!("{loc}.name"), "contains control characters");
    } else if let Some(first) = names.insert(name.clone(), index) {
        cx.error(
            format!("{loc}.name"),
            format!("duplicate name, also used by secrets[{first}]: names must be unique"),
        );
    }

    let raw_source = super::sources::RawSource {
        path: raw.path,
        key: raw.key,
        mount_path: raw.mount_path,
        kv_version: raw.kv_version,
        dynamic: raw.dynamic,
        pki: raw.pki,
    };
    let source = match cx.interp(&format!("{loc}.store"), raw.store) {
        Some(store) => super::sources::validate_aws_source(
            cx,
            &loc,
            store.trim(),
            raw_source,
            super::sources::AwsFields {
                parameter: raw.parameter,
                version: raw.version,
                vault_only: [
                    ("namespace", raw.namespace.is_some()),
                    ("credentials", raw.credentials.is_some()),
                ],
            },
        ),
        None => {
            for (field, given) in [
                ("parameter", raw.parameter.is_some()),
                ("version", raw.version.is_some()),
            ] {
                if given {
                    cx.error(
                        format!("{loc}.{field}"),
                        "applies to a secret of an AWS store: set `store:` to one of secretStores",
                    );
                }
            }
            super::sources::validate_source(cx, &loc, raw_source)
        }
    };
    let (raw_namespace, raw_credentials) = match &source {
        Some(SecretSource::Aws { .. }) => (None, None),
        _ => (raw.namespace, raw.credentials),
    };
    if raw.refresh_interval.is_some() && matches!(source, Some(SecretSource::Pki(_))) {
        cx.warnings.push(format!(
            "{loc}.refreshInterval does not apply to a pki secret: it is renewed from its certificate's NotAfter (see pki.renewBefore)"
        ));
    }
    let revoke_on_shutdown =
        super::sources::validate_revoke(cx, &loc, raw.revoke_on_shutdown, source.as_ref());
    let credentials = cx
        .interp(&format!("{loc}.credentials"), raw_credentials)
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if let Some(c) = &credentials {
        if !sets.contains(c) {
            cx.error(
                format!("{loc}.credentials"),
                if sets.is_empty() {
                    format!("{c:?} is not a credential set: there is no secretStore.credentials; define it there or remove credentials")
                } else {
                    format!(
                        "{c:?} is not a credential set (secretStore.credentials has: {})",
                        sets.join(", ")
                    )
                },
            );
        }
    }
    // `""` (the Go tool's way) is the root namespace.
    let namespace = cx
        .interp(&format!("{loc}.namespace"), raw_namespace)
        .map(|n| n.trim().trim_matches('/').to_string());

    let refresh_interval = match cx.interp(&format!("{loc}.refreshInterval"), raw.refresh_interval)
    {
        None => DEFAULT_REFRESH_INTERVAL,
        Some(s) => match parse_duration(&s) {
            Ok(d) if d < MIN_REFRESH_INTERVAL => {
                cx.error(
                    format!("{loc}.refreshInterval"),
                    format!(
                        "{s:?} is shorter than the floor of {}: every secret would be read from Vault that often; use at least \"1s\"",
                        GoDuration(MIN_REFRESH_INTERVAL)
                    ),
                );
                DEFAULT_REFRESH_INTERVAL
            }
            Ok(d) if d > MAX_REFRESH_INTERVAL => {
                cx.error(
                    format!("{loc}.refreshInterval"),
                    "must be at most 8760h (a year)",
                );
                DEFAULT_REFRESH_INTERVAL
            }
            Ok(d) => d,
            Err(e) => {
                cx.error(format!("{loc}.refreshInterval"), e.to_string());
                DEFAULT_REFRESH_INTERVAL
            }
        },
    };

    // Template entries, in declaration order.
    let template = match raw.template {
        None => None,
        Some(t) => {
            let mut entries = Vec::new();
            for (k, v) in t.data {
                let key = match k {
                    Value::String(s) => s,
                    other => yaml_scalar(&other).unwrap_or_default(),
                };
                let kloc = format!("{loc}.template.data[{key:?}]");
                if key.is_empty() {
                    cx.error(&kloc, "template keys must be non-empty strings");
                    continue;
                }
                match v {
                    Value::String(s) => entries.push((key, s)),
                    Value::Mapping(m) => {
                        if let Some(text) = template_file(cx, &kloc, m) {
                            entries.push((key, text));
                        }
                    }
                    _ => cx.error(
                        &kloc,
                        "a template is a string, or {templateFile: PATH} to read it from a file",
                    ),
                }
            }
            if entries.is_empty() {
                cx.error(
                    format!("{loc}.template.data"),
                    "is empty: add entries or remove `template`",
                );
                None
            } else {
                match SecretTemplate::compile(entries) {
                    Ok(t) => Some(t),
                    Err(errs) => {
                        for e in errs {
                            cx.error(
                                format!("{loc}.template.data[{:?}]", e.key),
                                format!("template syntax error: {}", e.message),
                            );
                        }
                        None
                    }
                }
            }
        }
    };

    if raw.files.is_empty() {
        cx.error(
            format!("{loc}.files"),
            "no files: add at least one `files:` entry",
        );
    }
    let file_count = raw.files.len();
    let mut files = Vec::with_capacity(file_count);
    let mut explicit: Vec<Option<String>> = Vec::with_capacity(file_count);
    for (i, f) in raw.files.into_iter().enumerate() {
        let floc = format!("{loc}.files[{i}]");
        let (spec, key) = validate_file(cx, &floc, f);
        if let Some(spec) = &spec {
            if spec.path.is_relative() {
                cx.warnings.push(format!(
                    "{floc}.path {:?} is relative: it is resolved against the working directory of the process; give an absolute path",
                    spec.path.display().to_string()
                ));
            }
            // Compared in lexical normal form: `out/../out/x` is `out/x`.
            if let Some(other) = all_paths.insert(lexical_normal(&spec.path), name.clone()) {
                cx.error(
                    format!("{floc}.path"),
                    format!(
                        "{} is already written by secret {other:?}: each file has one source",
                        spec.path.display()
                    ),
                );
            }
        }
        explicit.push(key);
        files.push(spec);
    }

    let atomic_set = super::sources::validate_atomic_set(cx, &loc, raw.atomic_set, &files);
    // Map each file to its template key / field.
    let sources = resolve_sources(cx, &loc, template.as_ref(), &files, &explicit, file_count);
    let on_change = super::actions::validate_on_change(cx, &loc, raw.on_change, actions);

    let source = source?;
    if cx.errors.len() != errors_before {
        return None;
    }
    let files = files
        .into_iter()
        .zip(sources)
        .filter_map(|(f, s)| {
            f.map(|mut f| {
                f.source = s;
                f
            })
        })
        .collect();
    Some(SecretSpec {
        name,
        source,
        refresh_interval,
        revoke_on_shutdown,
        atomic_set,
        namespace,
        credentials,
        template,
        files,
        on_change,
    })
}

/// Picks each file's template key: explicit `key`, else the key equal to the
/// file's base name, else the key at the same position when the counts match.
/// Without a template, the source is a secret field: `key`, else the base name.
fn resolve_sources(
    cx: &mut Ctx,
    loc: &str,
    template: Option<&SecretTemplate>,
    files: &[Option<FileSpec>],
    explicit: &[Option<String>],
    file_count: usize,
) -> Vec<String> {
    let base = |f: &Option<FileSpec>| -> String {
        f.as_ref()
            .and_then(|f| f.path.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let Some(t) = template else {
        return files
            .iter()
            .zip(explicit)
            .map(|(f, k)| k.clone().unwrap_or_else(|| base(f)))
            .collect();
    };
    let keys: Vec<&str> = t.keys().collect();
    let mut chosen: Vec<Option<String>> = vec![None; files.len()];
    // Pass 1: explicit keys and base-name matches.
    for (i, f) in files.iter().enumerate() {
        if let Some(k) = &explicit[i] {
            if t.has_key(k) {
                chosen[i] = Some(k.clone());
            } else {
                cx.error(
                    format!("{loc}.files[{i}].key"),
                    format!(
                        "{k:?} is not a key of template.data (keys: {})",
                        keys.join(", ")
                    ),
                );
                chosen[i] = Some(String::new());
            }
        } else {
            let b = base(f);
            if t.has_key(&b) {
                chosen[i] = Some(b);
            }
        }
    }
    // Pass 2: position, only when the counts match and the key at that
    // position is not already taken by another file's key or name.
    for i in 0..files.len() {
        if chosen[i].is_some() {
            continue;
        }
        let floc = format!("{loc}.files[{i}]");
        if keys.len() != file_count {
            cx.error(
                floc,
                format!(
                    "cannot tell which template key this file takes: no `key:`, no key named {:?}, and {} files vs {} template keys; add `key:`",
                    base(&files[i]),
                    file_count,
                    keys.len()
                ),
            );
            continue;
        }
        let k = keys[i].to_string();
        if let Some(j) = chosen.iter().position(|c| c.as_deref() == Some(k.as_str())) {
            cx.error(
                floc,
                format!(
                    "ambiguous: by position this file would take key {k:?}, which files[{j}] already takes; add `key:`"
                ),
            );
            continue;
        }
        chosen[i] = Some(k);
    }
    chosen.into_iter().map(Option::unwrap_or_default).collect()
}

fn validate_file(cx: &mut Ctx, floc: &str, raw: RawFile) -> (Option<FileSpec>, Option<String>) {
    let errors_before = cx.errors.len();
    let path = cx
        .interp(&format!("{floc}.path"), raw.path)
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    if path.is_empty() {
        cx.error(format!("{floc}.path"), "missing: give the file to write");
    } else if path.ends_with('/')
        || path.ends_with("/.")
        || path.ends_with("/..")
        || path == "."
        || path == ".."
    {
        cx.error(
            format!("{floc}.path"),
            format!("{path:?} names a directory, not a file"),
        );
    }
    let key = cx
        .interp(&format!("{floc}.key"), raw.key)
        .map(|k| k.trim().to_string());
    if key.as_deref() == Some("") {
        cx.error(
            format!("{floc}.key"),
            "is empty: remove it or name a template key",
        );
    }
    let mode = match raw.mode {
        None => DEFAULT_FILE_MODE,
        Some(v) => match parse_mode(&v, cx.env) {
            Ok(m) => m,
            Err(msg) => {
                cx.error(format!("{floc}.mode"), msg);
                0
            }
        },
    };
    let owner = parse_id(cx, &format!("{floc}.owner"), raw.owner);
    let group = parse_id(cx, &format!("{floc}.group"), raw.group);
    let in_place = match cx
        .interp(&format!("{floc}.writeMode"), raw.write_mode)
        .map(|m| m.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("atomic") => false,
        Some("inplace") => true,
        Some(other) => {
            cx.error(
                format!("{floc}.writeMode"),
                format!("{other:?} is not a write mode: use atomic (the default: a new file renamed over the old) or inPlace (the existing file rewritten, for a file that is a mount point)"),
            );
            false
        }
    };
    let base64 = match cx
        .interp(&format!("{floc}.encoding"), raw.encoding)
        .map(|m| m.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "text") => false,
        Some("base64") => true,
        Some(other) => {
            cx.error(
                format!("{floc}.encoding"),
                format!("{other:?} is not an encoding: use base64 (the content is base64 and the file gets the decoded bytes) or leave it out"),
            );
            false
        }
    };
    if cx.errors.len() != errors_before {
        return (None, key);
    }
    (
        Some(FileSpec {
            path: PathBuf::from(path),
            source: String::new(),
            mode,
            owner,
            group,
            in_place,
            base64,
        }),
        key,
    )
}

fn yaml_scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// File modes are octal: `"0600"`, `"600"`, `"0o600"`; a YAML number is read
/// by its digits (`600` means 0o600), as people write it.
pub(crate) fn parse_mode(v: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<u32, String> {
    let s = match v {
        Value::String(s) => interpolate(s, env).map_err(|e| e.to_string())?.value,
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err("must be an octal string such as \"0600\"".into()),
    };
    let digits = s.trim();
    let digits = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
        .unwrap_or(digits);
    if digits.is_empty() || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!(
            "{s:?} is not an octal mode such as \"0600\" or \"0644\""
        ));
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| format!("{s:?} is too large"))?;
    if mode > 0o777 {
        return Err(format!(
            "{s:?} sets setuid/setgid/sticky bits, which a secret file never needs; use at most 0777"
        ));
    }
    Ok(mode)
}

fn parse_id(cx: &mut Ctx, loc: &str, v: Option<Value>) -> Option<u32> {
    let v = v?;
    let s = match yaml_scalar(&v) {
        Some(s) => cx.interp(loc, Some(s))?,
        None => {
            cx.error(loc, "must be a numeric id such as \"1000\"");
            return None;
        }
    };
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    match s.parse::<u32>() {
        Ok(id) => Some(id),
        Err(_) => {
            cx.error(
                loc,
                format!("{s:?} is not a numeric id: use the number (e.g. \"1000\"); the image has no user database"),
            );
            None
        }
    }
}

/// `path` with `.` removed and `name/..` pairs folded, without touching
/// the filesystem (so `out/../out/x` and `./out/x` compare equal to
/// `out/x`). A leading `..` of a relative path stays; `/..` is `/`.
pub(crate) fn lexical_normal(path: &std::path::Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}
