//! The audit log: one JSON line per secret read, per file written, per
//! change action run and per read of the local secrets API, with
//! the pod identity from the Kubernetes downward API when present
//! (`POD_NAME`, `POD_NAMESPACE`, `SERVICE_ACCOUNT`, `NODE_NAME`).
//!
//! Lines go to `AUDIT_LOG_FILE` (appended, one `write` per line) or, without
//! it, to the normal log output as events of the `audit` target. A line holds
//! names, paths, versions, modes and owners: never a value, nor a hash of one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::fs::WriteTarget;
use crate::secret::Version;

/// Where audit lines go.
pub(crate) struct Audit {
    file: Option<Mutex<File>>,
    identity: Map<String, Value>,
    enabled: bool,
}

/// Downward-API variables copied into every line, under lower-case keys.
pub(crate) const IDENTITY_VARS: &[&str] =
    &["POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT", "NODE_NAME"];

impl Audit {
    /// Opens `file` (if given) for appending; reads the identity variables.
    pub(crate) fn new(enabled: bool, file: Option<&Path>) -> std::io::Result<Self> {
        let file = match file {
            Some(p) if enabled => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            _ => None,
        };
        let mut identity = Map::new();
        for var in IDENTITY_VARS {
            if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
                identity.insert(var.to_ascii_lowercase(), Value::String(v));
            }
        }
        Ok(Self {
            file,
            identity,
            enabled,
        })
    }

    pub(crate) fn secret_read(&self, secret: &str, path: &str, version: Option<&Version>) {
        self.emit(|| {
            json!({
                "event": "secret_read",
                "secret": secret,
                "path": path,
                "version": version,
            })
        });
    }

    pub(crate) fn file_written(&self, secret: &str, file: &WriteTarget, version: Option<&Version>) {
        self.emit(|| {
            json!({
                "event": "file_written",
                "secret": secret,
                "file": file.path.display().to_string(),
                "mode": format!("{:04o}", file.mode),
                "owner": file.owner,
                "group": file.group,
                "version": version,
            })
        });
    }

    /// A change action ran (`result`: ok, failed, timeout, skipped).
    pub(crate) fn action_run(&self, action: &str, secrets: &[String], result: &str) {
        self.emit(|| {
            json!({
                "event": "action_run",
                "action": action,
                "secrets": secrets,
                "result": result,
            })
        });
    }

    /// Builds the line only when auditing is on (it costs allocations).
    /// A lease was renewed: the secret, its path and the new end (never
    /// the lease id).
    pub(crate) fn lease_renewed(&self, secret: &str, path: &str, expires: SystemTime) {
        self.emit(|| {
            json!({
                "event": "lease_renewed",
                "secret": secret,
                "path": path,
                "expires": rfc3339(expires),
            })
        });
    }

    /// The local secrets API served (or refused) a secret: to whom (a
    /// peer address, or `uid:N` on the unix socket) and the result.
    pub(crate) fn api_read(&self, secret: &str, caller: &str, result: &str) {
        self.emit(|| {
            json!({
                "event": "api_read",
                "secret": secret,
                "caller": caller,
                "result": result,
            })
        });
    }

    /// A lease was revoked at shutdown (`revokeOnShutdown`).
    pub(crate) fn lease_revoked(&self, secret: &str, path: &str) {
        self.emit(|| {
            json!({
                "event": "lease_revoked",
                "secret": secret,
                "path": path,
            })
        });
    }

    /// A certificate was issued: its serial number and NotAfter (never the
    /// key).
    pub(crate) fn certificate_issued(
        &self,
        secret: &str,
        path: &str,
        serial: &str,
        not_after: SystemTime,
    ) {
        self.emit(|| {
            json!({
                "event": "certificate_issued",
                "secret": secret,
                "path": path,
                "serial_number": serial,
                "not_after": rfc3339(not_after),
            })
        });
    }

    fn emit(&self, line: impl FnOnce() -> Value) {
        if !self.enabled {
            return;
        }
        let mut line = line();
        if let Value::Object(m) = &mut line {
            for (k, v) in &self.identity {
                m.insert(k.clone(), v.clone());
            }
        }
        match &self.file {
            Some(f) => {
                if let Value::Object(m) = &mut line {
                    m.insert(
                        "timestamp".into(),
                        Value::String(rfc3339(SystemTime::now())),
                    );
                }
                let mut text = line.to_string();
                text.push('\n');
                let res = match f.lock() {
                    Ok(mut f) => f.write_all(text.as_bytes()),
                    Err(_) => Ok(()),
                };
                if let Err(e) = res {
                    tracing::warn!(error = %e, "cannot write the audit log");
                }
            }
            None => tracing::info!(target: "audit", audit = %line, "audit"),
        }
    }
}

/// `2026-11-23T21:00:00.123Z` without a date library.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        let t = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(t(1_795_467_920), "2026-11-23T21:05:20.000Z");
    }

    #[test]
    fn file_lines_are_json_with_no_value() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let a = Audit::new(true, Some(&p)).unwrap();
        a.secret_read(
            "db",
            "secret/data/db",
            Some(&crate::secret::Version::Number(3)),
        );
        a.file_written(
            "db",
            &WriteTarget {
                path: "/s/db".into(),
                mode: 0o640,
                owner: Some(1000),
                group: None,
                in_place: false,
            },
            Some(&crate::secret::Version::Number(3)),
        );
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"], "secret_read");
        assert_eq!(lines[0]["version"], 3);
        assert_eq!(lines[1]["mode"], "0640");
        assert_eq!(lines[1]["owner"], 1000);
        assert!(lines[1]["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
