//! AWS credentials: the default chain, read once by name from the
//! environment, and the answers that carry temporary credentials.
//!
//! In order: static keys (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`); web identity (`AWS_ROLE_ARN` +
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, EKS's IRSA; the token file is read again
//! at every refresh; `AWS_ENDPOINT_URL_STS`, `AWS_ROLE_SESSION_NAME`);
//! container credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` or `..._TOKEN`: EKS Pod
//! Identity, ECS); instance metadata, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`,
//! default `http://169.254.169.254`; `AWS_EC2_METADATA_DISABLED=true` turns
//! it off).
//! Temporary credentials are refreshed five minutes before they expire
//! (`client`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::secret::SecretString;

use super::AwsError;

/// Temporary credentials are fetched again this long before they expire.
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// A set of credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub(crate) struct Creds {
    pub(crate) access_key: String,
    pub(crate) secret_key: SecretString,
    pub(crate) token: Option<SecretString>,
    /// `None`: static keys, never expire.
    pub(crate) expires: Option<SystemTime>,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Creds")
            .field("access_key", &self.access_key)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Creds {
    /// Still good at `now` for a while?
    pub(crate) fn fresh(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|e| {
            e.duration_since(now)
                .is_ok_and(|left| left > REFRESH_BEFORE)
        })
    }
}

/// Where the credentials come from.
#[derive(Debug, Clone)]
pub(crate) enum Provider {
    Static(Creds),
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
        session_name: String,
        /// STS base URL override (`AWS_ENDPOINT_URL_STS`).
        sts_endpoint: Option<String>,
    },
    Container {
        uri: String,
        token: Option<SecretString>,
        token_file: Option<PathBuf>,
    },
    /// Instance metadata (IMDSv2) at this base URL.
    Imds {
        endpoint: String,
    },
    /// No source was found; why, for the error.
    Missing(String),
}

/// The chain, from variables read by name (`get` is the environment).
pub(crate) fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Provider {
    let set = |k: &str| {
        get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if let (Some(id), Some(secret)) = (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
        return Provider::Static(Creds {
            access_key: id,
            secret_key: SecretString::new(secret),
            token: set("AWS_SESSION_TOKEN").map(SecretString::new),
            expires: None,
        });
    }
    if let (Some(role_arn), Some(file)) = (set("AWS_ROLE_ARN"), set("AWS_WEB_IDENTITY_TOKEN_FILE"))
    {
        return Provider::WebIdentity {
            role_arn,
            token_file: PathBuf::from(file),
            session_name: set("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "secrets-sync".into()),
            sts_endpoint: set("AWS_ENDPOINT_URL_STS"),
        };
    }
    if let Some(uri) = set("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        return Provider::Container {
            uri,
            token: set("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(SecretString::new),
            token_file: set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
        };
    }
    if set("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Provider::Missing(
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), or AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity, ECS); instance metadata is off (AWS_EC2_METADATA_DISABLED)".into(),
        );
    }
    Provider::Imds {
        endpoint: set("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| "http://169.254.169.254".into())
            .trim_end_matches('/')
            .to_string(),
    }
}

/// The text of `<tag>...</tag>` in an STS XML answer.
fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&close)?;
    Some(body[start..start + len].trim())
}

/// Decodes `AssumeRoleWithWebIdentity`'s answer. Errors describe the shape.
pub(crate) fn parse_sts(body: &str) -> Result<Creds, AwsError> {
    let invalid = |what: &str| AwsError::Invalid {
        detail: format!("the STS answer has no {what}"),
    };
    let creds = xml_text(body, "Credentials").ok_or_else(|| invalid("Credentials"))?;
    Ok(Creds {
        access_key: xml_text(creds, "AccessKeyId")
            .ok_or_else(|| invalid("AccessKeyId"))?
            .to_string(),
        secret_key: SecretString::new(
            xml_text(creds, "SecretAccessKey").ok_or_else(|| invalid("SecretAccessKey"))?,
        ),
        token: xml_text(creds, "SessionToken").map(SecretString::new),
        expires: xml_text(creds, "Expiration").and_then(parse_time),
    })
}

/// Decodes a container credentials answer (`AccessKeyId`, `SecretAccessKey`,
/// `Token`, `Expiration`).
pub(crate) fn parse_container(body: &[u8]) -> Result<Creds, AwsError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| AwsError::Invalid {
        detail: "the container credentials answer is not JSON".into(),
    })?;
    let s = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
    let (Some(id), Some(secret)) = (s("AccessKeyId"), s("SecretAccessKey")) else {
        return Err(AwsError::Invalid {
            detail: "the container credentials answer has no AccessKeyId/SecretAccessKey".into(),
        });
    };
    Ok(Creds {
        access_key: id.to_string(),
        secret_key: SecretString::new(secret),
        token: s("Token").map(SecretString::new),
        expires: s("Expiration").and_then(parse_time),
    })
}

/// `2026-12-02T10:00:00Z` (fractions of a second allowed) as a time.
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(hh * 3600 + mm * 60 + ss)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_in_order_and_nothing_printed() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = from_env(&env(&[
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "CANARY-secret"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]));
        assert!(matches!(&p, Provider::Static(c) if c.access_key == "AKIAEXAMPLE"));
        assert!(!format!("{p:?}").contains("CANARY"));
        let p = from_env(&env(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]));
        assert!(matches!(p, Provider::WebIdentity { .. }));
        let p = from_env(&env(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        )]));
        assert!(matches!(p, Provider::Container { .. }));
        assert!(matches!(from_env(&env(&[])), Provider::Imds { .. }));
        assert!(matches!(
            from_env(&env(&[("AWS_EC2_METADATA_DISABLED", "true")])),
            Provider::Missing(_)
        ));
    }

    #[test]
    fn sts_and_container_answers_and_times() {
        let sts = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>CANARY-s</SecretAccessKey><SessionToken>CANARY-t</SessionToken><Expiration>2026-12-02T10:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let c = parse_sts(sts).unwrap();
        assert_eq!(c.access_key, "ASIA1");
        assert_eq!(c.secret_key.expose(), "CANARY-s");
        assert_eq!(
            c.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_205_600))
        );
        assert!(!format!("{c:?}").contains("CANARY"));
        assert!(parse_sts("<Error/>").is_err());
        let c = parse_container(br#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"1970-01-02T00:00:00.5Z"}"#).unwrap();
        assert_eq!(
            c.expires,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400))
        );
        assert!(parse_time("2026-13-01T00:00:00Z").is_none());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_205_600 - 301);
        assert!(parse_sts(sts).unwrap().fresh(now));
        assert!(!parse_sts(sts).unwrap().fresh(now + Duration::from_secs(2)));
    }
}
