//! The functions a Go template may call: Go's builtins (`len`, `index`,
//! `print`, `eq`, ...), ESO's functions (in `template::functions`, shared
//! with the Tera filters), the Sprig functions ESO users write (strings,
//! lists, dicts, encodings, defaults, regular expressions, math) and the
//! consul-template names of the same operations (`toUpper`, `replaceAll`,
//! `base64Decode`, ...).
//!
//! Functions that reach outside the secret (the clock, randomness, the
//! environment, files, Consul) are [`refused`]: the template does not
//! compile, and the error says why. Every function is bounded: a text a
//! function makes is at most [`MADE_MAX`] bytes, a list [`LIST_MAX`] items
//! (both checked before it is built), regular expressions are compiled
//! with a size limit and run in linear time.

use base64::Engine;
use serde_json::{Map, Value};

use super::fmt;
use super::value::{kind_name, truth, MADE_MAX};
use crate::template::functions;

/// Most items in a list a function makes from a value (`splitList`,
/// `regexFindAll`, `until`, ...): checked before the list is built.
pub(crate) const LIST_MAX: usize = 100_000;
/// Most bytes of a compiled regular expression.
const REGEX_SIZE_MAX: usize = 1 << 20;

/// The functions that exist (besides ESO's, [`functions::go_call`]).
const NAMES: &[&str] = &[
    // Go's builtins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // Sprig: strings.
    "upper",
    "lower",
    "title",
    "untitle",
    "trim",
    "trimAll",
    "trimall",
    "nospace",
    "repeat",
    "substr",
    "trunc",
    "abbrev",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "cat",
    "replace",
    "plural",
    "snakecase",
    "camelcase",
    "kebabcase",
    "swapcase",
    "initials",
    "wrap",
    "toString",
    "toStrings",
    "split",
    "splitList",
    "splitn",
    "join",
    "sortAlpha",
    "regexMatch",
    "mustRegexMatch",
    "regexFind",
    "mustRegexFind",
    "regexFindAll",
    "mustRegexFindAll",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    // Sprig: paths (Go's `path` package).
    "base",
    "dir",
    "ext",
    "clean",
    "isAbs",
    // ESO's certificate and password functions.
    "certSANs",
    "htpasswd",
    "hexdec",
    "jwkPublicKeyPem",
    "jwkPrivateKeyPem",
    // Sprig: conversions and encodings.
    "atoi",
    "int",
    "int64",
    "float64",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "mustToPrettyJson",
    "toRawJson",
    "mustToRawJson",
    "mustFromJson",
    "b32enc",
    "b32dec",
    "adler32sum",
    // Sprig: defaults and flow.
    "default",
    "empty",
    "coalesce",
    "ternary",
    "fail",
    "all",
    "any",
    // Sprig: lists.
    "list",
    "tuple",
    "first",
    "mustFirst",
    "last",
    "mustLast",
    "rest",
    "mustRest",
    "initial",
    "mustInitial",
    "append",
    "push",
    "mustAppend",
    "mustPush",
    "prepend",
    "mustPrepend",
    "concat",
    "reverse",
    "mustReverse",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "has",
    "mustHas",
    "compact",
    "mustCompact",
    "until",
    "untilStep",
    "seq",
    "chunk",
    "mustChunk",
    // Sprig: dicts.
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "pluck",
    "dig",
    "keys",
    "values",
    "pick",
    "omit",
    "merge",
    "mustMerge",
    "mergeOverwrite",
    "mustMergeOverwrite",
    "deepCopy",
    "mustDeepCopy",
    // Sprig: math.
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "min",
    "floor",
    "ceil",
    "round",
    // Sprig: types.
    "typeOf",
    "kindOf",
    "kindIs",
    "typeIs",
    "deepEqual",
    // consul-template's names.
    "toUpper",
    "toLower",
    "toTitle",
    "trimSpace",
    "replaceAll",
    "base64Decode",
    "base64Encode",
    "base64URLDecode",
    "base64URLEncode",
    "sha256Hex",
    "toJSON",
    "toJSONPretty",
    "parseJSON",
    "toYAML",
    "parseYAML",
    "parseBool",
    "parseInt",
    "parseFloat",
    "parseUint",
    "containsAll",
    "containsAny",
    "containsNone",
    "containsNotAll",
    "in",
    // Reaching outside the secret only as template.env / template.fileDirs allow.
    "env",
    "file",
];

/// Functions that exist in Sprig or consul-template but are refused, with
/// why: they reach outside the secret, or their output would change at
/// every render (a file rewritten and its action run at every refresh).
const REFUSED: &[(&[&str], &str)] = &[
    (
        &["now", "date", "dateInZone", "date_in_zone", "dateModify", "date_modify", "ago",
          "toDate", "mustToDate", "unixEpoch", "htmlDate", "htmlDateInZone", "duration",
          "durationRound", "timestamp", "mustDateModify"],
        "templates have no clock: the file would change at every render; keep a date in the secret",
    ),
    (
        &["randAlpha", "randAlphaNum", "randNumeric", "randAscii", "randBytes", "randInt",
          "uuidv4", "shuffle", "genPrivateKey", "genCA", "genCAWithKey", "genSelfSignedCert",
          "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "derivePassword",
          "bcrypt", "encryptAES", "decryptAES", "randomString"],
        "random or generated values would change at every render; generate them in Vault (a PKI role, a password policy)",
    ),
    (
        &["expandenv", "getHostByName", "executeTemplate", "writeToFile",
          "plugin", "sockaddr", "call"],
        "templates see the secret's fields and nothing else (no environment, files, network or plugins)",
    ),
    (
        &["key", "keyOrDefault", "keyExists", "ls", "safeLs", "tree", "safeTree", "service",
          "services", "node", "nodes", "connect", "caRoots", "caLeaf", "datacenters",
          "checks", "nomadService", "nomadServices", "nomadVar", "nomadVarList"],
        "there is no Consul or Nomad here: keep the value in Vault and read it as a secret field",
    ),
    (
        &["secret", "secrets", "pkiCert"],
        "a template reads its own secret (`.field`); name other Vault paths as their own secrets (`secrets-sync convert` does this for Vault Agent templates)",
    ),
];

/// Why a function is refused, if it is.
pub(crate) fn refused(name: &str) -> Option<&'static str> {
    REFUSED
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, why)| *why)
}

/// Whether `name` is a function a Go template may name (refused ones
/// included: they parse, then the compile step refuses them by name).
pub(crate) fn known(name: &str) -> bool {
    NAMES.contains(&name) || functions::is_shared(name) || refused(name).is_some()
}

type R = Result<Value, String>;

/// Most bytes `file` reads.
pub(crate) const FILE_MAX: u64 = 1024 * 1024;

/// Calls `name` with `args` (the pipeline's value last).
pub(crate) fn call(name: &str, args: &[Value], host: &super::Host) -> R {
    match name {
        // Never the name in an error: it may have been built from a value.
        "env" => {
            let [Value::String(n)] = args else {
                return Err("takes one variable name".into());
            };
            return host
                .env
                .get(n)
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| "the variable is not listed in the secret's template.env".into());
        }
        "file" => {
            let [Value::String(p)] = args else {
                return Err("takes one absolute path".into());
            };
            return read_file(p, host).map(Value::String);
        }
        _ => {}
    }
    let name = match name {
        // consul-template's names of the same operations.
        "toUpper" => "upper",
        "toLower" => "lower",
        "trimSpace" => "trim",
        "base64Decode" => "b64dec",
        "base64Encode" => "b64enc",
        "sha256Hex" => "sha256sum",
        "toJSON" => "toJson",
        "toJSONPretty" => "toPrettyJson",
        "parseJSON" => "fromJson",
        "toYAML" => "toYaml",
        "parseYAML" => "fromYaml",
        "default" => "default_empty",
        n if n.starts_with("must") && n.len() > 4 => must(n),
        n => n,
    };
    if let Some(r) = functions::go_call(name, args) {
        return r;
    }
    let a = Args { args };
    match name {
        "not" => {
            a.count(1)?;
            Ok(Value::Bool(!truth(&args[0])))
        }
        "len" => {
            a.count(1)?;
            let n = match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(l) => l.len(),
                Value::Object(o) => o.len(),
                Value::Null => 0,
                v => return Err(format!("len of {}", kind_name(v))),
            };
            Ok(Value::from(n))
        }
        "index" => {
            a.at_least(1)?;
            let mut cur = args[0].clone();
            for k in &args[1..] {
                cur = index(&cur, k)?;
            }
            Ok(cur)
        }
        "slice" => {
            a.at_least(1)?;
            let ints = args[1..]
                .iter()
                .map(|v| a.usize_of(v))
                .collect::<Result<Vec<_>, _>>()?;
            match &args[0] {
                Value::String(s) => {
                    let (i, j) = bounds(&ints, s.len())?;
                    s.get(i..j)
                        .map(|x| Value::String(x.to_string()))
                        .ok_or_else(|| "slice: the bounds cut a character".to_string())
                }
                Value::Array(l) => {
                    let (i, j) = bounds(&ints, l.len())?;
                    Ok(Value::Array(l[i..j].to_vec()))
                }
                v => Err(format!("can't slice {}", kind_name(v))),
            }
        }
        "print" => fmt::sprint(args).map(Value::String),
        "println" => fmt::sprintln(args).map(Value::String),
        "printf" => {
            a.at_least(1)?;
            fmt::sprintf(a.str(0)?, &args[1..]).map(Value::String)
        }
        "eq" => {
            a.at_least(2)?;
            for b in &args[1..] {
                if compare(&args[0], b)? == Some(std::cmp::Ordering::Equal) {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            a.count(2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            if name != "ne" && (o.is_none() || args[0].is_boolean()) {
                return Err(format!(
                    "{name}: the values cannot be ordered ({} and {})",
                    kind_name(&args[0]),
                    kind_name(&args[1])
                ));
            }
            Ok(Value::Bool(match name {
                "ne" => o != Some(Equal),
                "lt" => o == Some(Less),
                "le" => o != Some(Greater),
                "gt" => o == Some(Greater),
                _ => o != Some(Less),
            }))
        }
        "html" => Ok(Value::String(html(&fmt::sprint(args)?))),
        "js" => Ok(Value::String(js(&fmt::sprint(args)?))),
        "urlquery" => Ok(Value::String(query_escape(&fmt::sprint(args)?))),
        _ => sprig(name, &a),
    }
}

/// `mustX` is X that fails instead of returning a zero value; ours all
/// fail already.
fn must(n: &str) -> &str {
    match n {
        "mustToJson" => "toJson",
        "mustFromJson" => "fromJson",
        "mustToPrettyJson" => "toPrettyJson",
        "mustToRawJson" => "toRawJson",
        "mustRegexMatch" => "regexMatch",
        "mustRegexFind" => "regexFind",
        "mustRegexFindAll" => "regexFindAll",
        "mustRegexReplaceAll" => "regexReplaceAll",
        "mustRegexReplaceAllLiteral" => "regexReplaceAllLiteral",
        "mustRegexSplit" => "regexSplit",
        "mustFirst" => "first",
        "mustLast" => "last",
        "mustRest" => "rest",
        "mustInitial" => "initial",
        "mustAppend" | "mustPush" => "append",
        "mustPrepend" => "prepend",
        "mustReverse" => "reverse",
        "mustUniq" => "uniq",
        "mustWithout" => "without",
        "mustHas" => "has",
        "mustCompact" => "compact",
        "mustChunk" => "chunk",
        "mustMerge" => "merge",
        "mustMergeOverwrite" => "mergeOverwrite",
        "mustDeepCopy" => "deepCopy",
        other => other,
    }
}

struct Args<'a> {
    args: &'a [Value],
}

impl Args<'_> {
    fn count(&self, n: usize) -> Result<(), String> {
        if self.args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args: want {n} got {}",
                self.args.len()
            ))
        }
    }

    fn at_least(&self, n: usize) -> Result<(), String> {
        if self.args.len() >= n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args: want at least {n} got {}",
                self.args.len()
            ))
        }
    }

    fn str(&self, i: usize) -> Result<&str, String> {
        match self.args.get(i) {
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(format!(
                "argument {} must be text, not {}",
                i + 1,
                kind_name(v)
            )),
            None => Err(format!("argument {} is missing", i + 1)),
        }
    }

    /// Sprig's `toString` of argument `i` (text, numbers, booleans; nil is "").
    fn strval(&self, i: usize) -> Result<String, String> {
        self.args
            .get(i)
            .map(strval)
            .ok_or_else(|| format!("argument {} is missing", i + 1))?
    }

    fn int(&self, i: usize) -> Result<i64, String> {
        self.args
            .get(i)
            .map(to_int)
            .ok_or_else(|| format!("argument {} is missing", i + 1))?
    }

    fn usize_of(&self, v: &Value) -> Result<usize, String> {
        to_int(v).and_then(|i| usize::try_from(i).map_err(|_| "a negative index".to_string()))
    }

    fn list(&self, i: usize) -> Result<&Vec<Value>, String> {
        match self.args.get(i) {
            Some(Value::Array(l)) => Ok(l),
            Some(v) => Err(format!(
                "argument {} must be a list, not {}",
                i + 1,
                kind_name(v)
            )),
            None => Err(format!("argument {} is missing", i + 1)),
        }
    }

    fn map(&self, i: usize) -> Result<&Map<String, Value>, String> {
        match self.args.get(i) {
            Some(Value::Object(o)) => Ok(o),
            Some(v) => Err(format!(
                "argument {} must be a map, not {}",
                i + 1,
                kind_name(v)
            )),
            None => Err(format!("argument {} is missing", i + 1)),
        }
    }

    fn last(&self) -> Result<&Value, String> {
        self.args
            .last()
            .ok_or_else(|| "an argument is missing".to_string())
    }
}

/// Text, a number or a boolean as Sprig's `toString` (nil is "").
fn strval(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Number(n) => Ok(fmt::number(n)),
        Value::Bool(b) => Ok(b.to_string()),
        v => {
            let mut s = String::new();
            fmt::value(v, &mut s)?;
            Ok(s)
        }
    }
}

/// Sprig's `toInt64`: numbers (floats truncated), numeric text, booleans;
/// anything else 0.
fn to_int(v: &Value) -> Result<i64, String> {
    Ok(match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .unwrap_or(0),
        Value::String(s) => s.trim().parse::<i64>().unwrap_or_else(|_| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map_or(0, |f| f as i64)
        }),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    })
}

fn to_float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// A text Sprig makes, refused past [`MADE_MAX`] before it is built.
fn made(size: usize) -> Result<(), String> {
    if size > MADE_MAX {
        Err(format!("the result would pass {} MiB", MADE_MAX >> 20))
    } else {
        Ok(())
    }
}

/// `[i:j]` of a slice/string of `len`.
fn bounds(ints: &[usize], len: usize) -> Result<(usize, usize), String> {
    let (i, j) = match ints {
        [] => (0, len),
        [i] => (*i, len),
        [i, j] | [i, j, _] => (*i, *j),
        _ => return Err("slice takes at most 3 indexes".into()),
    };
    if i > j || j > len {
        return Err("slice: an index out of range".into());
    }
    Ok((i, j))
}

/// Go's `index` of one key: a list by number, a map by text (a missing
/// key gives nil, as Go gives a map's zero value).
fn index(v: &Value, k: &Value) -> R {
    match v {
        Value::Array(l) => {
            let i = k
                .as_i64()
                .ok_or_else(|| "index of a list must be a whole number".to_string())?;
            usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i))
                .cloned()
                .ok_or_else(|| "index out of range".to_string())
        }
        Value::Object(o) => match k {
            Value::String(s) => Ok(o.get(s).cloned().unwrap_or(Value::Null)),
            _ => Err("index of a map must be text".into()),
        },
        Value::String(s) => {
            let i = k
                .as_i64()
                .ok_or_else(|| "index of text must be a whole number".to_string())?;
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i))
                .map(|b| Value::from(*b))
                .ok_or_else(|| "index out of range".to_string())
        }
        Value::Null => Err("index of untyped nil".into()),
        v => Err(format!("can't index item of type {}", kind_name(v))),
    }
}

/// Go's comparison of basic values: numbers with numbers (an integer
/// and a float compare by value here, where Go refuses), text with text,
/// booleans with booleans, nil with nil. `None`: equal kinds that have no
/// order (booleans) are handled by the caller; lists and maps are refused.
fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    use std::cmp::Ordering;
    Ok(match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
                Some(i.cmp(&j))
            } else if let (Some(i), Some(j)) = (x.as_u64(), y.as_u64()) {
                Some(i.cmp(&j))
            } else {
                x.as_f64()
                    .zip(y.as_f64())
                    .and_then(|(i, j)| i.partial_cmp(&j))
            }
        }
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(if x == y {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Value::Null) => Some(Ordering::Less),
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
            return Err("non-comparable type (a list or a map)".into())
        }
        _ => {
            return Err(format!(
                "incompatible types for comparison ({} and {})",
                kind_name(a),
                kind_name(b)
            ))
        }
    })
}

fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\'' => o.push_str("&#39;"),
            '"' => o.push_str("&#34;"),
            '\0' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn js(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(char::from(b))
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// How many compiled expressions a thread keeps (a `regexMatch` in a
/// loop compiles its pattern once).
const REGEX_CACHE: usize = 16;

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(String, regex::Regex)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    if let Some(re) = CACHE.with(|c| {
        c.borrow()
            .iter()
            .find(|(p, _)| p == pattern)
            .map(|(_, r)| r.clone())
    }) {
        return Ok(re);
    }
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_MAX)
        .build()
        .map_err(|_| "not a valid regular expression (or too large)".to_string())?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= REGEX_CACHE {
            c.remove(0);
        }
        c.push((pattern.to_string(), re.clone()));
    });
    Ok(re)
}

/// A list of `n` items may be made (checked before it is).
fn list_room(n: usize) -> Result<(), String> {
    if n > LIST_MAX {
        Err(format!("the list would hold more than {LIST_MAX} items"))
    } else {
        Ok(())
    }
}

/// Sprig's `n` argument of the regex functions: -1 is all.
fn regex_n(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn list_made(l: Vec<Value>) -> R {
    list_room(l.len())?;
    Ok(Value::Array(l))
}

/// Sprig's functions (and consul-template's that are not renames).
fn sprig(name: &str, a: &Args) -> R {
    let args = a.args;
    let s = |v: String| Ok(Value::String(v));
    match name {
        "upper" => s(a.strval(0)?.to_uppercase()),
        "lower" => s(a.strval(0)?.to_lowercase()),
        "title" | "toTitle" => s(title(&a.strval(0)?)),
        "untitle" => s(a
            .strval(0)?
            .split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_lowercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .join(" ")),
        "trim" => s(a.strval(0)?.trim().to_string()),
        "trimAll" | "trimall" => {
            a.count(2)?;
            let cut: Vec<char> = a.strval(0)?.chars().collect();
            s(a.strval(1)?.trim_matches(cut.as_slice()).to_string())
        }
        "nospace" => s(a
            .strval(0)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()),
        "repeat" => {
            a.count(2)?;
            let n = usize::try_from(a.int(0)?).unwrap_or(0);
            let t = a.strval(1)?;
            made(t.len().saturating_mul(n))?;
            s(t.repeat(n))
        }
        "substr" => {
            a.count(3)?;
            let t = a.strval(2)?;
            let (start, end) = (a.int(0)?, a.int(1)?);
            let len = i64::try_from(t.len()).unwrap_or(i64::MAX);
            // Sprig: start < 0 means 0; end < 0 or past the end means the end.
            let st = start.clamp(0, len);
            let en = if end < 0 || end > len { len } else { end };
            if st > en {
                return s(String::new());
            }
            t.get(usize::try_from(st).unwrap_or(0)..usize::try_from(en).unwrap_or(0))
                .map(|x| Value::String(x.to_string()))
                .ok_or_else(|| "substr: the bounds cut a character".to_string())
        }
        "trunc" => {
            a.count(2)?;
            let (n, t) = (a.int(0)?, a.strval(1)?);
            let len = t.len();
            let out = if n >= 0 {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n < len {
                    t.get(..n)
                } else {
                    Some(t.as_str())
                }
            } else {
                let n = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
                if n < len {
                    t.get(len - n..)
                } else {
                    Some(t.as_str())
                }
            };
            out.map(|x| Value::String(x.to_string()))
                .ok_or_else(|| "trunc: the length cuts a character".to_string())
        }
        "abbrev" => {
            a.count(2)?;
            let (w, t) = (a.int(0)?, a.strval(1)?);
            let w = usize::try_from(w).unwrap_or(0);
            if w < 4 || t.len() <= w {
                return s(t);
            }
            t.get(..w - 3)
                .map(|x| Value::String(format!("{x}...")))
                .ok_or_else(|| "abbrev: the width cuts a character".to_string())
        }
        "contains" => {
            a.count(2)?;
            Ok(Value::Bool(a.strval(1)?.contains(a.strval(0)?.as_str())))
        }
        "hasPrefix" => {
            a.count(2)?;
            Ok(Value::Bool(a.strval(1)?.starts_with(a.strval(0)?.as_str())))
        }
        "hasSuffix" => {
            a.count(2)?;
            Ok(Value::Bool(a.strval(1)?.ends_with(a.strval(0)?.as_str())))
        }
        "cat" => {
            let parts: Vec<String> = args
                .iter()
                .filter(|v| !v.is_null())
                .map(strval)
                .collect::<Result<_, _>>()?;
            s(parts.join(" "))
        }
        "replace" => {
            a.count(3)?;
            let (old, new, t) = (a.strval(0)?, a.strval(1)?, a.strval(2)?);
            let n = if old.is_empty() {
                t.chars().count() + 1
            } else {
                t.matches(old.as_str()).count()
            };
            made(t.len().saturating_add(n.saturating_mul(new.len())))?;
            s(t.replace(old.as_str(), &new))
        }
        "replaceAll" => {
            // consul-template: replaceAll OLD NEW TEXT (the same order).
            sprig("replace", a)
        }
        "plural" => {
            a.count(3)?;
            s(if a.int(2)? == 1 {
                a.strval(0)?
            } else {
                a.strval(1)?
            })
        }
        "snakecase" => s(words(&a.strval(0)?).join("_").to_lowercase()),
        "kebabcase" => s(words(&a.strval(0)?).join("-").to_lowercase()),
        "camelcase" => s(a
            .strval(0)?
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>()
            .concat()),
        "swapcase" => s(a
            .strval(0)?
            .chars()
            .flat_map(|c| {
                if c.is_uppercase() {
                    c.to_lowercase().collect::<Vec<_>>()
                } else {
                    c.to_uppercase().collect::<Vec<_>>()
                }
            })
            .collect()),
        "initials" => s(a
            .strval(0)?
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .collect()),
        "wrap" => {
            a.count(2)?;
            let (w, t) = (usize::try_from(a.int(0)?).unwrap_or(1).max(1), a.strval(1)?);
            s(wrap(&t, w))
        }
        "toString" => s(a.strval(0)?),
        "toStrings" => {
            let l = match a.last()? {
                Value::Array(l) => l.clone(),
                Value::Null => Vec::new(),
                v => vec![v.clone()],
            };
            Ok(Value::Array(
                l.iter()
                    .map(strval)
                    .map(|r| r.map(Value::String))
                    .collect::<Result<_, _>>()?,
            ))
        }
        "split" => {
            // Sprig: a map `_0`, `_1`, ... of the parts.
            a.count(2)?;
            let (sep, t) = (a.strval(0)?, a.strval(1)?);
            list_room(parts_of(&t, &sep))?;
            let mut m = Map::new();
            for (i, p) in t.split(sep.as_str()).enumerate() {
                m.insert(format!("_{i}"), Value::String(p.to_string()));
            }
            Ok(Value::Object(m))
        }
        "splitList" => {
            a.count(2)?;
            let (sep, t) = (a.strval(0)?, a.strval(1)?);
            list_room(parts_of(&t, &sep))?;
            if sep.is_empty() {
                return list_made(t.chars().map(|c| Value::String(c.to_string())).collect());
            }
            list_made(
                t.split(sep.as_str())
                    .map(|p| Value::String(p.to_string()))
                    .collect(),
            )
        }
        "splitn" => {
            a.count(3)?;
            let (sep, n, t) = (a.strval(0)?, a.int(1)?, a.strval(2)?);
            let n = usize::try_from(n).unwrap_or(0).min(LIST_MAX);
            let mut m = Map::new();
            for (i, p) in t.splitn(n, sep.as_str()).enumerate() {
                m.insert(format!("_{i}"), Value::String(p.to_string()));
            }
            Ok(Value::Object(m))
        }
        "join" => {
            a.count(2)?;
            let sep = a.strval(0)?;
            let parts: Vec<String> = match &args[1] {
                Value::Array(l) => l.iter().map(strval).collect::<Result<_, _>>()?,
                v => vec![strval(v)?],
            };
            s(parts.join(&sep))
        }
        "sortAlpha" => {
            let mut l: Vec<String> = match a.last()? {
                Value::Array(l) => l.iter().map(strval).collect::<Result<_, _>>()?,
                v => vec![strval(v)?],
            };
            l.sort();
            Ok(Value::Array(l.into_iter().map(Value::String).collect()))
        }
        "regexMatch" => {
            a.count(2)?;
            Ok(Value::Bool(regex(a.str(0)?)?.is_match(&a.strval(1)?)))
        }
        "regexFind" => {
            a.count(2)?;
            let t = a.strval(1)?;
            s(regex(a.str(0)?)?
                .find(&t)
                .map(|m| m.as_str().to_string())
                .unwrap_or_default())
        }
        "regexFindAll" => {
            a.count(3)?;
            let t = a.strval(1)?;
            let n = regex_n(a.int(2)?).min(LIST_MAX.saturating_add(1));
            list_made(
                regex(a.str(0)?)?
                    .find_iter(&t)
                    .take(n)
                    .map(|m| Value::String(m.as_str().to_string()))
                    .collect(),
            )
        }
        "regexReplaceAll" | "regexReplaceAllLiteral" => {
            a.count(3)?;
            let (re, t, repl) = (regex(a.str(0)?)?, a.strval(1)?, a.strval(2)?);
            let n = re.find_iter(&t).count();
            made(t.len().saturating_add(n.saturating_mul(repl.len())))?;
            s(if name == "regexReplaceAll" {
                re.replace_all(&t, repl.as_str()).into_owned()
            } else {
                re.replace_all(&t, regex::NoExpand(&repl)).into_owned()
            })
        }
        "regexSplit" => {
            a.count(3)?;
            let (re, t, n) = (regex(a.str(0)?)?, a.strval(1)?, a.int(2)?);
            let parts: Vec<Value> = if n < 0 {
                re.split(&t)
                    .take(LIST_MAX.saturating_add(1))
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            } else {
                re.splitn(&t, regex_n(n).min(LIST_MAX.saturating_add(1)))
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            list_made(parts)
        }
        "regexQuoteMeta" => s(regex::escape(&a.strval(0)?)),
        "base" => s(path_base(&a.strval(0)?)),
        "dir" => {
            let p = a.strval(0)?;
            let d = p.rfind('/').map_or("", |i| &p[..=i]);
            s(path_clean(d))
        }
        "ext" => {
            let p = a.strval(0)?;
            let last = p.rsplit('/').next().unwrap_or("");
            s(last
                .rfind('.')
                .map_or(String::new(), |i| last[i..].to_string()))
        }
        "clean" => s(path_clean(&a.strval(0)?)),
        "isAbs" => Ok(Value::Bool(a.strval(0)?.starts_with('/'))),
        "hexdec" => {
            let t = a.strval(0)?;
            if t.len() % 2 != 0 {
                return Err("not hexadecimal text".into());
            }
            let raw = (0..t.len())
                .step_by(2)
                .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or("not hexadecimal text")?;
            Ok(functions::bytes_value(raw))
        }
        "jwkPublicKeyPem" => s(crate::template::jwk::public_key_pem(&a.strval(0)?)?),
        "jwkPrivateKeyPem" => s(crate::template::jwk::private_key_pem(&a.strval(0)?)?),
        "certSANs" => Ok(Value::Array(
            functions::cert_sans(&a.strval(0)?)?
                .into_iter()
                .map(Value::String)
                .collect(),
        )),
        "htpasswd" => {
            a.at_least(2)?;
            let algorithm = if args.len() > 2 {
                a.strval(2)?
            } else {
                "bcrypt".into()
            };
            s(functions::htpasswd(
                &a.strval(0)?,
                &a.strval(1)?,
                &algorithm,
            )?)
        }
        "atoi" => Ok(Value::from(a.strval(0)?.trim().parse::<i64>().unwrap_or(0))),
        "int" | "int64" => Ok(Value::from(a.int(0)?)),
        "float64" => serde_json::Number::from_f64(to_float(&args[0]))
            .map(Value::Number)
            .ok_or_else(|| "not a finite number".to_string()),
        "parseInt" | "parseUint" => a
            .strval(0)?
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "not a whole number".to_string()),
        "parseFloat" => a
            .strval(0)?
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "not a number".to_string()),
        "parseBool" => match a.strval(0)?.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Value::Bool(false)),
            _ => Err("not a boolean".into()),
        },
        "toPrettyJson" => serde_json::to_string_pretty(a.last()?)
            .map(Value::String)
            .map_err(|_| "cannot encode".to_string()),
        "toRawJson" => serde_json::to_string(a.last()?)
            .map(Value::String)
            .map_err(|_| "cannot encode".to_string()),
        "b32enc" => s(data_encoding::BASE32.encode(a.strval(0)?.as_bytes())),
        "b32dec" => data_encoding::BASE32
            .decode(a.strval(0)?.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Value::String)
            .ok_or_else(|| "not valid base32 text".to_string()),
        "base64URLEncode" => s(base64::engine::general_purpose::URL_SAFE.encode(a.strval(0)?)),
        "base64URLDecode" => base64::engine::general_purpose::URL_SAFE
            .decode(a.strval(0)?)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Value::String)
            .ok_or_else(|| "not valid URL-safe base64 text".to_string()),
        "adler32sum" => {
            let (mut x, mut y) = (1u32, 0u32);
            for b in a.strval(0)?.bytes() {
                x = (x + u32::from(b)) % 65521;
                y = (y + x) % 65521;
            }
            s(((y << 16) | x).to_string())
        }
        "empty" => Ok(Value::Bool(functions::is_empty(a.last()?))),
        "coalesce" => Ok(args
            .iter()
            .find(|v| !functions::is_empty(v))
            .cloned()
            .unwrap_or(Value::Null)),
        "all" => Ok(Value::Bool(args.iter().all(|v| !functions::is_empty(v)))),
        "any" => Ok(Value::Bool(args.iter().any(|v| !functions::is_empty(v)))),
        "ternary" => {
            a.count(3)?;
            Ok(if truth(&args[2]) {
                args[0].clone()
            } else {
                args[1].clone()
            })
        }
        // Its message may be built from a value: never repeated.
        "fail" => Err(
            "the template called fail (its message is not repeated: it may hold a value)".into(),
        ),
        "list" | "tuple" => Ok(Value::Array(args.to_vec())),
        "first" => Ok(a.list(0)?.first().cloned().unwrap_or(Value::Null)),
        "last" => Ok(a.list(0)?.last().cloned().unwrap_or(Value::Null)),
        "rest" => Ok(Value::Array(a.list(0)?.iter().skip(1).cloned().collect())),
        "initial" => {
            let l = a.list(0)?;
            Ok(Value::Array(l[..l.len().saturating_sub(1)].to_vec()))
        }
        "append" | "push" => {
            a.count(2)?;
            let mut l = a.list(0)?.clone();
            l.push(args[1].clone());
            list_made(l)
        }
        "prepend" => {
            a.count(2)?;
            let mut l = vec![args[1].clone()];
            l.extend(a.list(0)?.iter().cloned());
            list_made(l)
        }
        "concat" => {
            let mut l = Vec::new();
            for i in 0..args.len() {
                l.extend(a.list(i)?.iter().cloned());
                made(l.len())?;
            }
            Ok(Value::Array(l))
        }
        "reverse" => Ok(Value::Array(a.list(0)?.iter().rev().cloned().collect())),
        "uniq" => {
            let mut out: Vec<Value> = Vec::new();
            for v in a.list(0)? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "without" => {
            a.at_least(1)?;
            let drop = &args[1..];
            Ok(Value::Array(
                a.list(0)?
                    .iter()
                    .filter(|v| !drop.contains(v))
                    .cloned()
                    .collect(),
            ))
        }
        "has" => {
            a.count(2)?;
            Ok(Value::Bool(a.list(1)?.contains(&args[0])))
        }
        "in" => {
            // consul-template: in LIST VALUE (also `VALUE | in LIST`? no:
            // `{{ if in .Tags "x" }}`).
            a.count(2)?;
            Ok(Value::Bool(a.list(0)?.contains(&args[1])))
        }
        "containsAll" | "containsAny" | "containsNone" | "containsNotAll" => {
            // consul-template: containsAll NEEDLES HAYSTACK.
            a.count(2)?;
            let (needles, hay) = (a.list(0)?, a.list(1)?);
            let found = needles.iter().filter(|n| hay.contains(n)).count();
            Ok(Value::Bool(match name {
                "containsAll" => found == needles.len(),
                "containsAny" => found > 0,
                "containsNone" => found == 0,
                _ => found < needles.len(),
            }))
        }
        "compact" => Ok(Value::Array(
            a.list(0)?
                .iter()
                .filter(|v| !functions::is_empty(v))
                .cloned()
                .collect(),
        )),
        "until" => {
            let n = a.int(0)?;
            range_list(0, n, if n < 0 { -1 } else { 1 })
        }
        "untilStep" => {
            a.count(3)?;
            range_list(a.int(0)?, a.int(1)?, a.int(2)?)
        }
        "seq" => {
            let ints = (0..args.len())
                .map(|i| a.int(i))
                .collect::<Result<Vec<_>, _>>()?;
            let (start, step, end) = match ints.as_slice() {
                [e] => (1, if *e >= 1 { 1 } else { -1 }, *e),
                [s0, e] => (*s0, if e >= s0 { 1 } else { -1 }, *e),
                [s0, st, e] => (*s0, *st, *e),
                _ => return Err("seq takes 1 to 3 numbers".into()),
            };
            if step == 0 {
                return Ok(Value::String(String::new()));
            }
            let l = range_list(start, end.saturating_add(step.signum()), step)?;
            let parts: Vec<String> = l
                .as_array()
                .map_or(Vec::new(), |l| l.iter().map(|v| v.to_string()).collect());
            s(parts.join(" "))
        }
        "chunk" => {
            a.count(2)?;
            let n = usize::try_from(a.int(0)?)
                .ok()
                .filter(|n| *n > 0)
                .ok_or("chunk size must be at least 1")?;
            Ok(Value::Array(
                a.list(1)?
                    .chunks(n)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "dict" => {
            // Sprig: an odd last key maps to "".
            let mut m = Map::new();
            for pair in args.chunks(2) {
                let k = strval(&pair[0])?;
                m.insert(
                    k,
                    pair.get(1).cloned().unwrap_or(Value::String(String::new())),
                );
            }
            Ok(Value::Object(m))
        }
        "get" => {
            a.count(2)?;
            Ok(a.map(0)?
                .get(&a.strval(1)?)
                .cloned()
                .unwrap_or(Value::String(String::new())))
        }
        "set" => {
            a.count(3)?;
            let mut m = a.map(0)?.clone();
            m.insert(a.strval(1)?, args[2].clone());
            Ok(Value::Object(m))
        }
        "unset" => {
            a.count(2)?;
            let mut m = a.map(0)?.clone();
            m.remove(&a.strval(1)?);
            Ok(Value::Object(m))
        }
        "hasKey" => {
            a.count(2)?;
            Ok(Value::Bool(a.map(0)?.contains_key(&a.strval(1)?)))
        }
        "pluck" => {
            a.at_least(1)?;
            let k = a.strval(0)?;
            let mut out = Vec::new();
            for i in 1..args.len() {
                if let Some(v) = a.map(i)?.get(&k) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "dig" => {
            // dig KEY... DEFAULT DICT
            a.at_least(3)?;
            let n = args.len();
            let mut cur = &args[n - 1];
            for k in &args[..n - 2] {
                let k = strval(k)?;
                match cur.as_object().and_then(|o| o.get(&k)) {
                    Some(v) => cur = v,
                    None => return Ok(args[n - 2].clone()),
                }
            }
            Ok(cur.clone())
        }
        "keys" => {
            let mut ks = Vec::new();
            for i in 0..args.len() {
                ks.extend(a.map(i)?.keys().cloned());
            }
            ks.sort();
            Ok(Value::Array(ks.into_iter().map(Value::String).collect()))
        }
        "values" => {
            let m = a.map(0)?;
            let mut ks: Vec<&String> = m.keys().collect();
            ks.sort();
            Ok(Value::Array(ks.into_iter().map(|k| m[k].clone()).collect()))
        }
        "pick" | "omit" => {
            a.at_least(1)?;
            let names = args[1..]
                .iter()
                .map(strval)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Object(
                a.map(0)?
                    .iter()
                    .filter(|(k, _)| names.contains(k) == (name == "pick"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "merge" | "mergeOverwrite" => {
            a.at_least(1)?;
            let mut out = a.map(0)?.clone();
            for i in 1..args.len() {
                merge(&mut out, a.map(i)?, name == "mergeOverwrite", 0)?;
            }
            Ok(Value::Object(out))
        }
        "deepCopy" => Ok(a.last()?.clone()),
        "add" | "mul" => {
            let floats = args.iter().any(|v| v.is_f64());
            if floats {
                let f = args.iter().map(to_float).fold(
                    if name == "add" { 0.0 } else { 1.0 },
                    |acc, x| if name == "add" { acc + x } else { acc * x },
                );
                return float(f);
            }
            let mut acc: i64 = if name == "add" { 0 } else { 1 };
            for i in 0..args.len() {
                let x = a.int(i)?;
                acc = if name == "add" {
                    acc.checked_add(x)
                } else {
                    acc.checked_mul(x)
                }
                .ok_or("the result overflows")?;
            }
            Ok(Value::from(acc))
        }
        "add1" => Ok(Value::from(
            a.int(0)?.checked_add(1).ok_or("the result overflows")?,
        )),
        "sub" | "div" | "mod" => {
            a.count(2)?;
            let (x, y) = (a.int(0)?, a.int(1)?);
            if name != "sub" && y == 0 {
                return Err("division by zero".into());
            }
            match name {
                "sub" => x.checked_sub(y),
                "div" => x.checked_div(y),
                _ => x.checked_rem(y),
            }
            .map(Value::from)
            .ok_or_else(|| "the result overflows".to_string())
        }
        "max" | "min" => {
            a.at_least(1)?;
            let mut best = a.int(0)?;
            for i in 1..args.len() {
                let x = a.int(i)?;
                best = if name == "max" {
                    best.max(x)
                } else {
                    best.min(x)
                };
            }
            Ok(Value::from(best))
        }
        "floor" => float(to_float(&args[0]).floor()),
        "ceil" => float(to_float(&args[0]).ceil()),
        "round" => {
            a.at_least(2)?;
            let p = i32::try_from(a.int(1)?.clamp(0, 15)).unwrap_or(0);
            let m = 10f64.powi(p);
            float((to_float(&args[0]) * m).round() / m)
        }
        "typeOf" => s(go_type(a.last()?).into()),
        "kindOf" => s(go_kind(a.last()?).into()),
        "kindIs" => {
            a.count(2)?;
            Ok(Value::Bool(a.strval(0)? == go_kind(&args[1])))
        }
        "typeIs" => {
            a.count(2)?;
            Ok(Value::Bool(a.strval(0)? == go_type(&args[1])))
        }
        "deepEqual" => {
            a.count(2)?;
            Ok(Value::Bool(args[0] == args[1]))
        }
        other => Err(match refused(other) {
            Some(why) => why.to_string(),
            None => format!("{other} is not a function"),
        }),
    }
}

fn float(f: f64) -> R {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| "not a finite number".to_string())
}

/// Go's type name of a value as ESO's templates see it.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn merge(
    into: &mut Map<String, Value>,
    from: &Map<String, Value>,
    overwrite: bool,
    depth: usize,
) -> Result<(), String> {
    if depth > 64 {
        return Err("the maps are nested deeper than 64 levels".into());
    }
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b, overwrite, depth + 1)?,
            (Some(existing), _) if overwrite => *existing = v.clone(),
            (Some(_), _) => {}
            (None, _) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// `start`, `start+step`, ... before `end`, at most [`MADE_MAX`] numbers.
fn range_list(start: i64, end: i64, step: i64) -> R {
    if step == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    let span = (i128::from(end) - i128::from(start)) / i128::from(step);
    if span > LIST_MAX as i128 {
        return Err(format!("more than {LIST_MAX} numbers"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < end) || (step < 0 && i > end) {
        out.push(Value::from(i));
        i = match i.checked_add(step) {
            Some(n) => n,
            None => break,
        };
    }
    Ok(Value::Array(out))
}

/// Go's deprecated `strings.Title` (Sprig's `title`): the first letter of
/// each word upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

/// Words of a name for snake/kebab case: split at case changes,
/// spaces, `-` and `_`.
fn words(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c == ' ' || c == '-' || c == '_' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sprig's `wrap`: lines broken at spaces to at most `width` characters.
fn wrap(s: &str, width: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for (n, line) in s.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut len = 0usize;
        for (i, w) in line.split(' ').enumerate() {
            let wl = w.chars().count();
            if i > 0 {
                if len + 1 + wl > width {
                    out.push('\n');
                    len = 0;
                } else {
                    out.push(' ');
                    len += 1;
                }
            }
            out.push_str(w);
            len += wl;
        }
    }
    out
}

/// Go's `path.Clean`: the shortest equivalent slash path.
fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`: the last element (trailing slashes dropped).
fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// consul-template's `file`: a regular file of at most [`FILE_MAX`] bytes
/// under one of the template's `fileDirs`, the path lexically clean (no
/// `..`), opened without following a symlink at its last step and without
/// blocking on a FIFO (`fs::read::read_untrusted`). Errors never repeat
/// the path (it may have been built from a value).
fn read_file(p: &str, host: &super::Host) -> Result<String, String> {
    let path = std::path::Path::new(p);
    let clean = path.is_absolute()
        && path.components().all(|c| {
            !matches!(
                c,
                std::path::Component::ParentDir | std::path::Component::CurDir
            )
        });
    if !clean
        || !host
            .file_dirs
            .iter()
            .any(|d| path.starts_with(d) && path != d)
    {
        return Err(
            "the path is not a clean absolute path under the secret's template.fileDirs".into(),
        );
    }
    let raw = crate::fs::read::read_untrusted(path, FILE_MAX, crate::fs::read::Expect::default())
        .map_err(|e| match e {
        crate::fs::read::ReadError::Missing(_) => "the file does not exist".to_string(),
        crate::fs::read::ReadError::NotRegular { kind, .. } => {
            format!("the path is not a regular file ({kind})")
        }
        crate::fs::read::ReadError::TooLarge { .. } => {
            format!("the file is larger than {FILE_MAX} bytes")
        }
        _ => "the file cannot be read".to_string(),
    })?;
    String::from_utf8(raw).map_err(|_| "the file is not UTF-8 text".to_string())
}

/// How many parts splitting `t` at `sep` gives ("" splits into characters).
fn parts_of(t: &str, sep: &str) -> usize {
    if sep.is_empty() {
        t.chars().count()
    } else {
        t.matches(sep).count().saturating_add(1)
    }
}
