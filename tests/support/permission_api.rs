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
/// unknown or missing credentials get 401.
#[derive(Clone)]
pub struct PermissionApi {
    /// Where it listens.
    pub addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    state: Arc<Mutex<State>>,
}

impl PermissionApi {
    /// Starts an API with no known credentials.
    pub async fn start() -> PermissionApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(Mutex::new(State::default()));
        let (c, s) = (Arc::clone(&calls), Arc::clone(&state));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (calls, state) = (Arc::clone(&c), Arc::clone(&s));
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (calls, state) = (Arc::clone(&calls), Arc::clone(&state));
                        async move {
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
                            .unwrap_or_else(|| {
                                ApiReply::raw(401, r#"{"error":"unauthenticated"}"#)
                            });
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
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        PermissionApi { addr, calls, state }
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
