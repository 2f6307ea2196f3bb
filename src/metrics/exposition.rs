//! The Prometheus text exposition format (version 0.0.4), written from the
//! summed counters. Written here rather than with `prometheus-client`:
//! that crate writes OpenMetrics, whose `# TYPE x counter` / `x_total`
//! pairs `promtool check metrics` rejects, and the counting itself is
//! per-worker atomics the crate's types would not add anything to.

use std::fmt::Write;

use super::{ApiOutcome, CacheResult, HistogramTotals, Totals, UNMATCHED};

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Values read from the gateway's state at scrape time.
#[derive(Clone, Debug, Default)]
pub struct Gauges {
    /// Routes in the serving table.
    pub routes: usize,
    /// Credentials in the grants cache.
    pub cached_credentials: u64,
    /// Reloads that replaced the table.
    pub reloads_succeeded: u64,
    /// Reloads that failed.
    pub reloads_failed: u64,
    /// Whether the main config changed on disk since start.
    pub restart_needed: bool,
    /// The shared (Redis) cache, when one is configured.
    pub shared_cache: Option<SharedCacheCounts>,
    /// When the listener's TLS certificate expires (seconds since the
    /// epoch), with TLS on.
    pub tls_not_after: Option<u64>,
}

/// Counters of the shared (Redis) grants cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedCacheCounts {
    /// In-process misses answered from Redis.
    pub hits: u64,
    /// In-process misses Redis did not know either.
    pub misses: u64,
    /// Failed, timed-out or garbage Redis operations.
    pub errors: u64,
    /// Lookups and stores skipped while the breaker was open.
    pub skipped: u64,
    /// Answers stored in Redis.
    pub stored: u64,
    /// Times the breaker opened.
    pub breaker_opened: u64,
    /// Whether Redis is skipped now.
    pub breaker_open: bool,
}

/// The whole exposition.
pub fn render(t: &Totals, g: &Gauges) -> String {
    let mut out = String::with_capacity(4096 + t.routes.len() * 160);
    let o = &mut out;

    family(
        o,
        "permgate_requests_total",
        "counter",
        "Requests by route name (unmatched: no route), decision and status.",
    );
    let mut names: Vec<&str> = t.routes.keys().map(|k| &**k).collect();
    names.sort_unstable();
    let routes = names
        .into_iter()
        .map(|n| (n, &t.routes[n]))
        .chain([(UNMATCHED, &t.unmatched)]);
    for (name, stats) in routes {
        let mut counts = stats.counts.clone();
        counts.sort_unstable_by_key(|(d, s, _)| (d.as_str(), *s));
        for (decision, status, n) in counts {
            let _ = writeln!(
                o,
                "permgate_requests_total{{route=\"{}\",decision=\"{}\",status=\"{status}\"}} {n}",
                escape(name),
                decision.as_str()
            );
        }
    }

    histogram(
        o,
        "permgate_request_duration_seconds",
        "Time from a request's arrival to its response headers.",
        &t.request_duration,
    );
    histogram(
        o,
        "permgate_upstream_duration_seconds",
        "Time the upstream took to send response headers.",
        &t.upstream_duration,
    );
    histogram(
        o,
        "permgate_permission_api_duration_seconds",
        "Time one permission API call took.",
        &t.permission_api_duration,
    );

    counter_by(
        o,
        "permgate_grants_cache_total",
        "Grant lookups by how they were answered.",
        "result",
        CacheResult::ALL.map(|r| (r.as_str(), t.cache(r))),
    );
    counter_by(
        o,
        "permgate_permission_api_requests_total",
        "Permission API calls by outcome.",
        "outcome",
        ApiOutcome::ALL.map(|a| (a.as_str(), t.permission_api(a))),
    );
    counter_by(
        o,
        "permgate_config_reloads_total",
        "Reloads of the routes and grants files by result.",
        "result",
        [
            ("success", g.reloads_succeeded),
            ("failure", g.reloads_failed),
        ],
    );
    counter(
        o,
        "permgate_unmatched_shapes_dropped_total",
        "Unmatched requests whose shape found no room in the coverage table.",
        t.shapes.dropped,
    );

    if let Some(c) = &g.shared_cache {
        shared_cache(o, c);
    }
    if let Some(t) = g.tls_not_after {
        gauge(
            o,
            "permgate_tls_certificate_expiry_seconds",
            "When the serving TLS certificate expires, in seconds since the epoch.",
            i64::try_from(t).unwrap_or(i64::MAX),
        );
    }
    gauge(
        o,
        "permgate_routes",
        "Routes in the serving table.",
        g.routes as i64,
    );
    gauge(
        o,
        "permgate_inflight_requests",
        "Requests being served.",
        t.inflight,
    );
    gauge(
        o,
        "permgate_open_connections",
        "Open client connections.",
        t.connections,
    );
    gauge(
        o,
        "permgate_cached_credentials",
        "Credentials in the grants cache.",
        i64::try_from(g.cached_credentials).unwrap_or(i64::MAX),
    );
    gauge(
        o,
        "permgate_restart_needed",
        "1 when the main config changed on disk and needs a restart.",
        i64::from(g.restart_needed),
    );
    family(
        o,
        "permgate_build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    let _ = writeln!(
        o,
        "permgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn shared_cache(o: &mut String, c: &SharedCacheCounts) {
    counter_by(
        o,
        "permgate_shared_cache_total",
        "Shared (Redis) cache operations by result.",
        "result",
        [
            ("hit", c.hits),
            ("miss", c.misses),
            ("error", c.errors),
            ("skipped", c.skipped),
            ("stored", c.stored),
        ],
    );
    counter(
        o,
        "permgate_shared_cache_breaker_opened_total",
        "Times the shared cache's circuit breaker opened.",
        c.breaker_opened,
    );
    gauge(
        o,
        "permgate_shared_cache_breaker_open",
        "1 while Redis is skipped.",
        i64::from(c.breaker_open),
    );
}

/// A counter with one label, one line per value.
fn counter_by<'a>(
    o: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    family(o, name, "counter", help);
    for (value, n) in values {
        let _ = writeln!(o, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

fn family(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, value: u64) {
    family(o, name, "counter", help);
    let _ = writeln!(o, "{name} {value}");
}

fn gauge(o: &mut String, name: &str, help: &str, value: i64) {
    family(o, name, "gauge", help);
    let _ = writeln!(o, "{name} {value}");
}

fn histogram(o: &mut String, name: &str, help: &str, h: &HistogramTotals) {
    family(o, name, "histogram", help);
    for (bound, n) in h.cumulative() {
        let _ = writeln!(o, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let count = h.count();
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum {}", h.sum_seconds());
    let _ = writeln!(o, "{name}_count {count}");
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DecisionLabel, RequestRecord, WorkerMetrics};
    use std::time::Duration;

    #[test]
    fn counters_histograms_and_gauges_are_written() {
        let w = WorkerMetrics::default();
        w.record(&RequestRecord {
            route: Some("say \"hi\""),
            decision: DecisionLabel::Allow,
            status: 200,
            at: std::time::Instant::now(),
            elapsed: Duration::from_micros(70),
        });
        let mut t = Totals::default();
        w.add_to(&mut t);
        let text = render(
            &t,
            &Gauges {
                routes: 3,
                ..Gauges::default()
            },
        );
        assert!(text.contains(
            "permgate_requests_total{route=\"say \\\"hi\\\"\",decision=\"allow\",status=\"200\"} 1\n"
        ));
        assert!(text.contains("permgate_request_duration_seconds_bucket{le=\"0.00005\"} 0\n"));
        assert!(text.contains("permgate_request_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("permgate_request_duration_seconds_count 1\n"));
        assert!(text.contains("permgate_routes 3\n"));
        assert!(text.contains("# TYPE permgate_grants_cache_total counter\n"));
    }
}
