//! Runs a parsed Go template over a value with Go's semantics: `missingkey=error`
//! (a field a map does not have fails the render, as with ESO), truth as Go
//! defines it (false, 0, nil, empty text/list/map are false), variables
//! scoped to their control structure, `range` over lists, maps (keys
//! sorted), integers, with `break`/`continue` and `else`, `with`, template
//! calls with their own `$`, and lazy `and`/`or`.
//!
//! Bounded: at most [`STEPS_MAX`] nodes and loop turns, [`OUTPUT_MAX`] bytes
//! of output, [`DEPTH_MAX`] nested template calls; passing one is an error
//! naming the bound. Errors name the template's own words (a field, a
//! function, a line and column), never a value.

use serde_json::Value;

use super::fmt;
use super::funcs;
use super::parse::{Arg, Branch, Cmd, List, Node, Pipe, Tree};
use super::value::{kind_name, truth};

/// Most nodes run and loop turns in one render.
pub(crate) const STEPS_MAX: usize = 2_000_000;
/// Most bytes one render writes.
pub(crate) const OUTPUT_MAX: usize = 16 * 1024 * 1024;
/// Deepest nesting of `template` calls.
pub(crate) const DEPTH_MAX: usize = 64;

/// A render error: where (a byte offset of the template) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecError {
    pub(crate) pos: usize,
    pub(crate) message: String,
}

enum Flow {
    Next,
    Break,
    Continue,
}

type Res<T> = Result<T, ExecError>;

struct State<'a> {
    tree: &'a Tree,
    host: &'a super::Host,
    out: String,
    steps: usize,
    depth: usize,
    /// Variables in scope, innermost last (`$` first).
    vars: Vec<(String, Value)>,
}

/// Runs `tree` with `dot` as `.` and `$`.
pub(crate) fn execute(tree: &Tree, dot: &Value, host: &super::Host) -> Result<String, ExecError> {
    let mut s = State {
        tree,
        host,
        out: String::new(),
        steps: 0,
        depth: 0,
        vars: vec![("$".to_string(), dot.clone())],
    };
    let res = s.list(&tree.root, dot, 0);
    // The variables hold copies of values.
    for (_, v) in &mut s.vars {
        crate::secret::zeroize_value(v);
    }
    match res {
        Ok(_) => Ok(s.out),
        Err(e) => {
            zeroize_string(&mut s.out);
            Err(e)
        }
    }
}

fn zeroize_string(s: &mut String) {
    use zeroize::Zeroize;
    s.zeroize();
}

fn err<T>(pos: usize, message: impl Into<String>) -> Res<T> {
    Err(ExecError {
        pos,
        message: message.into(),
    })
}

impl State<'_> {
    fn step(&mut self, pos: usize) -> Res<()> {
        self.steps += 1;
        if self.steps > STEPS_MAX {
            return err(
                pos,
                format!("the template ran more than {STEPS_MAX} steps (loops included); it is refused as unbounded"),
            );
        }
        Ok(())
    }

    fn write(&mut self, pos: usize, s: &str) -> Res<()> {
        if self.out.len().saturating_add(s.len()) > OUTPUT_MAX {
            return err(
                pos,
                format!("the output would pass {} MiB", OUTPUT_MAX >> 20),
            );
        }
        self.out.push_str(s);
        Ok(())
    }

    fn list(&mut self, list: &List, dot: &Value, pos: usize) -> Res<Flow> {
        for node in list {
            self.step(pos)?;
            match self.node(node, dot)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Res<Flow> {
        match node {
            Node::Text(t) => self.write(0, t)?,
            Node::Action(pipe) => {
                let v = self.pipe(pipe, dot)?;
                if pipe.decl.is_empty() {
                    let mut s = String::new();
                    match &v {
                        // Go prints a missing or nil interface value so.
                        Value::Null => s.push_str("<no value>"),
                        v => fmt::value(v, &mut s).or_else(|m| err(pipe.pos, m))?,
                    }
                    self.write(pipe.pos, &s)?;
                    zeroize_string(&mut s);
                }
            }
            Node::If(b) => return self.branch(b, dot, false),
            Node::With(b) => return self.branch(b, dot, true),
            Node::Range(b) => return self.range(b, dot),
            Node::Template { pos, name, pipe } => {
                let body = self.tree.defines.get(name).ok_or(ExecError {
                    pos: *pos,
                    message: format!("no such template {name:?}"),
                })?;
                let new_dot = match pipe {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Null,
                };
                if self.depth >= DEPTH_MAX {
                    return err(*pos, format!("template calls nest deeper than {DEPTH_MAX}"));
                }
                self.depth += 1;
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                let res = self.list(body, &new_dot, *pos);
                let inner = std::mem::replace(&mut self.vars, saved);
                drop(inner);
                self.depth -= 1;
                res?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Next)
    }

    /// `if` (dot unchanged) or `with` (dot becomes the value).
    fn branch(&mut self, b: &Branch, dot: &Value, with: bool) -> Res<Flow> {
        let mark = self.vars.len();
        let v = self.pipe(&b.pipe, dot)?;
        let res = if truth(&v) {
            let d = if with { &v } else { dot };
            self.list(&b.list, d, b.pipe.pos)
        } else if let Some(e) = &b.else_list {
            self.list(e, dot, b.pipe.pos)
        } else {
            Ok(Flow::Next)
        };
        self.vars.truncate(mark);
        res
    }

    fn range(&mut self, b: &Branch, dot: &Value) -> Res<Flow> {
        let mark = self.vars.len();
        let pos = b.pipe.pos;
        // The pipeline's own declaration names the loop variables, which
        // the loop sets each turn (not the pipeline's value).
        let decl = b.pipe.decl.clone();
        let plain = Pipe {
            decl: Vec::new(),
            ..b.pipe.clone()
        };
        let v = self.pipe(&plain, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::from(i), x.clone()))
                .collect(),
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::String(k.clone()), o[k].clone()))
                    .collect()
            }
            Value::Number(n) => {
                let Some(count) = n.as_i64() else {
                    return err(pos, "range over a number needs a whole number");
                };
                let count = usize::try_from(count).unwrap_or(0);
                if count > STEPS_MAX {
                    return err(pos, format!("range over more than {STEPS_MAX} numbers"));
                }
                // Numbers are made as the loop turns, not all at first.
                return self.range_numbers(b, dot, count, mark);
            }
            Value::Null => Vec::new(),
            Value::String(_) | Value::Bool(_) => {
                return err(
                    pos,
                    "range can't iterate over text or a boolean (a list, a map or a number)",
                );
            }
        };
        if items.is_empty() {
            return self.range_else(b, dot, mark);
        }
        let base = self.vars.len();
        for (k, x) in items {
            self.step(pos)?;
            self.vars.truncate(base);
            match decl.as_slice() {
                [] => {}
                [one] => self.set_var(one, x.clone(), b.pipe.assign),
                [key, val, ..] => {
                    self.set_var(key, k, b.pipe.assign);
                    self.set_var(val, x.clone(), b.pipe.assign);
                }
            }
            match self.list(&b.list, &x, pos)? {
                Flow::Break => break,
                Flow::Next | Flow::Continue => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Next)
    }

    /// The `else` of a `range` that had nothing to loop over.
    fn range_else(&mut self, b: &Branch, dot: &Value, mark: usize) -> Res<Flow> {
        let res = match &b.else_list {
            Some(e) => self.list(e, dot, b.pipe.pos),
            None => Ok(Flow::Next),
        };
        self.vars.truncate(mark);
        res.map(|_| Flow::Next)
    }

    /// `range N`: the loop over 0..N (its variables: the number, or the
    /// number twice for `$i, $v`); `else` when N is 0.
    fn range_numbers(&mut self, b: &Branch, dot: &Value, count: usize, mark: usize) -> Res<Flow> {
        let pos = b.pipe.pos;
        if count == 0 {
            return self.range_else(b, dot, mark);
        }
        let base = self.vars.len();
        for i in 0..count {
            self.step(pos)?;
            self.vars.truncate(base);
            let x = Value::from(i);
            for name in &b.pipe.decl {
                self.set_var(name, x.clone(), b.pipe.assign);
            }
            if let Flow::Break = self.list(&b.list, &x, pos)? {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Next)
    }

    fn set_var(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn var(&self, name: &str, pos: usize) -> Res<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or(ExecError {
                pos,
                message: format!("undefined variable \"${name}\""),
            })
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Res<Value> {
        let mut last: Option<Value> = None;
        for cmd in &pipe.cmds {
            self.step(cmd.pos)?;
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Null);
        for name in &pipe.decl {
            self.set_var(name, v.clone(), pipe.assign);
        }
        Ok(v)
    }

    /// One command; `last` is the previous command's value (the final
    /// argument of a function).
    fn command(&mut self, cmd: &Cmd, dot: &Value, last: Option<Value>) -> Res<Value> {
        let (first, rest) = match cmd.args.split_first() {
            Some(x) => x,
            None => return err(cmd.pos, "empty command"),
        };
        if let Arg::Func(name) = first {
            return self.call(name, rest, dot, last, cmd.pos);
        }
        if !rest.is_empty() || last.is_some() {
            return err(
                cmd.pos,
                format!(
                    "{} is not a function and takes no arguments",
                    describe(first)
                ),
            );
        }
        self.arg(first, dot, cmd.pos)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        dot: &Value,
        last: Option<Value>,
        pos: usize,
    ) -> Res<Value> {
        // `and` and `or` stop at the first value that decides.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(last.is_some());
            if total == 0 {
                return err(
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                );
            }
            let mut v = Value::Null;
            for a in args {
                v = self.arg(a, dot, pos)?;
                if truth(&v) == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(l) = last {
                v = l;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot, pos)?);
        }
        if let Some(l) = last {
            vals.push(l);
        }
        let res = funcs::call(name, &vals, self.host).map_err(|m| ExecError {
            pos,
            message: format!("error calling {name}: {m}"),
        });
        for v in &mut vals {
            crate::secret::zeroize_value(v);
        }
        res
    }

    fn arg(&mut self, a: &Arg, dot: &Value, pos: usize) -> Res<Value> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil => Ok(Value::Null),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Field(path) => fields(dot, path, pos),
            Arg::Var(name, path) => {
                let v = self.var(name, pos)?;
                fields(&v, path, pos)
            }
            Arg::Chain(p, path) => {
                let v = self.pipe(p, dot)?;
                fields(&v, path, pos)
            }
            Arg::Func(name) => self.call(name, &[], dot, None, pos),
        }
    }
}

/// `v.a.b...` with missingkey=error.
fn fields(v: &Value, path: &[String], pos: usize) -> Res<Value> {
    let mut cur = v;
    for f in path {
        cur = match cur {
            Value::Object(o) => match o.get(f) {
                Some(x) => x,
                None => return err(pos, format!("map has no entry for key {f:?}")),
            },
            Value::Null => return err(pos, format!("nil pointer evaluating .{f}")),
            _ => {
                return err(
                    pos,
                    format!("can't evaluate field {f} in {}", kind_name(cur)),
                )
            }
        };
    }
    Ok(cur.clone())
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Field(p) => format!(".{}", p.join(".")),
        Arg::Var(n, p) => {
            let v = if n == "$" { String::new() } else { n.clone() };
            let mut s = format!("${v}");
            for f in p {
                s.push('.');
                s.push_str(f);
            }
            s
        }
        Arg::Dot => ".".into(),
        Arg::Nil => "nil".into(),
        Arg::Lit(_) => "a constant".into(),
        Arg::Chain(..) => "a parenthesized pipeline".into(),
        Arg::Func(f) => f.clone(),
    }
}
