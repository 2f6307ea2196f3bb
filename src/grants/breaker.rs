//! A circuit breaker for the shared cache: after a few consecutive failures
//! requests stop asking Redis, so a dead or stuck Redis costs no request a
//! timeout. Requests only read one flag; the shared cache's background task
//! probes Redis while the breaker is open and closes it on success.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Consecutive failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;

/// Open or closed, with the count of consecutive failures.
#[derive(Debug)]
pub struct Breaker {
    /// Failures since the last success.
    failures: AtomicU32,
    /// Whether requests skip Redis.
    open: AtomicBool,
}

/// A change of state that the caller logs and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Requests skip Redis from now on.
    Opened,
    /// Requests use Redis again.
    Closed,
}

impl Breaker {
    /// A breaker that starts open: nothing is known about Redis until the
    /// background task has reached it once.
    pub fn new_open() -> Self {
        Self {
            failures: AtomicU32::new(0),
            open: AtomicBool::new(true),
        }
    }

    /// Whether requests skip Redis.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// An operation succeeded (or a probe did).
    pub fn success(&self) -> Option<Transition> {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        self.open
            .swap(false, Ordering::AcqRel)
            .then_some(Transition::Closed)
    }

    /// An operation failed or timed out.
    pub fn failure(&self) -> Option<Transition> {
        let n = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if n >= FAILURES_TO_OPEN && !self.open.swap(true, Ordering::AcqRel) {
            return Some(Transition::Opened);
        }
        None
    }

    /// Opens at once (the connection is known to be gone).
    pub fn trip(&self) -> Option<Transition> {
        (!self.open.swap(true, Ordering::AcqRel)).then_some(Transition::Opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_closes_on_success() {
        let b = Breaker::new_open();
        assert!(b.is_open(), "unknown Redis: skipped");
        assert_eq!(b.success(), Some(Transition::Closed));
        assert!(!b.is_open());
        assert_eq!(b.failure(), None);
        assert_eq!(b.failure(), None);
        assert_eq!(b.success(), None, "a success resets the count");
        assert_eq!(b.failure(), None);
        assert_eq!(b.failure(), None);
        assert!(!b.is_open());
        assert_eq!(b.failure(), Some(Transition::Opened));
        assert!(b.is_open());
        assert_eq!(b.failure(), None, "already open: one transition");
        assert_eq!(b.success(), Some(Transition::Closed));
        assert_eq!(b.trip(), Some(Transition::Opened));
        assert_eq!(b.trip(), None);
    }
}
