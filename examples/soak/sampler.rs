//! Once a second: the gateway's resident memory and open file descriptors
//! (from /proc), its open client connections (from `/metrics`), and the
//! latency and answers of the second that just ended.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gateway;
use crate::schedule;
use crate::stats::{CLASSES, Stats, quantile};

/// One second of the run.
#[derive(Clone)]
pub struct Sample {
    /// End of the second, in seconds since the start.
    pub t: u64,
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// Entries in /proc/PID/fd.
    pub fds: u64,
    /// `permgate_open_connections` (absent if the scrape failed).
    pub open_connections: Option<f64>,
    /// Median latency of the second, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of the second, ms.
    pub p99_ms: f64,
    /// Answers of the second by class.
    pub classes: [u64; CLASSES.len()],
    /// The fault on during the second ("" for none).
    pub fault: &'static str,
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open file descriptors of `pid`.
pub fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Samples every second from `start` until `until`.
pub async fn run(
    pid: u32,
    admin: SocketAddr,
    stats: Arc<Stats>,
    start: Instant,
    until: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut n = 0u64;
    loop {
        n += 1;
        let at = start + Duration::from_secs(n);
        if at > until + Duration::from_millis(500) {
            return out;
        }
        tokio::time::sleep_until(at.into()).await;
        let open_connections = gateway::admin(admin, "GET", "/metrics")
            .await
            .and_then(|(_, text)| gateway::metric(&text, "permgate_open_connections"));
        let mut second = stats.take_second(n - 1);
        out.push(Sample {
            t: n,
            rss_kib: rss_kib(pid).unwrap_or(0),
            fds: fds(pid).unwrap_or(0),
            open_connections,
            p50_ms: f64::from(quantile(&mut second.latencies_us, 0.5)) / 1000.0,
            p99_ms: f64::from(quantile(&mut second.latencies_us, 0.99)) / 1000.0,
            classes: second.classes,
            fault: schedule::fault_label(n - 1),
        });
    }
}

/// The least-squares slope of RSS over samples at or after `from` seconds,
/// in KiB per minute; `None` with fewer than 10 samples.
pub fn rss_slope(samples: &[Sample], from: u64) -> Option<f64> {
    let pts: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t >= from && s.rss_kib > 0)
        .map(|s| (s.t as f64 / 60.0, s.rss_kib as f64))
        .collect();
    if pts.len() < 10 {
        return None;
    }
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u64, rss: u64) -> Sample {
        Sample {
            t,
            rss_kib: rss,
            fds: 0,
            open_connections: None,
            p50_ms: 0.0,
            p99_ms: 0.0,
            classes: [0; CLASSES.len()],
            fault: "",
        }
    }

    #[test]
    fn slope_of_a_line_and_of_a_flat_series() {
        // 60 KiB per second after a warm-up jump: 3,600 KiB per minute.
        let rising: Vec<Sample> = (0..120)
            .map(|t| at(t, if t < 20 { 10 } else { 50_000 + 60 * t }))
            .collect();
        let s = rss_slope(&rising, 20).unwrap();
        assert!((s - 3600.0).abs() < 1e-6, "{s}");
        let flat: Vec<Sample> = (0..120).map(|t| at(t, 50_000 + (t % 2) * 64)).collect();
        assert!(rss_slope(&flat, 20).unwrap().abs() < 5.0);
        assert!(rss_slope(&flat[..5], 0).is_none());
    }

    #[test]
    fn this_process_has_rss_and_fds() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(fds(me).unwrap() >= 3);
    }
}
