//! Validation of one set of credentials (`authMethod` and its fields): the
//! store's default set, whose values the environment and flags override
//! (`VAULT_TOKEN`, ...), and each named set of `secretStore.credentials`.
//! Every error names the field under its set (`secretStore.token`,
//! `secretStore.credentials.team-b.secretId`).

use std::path::PathBuf;

use super::context::{Credentials, Ctx};
use super::AuthConfig;
use crate::secret::SecretString;

/// The auth fields of a set, as written.
pub(super) struct AuthFields {
    pub(super) method: Option<String>,
    pub(super) token: Option<String>,
    pub(super) role_id: Option<String>,
    pub(super) secret_id: Option<String>,
    pub(super) auth_mount_path: Option<String>,
    pub(super) role: Option<String>,
    pub(super) token_path: Option<String>,
}

/// Values from flags/environment that win over the file (the default set
/// only); `env` says whether errors may point at those variables.
pub(super) struct Overrides<'a> {
    pub(super) token: Option<&'a SecretString>,
    pub(super) role_id: Option<String>,
    pub(super) secret_id: Option<&'a SecretString>,
    pub(super) env: bool,
}

impl Overrides<'_> {
    /// No overrides (a named set).
    pub(super) fn none() -> Self {
        Overrides {
            token: None,
            role_id: None,
            secret_id: None,
            env: false,
        }
    }
}

/// A credential field: the override, else the file (interpolated), trimmed,
/// in a zeroizing string from here on.
fn credential(
    cx: &mut Ctx,
    arg: Option<&SecretString>,
    field: &str,
    raw: Option<String>,
) -> SecretString {
    match arg {
        Some(t) => SecretString::new(t.expose().trim()),
        None => SecretString::new(cx.interp(field, raw).unwrap_or_default().trim()),
    }
}

/// Validates one set under `prefix` (`secretStore` or
/// `secretStore.credentials.NAME`).
pub(super) fn validate_auth(
    cx: &mut Ctx,
    prefix: &str,
    raw: AuthFields,
    over: Overrides,
    creds: Credentials,
) -> Option<AuthConfig> {
    let field = |f: &str| format!("{prefix}.{f}");
    let token = credential(cx, over.token, &field("token"), raw.token);
    let role_id = over
        .role_id
        .or_else(|| cx.interp(&field("roleId"), raw.role_id))
        .unwrap_or_default();
    let secret_id = credential(cx, over.secret_id, &field("secretId"), raw.secret_id);
    let method = cx
        .interp(&field("authMethod"), raw.method)
        .unwrap_or_else(|| "token".to_string());
    let auth_mount = cx
        .interp(&field("authMountPath"), raw.auth_mount_path)
        .map(|m| m.trim().trim_matches('/').to_string())
        .filter(|m| !m.is_empty());
    let role = cx
        .interp(&field("role"), raw.role)
        .map(|r| r.trim().to_string())
        .unwrap_or_default();
    let token_path = cx
        .interp(&field("tokenPath"), raw.token_path)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);

    let missing_cred = |cx: &mut Ctx, name: &str, var: &str| {
        let loc = field(name);
        let hint = if over.env {
            format!("{var} (or {loc})")
        } else {
            loc.clone()
        };
        match creds {
            Credentials::Required => cx.error(&loc, format!("{name} is empty: set {hint}")),
            Credentials::Optional => cx.warnings.push(format!(
                "{loc} is empty here; {} must be set when secrets-sync runs",
                if over.env { var } else { loc.as_str() }
            )),
        }
    };
    match method.trim().to_ascii_lowercase().as_str() {
        "token" => {
            if token.is_empty() {
                missing_cred(cx, "token", "VAULT_TOKEN");
            }
            Some(AuthConfig::Token { token })
        }
        "approle" => {
            if role_id.trim().is_empty() {
                missing_cred(cx, "roleId", "VAULT_ROLE_ID");
            }
            if secret_id.is_empty() {
                missing_cred(cx, "secretId", "VAULT_SECRET_ID");
            }
            Some(AuthConfig::AppRole {
                mount: auth_mount.unwrap_or_else(|| "approle".into()),
                role_id: role_id.trim().to_string(),
                secret_id,
            })
        }
        m @ ("kubernetes" | "jwt") => {
            if role.is_empty() {
                cx.error(
                    field("role"),
                    format!(
                        "{m} auth needs the Vault role to log in as: set {}",
                        field("role")
                    ),
                );
            }
            let mount = auth_mount.unwrap_or_else(|| m.to_string());
            if m == "kubernetes" {
                Some(AuthConfig::Kubernetes {
                    mount,
                    role,
                    token_path: token_path
                        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_K8S_TOKEN_PATH)),
                })
            } else {
                let token_path = token_path.unwrap_or_default();
                if token_path.as_os_str().is_empty() {
                    cx.error(
                        field("tokenPath"),
                        format!(
                            "jwt auth needs the file holding the JWT: set {}",
                            field("tokenPath")
                        ),
                    );
                }
                Some(AuthConfig::Jwt {
                    mount,
                    role,
                    token_path,
                })
            }
        }
        "cert" => Some(AuthConfig::Cert {
            mount: auth_mount.unwrap_or_else(|| "cert".into()),
            role,
        }),
        other => {
            cx.error(
                field("authMethod"),
                format!(
                    "unknown auth method {other:?}: use \"token\", \"approle\", \"kubernetes\", \"jwt\" or \"cert\""
                ),
            );
            None
        }
    }
}
