//! Client addresses behind a load balancer (README, "PROXY protocol and
//! client addresses"): the access log's `client` with a PROXY header and
//! with a trusted `X-Forwarded-For`, and a real haproxy sending
//! `send-proxy-v2` that takes the gateway out of rotation when it drains.
//!
//! A test binary of its own: it installs a global subscriber. Every
//! connection goes to 127.0.0.0/8.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use support::*;
use tokio::net::TcpSocket;

const ROUTES: &str = r#"
[[route]]
name = "public"
path = "/pub/{*rest}"
public = true
"#;

/// The `client` of the access event of request `id`, once logged.
async fn logged_client(capture: &logs::Capture, id: &str) -> String {
    let mut found = None;
    let seen = eventually(Duration::from_secs(3), async || {
        found = capture
            .text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["target"] == "permgate::access" && e["fields"]["request_id"] == id)
            .map(|e| e["fields"]["client"].as_str().unwrap_or("").to_string());
        found.is_some()
    })
    .await;
    assert!(seen, "no access event for {id}");
    found.unwrap_or_default()
}

#[tokio::test]
async fn the_access_log_client_is_the_proxy_header_address() {
    let capture = logs::capture();
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("proxy_protocol = true")
        .start();
    let resp = raw(
        gw.addr,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n\
          GET /pub/x HTTP/1.1\r\nHost: gw\r\nX-Request-Id: pp-v1\r\nConnection: close\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(logged_client(&capture, "pp-v1").await, "203.0.113.7");
}

#[tokio::test]
async fn from_a_trusted_peer_the_log_client_is_the_rightmost_untrusted_address() {
    let capture = logs::capture();
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("trusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\"]")
        .start();
    let xff = ("x-forwarded-for", "192.0.2.1, 198.51.100.7, 10.0.0.1");
    let resp = request(
        gw.addr,
        "GET",
        "/pub/x",
        &[xff, ("x-request-id", "xff-trusted")],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(logged_client(&capture, "xff-trusted").await, "198.51.100.7");
    // Upstream still gets the peer appended.
    assert_eq!(
        backend.last().unwrap().header("x-forwarded-for").as_deref(),
        Some("192.0.2.1, 198.51.100.7, 10.0.0.1, 127.0.0.1")
    );

    // From an untrusted peer the header is not believed for logging.
    let gw2 = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("trusted_proxies = [\"10.0.0.0/8\"]")
        .start();
    request(
        gw2.addr,
        "GET",
        "/pub/x",
        &[xff, ("x-request-id", "xff-untrusted")],
        "",
    )
    .await;
    assert_eq!(logged_client(&capture, "xff-untrusted").await, "127.0.0.1");
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// haproxy in the foreground, killed by PID when dropped.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One GET through `to`, from the source address `from` (another loopback
/// address, so the client is told apart from haproxy's own 127.0.0.1).
async fn get_from(from: &str, to: SocketAddr, path: &str, id: &str) -> Option<u16> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{from}:0").parse().ok()?).ok()?;
    let stream = socket.connect(to).await.ok()?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "lb")
        .header("x-request-id", id)
        .body(Empty::<Bytes>::new())
        .ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Some(status)
}

#[tokio::test]
async fn haproxy_send_proxy_v2_carries_the_client_and_drains_the_gateway_out() {
    let Some(haproxy) = tool("haproxy") else {
        return;
    };
    let capture = logs::capture();
    let backend = Backend::start(|r| {
        let reply = Reply::json(200, "{}");
        if r.path() == "/pub/slow" {
            reply.delayed(Duration::from_millis(1500))
        } else {
            reply
        }
    })
    .await;
    let mut gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("proxy_protocol = true")
        .server("trusted_proxies = [\"127.0.0.1/32\"]")
        .server("drain_delay = \"2s\"")
        .server("shutdown_timeout = \"5s\"")
        .start();
    let front = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 100\n\
             defaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n\
             frontend fe\n  bind 127.0.0.1:{front}\n  default_backend be\n\
             backend be\n  option httpchk GET /readyz\n\
             \x20 server gw {gw} send-proxy-v2 check addr 127.0.0.1 port {admin} inter 200ms fall 1 rise 1\n",
            gw = gw.addr,
            admin = gw.admin.port(),
        ),
    )
    .unwrap();
    let _lb = Haproxy(
        Command::new(haproxy)
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts"),
    );
    let front: SocketAddr = format!("127.0.0.1:{front}").parse().unwrap();

    // Through haproxy: the gateway sees the client's address (127.0.0.2),
    // not haproxy's (127.0.0.1).
    let up = eventually(Duration::from_secs(5), async || {
        get_from("127.0.0.2", front, "/pub/up", "lb-up").await == Some(200)
    })
    .await;
    assert!(up, "haproxy forwards to the gateway");
    assert_eq!(
        backend.last().unwrap().header("x-forwarded-for").as_deref(),
        Some("127.0.0.2")
    );
    assert_eq!(logged_client(&capture, "lb-up").await, "127.0.0.2");

    // A slow request in flight, then the drain.
    let slow = tokio::spawn(get_from("127.0.0.2", front, "/pub/slow", "lb-slow"));
    let in_flight = eventually(Duration::from_secs(3), async || {
        backend.requests().iter().any(|r| r.path() == "/pub/slow")
    })
    .await;
    assert!(in_flight, "the slow request reached the backend");
    gw.request_stop();
    let stopped_at = Instant::now();
    // haproxy's check sees /readyz 503 and takes the server out: new
    // requests get haproxy's own 503, well within the drain delay.
    let out = eventually(Duration::from_millis(1500), async || {
        get_from("127.0.0.2", front, "/pub/after", "lb-after").await == Some(503)
    })
    .await;
    assert!(
        out,
        "haproxy did not take the draining gateway out within 1.5 s"
    );
    // Out of rotation while the gateway itself still serves (drain_delay).
    assert_eq!(
        get_from("127.0.0.2", front, "/pub/gone", "lb-gone").await,
        Some(503)
    );
    assert!(
        !backend.requests().iter().any(|r| r.path() == "/pub/gone"),
        "haproxy's 503, not the gateway's"
    );
    // The gateway itself still serves until drain_delay (2 s) ends.
    if stopped_at.elapsed() < Duration::from_millis(1700) {
        let direct = raw(
            gw.addr,
            b"PROXY TCP4 127.0.0.3 127.0.0.1 5555 80\r\n\
          GET /pub/direct HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
            Duration::from_secs(3),
        )
        .await;
        assert!(
            direct.starts_with("HTTP/1.1 200"),
            "the gateway still serves during drain_delay: {direct}"
        );
    }
    assert_eq!(
        slow.await.unwrap(),
        Some(200),
        "the in-flight request completes"
    );
}
