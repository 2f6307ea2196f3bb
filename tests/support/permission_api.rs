//! A scripted permission API.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct ApiReply {
    /// Status.
    pub status: u16,
    /// Body.
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl ApiReply {
    /// 200 with `{"subject", "permissions", "deny"}`.
    pub fn grants(subject: &str, allow: &[&str], deny: &[&str]) -> Self {
        Self::raw(
            200,
            &serde_json::json!({"subject": subject, "permissions": allow, "deny": deny})
                .to_string(),
        )
    }

    /// Any status and body.
    pub fn raw(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.into(),
            headers: vec![("content-type".into(), "application/json".into())],
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

#[derive(Default)]
struct State {
    by_authorization: HashMap<String, ApiReply>,
    seen: Vec<HeaderMap>,
}

/// A permission API on 127.0.0.1 that answers by the `Authorization` value;
/// unknown or missing credentials get 401. It can be stopped (its port
/// refuses connections and open ones are closed) and started again on the
/// same port.
#[derive(Clone)]
pub struct PermissionApi {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
    /// The accept loop, which owns every connection task.
    serving: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl PermissionApi {
    /// Starts an API with no known credentials.
    pub async fn start() -> PermissionApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = PermissionApi {
            addr: listener.local_addr().unwrap(),
            calls: Arc::new(AtomicUsize::new(0)),
            state: Arc::new(Mutex::new(State::default())),
            serving: Arc::new(Mutex::new(None)),
        };
        api.serve(listener);
        api
    }

    /// Stops listening and closes every open connection.
    pub async fn stop(&self) {
        let task = self.serving.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port (retrying for up to 5 s while the
    /// port is still held).
    pub async fn restart(&self) {
        self.stop().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("rebinding {}: {e}", self.addr);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let (c, s) = (Arc::clone(&self.calls), Arc::clone(&self.state));
        let task = tokio::spawn(async move {
            // Dropped with the accept loop: aborting it closes every connection.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                while connections.try_join_next().is_some() {}
                let (calls, state) = (Arc::clone(&c), Arc::clone(&s));
                connections.spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (calls, state) = (Arc::clone(&calls), Arc::clone(&state));
                        async move { Ok::<_, Infallible>(answer(req, &calls, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        *self.serving.lock().unwrap() = Some(task);
    }

    /// Answers `Authorization: Bearer {token}` with these grants.
    pub fn grant(&self, token: &str, allow: &[&str]) {
        self.set(
            &format!("Bearer {token}"),
            ApiReply::grants(token, allow, &[]),
        );
    }

    /// Answers `Authorization: {value}` with `reply`.
    pub fn set(&self, authorization: &str, reply: ApiReply) {
        self.state
            .lock()
            .unwrap()
            .by_authorization
            .insert(authorization.into(), reply);
    }

    /// The grants URL.
    pub fn url(&self) -> String {
        format!("http://{}/grants", self.addr)
    }

    /// Calls received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Headers of every call so far.
    pub fn seen(&self) -> Vec<HeaderMap> {
        self.state.lock().unwrap().seen.clone()
    }
}

/// The scripted answer to one call.
async fn answer(
    req: Request<Incoming>,
    calls: &AtomicUsize,
    state: &Mutex<State>,
) -> Response<Full<Bytes>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let authz = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let reply = {
        let mut st = state.lock().unwrap();
        st.seen.push(req.headers().clone());
        st.by_authorization.get(&authz).cloned()
    }
    .unwrap_or_else(|| ApiReply::raw(401, r#"{"error":"unauthenticated"}"#));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in reply.headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

/// A permission API that writes the same raw bytes to every call (a
/// truncated body, a head cut short…) and then closes the connection, or
/// stalls: the answers hyper would never produce.
pub struct RawPermissionApi {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl RawPermissionApi {
    /// Starts answering every request head with `bytes`, then closing.
    pub async fn start(bytes: &'static [u8]) -> RawPermissionApi {
        Self::serve(bytes, false).await
    }

    /// Starts answering every request head with `bytes`, then holding the
    /// connection open without a further byte (30 s at most).
    pub async fn stalling(bytes: &'static [u8]) -> RawPermissionApi {
        Self::serve(bytes, true).await
    }

    async fn serve(bytes: &'static [u8], hold: bool) -> RawPermissionApi {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let calls = Arc::clone(&c);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                            .await
                        {
                            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(bytes).await;
                    if hold {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawPermissionApi { addr, calls }
    }

    /// The grants URL.
    pub fn url(&self) -> String {
        format!("http://{}/grants", self.addr)
    }

    /// Calls received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}
