//! The in-memory cache (CONTRACT.md section 4): moka, bounded in bytes.
//!
//! An object is cached as metadata (size, validators, type) plus aligned
//! slices of `slice_bytes`; an object no larger than `max_object_bytes`
//! (at most one slice) is a single entry. Slices are keyed by integration,
//! locator, the object's validator (its ETag) and the slice index, so bytes
//! of two versions of an object can never be served as one.
//!
//! How a read is served:
//! 1. Metadata: fresh from the cache (a hit); older than `ttl`: revalidated
//!    upstream with `If-None-Match` (a storage that ignores it answers 200,
//!    and the ETag comparison decides); missing: learnt from the first slice
//!    read (a `GET` of that slice's range), or from a `HEAD` for `HEAD`
//!    requests and suffix ranges, whose position needs the length first.
//! 2. The client's range is resolved against the length (`416` outside it).
//! 3. The body is read slice by slice as the client consumes it: a cached
//!    slice is sent from memory; a missing one is filled by one storage read
//!    (`If-Match` on the ETag) that every concurrent reader of that slice
//!    shares, getting bytes as they arrive. The fill runs in its own task,
//!    so it completes for the cache even if its first client leaves, and a
//!    failed fill stores nothing. The next slice is read ahead.
//! 4. At most `max_fills` fills run at once, which bounds their memory; past
//!    that, a read streams straight from the storage, uncached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::CacheConfig;
use crate::error::{Error, Kind, Result};
use crate::http::body::{self, Body, BoxError};
use crate::http::conditional::Conditions;
use crate::http::range::{ByteSpan, RangeSpec};
use crate::integration::{Integration, ObjectMeta, ObjectRequest, ObjectResponse, Part};
use crate::locator::Locator;

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
    meta: ObjectMeta,
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
    store: moka::future::Cache<Key, Value>,
    fills: Mutex<HashMap<(ObjKey, u64), Arc<Fill>>>,
    metas: Mutex<HashMap<ObjKey, Arc<MetaFlight>>>,
    fill_slots: Arc<Semaphore>,
    /// Bumped by every purge: fills started before a purge store nothing.
    generation: AtomicU64,
    stats: Arc<CacheStats>,
}

impl Cache {
    pub fn new(cfg: &CacheConfig) -> Cache {
        let stats = Arc::new(CacheStats::default());
        let evictions = stats.clone();
        let store = moka::future::Cache::builder()
            .max_capacity(cfg.max_bytes)
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
            .build();
        Cache {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                store,
                fills: Mutex::new(HashMap::new()),
                metas: Mutex::new(HashMap::new()),
                fill_slots: Arc::new(Semaphore::new(cfg.max_fills)),
                generation: AtomicU64::new(0),
                stats,
            }),
        }
    }

    pub fn stats(&self) -> &CacheStats {
        &self.inner.stats
    }

    /// The bytes the cache holds now, as its weigher counts them.
    pub fn weighted_size(&self) -> u64 {
        self.inner.store.weighted_size()
    }

    /// Finishes moka's amortised housekeeping (evictions, invalidations).
    pub async fn run_pending_tasks(&self) {
        self.inner.store.run_pending_tasks().await;
    }

    /// Drops every entry of this locator (`s3://bucket/key`), whatever the integration.
    pub fn purge_locator(&self, locator: &str) {
        let locator = locator.to_owned();
        self.purge(move |o| *o.locator == *locator);
    }

    /// Drops every entry whose locator starts with `prefix`.
    pub fn purge_prefix(&self, prefix: &str) {
        let prefix = prefix.to_owned();
        self.purge(move |o| o.locator.starts_with(&prefix));
    }

    fn purge(&self, matches: impl Fn(&ObjKey) -> bool + Send + Sync + 'static) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.inner.store.invalidate_entries_if(move |k, _| matches(k.object())) {
            tracing::error!(error = %e, "cache purge failed");
        }
    }

    /// Reads an object (or its metadata, or one range of it) through the cache.
    ///
    /// `pin` is an `If-Match` the answer must satisfy (the proxy pins the
    /// parts of a multipart answer to one ETag); other preconditions are the
    /// proxy's to evaluate on the returned metadata.
    pub async fn fetch(
        &self,
        integration: &Arc<Integration>,
        loc: &Locator,
        head: bool,
        range: Option<RangeSpec>,
        pin: Option<&str>,
    ) -> Result<ObjectResponse> {
        let obj = ObjKey { integration: Arc::from(integration.name.as_str()), locator: Arc::from(loc.to_string()) };
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
        if verdict.hit {
            let (cached, needed) = t.cached_slices(&entry, span);
            if cached < needed {
                let fwd = if cached == 0 { "miss" } else { "partial" };
                verdict = Verdict { hit: false, fwd: Some(fwd), stored: true, ttl: None, ..verdict };
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
            runs: 1,
            ahead: None,
        };
        let stream = futures_util::stream::unfold(reader, |mut r| async move { r.next().await.map(|item| (item, r)) });
        let body = StreamBody::new(futures_util::TryStreamExt::map_ok(stream, Frame::data)).boxed_unsync();
        Ok(ObjectResponse { meta: entry.meta.clone(), part, body, cache_status: Some(verdict.header()) })
    }
}

/// The cache's verdict on one response, for `Cache-Status` (RFC 9211).
#[derive(Debug, Clone, Copy)]
struct Verdict {
    hit: bool,
    /// `fwd=` when the storage was asked: miss, stale, partial.
    fwd: Option<&'static str>,
    collapsed: bool,
    stored: bool,
    /// Seconds of freshness left, for hits.
    ttl: Option<u64>,
    detail: Option<&'static str>,
}

impl Verdict {
    fn hit(ttl: u64) -> Verdict {
        Verdict { hit: true, fwd: None, collapsed: false, stored: false, ttl: Some(ttl), detail: None }
    }

    fn fwd(kind: &'static str) -> Verdict {
        Verdict { hit: false, fwd: Some(kind), collapsed: false, stored: true, ttl: None, detail: None }
    }

    fn header(&self) -> String {
        let mut out = String::from("mediagate");
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd);
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if let Some(ttl) = self.ttl {
            out.push_str(&format!("; ttl={ttl}"));
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            out.push_str(detail);
        }
        out
    }
}

/// One object being read through the cache.
#[derive(Clone)]
struct Target {
    inner: Arc<Inner>,
    integration: Arc<Integration>,
    loc: Locator,
    obj: ObjKey,
}

impl Target {
    fn slice_bytes(&self) -> u64 {
        self.inner.cfg.slice_bytes
    }

    /// Step 1 of the module doc: the object's metadata, how it was had, and
    /// (for a cold `GET`) the fill already started for its first slice.
    async fn metadata(
        &self,
        head: bool,
        range: Option<RangeSpec>,
    ) -> Result<(Arc<MetaEntry>, Verdict, Option<(u64, Arc<Fill>)>)> {
        let cfg = &self.inner.cfg;
        if let Some(Value::Meta(entry)) = self.inner.store.get(&Key::Meta(self.obj.clone())).await {
            let age = entry.validated.elapsed();
            let fresh_for = if entry.missing { cfg.negative_ttl } else { cfg.ttl };
            if age < fresh_for {
                return Ok((entry, Verdict::hit((fresh_for - age).as_secs()), None));
            }
            if !entry.missing {
                return self.revalidate(entry).await.map(|(e, v)| (e, v, None));
            }
        }
        let start = match range {
            _ if head => None,
            None => Some(0),
            Some(RangeSpec::FromTo(a, _) | RangeSpec::From(a)) => Some(a),
            Some(RangeSpec::Suffix(_)) => None,
        };
        let Some(start) = start else {
            return self.learn_metadata().await.map(|e| (e, Verdict::fwd("miss"), None));
        };
        let index = start / self.slice_bytes();
        match self.start_run(index, index, None) {
            Some((fill, joined)) => match fill.wait_meta().await {
                Ok(meta) => {
                    let entry = self.store_meta(meta).await;
                    Ok((entry, Verdict { collapsed: joined, ..Verdict::fwd("miss") }, Some((index, fill))))
                }
                Err(e) if matches!(e.kind, Kind::RangeNotSatisfiable { .. } | Kind::NotFound) => {
                    // Past the end, or gone: the metadata read says which, with the length.
                    self.learn_metadata().await.map(|e| (e, Verdict::fwd("miss"), None))
                }
                Err(e) => Err(e),
            },
            None => self.learn_metadata().await.map(|e| (e, Verdict::fwd("miss"), None)),
        }
    }

    /// Re-asks the storage about stale metadata: `If-None-Match` with the
    /// ETag; an unchanged answer refreshes it, a changed one replaces it and
    /// drops the old version's slices. On failure, serves it stale within
    /// `stale_if_error`.
    async fn revalidate(&self, old: Arc<MetaEntry>) -> Result<(Arc<MetaEntry>, Verdict)> {
        add(&self.inner.stats.revalidations, 1);
        let cond = Conditions { if_none_match: old.meta.etag.clone(), ..Conditions::default() };
        let req =
            ObjectRequest { head: true, bucket: &self.loc.bucket, key: &self.loc.key, range: None, conditions: &cond };
        match self.integration.fetch(&req).await {
            Ok(resp) if resp.part == Part::NotModified || validator(&resp.meta) == old.validator => {
                let meta = if resp.part == Part::NotModified { old.meta.clone() } else { resp.meta };
                let entry = self.store_meta(meta).await;
                Ok((entry, Verdict { stored: false, ..Verdict::fwd("stale") }))
            }
            Ok(resp) => {
                self.drop_version(&old.validator);
                let entry = self.store_meta(resp.meta).await;
                Ok((entry, Verdict::fwd("stale")))
            }
            Err(e) if e.kind == Kind::NotFound => {
                self.inner.store.invalidate(&Key::Meta(self.obj.clone())).await;
                self.drop_version(&old.validator);
                Err(e)
            }
            Err(e) if old.validated.elapsed() < self.inner.cfg.ttl + self.inner.cfg.stale_if_error => {
                tracing::warn!(locator = %self.loc, error = %e.detail(), "revalidation failed; serving stale (stale_if_error)");
                Ok((
                    old,
                    Verdict {
                        hit: true,
                        fwd: None,
                        collapsed: false,
                        stored: false,
                        ttl: Some(0),
                        detail: Some("stale-if-error"),
                    },
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the metadata with a `HEAD`, one at a time per object: concurrent
    /// callers share the answer (and a 404 is remembered for `negative_ttl`).
    async fn learn_metadata(&self) -> Result<Arc<MetaEntry>> {
        let cell = {
            let mut metas = lock(&self.inner.metas);
            metas.entry(self.obj.clone()).or_default().clone()
        };
        let result = cell
            .get_or_init(|| async {
                let none = Conditions::default();
                let req = ObjectRequest {
                    head: true,
                    bucket: &self.loc.bucket,
                    key: &self.loc.key,
                    range: None,
                    conditions: &none,
                };
                match self.integration.fetch(&req).await {
                    Ok(resp) => Ok(self.store_meta(resp.meta).await),
                    Err(e) => {
                        if e.kind == Kind::NotFound && !self.inner.cfg.negative_ttl.is_zero() {
                            self.store_missing().await;
                        }
                        Err((e.kind.clone(), e.message.clone()))
                    }
                }
            })
            .await
            .clone();
        {
            let mut metas = lock(&self.inner.metas);
            if metas.get(&self.obj).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                metas.remove(&self.obj);
            }
        }
        result.map_err(|(kind, message)| Error::new(kind, message))
    }

    async fn store_meta(&self, mut meta: ObjectMeta) -> Arc<MetaEntry> {
        // Decided once here rather than on every hit.
        let content_type = crate::proxy::content_type(meta.content_type.as_deref(), &self.loc.key);
        meta.content_type = content_type.to_str().ok().map(str::to_owned);
        let entry =
            Arc::new(MetaEntry { validator: validator(&meta), meta, validated: Instant::now(), missing: false });
        self.inner.store.insert(Key::Meta(self.obj.clone()), Value::Meta(entry.clone())).await;
        entry
    }

    async fn store_missing(&self) {
        let entry = MetaEntry {
            meta: ObjectMeta::default(),
            validator: Arc::from(""),
            validated: Instant::now(),
            missing: true,
        };
        self.inner.store.insert(Key::Meta(self.obj.clone()), Value::Meta(Arc::new(entry))).await;
    }

    /// Drops the slices of one version of the object.
    fn drop_version(&self, validator: &Arc<str>) {
        let (obj, validator) = (self.obj.clone(), validator.clone());
        let result = self
            .inner
            .store
            .invalidate_entries_if(move |k, _| matches!(k, Key::Slice(o, v, _) if *o == obj && *v == validator));
        if let Err(e) = result {
            tracing::error!(error = %e, "dropping an old version's slices failed");
        }
    }

    fn slice_key(&self, validator: &Arc<str>, index: u64) -> Key {
        Key::Slice(self.obj.clone(), validator.clone(), index)
    }

    /// How many of the slices under `span` are cached, and how many there are.
    fn cached_slices(&self, entry: &MetaEntry, span: ByteSpan) -> (u64, u64) {
        let g = self.slice_bytes();
        let indices = span.start / g..=span.end / g;
        let needed = indices.clone().count() as u64;
        let cached = indices.filter(|&k| self.inner.store.contains_key(&self.slice_key(&entry.validator, k))).count();
        (cached as u64, needed)
    }

    /// The fill of slice `first`: the running one (joined: `true`), or a new
    /// run, one storage read covering slices `first..=last` that stops before
    /// the first slice already cached or filling. `None` when `max_fills`
    /// runs are going already.
    fn start_run(&self, first: u64, last: u64, expected: Option<Arc<str>>) -> Option<(Arc<Fill>, bool)> {
        let mut fills = lock(&self.inner.fills);
        if let Some(fill) = fills.get(&(self.obj.clone(), first)) {
            add(&self.inner.stats.coalesced_waits, 1);
            return Some((fill.clone(), true));
        }
        let Ok(permit) = self.inner.fill_slots.clone().try_acquire_owned() else {
            add(&self.inner.stats.bypassed_fills, 1);
            return None;
        };
        let mut run = vec![(first, Arc::new(Fill::new()))];
        for index in first + 1..=last {
            let taken = fills.contains_key(&(self.obj.clone(), index))
                || expected.as_ref().is_none_or(|v| self.inner.store.contains_key(&self.slice_key(v, index)));
            if taken {
                break;
            }
            run.push((index, Arc::new(Fill::new())));
        }
        for (index, fill) in &run {
            fills.insert((self.obj.clone(), *index), fill.clone());
        }
        drop(fills);
        add(&self.inner.stats.fills, run.len() as u64);
        let fill = run[0].1.clone();
        let generation = self.inner.generation.load(Ordering::SeqCst);
        tokio::spawn(self.clone().run(run, expected, permit, generation));
        Some((fill, false))
    }

    /// Reads a run of slices from the storage into their fills, storing each
    /// slice as it completes; on failure, the unfinished fills fail and
    /// nothing of theirs is stored.
    async fn run(
        self,
        run: Vec<(u64, Arc<Fill>)>,
        expected: Option<Arc<str>>,
        _permit: OwnedSemaphorePermit,
        generation: u64,
    ) {
        if let Err(e) = self.read_run(&run, expected.as_ref(), generation).await {
            add(&self.inner.stats.failed_fills, 1);
            tracing::debug!(locator = %self.loc, first = run[0].0, error = %e.detail(), "cache fill failed");
            for (_, fill) in &run {
                fill.finish(Err(e.share()));
            }
        }
        let mut fills = lock(&self.inner.fills);
        for (index, fill) in &run {
            let key = (self.obj.clone(), *index);
            if fills.get(&key).is_some_and(|f| Arc::ptr_eq(f, fill)) {
                fills.remove(&key);
            }
        }
    }

    async fn read_run(&self, run: &[(u64, Arc<Fill>)], expected: Option<&Arc<str>>, generation: u64) -> Result<()> {
        let g = self.slice_bytes();
        let (first, last) = (run[0].0, run[run.len() - 1].0);
        let (start, end) = (first * g, last * g + g - 1);
        let resp = self.read_range(start, end, expected).await?;
        let size = resp.meta.size;
        let answered = match resp.part {
            Part::Range(span) if span.start == start => span.end,
            Part::Whole if start == 0 && size <= end + 1 => size.saturating_sub(1),
            _ => {
                return Err(Error::new(
                    Kind::UpstreamError,
                    format!("the storage did not answer the range {start}-{end} of {}", self.loc),
                ));
            }
        };
        if let Some(expected) = expected
            && validator(&resp.meta) != *expected
        {
            self.drop_version(expected);
            self.inner.store.invalidate(&Key::Meta(self.obj.clone())).await;
            return Err(Error::new(
                Kind::UpstreamError,
                format!("{} changed while it was being read; retry", self.loc),
            ));
        }
        // Slices past the end of the object (a run asked blind) get nothing.
        let run: Vec<_> = run.iter().filter(|(i, _)| i * g < size.max(1)).collect();
        for (index, fill) in &run {
            let span = ByteSpan { start: index * g, end: (index * g + g - 1).min(answered) };
            fill.set_head(resp.meta.clone(), span);
        }
        let validator = validator(&resp.meta);
        let mut body = resp.body;
        let mut slices = run.iter().peekable();
        let mut left = slice_len(size, g, run[0].0);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Error::new(Kind::UpstreamError, format!("reading {} broke off: {e}", self.loc)))?;
            let Ok(mut data) = frame.into_data() else { continue };
            add(&self.inner.stats.bytes_from_upstream, data.len() as u64);
            while !data.is_empty() {
                let Some((index, fill)) = slices.peek() else {
                    return Err(Error::new(Kind::UpstreamError, format!("the storage sent too much of {}", self.loc)));
                };
                let piece = data.split_to((left as usize).min(data.len()));
                left -= piece.len() as u64;
                fill.push(piece);
                if left == 0 {
                    self.complete(fill, &validator, *index, generation).await;
                    slices.next();
                    left = slices.peek().map_or(0, |(i, _)| slice_len(size, g, *i));
                }
            }
        }
        if let Some((index, fill)) = slices.peek()
            && size == 0
        {
            self.complete(fill, &validator, *index, generation).await;
            slices.next();
        }
        match slices.peek() {
            None => Ok(()),
            Some((index, _)) => Err(Error::new(
                Kind::UpstreamError,
                format!("the storage's answer for {} ended before slice {index}", self.loc),
            )),
        }
    }

    /// Reads `start..=end` from the storage, with `If-Match` on `expected`
    /// when it is an entity-tag (a size-and-date validator cannot be sent).
    async fn read_range(&self, start: u64, end: u64, expected: Option<&Arc<str>>) -> Result<ObjectResponse> {
        let if_match = expected.filter(|v| v.starts_with('"') || v.starts_with("W/")).map(|v| v.to_string());
        let pin = Conditions { if_match, ..Conditions::default() };
        let req = ObjectRequest {
            head: false,
            bucket: &self.loc.bucket,
            key: &self.loc.key,
            range: Some(RangeSpec::FromTo(start, end)),
            conditions: &pin,
        };
        self.integration.fetch(&req).await
    }

    /// Stores a completed slice (unless a purge came since the run began)
    /// and tells its readers it is whole.
    async fn complete(&self, fill: &Fill, validator: &Arc<str>, index: u64, generation: u64) {
        if self.inner.generation.load(Ordering::SeqCst) == generation {
            self.inner.store.insert(self.slice_key(validator, index), Value::Slice(fill.pieces())).await;
            // Evict now rather than in moka's next batch: a fast stream
            // would otherwise run past the budget by several slices.
            self.inner.store.run_pending_tasks().await;
        }
        fill.finish(Ok(()));
    }

    /// Starts the run after `index` (up to `last`) if slice `index + 1` is
    /// neither cached nor filling and a fill slot is free.
    /// Returns whether it started one.
    fn read_ahead(&self, validator: &Arc<str>, index: u64, last: u64) -> bool {
        let next = index + 1;
        if next > last
            || self.inner.store.contains_key(&self.slice_key(validator, next))
            || lock(&self.inner.fills).contains_key(&(self.obj.clone(), next))
            || self.inner.fill_slots.available_permits() == 0
        {
            return false;
        }
        self.start_run(next, last, Some(validator.clone())).is_some_and(|(_, joined)| !joined)
    }
}

/// The length of slice `index` of an object of `size` bytes.
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One storage read of one slice, shared by every reader of that slice.
struct Fill {
    state: Mutex<FillState>,
    changed: watch::Sender<()>,
}

#[derive(Default)]
struct FillState {
    /// The object's metadata and the span answered, once the head arrived.
    head: Option<(ObjectMeta, ByteSpan)>,
    /// The bytes so far, as pieces frozen out of `buf`.
    chunks: Vec<Bytes>,
    /// One buffer of the slice's size that every piece is cut from, so the
    /// storage connection's buffers are not held and nothing is copied twice.
    buf: BytesMut,
    /// `Some` once the fill ended; an error is shared with every reader.
    done: Option<Result<(), (Kind, String)>>,
}

impl Fill {
    fn new() -> Fill {
        Fill { state: Mutex::new(FillState::default()), changed: watch::Sender::new(()) }
    }

    fn update(&self, f: impl FnOnce(&mut FillState)) {
        f(&mut lock(&self.state));
        self.changed.send_replace(());
    }

    fn set_head(&self, meta: ObjectMeta, span: ByteSpan) {
        self.update(|s| s.head = Some((meta, span)));
    }

    fn push(&self, data: Bytes) {
        self.update(|s| {
            if s.chunks.is_empty()
                && let Some((meta, span)) = &s.head
            {
                // Allocated on the first bytes, not at the head: the slices
                // of a long run wait their turn without holding memory.
                s.buf.reserve(if meta.size == 0 { 0 } else { span.len() as usize });
            }
            s.buf.extend_from_slice(&data);
            let piece = s.buf.split().freeze();
            s.chunks.push(piece);
        });
    }

    /// Ends the fill once: a run that fails later must not turn its slices
    /// that already completed (and were stored) into failures.
    fn finish(&self, result: Result<()>) {
        self.update(|s| {
            if s.done.is_none() {
                s.done = Some(result.map_err(|e| (e.kind.clone(), e.message.clone())));
            }
        });
    }

    /// The slice's pieces, to keep in the cache.
    fn pieces(&self) -> Arc<[Bytes]> {
        lock(&self.state).chunks.clone().into()
    }

    /// Waits for the response head of the fill (or its failure).
    async fn wait_meta(&self) -> Result<ObjectMeta> {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let state = lock(&self.state);
                if let Some((meta, _)) = &state.head {
                    return Ok(meta.clone());
                }
                if let Some(Err((kind, message))) = &state.done {
                    return Err(Error::new(kind.clone(), message.clone()));
                }
                if state.done.is_some() {
                    return Err(Error::internal("a cache fill ended without a response"));
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::internal("a cache fill went away"));
            }
        }
    }
}

/// Where a reader gets the bytes of the slice it is in.
enum Source {
    /// A fill, with the index of the next chunk and that chunk's offset.
    Fill { fill: Arc<Fill>, chunk: usize, offset: u64 },
    /// A cached slice.
    Cached { pieces: Arc<[Bytes]>, chunk: usize, offset: u64 },
    /// A storage read outside the cache (no fill slot was free).
    Direct(Body),
}

/// Streams a span of an object, slice by slice (step 3 of the module doc).
struct SliceReader {
    t: Target,
    validator: Arc<str>,
    size: u64,
    /// The next byte to send, and the last (inclusive).
    pos: u64,
    end: u64,
    current: Option<(Source, u64)>,
    /// A fill already started for this slice index while learning the metadata.
    first: Option<(u64, Arc<Fill>)>,
    /// Runs this reader started: each is twice as long as the one before
    /// (up to [`RUN_MAX_BYTES`]), so a seek reads little and a stream soon
    /// reads in long requests.
    runs: u32,
    /// The slice whose next run is to be started once its first bytes are
    /// out: reading ahead before that would slow the first byte.
    ahead: Option<u64>,
}

impl SliceReader {
    /// The length in slices of the next run this reader starts.
    fn run_len(&self) -> u64 {
        let cap = (RUN_MAX_BYTES / self.t.slice_bytes()).max(1);
        (1u64 << self.runs.min(20)).min(cap)
    }

    async fn next(&mut self) -> Option<Result<Bytes, BoxError>> {
        let item = self.next_bytes().await;
        if let (Some(index), Some(Ok(_))) = (self.ahead, &item) {
            self.ahead = None;
            let last = (self.end / self.t.slice_bytes()).min(index + self.run_len());
            self.runs += u32::from(self.t.read_ahead(&self.validator, index, last));
        }
        item
    }

    async fn next_bytes(&mut self) -> Option<Result<Bytes, BoxError>> {
        loop {
            if self.pos > self.end {
                return None;
            }
            if let Some((source, slice_end)) = &mut self.current {
                let limit = (*slice_end).min(self.end);
                let cached = matches!(source, Source::Cached { .. });
                match read_source(source, self.pos, limit).await {
                    Some(Ok(bytes)) => {
                        if cached {
                            add(&self.t.inner.stats.bytes_from_cache, bytes.len() as u64);
                        }
                        self.pos += bytes.len() as u64;
                        return Some(Ok(bytes));
                    }
                    Some(Err(e)) => {
                        self.pos = self.end + 1;
                        return Some(Err(e));
                    }
                    None if self.pos <= limit => {
                        self.pos = self.end + 1;
                        return Some(Err(format!("the storage's answer for {} ended early", self.t.loc).into()));
                    }
                    None => self.current = None,
                }
                continue;
            }
            match self.open_slice().await {
                Ok(Some(bytes)) => return Some(Ok(bytes)),
                Ok(None) => {}
                Err(e) => {
                    self.pos = self.end + 1;
                    return Some(Err(Box::new(e)));
                }
            }
        }
    }

    /// Moves to the slice holding `pos`: sends it from memory when cached
    /// (`Some`), else sets up the fill or direct read to take it from.
    async fn open_slice(&mut self) -> Result<Option<Bytes>> {
        let g = self.t.slice_bytes();
        let index = self.pos / g;
        let slice_start = index * g;
        let slice_end = (slice_start + g).min(self.size) - 1;
        let last_slice = self.end / g;
        self.ahead = Some(index);
        if let Some(Value::Slice(pieces)) = self.t.inner.store.get(&self.t.slice_key(&self.validator, index)).await {
            let mut source = Source::Cached { pieces, chunk: 0, offset: slice_start };
            let out = match &mut source {
                Source::Cached { pieces, chunk, offset } => {
                    next_piece(pieces, chunk, offset, self.pos, slice_end.min(self.end))
                }
                _ => None,
            };
            self.current = Some((source, slice_end));
            if let Some(out) = &out {
                add(&self.t.inner.stats.bytes_from_cache, out.len() as u64);
                self.pos += out.len() as u64;
            }
            return Ok(out);
        }
        let joined = match self.first.take() {
            Some((i, fill)) if i == index => Some(fill),
            _ => {
                let last = last_slice.min(index + self.run_len() - 1);
                let run = self.t.start_run(index, last, Some(self.validator.clone()));
                self.runs += u32::from(run.as_ref().is_some_and(|(_, joined)| !joined));
                run.map(|(f, _)| f)
            }
        };
        let source = match joined {
            Some(fill) => {
                let meta = fill.wait_meta().await?;
                if validator(&meta) != self.validator {
                    return Err(Error::new(
                        Kind::UpstreamError,
                        format!("{} changed while it was being read", self.t.loc),
                    ));
                }
                Source::Fill { fill, chunk: 0, offset: slice_start }
            }
            None => direct(&self.t, &self.validator, self.pos, slice_end.min(self.end)).await?,
        };
        self.current = Some((source, slice_end));
        Ok(None)
    }
}

/// Reads `start..=end` straight from the storage, pinned to the ETag.
async fn direct(t: &Target, expected: &Arc<str>, start: u64, end: u64) -> Result<Source> {
    let resp = t.read_range(start, end, Some(expected)).await?;
    if validator(&resp.meta) != *expected {
        return Err(Error::new(Kind::UpstreamError, format!("{} changed while it was being read", t.loc)));
    }
    let stats = t.inner.stats.clone();
    let body = resp.body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            add(&stats.bytes_from_upstream, d.len() as u64);
        }
        f
    });
    Ok(Source::Direct(body.boxed_unsync()))
}

/// The next bytes at `pos` (up to `limit`) from a source; `None` when it has
/// no more.
async fn read_source(source: &mut Source, pos: u64, limit: u64) -> Option<Result<Bytes, BoxError>> {
    match source {
        Source::Cached { pieces, chunk, offset } => next_piece(pieces, chunk, offset, pos, limit).map(Ok),
        Source::Direct(body) => loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        },
        Source::Fill { fill, chunk, offset } => loop {
            let mut rx = fill.changed.subscribe();
            {
                let state = lock(&fill.state);
                if let Some(piece) = next_piece(&state.chunks, chunk, offset, pos, limit) {
                    return Some(Ok(piece));
                }
                match &state.done {
                    Some(Ok(())) => return None,
                    Some(Err((_, message))) => return Some(Err(message.clone().into())),
                    None => {}
                }
            }
            if rx.changed().await.is_err() {
                return Some(Err("a cache fill went away".into()));
            }
        },
    }
}

/// The bytes from `pos` to at most `limit` in the first piece that holds
/// `pos`; `chunk` and `offset` (the piece's first byte) advance past the
/// pieces left behind. `None` when the pieces end before `pos`.
fn next_piece(pieces: &[Bytes], chunk: &mut usize, offset: &mut u64, pos: u64, limit: u64) -> Option<Bytes> {
    while let Some(c) = pieces.get(*chunk) {
        let c_end = *offset + c.len() as u64;
        if pos >= c_end {
            *chunk += 1;
            *offset = c_end;
            continue;
        }
        if pos > limit {
            return None;
        }
        let from = (pos - *offset) as usize;
        let to = (limit.min(c_end - 1) - *offset) as usize;
        return Some(c.slice(from..=to));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::Registry;
    use std::path::Path;
    use std::time::Duration;

    /// A cache and a local integration over a temp dir holding `files` in bucket `b`.
    fn setup(cache: &str, files: &[(&str, usize)]) -> (tempfile::TempDir, Cache, Arc<Integration>) {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("b")).expect("bucket");
        for (name, len) in files {
            std::fs::write(dir.path().join("b").join(name), vec![b'x'; *len]).expect("file");
        }
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[cache]\n{cache}\n[[integration]]\nname = \"disk\"\ntype = \"local\"\nroot = \"{}\"\n",
            dir.path().display()
        );
        let config = crate::config::parse(&text, Path::new("test.toml"), &|_| None).expect("config");
        let registry = Registry::build(&config).expect("registry");
        let integration = registry.all()[0].clone();
        (dir, Cache::new(&config.cache), integration)
    }

    async fn read(cache: &Cache, integration: &Arc<Integration>, key: &str) -> (usize, String) {
        let loc = Locator::parse(&format!("local://b/{key}")).expect("locator");
        let resp = cache.fetch(integration, &loc, false, None, None).await.expect("fetch");
        let status = resp.cache_status.clone().unwrap_or_default();
        let bytes = resp.body.collect().await.expect("body").to_bytes();
        (bytes.len(), status)
    }

    #[tokio::test]
    async fn a_purged_locator_is_a_miss_again_and_others_stay_hits() {
        let (_dir, cache, disk) =
            setup("slice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"", &[("a.jpg", 1000), ("b.jpg", 1000)]);
        for key in ["a.jpg", "b.jpg"] {
            read(&cache, &disk, key).await;
            assert!(read(&cache, &disk, key).await.1.contains("hit"));
        }
        cache.purge_locator("local://b/a.jpg");
        cache.run_pending_tasks().await;
        assert!(read(&cache, &disk, "a.jpg").await.1.contains("fwd=miss"));
        assert!(read(&cache, &disk, "b.jpg").await.1.contains("hit"));
    }

    #[tokio::test]
    async fn a_purged_prefix_drops_every_locator_under_it() {
        let (_dir, cache, disk) = setup("", &[("v1.mp4", 10), ("v2.mp4", 10), ("w.mp4", 10)]);
        for key in ["v1.mp4", "v2.mp4", "w.mp4"] {
            read(&cache, &disk, key).await;
        }
        cache.purge_prefix("local://b/v");
        cache.run_pending_tasks().await;
        assert!(read(&cache, &disk, "v1.mp4").await.1.contains("fwd=miss"));
        assert!(read(&cache, &disk, "v2.mp4").await.1.contains("fwd=miss"));
        assert!(read(&cache, &disk, "w.mp4").await.1.contains("hit"));
    }

    #[tokio::test]
    async fn the_cache_holds_to_its_byte_budget_by_evicting() {
        let files: Vec<(String, usize)> = (0..48).map(|i| (format!("f{i}.bin"), 64 << 10)).collect();
        let refs: Vec<(&str, usize)> = files.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let (_dir, cache, disk) =
            setup("max_bytes = \"1MiB\"\nslice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"", &refs);
        for round in 0..2 {
            for (name, len) in &refs {
                assert_eq!(read(&cache, &disk, name).await.0, *len, "round {round}");
            }
        }
        cache.run_pending_tasks().await;
        assert!(cache.weighted_size() <= 1 << 20, "{} bytes held", cache.weighted_size());
        assert!(cache.stats().evictions.load(Ordering::Relaxed) > 0);
        let mut hits = 0;
        for (name, _) in &refs {
            if read(&cache, &disk, name).await.1.contains("hit") {
                hits += 1;
            }
        }
        assert!(hits < refs.len(), "3 MiB of objects cannot all stay in a 1 MiB cache");
    }

    #[tokio::test]
    async fn a_large_object_is_read_in_slices_and_a_range_spans_them() {
        let (_dir, cache, disk) =
            setup("slice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"", &[("big.bin", 300_000)]);
        let loc = Locator::parse("local://b/big.bin").expect("locator");
        let resp =
            cache.fetch(&disk, &loc, false, Some(RangeSpec::FromTo(65_000, 140_000)), None).await.expect("fetch");
        assert_eq!(resp.part, Part::Range(ByteSpan { start: 65_000, end: 140_000 }));
        let bytes = resp.body.collect().await.expect("body").to_bytes();
        assert_eq!(bytes.len(), 75_001);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let g = 64 << 10;
        let t = Target {
            inner: cache.inner.clone(),
            integration: disk.clone(),
            loc: loc.clone(),
            obj: ObjKey { integration: Arc::from("disk"), locator: Arc::from("local://b/big.bin") },
        };
        let entry = match cache.inner.store.get(&Key::Meta(t.obj.clone())).await {
            Some(Value::Meta(e)) => e,
            _ => panic!("no metadata cached"),
        };
        for k in [1, 2] {
            assert!(cache.inner.store.contains_key(&t.slice_key(&entry.validator, k)), "slice {k} not cached");
        }
        assert!(!cache.inner.store.contains_key(&t.slice_key(&entry.validator, 4)), "slice 4 was never asked for");
        assert_eq!(300_000 / g, 4);
    }

    #[test]
    fn a_completed_slice_stays_complete_when_its_run_fails_later() {
        let fill = Fill::new();
        fill.push(Bytes::from_static(b"abc"));
        fill.finish(Ok(()));
        fill.finish(Err(Error::new(Kind::UpstreamError, "the rest of the run broke off")));
        assert!(matches!(lock(&fill.state).done, Some(Ok(()))));
    }

    #[test]
    fn the_cache_status_reads_as_rfc_9211_says() {
        assert_eq!(Verdict::hit(30).header(), "mediagate; hit; ttl=30");
        assert_eq!(Verdict::fwd("miss").header(), "mediagate; fwd=miss; stored");
        let collapsed = Verdict { collapsed: true, ..Verdict::fwd("miss") };
        assert_eq!(collapsed.header(), "mediagate; fwd=miss; stored; collapsed");
    }
}
