//! The admin listener (SPEC §9).
//!
//! `GET /healthz`, `GET /readyz`, and under `/admin/` (which needs
//! `Authorization: Bearer <token>` when `admin.token_sha256` is set):
//! `GET /admin/routes`, `POST /admin/reload`, `POST /admin/cache/purge`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::gateway::Shared;
use crate::grants::constant_time_eq;
use crate::reload::{Reloader, Trigger};

/// Serves the admin endpoints until `stop` turns true.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route(&shared, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path.starts_with("/admin/") && !authorized(shared, req.headers()) {
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "admin token required"}),
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"permgate-admin\""),
        );
        return r;
    }
    let allowed: &str = match path {
        "/healthz" | "/readyz" | "/admin/routes" => "GET",
        "/admin/reload" | "/admin/cache/purge" => "POST",
        _ => return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    };
    if req.method().as_str() != allowed && !(allowed == "GET" && req.method() == Method::HEAD) {
        let mut r = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method not allowed"}),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
        return r;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if shared.draining.load(Ordering::SeqCst) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/readyz" => text(StatusCode::OK, "ready\n"),
        "/admin/routes" => json_response(StatusCode::OK, &routes_status(shared)),
        "/admin/reload" => match Reloader::new(Arc::clone(shared)).reload(Trigger::Admin) {
            Ok(s) => json_response(
                StatusCode::OK,
                &json!({"routes": s.routes, "sha256": s.sha256, "loadedAt": timestamp(s.loaded_at), "changed": s.changed}),
            ),
            Err(e) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"error": e.to_string()}),
            ),
        },
        _ => {
            shared.cache.purge();
            json_response(StatusCode::OK, &json!({"purged": true}))
        }
    }
}

/// `GET /admin/routes`: what is serving and how the last reload went.
fn routes_status(shared: &Shared) -> Value {
    let snapshot = shared.snapshot.load();
    let source = &snapshot.routes.source;
    let state = shared.reload.lock().unwrap_or_else(|p| p.into_inner());
    let last_error = state.last_failure.as_ref().map(|f| {
        json!({
            "message": f.error.to_string(),
            "file": f.error.file.display().to_string(),
            "line": f.error.line(),
            "at": timestamp(f.at),
        })
    });
    json!({
        "file": source.file.display().to_string(),
        "routes": snapshot.routes.routes().len(),
        "sha256": source.sha256,
        "loadedAt": timestamp(source.loaded_at),
        "lastReloadError": last_error,
        "restartNeeded": state.restart_needed(),
        "reloads": {"succeeded": state.succeeded, "failed": state.failed},
    })
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(expected) = &shared.config.admin.token_sha256 else {
        return true;
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    constant_time_eq(&Sha256::digest(token.trim().as_bytes()), expected)
}

fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}
