//! `X-Request-Id`: kept from the client when it is sane, else made here.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

use crate::common::X_REQUEST_ID;

/// Longest client-sent request id that is kept.
pub const MAX_LEN: usize = 128;

/// Makes request ids: a random per-process prefix and a counter.
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with a random prefix.
    pub fn new() -> Self {
        let secret = crate::common::random_key();
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&secret[..8]);
        Self {
            prefix: u64::from_le_bytes(prefix),
            counter: AtomicU64::new(0),
        }
    }

    /// The next id: 32 hex digits.
    pub fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 32];
        hex_into(&mut buf[..16], self.prefix);
        hex_into(&mut buf[16..], n);
        HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }

    /// The client's id when it is at most 128 visible ASCII characters,
    /// else a new one.
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        match headers.get(&X_REQUEST_ID) {
            Some(v) if is_acceptable(v) => v.clone(),
            _ => self.next(),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a client-sent id is kept: 1 to 128 visible ASCII characters.
pub fn is_acceptable(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= MAX_LEN && b.iter().all(|c| (0x21..=0x7e).contains(c))
}

fn hex_into(out: &mut [u8], mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_hex() {
        let ids = RequestIds::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn client_ids_are_kept_only_when_sane() {
        let ids = RequestIds::new();
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(ids.for_request(&h), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_ne!(ids.for_request(&h), "has space");
        h.insert(
            "x-request-id",
            HeaderValue::from_str(&"x".repeat(129)).unwrap(),
        );
        assert_eq!(ids.for_request(&h).len(), 32);
        h.insert(
            "x-request-id",
            HeaderValue::from_str(&"x".repeat(128)).unwrap(),
        );
        assert_eq!(ids.for_request(&h).len(), 128);
    }
}
