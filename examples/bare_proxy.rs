//! The least a hyper HTTP/1.1 reverse proxy does, for measuring how close
//! permgate is to what its HTTP stack allows (benches/ceiling.sh).
//!
//!   bare_proxy LISTEN_ADDR UPSTREAM_ADDR
//!
//! One thread, the same hyper settings as permgate's (`writev(false)` on
//! both sides, keep-alive), a pool of upstream connections, no timers, no
//! header rewriting, no authorization: every request goes upstream as it
//! came and the answer streams back. Not a gateway: it checks nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

type Pool = Arc<Mutex<Vec<SendRequest<Incoming>>>>;
type Answer = Response<BoxBody<Bytes, hyper::Error>>;

/// The upstream answer's body; its connection goes back to the pool once
/// the body has been read to the end.
struct Pooled {
    inner: Incoming,
    release: Option<(SendRequest<Incoming>, Pool)>,
}

impl Pooled {
    fn release_if_done(&mut self) {
        if self.inner.is_end_stream() {
            if let Some((sender, pool)) = self.release.take() {
                pool.lock().unwrap().push(sender);
            }
        }
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.release_if_done();
        } else if let Poll::Ready(Some(Ok(_))) = frame {
            self.release_if_done();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn forward(upstream: SocketAddr, pool: Pool, req: Request<Incoming>) -> Answer {
    let idle = pool.lock().unwrap().pop();
    let mut sender = match idle {
        Some(s) if !s.is_closed() => s,
        _ => match connect(upstream).await {
            Some(s) => s,
            None => return bad_gateway(),
        },
    };
    match sender.send_request(req).await {
        Ok(resp) => resp.map(|inner| {
            let mut body = Pooled {
                inner,
                release: Some((sender, pool)),
            };
            body.release_if_done();
            body.boxed()
        }),
        Err(_) => bad_gateway(),
    }
}

async fn connect(upstream: SocketAddr) -> Option<SendRequest<Incoming>> {
    let tcp = tokio::net::TcpStream::connect(upstream).await.ok()?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(sender)
}

fn bad_gateway() -> Answer {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r
}

fn main() {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("LISTEN_ADDR (e.g. 127.0.0.1:19350)");
    let upstream: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("UPSTREAM_ADDR (e.g. 127.0.0.1:19300)");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pool: Pool = Arc::default();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let pool = Arc::clone(&pool);
                    async move { Ok::<_, Infallible>(forward(upstream, pool, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .writev(false)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}
