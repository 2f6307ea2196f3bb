//! Upstream failures (refused → 502, too slow → 504) and pooled connection reuse.

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

#[tokio::test]
async fn connections_are_reused_after_request_bodies_sent_whole() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("workers = 1")
        .start();
    for i in 0..5 {
        let r = request(gw.addr, "POST", &format!("/len/{i}"), &[], "a body").await;
        assert_eq!(r.status, 200, "request {i}");
        let chunked = format!(
            "POST /chunked/{i} HTTP/1.1\r\nhost: {}\r\ntransfer-encoding: chunked\r\n\
             connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            gw.addr
        );
        let answer = raw(gw.addr, chunked.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "chunked request {i}: {answer}"
        );
    }
    assert_eq!(backend.count(), 10);
    assert!(backend.requests().iter().all(|r| !r.body.is_empty()));
    assert_eq!(
        backend.connections(),
        1,
        "a request whose body was sent whole leaves its connection reusable"
    );
}

/// What the early-refusing backend answers to a `POST`, before its body.
const EARLY_REFUSAL: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\nrefused";
/// What it answers to anything else.
const EARLY_OK: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";

/// An upstream that answers a `POST` with 400 as soon as it has the request
/// head, without waiting for the body (as backends that check headers first
/// do), and keeps the connection: the body is skipped as it arrives, then the
/// next request is read. Anything else gets 200.
async fn early_refusing_backend() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..32 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_early_refusals(stream));
        }
    });
    addr
}

async fn serve_early_refusals(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // Request body bytes still to skip.
    let mut owed = 0usize;
    for _ in 0..1000 {
        let skipped = owed.min(buf.len());
        buf.drain(..skipped);
        owed -= skipped;
        if owed == 0 {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                buf.drain(..end + 4);
                owed = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let answer = if head.starts_with("post ") {
                    EARLY_REFUSAL
                } else {
                    EARLY_OK
                };
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                continue;
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}

/// Starts an upload of 100000 bytes through the gateway, sends 1000 of them,
/// reads the backend's early 400 and returns the connection, still owing the
/// rest of the body.
async fn stalled_upload(gateway: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {gateway}\r\ncontent-type: application/octet-stream\r\n\
         content-length: 100000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[b'x'; 1000]).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..100 {
        if got.ends_with(b"refused") {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            other => panic!(
                "no early answer to the upload ({other:?}): {}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.ends_with("refused"), "{got}");
    s
}

#[tokio::test]
async fn a_connection_still_owed_a_request_body_is_not_reused() {
    let backend = early_refusing_backend().await;
    // One worker: one pool, which the stalled uploads and the GETs share.
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend)
        .server("workers = 1")
        .upstream("timeout = \"3s\"")
        .start();
    let mut stalled = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..3 {
        stalled.push(stalled_upload(gw.addr).await);
        let r = get(gw.addr, &format!("/after/{i}"), None).await;
        statuses.push(r.status);
    }
    assert!(
        !statuses.contains(&504),
        "GETs waited behind stalled uploads: {statuses:?}"
    );
    assert_eq!(statuses, [200, 200, 200]);
    drop(stalled);
}
