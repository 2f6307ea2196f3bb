//! The recording backend and the permission API, on 127.0.0.1:0, on a
//! thread of their own, each with a fault switch the schedule flips.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

use crate::audit::Received;
use crate::table::CALLERS;

/// A fault of the backend or the permission API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Answers at once.
    None = 0,
    /// Answers after longer than the gateway waits.
    Slow = 1,
    /// Backend: closes the connection without an answer. Permission API:
    /// answers 500.
    Failing = 2,
    /// Permission API only: stops listening and drops its connections.
    Stopped = 3,
}

impl Fault {
    fn from_u8(v: u8) -> Fault {
        match v {
            1 => Fault::Slow,
            2 => Fault::Failing,
            3 => Fault::Stopped,
            _ => Fault::None,
        }
    }
}

/// The shared state of both servers.
pub struct Upstreams {
    /// The backend's address.
    pub backend: SocketAddr,
    /// The permission API's address.
    pub api: SocketAddr,
    backend_fault: AtomicU8,
    api_fault: AtomicU8,
    /// Which spelling of the grants the permission API answers with.
    grants_variant: AtomicUsize,
    api_calls: AtomicUsize,
    received: Mutex<Vec<Received>>,
    start: Instant,
}

/// How long a slow server waits: longer than the gateway's timeouts
/// (upstream 1 s, permission API 500 ms).
const SLOW: Duration = Duration::from_millis(1500);

impl Upstreams {
    /// Starts both servers on a thread of their own.
    pub fn start(start: Instant) -> Arc<Upstreams> {
        let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the backend");
        let api = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the permission API");
        let up = Arc::new(Upstreams {
            backend: backend.local_addr().expect("address"),
            api: api.local_addr().expect("address"),
            backend_fault: AtomicU8::new(0),
            api_fault: AtomicU8::new(0),
            grants_variant: AtomicUsize::new(0),
            api_calls: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
            start,
        });
        let u = Arc::clone(&up);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                backend.set_nonblocking(true).expect("nonblocking");
                api.set_nonblocking(true).expect("nonblocking");
                let backend = TcpListener::from_std(backend).expect("listener");
                let api = TcpListener::from_std(api).expect("listener");
                tokio::spawn(serve_backend(Arc::clone(&u), backend));
                serve_api(u, api).await;
            });
        });
        up
    }

    /// Sets the backend's fault.
    pub fn set_backend_fault(&self, f: Fault) {
        self.backend_fault.store(f as u8, Ordering::SeqCst);
    }

    /// Sets the permission API's fault.
    pub fn set_api_fault(&self, f: Fault) {
        self.api_fault.store(f as u8, Ordering::SeqCst);
    }

    /// Switches the grants spelling the permission API answers with.
    pub fn set_grants_variant(&self, v: usize) {
        self.grants_variant.store(v % 2, Ordering::SeqCst);
    }

    /// Calls the permission API received.
    pub fn api_calls(&self) -> usize {
        self.api_calls.load(Ordering::SeqCst)
    }

    /// Takes what the backend received.
    pub fn take_received(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("lock"))
    }
}

async fn serve_backend(up: Arc<Upstreams>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let up = Arc::clone(&up);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let up = Arc::clone(&up);
                async move { backend_answer(&up, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Records the request, then answers it as the fault says.
async fn backend_answer(
    up: &Upstreams,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body_len = body.collect().await.ok().map(|b| b.to_bytes().len());
    let text = |name: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
    };
    let rec = Received {
        at: up.start.elapsed().as_secs_f64(),
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        authorization: text("authorization").into_iter().next(),
        subjects: text("x-authenticated-subject"),
        body_len,
        request_id: text("x-request-id").into_iter().next(),
        declared_len: text("x-soak-body-len").first().and_then(|v| v.parse().ok()),
    };
    up.received.lock().expect("lock").push(rec);
    match Fault::from_u8(up.backend_fault.load(Ordering::SeqCst)) {
        Fault::Failing => return Err(std::io::Error::other("reset by the fault schedule")),
        Fault::Slow => tokio::time::sleep(SLOW).await,
        _ => {}
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Serves until stopped by the fault switch, then waits and listens again
/// on the same port.
async fn serve_api(up: Arc<Upstreams>, first: TcpListener) {
    let mut listener = Some(first);
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => match rebind(up.api).await {
                Some(l) => l,
                None => {
                    eprintln!("soak: cannot listen on {} again", up.api);
                    std::process::exit(1);
                }
            },
        };
        let mut conns = JoinSet::new();
        loop {
            if Fault::from_u8(up.api_fault.load(Ordering::SeqCst)) == Fault::Stopped {
                break;
            }
            tokio::select! {
                accepted = l.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let up = Arc::clone(&up);
                        conns.spawn(async move {
                            let svc = service_fn(move |req: Request<Incoming>| {
                                let up = Arc::clone(&up);
                                async move { Ok::<_, Infallible>(api_answer(&up, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        });
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            while conns.try_join_next().is_some() {}
        }
        drop(l);
        conns.abort_all();
        while Fault::from_u8(up.api_fault.load(Ordering::SeqCst)) == Fault::Stopped {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Listens on `addr` again (the port may take a moment to be free).
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().ok()?;
        let _ = socket.set_reuseaddr(true);
        if socket.bind(addr).is_ok()
            && let Ok(l) = socket.listen(1024)
        {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn api_answer(up: &Upstreams, req: Request<Incoming>) -> Response<Full<Bytes>> {
    up.api_calls.fetch_add(1, Ordering::SeqCst);
    let fault = Fault::from_u8(up.api_fault.load(Ordering::SeqCst));
    if fault == Fault::Slow {
        tokio::time::sleep(SLOW).await;
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (status, body) = match (fault, CALLERS.iter().find(|c| c.name == token)) {
        (Fault::Failing, _) => (500, r#"{"error":"internal"}"#.to_string()),
        (_, None) => (401, r#"{"error":"unauthenticated"}"#.to_string()),
        (_, Some(c)) => {
            let (allow, deny) = c.variants[up.grants_variant.load(Ordering::SeqCst)];
            let body = serde_json::json!({"subject": c.name, "permissions": allow, "deny": deny});
            (200, body.to_string())
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).expect("status");
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
