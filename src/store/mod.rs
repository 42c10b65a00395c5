//! The shared store of several replicas (CONTRACT.md section 9, `docs/STORE.md`): integrations
//! and purges kept in PostgreSQL, changes announced to every replica with `LISTEN`/`NOTIFY`.
//!
//! - [`Store::update`] changes the integrations in one transaction, serialized across replicas
//!   by an advisory lock: read every integration, let the caller compute (and validate, and
//!   build) the new set, write the rows that differ with their secrets sealed ([`seal`]), and
//!   `NOTIFY` in the same transaction, so the announcement leaves only if the change is
//!   committed.
//! - [`Store::purge`] records a purge and announces it in one statement.
//! - [`listen`] keeps one connection per replica that `LISTEN`s on the channel, reconnects
//!   with backoff and jitter when it breaks, and hands what it hears to the control loop
//!   ([`crate::control::follow`]) as [`Event`]s. `NOTIFY` is not queued for a listener that is
//!   away, so on every (re)connection the whole set is read again and the purges recorded
//!   while away are replayed.
//!
//! The schema (three tables, prefixed `mediagate_`) is created when missing; the config file's
//! own `[[integration]]` tables are copied into a store that never received them, once.

mod client;
mod listen;
pub mod seal;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{Map, Value};

pub use client::{PURGE_RETENTION, Table};
pub use listen::listen;

use crate::config::StoreConfig;
use crate::error::{Error, Kind};
use crate::metrics::Metrics;
use crate::sync::lock;

/// The store's error before the first connection attempt ended.
pub const NOT_TRIED: &str = "not connected yet";

/// The channel every replica `LISTEN`s on.
pub const CHANNEL: &str = "mediagate";

/// An integration as written: its keys, secrets in clear (sealed only in the database).
pub type Fields = Map<String, Value>;

/// What the listener heard, for the control loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// (Re)connected: read everything again; `away` is when the connection was lost (`None`
    /// at the first connection), to replay the purges recorded since.
    Connected { away: Option<SystemTime> },
    /// Another replica changed integrations.
    Changed,
    /// Another replica purged; the purge's row id.
    Purge(i64),
}

/// A purge of the cache: one locator, or every locator with a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    Locator(String),
    Prefix(String),
}

/// What `/readyz` says about the store.
#[derive(Debug, Clone)]
pub struct StoreStatus {
    pub connected: bool,
    /// Why the connection was lost or refused, while it is.
    pub error: Option<String>,
    /// When `connected` last changed.
    pub since: SystemTime,
    /// Where the store is (`postgres://host:port/db`, never credentials).
    pub location: String,
}

/// The store of one replica; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: StoreConfig,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// This process's id in announcements: what it announced itself is not applied twice.
    replica: String,
    /// The listening connection's client, while connected (reads and purges use it).
    client: Mutex<Option<Arc<tokio_postgres::Client>>>,
    status: Mutex<StoreStatus>,
    /// The config file's integrations, copied into a store that never had any.
    seed: Vec<Fields>,
    metrics: Metrics,
}

impl Store {
    /// The store of `cfg`; `seed` are the config file's integrations (copied once into a new
    /// store). Fails only when the TLS set-up does (an unreadable `ca_file`).
    pub fn new(cfg: StoreConfig, seed: Vec<Fields>, metrics: Metrics) -> Result<Store, String> {
        let tls =
            crate::integration::upstream::tls_config(cfg.ca_file.as_deref()).map_err(|e| format!("[store] {e}"))?;
        let replica = format!("{:016x}", fastrand::u64(..));
        let status = StoreStatus {
            connected: false,
            error: Some(NOT_TRIED.to_owned()),
            since: SystemTime::now(),
            location: cfg.describe(),
        };
        metrics.store_connected(false);
        Ok(Store {
            inner: Arc::new(Inner {
                tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                cfg,
                replica,
                client: Mutex::new(None),
                status: Mutex::new(status),
                seed,
                metrics,
            }),
        })
    }

    pub fn status(&self) -> StoreStatus {
        lock(&self.inner.status).clone()
    }

    pub fn is_connected(&self) -> bool {
        lock(&self.inner.status).connected
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> String {
        self.inner.cfg.describe()
    }

    fn set_connected(&self, client: Option<Arc<tokio_postgres::Client>>, error: Option<String>) {
        let connected = client.is_some();
        *lock(&self.inner.client) = client;
        let mut status = lock(&self.inner.status);
        if status.connected != connected {
            status.since = SystemTime::now();
        }
        status.connected = connected;
        status.error = error;
        self.inner.metrics.store_connected(connected);
    }

    /// The listening connection's client, or `503 store_unavailable`.
    fn client(&self) -> Result<Arc<tokio_postgres::Client>, Error> {
        lock(&self.inner.client).clone().ok_or_else(|| self.unavailable("nothing was changed"))
    }

    /// `503 store_unavailable`: the store is not reachable; `consequence` says what that means here.
    pub fn unavailable(&self, consequence: &str) -> Error {
        let status = self.status();
        let why = status.error.unwrap_or_else(|| "the connection broke".to_owned());
        Error::new(
            Kind::StoreUnavailable,
            format!(
                "the shared store {} cannot be reached since {} ({why}): {consequence}; this replica keeps \
                 serving the integrations it last loaded; retry when /readyz shows the store connected",
                status.location,
                crate::integration::probe::rfc3339(status.since),
            ),
        )
    }

    /// Counts one failed operation against the store (`connect`, `read`, `write`, `purge`).
    fn failed(&self, operation: &str) {
        self.inner.metrics.store_error(operation);
    }
}
