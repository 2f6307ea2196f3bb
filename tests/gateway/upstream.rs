//! Upstream failures: refused → 502, too slow → 504.

use std::time::Duration;

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/{*rest}"
public = true
"#;

#[tokio::test]
async fn upstream_refused_is_502() {
    let addr = crate::support::backend::refused_addr().await;
    let gw = GatewayBuilder::new(ROUTES).backend(addr).start();
    let r = get(gw.addr, "/x", None).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["code"], "upstream_unavailable");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn upstream_slower_than_timeout_is_504() {
    let backend = Backend::start(|_| Reply::json(200, "{}").delayed(Duration::from_secs(3))).await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .upstream("timeout = \"300ms\"")
        .start();
    let started = std::time::Instant::now();
    let r = get(gw.addr, "/slow", None).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered at the timeout, not when the upstream did"
    );
}

#[tokio::test]
async fn upstream_garbage_is_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..4 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        }
    });
    let gw = GatewayBuilder::new(ROUTES).backend(addr).start();
    let r = get(gw.addr, "/x", None).await;
    assert_eq!(r.status, 502);
}

#[tokio::test]
async fn connections_to_the_upstream_are_reused() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("workers = 1")
        .start();
    for i in 0..20 {
        assert_eq!(get(gw.addr, &format!("/r/{i}"), None).await.status, 200);
    }
    assert_eq!(backend.count(), 20);
    assert_eq!(
        backend.connections(),
        1,
        "sequential requests share one pooled upstream connection"
    );
}

#[tokio::test]
async fn a_closed_pooled_connection_is_replaced() {
    // The backend closes every connection after one answer.
    let backend = Backend::start(|_| Reply::json(200, "{}").header("connection", "close")).await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("workers = 1")
        .start();
    for i in 0..5 {
        assert_eq!(
            get(gw.addr, &format!("/r/{i}"), None).await.status,
            200,
            "request {i}"
        );
    }
    assert_eq!(backend.connections(), 5);
}
