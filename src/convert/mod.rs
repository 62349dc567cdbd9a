//! `secrets-sync convert`: another tool's description of which secrets go
//! to which files, rewritten as a secrets-sync config.
//!
//! Reads External Secrets Operator resources ([`eso`]: `ExternalSecret`
//! v1beta1/v1 and the Vault `SecretStore` they name), Vault Agent injector
//! annotations on a Pod or workload ([`injector`]) and a Vault Agent HCL
//! config's `template` stanzas ([`agent`]); their Go templates go through
//! [`gotmpl`]. Each reader fills one [`Draft`]: the store, the secrets
//! (one per Vault path, with a template entry and a file per target) and
//! the actions, plus every construct it could not carry over and why.
//! [`Draft::to_yaml`] prints the config. Pure: no file but the input (and
//! an Agent template's `source`) is read, and nothing is written.

mod agent;
mod eso;
mod gotmpl;
mod injector;

use serde_yaml::{Mapping, Value};

/// The flags of `convert` (the Go tool's names).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where the generated config writes its files (`--output-dir`);
    /// `None`: where the source put them (ESO: `/secrets`).
    pub output_dir: Option<String>,
    /// KV mount (`--mount-path`); `None`: the source's, else `secret`.
    pub mount_path: Option<String>,
    /// KV version, `v1` or `v2` (`--kv-version`); `None`: the source's,
    /// else `v2`.
    pub kv_version: Option<String>,
}

/// One input: its name for messages, its text, and its directory (an
/// Agent template's relative `source` is read from it).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub text: String,
    pub dir: std::path::PathBuf,
}

/// The result: the config, what did not convert, and notes.
#[derive(Debug, Default)]
pub struct Conversion {
    /// The config (YAML), printed even when some constructs did not convert.
    pub config: String,
    /// Constructs that could not be converted, each naming where it is and
    /// why; not empty means exit 1.
    pub problems: Vec<String>,
    /// What the user should know (an environment variable to set, ...).
    pub notes: Vec<String>,
}

/// Largest input `convert` reads (a manifest of thousands of resources is
/// far smaller).
const INPUT_MAX: u64 = 8 * 1024 * 1024;

/// An input file: a regular file (a FIFO or a device such as `/dev/zero`
/// is refused, not read: opened without blocking, checked on the fd), at
/// most 8 MiB of UTF-8.
pub fn read_input_file(p: &std::path::Path) -> std::io::Result<String> {
    let f = crate::fs::read::open_regular(p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            std::io::Error::other("not a regular file (give a file, or - for standard input)")
        } else {
            e
        }
    })?;
    read_bounded(f, "the file")
}

/// Reads at most 8 MiB of UTF-8 from `r` (`what` names it); more is an
/// error.
pub fn read_bounded(r: impl std::io::Read, what: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut s = String::new();
    r.take(INPUT_MAX + 1).read_to_string(&mut s)?;
    if s.len() as u64 > INPUT_MAX {
        return Err(std::io::Error::other(format!(
            "{what} is larger than {INPUT_MAX} bytes"
        )));
    }
    Ok(s)
}

/// Converts `inputs` (YAML or HCL each) into one config.
pub fn convert(inputs: &[Input], opts: &Options) -> Conversion {
    let mut draft = Draft::new(opts);
    for input in inputs {
        draft.base_dir = input.dir.clone();
        read_input(&mut draft, &input.name, &input.text);
    }
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    Conversion {
        config: draft.to_yaml(&names.join(", ")),
        problems: draft.problems,
        notes: draft.notes,
    }
}

fn read_input(draft: &mut Draft, name: &str, input: &str) {
    match detect(input) {
        Kind::Yaml(docs) => {
            let eso_count = docs.iter().filter(|d| eso::is_external_secret(d)).count();
            for d in &docs {
                eso::read_store(draft, d);
            }
            let mut used = false;
            for (i, d) in docs.iter().enumerate() {
                let loc = format!("{name}: document {}", i + 1);
                if eso::is_external_secret(d) {
                    eso::read(draft, &loc, d, eso_count > 1);
                    used = true;
                } else if injector::read(draft, &loc, d) {
                    used = true;
                } else if !eso::is_store(d) && !d.is_null() {
                    let kind = d.get("kind").and_then(Value::as_str).unwrap_or("?");
                    draft.problems.push(format!(
                        "{loc}: a {kind} is neither an ExternalSecret nor a workload with vault.hashicorp.com annotations; skipped"
                    ));
                }
            }
            if !used {
                draft.problems.push(format!(
                    "{name}: found no ExternalSecret and no vault.hashicorp.com/agent-inject-secret-* annotation"
                ));
            }
        }
        Kind::Hcl(body) => agent::read(draft, name, &body),
        Kind::Neither(why) => draft.problems.push(format!("{name}: {why}")),
    }
}

enum Kind {
    Yaml(Vec<Value>),
    Hcl(hcl::Value),
    Neither(String),
}

/// YAML (one or more documents, a `kind: List` flattened) or Agent HCL.
fn detect(input: &str) -> Kind {
    use serde::Deserialize;
    let yaml: Result<Vec<Value>, _> = serde_yaml::Deserializer::from_str(input)
        .map(Value::deserialize)
        .collect();
    match yaml {
        Ok(docs) if docs.iter().any(Value::is_mapping) => {
            let mut flat = Vec::new();
            for d in docs {
                match d.get("items").and_then(Value::as_sequence) {
                    Some(items) if d.get("kind").and_then(Value::as_str) == Some("List") => {
                        flat.extend(items.iter().cloned());
                    }
                    _ => flat.push(d),
                }
            }
            Kind::Yaml(flat)
        }
        yaml_result => match hcl::from_str::<hcl::Value>(input) {
            Ok(v) if v.as_object().is_some_and(|o| !o.is_empty()) => Kind::Hcl(v),
            Ok(_) => Kind::Neither("the input is empty".into()),
            Err(hcl_err) => Kind::Neither(match yaml_result {
                Err(e) => format!("neither YAML ({e}) nor Vault Agent HCL ({hcl_err})"),
                Ok(_) => format!("not a YAML mapping, and not Vault Agent HCL ({hcl_err})"),
            }),
        },
    }
}

/// Where a secret is read.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    Kv {
        mount: String,
        path: String,
        v2: bool,
    },
    Dynamic {
        path: String,
        /// POST parameters (`with secret "PATH" "k=v"`).
        params: Vec<(String, String)>,
    },
    Pki {
        path: String,
        common_name: String,
        alt_names: Vec<String>,
        ip_sans: Vec<String>,
        ttl: Option<String>,
    },
    /// A secret of an AWS store (`secretStores`): Secrets Manager (`path`)
    /// or SSM (`parameter`).
    Aws {
        store: String,
        ssm: bool,
        key: String,
        version: Option<String>,
    },
}

/// An AWS provider of a SecretStore.
#[derive(Debug, Clone)]
pub(super) struct AwsStoreDraft {
    pub(super) region: Option<String>,
    /// ParameterStore (else SecretsManager).
    pub(super) ssm: bool,
}

/// One file of a secret.
#[derive(Debug, Clone)]
struct File {
    path: String,
    /// The template entry or secret field it takes.
    key: String,
    mode: Option<String>,
    base64: bool,
}

/// One secret of the generated config.
#[derive(Debug)]
struct Secret {
    name: String,
    source: Source,
    refresh: Option<String>,
    /// (key, template) in order; empty: the files take fields.
    templates: Vec<(String, String)>,
    files: Vec<File>,
    on_change: Vec<String>,
}

/// The auth of the generated store.
#[derive(Debug, Default, Clone)]
struct Store {
    address: Option<String>,
    namespace: Option<String>,
    auth: Vec<(&'static str, String)>,
    ca_cert: Option<String>,
    skip_verify: Option<bool>,
    mount_path: Option<String>,
    kv_version: Option<String>,
}

/// A config being built.
pub(crate) struct Draft {
    opts: Options,
    /// The directory of the input being read.
    base_dir: std::path::PathBuf,
    store: Store,
    /// AWS providers of SecretStores, by the SecretStore's name.
    aws_stores: std::collections::BTreeMap<String, AwsStoreDraft>,
    secrets: Vec<Secret>,
    /// (name, argv) of `exec` actions.
    actions: Vec<(String, Vec<String>)>,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Draft {
    fn new(opts: &Options) -> Self {
        Draft {
            opts: opts.clone(),
            base_dir: std::path::PathBuf::new(),
            store: Store::default(),
            aws_stores: std::collections::BTreeMap::new(),
            secrets: Vec::new(),
            actions: Vec::new(),
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The KV mount: the flag, else what the source said, else `secret`.
    fn mount(&self) -> String {
        self.opts
            .mount_path
            .clone()
            .or_else(|| self.store.mount_path.clone())
            .unwrap_or_else(|| "secret".into())
            .trim_matches('/')
            .to_string()
    }

    /// KV v2 unless the flag or the source says v1.
    fn kv2(&self) -> bool {
        let v = self
            .opts
            .kv_version
            .clone()
            .or_else(|| self.store.kv_version.clone())
            .unwrap_or_default();
        !matches!(v.trim().trim_start_matches(['v', 'V']), "1")
    }

    /// `dir/name` with `dir` the `--output-dir` when given, else `default`.
    fn file_path(&self, default_dir: &str, name: &str) -> String {
        join(self.opts.output_dir.as_deref().unwrap_or(default_dir), name)
    }

    /// Adds a file with its template (or field) to the secret reading
    /// `source`, creating it (named `name`) if no secret reads it yet.
    fn add(
        &mut self,
        name: &str,
        source: Source,
        entry: Entry,
        file: File,
        refresh: Option<String>,
    ) {
        let idx = match self.secrets.iter().position(|s| s.source == source) {
            Some(i) => i,
            None => {
                let name = unique(name, |n| self.secrets.iter().any(|s| s.name == n));
                self.secrets.push(Secret {
                    name,
                    source,
                    refresh: None,
                    templates: Vec::new(),
                    files: Vec::new(),
                    on_change: Vec::new(),
                });
                self.secrets.len() - 1
            }
        };
        let s = &mut self.secrets[idx];
        if s.refresh.is_none() {
            s.refresh = refresh;
        }
        let mut file = file;
        if let Entry::Template(text) = entry {
            let key = unique(&file.key, |k| s.templates.iter().any(|(t, _)| t == k));
            s.templates.push((key.clone(), text));
            file.key = key;
        }
        s.files.push(file);
    }

    /// An `exec` action running `command` after the files of the secret
    /// reading `secret_source` changed.
    fn command_action(&mut self, name: &str, command: Command, secret_source: &Source) {
        let action = unique(name, |a| self.actions.iter().any(|(n, _)| n == a));
        let argv = match command {
            Command::Argv(argv) => argv,
            Command::Shell(line) => {
                self.notes.push(format!(
                    "the command of {name} runs as the action {action:?} through `sh -c`: the image secrets-sync runs in needs a shell"
                ));
                vec!["sh".into(), "-c".into(), line]
            }
        };
        self.actions.push((action.clone(), argv));
        if let Some(s) = self.secrets.iter_mut().find(|s| s.source == *secret_source) {
            if !s.on_change.contains(&action) {
                s.on_change.push(action);
            }
        }
    }

    /// The one secret a template reads; none or several is reported
    /// (`what` names the template).
    fn one_call(&mut self, what: &str, calls: &[gotmpl::SecretCall]) -> Option<gotmpl::SecretCall> {
        match calls {
            [one] => Some(one.clone()),
            [] => {
                self.problems.push(format!("{what} reads no secret"));
                None
            }
            many => {
                self.problems.push(format!(
                    "{what} reads {} secrets; a secrets-sync template reads one: split it",
                    many.len()
                ));
                None
            }
        }
    }

    /// The source of an Agent-style secret read (`with secret`), from its
    /// path and arguments.
    fn agent_source(
        &mut self,
        loc: &str,
        call: &gotmpl::SecretCall,
        kv2_fields: bool,
    ) -> Option<Source> {
        let segs: Vec<&str> = call.path.split('/').collect();
        if !call.params.is_empty() {
            if segs.len() == 3 && segs[1] == "issue" {
                let mut pki = Source::Pki {
                    path: call.path.clone(),
                    common_name: String::new(),
                    alt_names: Vec::new(),
                    ip_sans: Vec::new(),
                    ttl: None,
                };
                if let Source::Pki {
                    common_name,
                    alt_names,
                    ip_sans,
                    ttl,
                    ..
                } = &mut pki
                {
                    for (k, v) in &call.params {
                        let list = || {
                            v.split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect()
                        };
                        match k.as_str() {
                            "common_name" => *common_name = v.clone(),
                            "alt_names" => *alt_names = list(),
                            "ip_sans" => *ip_sans = list(),
                            "ttl" => *ttl = Some(v.clone()),
                            other => self.problems.push(format!(
                                "{loc}: the PKI parameter {other:?} has no pki: field (commonName, altNames, ipSans, ttl); left out"
                            )),
                        }
                    }
                    if common_name.is_empty() {
                        self.problems.push(format!(
                            "{loc}: {:?} issues a certificate without common_name; pki: needs one",
                            call.path
                        ));
                        return None;
                    }
                }
                return Some(pki);
            }
            return Some(Source::Dynamic {
                path: call.path.clone(),
                params: call.params.clone(),
            });
        }
        if kv2_fields {
            if segs.len() >= 3 && segs[1] == "data" {
                return Some(Source::Kv {
                    mount: segs[0].to_string(),
                    path: segs[2..].join("/"),
                    v2: true,
                });
            }
            self.problems.push(format!(
                "{loc}: .Data.data is read from {:?}, which is not a KV v2 path (MOUNT/data/PATH)",
                call.path
            ));
            return None;
        }
        let mount = self.mount();
        if segs.len() >= 2 && segs[0] == mount && !self.kv2() {
            return Some(Source::Kv {
                mount,
                path: segs[1..].join("/"),
                v2: false,
            });
        }
        Some(Source::Dynamic {
            path: call.path.clone(),
            params: Vec::new(),
        })
    }

    /// The config as YAML, headed by the schema line and where it came from.
    fn to_yaml(&self, input_name: &str) -> String {
        use crate::config::raw::{RawAction, RawConfig, RawNamedStore};
        let mount = self.mount();
        let kv2 = self.kv2();
        let used: std::collections::BTreeSet<&str> = self
            .secrets
            .iter()
            .filter_map(|s| match &s.source {
                Source::Aws { store, .. } => Some(store.as_str()),
                _ => None,
            })
            .collect();
        let config = RawConfig {
            secret_store: self.raw_store(),
            secret_stores: used
                .into_iter()
                .map(|name| {
                    let store = RawNamedStore {
                        provider: Some("aws".into()),
                        region: self.aws_stores.get(name).and_then(|a| a.region.clone()),
                        ..RawNamedStore::default()
                    };
                    (name.to_string(), store)
                })
                .collect(),
            secrets: self
                .secrets
                .iter()
                .map(|s| raw_secret(s, &mount, kv2))
                .collect(),
            actions: self
                .actions
                .iter()
                .map(|(name, argv)| {
                    let action = RawAction {
                        exec: Some(argv.clone()),
                        ..RawAction::default()
                    };
                    (name.clone(), action)
                })
                .collect(),
        };
        // The config's own types, serialised; what is unset is left out.
        let mut root = serde_yaml::to_value(&config).unwrap_or(Value::Null);
        prune(&mut root);
        escape_dollars(&mut root);
        let body = serde_yaml::to_string(&root).unwrap_or_default();
        let source = input_name.replace(['\n', '\r'], " ");
        format!(
            "# yaml-language-server: $schema=secrets-sync.schema.json\n# Converted by `secrets-sync convert` from {source}.\n# Check it with `secrets-sync check --config FILE`.\n{body}"
        )
    }

    /// `secretStore` as the config's type.
    fn raw_store(&self) -> crate::config::raw::RawStore {
        use crate::config::raw::RawStore;
        let s = &self.store;
        let mut r = RawStore {
            address: Some(s.address.clone().unwrap_or_else(|| env_ref("VAULT_ADDR"))),
            namespace: s.namespace.clone(),
            ca_cert: s.ca_cert.clone(),
            skip_verify: s.skip_verify,
            mount_path: Some(self.mount()),
            kv_version: Some(if self.kv2() { "v2" } else { "v1" }.into()),
            ..RawStore::default()
        };
        if !s.auth.iter().any(|(k, _)| *k == "authMethod") {
            r.auth_method = Some("token".into());
            r.token = Some(env_ref("VAULT_TOKEN"));
        }
        for (k, v) in &s.auth {
            let field = match *k {
                "authMethod" => &mut r.auth_method,
                "token" => &mut r.token,
                "roleId" => &mut r.role_id,
                "secretId" => &mut r.secret_id,
                "authMountPath" => &mut r.auth_mount_path,
                "role" => &mut r.role,
                "tokenPath" => &mut r.token_path,
                _ => continue,
            };
            *field = Some(v.clone());
        }
        r
    }
}

/// A command run after a file changed.
enum Command {
    /// A command line, run by `sh -c`.
    Shell(String),
    /// An argv, run as it is.
    Argv(Vec<String>),
}

/// What a file's content comes from.
enum Entry {
    /// A template (our Go form or Tera).
    Template(String),
    /// The secret field named by the file's key.
    Field,
}

/// A secret with templates cannot also have files taking fields (our
/// config maps every file to a template key then): such a file gets an
/// entry of its own printing the field.
fn fields_as_templates(s: &Secret) -> (Vec<(String, String)>, Vec<File>) {
    let mut templates = s.templates.clone();
    let mut files = s.files.clone();
    if templates.is_empty() {
        return (templates, files);
    }
    for f in &mut files {
        if templates.iter().any(|(k, _)| *k == f.key) {
            continue;
        }
        let field = serde_json::Value::from(f.key.as_str());
        let base = f.path.rsplit('/').next().unwrap_or("field");
        let key = unique(base, |k| templates.iter().any(|(t, _)| t == k));
        templates.push((key.clone(), format!("{{{{ index . {field} }}}}")));
        f.key = key;
    }
    (templates, files)
}

fn raw_secret(s: &Secret, store_mount: &str, store_kv2: bool) -> crate::config::raw::RawSecret {
    use crate::config::raw::{RawDynamic, RawFile, RawPki, RawSecret, RawTemplate};
    let (templates, files) = fields_as_templates(s);
    let mut r = RawSecret {
        name: Some(s.name.clone()),
        ..RawSecret::default()
    };
    match &s.source {
        Source::Kv { mount, path, v2 } => {
            r.path = Some(path.clone());
            if mount != store_mount {
                r.mount_path = Some(mount.clone());
            }
            if *v2 != store_kv2 {
                r.kv_version = Some(if *v2 { "v2" } else { "v1" }.into());
            }
        }
        Source::Aws {
            store,
            ssm,
            key,
            version,
        } => {
            r.store = Some(store.clone());
            if *ssm {
                r.parameter = Some(key.clone());
            } else {
                r.path = Some(key.clone());
            }
            r.version = version.clone();
        }
        Source::Dynamic { path, params } => {
            let mut d = RawDynamic {
                path: Some(path.clone()),
                ..RawDynamic::default()
            };
            if !params.is_empty() {
                d.method = Some("POST".into());
                let mut p = Mapping::new();
                for (k, v) in params {
                    p.insert(k.as_str().into(), v.as_str().into());
                }
                d.parameters = Some(Value::Mapping(p));
            }
            r.dynamic = Some(d);
        }
        Source::Pki {
            path,
            common_name,
            alt_names,
            ip_sans,
            ttl,
        } => {
            r.pki = Some(RawPki {
                path: Some(path.clone()),
                common_name: Some(common_name.clone()),
                alt_names: alt_names.clone(),
                ip_sans: ip_sans.clone(),
                ttl: ttl.clone(),
                renew_before: None,
            });
        }
    }
    if let Some(refresh) = &s.refresh {
        if !matches!(s.source, Source::Pki { .. }) {
            r.refresh_interval = Some(refresh.clone());
        }
    }
    if !templates.is_empty() {
        let mut data = Mapping::new();
        for (k, t) in &templates {
            data.insert(k.as_str().into(), t.as_str().into());
        }
        // Converted templates are Go; text that holds a Tera tag (`{%`,
        // `{#`) would read as Tera by its syntax, so the engine is named.
        let tera_like = templates
            .iter()
            .any(|(_, t)| t.contains("{%") || t.contains("{#"));
        // The variables and files the templates name, allowed by name.
        let (mut env, mut file_dirs) = (Vec::new(), Vec::new());
        for (_, t) in &templates {
            let (e, d) = gotmpl::host_needs(t);
            for n in e {
                if !env.contains(&n) {
                    env.push(n);
                }
            }
            for n in d {
                if !file_dirs.contains(&n) {
                    file_dirs.push(n);
                }
            }
        }
        r.template = Some(RawTemplate {
            data,
            engine: tera_like.then(|| "go".to_string()),
            env,
            file_dirs,
        });
    }
    r.files = files
        .iter()
        .map(|f| RawFile {
            path: Some(f.path.clone()),
            key: Some(f.key.clone()),
            mode: Some(f.mode.as_deref().unwrap_or("0600").into()),
            encoding: f.base64.then(|| "base64".into()),
            ..RawFile::default()
        })
        .collect();
    r.on_change = s.on_change.clone();
    r
}

/// Leaves out what is unset: `null`s, and empty lists and mappings (which
/// the config reads as absent), except a template's entries.
fn prune(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            let keys: Vec<Value> = m.keys().cloned().collect();
            for k in keys {
                let drop = match m.get_mut(&k) {
                    Some(child) => {
                        prune(child);
                        match child {
                            Value::Null => true,
                            Value::Sequence(s) => s.is_empty(),
                            Value::Mapping(c) => c.is_empty(),
                            _ => false,
                        }
                    }
                    None => false,
                };
                if drop {
                    m.remove(&k);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Is `name` a file name (or, with `subdirs`, a relative path) that stays
/// inside the directory it is joined to? No `..` or `.` component, not
/// absolute, not empty; with `subdirs` false, no `/` at all.
pub(super) fn stays_inside(name: &str, subdirs: bool) -> bool {
    if name.is_empty() || name.starts_with('/') || (!subdirs && name.contains('/')) {
        return false;
    }
    name.split('/')
        .all(|c| !c.is_empty() && c != ".." && c != ".")
}

/// The reason given when a name would leave `--output-dir`.
pub(super) fn escapes(loc: &str, what: &str, name: &str) -> String {
    format!(
        "{loc}: {what} {name:?} is not a plain file name (no `..`, no `/`): it would be written outside the output directory; skipped"
    )
}

/// A reference to an environment variable in the config written: a
/// placeholder no input can contain (a random tag per process), turned into
/// `${NAME}` by [`escape_dollars`] after every other `$` was doubled.
pub(super) fn env_ref(name: &str) -> String {
    format!("\u{1}{}:{name}\u{1}", env_tag())
}

fn env_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let mut b = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
        b.iter().map(|x| format!("{x:02x}")).collect()
    })
}

/// Every string the config expands `${VAR}` in gets its `$` doubled (`$$`
/// is a literal `$`), so text from the input (a name, a path, a server
/// address holding `${VAULT_TOKEN}`) stays text; then the placeholders of
/// [`env_ref`] become the `${NAME}` references convert means. Template
/// bodies (`template.data`) are not expanded by the config and are left.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) => {
            let tag = format!("\u{1}{}:", env_tag());
            let mut out = s.replace('$', "$$");
            while let Some(start) = out.find(&tag) {
                let rest = &out[start + tag.len()..];
                let Some(end) = rest.find('\u{1}') else {
                    break;
                };
                let name = rest[..end].to_string();
                out.replace_range(start..start + tag.len() + end + 1, &format!("${{{name}}}"));
            }
            *s = out;
        }
        Value::Sequence(items) => items.iter_mut().for_each(escape_dollars),
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                if k.as_str() == Some("template") {
                    // Only its `data` bodies are left as they are.
                    if let Value::Mapping(t) = val {
                        for (tk, tv) in t.iter_mut() {
                            if tk.as_str() != Some("data") {
                                escape_dollars(tv);
                            }
                        }
                    }
                    continue;
                }
                escape_dollars(val);
            }
        }
        _ => {}
    }
}

/// `dir/name`.
fn join(dir: &str, name: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        name.trim_start_matches('/')
    )
}

/// A string of a YAML mapping, if there.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// `base`, or `base-2`, `base-3`, ... the first that is not `taken`: the
/// names of secrets, actions and template keys are unique in a config.
fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// An auth method's mount as the sources write it (`auth/kubernetes/`,
/// `kubernetes`): the name `authMountPath` takes.
fn auth_mount(p: &str) -> String {
    p.trim_matches('/').trim_start_matches("auth/").to_string()
}

/// A file mode as the sources write it (`"0400"`, `0400`, `"400"`), read
/// by the config's own rule so that what convert accepts `check` does;
/// printed as four octal digits.
fn mode_string(v: &str) -> Option<String> {
    crate::config::parse_mode(&Value::String(v.to_string()), &|_| None)
        .ok()
        .map(|m| format!("{m:04o}"))
}

#[cfg(test)]
mod tests;
