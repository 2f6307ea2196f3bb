//! Client faults (README, "Reliability"): uploads and downloads abandoned
//! halfway, clients dripping their headers or their body, and a flood of
//! connections past `max_connections`. The gateway runs as a process of
//! its own, so its file descriptors can be counted: after each fault they
//! settle back to what they were.
//!
//! Covered elsewhere (`limits.rs`): one client stalling or dripping in the
//! request head is disconnected at `request_header_timeout`; a third
//! connection waits for one of two under `max_connections = 2`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::faults_backend::{RawAnswer, innocent_client, replace_file};
use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/{*rest}"
public = true
"#;

/// Another table with the same answers, for reloads during the faults.
const ROUTES_AGAIN: &str = r#"
[[route]]
name = "everything"
path = "/{*rest}"
public = true
"#;

/// A gateway process with one worker in front of a faulty backend, warmed
/// up (one pooled upstream connection), and its descriptor count then.
async fn setup(server: &[&str], upstream_timeout: &str) -> (FaultyBackend, GatewayProcess, usize) {
    let backend = FaultyBackend::start().await;
    let mut b = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("workers = 1")
        .upstream(&format!("timeout = \"{upstream_timeout}\""))
        .routes("watch = false");
    for line in server {
        b = b.server(line);
    }
    let gw = b.spawn_process();
    innocent_client(gw.addr, "warm".into(), 3).await;
    let fds = gw.open_fds();
    (backend, gw, fds)
}

/// Waits (10 s at most) for the gateway's descriptors to come back to at
/// most `baseline + slack` (`slack`: upstream connections the pool may
/// legitimately keep for clients served concurrently).
async fn fds_settle(gw: &GatewayProcess, baseline: usize, slack: usize) {
    let settled = eventually(Duration::from_secs(10), async || {
        gw.open_fds() <= baseline + slack
    })
    .await;
    assert!(
        settled,
        "descriptors: {} now, {baseline} before",
        gw.open_fds()
    );
}

/// Reloads the routes file `n` times, alternating two equivalent tables.
fn reloading(gw: &GatewayProcess, n: usize) -> tokio::task::JoinHandle<()> {
    let (admin, dir) = (gw.admin, gw.dir.clone());
    tokio::spawn(async move {
        for i in 0..n {
            replace_file(&dir, "routes.toml", [ROUTES_AGAIN, ROUTES][i % 2]);
            let r = request(admin, "POST", "/admin/reload", &[], "").await;
            assert_eq!(r.status, 200, "reload {i}: {:?}", r.body);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

#[tokio::test]
async fn a_client_abandoning_its_upload_aborts_the_upstream_request() {
    let (backend, gw, fds) = setup(&[], "10s").await;
    let reloads = reloading(&gw, 10);
    let innocent = tokio::spawn(innocent_client(gw.addr, "a".into(), 30));
    for i in 0..10 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let path = format!("/ok/upload-{i}");
        let head = format!("POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-length: 100000\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b'u'; 1000]).await.unwrap();
        // Once the upload has reached the backend, the client goes away.
        assert!(
            eventually(Duration::from_secs(5), async || {
                !backend.received_under(&path).is_empty()
            })
            .await,
            "{path} reached the backend"
        );
        drop(s);
    }
    innocent.await.unwrap();
    reloads.await.unwrap();
    // Each upstream request was cut short: the backend saw its connection
    // end before the body did, and never a complete upload.
    let ended = eventually(Duration::from_secs(5), async || {
        backend
            .received_under("/ok/upload-")
            .iter()
            .all(|r| !r.body_complete && r.request.body.len() < 100_000)
    })
    .await;
    assert!(ended);
    assert_eq!(backend.received_under("/ok/upload-").len(), 10);
    assert_eq!(backend.received_under("/ok/a-").len(), 30);
    innocent_client(gw.addr, "after".into(), 3).await;
    fds_settle(&gw, fds, 1).await;
}

#[tokio::test]
async fn a_client_abandoning_its_download_frees_the_upstream_connection() {
    let (backend, gw, fds) = setup(&[], "10s").await;
    let reloads = reloading(&gw, 10);
    let innocent = tokio::spawn(innocent_client(gw.addr, "a".into(), 30));
    for i in 0..10 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let head = format!("GET /big/{i} HTTP/1.1\r\nhost: gw\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while got.len() < 64 * 1024 {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                other => panic!("download {i} stopped early: {other:?}"),
            }
        }
        assert!(got.starts_with(b"HTTP/1.1 200"));
        drop(s);
    }
    innocent.await.unwrap();
    reloads.await.unwrap();
    assert_eq!(backend.received_under("/big/").len(), 10);
    // A half-read upstream connection is never pooled: the next requests
    // would read the rest of the download as their answer.
    innocent_client(gw.addr, "after".into(), 10).await;
    fds_settle(&gw, fds, 1).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_at_send_timeout() {
    let (backend, gw, fds) = setup(&["send_timeout = \"1s\""], "10s").await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /big/stalled HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("the answer starts")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The client keeps its socket open and reads nothing more. Once the
    // kernel buffers are full, the gateway's writes stall; after
    // send_timeout it closes both the client connection and the half-read
    // upstream one, while other clients are served.
    innocent_client(gw.addr, "during".into(), 10).await;
    fds_settle(&gw, fds, 0).await;
    // What the client then reads ends short of the 8 MiB body.
    let mut total = n;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("the connection stayed open after send_timeout"),
        }
    }
    assert!(
        total < BIG_BODY,
        "the client got the whole body: {total} bytes"
    );
    assert_eq!(backend.received_under("/big/").len(), 1);
    innocent_client(gw.addr, "after".into(), 3).await;
}

/// Opens a connection and writes `head` one byte every 100 ms (at most
/// `max_drip` bytes of it); returns whether the gateway closed the
/// connection within 10 s, and what it wrote.
async fn drip(addr: SocketAddr, head: String, max_drip: usize) -> (bool, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = s.split();
    let dripping = async {
        for b in head.bytes().take(max_drip) {
            if write.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::select! {
        _ = dripping => false,
        closed = async {
            loop {
                match tokio::time::timeout_at(deadline.into(), read.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                    Ok(_) => return true,
                    Err(_) => return false,
                }
            }
        } => closed,
    };
    (closed, out)
}

#[tokio::test]
async fn clients_dripping_their_headers_are_cut_off_while_others_are_served() {
    let (backend, gw, fds) = setup(&["request_header_timeout = \"1s\""], "10s").await;
    let reloads = reloading(&gw, 10);
    let slow: Vec<_> = (0..20)
        .map(|i| {
            let head = format!(
                "GET /ok/slow-{i} HTTP/1.1\r\nhost: gw\r\nx-padding: {}\r\n\r\n",
                "p".repeat(200)
            );
            tokio::spawn(drip(gw.addr, head, 100))
        })
        .collect();
    innocent_client(gw.addr, "a".into(), 30).await;
    for s in slow {
        let (closed, _) = s.await.unwrap();
        assert!(closed, "a dripping client is disconnected");
    }
    reloads.await.unwrap();
    assert!(backend.received_under("/ok/slow-").is_empty());
    assert_eq!(backend.received_under("/ok/a-").len(), 30);
    fds_settle(&gw, fds, 1).await;
}

#[tokio::test]
async fn clients_dripping_their_body_get_504_and_are_cut_off() {
    let (backend, gw, fds) = setup(&[], "1s").await;
    let reloads = reloading(&gw, 10);
    let slow: Vec<_> = (0..10)
        .map(|i| {
            let head =
                format!("POST /ok/drip-{i} HTTP/1.1\r\nhost: gw\r\ncontent-length: 1000\r\n\r\n");
            let addr = gw.addr;
            tokio::spawn(async move {
                // The head at once, then the body a byte every 100 ms
                // (it would take 100 s).
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(head.as_bytes()).await.unwrap();
                let (mut read, mut write) = s.into_split();
                let writer = tokio::spawn(async move {
                    for _ in 0..1000 {
                        if write.write_all(b"d").await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                let mut answer = Vec::new();
                let closed =
                    tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut answer))
                        .await
                        .is_ok();
                let still_dripping = !writer.is_finished();
                writer.abort();
                (answer, closed && still_dripping)
            })
        })
        .collect();
    innocent_client(gw.addr, "a".into(), 30).await;
    for s in slow {
        let (got, cut_off) = s.await.unwrap();
        let text = String::from_utf8_lossy(&got);
        let answer = RawAnswer::parse(&text).unwrap_or_else(|| panic!("no answer: {text}"));
        assert_eq!(answer.status, 504, "{text}");
        assert!(
            cut_off,
            "the connection is closed while the client still drips"
        );
    }
    reloads.await.unwrap();
    let drips = backend.received_under("/ok/drip-");
    assert_eq!(drips.len(), 10, "each upload was started upstream");
    assert!(
        drips.iter().all(|r| !r.body_complete),
        "and never completed"
    );
    assert_eq!(backend.received_under("/ok/a-").len(), 30);
    fds_settle(&gw, fds, 1).await;
}

#[tokio::test]
async fn a_connection_flood_past_max_connections_waits_and_loses_nothing() {
    // The backend closes every connection, so nothing is pooled and the
    // descriptor count must come back exactly.
    let backend = Backend::start(|r| {
        Reply::json(200, &format!("\"{}\"", r.target))
            .header("connection", "close")
            .delayed(Duration::from_millis(50))
    })
    .await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("max_connections = 8")
        .routes("watch = false")
        .spawn_process();
    assert_eq!(get(gw.addr, "/warm", None).await.status, 200);
    let fds = gw.open_fds();
    let reloads = reloading(&gw, 10);
    let flood: Vec<_> = (0..64)
        .map(|i| {
            let addr = gw.addr;
            tokio::spawn(async move {
                let path = format!("/flood/{i}");
                let text = super::faults_backend::get_raw(addr, &path, None).await;
                let answer = RawAnswer::parse(&text).unwrap_or_else(|| panic!("{path}: {text}"));
                assert_eq!(answer.status, 200, "{path}: {text}");
                assert_eq!(answer.body, format!("\"{path}\""));
            })
        })
        .collect();
    // While they are served, the gateway holds at most 8 client and 8
    // upstream connections, and a few descriptors of the reloads (an admin
    // connection, files being read).
    let mut most = 0;
    for _ in 0..2000 {
        if flood.iter().all(|f| f.is_finished()) {
            break;
        }
        most = most.max(gw.open_fds());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for f in flood {
        f.await.unwrap();
    }
    reloads.await.unwrap();
    assert!(most <= fds + 8 + 8 + 3, "{most} descriptors, {fds} before");
    let mut paths: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .filter(|t| t.starts_with("/flood/"))
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(
        paths.len(),
        64,
        "each flooding request reached the backend once"
    );
    assert_eq!(backend.count(), 65);
    fds_settle(&gw, fds, 0).await;
}

/// The HTTP/2 preface and an empty SETTINGS frame.
const H2_OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// A HEADERS frame on stream 1 whose header block never ends (no
/// END_HEADERS, and no CONTINUATION follows): `:method: GET`.
const H2_HEADERS_UNFINISHED: &[u8] = b"\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82";

/// Opens an HTTP/2 connection, writes `frames` after the opening, says on
/// `served` once the gateway has answered with its settings (it holds a
/// slot), then stays silent; whether the gateway closed it within 10 s.
async fn silent_h2(
    addr: SocketAddr,
    frames: &'static [u8],
    served: tokio::sync::mpsc::Sender<()>,
) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(H2_OPENING).await.unwrap();
    s.write_all(frames).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let _ = served.try_send(());
            }
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn silent_http2_connections_are_cut_off_and_free_their_slots() {
    let (backend, gw, fds) = setup(
        &["request_header_timeout = \"1s\"", "max_connections = 6"],
        "10s",
    )
    .await;
    // Every slot is taken by a silent HTTP/2 connection: after its opening,
    // or in the middle of a header block.
    let (served, mut holding) = tokio::sync::mpsc::channel(6);
    let silent: Vec<_> = (0..6)
        .map(|i| {
            let frames = if i % 2 == 0 {
                &b""[..]
            } else {
                H2_HEADERS_UNFINISHED
            };
            tokio::spawn(silent_h2(gw.addr, frames, served.clone()))
        })
        .collect();
    for _ in 0..6 {
        tokio::time::timeout(Duration::from_secs(5), holding.recv())
            .await
            .expect("each silent connection is accepted");
    }
    // A client arriving now is served once they are cut off.
    innocent_client(gw.addr, "a".into(), 5).await;
    let r = request_h2(gw.addr, "GET", "/ok/h2", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "/ok/h2");
    for s in silent {
        assert!(s.await.unwrap(), "a silent HTTP/2 connection is closed");
    }
    assert_eq!(backend.received_under("/ok/a-").len(), 5);
    fds_settle(&gw, fds, 1).await;
}

#[tokio::test]
async fn an_http2_request_outlasting_the_header_timeout_is_not_cut_off() {
    let backend = Backend::start(|r| {
        Reply::json(200, &format!("\"{}\"", r.target)).delayed(Duration::from_millis(1500))
    })
    .await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("request_header_timeout = \"500ms\"")
        .upstream("timeout = \"5s\"")
        .start();
    let r = request_h2(gw.addr, "GET", "/slow", &[], "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, "\"/slow\"");
    assert_eq!(backend.count(), 1);
}

/// A request body fed by a channel: `Ok` chunks are sent, an `Err` makes
/// the stream fail (HTTP/2: the client resets the stream).
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|next| next.map(|r| r.map(http_body::Frame::data)))
    }
}

#[tokio::test]
async fn http2_streams_reset_mid_upload_and_mid_download_leave_the_connection_usable() {
    use http_body_util::BodyExt;
    let (backend, gw, fds) = setup(&[], "10s").await;
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let uri = |path: &str| format!("http://{}{path}", gw.addr);
    for i in 0..5 {
        // An upload reset after its first 1000 bytes reached the backend.
        let path = format!("/ok/h2-upload-{i}");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let req = http::Request::post(uri(&path))
            .header("content-length", "100000")
            .body(ChannelBody(rx))
            .unwrap();
        let answer = tokio::spawn(send.send_request(req));
        tx.send(Ok(bytes::Bytes::from(vec![b'u'; 1000])))
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(5), async || {
                !backend.received_under(&path).is_empty()
            })
            .await,
            "{path} reached the backend"
        );
        let _ = tx.send(Err(std::io::Error::other("abandoned"))).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;

        // A download reset after its first bytes.
        let resp = tokio::time::timeout(
            Duration::from_secs(5),
            send.send_request(
                http::Request::get(uri(&format!("/big/h2-{i}")))
                    .body(ChannelBody(tokio::sync::mpsc::channel(1).1))
                    .unwrap(),
            ),
        )
        .await
        .expect("download answered")
        .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let first = body.frame().await.expect("a first frame").unwrap();
        assert!(first.data_ref().is_some_and(|d| !d.is_empty()));
        drop(body);

        // The same connection serves the next request.
        let path = format!("/ok/h2-after-{i}");
        let resp = send
            .send_request(
                http::Request::get(uri(&path))
                    .body(ChannelBody(tokio::sync::mpsc::channel(1).1))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), path);
    }
    drop(send);
    // Each upload was cut short upstream.
    assert!(
        eventually(Duration::from_secs(5), async || {
            let ups = backend.received_under("/ok/h2-upload-");
            ups.len() == 5 && ups.iter().all(|r| !r.body_complete)
        })
        .await,
        "{:?}",
        backend
            .received_under("/ok/h2-upload-")
            .iter()
            .map(|r| (r.body_complete, r.request.body.len()))
            .collect::<Vec<_>>()
    );
    assert_eq!(backend.received_under("/big/h2-").len(), 5);
    innocent_client(gw.addr, "after".into(), 10).await;
    fds_settle(&gw, fds, 1).await;
}
