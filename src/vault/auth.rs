//! Login: the request bodies and the decoding of `auth` answers.

use std::time::Duration;

use serde_json::{json, Value};

use crate::secret::SecretString;

/// TTLs beyond ten years are read as ten years (a hostile or broken answer
/// must not overflow the clock).
pub(crate) const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

/// A token obtained by a login (or given by the user).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub(crate) token: SecretString,
    /// Lease of the token; zero means it does not expire.
    pub(crate) ttl: Duration,
    pub(crate) renewable: bool,
}

/// `POST /v1/auth/{mount}/login`, the login path of every method here.
pub(crate) fn login_path(mount: &str) -> String {
    format!("/v1/auth/{}/login", super::kv::encode_path(mount))
}

/// Login body of the kubernetes and jwt methods.
pub(crate) fn jwt_login_body(role: &str, jwt: &SecretString) -> Value {
    json!({ "role": role, "jwt": jwt.expose() })
}

/// Login body of the cert method: the certificate role to match, or none
/// (Vault then tries every role whose CA signed the client certificate).
pub(crate) fn cert_login_body(role: &str) -> Value {
    if role.is_empty() {
        json!({})
    } else {
        json!({ "name": role })
    }
}

pub(crate) fn approle_login_body(role_id: &str, secret_id: &SecretString) -> Value {
    json!({ "role_id": role_id, "secret_id": secret_id.expose() })
}

/// Decodes `{"auth": {"client_token": ..., "lease_duration": ..., "renewable": ...}}`.
/// The decoded document holds the token: it is cleared before returning.
pub fn parse_login(body: &[u8]) -> Result<TokenInfo, String> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| format!("login answer is not JSON: {e}"))?;
    let res = login_info(&v);
    crate::secret::zeroize_value(&mut v);
    res
}

fn login_info(v: &Value) -> Result<TokenInfo, String> {
    let auth = v.get("auth").ok_or("login answer has no \"auth\"")?;
    let token = auth
        .get("client_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("login answer has no client_token")?;
    Ok(TokenInfo {
        token: SecretString::new(token),
        ttl: Duration::from_secs(
            auth.get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(MAX_TTL_SECS),
        ),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Decodes `GET /v1/auth/token/lookup-self`: `data.ttl` and `data.renewable`.
/// Returns (ttl, renewable); a ttl of zero means the token never expires.
/// The answer holds the token (`data.id`): it is cleared before returning.
pub fn parse_lookup(body: &[u8]) -> Result<(Duration, bool), String> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| format!("lookup answer is not JSON: {e}"))?;
    let res = v
        .get("data")
        .ok_or_else(|| "lookup answer has no \"data\"".to_string())
        .map(|data| {
            (
                Duration::from_secs(
                    data.get("ttl")
                        .and_then(Value::as_u64)
                        .unwrap_or(0)
                        .min(MAX_TTL_SECS),
                ),
                data.get("renewable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )
        });
    crate::secret::zeroize_value(&mut v);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_login() {
        let t = parse_login(
            br#"{"auth":{"client_token":"s.CANARY","lease_duration":60,"renewable":true}}"#,
        )
        .unwrap();
        assert_eq!(t.token.expose(), "s.CANARY");
        assert_eq!((t.ttl, t.renewable), (Duration::from_secs(60), true));
        assert!(!format!("{t:?}").contains("CANARY"));
    }

    #[test]
    fn rejects_bad_logins() {
        for b in [
            &b"{}"[..],
            br#"{"auth":null}"#,
            br#"{"auth":{"client_token":""}}"#,
            b"nope",
        ] {
            assert!(parse_login(b).is_err());
        }
        assert_eq!(login_path("approle"), "/v1/auth/approle/login");
        let b = jwt_login_body("r", &SecretString::new("a.b.c"));
        assert_eq!(
            (b["role"].as_str(), b["jwt"].as_str()),
            (Some("r"), Some("a.b.c"))
        );
    }

    #[test]
    fn parses_lookup() {
        let (ttl, ren) =
            parse_lookup(br#"{"data":{"ttl":42,"renewable":true,"id":"s.CANARY"}}"#).unwrap();
        assert_eq!((ttl, ren), (Duration::from_secs(42), true));
        assert_eq!(
            parse_lookup(br#"{"data":{"ttl":0}}"#).unwrap(),
            (Duration::ZERO, false)
        );
        assert!(parse_lookup(b"{}").is_err());
        let (huge, _) = parse_lookup(br#"{"data":{"ttl":18446744073709551615}}"#).unwrap();
        assert_eq!(huge, Duration::from_secs(MAX_TTL_SECS));
    }
}
