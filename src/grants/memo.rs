//! What one connection last resolved: the cache key of its credentials, and
//! the cached answer found for that key.
//!
//! Keep-alive clients send the same credentials on every request, so the
//! memo saves both the keyed hash and the cache lookup. A remembered answer
//! is used only while all of this holds:
//!
//! * the credential headers and the grant-source salt are exactly the ones
//!   it was found for;
//! * its cache entry has not expired (the entry's own expiry instant is
//!   kept beside it, and the cache expires the entry at the same instant);
//! * no purge or cache rebuild has happened since it was looked up
//!   ([`cache::generation`](super::cache::generation) is unchanged).
//!
//! So a memo never answers what the cache would not.

use std::sync::Mutex;
use std::time::Instant;

use http::{HeaderName, HeaderValue};

use super::Answer;
use super::credentials::{CacheKey, Credentials};

/// The memo of one connection (HTTP/2 streams of a connection share it).
#[derive(Default)]
pub struct CallerMemo(Mutex<Option<Memo>>);

struct Memo {
    values: Vec<(HeaderName, HeaderValue)>,
    salt: Vec<u8>,
    key: CacheKey,
    answer: Option<Remembered>,
}

/// A cached answer, with when its entry expires and the cache generation
/// it was looked up in.
struct Remembered {
    answer: Answer,
    expires: Instant,
    generation: u64,
}

impl CallerMemo {
    fn memo(&self) -> std::sync::MutexGuard<'_, Option<Memo>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cache key of `creds` (reused when the credentials are the ones of
    /// the previous lookup), and the remembered answer if it is still valid
    /// at `now` in cache generation `generation`.
    pub fn lookup(
        &self,
        creds: &Credentials<'_>,
        secret: &[u8; 32],
        salt: &[u8],
        now: Instant,
        generation: u64,
    ) -> (CacheKey, Option<Answer>) {
        let mut last = self.memo();
        if let Some(m) = last.as_ref() {
            if m.salt == salt && m.values.iter().map(|(n, v)| (n, v)).eq(creds.values()) {
                let answer = m
                    .answer
                    .as_ref()
                    .filter(|r| r.generation == generation && now < r.expires)
                    .map(|r| r.answer.clone());
                return (m.key, answer);
            }
        }
        let key = creds.key(secret, salt);
        *last = Some(Memo {
            // Copied: a request's header values share the connection's read
            // buffer, which one kept value would hold for the connection's
            // life.
            values: creds.values().map(|(n, v)| (n.clone(), owned(v))).collect(),
            salt: salt.to_vec(),
            key,
            answer: None,
        });
        (key, None)
    }

    /// Remembers `answer`, found in the cache for `key` in generation
    /// `generation` and expiring at `expires`, if the memo is still for
    /// `key` (another stream of the connection may have moved it on).
    pub fn remember(&self, key: CacheKey, answer: &Answer, expires: Instant, generation: u64) {
        let mut last = self.memo();
        if let Some(m) = last.as_mut().filter(|m| m.key == key) {
            m.answer = Some(Remembered {
                answer: answer.clone(),
                expires,
                generation,
            });
        }
    }

    /// Whether an answer is remembered (valid or not).
    #[cfg(test)]
    pub fn holds_answer(&self) -> bool {
        self.memo().as_ref().is_some_and(|m| m.answer.is_some())
    }
}

/// `v` in an allocation of its own (`from_bytes` copies; a value that was
/// valid stays valid).
fn owned(v: &HeaderValue) -> HeaderValue {
    let mut copy = HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone());
    copy.set_sensitive(v.is_sensitive());
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::credentials::tests::headers;
    use std::sync::Arc;
    use std::time::Duration;

    fn granted(subject: &str) -> Answer {
        Answer::Granted(Arc::new(
            crate::decision::Grants::from_lists(subject, &[], &[]).unwrap(),
        ))
    }

    fn subject(a: &Answer) -> &str {
        match a {
            Answer::Granted(g) => &g.subject,
            Answer::Rejected => "(rejected)",
        }
    }

    #[test]
    fn the_memo_gives_the_key_of_exactly_these_credentials() {
        let names = [
            http::header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
        ];
        let memo = CallerMemo::default();
        let s = [3u8; 32];
        let now = Instant::now();
        let key = |pairs: &[(&str, &str)], salt: &[u8]| {
            let h = headers(pairs);
            let c = Credentials::from_request(&h, &names).unwrap();
            let (memoized, _) = memo.lookup(&c, &s, salt, now, 0);
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

    #[test]
    fn a_remembered_answer_serves_only_the_same_credentials_in_time_and_generation() {
        let names = [http::header::AUTHORIZATION];
        let memo = CallerMemo::default();
        let s = [5u8; 32];
        let t0 = Instant::now();
        let expires = t0 + Duration::from_secs(10);
        let (alice, bob) = (
            headers(&[("authorization", "Bearer alice")]),
            headers(&[("authorization", "Bearer bob")]),
        );
        let alice = Credentials::from_request(&alice, &names).unwrap();
        let bob = Credentials::from_request(&bob, &names).unwrap();

        let (key, none) = memo.lookup(&alice, &s, b"", t0, 7);
        assert!(none.is_none(), "nothing remembered yet");
        memo.remember(key, &granted("alice"), expires, 7);
        let (_, hit) = memo.lookup(&alice, &s, b"", t0, 7);
        assert_eq!(hit.as_ref().map(subject), Some("alice"));

        // Expired: at and after the entry's expiry instant.
        assert!(memo.lookup(&alice, &s, b"", expires, 7).1.is_none());
        // A purge since (the generation moved on).
        assert!(memo.lookup(&alice, &s, b"", t0, 8).1.is_none());
        // Another grant-source version.
        assert!(memo.lookup(&alice, &s, b"v2", t0, 7).1.is_none());

        // Other credentials forget alice's answer for good.
        memo.remember(key, &granted("alice"), expires, 7);
        let (bob_key, none) = memo.lookup(&bob, &s, b"", t0, 7);
        assert!(none.is_none(), "bob never gets alice's grants");
        assert!(!memo.holds_answer());
        // A late remember for alice's key does not attach to bob's.
        memo.remember(key, &granted("alice"), expires, 7);
        assert!(!memo.holds_answer());
        memo.remember(bob_key, &granted("bob"), expires, 7);
        assert_eq!(
            memo.lookup(&bob, &s, b"", t0, 7).1.as_ref().map(subject),
            Some("bob")
        );
        let (_, none) = memo.lookup(&alice, &s, b"", t0, 7);
        assert!(none.is_none(), "alice's answer was not kept");
    }
}
