//! A fault-injecting TCP relay, to put between mediagate and a real upstream:
//! configure the integration's endpoint as the relay's address, and the relay
//! forwards each connection to the upstream, breaking the response as told.
//!
//! ```ignore
//! let relay = Relay::start(s3.addr(), Fault::CutAfter(1 << 20));
//! let cfg = s3.integration_at("s3", "127.0.0.1", relay.addr().port(), &[&bucket], &s3.secret_key, "");
//! ```
//!
//! Faults apply to each connection on its own, counting the bytes of the
//! response (upstream to client) including its head.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::runtime;

/// What the relay does to each connection's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Forward the request, then close both sides once `n` bytes of the
    /// response have been relayed.
    CutAfter(u64),
    /// Forward `n` bytes of the response, then forward nothing more but keep
    /// both sockets open (until the client closes its side).
    /// `StallAfter(0)` is an upstream that never answers.
    StallAfter(u64),
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    open: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

/// A running relay; stops (closing every connection) when dropped, and the
/// drop returns once its listener is closed: a connection attempt after it
/// is refused.
pub struct Relay {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: watch::Sender<bool>,
    /// In a mutex so that a `&Relay` can be shared with other threads.
    closed: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Relay {
    /// Listens on `127.0.0.1:0` and relays each accepted connection to `upstream`.
    pub fn start(upstream: SocketAddr, fault: Fault) -> Relay {
        let _guard = runtime().enter();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("relay: bind 127.0.0.1:0");
        std_listener.set_nonblocking(true).expect("relay: set_nonblocking");
        let addr = std_listener.local_addr().expect("relay: local_addr");
        let listener = TcpListener::from_std(std_listener).expect("relay: tokio listener");
        let stats = Arc::new(Stats::default());
        let (shutdown, mut stop) = watch::channel(false);
        let task_stats = stats.clone();
        let (closed_tx, closed) = std::sync::mpsc::channel();
        runtime().spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        let stats = task_stats.clone();
                        let stop = stop.clone();
                        tokio::spawn(relay_connection(client, upstream, fault, stats, stop));
                    }
                }
            }
            drop(listener);
            let _ = closed_tx.send(());
        });
        Relay { addr, stats, shutdown, closed: std::sync::Mutex::new(closed) }
    }

    /// The address to point mediagate at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Connections currently open (accepted and not yet closed on both sides).
    pub fn open_connections(&self) -> u64 {
        self.stats.open.load(Ordering::SeqCst)
    }

    /// Response bytes relayed to clients so far, over all connections.
    pub fn bytes_down(&self) -> u64 {
        self.stats.bytes_down.load(Ordering::SeqCst)
    }

    /// Request bytes relayed to the upstream so far.
    pub fn bytes_up(&self) -> u64 {
        self.stats.bytes_up.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let closed = self.closed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = closed.recv_timeout(std::time::Duration::from_secs(10));
    }
}

/// Decrements the open-connection count when a connection's task ends.
struct OpenGuard(Arc<Stats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn relay_connection(
    client: TcpStream,
    upstream: SocketAddr,
    fault: Fault,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    stats.connections.fetch_add(1, Ordering::SeqCst);
    stats.open.fetch_add(1, Ordering::SeqCst);
    let _guard = OpenGuard(stats.clone());
    let Ok(upstream) = TcpStream::connect(upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();

    // Request direction: forwarded untouched until the client closes.
    let up_stats = stats.clone();
    let request = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    up_stats.bytes_up.fetch_add(n as u64, Ordering::SeqCst);
                }
            }
        }
    };

    // Response direction, with the fault.
    let response = async move {
        let limit = match fault {
            Fault::None => u64::MAX,
            Fault::CutAfter(n) | Fault::StallAfter(n) => n,
        };
        let mut sent = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if sent >= limit {
                break;
            }
            let n = match up_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let allowed = (limit - sent).min(n as u64) as usize;
            if client_write.write_all(&buf[..allowed]).await.is_err() {
                return;
            }
            sent += allowed as u64;
            stats.bytes_down.fetch_add(allowed as u64, Ordering::SeqCst);
        }
        match fault {
            // Returning drops both write halves; the caller drops the rest.
            Fault::CutAfter(_) | Fault::None => {}
            // Keep everything open, forward nothing, until the client gives up.
            Fault::StallAfter(_) => {
                let _keep = (up_read, client_write);
                std::future::pending::<()>().await;
            }
        }
    };

    tokio::select! {
        _ = request => {}
        _ = response => {}
        _ = stop.changed() => {}
    }
    // Both streams' halves are dropped here: both connections close.
}
