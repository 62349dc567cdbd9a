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
use std::sync::Arc;

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
        vault_stores: Vec::new(),
        templates: std::collections::HashMap::new(),
    };
    let sets: Vec<String> = raw.secret_store.credentials.keys().cloned().collect();
    let store = validate_store(&mut cx, "secretStore", raw.secret_store, Some(args), creds);
    let (aws_stores, named_vault) =
        super::sources::validate_named_stores(&mut cx, raw.secret_stores);
    let mut vault_stores = Vec::with_capacity(named_vault.len());
    for (name, raw_store) in named_vault {
        // Remembered valid or not: a secret of an invalid store gets the
        // store's errors, not "unknown store" on top.
        let store_sets = raw_store.credentials.keys().cloned().collect();
        cx.vault_stores.push((name.clone(), store_sets));
        let loc = format!("secretStores.{name}");
        if let Some(s) = validate_store(&mut cx, &loc, raw_store, None, creds) {
            vault_stores.push((name, s));
        }
    }

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
                vault_stores,
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

/// Validates a Vault store under `loc`: `secretStore`, whose fields the
/// flags and VAULT_* variables in `args` override, or a named one
/// (`secretStores.NAME`, `args` = `None`: only the file counts).
fn validate_store(
    cx: &mut Ctx,
    loc: &str,
    raw: RawStore,
    args: Option<&ConfigArgs>,
    creds: Credentials,
) -> Option<StoreConfig> {
    let errors_before = cx.errors.len();
    let f = |field: &str| format!("{loc}.{field}");
    // Where an error may also point at the variable (the default store).
    let or_var = |var: &str| {
        if args.is_some() {
            format!(" or {var}")
        } else {
            String::new()
        }
    };
    // Flag/environment values win over the file.
    let address = args
        .and_then(|a| a.vault_addr.clone())
        .or_else(|| cx.interp(&f("address"), raw.address))
        .unwrap_or_default();
    let address = address.trim().trim_end_matches('/').to_string();
    if address.is_empty() {
        match creds {
            Credentials::Required => cx.error(
                f("address"),
                format!("no Vault address: set {loc}.address{}", or_var("VAULT_ADDR")),
            ),
            Credentials::Optional if args.is_some() => cx.warnings.push(
                "secretStore.address is empty here; VAULT_ADDR must be set when secrets-sync runs"
                    .into(),
            ),
            Credentials::Optional => cx.error(
                f("address"),
                format!("no Vault address: set {loc}.address (the environment does not set a named store's)"),
            ),
        }
    } else if !(address.starts_with("http://") || address.starts_with("https://")) {
        cx.error(
            f("address"),
            format!("{address:?} must start with http:// or https://"),
        );
    }

    let overrides = match args {
        Some(a) => super::auth::Overrides {
            token: a.vault_token.as_ref(),
            role_id: a.vault_role_id.clone(),
            secret_id: a.vault_secret_id.as_ref(),
            env: true,
        },
        None => super::auth::Overrides::none(),
    };
    let auth = super::auth::validate_auth(
        cx,
        loc,
        super::auth::AuthFields {
            method: raw.auth_method,
            token: raw.token,
            role_id: raw.role_id,
            secret_id: raw.secret_id,
            auth_mount_path: raw.auth_mount_path,
            role: raw.role,
            token_path: raw.token_path,
        },
        overrides,
        creds,
    );

    let mut credentials = Vec::with_capacity(raw.credentials.len());
    for (name, set) in raw.credentials {
        let prefix = format!("{loc}.credentials.{name}");
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

    let kv_version = match cx.interp(&f("kvVersion"), raw.kv_version) {
        None => Some(KvVersion::V2),
        Some(v) => match kv_version(&v) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.error(f("kvVersion"), e);
                None
            }
        },
    };
    let mount_path = cx
        .interp(&f("mountPath"), raw.mount_path)
        .map(|m| m.trim().trim_matches('/').to_string())
        .unwrap_or_else(|| "secret".into());
    if mount_path.is_empty() {
        cx.error(
            f("mountPath"),
            "is empty: name the KV mount, e.g. \"secret\"",
        );
    }
    let namespace = args
        .and_then(|a| a.vault_namespace.clone())
        .or_else(|| cx.interp(&f("namespace"), raw.namespace))
        .map(|n| n.trim().trim_matches('/').to_string())
        .filter(|n| !n.is_empty());
    let path_field = |cx: &mut Ctx, arg: Option<&PathBuf>, loc: &str, v: Option<String>| {
        arg.cloned().or_else(|| {
            cx.interp(loc, v)
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .map(PathBuf::from)
        })
    };
    let ca_cert = either(
        cx,
        (&f("caCert"), raw.ca_cert),
        (&f("tlsCACert"), raw.tls_ca_cert),
    );
    let ca_cert = path_field(
        cx,
        args.and_then(|a| a.vault_cacert.as_ref()),
        &f("caCert"),
        ca_cert,
    );
    let ca_path = path_field(
        cx,
        args.and_then(|a| a.vault_capath.as_ref()),
        &f("tlsCAPath"),
        raw.tls_ca_path,
    );
    let cert = path_field(
        cx,
        args.and_then(|a| a.vault_client_cert.as_ref()),
        &f("tlsClientCert"),
        raw.tls_client_cert,
    );
    let key = path_field(
        cx,
        args.and_then(|a| a.vault_client_key.as_ref()),
        &f("tlsClientKey"),
        raw.tls_client_key,
    );
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some(ClientCert { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            cx.error(
                f("tlsClientKey"),
                format!(
                    "a client certificate needs its private key: set {loc}.tlsClientKey{}",
                    or_var("VAULT_CLIENT_KEY")
                ),
            );
            None
        }
        (None, Some(_)) => {
            cx.error(
                f("tlsClientCert"),
                format!(
                    "a client key needs its certificate: set {loc}.tlsClientCert{}",
                    or_var("VAULT_CLIENT_CERT")
                ),
            );
            None
        }
    };
    let tls_server_name = args
        .and_then(|a| a.vault_tls_server_name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let skip_verify = either(
        cx,
        (&f("skipVerify"), raw.skip_verify),
        (&f("tlsSkipVerify"), raw.tls_skip_verify),
    );
    let skip_verify = args
        .and_then(|a| a.vault_skip_verify)
        .or(skip_verify)
        .unwrap_or(false);
    let cert_auth = |a: &AuthConfig| matches!(a, AuthConfig::Cert { .. });
    if client_cert.is_none()
        && (auth.as_ref().is_some_and(cert_auth) || credentials.iter().any(|(_, a)| cert_auth(a)))
    {
        cx.error(
            f("tlsClientCert"),
            format!(
                "cert auth logs in with the TLS client certificate: set {loc}.tlsClientCert and tlsClientKey{}",
                if args.is_some() {
                    " (or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)"
                } else {
                    ""
                }
            ),
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
    let store = cx
        .interp(&format!("{loc}.store"), raw.store)
        .map(|s| s.trim().to_string());
    // The named Vault store it reads from, and that store's credential sets.
    let mut vault_store = None;
    let mut store_sets = sets;
    let aws_store = match store.as_deref() {
        None => None,
        Some(name) if cx.aws_stores.iter().any(|s| s == name) => Some(name),
        Some(name) => match cx.vault_stores.iter().position(|(n, _)| n == name) {
            Some(i) => {
                vault_store = Some(name.to_string());
                store_sets = &cx.vault_stores[i].1;
                None
            }
            None => {
                let mut known: Vec<&str> =
                    cx.vault_stores.iter().map(|(n, _)| n.as_str()).collect();
                known.extend(cx.aws_stores.iter().map(String::as_str));
                known.sort_unstable();
                let known = if known.is_empty() {
                    "there is no secretStores".to_string()
                } else {
                    format!("secretStores has: {}", known.join(", "))
                };
                cx.error(
                    format!("{loc}.store"),
                    format!(
                        "{name:?} is not a store ({known}; without `store:` a secret reads secretStore)"
                    ),
                );
                return None;
            }
        },
    };
    let store_sets: Vec<String> = store_sets.to_vec();
    let source = match aws_store {
        Some(store) => {
            let store = store.to_string();
            super::sources::validate_aws_source(
                cx,
                &loc,
                &store,
                raw_source,
                super::sources::AwsFields {
                    parameter: raw.parameter,
                    version: raw.version,
                    vault_only: [
                        ("namespace", raw.namespace.is_some()),
                        ("credentials", raw.credentials.is_some()),
                    ],
                },
            )
        }
        None => {
            for (field, given) in [
                ("parameter", raw.parameter.is_some()),
                ("version", raw.version.is_some()),
            ] {
                if given {
                    cx.error(
                        format!("{loc}.{field}"),
                        "applies to a secret of an AWS store: set `store:` to an AWS store of secretStores",
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
        if !store_sets.contains(c) {
            let sets_of = match &vault_store {
                None => "secretStore.credentials".to_string(),
                Some(s) => format!("secretStores.{s}.credentials"),
            };
            cx.error(
                format!("{loc}.credentials"),
                if store_sets.is_empty() {
                    format!("{c:?} is not a credential set: there is no {sets_of}; define it there or remove credentials")
                } else {
                    format!(
                        "{c:?} is not a credential set ({sets_of} has: {})",
                        store_sets.join(", ")
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
            let engine = match t.engine.as_deref() {
                None => crate::template::Engine::Auto,
                Some(name) => crate::template::Engine::parse(name).unwrap_or_else(|| {
                    cx.error(
                        format!("{loc}.template.engine"),
                        format!("{name:?} is not an engine: use go (Go's text/template), tera, or auto (each entry by its syntax)"),
                    );
                    crate::template::Engine::Auto
                }),
            };
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
                let host = template_host(cx, &loc, &t.env, &t.file_dirs);
                let key = (engine, host, entries);
                if let Some(known) = cx.templates.get(&key) {
                    Some(Arc::clone(known))
                } else {
                    match SecretTemplate::compile_with(key.2.clone(), engine, key.1.clone()) {
                        Ok(t) => {
                            let t = Arc::new(t);
                            cx.templates.insert(key, Arc::clone(&t));
                            Some(t)
                        }
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
    let sources = resolve_sources(cx, &loc, template.as_deref(), &files, &explicit, file_count);
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
        store: vault_store,
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
/// Words that mark an environment variable as a credential: a template's
/// `env` never reads one, whatever `template.env` lists.
const CREDENTIAL_WORDS: [&str; 9] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "PRIVATE",
    "KEY",
    "AUTH",
    "COOKIE",
];

/// Whether a template's `env` must never read `name`: a credential by its
/// name, or secrets-sync's, Vault's, AWS's or OpenTelemetry's own setting.
pub(crate) fn credential_like(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["VAULT_", "BAO_", "AWS_", "SECRETS_SYNC", "OTEL_"]
        .iter()
        .any(|p| upper.starts_with(p))
        || CREDENTIAL_WORDS.iter().any(|w| upper.contains(w))
}

/// `template.env` and `template.fileDirs` checked: variable names (never
/// a credential, nor secrets-sync's or Vault's own settings) with their
/// values read now, and absolute clean directories.
fn template_host(
    cx: &mut Ctx,
    loc: &str,
    env: &[String],
    dirs: &[String],
) -> crate::template::go::Host {
    let mut vars = std::collections::BTreeMap::new();
    for (i, name) in env.iter().enumerate() {
        let vloc = format!("{loc}.template.env[{i}]");
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            cx.error(
                &vloc,
                format!("{name:?} is not an environment variable name"),
            );
            continue;
        }
        if credential_like(name) {
            cx.error(
                &vloc,
                format!("{name} may hold a credential or secrets-sync's own setting: templates never read those; keep the value in Vault and read it as a secret field"),
            );
            continue;
        }
        vars.insert(name.clone(), (cx.env)(name).unwrap_or_default());
    }
    let mut file_dirs = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let p = std::path::Path::new(d);
        let clean = p.is_absolute()
            && p.components().all(|c| {
                !matches!(
                    c,
                    std::path::Component::ParentDir | std::path::Component::CurDir
                )
            });
        if !clean || p == std::path::Path::new("/") {
            cx.error(
                format!("{loc}.template.fileDirs[{i}]"),
                "must be an absolute directory other than / (no `.` or `..`)",
            );
            continue;
        }
        file_dirs.push(p.components().collect());
    }
    crate::template::go::Host::new(vars, file_dirs)
}

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
