//! The example credential API behind `permgate demo`.
//!
//! An in-memory upstream with two credential APIs, modelled on public
//! documentation:
//!
//! - Genesys Cloud style, under [`GENESYS_PREFIX`]: list, types, get,
//!   create, replace and delete; errors are Genesys error bodies
//!   (`{"status","code","message","contextId","details","errors"}`).
//! - FlexDeploy Credential API v2 style, under [`FLEXDEPLOY_PREFIX`]: get by
//!   id, search by query, create, replace and patch; errors are
//!   `{"message": "..."}`.
//!
//! It does no authentication (the gateway in front does), never panics on
//! input, and answers every bad request with a 4xx JSON body. It uses no
//! gateway internals, so it behaves like any upstream the gateway proxies.

mod flexdeploy;
mod genesys;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use flexdeploy::PREFIX as FLEXDEPLOY_PREFIX;
pub use genesys::PREFIX as GENESYS_PREFIX;

/// Largest request body [`ExampleApi::serve`] reads; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long [`ExampleApi::serve`] lets open connections finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The example credential API: in-memory, seeded with a few credentials.
///
/// Each API keeps its state behind its own mutex; state lives as long as
/// the value and is never written anywhere.
pub struct ExampleApi {
    genesys: Mutex<genesys::Store>,
    flexdeploy: Mutex<flexdeploy::Store>,
}

impl ExampleApi {
    /// A new API seeded with example data: three Genesys credentials (two
    /// `basicAuth`, one `userDefinedOAuth`) and three FlexDeploy credentials
    /// (11004 "GET Example Name", 11104 and 11204).
    pub fn new() -> Arc<Self> {
        Arc::new(ExampleApi {
            genesys: Mutex::new(genesys::Store::seeded()),
            flexdeploy: Mutex::new(flexdeploy::Store::seeded()),
        })
    }

    /// Answers one request. `path` is the raw (not percent-decoded) request
    /// path, `query` the raw query string without `?`. Pure apart from the
    /// in-memory state; never panics.
    pub fn handle(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Response<Bytes> {
        if let Some(rest) = under(path, GENESYS_PREFIX) {
            return lock(&self.genesys).handle(method, rest, query, body);
        }
        if let Some(rest) = under(path, FLEXDEPLOY_PREFIX) {
            return lock(&self.flexdeploy).handle(method, rest, query, body);
        }
        json_response(
            StatusCode::NOT_FOUND,
            &json!({ "message": format!("no such endpoint: {method} {path}") }),
        )
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes, then stops
    /// accepting, closes idle connections, lets requests in flight finish
    /// (for at most a few seconds) and returns.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(
                            Arc::clone(&self),
                            stream,
                            stop_rx.clone(),
                        ));
                    }
                    // Out of file descriptors and the like: back off.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drained).await.is_err() {
            connections.abort_all();
        }
    }
}

async fn serve_connection(
    api: Arc<ExampleApi>,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let service = service_fn(move |req| {
        let api = Arc::clone(&api);
        async move { Ok::<_, Infallible>(answer(&api, req).await.map(Full::new)) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Reads the body (bounded by [`MAX_BODY_BYTES`]) and calls `handle`.
async fn answer(api: &ExampleApi, req: Request<Incoming>) -> Response<Bytes> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let (status, message) = if e.is::<http_body_util::LengthLimitError>() {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            } else {
                (StatusCode::BAD_REQUEST, "could not read the request body")
            };
            return json_response(status, &json!({ "message": message }));
        }
    };
    api.handle(&parts.method, parts.uri.path(), parts.uri.query(), &body)
}

/// The part of `path` after `prefix` when `path` is `prefix` or below it.
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// What a path below an API prefix names.
enum Target<'a> {
    /// The prefix itself.
    Collection,
    /// `prefix/{segment}`, segment non-empty.
    Item(&'a str),
    /// Anything deeper, or an empty segment.
    Unknown,
}

fn target(rest: &str) -> Target<'_> {
    match rest.strip_prefix('/') {
        None => Target::Collection,
        Some(seg) if !seg.is_empty() && !seg.contains('/') => Target::Item(seg),
        Some(_) => Target::Unknown,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A JSON response with `content-type: application/json`.
fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Adds an `Allow` header to a 405 answer.
fn with_allow(mut response: Response<Bytes>, allow: &'static str) -> Response<Bytes> {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Query pairs, percent-decoded (`+` is a space), in order.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Now as `2019-12-17T16:16:21Z`.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
