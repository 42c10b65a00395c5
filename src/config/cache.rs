//! `[cache]`: the in-memory cache (CONTRACT.md section 4).

use std::time::Duration;

use crate::schema::values::{as_bool, as_count, as_duration, as_size_in};
use crate::schema::{Ctx, Section};

/// `[cache]`: the in-memory cache (CONTRACT.md section 4).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `enabled`, default true.
    pub enabled: bool,
    /// `max_bytes`, default `256MiB`: the budget of cached bytes (objects,
    /// slices and their metadata).
    pub max_bytes: u64,
    /// `max_object_bytes`, default `4MiB`, at most 1GiB: objects up to this
    /// size are one entry, fetched with one storage read; larger ones are
    /// kept in slices. Independent of `slice_bytes` (CONTRACT.md section 4).
    pub max_object_bytes: u64,
    /// `slice_bytes`, default `4MiB`, from 64KiB to 1GiB: the aligned unit a
    /// large object is fetched and kept in.
    pub slice_bytes: u64,
    /// `ttl`, default `5m`: entries older than this are revalidated upstream.
    pub ttl: Duration,
    /// `stale_if_error`, default `0s` (off): how long past `ttl` an entry may
    /// still be served when revalidation fails.
    pub stale_if_error: Duration,
    /// `negative_ttl`, default `0s` (off): how long a 404 is remembered.
    pub negative_ttl: Duration,
    /// `max_fills`, default 16: storage reads filling the cache at once;
    /// past it, requests stream straight through. Bounds fill memory to
    /// `max_fills × slice_bytes`.
    pub max_fills: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_bytes: 256 << 20,
            max_object_bytes: 4 << 20,
            slice_bytes: 4 << 20,
            ttl: Duration::from_secs(300),
            stale_if_error: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            max_fills: 16,
        }
    }
}

/// `[cache]`; absent keys take their defaults.
pub fn cache(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> CacheConfig {
    let d = CacheConfig::default();
    let slice_bytes = t.get(cx, "slice_bytes", |v| as_size_in(v, 64 << 10, 1 << 30)).unwrap_or(d.slice_bytes);
    let config = CacheConfig {
        enabled: t.get(cx, "enabled", as_bool).unwrap_or(d.enabled),
        max_bytes: t.get(cx, "max_bytes", |v| as_size_in(v, 1 << 20, u64::MAX)).unwrap_or(d.max_bytes),
        max_object_bytes: t.get(cx, "max_object_bytes", |v| as_size_in(v, 0, 1 << 30)).unwrap_or(d.max_object_bytes),
        slice_bytes,
        ttl: t.get(cx, "ttl", as_duration).unwrap_or(d.ttl),
        stale_if_error: t.get(cx, "stale_if_error", as_duration).unwrap_or(d.stale_if_error),
        negative_ttl: t.get(cx, "negative_ttl", as_duration).unwrap_or(d.negative_ttl),
        max_fills: t.get(cx, "max_fills", |v| as_count(v, 1)).unwrap_or(d.max_fills),
    };
    t.finish(cx, "");
    config
}
