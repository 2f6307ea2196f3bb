//! The fleet's second-level grants cache in Redis (README, "Shared cache
//! (fleet)").
//!
//! On an in-process miss the cache's single-flight loader asks Redis before
//! the grant source, and stores what the source answered with the entry's
//! lifetime. Redis is only ever an optimisation: every failure (down, slow,
//! garbage) is counted, feeds the [`Breaker`], and the request goes on to the
//! grant source; nothing of a failure is stored.
//!
//! Keys, all under `permgate:`:
//!
//! * `permgate:{epoch}:g:{hex}` — one answer, under the keyed credential hash
//!   (never the credential), as [`wire`] JSON with a Redis expiry;
//! * `permgate:{epoch}:s:{hex}` — a sorted set of one subject's entry keys
//!   (score: expiry), so a purge by subject finds them; expired members are
//!   pruned on every write and the set is capped at
//!   [`MAX_KEYS_PER_SUBJECT`] (past it, new answers are not shared);
//! * `permgate:epoch` — bumped by a full purge: old entries are no longer
//!   read and expire on their own;
//! * `permgate:purges` — counts purges, so an instance that was cut off
//!   notices it missed one;
//! * channel `permgate:purge` — tells every instance to purge its
//!   in-process cache ([`supervisor`]).

mod supervisor;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};

use super::breaker::{Breaker, Transition};
use super::{Answer, CacheKey};
use crate::config::SharedCacheConfig;

/// The purge channel.
pub const CHANNEL: &str = "permgate:purge";
/// The full-purge generation.
pub const EPOCH_KEY: &str = "permgate:epoch";
/// The purge count.
pub const PURGES_KEY: &str = "permgate:purges";
/// Most live entries shared per subject.
pub const MAX_KEYS_PER_SUBJECT: usize = 10_000;

/// Stores an answer and indexes it under its subject, atomically: prunes
/// expired index members, refuses past the cap (returns 0), stores the value
/// with its expiry, and keeps the index alive at least as long as it.
/// KEYS: entry, index. ARGV: value, ttl ms, now ms, cap.
const STORE_SCRIPT: &str = r"
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) and not redis.call('ZSCORE', KEYS[2], KEYS[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, KEYS[1])
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
";

/// What the shared cache has done, as plain counters for metrics.
#[derive(Debug)]
pub struct SharedStats {
    /// In-process misses answered from Redis.
    pub hits: AtomicU64,
    /// In-process misses Redis did not know either.
    pub misses: AtomicU64,
    /// Failed, timed-out or garbage Redis operations.
    pub errors: AtomicU64,
    /// Lookups and stores skipped because the breaker was open.
    pub skipped: AtomicU64,
    /// Answers stored in Redis.
    pub stored: AtomicU64,
    /// Times the breaker opened.
    pub breaker_opened: AtomicU64,
    /// The breaker itself: open while Redis is skipped.
    pub breaker: Breaker,
}

impl SharedStats {
    /// Whether requests are skipping Redis now.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }
}

/// Why a purge did not reach the fleet.
#[derive(Debug)]
pub struct PurgeError(pub String);

impl std::fmt::Display for PurgeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The Redis side of the grants cache, shared by every worker.
pub struct SharedCache {
    config: SharedCacheConfig,
    client: redis::Client,
    /// Set once the background task has created it.
    conn: ArcSwapOption<ConnectionManager>,
    /// The current full-purge generation.
    epoch: AtomicU64,
    /// Time one lookup or store may take.
    op_timeout: Duration,
    stats: SharedStats,
}

impl SharedCache {
    /// A shared cache for `config`; connects only once
    /// [`SharedCache::supervise`] runs.
    pub fn new(config: SharedCacheConfig) -> Result<Self, String> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            format!(
                "grants.cache.shared {}: {}",
                config.display_url(),
                e.category()
            )
        })?;
        Ok(Self {
            op_timeout: (config.timeout / 4).max(Duration::from_millis(10)),
            config,
            client,
            conn: ArcSwapOption::empty(),
            epoch: AtomicU64::new(0),
            stats: SharedStats {
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                errors: AtomicU64::new(0),
                skipped: AtomicU64::new(0),
                stored: AtomicU64::new(0),
                breaker_opened: AtomicU64::new(0),
                breaker: Breaker::new_open(),
            },
        })
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &SharedStats {
        &self.stats
    }

    /// The connection, unless the breaker says to skip Redis.
    fn connection(&self) -> Option<ConnectionManager> {
        if self.stats.breaker.is_open() {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let conn = self.conn.load_full()?;
        Some((*conn).clone())
    }

    fn entry_key(&self, key: CacheKey) -> String {
        format!(
            "permgate:{}:g:{key:032x}",
            self.epoch.load(Ordering::Acquire)
        )
    }

    /// The index key of `subject`: keyed, so subjects are not listed in clear.
    fn subject_key(&self, epoch: u64, subject: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.config.hash_key);
        h.update(b"subject\0");
        h.update(subject.as_bytes());
        let digest = h.finalize();
        format!("permgate:{epoch}:s:{}", crate::common::hex(&digest[..16]))
    }

    fn succeeded(&self) {
        if self.stats.breaker.success() == Some(Transition::Closed) {
            self.log_transition(Transition::Closed, "");
        }
    }

    fn failed(&self, why: &str) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(redis = %self.config.display_url(), error = %why, "shared cache operation failed");
        if let Some(t) = self.stats.breaker.failure() {
            self.log_transition(t, why);
        }
    }

    fn log_transition(&self, t: Transition, why: &str) {
        match t {
            Transition::Opened => {
                self.stats.breaker_opened.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(redis = %self.config.display_url(), error = %why,
                    "shared cache unavailable: requests skip Redis until it answers again");
            }
            Transition::Closed => {
                tracing::warn!(redis = %self.config.display_url(), "shared cache reachable: requests use Redis again");
            }
        }
    }

    /// The answer Redis holds for `key` and how long it is still good for;
    /// `None` on a miss, a failure, garbage, or an open breaker.
    pub async fn get(&self, key: CacheKey) -> Option<(Answer, Duration)> {
        let mut conn = self.connection()?;
        let k = self.entry_key(key);
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&k).cmd("PTTL").arg(&k);
        let query = pipe.query_async::<(Option<Vec<u8>>, i64)>(&mut conn);
        let (value, pttl) = match tokio::time::timeout(self.op_timeout, query).await {
            Ok(Ok(v)) => {
                self.succeeded();
                v
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                return None;
            }
            Err(_) => {
                self.failed("timed out");
                return None;
            }
        };
        let Some(bytes) = value else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let now = wire::unix_ms(SystemTime::now());
        match (wire::decode(&bytes, now), pttl) {
            (Ok(Some((answer, left))), pttl) if pttl > 0 => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                let pttl = Duration::from_millis(pttl.unsigned_abs());
                Some((answer, left.min(pttl)))
            }
            (Ok(_), -2) | (Ok(None), _) => {
                // Expired between the two commands, or by its own clock.
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            (Ok(Some(_)), _) | (Err(_), _) => {
                // Not something permgate wrote (or stored without expiry):
                // the grant source is asked and its answer overwrites it.
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(redis = %self.config.display_url(), "shared cache holds an unusable value; asking the grant source");
                None
            }
        }
    }

    /// Stores a grant source's `answer` for `ttl`. Failures are counted and
    /// otherwise ignored: the request has its answer already.
    pub async fn put(&self, key: CacheKey, answer: &Answer, ttl: Duration) {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return;
        }
        let Some(mut conn) = self.connection() else {
            return;
        };
        let epoch = self.epoch.load(Ordering::Acquire);
        let k = self.entry_key(key);
        let now = wire::unix_ms(SystemTime::now());
        let value = wire::encode(answer, now.saturating_add(ms));
        let cmd = match answer {
            Answer::Granted(g) => {
                let mut c = redis::cmd("EVAL");
                c.arg(STORE_SCRIPT)
                    .arg(2)
                    .arg(&k)
                    .arg(self.subject_key(epoch, &g.subject))
                    .arg(value)
                    .arg(ms)
                    .arg(now)
                    .arg(MAX_KEYS_PER_SUBJECT);
                c
            }
            Answer::Rejected => {
                let mut c = redis::cmd("SET");
                c.arg(&k).arg(value).arg("PX").arg(ms);
                c
            }
        };
        let query = cmd.query_async::<redis::Value>(&mut conn);
        match tokio::time::timeout(self.op_timeout, query).await {
            Ok(Ok(redis::Value::Int(0))) => self.succeeded(),
            Ok(Ok(_)) => {
                self.succeeded();
                self.stats.stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(_) => self.failed("timed out"),
        }
    }

    /// Removes the entries of `subject` (or all entries) from Redis and tells
    /// every instance to purge its in-process cache. The caller purges its
    /// own first; this may take up to `grants.timeout`.
    pub async fn purge(&self, subject: Option<&str>) -> Result<(), PurgeError> {
        let Some(conn) = self.conn.load_full() else {
            return Err(PurgeError("not connected to Redis yet".into()));
        };
        let mut conn = (*conn).clone();
        let work = async {
            match subject {
                None => {
                    let (epoch, seq): (u64, u64) = redis::pipe()
                        .cmd("INCR")
                        .arg(EPOCH_KEY)
                        .cmd("INCR")
                        .arg(PURGES_KEY)
                        .query_async(&mut conn)
                        .await?;
                    self.epoch.fetch_max(epoch, Ordering::AcqRel);
                    redis::cmd("PUBLISH")
                        .arg(CHANNEL)
                        .arg(format!("all {seq} {epoch}"))
                        .exec_async(&mut conn)
                        .await
                }
                Some(subject) => {
                    let index = self.subject_key(self.epoch.load(Ordering::Acquire), subject);
                    let keys: Vec<String> = redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(0)
                        .arg(-1)
                        .query_async(&mut conn)
                        .await?;
                    for chunk in keys.chunks(1000) {
                        redis::cmd("UNLINK")
                            .arg(chunk)
                            .exec_async(&mut conn)
                            .await?;
                    }
                    let seq: u64 = redis::pipe()
                        .cmd("UNLINK")
                        .arg(&index)
                        .ignore()
                        .cmd("INCR")
                        .arg(PURGES_KEY)
                        .query_async::<(u64,)>(&mut conn)
                        .await?
                        .0;
                    redis::cmd("PUBLISH")
                        .arg(CHANNEL)
                        .arg(format!("subject {seq} {subject}"))
                        .exec_async(&mut conn)
                        .await
                }
            }
        };
        match tokio::time::timeout(self.config.timeout, work).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PurgeError(format!("Redis: {e}"))),
            Err(_) => Err(PurgeError(format!(
                "Redis did not answer within {:?}",
                self.config.timeout
            ))),
        }
    }
}

/// A purge announced on [`CHANNEL`].
#[derive(Debug, PartialEq, Eq)]
pub enum Announcement<'a> {
    /// Everything, with the purge count and the new epoch.
    All {
        /// Purge count after this one.
        seq: u64,
        /// The new epoch.
        epoch: u64,
    },
    /// One subject's entries, with the purge count.
    Subject {
        /// Purge count after this one.
        seq: u64,
        /// The subject.
        subject: &'a str,
    },
}

impl<'a> Announcement<'a> {
    /// Parses a message; `None` for anything else.
    pub fn parse(text: &'a str) -> Option<Self> {
        let (kind, rest) = text.split_once(' ')?;
        let (seq, rest) = rest.split_once(' ')?;
        let seq = seq.parse().ok()?;
        match kind {
            "all" => Some(Self::All {
                seq,
                epoch: rest.parse().ok()?,
            }),
            "subject" if !rest.is_empty() => Some(Self::Subject { seq, subject: rest }),
            _ => None,
        }
    }

    /// The purge count it carries.
    pub fn seq(&self) -> u64 {
        match self {
            Self::All { seq, .. } | Self::Subject { seq, .. } => *seq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_parse_and_garbage_does_not() {
        assert_eq!(
            Announcement::parse("all 7 3"),
            Some(Announcement::All { seq: 7, epoch: 3 })
        );
        assert_eq!(
            Announcement::parse("subject 8 svc account"),
            Some(Announcement::Subject {
                seq: 8,
                subject: "svc account"
            })
        );
        for bad in ["", "all", "all x 1", "all 1 y", "subject 1 ", "drop 1 x"] {
            assert_eq!(Announcement::parse(bad), None, "{bad:?}");
        }
    }
}
