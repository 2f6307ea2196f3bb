//! PROXY protocol v1 and v2 in front of every connection (README, "PROXY
//! protocol and client addresses"). The addresses inside the headers are
//! only bytes: every connection goes to 127.0.0.1.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ppp::v2::{Builder, Command, Protocol, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "public"
path = "/pub/{*rest}"
public = true
"#;

const REQUEST: &[u8] = b"GET /pub/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";

async fn setup(extra: impl FnOnce(GatewayBuilder) -> GatewayBuilder) -> (Backend, RunningGateway) {
    let backend = Backend::echo().await;
    let gw = extra(
        GatewayBuilder::new(ROUTES)
            .backend(backend.addr)
            .server("proxy_protocol = true"),
    )
    .start();
    (backend, gw)
}

fn v2(command: Command, src: &str, dst: &str) -> Vec<u8> {
    let src: SocketAddr = src.parse().unwrap();
    let dst: SocketAddr = dst.parse().unwrap();
    Builder::with_addresses(Version::Two | command, Protocol::Stream, (src, dst))
        .build()
        .unwrap()
}

fn v2_local() -> Vec<u8> {
    // LOCAL with the UNSPEC family and no addresses, as balancers send
    // for their own health checks.
    Builder::new(Version::Two | Command::Local, 0x00)
        .build()
        .unwrap()
}

async fn send(addr: SocketAddr, header: &[u8]) -> String {
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(REQUEST);
    raw(addr, &bytes, Duration::from_secs(3)).await
}

fn forwarded_for(backend: &Backend) -> Option<String> {
    backend.last().and_then(|r| r.header("x-forwarded-for"))
}

#[tokio::test]
async fn a_v1_header_gives_the_client_address() {
    let (backend, gw) = setup(|b| b).await;
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("203.0.113.7"));

    let resp = send(gw.addr, b"PROXY TCP6 2001:db8::7 ::1 5555 80\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("2001:db8::7"));
}

#[tokio::test]
async fn a_v1_unknown_header_keeps_the_peer_address() {
    let (backend, gw) = setup(|b| b).await;
    let resp = send(gw.addr, b"PROXY UNKNOWN\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn a_v2_header_gives_the_client_address_ipv4_and_ipv6() {
    let (backend, gw) = setup(|b| b).await;
    let resp = send(
        gw.addr,
        &v2(Command::Proxy, "203.0.113.7:5555", "127.0.0.1:80"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("203.0.113.7"));

    let resp = send(
        gw.addr,
        &v2(Command::Proxy, "[2001:db8::7]:5555", "[::1]:80"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("2001:db8::7"));
}

#[tokio::test]
async fn a_v2_header_with_tlvs_consumes_exactly_the_header() {
    let (backend, gw) = setup(|b| b).await;
    let src: SocketAddr = "203.0.113.8:5555".parse().unwrap();
    let dst: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let header =
        Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, (src, dst))
            .write_tlv(ppp::v2::Type::Authority, b"gw.example")
            .unwrap()
            .build()
            .unwrap();
    let resp = send(gw.addr, &header).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("203.0.113.8"));
    assert_eq!(backend.last().unwrap().path(), "/pub/x");
}

#[tokio::test]
async fn a_v2_local_header_keeps_the_peer_address() {
    let (backend, gw) = setup(|b| b).await;
    let resp = send(gw.addr, &v2_local()).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("127.0.0.1"));
    // LOCAL ignores the addresses even when some are sent.
    let resp = send(
        gw.addr,
        &v2(Command::Local, "203.0.113.7:5555", "127.0.0.1:80"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn http2_after_the_header_is_served() {
    let (backend, gw) = setup(|b| b).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 5555 80\r\n")
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/pub/h2", gw.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(forwarded_for(&backend).as_deref(), Some("203.0.113.9"));
}

#[tokio::test]
async fn a_connection_without_a_header_is_closed_unanswered() {
    let (backend, gw) = setup(|b| b).await;
    let resp = raw(gw.addr, REQUEST, Duration::from_secs(3)).await;
    assert_eq!(resp, "", "no HTTP answer");
    // A broken header is no better.
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 nonsense\r\n").await;
    assert_eq!(resp, "");
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\n").await;
    assert_eq!(resp, "", "a bare LF does not end a v1 header");
    let long = format!("PROXY TCP4 {}\r\n", "1".repeat(120));
    let resp = send(gw.addr, long.as_bytes()).await;
    assert_eq!(resp, "", "longer than 107 bytes");
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn a_peer_outside_trusted_proxies_is_closed() {
    let (backend, gw) = setup(|b| b.server("trusted_proxies = [\"10.0.0.0/8\"]")).await;
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await;
    assert_eq!(resp, "");
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn a_peer_inside_trusted_proxies_is_served() {
    let (backend, gw) = setup(|b| b.server("trusted_proxies = [\"127.0.0.0/8\"]")).await;
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(forwarded_for(&backend).as_deref(), Some("203.0.113.7"));
}

#[tokio::test]
async fn a_slow_header_is_closed_after_the_header_timeout() {
    let (backend, gw) = setup(|b| b.server("request_header_timeout = \"500ms\"")).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"PROXY TCP4 203.0.").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .expect("the gateway must close a silent connection");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed without an answer: {read:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert_eq!(backend.count(), 0);
}

#[tokio::test]
async fn without_proxy_protocol_a_header_is_not_read() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();
    let resp = get(gw.addr, "/pub/x", None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(forwarded_for(&backend).as_deref(), Some("127.0.0.1"));
    let resp = send(gw.addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
}
