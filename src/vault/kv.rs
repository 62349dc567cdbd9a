//! KV secrets engine, versions 1 and 2: request paths and response decoding.

use serde_json::Value;

use super::store::KvVersion;
use crate::secret::SecretData;

/// The API path (after the address) that reads `path` from the mount.
pub(crate) fn read_path(kv: KvVersion, mount: &str, path: &str) -> String {
    let mount = encode_path(mount);
    let path = encode_path(path);
    match kv {
        KvVersion::V2 => format!("/v1/{mount}/data/{path}"),
        KvVersion::V1 => format!("/v1/{mount}/{path}"),
    }
}

/// The path as logs, metrics and `/status` show it: [`read_path`] without
/// the `/v1/` prefix (`secret/data/app`).
pub(crate) fn display_path(kv: KvVersion, mount: &str, path: &str) -> String {
    read_path(kv, mount, path)
        .trim_start_matches("/v1/")
        .to_string()
}

/// Percent-encodes each segment of a slash-separated path.
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/' | b'@' | b'+' | b':')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Room for the envelope (`request_id`, `lease_id`, `metadata`, ...) on
/// top of the secret's own fields.
const ENVELOPE_NODES: usize = 64;

/// Decodes a read answer, refusing one whose fields and nested values
/// number more than `max_fields` (counted while parsing, so a hostile
/// answer costs no more than that). Errors describe the shape, never the
/// content.
pub fn parse_read(kv: KvVersion, body: &[u8], max_fields: usize) -> Result<SecretData, String> {
    let mut v = parse_bounded(body, max_fields)?;
    // Values are moved out, never copied; whatever is left is cleared.
    let res = take_data(kv, &mut v);
    crate::secret::zeroize_value(&mut v);
    res
}

/// Parses an answer as JSON, refusing one whose fields and nested values
/// number more than `max_fields` (plus room for the envelope). Errors
/// describe the shape, never the content.
pub(crate) fn parse_bounded(body: &[u8], max_fields: usize) -> Result<Value, String> {
    let mut budget = crate::secret::ValueBudget {
        nodes: max_fields.saturating_add(ENVELOPE_NODES),
        // The body is bounded by VAULT_MAX_RESPONSE_BYTES, the nesting by
        // serde_json's own recursion limit.
        bytes: usize::MAX,
        depth: usize::MAX,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed =
        crate::secret::bounded_value(&mut de, &mut budget).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        if budget.nodes == 0 {
            format!(
                "the secret has more than {max_fields} fields and nested values (VAULT_MAX_SECRET_FIELDS; raise it if that is expected)"
            )
        } else {
            // serde_json's message has a position, not content.
            format!("body is not JSON ({} bytes): {}", body.len(), e)
        }
    })
}

fn take_data(kv: KvVersion, v: &mut Value) -> Result<SecretData, String> {
    let data = v.get_mut("data").ok_or("no \"data\" in the answer")?;
    match kv {
        KvVersion::V1 => match data.take() {
            Value::Object(map) => Ok(SecretData::new(map, None)),
            _ => Err("\"data\" is not an object".into()),
        },
        KvVersion::V2 => {
            let version = data
                .get("metadata")
                .and_then(|m| m.get("version"))
                .and_then(Value::as_u64);
            match data.get_mut("data").map(Value::take) {
                Some(Value::Object(map)) => Ok(SecretData::new(map, version)),
                Some(Value::Null) | None => Err(
                    "the latest version has no data (deleted or destroyed); is this a KV v1 mount? set kvVersion: v1".into(),
                ),
                Some(_) => Err("\"data.data\" is not an object".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            read_path(KvVersion::V2, "secret", "app/db"),
            "/v1/secret/data/app/db"
        );
        assert_eq!(read_path(KvVersion::V1, "kv", "app/db"), "/v1/kv/app/db");
        assert_eq!(
            read_path(KvVersion::V2, "secret", "a b/ü?#"),
            "/v1/secret/data/a%20b/%C3%BC%3F%23"
        );
    }

    #[test]
    fn decodes_v2_and_v1() {
        let v2 = br#"{"data":{"data":{"u":"x","n":1},"metadata":{"version":7}}}"#;
        let d = parse_read(KvVersion::V2, v2, 100).unwrap();
        assert_eq!(d.version(), Some(crate::secret::Version::Number(7)));
        assert_eq!(d.field_bytes("u").unwrap(), b"x");
        let v1 = br#"{"data":{"u":"x"},"lease_duration":2764800}"#;
        let d = parse_read(KvVersion::V1, v1, 100).unwrap();
        assert_eq!(
            (
                d.version().map(|v| v.to_string()),
                d.field_bytes("u").unwrap()
            ),
            (None, b"x".to_vec())
        );
    }

    #[test]
    fn wrong_shapes_are_clear_errors_without_content() {
        for (kv, body) in [
            (
                KvVersion::V2,
                &br#"{"data":{"data":null,"metadata":{"deletion_time":"x"}}}"#[..],
            ),
            (KvVersion::V2, br#"{"data":{"data":"CANARY"}}"#),
            (KvVersion::V2, br#"[1,2]"#),
            (KvVersion::V1, br#"{"data":"CANARY"}"#),
            (KvVersion::V1, b"\xff\xfeCANARY"),
            (KvVersion::V2, br#"{"data":{"data":{"a":"CANARY""#),
        ] {
            let e = parse_read(kv, body, 100).unwrap_err();
            assert!(!e.contains("CANARY"), "{e}");
        }
    }

    #[test]
    fn a_secret_with_too_many_fields_is_refused_while_parsing() {
        let fields: Vec<String> = (0..200).map(|i| format!("\"f{i}\":\"CANARY\"")).collect();
        let body = format!(
            "{{\"data\":{{\"data\":{{{}}},\"metadata\":{{\"version\":1}}}}}}",
            fields.join(",")
        );
        let e = parse_read(KvVersion::V2, body.as_bytes(), 100).unwrap_err();
        assert!(
            e.contains("more than 100") && e.contains("VAULT_MAX_SECRET_FIELDS"),
            "{e}"
        );
        assert!(!e.contains("CANARY"));
        // Nested values count too.
        let nested = format!(
            "{{\"data\":{{\"data\":{{\"a\":[{}]}}}}}}",
            vec!["1"; 500].join(",")
        );
        assert!(parse_read(KvVersion::V2, nested.as_bytes(), 100).is_err());
        let d = parse_read(KvVersion::V2, body.as_bytes(), 200).unwrap();
        assert_eq!(d.field_names().count(), 200);
    }
}
