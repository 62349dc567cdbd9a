//! Certificates of `pki:` secrets, as plain data: what a certificate says
//! (NotAfter, names, serial, public key), when it is due for renewal, and
//! whether one already on disk can be kept at start.
//!
//! The renewal time always comes from the certificate itself (its NotAfter
//! and NotBefore), never from the token or the lease: the bug class of
//! vault #10676 / consul-template #1588.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use crate::config::PkiSpec;
use crate::fs::WriteTarget;

/// Largest certificate or key file read back at start.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// What a certificate says, as far as renewal and keeping it go. No key
/// material: the public key is public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    /// Unix seconds.
    pub(crate) not_before: u64,
    pub(crate) not_after: u64,
    /// Colon-separated hex, as Vault prints it (`7a:1f:...`).
    pub(crate) serial: String,
    pub(crate) common_name: Option<String>,
    pub(crate) dns_names: Vec<String>,
    pub(crate) ips: Vec<IpAddr>,
    /// The subjectPublicKey bits (compared with a key's).
    public_key: Vec<u8>,
}

/// The first certificate of a PEM text. Errors describe the shape only.
pub(crate) fn parse_certificate(pem: &[u8]) -> Result<CertInfo, String> {
    let der: CertificateDer = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("no PEM certificate found")?
        .map_err(|e| format!("invalid PEM: {e}"))?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let mut common_name = None;
    for rdn in tbs.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid == x509_cert::der::oid::db::rfc4519::CN {
                common_name = std::str::from_utf8(atv.value.value())
                    .ok()
                    .map(str::to_string);
            }
        }
    }
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some((_, SubjectAltName(names)))) = tbs.get::<SubjectAltName>() {
        for n in names {
            match n {
                GeneralName::DnsName(d) => dns_names.push(d.to_string()),
                GeneralName::IpAddress(o) => match o.as_bytes().len() {
                    4 => {
                        let mut b = [0u8; 4];
                        b.copy_from_slice(o.as_bytes());
                        ips.push(IpAddr::from(b));
                    }
                    16 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(o.as_bytes());
                        ips.push(IpAddr::from(b));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let serial = tbs
        .serial_number
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertInfo {
        not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
        not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        serial,
        common_name,
        dns_names,
        ips,
        public_key: tbs
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec(),
    })
}

impl CertInfo {
    /// Is `key_pem` the private key of this certificate? (Its public half,
    /// derived by rustls, equals the certificate's.) Any unreadable key is
    /// "no".
    pub(crate) fn key_matches(&self, key_pem: &[u8]) -> bool {
        let Ok(key) = PrivateKeyDer::from_pem_slice(key_pem) else {
            return false;
        };
        let Ok(signer) = rustls::crypto::ring::sign::any_supported_type(&key) else {
            return false;
        };
        let Some(spki) = signer.public_key() else {
            return false;
        };
        x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki.as_ref())
            .is_ok_and(|s| s.subject_public_key.raw_bytes() == self.public_key.as_slice())
    }

    /// How long before NotAfter it is renewed: `renewBefore`, or a third of
    /// its lifetime.
    pub(crate) fn renew_before(&self, configured: Option<Duration>) -> Duration {
        configured.unwrap_or_else(|| {
            Duration::from_secs(self.not_after.saturating_sub(self.not_before) / 3)
        })
    }

    /// When (Unix seconds) it is due for renewal.
    pub(crate) fn renew_at(&self, configured: Option<Duration>) -> u64 {
        self.not_after
            .saturating_sub(self.renew_before(configured).as_secs())
    }

    /// From `now`, how long until renewal; `unit` in `[0, 1)` moves it up
    /// to 5 % of `renewBefore` earlier, so a fleet does not renew in step.
    pub(crate) fn renew_in(
        &self,
        configured: Option<Duration>,
        now: SystemTime,
        unit: f64,
    ) -> Duration {
        let spread = self
            .renew_before(configured)
            .mul_f64(0.05 * unit.clamp(0.0, 1.0));
        let at = crate::status::at_unix(self.renew_at(configured))
            .checked_sub(spread)
            .unwrap_or(UNIX_EPOCH);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    }

    /// Does it carry the names `spec` asks for (common name, every alt
    /// name, every IP SAN)?
    pub(crate) fn has_names_of(&self, spec: &PkiSpec) -> bool {
        self.common_name.as_deref() == Some(spec.common_name.as_str())
            && spec
                .alt_names
                .iter()
                .all(|n| self.dns_names.iter().any(|d| d.eq_ignore_ascii_case(n)))
            && spec.ip_sans.iter().all(|ip| self.ips.contains(ip))
    }
}

/// Why a certificate on disk is not kept at start (for the log; no
/// content).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotKept {
    Unreadable(String),
    OtherNames,
    DueForRenewal,
    KeyMismatch,
    /// It does not chain to the mount's issuing CA (or, without the CA,
    /// its files are not this process's own).
    Untrusted(String),
}

impl std::fmt::Display for NotKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotKept::Unreadable(e) => write!(f, "cannot read it: {e}"),
            NotKept::OtherNames => f.write_str("it is for other names"),
            NotKept::DueForRenewal => f.write_str("it is within renewBefore of NotAfter"),
            NotKept::KeyMismatch => f.write_str("the key file does not hold its key"),
            NotKept::Untrusted(why) => write!(f, "it is not trusted: {why}"),
        }
    }
}

/// Reads at most [`MAX_PEM_BYTES`] of a file written earlier, as we wrote
/// it: a regular file (no FIFO, no symlink: opened without blocking or
/// following), owned by the uid we gave it, with the mode we gave it.
/// Anything else was not written by us and is not kept.
fn read_pem(t: &WriteTarget) -> Result<Vec<u8>, NotKept> {
    use crate::fs::read::{read_untrusted, Expect};
    let expect = Expect {
        uid: Some(
            t.owner
                .unwrap_or_else(|| rustix::process::geteuid().as_raw()),
        ),
        mode: Some(t.mode),
    };
    read_untrusted(&t.path, MAX_PEM_BYTES, expect).map_err(|e| NotKept::Unreadable(e.to_string()))
}

/// Can the certificate and key already at `cert` / `key` be kept (our
/// files, same names, valid past `renewBefore` at `now`, key matching,
/// issued by `ca`)? `ca` is the mount's issuing CA (PEM) as Vault gave it;
/// `None` when Vault could not be asked (an outage at start): then only
/// files owned by this process's uid are kept (no other user could have
/// written them), never files owned by the configured `owner`.
/// Reads files: call it off the actor thread.
pub(crate) fn keep_existing(
    spec: &PkiSpec,
    cert: &WriteTarget,
    key: &WriteTarget,
    now: SystemTime,
    ca: Option<&[u8]>,
) -> Result<CertInfo, NotKept> {
    let (cert_path, key_path) = (cert, key);
    let me = rustix::process::geteuid().as_raw();
    if ca.is_none() && cert.owner.is_some_and(|o| o != me) {
        return Err(NotKept::Untrusted(
            "Vault's issuing CA could not be read to check it, and the files belong to the configured owner".into(),
        ));
    }
    let pem = read_pem(cert_path)?;
    if let Some(ca) = ca {
        chains_to(&pem, ca, now).map_err(NotKept::Untrusted)?;
    }
    let cert = parse_certificate(&pem).map_err(NotKept::Unreadable)?;
    if !cert.has_names_of(spec) {
        return Err(NotKept::OtherNames);
    }
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if cert.renew_at(spec.renew_before) <= now_s {
        return Err(NotKept::DueForRenewal);
    }
    let key = zeroize::Zeroizing::new(read_pem(key_path)?);
    if !cert.key_matches(&key) {
        return Err(NotKept::KeyMismatch);
    }
    Ok(cert)
}

/// Does the first certificate of `cert_pem` (with the rest of its PEM as
/// intermediates) chain to the CA of `ca_pem` at `now`? rustls' own
/// verifier (webpki) checks signatures, validity and constraints.
pub(crate) fn chains_to(cert_pem: &[u8], ca_pem: &[u8], now: SystemTime) -> Result<(), String> {
    let mut chain = CertificateDer::pem_slice_iter(cert_pem);
    let leaf = chain
        .next()
        .ok_or("no PEM certificate found")?
        .map_err(|e| format!("invalid PEM: {e}"))?;
    let intermediates: Vec<CertificateDer> = chain.filter_map(Result::ok).collect();
    let ca = CertificateDer::pem_slice_iter(ca_pem)
        .next()
        .ok_or("Vault's CA answer holds no certificate")?
        .map_err(|e| format!("Vault's CA is not PEM: {e}"))?;
    let anchor = webpki::anchor_from_trusted_cert(&ca)
        .map_err(|e| format!("Vault's CA cannot be used as a trust anchor: {e}"))?;
    let ee = webpki::EndEntityCert::try_from(&leaf)
        .map_err(|e| format!("not a usable certificate: {e}"))?;
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        rustls::pki_types::UnixTime::since_unix_epoch(secs),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("it does not chain to the mount's issuing CA ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed P-256 certificate for CN=web.example.internal with
    // DNS:web, DNS:web.example.internal and IP:10.0.0.7, valid 3650 days,
    // and its key (made with openssl for these tests only).
    const CERT: &str = include_str!("../tests/fixtures/pki/web.crt");
    const KEY: &str = include_str!("../tests/fixtures/pki/web.key");
    const OTHER_KEY: &str = include_str!("../tests/fixtures/pki/other.key");

    fn spec() -> PkiSpec {
        PkiSpec {
            path: "pki/issue/web".into(),
            common_name: "web.example.internal".into(),
            alt_names: vec!["web".into()],
            ip_sans: vec!["10.0.0.7".parse().unwrap()],
            ttl: None,
            renew_before: None,
        }
    }

    #[test]
    fn reads_names_dates_and_serial() {
        let c = parse_certificate(CERT.as_bytes()).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("web.example.internal"));
        assert!(c.dns_names.contains(&"web".to_string()), "{c:?}");
        assert_eq!(c.ips, vec!["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.not_after - c.not_before, 3650 * 86_400);
        assert!(c.not_before > 1_700_000_000, "{}", c.not_before);
        assert!(
            c.serial.contains(':') || c.serial.len() == 2,
            "{}",
            c.serial
        );
        assert!(c.has_names_of(&spec()));
        let mut other = spec();
        other.alt_names.push("api".into());
        assert!(!c.has_names_of(&other));
    }

    #[test]
    fn a_certificate_is_trusted_only_when_it_chains_to_the_ca() {
        let fx = |n: &str| {
            std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/pki")
                    .join(n),
            )
            .unwrap()
        };
        let (leaf, int, root) = (fx("leaf.pem"), fx("int.pem"), fx("root.pem"));
        let at = |c: &[u8]| {
            UNIX_EPOCH + Duration::from_secs(parse_certificate(c).unwrap().not_before + 60)
        };
        let now = at(&leaf);
        let chain = [leaf.clone(), int.clone()].concat();
        assert_eq!(chains_to(&chain, &root, now), Ok(()));
        // The issuing CA itself as the anchor (a mount that is an intermediate).
        assert_eq!(chains_to(&leaf, &int, now), Ok(()));
        // Without the intermediate it cannot reach the root; another CA, no.
        assert!(chains_to(&leaf, &root, now).is_err());
        assert!(chains_to(CERT.as_bytes(), &root, now).is_err());
        assert!(chains_to(b"junk", &root, now).is_err());
    }

    #[test]
    fn the_key_must_be_the_certificates() {
        let c = parse_certificate(CERT.as_bytes()).unwrap();
        assert!(c.key_matches(KEY.as_bytes()));
        assert!(!c.key_matches(OTHER_KEY.as_bytes()));
        assert!(!c.key_matches(b"not a key"));
    }

    #[test]
    fn renewal_time_comes_from_the_certificate() {
        let c = parse_certificate(CERT.as_bytes()).unwrap();
        let life = c.not_after - c.not_before;
        // Default: a third of the lifetime before NotAfter.
        assert_eq!(c.renew_at(None), c.not_after - life / 3);
        assert_eq!(
            c.renew_at(Some(Duration::from_secs(3600))),
            c.not_after - 3600
        );
        let now = UNIX_EPOCH + Duration::from_secs(c.not_after - 7200);
        assert_eq!(
            c.renew_in(Some(Duration::from_secs(3600)), now, 0.0),
            Duration::from_secs(3600)
        );
        // Spread earlier by at most 5 % of renewBefore; never negative.
        let d = c.renew_in(Some(Duration::from_secs(3600)), now, 0.999);
        assert!(
            d < Duration::from_secs(3600) && d >= Duration::from_secs(3420),
            "{d:?}"
        );
        let late = UNIX_EPOCH + Duration::from_secs(c.not_after);
        assert_eq!(c.renew_in(None, late, 0.5), Duration::ZERO);
    }

    #[test]
    fn an_existing_certificate_is_kept_only_when_everything_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key, other) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("other.key"),
        );
        let target = |p: &std::path::Path| WriteTarget {
            path: p.to_path_buf(),
            mode: 0o600,
            owner: None,
            group: None,
            in_place: false,
        };
        for (p, c) in [(&crt, CERT), (&key, KEY), (&other, OTHER_KEY)] {
            std::fs::write(p, c).unwrap();
            std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        let (crt, key, other) = (target(&crt), target(&key), target(&other));
        let c = parse_certificate(CERT.as_bytes()).unwrap();
        let early = UNIX_EPOCH + Duration::from_secs(c.not_before + 10);
        assert!(keep_existing(&spec(), &crt, &key, early, None).is_ok());
        let due = UNIX_EPOCH + Duration::from_secs(c.renew_at(None) + 1);
        assert_eq!(
            keep_existing(&spec(), &crt, &key, due, None).unwrap_err(),
            NotKept::DueForRenewal
        );
        assert_eq!(
            keep_existing(&spec(), &crt, &other, early, None).unwrap_err(),
            NotKept::KeyMismatch
        );
        let mut s = spec();
        s.common_name = "api.example.internal".into();
        assert_eq!(
            keep_existing(&s, &crt, &key, early, None).unwrap_err(),
            NotKept::OtherNames
        );
        assert!(matches!(
            keep_existing(
                &spec(),
                &target(&dir.path().join("none")),
                &key,
                early,
                None
            ),
            Err(NotKept::Unreadable(_))
        ));
        // Not as we wrote it (another mode): not ours, not kept.
        let mut loose = crt.clone();
        loose.mode = 0o644;
        assert!(matches!(
            keep_existing(&spec(), &loose, &key, early, None),
            Err(NotKept::Unreadable(why)) if why.contains("mode")
        ));
        // Another owner than the one configured: not kept.
        let mut owned = crt.clone();
        owned.owner = Some(rustix::process::geteuid().as_raw().wrapping_add(1));
        assert!(matches!(
            keep_existing(&spec(), &owned, &key, early, None),
            Err(NotKept::Untrusted(_))
        ));
        // With Vault's CA: a self-signed certificate (planted) is not kept.
        let ca = include_str!("../tests/fixtures/pki/root.pem");
        assert!(matches!(
            keep_existing(&spec(), &crt, &key, early, Some(ca.as_bytes())),
            Err(NotKept::Untrusted(why)) if why.contains("does not chain")
        ));
    }
}
