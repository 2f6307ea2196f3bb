//! Pooled HTTP/1.1 client connections to one origin, owned by one worker.
//!
//! Each worker thread keeps its own [`Http1Pool`] per origin (upstreams and
//! the permission API), so a connection is only ever driven by the runtime
//! that opened it. A connection goes back to the pool when its response body
//! has been read to the end and its request body has been sent whole; any
//! other connection is closed (an upstream may answer before it has read the
//! request body, and the next request would wait behind the bytes still
//! owed). This is the seam behind which the upstream client can change.
//!
//! An https origin gets a [`TlsClient`]: each new connection runs the TLS
//! handshake (within the connect timeout) before the HTTP/1.1 handshake,
//! and the pooled connection keeps its TLS stream in its connection task.

mod coarse_timer;
mod tls;

pub use coarse_timer::{CoarseSleep, CoarseTimer, Elapsed};
pub use tls::{ClientIdentity, TlsClient, TlsSetupError, load_certificates, load_private_key};

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Idle connections kept per pool.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a pool closes the connections idle for longer than
/// [`IDLE_TIMEOUT`], so a burst's connections (and their buffers) do not
/// outlive it when no request comes to reuse them.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// Reused connections tried before opening a new one.
const MAX_REUSE_ATTEMPTS: usize = 4;

/// Why a request could not be exchanged with the origin.
#[derive(Debug)]
pub enum TransportError {
    /// The TCP connection could not be established.
    Connect(std::io::Error),
    /// The TCP connection (and the TLS handshake, for https) took longer
    /// than the connect timeout.
    ConnectTimeout,
    /// The TLS handshake failed: the certificate could not be verified, the
    /// origin refused ours, or it does not speak TLS.
    Tls(std::io::Error),
    /// The response headers took longer than the timeout.
    Timeout,
    /// The connection failed or the origin sent something that is not HTTP.
    Http(hyper::Error),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::ConnectTimeout => f.write_str("connect timed out"),
            Self::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Self::Timeout => f.write_str("no response headers in time"),
            Self::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Tls(e) => Some(e),
            Self::Http(e) => Some(e),
            Self::ConnectTimeout | Self::Timeout => None,
        }
    }
}

/// Set once a request body has been sent to the end. Shared by the body
/// being written and the response body, which returns the connection to the
/// pool only once it is set.
#[derive(Clone, Debug, Default)]
pub struct BodySent(Arc<AtomicBool>);

impl BodySent {
    /// Records that the body's last frame has been taken.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A request body that tells the pool when it has been sent whole.
pub trait TrackedBody: Body {
    /// The flag the body sets once sent, or `None` when it was already at
    /// its end before sending (nothing to wait for).
    fn sent(&self) -> Option<BodySent>;
}

impl TrackedBody for Empty<Bytes> {
    fn sent(&self) -> Option<BodySent> {
        None
    }
}

struct Idle<B> {
    sender: SendRequest<B>,
    since: Instant,
}

/// A pool of HTTP/1.1 connections to one `host:port`.
pub struct Http1Pool<B> {
    connect_to: String,
    tls: Option<TlsClient>,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle<B>>>,
    /// Whether the task closing stale idle connections runs.
    reaping: AtomicBool,
    /// Times each request out (the pool's worker's own timer).
    timer: CoarseTimer,
}

impl<B> Http1Pool<B>
where
    B: TrackedBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// A pool for `connect_to` (`host:port`), over TLS when `tls` is given.
    /// `connect_timeout` bounds the TCP connect and the TLS handshake.
    pub fn new(connect_to: String, tls: Option<TlsClient>, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connect_to,
            tls,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            reaping: AtomicBool::new(false),
            timer: CoarseTimer::default(),
        })
    }

    /// Sends `req`, handed over at `now`, and waits at most `timeout` for
    /// the response headers. The request must be origin-form and carry a
    /// `Host` header.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<B>,
        now: Instant,
        timeout: Duration,
    ) -> Result<Response<PooledBody<B>>, TransportError> {
        let deadline = now + timeout;
        let body_sent = req.body().sent();
        let mut reuse_attempts = 0;
        loop {
            let (mut sender, reused) = match self.take_idle(now) {
                Some(s) if reuse_attempts < MAX_REUSE_ATTEMPTS => (s, true),
                // Boxed: rare, and a large future to carry in every request.
                _ => {
                    self.start_reaping();
                    (Box::pin(self.connect()).await?, false)
                }
            };
            if reused {
                reuse_attempts += 1;
            }
            // A pooled connection is almost always ready at once; only
            // wait (under the deadline) when it is not. The request is not
            // moved into that wait, so it is copied once, into the send.
            if reused && !sender.is_ready() {
                match self.timer.timeout_at(deadline, sender.ready()).await {
                    Err(_) => return Err(TransportError::Timeout),
                    // Closed while idle: the request is still untouched.
                    Ok(Err(_)) => continue,
                    Ok(Ok(())) => {}
                }
            }
            let sent = match self
                .timer
                .timeout_at(deadline, sender.try_send_request(req))
                .await
            {
                Err(_) => return Err(TransportError::Timeout),
                Ok(sent) => sent,
            };
            match sent {
                Ok(resp) => {
                    let pool = Arc::clone(self);
                    return Ok(resp.map(|body| PooledBody {
                        inner: body,
                        release: Some((sender, pool)),
                        body_sent,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Not written to the connection: safe to try another one.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(TransportError::Http(e.into_error())),
                },
            }
        }
    }

    /// The pool's timer, for callers that time out more than the response
    /// headers.
    pub fn timer(&self) -> &CoarseTimer {
        &self.timer
    }

    /// Starts, on the runtime of the first connection, the task that closes
    /// stale idle connections; it ends with the pool.
    fn start_reaping(self: &Arc<Self>) {
        if self.reaping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                pool.close_idle_for(IDLE_TIMEOUT);
            }
        });
    }

    async fn connect(&self) -> Result<SendRequest<B>, TransportError> {
        let open = async {
            let tcp = TcpStream::connect(&self.connect_to)
                .await
                .map_err(TransportError::Connect)?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => handshake(tcp).await,
                Some(tls) => handshake(tls.connect(tcp).await.map_err(TransportError::Tls)?).await,
            }
        };
        tokio::time::timeout(self.connect_timeout, open)
            .await
            .map_err(|_| TransportError::ConnectTimeout)?
    }
}

/// The HTTP/1.1 handshake over `io`; the spawned connection task owns `io`.
async fn handshake<B, T>(io: T) -> Result<SendRequest<B>, TransportError>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(io))
        .await
        .map_err(TransportError::Http)?;
    // Errors end the connection quietly: the request in flight sees them.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl<B> Http1Pool<B> {
    /// The most recently pooled connection that is open and was not idle
    /// for [`IDLE_TIMEOUT`] at `now`.
    fn take_idle(&self, now: Instant) -> Option<SendRequest<B>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && now.saturating_duration_since(c.since) < IDLE_TIMEOUT {
                return Some(c.sender);
            }
        }
        None
    }

    /// Closes the idle connections that are closed already or have been
    /// idle for `max_idle` or longer.
    fn close_idle_for(&self, max_idle: Duration) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < max_idle);
    }

    fn put_idle(&self, sender: SendRequest<B>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// A response body that returns its connection to the pool once read to
/// the end, if the request body has been sent whole by then.
pub struct PooledBody<B> {
    inner: Incoming,
    release: Option<(SendRequest<B>, Arc<Http1Pool<B>>)>,
    /// `None` when the request had no body to send.
    body_sent: Option<BodySent>,
}

impl<B> PooledBody<B> {
    /// Closes the connection instead of returning it to the pool: its
    /// state is not one another request may start from.
    pub fn close(mut self) {
        self.release = None;
    }

    /// Pools the connection, or closes it while request bytes are still
    /// owed: the next request would be written behind them.
    fn release(&mut self) {
        if let Some((sender, pool)) = self.release.take() {
            if self.body_sent.as_ref().is_none_or(BodySent::is_marked) {
                pool.put_idle(sender);
            }
        }
    }
}

impl<B> Body for PooledBody<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Ok(_)) if self.inner.is_end_stream() => self.release(),
            Some(Err(_)) => self.release = None,
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for PooledBody<B> {
    fn drop(&mut self) {
        // Read to the end (or empty from the start, like a 204 or a HEAD
        // answer): the connection can take another request, once the
        // request body has been sent too.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use http_body_util::{BodyExt, Full};

    use super::*;

    /// An HTTP/1.1 origin on 127.0.0.1 that answers `ok` and counts the
    /// connections that have ended.
    async fn origin() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ended = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&ended);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let count = Arc::clone(&count);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                    count.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (addr, ended)
    }

    #[tokio::test]
    async fn idle_connections_past_the_idle_time_are_closed() {
        let (addr, ended) = origin().await;
        let pool = Http1Pool::<Empty<Bytes>>::new(addr.to_string(), None, Duration::from_secs(5));
        let req = Request::get("/")
            .header("host", "origin")
            .body(Empty::new())
            .unwrap();
        let resp = pool
            .send(req, Instant::now(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            &resp.into_body().collect().await.unwrap().to_bytes()[..],
            b"ok"
        );
        assert!(
            pool.reaping.load(Ordering::Relaxed),
            "the first connection starts the reaper"
        );
        let idle = || pool.idle.lock().unwrap().len();
        assert_eq!(idle(), 1, "pooled once its answer was read");

        pool.close_idle_for(Duration::from_secs(3600));
        assert_eq!(idle(), 1, "a recently used connection stays");
        pool.close_idle_for(Duration::ZERO);
        assert_eq!(idle(), 0, "a connection idle for too long leaves the pool");
        for _ in 0..500 {
            if ended.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            ended.load(Ordering::SeqCst),
            1,
            "and the origin sees it closed"
        );
    }
}
