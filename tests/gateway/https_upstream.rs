//! https upstreams and an https permission API: verification against
//! `ca_file`, keep-alive over TLS, mTLS to the upstream, fail-closed on a
//! certificate that cannot be verified, and config errors.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use permgate::config::Config;
use permgate::transport::{Http1Pool, TlsClient, TransportError};

use crate::support::*;

const PUBLIC: &str = r#"
[[route]]
path = "/{*rest}"
public = true
"#;

const PROTECTED: &str = r#"
[[route]]
path = "/items/{id}"
require = ["items"]
"#;

fn echo(r: &Recorded) -> Reply {
    Reply::json(
        200,
        &serde_json::json!({"ok": true, "path": r.target}).to_string(),
    )
}

fn toml_path(p: &std::path::Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[tokio::test]
async fn https_upstream_verified_by_ca_file_and_connections_reused() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new("upstream test CA");
    let backend = TlsBackend::start(&ca.server_cert(), None, echo).await;
    let gw = GatewayBuilder::new(PUBLIC)
        .backend_url(format!("https://{}", backend.addr))
        .upstream(&format!(
            "ca_file = {}",
            toml_path(&ca.write(certs.path(), "ca"))
        ))
        .server("workers = 1")
        .start();
    for i in 0..5 {
        let r = get(gw.addr, &format!("/over/tls/{i}?q=1"), None).await;
        assert_eq!(r.status, 200, "request {i}: {:?}", r.body);
        assert_eq!(r.json()["path"], format!("/over/tls/{i}?q=1"));
    }
    let seen = backend.requests();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4].target, "/over/tls/4?q=1", "the forwarded path");
    assert_eq!(
        backend.handshakes(),
        1,
        "sequential requests share one pooled TLS connection"
    );
    assert_eq!(backend.accepted(), 1);
    assert_eq!(
        backend.server_names(),
        vec![None],
        "no SNI for an IP address"
    );
}

#[tokio::test]
async fn https_upstream_by_host_name_sends_sni_and_verifies_that_name() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new("upstream test CA");
    let backend = TlsBackend::start(&ca.server_cert(), None, echo).await;
    let gw = GatewayBuilder::new(PUBLIC)
        .backend_url(format!("https://localhost:{}", backend.addr.port()))
        .upstream(&format!(
            "ca_file = {}",
            toml_path(&ca.write(certs.path(), "ca"))
        ))
        .start();
    let r = get(gw.addr, "/by-name", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(backend.count(), 1);
    assert_eq!(backend.server_names(), vec![Some("localhost".to_string())]);
}

#[tokio::test]
async fn https_upstream_with_unknown_ca_is_502_and_sees_nothing() {
    let ca = TestCa::new("a CA the gateway does not know");
    let backend = TlsBackend::start(&ca.server_cert(), None, echo).await;
    let gw = GatewayBuilder::new(PUBLIC)
        .backend_url(format!("https://{}", backend.addr))
        .start();
    for _ in 0..2 {
        let r = get(gw.addr, "/x", None).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(r.json()["code"], "upstream_unavailable");
    }
    assert!(backend.accepted() >= 1, "the gateway did try TLS");
    assert_eq!(backend.handshakes(), 0);
    assert_eq!(backend.count(), 0, "no request in plain text or otherwise");
}

#[tokio::test]
async fn an_unverifiable_certificate_is_a_tls_error_naming_why() {
    let ca = TestCa::new("a CA the client does not know");
    let backend = TlsBackend::start(&ca.server_cert(), None, echo).await;
    let tls = TlsClient::new("127.0.0.1", &[], None).unwrap();
    let pool =
        Http1Pool::<Empty<Bytes>>::new(backend.addr.to_string(), Some(tls), Duration::from_secs(2));
    let mut req = http::Request::new(Empty::new());
    req.headers_mut()
        .insert("host", backend.addr.to_string().parse().unwrap());
    match pool
        .send(req, std::time::Instant::now(), Duration::from_secs(2))
        .await
    {
        Err(e @ TransportError::Tls(_)) => {
            let text = e.to_string();
            assert!(
                text.contains("TLS handshake failed") && text.contains("UnknownIssuer"),
                "the log line names the cause: {text}"
            );
        }
        Err(other) => panic!("expected a TLS error, got {other}"),
        Ok(r) => panic!("expected a TLS error, got {}", r.status()),
    }
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn upstream_requiring_a_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new("upstream test CA");
    let clients = TestCa::new("client test CA");
    let backend = TlsBackend::start(&ca.server_cert(), Some(&clients), echo).await;
    let ca_file = toml_path(&ca.write(certs.path(), "ca"));
    let base = || {
        GatewayBuilder::new(PUBLIC)
            .backend_url(format!("https://{}", backend.addr))
            .upstream(&format!("ca_file = {ca_file}"))
    };

    let without = base().start();
    let r = get(without.addr, "/no-cert", None).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.json()["code"], "upstream_unavailable");
    assert_eq!(backend.count(), 0);

    let (cert, key) = clients
        .client_cert("permgate")
        .write(certs.path(), "client");
    let with = base()
        .upstream(&format!("client_cert = {}", toml_path(&cert)))
        .upstream(&format!("client_key = {}", toml_path(&key)))
        .start();
    let r = get(with.addr, "/with-cert", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(backend.count(), 1);
    assert_eq!(backend.requests()[0].target, "/with-cert");
}

async fn https_permission_api() -> (TlsBackend, TestCa) {
    let ca = TestCa::new("permission API test CA");
    let api = TlsBackend::start(&ca.server_cert(), None, |_| {
        Reply::json(200, r#"{"subject":"alice","permissions":["items"]}"#)
    })
    .await;
    (api, ca)
}

#[tokio::test]
async fn https_permission_api_with_ca_file_allows() {
    let certs = tempfile::tempdir().unwrap();
    let (api, ca) = https_permission_api().await;
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(PROTECTED)
        .backend(backend.addr)
        .grants_url(format!("https://{}/grants", api.addr))
        .grants(&format!(
            "ca_file = {}",
            toml_path(&ca.write(certs.path(), "ca"))
        ))
        .start();
    let r = get(gw.addr, "/items/1", Some("t")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(api.count(), 1);
    assert_eq!(api.requests()[0].path(), "/grants");
    assert_eq!(
        api.requests()[0].header("authorization").as_deref(),
        Some("Bearer t")
    );
    let seen = backend.last().expect("forwarded");
    assert_eq!(
        seen.header("x-authenticated-subject").as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn https_permission_api_with_unknown_ca_is_503() {
    let (api, _ca) = https_permission_api().await;
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(PROTECTED)
        .backend(backend.addr)
        .grants_url(format!("https://{}/grants", api.addr))
        .start();
    let r = get(gw.addr, "/items/1", Some("t")).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.json()["code"], "permission_service_unavailable");
    assert_eq!(api.count(), 0, "no credential sent to an unverified server");
    assert_eq!(backend.count(), 0, "nothing forwarded");
}

fn config_error(builder: GatewayBuilder) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("permgate.toml");
    std::fs::write(&path, builder.config_text()).unwrap();
    match Config::load(&path) {
        Ok(_) => panic!("config accepted:\n{}", builder.config_text()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn ca_file_with_an_http_url_is_a_config_error() {
    let e = config_error(GatewayBuilder::new(PUBLIC).upstream("ca_file = \"ca.pem\""));
    assert!(
        e.contains("upstreams.default.ca_file is only for an https url"),
        "{e}"
    );
    assert!(e.contains("permgate.toml:"), "names the file and line: {e}");
    let e = config_error(GatewayBuilder::new(PUBLIC).grants("client_key = \"k.pem\""));
    assert!(
        e.contains("grants.client_key is only for an https url"),
        "{e}"
    );
}

#[test]
fn a_missing_ca_file_is_a_config_error_naming_the_path() {
    let e = config_error(
        GatewayBuilder::new(PUBLIC)
            .backend_url("https://127.0.0.1:9".into())
            .upstream("ca_file = \"certs/nowhere-ca.pem\""),
    );
    assert!(e.contains("upstreams.default.ca_file"), "{e}");
    assert!(e.contains("certs/nowhere-ca.pem"), "{e}");
    let e = config_error(
        GatewayBuilder::new(PUBLIC)
            .grants_url("https://127.0.0.1:9/grants".into())
            .grants("ca_file = \"api-ca.pem\""),
    );
    assert!(e.contains("grants.ca_file: cannot read"), "{e}");
    assert!(e.contains("api-ca.pem"), "{e}");
}

#[test]
fn invalid_pem_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = config_error(
        GatewayBuilder::new(PUBLIC)
            .backend_url("https://127.0.0.1:9".into())
            .upstream(&format!("ca_file = {}", toml_path(&junk))),
    );
    assert!(e.contains("junk.pem"), "{e}");
}
