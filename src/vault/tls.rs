//! The TLS side of reaching Vault: reading the store's TLS files (CA file,
//! CA directory, client certificate and key) and building the rustls client
//! configuration from them, once per plan.
//!
//! What is read here is also fingerprinted, so a reload that finds a CA or
//! client certificate rotated under the same path rebuilds the Vault client.
//! Nothing here prints file contents: errors name the file and the setting.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use zeroize::Zeroizing;

use super::store::ClientCert;

/// The store's TLS settings could not be used; each names the file and the
/// setting to fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read {what} {path}: {source} (set {setting} to a readable file)")]
    Read {
        what: &'static str,
        path: String,
        setting: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("CA file {path}: {detail} (set secretStore.caCert or VAULT_CACERT to a PEM file of CA certificates)")]
    CaCert {
        path: String,
        detail: String,
        #[source]
        source: Option<rustls::Error>,
    },
    #[error("CA directory {path}: no CA certificate in any file (set secretStore.tlsCAPath or VAULT_CAPATH to a directory of PEM files)")]
    EmptyCaDir { path: String },
    #[error("client certificate {path}: {detail} (set secretStore.tlsClientCert or VAULT_CLIENT_CERT to a PEM certificate, leaf first)")]
    ClientCert { path: String, detail: String },
    #[error("client key {path}: {detail} (set secretStore.tlsClientKey or VAULT_CLIENT_KEY to the PEM private key of the client certificate)")]
    ClientKey { path: String, detail: String },
    #[error("VAULT_TLS_SERVER_NAME {name:?} is not a DNS name or IP address")]
    ServerName { name: String },
    #[error("TLS setup failed: {0} (check that tlsClientKey is the key of tlsClientCert)")]
    Tls(#[source] rustls::Error),
}

impl TlsError {
    /// The config field the error belongs to.
    pub(crate) fn location(&self) -> &'static str {
        match self {
            TlsError::Read { setting, .. } => setting,
            TlsError::CaCert { .. } => "secretStore.caCert",
            TlsError::EmptyCaDir { .. } => "secretStore.tlsCAPath",
            TlsError::ClientCert { .. } | TlsError::Tls(_) => "secretStore.tlsClientCert",
            TlsError::ClientKey { .. } => "secretStore.tlsClientKey",
            TlsError::ServerName { .. } => "VAULT_TLS_SERVER_NAME",
        }
    }
}

/// A store's TLS client setup, ready for the connector.
pub(crate) struct StoreTls {
    pub(crate) config: Arc<ClientConfig>,
    /// Verified (and sent as SNI) instead of the address's host.
    pub(crate) server_name: Option<ServerName<'static>>,
    /// SHA-256 over every file read: equal fingerprints, same material.
    fingerprint: [u8; 32],
}

impl PartialEq for StoreTls {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint && self.server_name == other.server_name
    }
}

/// A store's TLS settings: the input type of [`store_tls`] (the plan
/// builds it from the config's store).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsSettings<'a> {
    /// The store's address (its scheme decides whether roots are needed).
    pub(crate) address: &'a str,
    pub(crate) ca_cert: Option<&'a Path>,
    pub(crate) ca_path: Option<&'a Path>,
    pub(crate) client_cert: Option<&'a ClientCert>,
    pub(crate) tls_server_name: Option<&'a str>,
    pub(crate) skip_verify: bool,
}

/// Reads the store's TLS files and builds its client configuration.
pub(crate) fn store_tls(store: TlsSettings<'_>) -> Result<StoreTls, TlsError> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let mut read = |what, path: &Path, setting| {
        let bytes = std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|source| TlsError::Read {
                what,
                path: path.display().to_string(),
                setting,
                source,
            })?;
        digest.update(path.as_os_str().as_encoded_bytes());
        digest.update(&bytes);
        Ok::<_, TlsError>(bytes)
    };
    let ca_file = match store.ca_cert {
        Some(p) => Some((p, read("the CA file", p, "secretStore.caCert")?)),
        None => None,
    };
    let mut ca_dir = Vec::new();
    if let Some(dir) = store.ca_path {
        for path in ca_dir_files(dir)? {
            ca_dir.push((read("the CA file", &path, "secretStore.tlsCAPath")?, path));
        }
    }
    let client = match store.client_cert {
        Some(c) => Some((
            c,
            read(
                "the client certificate",
                &c.cert,
                "secretStore.tlsClientCert",
            )?,
            read("the client key", &c.key, "secretStore.tlsClientKey")?,
        )),
        None => None,
    };

    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Tls)?;
    let builder = if store.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        // The system bundle takes milliseconds to parse; plain http never
        // uses it (the client follows no redirects).
        if is_https(store.address) {
            add_system_roots(&mut roots);
        }
        if let Some((path, pem)) = &ca_file {
            add_ca_pem(&mut roots, path, pem)?;
        }
        if let Some(dir) = store.ca_path {
            let mut found = 0usize;
            for (pem, path) in &ca_dir {
                found = found.saturating_add(add_ca_dir_file(&mut roots, path, pem)?);
            }
            if found == 0 {
                return Err(TlsError::EmptyCaDir {
                    path: dir.display().to_string(),
                });
            }
        }
        builder.with_root_certificates(roots)
    };
    // ALPN is left to the connector, which offers HTTP/1.1 only.
    let config = match &client {
        Some((files, cert, key)) => {
            let (chain, key) = client_identity(files, cert, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsError::Tls)?
        }
        None => builder.with_no_client_auth(),
    };
    let server_name = match store.tls_server_name {
        Some(name) => {
            Some(
                ServerName::try_from(name.to_string()).map_err(|_| TlsError::ServerName {
                    name: name.to_string(),
                })?,
            )
        }
        None => None,
    };
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(digest.finish().as_ref());
    Ok(StoreTls {
        config: Arc::new(config),
        server_name,
        fingerprint,
    })
}

/// A TLS client configuration with the system roots only (for the URLs of
/// `http` change actions).
pub(crate) fn system_tls() -> Result<ClientConfig, rustls::Error> {
    let mut roots = RootCertStore::empty();
    add_system_roots(&mut roots);
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The system's CA bundle (`SSL_CERT_FILE`, the distribution's bundle);
/// certificates rustls cannot use are skipped, as every TLS client does.
fn add_system_roots(roots: &mut RootCertStore) {
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn is_https(address: &str) -> bool {
    address
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

/// The regular files of a CA directory (symlinks followed), sorted, hidden
/// files skipped.
fn ca_dir_files(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let err = |source| TlsError::Read {
        what: "the CA directory",
        path: dir.display().to_string(),
        setting: "secretStore.tlsCAPath",
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let path = entry.map_err(err)?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
        if !hidden && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn ca_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::CaCert {
            path: path.display().to_string(),
            detail: format!("invalid PEM: {e}"),
            source: None,
        })
}

fn add_ca(
    roots: &mut RootCertStore,
    path: &Path,
    certs: Vec<CertificateDer<'static>>,
) -> Result<usize, TlsError> {
    let n = certs.len();
    for c in certs {
        roots.add(c).map_err(|e| TlsError::CaCert {
            path: path.display().to_string(),
            detail: "unusable certificate".into(),
            source: Some(e),
        })?;
    }
    Ok(n)
}

fn add_ca_pem(roots: &mut RootCertStore, path: &Path, pem: &[u8]) -> Result<(), TlsError> {
    let certs = ca_certs(path, pem)?;
    if certs.is_empty() {
        return Err(TlsError::CaCert {
            path: path.display().to_string(),
            detail: "no CERTIFICATE block found".into(),
            source: None,
        });
    }
    add_ca(roots, path, certs).map(drop)
}

/// A file of a CA directory: one without certificates (a README, a CRL) is
/// skipped, as Vault's own client does; a broken PEM is an error.
fn add_ca_dir_file(roots: &mut RootCertStore, path: &Path, pem: &[u8]) -> Result<usize, TlsError> {
    let certs = ca_certs(path, pem)?;
    add_ca(roots, path, certs)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(files: &ClientCert, cert: &[u8], key: &[u8]) -> Result<Identity, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::ClientCert {
            path: files.cert.display().to_string(),
            detail: format!("invalid PEM: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsError::ClientCert {
            path: files.cert.display().to_string(),
            detail: "no CERTIFICATE block found".into(),
        });
    }
    // The parser's errors describe the PEM structure, never the key bytes.
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::ClientKey {
        path: files.key.display().to_string(),
        detail: format!("no usable PRIVATE KEY block ({e})"),
    })?;
    Ok((chain, key))
}

/// Accepts any server certificate (VAULT_SKIP_VERIFY=true). Signatures are
/// still checked, so the handshake itself is sound; only identity is not.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let mut roots = RootCertStore::empty();
        let e = add_ca_pem(&mut roots, Path::new("/etc/ca.pem"), b"not a pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/ca.pem") && e.contains("no CERTIFICATE"),
            "{e}"
        );
        assert!(e.contains("VAULT_CACERT"), "{e}");
    }

    #[test]
    fn only_https_addresses_need_the_system_roots() {
        assert!(is_https("https://vault:8200"));
        assert!(is_https("HTTPS://vault"));
        assert!(!is_https("http://127.0.0.1:8200"));
        assert!(!is_https("http"));
        assert!(!is_https(""));
    }

    /// The settings of an https store with nothing set, to change per test.
    #[derive(Default)]
    struct Owned {
        ca_path: Option<PathBuf>,
        client_cert: Option<ClientCert>,
        tls_server_name: Option<String>,
    }

    impl Owned {
        fn settings(&self) -> TlsSettings<'_> {
            TlsSettings {
                address: "https://vault:8200",
                ca_cert: None,
                ca_path: self.ca_path.as_deref(),
                client_cert: self.client_cert.as_ref(),
                tls_server_name: self.tls_server_name.as_deref(),
                skip_verify: false,
            }
        }
    }

    fn store() -> Owned {
        Owned::default()
    }

    #[test]
    fn a_ca_directory_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), "certificates go here").unwrap();
        let mut s = store();
        s.ca_path = Some(dir.path().to_path_buf());
        let e = store_tls(s.settings()).err().unwrap();
        assert_eq!(e.location(), "secretStore.tlsCAPath");
        assert!(e.to_string().contains("VAULT_CAPATH"), "{e}");
    }

    #[test]
    fn an_unreadable_client_key_names_file_and_setting() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "x").unwrap();
        let mut s = store();
        s.client_cert = Some(ClientCert {
            cert,
            key: dir.path().join("missing.key"),
        });
        let e = store_tls(s.settings()).err().unwrap();
        assert_eq!(e.location(), "secretStore.tlsClientKey");
        assert!(e.to_string().contains("missing.key"), "{e}");
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("c.key");
        // Any well-formed certificate PEM block will do for the chain parse.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(&key, "CANARY-KEY-MATERIAL").unwrap();
        let mut s = store();
        s.client_cert = Some(ClientCert { cert, key });
        let e = store_tls(s.settings()).err().unwrap();
        assert_eq!(e.location(), "secretStore.tlsClientKey");
        assert!(!format!("{e} {e:?}").contains("CANARY"), "{e}");
    }

    #[test]
    fn a_bad_server_name_is_refused() {
        let mut s = store();
        s.tls_server_name = Some("not a name".into());
        let e = store_tls(s.settings()).err().unwrap();
        assert_eq!(e.location(), "VAULT_TLS_SERVER_NAME");
    }
}
