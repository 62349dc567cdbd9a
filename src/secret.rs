//! Types that hold secret material.
//!
//! Neither type prints its contents: `Debug` shows only field names or a
//! placeholder, and there is no `Display`. Code that needs the bytes calls an
//! explicitly named accessor (`expose`, `field_bytes`), which makes every use
//! easy to find in review. Both overwrite their values with zeros when they
//! are dropped ([`zeroize`]), so a secret does not linger in freed memory.

use std::fmt;

use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

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

/// The fields of one secret as read from Vault, plus its KV v2 version.
#[derive(Clone, Default)]
pub struct SecretData {
    fields: Map<String, Value>,
    version: Option<u64>,
}

impl SecretData {
    pub fn new(fields: Map<String, Value>, version: Option<u64>) -> Self {
        Self { fields, version }
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

    /// Removes every field value from `message`, for error texts that might
    /// quote a value (template engines sometimes do).
    pub(crate) fn redact(&self, message: &str) -> String {
        // Every copy made on the way holds values: all are cleared on drop.
        let mut values: Vec<Zeroizing<String>> = Vec::new();
        if !self.fields.is_empty() {
            // The whole secret as JSON, as `{{ secret }}` would print it.
            if let Ok(all) = serde_json::to_string(&self.fields) {
                values.push(Zeroizing::new(all));
            }
        }
        for v in self.fields.values() {
            collect_strings(v, &mut values);
        }
        // Longest first, so a value containing another is removed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = Zeroizing::new(message.to_string());
        for v in values.iter().filter(|v| !v.is_empty()) {
            if out.contains(v.as_str()) {
                out = Zeroizing::new(out.replace(v.as_str(), "<redacted>"));
            }
        }
        // No value is left in it.
        String::clone(&out)
    }
}

fn collect_strings(v: &Value, out: &mut Vec<Zeroizing<String>>) {
    match v {
        Value::String(s) => {
            out.push(Zeroizing::new(s.clone()));
            // The JSON-escaped form, as an error might print `"va\"lue"`.
            let escaped = Zeroizing::new(Value::String(s.clone()).to_string());
            out.push(Zeroizing::new(escaped[1..escaped.len() - 1].to_string()));
        }
        Value::Array(items) => {
            out.push(Zeroizing::new(v.to_string()));
            items.iter().for_each(|i| collect_strings(i, out));
        }
        Value::Object(map) => {
            if !map.is_empty() {
                out.push(Zeroizing::new(v.to_string()));
            }
            map.values().for_each(|i| collect_strings(i, out));
        }
        Value::Number(n) => out.push(Zeroizing::new(n.to_string())),
        Value::Bool(_) | Value::Null => {}
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

    #[test]
    fn redact_removes_plain_and_escaped_values() {
        let d = data();
        let msg = d.redact(r#"got "CANARY-user" and CANARY\"q and 4242 and {"k":"CANARY\"q"}"#);
        assert!(!msg.contains("CANARY"), "{msg}");
        assert!(!msg.contains("4242"), "{msg}");
    }
}
