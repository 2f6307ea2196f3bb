//! The request hot path: decide, then forward or answer.
//!
//! [`handle`] is the whole life of one request: it loads the snapshot once,
//! runs [`handle_inner`], turns a [`Refusal`] into its JSON answer, and writes
//! the access log. [`handle_inner`] walks the decision core (prepare, route,
//! resolve grants, authorize) and forwards only with a
//! [`Permit`](crate::decision::Permit).

mod body;
mod error;
mod forward;
mod headers;
mod real_ip;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::{HeaderValue, Request, Response, header};
use hyper::body::Incoming;

pub use body::{BodyTooLarge, ClientBodyError, RequestBody, ResponseBody, caused_by};
pub use error::{Refusal, refusal_response};
pub use headers::{append_forwarded_for, set_client_cert, strip_hop_by_hop};
pub use real_ip::{client_for_log, is_trusted};

use crate::decision::{self, Caller, Grants, Need, RequestHead};
use crate::gateway::{Snapshot, Worker};
use crate::grants::{Answer, Credentials};
use crate::metrics::{CacheResult, DecisionLabel, RequestRecord};
use crate::telemetry::AccessRecord;

/// The downstream peer of a connection: the client, or the load balancer
/// in front of it; with `proxy_protocol`, the client address of the PROXY
/// header.
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its IP, formatted once per connection for `X-Forwarded-For`.
    pub ip: HeaderValue,
    /// The credentials last seen on this connection, their cache key and
    /// cached answer.
    pub memo: crate::grants::CallerMemo,
    /// Whether the connection is TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
    /// The verified client certificate's SHA-256 (lower-case hex), with mTLS.
    pub client_cert_sha256: Option<HeaderValue>,
    /// Set once an answer went out with the request body left unread: the
    /// connection then closes, lingering while the body still arrives.
    body_left_unread: AtomicBool,
}

impl Peer {
    /// The peer at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            addr,
            ip,
            memo: crate::grants::CallerMemo::default(),
            tls: false,
            client_cert_sha256: None,
            body_left_unread: AtomicBool::new(false),
        }
    }

    /// Whether an answer on this connection left its request body unread.
    pub fn body_left_unread(&self) -> bool {
        self.body_left_unread.load(Ordering::Relaxed)
    }

    /// The same peer, over TLS, with its verified client certificate.
    pub fn with_tls(self, client_cert_sha256: Option<HeaderValue>) -> Self {
        Self {
            tls: true,
            client_cert_sha256,
            ..self
        }
    }
}

/// What the access log and the metrics record about a request besides its
/// status.
#[derive(Default)]
struct Outcome<'s> {
    route: Option<&'s str>,
    decision: Option<DecisionLabel>,
    subject: Option<Arc<Grants>>,
    cache: Option<CacheResult>,
}

/// Handles one request from `peer`.
pub async fn handle(
    worker: &Worker,
    peer: &Peer,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let _in_flight = worker.metrics.in_flight();
    let shared = &*worker.shared;
    let snapshot = shared.snapshot.load_full();
    let request_id = shared.request_ids.for_request(req.headers());
    let method = req.method().clone();
    // An HTTP/1 connection whose request body is left unread is closed
    // after the answer; a refusal says so, or a keep-alive client would
    // send its next request into the closing connection.
    let body_left =
        req.version() <= http::Version::HTTP_11 && !http_body::Body::is_end_stream(req.body());
    // Kept small across the await: only a trace id, and only when logged.
    let trace: Option<Box<str>> = shared
        .config
        .log
        .access_log
        .then(|| {
            req.headers()
                .get(&TRACEPARENT)
                .and_then(trace_id)
                .map(Box::from)
        })
        .flatten();
    // The client address the access log records, read before the headers
    // move into the forwarded request.
    let log_client = shared.config.log.access_log.then(|| {
        client_for_log(
            peer.addr.ip(),
            req.headers(),
            &shared.config.server.trusted_proxies,
        )
    });
    let mut outcome = Outcome::default();
    let (response, refusal) = match handle_inner(
        worker,
        &snapshot,
        peer,
        &request_id,
        req,
        started,
        &mut outcome,
    )
    .await
    {
        Ok(resp) => (resp, None),
        Err(refusal) => {
            outcome.decision.get_or_insert(refusal.label());
            let mut resp = refusal_response(&refusal, &request_id, &shared.config.auth.challenge);
            if body_left {
                peer.body_left_unread.store(true, Ordering::Relaxed);
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            (resp, Some(refusal))
        }
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let decision = outcome.decision.unwrap_or(DecisionLabel::Allow);
    worker.metrics.record(&RequestRecord {
        route: outcome.route,
        decision,
        status,
        at: started,
        elapsed,
    });
    if shared.config.log.access_log {
        crate::telemetry::access(&AccessRecord {
            request_id: &request_id,
            method: &method,
            route: outcome.route,
            decision,
            status,
            elapsed,
            subject: outcome.subject.as_deref().map(|g| &*g.subject),
            client: log_client.unwrap_or_else(|| peer.addr.ip()),
            cache: outcome.cache,
            missing: refusal.as_ref().and_then(Refusal::missing),
            trace_id: trace.as_deref(),
        });
    }
    response
}

/// The W3C trace context header.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// The trace id of a well-formed `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let b = s.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit))
    };
    let well_formed = b.len() >= 55
        && hex(0..2)
        && b[2] == b'-'
        && hex(3..35)
        && b[35] == b'-'
        && hex(36..52)
        && b[52] == b'-'
        && hex(53..55);
    let id = &s[3..35];
    (well_formed && id.bytes().any(|c| c != b'0')).then_some(id)
}

/// Decides, then forwards or returns the refusal.
async fn handle_inner<'s>(
    worker: &Worker,
    snapshot: &'s Snapshot,
    peer: &Peer,
    request_id: &HeaderValue,
    req: Request<Incoming>,
    started: Instant,
    outcome: &mut Outcome<'s>,
) -> Result<Response<ResponseBody>, Refusal> {
    let shared = &*worker.shared;
    let server = &shared.config.server;
    let table = &snapshot.routes;
    let (mut parts, body) = req.into_parts();
    if shared.tls.as_ref().is_some_and(|t| t.mtls()) {
        set_client_cert(&mut parts.headers, peer.client_cert_sha256.as_ref());
    }

    if header_bytes(&parts.headers) > server.max_header_bytes {
        return Err(Refusal::HeadersTooLarge);
    }
    // A Uri clone shares its bytes; the normalized path may borrow from it
    // while the request head is taken apart for forwarding.
    let uri = parts.uri.clone();
    let head = RequestHead {
        method: &parts.method,
        uri: &uri,
        version: parts.version,
        headers: &parts.headers,
    };
    let prepared = decision::prepare(table, &head).map_err(Refusal::BadRequest)?;
    // The declared `Content-Length`, as hyper parsed it (chunked bodies
    // have no upper bound here and are counted as they arrive).
    if http_body::Body::size_hint(&body)
        .upper()
        .is_some_and(|n| n > server.max_request_body)
    {
        return Err(Refusal::PayloadTooLarge);
    }

    let routed = prepared.route(table, &parts.method);
    outcome.route = routed.route_name();
    if outcome.route.is_none() {
        worker.metrics.unmatched(&parts.method, prepared.path());
    }

    let resolution = match routed.need() {
        Need::Nothing => None,
        Need::Authentication | Need::Permissions => {
            match Credentials::from_request(&parts.headers, &shared.config.auth.credential_headers)
            {
                None => None,
                Some(creds) => {
                    let (resolved, cache) = worker
                        .resolver
                        .resolve(
                            &creds,
                            request_id,
                            snapshot.grants.as_ref(),
                            &peer.memo,
                            started,
                        )
                        .await;
                    worker.metrics.cache(cache);
                    outcome.cache = Some(cache);
                    Some(resolved)
                }
            }
        }
    };
    let caller = match &resolution {
        None => Caller::Anonymous,
        Some(Ok(Answer::Granted(g))) => Caller::Known(g),
        Some(Ok(Answer::Rejected)) => Caller::Rejected,
        Some(Err(why)) => {
            tracing::warn!(request_id = ?request_id, error = %why, "grants could not be resolved");
            Caller::Unavailable
        }
    };
    if let Some(Ok(Answer::Granted(g))) = &resolution {
        outcome.subject = Some(Arc::clone(g));
    }

    let permit = routed
        .decide(caller)
        .into_permit()
        .map_err(|refused| Refusal::from_refused(refused, routed.route_name()))?;
    outcome.decision = Some(match permit.would_deny() {
        None => DecisionLabel::Allow,
        Some(would) => {
            tracing::info!(
                request_id = ?request_id,
                route = routed.route_name().unwrap_or("-"),
                would_deny = would.label(),
                reason = ?would,
                "audit mode: forwarding a request enforce mode would refuse"
            );
            DecisionLabel::WouldDeny
        }
    });

    let request = forward::UpstreamRequest {
        parts,
        body,
        peer,
        request_id,
    };
    forward::forward(worker, permit, request).await
}

/// Bytes of all header names and values, as counted against `max_header_bytes`.
fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}
