//! `${VAR}` interpolation of configuration strings from the environment.
//!
//! Supported forms: `${NAME}`, `${NAME:-default}` (default when unset or empty)
//! and `$$` for a literal `$`. A `$` followed by anything else is kept as is.
//! An unset variable becomes the empty string and is reported back so that
//! validation can say which variable to set.

/// Why interpolation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("unterminated \"${{\": add the closing \"}}\"")]
    Unterminated,
    #[error("invalid variable name {0:?} inside \"${{...}}\" (use letters, digits and _)")]
    BadName(String),
}

/// The result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    /// Variables referenced without a default that were not set.
    pub missing: Vec<String>,
}

/// Replaces `${VAR}` references in `input` using `lookup`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    let mut out = String::with_capacity(input.len());
    let mut missing = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(InterpolateError::Unterminated)?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(InterpolateError::BadName(name.to_string()));
            }
            match (lookup(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Interpolated {
        value: out,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_and_reports() {
        let r = interpolate("a-${TOKEN}-${NOPE}-$$-$x-${EMPTY:-d}-${NOPE:-}", &env).unwrap();
        assert_eq!(r.value, "a-abc--$-$x-d-");
        assert_eq!(r.missing, vec!["NOPE".to_string()]);
    }

    #[test]
    fn plain_strings_unchanged() {
        let r = interpolate("{{ .tlsCrt }} costs $5", &env).unwrap();
        assert_eq!(r.value, "{{ .tlsCrt }} costs $5");
        assert!(r.missing.is_empty());
    }

    #[test]
    fn errors() {
        assert_eq!(
            interpolate("${TOKEN", &env),
            Err(InterpolateError::Unterminated)
        );
        assert!(matches!(
            interpolate("${1A}", &env),
            Err(InterpolateError::BadName(_))
        ));
        assert!(matches!(
            interpolate("${}", &env),
            Err(InterpolateError::BadName(_))
        ));
        assert!(matches!(
            interpolate("${A B}", &env),
            Err(InterpolateError::BadName(_))
        ));
    }
}
