//! TLS towards https origins (README, "https upstreams"): the server is
//! verified against the system roots plus the configured `ca_file`, SNI is
//! the URL's host, a client certificate is presented when configured, and
//! ALPN offers `http/1.1` only.
//!
//! A [`TlsClient`] is built once per origin when the config is validated and
//! shared (one `Arc<ClientConfig>`) by every worker's pool; each connection
//! only clones that `Arc`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A client certificate chain and its private key (mTLS to the origin).
pub struct ClientIdentity {
    /// The certificate chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the leaf.
    pub key: PrivateKeyDer<'static>,
}

/// Why a [`TlsClient`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSetupError {
    /// The host cannot be a TLS server name.
    ServerName(String),
    /// A certificate of the extra roots is not a usable trust anchor.
    CaCertificate(String),
    /// The client certificate and key cannot be used together.
    ClientIdentity(String),
    /// The TLS library refused the settings.
    Other(String),
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServerName(m)
            | Self::CaCertificate(m)
            | Self::ClientIdentity(m)
            | Self::Other(m) => f.write_str(m),
        }
    }
}

/// How to open TLS connections to one origin: its verified settings and the
/// name it is expected to prove.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// Settings for an origin at `host` (a DNS name or an IP address, IPv6
    /// with or without brackets): the system roots plus `extra_roots` are
    /// trusted, and `identity` is presented when the server asks for one.
    pub fn new(
        host: &str,
        extra_roots: &[CertificateDer<'static>],
        identity: Option<ClientIdentity>,
    ) -> Result<Self, TlsSetupError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string()).map_err(|_| {
            TlsSetupError::ServerName(format!("{host:?} is not a valid TLS server name"))
        })?;
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(system_roots().iter().cloned());
        for cert in extra_roots {
            roots.add(cert.clone()).map_err(|e| {
                TlsSetupError::CaCertificate(format!("not a usable CA certificate: {e}"))
            })?;
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsSetupError::Other(e.to_string()))?
                .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(id.chain, id.key)
                .map_err(|e| {
                    TlsSetupError::ClientIdentity(format!(
                        "client certificate and key do not fit: {e}"
                    ))
                })?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// Runs the TLS handshake over `tcp`. A certificate that cannot be
    /// verified is an error (its text names why), never a plain-text
    /// fallback.
    pub async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        TlsConnector::from(Arc::clone(&self.config))
            .connect(self.server_name.clone(), tcp)
            .await
    }
}

/// The system's trust roots, read once per process. A machine without any
/// (a scratch container) gets an empty list: only `ca_file` is trusted then.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "some system trust roots could not be read");
        }
        found.certs
    })
}

/// Reads a PEM file of one or more CA certificates.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: invalid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: no usable PEM private key: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_dns_names_and_addresses() {
        let c = TlsClient::new("backend.internal", &[], None).unwrap();
        assert!(matches!(c.server_name, ServerName::DnsName(_)));
        let c = TlsClient::new("127.0.0.1", &[], None).unwrap();
        assert!(matches!(c.server_name, ServerName::IpAddress(_)));
        let c = TlsClient::new("[::1]", &[], None).unwrap();
        assert!(matches!(c.server_name, ServerName::IpAddress(_)));
        assert_eq!(c.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn unreadable_or_empty_files_name_the_path() {
        let missing = Path::new("/nonexistent/ca.pem");
        assert!(
            load_certificates(missing)
                .unwrap_err()
                .contains("/nonexistent/ca.pem")
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        assert!(load_certificates(&empty).unwrap_err().contains("empty.pem"));
        assert!(load_private_key(&empty).unwrap_err().contains("empty.pem"));
    }
}
