//! A recording upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request as the backend received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Request target exactly as received (origin-form: path and query).
    pub target: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Recorded {
    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// All values of header `name`, joined with ", ".
    pub fn header(&self, name: &str) -> Option<String> {
        let v: Vec<&str> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("?"))
            .collect();
        (!v.is_empty()).then(|| v.join(", "))
    }
}

/// What the backend answers.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::copy_from_slice(body.as_bytes()),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers after `d`.
    pub fn delayed(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A recording upstream on 127.0.0.1.
#[derive(Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Backend {
    /// A backend answering 200 `{"ok":true,"path":…}` to everything.
    pub async fn echo() -> Backend {
        Self::start(|r| {
            Reply::json(
                200,
                &serde_json::json!({"ok": true, "path": r.target}).to_string(),
            )
        })
        .await
    }

    /// A backend answering with `responder`.
    pub async fn start(responder: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let responder: Responder = Arc::new(responder);
        let l = Arc::clone(&log);
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let conns = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let log = Arc::clone(&l);
                let responder = Arc::clone(&responder);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let log = Arc::clone(&log);
                        let responder = Arc::clone(&responder);
                        async move { Ok::<_, Infallible>(answer(req, &log, &*responder).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Backend {
            addr,
            log,
            connections,
        }
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
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The last request received.
    pub fn last(&self) -> Option<Recorded> {
        self.log.lock().unwrap().last().cloned()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

/// An address on which nothing listens (bound, then closed).
pub async fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A request as the [`FaultyBackend`] received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Method, target, headers and the body bytes that arrived.
    pub request: Recorded,
    /// Whether the whole body announced by `Content-Length` arrived.
    pub body_complete: bool,
}

/// A raw HTTP/1.1 upstream that misbehaves on purpose, chosen by the first
/// path segment of each request (keep-alive otherwise):
///
/// * `/ok/…`: 200 with the request target as the body;
/// * `/big/…`: 200 with an 8 MiB body, written as the reader takes it;
/// * `/reset-head/…`: a TCP reset instead of an answer;
/// * `/reset/…`: announces 100000 body bytes, sends 1000, then resets;
/// * `/extra/…`: `Content-Length: 2` followed by more bytes than that (a
///   whole second response, in the same write); `/extra-late/…` sends the
///   extra response 20 ms after the first;
/// * `/early/…`: 400 before reading the request body, then a lingering
///   close (reads and drops the body); `/early-rst/…` closes at once
///   without reading it, which resets the connection;
/// * `/silent/…`: never answers (holds the connection until the peer
///   closes, at most 30 s).
///
/// It records every request head as it arrives, and the body it read.
#[derive(Clone)]
pub struct FaultyBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

/// Size of the `/big/…` body.
pub const BIG_BODY: usize = 8 << 20;

impl FaultyBackend {
    /// Starts listening on 127.0.0.1.
    pub async fn start() -> FaultyBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&log);
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let conns = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(serve_faults(stream, Arc::clone(&l)));
            }
        });
        FaultyBackend {
            addr,
            log,
            connections,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Requests received whose target starts with `prefix`.
    pub fn received_under(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.request.target.starts_with(prefix))
            .collect()
    }
}

async fn serve_faults(mut stream: tokio::net::TcpStream, log: Arc<Mutex<Vec<Received>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Bounded: at most this many requests per connection.
    for _ in 0..10_000 {
        // The head.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let mut start = lines.next().unwrap_or("").split(' ');
        let method = start.next().unwrap_or("").to_string();
        let target = start.next().unwrap_or("").to_string();
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some((k, v)) = line.split_once(':') {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.trim().as_bytes()),
                    http::HeaderValue::from_str(v.trim()),
                ) {
                    headers.append(k, v);
                }
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let index = {
            let mut log = log.lock().unwrap();
            log.push(Received {
                request: Recorded {
                    method,
                    target: target.clone(),
                    headers,
                    body: Bytes::new(),
                },
                body_complete: length == 0,
            });
            log.len() - 1
        };
        let fault = target.split('/').nth(1).unwrap_or("").to_string();
        match fault.as_str() {
            "reset-head" => {
                let _ = stream.set_zero_linger();
                return;
            }
            "early" | "early-rst" => {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\
                          content-length: 7\r\nconnection: close\r\n\r\nrefused",
                    )
                    .await;
                if fault == "early" {
                    // A lingering close: no more writes, the rest of the
                    // body is read and dropped, so no reset follows.
                    let _ = stream.shutdown().await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
                            .await;
                }
                return;
            }
            "silent" => {
                let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf))
                    .await;
                return;
            }
            _ => {}
        }
        // The body; on a cut connection, what arrived is recorded.
        while buf.len() < length {
            match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => {
                    log.lock().unwrap()[index].request.body = Bytes::from(buf);
                    return;
                }
            }
        }
        {
            let mut log = log.lock().unwrap();
            log[index].request.body = Bytes::copy_from_slice(&buf[..length]);
            log[index].body_complete = true;
        }
        buf.drain(..length);
        let written = match fault.as_str() {
            "big" => {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG_BODY}\r\n\r\n");
                let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
                let piece = vec![b'b'; 64 * 1024];
                for _ in 0..BIG_BODY / piece.len() {
                    if !ok {
                        break;
                    }
                    ok = tokio::time::timeout(Duration::from_secs(30), stream.write_all(&piece))
                        .await
                        .is_ok_and(|r| r.is_ok());
                }
                ok
            }
            "reset" => {
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n".to_vec();
                out.extend_from_slice(&[b'r'; 1000]);
                let _ = stream.write_all(&out).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = stream.set_zero_linger();
                return;
            }
            "extra-late" => {
                let first = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                let ok = stream.write_all(first).await.is_ok();
                tokio::time::sleep(Duration::from_millis(20)).await;
                ok && stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ngarbage")
                    .await
                    .is_ok()
            }
            "extra" => stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok\
                      HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ngarbage",
                )
                .await
                .is_ok(),
            _ => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{target}",
                    target.len()
                );
                stream.write_all(answer.as_bytes()).await.is_ok()
            }
        };
        if !written {
            return;
        }
    }
}

/// Records `req` in `log` and answers it as `responder` says (after the
/// reply's delay): the service of [`Backend`] and of the TLS backend.
pub async fn answer(
    req: Request<Incoming>,
    log: &Mutex<Vec<Recorded>>,
    responder: &(dyn Fn(&Recorded) -> Reply + Send + Sync),
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rec = Recorded {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        headers: parts.headers,
        body,
    };
    let reply = responder(&rec);
    log.lock().unwrap().push(rec);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::new(Full::new(reply.body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}
