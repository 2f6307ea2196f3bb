//! `[grants.cache] shared` and `shared_key_file`: the fleet's second-level
//! cache in Redis (README, "Shared cache (fleet)").

use std::fmt;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::Spanned;

use super::{ConfigError, Validator};

/// Fewest bytes a shared key file may hold.
pub const MIN_KEY_BYTES: usize = 32;

/// The validated shared-cache settings.
#[derive(Clone)]
pub struct SharedCacheConfig {
    /// The `redis://` URL as configured (it may carry a password: never log
    /// it; use [`SharedCacheConfig::display_url`]).
    pub url: String,
    /// The URL without its password, for logs.
    pub display_url: String,
    /// Key of the credential hash: SHA-256 of the key file's raw bytes, so
    /// every instance with the same file computes the same cache keys.
    pub hash_key: [u8; 32],
    /// `grants.timeout`: Redis operations get a fraction of it.
    pub timeout: Duration,
}

impl SharedCacheConfig {
    /// The URL without its password, for logs and errors.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }
}

impl fmt::Debug for SharedCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedCacheConfig")
            .field("url", &self.display_url)
            .field("hash_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Validator<'_> {
    /// Validates `shared` and `shared_key_file` together; reads the key file
    /// (relative to the config's folder).
    pub(super) fn shared_cache(
        &self,
        shared: Option<&Spanned<String>>,
        key_file: Option<&Spanned<String>>,
        ttl: Duration,
        timeout: Duration,
        base: &Path,
    ) -> Result<Option<SharedCacheConfig>, ConfigError> {
        let (url, key_file) = match (shared, key_file) {
            (None, None) => return Ok(None),
            (None, Some(k)) => {
                return Err(self.err(
                    k,
                    "grants.cache.shared_key_file is only used with grants.cache.shared",
                ));
            }
            (Some(u), None) => {
                return Err(self.err(
                    u,
                    "grants.cache.shared needs grants.cache.shared_key_file (the same key file on every instance; create one with `head -c 32 /dev/urandom > cache.key`)",
                ));
            }
            (Some(u), Some(k)) => (u, k),
        };
        if ttl.is_zero() {
            return Err(self.err(
                url,
                "grants.cache.shared needs a cache: grants.cache.ttl is 0s",
            ));
        }
        let display_url = check_url(url.get_ref())
            .map_err(|m| self.err(url, format!("grants.cache.shared: {m}")))?;
        let path = base.join(key_file.get_ref());
        let bytes = std::fs::read(&path).map_err(|e| {
            self.err(
                key_file,
                format!(
                    "grants.cache.shared_key_file: cannot read {}: {e}",
                    path.display()
                ),
            )
        })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(self.err(
                key_file,
                format!(
                    "grants.cache.shared_key_file: {} holds {} bytes; the key needs at least {MIN_KEY_BYTES} (`head -c 32 /dev/urandom > cache.key`)",
                    path.display(),
                    bytes.len()
                ),
            ));
        }
        Ok(Some(SharedCacheConfig {
            url: url.get_ref().clone(),
            display_url,
            hash_key: Sha256::digest(&bytes).into(),
            timeout,
        }))
    }
}

/// Checks a `redis://` or `rediss://` (TLS) URL; answers it without its
/// password.
fn check_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s @ ("redis" | "rediss"), rest)) => (s, rest),
        _ => {
            return Err(format!(
                "URL must start with redis:// or rediss:// (got {:?})",
                url.split("://").next().unwrap_or("")
            ));
        }
    };
    let (userinfo, hostpart) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let display = match userinfo {
        Some(u) => {
            let user = u.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{hostpart}")
        }
        None => url.to_string(),
    };
    let host = hostpart.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("URL {display:?} has no host"));
    }
    redis::Client::open(url).map_err(|e| {
        // The client's message may quote the URL: name the redacted one.
        format!("invalid URL {display:?}: {}", e.category())
    })?;
    Ok(display)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redis_only_and_passwords_are_hidden() {
        assert_eq!(
            check_url("redis://127.0.0.1:6379/0").unwrap(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            check_url("redis://:s3cret@cache:6379/1").unwrap(),
            "redis://:***@cache:6379/1"
        );
        assert_eq!(
            check_url("rediss://:s3cret@cache:6380").unwrap(),
            "rediss://:***@cache:6380",
            "TLS to Redis"
        );
        assert!(
            check_url("http://cache:6379")
                .unwrap_err()
                .contains("must start with redis://")
        );
        assert!(check_url("redis:///0").unwrap_err().contains("no host"));
        assert!(
            !check_url("redis://:s3cret@cache:notaport")
                .unwrap_err()
                .contains("s3cret")
        );
    }
}
