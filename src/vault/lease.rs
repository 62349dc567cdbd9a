//! Leased answers (dynamic secrets: database credentials, ...) and when to
//! renew or replace them, as plain data and arithmetic.
//!
//! A lease is renewed through `sys/leases/renew` at two thirds of its
//! duration while Vault keeps granting what was asked. Once it is not
//! renewable, or a renewal grants less than asked (the role's max TTL is
//! near), new credentials are fetched at about 85 % of what is left (80-90 %,
//! spread so that a fleet does not fetch in step).

use std::time::Duration;

use serde_json::Value;

use crate::secret::{SecretData, SecretString};

/// A lease Vault attached to an answer. The id can revoke the credentials:
/// it is kept as a [`SecretString`] and never logged.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) id: SecretString,
    /// Granted with the answer (or by the last renewal).
    pub(crate) duration: Duration,
    pub(crate) renewable: bool,
    /// The namespace the lease was issued in (renewals go there too).
    pub(crate) namespace: super::client::Namespace,
    /// The store and credential set it was issued to (renewals and the
    /// revocation go through the same session).
    pub(crate) session: super::SessionKey,
}

impl Lease {
    /// Marks it as issued in `ns` through `session` (renewals and the
    /// revocation go the same way).
    pub(crate) fn issued_by(
        mut self,
        ns: &super::client::Namespace,
        session: &super::SessionKey,
    ) -> Self {
        self.namespace = ns.clone();
        self.session = session.clone();
        self
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("duration", &self.duration)
            .field("renewable", &self.renewable)
            .finish_non_exhaustive()
    }
}

/// What to do when a leased secret's timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read the secret again (new credentials).
    Fetch,
    /// Renew the lease.
    Renew,
}

/// Share of the lease after which it is renewed.
const RENEW_AT: f64 = 2.0 / 3.0;
/// Shares of the remaining lifetime between which new credentials are
/// fetched (85 % on average).
const REFETCH_FROM: f64 = 0.80;
const REFETCH_SPREAD: f64 = 0.10;
/// A renewal granting this much less than asked still "keeps up" (Vault
/// rounds to whole seconds).
const GRANT_TOLERANCE: Duration = Duration::from_secs(1);

/// A lease (or renewal) granting less than this is treated as not
/// renewable: new credentials are fetched instead of renewing in a loop.
pub(crate) const LEASE_FLOOR: Duration = Duration::from_secs(2);

/// The shortest delay before a leased secret's next request, whatever
/// Vault granted: at most one request per second per secret (a hostile or
/// broken Vault granting 0 s leases made 546 renewals per second).
pub(crate) const MIN_STEP: Duration = Duration::from_secs(1);

/// The next step after a fetch that returned `lease`; `unit` in `[0, 1)`
/// spreads re-fetches.
pub(crate) fn after_fetch(lease: &Lease, unit: f64) -> (Duration, Step) {
    let (d, step) = if lease.renewable && lease.duration >= LEASE_FLOOR {
        (lease.duration.mul_f64(RENEW_AT), Step::Renew)
    } else {
        (refetch_in(lease.duration, unit), Step::Fetch)
    };
    (d.max(MIN_STEP), step)
}

/// The next step after a renewal that asked for `asked` and got `granted`.
pub(crate) fn after_renewal(asked: Duration, granted: &Lease, unit: f64) -> (Duration, Step) {
    let (d, step) = if granted.renewable
        && granted.duration >= LEASE_FLOOR
        && granted.duration.saturating_add(GRANT_TOLERANCE) >= asked
    {
        (granted.duration.mul_f64(RENEW_AT), Step::Renew)
    } else {
        (refetch_in(granted.duration, unit), Step::Fetch)
    };
    (d.max(MIN_STEP), step)
}

/// When to fetch new credentials, `remaining` before the lease ends.
pub(crate) fn refetch_in(remaining: Duration, unit: f64) -> Duration {
    remaining.mul_f64(REFETCH_FROM + REFETCH_SPREAD * unit.clamp(0.0, 1.0))
}

/// The lease of an answer: `None` when it has no `lease_id` (a static
/// answer, refreshed on `refreshInterval`) or a zero duration.
fn lease_of(v: &Value) -> Option<Lease> {
    let id = v.get("lease_id").and_then(Value::as_str).unwrap_or("");
    let secs = v.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
    if id.is_empty() || secs == 0 {
        return None;
    }
    Some(Lease {
        id: SecretString::new(id),
        duration: Duration::from_secs(secs),
        renewable: v.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        namespace: Default::default(),
        session: Default::default(),
    })
}

/// A secret as read, and the lease it came with (leased answers only).
pub(crate) type Leased = (SecretData, Option<Lease>);

/// Decodes the answer of any API path (dynamic and PKI secrets): the fields
/// are its `data` object, plus its lease if it has one. Errors describe the
/// shape, never the content.
pub(crate) fn parse_leased(body: &[u8], max_fields: usize) -> Result<Leased, String> {
    let mut v = super::kv::parse_bounded(body, max_fields)?;
    let lease = lease_of(&v);
    let res = match v.get_mut("data").map(Value::take) {
        Some(Value::Object(map)) => Ok((SecretData::new(map, None), lease)),
        Some(Value::Null) | None => Err(
            "the answer has no \"data\" (is the path one that returns a secret? KV secrets go under `path:`)".to_string(),
        ),
        Some(_) => Err("\"data\" is not an object".to_string()),
    };
    crate::secret::zeroize_value(&mut v);
    res
}

/// Decodes the answer of `sys/leases/renew`.
pub(crate) fn parse_renewal(body: &[u8], held: &Lease) -> Result<Lease, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("body is not JSON ({} bytes): {e}", body.len()))?;
    let secs = v
        .get("lease_duration")
        .and_then(Value::as_u64)
        .ok_or("no \"lease_duration\" in the answer")?;
    Ok(Lease {
        // Vault answers with the same id; keep ours (it is what we hold).
        id: held.id.clone(),
        duration: Duration::from_secs(secs),
        renewable: v.get("renewable").and_then(Value::as_bool).unwrap_or(false),
        namespace: held.namespace.clone(),
        session: held.session.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(secs: u64, renewable: bool) -> Lease {
        Lease {
            id: SecretString::new("database/creds/app/CANARY"),
            duration: Duration::from_secs(secs),
            renewable,
            namespace: Default::default(),
            session: Default::default(),
        }
    }

    #[test]
    fn a_renewable_lease_is_renewed_at_two_thirds() {
        assert_eq!(
            after_fetch(&lease(30, true), 0.5),
            (Duration::from_secs(20), Step::Renew)
        );
        // Granted what was asked: renew again.
        assert_eq!(
            after_renewal(Duration::from_secs(30), &lease(30, true), 0.5),
            (Duration::from_secs(20), Step::Renew)
        );
        // A second short is rounding, not the max TTL.
        assert_eq!(
            after_renewal(Duration::from_secs(30), &lease(29, true), 0.5).1,
            Step::Renew
        );
    }

    #[test]
    fn near_max_ttl_or_not_renewable_new_credentials_at_about_85_percent() {
        // The role's max TTL cut the renewal to 10 s of 30 asked.
        let (d, step) = after_renewal(Duration::from_secs(30), &lease(10, true), 0.5);
        assert_eq!((d, step), (Duration::from_millis(8500), Step::Fetch));
        let (d, step) = after_fetch(&lease(100, false), 0.0);
        assert_eq!((d, step), (Duration::from_secs(80), Step::Fetch));
        let (d, _) = after_fetch(&lease(100, false), 0.999_999);
        assert!(d <= Duration::from_secs(90) && d > Duration::from_secs(89));
        // Never after the lease ends, whatever the spread.
        assert!(refetch_in(Duration::from_secs(10), 7.0) < Duration::from_secs(10));
    }

    #[test]
    fn zero_or_tiny_grants_never_loop() {
        // A renewal granting 0 s (or 1 s) of 1 s asked: new credentials,
        // and not sooner than a second from now.
        for granted in [0, 1] {
            let (d, step) = after_renewal(Duration::from_secs(1), &lease(granted, true), 0.0);
            assert_eq!(step, Step::Fetch, "{granted}");
            assert!(d >= MIN_STEP, "{granted}: {d:?}");
        }
        // A fetch with a 1 s renewable lease is not renewed every 0.67 s.
        let (d, step) = after_fetch(&lease(1, true), 0.0);
        assert_eq!(step, Step::Fetch);
        assert_eq!(d, MIN_STEP);
    }

    #[test]
    fn leases_are_read_from_the_envelope_and_never_printed() {
        let body =
            br#"{"lease_id":"database/creds/app/CANARY","lease_duration":10,"renewable":true,
            "data":{"username":"v-app-x","password":"CANARY-pw"}}"#;
        let (d, l) = parse_leased(body, 100).unwrap();
        assert_eq!(d.field_bytes("username").unwrap(), b"v-app-x");
        let l = l.unwrap();
        assert_eq!((l.duration, l.renewable), (Duration::from_secs(10), true));
        assert_eq!(l.id.expose(), "database/creds/app/CANARY");
        let printed = format!("{l:?} {d:?}");
        assert!(!printed.contains("CANARY"), "{printed}");
        // No lease id, or a zero duration: a static answer.
        let d = parse_leased(
            br#"{"lease_id":"","lease_duration":0,"data":{"a":"b"}}"#,
            10,
        );
        assert!(d.unwrap().1.is_none());
        let e = parse_leased(br#"{"data":"CANARY"}"#, 10).unwrap_err();
        assert!(!e.contains("CANARY"), "{e}");
        assert!(parse_leased(br#"{"errors":[]}"#, 10).is_err());
    }

    #[test]
    fn a_renewal_answer_gives_the_new_duration() {
        let mut held = lease(10, true);
        held.namespace = super::super::client::Namespace::Root;
        let l = parse_renewal(
            br#"{"lease_id":"x","lease_duration":7,"renewable":true}"#,
            &held,
        )
        .unwrap();
        assert_eq!((l.duration, l.renewable), (Duration::from_secs(7), true));
        assert!(l.id == held.id && l.namespace == held.namespace);
        assert!(parse_renewal(b"{}", &held).is_err());
    }
}
