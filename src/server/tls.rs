//! TLS on the proxy listener (README, "TLS and mTLS").
//!
//! [`TlsState`] holds the rustls server config built from `tls_cert`,
//! `tls_key` and `tls_client_ca` behind an `ArcSwap`: a reload swaps in a new
//! one for new handshakes while live connections keep theirs, and a broken
//! or mismatched file keeps the last good one (the error is logged and shown
//! on `GET /admin/routes`). [`accept`] runs one handshake, bounded by
//! `request_header_timeout`, and tells the protocol (ALPN) and the verified
//! client certificate's SHA-256.

mod x509;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use http::HeaderValue;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::common::sha256_hex;
use crate::config::{ConfigError, TlsConfig, TlsFile};

pub use x509::{CertSummary, summarize};

/// ALPN protocols offered, in order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// TLS sessions remembered for resumption by session id (TLS 1.2).
const SESSION_CACHE: usize = 4096;

/// The current TLS config of the listener and how its last reload went.
pub struct TlsState {
    files: TlsConfig,
    current: ArcSwap<Loaded>,
    /// Digest of the files' bytes as last read (loaded or refused).
    last_tried: Mutex<[u8; 32]>,
    last_error: Mutex<Option<(String, SystemTime)>>,
}

/// One successful load.
struct Loaded {
    server: Arc<rustls::ServerConfig>,
    leaf_sha256: String,
    summary: CertSummary,
    loaded_at: SystemTime,
}

impl TlsState {
    /// Loads the files; any problem is an error naming the config key.
    pub fn load(files: &TlsConfig) -> Result<Self, ConfigError> {
        let (digest, loaded) = read_and_build(files)?;
        Ok(Self {
            files: files.clone(),
            current: ArcSwap::from_pointee(loaded),
            last_tried: Mutex::new(digest),
            last_error: Mutex::new(None),
        })
    }

    /// The config new handshakes use.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.current.load().server)
    }

    /// Whether client certificates are required (`tls_client_ca`).
    pub fn mtls(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The files it reads.
    pub fn paths(&self) -> Vec<&std::path::Path> {
        let mut out = vec![
            self.files.cert.path.as_path(),
            self.files.key.path.as_path(),
        ];
        if let Some(ca) = &self.files.client_ca {
            out.push(ca.path.as_path());
        }
        out
    }

    /// Reads the files again; when their bytes differ from the last read,
    /// builds and swaps in a new config, or keeps the current one and
    /// records the error. `Ok(true)` when a new config was swapped in.
    pub fn reload(&self) -> Result<bool, ConfigError> {
        let digest = match read_files(&self.files) {
            Ok(bytes) => digest_of(&bytes),
            Err(e) => return Err(self.failed(e)),
        };
        {
            let mut last = self.last_tried.lock().unwrap_or_else(|p| p.into_inner());
            if *last == digest {
                return Ok(false);
            }
            *last = digest;
        }
        match read_and_build(&self.files) {
            Ok((_, loaded)) => {
                tracing::info!(
                    certificate_sha256 = %loaded.leaf_sha256,
                    subject = loaded.summary.subject.as_deref().unwrap_or("-"),
                    not_after = loaded.summary.not_after.as_deref().unwrap_or("-"),
                    "TLS certificate reloaded"
                );
                self.current.store(Arc::new(loaded));
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(true)
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&self, e: ConfigError) -> ConfigError {
        tracing::error!(error = %e, "TLS files not reloaded; the previous certificate keeps serving");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((e.to_string(), SystemTime::now()));
        e
    }

    /// When the serving certificate expires, if its date could be read.
    pub fn not_after(&self) -> Option<SystemTime> {
        let current = self.current.load();
        humantime::parse_rfc3339(current.summary.not_after.as_deref()?).ok()
    }

    /// The `tls` object of `GET /admin/routes`.
    pub fn status(&self, timestamp: impl Fn(SystemTime) -> String) -> Value {
        let current = self.current.load();
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(message, at)| json!({"message": message, "at": timestamp(*at)}));
        json!({
            "certificate": {
                "file": self.files.cert.path.display().to_string(),
                "subject": current.summary.subject,
                "notAfter": current.summary.not_after,
                "sha256": current.leaf_sha256,
            },
            "clientCa": self.files.client_ca.as_ref().map(|c| c.path.display().to_string()),
            "loadedAt": timestamp(current.loaded_at),
            "lastError": last_error,
        })
    }
}

/// A finished handshake.
pub struct Accepted {
    /// The decrypted stream.
    pub stream: TlsStream<TcpStream>,
    /// Whether the client chose `h2` by ALPN.
    pub h2: bool,
    /// The verified client certificate's SHA-256 (lower-case hex), with mTLS.
    pub client_cert_sha256: Option<HeaderValue>,
}

/// Runs the TLS handshake on `stream` within `timeout`; `None` if it fails
/// (a plain-text request, an untrusted or missing client certificate…).
pub async fn accept(state: &TlsState, stream: TcpStream, timeout: Duration) -> Option<Accepted> {
    let acceptor = tokio_rustls::TlsAcceptor::from(state.server_config());
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return None;
        }
    };
    let conn = stream.get_ref().1;
    let h2 = conn.alpn_protocol() == Some(b"h2".as_slice());
    let client_cert_sha256 = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| HeaderValue::from_str(&sha256_hex(leaf)).ok());
    if state.mtls() && client_cert_sha256.is_none() {
        return None;
    }
    Some(Accepted {
        stream,
        h2,
        client_cert_sha256,
    })
}

/// The bytes of cert, key and client CA, in that order.
fn read_files(files: &TlsConfig) -> Result<Vec<Vec<u8>>, ConfigError> {
    let read =
        |f: &TlsFile| std::fs::read(&f.path).map_err(|e| f.error(format!("cannot read: {e}")));
    let mut out = vec![read(&files.cert)?, read(&files.key)?];
    if let Some(ca) = &files.client_ca {
        out.push(read(ca)?);
    }
    Ok(out)
}

fn digest_of(bytes: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for b in bytes {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    }
    h.finalize().into()
}

fn read_and_build(files: &TlsConfig) -> Result<([u8; 32], Loaded), ConfigError> {
    let bytes = read_files(files)?;
    let digest = digest_of(&bytes);
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes[0])
        .collect::<Result<_, _>>()
        .map_err(|e| {
            files
                .cert
                .error(format!("not a PEM certificate chain: {e}"))
        })?;
    let Some(leaf) = chain.first() else {
        return Err(files.cert.error("no CERTIFICATE in the file"));
    };
    let leaf_sha256 = sha256_hex(leaf);
    let summary = summarize(leaf);
    let key = PrivateKeyDer::from_pem_slice(&bytes[1])
        .map_err(|e| files.key.error(format!("not a PEM private key: {e}")))?;
    let certified = rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        files
            .key
            .error(format!("does not fit the certificate: {e}"))
    })?;

    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| files.cert.error(e))?;
    let builder = match (&files.client_ca, bytes.get(2)) {
        (Some(ca), Some(ca_bytes)) => {
            builder.with_client_cert_verifier(client_verifier(ca, ca_bytes, &provider)?)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut server =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    server.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| {
        files
            .cert
            .error(format!("cannot start session tickets: {e}"))
    })?;
    Ok((
        digest,
        Loaded {
            server: Arc::new(server),
            leaf_sha256,
            summary,
            loaded_at: SystemTime::now(),
        },
    ))
}

fn client_verifier(
    ca: &TlsFile,
    bytes: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(bytes) {
        let cert = cert.map_err(|e| ca.error(format!("not a PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ca.error(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ca.error("no CERTIFICATE in the file"));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| ca.error(e))
}

#[cfg(test)]
mod tests;
