//! TLS on the proxy listener: HTTP/1.1 and HTTP/2 by ALPN, TLS 1.2/1.3
//! only, plain text refused, mTLS identity (`X-Client-Cert-Sha256`,
//! `cert_sha256`), certificate reload. Certificates come from rcgen at test
//! time.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::tls_backend::Issued;
use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "open"
methods = ["GET"]
path = "/open"
public = true

[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]
"#;

/// The test CA and its certificates (shared with the https-upstream tests).
type Pki = TestCa;
type Leaf = Issued;

/// A gateway with `server` as its certificate (files `server.crt`,
/// `server.key`, `ca.pem` holding `client_ca`'s root when given).
fn tls_gateway(routes: &str, server: &Leaf, client_ca: Option<&Pki>) -> GatewayBuilder {
    let mut b = GatewayBuilder::new(routes)
        .file("server.crt", server.cert_pem.clone())
        .file("server.key", server.key_pem.clone())
        .server("tls_cert = \"server.crt\"")
        .server("tls_key = \"server.key\"")
        .server("request_header_timeout = \"2s\"");
    if let Some(ca) = client_ca {
        b = b
            .file("ca.pem", ca.pem.clone())
            .server("tls_client_ca = \"ca.pem\"");
    }
    b
}

/// A client config trusting `ca`, offering `alpn`, with an optional client
/// certificate.
fn client_config(
    ca: &Pki,
    alpn: &[&[u8]],
    identity: Option<&Leaf>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem.clone().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// One GET over an established TLS stream, h2 or HTTP/1.1 by the
/// negotiated ALPN; an error if the connection fails at any point.
async fn get_over(
    stream: TlsStream<TcpStream>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Resp, Version), String> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let mut req = Request::get(format!("https://localhost{path}"));
    if !h2 {
        req = req.uri(path).header("host", "localhost");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let io = TokioIo::new(stream);
    let resp = if h2 {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    };
    let version = resp.version();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        },
        version,
    ))
}

/// Connects and GETs within 10 s.
async fn tls_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Resp, Version), String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = connect(addr, config).await.map_err(|e| e.to_string())?;
        get_over(stream, path, headers).await
    })
    .await
    .map_err(|_| "took longer than 10 s".to_string())?
}

/// The certificate the server presents to a new handshake.
async fn presented(addr: SocketAddr, ca: &Pki) -> Vec<u8> {
    let stream = connect(addr, client_config(ca, &[b"http/1.1"], None, BOTH))
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn h1_and_h2_by_alpn_reach_a_plain_backend_as_https() {
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let server = pki.server_named("gateway");
    let mut gw = tls_gateway(ROUTES, &server, None)
        .backend(backend.addr)
        .start();

    let h1 = client_config(&pki, &[b"http/1.1"], None, BOTH);
    let spoof = [("x-forwarded-proto", "http")];
    let (resp, version) = tls_get(gw.addr, h1, "/open", &spoof).await.unwrap();
    assert_eq!((resp.status, version), (200, Version::HTTP_11));
    let seen = backend.last().unwrap();
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("https"));

    let h2 = client_config(&pki, &[b"h2", b"http/1.1"], None, BOTH);
    let (resp, version) = tls_get(gw.addr, h2, "/open", &[]).await.unwrap();
    assert_eq!((resp.status, version), (200, Version::HTTP_2));
    assert_eq!(backend.count(), 2);
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-forwarded-proto")
            .as_deref(),
        Some("https")
    );

    // The request handler is the same one: an unauthenticated call is refused.
    let h2 = client_config(&pki, &[b"h2"], None, BOTH);
    let (resp, _) = tls_get(gw.addr, h2, "/items/1", &[]).await.unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(backend.count(), 2);

    // TLS 1.2 and 1.3 are both offered.
    for (version, want) in [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let only = client_config(&pki, &[b"http/1.1"], None, &[version]);
        let stream = connect(gw.addr, only).await.unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(want));
    }
    gw.stop().unwrap();
}

#[tokio::test]
async fn plain_text_to_the_tls_port_is_never_forwarded() {
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let mut gw = tls_gateway(ROUTES, &pki.server_named("gateway"), None)
        .backend(backend.addr)
        .start();
    let answer = raw(
        gw.addr,
        b"GET /open HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(!answer.contains("HTTP/1."), "an HTTP answer: {answer:?}");
    let preface = raw(
        gw.addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(!preface.contains("HTTP/"), "{preface:?}");
    assert_eq!(backend.count(), 0);
    gw.stop().unwrap();
}

/// Runs a program with a 20 s limit (std has no timeout: poll `try_wait`).
fn run_bounded(cmd: &mut Command) -> (bool, String) {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (out.status.success(), text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("{cmd:?} took longer than 20 s");
}

#[tokio::test]
async fn curl_speaks_http2_over_tls() {
    let Some(curl) = tool("curl") else { return };
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let mut gw = tls_gateway(ROUTES, &pki.server_named("gateway"), None)
        .backend(backend.addr)
        .file("test-ca.pem", pki.pem.clone())
        .start();
    let (ca, url) = (
        gw.dir.join("test-ca.pem"),
        format!("https://127.0.0.1:{}/open", gw.addr.port()),
    );
    let (ok, out) = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new(curl)
                .args(["-sS", "--http2", "--max-time", "10", "--cacert"])
                .arg(&ca)
                .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"])
                .arg(url),
        )
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "2 200");
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-forwarded-proto")
            .as_deref(),
        Some("https")
    );
    gw.stop().unwrap();
}

#[tokio::test]
async fn tls_1_1_is_refused_and_tls_1_2_accepted_by_openssl() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let mut gw = tls_gateway(ROUTES, &pki.server_named("gateway"), None)
        .backend(backend.addr)
        .start();
    let connect = format!("127.0.0.1:{}", gw.addr.port());
    let attempt = move |version: &'static str| {
        let (openssl, connect) = (openssl.clone(), connect.clone());
        tokio::task::spawn_blocking(move || {
            // SECLEVEL=0 lets this OpenSSL offer TLS 1.0/1.1 at all, so the
            // refusal is the gateway's.
            run_bounded(Command::new(openssl).args([
                "s_client",
                "-connect",
                &connect,
                version,
                "-cipher",
                "DEFAULT@SECLEVEL=0",
            ]))
        })
    };
    let (ok, out) = attempt("-tls1_2").await.unwrap();
    assert!(ok && out.contains("TLSv1.2"), "{out}");
    for old in ["-tls1_1", "-tls1"] {
        let (ok, out) = attempt(old).await.unwrap();
        assert!(!ok, "{old} accepted: {out}");
        assert!(!out.contains("BEGIN CERTIFICATE"), "{old}: {out}");
        // The hello was sent and the gateway answered with an alert.
        assert!(
            out.contains("no peer certificate available"),
            "{old}: {out}"
        );
        assert!(!out.contains("written 0 bytes"), "{old}: {out}");
    }
    gw.stop().unwrap();
}

fn mtls_grants(billing: &Leaf, intruder: &Leaf) -> String {
    format!(
        r#"
[[subject]]
name = "billing"
cert_sha256 = "{}"
allow = ["items:item:view"]

[[subject]]
name = "intruder"
cert_sha256 = "{}"
allow = ["items:item:view"]
"#,
        billing.sha256(),
        intruder.sha256()
    )
}

#[tokio::test]
async fn mtls_identity_comes_from_the_verified_certificate_only() {
    let backend = Backend::echo().await;
    let server_pki = Pki::new("server ca");
    let clients = Pki::new("client ca");
    let stranger_ca = Pki::new("someone else's ca");
    let billing = clients.client_cert("billing-service");
    let intruder = clients.client_cert("intruder");
    let unknown = clients.client_cert("not in the grants file");
    let untrusted = stranger_ca.client_cert("billing-service");
    let mut gw = tls_gateway(ROUTES, &server_pki.server_named("gateway"), Some(&clients))
        .backend(backend.addr)
        .grants_file(&mtls_grants(&billing, &intruder))
        .start();
    let cfg = |id: Option<&Leaf>| client_config(&server_pki, &[b"h2", b"http/1.1"], id, BOTH);

    // No certificate, or one from another CA: the handshake fails.
    for (what, id) in [("none", None), ("untrusted", Some(&untrusted))] {
        let r = tls_get(gw.addr, cfg(id), "/open", &[]).await;
        assert!(r.is_err(), "{what}: {r:?}");
    }
    assert_eq!(backend.count(), 0);

    // The verified certificate is the credential, whatever the client sends.
    let forged = intruder.sha256();
    let spoof = [
        ("x-client-cert-sha256", forged.as_str()),
        ("x_client_cert_sha256", forged.as_str()),
        ("x-authenticated-subject", "intruder"),
    ];
    for alpn in [&[b"h2".as_slice()][..], &[b"http/1.1".as_slice()][..]] {
        let config = client_config(&server_pki, alpn, Some(&billing), BOTH);
        let (resp, _) = tls_get(gw.addr, config, "/items/7", &spoof).await.unwrap();
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        let seen = backend.last().unwrap();
        assert_eq!(
            seen.header("x-authenticated-subject").as_deref(),
            Some("billing")
        );
        assert_eq!(seen.header("x-client-cert-sha256"), Some(billing.sha256()));
        assert_eq!(seen.header("x_client_cert_sha256"), None);
    }

    // A trusted certificate the grants file does not name: 401, and a
    // forged header does not help.
    let (resp, _) = tls_get(gw.addr, cfg(Some(&unknown)), "/items/7", &spoof)
        .await
        .unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(backend.count(), 2);
    gw.stop().unwrap();
}

#[tokio::test]
async fn curl_presents_a_client_certificate_over_http2() {
    let Some(curl) = tool("curl") else { return };
    let backend = Backend::echo().await;
    let server_pki = Pki::new("server ca");
    let clients = Pki::new("client ca");
    let billing = clients.client_cert("billing-service");
    let intruder = clients.client_cert("intruder");
    let mut gw = tls_gateway(ROUTES, &server_pki.server_named("gateway"), Some(&clients))
        .backend(backend.addr)
        .grants_file(&mtls_grants(&billing, &intruder))
        .file("server-ca.pem", server_pki.pem.clone())
        .file("billing.crt", billing.cert_pem.clone())
        .file("billing.key", billing.key_pem.clone())
        .start();
    let url = format!("https://127.0.0.1:{}/items/7", gw.addr.port());
    let curl_with = |identity: bool| {
        let (curl, dir, url) = (curl.clone(), gw.dir.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(curl);
            cmd.args(["-sS", "--http2", "--max-time", "10", "--cacert"])
                .arg(dir.join("server-ca.pem"))
                .args(["-o", "/dev/null", "-w", "%{http_version} %{http_code}"]);
            if identity {
                cmd.arg("--cert")
                    .arg(dir.join("billing.crt"))
                    .arg("--key")
                    .arg(dir.join("billing.key"));
            }
            run_bounded(cmd.arg(url))
        })
    };
    let (ok, out) = curl_with(true).await.unwrap();
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "2 200");
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        Some("billing"),
        "the certificate's subject"
    );
    let (ok, out) = curl_with(false).await.unwrap();
    assert!(!ok, "without a certificate the handshake fails: {out}");
    assert_eq!(backend.count(), 1);
    gw.stop().unwrap();
}

#[tokio::test]
async fn the_permission_api_receives_the_verified_certificate_hash() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let server_pki = Pki::new("server ca");
    let clients = Pki::new("client ca");
    let billing = clients.client_cert("billing-service");
    let mut gw = tls_gateway(ROUTES, &server_pki.server_named("gateway"), Some(&clients))
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let config = client_config(&server_pki, &[b"http/1.1"], Some(&billing), BOTH);
    let forged = "a".repeat(64);
    let (resp, _) = tls_get(
        gw.addr,
        config,
        "/items/1",
        &[("x-client-cert-sha256", forged.as_str())],
    )
    .await
    .unwrap();
    // The scripted API knows no certificates: 401 from it, passed on.
    assert_eq!(resp.status, 401);
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    let values: Vec<_> = seen[0].get_all("x-client-cert-sha256").iter().collect();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].to_str().unwrap(), billing.sha256());
    assert_eq!(backend.count(), 0);
    gw.stop().unwrap();
}

fn write_pair(dir: &Path, leaf: &Leaf) {
    std::fs::write(dir.join("server.crt"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &leaf.key_pem).unwrap();
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_keeps_the_last_good_one() {
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let first = pki.server_named("first.example");
    let mut gw = tls_gateway(ROUTES, &first, None)
        .backend(backend.addr)
        .routes("watch = false")
        .start();
    assert_eq!(presented(gw.addr, &pki).await, first.der());
    // A live connection made with the first certificate.
    let live = connect(gw.addr, client_config(&pki, &[b"h2"], None, BOTH))
        .await
        .unwrap();

    let second = pki.server_named("second.example");
    write_pair(&gw.dir, &second);
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(presented(gw.addr, &pki).await, second.der());
    let status = request(gw.admin, "GET", "/admin/routes", &[], "")
        .await
        .json();
    let tls = &status["tls"];
    assert_eq!(tls["certificate"]["subject"], "second.example");
    assert_eq!(tls["certificate"]["sha256"], second.sha256());
    assert!(tls["certificate"]["notAfter"].as_str().is_some(), "{tls}");
    assert!(tls["lastError"].is_null(), "{tls}");
    // The expiry is a metric too, for alerts.
    let expiry = humantime::parse_rfc3339(tls["certificate"]["notAfter"].as_str().unwrap())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let metrics = metrics::scrape(gw.admin).await;
    assert!(
        metrics.contains(&format!(
            "permgate_tls_certificate_expiry_seconds {expiry}\n"
        )),
        "{metrics}"
    );
    // The live connection keeps working.
    assert_eq!(
        live.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        first.der()
    );
    let (resp, _) = get_over(live, "/open", &[]).await.unwrap();
    assert_eq!(resp.status, 200);

    // A broken key: the second certificate keeps serving; the error shows.
    let third = pki.server_named("third.example");
    std::fs::write(gw.dir.join("server.crt"), &third.cert_pem).unwrap();
    std::fs::write(gw.dir.join("server.key"), "not a key\n").unwrap();
    request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(presented(gw.addr, &pki).await, second.der());
    let status = request(gw.admin, "GET", "/admin/routes", &[], "")
        .await
        .json();
    let tls = &status["tls"];
    assert_eq!(tls["certificate"]["subject"], "second.example");
    let message = tls["lastError"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("server.tls_key"), "{tls}");

    // Mended: the third certificate is taken.
    write_pair(&gw.dir, &third);
    request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(presented(gw.addr, &pki).await, third.der());
    gw.stop().unwrap();
}

#[tokio::test]
async fn a_changed_certificate_file_is_picked_up_without_a_trigger() {
    let backend = Backend::echo().await;
    let pki = Pki::new("test ca");
    let first = pki.server_named("first.example");
    let mut gw = tls_gateway(ROUTES, &first, None)
        .backend(backend.addr)
        .start();
    let second = pki.server_named("second.example");
    write_pair(&gw.dir, &second);
    let (addr, pki) = (gw.addr, &pki);
    let seen = eventually(Duration::from_secs(10), async || {
        presented(addr, pki).await == second.der()
    })
    .await;
    assert!(seen, "the new certificate was not served within 10 s");
    gw.stop().unwrap();
}

#[tokio::test]
async fn sessions_resume_and_keep_the_client_certificate_identity() {
    let backend = Backend::echo().await;
    let server_pki = Pki::new("server ca");
    let clients = Pki::new("client ca");
    let billing = clients.client_cert("billing-service");
    let intruder = clients.client_cert("intruder");
    let mut gw = tls_gateway(ROUTES, &server_pki.server_named("gateway"), Some(&clients))
        .backend(backend.addr)
        .grants_file(&mtls_grants(&billing, &intruder))
        .start();
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        // One config: its session store carries the ticket or session id.
        let config = client_config(&server_pki, &[b"http/1.1"], Some(&billing), versions);
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let stream = connect(gw.addr, Arc::clone(&config)).await.unwrap();
            let (resp, _) = get_over(stream, "/items/1", &[]).await.unwrap();
            assert_eq!(resp.status, 200);
            let seen = backend.last().unwrap();
            assert_eq!(
                seen.header("x-authenticated-subject").as_deref(),
                Some("billing")
            );
            let stream = connect(gw.addr, Arc::clone(&config)).await.unwrap();
            kinds.push(stream.get_ref().1.handshake_kind());
        }
        assert_eq!(
            kinds.last(),
            Some(&Some(rustls::HandshakeKind::Resumed)),
            "{versions:?}"
        );
    }
    gw.stop().unwrap();
}

#[tokio::test]
async fn a_silent_client_is_cut_off_at_the_handshake_timeout() {
    let pki = Pki::new("test ca");
    let mut gw = tls_gateway(ROUTES, &pki.server_named("gateway"), None).start();
    let started = std::time::Instant::now();
    // Sends nothing; `raw` returns when the gateway closes (or after 8 s).
    let answer = raw(gw.addr, b"", Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "closed after {took:?}; request_header_timeout is 2 s"
    );
    gw.stop().unwrap();
}

/// A request over `send` that waits at most 10 s.
async fn send_bounded<B>(
    send: &mut B,
    req: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    B: SendsRequests,
{
    tokio::time::timeout(Duration::from_secs(10), send.send(req))
        .await
        .map_err(|_| "took longer than 10 s".to_string())?
}

/// HTTP/1.1 and HTTP/2 request senders alike.
trait SendsRequests {
    fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> impl std::future::Future<Output = Result<http::Response<hyper::body::Incoming>, String>>;
}

impl SendsRequests for hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        self.ready().await.map_err(|e| e.to_string())?;
        self.send_request(req).await.map_err(|e| e.to_string())
    }
}

impl SendsRequests for hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        self.ready().await.map_err(|e| e.to_string())?;
        self.send_request(req).await.map_err(|e| e.to_string())
    }
}

fn slow_request(h2: bool) -> Request<Full<Bytes>> {
    let b = if h2 {
        Request::get("https://localhost/open?slow")
    } else {
        Request::get("/open?slow").header("host", "localhost")
    };
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn a_drain_over_tls_finishes_in_flight_requests_then_closes_h1_and_h2() {
    let backend = Backend::start(|r| {
        let reply = Reply::json(200, "{\"done\":true}");
        if r.target.contains("slow") {
            reply.delayed(Duration::from_millis(800))
        } else {
            reply
        }
    })
    .await;
    let pki = Pki::new("test ca");
    let leaf = pki.server_named("localhost");
    let mut gw = tls_gateway(ROUTES, &leaf, None)
        .backend(backend.addr)
        .server("drain_delay = \"0s\"")
        .server("shutdown_timeout = \"5s\"")
        .start();

    // One keep-alive HTTP/1.1 connection and one HTTP/2 connection, each
    // with a request in flight when the stop comes.
    let h1_stream = connect(gw.addr, client_config(&pki, &[b"http/1.1"], None, BOTH))
        .await
        .unwrap();
    let (mut h1, h1_conn) = hyper::client::conn::http1::handshake(TokioIo::new(h1_stream))
        .await
        .unwrap();
    let h1_task = tokio::spawn(h1_conn);
    let h2_stream = connect(gw.addr, client_config(&pki, &[b"h2"], None, BOTH))
        .await
        .unwrap();
    let (mut h2, h2_conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2_stream))
            .await
            .unwrap();
    tokio::spawn(h2_conn);
    let h1_slow = tokio::spawn(async move {
        let r = send_bounded(&mut h1, slow_request(false)).await;
        (r, h1)
    });
    let mut h2_clone = h2.clone();
    let h2_slow =
        tokio::spawn(async move { send_bounded(&mut h2_clone, slow_request(true)).await });
    let both = eventually(Duration::from_secs(5), async || backend.count() == 2).await;
    assert!(both, "both slow requests reached the backend");

    gw.request_stop();
    let (h1_answer, _h1) = h1_slow.await.unwrap();
    let h1_answer = h1_answer.expect("the in-flight HTTP/1.1 request completes");
    assert_eq!(h1_answer.status(), 200);
    assert_eq!(
        h1_answer.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "the keep-alive connection is told to close"
    );
    let h2_answer = h2_slow
        .await
        .unwrap()
        .expect("the in-flight HTTP/2 request completes");
    assert_eq!(h2_answer.status(), 200);
    // After GOAWAY the HTTP/2 connection takes no new request.
    let refused = send_bounded(&mut h2, slow_request(true)).await;
    assert!(refused.is_err(), "a new stream after GOAWAY: {refused:?}");
    let closed = tokio::time::timeout(Duration::from_secs(5), h1_task).await;
    assert!(closed.is_ok(), "the HTTP/1.1 connection ends");
    gw.stop().unwrap();
    assert_eq!(backend.count(), 2, "nothing new reached the backend");
}
