//! `GET /metrics` and `GET /admin/coverage`: what the workers counted.

use serde_json::{Value, json};

use crate::gateway::Shared;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::grants::SharedStats;
use crate::metrics::{DecisionLabel, Gauges, MAX_SHAPES, SharedCacheCounts, Totals, render};

/// The Prometheus exposition.
pub fn metrics_text(shared: &Shared) -> String {
    let totals = shared.metrics.totals();
    let gauges = {
        let state = shared.reload.lock().unwrap_or_else(|p| p.into_inner());
        Gauges {
            routes: shared.snapshot.load().routes.routes().len(),
            cached_credentials: shared.cache.entry_count(),
            reloads_succeeded: state.succeeded,
            reloads_failed: state.failed,
            restart_needed: state.restart_needed(),
            shared_cache: shared.cache.shared().map(|c| shared_counts(c.stats())),
            tls_not_after: shared
                .tls
                .as_ref()
                .and_then(|t| t.not_after())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        }
    };
    render(&totals, &gauges)
}

fn shared_counts(s: &SharedStats) -> SharedCacheCounts {
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    SharedCacheCounts {
        hits: n(&s.hits),
        misses: n(&s.misses),
        errors: n(&s.errors),
        skipped: n(&s.skipped),
        stored: n(&s.stored),
        breaker_opened: n(&s.breaker_opened),
        breaker_open: s.breaker_open(),
    }
}

/// The coverage JSON: per route of the serving table, its decisions and last
/// use; the shapes of requests no route matched.
pub fn coverage(shared: &Shared) -> Value {
    coverage_of(shared, shared.metrics.totals())
}

fn coverage_of(shared: &Shared, totals: Totals) -> Value {
    let snapshot = shared.snapshot.load();
    let none = Default::default();
    let routes: Vec<Value> = snapshot
        .routes
        .routes()
        .iter()
        .map(|r| {
            let stats = totals.routes.get(&r.name).unwrap_or(&none);
            json!({
                "name": &*r.name,
                "methods": r.methods_label(),
                "path": &*r.path,
                "allow": stats.with_decision(DecisionLabel::Allow),
                "deny": stats.with_decision(DecisionLabel::Deny),
                "unauthenticated": stats.with_decision(DecisionLabel::Unauthenticated),
                "wouldDeny": stats.with_decision(DecisionLabel::WouldDeny),
                "lastSeen": stats
                    .last_seen
                    .map(|at| super::timestamp(shared.metrics.wall_clock(at))),
            })
        })
        .collect();
    let dropped = totals.shapes.dropped;
    let unmatched: Vec<Value> = totals
        .shapes
        .rows()
        .into_iter()
        .take(MAX_SHAPES)
        .map(|s| {
            json!({
                "method": s.method.as_str(),
                "shape": s.shape,
                "count": s.count,
                "example": s.example,
            })
        })
        .collect();
    json!({
        "since": super::timestamp(shared.metrics.since),
        "routes": routes,
        "unmatched": unmatched,
        "unmatchedDropped": dropped,
    })
}
