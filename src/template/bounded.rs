//! Bounds on the work a secret value can drive inside a template function.
//!
//! A value comes from Vault (or from whoever could write it there) and is
//! treated as hostile: every parser or key derivation it reaches has a cap
//! that holds before the work is done, and passing it is an error naming
//! the function, never an abort or a stuck core.
//!
//! * `fromYaml`: YAML aliases expand to copies of what they name; a 5 KB
//!   "billion laughs" document became 71 MB (50 KB aborted the process).
//!   [`from_yaml`] builds the value itself and counts every node and string
//!   byte as the aliases are expanded: at most [`YAML_MAX_NODES`] nodes and
//!   [`YAML_MAX_BYTES`] bytes of strings, [`YAML_MAX_DEPTH`] levels.
//! * `pkcs12*`: the iteration counts of every key derivation and MAC an
//!   archive declares are read from its DER before anything is derived
//!   ([`check_pkcs12_iterations`]); more than [`PKCS12_MAX_ITERATIONS`] is
//!   refused (archives of OpenSSL use 2 048, Java's 10 000 to 100 000).

use serde_json::Value;

use crate::secret::{bounded_value, ValueBudget};

/// Most nodes (scalars, sequences, maps) one `fromYaml` value may expand to.
pub(crate) const YAML_MAX_NODES: usize = 100_000;
/// Most bytes of strings (keys and values) one `fromYaml` value may hold.
pub(crate) const YAML_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Deepest nesting of a `fromYaml` value.
pub(crate) const YAML_MAX_DEPTH: usize = 64;
/// Most iterations of one PKCS#12 key derivation or MAC.
pub(crate) const PKCS12_MAX_ITERATIONS: u64 = 1_000_000;

/// Parses YAML into a JSON value within the bounds above. The error says
/// which bound, or where the YAML is invalid; never the content.
pub(crate) fn from_yaml(text: &str) -> Result<Value, String> {
    let mut budget = ValueBudget {
        nodes: YAML_MAX_NODES,
        bytes: YAML_MAX_BYTES,
        depth: YAML_MAX_DEPTH,
    };
    let de = serde_yaml::Deserializer::from_str(text);
    bounded_value(de, &mut budget).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        // Our own bounds' messages hold no content; serde_yaml's may quote
        // it (and it prefixes the path, e.g. `l[2731]: `, and appends the
        // location).
        if msg.contains("the value has too many nodes") {
            format!("the value expands to more than {YAML_MAX_NODES} nodes (aliases included)")
        } else if msg.contains("the value has too many bytes") {
            format!(
                "the value expands to more than {YAML_MAX_BYTES} bytes of text (aliases included)"
            )
        } else if msg.contains("the value is nested too deep") {
            format!("the value is nested deeper than {YAML_MAX_DEPTH} levels")
        } else if msg.contains("repetition limit") || msg.contains("recursion limit") {
            "the value expands too far (YAML aliases or nesting past the parser's limits)".into()
        } else {
            format!("not YAML{at}")
        }
    })
}

/// Deepest nesting of `for` loops in a template: each loop runs at most
/// 10 000 times (`range`) or over a value of a bounded answer, so two
/// levels are at most 10^8 iterations; more is refused at `check`.
pub(crate) const MAX_LOOP_DEPTH: usize = 2;

/// What a template may not contain, checked once when it is compiled: the
/// constructs whose cost a config author (or a translated Go template)
/// could make unbounded. Macros (`self::` recursion overflowed the stack
/// and aborted the process), `include`/`extends`/`import` (a template
/// including itself), a `set` whose value reads the variable it sets (the
/// string doubles every loop iteration), and `for` loops nested deeper
/// than [`MAX_LOOP_DEPTH`].
pub(crate) fn check_structure(ast: &[tera::ast::Node]) -> Result<(), String> {
    walk_nodes(ast, 0)
}

fn walk_nodes(nodes: &[tera::ast::Node], loops: usize) -> Result<(), String> {
    use tera::ast::Node;
    for n in nodes {
        match n {
            Node::MacroDefinition(..) | Node::ImportMacro(..) => {
                return Err("macros are not supported (a recursive macro can exhaust the stack); use a loop or a filter".into())
            }
            Node::Include(..) | Node::Extends(..) => {
                return Err("include and extends are not supported: each template is one string".into())
            }
            Node::Set(_, set) => {
                // The expression's debug form names every variable it reads
                // as Ident("name") (Tera's AST has no visitor).
                let debug = format!("{:?}", set.value);
                let own = format!("Ident({:?})", set.key);
                let own_path = format!("Ident(\"{}.", set.key);
                let own_index = format!("Ident(\"{}[", set.key);
                if debug.contains(&own) || debug.contains(&own_path) || debug.contains(&own_index) {
                    return Err(format!(
                        "{{% set {} = ... %}} reads the variable it sets, which can grow it without bound; use another name",
                        set.key
                    ));
                }
            }
            Node::Forloop(_, f, _) => {
                let depth = loops + 1;
                if depth > MAX_LOOP_DEPTH {
                    return Err(format!(
                        "for loops are nested {depth} deep; at most {MAX_LOOP_DEPTH} levels are allowed"
                    ));
                }
                walk_nodes(&f.body, depth)?;
                if let Some(empty) = &f.empty_body {
                    walk_nodes(empty, loops)?;
                }
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    walk_nodes(body, loops)?;
                }
                if let Some((_, body)) = &i.otherwise {
                    walk_nodes(body, loops)?;
                }
            }
            Node::FilterSection(_, f, _) => walk_nodes(&f.body, loops)?,
            Node::Block(_, b, _) => walk_nodes(&b.body, loops)?,
            _ => {}
        }
    }
    Ok(())
}

/// One DER element: tag byte, content, and the bytes after it.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    if tag & 0x1f == 0x1f {
        // High tag numbers do not occur in PKCS#12.
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;

/// Every iteration count `der` declares where it can be seen without
/// decrypting: in any SEQUENCE, an INTEGER right after an OCTET STRING (the
/// salt) is one (PBKDF2-params, pkcs-12PbeParams, MacData). OCTET STRINGs
/// that hold DER (the `data` content of the archive) are walked too. More
/// than [`PKCS12_MAX_ITERATIONS`] anywhere is an error.
pub(crate) fn check_pkcs12_iterations(der: &[u8]) -> Result<(), String> {
    let mut budget = 10_000usize;
    walk(der, 0, &mut budget)
}

fn walk(mut b: &[u8], depth: usize, budget: &mut usize) -> Result<(), String> {
    if depth > 32 {
        return Ok(());
    }
    let mut prev: Option<u8> = None;
    while !b.is_empty() {
        *budget = match budget.checked_sub(1) {
            Some(n) => n,
            // A structure this large is not an archive we derive from here;
            // p12-keystore refuses what is not PKCS#12.
            None => return Err("the archive has too many elements".into()),
        };
        let Some((tag, content, rest)) = tlv(b) else {
            return Ok(());
        };
        match tag {
            INTEGER if prev == Some(OCTET_STRING) => {
                let count = content
                    .iter()
                    .skip_while(|&&x| x == 0)
                    .try_fold(0u64, |acc, &x| {
                        acc.checked_mul(256).map(|a| a | u64::from(x))
                    })
                    .unwrap_or(u64::MAX);
                if count > PKCS12_MAX_ITERATIONS {
                    return Err(format!(
                        "the archive asks for {count} key-derivation iterations, more than the {PKCS12_MAX_ITERATIONS} allowed; re-export it with fewer (e.g. openssl pkcs12 -iter 2048)"
                    ));
                }
            }
            OCTET_STRING => walk(content, depth + 1, budget)?,
            t if t & 0x20 != 0 => walk(content, depth + 1, budget)?,
            _ => {}
        }
        prev = Some(tag);
        b = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_bomb_is_refused_quickly_and_plain_yaml_still_parses() {
        // The classic "billion laughs": serde_yaml's own repetition limit.
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            bomb.push_str(&format!(
                "{}: &{} [*{},*{},*{},*{},*{},*{},*{},*{},*{}]\n",
                w[1], w[1], w[0], w[0], w[0], w[0], w[0], w[0], w[0], w[0], w[0]
            ));
        }
        let e = from_yaml(&bomb).unwrap_err();
        assert!(e.contains("expands too far"), "{e}");
        // A big anchored string used many times: within serde_yaml's limit
        // (it counts events, not bytes), 16 KB would become 12 MB.
        let wide = format!(
            "s: &s \"{}\"\nl: [{}]\n",
            "lol".repeat(1333),
            vec!["*s"; 3000].join(",")
        );
        assert!(wide.len() < 20_000);
        let t = std::time::Instant::now();
        let e = from_yaml(&wide).unwrap_err();
        assert!(e.contains("more than 8388608 bytes"), "{e}");
        assert!(!e.contains("lol"), "{e}");
        // And many small nodes: past the node count.
        let many = format!(
            "s: &s [1,2,3,4,5,6,7,8,9,10]\nl: [{}]\n",
            vec!["*s"; 12000].join(",")
        );
        let e = from_yaml(&many).unwrap_err();
        assert!(e.contains("more than 100000 nodes"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        let v =
            from_yaml("user: app\nport: 5432\nlist: [a, b]\nnested: {x: true, y: null}\nf: 1.5\n")
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user": "app", "port": 5432, "list": ["a", "b"],
                               "nested": {"x": true, "y": null}, "f": 1.5})
        );
        let deep = "[".repeat(100) + &"]".repeat(100);
        let e = from_yaml(&deep).unwrap_err();
        assert!(
            e.contains("nested deeper") || e.contains("expands too far"),
            "{e}"
        );
        assert!(from_yaml("a: [b").unwrap_err().starts_with("not YAML"));
    }

    #[test]
    fn pkcs12_iteration_counts_are_read_before_any_derivation() {
        let fixture = |n: &str| {
            std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/pki")
                    .join(n),
            )
            .unwrap()
        };
        for ok in ["leaf.p12", "leaf-legacy.p12", "leaf-nopass.p12"] {
            assert_eq!(check_pkcs12_iterations(&fixture(ok)), Ok(()), "{ok}");
        }
        // openssl pkcs12 -export -iter 2000000 -maciter
        let e = check_pkcs12_iterations(&fixture("leaf-2m-iter.p12")).unwrap_err();
        assert!(e.contains("2000000 key-derivation iterations"), "{e}");
        // A MacData with 2^31-1 iterations: SEQUENCE { DigestInfo, salt, iter }.
        let mac = [
            0x30, 0x13, 0x30, 0x05, 0x30, 0x03, 0x06, 0x01, 0x00, 0x04, 0x04, 1, 2, 3, 4, 0x02,
            0x04, 0x7f, 0xff, 0xff, 0xff,
        ];
        assert!(check_pkcs12_iterations(&mac)
            .unwrap_err()
            .contains("2147483647"));
    }
}
