//! Counting what the gateway does, for `/metrics`, `/admin/coverage` and
//! the dashboard.
//!
//! Each worker thread counts into its own [`WorkerMetrics`]: atomics for
//! the histograms and fixed counters, and one uncontended mutex (only the
//! scrape ever takes it from another thread) for the per-route table.
//! Routes are counted by name, so counts survive reloads for routes whose
//! name did not change. A scrape sums the workers into [`Totals`].

mod exposition;
mod histogram;
mod shapes;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use rustc_hash::FxHashMap;

pub use exposition::{CONTENT_TYPE, Gauges, SharedCacheCounts, render};
pub use histogram::{BUCKETS, Histogram, HistogramTotals};
pub use shapes::{MAX_SHAPES, Shape, Shapes, shape_of};

/// The `route` label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// What was done with a request, as logged and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionLabel {
    /// Forwarded: allowed.
    Allow,
    /// 403.
    Deny,
    /// 401.
    Unauthenticated,
    /// 503: grants could not be resolved.
    Unavailable,
    /// 400, 413 or 431: refused before any decision.
    BadRequest,
    /// Forwarded in audit mode although enforce mode would refuse it.
    WouldDeny,
}

impl DecisionLabel {
    /// Every label, in exposition order.
    pub const ALL: [DecisionLabel; 6] = [
        Self::Allow,
        Self::Deny,
        Self::Unauthenticated,
        Self::Unavailable,
        Self::BadRequest,
        Self::WouldDeny,
    ];

    /// The word in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Unauthenticated => "unauthenticated",
            Self::Unavailable => "unavailable",
            Self::BadRequest => "bad_request",
            Self::WouldDeny => "would_deny",
        }
    }
}

/// How a request's grants were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    /// In the cache.
    Hit,
    /// Fetched from the grant source.
    Miss,
    /// The source failed; a last good answer was used.
    Stale,
}

impl CacheResult {
    const ALL: [CacheResult; 3] = [Self::Hit, Self::Miss, Self::Stale];

    /// The word in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Stale => "stale",
        }
    }
}

/// How one call to the permission API ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiOutcome {
    /// 200 with usable grants.
    Granted,
    /// 401 or 403: the credential is rejected.
    Rejected,
    /// Another status.
    Status,
    /// No answer in time.
    Timeout,
    /// Refused, reset, or not HTTP.
    Transport,
    /// An answer of the wrong shape.
    Broken,
}

impl ApiOutcome {
    const ALL: [ApiOutcome; 6] = [
        Self::Granted,
        Self::Rejected,
        Self::Status,
        Self::Timeout,
        Self::Transport,
        Self::Broken,
    ];

    /// The word in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Rejected => "rejected",
            Self::Status => "error_status",
            Self::Timeout => "timeout",
            Self::Transport => "unreachable",
            Self::Broken => "broken_answer",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts of one route (or of the unmatched requests) in one worker.
#[derive(Clone, Debug, Default)]
pub struct RouteStats {
    /// Requests by decision and status; a route sees few combinations, so
    /// a short list beats a hash map.
    pub counts: Vec<(DecisionLabel, u16, u64)>,
    /// When the route last served a request.
    pub last_seen: Option<Instant>,
}

impl RouteStats {
    fn count(&mut self, decision: DecisionLabel, status: u16, n: u64) {
        match self
            .counts
            .iter_mut()
            .find(|(d, s, _)| *d == decision && *s == status)
        {
            Some((_, _, c)) => *c += n,
            None => self.counts.push((decision, status, n)),
        }
    }

    fn add(&mut self, other: &RouteStats) {
        for (d, s, n) in &other.counts {
            self.count(*d, *s, *n);
        }
        self.last_seen = self.last_seen.max(other.last_seen);
    }

    /// Requests with `decision` and `status`.
    pub fn with(&self, decision: DecisionLabel, status: u16) -> u64 {
        self.counts
            .iter()
            .filter(|(d, s, _)| *d == decision && *s == status)
            .map(|(_, _, n)| n)
            .sum()
    }

    /// Requests with `decision`, whatever their status.
    pub fn with_decision(&self, decision: DecisionLabel) -> u64 {
        self.counts
            .iter()
            .filter(|(d, _, _)| *d == decision)
            .map(|(_, _, n)| n)
            .sum()
    }
}

#[derive(Debug, Default)]
struct RouteTable {
    by_name: FxHashMap<Box<str>, RouteStats>,
    unmatched: RouteStats,
    shapes: Shapes,
}

/// One request, as counted.
#[derive(Clone, Copy, Debug)]
pub struct RequestRecord<'a> {
    /// The matched route's name; `None` when no route matched.
    pub route: Option<&'a str>,
    /// What was done.
    pub decision: DecisionLabel,
    /// The status sent.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
    /// From arrival to response headers.
    pub elapsed: Duration,
}

/// What one worker thread counts.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    routes: Mutex<RouteTable>,
    request_duration: Histogram,
    upstream_duration: Histogram,
    permission_api_duration: Histogram,
    cache: [AtomicU64; 3],
    permission_api: [AtomicU64; 6],
    inflight: AtomicI64,
    connections: AtomicI64,
}

impl WorkerMetrics {
    /// Counts a finished request.
    pub fn record(&self, r: &RequestRecord<'_>) {
        self.request_duration.observe(r.elapsed);
        let mut t = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match r.route {
            Some(name) => match t.by_name.get_mut(name) {
                Some(s) => s,
                None => t.by_name.entry(name.into()).or_default(),
            },
            None => &mut t.unmatched,
        };
        stats.count(r.decision, r.status, 1);
        stats.last_seen = Some(r.at);
    }

    /// Counts the shape of a request no route matched (its method and
    /// normalized path).
    pub fn unmatched(&self, method: &Method, path: &str) {
        let mut t = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        t.shapes.record(method, path);
    }

    /// Counts how a request's grants were found.
    pub fn cache(&self, result: CacheResult) {
        self.cache[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one call to the permission API and its duration.
    pub fn permission_api(&self, outcome: ApiOutcome, took: Duration) {
        self.permission_api[outcome.index()].fetch_add(1, Ordering::Relaxed);
        self.permission_api_duration.observe(took);
    }

    /// Records how long the upstream took to send response headers.
    pub fn upstream(&self, took: Duration) {
        self.upstream_duration.observe(took);
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn in_flight(&self) -> Gauge<'_> {
        Gauge::enter(&self.inflight)
    }

    /// Counts an open client connection until the guard is dropped.
    pub fn connection(self: &Arc<Self>) -> OwnedGauge {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OwnedGauge(Arc::clone(self))
    }

    fn add_to(&self, t: &mut Totals) {
        self.request_duration.add_to(&mut t.request_duration);
        self.upstream_duration.add_to(&mut t.upstream_duration);
        self.permission_api_duration
            .add_to(&mut t.permission_api_duration);
        for (i, c) in self.cache.iter().enumerate() {
            t.cache[i] += c.load(Ordering::Relaxed);
        }
        for (i, c) in self.permission_api.iter().enumerate() {
            t.permission_api[i] += c.load(Ordering::Relaxed);
        }
        t.inflight += self.inflight.load(Ordering::Relaxed);
        t.connections += self.connections.load(Ordering::Relaxed);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        for (name, stats) in &routes.by_name {
            t.routes.entry(name.clone()).or_default().add(stats);
        }
        t.unmatched.add(&routes.unmatched);
        t.shapes.merge(&routes.shapes);
    }
}

/// A gauge held up while the guard lives.
pub struct Gauge<'a>(&'a AtomicI64);

impl<'a> Gauge<'a> {
    fn enter(g: &'a AtomicI64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Self(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open connection, counted until dropped.
pub struct OwnedGauge(Arc<WorkerMetrics>);

impl Drop for OwnedGauge {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything the workers counted, summed.
#[derive(Debug, Default)]
pub struct Totals {
    /// Per route name.
    pub routes: FxHashMap<Box<str>, RouteStats>,
    /// Requests no route matched.
    pub unmatched: RouteStats,
    /// Their shapes.
    pub shapes: Shapes,
    /// `permgate_request_duration_seconds`.
    pub request_duration: HistogramTotals,
    /// `permgate_upstream_duration_seconds`.
    pub upstream_duration: HistogramTotals,
    /// `permgate_permission_api_duration_seconds`.
    pub permission_api_duration: HistogramTotals,
    /// By [`CacheResult`].
    pub cache: [u64; 3],
    /// By [`ApiOutcome`].
    pub permission_api: [u64; 6],
    /// Requests in flight.
    pub inflight: i64,
    /// Open client connections.
    pub connections: i64,
}

impl Totals {
    /// Cache lookups with `result`.
    pub fn cache(&self, result: CacheResult) -> u64 {
        self.cache[result as usize]
    }

    /// Permission API calls that ended with `outcome`.
    pub fn permission_api(&self, outcome: ApiOutcome) -> u64 {
        self.permission_api[outcome.index()]
    }
}

/// All workers' metrics.
#[derive(Debug)]
pub struct Metrics {
    /// When counting started.
    pub since: SystemTime,
    /// The same moment on the monotonic clock requests are timed with.
    started: Instant,
    workers: Mutex<Vec<Arc<WorkerMetrics>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            since: SystemTime::now(),
            started: Instant::now(),
            workers: Mutex::new(Vec::new()),
        }
    }
}

impl Metrics {
    /// The wall-clock time of monotonic instant `at`.
    pub fn wall_clock(&self, at: Instant) -> SystemTime {
        self.since + at.saturating_duration_since(self.started)
    }

    /// A new worker's counters.
    pub fn worker(&self) -> Arc<WorkerMetrics> {
        let w = Arc::new(WorkerMetrics::default());
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&w));
        w
    }

    /// The sum over all workers.
    pub fn totals(&self) -> Totals {
        let workers: Vec<Arc<WorkerMetrics>> = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut t = Totals::default();
        for w in &workers {
            w.add_to(&mut t);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_summed_by_route_name() {
        let m = Metrics::default();
        let (a, b) = (m.worker(), m.worker());
        let rec = |route, decision, status| RequestRecord {
            route,
            decision,
            status,
            at: Instant::now(),
            elapsed: Duration::from_micros(200),
        };
        a.record(&rec(Some("items.get"), DecisionLabel::Allow, 200));
        b.record(&rec(Some("items.get"), DecisionLabel::Allow, 200));
        b.record(&rec(Some("items.get"), DecisionLabel::Deny, 403));
        a.record(&rec(None, DecisionLabel::Deny, 403));
        a.unmatched(&Method::GET, "/nowhere/7");
        a.cache(CacheResult::Hit);
        b.cache(CacheResult::Miss);
        b.permission_api(ApiOutcome::Granted, Duration::from_millis(2));
        let _busy = a.in_flight();
        let mut t = m.totals();
        let items = &t.routes["items.get"];
        assert_eq!(items.with(DecisionLabel::Allow, 200), 2);
        assert_eq!(items.with_decision(DecisionLabel::Deny), 1);
        assert!(items.last_seen.is_some());
        assert_eq!(t.unmatched.with_decision(DecisionLabel::Deny), 1);
        assert_eq!(
            std::mem::take(&mut t.shapes).rows()[0].shape,
            "/nowhere/{id}"
        );
        assert_eq!(
            (t.cache(CacheResult::Hit), t.cache(CacheResult::Miss)),
            (1, 1)
        );
        assert_eq!(t.permission_api(ApiOutcome::Granted), 1);
        assert_eq!(t.request_duration.count(), 4);
        assert_eq!(t.inflight, 1);
    }
}
