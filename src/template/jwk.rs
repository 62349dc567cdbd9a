//! ESO's `jwkPublicKeyPem` and `jwkPrivateKeyPem`: a JSON Web Key (RFC
//! 7517/7518: RSA, or EC on P-256, P-384, P-521) as the PEM Go's
//! `x509.MarshalPKIXPublicKey` / `x509.MarshalPKCS8PrivateKey` write: a
//! `PUBLIC KEY` (SubjectPublicKeyInfo) or `PRIVATE KEY` (PKCS#8 holding a
//! PKCS#1 RSAPrivateKey, or an RFC 5915 ECPrivateKey without parameters and
//! with the public point). The DER is built here (a few tags); nothing is
//! computed from the key but its layout. Errors name the JWK member, never
//! its value.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// `rsaEncryption` (1.2.840.113549.1.1.1) with its NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// A curve: its JWK name, its OID (DER), and its field size in bytes.
const CURVES: [(&str, &[u8], usize); 3] = [
    (
        "P-256",
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        32,
    ),
    ("P-384", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48),
    ("P-521", &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66),
];

/// A DER element: tag, length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A DER INTEGER of the unsigned big-endian `n` (minimal, with a 0 byte
/// before a high bit).
fn uint(n: &[u8]) -> Vec<u8> {
    let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
    let mut body = n[first..].to_vec();
    if body.is_empty() || body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    tlv(0x02, &body)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(bytes);
    tlv(0x03, &body)
}

/// The JWK's member `name`, base64url-decoded.
fn member(jwk: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the JWK has no \"{name}\""))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("the JWK's \"{name}\" is not base64url"))
}

/// `v` left-padded with zeros to `size` bytes (refused when longer).
fn padded(mut v: Vec<u8>, size: usize, name: &str) -> Result<Vec<u8>, String> {
    while v.len() > size && v.first() == Some(&0) {
        v.remove(0);
    }
    if v.len() > size {
        return Err(format!(
            "the JWK's \"{name}\" is longer than its curve allows"
        ));
    }
    let mut out = vec![0; size - v.len()];
    out.extend(v);
    Ok(out)
}

fn parse(text: &str) -> Result<Value, String> {
    let jwk: Value =
        serde_json::from_str(text).map_err(|_| "not a JSON Web Key (JSON)".to_string())?;
    if !jwk.is_object() {
        return Err("not a JSON Web Key (an object)".into());
    }
    Ok(jwk)
}

fn kty(jwk: &Value) -> Result<&str, String> {
    jwk.get("kty")
        .and_then(Value::as_str)
        .ok_or_else(|| "the JWK has no \"kty\"".to_string())
}

/// The curve of an EC JWK: its OID and field size.
fn curve(jwk: &Value) -> Result<(&'static [u8], usize), String> {
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    CURVES
        .iter()
        .find(|(name, _, _)| *name == crv)
        .map(|(_, oid, size)| (*oid, *size))
        .ok_or_else(|| "the JWK's \"crv\" is not P-256, P-384 or P-521".to_string())
}

/// The uncompressed public point `04 || x || y`.
fn ec_point(jwk: &Value, size: usize) -> Result<Vec<u8>, String> {
    let mut point = vec![0x04];
    point.extend(padded(member(jwk, "x")?, size, "x")?);
    point.extend(padded(member(jwk, "y")?, size, "y")?);
    Ok(point)
}

/// ESO's `jwkPublicKeyPem`: the key's SubjectPublicKeyInfo as `PUBLIC KEY`.
pub(crate) fn public_key_pem(text: &str) -> Result<String, String> {
    let jwk = parse(text)?;
    let der = match kty(&jwk)? {
        "RSA" => {
            let key = seq(&[&uint(&member(&jwk, "n")?), &uint(&member(&jwk, "e")?)]);
            seq(&[RSA_ALGORITHM, &bit_string(&key)])
        }
        "EC" => {
            let (oid, size) = curve(&jwk)?;
            seq(&[
                &seq(&[EC_PUBLIC_KEY, oid]),
                &bit_string(&ec_point(&jwk, size)?),
            ])
        }
        _ => return Err("the JWK's \"kty\" is not RSA or EC".into()),
    };
    Ok(super::functions::pem_encode("PUBLIC KEY", &der))
}

/// ESO's `jwkPrivateKeyPem`: the key as PKCS#8 `PRIVATE KEY`.
pub(crate) fn private_key_pem(text: &str) -> Result<String, String> {
    let jwk = parse(text)?;
    let version = uint(&[0]);
    let der = match kty(&jwk)? {
        "RSA" => {
            let mut parts = vec![uint(&[0])];
            for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                parts.push(uint(&member(&jwk, name)?));
            }
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let rsa = seq(&refs);
            seq(&[&version, RSA_ALGORITHM, &tlv(0x04, &rsa)])
        }
        "EC" => {
            let (oid, size) = curve(&jwk)?;
            let d = padded(member(&jwk, "d")?, size, "d")?;
            let public = tlv(0xa1, &bit_string(&ec_point(&jwk, size)?));
            let ec = seq(&[&uint(&[1]), &tlv(0x04, &d), &public]);
            seq(&[&version, &seq(&[EC_PUBLIC_KEY, oid]), &tlv(0x04, &ec)])
        }
        _ => return Err("the JWK's \"kty\" is not RSA or EC".into()),
    };
    Ok(super::functions::pem_encode("PRIVATE KEY", &der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(uint(&[0, 0, 0x7f]), vec![0x02, 1, 0x7f]);
        assert_eq!(uint(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(uint(&[]), vec![0x02, 1, 0]);
    }

    #[test]
    fn errors_name_the_member_never_its_value() {
        for (jwk, why) in [
            ("canary-not-json", "not a JSON Web Key"),
            (r#"{"kty": "oct", "k": "canary"}"#, "not RSA or EC"),
            (
                r#"{"kty": "RSA", "n": "canary!!", "e": "AQAB"}"#,
                "\"n\" is not base64url",
            ),
            (
                r#"{"kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"}"#,
                "P-256, P-384 or P-521",
            ),
            (r#"{"kty": "RSA", "e": "AQAB"}"#, "has no \"n\""),
        ] {
            let e = public_key_pem(jwk).unwrap_err();
            assert!(e.contains(why) && !e.contains("canary"), "{jwk}: {e}");
        }
    }
}
