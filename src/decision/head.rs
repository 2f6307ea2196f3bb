//! Step 1: requests that are refused with 400 before any route is looked
//! at, and the one path that is matched and forwarded.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, Method, Uri, Version, header};

use crate::path::{PathRejection, normalize, routing_path};
use crate::routes::RouteTable;

/// Headers that make some frameworks run a different method than the one
/// that was authorized.
const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Headers that make some servers (IIS URL Rewrite, several PHP frameworks)
/// route a request to another path or method after the gateway decided.
const REROUTING_HEADERS: [&str; 3] = ["x-original-url", "x-rewrite-url", "x-original-method"];

/// What is wrong with the host a request addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostProblem {
    /// An HTTP/1.1 request without `Host`.
    Missing,
    /// More than one `Host` header.
    Repeated,
    /// A `Host` (or target authority) that is not `host[:port]`.
    Invalid,
    /// An absolute-form target with `user:password@`.
    Userinfo,
}

/// Why a request is answered with 400 before any grant lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// The path is ambiguous or malformed.
    Path(PathRejection),
    /// A method-override header is present (any `_` spelling).
    MethodOverride(&'static str),
    /// A re-routing header is present (any `_` spelling).
    Rerouting(&'static str),
    /// The method has lower-case letters (some backends would fold it).
    MethodCase,
    /// The host the request addresses is missing, repeated or malformed.
    Host(HostProblem),
    /// The request target is not a valid URI (only `explain` sees this:
    /// the HTTP parser refuses such targets before the gateway does).
    Target,
}

impl BadRequest {
    /// A short reason for the answer and the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Path(p) => p.reason(),
            Self::MethodOverride(_) => "method-override headers are not accepted",
            Self::Rerouting(_) => "re-routing headers are not accepted",
            Self::MethodCase => "method names must be upper case",
            Self::Host(HostProblem::Missing) => "an HTTP/1.1 request needs a Host header",
            Self::Host(HostProblem::Repeated) => "more than one Host header",
            Self::Host(HostProblem::Invalid) => "Host is not a valid host[:port]",
            Self::Host(HostProblem::Userinfo) => "user information in the request target",
            Self::Target => "request target is not a valid URI",
        }
    }
}

/// The parts of a request the decision reads. The path borrows from `uri`
/// alone, so the caller may take the rest of the request apart afterwards.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'h, 'p> {
    /// The method.
    pub method: &'h Method,
    /// The target as received (origin form, absolute form, or with an
    /// HTTP/2 `:authority`).
    pub uri: &'p Uri,
    /// The protocol version.
    pub version: Version,
    /// The header fields.
    pub headers: &'h HeaderMap,
}

/// A request that passed step 1: the normalized path, which is what is
/// matched and forwarded.
#[derive(Debug)]
pub struct Prepared<'p> {
    path: Cow<'p, str>,
    /// The path routes are matched on, when it differs (`;` parameters).
    routing: Option<Box<str>>,
}

impl Prepared<'_> {
    /// The normalized path: the only path sent upstream.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path routes are matched on: the normalized path, or with
    /// `allow_semicolon` that path without its `;` parameters.
    pub fn routing_path(&self) -> &str {
        self.routing.as_deref().unwrap_or(&self.path)
    }
}

/// Step 1: rejects ambiguous requests and normalizes the path.
pub fn prepare<'p>(
    table: &RouteTable,
    head: &RequestHead<'_, 'p>,
) -> Result<Prepared<'p>, BadRequest> {
    let host = scan_headers(head.headers)?;
    check_host(head, host)?;
    if head.method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(BadRequest::MethodCase);
    }
    let path = normalize(head.uri.path(), &table.normalize).map_err(BadRequest::Path)?;
    let routing = match routing_path(&path, &table.normalize) {
        Cow::Borrowed(_) => None,
        Cow::Owned(r) => Some(r.into_boxed_str()),
    };
    Ok(Prepared { path, routing })
}

/// Whether two header names are the same once `_` is read as `-` (ASCII
/// case ignored): CGI-style servers (Rack, PHP-FPM, older gunicorn, …) map
/// both spellings to the same variable.
pub fn same_header_name(a: &str, b: &str) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// One pass over the header fields: override and re-routing headers are
/// refused, and the `Host` field is returned (a second one is refused).
fn scan_headers(headers: &HeaderMap) -> Result<Option<&HeaderValue>, BadRequest> {
    let mut host = None;
    for (name, value) in headers {
        if name == header::HOST {
            if host.replace(value).is_some() {
                return Err(BadRequest::Host(HostProblem::Repeated));
            }
            continue;
        }
        let n = name.as_str();
        // Every such header starts with `x` and has one of these lengths.
        if !matches!(n.len(), 13 | 14 | 17 | 22) || !n.starts_with('x') {
            continue;
        }
        if let Some(h) = METHOD_OVERRIDE_HEADERS
            .into_iter()
            .find(|h| same_header_name(n, h))
        {
            return Err(BadRequest::MethodOverride(h));
        }
        if let Some(h) = REROUTING_HEADERS
            .into_iter()
            .find(|h| same_header_name(n, h))
        {
            return Err(BadRequest::Rerouting(h));
        }
    }
    Ok(host)
}

/// `Host` and the target's authority.
fn check_host(head: &RequestHead<'_, '_>, host: Option<&HeaderValue>) -> Result<(), BadRequest> {
    let bad = |p| Err(BadRequest::Host(p));
    if let Some(authority) = head.uri.authority() {
        if authority.as_str().contains('@') {
            return bad(HostProblem::Userinfo);
        }
        if !is_host_and_port(authority.as_str().as_bytes()) {
            return bad(HostProblem::Invalid);
        }
    }
    match host {
        Some(h) if !is_host_and_port(h.as_bytes()) => bad(HostProblem::Invalid),
        None if head.version == Version::HTTP_11 => bad(HostProblem::Missing),
        _ => Ok(()),
    }
}

/// Whether `b` is `host[:port]`: a name of letters, digits, `-`, `.`, `_`
/// and `~`, or a bracketed IPv6 literal, and an optional port of 1 to 5
/// digits. No user information, path, percent-encoding, spaces or commas.
fn is_host_and_port(b: &[u8]) -> bool {
    let (host_ok, rest) = if let Some(inner) = b.strip_prefix(b"[") {
        match inner.iter().position(|&c| c == b']') {
            Some(end) => (
                end > 0
                    && inner[..end]
                        .iter()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, b':' | b'.')),
                &inner[end + 1..],
            ),
            None => return false,
        }
    } else {
        let end = b.iter().position(|&c| c == b':').unwrap_or(b.len());
        (
            end > 0
                && b[..end]
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')),
            &b[end..],
        )
    };
    let port_ok = match rest.strip_prefix(b":") {
        None => rest.is_empty(),
        Some(port) => (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit),
    };
    host_ok && port_ok
}
