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

/// How long a closed connection keeps reading what its client still sends.
pub(super) const LINGER: Duration = Duration::from_secs(2);

/// A connection's I/O that, once shut down for writing (the FIN sent), is
/// handed back when hyper drops it, for [`linger`]: closing a socket with
/// unread bytes in it makes the kernel answer with a reset, which throws
/// away the end of the response still on its way to the client. An HTTP/2
/// client's `WINDOW_UPDATE`s race the last frames of a download drained at
/// shutdown that way. (nginx's `lingering_close`.)
pub(super) struct Lingering<S> {
    inner: Option<S>,
    shut: bool,
    handed_back: std::sync::Arc<std::sync::Mutex<Option<S>>>,
}

impl<S> Lingering<S> {
    /// The wrapped I/O, and where it lands when dropped after a shutdown.
    pub(super) fn new(inner: S) -> (Self, std::sync::Arc<std::sync::Mutex<Option<S>>>) {
        let handed_back = std::sync::Arc::default();
        (Lingering { inner: Some(inner), shut: false, handed_back: std::sync::Arc::clone(&handed_back) }, handed_back)
    }

    fn io(&mut self) -> std::io::Result<&mut S> {
        self.inner.as_mut().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl<S> Drop for Lingering<S> {
    fn drop(&mut self) {
        if self.shut
            && let Some(io) = self.inner.take()
        {
            *crate::sync::lock(&self.handed_back) = Some(io);
        }
    }
}

/// How a [`linger`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lingered {
    /// The client closed its side (the usual end).
    ClientClosed,
    /// Reading failed (the client reset the connection).
    Failed,
    /// [`LINGER`] passed with the client still sending or silent.
    TimedOut,
}

/// Reads and drops what the client still sends, until it closes its side,
/// fails, or [`LINGER`] passes.
pub(super) async fn linger<S: AsyncRead + Unpin>(mut io: S) -> Lingered {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut io, &mut buf).await {
                Ok(0) => return Lingered::ClientClosed,
                Ok(_) => {}
                Err(_) => return Lingered::Failed,
            }
        }
    };
    tokio::time::timeout(LINGER, drain).await.unwrap_or(Lingered::TimedOut)
}

impl<S: AsyncRead + Unpin> AsyncRead for Lingering<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => Pin::new(io).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Lingering<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => Pin::new(io).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => Pin::new(io).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = match self.io() {
            Ok(io) => Pin::new(io).poll_shutdown(cx),
            Err(e) => return Poll::Ready(Err(e)),
        };
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.shut = true;
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(S::is_write_vectored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn after_its_fin_a_connection_reads_what_the_client_still_sends_until_the_client_closes() {
        let (mut client, server) = pair().await;
        let (mut io, handed_back) = Lingering::new(server);
        io.write_all(b"the response").await.expect("write");
        io.shutdown().await.expect("FIN");
        drop(io);
        let io = crate::sync::lock(&handed_back).take().expect("handed back after the shutdown");
        let lingering = tokio::spawn(linger(io));
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.expect("the response, then the FIN, no reset");
        assert_eq!(got, b"the response");
        // What a client still had to say (an HTTP/2 WINDOW_UPDATE racing the last frames), then its close.
        client.write_all(b"late bytes").await.expect("late write");
        drop(client);
        assert_eq!(lingering.await.expect("linger"), Lingered::ClientClosed);
    }

    #[tokio::test]
    async fn a_connection_dropped_without_a_shutdown_is_not_handed_back() {
        let (_client, server) = pair().await;
        let (io, handed_back) = Lingering::new(server);
        drop(io);
        assert!(crate::sync::lock(&handed_back).is_none());
    }
}
