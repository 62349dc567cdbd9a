//! Classified Vault errors. Messages carry paths, status codes and Vault's own
//! error strings, never a secret value or a token.

/// Why a Vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum VaultError {
    #[error("permission denied on {op} {path}: check that the token's policy allows it{}", detail_suffix(.detail))]
    PermissionDenied {
        op: &'static str,
        path: String,
        detail: String,
    },
    #[error("{path} not found{}", not_found_hint(.op))]
    NotFound { op: &'static str, path: String },
    #[error("Vault server error {status} on {op} {path}{}{}", detail_suffix(.detail), retry_suffix(*.retry_after))]
    Server {
        op: &'static str,
        path: String,
        status: u16,
        detail: String,
        /// The answer's `Retry-After` (a 503 of a sealed or standby
        /// server may carry one).
        retry_after: Option<std::time::Duration>,
    },
    /// 429: a rate-limit quota. The server is well, it asks for less: this
    /// never opens the circuit breaker, and the whole store waits for the
    /// `Retry-After` (no other secret hammers a rate-limited Vault).
    #[error("Vault rate-limited {op} {path} (429){}{}", detail_suffix(.detail), retry_suffix(*.retry_after))]
    RateLimited {
        op: &'static str,
        path: String,
        detail: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("Vault refused {op} {path} with status {status}{}", detail_suffix(.detail))]
    Rejected {
        op: &'static str,
        path: String,
        status: u16,
        detail: String,
    },
    #[error("cannot reach Vault for {op}: {detail}")]
    Network { op: &'static str, detail: String },
    /// Connected, but the whole answer did not come in time.
    #[error("no answer from Vault for {op} {path} within {secs}s")]
    Timeout {
        op: &'static str,
        path: String,
        secs: u64,
    },
    /// A login that could not start (e.g. the JWT file is unreadable).
    #[error("{method} login failed: {detail}")]
    Auth {
        method: &'static str,
        detail: String,
    },
    /// A login request that failed; its kind is the cause's when Vault
    /// could not be reached (network, server error, breaker open), `auth`
    /// when Vault refused it.
    #[error("{method} login failed: {source}")]
    Login {
        method: &'static str,
        #[source]
        source: Box<VaultError>,
    },
    #[error("circuit breaker {state}: not calling Vault for {op} (Vault failed repeatedly; next probe in {}s)", retry_in.as_secs())]
    CircuitOpen {
        op: &'static str,
        state: &'static str,
        /// When the breaker lets a probe through again (zero: half-open,
        /// its probes taken).
        retry_in: std::time::Duration,
    },
    #[error("unexpected answer from Vault for {op} {path}: {detail}")]
    InvalidResponse {
        op: &'static str,
        path: String,
        detail: String,
    },
}

/// What to check when `op` answers 404.
fn not_found_hint(op: &str) -> &'static str {
    match op {
        "read" => ": check the secret's path, secretStore.mountPath and kvVersion",
        "auth" => {
            ": is the auth method enabled at secretStore.authMountPath (and in this namespace)?"
        }
        _ => ": is VAULT_ADDR a Vault/OpenBao server, and the namespace right?",
    }
}

fn retry_suffix(r: Option<std::time::Duration>) -> String {
    match r {
        Some(d) => format!("; retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" ({d})")
    }
}

impl VaultError {
    /// A short, stable name for metrics and logs.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            VaultError::PermissionDenied { .. } => "permission_denied",
            VaultError::NotFound { .. } => "not_found",
            VaultError::Server { .. } => "server_error",
            VaultError::RateLimited { .. } => "rate_limited",
            VaultError::Rejected { .. } => "rejected",
            VaultError::Network { .. } => "network",
            VaultError::Timeout { .. } => "timeout",
            VaultError::Auth { .. } => "auth",
            VaultError::Login { source, .. } if source.is_vault_failure() => source.kind(),
            VaultError::Login { source, .. } => match **source {
                VaultError::CircuitOpen { .. } => "circuit_open",
                _ => "auth",
            },
            VaultError::InvalidResponse { .. } => "invalid_response",
            VaultError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// How long the server asked to wait (`Retry-After` of a 429 or 503,
    /// or the store's rate-limit pause), through a login's cause.
    pub(crate) fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            VaultError::Server { retry_after, .. }
            | VaultError::RateLimited { retry_after, .. } => *retry_after,
            VaultError::Login { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// Does this error say that Vault itself is unwell (for the breaker)?
    ///
    /// The server's failures count: no connection (refused, reset, TLS,
    /// connect timeout), 5xx answers, and any failure of the
    /// server-wide calls (login, token lookup and renewal). A read that
    /// connected but got no whole answer in time is that path's failure
    /// (a hanging secret engine or plugin behind one mount): it backs off
    /// on its own and does not open the breaker for every other secret. A
    /// 429 is the server asking for less, not failing: it pauses the store
    /// instead.
    pub(crate) fn is_vault_failure(&self) -> bool {
        match self {
            VaultError::Network { .. } | VaultError::Server { .. } => true,
            VaultError::Timeout { op, .. } => *op != "read",
            VaultError::Login { source, .. } => source.is_vault_failure(),
            _ => false,
        }
    }
}

/// Vault answers errors as `{"errors": ["..."]}`; keep those strings, cut to
/// a sane length, and nothing else of the body.
pub(crate) fn vault_error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let joined = v
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|errs| {
            errs.iter()
                .filter_map(|e| e.as_str())
                .map(|s| s.trim().replace('\n', " "))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    truncate(&joined, 300)
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_keeps_only_vault_error_strings() {
        assert_eq!(
            vault_error_detail(br#"{"errors":["permission denied","x\ny"],"data":{"k":"v"}}"#),
            "permission denied; x y"
        );
        assert_eq!(vault_error_detail(b"<html>"), "");
        assert_eq!(vault_error_detail(br#"{"errors":[]}"#), "");
        let long = format!(r#"{{"errors":["{}"]}}"#, "é".repeat(400));
        assert!(vault_error_detail(long.as_bytes()).len() <= 304);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = VaultError::NotFound {
            op: "read",
            path: "secret/data/x".into(),
        };
        assert!(e.to_string().contains("mountPath"));
        assert_eq!(e.kind(), "not_found");
        let e = VaultError::NotFound {
            op: "lookup",
            path: "/v1/auth/token/lookup-self".into(),
        };
        assert!(!e.to_string().contains("secret's path"), "{e}");
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
    }

    #[test]
    fn a_login_keeps_its_cause_and_the_cause_kind() {
        use std::error::Error;
        let network = VaultError::Login {
            method: "approle",
            source: Box::new(VaultError::Network {
                op: "auth",
                detail: "connection refused".into(),
            }),
        };
        assert_eq!(network.kind(), "network");
        assert!(network.is_vault_failure());
        assert!(network
            .source()
            .is_some_and(|s| s.to_string().contains("refused")));
        let refused = VaultError::Login {
            method: "approle",
            source: Box::new(VaultError::PermissionDenied {
                op: "auth",
                path: "/v1/auth/approle/login".into(),
                detail: "invalid role or secret ID".into(),
            }),
        };
        assert_eq!(refused.kind(), "auth");
        assert!(!refused.is_vault_failure());
    }
}
