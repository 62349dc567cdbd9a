//! What a Vault store is made of, as `vault` takes it: the auth method and
//! its settings ([`AuthConfig`]), the KV engine version ([`KvVersion`]),
//! the client certificate's files ([`ClientCert`]). The config validates
//! them and names them (`crate::config` re-exports these types); nothing
//! here knows the config file.

use std::path::PathBuf;

use crate::secret::SecretString;

/// The files of a TLS client certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthConfig {
    Token {
        token: SecretString,
    },
    AppRole {
        mount: String,
        role_id: String,
        secret_id: SecretString,
    },
    /// Kubernetes auth: the pod's service-account token, re-read at every
    /// login because kubelet rotates it.
    Kubernetes {
        mount: String,
        role: String,
        token_path: PathBuf,
    },
    /// JWT auth with a token file (re-read at every login).
    Jwt {
        mount: String,
        role: String,
        token_path: PathBuf,
    },
    /// TLS certificate auth: the login proves the client certificate of the
    /// connection (`tlsClientCert`/`tlsClientKey`); `role` picks one of the
    /// method's certificate roles (empty: Vault tries them all).
    Cert {
        mount: String,
        role: String,
    },
}

impl AuthConfig {
    /// The method's name as written in the config (for logs).
    pub fn method(&self) -> &'static str {
        match self {
            AuthConfig::Token { .. } => "token",
            AuthConfig::AppRole { .. } => "approle",
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Jwt { .. } => "jwt",
            AuthConfig::Cert { .. } => "cert",
        }
    }

    /// Who a login logs in as, for telling kept tokens apart: the method,
    /// its mount and the role (AppRole: the role id; Kubernetes and JWT:
    /// the role and the JWT file; cert: the role). No secret in it.
    pub fn identity(&self) -> String {
        match self {
            AuthConfig::Token { .. } => "token".into(),
            AuthConfig::AppRole { mount, role_id, .. } => format!("approle|{mount}|{role_id}"),
            AuthConfig::Kubernetes {
                mount,
                role,
                token_path,
            }
            | AuthConfig::Jwt {
                mount,
                role,
                token_path,
            } => format!("{}|{mount}|{role}|{}", self.method(), token_path.display()),
            AuthConfig::Cert { mount, role } => format!("cert|{mount}|{role}"),
        }
    }

    /// Can the sidecar get a new token by itself (every method but `token`)?
    pub fn can_login(&self) -> bool {
        !matches!(self, AuthConfig::Token { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvVersion {
    V1,
    V2,
}
