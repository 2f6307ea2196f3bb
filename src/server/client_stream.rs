//! The client side of a connection: a send deadline and a lingering close.
//!
//! **Send deadline.** A client that never reads would keep its connection,
//! its `max_connections` slot and the upstream connection its answer
//! streams from for ever. Once a write has made no progress for
//! `send_timeout` (the socket's send buffer stays full), the write fails with
//! `TimedOut` and the connection ends. The clock starts only while a write
//! waits, and restarts at every byte written, so a slow but reading client
//! is never cut off.
//!
//! **Lingering close.** When the gateway answers before reading a request
//! body (a 401, 403, 413 or 503 to an upload) and then closes, the body
//! bytes still arriving would make the kernel reset the connection, and a
//! reset fails the client's upload, and many clients then never read the
//! answer. So when an answer left its request body unread
//! ([`Peer::body_left_unread`]), the shutdown keeps reading and discarding
//! what the client sends until it closes its side or [`LINGER`] has passed,
//! and only then lets the connection close. Other shutdowns close at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::proxy::Peer;

/// Longest time a closing connection keeps discarding what the client
/// still sends.
pub const LINGER: Duration = Duration::from_secs(5);

/// A client stream whose writes fail after `timeout` without progress and
/// whose shutdown lingers while the client is still sending.
pub struct ClientStream<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits; `None` while writes go through.
    waiting: Option<Pin<Box<Sleep>>>,
    /// Says whether an answer left a request body unread.
    peer: Arc<Peer>,
    closing: Closing,
}

/// Where a shutdown stands.
enum Closing {
    /// No shutdown asked for yet, or our write side not closed yet.
    Open,
    /// Our side is closed; discarding what the client still sends until
    /// its end or the deadline.
    Lingering(Pin<Box<Sleep>>),
    Done,
}

impl<S> ClientStream<S> {
    /// Wraps `inner`, the connection of `peer`; writes may wait at most
    /// `timeout` for progress.
    pub fn new(inner: S, timeout: Duration, peer: &Arc<Peer>) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
            peer: Arc::clone(peer),
            closing: Closing::Open,
        }
    }

    /// Passes a ready result through (disarming the clock); while pending,
    /// arms the clock and fails once it runs out.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.waiting = None;
            return result;
        }
        let timeout = self.timeout;
        let sleep = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.waiting = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for send_timeout",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ClientStream<S> {
    /// After our side is closed: discards what the client sends until it
    /// closes, fails, or the linger deadline passes.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Closing::Lingering(deadline) = &mut self.closing else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                Poll::Ready(_) => break,
                Poll::Pending => {
                    ready!(deadline.as_mut().poll(cx));
                    break;
                }
            }
        }
        self.closing = Closing::Done;
        Poll::Ready(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ClientStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if matches!(self.closing, Closing::Open) {
            let result = Pin::new(&mut self.inner).poll_shutdown(cx);
            ready!(self.watch(cx, result))?;
            self.closing = if self.peer.body_left_unread() {
                Closing::Lingering(Box::pin(tokio::time::sleep(LINGER)))
            } else {
                Closing::Done
            };
        }
        ready!(self.poll_linger(cx));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn peer() -> Arc<Peer> {
        Arc::new(Peer::new(([127, 0, 0, 1], 1).into()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_timeout() {
        // A pipe of 64 bytes whose reader never reads.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut stream = ClientStream::new(writer, Duration::from_secs(5), &peer());
        let err = stream.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut_off() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut stream = ClientStream::new(writer, Duration::from_secs(5), &peer());
        let drain = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 16];
            while total < 4096 {
                // Each read comes 4 s after the last: under the timeout,
                // while the whole transfer takes far longer than it.
                tokio::time::sleep(Duration::from_secs(4)).await;
                total += reader.read(&mut buf).await.unwrap();
            }
            total
        });
        stream.write_all(&[0u8; 4096]).await.unwrap();
        drop(stream);
        assert_eq!(drain.await.unwrap(), 4096);
    }
}
