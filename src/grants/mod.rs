//! Resolving a caller's grants (README, "The permission API"): credentials →
//! cache → source.
//!
//! * [`credentials`]: the credential headers and their keyed hash;
//! * [`cache`]: the shared moka cache (single-flight, TTLs, stale-if-error);
//! * [`permission_api`]: the permission API contract;
//! * [`file`]: the embedded grants file;
//! * [`shared`]: the fleet's second-level cache in Redis, with its
//!   [`breaker`].
//!
//! A [`Resolver`] belongs to one worker: it shares the cache with every other
//! worker but talks to the grant source over its own connections.

pub mod breaker;
mod cache;
mod credentials;
mod file;
mod memo;
mod permission_api;
pub mod shared;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::http::HeaderValue;

pub use crate::metrics::CacheResult;
pub use cache::GrantCache;
pub use credentials::{CLIENT_CERT_SHA256, CacheKey, Credentials};
pub use file::{GrantsFile, Lookup, hash_password, hash_token};
pub use memo::CallerMemo;
pub use permission_api::{HttpSource, Pointers, max_age, parse_answer, parse_answer_with};
pub use shared::{PurgeError, SharedCache, SharedStats};

use crate::decision::Grants;
use crate::permission::PermissionError;
use crate::transport::TransportError;

/// What a grant source answered for one credential.
#[derive(Clone, Debug)]
pub enum Answer {
    /// The caller's grants.
    Granted(Arc<Grants>),
    /// The source does not accept the credential (401 to the client).
    Rejected,
}

/// An answer with how long the source allows it to be cached.
#[derive(Debug)]
pub struct Fetched {
    /// The answer.
    pub answer: Answer,
    /// `Cache-Control: max-age` (or 0 for `no-store`/`no-cache`), if given.
    pub max_age: Option<Duration>,
}

/// Why grants could not be resolved: the gateway answers 503 (fail closed).
#[derive(Debug)]
pub enum Unavailable {
    /// The source answered a status other than 200, 401 or 403.
    Status(u16),
    /// No answer within the timeout.
    Timeout,
    /// Connection refused, reset, or not HTTP.
    Transport(TransportError),
    /// The answer's body could not be read to the end.
    ReadingAnswer(Box<dyn std::error::Error + Send + Sync>),
    /// The body is not JSON, or a value has the wrong type.
    BrokenAnswer(BrokenAnswer),
    /// The file source has no grants file loaded.
    NoGrantsFile,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "permission API answered {s}"),
            Self::Timeout => f.write_str("permission API timed out"),
            Self::Transport(e) => write!(f, "permission API unreachable: {e}"),
            Self::ReadingAnswer(e) => write!(f, "reading the permission API answer: {e}"),
            Self::BrokenAnswer(e) => write!(f, "permission API answer unusable: {e}"),
            Self::NoGrantsFile => f.write_str("no grants file is loaded"),
        }
    }
}

impl std::error::Error for Unavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) => Some(e),
            Self::ReadingAnswer(e) => Some(&**e),
            Self::BrokenAnswer(e) => Some(e),
            Self::Status(_) | Self::Timeout | Self::NoGrantsFile => None,
        }
    }
}

/// What is wrong with a permission API answer.
#[derive(Debug)]
pub enum BrokenAnswer {
    /// Not JSON, or not shaped as the pointers expect.
    Json(serde_json::Error),
    /// Nothing at the permissions pointer.
    Missing(String),
    /// A value of the wrong type at a pointer.
    WrongType {
        /// The pointer.
        pointer: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A deny that is not a valid permission: skipping it would widen access.
    InvalidDeny {
        /// The deny as sent.
        value: String,
        /// Why it is invalid.
        error: PermissionError,
    },
    /// A subject a header cannot carry.
    UnsafeSubject,
}

impl fmt::Display for BrokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid answer: {e}"),
            Self::Missing(p) => write!(f, "{p} is missing"),
            Self::WrongType { pointer, expected } => write!(f, "{pointer} is not {expected}"),
            Self::InvalidDeny { value, error } => write!(f, "invalid deny {value:?}: {error}"),
            Self::UnsafeSubject => f.write_str("subject has characters a header cannot carry"),
        }
    }
}

impl std::error::Error for BrokenAnswer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            Self::InvalidDeny { error, .. } => Some(error),
            Self::Missing(_) | Self::WrongType { .. } | Self::UnsafeSubject => None,
        }
    }
}

/// Where grants come from.
#[derive(Clone)]
pub enum Source {
    /// The permission API, over this worker's connections.
    Http(HttpSource),
    /// The grants file of the request's snapshot.
    File,
}

/// Resolves grants for one worker.
#[derive(Clone)]
pub struct Resolver {
    cache: GrantCache,
    secret: Arc<[u8; 32]>,
    source: Source,
}

/// Answers from the grants file; a password check runs on the blocking
/// pool so argon2 never stalls a worker's other connections.
async fn from_file(file: &Arc<GrantsFile>, creds: &Credentials<'_>) -> Answer {
    match file.lookup(creds) {
        Lookup::Done(answer) => answer,
        Lookup::VerifyPassword { subject, password } => {
            let file = Arc::clone(file);
            tokio::task::spawn_blocking(move || file.verify(subject, &password))
                .await
                .unwrap_or(Answer::Rejected)
        }
    }
}

/// The outcome of [`Resolver::resolve`]. A failure is shared by every
/// request that waited on the same fetch.
pub type Resolution = (Result<Answer, Arc<Unavailable>>, CacheResult);

impl Resolver {
    /// A resolver over the shared `cache`, keyed with the shared `secret`.
    pub fn new(cache: GrantCache, secret: Arc<[u8; 32]>, source: Source) -> Self {
        Self {
            cache,
            secret,
            source,
        }
    }

    /// The caller's grants, a rejection, or why neither is known, for a
    /// request that arrived at `now` on the connection of `memo`. `file` is
    /// the grants file of the request's snapshot (file source only); its
    /// hash salts the cache key, so a reloaded file never answers from the
    /// old one's entries.
    pub async fn resolve(
        &self,
        creds: &Credentials<'_>,
        request_id: &HeaderValue,
        file: Option<&Arc<GrantsFile>>,
        memo: &CallerMemo,
        now: Instant,
    ) -> Resolution {
        let salt = file.map_or(&b""[..], |f| f.sha256.as_bytes());
        // Read before the lookups: a purge after this invalidates what
        // they find.
        let generation = cache::generation();
        let (key, remembered) = memo.lookup(creds, &self.secret, salt, now, generation);
        if let Some(answer) = remembered {
            return (Ok(answer), CacheResult::Hit);
        }
        if let Some((answer, expires)) = self.cache.get(key).await {
            memo.remember(key, &answer, expires, generation);
            return (Ok(answer), CacheResult::Hit);
        }
        // The miss path (single-flight load, fetch, stale fallback) is a
        // large future: boxed, so only requests that fetch pay for it and a
        // request's future stays small.
        Box::pin(self.fetch_through_cache(key, creds, request_id, file)).await
    }

    async fn fetch_through_cache(
        &self,
        key: CacheKey,
        creds: &Credentials<'_>,
        request_id: &HeaderValue,
        file: Option<&Arc<GrantsFile>>,
    ) -> Resolution {
        let fetch = async {
            match (&self.source, file) {
                (Source::Http(h), _) => h.fetch(creds, request_id).await,
                (Source::File, Some(f)) => Ok(Fetched {
                    answer: from_file(f, creds).await,
                    max_age: None,
                }),
                (Source::File, None) => Err(Unavailable::NoGrantsFile),
            }
        };
        self.cache.get_or_fetch(key, fetch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::{HeaderMap, HeaderName};

    #[tokio::test]
    async fn a_basic_password_is_checked_once_then_served_from_the_cache() {
        let cheap = argon2::Params::new(8, 1, 1, None).unwrap();
        let text = format!(
            "[[subject]]\nname = \"ci\"\nbasic_user = \"ci\"\npassword_hash = \"{}\"\nallow = [\"a\"]\n",
            hash_password("pw", Some(cheap)).unwrap()
        );
        let file = Arc::new(GrantsFile::parse(&text, std::path::Path::new("grants.toml")).unwrap());
        let cache = GrantCache::new(crate::config::CacheConfig {
            ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 10,
            stale_if_error: Duration::ZERO,
        });
        let resolver = Resolver::new(cache, Arc::new([1; 32]), Source::File);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Basic Y2k6cHc=".parse().unwrap()); // ci:pw
        let names = [HeaderName::from_static("authorization")];
        let creds = Credentials::from_request(&headers, &names).unwrap();
        let id = HeaderValue::from_static("r");
        let memo = CallerMemo::default();
        let now = Instant::now();
        let (first, how) = resolver.resolve(&creds, &id, Some(&file), &memo, now).await;
        assert!(matches!(first, Ok(Answer::Granted(_))));
        assert_eq!(how, CacheResult::Miss, "the first request pays for argon2");
        for _ in 0..3 {
            let (again, how) = resolver.resolve(&creds, &id, Some(&file), &memo, now).await;
            assert!(matches!(again, Ok(Answer::Granted(_))));
            assert_eq!(how, CacheResult::Hit, "later ones do not");
        }
    }

    /// A resolver over a grants file with one token subject, `ci`.
    fn token_resolver(ttl: Duration) -> (Resolver, Arc<GrantsFile>) {
        let text = format!(
            "[[subject]]\nname = \"ci\"\ntoken_sha256 = \"{}\"\nallow = [\"a\"]\n",
            hash_token("t0k3n")
        );
        let file = Arc::new(GrantsFile::parse(&text, std::path::Path::new("grants.toml")).unwrap());
        let cache = GrantCache::new(crate::config::CacheConfig {
            ttl,
            negative_ttl: Duration::from_secs(5),
            max_entries: 10,
            stale_if_error: Duration::ZERO,
        });
        (Resolver::new(cache, Arc::new([2; 32]), Source::File), file)
    }

    #[tokio::test]
    async fn a_connection_memo_never_outlives_a_purge_or_its_cache_entry() {
        let (resolver, file) = token_resolver(Duration::from_secs(60));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t0k3n".parse().unwrap());
        let names = [HeaderName::from_static("authorization")];
        let creds = Credentials::from_request(&headers, &names).unwrap();
        let id = HeaderValue::from_static("r");
        let memo = CallerMemo::default();
        let resolve = || resolver.resolve(&creds, &id, Some(&file), &memo, Instant::now());

        assert_eq!(resolve().await.1, CacheResult::Miss);
        assert_eq!(resolve().await.1, CacheResult::Hit);
        assert!(memo.holds_answer(), "a cache hit is remembered");
        assert_eq!(resolve().await.1, CacheResult::Hit);

        resolver.cache.purge_subject("ci");
        assert_eq!(resolve().await.1, CacheResult::Miss, "purged by subject");
        assert_eq!(resolve().await.1, CacheResult::Hit);
        assert!(memo.holds_answer());
        resolver.cache.purge();
        assert_eq!(resolve().await.1, CacheResult::Miss, "purged");

        // An entry that expires: the memo stops with it.
        let (resolver, file) = token_resolver(Duration::from_millis(150));
        let memo = CallerMemo::default();
        let resolve = || resolver.resolve(&creds, &id, Some(&file), &memo, Instant::now());
        assert_eq!(resolve().await.1, CacheResult::Miss);
        assert_eq!(resolve().await.1, CacheResult::Hit);
        assert!(memo.holds_answer());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(resolve().await.1, CacheResult::Miss, "expired");
    }
}
