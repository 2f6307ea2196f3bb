//! Cutting off clients that stop reading their answers.
//!
//! A client that never reads would keep its connection, its
//! `max_connections` slot and the upstream connection its answer streams
//! from for ever. [`SendDeadline`] wraps a client stream: once a write has
//! made no progress for `send_timeout` (the socket's send buffer stays full),
//! the write fails with `TimedOut` and the connection ends. The clock starts
//! only while a write waits, and restarts at every byte written, so a slow
//! but reading client is never cut off.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose writes fail after `timeout` without progress.
pub struct SendDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Armed while a write waits; `None` while writes go through.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> SendDeadline<S> {
    /// Wraps `inner`; writes may wait at most `timeout` for progress.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
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

impl<S: AsyncRead + Unpin> AsyncRead for SendDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendDeadline<S> {
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
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_write_without_progress_fails_after_the_timeout() {
        // A pipe of 64 bytes whose reader never reads.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut stream = SendDeadline::new(writer, Duration::from_secs(5));
        let err = stream.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut_off() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut stream = SendDeadline::new(writer, Duration::from_secs(5));
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
