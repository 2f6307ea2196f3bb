//! The grants cache: a moka future cache keyed by [`CacheKey`].
//!
//! Concurrent misses for one key run one fetch, and every waiter gets its
//! outcome; failures are never cached. Answers are kept for the configured
//! `ttl` (or less when the source says `max-age`), rejections for
//! `negative_ttl`. When `stale_if_error` is set, the last good answer of each
//! key is kept that long in a second cache and used only if a fetch fails.
//! With a [`SharedCache`], a miss asks Redis before the source, and what the
//! source answers is stored there too; an in-process hit never touches it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use super::credentials::CacheKey;
use super::shared::SharedCache;
use super::{Answer, Fetched, Unavailable};
use crate::config::CacheConfig;
use crate::metrics::CacheResult;

/// A cached answer. Kept by value: moka stores values in shared entries of
/// its own, and a clone is an `Arc` bump.
#[derive(Clone)]
struct Entry {
    answer: Answer,
    /// When this entry expires: moka drops it at this instant, and a
    /// connection's [`CallerMemo`](super::CallerMemo) stops using it then.
    expires: Instant,
}

impl Entry {
    fn new(answer: Answer, ttl: Duration) -> Self {
        let now = Instant::now();
        Self {
            answer,
            expires: now.checked_add(ttl).unwrap_or(now + MAX_TTL),
        }
    }
}

/// Longer lifetimes are cut to this (a year: no configuration asks more).
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

struct EntryTtl;

impl Expiry<CacheKey, Entry> for EntryTtl {
    fn expire_after_create(&self, _: &CacheKey, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.expires.saturating_duration_since(now))
    }
}

/// Moves on after every purge and whenever a cache is built: an answer
/// looked up in an earlier generation may have been purged since.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current cache generation; read it *before* a lookup whose answer is
/// to be remembered.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Starts a new generation; called *after* entries are invalidated, so a
/// lookup that still saw one is remembered under the old generation.
fn next_generation() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Whether `answer` is grants of `subject`.
fn is_subject(answer: &Answer, subject: &str) -> bool {
    match answer {
        Answer::Granted(g) => &*g.subject == subject,
        Answer::Rejected => false,
    }
}

/// The grants cache, shared by all workers (clones share the entries).
#[derive(Clone)]
pub struct GrantCache {
    config: CacheConfig,
    fresh: Option<Cache<CacheKey, Entry>>,
    /// Last good answers; the cache's time-to-live is `stale_if_error`, so
    /// whatever it returns is at most that old.
    last_good: Option<Cache<CacheKey, Answer>>,
    /// The fleet's second level, when `grants.cache.shared` is set.
    shared: Option<Arc<SharedCache>>,
}

impl GrantCache {
    /// A cache per `config`; `ttl = 0s` turns it off.
    pub fn new(config: CacheConfig) -> Self {
        let enabled = !config.ttl.is_zero();
        let fresh = enabled.then(|| {
            Cache::builder()
                .max_capacity(config.max_entries)
                .expire_after(EntryTtl)
                .support_invalidation_closures()
                .build()
        });
        let last_good = (enabled && !config.stale_if_error.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(config.max_entries)
                .time_to_live(config.stale_if_error)
                .support_invalidation_closures()
                .build()
        });
        next_generation();
        Self {
            config,
            fresh,
            last_good,
            shared: None,
        }
    }

    /// The same cache with `shared` as its second level (ignored when the
    /// cache is off).
    pub fn with_shared(mut self, shared: Arc<SharedCache>) -> Self {
        if self.fresh.is_some() {
            self.shared = Some(shared);
        }
        self
    }

    /// The second level, if any: for purges and its statistics.
    pub fn shared(&self) -> Option<&Arc<SharedCache>> {
        self.shared.as_ref()
    }

    /// How long an answer from the source is kept: `ttl`, or less when the
    /// source says `max-age`; `negative_ttl` for rejections.
    fn lifetime(&self, fetched: &Fetched) -> Duration {
        match fetched.answer {
            Answer::Granted(_) => fetched
                .max_age
                .map_or(self.config.ttl, |age| age.min(self.config.ttl)),
            Answer::Rejected => self.config.negative_ttl,
        }
    }

    /// An answer found in Redis, kept no longer than it has left and than
    /// this instance's own limits.
    fn shared_entry(&self, answer: Answer, left: Duration) -> Entry {
        let cap = match answer {
            Answer::Granted(_) => self.config.ttl,
            Answer::Rejected => self.config.negative_ttl,
        };
        Entry::new(answer, left.min(cap))
    }

    /// The answer for `key`, from the cache or from `fetch`.
    pub async fn get_or_fetch<F>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> (Result<Answer, Arc<Unavailable>>, CacheResult)
    where
        F: Future<Output = Result<Fetched, Unavailable>>,
    {
        let Some(fresh) = &self.fresh else {
            let fetched = fetch.await.map(|f| f.answer).map_err(Arc::new);
            return (fetched, CacheResult::Miss);
        };
        let load = async {
            if let Some(shared) = &self.shared {
                if let Some((answer, left)) = shared.get(key).await {
                    return Ok(self.shared_entry(answer, left));
                }
            }
            let fetched = fetch.await?;
            let ttl = self.lifetime(&fetched);
            if let Some(shared) = &self.shared {
                shared.put(key, &fetched.answer, ttl).await;
            }
            let entry = Entry::new(fetched.answer, ttl);
            if let (Some(last_good), Answer::Granted(_)) = (&self.last_good, &entry.answer) {
                last_good.insert(key, entry.answer.clone()).await;
            }
            Ok::<_, Unavailable>(entry)
        };
        match fresh.entry(key).or_try_insert_with(load).await {
            Ok(e) => {
                let outcome = if e.is_fresh() {
                    CacheResult::Miss
                } else {
                    CacheResult::Hit
                };
                (Ok(e.into_value().answer), outcome)
            }
            Err(err) => {
                if let Some(last_good) = &self.last_good {
                    if let Some(answer) = last_good.get(&key).await {
                        return (Ok(answer), CacheResult::Stale);
                    }
                }
                (Err(err), CacheResult::Miss)
            }
        }
    }

    /// The cached answer for `key` and when it expires, if fresh. Small:
    /// for the hot path; the miss path goes through
    /// [`GrantCache::get_or_fetch`].
    pub async fn get(&self, key: CacheKey) -> Option<(Answer, Instant)> {
        let e = self.fresh.as_ref()?.get(&key).await?;
        Some((e.answer, e.expires))
    }

    /// Removes the entries of `subject`, including last good answers, from
    /// this instance (the shared cache is purged by its own
    /// [`SharedCache::purge`]). Entries disappear as moka applies the
    /// predicate: they are never returned again once this returns.
    pub fn purge_subject(&self, subject: &str) {
        let subject: Arc<str> = subject.into();
        if let Some(c) = &self.fresh {
            let subject = Arc::clone(&subject);
            let _ = c.invalidate_entries_if(move |_, e: &Entry| is_subject(&e.answer, &subject));
        }
        if let Some(c) = &self.last_good {
            let _ = c.invalidate_entries_if(move |_, a: &Answer| is_subject(a, &subject));
        }
        next_generation();
    }

    /// Empties this instance's cache, including last good answers.
    pub fn purge(&self) {
        if let Some(c) = &self.fresh {
            c.invalidate_all();
        }
        if let Some(c) = &self.last_good {
            c.invalidate_all();
        }
        next_generation();
    }

    /// Approximate number of cached credentials.
    pub fn entry_count(&self) -> u64 {
        self.fresh.as_ref().map_or(0, |c| c.entry_count())
    }

    /// Runs pending housekeeping (evictions) now; for tests and measurements.
    pub async fn sync(&self) {
        if let Some(c) = &self.fresh {
            c.run_pending_tasks().await;
        }
        if let Some(c) = &self.last_good {
            c.run_pending_tasks().await;
        }
    }
}
