//! Listeners and workers: thread-per-core serving and graceful stop.
//!
//! [`run`] starts `server.workers` threads, each with a single-threaded
//! tokio runtime that accepts from the shared proxy listener and serves its
//! connections (HTTP/1.1, and HTTP/2 with prior knowledge) with its own
//! upstream connection pools. The admin listener, the reload triggers and the
//! shared cache's background task (connection, purge channel, probes) run
//! on the caller's runtime, at normal priority; reloads read and compile on
//! its blocking threads, lowered to nice 19, so probes never wait for them.
//! When the shutdown future completes, `/readyz` turns 503, serving goes on
//! for `drain_delay`, then accepting stops and in-flight requests get
//! `shutdown_timeout` to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, oneshot, watch};

use crate::gateway::{Gateway, Worker};

mod client_stream;
mod connection;
mod idle;
mod on_wake;
mod proxy_protocol;
pub mod tls;

/// Already-bound listeners for [`run`].
pub struct Listeners {
    /// Client traffic.
    pub proxy: std::net::TcpListener,
    /// `/healthz`, `/readyz`, `/admin/*`.
    pub admin: std::net::TcpListener,
}

impl Listeners {
    /// Binds the addresses of the config.
    pub fn bind(gateway: &Gateway) -> std::io::Result<Self> {
        let c = gateway.config();
        let bind = |addr: SocketAddr, what: &str| {
            std::net::TcpListener::bind(addr).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
            })
        };
        Ok(Self {
            proxy: bind(c.server.listen, "server.listen")?,
            admin: bind(c.admin.listen, "admin.listen")?,
        })
    }
}

/// Serves until `shutdown` completes, then drains and returns.
pub async fn run(
    gateway: Gateway,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::clone(&gateway.shared);
    let server = shared.config.server.clone();
    listeners.proxy.set_nonblocking(true)?;
    listeners.admin.set_nonblocking(true)?;
    let admin = TcpListener::from_std(listeners.admin)?;
    // The bound addresses (a configured port 0 becomes the real one).
    let listen = listeners.proxy.local_addr()?;
    let admin_listen = admin.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(server.max_connections));
    let mut done = Vec::with_capacity(server.workers);
    for i in 0..server.workers {
        let listener = listeners.proxy.try_clone()?;
        let worker = gateway.worker();
        let stop = stop_rx.clone();
        let slots = Arc::clone(&slots);
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let timeout = server.shutdown_timeout;
        std::thread::Builder::new()
            .name(format!("permgate-worker-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a worker runtime");
                        return;
                    }
                };
                rt.block_on(async {
                    if let Some(&housekeeping) = WORKER_HOUSEKEEPING.get() {
                        // Ends with the runtime, when serve_worker returns.
                        tokio::spawn(every(HOUSEKEEPING_PERIOD, housekeeping));
                    }
                    serve_worker(worker, listener, stop, slots, timeout).await
                });
                drop(done_tx);
            })?;
        done.push(done_rx);
    }

    let admin_task = tokio::spawn(crate::admin::serve(
        Arc::clone(&shared),
        admin,
        stop_rx.clone(),
    ));
    let reloader = crate::reload::Reloader::new(Arc::clone(&shared));
    let reload_task = tokio::spawn(reloader.run(stop_rx.clone()));
    let shared_cache_task = shared
        .cache
        .shared()
        .map(|l2| tokio::spawn(Arc::clone(l2).supervise(shared.cache.clone(), stop_rx.clone())));
    tracing::info!(%listen, admin = %admin_listen, workers = server.workers, "permgate serving");

    shutdown.await;
    shared.draining.store(true, Ordering::SeqCst);
    tracing::info!(drain_delay = ?server.drain_delay, "stop requested: draining");
    tokio::time::sleep(server.drain_delay).await;
    let _ = stop_tx.send(true);
    for d in done {
        let _ = d.await;
    }
    let _ = admin_task.await;
    let _ = reload_task.await;
    if let Some(t) = shared_cache_task {
        let _ = t.await;
    }
    tracing::info!("permgate stopped");
    Ok(())
}

/// How often each worker thread runs the housekeeping hook.
const HOUSEKEEPING_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

static WORKER_HOUSEKEEPING: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Sets a function every worker thread calls on itself every few seconds,
/// for as long as it serves: the binary gives back the memory its allocator
/// keeps for the thread after a burst of connections (README, "Memory").
/// Set once, before the gateway starts; later calls are ignored.
pub fn set_worker_housekeeping(f: fn()) {
    let _ = WORKER_HOUSEKEEPING.set(f);
}

async fn every(period: std::time::Duration, f: fn()) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        f();
    }
}

/// Runs the gateway on the calling thread until `shutdown` completes: the
/// one way `permgate run`, `permgate demo` and the tests start a gateway.
/// The calling thread's runtime serves the admin listener and reloads; the
/// workers get threads of their own.
pub fn serve_blocking(
    gateway: Gateway,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    raise_open_file_limit(gateway.shared.config.server.max_connections);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot start the runtime: {e}")))?;
    rt.block_on(run(gateway, listeners, shutdown))
}

/// Raises the soft limit on open files to the hard limit: every client
/// connection takes a descriptor and so does every upstream connection, and
/// a soft limit of 1,024 (a common default) would refuse connections long
/// before `max_connections`. Warns when even the hard limit is below what
/// `max_connections` may need. Returns the soft limit now in force (`None`:
/// unlimited).
pub fn raise_open_file_limit(max_connections: usize) -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
    let now = getrlimit(Resource::Nofile).current;
    let needed = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(64);
    if let Some(n) = now.filter(|&n| n < needed) {
        tracing::warn!(
            limit = n,
            needed,
            "the open-file limit is below 2 x max_connections: connections past it are refused"
        );
    }
    now
}

/// Completes on SIGTERM or SIGINT.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Counts a worker's open connections so a stop can wait for them.
#[derive(Default)]
struct Open {
    count: AtomicUsize,
    idle: Notify,
}

impl Open {
    fn enter(self: &Arc<Self>) -> OpenGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        OpenGuard(Arc::clone(self))
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct OpenGuard(Arc<Open>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

async fn serve_worker(
    worker: Worker,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    shutdown_timeout: Duration,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "worker cannot use the listener");
            return;
        }
    };
    let protocols = Arc::new(connection::Protocols::new(&worker.shared.config.server));
    let worker = Arc::new(worker);
    let open = Arc::new(Open::default());
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not die.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let guard = open.enter();
        let conn = connection::serve(
            Arc::clone(&worker),
            Arc::clone(&protocols),
            stream,
            peer,
            stop.clone(),
        );
        tokio::spawn(async move {
            conn.await;
            drop(permit);
            drop(guard);
        });
    }
    drop(listener);
    if tokio::time::timeout(shutdown_timeout, open.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            open = open.count.load(Ordering::SeqCst),
            "shutdown_timeout reached; closing connections"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        // Lowered first (to 512, or the hard limit if that is lower), so
        // the call has something to raise.
        let low = hard.map_or(512, |h| h.min(512));
        let lowered = Rlimit {
            current: Some(low),
            maximum: hard,
        };
        setrlimit(Resource::Nofile, lowered).unwrap();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(low));
        let now = super::raise_open_file_limit(1);
        assert_eq!(getrlimit(Resource::Nofile).current, hard);
        assert_eq!(now, hard);
    }

    #[tokio::test(start_paused = true)]
    async fn housekeeping_runs_at_once_and_then_every_period() {
        let task = tokio::spawn(super::every(super::HOUSEKEEPING_PERIOD, count));
        tokio::time::sleep(super::HOUSEKEEPING_PERIOD * 2 + Duration::from_millis(100)).await;
        task.abort();
        // At 0, one period and two periods.
        assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    }
}
