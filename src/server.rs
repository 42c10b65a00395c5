//! The media listener: hyper 1 with HTTP/1.1 and h2c on one port (or, with
//! `[server] tls_cert` / `tls_key`, HTTPS with ALPN `h2` and `http/1.1`; see
//! [`crate::tls`]), a header-read timeout, a connection limit that answers
//! `503 overloaded` rather than falling over, and a graceful drain on
//! shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::error::{Error, Kind};
use crate::proxy::Proxy;

/// Connections past the limit that may wait at once for their 503; past
/// this too, a new connection is closed at once.
const OVERLOAD_ANSWERS: usize = 64;

/// Binds the media listener and prints `mediagate listening on http://<addr>`
/// (`https://` with TLS) on standard output (scripts and tests read it when
/// the port is 0).
pub async fn bind(cfg: &ServerConfig) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    println!("mediagate listening on {scheme}://{addr}");
    tracing::info!(%addr, tls = cfg.tls.is_some(), "media listener up");
    Ok(listener)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight
/// responses finish for up to `shutdown_grace`. With `tls`, every connection
/// is HTTPS; its handshake must finish within `header_read_timeout`, and so
/// must the first request bytes after it.
pub async fn serve(
    listener: TcpListener,
    proxy: Proxy,
    cfg: &ServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let builder = Arc::new(http_builder(cfg));
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let overload_slots = Arc::new(Semaphore::new(OVERLOAD_ANSWERS));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let proxy = proxy.clone();
                            let svc = service_fn(move |req| {
                                let proxy = proxy.clone();
                                async move { Ok::<_, Infallible>(proxy.handle(req).await) }
                            });
                            let builder = builder.clone();
                            let watcher = graceful.watcher();
                            let first_bytes_timeout = cfg.header_read_timeout;
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                match acceptor {
                                    None => {
                                        if first_bytes(&stream, first_bytes_timeout).await {
                                            let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                                            if let Err(e) = watcher.watch(conn).await {
                                                tracing::debug!(%peer, error = %e, "connection ended with an error");
                                            }
                                        }
                                    }
                                    Some(acceptor) => {
                                        let handshake = tokio::time::timeout(first_bytes_timeout, acceptor.accept(stream));
                                        match handshake.await {
                                            Ok(Ok(tls)) => {
                                                let (io, first_read) = FirstRead::new(tls);
                                                let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
                                                let conn = watcher.watch(conn);
                                                tokio::pin!(conn);
                                                tokio::select! {
                                                    r = &mut conn => if let Err(e) = r {
                                                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                                                    },
                                                    got = tokio::time::timeout(first_bytes_timeout, first_read) => match got {
                                                        Ok(_) => if let Err(e) = conn.await {
                                                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                                                        },
                                                        Err(_) => tracing::debug!(%peer, "no request after the TLS handshake; closing"),
                                                    },
                                                }
                                            }
                                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                                        }
                                    }
                                }
                                drop(permit);
                            });
                        }
                        Err(_) => answer_overloaded(stream, peer, &overload_slots, acceptor.clone()),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(grace = ?cfg.shutdown_grace, "shutting down: draining in-flight responses");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(cfg.shutdown_grace) => tracing::warn!("shutdown grace elapsed; closing the remaining connections"),
    }
}

/// Waits until the client has sent enough to tell HTTP/1.1 from an HTTP/2
/// preface, for at most `timeout`. hyper's header-read timeout starts only
/// once bytes arrive, and the protocol sniffing before it has none: without
/// this, a client that connects and says nothing would hold a slot forever.
async fn first_bytes(stream: &TcpStream, timeout: Duration) -> bool {
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
struct FirstRead<S> {
    inner: S,
    first: Option<oneshot::Sender<()>>,
}

impl<S> FirstRead<S> {
    fn new(inner: S) -> (Self, oneshot::Receiver<()>) {
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

fn http_builder(cfg: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(cfg.header_read_timeout).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Past the connection limit: read one request and answer `503 overloaded`
/// with `Connection: close` (over TLS too, after the handshake, in HTTP/1.1
/// or HTTP/2 as ALPN chose); past [`OVERLOAD_ANSWERS`] too, close at once.
fn answer_overloaded(
    stream: TcpStream,
    peer: SocketAddr,
    overload_slots: &Arc<Semaphore>,
    acceptor: Option<TlsAcceptor>,
) {
    let Ok(permit) = overload_slots.clone().try_acquire_owned() else {
        tracing::debug!(%peer, "connection limit reached; closing");
        return;
    };
    tracing::debug!(%peer, "connection limit reached; answering 503");
    tokio::spawn(async move {
        let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let head = req.method() == http::Method::HEAD;
            let err = Error::new(Kind::Overloaded, "mediagate has reached its connection limit; retry shortly");
            Ok::<_, Infallible>(err.into_response(head))
        });
        let answer = async move {
            match acceptor {
                None => {
                    let mut http1 = hyper::server::conn::http1::Builder::new();
                    http1.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(2)).keep_alive(false);
                    let _ = http1.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let mut builder = auto::Builder::new(TokioExecutor::new());
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(2))
                        .keep_alive(false);
                    let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), answer).await;
        drop(permit);
    });
}
