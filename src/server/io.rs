//! The first bytes of a connection: a client that connects and says nothing
//! must not hold its slot past `header_read_timeout`, over plain TCP (where
//! the bytes can be peeked) and over TLS (where they cannot).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Waits until the client has sent enough to tell HTTP/1.1 from an HTTP/2
/// preface, for at most `timeout`. hyper's header-read timeout starts only
/// once bytes arrive, and the protocol sniffing before it has none: without
/// this, a client that connects and says nothing would hold a slot forever.
pub(super) async fn first_bytes(stream: &TcpStream, timeout: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if n >= PREFACE.len() || buf[..n] != PREFACE[..n] {
                return Some(());
            }
            // A partial HTTP/2 preface: let the rest arrive.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    matches!(tokio::time::timeout(timeout, wait).await, Ok(Some(())))
}

/// An I/O stream that reports its first non-empty read: over TLS the
/// bytes cannot be peeked before the handshake, so this is how a client that
/// completes the handshake and then says nothing is caught.
pub(super) struct FirstRead<S> {
    inner: S,
    first: Option<oneshot::Sender<()>>,
}

impl<S> FirstRead<S> {
    pub(super) fn new(inner: S) -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (FirstRead { inner, first: Some(tx) }, rx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstRead<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(tx) = self.first.take()
        {
            let _ = tx.send(());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstRead<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
