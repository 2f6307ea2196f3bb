//! The admin listener.
//!
//! `GET /healthz`, `GET /readyz`, `GET /metrics`, and under `/admin/`
//! (which needs `Authorization: Bearer <token>` when `admin.token_sha256`
//! is set): `GET /admin/` (the dashboard), `GET /admin/routes`,
//! `POST /admin/reload`, `POST /admin/cache/purge` (`?subject=NAME` for one
//! subject; with a shared cache, fleet-wide), `GET /admin/explain`,
//! `GET /admin/coverage`. `GET /admin` redirects to `/admin/`.
//!
//! Connections get the main listener's `request_header_timeout` and are
//! capped at [`MAX_CONNECTIONS`]; nothing here waits for a reload's compile.

mod dashboard;
mod observe;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::common::constant_time_eq;
use crate::decision::{ExplainRequest, Grants};
use crate::gateway::Shared;
use crate::reload::{ReloadOutcome, Reloader, Trigger};

/// Admin connections served at once. Probes, a metrics scraper and an
/// operator need a handful; beyond this, new connections wait in the listen
/// backlog until one ends, so a flood cannot take file descriptors and
/// memory from the proxy.
pub const MAX_CONNECTIONS: usize = 64;

/// Serves the admin endpoints until `stop` turns true.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.config.server.request_header_timeout);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
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
        let http = http.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(route(&shared, req).await) }
            });
            // Ends when the client closes, fails, or is silent for the
            // header timeout; then the slot is free.
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
            drop(permit);
        });
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
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
    if path == "/admin" {
        // Outside `/admin/`, so unguarded: it only names the dashboard.
        let mut r = text(StatusCode::PERMANENT_REDIRECT, "");
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("admin/"));
        return r;
    }
    let allowed: &str = match path {
        "/healthz" | "/readyz" | "/metrics" | "/admin/" | "/admin/routes" | "/admin/explain"
        | "/admin/coverage" => "GET",
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
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(observe::metrics_text(shared))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            r
        }
        "/admin/" => dashboard::response(),
        "/admin/coverage" => json_response(StatusCode::OK, &observe::coverage(shared)),
        "/admin/routes" => json_response(StatusCode::OK, &routes_status(shared)),
        "/admin/explain" => explain(shared, req.uri().query().unwrap_or("")),
        "/admin/reload" => {
            let reloader = Reloader::new(Arc::clone(shared));
            reload_answer(reloader.reload_off_thread(Trigger::Admin).await)
        }
        _ => purge(shared, req.uri().query().unwrap_or("")).await,
    }
}

/// `POST /admin/cache/purge[?subject=NAME]`: purges this instance's cache,
/// then, with a shared cache, Redis and every other instance. 200 when all
/// of it worked; 502 when only this instance was purged.
async fn purge(shared: &Shared, query: &str) -> Response<Full<Bytes>> {
    let mut subject = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "subject" {
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            subject = Some(v);
        }
    }
    if subject.as_deref() == Some("") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "subject must not be empty"}),
        );
    }
    match &subject {
        Some(s) => shared.cache.purge_subject(s),
        None => shared.cache.purge(),
    }
    let Some(fleet) = shared.cache.shared() else {
        return json_response(
            StatusCode::OK,
            &json!({"purged": true, "subject": subject, "shared": null}),
        );
    };
    match fleet.purge(subject.as_deref()).await {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({"purged": true, "subject": subject, "shared": {"purged": true}}),
        ),
        Err(e) => json_response(
            StatusCode::BAD_GATEWAY,
            &json!({"purged": true, "subject": subject,
                    "shared": {"purged": false, "error": e.to_string()}}),
        ),
    }
}

/// `POST /admin/reload`: 200 with what serves now, or 422 with the error
/// (the old table keeps serving); both say whether a restart is needed.
fn reload_answer(outcome: ReloadOutcome) -> Response<Full<Bytes>> {
    let restart_needed = outcome.restart_needed;
    match outcome.result {
        Ok(s) => json_response(
            StatusCode::OK,
            &json!({
                "routes": s.routes,
                "sha256": s.sha256,
                "loadedAt": timestamp(s.loaded_at),
                "changed": s.changed,
                "restartNeeded": restart_needed,
            }),
        ),
        Err(e) => json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"error": e.to_string(), "restartNeeded": restart_needed}),
        ),
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
        "tls": shared.tls.as_ref().map(|t| t.status(timestamp)),
    })
}

/// `GET /admin/explain?method=M&path=P[&grant=G…][&deny=D…][&anonymous][&header=N:V…]`:
/// what `permgate explain` says, for the loaded table, as JSON.
fn explain(shared: &Shared, query: &str) -> Response<Full<Bytes>> {
    let mut method = None;
    let mut path = None;
    let (mut grants, mut denies, mut headers, mut anonymous) =
        (Vec::new(), Vec::new(), Vec::new(), false);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        match k {
            "method" => method = Some(v),
            "path" => path = Some(v),
            "grant" => grants.push(v),
            "deny" => denies.push(v),
            "header" => headers.push(v),
            "anonymous" => anonymous = true,
            _ => {}
        }
    }
    let bad = |m: String| json_response(StatusCode::BAD_REQUEST, &json!({"error": m}));
    let (Some(method), Some(path)) = (method, path) else {
        return bad("method and path are required".into());
    };
    let request =
        match ExplainRequest::parse(&method, &path, headers.iter().map(|h| h.split_once(':'))) {
            Ok(r) => r,
            Err(e) => return bad(e),
        };
    let grants = match (anonymous, Grants::from_lists("explain", &grants, &denies)) {
        (true, _) => None,
        (false, Ok(g)) => Some(g),
        (false, Err(e)) => return bad(e),
    };
    let snapshot = shared.snapshot.load();
    let e = crate::decision::explain(&snapshot.routes, &request, grants.as_ref());
    let body = json!({
        "method": request.method.as_str(),
        "path": path,
        "normalized": e.path.as_ref().ok(),
        "rejected": e.path.as_ref().err().map(|b| b.reason()),
        "matchedAs": e.routing_path,
        "route": e.route.map(|r| json!({
            "name": &*r.name, "line": r.line, "path": &*r.path,
            "methods": r.methods_label(),
        })),
        "params": e.params.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "default": e.default.as_str(),
        "mode": e.mode.as_str(),
        "requirements": e.requirements.iter().map(|r| json!({
            "permission": r.concrete, "anyOf": r.any_of, "check": r.check,
        })).collect::<Vec<_>>(),
        "decision": e.word(),
        "forwarded": e.forwarded_to.is_some(),
        "upstream": e.forwarded_to,
        "wouldDeny": e.forwarded_to.is_some() && e.word() != "allow",
        "status": e.status(),
        "missingPermissions": e.missing(),
    });
    json_response(StatusCode::OK, &body)
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
