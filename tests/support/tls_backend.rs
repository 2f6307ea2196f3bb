//! Test certificates (a CA made with rcgen at test time) and a recording
//! HTTP/1.1 server over TLS, for https upstreams and an https permission API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;

use super::backend::{Recorded, Reply, answer};

/// A certificate authority made for one test.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate issued by a [`TestCa`], with its key.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl Issued {
    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.cert
    }

    /// Lower-case hex SHA-256 of the DER: its `cert_sha256`.
    pub fn sha256(&self) -> String {
        permgate::common::sha256_hex(&self.cert)
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }

    /// Writes `NAME.crt` and `NAME.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }
}

impl TestCa {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self {
            pem: issuer.pem(),
            issuer,
        }
    }

    /// Writes the CA certificate to `dir/NAME.pem`; returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server_cert(&self) -> Issued {
        self.issue(
            &["127.0.0.1", "localhost"],
            "test server",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `subject`.
    pub fn client_cert(&self, subject: &str) -> Issued {
        self.issue(&[], subject, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A server certificate for `127.0.0.1` and `localhost` whose common
    /// name is `cn`.
    pub fn server_named(&self, cn: &str) -> Issued {
        self.issue(
            &["localhost", "127.0.0.1"],
            cn,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    fn issue(&self, names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: key.serialize_der(),
        }
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A recording HTTP/1.1 server on 127.0.0.1 that speaks only TLS.
#[derive(Clone)]
pub struct TlsBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    accepted: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
    server_names: Arc<Mutex<Vec<Option<String>>>>,
}

impl TlsBackend {
    /// Serves with `cert`; when `client_ca` is given, a client certificate
    /// issued by it is required in the handshake.
    pub async fn start(
        cert: &Issued,
        client_ca: Option<&TestCa>,
        responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TlsBackend {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.issuer.der().clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(vec![cert.cert.clone()], cert.key_der())
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = TlsBackend {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
            accepted: Arc::default(),
            handshakes: Arc::default(),
            server_names: Arc::default(),
        };
        let responder: Responder = Arc::new(responder);
        let b = backend.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                b.accepted.fetch_add(1, Ordering::SeqCst);
                let (b, acceptor, responder) =
                    (b.clone(), acceptor.clone(), Arc::clone(&responder));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    b.handshakes.fetch_add(1, Ordering::SeqCst);
                    let sni = tls.get_ref().1.server_name().map(str::to_string);
                    b.server_names.lock().unwrap().push(sni);
                    let log = Arc::clone(&b.log);
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (log, responder) = (Arc::clone(&log), Arc::clone(&responder));
                        async move { Ok::<_, Infallible>(answer(req, &log, &*responder).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        backend
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Number of requests received so far.
    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The SNI of each completed handshake (`None`: the client sent none,
    /// as for an IP address).
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.server_names.lock().unwrap().clone()
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
