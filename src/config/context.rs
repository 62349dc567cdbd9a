//! What every part of validation shares: the [`Ctx`] that collects errors
//! and warnings and interpolates `${VAR}`, whether credentials are
//! required ([`Credentials`]), and the KV version words. `validate` and the
//! field validators (`actions`, `auth`, `sources`) import it; it imports
//! none of them.

use std::path::{Path, PathBuf};

use super::interpolate::interpolate;
use super::{ConfigError, KvVersion};

/// Whether a missing address or credentials are errors (`run`) or warnings
/// (`check`, which validates a file that gets them from the environment at
/// run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    Required,
    Optional,
}

/// What validation carries from field to field: the environment for
/// A secret's templates as written: the engine, what `env`/`file` reach,
/// and the (key, source) entries; equal ones share one compiled template.
pub(super) type TemplateKey = (
    crate::template::Engine,
    crate::template::go::Host,
    Vec<(String, String)>,
);

/// `${VAR}`, the config's directory, and every error and warning found.
pub(super) struct Ctx<'a> {
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    /// The config file's directory: relative `templateFile`s are under it.
    pub(super) dir: &'a Path,
    /// Every `templateFile` read, for the config watcher.
    pub(super) template_files: Vec<PathBuf>,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<String>,
    /// Variables referenced but not set.
    pub(super) missing_vars: Vec<String>,
    /// Names of the AWS stores of `secretStores` (for `store:`).
    pub(super) aws_stores: Vec<String>,
    /// Names of the Vault stores of `secretStores`, each with the names of
    /// its credential sets (for `store:` and `credentials:`).
    pub(super) vault_stores: Vec<(String, Vec<String>)>,
    /// Templates compiled so far, by their entries: secrets with the same
    /// `template.data` share one compiled template (a config of 1000
    /// secrets with one template compiled it 1000 times: 60 % of `check`).
    pub(super) templates:
        std::collections::HashMap<TemplateKey, std::sync::Arc<crate::template::SecretTemplate>>,
}

impl Ctx<'_> {
    pub(super) fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            location: location.into(),
            message: message.into(),
        });
    }

    /// Interpolates `${VAR}` in one string field.
    pub(super) fn interp(&mut self, location: &str, value: Option<String>) -> Option<String> {
        let value = value?;
        match interpolate(&value, self.env) {
            Ok(r) => {
                for m in r.missing {
                    if !self.missing_vars.contains(&m) {
                        self.missing_vars.push(m);
                    }
                }
                Some(r.value)
            }
            Err(e) => {
                self.error(location, e.to_string());
                None
            }
        }
    }
}

/// `v1`/`1` or `v2`/`2`.
pub(super) fn kv_version(v: &str) -> Result<KvVersion, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "v2" | "2" => Ok(KvVersion::V2),
        "v1" | "1" => Ok(KvVersion::V1),
        other => Err(format!(
            "unknown KV version {other:?}: use \"v1\" or \"v2\""
        )),
    }
}
