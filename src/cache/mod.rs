//! The in-memory cache (CONTRACT.md section 4): moka, bounded in bytes.
//!
//! An object is cached as metadata (size, validators, type) plus entries of
//! its bytes: one entry for an object no larger than `max_object_bytes`,
//! else aligned blocks of `slice_bytes / 8` (at least 64 KiB); which one is
//! a function of the size alone ([`granule`]; docs/CACHE.md). Entries are
//! keyed by integration, locator, the object's validator (its ETag) and the
//! index, so bytes of two versions of an object can never be served as one.
//! The code calls an entry a slice; `slice_bytes` sizes a stream's storage
//! reads (runs), which cover several blocks.
//!
//! How a read is served:
//! 1. Metadata: fresh from the cache (a hit); older than `ttl`: revalidated
//!    upstream with `If-None-Match` (a storage that ignores it answers 200,
//!    and the ETag comparison decides); missing: learnt from the first
//!    storage read (a `GET` from 0 long enough to hold an object kept whole,
//!    or of the blocks under the range), or from a `HEAD` for `HEAD`
//!    requests and suffix ranges, whose position needs the length first.
//! 2. The client's range is resolved against the length (`416` outside it).
//! 3. The body is read slice by slice as the client consumes it: a cached
//!    slice is sent from memory; a missing one is filled by one storage read
//!    (`If-Match` on the ETag) that every concurrent reader of that slice
//!    shares, getting bytes as they arrive. The fill runs in its own task,
//!    so it completes for the cache even if its first client leaves, and a
//!    failed fill stores nothing. The next slice is read ahead.
//! 4. Memory: every slice buffer, cached or not, is counted against one
//!    budget of `max_bytes` bytes until its last piece is dropped, so slices
//!    being filled, and slices a client still reads after the cache evicted
//!    them, count too ([`fill::Budget`]). The cache itself keeps at most
//!    `max_bytes` less a reserve for fills ([`fill_reserve`]). At most
//!    `max_fills` fills run at once; when no fill slot or no budget is free,
//!    a read streams straight from the storage, uncached.
//!
//! Files: [`target`] (metadata and revalidation), [`fill`] (runs, fills,
//! the budget), [`reader`] (streaming a span slice by slice), [`status`]
//! (`Cache-Status`).

mod fill;
mod reader;
mod status;
mod target;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::Semaphore;

use crate::config::CacheConfig;
use crate::error::{Error, Kind, Result};
use crate::http::body;
use crate::http::range::{ByteSpan, RangeSpec};
use crate::integration::{Integration, ObjectMeta, ObjectResponse, Part};
use crate::locator::Locator;
use crate::sync::lock;
use fill::{Budget, Fill};
use reader::SliceReader;
use status::Verdict;
pub use status::cache_status_value;

/// The longest storage read a run makes: long enough that a cold stream
/// runs at the storage's speed, short enough that an abandoned one (a
/// client that seeked away) wastes little.
const RUN_MAX_BYTES: u64 = 16 << 20;

/// What an entry costs beyond its bytes (key, moka's bookkeeping), for the weigher.
const ENTRY_OVERHEAD: u32 = 256;

/// One object of one integration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjKey {
    integration: Arc<str>,
    locator: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Meta(ObjKey),
    /// An object's slice: the object, its validator, the slice index.
    Slice(ObjKey, Arc<str>, u64),
}

impl Key {
    fn object(&self) -> &ObjKey {
        match self {
            Key::Meta(o) | Key::Slice(o, _, _) => o,
        }
    }
}

#[derive(Clone)]
enum Value {
    Meta(Arc<MetaEntry>),
    /// A slice's bytes: pieces of one buffer of exactly the slice's size.
    Slice(Arc<[Bytes]>),
}

/// Cached metadata of an object, or the memory of its absence.
#[derive(Debug)]
struct MetaEntry {
    meta: Arc<ObjectMeta>,
    /// The validator slices are keyed by (the ETag, else size + date).
    validator: Arc<str>,
    /// When the storage last confirmed it.
    validated: Instant,
    /// A remembered 404 (negative caching).
    missing: bool,
}

/// Counters of the cache, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub revalidations: AtomicU64,
    pub bytes_from_cache: AtomicU64,
    pub bytes_from_upstream: AtomicU64,
    pub evictions: AtomicU64,
    pub coalesced_waits: AtomicU64,
    pub fills: AtomicU64,
    pub failed_fills: AtomicU64,
    pub bypassed_fills: AtomicU64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The cache, shared by every request (pass it in; there is no global).
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// One metadata read shared by concurrent callers; the error as kind + message.
type MetaFlight = tokio::sync::OnceCell<Result<Arc<MetaEntry>, (Kind, String)>>;

struct Inner {
    cfg: CacheConfig,
    /// Keyed with foldhash (randomly seeded per process), not SipHash: a
    /// hit hashes its keys several times, and SipHash was 5 % of a small
    /// hit's instructions (docs/BENCHMARKS.md).
    store: moka::future::Cache<Key, Value, foldhash::quality::RandomState>,
    fills: Mutex<HashMap<(ObjKey, u64), Arc<Fill>>>,
    metas: Mutex<HashMap<ObjKey, Arc<MetaFlight>>>,
    fill_slots: Arc<Semaphore>,
    /// The bytes of every slice buffer, cached or not (step 4 of the module doc).
    budget: Budget,
    /// Bumped by every purge: fills started before a purge store nothing.
    generation: AtomicU64,
    stats: Arc<CacheStats>,
}

impl Cache {
    pub fn new(cfg: &CacheConfig) -> Cache {
        let stats = Arc::new(CacheStats::default());
        let evictions = stats.clone();
        let store = moka::future::Cache::builder()
            .max_capacity(cfg.max_bytes - fill_reserve(cfg))
            .weigher(|key: &Key, value: &Value| -> u32 {
                let bytes = match value {
                    Value::Meta(_) => 0,
                    Value::Slice(pieces) => {
                        u32::try_from(pieces.iter().map(Bytes::len).sum::<usize>()).unwrap_or(u32::MAX)
                    }
                };
                let key_len = u32::try_from(key.object().locator.len()).unwrap_or(u32::MAX);
                bytes.saturating_add(ENTRY_OVERHEAD).saturating_add(key_len)
            })
            .eviction_listener(move |_k, _v, cause| {
                if cause.was_evicted() {
                    add(&evictions.evictions, 1);
                }
            })
            .support_invalidation_closures()
            .build_with_hasher(foldhash::quality::RandomState::default());
        Cache {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                store,
                fills: Mutex::new(HashMap::new()),
                metas: Mutex::new(HashMap::new()),
                fill_slots: Arc::new(Semaphore::new(cfg.max_fills)),
                budget: Budget::new(slice_memory(cfg)),
                generation: AtomicU64::new(0),
                stats,
            }),
        }
    }

    pub fn stats(&self) -> &CacheStats {
        &self.inner.stats
    }

    /// `[cache] max_bytes`: the budget of every slice byte.
    pub fn max_bytes(&self) -> u64 {
        self.inner.cfg.max_bytes
    }

    /// The bytes the cache holds now, as its weigher counts them.
    pub fn weighted_size(&self) -> u64 {
        self.inner.store.weighted_size()
    }

    /// Bytes of the slice memory budget not held by any slice buffer now.
    pub fn budget_available(&self) -> u64 {
        self.inner.budget.available()
    }

    /// Finishes moka's amortised housekeeping (evictions, invalidations).
    pub async fn run_pending_tasks(&self) {
        self.inner.store.run_pending_tasks().await;
    }

    /// Drops every entry of this locator (`s3://bucket/key`), whatever the
    /// integration; returns how many objects were dropped.
    pub fn purge_locator(&self, locator: &str) -> usize {
        let locator = locator.to_owned();
        self.purge(move |o| *o.locator == *locator)
    }

    /// Drops every entry whose locator starts with `prefix`; returns how many objects were dropped.
    pub fn purge_prefix(&self, prefix: &str) -> usize {
        let prefix = prefix.to_owned();
        self.purge(move |o| o.locator.starts_with(&prefix))
    }

    /// Drops every entry of one build of an integration
    /// ([`Integration::cache_id`]): its credentials were replaced or it was
    /// deleted, so its bytes must never be served again.
    pub fn purge_integration(&self, cache_id: &str) -> usize {
        let cache_id = cache_id.to_owned();
        self.purge(move |o| *o.integration == *cache_id)
    }

    /// The objects cached now (their metadata entries).
    pub fn object_count(&self) -> usize {
        self.inner.store.iter().filter(|(k, _)| matches!(**k, Key::Meta(_))).count()
    }

    /// Drops the entries of every object that `matches`; the objects counted
    /// are those whose metadata was cached. Fills started before store nothing.
    fn purge(&self, matches: impl Fn(&ObjKey) -> bool + Send + Sync + 'static) -> usize {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        let objects =
            self.inner.store.iter().filter(|(k, _)| matches!(**k, Key::Meta(_)) && matches(k.object())).count();
        if let Err(e) = self.inner.store.invalidate_entries_if(move |k, _| matches(k.object())) {
            tracing::error!(error = %e, "cache purge failed");
        }
        objects
    }

    /// Reads an object (or its metadata, or one range of it) through the
    /// cache; `text` is `loc`'s string ([`Locator::shared_text`]).
    ///
    /// `pin` is an `If-Match` the answer must satisfy (the proxy pins the
    /// parts of a multipart answer to one ETag); other preconditions are the
    /// proxy's to evaluate on the returned metadata.
    pub async fn fetch(
        &self,
        integration: &Arc<Integration>,
        loc: &Arc<Locator>,
        text: &Arc<str>,
        head: bool,
        range: Option<RangeSpec>,
        pin: Option<&str>,
    ) -> Result<ObjectResponse> {
        let obj = ObjKey { integration: integration.cache_id.clone(), locator: text.clone() };
        let t = Target { inner: self.inner.clone(), integration: integration.clone(), loc: loc.clone(), obj };
        let (entry, mut verdict, first) = t.metadata(head, range).await?;
        if entry.missing {
            return Err(Error::new(Kind::NotFound, format!("{loc} does not exist (remembered for negative_ttl)")));
        }
        if let Some(pin) = pin
            && entry.meta.etag.as_deref() != Some(pin)
        {
            return Err(Error::new(Kind::PreconditionFailed, format!("{loc} changed while it was being read")));
        }
        let size = entry.meta.size;
        let (part, span) = match range {
            None => (Part::Whole, (size > 0).then(|| ByteSpan { start: 0, end: size - 1 })),
            Some(spec) => {
                let span = spec.resolve(size).ok_or_else(|| {
                    Error::new(Kind::RangeNotSatisfiable { len: Some(size) }, format!("the range lies outside {loc}"))
                })?;
                (Part::Range(span), Some(span))
            }
        };
        if head || span.is_none() {
            return Ok(ObjectResponse {
                meta: entry.meta.clone(),
                part,
                body: body::empty(),
                cache_status: Some(verdict.header()),
            });
        }
        let span = span.unwrap_or(ByteSpan { start: 0, end: 0 });
        let mut held = None;
        if verdict.hit {
            let (cached, needed, looked_up) = t.cached_slices(&entry, span).await;
            held = Some(looked_up);
            if cached < needed {
                let fwd = if cached == 0 { "miss" } else { "partial" };
                verdict = Verdict { hit: false, fwd: Some(fwd), ttl: None, ..verdict };
            }
        }
        match verdict.fwd {
            None => add(&self.inner.stats.hits, 1),
            Some(_) => add(&self.inner.stats.misses, 1),
        }
        let reader = SliceReader {
            t,
            validator: entry.validator.clone(),
            size,
            pos: span.start,
            end: span.end,
            current: None,
            first,
            held,
            runs: 1,
            ahead: None,
        };
        let stream = futures_util::stream::unfold(reader, |mut r| async move { r.next().await.map(|item| (item, r)) });
        let body = StreamBody::new(futures_util::TryStreamExt::map_ok(stream, Frame::data)).boxed_unsync();
        Ok(ObjectResponse { meta: entry.meta.clone(), part, body, cache_status: Some(verdict.header()) })
    }
}

/// One object being read through the cache.
#[derive(Clone)]
struct Target {
    inner: Arc<Inner>,
    integration: Arc<Integration>,
    loc: Arc<Locator>,
    obj: ObjKey,
}

/// The most memory slice bytes can take, cached, being filled, or still
/// being sent after eviction: `max_bytes` (README, "Memory").
pub fn slice_memory(cfg: &CacheConfig) -> u64 {
    cfg.max_bytes
}

/// The part of `max_bytes` the cache leaves free for fills in flight:
/// `max_fills x slice_bytes`, at most a quarter of `max_bytes` (so a small
/// cache still keeps most of its memory for cached objects). Without it a
/// full cache would hold the whole budget and every miss would stream
/// uncached until an eviction.
pub fn fill_reserve(cfg: &CacheConfig) -> u64 {
    (cfg.max_fills as u64).saturating_mul(cfg.slice_bytes).min(cfg.max_bytes / 4)
}

/// How many blocks a slice is cut into: a cold seek fetches the blocks
/// under its range, not the whole slice (docs/CACHE.md, "Blocks").
const BLOCKS_PER_SLICE: u64 = 8;

/// The smallest block: below it, requests and entries cost more than the
/// bytes they save.
const BLOCK_MIN: u64 = 64 << 10;

/// The unit a large object is cached and fetched in: `slice_bytes / 8`, at
/// least 64 KiB (and at most a slice).
fn block_bytes(cfg: &CacheConfig) -> u64 {
    (cfg.slice_bytes / BLOCKS_PER_SLICE).max(BLOCK_MIN).min(cfg.slice_bytes)
}

/// The unit an object of `size` bytes is kept in, a function of its size
/// alone (so every entry of one version agrees): the whole object (one
/// entry, index 0) up to `max_object_bytes`, else blocks.
fn granule(cfg: &CacheConfig, size: u64) -> u64 {
    let block = block_bytes(cfg);
    if size <= cfg.max_object_bytes { size.max(block) } else { block }
}

/// The bytes a cold read starting at 0 asks for before the object's size is
/// known: enough to hold any object kept whole (`max_object_bytes`, in
/// whole blocks), and at least a slice.
fn blind_reach(cfg: &CacheConfig) -> u64 {
    let block = block_bytes(cfg);
    (cfg.max_object_bytes.div_ceil(block) * block).max(cfg.slice_bytes.div_ceil(block) * block)
}

/// The length of slice (or block) `index` of an object of `size` bytes in units of `g`.
fn slice_len(size: u64, g: u64, index: u64) -> u64 {
    size.saturating_sub(index * g).min(g)
}

/// The validator slices are keyed by: the ETag, else size and date.
fn validator(meta: &ObjectMeta) -> Arc<str> {
    match &meta.etag {
        Some(etag) => Arc::from(etag.as_str()),
        None => {
            let secs = meta
                .last_modified
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            Arc::from(format!("size={};date={secs}", meta.size))
        }
    }
}
