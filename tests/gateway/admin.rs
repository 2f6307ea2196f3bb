//! The admin listener: probes, its limits, and a graceful stop.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const PUBLIC: &str = "[[route]]\npath = \"/{*p}\"\npublic = true\n";

/// Reads until the peer closes the connection (end of stream or reset) or
/// `within` passes; whether it closed.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    // Each pass reads data or ends; the deadline bounds the whole loop.
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn health_and_readiness_then_drain() {
    let backend = Backend::echo().await;
    let mut gw = GatewayBuilder::new(PUBLIC)
        .backend(backend.addr)
        .server("drain_delay = \"1s\"")
        .start();
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
    assert_eq!(get(gw.admin, "/readyz", None).await.status, 200);
    assert_eq!(get(gw.admin, "/nope", None).await.status, 404);

    gw.request_stop();
    let draining = eventually(Duration::from_secs(3), async || {
        get(gw.admin, "/readyz", None).await.status == 503
    })
    .await;
    assert!(draining, "/readyz fails once a stop is requested");
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
    assert_eq!(
        get(gw.addr, "/still-serving", None).await.status,
        200,
        "traffic is served during drain_delay"
    );
    let stopped = eventually(Duration::from_secs(10), async || gw.is_stopped()).await;
    assert!(stopped);
    gw.stop().unwrap();
    assert!(
        tokio::net::TcpStream::connect(gw.addr).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn in_flight_requests_finish_before_the_stop() {
    let backend =
        Backend::start(|_| Reply::json(200, "{\"slow\":true}").delayed(Duration::from_millis(800)))
            .await;
    let mut gw = GatewayBuilder::new(PUBLIC).backend(backend.addr).start();
    let addr = gw.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow", None).await });
    let arrived = eventually(Duration::from_secs(3), async || backend.count() == 1).await;
    assert!(arrived);
    gw.request_stop();
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request completed");
    assert!(r.body.starts_with(b"{\"slow\""));
    gw.stop().unwrap();
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let gw = GatewayBuilder::new(PUBLIC)
        .server("request_header_timeout = \"300ms\"")
        .start();
    let started = Instant::now();
    let mut partial = TcpStream::connect(gw.admin).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(gw.admin).await.unwrap();
    assert!(
        closed_within(&mut partial, Duration::from_secs(5)).await,
        "a request head never finished is cut off"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "after the header timeout, not at once: {:?}",
        started.elapsed()
    );
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "so is a connection that sends nothing"
    );
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
}

#[tokio::test]
async fn admin_connections_are_capped() {
    const CAP: usize = permgate::admin::MAX_CONNECTIONS;
    let gw = GatewayBuilder::new(PUBLIC)
        .server("request_header_timeout = \"30s\"")
        .start();
    // Silent connections take every slot (they are accepted in order).
    let mut held = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        held.push(TcpStream::connect(gw.admin).await.unwrap());
    }
    let mut over = TcpStream::connect(gw.admin).await.unwrap();
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // A negative check needs a fixed wait: nothing may arrive in it.
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), over.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "one over the cap waits in the backlog: {early:?}"
    );

    drop(held.pop());
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut answer))
        .await
        .expect("served once a slot is free")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
