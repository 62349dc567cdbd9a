//! Go's `fmt` for template values: how an action prints a value (`%v`), and
//! `print`, `println` and `printf` with Go's verbs, flags, width and
//! precision. Where Go would write a malformed-verb marker such as
//! `%!d(string=...)` (which quotes the value) this returns an error naming
//! the verb instead.

use serde_json::Value;

use crate::template::functions::BINARY;

/// Widest width or precision a verb may ask for (a bound on what a
/// template can make).
const WIDTH_MAX: usize = 100_000;

/// `%v` of a value: strings as they are, numbers as Go prints an int or a
/// float64, `[a b]` for lists, `map[k:v]` (keys sorted) for maps, `<nil>`
/// for nil inside them.
pub(crate) fn value(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                value(x, out)?;
            }
            out.push(']');
        }
        Value::Object(o) => {
            if o.contains_key(BINARY) {
                return Err(
                    "a value of bytes that are not text cannot be printed; pass it to b64enc or a pkcs12 function".into(),
                );
            }
            out.push_str("map[");
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                value(&o[k], out)?;
            }
            out.push(']');
        }
    }
    Ok(())
}

/// A number as Go's `%v` prints it: integers in decimal, floats in the
/// shortest form (`%g` with Go's exponent rule: `1e+06`, `0.0001`).
pub(crate) fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    float_g(n.as_f64().unwrap_or(0.0), None, false)
}

/// Go's `%g` (precision `None`: the shortest that reads back); `sharp`
/// keeps trailing zeros.
fn float_g(f: f64, prec: Option<usize>, sharp: bool) -> String {
    if !f.is_finite() {
        return special(f);
    }
    let (neg, mut digits, exp) = decimal(f, prec.map(|p| p.max(1)));
    let nd = digits.len();
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1);
            let dp = exp.saturating_add(1);
            if p > nd && i64::try_from(nd).is_ok_and(|n| n >= dp) {
                nd
            } else {
                p
            }
        }
    };
    if !sharp {
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
    }
    let sign = if neg { "-" } else { "" };
    if exp < -4 || exp >= i64::try_from(eprec).unwrap_or(i64::MAX) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!(
            "{sign}{first}{frac}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        )
    } else if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else {
        let int_len = usize::try_from(exp + 1).unwrap_or(0);
        if digits.len() <= int_len {
            format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
        }
    }
}

fn special(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// The decimal digits of `f` (no dot) and its exponent (of the first
/// digit): the shortest that reads back, or `prec` significant digits.
fn decimal(f: f64, prec: Option<usize>) -> (bool, String, i64) {
    let s = match prec {
        None => format!("{:e}", f.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    (
        f.is_sign_negative() && f != 0.0,
        digits,
        exp.parse().unwrap_or(0),
    )
}

/// Go's `%e` with `prec` digits after the point.
fn float_e(f: f64, prec: usize, upper: bool) -> String {
    if !f.is_finite() {
        return special(f);
    }
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i64 = exp.parse().unwrap_or(0);
    let out = format!(
        "{mant}e{}{:02}",
        if e < 0 { '-' } else { '+' },
        e.unsigned_abs()
    );
    if upper {
        out.to_uppercase()
    } else {
        out
    }
}

/// `print`: Go's Sprint (a space between operands when neither is a string).
pub(crate) fn sprint(args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !args[i - 1].is_string() && !a.is_string() {
            out.push(' ');
        }
        value(a, &mut out)?;
    }
    Ok(out)
}

/// `println`: Go's Sprintln (spaces always, a newline at the end).
pub(crate) fn sprintln(args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        value(a, &mut out)?;
    }
    out.push('\n');
    Ok(out)
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `printf`: Go's Sprintf.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0usize;
    // An explicit `%[n]` index: Go then does not count extra arguments.
    let reordered = std::cell::Cell::new(false);
    let mut take = |index: &mut Option<usize>| -> Option<&Value> {
        let i = index.take().unwrap_or(next_arg);
        next_arg = i.saturating_add(1);
        args.get(i)
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        let mut index: Option<usize> = None;
        loop {
            match chars.peek() {
                Some('-') => spec.minus = true,
                Some('+') => spec.plus = true,
                Some(' ') => spec.space = true,
                Some('0') => spec.zero = true,
                Some('#') => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let read_num = |chars: &mut std::iter::Peekable<std::str::Chars>| -> Option<usize> {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                chars.next();
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
            }
            n
        };
        let arg_index = |chars: &mut std::iter::Peekable<std::str::Chars>,
                         index: &mut Option<usize>|
         -> Result<(), String> {
            if chars.peek() == Some(&'[') {
                chars.next();
                let n = read_num(chars).filter(|n| *n >= 1);
                if chars.next() != Some(']') || n.is_none() {
                    return Err("printf: a bad argument index [n]".into());
                }
                *index = n.map(|n| n - 1);
                reordered.set(true);
            }
            Ok(())
        };
        arg_index(&mut chars, &mut index)?;
        let star = |v: Option<&Value>| -> Result<usize, String> {
            v.and_then(Value::as_u64)
                .and_then(|w| usize::try_from(w).ok())
                .ok_or_else(|| "printf: * needs a whole number argument".to_string())
        };
        if chars.peek() == Some(&'*') {
            chars.next();
            spec.width = Some(star(take(&mut index))?);
            arg_index(&mut chars, &mut index)?;
        } else {
            spec.width = read_num(&mut chars);
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            arg_index(&mut chars, &mut index)?;
            if chars.peek() == Some(&'*') {
                chars.next();
                spec.prec = Some(star(take(&mut index))?);
                arg_index(&mut chars, &mut index)?;
            } else {
                spec.prec = Some(read_num(&mut chars).unwrap_or(0));
            }
        }
        if spec.width.unwrap_or(0) > WIDTH_MAX || spec.prec.unwrap_or(0) > WIDTH_MAX {
            return Err(format!("printf: a width or precision over {WIDTH_MAX}"));
        }
        let verb = chars.next().ok_or("printf: the format ends in a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = take(&mut index).ok_or_else(|| format!("printf: %{verb} has no argument"))?;
        let body = verb_text(verb, arg, &spec)?;
        pad(&mut out, &body, &spec, verb);
        if out.len() > super::value::MADE_MAX {
            return Err(format!(
                "printf: the result would pass {} MiB",
                super::value::MADE_MAX >> 20
            ));
        }
    }
    if !reordered.get() && next_arg < args.len() {
        return Err(format!(
            "printf: {} arguments for {next_arg} verbs",
            args.len()
        ));
    }
    Ok(out)
}

/// The text of one verb applied to one value (before padding).
fn verb_text(verb: char, arg: &Value, spec: &Spec) -> Result<String, String> {
    let bad = |what: &str| Err(format!("printf: %{verb} cannot print {what}"));
    let kind = super::value::kind_name(arg);
    let int = arg
        .as_i64()
        .map(i128::from)
        .or(arg.as_u64().map(i128::from));
    let float = arg.as_f64();
    let signed = |digits: String, negative: bool| -> String {
        if negative {
            format!("-{digits}")
        } else if spec.plus {
            format!("+{digits}")
        } else if spec.space {
            format!(" {digits}")
        } else {
            digits
        }
    };
    Ok(match verb {
        'v' => {
            let mut s = String::new();
            value(arg, &mut s)?;
            s
        }
        's' => match arg {
            Value::String(s) => truncate(s, spec.prec),
            Value::Array(_) | Value::Object(_) => {
                let mut s = String::new();
                value(arg, &mut s)?;
                s
            }
            _ => return bad(kind),
        },
        'q' => match (arg, int) {
            (Value::String(s), _) => crate::template::functions::go_quote(&truncate(s, spec.prec)),
            (_, Some(i)) => {
                let c = u32::try_from(i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                let q = crate::template::functions::go_quote(&c.to_string());
                let inner = q
                    .trim_matches('"')
                    .replace("\\\"", "\"")
                    .replace('\'', "\\'");
                format!("'{inner}'")
            }
            _ => return bad(kind),
        },
        'd' => match int {
            Some(i) => signed(i.unsigned_abs().to_string(), i < 0),
            None => return bad(kind),
        },
        'b' | 'o' | 'O' | 'x' | 'X' => match (int, arg) {
            (Some(i), _) => {
                let a = i.unsigned_abs();
                let digits = match verb {
                    'b' => format!("{a:b}"),
                    'o' if spec.sharp => format!("0{a:o}"),
                    'o' => format!("{a:o}"),
                    'O' => format!("0o{a:o}"),
                    'x' if spec.sharp => format!("0x{a:x}"),
                    'x' => format!("{a:x}"),
                    _ if spec.sharp => format!("0X{a:X}"),
                    _ => format!("{a:X}"),
                };
                signed(digits, i < 0)
            }
            (None, Value::String(s)) if matches!(verb, 'x' | 'X') => {
                let bytes = truncate(s, spec.prec);
                let h: String = bytes.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' {
                    h.to_uppercase()
                } else {
                    h
                }
            }
            _ => return bad(kind),
        },
        'c' => match int
            .and_then(|i| u32::try_from(i).ok())
            .and_then(char::from_u32)
        {
            Some(c) => c.to_string(),
            None => return bad(kind),
        },
        'U' => match int.and_then(|i| u32::try_from(i).ok()) {
            Some(u) => format!("U+{u:04X}"),
            None => return bad(kind),
        },
        't' => match arg {
            Value::Bool(b) => b.to_string(),
            _ => return bad(kind),
        },
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => match (arg, float) {
            (Value::Number(_), Some(f)) => {
                let p = spec.prec;
                let body = match verb {
                    'e' | 'E' => float_e(f.abs(), p.unwrap_or(6), verb == 'E'),
                    'f' | 'F' if f.is_finite() => format!("{:.*}", p.unwrap_or(6), f.abs()),
                    'f' | 'F' => special(f.abs()),
                    _ => {
                        let g = float_g(f.abs(), p, spec.sharp);
                        if verb == 'G' {
                            g.to_uppercase()
                        } else {
                            g
                        }
                    }
                };
                if body.starts_with('+') || body == "NaN" {
                    body
                } else {
                    signed(body, f.is_sign_negative() && f != 0.0)
                }
            }
            _ => return bad(kind),
        },
        other => return Err(format!("printf: the verb %{other} is not supported")),
    })
}

/// The first `prec` characters of `s` (all of it without a precision).
fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

/// Pads `body` to the width: spaces on the left (right with `-`), or
/// zeros after the sign for numbers with `0`.
fn pad(out: &mut String, body: &str, spec: &Spec, verb: char) {
    let len = body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(body);
        out.push_str(&" ".repeat(fill));
    } else if spec.zero && !matches!(verb, 's' | 'q' | 'v' | 'c' | 't') {
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), &body[1..]),
            _ => (String::new(), body),
        };
        out.push_str(&sign);
        out.push_str(&"0".repeat(fill));
        out.push_str(digits);
    } else if spec.zero {
        out.push_str(&"0".repeat(fill));
        out.push_str(body);
    } else {
        out.push_str(&" ".repeat(fill));
        out.push_str(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(format: &str, args: Value) -> String {
        let Value::Array(a) = args else { panic!() };
        sprintf(format, &a).unwrap_or_else(|e| panic!("{format}: {e}"))
    }

    /// Expected outputs are Go's (`fmt.Sprintf` documentation and its
    /// `fmt_test.go` cases).
    #[test]
    fn printf_verbs_as_go() {
        assert_eq!(
            f("%s|%5s|%-5s|%.2s", json!(["ab", "ab", "ab", "abc"])),
            "ab|   ab|ab   |ab"
        );
        assert_eq!(
            f("%d|%5d|%-5d|%05d|%+d", json!([7, 7, 7, -7, 7])),
            "7|    7|7    |-0007|+7"
        );
        assert_eq!(
            f("%x|%X|%#x|%o|%b|%x", json!([255, 255, 255, 8, 5, "hi"])),
            "ff|FF|0xff|10|101|6869"
        );
        assert_eq!(f("%q|%q", json!(["a\"b\n", 97])), "\"a\\\"b\\n\"|'a'");
        assert_eq!(
            f(
                "%v|%v|%v|%t",
                json!([[1, "a"], {"b": 1, "a": null}, null, true])
            ),
            "[1 a]|map[a:<nil> b:1]|<nil>|true"
        );
        assert_eq!(
            f(
                "%.2f|%8.3f|%e|%.1E|%g",
                json!([3.14259, 2.5, 1234.5678, 0.000123, 0.00001])
            ),
            "3.14|   2.500|1.234568e+03|1.2E-04|1e-05"
        );
        assert_eq!(f("%c|%U|%%", json!([65, 0x1F600])), "A|U+1F600|%");
        assert_eq!(f("%[2]s%[1]s", json!(["a", "b"])), "ba");
        assert_eq!(f("%*d|%.*f", json!([4, 7, 1, 2.25])), "   7|2.2");
    }

    #[test]
    fn printf_refuses_what_go_marks_and_never_quotes_the_value() {
        for (format, args) in [
            ("%d", json!(["canary-value"])),
            ("%s %s", json!(["canary-value"])),
            ("%s", json!(["canary-value", "x"])),
            ("%t", json!(["canary-value"])),
            ("%z", json!(["canary-value"])),
            ("%999999s", json!(["canary-value"])),
        ] {
            let Value::Array(a) = args else { panic!() };
            let e = sprintf(format, &a).unwrap_err();
            assert!(!e.contains("canary"), "{format}: {e}");
        }
    }

    #[test]
    fn floats_print_as_go_prints_a_float64() {
        for (v, go) in [
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (3.5, "3.5"),
            (-2.25, "-2.25"),
            (1.0, "1"),
        ] {
            assert_eq!(float_g(v, None, false), go, "{v}");
        }
        assert_eq!(
            sprint(&[json!(1), json!(2), json!("a"), json!(3)]).unwrap(),
            "1 2a3"
        );
        assert_eq!(sprintln(&[json!(1), json!("a")]).unwrap(), "1 a\n");
    }
}
