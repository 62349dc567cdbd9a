//! Facts about template values every part of the engine needs: Go's
//! truth, a value's kind in words for an error (never the value), and the
//! most text one function call may make.

use serde_json::Value;

/// Most bytes of text one function call (`repeat`, `replace`, `printf`,
/// ...) may make.
pub(crate) const MADE_MAX: usize = 8 * 1024 * 1024;

/// Go's truth: false, 0, nil, and empty text, lists and maps are false.
pub(crate) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// What kind of value, in words for an error.
pub(crate) fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
