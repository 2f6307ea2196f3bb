//! Logs: tracing setup and the access log (one event per request).
//!
//! Credential headers, cookies and bodies are never passed to a log event;
//! the access log carries the request id, method, route name, decision,
//! status, duration, subject, client address, how the grants were found,
//! the missing permissions of a 403 and the W3C trace id.

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderValue, Method};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::metrics::{CacheResult, DecisionLabel};

/// Installs the global subscriber: `RUST_LOG` if set, else `level`.
/// Does nothing if one is installed already (as in tests).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// One line of the access log.
pub struct AccessRecord<'a> {
    /// `X-Request-Id`.
    pub request_id: &'a HeaderValue,
    /// Request method.
    pub method: &'a Method,
    /// Matched route name; `None` when no route matched.
    pub route: Option<&'a str>,
    /// `allow`, `deny`, `unauthenticated`, `unavailable`, `bad_request`, `would_deny`.
    pub decision: DecisionLabel,
    /// Status sent to the client.
    pub status: u16,
    /// Time from arrival to response headers.
    pub elapsed: Duration,
    /// Resolved subject, if any.
    pub subject: Option<&'a str>,
    /// Client address: the peer, the address of its PROXY protocol header,
    /// or the one a trusted proxy put in `X-Forwarded-For` (README, "PROXY
    /// protocol and client addresses").
    pub client: IpAddr,
    /// How the grants were found; `None` when none were looked up.
    pub cache: Option<CacheResult>,
    /// On a 403, the requirements the caller lacks.
    pub missing: Option<&'a [String]>,
    /// The trace id of the request's W3C `traceparent`, if any.
    pub trace_id: Option<&'a str>,
}

/// Emits the access-log event for a request.
pub fn access(r: &AccessRecord<'_>) {
    tracing::info!(
        target: "permgate::access",
        request_id = r.request_id.to_str().unwrap_or("-"),
        method = r.method.as_str(),
        route = r.route.unwrap_or("-"),
        decision = r.decision.as_str(),
        status = r.status,
        duration_ms = r.elapsed.as_micros() as f64 / 1000.0,
        subject = r.subject.unwrap_or("-"),
        client = %r.client,
        cache = r.cache.map_or("none", CacheResult::as_str),
        missing = r.missing.map(|m| m.join(",")).as_deref().unwrap_or("-"),
        trace_id = r.trace_id.unwrap_or("-"),
        "request"
    );
}
