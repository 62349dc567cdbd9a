//! The planning step: a config file and the settings become a [`Plan`].
//!
//! `check`, start-up and every reload go through [`load`]: the file is read,
//! interpolated and validated ([`crate::config`]), the store's TLS material
//! (CA file and directory, client certificate) is read and parsed and its namespace checked, and each secret
//! is resolved once into a [`Job`]: its name, its Vault API path and the
//! path shown in logs and metrics, its interval, its compiled template and
//! its write targets. Nothing after this step fails because of the config:
//! a reload that fails here is refused whole and the running plan stays.
//!
//! [`diff`] compares two plans' jobs by name and full definition.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::config::settings::ConfigArgs;
use crate::config::{
    self, ActionSpec, ConfigError, ConfigErrors, Credentials, KvVersion, PkiSpec, SecretSource,
    SecretSpec, StoreConfig,
};
use crate::fs::WriteTarget;
use crate::template::SecretTemplate;
use crate::vault::client::Namespace;
use crate::vault::kv::{display_path, encode_path, read_path};
use crate::vault::tls::{store_tls, StoreTls};
use crate::vault::SessionKey;

/// A config, resolved: what the supervisor applies.
pub struct Plan {
    /// `secretStore` and the named Vault stores.
    pub(crate) stores: Arc<VaultStores>,
    /// In config order.
    pub(crate) jobs: Vec<Arc<Job>>,
    /// Change actions, by name (sorted).
    pub(crate) actions: Vec<Arc<ActionSpec>>,
    /// Met while loading (unset variables, credentials left for run time).
    pub warnings: Vec<String>,
    /// The `templateFile`s read: the config watcher watches them too.
    pub(crate) template_files: Vec<PathBuf>,
    /// The AWS stores (`secretStores`), by name.
    pub(crate) aws_stores: Vec<crate::aws::AwsStore>,
}

impl Plan {
    pub fn secret_count(&self) -> usize {
        self.jobs.len()
    }

    pub fn action_count(&self) -> usize {
        self.actions.len()
    }

    pub fn file_count(&self) -> usize {
        self.jobs.iter().map(|j| j.files.len()).sum()
    }
}

/// Every Vault store of a plan: the VaultActor holds one set of sessions
/// (and one breaker) per store.
#[derive(PartialEq)]
pub(crate) struct VaultStores {
    /// `secretStore`: secrets without `store:`.
    pub(crate) default: Arc<StorePlan>,
    /// `secretStores` with `provider: vault`, by name (sorted).
    pub(crate) named: Vec<(Arc<str>, Arc<StorePlan>)>,
}

impl VaultStores {
    /// The stores whose plan differs in `new` (or that `new` adds or
    /// drops), by name (`None`: `secretStore`).
    pub(crate) fn changed(&self, new: &VaultStores) -> Vec<Option<Arc<str>>> {
        let mut out = Vec::new();
        if self.default != new.default {
            out.push(None);
        }
        for (name, plan) in &new.named {
            if self.get(Some(name)) != Some(plan) {
                out.push(Some(Arc::clone(name)));
            }
        }
        for (name, _) in &self.named {
            if new.get(Some(name)).is_none() {
                out.push(Some(Arc::clone(name)));
            }
        }
        out
    }

    /// The store a job's session key names (`None`: a store this plan does
    /// not have).
    pub(crate) fn get(&self, name: Option<&Arc<str>>) -> Option<&Arc<StorePlan>> {
        match name {
            None => Some(&self.default),
            Some(n) => self.named.iter().find(|(k, _)| k == n).map(|(_, s)| s),
        }
    }
}

/// How to reach Vault, with the TLS material already read.
pub(crate) struct StorePlan {
    pub(crate) config: StoreConfig,
    /// Built from the TLS files (read and parsed here) or the system roots;
    /// a file rotated under the same path makes the plan differ.
    pub(crate) tls: StoreTls,
    /// `X-Vault-Namespace`, checked to be a valid header value.
    pub(crate) namespace: Option<HeaderValue>,
}

impl StorePlan {
    /// What the Vault client needs to reach this store.
    pub(crate) fn endpoint(&self) -> crate::vault::client::Endpoint<'_> {
        crate::vault::client::Endpoint {
            address: &self.config.address,
            tls: &self.tls,
            namespace: self.namespace.as_ref(),
        }
    }
}

impl PartialEq for StorePlan {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config && self.tls == other.tls
    }
}

/// One secret, resolved: everything its SyncActor needs, computed once.
#[derive(Debug, PartialEq)]
pub(crate) struct Job {
    pub(crate) name: String,
    /// The request path, `/v1/secret/data/app`.
    pub(crate) api_path: String,
    /// The path in logs, metrics, audit and `/status`: `secret/data/app`.
    pub(crate) display_path: Arc<str>,
    /// How the secret is requested and its answer read.
    pub(crate) source: JobSource,
    /// KV secrets and dynamic answers without a lease.
    pub(crate) refresh_interval: Duration,
    /// Revoke the lease on graceful stop.
    pub(crate) revoke_on_shutdown: bool,
    /// Write the files as one set (`..data` symlink swap).
    pub(crate) atomic_set: bool,
    /// Where its requests go (`X-Vault-Namespace`).
    pub(crate) namespace: Namespace,
    /// The Vault store and credential set it reads with (`None`s: the
    /// default store, its default set).
    pub(crate) session: SessionKey,
    /// Shared by the jobs with the same `template.data` (one Tera engine
    /// each, compiled once by the config's validation).
    pub(crate) template: Option<Arc<SecretTemplate>>,
    pub(crate) files: Vec<JobFile>,
    /// Actions to trigger after a sync that changed a file (names that
    /// exist in the plan's `actions`); boxed slice: most secrets have none.
    pub(crate) on_change: Box<[Arc<str>]>,
}

/// How a job's secret is requested, and what its answer looks like.
#[derive(Debug, PartialEq)]
pub(crate) enum JobSource {
    /// A KV read (GET), decoded as the version says.
    Kv(KvVersion),
    /// Any API path; the fields are the answer's `data`, and a `lease_id`
    /// in it makes a leased secret.
    Dynamic {
        method: http::Method,
        body: Option<serde_json::Value>,
    },
    /// A certificate issued by a PKI role (POST); boxed, it is rare.
    Pki(Box<PkiJob>),
    /// A secret or parameter of the AWS store `store`.
    Aws {
        store: String,
        read: crate::aws::AwsRead,
    },
}

/// A PKI job: the request body (computed once) and what the certificate
/// must say to be kept at start.
#[derive(Debug, PartialEq)]
pub(crate) struct PkiJob {
    pub(crate) body: serde_json::Value,
    pub(crate) spec: PkiSpec,
}

impl PkiJob {
    fn new(spec: PkiSpec) -> Self {
        let mut body = serde_json::Map::new();
        body.insert("common_name".into(), spec.common_name.clone().into());
        if !spec.alt_names.is_empty() {
            body.insert("alt_names".into(), spec.alt_names.join(",").into());
        }
        if !spec.ip_sans.is_empty() {
            let ips: Vec<String> = spec.ip_sans.iter().map(ToString::to_string).collect();
            body.insert("ip_sans".into(), ips.join(",").into());
        }
        if let Some(ttl) = spec.ttl {
            body.insert("ttl".into(), format!("{}s", ttl.as_secs()).into());
        }
        Self {
            body: serde_json::Value::Object(body),
            spec,
        }
    }
}

/// One file of a job: where its content comes from, where it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobFile {
    /// The template key (with a template) or the secret field (without).
    pub(crate) source: String,
    /// The content is base64: the file gets the decoded bytes.
    pub(crate) base64: bool,
    pub(crate) target: WriteTarget,
}

/// The method of every KV read and CA read.
static GET: http::Method = http::Method::GET;
/// The method of a certificate issue.
static POST: http::Method = http::Method::POST;

impl Job {
    /// The read the Vault session makes for this secret (its own input
    /// type, borrowed from the job).
    /// `None` for a secret of another source.
    pub(crate) fn request(&self) -> Option<crate::vault::Request<'_>> {
        use crate::vault::Decode;
        let (method, body, decode) = match &self.source {
            JobSource::Kv(kv) => (&GET, None, Decode::Kv(*kv)),
            JobSource::Dynamic { method, body } => (method, body.as_ref(), Decode::Leased),
            JobSource::Pki(p) => (&POST, Some(&p.body), Decode::Issued),
            JobSource::Aws { .. } => return None,
        };
        Some(crate::vault::Request {
            method,
            api_path: &self.api_path,
            body,
            namespace: &self.namespace,
            decode,
            display_path: &self.display_path,
            session: &self.session,
        })
    }

    /// Renders the secret's files from `data` (see
    /// [`crate::template::render_files`]), in the job's file order. Renders
    /// over secret values: call it off the actor thread.
    pub(crate) fn render(
        &self,
        data: &crate::secret::SecretData,
    ) -> Result<Vec<crate::fs::FileWrite>, crate::template::RenderError> {
        crate::template::render_files(
            self.template.as_deref(),
            self.files.iter().map(|f| crate::template::RenderFile {
                source: &f.source,
                base64: f.base64,
                target: &f.target,
            }),
            data,
        )
    }
}

/// Reads the file named by `args` and plans it (environment from the process).
pub fn load(args: &ConfigArgs, creds: Credentials) -> Result<Plan, ConfigErrors> {
    let loaded = config::load(args, creds)?;
    resolve(loaded, &args.config_file)
}

/// [`load`] on text already read.
pub(crate) fn load_str(
    text: &str,
    args: &ConfigArgs,
    creds: Credentials,
) -> Result<Plan, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let loaded = config::load_str(text, &args.config_file, args, &env, creds)?;
    resolve(loaded, &args.config_file)
}

fn resolve(loaded: config::Loaded, file: &std::path::Path) -> Result<Plan, ConfigErrors> {
    let config::Loaded { config, warnings } = loaded;
    let fail = |errors| ConfigErrors {
        file: file.to_path_buf(),
        errors,
    };
    let mut errors = Vec::new();
    let default = plan_store(config.store, None).map_err(|e| fail(vec![e]))?;
    let mut named = Vec::with_capacity(config.vault_stores.len());
    for (name, store) in config.vault_stores {
        match plan_store(store, Some(&name)) {
            Ok(s) => named.push((Arc::from(name), Arc::new(s))),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    let stores = VaultStores {
        default: Arc::new(default),
        named,
    };
    let mut jobs = Vec::with_capacity(config.secrets.len());
    for (i, s) in config.secrets.into_iter().enumerate() {
        match plan_job(i, s, &stores) {
            Ok(j) => jobs.push(Arc::new(j)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(Plan {
        stores: Arc::new(stores),
        jobs,
        actions: config.actions.into_iter().map(Arc::new).collect(),
        warnings,
        template_files: config.template_files,
        aws_stores: config.aws_stores,
    })
}

/// Plans `secretStore` (`name` = `None`) or the named Vault store `name`:
/// its namespace header, its TLS material read and parsed. A named store's
/// errors point at `secretStores.NAME`, which no variable overrides.
fn plan_store(config: StoreConfig, name: Option<&str>) -> Result<StorePlan, ConfigError> {
    let loc = name.map_or_else(
        || "secretStore".to_string(),
        |n| format!("secretStores.{n}"),
    );
    let namespace = match &config.namespace {
        Some(ns) => Some(namespace_header(
            ns,
            &format!("{loc}.namespace"),
            &if name.is_some() {
                format!("; fix {loc}.namespace")
            } else {
                "; fix secretStore.namespace or VAULT_NAMESPACE".to_string()
            },
        )?),
        None => None,
    };
    let tls = store_tls(crate::vault::tls::TlsSettings {
        address: &config.address,
        ca_cert: config.ca_cert.as_deref(),
        ca_path: config.ca_path.as_deref(),
        client_cert: config.client_cert.as_ref(),
        tls_server_name: config.tls_server_name.as_deref(),
        skip_verify: config.skip_verify,
    })
    .map_err(|e| match name {
        None => ConfigError {
            location: e.location().into(),
            message: e.to_string(),
        },
        Some(_) => ConfigError {
            location: e.location().replacen("secretStore", &loc, 1),
            message: for_named_store(&e.to_string(), &loc),
        },
    })?;
    Ok(StorePlan {
        config,
        tls,
        namespace,
    })
}

/// A TLS error's text written for `secretStore` (`set secretStore.caCert
/// or VAULT_CACERT`), rewritten for the named store at `loc`: its own
/// fields, no variable (none overrides a named store).
fn for_named_store(msg: &str, loc: &str) -> String {
    let mut out = msg.replace("secretStore.", &format!("{loc}."));
    while let Some(i) = out.find(" or VAULT_") {
        let rest = &out[i + " or ".len()..];
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(rest.len());
        out.replace_range(i..i + " or ".len() + len, "");
    }
    out
}

/// The namespace of secret `index`: the store's, the root (`""`), or a
/// named one that must be a valid header value.
fn plan_namespace(index: usize, name: &str, ns: Option<String>) -> Result<Namespace, ConfigError> {
    match ns {
        None => Ok(Namespace::Store),
        Some(n) if n.is_empty() => Ok(Namespace::Root),
        Some(n) => namespace_header(&n, &format!("secrets[{index}] {name:?}.namespace"), "")
            .map(Namespace::Named),
    }
}

/// A namespace as the `X-Vault-Namespace` header; the error names
/// `location` and ends with `hint`.
fn namespace_header(ns: &str, location: &str, hint: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(ns).map_err(|_| ConfigError {
        location: location.into(),
        message: format!(
            "{ns:?} cannot be sent as the X-Vault-Namespace header (control or non-ASCII characters){hint}"
        ),
    })
}

fn plan_job(index: usize, spec: SecretSpec, stores: &VaultStores) -> Result<Job, ConfigError> {
    let SecretSpec {
        name,
        source,
        refresh_interval,
        revoke_on_shutdown,
        atomic_set,
        namespace,
        credentials,
        store,
        template,
        files,
        on_change,
    } = spec;
    let namespace = plan_namespace(index, &name, namespace)?;
    let session = SessionKey {
        store: store.map(Arc::from),
        credentials: credentials.map(Arc::from),
    };
    // Validation checked that a named store exists, and every store was
    // planned before any job.
    let Some(store) = stores.get(session.store.as_ref()) else {
        return Err(ConfigError {
            location: format!("secrets[{index}] {name:?}.store"),
            message: "internal: the store was not planned".into(),
        });
    };
    let store = &store.config;
    let (api_path, display, source) = match source {
        SecretSource::Kv {
            path,
            mount,
            kv_version,
        } => {
            let kv = kv_version.unwrap_or(store.kv_version);
            let mount = mount.as_deref().unwrap_or(&store.mount_path);
            (
                read_path(kv, mount, &path),
                display_path(kv, mount, &path),
                JobSource::Kv(kv),
            )
        }
        SecretSource::Dynamic {
            path,
            method,
            parameters,
        } => (
            format!("/v1/{}", encode_path(&path)),
            path,
            JobSource::Dynamic {
                method,
                body: parameters,
            },
        ),
        SecretSource::Pki(pki) => (
            format!("/v1/{}", encode_path(&pki.path)),
            pki.path.clone(),
            JobSource::Pki(Box::new(PkiJob::new(pki))),
        ),
        SecretSource::Aws { store, read } => (
            String::new(),
            read.display(),
            JobSource::Aws { store, read },
        ),
    };
    Ok(Job {
        api_path,
        namespace,
        session,
        display_path: display.into(),
        name,
        source,
        refresh_interval,
        revoke_on_shutdown,
        atomic_set,
        template,
        on_change: on_change.into_iter().map(Arc::from).collect(),
        files: {
            let mut files: Vec<JobFile> = files
                .into_iter()
                .map(|f| JobFile {
                    source: f.source,
                    base64: f.base64,
                    target: WriteTarget {
                        path: f.path,
                        mode: f.mode,
                        owner: f.owner,
                        group: f.group,
                        in_place: f.in_place,
                    },
                })
                .collect();
            // Collected in place, it would keep the spare capacity of the
            // config's vector for the whole run (x 10 000 secrets).
            files.shrink_to_fit();
            files
        },
    })
}

/// The directories a plan writes into (for the temp-file sweep).
pub(crate) fn directories(jobs: &[Arc<Job>]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in jobs.iter().flat_map(|j| &j.files) {
        let p = crate::fs::parent_of(&f.target.path);
        if !dirs.contains(&p) {
            dirs.push(p);
        }
    }
    dirs
}

/// Secrets grouped by what applying a new plan does to them (names, in
/// new-plan order where they exist there).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
    pub(crate) changed: Vec<String>,
    pub(crate) unchanged: Vec<String>,
}

/// Compares jobs by name and full definition (paths as Vault sees them,
/// interval, template sources, targets).
pub(crate) fn diff(old: &[Arc<Job>], new: &[Arc<Job>]) -> Diff {
    let mut d = Diff::default();
    let old_by_name: HashMap<&str, &Job> = old.iter().map(|o| (o.name.as_str(), &**o)).collect();
    let new_names: HashSet<&str> = new.iter().map(|n| n.name.as_str()).collect();
    for n in new {
        match old_by_name.get(n.name.as_str()) {
            None => d.added.push(n.name.clone()),
            Some(o) if **o == **n => d.unchanged.push(n.name.clone()),
            Some(_) => d.changed.push(n.name.clone()),
        }
    }
    for o in old {
        if !new_names.contains(o.name.as_str()) {
            d.removed.push(o.name.clone());
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: ConfigArgs,
    }

    fn plan(yaml: &str) -> Result<Plan, ConfigErrors> {
        let args = T::parse_from(["t", "--config", "t.yaml"]).args;
        load_str(yaml, &args, Credentials::Required)
    }

    fn yaml(store: &str, secrets: &[(&str, &str, &str)]) -> String {
        let mut y = format!("secretStore: {{address: \"http://v\", token: t{store}}}\nsecrets:\n");
        for (name, path, interval) in secrets {
            y.push_str(&format!(
                "  - {{name: {name}, path: {path}, refreshInterval: {interval}, files: [{{path: /s/{name}, key: v}}]}}\n"
            ));
        }
        y
    }

    #[test]
    fn each_job_has_its_paths_computed_once() {
        let p = plan(&yaml(", mountPath: kv", &[("db", "app/db", "30s")])).unwrap();
        let j = &p.jobs[0];
        assert_eq!(j.api_path, "/v1/kv/data/app/db");
        assert_eq!(&*j.display_path, "kv/data/app/db");
        assert_eq!(j.files[0].target.path, PathBuf::from("/s/db"));
        assert_eq!(j.files[0].source, "v");
        assert_eq!((p.secret_count(), p.file_count()), (1, 1));
    }

    #[test]
    fn a_missing_ca_file_fails_the_plan_and_names_it() {
        let e = plan(&yaml(", caCert: /nonexistent/ca.pem", &[("a", "p", "30s")]))
            .err()
            .expect("a missing CA file must fail the plan");
        let text = e.to_string();
        assert!(
            text.contains("secretStore.caCert") && text.contains("/nonexistent/ca.pem"),
            "{text}"
        );
    }

    #[test]
    fn an_unusable_namespace_fails_the_plan() {
        let e = plan(&yaml(", namespace: \"a\\u0001b\"", &[("a", "p", "30s")]))
            .err()
            .expect("a namespace with control characters must fail the plan");
        assert!(e.to_string().contains("secretStore.namespace"), "{e}");
    }

    #[test]
    fn diff_classifies_every_secret_by_its_resolved_job() {
        let old = plan(&yaml(
            "",
            &[
                ("a", "p/a", "30s"),
                ("b", "p/b", "30s"),
                ("c", "p/c", "30s"),
            ],
        ))
        .unwrap();
        let new = plan(&yaml(
            "",
            &[
                ("a", "p/a", "30s"),
                ("b", "p/b", "60s"),
                ("d", "p/d", "30s"),
            ],
        ))
        .unwrap();
        let d = diff(&old.jobs, &new.jobs);
        assert_eq!(d.unchanged, ["a"]);
        assert_eq!(d.changed, ["b"]);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["c"]);
        // The same secret under another mount is another job.
        let moved = plan(&yaml(", mountPath: kv", &[("a", "p/a", "30s")])).unwrap();
        assert_eq!(diff(&old.jobs[..1], &moved.jobs).changed, ["a"]);
    }

    #[test]
    fn per_secret_mount_version_and_namespace_resolve_once() {
        let p = plan(
            "secretStore: {address: \"http://v\", token: t, namespace: team}
secrets:
  - {name: a, key: app/a, mountPath: kv, kvVersion: v1, files: [{path: /s/a, key: v}]}
  - {name: b, path: app/b, namespace: \"\", files: [{path: /s/b, key: v}]}
  - {name: c, path: app/c, namespace: other, files: [{path: /s/c, key: v}]}
",
        )
        .unwrap();
        assert_eq!(p.jobs[0].api_path, "/v1/kv/app/a");
        assert_eq!(&*p.jobs[0].display_path, "kv/app/a");
        assert_eq!(p.jobs[0].namespace, Namespace::Store);
        assert_eq!(p.jobs[1].api_path, "/v1/secret/data/app/b");
        assert_eq!(p.jobs[1].namespace, Namespace::Root);
        assert_eq!(
            p.jobs[2].namespace,
            Namespace::Named(HeaderValue::from_static("other"))
        );
        let e = plan("secretStore: {address: \"http://v\", token: t}\nsecrets:\n  - {name: d, path: x, namespace: \"a\\u0001\", files: [{path: /s/d, key: v}]}\n")
            .err()
            .expect("a namespace with control characters must fail the plan");
        assert!(e.to_string().contains("secrets[0] \"d\".namespace"), "{e}");
    }

    const TWO_STORES: &str = "secretStore: {address: \"http://a\", token: t}
secretStores:
  b: {provider: vault, address: \"http://b\", token: u, mountPath: kv, kvVersion: v1, credentials: {ops: {token: o}}}
secrets:
  - {name: one, path: app, files: [{path: /s/one, key: v}]}
  - {name: two, store: b, path: app, credentials: ops, files: [{path: /s/two, key: v}]}
";

    #[test]
    fn a_secret_of_a_named_vault_store_takes_its_mount_and_session() {
        let p = plan(TWO_STORES).unwrap();
        assert_eq!(p.jobs[0].api_path, "/v1/secret/data/app");
        assert_eq!(p.jobs[0].session, SessionKey::default());
        // Store b's own mount and KV version, its credential set.
        assert_eq!(p.jobs[1].api_path, "/v1/kv/app");
        assert_eq!(&*p.jobs[1].display_path, "kv/app");
        assert_eq!(p.jobs[1].session.store.as_deref(), Some("b"));
        assert_eq!(p.jobs[1].session.credentials.as_deref(), Some("ops"));
        let b = p.stores.get(p.jobs[1].session.store.as_ref()).unwrap();
        assert_eq!(b.config.address, "http://b");
        // The request carries the key, so a lease it gets routes back.
        let req = p.jobs[1].request().unwrap();
        assert_eq!(req.session, &p.jobs[1].session);
    }

    #[test]
    fn changed_names_only_the_stores_a_reload_touched() {
        let old = plan(TWO_STORES).unwrap();
        let same = plan(TWO_STORES).unwrap();
        assert!(old.stores.changed(&same.stores).is_empty());
        let b_moved = plan(&TWO_STORES.replace("http://b", "http://b2")).unwrap();
        assert_eq!(old.stores.changed(&b_moved.stores), [Some(Arc::from("b"))]);
        let a_moved = plan(&TWO_STORES.replace("http://a", "http://a2")).unwrap();
        assert_eq!(old.stores.changed(&a_moved.stores), [None]);
        // Store b dropped (with its secret), store c added.
        let other = plan(
            &TWO_STORES
                .replace("  b: {", "  c: {")
                .replace("store: b", "store: c"),
        )
        .unwrap();
        let mut changed = old.stores.changed(&other.stores);
        changed.sort();
        assert_eq!(changed, [Some(Arc::from("b")), Some(Arc::from("c"))]);
    }

    #[test]
    fn a_named_store_tls_error_names_its_own_field_and_no_variable() {
        let e = plan(&TWO_STORES.replace(
            "mountPath: kv,",
            "caCert: /nonexistent/ca.pem, mountPath: kv,",
        ))
        .err()
        .expect("a missing CA file of store b must fail the plan");
        let text = e.to_string();
        assert!(text.contains("secretStores.b.caCert"), "{text}");
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(!text.contains("VAULT_CACERT"), "{text}");
        assert!(!text.contains("secretStore.caCert"), "{text}");
    }

    #[test]
    fn for_named_store_drops_every_variable_hint() {
        assert_eq!(
            for_named_store(
                "x (set secretStore.caCert or VAULT_CACERT to a file)",
                "secretStores.b"
            ),
            "x (set secretStores.b.caCert to a file)"
        );
        assert_eq!(for_named_store("no hint", "secretStores.b"), "no hint");
    }
}
