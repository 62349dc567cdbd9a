//! Classified Vault errors. Messages carry paths, status codes and Vault's own
//! error strings, never a secret value or a token.

/// Why a Vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("permission denied on {op} {path}: check that the token's policy allows it{}", detail_suffix(.detail))]
    PermissionDenied {
        op: &'static str,
        path: String,
        detail: String,
    },
    #[error("{path} not found: check the secret's path, secretStore.mountPath and kvVersion")]
    NotFound { path: String },
    #[error("Vault server error {status} on {op} {path}{}", detail_suffix(.detail))]
    Server {
        op: &'static str,
        path: String,
        status: u16,
        detail: String,
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
    #[error("{method} login failed: {detail}")]
    Auth {
        method: &'static str,
        detail: String,
    },
    #[error("circuit breaker {state}: not calling Vault for {op} (Vault failed repeatedly; next probe in {retry_in_secs}s)")]
    CircuitOpen {
        op: &'static str,
        state: &'static str,
        retry_in_secs: u64,
    },
    #[error("unexpected answer from Vault for {op} {path}: {detail}")]
    InvalidResponse {
        op: &'static str,
        path: String,
        detail: String,
    },
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
    pub fn kind(&self) -> &'static str {
        match self {
            VaultError::PermissionDenied { .. } => "permission_denied",
            VaultError::NotFound { .. } => "not_found",
            VaultError::Server { .. } => "server_error",
            VaultError::Rejected { .. } => "rejected",
            VaultError::Network { .. } => "network",
            VaultError::Auth { .. } => "auth",
            VaultError::InvalidResponse { .. } => "invalid_response",
            VaultError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// Does this error say that Vault itself is unwell (for the breaker)?
    pub fn is_vault_failure(&self) -> bool {
        matches!(self, VaultError::Network { .. } | VaultError::Server { .. })
    }
}

/// Vault answers errors as `{"errors": ["..."]}`; keep those strings, cut to
/// a sane length, and nothing else of the body.
pub fn vault_error_detail(body: &[u8]) -> String {
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

pub fn truncate(s: &str, max: usize) -> String {
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
            path: "secret/data/x".into(),
        };
        assert!(e.to_string().contains("mountPath"));
        assert_eq!(e.kind(), "not_found");
    }
}
