//! Go templates of the tools `convert` reads, rewritten into the template
//! forms secrets-sync renders (see [`crate::template`]).
//!
//! Two dialects: Vault Agent's (consul-template: the secret is fetched
//! inside the template by `{{ with secret "PATH" }}` and read as
//! `.Data.data.KEY` on KV v2 or `.Data.KEY` otherwise), and External
//! Secrets Operator's (the template sees the Kubernetes Secret's keys as
//! `.KEY`). Both become a template over one secret's fields: `.KEY`, the ESO
//! functions, `index . "KEY"`, and `range $k, $v := .Data...` as a Tera
//! `for` loop. Every other action (`if`, `with` of anything else, other
//! functions, variables) is reported, never guessed at.

use std::collections::BTreeMap;

use crate::template::golex::{pieces, tokens, unquote, Piece};

/// The dialect of a template and what it needs.
pub(super) enum Dialect<'a> {
    /// consul-template (Vault Agent and its injector).
    Agent,
    /// ESO: the Kubernetes Secret key → the Vault field it holds.
    Eso {
        renames: &'a BTreeMap<String, String>,
    },
}

/// A `with secret "PATH" "k=v"...` the template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SecretCall {
    pub(super) path: String,
    /// The `k=v` arguments (a write: dynamic POST or a PKI issue).
    pub(super) params: Vec<(String, String)>,
}

/// A translated template.
#[derive(Debug, Default)]
pub(super) struct Translated {
    pub(super) text: String,
    /// Distinct secrets the template reads (Agent dialect).
    pub(super) calls: Vec<SecretCall>,
    /// `.Data.data` was used: the secret is a KV v2 one.
    pub(super) kv2: bool,
    /// Actions that could not be converted, each with why.
    pub(super) problems: Vec<String>,
}

/// Literal text of a Go template as Tera text that renders as itself: the
/// input is data, so a `{%` or `{#` in it (Tera's tags and comments, which
/// Go leaves alone) is wrapped in `{% raw %}`; text that holds
/// `{% endraw %}` itself cannot be, and is reported.
fn literal(text: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    if !(text.contains("{%") || text.contains("{#")) {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    if text.contains("endraw") {
        return Err("the template's text holds `endraw`, which cannot be kept as plain text in a Tera template; rewrite it by hand".into());
    }
    Ok(std::borrow::Cow::Owned(format!(
        "{{% raw %}}{text}{{% endraw %}}"
    )))
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A field reference in our Go form: `.name`, or `(index . "na-me")`.
fn field_ref(name: &str) -> String {
    if is_ident(name) {
        format!(".{name}")
    } else {
        format!("(index . {})", serde_json::Value::from(name))
    }
}

/// An open block while walking the actions.
enum Block {
    /// `with secret`: dropped, its `end` too.
    WithSecret,
    /// `range $k, $v := .Data[.data]` → `{% for k, v in secret %}`.
    Range { key: String, value: String },
    /// Anything else (already reported).
    Other,
}

/// Translates `src` of `dialect`. The result's `text` is only meaningful
/// when `problems` is empty.
pub(super) fn translate(src: &str, dialect: &Dialect) -> Translated {
    let mut t = Translated::default();
    let pieces = match pieces(src) {
        Ok(p) => p,
        Err(e) => {
            t.problems.push(e);
            return t;
        }
    };
    let mut stack: Vec<Block> = Vec::new();
    // A dropped action's `-}}` trims the whitespace that follows it.
    let mut trim_next = false;
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                let text = if trim_next { text.trim_start() } else { text };
                trim_next = false;
                match literal(text) {
                    Ok(lit) => t.text.push_str(&lit),
                    Err(e) => t.problems.push(e),
                }
            }
            Piece::Action {
                body,
                trim_left,
                trim_right,
            } => {
                let toks = tokens(body);
                let first = toks.first().map(String::as_str).unwrap_or_default();
                let open = if trim_left { "{%- " } else { "{% " };
                let close = if trim_right { " -%}" } else { " %}" };
                let mut drop = |t: &mut Translated| {
                    if trim_left {
                        let kept = t.text.trim_end().len();
                        t.text.truncate(kept);
                    }
                    trim_next = trim_right;
                };
                if body.starts_with("/*") {
                    drop(&mut t);
                    continue;
                }
                match (first, dialect) {
                    ("with", Dialect::Agent)
                        if toks.get(1).map(String::as_str) == Some("secret") =>
                    {
                        match secret_call(&toks[2..]) {
                            Ok(call) => {
                                if !t.calls.contains(&call) {
                                    t.calls.push(call);
                                }
                            }
                            Err(e) => t.problems.push(format!("`{{{{ {body} }}}}`: {e}")),
                        }
                        stack.push(Block::WithSecret);
                        drop(&mut t);
                    }
                    ("range", _) => match range_vars(&toks, dialect, &stack) {
                        Some((key, value, kv2)) => {
                            t.kv2 |= kv2;
                            t.text
                                .push_str(&format!("{open}for {key}, {value} in secret{close}"));
                            stack.push(Block::Range { key, value });
                        }
                        None => {
                            t.problems.push(format!(
                                "`{{{{ {body} }}}}`: only `range $k, $v := .Data.data` (or `.Data`) over the secret's fields converts"
                            ));
                            stack.push(Block::Other);
                        }
                    },
                    ("end", _) => match stack.pop() {
                        Some(Block::WithSecret) => drop(&mut t),
                        Some(Block::Range { .. }) => {
                            t.text.push_str(&format!("{open}endfor{close}"));
                        }
                        Some(Block::Other) => {}
                        None => t.problems.push("an `{{ end }}` without its block".into()),
                    },
                    (
                        "if" | "else" | "with" | "define" | "template" | "block" | "break"
                        | "continue",
                        _,
                    ) => {
                        t.problems.push(format!(
                            "`{{{{ {body} }}}}`: Go's `{first}` has no conversion; write it as a Tera tag (`{{% if %}}`, ...) by hand"
                        ));
                        if matches!(first, "if" | "with" | "define" | "block") {
                            stack.push(Block::Other);
                        }
                    }
                    _ => match expression(&toks, dialect, &stack) {
                        Ok((expr, kv2)) => {
                            t.kv2 |= kv2;
                            let open = if trim_left { "{{- " } else { "{{ " };
                            let close = if trim_right { " -}}" } else { " }}" };
                            t.text.push_str(&format!("{open}{expr}{close}"));
                        }
                        Err(e) => t.problems.push(format!("`{{{{ {body} }}}}`: {e}")),
                    },
                }
            }
        }
    }
    if !stack.is_empty() {
        t.problems
            .push("a block (`with`, `range`, `if`) is not closed by `{{ end }}`".into());
    }
    t
}

/// `"PATH" "k=v"...` after `with secret`.
fn secret_call(args: &[String]) -> Result<SecretCall, String> {
    let mut it = args.iter();
    let path = it
        .next()
        .and_then(|a| unquote(a))
        .ok_or("the secret's path must be a string literal")?;
    let mut params = Vec::new();
    for a in it {
        let p = unquote(a).ok_or("the secret's arguments must be \"key=value\" strings")?;
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("the argument {p:?} is not key=value"))?;
        params.push((k.to_string(), v.to_string()));
    }
    Ok(SecretCall {
        path: path.trim_matches('/').to_string(),
        params,
    })
}

/// `range $k, $v := .Data.data` (Agent, inside `with secret`) or `range
/// $k, $v := .` (ESO): the loop variables, and whether it was KV v2's.
fn range_vars(
    toks: &[String],
    dialect: &Dialect,
    stack: &[Block],
) -> Option<(String, String, bool)> {
    let [_, k, comma, v, assign, over] = toks else {
        return None;
    };
    if comma != "," || assign != ":=" {
        return None;
    }
    let key = k.strip_prefix('$').filter(|n| is_ident(n))?;
    let value = v.strip_prefix('$').filter(|n| is_ident(n))?;
    let kv2 = match dialect {
        Dialect::Agent if in_secret(stack) => match over.as_str() {
            ".Data.data" => true,
            ".Data" => false,
            _ => return None,
        },
        Dialect::Eso { .. } if over == "." => false,
        _ => return None,
    };
    Some((key.to_string(), value.to_string(), kv2))
}

fn in_secret(stack: &[Block]) -> bool {
    stack.iter().any(|b| matches!(b, Block::WithSecret))
}

/// An expression action: field references rewritten to our Go form, loop
/// variables to Tera's; every function must be one we render.
fn expression(
    toks: &[String],
    dialect: &Dialect,
    stack: &[Block],
) -> Result<(String, bool), String> {
    let loop_var = |name: &str| {
        stack.iter().rev().find_map(|b| match b {
            Block::Range { key, value } if key == name || value == name => Some(name.to_string()),
            _ => None,
        })
    };
    let mut kv2 = false;
    let mut out: Vec<String> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        let tok = toks[i].as_str();
        if matches!(tok, "(" | ")" | "|")
            || unquote(tok).is_some()
            || tok.parse::<f64>().is_ok()
            || matches!(tok, "true" | "false")
        {
            out.push(tok.to_string());
        } else if let Some(var) = tok.strip_prefix('$') {
            let name =
                loop_var(var).ok_or_else(|| format!("the variable ${var} has no conversion"))?;
            out.push(name);
        } else if tok == "index" {
            // `index . "KEY"` (ESO) or `index .Data.data "KEY"` (Agent).
            let (operand, key) = (toks.get(i + 1), toks.get(i + 2).and_then(|k| unquote(k)));
            let Some(key) = key else {
                return Err("`index` converts only as `index . \"KEY\"`".into());
            };
            let field = match (operand.map(String::as_str), dialect) {
                (Some("."), Dialect::Eso { renames }) => renames.get(&key).cloned().unwrap_or(key),
                (Some(".Data.data"), Dialect::Agent) if in_secret(stack) => {
                    kv2 = true;
                    key
                }
                (Some(".Data"), Dialect::Agent) if in_secret(stack) => key,
                _ => return Err("`index` converts only over the secret's fields".into()),
            };
            out.push(field_ref(&field));
            i += 3;
            continue;
        } else if tok.starts_with('.') {
            let (field, is_kv2) = dotted(tok, dialect, stack)?;
            kv2 |= is_kv2;
            out.push(field);
        } else if let Some(ours) = function(tok, dialect) {
            out.push(ours.to_string());
        } else {
            return Err(match dialect {
                Dialect::Agent => format!(
                    "the function `{tok}` has no conversion (these do: {})",
                    CONSUL_FUNCTIONS.map(|(n, _)| n).join(", ")
                ),
                Dialect::Eso { .. } => format!(
                    "the function `{tok}` has no conversion (secrets-sync has ESO's functions and lower/upper/trim/default)"
                ),
            });
        }
        i += 1;
    }
    Ok((out.join(" "), kv2))
}

/// consul-template's functions that have an ESO-named counterpart here:
/// (consul-template's name, ours).
const CONSUL_FUNCTIONS: [(&str, &str); 10] = [
    ("toUpper", "upper"),
    ("toLower", "lower"),
    ("trimSpace", "trim"),
    ("base64Decode", "b64dec"),
    ("base64Encode", "b64enc"),
    ("sha256Hex", "sha256"),
    ("toJSON", "toJson"),
    ("parseJSON", "fromJson"),
    ("toYAML", "toYaml"),
    ("parseYAML", "fromYaml"),
];

/// Our name of a function of `dialect`, if it converts: consul-template's
/// by [`CONSUL_FUNCTIONS`], ESO's (and Sprig's) as they are.
fn function(name: &str, dialect: &Dialect) -> Option<&'static str> {
    match dialect {
        Dialect::Agent => CONSUL_FUNCTIONS
            .iter()
            .find(|(ct, _)| *ct == name)
            .map(|(_, ours)| *ours),
        Dialect::Eso { .. } => crate::template::go_function(name),
    }
}

/// `.Data.data.KEY` / `.Data.KEY` (Agent) or `.KEY` (ESO) → our `.KEY`.
fn dotted(tok: &str, dialect: &Dialect, stack: &[Block]) -> Result<(String, bool), String> {
    match dialect {
        Dialect::Agent => {
            if !in_secret(stack) {
                return Err(
                    "a field outside `{{ with secret \"PATH\" }}` has no secret to read".into(),
                );
            }
            let (rest, kv2) = match tok.strip_prefix(".Data.data.") {
                Some(r) => (r, true),
                None => (
                    tok.strip_prefix(".Data.").ok_or(
                        "only the secret's fields (`.Data.data.KEY` or `.Data.KEY`) convert",
                    )?,
                    false,
                ),
            };
            if !kv2 && rest == "data" {
                return Err("the whole `.Data.data` map has no conversion; name its fields".into());
            }
            if !kv2 && (rest == "metadata" || rest.starts_with("metadata.")) {
                return Err("KV v2 metadata (`.Data.metadata`) has no conversion: a template sees the secret's fields".into());
            }
            let segs: Vec<&str> = rest.split('.').collect();
            if segs.iter().any(|s| !is_ident(s)) {
                return Err(format!("the field path {tok:?} has no conversion"));
            }
            Ok((format!(".{rest}"), kv2))
        }
        Dialect::Eso { renames } => {
            let rest = tok.strip_prefix('.').unwrap_or(tok);
            let (head, tail) = rest.split_once('.').map_or((rest, ""), |(h, t)| (h, t));
            if head.is_empty() {
                return Err("the whole secret `.` has no conversion here; name its keys".into());
            }
            let field = renames.get(head).map_or(head, String::as_str);
            let mut s = field_ref(field);
            if !tail.is_empty() {
                s.push('.');
                s.push_str(tail);
            }
            Ok((s, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(src: &str) -> Translated {
        translate(src, &Dialect::Agent)
    }

    #[test]
    fn with_secret_unwraps_and_fields_become_ours() {
        let t =
            agent("{{ with secret \"secret/data/web\" }}user={{ .Data.data.username }}\n{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.text, "user={{ .username }}\n");
        assert!(t.kv2);
        assert_eq!(
            t.calls,
            vec![SecretCall {
                path: "secret/data/web".into(),
                params: vec![]
            }]
        );
    }

    #[test]
    fn trim_markers_of_dropped_actions_are_applied() {
        let t = agent("{{- with secret \"database/creds/app\" -}}\n  postgres://{{ .Data.username }}:{{ .Data.password }}@db\n{{- end }}\n");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.text, "postgres://{{ .username }}:{{ .password }}@db\n");
        assert!(!t.kv2);
    }

    #[test]
    fn range_becomes_a_tera_loop_and_functions_pass() {
        let t = agent("{{ with secret \"secret/data/a\" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v | toUpper }}\n{{ end }}{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(
            t.text,
            "{% for k, v in secret %}{{ k }}={{ v | upper }}\n{% endfor %}"
        );
        assert!(t.kv2);
    }

    #[test]
    fn params_and_index_convert() {
        let t = agent("{{ with secret \"pki/issue/web\" \"common_name=a.example\" \"ttl=24h\" }}{{ index .Data \"private_key\" }}{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.text, "{{ .private_key }}");
        assert_eq!(
            t.calls[0].params,
            vec![
                ("common_name".into(), "a.example".into()),
                ("ttl".into(), "24h".into())
            ]
        );
    }

    #[test]
    fn what_does_not_convert_is_reported_by_its_action() {
        for (src, why) in [
            (
                "{{ with secret \"s/data/a\" }}{{ if .Data.data.x }}y{{ end }}{{ end }}",
                "`if`",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x | upper }}{{ end }}",
                "`upper`",
            ),
            ("{{ .Data.data.x }}", "outside"),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.metadata.version }}{{ end }}",
                "metadata",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x }}",
                "not closed",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x }",
                "not closed",
            ),
            ("{{ with secret \"s/data/a\" }}{{ $x := 1 }}{{ end }}", "$x"),
        ] {
            let t = agent(src);
            assert!(
                t.problems.iter().any(|p| p.contains(why)),
                "{src}: {:?}",
                t.problems
            );
        }
    }

    #[test]
    fn eso_keys_are_renamed_to_the_vault_fields() {
        let renames: BTreeMap<String, String> = [
            ("db-pass".to_string(), "password".to_string()),
            ("user".into(), "tls.crt".into()),
        ]
        .into();
        let t = translate(
            "{{ index . \"db-pass\" | b64enc }} {{ .user }} {{ .other | default \"x\" }}",
            &Dialect::Eso { renames: &renames },
        );
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(
            t.text,
            "{{ .password | b64enc }} {{ (index . \"tls.crt\") }} {{ .other | default \"x\" }}"
        );
    }
}
