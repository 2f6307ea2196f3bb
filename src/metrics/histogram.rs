//! A latency histogram of atomic counters: recording is three relaxed
//! additions, no lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds: from 50 µs (a cached decision
/// on loopback) to 10 s (a slow upstream).
pub const BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds in nanoseconds, for comparing without floating point.
const BOUNDS_NS: [u64; 17] = {
    let mut out = [0u64; 17];
    let mut i = 0;
    while i < 17 {
        out[i] = (BUCKETS[i] * 1e9) as u64;
        i += 1;
    }
    out
};

/// Counts of observations per bucket (not cumulative), their sum and count.
#[derive(Debug, Default)]
pub struct Histogram {
    /// One more than the bounds: the last counts what is over 10 s.
    buckets: [AtomicU64; 18],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Adds this histogram's counts into `into`.
    pub fn add_to(&self, into: &mut HistogramTotals) {
        for (t, b) in into.buckets.iter_mut().zip(&self.buckets) {
            *t += b.load(Ordering::Relaxed);
        }
        into.sum_ns += self.sum_ns.load(Ordering::Relaxed);
    }
}

/// A histogram summed over workers, for the exposition.
#[derive(Clone, Debug, Default)]
pub struct HistogramTotals {
    buckets: [u64; 18],
    sum_ns: u64,
}

impl HistogramTotals {
    /// `(upper bound, cumulative count)` per bucket, `+Inf` excluded.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        BUCKETS
            .iter()
            .zip(self.buckets.iter().scan(0, |acc, n| {
                *acc += n;
                Some(*acc)
            }))
            .map(|(b, n)| (*b, n))
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(30));
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(11));
        let mut t = HistogramTotals::default();
        h.add_to(&mut t);
        let c: Vec<(f64, u64)> = t.cumulative().collect();
        assert_eq!(c[0], (0.000_05, 2), "30 µs and exactly 50 µs");
        assert_eq!(c[1], (0.000_1, 3));
        assert_eq!(c[5], (0.002_5, 3));
        assert_eq!(c[6], (0.005, 4));
        assert_eq!(c[16], (10.0, 4), "11 s only in +Inf");
        assert_eq!(t.count(), 5);
        assert!((t.sum_seconds() - 11.003_131).abs() < 1e-9);
    }
}
