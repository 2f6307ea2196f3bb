//! Forwarding a permitted request to its upstream (README, "Requests and
//! responses").

use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use super::body::{BodyTooLarge, ClientBodyError, RequestBody, ResponseBody, caused_by};
use super::error::Refusal;
use super::headers::{append_forwarded_for, strip_hop_by_hop};
use crate::common::{X_FORWARDED_HOST, X_FORWARDED_PROTO, X_REQUEST_ID};
use crate::config::{HostHeader, ServerConfig};
use crate::decision::{Permit, same_header_name};
use crate::gateway::Worker;
use crate::transport::TransportError;

/// A permitted request as the client sent it, ready to be rewritten for
/// the upstream. Where it goes, its path and its subject come from the
/// [`Permit`] alone.
pub struct UpstreamRequest<'a> {
    /// The client's request head.
    pub parts: Parts,
    /// The client's body.
    pub body: Incoming,
    /// The downstream peer.
    pub peer: &'a super::Peer,
    /// The request id.
    pub request_id: &'a HeaderValue,
}

/// Sends the request where its [`Permit`] says, with the permit's path and
/// subject: there is no way to forward without one.
pub async fn forward(
    worker: &Worker,
    permit: Permit<'_, '_>,
    req: UpstreamRequest<'_>,
) -> Result<Response<ResponseBody>, Refusal> {
    let upstream = &worker.upstreams[permit.upstream()];
    let shared = &*worker.shared;
    let UpstreamRequest {
        parts,
        body,
        peer,
        request_id,
    } = req;
    let Parts {
        method,
        uri,
        version,
        mut headers,
        ..
    } = parts;

    let target = upstream_target(&uri, permit.path()).ok_or(Refusal::BadRequest(
        crate::decision::BadRequest::Path(crate::path::PathRejection::NotOriginForm),
    ))?;
    // The host the client addressed: the URI authority (HTTP/2, absolute
    // form) wins over the Host header.
    let authority = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());

    strip_hop_by_hop(&mut headers);
    if version == Version::HTTP_2 {
        join_cookies(&mut headers);
    }
    let auth = &shared.config.auth;
    set_subject(&mut headers, &auth.subject_header, permit.subject_header());
    if !auth.forward_credentials {
        for name in &auth.credential_headers {
            headers.remove(name);
        }
    }
    let client_host = authority
        .clone()
        .or_else(|| headers.get(header::HOST).cloned());
    set_forwarded(
        &mut headers,
        &shared.config.server,
        peer,
        client_host.as_ref(),
    );
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    match (upstream.config.host_header, authority) {
        (HostHeader::Preserve, Some(h)) => {
            headers.insert(header::HOST, h);
        }
        (HostHeader::Preserve, None) if client_host.is_some() => {} // already there
        _ => {
            headers.insert(header::HOST, upstream.config.origin.host.clone());
        }
    }

    let mut out = Request::new(RequestBody::new(
        body,
        shared.config.server.max_request_body,
    ));
    *out.method_mut() = method;
    *out.uri_mut() = target;
    *out.headers_mut() = headers;

    let sent = Instant::now();
    let answer = upstream.pool.send(out, sent, upstream.config.timeout).await;
    worker.metrics.upstream(sent.elapsed());
    match answer {
        Ok(resp) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
            // No upgrade is ever forwarded (`Upgrade` is hop-by-hop), so the
            // client must not believe a tunnel exists; the connection is in
            // an unknown state and is not reused.
            tracing::warn!(request_id = ?request_id, upstream = %upstream.config.name, "upstream switched protocols without an upgrade request");
            resp.into_body().close();
            Err(Refusal::UpstreamUnavailable)
        }
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, ResponseBody::Upstream(body)))
        }
        Err(TransportError::Timeout) => Err(Refusal::UpstreamTimeout),
        Err(TransportError::Http(e)) if caused_by::<BodyTooLarge>(&e) => {
            Err(Refusal::PayloadTooLarge)
        }
        Err(TransportError::Http(e)) if caused_by::<ClientBodyError>(&e) => {
            Err(Refusal::BadRequestBody)
        }
        Err(e) => {
            tracing::warn!(request_id = ?request_id, upstream = %upstream.config.name, error = %e, "upstream failed");
            Err(Refusal::UpstreamUnavailable)
        }
    }
}

/// The origin-form target sent upstream: the matched path and the client's
/// query, byte for byte.
fn upstream_target(uri: &Uri, path: &str) -> Option<Uri> {
    if let Some(pq) = uri.path_and_query() {
        if pq.path() == path {
            return Some(Uri::from(pq.clone()));
        }
    }
    let mut s = String::with_capacity(path.len() + uri.query().map_or(0, |q| q.len() + 1));
    s.push_str(path);
    if let Some(q) = uri.query() {
        s.push('?');
        s.push_str(q);
    }
    Uri::from_maybe_shared(Bytes::from(s)).ok()
}

/// Sets `subject_header` to the resolved subject, or removes it, and removes
/// every header that a CGI-style backend would read as it (the same name
/// once `_` is read as `-`).
fn set_subject(headers: &mut HeaderMap, name: &HeaderName, subject: Option<&HeaderValue>) {
    let is_spelling =
        |n: &HeaderName| n.as_str().contains('_') && same_header_name(n.as_str(), name.as_str());
    if headers.keys().any(is_spelling) {
        let spellings: Vec<HeaderName> =
            headers.keys().filter(|n| is_spelling(n)).cloned().collect();
        for n in spellings {
            headers.remove(n);
        }
    }
    match subject {
        // `insert` replaces every client-sent copy.
        Some(v) => {
            headers.insert(name.clone(), v.clone());
        }
        None => {
            headers.remove(name);
        }
    }
}

/// `X-Forwarded-For` gets the client appended. `X-Forwarded-Proto` and
/// `X-Forwarded-Host` are set, unless a trusted proxy already set them.
/// One hashed lookup per header.
fn set_forwarded(
    headers: &mut HeaderMap,
    server: &ServerConfig,
    peer: &super::Peer,
    host: Option<&HeaderValue>,
) {
    use http::header::Entry;
    append_forwarded_for(headers, &peer.ip);
    let trusted = || super::is_trusted(&server.trusted_proxies, peer.addr.ip());
    let proto = HeaderValue::from_static(if peer.tls { "https" } else { "http" });
    match headers.entry(&X_FORWARDED_PROTO) {
        Entry::Vacant(v) => {
            v.insert(proto);
        }
        Entry::Occupied(mut o) => {
            if !trusted() {
                o.insert(proto);
            }
        }
    }
    match headers.entry(&X_FORWARDED_HOST) {
        Entry::Vacant(v) => {
            if let Some(h) = host {
                v.insert(h.clone());
            }
        }
        Entry::Occupied(mut o) => {
            if !trusted() {
                match host {
                    Some(h) => {
                        o.insert(h.clone());
                    }
                    None => {
                        o.remove_entry_mult();
                    }
                }
            }
        }
    }
}

/// HTTP/2 may split `Cookie` into several fields; HTTP/1.1 wants one.
fn join_cookies(headers: &mut HeaderMap) {
    let mut values = headers.get_all(header::COOKIE).iter();
    if let (Some(_), Some(_)) = (values.next(), values.next()) {
        let joined: Vec<u8> = headers
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
            .join(&b"; "[..]);
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            headers.insert(header::COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_reuses_the_client_uri_when_the_path_is_unchanged() {
        let uri: Uri = "/a/b?x=%20&y".parse().unwrap();
        let t = upstream_target(&uri, "/a/b").unwrap();
        assert_eq!(t.to_string(), "/a/b?x=%20&y");
        let t = upstream_target(&uri, "/a/c").unwrap();
        assert_eq!(t.to_string(), "/a/c?x=%20&y");
        let abs: Uri = "http://example.com/a//b?q=1".parse().unwrap();
        assert_eq!(
            upstream_target(&abs, "/a/b").unwrap().to_string(),
            "/a/b?q=1"
        );
    }

    proptest::proptest! {
        #[test]
        fn the_target_sent_upstream_is_the_matched_path_and_the_query(
            raw in "(/[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,6}){1,5}",
            query in proptest::option::of("[a-zA-Z0-9%/?=&+._~-]{0,12}"),
        ) {
            let Ok(path) = crate::path::normalize(&raw, &crate::path::NormalizeOptions::default()) else {
                return Ok(());
            };
            let target = match &query {
                Some(q) => format!("{raw}?{q}"),
                None => raw.clone(),
            };
            let Ok(uri) = target.parse::<Uri>() else { return Ok(()) };
            let sent = upstream_target(&uri, &path).expect("a normalized path forms a URI");
            proptest::prop_assert_eq!(sent.path(), path.as_ref());
            proptest::prop_assert_eq!(sent.query(), uri.query(), "the query byte for byte");
        }
    }

    #[test]
    fn cookies_are_joined() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        join_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
    }
}
