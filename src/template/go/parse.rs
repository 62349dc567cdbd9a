//! The parser of Go's `text/template`: the tokens of [`super::lex`] into a
//! tree of text, actions and control structures, with Go's rules checked
//! when the template is compiled: every function named exists, every
//! variable is declared before use and in scope, `break`/`continue` only
//! inside `range`, `define` only at the top level.

use std::collections::BTreeMap;

use serde_json::Value;

use super::lex::{Item, Tok};

/// A list of nodes (a template body or a branch).
pub(crate) type List = Vec<Node>;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    /// `{{ pipeline }}`: prints its value unless it declares variables.
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    /// `{{ template "name" pipeline }}` (and the call half of `block`).
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break(usize),
    Continue(usize),
}

/// `if`/`with`/`range`: the pipeline, its body and the `else` body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: List,
    pub(crate) else_list: Option<List>,
}

/// A pipeline: optional variable declaration, commands joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    /// `=` (assign existing variables) rather than `:=`.
    pub(crate) assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Cmd>,
}

/// One command: its operands (the first may be a function).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// `.a.b`: fields of dot.
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone: the data the template was run with).
    Var(String, Vec<String>),
    /// `(pipeline).a.b`.
    Chain(Box<Pipe>, Vec<String>),
    Dot,
    Nil,
    Lit(Value),
    /// A function (known when parsed).
    Func(String),
}

/// A parse error: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

/// A parsed template: its body and the templates it defines.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Tree {
    pub(crate) root: List,
    pub(crate) defines: BTreeMap<String, List>,
}

/// Parses `src`; `known` says whether a function name exists.
#[cfg(test)]
pub(crate) fn parse(src: &str, known: &dyn Fn(&str) -> bool) -> Result<Tree, ParseError> {
    let items = super::lex::lex(src).map_err(|e| ParseError {
        pos: e.pos,
        message: e.message,
    })?;
    parse_items(&items, src.len(), known)
}

/// Parses the tokens of a template `len` bytes long (lexed once by the
/// caller, who also reads them for refused functions).
pub(crate) fn parse_items(
    items: &[Item],
    len: usize,
    known: &dyn Fn(&str) -> bool,
) -> Result<Tree, ParseError> {
    let mut p = Parser {
        items,
        at: 0,
        known,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        defines: BTreeMap::new(),
        end_pos: len,
    };
    let (root, end) = p.list(true)?;
    if let Some((what, pos)) = end {
        return Err(ParseError {
            pos,
            message: format!("unexpected {{{{{what}}}}}"),
        });
    }
    Ok(Tree {
        root,
        defines: p.defines,
    })
}

/// Where a list stopped: `{{ end }}` or an `{{ else ... }}`.
enum Stop {
    End,
    /// `{{ else }}` alone.
    Else,
    /// `{{ else if ... }}` / `{{ else with ... }}`: the keyword.
    ElseChain(String),
}

/// Deepest nesting of blocks and parentheses (the parser and the executor
/// recurse on it: a deeper template would exhaust the stack).
pub(crate) const NESTING_MAX: usize = 100;

struct Parser<'a> {
    /// Blocks and parentheses open around here.
    depth: usize,
    items: &'a [Item],
    at: usize,
    known: &'a dyn Fn(&str) -> bool,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    /// `range` bodies open around here (`break`/`continue` need one).
    range_depth: usize,
    defines: BTreeMap<String, List>,
    end_pos: usize,
}

type Res<T> = Result<T, ParseError>;

impl Parser<'_> {
    fn err<T>(&self, pos: usize, message: impl Into<String>) -> Res<T> {
        Err(ParseError {
            pos,
            message: message.into(),
        })
    }

    fn pos(&self) -> usize {
        self.items.get(self.at).map_or(self.end_pos, |(_, p)| *p)
    }

    fn peek(&self) -> Option<&Tok> {
        self.items.get(self.at).map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.items.get(self.at).map(|(t, _)| t.clone());
        self.at += 1;
        t
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.at += 1;
        }
    }

    /// The next token after any space.
    fn peek_ns(&mut self) -> Option<&Tok> {
        self.skip_space();
        self.peek()
    }

    fn expect_close(&mut self, what: &str) -> Res<()> {
        self.skip_space();
        let pos = self.pos();
        match self.next() {
            Some(Tok::Close) => Ok(()),
            _ => self.err(pos, format!("unexpected input in {what}; expected }}}}")),
        }
    }

    /// Nodes until the end of input (`top`) or a `{{ end }}`/`{{ else }}`,
    /// which is returned as (word, position).
    #[allow(clippy::type_complexity)]
    fn list(&mut self, top: bool) -> Res<(List, Option<(String, usize)>)> {
        let mut out = List::new();
        loop {
            let pos = self.pos();
            match self.next() {
                None => {
                    return Ok((out, None));
                }
                Some(Tok::Text(t)) => out.push(Node::Text(t)),
                Some(Tok::Open) => {
                    let kw_pos = {
                        self.skip_space();
                        self.pos()
                    };
                    let word = match self.peek() {
                        Some(Tok::Ident(w)) => Some(w.clone()),
                        _ => None,
                    };
                    match word.as_deref() {
                        Some("end") | Some("else") => {
                            self.at += 1;
                            let w = word.unwrap_or_default();
                            return Ok((out, Some((w, kw_pos))));
                        }
                        Some("if") | Some("with") | Some("range") => {
                            self.at += 1;
                            let w = word.unwrap_or_default();
                            out.push(self.control(&w, kw_pos)?);
                        }
                        Some("template") => {
                            self.at += 1;
                            out.push(self.template_call(kw_pos)?);
                        }
                        Some("define") | Some("block") => {
                            self.at += 1;
                            let w = word.unwrap_or_default();
                            if w == "define" && !top {
                                return self.err(kw_pos, "define is allowed only at the top level");
                            }
                            if let Some(call) = self.define(&w, kw_pos)? {
                                out.push(call);
                            }
                        }
                        Some("break") | Some("continue") => {
                            self.at += 1;
                            let w = word.unwrap_or_default();
                            if self.range_depth == 0 {
                                return self
                                    .err(kw_pos, format!("{{{{{w}}}}} outside {{{{range}}}}"));
                            }
                            self.expect_close(&w)?;
                            out.push(if w == "break" {
                                Node::Break(kw_pos)
                            } else {
                                Node::Continue(kw_pos)
                            });
                        }
                        _ => {
                            let pipe = self.pipeline("command", false)?;
                            self.expect_close("command")?;
                            out.push(Node::Action(pipe));
                        }
                    }
                }
                Some(_) => return self.err(pos, "unexpected token"),
            }
        }
    }

    /// After `if`/`with`/`range`: the pipeline, the body, `else` parts, `end`.
    fn control(&mut self, kw: &str, kw_pos: usize) -> Res<Node> {
        self.enter(kw_pos)?;
        let node = self.control_body(kw, kw_pos);
        self.depth -= 1;
        node
    }

    /// One level deeper, refused past [`NESTING_MAX`].
    fn enter(&mut self, pos: usize) -> Res<()> {
        if self.depth >= NESTING_MAX {
            return self.err(
                pos,
                format!("blocks and parentheses nest deeper than {NESTING_MAX}"),
            );
        }
        self.depth += 1;
        Ok(())
    }

    fn control_body(&mut self, kw: &str, kw_pos: usize) -> Res<Node> {
        let mark = self.vars.len();
        let pipe = self.pipeline(kw, kw == "range")?;
        self.expect_close(kw)?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let body = self.list(false);
        if kw == "range" {
            self.range_depth -= 1;
        }
        let (list, stop) = body?;
        let stop = self.stop(stop, kw, kw_pos)?;
        let else_list = match stop {
            Stop::End => None,
            Stop::Else => {
                let (l, s) = self.list(false)?;
                match self.stop(s, kw, kw_pos)? {
                    Stop::End => Some(l),
                    _ => return self.err(kw_pos, format!("expected end; found else in {kw}")),
                }
            }
            Stop::ElseChain(chained) => {
                // `{{ else if p }}` is `{{ else }}{{ if p }}...{{ end }}`,
                // sharing the outer `end`.
                let pos = self.pos();
                if kw == "range" || (chained != kw) {
                    return self.err(pos, format!("unexpected {chained} after else in {kw}"));
                }
                Some(vec![self.control(&chained, pos)?])
            }
        };
        self.vars.truncate(mark);
        let b = Branch {
            pipe,
            list,
            else_list,
        };
        Ok(match kw {
            "if" => Node::If(b),
            "with" => Node::With(b),
            _ => Node::Range(b),
        })
    }

    /// What ended a body: `end`, `else`, or `else if`/`else with` (whose
    /// keyword is consumed; its pipeline follows).
    fn stop(&mut self, s: Option<(String, usize)>, kw: &str, kw_pos: usize) -> Res<Stop> {
        match s {
            None => self.err(
                kw_pos,
                format!("unexpected EOF: {{{{{kw}}}}} is not closed by {{{{end}}}}"),
            ),
            Some((w, _)) if w == "end" => {
                self.expect_close("end")?;
                Ok(Stop::End)
            }
            Some(_) => match self.peek_ns() {
                Some(Tok::Close) => {
                    self.at += 1;
                    Ok(Stop::Else)
                }
                Some(Tok::Ident(w)) if w == "if" || w == "with" => {
                    let w = w.clone();
                    self.at += 1;
                    Ok(Stop::ElseChain(w))
                }
                _ => {
                    let pos = self.pos();
                    self.err(pos, "unexpected input after else")
                }
            },
        }
    }

    fn template_name(&mut self, what: &str) -> Res<String> {
        self.skip_space();
        let pos = self.pos();
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => self.err(pos, format!("a string is needed as the name in {what}")),
        }
    }

    fn template_call(&mut self, kw_pos: usize) -> Res<Node> {
        let name = self.template_name("template")?;
        let pipe = match self.peek_ns() {
            Some(Tok::Close) => None,
            _ => Some(self.pipeline("template", false)?),
        };
        self.expect_close("template")?;
        Ok(Node::Template {
            pos: kw_pos,
            name,
            pipe,
        })
    }

    /// `define "name"` (nothing in place) or `block "name" pipe` (a call
    /// in place). The body sees only `$`.
    fn define(&mut self, kw: &str, kw_pos: usize) -> Res<Option<Node>> {
        let name = self.template_name(kw)?;
        let pipe = if kw == "block" {
            Some(self.pipeline("block", false)?)
        } else {
            None
        };
        self.expect_close(kw)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::take(&mut self.range_depth);
        self.enter(kw_pos)?;
        let body = self.list(false);
        self.depth -= 1;
        self.vars = saved_vars;
        self.range_depth = saved_range;
        let (list, stop) = body?;
        match stop {
            Some((w, _)) if w == "end" => self.expect_close("end")?,
            _ => return self.err(kw_pos, format!("{{{{{kw}}}}} is not closed by {{{{end}}}}")),
        }
        // A later non-empty definition replaces an earlier one (Go's rule
        // for an empty one: it does not replace).
        let empty = list
            .iter()
            .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()));
        if !empty || !self.defines.contains_key(&name) {
            self.defines.insert(name.clone(), list);
        }
        Ok(pipe.map(|p| Node::Template {
            pos: kw_pos,
            name,
            pipe: Some(p),
        }))
    }

    /// A pipeline up to (not including) `}}` or `)`.
    fn pipeline(&mut self, ctx: &str, in_range: bool) -> Res<Pipe> {
        self.skip_space();
        let pos = self.pos();
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $v :=` (range only).
        let save = self.at;
        if let Some(Tok::Var(v)) = self.peek().cloned() {
            self.at += 1;
            self.skip_space();
            match self.peek().cloned() {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = self.peek() == Some(&Tok::Assign);
                    self.at += 1;
                    decl.push(v);
                }
                Some(Tok::Comma) if in_range => {
                    self.at += 1;
                    self.skip_space();
                    let pos2 = self.pos();
                    match (self.next(), {
                        self.skip_space();
                        self.next()
                    }) {
                        (Some(Tok::Var(v2)), Some(t @ (Tok::Declare | Tok::Assign))) => {
                            assign = t == Tok::Assign;
                            decl.push(v);
                            decl.push(v2);
                        }
                        _ => {
                            return self
                                .err(pos2, "range can only initialize variables as $i, $v :=")
                        }
                    }
                }
                _ => self.at = save,
            }
        }
        for v in &decl {
            if v == "$" {
                return self.err(pos, "the variable $ cannot be declared");
            }
            if assign && !self.vars.contains(v) {
                return self.err(pos, format!("undefined variable \"${v}\""));
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::Close) | Some(Tok::RParen) | None => break,
                _ => {}
            }
            cmds.push(self.command()?);
            self.skip_space();
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.at += 1;
                    self.skip_space();
                    if matches!(self.peek(), Some(Tok::Close) | Some(Tok::RParen)) {
                        let p = self.pos();
                        return self.err(p, "missing command after |");
                    }
                }
                _ => break,
            }
        }
        if cmds.is_empty() {
            return self.err(pos, format!("missing value for {ctx}"));
        }
        // A first command of nil alone, or a literal after `|`, cannot be
        // run: Go refuses both when parsing.
        for (n, c) in cmds.iter().enumerate() {
            if n > 0 && !matches!(c.args.first(), Some(Arg::Func(_))) {
                return self.err(c.pos, "non executable command in pipeline stage");
            }
            if c.args.len() == 1 && c.args[0] == Arg::Nil {
                return self.err(c.pos, "nil is not a command");
            }
        }
        if !assign {
            self.vars.extend(decl.iter().cloned());
        }
        Ok(Pipe {
            pos,
            assign,
            decl,
            cmds,
        })
    }

    /// Operands separated by space, up to `|`, `)` or `}}`.
    fn command(&mut self) -> Res<Cmd> {
        let pos = self.pos();
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::Close) | Some(Tok::RParen) | Some(Tok::Pipe) | None => break,
                _ => {}
            }
            args.push(self.operand()?);
        }
        if args.is_empty() {
            return self.err(pos, "empty command");
        }
        Ok(Cmd { pos, args })
    }

    /// A term and the fields chained onto it (no space between).
    fn operand(&mut self) -> Res<Arg> {
        let pos = self.pos();
        let term = match self.next() {
            Some(Tok::Field(f)) => Arg::Field(vec![f]),
            Some(Tok::Dot) => Arg::Dot,
            Some(Tok::Nil) => Arg::Nil,
            Some(Tok::Bool(b)) => Arg::Lit(Value::Bool(b)),
            Some(Tok::Str(s)) => Arg::Lit(Value::String(s)),
            Some(Tok::Num(n)) => Arg::Lit(number(&n).ok_or(ParseError {
                pos,
                message: format!("illegal number syntax: {n:?}"),
            })?),
            Some(Tok::Var(v)) => {
                if !self.vars.contains(&v) {
                    return self.err(pos, format!("undefined variable \"${v}\""));
                }
                Arg::Var(v, Vec::new())
            }
            Some(Tok::Ident(name)) => {
                if matches!(
                    name.as_str(),
                    "if" | "else"
                        | "end"
                        | "range"
                        | "with"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) {
                    return self.err(pos, format!("unexpected keyword {name:?} in operand"));
                }
                if !(self.known)(&name) {
                    return self.err(pos, format!("function {name:?} not defined"));
                }
                Arg::Func(name)
            }
            Some(Tok::LParen) => {
                self.enter(pos)?;
                let p = self.pipeline("parenthesized pipeline", false);
                self.depth -= 1;
                let p = p?;
                self.skip_space();
                if self.next() != Some(Tok::RParen) {
                    return self.err(pos, "unclosed left paren");
                }
                Arg::Chain(Box::new(p), Vec::new())
            }
            _ => return self.err(pos, "unexpected token in operand"),
        };
        let mut fields = Vec::new();
        while let Some(Tok::Field(f)) = self.peek() {
            fields.push(f.clone());
            self.at += 1;
        }
        Ok(match term {
            Arg::Field(mut f) => {
                f.extend(fields);
                Arg::Field(f)
            }
            Arg::Var(v, _) => Arg::Var(v, fields),
            Arg::Chain(p, _) => Arg::Chain(p, fields),
            _ if !fields.is_empty() => {
                return self.err(pos, "unexpected . after term");
            }
            other => other,
        })
    }
}

/// A Go number literal's value: a float when written with `.` or an
/// exponent (not hex), else an integer (runes are integers).
fn number(text: &str) -> Option<Value> {
    let t = text.replace('_', "");
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let radix = |p: &str| -> Option<(u32, &str)> {
        let l = body.get(..2)?.to_ascii_lowercase();
        (l == p).then(|| body.get(2..)).flatten().map(|r| (0, r))
    };
    let int = if let Some((_, h)) = radix("0x") {
        Some(i128::from_str_radix(h, 16).ok()?)
    } else if let Some((_, o)) = radix("0o") {
        Some(i128::from_str_radix(o, 8).ok()?)
    } else if let Some((_, bn)) = radix("0b") {
        Some(i128::from_str_radix(bn, 2).ok()?)
    } else if body.contains(['.', 'e', 'E']) {
        None
    } else if body.len() > 1 && body.starts_with('0') {
        Some(i128::from_str_radix(&body[1..], 8).ok()?)
    } else {
        Some(body.parse::<i128>().ok()?)
    };
    match int {
        Some(i) => {
            let i = if neg { -i } else { i };
            i64::try_from(i)
                .map(Value::from)
                .or_else(|_| u64::try_from(i).map(Value::from))
                .ok()
        }
        None => {
            let f: f64 = body.parse().ok()?;
            serde_json::Number::from_f64(if neg { -f } else { f }).map(Value::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Result<Tree, ParseError> {
        parse(src, &|f| matches!(f, "printf" | "len" | "upper"))
    }

    #[test]
    fn variables_are_scoped_to_their_block() {
        assert!(p("{{ $x := 1 }}{{ $x }}").is_ok());
        assert!(p("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}")
            .unwrap_err()
            .message
            .contains("undefined variable \"$x\""));
        assert!(p("{{ range $i, $v := .l }}{{ $i }}{{ else }}{{ $v }}{{ end }}").is_ok());
        assert!(p("{{ $x = 1 }}").is_err());
        assert!(p("{{ define \"t\" }}{{ $x }}{{ end }}").is_err());
    }

    #[test]
    fn else_chains_share_one_end() {
        let t = p("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}").unwrap();
        let Node::If(b) = &t.root[0] else {
            panic!("{t:?}")
        };
        let Some(els) = &b.else_list else { panic!() };
        assert!(matches!(&els[0], Node::If(inner) if inner.else_list.is_some()));
    }

    #[test]
    fn go_refuses_these_when_parsing() {
        for (src, why) in [
            ("{{ nope .a }}", "function \"nope\" not defined"),
            ("{{ if .a }}x", "not closed"),
            ("{{ end }}", "unexpected {{end}}"),
            ("{{ break }}", "outside {{range}}"),
            ("{{ nil }}", "nil is not a command"),
            ("{{ .a | \"x\" }}", "non executable command"),
            (
                "{{ if .a }}{{ define \"x\" }}{{ end }}{{ end }}",
                "top level",
            ),
            ("{{ 1.2.3 }}", "bad number syntax"),
            (
                "{{ range .a }}{{ else if .b }}{{ end }}",
                "unexpected if after else",
            ),
            (&"{{ if 1 }}".repeat(101), "nest deeper than 100"),
            (
                &format!("{{{{ {}1{} }}}}", "(".repeat(101), ")".repeat(101)),
                "nest deeper than 100",
            ),
        ] {
            let e = p(src).unwrap_err();
            assert!(e.message.contains(why), "{src}: {e:?}");
        }
    }

    #[test]
    fn numbers_are_go_numbers() {
        assert_eq!(number("0x1F"), Some(Value::from(31)));
        assert_eq!(number("-12"), Some(Value::from(-12)));
        assert_eq!(number("017"), Some(Value::from(15)));
        assert_eq!(number("1_000"), Some(Value::from(1000)));
        assert!(number("1e3").is_some_and(|v| v.is_f64()));
        assert!(number("1.5").is_some_and(|v| v.is_f64()));
    }

    #[test]
    fn defines_are_collected_and_blocks_call_in_place() {
        let t = p("{{ define \"a\" }}A{{ end }}{{ block \"b\" . }}B{{ end }}").unwrap();
        assert_eq!(t.defines.len(), 2);
        assert!(matches!(&t.root[..], [Node::Template { name, .. }] if name == "b"));
    }
}
