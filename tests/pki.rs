//! Certificates from a real OpenBao PKI engine (issue 15): renewal from
//! the certificate's own NotAfter, atomic sets a reader can trust, and a
//! restart that keeps a still-valid certificate instead of issuing one.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{pki_mount, Bao, ConfigBuilder, Sync, ROOT_TOKEN};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use x509_cert::der::Decode;

/// What a certificate says, read here independently of the product code.
struct Cert {
    serial: String,
    not_after: u64,
    /// The subjectPublicKey bits.
    public_key: Vec<u8>,
}

fn parse_cert(pem: &[u8]) -> Option<Cert> {
    let der: CertificateDer = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    let c = x509_cert::Certificate::from_der(&der).ok()?;
    let tbs = &c.tbs_certificate;
    Some(Cert {
        serial: tbs
            .serial_number
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        public_key: tbs
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec(),
    })
}

/// The public half of a PEM private key.
fn public_of(key_pem: &[u8]) -> Option<Vec<u8>> {
    let key = PrivateKeyDer::from_pem_slice(key_pem).ok()?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).ok()?;
    let spki = signer.public_key()?;
    let s = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki.as_ref()).ok()?;
    Some(s.subject_public_key.raw_bytes().to_vec())
}

fn unix_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn pki_secret(
    name: &str,
    mount: &str,
    dir: &Path,
    ttl: &str,
    renew_before: &str,
) -> serde_json::Value {
    json!({
        "name": name,
        "pki": {
            "path": format!("{mount}/issue/web"),
            "commonName": "web.example.internal",
            "altNames": ["web"],
            "ttl": ttl,
            "renewBefore": renew_before,
        },
        "atomicSet": true,
        "files": [
            {"path": dir.join("tls.crt"), "key": "certificate"},
            {"path": dir.join("tls.key"), "key": "private_key", "mode": "0600"},
            {"path": dir.join("ca.crt"), "key": "issuing_ca"},
        ],
    })
}

/// Issue requests for `path` that reached the server (its audit log).
fn issue_requests(bao: &Bao, path: &str) -> usize {
    let needle = format!("\"path\":\"{path}\"");
    std::fs::read_to_string(&bao.audit_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"type\":\"request\"") && l.contains(&needle))
        .count()
}

#[test]
fn certificates_renew_before_not_after_and_a_reader_never_pairs_a_new_cert_with_an_old_key() {
    let bao = require_bao!();
    let mount = pki_mount(bao);
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("tls");
    let audit = tmp.path().join("audit.log");
    // 20 s certificates renewed 14 s before NotAfter: a new one every ~6 s.
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(pki_secret("web-tls", &mount, &tls, "20s", "14s"))
        .build();
    let audit_s = audit.display().to_string();
    let (otlp, spans) = common::otlp_sink();
    let mut s = Sync::start(
        tmp.path(),
        &cfg,
        &bao.addr,
        &[
            ("AUDIT_LOG", "true"),
            ("AUDIT_LOG_FILE", audit_s.as_str()),
            ("LOG_LEVEL", "trace"),
            ("ENABLE_TRACING", "true"),
            ("OTEL_EXPORTER_ENDPOINT", otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    s.wait_until(Duration::from_secs(15), "first certificate", || {
        std::fs::read(tls.join("tls.crt")).is_ok_and(|p| parse_cert(&p).is_some())
    });

    // A reader that resolves ..data once per read, every 2 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (tls, stop) = (tls.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut reads, mut mismatches, mut vanished) = (0u64, 0u64, 0u64);
            // serial, first seen (Unix seconds), NotAfter
            let mut seen: Vec<(String, f64, u64)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(2));
                let Ok(set) = std::fs::read_link(tls.join("..data")) else {
                    vanished += 1;
                    continue;
                };
                let set: PathBuf = tls.join(set);
                let (Ok(crt), Ok(key)) = (
                    std::fs::read(set.join("tls.crt")),
                    std::fs::read(set.join("tls.key")),
                ) else {
                    // The set was replaced and removed between the two
                    // steps: the next read resolves ..data again.
                    vanished += 1;
                    continue;
                };
                reads += 1;
                match (parse_cert(&crt), public_of(&key)) {
                    (Some(c), Some(k)) if c.public_key == k => {
                        if !seen.iter().any(|(s, _, _)| *s == c.serial) {
                            seen.push((c.serial, unix_f64(), c.not_after));
                        }
                    }
                    _ => mismatches += 1,
                }
            }
            (reads, mismatches, vanished, seen)
        })
    };
    std::thread::sleep(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    let (reads, mismatches, vanished, seen) = reader.join().unwrap();
    eprintln!(
        "reads {reads}, mismatches {mismatches}, set replaced mid-read {vanished}, certificates {}",
        seen.len()
    );
    assert_eq!(
        mismatches, 0,
        "a read paired a certificate with another key"
    );
    assert!(reads > 1000, "only {reads} reads");
    assert!(
        seen.len() >= 3,
        "only {} certificates in 20 s: {}",
        seen.len(),
        s.logs()
    );
    // Each new certificate was on disk before the previous one's NotAfter,
    // renewBefore (14 s, up to 5 % earlier) before it.
    for pair in seen.windows(2) {
        let (_, prev_seen, prev_not_after) = &pair[0];
        let (_, new_seen, _) = &pair[1];
        let margin = *prev_not_after as f64 - new_seen;
        eprintln!(
            "renewed {:.1}s after the previous certificate appeared, {margin:.1}s before its NotAfter",
            new_seen - prev_seen
        );
        assert!(
            (12.0..=16.0).contains(&margin),
            "a certificate was replaced {margin:.1}s before its NotAfter (renewBefore 14s)"
        );
    }

    // Metrics and /status carry the NotAfter of the certificate on disk.
    s.wait_until(
        Duration::from_secs(10),
        "expiry gauge = NotAfter on disk",
        || {
            let on_disk = std::fs::read(tls.join("tls.crt"))
                .ok()
                .and_then(|p| parse_cert(&p))
                .map(|c| c.not_after as f64);
            let gauge =
                s.metric("secret_certificate_expiry_timestamp_seconds{secret_name=\"web-tls\"}");
            let status = s.status()["secrets"]["web-tls"]["certificate_expires"].as_f64();
            on_disk.is_some() && gauge == on_disk && status == on_disk
        },
    );
    // The audit log names each certificate by serial; nothing prints the key.
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    for (serial, _, _) in &seen {
        assert!(
            audit_text.contains(&format!("\"serial_number\":\"{serial}\"")),
            "no certificate_issued line for {serial}"
        );
    }
    let key = std::fs::read_to_string(tls.join("tls.key")).unwrap();
    let key_body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("");
    let probe = &key_body[..key_body.len().min(40)];
    let (_, metrics) = s.get("/metrics").unwrap();
    let (_, status) = s.get("/status").unwrap();
    assert!(s.stop().success());
    // One request to the PKI engine per certificate (plus at most one that
    // the stop cut off before its certificate was written).
    let issued = std::fs::read_to_string(&audit)
        .unwrap()
        .matches("\"certificate_issued\"")
        .count();
    common::wait_for(Duration::from_secs(5), || {
        let requests = issue_requests(bao, &format!("{mount}/issue/web"));
        requests == issued || requests == issued + 1
    })
    .unwrap_or_else(|e| {
        panic!(
            "{issued} certificates but {} issue requests: {e}",
            issue_requests(bao, &format!("{mount}/issue/web"))
        )
    });
    for (what, text) in [
        ("log", s.logs()),
        ("audit", audit_text),
        ("metrics", metrics),
        ("status", status),
    ] {
        assert!(!text.contains(probe), "the private key is in the {what}");
    }
    assert!(!spans.lock().unwrap().is_empty(), "no spans were exported");
    assert!(
        !common::exported(&spans, probe),
        "the private key was exported in a span"
    );
    // Old sets are removed after each swap.
    let sets = std::fs::read_dir(&tls)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("..1"))
        .count();
    assert_eq!(sets, 1, "old set directories left behind");
}

#[test]
fn a_restart_keeps_a_still_valid_certificate_and_issues_none() {
    let bao = require_bao!();
    let mount = pki_mount(bao);
    let issue_path = format!("{mount}/issue/web");
    let tmp = tempfile::tempdir().unwrap();
    let tls = tmp.path().join("tls");
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(pki_secret("web-tls", &mount, &tls, "1h", "10m"))
        .build();
    let serial_on_disk = || {
        std::fs::read(tls.join("tls.crt"))
            .ok()
            .and_then(|p| parse_cert(&p))
            .map(|c| c.serial)
    };
    let mut s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    s.wait_until(Duration::from_secs(15), "first certificate", || {
        serial_on_disk().is_some() && s.get("/ready").is_ok_and(|(c, _)| c == 200)
    });
    let first = serial_on_disk().unwrap();
    assert!(s.stop().success());
    common::wait_for(Duration::from_secs(5), || {
        issue_requests(bao, &issue_path) == 1
    })
    .unwrap_or_else(|e| panic!("one issue request expected: {e}"));

    // Restarted: ready without a request to the PKI engine.
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    s.wait_until(
        Duration::from_secs(15),
        "ready with the kept certificate",
        || s.get("/ready").is_ok_and(|(c, _)| c == 200),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        issue_requests(bao, &issue_path),
        1,
        "a new certificate was issued"
    );
    assert_eq!(serial_on_disk().as_deref(), Some(first.as_str()));
    let st = s.status();
    let expires = st["secrets"]["web-tls"]["certificate_expires"]
        .as_u64()
        .unwrap();
    assert!(expires > now() + 3000, "{st}");
    // Renewal planned for NotAfter - renewBefore (10 m), not sooner.
    let next = st["secrets"]["web-tls"]["next_attempt"].as_u64().unwrap();
    assert!(
        next + 60 >= expires - 600 && next <= expires - 600 + 5,
        "next attempt {next}, NotAfter {expires}"
    );
    assert!(s.logs().contains("kept, renewal scheduled"), "{}", s.logs());
    drop(s);

    // Asked for other names: the certificate on disk does not do.
    let mut other = pki_secret("web-tls", &mount, &tls, "1h", "10m");
    other["pki"]["altNames"] = json!(["web", "web.default.svc.example.internal"]);
    let cfg = ConfigBuilder::new()
        .store("token", ROOT_TOKEN)
        .secret_json(other)
        .build();
    let s = Sync::start(tmp.path(), &cfg, &bao.addr, &[]);
    s.wait_until(
        Duration::from_secs(15),
        "a certificate for the new names",
        || serial_on_disk().is_some_and(|sn| sn != first),
    );
    assert_eq!(issue_requests(bao, &issue_path), 2);
}
