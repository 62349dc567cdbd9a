//! Validation of the `actions:` map and of each secret's `onChange`: every
//! error names the action (or secret) and the field.

use std::path::PathBuf;
use std::time::Duration;

use super::context::Ctx;
use super::duration::GoDuration;
use super::raw::{RawAction, RawHttpAction};
use super::{ActionKind, ActionSpec, SignalTarget};

/// Quiet period of an action that does not set `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// `maxWait` of an action that does not set it: this many `wait`s.
pub const DEFAULT_MAX_WAIT_FACTOR: u32 = 10;
/// Timeout of an `exec` action that does not set one.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of an `http` action that does not set one.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

const MAX_WAIT: Duration = Duration::from_secs(3600);
const MAX_MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The signals an action may send, by name without the `SIG` prefix.
const SIGNALS: &[(&str, rustix::process::Signal)] = {
    use rustix::process::Signal as S;
    &[
        ("HUP", S::HUP),
        ("INT", S::INT),
        ("QUIT", S::QUIT),
        ("TERM", S::TERM),
        ("KILL", S::KILL),
        ("USR1", S::USR1),
        ("USR2", S::USR2),
        ("WINCH", S::WINCH),
        ("ALRM", S::ALARM),
        ("CONT", S::CONT),
        ("TTIN", S::TTIN),
        ("TTOU", S::TTOU),
    ]
};

/// `SIGHUP`, `HUP`, `sighup` -> the signal.
pub(crate) fn parse_signal(name: &str) -> Option<rustix::process::Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.iter().find(|(n, _)| *n == bare).map(|(_, s)| *s)
}

fn signal_list() -> String {
    SIGNALS
        .iter()
        .map(|(n, _)| format!("SIG{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names are metric labels and appear in logs: letters, digits, `.`, `_`, `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn duration_field(
    cx: &mut Ctx,
    loc: &str,
    raw: Option<String>,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let s = cx.interp(loc, raw)?;
    // The same parser and range message as the duration variables.
    match super::settings::duration_in(min, max, false)(&s) {
        Ok(d) => Some(d),
        Err(e) => {
            cx.error(loc, format!("{s:?}: {e}"));
            None
        }
    }
}

/// Validates one action; `None` (with errors recorded) when it is invalid.
pub(super) fn validate_action(cx: &mut Ctx, name: &str, raw: RawAction) -> Option<ActionSpec> {
    let errors_before = cx.errors.len();
    let loc = format!("actions.{name}");
    if !valid_name(name) {
        cx.error(
            &loc,
            "action names may hold only letters, digits, '.', '_' and '-' (at most 128)",
        );
    }
    let kinds: Vec<&str> = [
        raw.signal.as_ref().map(|_| "signal"),
        raw.exec.as_ref().map(|_| "exec"),
        raw.http.as_ref().map(|_| "http"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if kinds.len() != 1 {
        let found = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(" and ")
        };
        cx.error(
            &loc,
            format!("give exactly one of `signal`, `exec` or `http` (found: {found})"),
        );
        return None;
    }
    let is_signal = raw.signal.is_some();
    if !is_signal {
        for (field, set) in [
            ("pidFile", raw.pid_file.is_some()),
            ("process", raw.process.is_some()),
        ] {
            if set {
                cx.error(
                    format!("{loc}.{field}"),
                    "only a `signal` action has a target process; remove it",
                );
            }
        }
    }
    if is_signal && raw.timeout.is_some() {
        cx.error(
            format!("{loc}.timeout"),
            "a signal is sent at once; `timeout` applies to exec and http actions",
        );
    }

    let kind = if let Some(sig) = raw.signal {
        signal_kind(cx, &loc, sig, raw.pid_file, raw.process)
    } else if let Some(argv) = raw.exec {
        exec_kind(cx, &loc, argv)
    } else if let Some(h) = raw.http {
        http_kind(cx, &loc, h)
    } else {
        None
    };

    let wait = duration_field(
        cx,
        &format!("{loc}.wait"),
        raw.wait,
        Duration::ZERO,
        MAX_WAIT,
    )
    .unwrap_or(DEFAULT_WAIT);
    let max_wait = match duration_field(
        cx,
        &format!("{loc}.maxWait"),
        raw.max_wait,
        Duration::ZERO,
        MAX_MAX_WAIT,
    ) {
        Some(m) if m < wait => {
            cx.error(
                format!("{loc}.maxWait"),
                format!(
                    "{} is shorter than wait ({}): use at least the wait",
                    GoDuration(m),
                    GoDuration(wait)
                ),
            );
            wait
        }
        Some(m) => m,
        None => wait.saturating_mul(DEFAULT_MAX_WAIT_FACTOR),
    };
    let default_timeout = if matches!(kind, Some(ActionKind::Http { .. })) {
        DEFAULT_HTTP_TIMEOUT
    } else {
        DEFAULT_EXEC_TIMEOUT
    };
    let timeout = if is_signal {
        default_timeout
    } else {
        duration_field(
            cx,
            &format!("{loc}.timeout"),
            raw.timeout,
            MIN_TIMEOUT,
            MAX_TIMEOUT,
        )
        .unwrap_or(default_timeout)
    };
    if cx.errors.len() != errors_before {
        return None;
    }
    Some(ActionSpec {
        name: name.to_string(),
        kind: kind?,
        wait,
        max_wait,
        timeout,
    })
}

fn signal_kind(
    cx: &mut Ctx,
    loc: &str,
    sig: String,
    pid_file: Option<String>,
    process: Option<String>,
) -> Option<ActionKind> {
    let sig = cx.interp(&format!("{loc}.signal"), Some(sig))?;
    let signal = parse_signal(&sig);
    if signal.is_none() {
        cx.error(
            format!("{loc}.signal"),
            format!("unknown signal {sig:?}: use one of {}", signal_list()),
        );
    }
    let pid_file = cx
        .interp(&format!("{loc}.pidFile"), pid_file)
        .map(|p| p.trim().to_string());
    let process = cx
        .interp(&format!("{loc}.process"), process)
        .map(|p| p.trim().to_string());
    let target = match (pid_file, process) {
        (Some(_), Some(_)) => {
            cx.error(
                loc,
                "give either `pidFile` or `process`, not both: which process is signalled must be clear",
            );
            None
        }
        (None, None) => {
            cx.error(
                loc,
                "a signal action needs its target: `pidFile: /run/app.pid` or `process: nginx`",
            );
            None
        }
        (Some(p), None) if p.is_empty() => {
            cx.error(
                format!("{loc}.pidFile"),
                "is empty: give the pid file's path",
            );
            None
        }
        (Some(p), None) => Some(SignalTarget::PidFile(PathBuf::from(p))),
        (None, Some(n)) if n.is_empty() || n.contains('/') || n.chars().any(char::is_control) => {
            cx.error(
                format!("{loc}.process"),
                format!("{n:?} is not a process name: give the program's name, such as \"nginx\" (no path)"),
            );
            None
        }
        (None, Some(n)) => Some(SignalTarget::Process(n)),
    };
    Some(ActionKind::Signal {
        signal: signal?,
        signal_name: format!(
            "SIG{}",
            sig.trim().to_ascii_uppercase().trim_start_matches("SIG")
        ),
        target: target?,
    })
}

fn exec_kind(cx: &mut Ctx, loc: &str, argv: Vec<String>) -> Option<ActionKind> {
    let floc = format!("{loc}.exec");
    if argv.is_empty() {
        cx.error(
            &floc,
            "is empty: give the program and its arguments, e.g. [\"/usr/local/bin/rehash\", \"--graceful\"]",
        );
        return None;
    }
    let mut out = Vec::with_capacity(argv.len());
    for (i, a) in argv.into_iter().enumerate() {
        let a = cx.interp(&format!("{floc}[{i}]"), Some(a))?;
        if a.contains('\0') {
            cx.error(format!("{floc}[{i}]"), "contains a NUL byte");
            return None;
        }
        out.push(a);
    }
    if out[0].trim().is_empty() {
        cx.error(format!("{floc}[0]"), "the program is empty: give its path");
        return None;
    }
    Some(ActionKind::Exec { argv: out })
}

fn http_kind(cx: &mut Ctx, loc: &str, h: RawHttpAction) -> Option<ActionKind> {
    let uloc = format!("{loc}.http.url");
    let url = cx.interp(&uloc, h.url).unwrap_or_default();
    let url = url.trim();
    let uri = match url.parse::<http::Uri>() {
        _ if url.is_empty() => {
            cx.error(
                &uloc,
                "missing: give the URL to call, e.g. http://127.0.0.1:9090/-/reload",
            );
            None
        }
        Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => Some(u),
        _ => {
            cx.error(
                &uloc,
                "is not an http:// or https:// URL with a host, e.g. http://127.0.0.1:9090/-/reload",
            );
            None
        }
    };
    let method = match cx.interp(&format!("{loc}.http.method"), h.method) {
        None => Some(http::Method::POST),
        Some(m) => match http::Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()) {
            Ok(m) => Some(m),
            Err(_) => {
                cx.error(
                    format!("{loc}.http.method"),
                    format!("{m:?} is not an HTTP method: use POST, PUT or GET"),
                );
                None
            }
        },
    };
    let mut headers = Vec::with_capacity(h.headers.len());
    for (k, v) in h.headers {
        let hloc = format!("{loc}.http.headers.{k}");
        let Ok(name) = http::HeaderName::from_bytes(k.trim().as_bytes()) else {
            cx.error(&hloc, "is not a valid header name");
            continue;
        };
        let Some(v) = cx.interp(&hloc, Some(v)) else {
            continue;
        };
        match http::HeaderValue::from_str(&v) {
            Ok(mut value) => {
                // It may be a credential (`Authorization`): never printed.
                value.set_sensitive(true);
                headers.push((name, value));
            }
            // The value itself is not shown: it may be a credential.
            Err(_) => cx.error(
                &hloc,
                "the value holds control or non-ASCII characters and cannot be sent",
            ),
        }
    }
    Some(ActionKind::Http {
        url: uri?,
        method: method?,
        headers,
    })
}

/// Checks one secret's `onChange` against the defined actions.
pub(super) fn validate_on_change(
    cx: &mut Ctx,
    loc: &str,
    on_change: Vec<String>,
    defined: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(on_change.len());
    for (i, name) in on_change.into_iter().enumerate() {
        let name = name.trim().to_string();
        let floc = format!("{loc}.onChange[{i}]");
        if !defined.contains(&name) {
            let known = if defined.is_empty() {
                "none are defined: add it under `actions:`".to_string()
            } else {
                format!("defined: {}", defined.join(", "))
            };
            cx.error(floc, format!("unknown action {name:?} ({known})"));
        } else if out.contains(&name) {
            cx.error(floc, format!("action {name:?} is listed twice"));
        } else {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_with_or_without_the_prefix() {
        use rustix::process::Signal;
        assert_eq!(parse_signal("SIGHUP"), Some(Signal::HUP));
        assert_eq!(parse_signal("hup"), Some(Signal::HUP));
        assert_eq!(parse_signal(" SIGUSR2 "), Some(Signal::USR2));
        assert_eq!(parse_signal("SIGFOO"), None);
        assert_eq!(parse_signal(""), None);
    }

    #[test]
    fn names_are_label_safe() {
        assert!(valid_name("reload-app.v2_x"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a\"b"));
    }
}
