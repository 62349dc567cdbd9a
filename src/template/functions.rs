//! External Secrets Operator's template functions, with ESO's names and
//! behaviour, as Tera filters: `b64dec`, `b64enc`, `fromJson`, `toJson`,
//! `fromYaml`, `toYaml`, `filterPEM`, `filterCertChain`, `pkcs12key`,
//! `pkcs12cert`, `pkcs12keyPass`, `pkcs12certPass`, `sha256`, and Sprig's
//! `default` as `default_empty` (`lower`, `upper` and `trim` are Tera's own,
//! with the same meaning).
//! [`super::translate_go`] turns ESO's `{{ .x | filterPEM "CERTIFICATE" }}`
//! and `{{ b64dec .x }}` into these filters.
//!
//! Values are Tera (JSON) values, so text. Bytes that are not UTF-8 (a
//! decoded keystore) travel as [`BINARY`] objects between filters: `b64dec`
//! makes them, `b64enc`, `sha256` and the `pkcs12*` filters take them.
//! Errors name the filter and what was wrong with its input, never the
//! input itself.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tera::{Tera, Value};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::BasicConstraints;

/// The key of the object that carries non-UTF-8 bytes (base64 inside).
pub(crate) const BINARY: &str = "$binary";

type Args = HashMap<String, Value>;

/// Registers every function on `tera`.
pub(crate) fn register(tera: &mut Tera) {
    tera.register_filter("b64dec", |v: &Value, _: &Args| b64dec(v));
    tera.register_filter("b64enc", |v: &Value, _: &Args| {
        Ok(Value::String(STANDARD.encode(bytes(v, "b64enc")?)))
    });
    tera.register_filter("fromJson", |v: &Value, _: &Args| {
        serde_json::from_str(text(v, "fromJson")?).map_err(|e| {
            fail(
                "fromJson",
                format!("not JSON (line {}, column {})", e.line(), e.column()),
            )
        })
    });
    tera.register_filter("toJson", |v: &Value, _: &Args| {
        serde_json::to_string(v)
            .map(Value::String)
            .map_err(|_| fail("toJson", "cannot encode"))
    });
    tera.register_filter("fromYaml", |v: &Value, _: &Args| {
        crate::template::bounded::from_yaml(text(v, "fromYaml")?).map_err(|e| fail("fromYaml", e))
    });
    tera.register_filter("toYaml", |v: &Value, _: &Args| {
        serde_yaml::to_string(v)
            .map(Value::String)
            .map_err(|_| fail("toYaml", "cannot encode"))
    });
    tera.register_filter("sha256", |v: &Value, _: &Args| {
        let d = ring::digest::digest(&ring::digest::SHA256, &bytes(v, "sha256")?);
        Ok(Value::String(hex(d.as_ref())))
    });
    tera.register_filter("filterPEM", |v: &Value, a: &Args| {
        let kind = arg(a, "type", "filterPEM")?;
        let out = pem_blocks(text(v, "filterPEM")?)
            .into_iter()
            .filter(|(label, _)| label == kind)
            .map(|(label, der)| pem_encode(&label, &der))
            .collect::<String>();
        Ok(Value::String(out))
    });
    tera.register_filter("filterCertChain", |v: &Value, a: &Args| {
        filter_cert_chain(
            text(v, "filterCertChain")?,
            arg(a, "type", "filterCertChain")?,
        )
    });
    tera.register_filter("pkcs12key", |v: &Value, _: &Args| {
        pkcs12(v, "", Part::Key, "pkcs12key")
    });
    tera.register_filter("pkcs12cert", |v: &Value, _: &Args| {
        pkcs12(v, "", Part::Certs, "pkcs12cert")
    });
    tera.register_filter("pkcs12keyPass", |v: &Value, a: &Args| {
        pkcs12(
            v,
            arg(a, "password", "pkcs12keyPass")?,
            Part::Key,
            "pkcs12keyPass",
        )
    });
    tera.register_filter("pkcs12certPass", |v: &Value, a: &Args| {
        pkcs12(
            v,
            arg(a, "password", "pkcs12certPass")?,
            Part::Certs,
            "pkcs12certPass",
        )
    });
    // Sprig's `default` (the Go form `default "x"` becomes this filter):
    // the value unless it is empty ("", 0, false, null, an empty list or
    // map). A missing field stays an error, as with ESO's missingkey=error;
    // Tera's own `default(value=...)` covers a missing variable instead.
    tera.register_filter("default_empty", |v: &Value, a: &Args| {
        let fallback = a
            .get("value")
            .cloned()
            .ok_or_else(|| fail("default", "needs value=..."))?;
        let empty = match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        };
        Ok(if empty { fallback } else { v.clone() })
    });
}

/// Marks a filter error as ours: made of our own words (and counts), never
/// of a value, so the render error may repeat it (Tera's own messages are
/// never repeated: they may quote a value).
pub(crate) const OWN_MESSAGE: &str = "\u{1}secrets-sync:";

fn fail(filter: &str, what: impl std::fmt::Display) -> tera::Error {
    tera::Error::msg(format!("{OWN_MESSAGE}{filter}: {what}"))
}

fn arg<'a>(a: &'a Args, name: &str, filter: &str) -> tera::Result<&'a str> {
    a.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| fail(filter, format!("needs {name}=\"...\"")))
}

fn text<'a>(v: &'a Value, filter: &str) -> tera::Result<&'a str> {
    v.as_str()
        .ok_or_else(|| fail(filter, "takes text (not bytes, a list or a map)"))
}

/// The bytes of a text value or of a [`BINARY`] object.
fn bytes(v: &Value, filter: &str) -> tera::Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(o) => match o.get(BINARY).and_then(Value::as_str) {
            Some(b) => STANDARD
                .decode(b)
                .map_err(|_| fail(filter, "corrupt binary value")),
            None => Err(fail(filter, "takes text or bytes, not a map")),
        },
        _ => Err(fail(filter, "takes text or bytes")),
    }
}

/// Standard base64 (whitespace ignored, as ESO's input often has line
/// breaks); text when the bytes are UTF-8, else a [`BINARY`] value.
fn b64dec(v: &Value) -> tera::Result<Value> {
    let raw = decode_base64(text(v, "b64dec")?.as_bytes())
        .ok_or_else(|| fail("b64dec", "not valid base64"))?;
    Ok(match String::from_utf8(raw.to_vec()) {
        Ok(s) => Value::String(s),
        Err(e) => {
            let mut o = serde_json::Map::new();
            o.insert(BINARY.into(), Value::String(STANDARD.encode(e.as_bytes())));
            Value::Object(o)
        }
    })
}

/// Standard base64, whitespace (line breaks) ignored; `None` if it is not.
/// Serves `b64dec` and the files with `encoding: base64`.
pub(super) fn decode_base64(content: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let compact = zeroize::Zeroizing::new(
        content
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect::<Vec<u8>>(),
    );
    STANDARD
        .decode(&compact[..])
        .ok()
        .map(zeroize::Zeroizing::new)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every PEM block of `text`: (label, DER). Text between blocks is skipped;
/// a block whose body is not base64 is skipped too.
pub(crate) fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            break;
        };
        let body: String = body_start[..body_end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if let Ok(der) = STANDARD.decode(body.as_bytes()) {
            out.push((label.to_string(), der));
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    out
}

/// PEM with 64-character lines, as Go's `pem.Encode` writes it.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// ESO's filterCertChain: `leaf` (not a CA), `intermediate` (a CA issued
/// by another) or `root` (a CA that issued itself), in input order.
fn filter_cert_chain(input: &str, kind: &str) -> tera::Result<Value> {
    if !matches!(kind, "leaf" | "intermediate" | "root") {
        return Err(fail(
            "filterCertChain",
            "type must be \"leaf\", \"intermediate\" or \"root\"",
        ));
    }
    let mut out = String::new();
    for (label, der) in pem_blocks(input) {
        if label != "CERTIFICATE" {
            continue;
        }
        let cert = x509_cert::Certificate::from_der(&der).map_err(|_| {
            fail(
                "filterCertChain",
                "a CERTIFICATE block is not a certificate",
            )
        })?;
        let tbs = &cert.tbs_certificate;
        let is_ca = tbs.extensions.iter().flatten().any(|e| {
            e.extn_id == BasicConstraints::OID
                && BasicConstraints::from_der(e.extn_value.as_bytes()).is_ok_and(|b| b.ca)
        });
        let self_issued = tbs.subject == tbs.issuer;
        let keep = match kind {
            "leaf" => !is_ca,
            "intermediate" => is_ca && !self_issued,
            _ => is_ca && self_issued,
        };
        if keep {
            out.push_str(&pem_encode("CERTIFICATE", &der));
        }
    }
    Ok(Value::String(out))
}

#[derive(Clone, Copy)]
enum Part {
    Key,
    Certs,
}

/// ESO's pkcs12key/pkcs12cert(Pass): the private key (PKCS#8 PEM) or every
/// certificate (PEM, leaf first) of a PKCS#12 archive.
fn pkcs12(v: &Value, password: &str, part: Part, filter: &str) -> tera::Result<Value> {
    let der = zeroize::Zeroizing::new(bytes(v, filter)?);
    // Before any key derivation: a crafted archive asking for 2^31
    // iterations held a core for 15 minutes per attempt.
    crate::template::bounded::check_pkcs12_iterations(&der).map_err(|e| fail(filter, e))?;
    let store = p12_keystore::KeyStore::from_pkcs12(&der, password).map_err(|_| {
        fail(
            filter,
            "not a PKCS#12 archive this password opens (decode base64 first with b64dec)",
        )
    })?;
    let chain = store.private_key_chain().map(|(_, c)| c);
    let out = match part {
        Part::Key => {
            let c = chain.ok_or_else(|| fail(filter, "the archive holds no private key"))?;
            pem_encode("PRIVATE KEY", c.key())
        }
        Part::Certs => match chain {
            Some(c) => c
                .chain()
                .iter()
                .map(|cert| pem_encode("CERTIFICATE", cert.as_der()))
                .collect(),
            None => store
                .entries()
                .filter_map(|(_, e)| match e {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        Some(pem_encode("CERTIFICATE", c.as_der()))
                    }
                    _ => None,
                })
                .collect(),
        },
    };
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::secret::SecretData;
    use crate::template::SecretTemplate;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pki/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}{name}")).unwrap()
    }

    fn fixture_text(name: &str) -> String {
        String::from_utf8(fixture(name)).unwrap()
    }

    fn render(src: &str, v: Value) -> Result<String, String> {
        let Value::Object(map) = v else {
            unreachable!()
        };
        let t = SecretTemplate::compile(vec![("k".into(), src.into())])
            .map_err(|e| format!("compile: {e:?}"))?;
        t.render("k", &SecretData::new(map, None))
            .map_err(|e| e.to_string())
    }

    /// The Go pipeline, the Go call form and the Tera filter give the same.
    fn all_forms(go_pipe: &str, go_call: &str, tera: &str, v: Value) -> String {
        let a = render(go_pipe, v.clone()).unwrap();
        assert_eq!(render(go_call, v.clone()).unwrap(), a, "{go_call}");
        assert_eq!(render(tera, v).unwrap(), a, "{tera}");
        a
    }

    #[test]
    fn base64_json_yaml_hash_and_case() {
        let v = json!({"b": "aGVsbG8gd29ybGQ=", "t": " Hello ", "j": "{\"a\":[1,2]}", "y": "a: 1\nb: [x]\n"});
        assert_eq!(
            all_forms(
                "{{ .b | b64dec }}",
                "{{ b64dec .b }}",
                "{{ b | b64dec }}",
                v.clone()
            ),
            "hello world"
        );
        assert_eq!(
            render("{{ .t | b64enc }}", v.clone()).unwrap(),
            "IEhlbGxvIA=="
        );
        assert_eq!(
            render("{{ .j | fromJson | toJson }}", v.clone()).unwrap(),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(
            render("{% set o = j | fromJson %}{{ o.a[1] }}", v.clone()).unwrap(),
            "2"
        );
        assert_eq!(
            render("{{ .y | fromYaml | toJson }}", v.clone()).unwrap(),
            r#"{"a":1,"b":["x"]}"#
        );
        assert_eq!(
            render("{{ .j | fromJson | toYaml }}", v.clone()).unwrap(),
            "a:\n- 1\n- 2\n"
        );
        // sha256("hello world"), as `sha256sum` prints it.
        assert_eq!(
            render("{{ .b | b64dec | sha256 }}", v.clone()).unwrap(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            all_forms(
                "{{ .t | upper | trim }}",
                "{{ trim (upper .t) }}",
                "{{ t | upper | trim }}",
                v.clone()
            ),
            "HELLO"
        );
        assert_eq!(render("{{ .t | lower }}", v).unwrap(), " hello ");
    }

    #[test]
    fn default_is_sprigs_and_a_missing_key_stays_an_error() {
        let v = json!({"empty": "", "set": "x"});
        assert_eq!(
            all_forms(
                r#"{{ .empty | default "fallback" }}"#,
                r#"{{ default "fallback" .empty }}"#,
                r#"{{ empty | default_empty(value="fallback") }}"#,
                v.clone()
            ),
            "fallback"
        );
        assert_eq!(
            render(r#"{{ .set | default "fallback" }}"#, v.clone()).unwrap(),
            "x"
        );
        for src in ["{{ .nope | b64dec }}", r#"{{ .nope | default "x" }}"#] {
            let e = render(src, v.clone()).unwrap_err();
            assert!(e.contains("missing field: \"nope\""), "{src}: {e}");
        }
    }

    #[test]
    fn pem_filters_pick_blocks_and_chain_members() {
        let chain = fixture_text("chain.pem");
        let v = json!({"bundle": format!("{chain}{}", fixture_text("leaf.pk8.pem"))});
        let norm = |s: &str| {
            pem_blocks(s)
                .into_iter()
                .map(|(l, d)| pem_encode(&l, &d))
                .collect::<String>()
        };
        assert_eq!(
            all_forms(
                r#"{{ .bundle | filterPEM "PRIVATE KEY" }}"#,
                r#"{{ filterPEM "PRIVATE KEY" .bundle }}"#,
                r#"{{ bundle | filterPEM(type="PRIVATE KEY") }}"#,
                v.clone()
            ),
            norm(&fixture_text("leaf.pk8.pem"))
        );
        assert_eq!(
            render(r#"{{ .bundle | filterPEM "CERTIFICATE" }}"#, v.clone()).unwrap(),
            norm(&chain)
        );
        for (kind, file) in [
            ("leaf", "leaf.pem"),
            ("intermediate", "int.pem"),
            ("root", "root.pem"),
        ] {
            assert_eq!(
                render(
                    &format!(r#"{{{{ .bundle | filterCertChain "{kind}" }}}}"#),
                    v.clone()
                )
                .unwrap(),
                norm(&fixture_text(file)),
                "{kind}"
            );
        }
        let e = render(r#"{{ .bundle | filterCertChain "middle" }}"#, v).unwrap_err();
        assert!(e.contains("filterCertChain"), "{e}");
    }

    #[test]
    fn pkcs12_archives_made_by_openssl() {
        let key = fixture_text("leaf.pk8.pem");
        let leaf_and_int = format!("{}{}", fixture_text("leaf.pem"), fixture_text("int.pem"));
        let norm = |s: &str| {
            pem_blocks(s)
                .into_iter()
                .map(|(l, d)| pem_encode(&l, &d))
                .collect::<String>()
        };
        let v = json!({
            "p12": STANDARD.encode(fixture("leaf.p12")),
            "legacy": STANDARD.encode(fixture("leaf-legacy.p12")),
            "nopass": STANDARD.encode(fixture("leaf-nopass.p12")),
        });
        for field in ["p12", "legacy"] {
            assert_eq!(
                all_forms(
                    &format!(r#"{{{{ .{field} | b64dec | pkcs12keyPass "changeit" }}}}"#),
                    &format!(r#"{{{{ pkcs12keyPass "changeit" (b64dec .{field}) }}}}"#),
                    &format!(r#"{{{{ {field} | b64dec | pkcs12keyPass(password="changeit") }}}}"#),
                    v.clone()
                ),
                norm(&key),
                "{field}"
            );
            assert_eq!(
                render(
                    &format!(r#"{{{{ .{field} | b64dec | pkcs12certPass "changeit" }}}}"#),
                    v.clone()
                )
                .unwrap(),
                norm(&leaf_and_int),
                "{field}"
            );
        }
        assert_eq!(
            render("{{ .nopass | b64dec | pkcs12key }}", v.clone()).unwrap(),
            norm(&key)
        );
        assert_eq!(
            render("{{ .nopass | b64dec | pkcs12cert }}", v.clone()).unwrap(),
            norm(&leaf_and_int)
        );
        // A wrong password: an error naming the filter, nothing of the archive.
        let e = render(r#"{{ .p12 | b64dec | pkcs12keyPass "wrong" }}"#, v).unwrap_err();
        assert!(e.contains("pkcs12keyPass"), "{e}");
    }
}
