//! Storage integrations: which one serves a locator ([`Registry`]), and the
//! two operations every backend offers, reading an object
//! ([`Integration::fetch`]) and the connection test
//! ([`Integration::test_connection`], worded in [`probe`]).
//!
//! One folder per provider. Remote backends (S3, Azure) share the upstream
//! HTTP client of [`upstream`]; each signs its own requests.

pub mod azure;
pub mod config;
pub mod local;
pub mod probe;
pub mod registry;
pub mod retry;
pub mod s3;
pub mod scope;
pub mod secret_file;
pub mod token;
pub mod transport;
pub mod upstream;

use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;

use crate::error::Result;
use crate::http::body::Body;
use crate::http::conditional::Conditions;
use crate::http::range::{ByteSpan, RangeSpec};

pub use probe::ConnectionTest;
pub use registry::Registry;

/// A read of one object, as the proxy asks a backend for it.
#[derive(Debug, Clone)]
pub struct ObjectRequest<'a> {
    /// `HEAD` (metadata only) or `GET`.
    pub head: bool,
    /// The bucket or Azure container.
    pub bucket: &'a str,
    /// The key, exactly as stored.
    pub key: &'a str,
    /// At most one range; the proxy answers multi-range requests itself.
    pub range: Option<RangeSpec>,
    /// Preconditions to forward where the storage supports them; the proxy
    /// evaluates them again on the answer, so a storage that ignores them is fine.
    /// `If-Range` is never forwarded (the proxy decides it).
    pub conditions: &'a Conditions,
}

/// What the storage says about an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The complete length of the object in bytes.
    pub size: u64,
    /// The strong entity-tag, quoted as on the wire (`"abc"`).
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    /// The storage's `Content-Type`, if any.
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    /// The header values of this version, made once by the cache when it
    /// stores the metadata (`None` from the storage: the proxy makes them).
    pub entity: Option<std::sync::Arc<crate::http::entity::EntityHeaders>>,
}

/// Which part of the object a body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole object (200).
    Whole,
    /// One range of it (206).
    Range(ByteSpan),
    /// Nothing: the storage said `304 Not Modified`.
    NotModified,
}

/// A backend's answer: metadata, which part, and the body stream (empty for
/// `HEAD` and `304`).
pub struct ObjectResponse {
    /// Shared: a cache hit hands out the cached metadata without copying it.
    pub meta: std::sync::Arc<ObjectMeta>,
    pub part: Part,
    pub body: Body,
    /// The cache's verdict for `Cache-Status` (RFC 9211); `None` when the
    /// answer did not involve the cache.
    pub cache_status: Option<String>,
}

impl ObjectResponse {
    /// An answer straight from the storage.
    pub fn new(meta: ObjectMeta, part: Part, body: Body) -> Self {
        ObjectResponse { meta: std::sync::Arc::new(meta), part, body, cache_status: None }
    }
}

impl std::fmt::Debug for ObjectResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectResponse").field("meta", &self.meta).field("part", &self.part).finish()
    }
}

/// The storage behind an integration.
pub enum Backend {
    S3(s3::S3Backend),
    Azure(azure::AzureBackend),
    Local(local::LocalBackend),
}

/// A configured integration, ready to serve.
pub struct Integration {
    pub name: String,
    /// Unique to this build of the integration: cache entries are keyed by
    /// it, so bytes fetched with replaced credentials are never served
    /// under new ones.
    pub cache_id: std::sync::Arc<str>,
    /// The `Cache-Control` header sent with this integration's media.
    pub cache_control: HeaderValue,
    pub backend: Backend,
}

impl Integration {
    /// Reads an object (or its metadata, or a range of it).
    ///
    /// Errors: `NotFound`, `PreconditionFailed`, `RangeNotSatisfiable`,
    /// `UpstreamDenied`, `UpstreamError`, `UpstreamTimeout`, `BadLocator`
    /// (a local key leaving its root).
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        match &self.backend {
            Backend::S3(b) => b.fetch(req).await,
            Backend::Azure(b) => b.fetch(req).await,
            Backend::Local(b) => b.fetch(req).await,
        }
    }

    /// The connection test (CONTRACT.md section 6): lists at most one object
    /// in each bucket of the scope (S3 ListObjectsV2, Azure List Blobs), or
    /// the buckets or containers of a default integration, or, for a local
    /// integration, the root and each bucket's directory. The first failure
    /// ends it; all of it stays within `timeout`. Requests are retried no
    /// more than the upstream client's policy allows. The result names the
    /// storage's own code and says what to do (docs/CONNECTION-TEST.md);
    /// it never holds a secret.
    pub async fn test_connection(&self, timeout: Duration) -> ConnectionTest {
        let at = SystemTime::now();
        let started = Instant::now();
        let ctx = match &self.backend {
            Backend::S3(b) => b.probe_context(),
            Backend::Azure(b) => b.probe_context(),
            Backend::Local(b) => b.probe_context(),
        };
        let run = async {
            match &self.backend {
                Backend::S3(b) => b.test_connection().await,
                Backend::Azure(b) => b.test_connection().await,
                Backend::Local(b) => b.test_connection().await,
            }
        };
        let outcome = match tokio::time::timeout(timeout, run).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Err(probe::Problem::Timeout { host: ctx.storage.location(), limit: probe::Limit::Test, after: timeout })
            }
        };
        let test = ConnectionTest::new(&ctx, outcome, at, started.elapsed());
        tracing::debug!(
            integration = %self.name,
            code = %test.code,
            duration_ms = test.duration.as_millis() as u64,
            "connection test"
        );
        test
    }

    /// The credential source in use and, for temporary credentials, when
    /// those held now expire (CONTRACT.md section 2; never the credentials).
    /// S3: `static`, `env`, `web-identity`, `instance`; Azure: `account-key`,
    /// `sas`, `service-principal`, `workload-identity`, `managed-identity`;
    /// local: `None`.
    pub fn credential_status(&self) -> Option<(&'static str, Option<SystemTime>)> {
        match &self.backend {
            Backend::S3(b) => Some(b.credential_status()),
            Backend::Azure(b) => Some(b.credential_status()),
            Backend::Local(_) => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match &self.backend {
            Backend::S3(_) => "s3",
            Backend::Azure(_) => "azure-blob",
            Backend::Local(_) => "local",
        }
    }
}
