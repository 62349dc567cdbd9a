//! The lexer of Go's `text/template`: literal text, `{{ }}` actions with
//! their trim markers (`{{- ` and ` -}}` remove the white space beside
//! them) and comments (`{{/* */}}`), and the tokens inside an action.
//! Positions are byte offsets into the source; [`line_col`] turns one into
//! the line and column an error names.

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Literal text (trim markers already applied).
    Text(String),
    /// `{{` (a comment-only action yields nothing).
    Open,
    /// `}}`.
    Close,
    /// White space inside an action: it separates a command's arguments.
    Space,
    /// A function name or a keyword (`if`, `range`, `end`, ...).
    Ident(String),
    /// `.name` (a chained `.a.b` is two of these).
    Field(String),
    /// `.` alone.
    Dot,
    /// `$name` (its name), or `$` alone (the name `$`).
    Var(String),
    Str(String),
    /// A number literal as written (`12`, `0x1F`, `1.5e3`, `'a'` as its code).
    Num(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Comma,
    /// `:=`
    Declare,
    /// `=`
    Assign,
}

/// A token and the byte offset where it starts.
pub(crate) type Item = (Tok, usize);

/// The line and column (both from 1, the column in characters) of `pos`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let before = src.get(..pos).unwrap_or(src);
    let line = before.matches('\n').count().saturating_add(1);
    let col = before
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().count())
        .saturating_add(1);
    (line, col)
}

/// A lexing error: where and why (the template's own words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `src` into tokens.
pub(crate) fn lex(src: &str) -> Result<Vec<Item>, LexError> {
    let b = src.as_bytes();
    let mut out: Vec<Item> = Vec::new();
    let mut i = 0;
    // The previous action ended in ` -}}`: the next text loses its leading
    // white space.
    let mut trim_next = false;
    while i <= b.len() {
        let open = src[i..].find("{{").map(|o| i + o);
        let text_end = open.unwrap_or(b.len());
        let mut text = &src[i..text_end];
        if trim_next {
            text = text.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        let Some(open) = open else {
            if !text.is_empty() {
                out.push((Tok::Text(text.to_string()), i));
            }
            break;
        };
        // `{{- ` trims the text before it.
        let mut j = open + 2;
        let trim_left = b.get(j) == Some(&b'-') && b.get(j + 1).is_some_and(|c| is_space(*c));
        if trim_left {
            text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            j += 2;
        }
        if !text.is_empty() {
            out.push((Tok::Text(text.to_string()), i));
        }
        // A comment: `{{/* ... */}}`, nothing else in the action.
        let mut k = j;
        while trim_left && k < b.len() && is_space(b[k]) {
            k += 1;
        }
        if src[k..].starts_with("/*") {
            let end = src[k + 2..]
                .find("*/")
                .map(|e| k + 2 + e + 2)
                .ok_or_else(|| LexError {
                    pos: open,
                    message: "unclosed comment".into(),
                })?;
            let (after, trim_right) = close_after(src, end).ok_or_else(|| LexError {
                pos: open,
                message: "comment ends before closing delimiter".into(),
            })?;
            trim_next = trim_right;
            i = after;
            continue;
        }
        out.push((Tok::Open, open));
        let (after, trim_right) = lex_action(src, j, open, &mut out)?;
        trim_next = trim_right;
        i = after;
    }
    Ok(out)
}

/// At `at`: `}}` or ` -}}` (optional white space first): the offset after
/// it and whether it trims.
fn close_after(src: &str, at: usize) -> Option<(usize, bool)> {
    let rest = &src[at..];
    if rest.starts_with("}}") {
        return Some((at + 2, false));
    }
    let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
    let ws = rest.len() - trimmed.len();
    if ws > 0 && trimmed.starts_with("-}}") {
        return Some((at + ws + 3, true));
    }
    None
}

/// Lexes the inside of one action from `i`; returns where the text after
/// its `}}` starts and whether it had a trim marker.
fn lex_action(
    src: &str,
    mut i: usize,
    open: usize,
    out: &mut Vec<Item>,
) -> Result<(usize, bool), LexError> {
    let b = src.as_bytes();
    let err = |pos: usize, message: &str| LexError {
        pos,
        message: message.to_string(),
    };
    let mut depth = 0usize;
    loop {
        let Some(&c) = b.get(i) else {
            return Err(err(open, "unclosed action"));
        };
        if is_space(c) {
            // ` -}}` ends the action, trimming what follows.
            let start = i;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if src[i..].starts_with("-}}") {
                out.push((Tok::Close, i));
                return Ok((i + 3, true));
            }
            out.push((Tok::Space, start));
            continue;
        }
        if src[i..].starts_with("}}") {
            if depth > 0 {
                return Err(err(i, "unclosed left paren"));
            }
            out.push((Tok::Close, i));
            return Ok((i + 2, false));
        }
        let start = i;
        match c {
            b'|' => {
                out.push((Tok::Pipe, i));
                i += 1;
            }
            b'(' => {
                depth += 1;
                out.push((Tok::LParen, i));
                i += 1;
            }
            b')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| err(i, "unexpected right paren"))?;
                out.push((Tok::RParen, i));
                i += 1;
            }
            b',' => {
                out.push((Tok::Comma, i));
                i += 1;
            }
            b'=' => {
                out.push((Tok::Assign, i));
                i += 1;
            }
            b':' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(err(i, "expected :="));
                }
                out.push((Tok::Declare, i));
                i += 2;
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None | Some(b'\n') => return Err(err(i, "unterminated quoted string")),
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let lit = &src[i..=j];
                let s = unquote_go(lit).ok_or_else(|| err(i, "invalid quoted string"))?;
                out.push((Tok::Str(s), i));
                i = j + 1;
            }
            b'`' => {
                let end = src[i + 1..]
                    .find('`')
                    .ok_or_else(|| err(i, "unterminated raw quoted string"))?;
                out.push((Tok::Str(src[i + 1..i + 1 + end].to_string()), i));
                i += end + 2;
            }
            b'\'' => {
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None | Some(b'\n') => {
                            return Err(err(i, "unterminated character constant"))
                        }
                        Some(b'\\') => j += 2,
                        Some(b'\'') => break,
                        Some(_) => j += 1,
                    }
                }
                let inner = &src[i + 1..j];
                let as_str = unquote_go(&format!("\"{}\"", inner.replace("\\'", "'")))
                    .filter(|s| s.chars().count() == 1)
                    .ok_or_else(|| err(i, "invalid character constant"))?;
                let code = as_str.chars().next().map_or(0, u32::from);
                out.push((Tok::Num(code.to_string()), i));
                i = j + 1;
            }
            b'$' => {
                let name_len = word_len(&src[i + 1..]);
                let name = if name_len == 0 {
                    "$"
                } else {
                    &src[i + 1..i + 1 + name_len]
                };
                out.push((Tok::Var(name.to_string()), i));
                i += 1 + name_len;
            }
            b'.' => {
                let next = src[i + 1..].chars().next();
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    let n = number_len(&src[i..]);
                    out.push((Tok::Num(src[i..i + n].to_string()), i));
                    i += n;
                } else {
                    let name_len = word_len(&src[i + 1..]);
                    if name_len == 0 {
                        out.push((Tok::Dot, i));
                    } else {
                        out.push((Tok::Field(src[i + 1..i + 1 + name_len].to_string()), i));
                    }
                    i += 1 + name_len;
                }
            }
            b'0'..=b'9' | b'+' | b'-' => {
                let n = number_len(&src[i..]);
                if n == 0 {
                    return Err(err(i, "bad character in action"));
                }
                let text = &src[i..i + n];
                if src[i + n..]
                    .chars()
                    .next()
                    .is_some_and(|c| is_alnum(c) || c == '.')
                {
                    return Err(err(i, "bad number syntax"));
                }
                out.push((Tok::Num(text.to_string()), i));
                i += n;
            }
            _ => {
                let n = word_len(&src[i..]);
                if n == 0 {
                    return Err(err(i, "bad character in action"));
                }
                let word = &src[i..i + n];
                out.push((
                    match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => Tok::Ident(w.to_string()),
                    },
                    start,
                ));
                i += n;
            }
        }
    }
}

/// Bytes of the identifier at the start of `s`.
fn word_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !is_alnum(*c))
        .map_or(s.len(), |(i, _)| i)
}

/// Bytes of the number at the start of `s` (sign, `0x`/`0o`/`0b`, digits
/// with `_`, fraction, exponent); 0 if there is none.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits_from = i;
    let hex = b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X'));
    if hex || (b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'o' | b'O' | b'b' | b'B'))) {
        i += 2;
    }
    let digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit() || c == b'_'
        } else {
            c.is_ascii_digit() || c == b'_'
        }
    };
    while b.get(i).is_some_and(|c| digit(*c)) {
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| digit(*c)) {
            i += 1;
        }
    }
    if !hex && matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if b.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
    }
    if i == digits_from || (i == digits_from + 1 && b[digits_from] == b'.') {
        return 0;
    }
    i
}

/// The value of a Go interpreted string literal (`"..."` with Go's escapes).
pub(crate) fn unquote_go(lit: &str) -> Option<String> {
    let inner = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let hexn = |chars: &mut std::str::Chars, n: usize| -> Option<u32> {
            let h: String = chars.by_ref().take(n).collect();
            if h.len() != n {
                return None;
            }
            u32::from_str_radix(&h, 16).ok()
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' => out.push(char::from_u32(hexn(&mut chars, 2)?)?),
            'u' => out.push(char::from_u32(hexn(&mut chars, 4)?)?),
            'U' => out.push(char::from_u32(hexn(&mut chars, 8)?)?),
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let v = u32::from_str_radix(&format!("{e}{rest}"), 8).ok()?;
                out.push(char::from_u32(v)?);
            }
            _ => return None,
        }
    }
    Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn trim_markers_and_comments() {
        assert_eq!(
            toks("a  {{- 3 -}}  b{{/* c */}}d {{- /* e */ -}} f"),
            vec![
                Tok::Text("a".into()),
                Tok::Open,
                Tok::Num("3".into()),
                Tok::Close,
                Tok::Text("b".into()),
                Tok::Text("d".into()),
                Tok::Text("f".into()),
            ]
        );
        // `{{-3}}` is the number -3, no trim.
        assert_eq!(
            toks("a {{-3}}"),
            vec![
                Tok::Text("a ".into()),
                Tok::Open,
                Tok::Num("-3".into()),
                Tok::Close
            ]
        );
    }

    #[test]
    fn action_tokens() {
        assert_eq!(
            toks(r#"{{ $x := .a.b | printf "%s}}" `r` 'z' 1.5e3 (nil) }}"#),
            vec![
                Tok::Open,
                Tok::Space,
                Tok::Var("x".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Field("a".into()),
                Tok::Field("b".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("%s}}".into()),
                Tok::Space,
                Tok::Str("r".into()),
                Tok::Space,
                Tok::Num("122".into()),
                Tok::Space,
                Tok::Num("1.5e3".into()),
                Tok::Space,
                Tok::LParen,
                Tok::Nil,
                Tok::RParen,
                Tok::Space,
                Tok::Close,
            ]
        );
    }

    #[test]
    fn errors_say_where() {
        for (src, why) in [
            ("x {{ .a ", "unclosed action"),
            ("{{ \"a }}", "unterminated quoted string"),
            ("{{ ( .a }}", "unclosed left paren"),
            ("{{ .a ) }}", "unexpected right paren"),
            ("{{/* a }}", "unclosed comment"),
            ("{{ # }}", "bad character"),
        ] {
            let e = lex(src).unwrap_err();
            assert!(e.message.contains(why), "{src}: {e:?}");
        }
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
