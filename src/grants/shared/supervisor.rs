//! The shared cache's background task: keeps a connection to Redis, listens
//! for purges, and probes Redis while the breaker is open, so no request
//! ever waits for a reconnect or a probe.
//!
//! One session: read the epoch and the purge count (proving Redis answers:
//! the breaker closes), subscribe to the purge channel, read them again (a
//! purge may fall between the two), and listen. When the session ends (Redis gone), it starts again
//! with a growing back-off. A purge count that moved while the instance was
//! not listening purges its in-process cache, since a purge was missed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use tokio::sync::watch;

use super::{Announcement, CHANNEL, EPOCH_KEY, PURGES_KEY, SharedCache};
use crate::grants::GrantCache;
use crate::grants::breaker::Transition;

/// How often Redis is probed while the breaker is open.
pub const COOL_DOWN: Duration = Duration::from_millis(500);
/// First and longest wait between two session attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

impl SharedCache {
    /// Runs until `stop` turns true: connects, keeps `cache` in step with the
    /// fleet's purges, and closes the breaker when Redis answers.
    pub async fn supervise(self: Arc<Self>, cache: GrantCache, mut stop: watch::Receiver<bool>) {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_number_of_retries(0);
        // Created here so that its reconnect tasks belong to this runtime.
        match ConnectionManager::new_lazy_with_config(self.client.clone(), config) {
            Ok(m) => self.conn.store(Some(Arc::new(m))),
            Err(e) => {
                tracing::error!(redis = %self.config.display_url(), error = %e, "shared cache disabled");
                return;
            }
        }
        let mut last_seq: Option<u64> = None;
        let mut backoff = BACKOFF.0;
        loop {
            let session = tokio::select! {
                s = tokio::time::timeout(self.config.timeout, self.open_session(&cache, &mut last_seq)) => s,
                _ = stop.changed() => return,
            };
            match session {
                Ok(Ok(pubsub)) => {
                    backoff = BACKOFF.0;
                    // Purges between the first read and the subscription.
                    match tokio::time::timeout(self.config.timeout, self.counters()).await {
                        Ok(Ok((epoch, seq))) => {
                            self.epoch.fetch_max(epoch, Ordering::AcqRel);
                            self.catch_up(&cache, &mut last_seq, seq);
                        }
                        _ => cache.purge(),
                    }
                    if self.listen(pubsub, &cache, &mut last_seq, &mut stop).await {
                        return;
                    }
                    tracing::warn!(redis = %self.config.display_url(), "lost the shared cache's purge channel; reconnecting");
                }
                Ok(Err(e)) => self.session_failed(&e.to_string()),
                Err(_) => self.session_failed("timed out"),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    fn session_failed(&self, why: &str) {
        tracing::debug!(redis = %self.config.display_url(), error = %why, "cannot reach the shared cache");
        if let Some(t) = self.stats.breaker.trip() {
            self.log_transition(t, why);
        }
    }

    /// Reads the epoch and purge count (which proves the request connection
    /// works, and closes the breaker), then subscribes to the purge channel.
    async fn open_session(
        &self,
        cache: &GrantCache,
        last_seq: &mut Option<u64>,
    ) -> redis::RedisResult<PubSub> {
        let (epoch, seq) = self.counters().await?;
        self.epoch.fetch_max(epoch, Ordering::AcqRel);
        self.catch_up(cache, last_seq, seq);
        if self.stats.breaker.success() == Some(Transition::Closed) {
            self.log_transition(Transition::Closed, "");
        }
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(CHANNEL).await?;
        Ok(pubsub)
    }

    /// The epoch and the purge count, through the request connection (which
    /// proves it works too).
    async fn counters(&self) -> redis::RedisResult<(u64, u64)> {
        let Some(conn) = self.conn.load_full() else {
            return Err((redis::ErrorKind::Client, "no connection").into());
        };
        let mut conn = (*conn).clone();
        let (epoch, seq): (Option<u64>, Option<u64>) = redis::cmd("MGET")
            .arg(EPOCH_KEY)
            .arg(PURGES_KEY)
            .query_async(&mut conn)
            .await?;
        Ok((epoch.unwrap_or(0), seq.unwrap_or(0)))
    }

    /// Purges the in-process cache when purges happened unheard.
    fn catch_up(&self, cache: &GrantCache, last_seq: &mut Option<u64>, seq: u64) {
        if last_seq.is_some_and(|last| last < seq) {
            tracing::warn!(
                "purges happened while the purge channel was down: purging the in-process cache"
            );
            cache.purge();
        }
        *last_seq = Some(last_seq.map_or(seq, |l| l.max(seq)));
    }

    /// Handles purge messages and probes until the channel closes (false) or
    /// `stop` turns true (true).
    async fn listen(
        &self,
        pubsub: PubSub,
        cache: &GrantCache,
        last_seq: &mut Option<u64>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut messages = pubsub.into_on_message();
        let mut probe = tokio::time::interval(COOL_DOWN);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                m = messages.next() => {
                    let Some(m) = m else { return false };
                    let text: String = m.get_payload().unwrap_or_default();
                    match Announcement::parse(&text) {
                        Some(a) => self.apply(a, cache, last_seq),
                        None => tracing::warn!(channel = CHANNEL, "ignored a message that is not a purge"),
                    }
                }
                _ = probe.tick() => {
                    if self.stats.breaker.is_open() {
                        self.probe(cache, last_seq).await;
                    }
                }
                _ = stop.changed() => return true,
            }
        }
    }

    fn apply(&self, a: Announcement<'_>, cache: &GrantCache, last_seq: &mut Option<u64>) {
        match a {
            Announcement::All { epoch, .. } => {
                self.epoch.fetch_max(epoch, Ordering::AcqRel);
                cache.purge();
            }
            Announcement::Subject { subject, .. } => cache.purge_subject(subject),
        }
        *last_seq = Some(last_seq.map_or(a.seq(), |l| l.max(a.seq())));
        tracing::info!(purge = ?a, "shared cache purge applied");
    }

    /// One probe while the breaker is open: success closes it.
    async fn probe(&self, cache: &GrantCache, last_seq: &mut Option<u64>) {
        match tokio::time::timeout(self.op_timeout, self.counters()).await {
            Ok(Ok((epoch, seq))) => {
                self.epoch.fetch_max(epoch, Ordering::AcqRel);
                self.catch_up(cache, last_seq, seq);
                if let Some(t) = self.stats.breaker.success() {
                    self.log_transition(t, "");
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "shared cache probe failed"),
            Err(_) => tracing::debug!("shared cache probe timed out"),
        }
    }
}
