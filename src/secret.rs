//! Types that hold secret material.
//!
//! Neither type prints its contents: `Debug` shows only field names or a
//! placeholder, and there is no `Display`. Code that needs the bytes calls an
//! explicitly named accessor (`expose`, `field_bytes`), which makes every use
//! easy to find in review. Both overwrite their values with zeros when they
//! are dropped ([`zeroize`]), so a secret does not linger in freed memory.

use std::fmt;

use serde_json::{Map, Value};
use zeroize::Zeroize;

/// Overwrites every string in a JSON value with zeros and empties the rest.
pub(crate) fn zeroize_value(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => map.values_mut().for_each(zeroize_value),
        Value::Number(_) | Value::Bool(_) => *v = Value::Null,
        Value::Null => {}
    }
}

/// A credential such as a Vault token or AppRole secret ID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "SecretString(<empty>)"
        } else {
            "SecretString(<redacted>)"
        })
    }
}

/// The fields of one secret as read from Vault, plus its KV v2 version
/// and, for a leased (dynamic) secret, its lease.
#[derive(Clone, Default)]
pub struct SecretData {
    fields: Map<String, Value>,
    version: Option<u64>,
    lease: Option<crate::vault::lease::Lease>,
}

impl SecretData {
    pub fn new(fields: Map<String, Value>, version: Option<u64>) -> Self {
        Self {
            fields,
            version,
            lease: None,
        }
    }

    /// With the lease the answer came with.
    pub(crate) fn with_lease(mut self, lease: Option<crate::vault::lease::Lease>) -> Self {
        self.lease = lease;
        self
    }

    /// Marks its lease as issued in `ns` with the credential set `set`
    /// (renewals and the revocation go the same way).
    pub(crate) fn issued_by(
        mut self,
        ns: &crate::vault::client::Namespace,
        set: Option<&std::sync::Arc<str>>,
    ) -> Self {
        if let Some(l) = &mut self.lease {
            l.namespace = ns.clone();
            l.credentials = set.cloned();
        }
        self
    }

    /// The lease, taken out (the fields are dropped before the lease is
    /// renewed).
    pub(crate) fn take_lease(&mut self) -> Option<crate::vault::lease::Lease> {
        self.lease.take()
    }

    /// KV v2 metadata version; `None` for KV v1.
    pub fn version(&self) -> Option<u64> {
        self.version
    }

    /// Field names, safe to log.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// All fields, for the template context.
    pub(crate) fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The bytes a file receives when it is written straight from a field:
    /// strings as they are, anything else as compact JSON.
    pub fn field_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.fields.get(name).map(|v| match v {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        })
    }
}

impl Drop for SecretData {
    fn drop(&mut self) {
        self.fields.values_mut().for_each(zeroize_value);
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("version", &self.version)
            .field("leased", &self.lease.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> SecretData {
        let Value::Object(map) =
            json!({"user": "CANARY-user", "n": 4242, "nested": {"k": "CANARY\"q"}})
        else {
            unreachable!()
        };
        SecretData::new(map, Some(3))
    }

    #[test]
    fn debug_never_shows_values() {
        let d = format!("{:?} {:?}", data(), SecretString::new("CANARY-token"));
        assert!(!d.contains("CANARY"), "{d}");
        assert!(d.contains("user") && d.contains("version"));
    }

    #[test]
    fn field_bytes_strings_raw_others_json() {
        let d = data();
        assert_eq!(d.field_bytes("user").unwrap(), b"CANARY-user");
        assert_eq!(d.field_bytes("n").unwrap(), b"4242");
        assert_eq!(d.field_bytes("nested").unwrap(), br#"{"k":"CANARY\"q"}"#);
        assert!(d.field_bytes("missing").is_none());
    }

    #[test]
    fn zeroize_value_clears_every_string() {
        let mut v = json!({"a": "x", "b": [1, "y", {"c": "z"}], "d": true});
        zeroize_value(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains('x') && !text.contains('y') && !text.contains('z'),
            "{text}"
        );
        assert!(!text.contains("true") && !text.contains('1'), "{text}");
    }
}
