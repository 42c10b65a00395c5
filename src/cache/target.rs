//! An object's metadata: learnt, cached, revalidated.

use std::sync::Arc;
use std::time::Instant;

use super::fill::Fill;
use super::status::Verdict;
use super::{Key, MetaEntry, Target, Value, add, lock, validator};
use crate::error::{Error, Kind, Result};
use crate::http::conditional::Conditions;
use crate::http::entity::EntityHeaders;
use crate::http::range::{ByteSpan, RangeSpec};
use crate::integration::{ObjectMeta, ObjectRequest, Part};

impl Target {
    pub(super) fn slice_bytes(&self) -> u64 {
        self.inner.cfg.slice_bytes
    }

    /// The unit an object of `size` bytes is kept in ([`super::granule`]).
    pub(super) fn granule(&self, size: u64) -> u64 {
        super::granule(&self.inner.cfg, size)
    }

    /// Step 1 of the module doc: the object's metadata, how it was had, and
    /// (for a cold `GET`) the fill already started for its first slice.
    pub(super) async fn metadata(
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
                // The rare paths are boxed: a hit's future stays small (it is
                // moved several times per request).
                return Box::pin(self.revalidate(entry)).await.map(|(e, v)| (e, v, None));
            }
        }
        Box::pin(self.learn(head, range)).await
    }

    /// Metadata not cached (or a remembered 404 gone stale): learnt from
    /// the first storage read, or from a `HEAD` when the start of the read
    /// is not known.
    async fn learn(
        &self,
        head: bool,
        range: Option<RangeSpec>,
    ) -> Result<(Arc<MetaEntry>, Verdict, Option<(u64, Arc<Fill>)>)> {
        let start = match range {
            _ if head => None,
            None => Some(0),
            Some(RangeSpec::FromTo(a, _) | RangeSpec::From(a)) => Some(a),
            Some(RangeSpec::Suffix(_)) => None,
        };
        let Some(start) = start else {
            return self.learn_metadata().await.map(|e| (e, Verdict::fwd("miss"), None));
        };
        // Size unknown: from 0, a read long enough to keep any whole-sized
        // object whole; elsewhere the blocks under the range, up to a slice.
        let cfg = &self.inner.cfg;
        let block = super::block_bytes(cfg);
        let reach = super::blind_reach(cfg);
        let (index, last) = if start == 0 || (start < cfg.max_object_bytes && cfg.max_object_bytes > block) {
            (0, reach / block - 1)
        } else {
            let end = match range {
                Some(RangeSpec::FromTo(_, end)) => end,
                _ => u64::MAX,
            };
            let first = start / block;
            (first, (end / block).min(first + cfg.slice_bytes.div_ceil(block) - 1))
        };
        match self.start_run(index, last, None, block) {
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
                let meta = if resp.part == Part::NotModified {
                    ObjectMeta::clone(&old.meta)
                } else {
                    Arc::unwrap_or_clone(resp.meta)
                };
                let entry = self.store_meta(meta).await;
                Ok((entry, Verdict::fwd("stale")))
            }
            Ok(resp) => {
                self.drop_version(&old.validator);
                let entry = self.store_meta(Arc::unwrap_or_clone(resp.meta)).await;
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
                    Verdict { hit: true, fwd: None, collapsed: false, ttl: Some(0), detail: Some("stale-if-error") },
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
                    Ok(resp) => Ok(self.store_meta(Arc::unwrap_or_clone(resp.meta)).await),
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
        let entity = EntityHeaders::new(
            meta.size,
            meta.etag.as_deref(),
            meta.last_modified,
            meta.content_type.as_deref(),
            &self.loc.key,
        );
        meta.content_type = entity.content_type.to_str().ok().map(str::to_owned);
        meta.entity = Some(Arc::new(entity));
        let entry = Arc::new(MetaEntry {
            validator: validator(&meta),
            meta: Arc::new(meta),
            validated: Instant::now(),
            missing: false,
        });
        self.inner.store.insert(Key::Meta(self.obj.clone()), Value::Meta(entry.clone())).await;
        entry
    }

    async fn store_missing(&self) {
        let entry =
            MetaEntry { meta: Arc::default(), validator: Arc::from(""), validated: Instant::now(), missing: true };
        self.inner.store.insert(Key::Meta(self.obj.clone()), Value::Meta(Arc::new(entry))).await;
    }

    /// Drops the slices of one version of the object.
    pub(super) fn drop_version(&self, validator: &Arc<str>) {
        let (obj, validator) = (self.obj.clone(), validator.clone());
        let result = self
            .inner
            .store
            .invalidate_entries_if(move |k, _| matches!(k, Key::Slice(o, v, _) if *o == obj && *v == validator));
        if let Err(e) = result {
            tracing::error!(error = %e, "dropping an old version's slices failed");
        }
    }

    pub(super) fn slice_key(&self, validator: &Arc<str>, index: u64) -> Key {
        Key::Slice(self.obj.clone(), validator.clone(), index)
    }

    /// How many of the slices under `span` are cached, how many there are,
    /// and what the lookup of the first found (for the reader, so a hit
    /// looks its slice up once).
    pub(super) async fn cached_slices(&self, entry: &MetaEntry, span: ByteSpan) -> (u64, u64, Held) {
        let g = self.granule(entry.meta.size);
        let (first, last) = (span.start / g, span.end / g);
        let found = match self.inner.store.get(&self.slice_key(&entry.validator, first)).await {
            Some(Value::Slice(pieces)) => Some(pieces),
            _ => None,
        };
        let rest = (first + 1..=last).filter(|&k| self.inner.store.contains_key(&self.slice_key(&entry.validator, k)));
        let cached = u64::from(found.is_some()) + rest.count() as u64;
        (cached, last - first + 1, (first, found))
    }
}

/// A slice looked up already: its index, and its pieces if it was cached.
/// The reader does not ask again, so the cache counts one read of it (its
/// admission policy weighs reads, misses included).
pub(super) type Held = (u64, Option<Arc<[bytes::Bytes]>>);
