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

/// Largest token file read (a JWT, a container credentials token).
const TOKEN_FILE_MAX: u64 = 64 * 1024;

/// Reads a token from a file (a service-account JWT, an IRSA web identity
/// token, a container credentials token): a regular file (symlinks
/// followed, never blocking on a FIFO), at most 64 KiB, trimmed, not
/// empty. The error names the file, never its content. Blocking I/O: call
/// it off the actor thread.
pub(crate) fn read_token_file(path: &std::path::Path) -> Result<SecretString, String> {
    use std::io::Read;
    let read = crate::fs::read::open_regular(path).and_then(|f| {
        let mut t = String::new();
        f.take(TOKEN_FILE_MAX).read_to_string(&mut t).map(|_| t)
    });
    match read {
        Ok(t) if !t.trim().is_empty() => Ok(SecretString::new(t.trim())),
        Ok(_) => Err(format!("token file {} is empty", path.display())),
        Err(e) => Err(format!(
            "cannot read token file {}: {e} (is the service-account token mounted?)",
            path.display()
        )),
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

/// A secret's version as its source names it: KV v2's metadata version
/// and SSM's parameter version are numbers, a Secrets Manager version is an
/// id. Shown as it is in `/status`, logs and audit lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Version {
    Number(u64),
    Id(String),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Number(n) => write!(f, "{n}"),
            Version::Id(s) => f.write_str(s),
        }
    }
}

/// The fields of one secret as a source gave them, plus its version. A
/// lease, where the source attached one, travels beside it (the source's
/// own type), not in it.
#[derive(Clone, Default)]
pub struct SecretData {
    fields: Map<String, Value>,
    version: Option<Version>,
}

impl SecretData {
    pub fn new(fields: Map<String, Value>, version: Option<u64>) -> Self {
        Self {
            fields,
            version: version.map(Version::Number),
        }
    }

    /// With a version named by an id (Secrets Manager's `VersionId`).
    pub(crate) fn with_version_id(mut self, id: Option<String>) -> Self {
        if let Some(id) = id {
            self.version = Some(Version::Id(id));
        }
        self
    }

    /// The version, if the source gave one (not for KV v1).
    pub fn version(&self) -> Option<Version> {
        self.version.clone()
    }

    /// Field names, safe to log.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// SHA-256 of the version and every field (canonical JSON, keys in
    /// order): two answers with the same digest render the same files.
    /// Kept in memory to skip re-rendering an unchanged answer; never
    /// printed. Linear in the (bounded) answer: call it off the actor
    /// thread with the render.
    pub(crate) fn digest(&self) -> [u8; 32] {
        struct Hasher(ring::digest::Context);
        impl std::io::Write for Hasher {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut h = Hasher(ring::digest::Context::new(&ring::digest::SHA256));
        let version = self.version.as_ref().map(ToString::to_string);
        // Serialising a Map of Values cannot fail; an error would only
        // make the digest differ (a full render), never match wrongly.
        let _ = serde_json::to_writer(&mut h, &(version, &self.fields));
        let mut out = [0u8; 32];
        out.copy_from_slice(h.0.finish().as_ref());
        out
    }

    /// All fields, for the template context.
    pub(crate) fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// The bytes a file receives when it is written straight from a field:
    /// strings as they are, anything else as compact JSON.
    /// Bytes (`{"$binary": BASE64}`, as a binary secret or a decoded
    /// keystore travels) are written as they are.
    pub fn field_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.fields.get(name).map(|v| match v {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Object(m) if m.len() == 1 => match m.get("$binary").and_then(Value::as_str) {
                Some(b) => {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_else(|_| v.to_string().into_bytes())
                }
                None => v.to_string().into_bytes(),
            },
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

/// What a value parsed from untrusted text may still use: nodes (every
/// scalar, sequence and map takes one), bytes of strings (keys included),
/// and levels of nesting. Counted while parsing, so a hostile document
/// (a huge Vault answer, a YAML alias bomb) costs no more than its budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueBudget {
    pub(crate) nodes: usize,
    pub(crate) bytes: usize,
    pub(crate) depth: usize,
}

impl ValueBudget {
    fn node<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.nodes = self
            .nodes
            .checked_sub(1)
            .ok_or_else(|| E::custom("the value has too many nodes"))?;
        Ok(())
    }

    fn text<E: serde::de::Error>(&mut self, len: usize) -> Result<(), E> {
        self.node()?;
        self.bytes = self
            .bytes
            .checked_sub(len)
            .ok_or_else(|| E::custom("the value has too many bytes of text"))?;
        Ok(())
    }

    fn enter<E: serde::de::Error>(&mut self) -> Result<(), E> {
        self.node()?;
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| E::custom("the value is nested too deep"))?;
        Ok(())
    }
}

/// Parses any self-describing format (JSON, YAML) into a JSON value within
/// `budget`; map keys that are not strings are written as JSON. A bound
/// passed is an error whose message starts with "the value " and holds no
/// content; see [`ValueBudget`] for what is left.
pub(crate) fn bounded_value<'de, D: serde::Deserializer<'de>>(
    d: D,
    budget: &mut ValueBudget,
) -> Result<Value, D::Error> {
    serde::de::DeserializeSeed::deserialize(Bounded(budget), d)
}

struct Bounded<'b>(&'b mut ValueBudget);

impl<'de> serde::de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        self.0.node()?;
        Ok(Value::Bool(b))
    }
    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Value, E> {
        self.0.node()?;
        Ok(Value::from(n))
    }
    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Value, E> {
        self.0.node()?;
        Ok(Value::from(n))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Value, E> {
        self.0.node()?;
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Value, E> {
        self.0.text(s.len())?;
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Value, E> {
        self.0.text(s.len())?;
        Ok(Value::String(s))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.0.node()?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded(&mut *self.0))? {
            items.push(item);
        }
        self.0.depth = self.0.depth.saturating_add(1);
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Bounded(&mut *self.0))? {
            // A key is its field's name, not a node of its own: its bytes
            // count, the node is given back.
            self.0.nodes = self.0.nodes.saturating_add(1);
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = map.next_value_seed(Bounded(&mut *self.0))?;
            out.insert(key, value);
        }
        self.0.depth = self.0.depth.saturating_add(1);
        Ok(Value::Object(out))
    }
}
