//! Bodies on the hot path: the request body streamed upstream under the size
//! limit, and the response body (the upstream's, streamed, or our own JSON).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::transport::{BodySent, PooledBody, TrackedBody};

/// Error from a request body that grew past `max_request_body`.
#[derive(Debug)]
pub struct BodyTooLarge;

impl std::fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body exceeds max_request_body")
    }
}

impl std::error::Error for BodyTooLarge {}

/// Whether `err`, or an error in its source chain, is an `E`.
pub fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<E>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Error from reading the client's body itself (malformed chunked framing,
/// a connection cut mid-body): the client's fault, not the upstream's.
#[derive(Debug)]
pub struct ClientBodyError(hyper::Error);

impl std::fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the request body: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The client's body, streamed upstream; fails once it passes the limit,
/// which aborts the upstream request before it completes. Marks when its
/// last frame has been taken, so the upstream connection is pooled only
/// once nothing more is owed on it.
pub struct RequestBody {
    inner: Incoming,
    remaining: u64,
    /// `None` for a body already at its end (no body): nothing to track.
    sent: Option<BodySent>,
}

impl RequestBody {
    /// Streams `inner`, allowing at most `limit` bytes.
    pub fn new(inner: Incoming, limit: u64) -> Self {
        let sent = (!inner.is_end_stream()).then(BodySent::default);
        Self {
            inner,
            remaining: limit,
            sent,
        }
    }

    /// Records that the last frame has been taken.
    fn mark_sent(&self) {
        if let Some(sent) = &self.sent {
            sent.mark();
        }
    }
}

impl TrackedBody for RequestBody {
    fn sent(&self) -> Option<BodySent> {
        self.sent.clone()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                let len = data.len() as u64;
                if len > self.remaining {
                    self.remaining = 0;
                    return Poll::Ready(Some(Err(Box::new(BodyTooLarge))));
                }
                self.remaining -= len;
            }
        }
        let last = match &frame {
            None => true,
            Some(Ok(f)) => f.is_trailers() || self.inner.is_end_stream(),
            Some(Err(_)) => false,
        };
        if last {
            self.mark_sent();
        }
        Poll::Ready(frame.map(|r| r.map_err(|e| ClientBodyError(e).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the client receives.
pub enum ResponseBody {
    /// An answer of the gateway's own.
    Full(Option<Bytes>),
    /// The upstream's body, streamed.
    Upstream(PooledBody<RequestBody>),
}

impl ResponseBody {
    /// A complete body.
    pub fn full(bytes: Bytes) -> Self {
        ResponseBody::Full(Some(bytes))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Upstream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Upstream(body) => body.size_hint(),
        }
    }
}
