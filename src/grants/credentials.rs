//! The caller's credential headers, and the keyed hash that stands for them.

use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

/// The credential header carrying the verified client certificate's
/// SHA-256 (lower-case hex of the DER) with mTLS; the gateway sets it,
/// client-sent copies are removed (README, "TLS and mTLS").
pub static CLIENT_CERT_SHA256: HeaderName = HeaderName::from_static("x-client-cert-sha256");

/// Cache key of a credential: the first 128 bits of a keyed SHA-256 of the
/// credential header values (among 100,000 cached credentials the chance of
/// two sharing a key is about 2^-94). The raw values are never stored.
pub type CacheKey = u128;

/// The credential headers of one request.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'r> {
    headers: &'r HeaderMap,
    names: &'r [HeaderName],
}

impl<'r> Credentials<'r> {
    /// The credentials of a request, or `None` when it carries none of the
    /// configured headers with a non-empty value.
    pub fn from_request(headers: &'r HeaderMap, names: &'r [HeaderName]) -> Option<Self> {
        let present = names
            .iter()
            .any(|n| headers.get_all(n).iter().any(|v| !v.is_empty()));
        present.then_some(Self { headers, names })
    }

    /// The keyed hash of every credential header value, in configured order.
    /// `salt` separates answers of different grant-source versions.
    pub fn key(&self, secret: &[u8; 32], salt: &[u8]) -> CacheKey {
        let mut h = Sha256::new();
        h.update(secret);
        h.update((salt.len() as u32).to_le_bytes());
        h.update(salt);
        for (i, name) in self.names.iter().enumerate() {
            for value in self.headers.get_all(name) {
                h.update([i as u8]);
                h.update((value.len() as u32).to_le_bytes());
                h.update(value.as_bytes());
            }
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        u128::from_le_bytes(first)
    }

    /// [`Credentials::key`], reusing `memo`'s answer when the credential
    /// headers are the ones of the previous request on the connection
    /// (keep-alive clients send the same ones every time).
    pub fn key_memo(&self, secret: &[u8; 32], salt: &[u8], memo: &KeyMemo) -> CacheKey {
        let mut last = memo.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = last.as_ref() {
            if m.salt == salt && m.values.iter().map(|(n, v)| (n, v)).eq(self.values()) {
                return m.key;
            }
        }
        let key = self.key(secret, salt);
        *last = Some(Memo {
            values: self.values().map(|(n, v)| (n.clone(), v.clone())).collect(),
            salt: salt.to_vec(),
            key,
        });
        key
    }

    /// Every credential header and value, in configured order.
    pub fn values(&self) -> impl Iterator<Item = (&'r HeaderName, &'r http::HeaderValue)> + 'r {
        let headers = self.headers;
        self.names
            .iter()
            .flat_map(move |n| headers.get_all(n).iter().map(move |v| (n, v)))
    }

    /// Copies the credential headers, verbatim, into `out`.
    pub fn copy_to(&self, out: &mut HeaderMap) {
        for name in self.names {
            for value in self.headers.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
    }
}

/// The last cache key computed on one connection, and what it was for.
#[derive(Default)]
pub struct KeyMemo(std::sync::Mutex<Option<Memo>>);

struct Memo {
    values: Vec<(HeaderName, http::HeaderValue)>,
    salt: Vec<u8>,
    key: CacheKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn absent_or_empty_credentials_are_none() {
        let names = [http::header::AUTHORIZATION];
        assert!(Credentials::from_request(&headers(&[]), &names).is_none());
        assert!(Credentials::from_request(&headers(&[("authorization", "")]), &names).is_none());
        assert!(
            Credentials::from_request(&headers(&[("authorization", "Bearer x")]), &names).is_some()
        );
    }

    #[test]
    fn keys_differ_by_value_header_and_secret() {
        let names = [
            http::header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ];
        let key = |pairs: &[(&str, &str)], secret: [u8; 32]| {
            let h = headers(pairs);
            Credentials::from_request(&h, &names)
                .unwrap()
                .key(&secret, b"")
        };
        let s = [7u8; 32];
        let a = key(&[("authorization", "Bearer a")], s);
        assert_eq!(a, key(&[("authorization", "Bearer a")], s));
        assert_ne!(a, key(&[("authorization", "Bearer b")], s));
        assert_ne!(
            a,
            key(&[("x-api-key", "Bearer a")], s),
            "same value in another header"
        );
        assert_ne!(a, key(&[("authorization", "Bearer a")], [8u8; 32]), "keyed");
        assert_ne!(
            key(&[("authorization", "ab"), ("x-api-key", "c")], s),
            key(&[("authorization", "a"), ("x-api-key", "bc")], s),
            "values are length-prefixed"
        );
        assert!(!a.to_le_bytes().windows(8).any(|w| w == b"Bearer a"));
        let h = headers(&[("authorization", "Bearer a")]);
        let c = Credentials::from_request(&h, &names).unwrap();
        assert_ne!(
            c.key(&s, b"v1"),
            c.key(&s, b"v2"),
            "salted by grant-source version"
        );
    }

    #[test]
    fn the_memo_gives_the_key_of_exactly_these_credentials() {
        let names = [
            http::header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ];
        let memo = KeyMemo::default();
        let s = [3u8; 32];
        let key = |pairs: &[(&str, &str)], salt: &[u8]| {
            let h = headers(pairs);
            let c = Credentials::from_request(&h, &names).unwrap();
            let memoized = c.key_memo(&s, salt, &memo);
            assert_eq!(memoized, c.key(&s, salt), "{pairs:?}");
            memoized
        };
        let a = key(&[("authorization", "Bearer a")], b"");
        assert_eq!(key(&[("authorization", "Bearer a")], b""), a, "reused");
        assert_ne!(key(&[("authorization", "Bearer b")], b""), a);
        assert_ne!(
            key(&[("x-api-key", "Bearer b")], b""),
            a,
            "same value, other header"
        );
        assert_ne!(key(&[("x-api-key", "Bearer b")], b"v2"), a, "other salt");
        assert_ne!(
            key(
                &[("x-api-key", "Bearer b"), ("authorization", "Bearer a")],
                b"v2"
            ),
            a
        );
    }
}
