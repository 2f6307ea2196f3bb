//! Server limits (README, "Configuration" `[server]`): `max_request_body` for streamed
//! bodies, `max_header_bytes`, `request_header_timeout`, `max_connections`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::support::*;

const ROUTES: &str = r#"
default = "deny"

[[route]]
name = "public"
path = "/public/{*rest}"
public = true
"#;

/// Reads everything from `read` until EOF, an error, or `limit`; returns the
/// bytes and when the connection ended (`None` if it did not within `limit`).
fn reader(
    mut read: tokio::net::tcp::OwnedReadHalf,
    limit: Duration,
) -> JoinHandle<(Vec<u8>, Option<Instant>)> {
    tokio::spawn(async move {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match tokio::time::timeout_at(deadline.into(), read.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                Ok(_) => return (out, Some(Instant::now())),
                Err(_) => return (out, None),
            }
        }
    })
}

fn status_of(resp: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(resp.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// The body of the first response in `resp` (after the blank line).
fn body_of(resp: &[u8]) -> &[u8] {
    let i = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    &resp[i..]
}

/// Reads one response (Content-Length or chunked) from a keep-alive stream.
async fn read_response(s: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = status_of(&buf)?;
    let done = |b: &[u8]| -> bool {
        let body = &b[head_end..];
        if let Some(cl) = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
        {
            body.len() >= cl
        } else if head.contains("transfer-encoding: chunked") {
            body.ends_with(b"0\r\n\r\n")
        } else {
            true
        }
    };
    while !done(&buf) {
        let n = s.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some((status, buf[head_end..].to_vec()))
}

/// Sends a chunked POST in `chunks` chunks of `size` bytes, pausing between
/// them, while reading the answer concurrently (the gateway may answer and
/// close before the client is done). Returns what was read.
async fn chunked_upload(addr: SocketAddr, chunks: usize, size: usize) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let answer = reader(read, Duration::from_secs(10));
    let head = b"POST /public/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut ok = write.write_all(head).await.is_ok();
    let data = vec![b'x'; size];
    for _ in 0..chunks {
        if !ok {
            break;
        }
        let mut piece = format!("{size:x}\r\n").into_bytes();
        piece.extend_from_slice(&data);
        piece.extend_from_slice(b"\r\n");
        ok = write.write_all(&piece).await.is_ok();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if ok {
        let _ = write.write_all(b"0\r\n\r\n").await;
    }
    let (bytes, _) = answer.await.unwrap();
    drop(write);
    bytes
}

#[tokio::test]
async fn a_chunked_body_growing_past_max_request_body_is_cut_off() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("max_request_body = \"1KiB\"")
        .start();

    // Control: a chunked body of exactly the limit is forwarded whole.
    let answer = chunked_upload(gw.addr, 2, 512).await;
    assert_eq!(
        status_of(&answer),
        Some(200),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(backend.count(), 1);
    assert_eq!(backend.last().unwrap().body.len(), 1024);

    // 8 chunks of 512 bytes: past the limit after the third.
    let sent = 8 * 512;
    let answer = chunked_upload(gw.addr, 8, 512).await;
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), Some(413), "{text}");
    let json: serde_json::Value = serde_json::from_slice(body_of(&answer))
        .unwrap_or_else(|e| panic!("413 body is not JSON ({e}): {text}"));
    assert_eq!(json["code"], "payload_too_large");

    // The backend may have seen the start of the request, never all of it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after: Vec<Recorded> = backend.requests().split_off(1);
    assert!(after.len() <= 1, "{after:?}");
    for rec in &after {
        assert!(
            rec.body.len() < sent && rec.body.len() <= 1024,
            "the backend received {} of the {sent} bytes",
            rec.body.len()
        );
    }
}

#[tokio::test]
async fn header_blocks_over_max_header_bytes_get_431() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("max_header_bytes = \"2KiB\"")
        .start();

    let fits = "v".repeat(1000);
    let r = request(gw.addr, "GET", "/public/x", &[("x-big", &fits)], "").await;
    assert_eq!(r.status, 200, "a header block under the limit passes");
    assert_eq!(backend.count(), 1);

    // Moderately over: one big header, and many small ones.
    let big = "v".repeat(3000);
    let r = request(gw.addr, "GET", "/public/x", &[("x-big", &big)], "").await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["code"], "headers_too_large");
    assert!(r.header("x-request-id").is_some());
    let small = "v".repeat(60);
    let names: Vec<String> = (0..40).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), small.as_str())).collect();
    let r = request(gw.addr, "GET", "/public/x", &many, "").await;
    assert_eq!(r.status, 431);
    assert_eq!(r.json()["code"], "headers_too_large");

    // Far over (past what the HTTP layer buffers): still 431.
    let huge = format!(
        "GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {}\r\n\r\n",
        "v".repeat(200 * 1024)
    );
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let answer = reader(read, Duration::from_secs(5));
    let _ = write.write_all(huge.as_bytes()).await;
    let (bytes, _) = answer.await.unwrap();
    assert_eq!(
        status_of(&bytes),
        Some(431),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(backend.count(), 1, "nothing over the limit is forwarded");
}

#[tokio::test]
async fn a_client_stalling_in_the_request_head_is_disconnected() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("request_header_timeout = \"300ms\"")
        .start();
    assert_eq!(get(gw.addr, "/public/x", None).await.status, 200);

    // Half a request line, then nothing.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let started = Instant::now();
    let answer = reader(read, Duration::from_secs(5));
    write.write_all(b"GET /public/x HT").await.unwrap();
    let (_, closed) = answer.await.unwrap();
    let closed = closed.expect("the connection is closed within 5 s");
    let after = closed - started;
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_secs(3),
        "closed after {after:?}"
    );

    // A client dripping one header byte every 100 ms is cut off as well.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let started = Instant::now();
    let answer = reader(read, Duration::from_secs(6));
    let drip = b"GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in drip.iter().take(50) {
        if answer.is_finished() || write.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, closed) = answer.await.unwrap();
    let after = closed.expect("the dripping connection is closed") - started;
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
    assert_eq!(backend.count(), 1, "neither stalled request was forwarded");
}

#[tokio::test]
async fn max_connections_holds_back_the_next_connection_until_one_closes() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("max_connections = 2")
        .start();
    let req = |n: u32| format!("GET /public/{n} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let limit = Duration::from_secs(5);

    // Two keep-alive connections, each served once and kept open.
    let mut first = TcpStream::connect(gw.addr).await.unwrap();
    first.write_all(req(1).as_bytes()).await.unwrap();
    let (status, _) = tokio::time::timeout(limit, read_response(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    let mut second = TcpStream::connect(gw.addr).await.unwrap();
    second.write_all(req(2).as_bytes()).await.unwrap();
    let (status, _) = tokio::time::timeout(limit, read_response(&mut second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);

    // A third connection is not served while both are open.
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(req(3).as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(700), third.peek(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served: {early:?}");
    assert_eq!(backend.count(), 2);

    // The first still works (keep-alive), the third still waits.
    first.write_all(req(4).as_bytes()).await.unwrap();
    let (status, _) = tokio::time::timeout(limit, read_response(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);

    // Once one closes, the third is served.
    drop(first);
    let (status, _) = tokio::time::timeout(limit, read_response(&mut third))
        .await
        .expect("the third connection is served once one closes")
        .expect("a response");
    assert_eq!(status, 200);
    assert_eq!(backend.last().unwrap().target, "/public/3");
    drop(second);
}

/// Sends `req` on `s` and reads one whole answer (its body by
/// `Content-Length`): the status and the lower-cased head; `None` when the
/// connection closes first. Waits 5 s at most.
async fn exchange(s: &mut TcpStream, req: &[u8]) -> Option<(u16, String)> {
    s.write_all(req).await.ok()?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut read = async |buf: &mut Vec<u8>| -> Option<()> {
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut tmp))
            .await
            .expect("an answer or a close within 5 s")
            .ok()?;
        (n > 0).then(|| buf.extend_from_slice(&tmp[..n]))
    };
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read(&mut buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        read(&mut buf).await?;
    }
    Some((status_of(&buf)?, head))
}

#[tokio::test]
async fn a_refusal_that_leaves_the_body_unread_says_the_connection_closes() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();
    let next = b"GET /public/a HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    // Control: a refused request without a body keeps the connection.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let refused = b"GET /private/1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let (status, head) = exchange(&mut s, refused).await.expect("an answer");
    assert_eq!(status, 403);
    assert!(!head.contains("connection: close"), "{head}");
    assert_eq!(exchange(&mut s, next).await.map(|a| a.0), Some(200));

    // Refused while most of its body is still to come: a connection the
    // gateway then closes must be announced in the answer, or a keep-alive
    // client sends its next request into a connection that is going away.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let mut refused =
        b"PUT /private/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 300000\r\n\r\n".to_vec();
    refused.extend_from_slice(&[b'x'; 1000]);
    let (status, head) = exchange(&mut s, &refused).await.expect("an answer");
    assert_eq!(status, 403);
    if !head.contains("connection: close") {
        let mut rest = vec![b'x'; 299_000];
        rest.extend_from_slice(next);
        assert_eq!(
            exchange(&mut s, &rest).await.map(|a| a.0),
            Some(200),
            "the connection closed after an answer that did not say so: {head}"
        );
    }
}

#[tokio::test]
async fn an_upload_refused_before_its_body_was_read_still_gets_its_answer() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();
    const BODY: usize = 4 << 20;
    let mut answered = Vec::new();
    for i in 0..10 {
        // Like many simple clients, this one sends its whole body before it
        // reads the answer. The gateway refuses at the head and closes; its
        // close must not reset the connection under the answer (lingering
        // close), or the client finds a reset instead of the 403.
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "PUT /private/{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {BODY}\r\n\r\n"
        );
        let sent = async {
            s.write_all(head.as_bytes()).await?;
            let chunk = [b'x'; 64 * 1024];
            for _ in 0..BODY / chunk.len() {
                s.write_all(&chunk).await?;
            }
            std::io::Result::Ok(())
        };
        // Many clients (hyper's among them) give up on the answer once a
        // write fails, so the upload must not meet a reset either.
        let sent = tokio::time::timeout(Duration::from_secs(10), sent).await;
        assert!(
            matches!(sent, Ok(Ok(()))),
            "upload {i}: the body was not taken: {sent:?}"
        );
        let (read, _write) = s.into_split();
        let (got, ended) = reader(read, Duration::from_secs(10)).await.unwrap();
        assert!(ended.is_some(), "upload {i}: the connection stayed open");
        answered.push(status_of(&got));
    }
    assert!(answered.iter().all(|s| *s == Some(403)), "{answered:?}");
    assert!(backend.requests().is_empty(), "nothing was forwarded");
}
