//! A future polled only when its own waker has fired.
//!
//! A connection's task selects between the connection and the shutdown
//! signal, and a `select` polls every branch on every wake. Polling the
//! shutdown `watch` takes a lock each time, on every wake of every busy
//! connection, to learn what is almost never news. [`OnWake`] polls it only
//! when it was woken (and once at first, to register).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Wraps `inner` so that it is polled only after its own waker fired.
pub struct OnWake<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    waker: Waker,
}

struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> OnWake<F> {
    /// `inner`, to be polled on its first poll and whenever it woke since.
    pub fn new(inner: F) -> Self {
        let signal = Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            inner: Box::pin(inner),
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        }
    }
}

impl<F: Future> Future for OnWake<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Registered before the flag is read: a wake in between is seen
        // either way.
        self.signal.task.register(cx.waker());
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let this = &mut *self;
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A future counting its polls, pending until `ready` is set.
    struct Counted {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
        waker: Arc<std::sync::Mutex<Option<Waker>>>,
    }

    impl Future for Counted {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn the_inner_future_is_polled_only_when_it_woke_and_still_completes() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(std::sync::Mutex::new(None));
        let mut wrapped = std::pin::pin!(OnWake::new(Counted {
            polls: Arc::clone(&polls),
            ready: Arc::clone(&ready),
            waker: Arc::clone(&waker),
        }));
        // Many wakes of the task that are not the inner future's.
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        for _ in 0..100 {
            assert!(wrapped.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "polled once, to register");

        // The inner future's own wake, from another thread, reaches the task.
        ready.store(true, Ordering::SeqCst);
        let inner_waker = waker.lock().unwrap().take().expect("registered");
        std::thread::spawn(move || inner_waker.wake())
            .join()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), wrapped)
            .await
            .expect("completes once woken");
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_watch_change_ends_the_wait() {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let waiting = tokio::spawn(async move { OnWake::new(rx.changed()).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(true).unwrap();
        let changed = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert!(changed);
    }
}
