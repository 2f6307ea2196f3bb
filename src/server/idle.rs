//! Closing HTTP/2 connections that carry no request.
//!
//! An HTTP/1.1 connection waiting for its next request head is closed at
//! `request_header_timeout` (hyper's header timer). HTTP/2 has no such
//! timer, so a client sending only the preface, or half a header block,
//! would hold a `max_connections` slot for ever. [`Streams`] counts the
//! requests of one HTTP/2 connection, each from its arrival until its
//! response body is dropped; [`Streams::idle`] completes once none has been
//! open for the timeout.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body::{Body, Frame, SizeHint};

/// The requests in progress on one connection.
pub struct Streams {
    /// Requests whose response body has not been dropped yet.
    open: AtomicUsize,
    /// When the connection started.
    origin: Instant,
    /// Milliseconds after `origin` when `open` last fell to zero.
    last_end: AtomicU64,
}

impl Streams {
    /// A connection starting now, with no request.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            origin: Instant::now(),
            last_end: AtomicU64::new(0),
        })
    }

    /// Counts a request until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        StreamGuard(Arc::clone(self))
    }

    /// Completes once no request has been in progress for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            if self.open.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(timeout).await;
                continue;
            }
            let quiet_since =
                self.origin + Duration::from_millis(self.last_end.load(Ordering::SeqCst));
            let until = quiet_since + timeout;
            if Instant::now() >= until && self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// One request in progress; see [`Streams::enter`].
pub struct StreamGuard(Arc<Streams>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let streams = &self.0;
        if streams.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            let now = u64::try_from(streams.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            streams.last_end.store(now, Ordering::SeqCst);
        }
    }
}

/// A response body that keeps its request counted until dropped.
pub struct Tracked<B> {
    inner: B,
    _guard: StreamGuard,
}

impl<B> Tracked<B> {
    /// `inner`, counted by `guard`.
    pub fn new(inner: B, guard: StreamGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_open_requests_and_then_the_timeout() {
        let streams = Streams::new();
        let t = Duration::from_millis(100);
        let started = Instant::now();
        streams.idle(t).await;
        assert!(started.elapsed() >= t, "a connection with no request");

        let guard = streams.enter();
        let s = Arc::clone(&streams);
        let idle = tokio::spawn(async move { s.idle(t).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!idle.is_finished(), "not idle while a request is open");
        let ended = Instant::now();
        drop(guard);
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once the request ended")
            .unwrap();
        assert!(ended.elapsed() >= t, "a timeout after the last one ended");
    }
}
