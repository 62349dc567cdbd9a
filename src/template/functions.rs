//! External Secrets Operator's template functions, with ESO's names and
//! behaviour, as Tera filters: `b64dec`, `b64enc`, `fromJson`, `toJson`,
//! `fromYaml`, `toYaml`, `filterPEM`, `filterCertChain`, `pkcs12key`,
//! `pkcs12cert`, `pkcs12keyPass`, `pkcs12certPass`, Sprig's `sha256sum` and
//! `sha1sum` (`sha256` is our older name for `sha256sum`), and Sprig's
//! `default` as `default_empty` (`lower`, `upper` and `trim` are Tera's own,
//! with the same meaning). ESO's template tests are the reference: the unit
//! tests below carry their case names.
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
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};

/// The key of the object that carries non-UTF-8 bytes (base64 inside).
pub(crate) const BINARY: &str = "$binary";

type Args = HashMap<String, Value>;

/// The functions shared by the Tera filters and the Go engine: (name, the
/// name of its one parameter if it takes one). In the Go form the parameter
/// comes first and the value last (`filterPEM "CERTIFICATE" .x`, or
/// `.x | filterPEM "CERTIFICATE"`); as a Tera filter it is named
/// (`x | filterPEM(type="CERTIFICATE")`).
const SHARED: [(&str, Option<&str>); 22] = [
    ("b64dec", None),
    ("b64enc", None),
    ("fromJson", None),
    ("toJson", None),
    ("fromYaml", None),
    ("toYaml", None),
    ("sha256", None),
    ("sha256sum", None),
    ("sha1sum", None),
    ("filterPEM", Some("type")),
    ("filterCertChain", Some("type")),
    ("pkcs12key", None),
    ("pkcs12cert", None),
    ("pkcs12keyPass", Some("password")),
    ("pkcs12certPass", Some("password")),
    ("quote", None),
    ("squote", None),
    ("indent", Some("width")),
    ("nindent", Some("width")),
    ("trimPrefix", Some("prefix")),
    ("trimSuffix", Some("suffix")),
    ("default_empty", Some("value")),
];

/// Registers every function on `tera`.
pub(crate) fn register(tera: &mut Tera) {
    for (name, param) in SHARED {
        tera.register_filter(name, move |v: &Value, a: &Args| {
            let p = match param {
                Some(p) => Some(
                    a.get(p)
                        .ok_or_else(|| fail(name, format!("needs {p}=...")))?,
                ),
                None => None,
            };
            apply(name, v, p)
        });
    }
}

/// Whether `name` is one of the [`SHARED`] functions.
pub(crate) fn is_shared(name: &str) -> bool {
    SHARED.iter().any(|(n, _)| *n == name)
}

/// The Go engine's call of a [`SHARED`] function: `args` in Go's order
/// (the parameter, then the value). `None` if `name` is not one of them.
/// The error is our own words (no value).
pub(crate) fn go_call(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let (_, param) = SHARED.iter().find(|(n, _)| *n == name)?;
    let want = if param.is_some() { 2 } else { 1 };
    if args.len() != want {
        return Some(Err(format!(
            "wrong number of args: want {want} got {}",
            args.len()
        )));
    }
    let (p, v) = if want == 2 {
        (Some(&args[0]), &args[1])
    } else {
        (None, &args[0])
    };
    Some(apply(name, v, p).map_err(|e| {
        let m = e.to_string();
        m.strip_prefix(OWN_MESSAGE)
            .map(|m| m.split_once(": ").map_or(m, |(_, why)| why).to_string())
            .unwrap_or_else(|| "failed".into())
    }))
}

/// One [`SHARED`] function applied to `v` with its parameter `p`.
fn apply(name: &str, v: &Value, p: Option<&Value>) -> tera::Result<Value> {
    let param = |what: &str| -> tera::Result<&str> {
        p.and_then(Value::as_str)
            .ok_or_else(|| fail(name, format!("needs the {what} as text")))
    };
    match name {
        "b64dec" => b64dec(v),
        "b64enc" => Ok(Value::String(STANDARD.encode(bytes(v, name)?))),
        "fromJson" => serde_json::from_str(text(v, name)?).map_err(|e| {
            fail(
                name,
                format!("not JSON (line {}, column {})", e.line(), e.column()),
            )
        }),
        "toJson" => serde_json::to_string(v)
            .map(Value::String)
            .map_err(|_| fail(name, "cannot encode")),
        "fromYaml" => {
            crate::template::bounded::from_yaml(text(v, name)?).map_err(|e| fail(name, e))
        }
        // ESO's toYaml trims the one newline YAML ends with.
        "toYaml" => serde_yaml::to_string(v)
            .map(|mut y| {
                if y.ends_with('\n') {
                    y.pop();
                }
                Value::String(y)
            })
            .map_err(|_| fail(name, "cannot encode")),
        "sha256" | "sha256sum" | "sha1sum" => {
            let algorithm = if name == "sha1sum" {
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY
            } else {
                &ring::digest::SHA256
            };
            let d = ring::digest::digest(algorithm, &bytes(v, name)?);
            Ok(Value::String(hex(d.as_ref())))
        }
        "filterPEM" => filter_pem(text(v, name)?, param("type")?),
        "filterCertChain" => filter_cert_chain(text(v, name)?, param("type")?),
        "pkcs12key" => pkcs12(v, "", Part::Key, name),
        "pkcs12cert" => pkcs12(v, "", Part::Certs, name),
        "pkcs12keyPass" => pkcs12(v, param("password")?, Part::Key, name),
        "pkcs12certPass" => pkcs12(v, param("password")?, Part::Certs, name),
        // Sprig's string functions that ESO templates use most, with
        // Sprig's argument order in the Go form (`indent 4 .x`,
        // `trimPrefix "p" .x`).
        "quote" => Ok(Value::String(go_quote(&scalar(v, name)?))),
        "squote" => Ok(Value::String(format!("'{}'", scalar(v, name)?))),
        "indent" => indent(text(v, name)?, width(p, name)?, name).map(Value::String),
        "nindent" => {
            let s = indent(text(v, name)?, width(p, name)?, name)?;
            Ok(Value::String(format!("\n{s}")))
        }
        "trimPrefix" => {
            let (s, pre) = (text(v, name)?, param("prefix")?);
            Ok(Value::String(s.strip_prefix(pre).unwrap_or(s).to_string()))
        }
        "trimSuffix" => {
            let (s, suf) = (text(v, name)?, param("suffix")?);
            Ok(Value::String(s.strip_suffix(suf).unwrap_or(s).to_string()))
        }
        // Sprig's `default` (the Go form `default "x"` becomes this
        // filter): the value unless it is empty ("", 0, false, null, an
        // empty list or map). A missing field stays an error, as with
        // ESO's missingkey=error; Tera's own `default(value=...)` covers a
        // missing variable instead.
        "default_empty" => {
            let fallback = p
                .cloned()
                .ok_or_else(|| fail("default", "needs value=..."))?;
            Ok(if is_empty(v) { fallback } else { v.clone() })
        }
        _ => Err(fail(name, "is not a function")),
    }
}

/// Bytes as a template value: text when they are UTF-8, else a [`BINARY`]
/// object (what `b64dec` gives).
pub(crate) fn bytes_value(raw: Vec<u8>) -> Value {
    match String::from_utf8(raw) {
        Ok(s) => Value::String(s),
        Err(e) => {
            let mut o = serde_json::Map::new();
            o.insert(BINARY.into(), Value::String(STANDARD.encode(e.as_bytes())));
            Value::Object(o)
        }
    }
}

/// ESO's `certSANs`: the DNS names of the first certificate of a PEM text.
pub(crate) fn cert_sans(input: &str) -> Result<Vec<String>, String> {
    use x509_cert::ext::pkix::{name::GeneralName, SubjectAltName};
    let der = std::iter::successors(next_pem_block(input), |(_, _, rest)| next_pem_block(rest))
        .find(|(label, _, _)| label.eq_ignore_ascii_case("CERTIFICATE"))
        .map(|(_, der, _)| der)
        .ok_or("failed to decode PEM block: no CERTIFICATE block")?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|_| "the CERTIFICATE block is not an X.509 certificate".to_string())?;
    let mut out = Vec::new();
    for e in cert.tbs_certificate.extensions.iter().flatten() {
        if e.extn_id == SubjectAltName::OID {
            let san = SubjectAltName::from_der(e.extn_value.as_bytes())
                .map_err(|_| "the certificate's subjectAltName cannot be read".to_string())?;
            for name in san.0 {
                if let GeneralName::DnsName(d) = name {
                    out.push(d.as_str().to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Sprig's `htpasswd USER PASSWORD "sha"`: an Apache `{SHA}` line (bcrypt,
/// Sprig's default, is salted at random: refused, the file would change at
/// every render).
pub(crate) fn htpasswd(user: &str, password: &str, algorithm: &str) -> Result<String, String> {
    if user.contains(':') {
        return Err("the user name holds a ':'".into());
    }
    if !algorithm.eq_ignore_ascii_case("sha") {
        return Err("only \"sha\" is available: bcrypt is salted at random, so the file would change at every render".into());
    }
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    Ok(format!("{user}:{{SHA}}{}", STANDARD.encode(d.as_ref())))
}

/// Sprig's `empty`: "", 0, false, null, an empty list or map.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Marks a filter error as ours: made of our own words (and counts), never
/// of a value, so the render error may repeat it (Tera's own messages are
/// never repeated: they may quote a value).
pub(crate) const OWN_MESSAGE: &str = "\u{1}secrets-sync:";

fn fail(filter: &str, what: impl std::fmt::Display) -> tera::Error {
    tera::Error::msg(format!("{OWN_MESSAGE}{filter}: {what}"))
}

fn text<'a>(v: &'a Value, filter: &str) -> tera::Result<&'a str> {
    v.as_str()
        .ok_or_else(|| fail(filter, "takes text (not bytes, a list or a map)"))
}

/// A text, number or boolean as Sprig's `strval` prints it (null is "").
fn scalar(v: &Value, filter: &str) -> tera::Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(fail(filter, "takes text, a number or a boolean")),
    }
}

/// The widest `indent`/`nindent` (every line grows by it: a bound on what a
/// template can make of a value).
const INDENT_MAX: u64 = 1000;

fn width(p: Option<&Value>, filter: &str) -> tera::Result<usize> {
    p.and_then(Value::as_u64)
        .filter(|w| *w <= INDENT_MAX)
        .and_then(|w| usize::try_from(w).ok())
        .ok_or_else(|| fail(filter, "needs a width of 0 to 1000 spaces"))
}

/// The most text `indent` may make: a value of newlines grows 1000-fold.
const INDENT_OUTPUT_MAX: usize = 8 * 1024 * 1024;

/// Sprig's indent: every line of `s` after `width` spaces; refused before
/// any allocation when that would pass [`INDENT_OUTPUT_MAX`].
fn indent(s: &str, width: usize, filter: &str) -> tera::Result<String> {
    let lines = s.bytes().filter(|b| *b == b'\n').count().saturating_add(1);
    let size = lines.saturating_mul(width).saturating_add(s.len());
    if size > INDENT_OUTPUT_MAX {
        return Err(fail(filter, "the indented text would pass 8 MiB"));
    }
    let pad = " ".repeat(width);
    Ok(format!("{pad}{}", s.replace('\n', &format!("\n{pad}"))))
}

/// Go's `%q` of a text (strconv.Quote): `"` and `\\` escaped, the C escapes
/// for control characters that have one, `\xNN` for the other ASCII
/// controls, `\uXXXX` for the Unicode space separators and format
/// characters Go does not print. (Go also escapes unassigned and private-use
/// code points, which this keeps as they are.)
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() || go_unprintable(c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Space separators (other than ' ') and format characters: not printable
/// for Go's `unicode.IsPrint`.
fn go_unprintable(c: char) -> bool {
    matches!(u32::from(c),
        0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x1680 | 0x180e
        | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f
        | 0x3000 | 0xfeff | 0xfff9..=0xfffb)
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
    Ok(bytes_value(raw.to_vec()))
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

/// Every PEM block of `text` (label, DER), read as [`next_pem_block`]
/// reads them: the tests' normal form.
#[cfg(test)]
fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((label, der, after)) = next_pem_block(rest) {
        out.push((label.to_string(), der));
        rest = after;
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

/// ESO's filterPEM: every block whose type is `kind` (ASCII case ignored,
/// as ESO compares), re-encoded. Text before the first block is skipped;
/// reading stops at the first text between blocks that is not a block (or
/// at a block whose body is not base64). ESO reports junk when no block was
/// kept and such text is left over: so does this.
fn filter_pem(input: &str, kind: &str) -> tera::Result<Value> {
    let mut rest = input.find("-----BEGIN").map_or(input, |i| &input[i..]);
    let mut out = String::new();
    while let Some((label, der, after)) = next_pem_block(rest) {
        if label.eq_ignore_ascii_case(kind) {
            out.push_str(&pem_encode(label, &der));
        }
        rest = after;
    }
    if out.is_empty() && !rest.is_empty() {
        return Err(fail(
            "filterPEM",
            "found text that is not PEM and no block of that type",
        ));
    }
    Ok(Value::String(out))
}

/// The PEM block `text` starts with (after blank space): its label, its DER
/// and what follows its END line. `None` when `text` does not start with a
/// whole block.
fn next_pem_block(text: &str) -> Option<(&str, Vec<u8>, &str)> {
    let after = text.trim_start().strip_prefix("-----BEGIN ")?;
    let (label, body) = after.split_once("-----")?;
    if label.contains('\n') {
        return None;
    }
    let end_marker = format!("-----END {label}-----");
    let body_end = body.find(&end_marker)?;
    let b64: String = body[..body_end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(b64.as_bytes()).ok()?;
    let tail = &body[body_end + end_marker.len()..];
    // The END line may end in blank space only.
    let (line, rest) = tail.split_once('\n').unwrap_or((tail, ""));
    line.trim().is_empty().then_some((label, der, rest))
}

/// The most certificates one `filterCertChain` input may hold (linking them
/// compares every pair).
const CHAIN_MAX: usize = 1000;

/// One certificate of a chain, with the key identifiers that link it.
struct ChainCert {
    der: Vec<u8>,
    /// Authority Key Identifier (`None` when absent; linking compares it
    /// as empty, as Go compares nil).
    aki: Option<Vec<u8>>,
    /// Subject Key Identifier (empty when absent).
    ski: Vec<u8>,
}

impl ChainCert {
    fn parse(der: Vec<u8>) -> Option<Self> {
        let cert = x509_cert::Certificate::from_der(&der).ok()?;
        let mut aki = None;
        let mut ski = Vec::new();
        for e in cert.tbs_certificate.extensions.iter().flatten() {
            if e.extn_id == AuthorityKeyIdentifier::OID {
                aki = AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes())
                    .ok()?
                    .key_identifier
                    .map(|k| k.as_bytes().to_vec());
            } else if e.extn_id == SubjectKeyIdentifier::OID {
                ski = SubjectKeyIdentifier::from_der(e.extn_value.as_bytes())
                    .ok()?
                    .0
                    .as_bytes()
                    .to_vec();
            }
        }
        Some(Self { der, aki, ski })
    }

    /// ESO's root: no Authority Key Identifier, or its own.
    fn is_root(&self) -> bool {
        self.aki.as_ref().is_none_or(|a| *a == self.ski)
    }

    fn pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }
}

/// ESO's ordering of a certificate chain: every PEM block of `input` must
/// be a certificate; each is linked to the first other one whose Subject
/// Key Identifier is its Authority Key Identifier; exactly one certificate
/// is nobody's issuer (the leaf), and the chain is read from it: leaf,
/// intermediates, root. Not a trust check (no signature is verified).
fn order_chain(input: &str) -> Result<Vec<ChainCert>, &'static str> {
    let mut certs = Vec::new();
    let mut rest = input;
    while let Some((_, der, after)) = next_pem_block(rest) {
        if certs.len() == CHAIN_MAX {
            return Err("more than 1000 certificates");
        }
        certs.push(ChainCert::parse(der).ok_or("a PEM block is not a certificate")?);
        rest = after;
    }
    let empty = Vec::new();
    let mut parent: Vec<Option<usize>> = vec![None; certs.len()];
    let mut is_parent = vec![false; certs.len()];
    for (i, c) in certs.iter().enumerate() {
        let aki = c.aki.as_ref().unwrap_or(&empty);
        if let Some(j) = (0..certs.len()).find(|&j| j != i && certs[j].ski == *aki) {
            parent[i] = Some(j);
            is_parent[j] = true;
        }
    }
    let mut leaves = (0..certs.len()).filter(|&i| !is_parent[i]);
    let leaf = leaves.next().ok_or("no leaf certificate found")?;
    if leaves.next().is_some() {
        return Err("found more than one leaf, or certificates of separate chains");
    }
    let mut order = vec![leaf];
    let mut at = leaf;
    while let Some(p) = parent[at] {
        if order.len() == certs.len() {
            return Err("the certificates' issuers form a cycle");
        }
        order.push(p);
        at = p;
    }
    let mut slots: Vec<Option<ChainCert>> = certs.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// ESO's filterCertChain over [`order_chain`]: `leaf` (the first, unless it
/// is a root), `intermediate` (those after it, up to a root) or `root` (the
/// last, if it is one); "" when the chain has none. A type other than these
/// three fails (ESO gives ""; a typo should not write an empty file).
fn filter_cert_chain(input: &str, kind: &str) -> tera::Result<Value> {
    if !matches!(kind, "leaf" | "intermediate" | "root") {
        return Err(fail(
            "filterCertChain",
            "type must be \"leaf\", \"intermediate\" or \"root\"",
        ));
    }
    let chain = order_chain(input).map_err(|e| fail("filterCertChain", e))?;
    let out = match kind {
        "leaf" => chain
            .first()
            .filter(|c| !c.is_root())
            .map(ChainCert::pem)
            .unwrap_or_default(),
        "intermediate" => chain
            .iter()
            .skip(1)
            .take_while(|c| !c.is_root())
            .map(ChainCert::pem)
            .collect(),
        _ => chain
            .last()
            .filter(|c| c.is_root())
            .map(ChainCert::pem)
            .unwrap_or_default(),
    };
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
            "a:\n- 1\n- 2"
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
            assert!(e.contains("no entry for key \"nope\""), "{src}: {e}");
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
        // filterCertChain takes certificates only (the key fails it, as in ESO).
        let only_chain = json!({"bundle": chain});
        for (kind, file) in [
            ("leaf", "leaf.pem"),
            ("intermediate", "int.pem"),
            ("root", "root.pem"),
        ] {
            assert_eq!(
                render(
                    &format!(r#"{{{{ .bundle | filterCertChain "{kind}" }}}}"#),
                    only_chain.clone()
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

    /// ESO's `TestFilterPEM` cases (runtime/template/v2/pem_test.go), with
    /// our fixtures for its certificate and key: the type is matched without
    /// regard to case (ESO's cases ask for "certificate" and "private key").
    #[test]
    fn eso_filter_pem_cases() {
        let cert = fixture_text("leaf.pem");
        let other = fixture_text("root.pem");
        let key = fixture_text("leaf.pk8.pem");
        let run = |input: String, kind: &str| {
            filter_pem(&input, kind).map(|v| v.as_str().unwrap().to_string())
        };
        let cases: [(&str, String, &str, Option<String>); 8] = [
            (
                "extract cert / cert first",
                format!("{cert}{key}"),
                "certificate",
                Some(cert.clone()),
            ),
            (
                "extract cert / key first",
                format!("{key}{cert}"),
                "certificate",
                Some(cert.clone()),
            ),
            (
                "extract multiple certs",
                format!("{key}{cert}{key}{other}"),
                "certificate",
                Some(format!("{cert}{other}")),
            ),
            (
                "extract key",
                format!("{key}{cert}"),
                "private key",
                Some(key.clone()),
            ),
            (
                "key with junk",
                format!("{cert}{key}some ---junk---"),
                "private key",
                Some(key.clone()),
            ),
            (
                "begin/end with junk",
                format!("some junk{cert}{key}some ---junk---"),
                "private key",
                Some(key.clone()),
            ),
            (
                "interleaved junk",
                format!("{cert}some junk{key}"),
                "private key",
                None,
            ),
            (
                "err when junk",
                "---junk---".to_string(),
                "private key",
                None,
            ),
        ];
        for (name, input, kind, want) in cases {
            match (run(input, kind), want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{name}"),
                (Err(e), None) => assert!(e.to_string().contains("filterPEM"), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // Nothing of that type and nothing left over: empty, not an error.
        assert_eq!(run(cert.clone(), "PRIVATE KEY").unwrap(), "");
        assert_eq!(run(String::new(), "CERTIFICATE").unwrap(), "");
    }

    /// ESO's `TestFilterCertChain` cases: the chain is ordered by key
    /// identifiers, whatever order the input has.
    #[test]
    fn eso_filter_cert_chain_cases() {
        let (leaf, int, root) = (
            fixture_text("leaf.pem"),
            fixture_text("int.pem"),
            fixture_text("root.pem"),
        );
        let key = fixture_text("other.key");
        let run = |parts: &[&str], kind: &str| {
            filter_cert_chain(&parts.concat(), kind).map(|v| v.as_str().unwrap().to_string())
        };
        let cases: [(&str, Vec<&str>, &str, Option<&str>); 12] = [
            ("extract leaf cert / empty cert chain", vec![], "leaf", None),
            (
                "extract leaf cert / cert chain with pkey",
                vec![&leaf, &key],
                "leaf",
                None,
            ),
            (
                "extract leaf cert / leaf cert only",
                vec![&leaf],
                "leaf",
                Some(&leaf),
            ),
            (
                "extract leaf cert / cert chain without root",
                vec![&leaf, &int],
                "leaf",
                Some(&leaf),
            ),
            (
                "extract leaf cert / root cert only",
                vec![&root],
                "leaf",
                Some(""),
            ),
            (
                "extract leaf cert / full cert chain",
                vec![&leaf, &int, &root],
                "leaf",
                Some(&leaf),
            ),
            (
                "extract intermediate cert / leaf cert only",
                vec![&leaf],
                "intermediate",
                Some(""),
            ),
            (
                "extract intermediate cert / cert chain without root",
                vec![&leaf, &int],
                "intermediate",
                Some(&int),
            ),
            (
                "extract intermediate cert / full cert chain",
                vec![&leaf, &int, &root],
                "intermediate",
                Some(&int),
            ),
            (
                "extract root cert / leaf cert only",
                vec![&leaf],
                "root",
                Some(""),
            ),
            (
                "extract root cert / root cert only",
                vec![&root],
                "root",
                Some(&root),
            ),
            (
                "extract root cert / full cert chain",
                vec![&leaf, &int, &root],
                "root",
                Some(&root),
            ),
        ];
        for (name, parts, kind, want) in cases {
            match (run(&parts, kind), want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{name}"),
                (Err(e), None) => assert!(e.to_string().contains("filterCertChain"), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
        // Any input order gives the same chain; two chains are refused.
        assert_eq!(run(&[&root, &leaf, &int], "intermediate").unwrap(), int);
        assert!(run(&[&leaf, &leaf], "leaf").is_err());
    }

    /// Sprig's hash names, as `sha256sum`/`sha1sum` print them.
    #[test]
    fn sprig_hash_names() {
        let v = json!({"t": "hello world"});
        assert_eq!(
            render("{{ .t | sha256sum }}", v.clone()).unwrap(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            render("{{ sha256sum .t }}", v.clone()).unwrap(),
            render("{{ .t | sha256 }}", v.clone()).unwrap()
        );
        assert_eq!(
            render("{{ .t | sha1sum }}", v).unwrap(),
            "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"
        );
    }

    /// Sprig's string functions in the three forms, with Go's own outputs
    /// (`%q` of Go's strconv.Quote; Sprig's indent/nindent/trimPrefix).
    #[test]
    fn sprig_string_functions() {
        let v = json!({"t": "a \"b\"\\\n\tc\u{7f}\u{a0}é", "l": "x\ny", "n": 5, "p": "secret/app"});
        assert_eq!(
            all_forms(
                "{{ .t | quote }}",
                "{{ quote .t }}",
                "{{ t | quote }}",
                v.clone()
            ),
            r#""a \"b\"\\\n\tc\x7f\u00a0é""#
        );
        assert_eq!(render("{{ .n | squote }}", v.clone()).unwrap(), "'5'");
        assert_eq!(
            all_forms(
                "{{ .l | indent 2 }}",
                "{{ indent 2 .l }}",
                "{{ l | indent(width=2) }}",
                v.clone()
            ),
            "  x\n  y"
        );
        assert_eq!(
            render("{{ .l | nindent 4 }}", v.clone()).unwrap(),
            "\n    x\n    y"
        );
        assert_eq!(
            all_forms(
                r#"{{ .p | trimPrefix "secret/" }}"#,
                r#"{{ trimPrefix "secret/" .p }}"#,
                r#"{{ p | trimPrefix(prefix="secret/") }}"#,
                v.clone()
            ),
            "app"
        );
        assert_eq!(
            render(r#"{{ .p | trimSuffix "/app" }}"#, v.clone()).unwrap(),
            "secret"
        );
        assert_eq!(
            render(r#"{{ .p | trimSuffix "nope" }}"#, v.clone()).unwrap(),
            "secret/app"
        );
        let e = render("{{ .l | indent 100000 }}", v).unwrap_err();
        assert!(e.contains("indent"), "{e}");
        // A value of 64 Ki newlines indented by 1000 would be 64 MiB: refused,
        // and no error carries the value (a canary in it).
        let bomb =
            json!({"b": format!("CANARY-7f3a{}", "\n".repeat(64 * 1024)), "j": "CANARY-7f3a junk"});
        for src in [
            "{{ .b | indent 1000 }}",
            "{{ .b | nindent 1000 }}",
            r#"{{ .j | filterPEM "CERTIFICATE" }}"#,
            r#"{{ .j | filterCertChain "leaf" }}"#,
        ] {
            let e = render(src, bomb.clone()).unwrap_err();
            assert!(!e.contains("CANARY"), "{src}: {e}");
        }
        assert!(render("{{ .b | indent 1000 }}", json!({"b": "x"})).is_ok());
    }
}
