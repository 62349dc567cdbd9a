//! Go templates of the tools `convert` reads, rewritten into templates
//! secrets-sync's Go engine runs (see [`crate::template::go`]), with the
//! engine's own lexer and parser.
//!
//! Two dialects: Vault Agent's (consul-template: the secret is fetched
//! inside the template by `{{ with secret "PATH" }}` and read as
//! `.Data.data.KEY` on KV v2 or `.Data.KEY` otherwise), and External
//! Secrets Operator's (the template sees the Kubernetes Secret's keys as
//! `.KEY`). Both become a template over one secret's fields: the
//! `with secret` block is unwrapped (its `{{ end }}` dropped, its trim
//! markers applied), `.Data.data.KEY` becomes `.KEY`, ESO's keys become
//! the Vault fields they hold. Everything else (if, range, variables,
//! define, printf, Sprig and consul-template functions) is Go the engine
//! runs as it is. What the engine cannot run (Consul lookups, lease
//! fields, a second secret, the clock) is reported, never guessed at.

use std::collections::BTreeMap;

use crate::template::go::lex::{lex, Tok};

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

/// A field reference in our Go form: `.name`, or `(index . "na-me")`.
fn field_ref(name: &str) -> String {
    if crate::template::is_identifier(name) {
        format!(".{name}")
    } else {
        format!("(index . {})", serde_json::Value::from(name))
    }
}

/// consul-template functions whose name means something else in Sprig
/// (which the engine follows): consul-template's name → the engine's
/// function of the same meaning and argument order.
const CONSUL_RENAMES: [(&str, &str); 2] = [("split", "splitList"), ("contains", "has")];

/// consul-template functions that cannot be carried over, and why.
const CONSUL_PROBLEMS: [(&str, &str); 1] = [(
    "regexReplaceAll",
    "consul-template's regexReplaceAll takes (regex, replacement, text), Sprig's (which secrets-sync runs) (regex, text, replacement): rewrite it as `regexReplaceAll \"RE\" TEXT \"REPL\"`",
)];

/// Fields of Vault's response besides `.Data` that a template over one
/// secret's fields does not have.
const RESPONSE_FIELDS: [&str; 6] = [
    "LeaseID",
    "LeaseDuration",
    "Renewable",
    "Warnings",
    "Auth",
    "WrapInfo",
];

/// One replacement of the source: bytes `start..end` become `with`.
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

/// Translates `src` of `dialect`. The result's `text` is only meaningful
/// when `problems` is empty.
pub(super) fn translate(src: &str, dialect: &Dialect) -> Translated {
    let mut t = Translated::default();
    let items = match lex(src) {
        Ok(i) => i,
        Err(e) => {
            t.problems.push(format!(
                "{} (line {}, column {})",
                e.message,
                crate::template::go::lex::line_col(src, e.pos).0,
                crate::template::go::lex::line_col(src, e.pos).1
            ));
            return t;
        }
    };
    let mut edits: Vec<Edit> = Vec::new();
    // Open blocks: whether each is a `with secret` (dropped with its end).
    let mut blocks: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let (tok, pos) = &items[i];
        if *tok != Tok::Open {
            i += 1;
            continue;
        }
        // The action's tokens and its extent in the source.
        let open = *pos;
        let close_at = items[i..]
            .iter()
            .position(|(t, _)| *t == Tok::Close)
            .map_or(items.len() - 1, |n| i + n);
        let close_pos = items[close_at].1;
        let action_end = close_pos
            + if src[close_pos..].starts_with('-') {
                3
            } else {
                2
            };
        let toks: Vec<(&Tok, usize)> = items[i + 1..close_at]
            .iter()
            .filter(|(t, _)| *t != Tok::Space)
            .map(|(t, p)| (t, *p))
            .collect();
        let head = match toks.first() {
            Some((Tok::Ident(w), _)) => w.as_str(),
            _ => "",
        };
        let trim_left = src[open + 2..].starts_with("- ")
            || src[open + 2..].starts_with("-\n")
            || src[open + 2..].starts_with("-\t")
            || src[open + 2..].starts_with("-\r");
        let trim_right = src[close_pos..].starts_with('-');
        let drop_action = |edits: &mut Vec<Edit>| {
            let mut start = open;
            if trim_left {
                start = src[..open].trim_end_matches([' ', '\t', '\r', '\n']).len();
            }
            let mut end = action_end;
            if trim_right {
                end = src.len()
                    - src[action_end..]
                        .trim_start_matches([' ', '\t', '\r', '\n'])
                        .len();
            }
            // Dropped, the action would no longer stand between a trim
            // marker and the white space it must not trim (`-}}{{ end }}\n`
            // keeps its newline, `-}}\n` would not): an empty comment
            // keeps them apart.
            let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
            let after = &src[end..];
            let before = &src[..start];
            let guard = (before.ends_with("-}}") && after.starts_with(ws))
                || (after.starts_with("{{-") && after[3..].starts_with(ws) && before.ends_with(ws));
            edits.push(Edit {
                start,
                end,
                with: if guard {
                    "{{/**/}}".into()
                } else {
                    String::new()
                },
            });
        };
        match (head, dialect) {
            ("with", Dialect::Agent)
                if matches!(toks.get(1), Some((Tok::Ident(w), _)) if w == "secret") =>
            {
                match secret_call(&toks[2..]) {
                    Ok(call) => {
                        if !t.calls.contains(&call) {
                            t.calls.push(call);
                        }
                    }
                    Err(e) => t.problems.push(format!("`{}`: {e}", &src[open..action_end])),
                }
                blocks.push(true);
                drop_action(&mut edits);
            }
            ("if" | "with" | "range" | "block", _) => {
                blocks.push(false);
                rewrite(src, &toks, dialect, blocks.contains(&true), &mut t, &mut edits);
            }
            ("define", _) => blocks.push(false),
            ("end", _) => {
                if blocks.pop() == Some(true) {
                    drop_action(&mut edits);
                }
            }
            ("else", _) if blocks.last() == Some(&true) => t.problems.push(
                "an `{{ else }}` of `{{ with secret }}` has no conversion: secrets-sync writes nothing when the secret cannot be read".into(),
            ),
            _ => rewrite(src, &toks, dialect, blocks.contains(&true), &mut t, &mut edits),
        }
        i = close_at + 1;
    }
    if !blocks.is_empty() {
        t.problems
            .push("a block (`with`, `range`, `if`) is not closed by `{{ end }}`".into());
        return t;
    }
    edits.sort_by_key(|e| e.start);
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            // Two trims met over the same white space.
            at = at.max(e.end);
            continue;
        }
        out.push_str(&src[at..e.start]);
        out.push_str(&e.with);
        at = e.end;
    }
    out.push_str(&src[at..]);
    let (env, dirs) = host_needs(&out);
    for name in &env {
        if crate::config::credential_like(name) {
            t.problems.push(format!(
                "`env \"{name}\"` reads a credential or a setting of secrets-sync's: templates never read those; keep the value in Vault"
            ));
        }
    }
    let host = crate::template::go::Host::new(
        env.into_iter().map(|n| (n, String::new())).collect(),
        dirs.into_iter().map(std::path::PathBuf::from).collect(),
    );
    if t.problems.is_empty() {
        if let Err(e) = crate::template::go::compile(&out, &host) {
            t.problems
                .push(format!("the converted template does not run: {e}"));
        }
    }
    t.text = out;
    t
}

/// The environment variables (`env "NAME"`) and the directories of the
/// files (`file "/dir/name"`) a template names as literals: what its
/// secret's `template.env` and `template.fileDirs` must allow.
pub(super) fn host_needs(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut env, mut dirs) = (Vec::new(), Vec::new());
    let Ok(items) = lex(text) else {
        return (env, dirs);
    };
    let toks: Vec<&Tok> = items
        .iter()
        .map(|(t, _)| t)
        .filter(|t| **t != Tok::Space)
        .collect();
    for w in toks.windows(2) {
        match (w[0], w[1]) {
            (Tok::Ident(f), Tok::Str(name)) if f == "env" && !env.contains(name) => {
                env.push(name.clone())
            }
            (Tok::Ident(f), Tok::Str(path)) if f == "file" => {
                if let Some(dir) = std::path::Path::new(path).parent() {
                    let dir = dir.to_string_lossy().into_owned();
                    if !dir.is_empty() && dir != "/" && !dirs.contains(&dir) {
                        dirs.push(dir);
                    }
                }
            }
            _ => {}
        }
    }
    (env, dirs)
}

/// `"PATH" "k=v"...` after `secret`.
fn secret_call(args: &[(&Tok, usize)]) -> Result<SecretCall, String> {
    let mut it = args.iter();
    let path = match it.next() {
        Some((Tok::Str(p), _)) => p.clone(),
        _ => return Err("the secret's path must be a string literal".into()),
    };
    let mut params = Vec::new();
    for (a, _) in it {
        match a {
            Tok::Str(p) => {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| format!("the argument {p:?} is not key=value"))?;
                params.push((k.to_string(), v.to_string()));
            }
            Tok::Pipe | Tok::RParen => break,
            _ => return Err("the secret's arguments must be \"key=value\" strings".into()),
        }
    }
    Ok(SecretCall {
        path: path.trim_matches('/').to_string(),
        params,
    })
}

/// Rewrites one action's tokens: Vault response fields (Agent) or ESO's
/// keys into the secret's fields, consul-template names into the
/// engine's, `secret "PATH"` as a value into `.`.
fn rewrite(
    src: &str,
    toks: &[(&Tok, usize)],
    dialect: &Dialect,
    in_secret: bool,
    t: &mut Translated,
    edits: &mut Vec<Edit>,
) {
    let mut k = 0;
    while k < toks.len() {
        let (tok, pos) = toks[k];
        let prev = k.checked_sub(1).map(|p| toks[p].0);
        // A chain head: `.X` not chained onto a term right before it (a
        // field, a variable or a closing parenthesis, with no space between).
        let chained = k.checked_sub(1).is_some_and(|p| {
            token_end(src, toks[p]) == pos
                && matches!(toks[p].0, Tok::Field(_) | Tok::RParen | Tok::Var(_))
        });
        let after_var = matches!(prev, Some(Tok::Var(_))) && chained;
        match (tok, dialect) {
            (Tok::Ident(name), Dialect::Agent) => {
                if name == "secret" {
                    // `$s := secret "PATH"`: the value is the secret's fields.
                    let mut end = k + 1;
                    while end < toks.len() && matches!(toks[end].0, Tok::Str(_)) {
                        end += 1;
                    }
                    match secret_call(&toks[k + 1..end]) {
                        Ok(call) => {
                            if !t.calls.contains(&call) {
                                t.calls.push(call);
                            }
                        }
                        Err(e) => t.problems.push(e),
                    }
                    let last_end = token_end(src, toks[end - 1]);
                    edits.push(Edit {
                        start: pos,
                        end: last_end,
                        with: ".".into(),
                    });
                    k = end;
                    continue;
                }
                if let Some((_, ours)) = CONSUL_RENAMES.iter().find(|(n, _)| n == name) {
                    edits.push(Edit {
                        start: pos,
                        end: pos + name.len(),
                        with: (*ours).to_string(),
                    });
                } else if let Some((_, why)) = CONSUL_PROBLEMS.iter().find(|(n, _)| n == name) {
                    t.problems.push(format!("`{name}`: {why}"));
                } else if let Some(why) = crate::template::go::funcs::refused(name) {
                    t.problems
                        .push(format!("the function `{name}` has no conversion: {why}"));
                }
            }
            (Tok::Ident(name), Dialect::Eso { renames }) if name == "index" => {
                // `index . "KEY"`: the key is renamed to its Vault field.
                if let (Some((Tok::Dot, _)), Some((Tok::Str(key), kpos))) =
                    (toks.get(k + 1), toks.get(k + 2))
                {
                    if let Some(field) = renames.get(key) {
                        edits.push(Edit {
                            start: *kpos,
                            end: token_end(src, toks[k + 2]),
                            with: serde_json::Value::from(field.as_str()).to_string(),
                        });
                    }
                    k += 3;
                    continue;
                }
            }
            (Tok::Field(name), Dialect::Agent) if (!chained || after_var) && name == "Data" => {
                if !in_secret && !after_var {
                    t.problems.push(
                        "a field outside `{{ with secret \"PATH\" }}` has no secret to read".into(),
                    );
                }
                // `.Data.data` (KV v2) or `.Data` (KV v1, dynamic, PKI).
                let mut end = token_end(src, toks[k]);
                let mut next = k + 1;
                if let Some((Tok::Field(d), _)) = toks.get(next) {
                    if d == "data" {
                        t.kv2 = true;
                        end = token_end(src, toks[next]);
                        next += 1;
                    } else if d == "metadata" {
                        t.problems.push("KV v2 metadata (`.Data.metadata`) has no conversion: a template sees the secret's fields".into());
                    }
                }
                let rest_chained = matches!(toks.get(next), Some((Tok::Field(_), _)));
                edits.push(Edit {
                    start: pos,
                    end,
                    with: if rest_chained || after_var {
                        String::new()
                    } else {
                        ".".into()
                    },
                });
                k = next;
                continue;
            }
            (Tok::Field(name), Dialect::Agent)
                if !chained && RESPONSE_FIELDS.contains(&name.as_str()) =>
            {
                t.problems.push(format!(
                    "`.{name}` of Vault's response has no conversion: a template sees the secret's fields"
                ));
            }
            (Tok::Field(name), Dialect::Eso { renames }) if !chained || after_var => {
                if let Some(field) = renames.get(name) {
                    let with = if after_var {
                        if crate::template::is_identifier(field) {
                            format!(".{field}")
                        } else {
                            t.problems.push(format!(
                                "`$.{name}` names the field {field:?}, which has no Go field form; write `index $ {:?}`",
                                field
                            ));
                            String::new()
                        }
                    } else {
                        field_ref(field)
                    };
                    edits.push(Edit {
                        start: pos,
                        end: token_end(src, toks[k]),
                        with,
                    });
                }
            }
            _ => {}
        }
        k += 1;
    }
}

/// Bytes a `$name` token spans.
fn var_len(tok: &Tok) -> usize {
    match tok {
        Tok::Var(n) if n == "$" => 1,
        Tok::Var(n) => n.len() + 1,
        _ => 0,
    }
}

/// Where the token at `(tok, pos)` ends in `src`.
fn token_end(src: &str, (tok, pos): (&Tok, usize)) -> usize {
    match tok {
        Tok::Field(n) => pos + 1 + n.len(),
        Tok::Ident(n) => pos + n.len(),
        Tok::Var(_) => pos + var_len(tok),
        Tok::Str(_) => {
            // A quoted or raw string: up to its closing quote.
            let q = src.as_bytes().get(pos).copied().unwrap_or(b'"');
            let b = src.as_bytes();
            let mut j = pos + 1;
            while j < b.len() && b[j] != q {
                if b[j] == b'\\' && q == b'"' {
                    j += 1;
                }
                j += 1;
            }
            (j + 1).min(src.len())
        }
        _ => pos + 1,
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
    fn go_constructs_pass_as_they_are_and_response_fields_become_ours() {
        let t = agent("{{ with secret \"secret/data/a\" }}{{ range $k, $v := .Data.data }}{{ $k }}={{ $v | toUpper }}\n{{ end }}{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(
            t.text,
            "{{ range $k, $v := . }}{{ $k }}={{ $v | toUpper }}\n{{ end }}"
        );
        assert!(t.kv2);
        // if/else, variables, printf, index, consul-template's names.
        let t = agent(concat!(
            "{{ with secret \"kv/data/db\" }}{{ $u := .Data.data.user }}",
            "{{ if .Data.data.port }}{{ printf \"%s:%v\" $u .Data.data.port }}{{ else }}{{ $u }}{{ end }}",
            " {{ index .Data.data \"tls.crt\" | trimSpace }} {{ .Data.data.tags | split \",\" | join \";\" }}{{ end }}"
        ));
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(
            t.text,
            concat!(
                "{{ $u := .user }}{{ if .port }}{{ printf \"%s:%v\" $u .port }}{{ else }}{{ $u }}{{ end }}",
                " {{ index . \"tls.crt\" | trimSpace }} {{ .tags | splitList \",\" | join \";\" }}"
            )
        );
        // A variable holding the secret.
        let t = agent("{{ $s := secret \"kv/data/a\" }}{{ $s.Data.data.x }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.text, "{{ $s := . }}{{ $s.x }}");
        assert_eq!(t.calls.len(), 1);
    }

    #[test]
    fn env_and_file_literals_are_what_the_secret_must_allow() {
        let t = agent("{{ with secret \"kv/data/a\" }}{{ env \"APP_REGION\" }}{{ file \"/etc/app/motd\" }}{{ .Data.data.x }}{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(
            host_needs(&t.text),
            (vec!["APP_REGION".to_string()], vec!["/etc/app".to_string()])
        );
        let t = agent("{{ with secret \"kv/data/a\" }}{{ env \"VAULT_TOKEN\" }}{{ end }}");
        assert!(
            t.problems.iter().any(|p| p.contains("reads a credential")),
            "{:?}",
            t.problems
        );
    }

    #[test]
    fn params_and_index_convert() {
        let t = agent("{{ with secret \"pki/issue/web\" \"common_name=a.example\" \"ttl=24h\" }}{{ index .Data \"private_key\" }}{{ end }}");
        assert!(t.problems.is_empty(), "{:?}", t.problems);
        assert_eq!(t.text, "{{ index . \"private_key\" }}");
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
                "{{ with secret \"s/data/a\" }}{{ key \"service/x\" }}{{ end }}",
                "no Consul",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x | regexReplaceAll \"a\" \"b\" }}{{ end }}",
                "regexReplaceAll",
            ),
            ("{{ .Data.data.x }}", "outside"),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.metadata.version }}{{ end }}",
                "metadata",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .LeaseID }}{{ end }}",
                "LeaseID",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x }}",
                "not closed",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x }",
                "bad character in action (line 1, column 45)",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ .Data.data.x | nosuchfunction }}{{ end }}",
                "not defined",
            ),
            (
                "{{ with secret \"s/data/a\" }}{{ timestamp }}{{ end }}",
                "no clock",
            ),
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
            "{{ index . \"password\" | b64enc }} {{ (index . \"tls.crt\") }} {{ .other | default \"x\" }}"
        );
    }
}
