//! Unit tests of the cache over a local integration.

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
    let registry = Registry::build(&config.integrations, &config.upstream, &config.source).expect("registry");
    let integration = registry.all()[0].clone();
    (dir, Cache::new(&config.cache), integration)
}

async fn read(cache: &Cache, integration: &Arc<Integration>, key: &str) -> (usize, String) {
    let loc = Arc::new(Locator::parse(&format!("local://b/{key}")).expect("locator"));
    let resp = cache.fetch(integration, &loc, &loc.shared_text(), false, None, None).await.expect("fetch");
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
    let (_dir, cache, disk) = setup("slice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"", &[("big.bin", 300_000)]);
    let loc = Arc::new(Locator::parse("local://b/big.bin").expect("locator"));
    let resp = cache
        .fetch(&disk, &loc, &loc.shared_text(), false, Some(RangeSpec::FromTo(65_000, 140_000)), None)
        .await
        .expect("fetch");
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 65_000, end: 140_000 }));
    let bytes = resp.body.collect().await.expect("body").to_bytes();
    assert_eq!(bytes.len(), 75_001);
    fills_done(&cache).await;
    let g = 64 << 10;
    let t = Target {
        inner: cache.inner.clone(),
        integration: disk.clone(),
        loc: loc.clone(),
        obj: ObjKey { integration: disk.cache_id.clone(), locator: Arc::from("local://b/big.bin") },
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
    let fill = Fill::new(None);
    fill.push(Bytes::from_static(b"abc"));
    fill.finish(Ok(()));
    fill.finish(Err(Error::new(Kind::UpstreamError, "the rest of the run broke off")));
    assert!(matches!(lock(&fill.state).done, Some(Ok(()))));
}

#[test]
fn the_cache_status_reads_as_rfc_9211_says() {
    assert_eq!(Verdict::hit(30).header(), "mediagate; hit; ttl=30");
    assert_eq!(Verdict::fwd("miss").header(), "mediagate; fwd=miss");
    let collapsed = Verdict { collapsed: true, ..Verdict::fwd("miss") };
    assert_eq!(collapsed.header(), "mediagate; fwd=miss; collapsed");
}

/// Waits (10 s at most) until no fill is running: each run ends in a task of its own.
async fn fills_done(cache: &Cache) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lock(&cache.inner.fills).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(lock(&cache.inner.fills).is_empty(), "fills still running after 10 s");
}

/// Runs moka's housekeeping until the budget is back to `total` (a purge is
/// applied in batches), 1,000 rounds at most.
async fn settle(cache: &Cache, total: u64) {
    for _ in 0..1000 {
        cache.run_pending_tasks().await;
        if cache.budget_available() == total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn files(n: usize, len: usize) -> Vec<(String, usize)> {
    (0..n).map(|i| (format!("f{i}.bin"), len)).collect()
}

const SMALL_BUDGET: &str = "max_bytes = \"1MiB\"\nslice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"\nmax_fills = 4";

#[tokio::test]
async fn the_memory_budget_comes_back_whole_once_the_cache_and_every_reader_let_go() {
    let names = files(24, 64 << 10);
    let refs: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let (_dir, cache, disk) = setup(SMALL_BUDGET, &refs);
    let total = slice_memory(&cache.inner.cfg);
    assert_eq!(total, 1 << 20, "max_bytes bounds every slice byte");
    assert_eq!(cache.budget_available(), total);
    for _ in 0..2 {
        for (name, len) in &refs {
            assert_eq!(read(&cache, &disk, name).await.0, *len);
        }
    }
    fills_done(&cache).await;
    // A fill leaves the table of fills a moment before its task drops its
    // buffer: wait until every buffer held belongs to a cached slice.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        cache.run_pending_tasks().await;
        let held = total - cache.budget_available();
        if held <= cache.weighted_size() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let held = total - cache.budget_available();
    assert!(held > 0, "the cached slices hold none of the budget");
    assert!(held <= cache.weighted_size(), "{held} bytes held with no reader, {} cached", cache.weighted_size());
    cache.purge_prefix("local://b/");
    settle(&cache, total).await;
    assert_eq!(cache.budget_available(), total, "a dropped slice kept its share of the budget");
}

#[tokio::test]
async fn slices_readers_still_hold_after_eviction_stay_counted_and_later_misses_stream_uncached() {
    // Budget: 1 MiB = 16 slices of 64 KiB; the cache keeps fewer than 12
    // (1 MiB less the fill reserve, min(4 x 64 KiB, 1 MiB / 4)).
    let names = files(17, 64 << 10);
    let refs: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    let (_dir, cache, disk) = setup(SMALL_BUDGET, &refs);
    let total = slice_memory(&cache.inner.cfg);
    let mut unread = Vec::new();
    for (name, _) in &refs[..16] {
        let loc = Arc::new(Locator::parse(&format!("local://b/{name}")).expect("locator"));
        unread.push(cache.fetch(&disk, &loc, &loc.shared_text(), false, None, None).await.expect("fetch"));
        fills_done(&cache).await;
    }
    cache.run_pending_tasks().await;
    assert!(cache.weighted_size() <= (1 << 20) - 4 * (64 << 10));
    assert_eq!(cache.budget_available(), 0, "16 slices held by readers must spend the whole budget");
    assert_eq!(cache.stats().bypassed_fills.load(Ordering::Relaxed), 0);

    let (len, status) = read(&cache, &disk, refs[16].0).await;
    assert_eq!(len, 64 << 10, "a miss past the budget still answers in full");
    assert_eq!(status, "mediagate; fwd=miss");
    assert!(cache.stats().bypassed_fills.load(Ordering::Relaxed) > 0, "it streams uncached instead of filling");

    for resp in unread {
        assert_eq!(resp.body.collect().await.expect("body").to_bytes().len(), 64 << 10);
    }
    cache.purge_prefix("local://b/");
    settle(&cache, total).await;
    assert_eq!(cache.budget_available(), total);
}

const WHOLE_OBJECTS: &str = "max_bytes = \"16MiB\"\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"8MiB\"";

#[tokio::test]
async fn an_object_larger_than_a_slice_is_one_entry_and_its_budget_is_its_size() {
    let (_dir, cache, disk) = setup(WHOLE_OBJECTS, &[("photo.jpg", 3 << 20), ("video.mp4", 9 << 20)]);
    let total = slice_memory(&cache.inner.cfg);
    assert_eq!(read(&cache, &disk, "photo.jpg").await.0, 3 << 20);
    fills_done(&cache).await;
    cache.run_pending_tasks().await;
    let loc = Arc::new(Locator::parse("local://b/photo.jpg").expect("locator"));
    let t = Target {
        inner: cache.inner.clone(),
        integration: disk.clone(),
        loc,
        obj: ObjKey { integration: disk.cache_id.clone(), locator: Arc::from("local://b/photo.jpg") },
    };
    let Some(Value::Meta(entry)) = cache.inner.store.get(&Key::Meta(t.obj.clone())).await else {
        panic!("no metadata cached")
    };
    let Some(Value::Slice(pieces)) = cache.inner.store.get(&t.slice_key(&entry.validator, 0)).await else {
        panic!("the object is not one entry")
    };
    assert_eq!(pieces.iter().map(Bytes::len).sum::<usize>(), 3 << 20);
    drop(pieces);
    assert!(!cache.inner.store.contains_key(&t.slice_key(&entry.validator, 1)), "a second entry of a whole object");
    // The weigher counts the entry's bytes (plus its overhead), and the
    // budget holds exactly them: the blind read's reservation was cut to the size.
    let weighed = cache.weighted_size();
    assert!((3 << 20..(3 << 20) + 4096).contains(&weighed), "{weighed}");
    assert_eq!(total - cache.budget_available(), 3 << 20);
    // An object past max_object_bytes is kept in blocks, never whole.
    assert_eq!(read(&cache, &disk, "video.mp4").await.0, 9 << 20);
    fills_done(&cache).await;
    cache.purge_prefix("local://b/");
    settle(&cache, total).await;
    assert_eq!(cache.budget_available(), total, "a whole object kept its budget after a purge");
}

#[test]
fn the_unit_an_object_is_kept_in_depends_on_its_size_alone() {
    let cfg = CacheConfig { slice_bytes: 1 << 20, max_object_bytes: 8 << 20, ..CacheConfig::default() };
    assert_eq!(block_bytes(&cfg), 128 << 10);
    assert_eq!(granule(&cfg, 1000), 128 << 10);
    assert_eq!(granule(&cfg, 3 << 20), 3 << 20);
    assert_eq!(granule(&cfg, 8 << 20), 8 << 20);
    assert_eq!(granule(&cfg, (8 << 20) + 1), 128 << 10);
    assert_eq!(blind_reach(&cfg), 8 << 20);
    let small = CacheConfig { slice_bytes: 64 << 10, max_object_bytes: 0, ..CacheConfig::default() };
    assert_eq!(block_bytes(&small), 64 << 10);
    assert_eq!(blind_reach(&small), 64 << 10);
}
