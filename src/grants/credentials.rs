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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A header map of `pairs`, in order.
    pub(in crate::grants) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
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
}
