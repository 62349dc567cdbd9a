//! Templates: Go's `text/template` (run by [`go`], with Go's semantics) and
//! Tera, with the Go-template `{{ .field }}` form of the seed accepted in Tera.
//!
//! Each entry runs on the engine [`Engine`] picks (`template.engine`; by
//! default the entry's syntax). The rest of this doc is about Tera.
//!
//! Each secret's `template.data` entries are compiled once, when the config is
//! loaded, into one [`SecretTemplate`]; a syntax error is a config error that
//! names the secret and the key. Rendering builds a context from the secret's
//! fields:
//!
//! * every field is reachable as `secret["name"]`, whatever its name
//!   (`secret["tls.crt"]`, `secret["api-key"]`);
//! * fields whose names are identifiers are also top-level variables
//!   (`{{ username }}`), except a field called `secret`, which is only
//!   reachable through the map.
//!
//! [`translate_go`] rewrites the Go forms before compiling: `.field` becomes
//! `secret["field"]`, `.a.b` becomes `secret["a"]["b"]` and
//! `index . "tls.crt"` becomes `secret["tls.crt"]`. Everything else is Tera.
//!
//! A field missing at render time fails the render; the caller then writes
//! none of the secret's files. Tera's own render messages are never passed
//! on (a filter may quote a transformed value, which no exact-value scrub
//! catches): a [`RenderError`] says the key, the error kind, the name of the
//! field, filter or function involved (words of the template, which the
//! config author wrote) and where in the template it is.
//!
//! Templates see the secret and nothing else: `get_env` is refused (at
//! compile time, and at render time should a form slip past the check),
//! `now` and `get_random` do not exist (Tera's `builtins` feature is off),
//! and `range` yields at most [`RANGE_MAX`] numbers.

pub(crate) mod bounded;
mod functions;
pub(crate) mod go;
mod jwk;

use tera::{Context, Tera};
use zeroize::Zeroizing;

use crate::secret::SecretData;

/// The name under which the whole secret is visible to templates.
pub(crate) const SECRET_VAR: &str = "secret";

/// A template failed to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {key:?}: {message}")]
pub struct CompileError {
    pub(crate) key: String,
    pub(crate) message: String,
}

/// A template failed to render (the message carries no secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {key:?} failed to render: {message}")]
pub(crate) struct RenderError {
    pub(crate) key: String,
    pub(crate) message: String,
}

/// The most numbers one `range(...)` call may yield.
pub(crate) const RANGE_MAX: usize = 10_000;

/// Functions a template may not call: they reach outside the secret.
const REFUSED_FUNCTIONS: [&str; 3] = ["get_env", "now", "get_random"];

/// The compiled `template.data` of one secret.
pub struct SecretTemplate {
    /// The entries written in Tera (or the Go tool's `{{ .field }}` mixed
    /// with Tera tags).
    tera: Tera,
    /// The entries written in Go syntax, run by the Go engine: (key, tree).
    go: Vec<(String, go::Tree)>,
    /// `(key, source)` in declaration order, as written in the config.
    entries: Vec<(String, String)>,
    /// What the Go entries' `env` and `file` may reach.
    host: go::Host,
}

impl PartialEq for SecretTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.host == other.host
    }
}

impl std::fmt::Debug for SecretTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretTemplate")
            .field("keys", &self.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Which engine runs a secret's templates (`template.engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Engine {
    /// Each entry by its syntax: Go when it parses as a Go template and
    /// holds no Tera tag (`{%`, `{#`), else Tera.
    #[default]
    Auto,
    /// Go's `text/template` semantics for every entry.
    Go,
    /// Tera for every entry (with the Go tool's `{{ .field }}` forms).
    Tera,
}

impl Engine {
    /// The engine named by `template.engine`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(Self::Auto),
            "go" => Some(Self::Go),
            "tera" => Some(Self::Tera),
            _ => None,
        }
    }
}

impl SecretTemplate {
    /// Compiles every entry, each by its syntax ([`Engine::Auto`]);
    /// returns one error per broken entry.
    pub fn compile(entries: Vec<(String, String)>) -> Result<Self, Vec<CompileError>> {
        Self::compile_with(entries, Engine::Auto, go::Host::default())
    }

    /// Compiles every entry with `engine`, its Go entries' `env`/`file`
    /// reaching what `host` allows; one error per broken entry.
    pub fn compile_with(
        entries: Vec<(String, String)>,
        engine_choice: Engine,
        host: go::Host,
    ) -> Result<Self, Vec<CompileError>> {
        let mut tera = engine();
        let mut errors = Vec::new();
        let mut go_trees = Vec::new();
        for (key, source) in &entries {
            let go = match engine_choice {
                Engine::Auto => go::compile_if_go(source, &host),
                Engine::Go => Some(go::compile(source, &host)),
                Engine::Tera => None,
            };
            if let Some(compiled) = go {
                match compiled {
                    Ok(tree) => go_trees.push((key.clone(), tree)),
                    Err(message) => errors.push(CompileError {
                        key: key.clone(),
                        message,
                    }),
                }
                continue;
            }
            if let Some(f) = refused_call(source) {
                errors.push(CompileError {
                    key: key.clone(),
                    message: format!(
                        "the function {f}() is not available: templates see the secret's fields and nothing else"
                    ),
                });
                continue;
            }
            if let Err(e) = tera.add_raw_template(key, &translate_go(source)) {
                errors.push(CompileError {
                    key: key.clone(),
                    message: error_chain(&e),
                });
                continue;
            }
            let structure = tera
                .get_template(key)
                .map_err(|e| error_chain(&e))
                .and_then(|t| bounded::check_structure(&t.ast));
            if let Err(message) = structure {
                errors.push(CompileError {
                    key: key.clone(),
                    message,
                });
            }
        }
        if errors.is_empty() {
            Ok(Self {
                tera,
                go: go_trees,
                entries,
                host,
            })
        } else {
            Err(errors)
        }
    }

    /// Keys in declaration order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn has_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Renders the entry `key` against `data` (the tests' shortcut; the
    /// sync path renders through `plan::Job::render`).
    #[cfg(test)]
    pub(crate) fn render(&self, key: &str, data: &SecretData) -> Result<String, RenderError> {
        let ctx = context(data);
        let res = self.render_with(key, &ctx);
        // The context holds copies of the values: clear them too.
        crate::secret::zeroize_value(&mut ctx.into_json());
        res
    }

    /// Renders the entry `key` against a context built by [`context`] (once
    /// per secret, however many keys are rendered).
    fn render_with(&self, key: &str, ctx: &Context) -> Result<String, RenderError> {
        let source = self
            .entries
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, s)| s.as_str());
        if let Some((_, tree)) = self.go.iter().find(|(k, _)| k == key) {
            let dot = ctx.get(SECRET_VAR).unwrap_or(&tera::Value::Null);
            return go::render(source, tree, dot, &self.host).map_err(|message| RenderError {
                key: key.to_string(),
                message,
            });
        }
        self.tera.render(key, ctx).map_err(|e| RenderError {
            key: key.to_string(),
            message: describe(&e, source),
        })
    }
}

/// One file to render: the template key (with a template) or the secret
/// field (without) its content comes from, whether that content is base64
/// to decode, and where it goes. The renderer's own input type: the plan
/// builds it (`plan::Job::render`).
pub(crate) struct RenderFile<'a> {
    pub(crate) source: &'a str,
    pub(crate) base64: bool,
    pub(crate) target: &'a crate::fs::WriteTarget,
}

/// Renders every file from `data`: from its template key, or without a
/// template from the secret field it names. Any failure fails the whole
/// secret, so no file of it is written. The result is the writer's own
/// input type, in the given order.
pub(crate) fn render_files<'a>(
    template: Option<&SecretTemplate>,
    files: impl ExactSizeIterator<Item = RenderFile<'a>>,
    data: &SecretData,
) -> Result<Vec<crate::fs::FileWrite>, RenderError> {
    let mut rendered: Vec<(&'a str, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut out = Vec::with_capacity(files.len());
    // One context per secret (it copies every value), cleared when done.
    struct Wiped(Context);
    impl Drop for Wiped {
        fn drop(&mut self) {
            crate::secret::zeroize_value(&mut std::mem::take(&mut self.0).into_json());
        }
    }
    let template = template.map(|t| (t, Wiped(context(data))));
    for f in files {
        let content = match rendered.iter().find(|(k, _)| *k == f.source) {
            Some((_, c)) => c.clone(),
            None => {
                let c = Zeroizing::new(match &template {
                    Some((t, ctx)) => t.render_with(f.source, &ctx.0)?.into_bytes(),
                    None => data.field_bytes(f.source).ok_or_else(|| RenderError {
                        key: f.source.to_string(),
                        message: format!(
                            "the secret has no field {:?} (fields: {}); set the file's `key:` or add a template",
                            f.source,
                            field_list(data)
                        ),
                    })?,
                });
                rendered.push((f.source, c.clone()));
                c
            }
        };
        let content = if f.base64 {
            functions::decode_base64(&content).ok_or_else(|| RenderError {
                key: f.source.to_string(),
                message: format!(
                    "{} has `encoding: base64` but its content is not base64; store the bytes base64-encoded or drop `encoding`",
                    f.target.path.display()
                ),
            })?
        } else {
            content
        };
        out.push(crate::fs::FileWrite {
            target: f.target.clone(),
            content,
        });
    }
    Ok(out)
}

/// At most this many field names, and this many characters, in an error.
const LISTED_FIELDS: usize = 20;
const LISTED_CHARS: usize = 400;

/// The secret's field names for an error text, capped (a hostile answer
/// may have a million).
fn field_list(data: &SecretData) -> String {
    let mut out = String::new();
    for (n, name) in data.field_names().enumerate() {
        if n == LISTED_FIELDS || out.len() + name.len() > LISTED_CHARS {
            let total = data.field_names().count();
            out.push_str(&format!(", ... ({total} in all)"));
            return out;
        }
        if n > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
    }
    out
}

/// A Tera engine with nothing that reaches outside the secret.
fn engine() -> Tera {
    let mut tera = Tera::default();
    // Output is files, not HTML: never escape, whatever the key's name.
    tera.autoescape_on(vec![]);
    tera.register_function(
        "get_env",
        |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Err(tera::Error::msg("get_env is not available"))
        },
    );
    tera.register_function("range", bounded_range);
    functions::register(&mut tera);
    tera
}

/// Tera's `range(end, start=0, step_by=1)`, refusing more than [`RANGE_MAX`]
/// numbers.
fn bounded_range(
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let arg = |name: &str, default: Option<u64>| -> tera::Result<u64> {
        match args.get(name) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| tera::Error::msg(format!("range: {name} must be a whole number"))),
            None => default.ok_or_else(|| tera::Error::msg(format!("range: {name} is required"))),
        }
    };
    let (start, end, step) = (
        arg("start", Some(0))?,
        arg("end", None)?,
        arg("step_by", Some(1))?,
    );
    if step == 0 {
        return Err(tera::Error::msg("range: step_by must be at least 1"));
    }
    let count = end.saturating_sub(start).div_ceil(step);
    if count > RANGE_MAX as u64 {
        return Err(tera::Error::msg("range: too many numbers"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while i < end {
        out.push(tera::Value::from(i));
        i = match i.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(tera::Value::Array(out))
}

/// The first refused function the template calls, if any (`name(` with
/// any spaces before the parenthesis, not part of a longer word).
fn refused_call(source: &str) -> Option<&'static str> {
    REFUSED_FUNCTIONS.into_iter().find(|f| {
        source.match_indices(f).any(|(i, _)| {
            let before_ok = source[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !is_ident_char(c));
            let after = source[i + f.len()..].trim_start();
            before_ok && after.starts_with('(')
        })
    })
}

/// A render error in words the template's author wrote: the error kind,
/// the field, filter or function, and its line:column in the template.
/// Nothing of Tera's own message is passed on unchecked.
fn describe(e: &tera::Error, source: &str) -> String {
    let mut chain: Vec<&tera::ErrorKind> = vec![&e.kind];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<tera::Error>() {
            chain.push(&t.kind);
        }
        src = s.source();
    }
    let at = |word: &str| match locate(source, word) {
        Some((line, col)) => format!(" (line {line}, column {col})"),
        None => String::new(),
    };
    // A reason one of our filters gave (our words, no value).
    let own = chain.iter().find_map(|k| match k {
        tera::ErrorKind::Msg(m) => m
            .strip_prefix(functions::OWN_MESSAGE)
            .map(|m| m.split_once(": ").map_or(m, |(_, why)| why)),
        _ => None,
    });
    for kind in &chain {
        match kind {
            tera::ErrorKind::CallFilter(name) if source.contains(name.as_str()) => {
                return match own {
                    Some(why) => format!("filter error: the filter {name:?}{}: {why}", at(name)),
                    None => format!(
                        "filter error: the filter {name:?}{} cannot use the value it was given (wrong type or format)",
                        at(name)
                    ),
                };
            }
            tera::ErrorKind::CallFunction(name) if source.contains(name.as_str()) => {
                return format!("function error: {name}(){} failed", at(name));
            }
            tera::ErrorKind::FilterNotFound(name) if source.contains(name.as_str()) => {
                return format!("unknown filter {name:?}{}", at(name));
            }
            tera::ErrorKind::FunctionNotFound(name) if source.contains(name.as_str()) => {
                return format!("unknown function {name}(){}", at(name));
            }
            tera::ErrorKind::TestNotFound(name) if source.contains(name.as_str()) => {
                return format!("unknown test {name:?}{}", at(name));
            }
            tera::ErrorKind::Msg(m) => {
                if let Some(var) = missing_variable(m) {
                    // `secret["a"]` (a Go `.a` translated) names field `a`.
                    let field = var
                        .strip_prefix("secret[\"")
                        .and_then(|v| v.strip_suffix("\"]"))
                        .unwrap_or(var);
                    if source.contains(field) {
                        return format!(
                            "missing field: {field:?}{} is not in the secret",
                            at(field)
                        );
                    }
                }
            }
            _ => {}
        }
    }
    "the template could not be rendered with this secret (a value of the wrong type, a loop over a non-list, or a division by zero)".to_string()
}

/// The name in Tera's "Variable `x` not found in context" message.
fn missing_variable(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Variable `")?;
    let end = rest.find("` not found in context")?;
    Some(&rest[..end])
}

/// The 1-based line and column of the first `word` in `source`.
fn locate(source: &str, word: &str) -> Option<(usize, usize)> {
    let i = source.find(word)?;
    let before = &source[..i];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

fn context(data: &SecretData) -> Context {
    let mut ctx = Context::new();
    for (name, value) in data.fields() {
        if name != SECRET_VAR && is_identifier(name) {
            ctx.insert(name.as_str(), value);
        }
    }
    ctx.insert(SECRET_VAR, data.fields());
    ctx
}

/// Tera's own messages are split over a chain of sources; join them.
fn error_chain(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// An ASCII identifier (a letter or `_`, then letters, digits, `_`): a
/// name Tera and Go both read as a variable or field.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Rewrites the Go-template forms `{{ .field }}`, `{{ .a.b }}` and
/// `{{ index . "key" }}` (also inside `{% %}` tags) into Tera. Text outside
/// tags and string literals inside tags is left alone.
pub fn translate_go(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    loop {
        let open = match (rest.find("{{"), rest.find("{%")) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        let closer = if rest[open..].starts_with("{{") {
            "}}"
        } else {
            "%}"
        };
        out.push_str(&rest[..open + 2]);
        let inner_start = open + 2;
        // A Go action ends at the first `}}` outside a string (the shared
        // lexer's rule); a Tera tag at its `%}`.
        let end = if closer == "}}" {
            go::lex::find_close(&rest[inner_start..])
        } else {
            rest[inner_start..].find(closer)
        };
        match end {
            Some(len) => {
                let action = translate_action(&rest[inner_start..inner_start + len]);
                if closer == "}}" {
                    out.push_str(&translate_pipeline(&action));
                } else {
                    out.push_str(&action);
                }
                out.push_str(closer);
                rest = &rest[inner_start + len + 2..];
            }
            None => {
                // Unclosed tag: leave it for Tera to report.
                rest = &rest[inner_start..];
                out.push_str(rest);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The Go-template functions (ESO's and Sprig's names) that become Tera
/// filters: (Go name, filter, the name of its one argument if any). Sprig's
/// `default` (also for empty values) is the `default_empty` filter: Tera's
/// own `default` only covers a missing variable.
const GO_FUNCTIONS: [(&str, &str, Option<&str>); 25] = [
    ("b64dec", "b64dec", None),
    ("b64enc", "b64enc", None),
    ("fromJson", "fromJson", None),
    ("toJson", "toJson", None),
    ("fromYaml", "fromYaml", None),
    ("toYaml", "toYaml", None),
    ("pkcs12key", "pkcs12key", None),
    ("pkcs12cert", "pkcs12cert", None),
    ("sha256", "sha256", None),
    ("sha256sum", "sha256sum", None),
    ("sha1sum", "sha1sum", None),
    ("lower", "lower", None),
    ("upper", "upper", None),
    ("trim", "trim", None),
    ("filterPEM", "filterPEM", Some("type")),
    ("filterCertChain", "filterCertChain", Some("type")),
    ("pkcs12keyPass", "pkcs12keyPass", Some("password")),
    ("pkcs12certPass", "pkcs12certPass", Some("password")),
    ("default", "default_empty", Some("value")),
    ("quote", "quote", None),
    ("squote", "squote", None),
    ("indent", "indent", Some("width")),
    ("nindent", "nindent", Some("width")),
    ("trimPrefix", "trimPrefix", Some("prefix")),
    ("trimSuffix", "trimSuffix", Some("suffix")),
];

/// Rewrites Go pipelines of [`GO_FUNCTIONS`] in a `{{ }}` action (its
/// `.x` paths already translated): `x | f "a"` becomes `x | f(param="a")`
/// and the call form `f "a" x` becomes `x | f(param="a")`, where `x` may be
/// a parenthesized call itself (`f (g y)` is `y | g | f`). Anything else
/// (Tera's own syntax) is left as it is.
fn translate_pipeline(action: &str) -> String {
    let segments = split_top(action, |c| c == '|');
    if !segments.iter().any(|s| go_call(s).is_some()) {
        return action.to_string();
    }
    let mut out = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let Some((filter, param, words)) = go_call(seg) else {
            out.push(seg.trim().to_string());
            continue;
        };
        let call = |arg: Option<&str>| match (param, arg) {
            (Some(p), Some(a)) => format!("{filter}({p}={a})"),
            _ => filter.to_string(),
        };
        let args = words.len() - 1;
        let arity = usize::from(param.is_some());
        if i > 0 && args == arity {
            out.push(call(words.get(1).copied()));
        } else if i == 0 && args == arity + 1 {
            // Call form: the last word is the operand.
            let operand = words[args];
            let operand = match operand.strip_prefix('(').and_then(|o| o.strip_suffix(')')) {
                Some(inner) => translate_pipeline(inner).trim().to_string(),
                None => operand.to_string(),
            };
            let arg = words.get(1).copied().filter(|_| arity == 1);
            out.push(format!("{operand} | {}", call(arg)));
        } else {
            out.push(seg.trim().to_string());
        }
    }
    format!(" {} ", out.join(" | "))
}

/// A segment that starts with a Go function name: (the filter, its
/// parameter, the segment's words).
fn go_call(seg: &str) -> Option<(&'static str, Option<&'static str>, Vec<&str>)> {
    let words = split_top(seg, char::is_whitespace)
        .into_iter()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>();
    let (_, filter, param) = GO_FUNCTIONS
        .into_iter()
        .find(|(n, _, _)| words.first() == Some(n))?;
    // `default` alone is Tera's own filter name: only rewrite it with words.
    (words.len() > 1 || param.is_none()).then_some((filter, param, words))
}

/// Splits `s` at characters matching `at` outside quotes, brackets and
/// parentheses.
fn split_top(s: &str, at: impl Fn(char) -> bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            _ if depth == 0 && at(c) => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Translates the inside of one tag.
fn translate_action(action: &str) -> String {
    let chars: Vec<char> = action.chars().collect();
    let mut out = String::with_capacity(action.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // String literals pass through untouched.
        if c == '"' || c == '\'' || c == '`' {
            let end = find_closing_quote(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
            continue;
        }
        let prev = if i == 0 { None } else { Some(chars[i - 1]) };
        let at_word_start = prev.is_none_or(|p| !is_ident_char(p) && !matches!(p, ')' | ']' | '.'));
        // `index <operand> "k1" "k2"...`
        if at_word_start && starts_with_word(&chars, i, "index") {
            if let Some((text, next)) = translate_index(&chars, i + 5) {
                out.push_str(&text);
                i = next;
                continue;
            }
        }
        // `.a.b.c`
        if c == '.' && at_word_start {
            if let Some((path, next)) = parse_dot_path(&chars, i) {
                if !path.is_empty() {
                    out.push_str(&subscript_path(&path));
                    i = next;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn find_closing_quote(chars: &[char], start: usize) -> usize {
    let q = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == '\\' && q != '`' {
            j += 2;
            continue;
        }
        if chars[j] == q {
            return j + 1;
        }
        j += 1;
    }
    chars.len()
}

fn starts_with_word(chars: &[char], i: usize, word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    chars.len() > i + w.len()
        && chars[i..i + w.len()] == w[..]
        && chars[i + w.len()].is_whitespace()
}

/// Parses `.a.b` at `i`; returns the segments (empty for a bare `.`) and the
/// index after it. Returns `None` when the dot does not start a Go path.
fn parse_dot_path(chars: &[char], mut i: usize) -> Option<(Vec<String>, usize)> {
    let mut path = Vec::new();
    loop {
        if chars.get(i) != Some(&'.') {
            break;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len() && is_ident_char(chars[j]) {
            j += 1;
        }
        if j == start {
            // A bare `.` (only valid as the whole path).
            if path.is_empty() && chars.get(j).is_none_or(|c| !c.is_ascii_digit()) {
                return Some((path, j));
            }
            return None;
        }
        if chars[start].is_ascii_digit() {
            return None;
        }
        path.push(chars[start..j].iter().collect());
        i = j;
    }
    Some((path, i))
}

fn subscript_path(path: &[String]) -> String {
    let mut s = String::from(SECRET_VAR);
    for seg in path {
        s.push_str("[\"");
        s.push_str(seg);
        s.push_str("\"]");
    }
    s
}

/// `index . "k"` / `index .a "k" "l"` starting after the word `index`.
fn translate_index(chars: &[char], mut i: usize) -> Option<(String, usize)> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    let (path, mut i) = parse_dot_path(chars, i)?;
    let mut text = subscript_path(&path);
    let mut keys = 0;
    loop {
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        if chars.get(j) != Some(&'"') {
            break;
        }
        let end = find_closing_quote(chars, j);
        if end > chars.len() || chars.get(end - 1) != Some(&'"') || end - j < 2 {
            return None;
        }
        let lit: String = chars[j..end].iter().collect();
        text.push('[');
        text.push_str(&lit);
        text.push(']');
        keys += 1;
        i = end;
    }
    (keys > 0).then_some((text, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn data(v: Value) -> SecretData {
        let Value::Object(map) = v else {
            unreachable!()
        };
        SecretData::new(map, None)
    }

    fn render_one(src: &str, v: Value) -> Result<String, String> {
        let t = SecretTemplate::compile(vec![("k".into(), src.into())])
            .map_err(|e| format!("compile: {e:?}"))?;
        t.render("k", &data(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn translates_go_forms() {
        assert_eq!(translate_go("{{ .tlsCrt }}"), r#"{{ secret["tlsCrt"] }}"#);
        assert_eq!(translate_go("{{- .a.b -}}"), r#"{{- secret["a"]["b"] -}}"#);
        assert_eq!(
            translate_go(r#"{{ index . "tls.crt" }}"#),
            r#"{{ secret["tls.crt"] }}"#
        );
        assert_eq!(
            translate_go(r#"{{ index .m "x" "y" }}"#),
            r#"{{ secret["m"]["x"]["y"] }}"#
        );
        assert_eq!(
            translate_go("{% if .on %}x{% endif %}"),
            r#"{% if secret["on"] %}x{% endif %}"#
        );
    }

    #[test]
    fn leaves_tera_alone() {
        for src in [
            "{{ user.name }}",
            "{{ 1.5 }}",
            r#"{{ a | replace(from=".x", to="") }}"#,
            "plain .text {{ x }} .y",
            r#"{{ secret["a.b"] }}"#,
            "{{ (a).b }}",
        ] {
            assert_eq!(translate_go(src), src);
        }
    }

    #[test]
    fn renders_seed_forms_and_odd_names() {
        let v = json!({"tlsCrt": "CERT", "tls.crt": "DOT", "api-key": "DASH", "username": "u", "secret": "S"});
        assert_eq!(render_one("{{ .tlsCrt }}", v.clone()).unwrap(), "CERT");
        assert_eq!(
            render_one(r#"{{ index . "tls.crt" }}"#, v.clone()).unwrap(),
            "DOT"
        );
        assert_eq!(
            render_one(r#"{{ secret["api-key"] }}"#, v.clone()).unwrap(),
            "DASH"
        );
        assert_eq!(
            render_one("user={{ username }}", v.clone()).unwrap(),
            "user=u"
        );
        assert_eq!(
            render_one(r#"{{ secret["secret"] }}"#, v.clone()).unwrap(),
            "S"
        );
        assert_eq!(render_one("{{ .secret }}", v).unwrap(), "S");
    }

    #[test]
    fn no_html_escaping_even_for_html_keys() {
        let t = SecretTemplate::compile(vec![("index.html".into(), "{{ .v }}".into())]).unwrap();
        let out = t
            .render("index.html", &data(json!({"v": "<a&b>\"'"})))
            .unwrap();
        assert_eq!(out, "<a&b>\"'");
    }

    #[test]
    fn nested_and_non_string_values() {
        let v = json!({"db": {"host": "h", "port": 5432}, "n": 3, "ok": true});
        assert_eq!(
            render_one("{{ .db.host }}:{{ .db.port }}", v.clone()).unwrap(),
            "h:5432"
        );
        assert_eq!(render_one("{{ n + 1 }} {{ ok }}", v).unwrap(), "4 true");
    }

    #[test]
    fn missing_field_is_a_render_error() {
        let e = render_one("{{ .nope }}", json!({"x": "CANARY"})).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        assert!(!e.contains("CANARY"));
        let e = render_one("{{ nope }}", json!({"x": "y"})).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn render_errors_never_carry_values() {
        // A filter that fails on a value may quote it; the message is ours.
        let e = render_one("{{ .x | round }}", json!({"x": "CANARY-VALUE"})).unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
        assert!(e.contains("round") && e.contains("line 1"), "{e}");
        // A transformed value is not the value: an exact scrub misses it.
        let e = render_one(
            "{{ password | upper | round }}",
            json!({"password": "hunter2-swordfish"}),
        )
        .unwrap_err();
        assert!(!e.to_lowercase().contains("hunter2"), "{e}");
        let e = render_one(
            "x\n  {{ .pw | upper | split(pat=\"-\") | round }}",
            json!({"pw": "hunter2"}),
        )
        .unwrap_err();
        assert!(!e.to_lowercase().contains("hunter2"), "{e}");
        for (src, v) in [
            (
                "{% for c in pw %}{{ c }}{% endfor %}",
                json!({"pw": "CANARY-LOOP"}),
            ),
            ("{{ pw / 0 }}", json!({"pw": 7})),
            (
                "{{ pw | split(pat=\"-\") | nth(n=9) | round }}",
                json!({"pw": "CANARY-A-B"}),
            ),
            ("{{ throw(message=pw) }}", json!({"pw": "CANARY-THROW"})),
            ("{{ pw | date }}", json!({"pw": "CANARY-DATE"})),
        ] {
            if let Err(e) = render_one(src, v) {
                assert!(!e.contains("CANARY"), "{src}: {e}");
            }
        }
    }

    #[test]
    fn templates_cannot_read_the_environment_or_the_clock() {
        for src in [
            "{{ get_env(name=\"VAULT_TOKEN\") }}",
            "{{ get_env (name=\"HOME\") }}",
            "{% set t = now() %}{{ t }}",
            "{{ get_random(end=9) }}",
        ] {
            let errs = SecretTemplate::compile(vec![("k".into(), src.into())]).unwrap_err();
            assert!(
                errs[0].message.contains("not available"),
                "{src}: {}",
                errs[0].message
            );
        }
        // A field called get_env is still a field.
        assert_eq!(
            render_one("{{ secret.get_env }}", json!({"get_env": "ok"})).unwrap(),
            "ok"
        );
        // The engine itself refuses it too, should a form slip past the check.
        let mut t = engine();
        t.add_raw_template("k", "{{ get_env(name=\"PATH\") }}")
            .unwrap();
        let e = t.render("k", &Context::new()).unwrap_err();
        assert!(!describe(&e, "").contains('/'), "{}", describe(&e, ""));
    }

    #[test]
    fn range_is_bounded() {
        assert_eq!(
            render_one("{% for i in range(end=3) %}{{ i }}{% endfor %}", json!({})).unwrap(),
            "012"
        );
        assert_eq!(
            render_one(
                "{% for i in range(start=2, end=9, step_by=3) %}{{ i }}{% endfor %}",
                json!({})
            )
            .unwrap(),
            "258"
        );
        let e = render_one(
            "{% for i in range(end=100000000000) %}x{% endfor %}",
            json!({}),
        )
        .unwrap_err();
        assert!(e.contains("range"), "{e}");
    }

    #[test]
    fn a_closing_brace_pair_inside_a_string_does_not_end_the_action() {
        assert_eq!(
            render_one(
                r#"{{ .a | replace(from="}}", to="!") }}"#,
                json!({"a": "x}}y"})
            )
            .unwrap(),
            "x!y"
        );
    }

    #[test]
    fn unbounded_constructs_are_refused_when_compiled() {
        let refused = |src: &str| {
            SecretTemplate::compile(vec![("k".into(), src.into())])
                .err()
                .map(|e| e[0].message.clone())
                .unwrap_or_default()
        };
        // A recursive macro overflowed the stack and aborted the process.
        let e = refused("{% macro m(n) %}{{ self::m(n=n) }}{% endmacro m %}{{ self::m(n=1) }}");
        assert!(e.contains("macros are not supported"), "{e}");
        let e = refused("{% include \"k\" %}");
        assert!(e.contains("include"), "{e}");
        // String doubling.
        let e = refused(
            "{% set s = \"x\" %}{% for i in range(end=40) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}",
        );
        assert!(e.contains("reads the variable it sets"), "{e}");
        let e = refused(
            "{% for a in range(end=9) %}{% for b in range(end=9) %}{% if a %}{% for c in range(end=9) %}x{% endfor %}{% endif %}{% endfor %}{% endfor %}",
        );
        assert!(e.contains("nested 3 deep"), "{e}");
        // What people write still compiles.
        for ok in [
            "{% set user = username | upper %}{{ user }}",
            "{% for k, v in secret %}{% for c in v %}{{ k }}={{ c }}{% endfor %}{% endfor %}",
            "{% if a %}{{ a }}{% else %}none{% endif %}",
        ] {
            assert!(
                SecretTemplate::compile(vec![("k".into(), ok.into())]).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn missing_field_lists_at_most_some_names() {
        let mut m = serde_json::Map::new();
        for i in 0..10_000 {
            m.insert(format!("field{i:05}"), json!("v"));
        }
        let d = data(Value::Object(m));
        let listed = field_list(&d);
        assert!(listed.len() < LISTED_CHARS + 40, "{}", listed.len());
        assert!(listed.ends_with("(10000 in all)"), "{listed}");
    }

    #[test]
    fn syntax_errors_name_the_key() {
        let errs = SecretTemplate::compile(vec![
            ("good".into(), "{{ x }}".into()),
            ("bad".into(), "{{ x".into()),
        ])
        .unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].key, "bad");
    }

    #[test]
    fn keys_keep_declaration_order() {
        let t = SecretTemplate::compile(vec![
            ("username".into(), "a".into()),
            ("password".into(), "b".into()),
        ])
        .unwrap();
        assert_eq!(t.keys().collect::<Vec<_>>(), ["username", "password"]);
    }
}
