//! The media listener: hyper 1 with HTTP/1.1 and h2c on one port (or, with
//! `[server] tls_cert` / `tls_key`, HTTPS with ALPN `h2` and `http/1.1`; see
//! [`crate::tls`]), a header-read timeout, connection limits that make room
//! by closing idle connections and otherwise answer `503 overloaded` rather
//! than falling over ([`limits`]), bounded request heads
//! ([`crate::http::head`]), and a graceful drain on shutdown.

mod io;
pub mod limits;
mod streams;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::ServerConfig;
use crate::error::{Error, Kind};
use crate::http::head::{HYPER_H2_HEADER_LIST, HYPER_HEAD_BUFFER};
use crate::proxy::Proxy;
use io::{FirstRead, Lingering, first_bytes, linger};
use limits::{Limits, Refusal, Slot};
use streams::{StreamExec, Streams};

/// Connections refused at a limit that may wait at once for their 503;
/// past this too, a new connection is closed at once.
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
    let ctx = Arc::new(Connections {
        proxy,
        acceptor: tls.map(TlsAcceptor::from),
        first_bytes_timeout: cfg.header_read_timeout,
    });
    let limits = Limits::new(cfg.max_connections, cfg.max_connections_per_ip);
    let overload_slots = Arc::new(Semaphore::new(OVERLOAD_ANSWERS));
    // Every connection task holds a receiver: `closed()` resolves when the last one ends.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match limits.admit(peer.ip()) {
                        Ok(slot) => {
                            tokio::spawn(ctx.clone().connection(stream, peer, slot, stop_rx.clone()));
                        }
                        Err(refusal) => answer_overloaded(stream, peer, refusal, &overload_slots, ctx.acceptor.clone()),
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
    drop(stop_rx);
    tracing::info!(grace = ?cfg.shutdown_grace, "shutting down: draining in-flight responses");
    let _ = stop_tx.send(());
    tokio::select! {
        () = stop_tx.closed() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(cfg.shutdown_grace) => tracing::warn!("shutdown grace elapsed; closing the remaining connections"),
    }
}

/// What every connection task shares.
struct Connections {
    proxy: Proxy,
    acceptor: Option<TlsAcceptor>,
    first_bytes_timeout: Duration,
}

impl Connections {
    /// One admitted connection, from its first bytes (or TLS handshake) to
    /// its end. It closes early when it must give way to a newcomer while
    /// idle ([`Slot::evicted`]) or when the server shuts down.
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        slot: Slot,
        mut stop: watch::Receiver<()>,
    ) {
        let _open = self.proxy.metrics().connection_opened();
        let timeout = self.first_bytes_timeout;
        match &self.acceptor {
            None => {
                let ready = tokio::select! {
                    ready = first_bytes(&stream, timeout) => ready,
                    () = slot.evicted() => false,
                    _ = stop.changed() => false,
                };
                if ready {
                    self.drive(stream, peer, &slot, &mut stop, None).await;
                }
            }
            Some(acceptor) => {
                let handshake = tokio::select! {
                    handshake = tokio::time::timeout(timeout, acceptor.accept(stream)) => handshake,
                    () = slot.evicted() => return,
                    _ = stop.changed() => return,
                };
                match handshake {
                    Ok(Ok(tls)) => {
                        let (io, first_read) = FirstRead::new(tls);
                        self.drive(io, peer, &slot, &mut stop, Some(first_read)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    /// Serves HTTP on `io` until the client or the server ends the
    /// connection. `first_read`: over TLS, reports the first request bytes,
    /// which must come within the header-read timeout.
    ///
    /// Once the connection has sent its FIN, what the client still sends is
    /// read and dropped for a while before the socket is closed ([`linger`]).
    async fn drive<S>(
        &self,
        io: S,
        peer: SocketAddr,
        slot: &Slot,
        stop: &mut watch::Receiver<()>,
        first_read: Option<oneshot::Receiver<()>>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (io, handed_back) = Lingering::new(io);
        self.serve_http(io, peer, slot, stop, first_read).await;
        let shut = crate::sync::lock(&handed_back).take();
        if let Some(io) = shut {
            // A lingering connection counts as idle: a newcomer at the limit
            // takes its place at once.
            tokio::select! {
                ended = linger(io) => tracing::debug!(%peer, ?ended, "connection closed"),
                () = slot.evicted() => tracing::debug!(%peer, "lingering connection gave way to a newcomer"),
            }
        }
    }

    /// [`Self::drive`] until hyper is done with the connection.
    async fn serve_http<S>(
        &self,
        io: Lingering<S>,
        peer: SocketAddr,
        slot: &Slot,
        stop: &mut watch::Receiver<()>,
        first_read: Option<oneshot::Receiver<()>>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (proxy, tracker) = (self.proxy.clone(), slot.tracker());
        let svc = service_fn(move |req| {
            let (proxy, busy) = (proxy.clone(), tracker.request());
            async move {
                // Boxed: the request's future is several KiB, and HTTP/2 moves
                // each stream's future into a task of its own (copied 4 times
                // per request unboxed: docs/BENCHMARKS.md, 2026-12-03).
                let resp = Box::pin(proxy.handle(req)).await;
                // The connection counts as busy until the body is sent (or dropped).
                Ok::<_, Infallible>(resp.map(|body| {
                    body.map_frame(move |frame| {
                        let _busy = &busy;
                        frame
                    })
                }))
            }
        });
        let (exec, mut streams) = Streams::new();
        let builder = http_builder(self.first_bytes_timeout, exec);
        let conn = builder.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let watching_first_read = first_read.is_some();
        let first_read = async move {
            match first_read {
                Some(rx) => tokio::time::timeout(self.first_bytes_timeout, rx).await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::pin!(first_read);
        let (mut closing, mut watching) = (false, watching_first_read);
        loop {
            tokio::select! {
                // The connection first: the streams it hands over are then
                // polled in the same pass.
                biased;
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = streams.run() => {}
                () = slot.evicted(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = stop.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                came = &mut first_read, if watching => {
                    watching = false;
                    if !came {
                        tracing::debug!(%peer, "no request after the TLS handshake; closing");
                        return;
                    }
                }
            }
        }
    }
}

/// The HTTP settings of one connection, whose HTTP/2 streams `exec` runs
/// in the connection's task ([`streams`]).
fn http_builder(header_read_timeout: Duration, exec: StreamExec) -> auto::Builder<StreamExec> {
    let mut builder = auto::Builder::new(exec);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        .max_buf_size(HYPER_HEAD_BUFFER);
    builder
        .http2()
        .max_header_list_size(HYPER_H2_HEADER_LIST)
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Past a connection limit with nothing idle to close: read one request and
/// answer `503 overloaded` with `Connection: close` (over TLS too, after the
/// handshake, in HTTP/1.1 or HTTP/2 as ALPN chose); past
/// [`OVERLOAD_ANSWERS`] too, close at once.
fn answer_overloaded(
    stream: TcpStream,
    peer: SocketAddr,
    refusal: Refusal,
    overload_slots: &Arc<Semaphore>,
    acceptor: Option<TlsAcceptor>,
) {
    let Ok(permit) = overload_slots.clone().try_acquire_owned() else {
        tracing::debug!(%peer, ?refusal, "connection limit reached; closing");
        return;
    };
    tracing::debug!(%peer, ?refusal, "connection limit reached; answering 503");
    let message = match refusal {
        Refusal::Full => "mediagate has reached its connection limit; retry shortly",
        Refusal::PerClient => "too many connections from your address are busy; retry shortly",
    };
    tokio::spawn(async move {
        let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
            let head = req.method() == http::Method::HEAD;
            Ok::<_, Infallible>(Error::new(Kind::Overloaded, message).into_response(head))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::Registry;
    use crate::metrics::Metrics;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn open_connections(metrics: &Metrics) -> Option<f64> {
        metrics.render().lines().find_map(|l| l.strip_prefix("mediagate_connections_open ")?.parse().ok())
    }

    /// Waits (up to 10 s) until the gauge reads `want`.
    async fn until_open(metrics: &Metrics, want: f64) -> Option<f64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = open_connections(metrics);
            if now == Some(want) || tokio::time::Instant::now() > deadline {
                return now;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_connection_is_counted_open_from_accept_until_it_closes() {
        let cfg = ServerConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), ..ServerConfig::default() };
        let listener = TcpListener::bind(cfg.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = crate::config::parse("[server]\n", std::path::Path::new("t.toml"), &|_| None).expect("config");
        let metrics = Metrics::new();
        let registry = Registry::build(&config.integrations, &config.upstream, &config.source).expect("registry");
        let proxy = Proxy::new(Arc::new(arc_swap::ArcSwap::from_pointee(registry))).with_metrics(metrics.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            serve(listener, proxy, &cfg, None, async move {
                let _ = stop_rx.await;
            })
            .await;
        });
        assert_eq!(open_connections(&metrics), Some(0.0));

        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("send");
        let mut answer = [0u8; 12];
        client.read_exact(&mut answer).await.expect("answer");
        assert_eq!(&answer, b"HTTP/1.1 200");
        assert_eq!(until_open(&metrics, 1.0).await, Some(1.0));
        drop(client);
        assert_eq!(until_open(&metrics, 0.0).await, Some(0.0));
        let _ = stop_tx.send(());
        server.await.expect("server ends");
    }
}
