//! One client connection: HTTP/1.1, or HTTP/2 when it opens with the
//! HTTP/2 preface (prior knowledge); on a TLS listener, after the handshake
//! ([`super::tls`]), HTTP/2 or HTTP/1.1 as chosen by ALPN.
//!
//! The protocol is told from the first bytes with `peek`, so each protocol
//! is served on the bare stream, without a rewinding wrapper on every read.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::client_stream::ClientStream;
use super::idle;
use super::on_wake::OnWake;
use crate::config::ServerConfig;
use crate::gateway::Worker;
use crate::proxy::Peer;
use crate::transport::CoarseTimer;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Connection settings of both protocols, built once per worker.
pub struct Protocols {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    header_timeout: Duration,
    send_timeout: Duration,
}

impl Protocols {
    /// Settings from `[server]`.
    pub fn new(server: &ServerConfig) -> Self {
        let mut h1 = http1::Builder::new();
        // The header-read timeout is armed for every request (and for the
        // wait before it): a coarse timer makes that cheap.
        h1.timer(CoarseTimer::default())
            .header_read_timeout(server.request_header_timeout)
            // Headers up to twice the limit reach the handler, which answers
            // a JSON 431; larger ones get hyper's bare 431.
            .max_buf_size((server.max_header_bytes * 2).max(16 * 1024) + 8 * 1024)
            .keep_alive(true)
            .writev(false);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(server.max_header_bytes * 2).unwrap_or(u32::MAX));
        Self {
            h1,
            h2,
            header_timeout: server.request_header_timeout,
            send_timeout: server.send_timeout,
        }
    }
}

/// Serves one connection until it ends, or gracefully once `stop` turns true.
pub async fn serve(
    worker: Arc<Worker>,
    protocols: Arc<Protocols>,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    // With `proxy_protocol`, the client address is the PROXY header's.
    let Some(peer) =
        super::proxy_protocol::client_address(&mut stream, peer, &worker.shared.config.server)
            .await
    else {
        return;
    };
    let _ = stream.set_nodelay(true);
    if worker.shared.tls.is_some() {
        // Boxed, like HTTP/2 below: the task of a plain HTTP/1.1 connection
        // is allocated for the whole connection and would otherwise be as
        // large as the largest of them (README, "Memory").
        return Box::pin(serve_tls(worker, protocols, stream, peer, stop)).await;
    }
    let is_h2 = match tokio::time::timeout(protocols.header_timeout, opens_with_h2_preface(&stream))
        .await
    {
        Ok(Ok(Some(h2))) => h2,
        // Closed, failed, or silent for request_header_timeout.
        _ => return,
    };
    let peer = Arc::new(Peer::new(peer));
    let io = TokioIo::new(ClientStream::new(stream, protocols.send_timeout, &peer));
    serve_http(worker, &protocols, io, is_h2, peer, &mut stop).await;
}

/// The TLS handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(
    worker: Arc<Worker>,
    protocols: Arc<Protocols>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let Some(tls) = &worker.shared.tls else {
        return;
    };
    let Some(accepted) = super::tls::accept(tls, stream, protocols.header_timeout).await else {
        return;
    };
    let peer = Arc::new(Peer::new(peer).with_tls(accepted.client_cert_sha256));
    let io = TokioIo::new(ClientStream::new(
        accepted.stream,
        protocols.send_timeout,
        &peer,
    ));
    serve_http(worker, &protocols, io, accepted.h2, peer, &mut stop).await;
}

/// Serves HTTP/2 (`is_h2`) or HTTP/1.1 on `io` until it ends or `stop`.
async fn serve_http<I>(
    worker: Arc<Worker>,
    protocols: &Protocols,
    io: TokioIo<I>,
    is_h2: bool,
    peer_state: Arc<Peer>,
    stop: &mut watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _open = worker.metrics.connection();
    let client = peer_state.addr;
    let result = if is_h2 {
        // Closed once no request has been in progress for the header
        // timeout, like an HTTP/1.1 connection waiting for a request head.
        let streams = idle::Streams::new();
        let counted = Arc::clone(&streams);
        let service = service_fn(move |req| {
            let guard = counted.enter();
            let worker = Arc::clone(&worker);
            let peer = Arc::clone(&peer_state);
            // Boxed: hyper moves each stream's future (a few KB) several
            // times on its way into the stream's task.
            Box::pin(async move {
                let resp = crate::proxy::handle(&worker, &peer, req).await;
                Ok::<_, Infallible>(resp.map(|body| idle::Tracked::new(body, guard)))
            })
        });
        let conn = protocols.h2.serve_connection(io, service);
        let quiet = streams.idle(protocols.header_timeout);
        // Boxed: an HTTP/2 connection's state is far larger than an
        // HTTP/1.1 one's, and the task is sized for the largest (README,
        // "Memory").
        Box::pin(drive(
            conn,
            |c| c.graceful_shutdown(),
            stop,
            quiet,
            protocols.header_timeout,
        ))
        .await
    } else {
        let service = service_fn(move |req| {
            let worker = Arc::clone(&worker);
            let peer = Arc::clone(&peer_state);
            async move { Ok::<_, Infallible>(crate::proxy::handle(&worker, &peer, req).await) }
        });
        let conn = protocols.h1.serve_connection(io, service);
        let never = std::future::pending();
        drive(conn, |c| c.graceful_shutdown(), stop, never, Duration::ZERO).await
    };
    if let Some(Err(e)) = result {
        tracing::debug!(error = %e, %client, "connection ended with an error");
    }
}

/// `Some(true)` for HTTP/2, `Some(false)` for anything else, `None` if the
/// peer closed before sending a byte.
async fn opens_with_h2_preface(stream: &TcpStream) -> std::io::Result<Option<bool>> {
    let mut buf = [0u8; 24];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if !H2_PREFACE.starts_with(&buf[..n]) {
            return Ok(Some(false));
        }
        if n >= H2_PREFACE.len() {
            return Ok(Some(true));
        }
        // A strict prefix of the preface ("P", "PRI * HT"…): more bytes are
        // on the way. `peek` would return at once with the same bytes, so
        // wait a little (bounded by the caller's header timeout).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drives `conn` to its end; once `stop` turns true, asks it to finish
/// gracefully (`shut_down`) and waits for that. Once `idle` completes, asks
/// the same and waits at most `grace`, then drops it (`None`): a peer that
/// never finishes a half-sent frame cannot keep it open.
async fn drive<C: Future>(
    conn: C,
    shut_down: impl FnOnce(Pin<&mut C>),
    stop: &mut watch::Receiver<bool>,
    idle: impl Future<Output = ()>,
    grace: Duration,
) -> Option<C::Output> {
    tokio::pin!(conn);
    tokio::select! {
        // The connection first; the others rarely complete.
        biased;
        res = conn.as_mut() => Some(res),
        _ = OnWake::new(stop.changed()) => {
            shut_down(conn.as_mut());
            Some(conn.await)
        }
        _ = idle => {
            shut_down(conn.as_mut());
            tokio::time::timeout(grace, conn).await.ok()
        }
    }
}
