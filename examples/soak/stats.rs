//! What the traffic got back: answers by class, per second and in total,
//! latencies, and the answers the route table does not allow.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mix::Expect;

/// Answer classes, in report order; the last is "no answer" (the
/// connection failed or closed before a status line).
pub const CLASSES: [&str; 10] = [
    "2xx",
    "400",
    "401",
    "403",
    "413",
    "502",
    "503",
    "504",
    "other",
    "no answer",
];

/// One finished request.
pub struct Outcome {
    /// The traffic kind.
    pub kind: &'static str,
    /// What the table says.
    pub expect: Expect,
    /// The status, if an answer came.
    pub status: Option<u16>,
    /// Send to last body byte.
    pub latency: Duration,
    /// The target (for the report's examples).
    pub target: String,
    /// The method.
    pub method: &'static str,
    /// The `X-Request-Id` it was sent with.
    pub id: String,
    /// How far the exchange got.
    pub stage: &'static str,
    /// The exchange before it on the same connection ("" for a new one).
    pub previous: String,
}

/// Answers in one second of the run.
#[derive(Default, Clone)]
pub struct Second {
    /// Latencies in microseconds.
    pub latencies_us: Vec<u32>,
    /// Answers by class (index into [`CLASSES`]).
    pub classes: [u64; CLASSES.len()],
}

/// Totals of the whole run.
#[derive(Default)]
pub struct Totals {
    /// Answers by traffic kind and class.
    pub by_kind: BTreeMap<&'static str, [u64; CLASSES.len()]>,
    /// Every latency, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Answers outside what the table allows (including the two below).
    pub unexpected: u64,
    /// A 2xx where the table refuses.
    pub false_allow: u64,
    /// A 401 or 403 where the table allows.
    pub false_refusal: u64,
    /// The first few unexpected answers, described, with their request ids.
    pub examples: Vec<(String, String)>,
}

/// Shared by the workers (writing) and the sampler (reading per second).
pub struct Stats {
    start: Instant,
    seconds: Mutex<BTreeMap<u64, Second>>,
    totals: Mutex<Totals>,
}

/// The class index of a status.
pub fn class_of(status: Option<u16>) -> usize {
    match status {
        None => 9,
        Some(200..=299) => 0,
        Some(400) => 1,
        Some(401) => 2,
        Some(403) => 3,
        Some(413) => 4,
        Some(502) => 5,
        Some(503) => 6,
        Some(504) => 7,
        Some(_) => 8,
    }
}

/// Whether the route table (and the faults it may meet) allow this answer.
fn acceptable(expect: Expect, status: Option<u16>) -> bool {
    use Expect::*;
    match (expect, status) {
        (Hostile, _) | (TooLarge | UploadRefused, None) => true,
        (_, None) => false,
        (Allow, Some(s)) => (200..300).contains(&s) || matches!(s, 502..=504),
        (Deny, Some(s)) => matches!(s, 403 | 503),
        (Unauthenticated, Some(s)) => matches!(s, 401 | 503),
        (BadRequest, Some(s)) => s == 400,
        // Grants are resolved first: 503 while they cannot be.
        (TooLarge, Some(s)) => matches!(s, 413 | 503),
        (UploadRefused, Some(s)) => matches!(s, 403 | 503),
    }
}

impl Stats {
    /// Counts from `start`.
    pub fn new(start: Instant) -> Stats {
        Stats {
            start,
            seconds: Mutex::new(BTreeMap::new()),
            totals: Mutex::new(Totals::default()),
        }
    }

    /// Records one finished request.
    pub fn record(&self, o: Outcome) {
        let class = class_of(o.status);
        let us = o.latency.as_micros().min(u32::MAX as u128) as u32;
        let second = self.start.elapsed().as_secs();
        {
            let mut s = self.seconds.lock().expect("lock");
            let sec = s.entry(second).or_default();
            sec.latencies_us.push(us);
            sec.classes[class] += 1;
        }
        let mut t = self.totals.lock().expect("lock");
        t.by_kind.entry(o.kind).or_insert([0; CLASSES.len()])[class] += 1;
        t.latencies_us.push(us);
        if !acceptable(o.expect, o.status) {
            t.unexpected += 1;
            let ok = o.status.is_some_and(|s| (200..300).contains(&s));
            if ok && o.expect != Expect::Allow {
                t.false_allow += 1;
            }
            if matches!(o.status, Some(401 | 403)) && o.expect == Expect::Allow {
                t.false_refusal += 1;
            }
            if t.examples.len() < 20 {
                let answer = match o.status {
                    Some(s) => s.to_string(),
                    None => format!(
                        "nothing after {:.1} s (at: {}; before it on this connection: {})",
                        o.latency.as_secs_f64(),
                        o.stage,
                        if o.previous.is_empty() {
                            "none"
                        } else {
                            &o.previous
                        }
                    ),
                };
                let what = format!(
                    "{:.1} s: {} {} {} (expected {:?}, X-Request-Id {}) answered {answer}",
                    self.start.elapsed().as_secs_f64(),
                    o.kind,
                    o.method,
                    o.target,
                    o.expect,
                    o.id,
                );
                t.examples.push((what, o.id));
            }
        }
    }

    /// Takes the answers of second `n` (call once it is over).
    pub fn take_second(&self, n: u64) -> Second {
        self.seconds
            .lock()
            .expect("lock")
            .remove(&n)
            .unwrap_or_default()
    }

    /// Takes the totals (at the end).
    pub fn take_totals(&self) -> Totals {
        std::mem::take(&mut *self.totals.lock().expect("lock"))
    }
}

/// The `p` quantile (0..1) of `v`, sorting it; 0 when empty.
pub fn quantile(v: &mut [u32], p: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_for_a_denied_request_is_a_false_allow() {
        let s = Stats::new(Instant::now());
        let o = |expect, status| Outcome {
            kind: "denied",
            expect,
            status,
            latency: Duration::from_millis(1),
            target: "/x".into(),
            method: "GET",
            id: "t".into(),
            stage: "",
            previous: String::new(),
        };
        s.record(o(Expect::Deny, Some(403)));
        s.record(o(Expect::Deny, Some(503)));
        s.record(o(Expect::Allow, Some(504)));
        assert_eq!(s.take_totals().unexpected, 0);
        s.record(o(Expect::Deny, Some(200)));
        s.record(o(Expect::Allow, Some(403)));
        s.record(o(Expect::BadRequest, Some(404)));
        let t = s.take_totals();
        assert_eq!((t.unexpected, t.false_allow, t.false_refusal), (3, 1, 1));
    }

    #[test]
    fn quantiles() {
        let mut v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&mut v, 0.5), 51);
        assert_eq!(quantile(&mut v, 0.99), 100);
        assert_eq!(quantile(&mut [], 0.5), 0);
    }
}
