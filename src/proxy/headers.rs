//! Header rewriting between client and upstream (README, "Requests and
//! responses").

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::common::{HOP_BY_HOP, X_FORWARDED_FOR, is_hop_by_hop};

/// Replaces every client-sent `X-Client-Cert-Sha256` (also spelled with
/// `_`, as CGI-style backends read both the same) with the verified client
/// certificate's value, or removes them when there is none (README, "TLS and
/// mTLS").
pub fn set_client_cert(headers: &mut HeaderMap, verified: Option<&HeaderValue>) {
    let name = &crate::grants::CLIENT_CERT_SHA256;
    let is_spelling = |n: &HeaderName| {
        n.as_str().contains('_') && crate::decision::same_header_name(n.as_str(), name.as_str())
    };
    if headers.keys().any(is_spelling) {
        let spellings: Vec<HeaderName> =
            headers.keys().filter(|n| is_spelling(n)).cloned().collect();
        for n in spellings {
            headers.remove(n);
        }
    }
    match verified {
        // `insert` replaces every client-sent copy.
        Some(v) => {
            headers.insert(name.clone(), v.clone());
        }
        None => {
            headers.remove(name);
        }
    }
}

/// Removes hop-by-hop headers, every header that `Connection` names, and
/// `Expect` (the gateway answers `100-continue` itself).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names; most messages carry none of these.
    if !headers
        .keys()
        .any(|n| is_hop_by_hop(n) || n == header::EXPECT)
    {
        return;
    }
    headers.remove(header::EXPECT);
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

/// Appends `addr` to `X-Forwarded-For`, folding earlier lines into one.
pub fn append_forwarded_for(headers: &mut HeaderMap, addr: &HeaderValue) {
    if let http::header::Entry::Vacant(v) = headers.entry(&X_FORWARDED_FOR) {
        v.insert(addr.clone());
        return;
    }
    let name = &X_FORWARDED_FOR;
    let mut all = headers.get_all(name).iter();
    let value = match (all.next(), all.next()) {
        (None, _) => Some(addr.clone()),
        (Some(one), None) => join_values([one], addr),
        (Some(first), Some(second)) => {
            let lines: Vec<HeaderValue> = [first, second].into_iter().chain(all).cloned().collect();
            join_values(lines.iter(), addr)
        }
    };
    if let Some(v) = value {
        headers.insert(name, v);
    }
}

fn join_values<'a>(
    lines: impl IntoIterator<Item = &'a HeaderValue>,
    addr: &HeaderValue,
) -> Option<HeaderValue> {
    let mut bytes = Vec::with_capacity(64);
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b", ");
    }
    bytes.extend_from_slice(addr.as_bytes());
    HeaderValue::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret-Hop"),
        );
        h.append(header::CONNECTION, HeaderValue::from_static("x-other"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_for_appends_and_folds() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.9"));
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        h.append("x-forwarded-for", HeaderValue::from_static("1.1.1.1"));
        append_forwarded_for(&mut h, &HeaderValue::from_static("10.0.0.10"));
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9, 1.1.1.1, 10.0.0.10");
    }
}
