//! A timer for timeouts counted in seconds, owned by one worker (its
//! connection settings and each of its upstream pools have one): the
//! header-read timeout of each HTTP/1.1 request and the upstream timeout of
//! each forwarded one.
//!
//! A tokio timer entry per request costs two visits to the runtime's timer
//! wheel, registering and removing it. Here a deadline is a slot in
//! a short list behind an uncontended lock, and a ticker task, running every
//! [`TICK`] while any deadline is pending, wakes the ones that have passed:
//! a deadline fires up to one tick late, never early.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often pending deadlines are checked, and so how late one may fire.
pub const TICK: Duration = Duration::from_millis(50);

/// A timer whose deadlines are checked every [`TICK`]. Clones share it.
#[derive(Clone, Default)]
pub struct CoarseTimer {
    slots: Arc<Mutex<Slots>>,
}

#[derive(Default)]
struct Slots {
    /// Pending deadlines and the task to wake; `None` marks a free slot.
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Whether a ticker task is running for these slots.
    ticking: bool,
}

struct Entry {
    deadline: Instant,
    /// Set by the ticker once the deadline has passed.
    fired: bool,
    /// Taken when the ticker wakes it.
    waker: Option<Waker>,
}

impl Slots {
    fn lock(slots: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
        slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&mut self, entry: Entry) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(entry);
                i
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.entries.get_mut(i) {
            if slot.take().is_some() {
                self.free.push(i);
            }
        }
    }

    /// Marks the deadlines that have passed as fired and takes their
    /// wakers.
    fn due(&mut self, now: Instant) -> Vec<Waker> {
        self.entries
            .iter_mut()
            .flatten()
            .filter(|e| e.deadline <= now)
            .filter_map(|e| {
                e.fired = true;
                e.waker.take()
            })
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.free.len() == self.entries.len()
    }
}

/// The timeout ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl CoarseTimer {
    /// A future that completes once `deadline` has passed (up to a tick
    /// later).
    pub fn sleep_until(&self, deadline: Instant) -> CoarseSleep {
        CoarseSleep {
            slots: Arc::clone(&self.slots),
            deadline,
            slot: None,
        }
    }

    /// Runs `fut` until it completes or `deadline` passes.
    pub async fn timeout_at<F: Future>(
        &self,
        deadline: Instant,
        fut: F,
    ) -> Result<F::Output, Elapsed> {
        let mut fut = std::pin::pin!(fut);
        let mut sleep = self.sleep_until(deadline);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            Pin::new(&mut sleep).poll(cx).map(|()| Err(Elapsed))
        })
        .await
    }
}

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.sleep_until(Instant::now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoarseTimer::sleep_until(self, deadline))
    }
}

/// Completes once its deadline has passed; see [`CoarseTimer`].
pub struct CoarseSleep {
    slots: Arc<Mutex<Slots>>,
    deadline: Instant,
    /// Its entry, once it has waited.
    slot: Option<usize>,
}

impl Future for CoarseSleep {
    type Output = ();

    /// Reads no clock: only the ticker decides that a deadline has passed,
    /// so a sleep polled on every wake of a busy connection costs a lock
    /// and a flag.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut slots = Slots::lock(&this.slots);
        match this.slot.and_then(|i| slots.entries.get_mut(i)?.as_mut()) {
            Some(entry) if entry.fired => {
                if let Some(i) = this.slot.take() {
                    slots.remove(i);
                }
                return Poll::Ready(());
            }
            Some(entry) => {
                if !entry
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    entry.waker = Some(cx.waker().clone());
                }
            }
            None => {
                this.slot = Some(slots.insert(Entry {
                    deadline: this.deadline,
                    fired: false,
                    waker: Some(cx.waker().clone()),
                }));
                if !slots.ticking {
                    slots.ticking = true;
                    tokio::spawn(tick(Arc::downgrade(&this.slots)));
                }
            }
        }
        Poll::Pending
    }
}

impl CoarseSleep {
    fn release(&mut self) {
        if let Some(i) = self.slot.take() {
            Slots::lock(&self.slots).remove(i);
        }
    }
}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        self.release();
    }
}

impl hyper::rt::Sleep for CoarseSleep {}

/// Wakes the deadlines that have passed, every [`TICK`], until none is
/// pending or the timer is gone.
async fn tick(slots: Weak<Mutex<Slots>>) {
    loop {
        tokio::time::sleep(TICK).await;
        let Some(slots) = slots.upgrade() else { return };
        let (due, idle) = {
            let mut slots = Slots::lock(&slots);
            let due = slots.due(Instant::now());
            let idle = slots.is_empty();
            if idle {
                // The next deadline registered starts a new ticker.
                slots.ticking = false;
            }
            (due, idle)
        };
        due.into_iter().for_each(Waker::wake);
        if idle {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleep_ends_after_its_deadline_and_within_a_tick_or_two() {
        let timer = CoarseTimer::default();
        let start = Instant::now();
        timer.sleep_until(start + Duration::from_millis(120)).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(120), "early: {took:?}");
        assert!(
            took < Duration::from_millis(120) + 4 * TICK,
            "late: {took:?}"
        );
    }

    #[tokio::test]
    async fn timeout_at_returns_the_output_or_elapsed() {
        let timer = CoarseTimer::default();
        let soon = Instant::now() + Duration::from_millis(100);
        assert_eq!(timer.timeout_at(soon, async { 7 }).await, Ok(7));
        let never = std::future::pending::<()>();
        assert_eq!(timer.timeout_at(soon, never).await, Err(Elapsed));
        assert!(Instant::now() >= soon);
    }

    #[tokio::test]
    async fn dropped_sleeps_free_their_slots_and_the_ticker_stops() {
        let timer = CoarseTimer::default();
        let later = Instant::now() + Duration::from_secs(60);
        for _ in 0..100 {
            let fut = timer.timeout_at(later, tokio::task::yield_now());
            assert_eq!(fut.await, Ok(()));
        }
        // Each timeout's sleep registered only when the work was pending
        // (once per yield), and freed its slot when it was dropped.
        {
            let slots = Slots::lock(&timer.slots);
            assert!(slots.is_empty());
            assert!(slots.entries.len() <= 1, "slots are reused");
        }
        // With nothing pending, the ticker ends within a tick or two.
        tokio::time::sleep(3 * TICK).await;
        assert!(!Slots::lock(&timer.slots).ticking);
        // And a new deadline starts it again.
        timer
            .sleep_until(Instant::now() + Duration::from_millis(60))
            .await;
    }

    #[tokio::test]
    async fn many_waiters_each_wake_at_their_own_deadline() {
        let timer = CoarseTimer::default();
        let start = Instant::now();
        let tasks: Vec<_> = (1..=5u64)
            .map(|i| {
                let timer = timer.clone();
                tokio::spawn(async move {
                    let deadline = start + Duration::from_millis(60 * i);
                    timer.sleep_until(deadline).await;
                    (deadline, Instant::now())
                })
            })
            .collect();
        for t in tasks {
            let (deadline, woke) = t.await.unwrap();
            assert!(woke >= deadline);
            assert!(woke < deadline + 4 * TICK, "late by {:?}", woke - deadline);
        }
    }

    #[tokio::test]
    async fn a_deadline_already_past_when_first_polled_ends_at_the_next_tick() {
        let timer = CoarseTimer::default();
        let start = Instant::now();
        timer.sleep_until(start - Duration::from_millis(5)).await;
        assert!(start.elapsed() < 4 * TICK, "late: {:?}", start.elapsed());
    }
}
