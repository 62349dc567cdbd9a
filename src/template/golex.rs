//! The Go-template lexer: splits a template into literal text and `{{ }}`
//! actions (quote-aware: a `}}` inside a string does not close an action;
//! `{{-`/`-}}` trim markers noted) and an action into tokens. One lexer
//! serves both the templates secrets-sync renders (`crate::template`, which
//! translates Go forms into Tera) and `convert` (which translates the
//! templates of the tools it reads).

/// One piece of a template: literal text or a `{{ }}` action.
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Action {
        body: &'a str,
        trim_left: bool,
        trim_right: bool,
    },
}

/// Splits a template into text and actions; an unclosed `{{` is reported.
pub(crate) fn pieces(src: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        out.push(Piece::Text(&rest[..open]));
        let after = &rest[open + 2..];
        let end = find_close(after).ok_or("an action `{{` is not closed by `}}`")?;
        let mut body = &after[..end];
        let trim_left = body.starts_with("- ") || body.starts_with("-\n") || body == "-";
        if trim_left {
            body = &body[1..];
        }
        let trim_right = body.ends_with(" -") || body.ends_with("\n-");
        if trim_right {
            body = &body[..body.len() - 1];
        }
        out.push(Piece::Action {
            body: body.trim(),
            trim_left,
            trim_right,
        });
        rest = &after[end + 2..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Where the `}}` closing an action is, outside string literals.
pub(crate) fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q != b'`' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// The tokens of an action: string literals, `(`, `)`, `|`, `,`, `:=` and
/// words.
pub(crate) fn tokens(body: &str) -> Vec<String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '`' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' && c == '"' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.push(chars[i..end].iter().collect());
            i = end;
        } else if matches!(c, '(' | ')' | '|' | ',') {
            out.push(c.to_string());
            i += 1;
        } else if c == ':' && chars.get(i + 1) == Some(&'=') {
            out.push(":=".into());
            i += 2;
        } else {
            let mut j = i;
            let ends_word = |j: usize| {
                chars[j].is_whitespace()
                    || matches!(chars[j], '(' | ')' | '|' | ',' | '"' | '`')
                    || (chars[j] == ':' && chars.get(j + 1) == Some(&'='))
            };
            while j < chars.len() && !ends_word(j) {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    out
}

/// The value of a Go string literal token (`"a\"b"` or `` `raw` ``).
pub(crate) fn unquote(tok: &str) -> Option<String> {
    if tok.len() >= 2 && tok.starts_with('`') && tok.ends_with('`') {
        return Some(tok[1..tok.len() - 1].to_string());
    }
    if tok.len() >= 2 && tok.starts_with('"') && tok.ends_with('"') {
        return serde_json::from_str::<String>(tok).ok();
    }
    None
}
