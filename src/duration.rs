//! Go-style durations (`30s`, `5m`, `1h30m`, `1.5h`, `250ms`).
//!
//! The seed configuration and the environment variables it documents use the
//! syntax of Go's `time.ParseDuration`, so this module accepts exactly that
//! (minus negative values, which mean nothing for an interval) and formats
//! durations back the same way for logs and `/status`.

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected. The message quotes the input, which is
/// configuration, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected Go form such as \"30s\", \"5m\", \"1h30m\", \"250ms\")")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses a Go-style duration. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`.
/// A bare `0` is accepted; any other number needs a unit.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(err("missing unit")),
            _ => return Err(err("unknown unit")),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(err("malformed number"));
        }
        let int_val: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut nanos = int_val
            .checked_mul(unit_nanos)
            .ok_or_else(|| err("number too large"))?;
        // Fractions: take up to 18 digits, which is more precision than a
        // nanosecond of an hour needs.
        let mut scale: u128 = 1;
        let mut frac_val: u128 = 0;
        for c in frac_part.chars().take(18) {
            frac_val = frac_val * 10 + u128::from(c.to_digit(10).unwrap_or(0));
            scale *= 10;
        }
        nanos += frac_val * unit_nanos / scale;
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| err("number too large"))?;
        rest = next;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| err("number too large"))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

/// Formats a duration the way Go prints it (`1h30m0s`, `250ms`), for logs.
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        if d < Duration::from_secs(1) {
            let nanos = d.as_nanos();
            return if nanos % 1_000_000 == 0 {
                write!(f, "{}ms", nanos / 1_000_000)
            } else if nanos % 1_000 == 0 {
                write!(f, "{}µs", nanos / 1_000)
            } else {
                write!(f, "{nanos}ns")
            };
        }
        let total = d.as_secs();
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
        let millis = d.subsec_millis();
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        if millis > 0 {
            write!(f, "{s}.{millis:03}s")
        } else {
            write!(f, "{s}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("10µs").unwrap(), Duration::from_micros(10));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h0m0s").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration(" 2m ").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "-5s",
            "1..5s",
            "5 s",
            ".s",
            "1h-5m",
            "99999999999999999999h",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains("invalid duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(GoDuration(Duration::from_secs(5400)).to_string(), "1h30m0s");
        assert_eq!(GoDuration(Duration::from_secs(30)).to_string(), "30s");
        assert_eq!(GoDuration(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(
            GoDuration(Duration::from_millis(1500)).to_string(),
            "1.500s"
        );
        assert_eq!(GoDuration(Duration::ZERO).to_string(), "0s");
    }

    #[test]
    fn round_trips_through_display() {
        for secs in [1u64, 59, 60, 61, 3599, 3600, 3661, 86_400] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&GoDuration(d).to_string()).unwrap(), d);
        }
    }
}
