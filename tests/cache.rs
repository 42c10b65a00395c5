//! The cache, black-box, against the real S3 peer with a counting relay in
//! front of it (one upstream connection per request: the relay's connection
//! count is the number of storage requests mediagate made).

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::relay::{Fault, Relay};
use common::{
    CLIENT_TIMEOUT, MediaGate, S3Peer, config, get, get_streaming, head, pattern_bytes, s3_peer, sha256_hex,
    unique_bucket,
};
use http::StatusCode;

const KIB: usize = 1024;

/// 64 KiB slices so that small test objects span several of them.
/// `extra` may set `ttl` itself.
fn cache_section(extra: &str) -> String {
    let ttl = if extra.lines().any(|l| l.starts_with("ttl")) { "" } else { "ttl = \"1h\"\n" };
    format!("[cache]\nmax_bytes = \"16MiB\"\nslice_bytes = \"64KiB\"\nmax_object_bytes = \"64KiB\"\n{ttl}{extra}\n")
}

/// No idle upstream connections: every storage request opens one, so the
/// relay's count is the request count.
/// A short read timeout ends stalled fills quickly.
const ONE_REQUEST_PER_CONNECTION: &str = "[upstream]\npool_max_idle_per_host = 0\nread_timeout = \"2s\"\n";

struct Setup {
    s3: S3Peer,
    bucket: String,
    relay: Relay,
    mg: MediaGate,
}

impl Setup {
    fn url(&self, key: &str) -> String {
        self.mg.path_url("s3", &self.bucket, key)
    }

    /// Storage requests made so far.
    fn upstream_requests(&self) -> u64 {
        self.relay.connections()
    }

    /// Waits until no storage request is in flight (every fill, read-ahead
    /// included, has landed or failed): one upstream connection per request,
    /// so the relay's open connections are the requests in flight.
    fn wait_for_fills(&self) {
        let settled = common::wait_until(Duration::from_secs(10), || self.relay.open_connections() == 0);
        assert!(settled, "{} storage requests still open after 10 s", self.relay.open_connections());
    }
}

fn setup(tag: &str, objects: &[(&str, &[u8])], fault: Fault, cache_extra: &str) -> Option<Setup> {
    setup_with(tag, objects, fault, &cache_section(cache_extra))
}

/// [`setup`] with a whole `[cache]` section of the test's own.
fn setup_with(tag: &str, objects: &[(&str, &[u8])], fault: Fault, cache: &str) -> Option<Setup> {
    let s3 = s3_peer()?;
    let bucket = unique_bucket(tag);
    s3.create_bucket(&bucket);
    for (key, data) in objects {
        s3.put(&bucket, key, data.to_vec());
    }
    let relay = Relay::start(s3.addr(), fault);
    let integration = s3.integration_at("cached", "127.0.0.1", relay.addr().port(), &[&bucket], &s3.secret_key, "");
    let mg = MediaGate::start(&config(&[&integration, ONE_REQUEST_PER_CONNECTION, cache]));
    Some(Setup { s3, bucket, relay, mg })
}

fn cache_status(r: &common::TestResponse) -> String {
    r.header("cache-status").unwrap_or("").to_owned()
}

#[test]
fn a_second_request_is_a_hit_served_without_asking_the_storage() {
    let data = pattern_bytes(200 * KIB, 1);
    let Some(t) = setup("hit", &[("a.bin", &data)], Fault::None, "") else { return };
    let first = get(&t.url("a.bin"), &[]);
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.as_ref(), &data[..]);
    assert!(cache_status(&first).contains("fwd=miss"), "{}", cache_status(&first));
    t.wait_for_fills();
    let before = t.upstream_requests();
    let second = get(&t.url("a.bin"), &[]);
    assert_eq!(second.body.as_ref(), &data[..]);
    assert!(cache_status(&second).starts_with("mediagate; hit"), "{}", cache_status(&second));
    assert_eq!(t.upstream_requests(), before, "a hit must not reach the storage");
    let h = head(&t.url("a.bin"), &[]);
    assert!(cache_status(&h).starts_with("mediagate; hit"), "{}", cache_status(&h));
    assert_eq!(t.upstream_requests(), before);
}

#[test]
fn concurrent_misses_for_one_object_make_one_storage_request() {
    let data = pattern_bytes(60 * KIB, 2);
    let Some(t) = setup("coalesce", &[("one.bin", &data)], Fault::None, "") else { return };
    let clients = 32;
    let barrier = Arc::new(Barrier::new(clients));
    let url = t.url("one.bin");
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                get(&url, &[])
            })
        })
        .collect();
    for h in handles {
        let r = h.join().expect("client thread");
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(sha256_hex(&r.body), sha256_hex(&data));
    }
    assert_eq!(t.upstream_requests(), 1, "{clients} concurrent misses must make one storage request");
}

#[test]
fn a_seek_into_a_cold_object_fetches_only_the_slices_it_needs() {
    let data = pattern_bytes(1024 * KIB, 3); // 16 slices of 64 KiB
    let Some(t) = setup("seek", &[("video.mp4", &data)], Fault::None, "") else { return };
    let r = get(&t.url("video.mp4"), &[("range", "bytes=700000-700099")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[700_000..700_100]);
    t.wait_for_fills();
    let down = t.relay.bytes_down();
    assert!(down < 3 * 64 * KIB as u64, "a 100-byte seek pulled {down} bytes from the storage");
    assert!(t.upstream_requests() <= 2, "{} storage requests for one seek", t.upstream_requests());
}

#[test]
fn the_first_byte_reaches_the_client_before_the_fill_completes() {
    let data = pattern_bytes(64 * KIB, 4);
    // The storage sends 16 KiB of the slice, then nothing: the client must
    // already have bytes although the fill never finishes.
    let Some(t) = setup("first-byte", &[("slow.bin", &data)], Fault::StallAfter(16 * KIB as u64 + 600), "") else {
        return;
    };
    let (status, _, read, _) = get_streaming(&t.url("slow.bin"), &[]);
    assert_eq!(status, StatusCode::OK);
    // Whatever ends the body (the proxy's read timeout, or the harness's
    // patience), it is never a clean end, and bytes arrived before it.
    let err = read.expect_err("a stalled fill cannot end cleanly");
    let got: u64 = err.rsplit("after ").next().and_then(|s| s.split(' ').next()?.parse().ok()).unwrap_or(0);
    assert!(got > 0, "no byte reached the client before the fill stalled: {err}");
    // The proxy's own read timeout (2 s) ends the stalled body, not the
    // harness's patience.
    assert!(!err.starts_with(CLIENT_TIMEOUT), "the proxy never aborted the stalled body: {err}");
}

/// A GET whose failure to even get a response head (the proxy may abort
/// before its first flush) counts as an aborted body. Returns the
/// `Cache-Status` and how the body ended.
fn aborted_or_read(url: &str) -> (String, Result<u64, String>) {
    let url = url.to_owned();
    match std::panic::catch_unwind(move || get_streaming(&url, &[])) {
        Ok((status, headers, read, _)) => {
            assert_eq!(status, StatusCode::OK);
            let cs = headers.get("cache-status").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            (cs, read)
        }
        Err(_) => (String::new(), Err("the connection closed before the response head".into())),
    }
}

#[test]
fn a_fill_cut_by_the_storage_aborts_the_client_and_caches_nothing() {
    let data = pattern_bytes(64 * KIB, 5);
    let Some(t) = setup("cut-fill", &[("cut.bin", &data)], Fault::CutAfter(8 * KIB as u64), "") else { return };
    let (_, read) = aborted_or_read(&t.url("cut.bin"));
    assert!(read.is_err(), "a cut fill must abort the client body, got {read:?}");
    let before = t.upstream_requests();
    let (status, read) = aborted_or_read(&t.url("cut.bin"));
    assert!(read.is_err());
    assert!(!status.contains("hit"), "a failed fill was cached: {status}");
    assert!(t.upstream_requests() > before, "the second request must go to the storage again");
}

#[test]
fn an_object_replaced_between_two_slice_reads_is_never_served_mixed() {
    let old = pattern_bytes(256 * KIB, 6);
    let new = pattern_bytes(256 * KIB, 7);
    let Some(t) = setup("replaced", &[("v.mp4", &old)], Fault::None, "") else { return };
    // Only the first slice gets cached.
    let r = get(&t.url("v.mp4"), &[("range", "bytes=0-999")]);
    assert_eq!(r.body.as_ref(), &old[..1000]);
    t.wait_for_fills();
    t.s3.put(&t.bucket, "v.mp4", new.clone());
    // Slice 0 is cached (old), slice 3 must come from the storage (new):
    // the proxy must refuse to stitch them.
    let (status, _, read, sha) = get_streaming(&t.url("v.mp4"), &[]);
    assert_eq!(status, StatusCode::OK);
    match read {
        Ok(_) => assert!(sha == sha256_hex(&old) || sha == sha256_hex(&new), "a clean body mixing two versions"),
        Err(e) => assert!(!e.starts_with(CLIENT_TIMEOUT), "neither ended nor aborted: {e}"),
    }
    // The next request sees the new version whole.
    let again = get(&t.url("v.mp4"), &[]);
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(sha256_hex(&again.body), sha256_hex(&new));
}

#[test]
fn an_entry_within_its_ttl_is_a_hit_and_the_storage_is_not_asked() {
    let data = pattern_bytes(10 * KIB, 8);
    let Some(t) = setup("fresh", &[("t.jpg", &data)], Fault::None, "ttl = \"1h\"") else { return };
    assert_eq!(get(&t.url("t.jpg"), &[]).body.as_ref(), &data[..]);
    t.wait_for_fills();
    let before = t.upstream_requests();
    let fresh = get(&t.url("t.jpg"), &[]);
    assert!(cache_status(&fresh).starts_with("mediagate; hit; ttl="), "{}", cache_status(&fresh));
    assert_eq!(t.upstream_requests(), before, "a fresh entry must not be revalidated");
}

/// `ttl = 0`: every entry is past its ttl at once, so each request
/// revalidates (no waiting for a clock in the test).
#[test]
fn an_entry_older_than_the_ttl_is_revalidated_and_a_change_is_seen() {
    let old = pattern_bytes(10 * KIB, 8);
    let new = pattern_bytes(10 * KIB, 9);
    let Some(t) = setup("ttl", &[("t.jpg", &old)], Fault::None, "ttl = \"0s\"") else { return };
    assert_eq!(get(&t.url("t.jpg"), &[]).body.as_ref(), &old[..]);
    t.s3.put(&t.bucket, "t.jpg", new.clone());
    let stale = get(&t.url("t.jpg"), &[]);
    assert!(cache_status(&stale).contains("fwd=stale"), "{}", cache_status(&stale));
    assert_eq!(stale.body.as_ref(), &new[..], "a changed object must be served new after revalidation");
}

#[test]
fn an_unchanged_entry_revalidates_without_reading_the_body_again() {
    let data = pattern_bytes(50 * KIB, 10);
    let Some(t) = setup("reval", &[("same.bin", &data)], Fault::None, "ttl = \"0s\"") else { return };
    get(&t.url("same.bin"), &[]);
    t.wait_for_fills();
    let down = t.relay.bytes_down();
    let r = get(&t.url("same.bin"), &[]);
    assert_eq!(r.body.as_ref(), &data[..]);
    assert!(cache_status(&r).contains("fwd=stale"), "{}", cache_status(&r));
    let fetched = t.relay.bytes_down() - down;
    assert!(fetched < 4 * KIB as u64, "revalidating an unchanged object read {fetched} bytes");
}

#[test]
fn a_404_is_remembered_only_when_negative_caching_is_on() {
    let Some(t) = setup("neg", &[], Fault::None, "negative_ttl = \"1m\"") else { return };
    assert_eq!(get(&t.url("missing.bin"), &[]).status, StatusCode::NOT_FOUND);
    let before = t.upstream_requests();
    assert_eq!(get(&t.url("missing.bin"), &[]).status, StatusCode::NOT_FOUND);
    assert_eq!(t.upstream_requests(), before, "a remembered 404 must not ask the storage");

    let Some(off) = setup("neg-off", &[], Fault::None, "") else { return };
    get(&off.url("missing.bin"), &[]);
    let before = off.upstream_requests();
    assert_eq!(get(&off.url("missing.bin"), &[]).status, StatusCode::NOT_FOUND);
    assert!(off.upstream_requests() > before, "without negative_ttl every 404 asks the storage");
}

#[test]
fn ranges_preconditions_and_multipart_answer_the_same_from_the_cache_as_on_a_miss() {
    let data = pattern_bytes(300 * KIB, 11);
    let Some(t) = setup("rfc", &[("r.bin", &data)], Fault::None, "") else { return };
    let url = t.url("r.bin");
    let etag = head(&url, &[]).header("etag").expect("etag").to_owned();
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("range", "bytes=0-99")], 206),
        (vec![("range", "bytes=100000-")], 206),
        (vec![("range", "bytes=-70000")], 206),
        (vec![("range", "bytes=65530-65545")], 206),
        (vec![("range", "bytes=400000-")], 416),
        (vec![("range", "bytes=0-9,200000-200009")], 206),
        (vec![("if-none-match", &etag)], 304),
        (vec![("if-match", "\"nope\"")], 412),
        (vec![("range", "bytes=0-9"), ("if-range", "\"nope\"")], 200),
        (vec![("range", "bytes=0-9"), ("if-range", &etag)], 206),
    ];
    for (headers, status) in &cases {
        let miss = get(&url, headers);
        let hit = get(&url, headers);
        assert_eq!(miss.status.as_u16(), *status, "{headers:?} on a miss: {}", miss.describe());
        assert_eq!(hit.status.as_u16(), *status, "{headers:?} from the cache: {}", hit.describe());
        assert_eq!(miss.body, hit.body, "{headers:?}");
        for name in ["content-range", "content-length", "etag", "content-type"] {
            assert_eq!(miss.header(name), hit.header(name), "{headers:?}: {name}");
        }
    }
    let r = get(&url, &[("range", "bytes=65530-65545")]);
    assert_eq!(r.body.as_ref(), &data[65530..65546], "a range across a slice boundary");
    let r = get(&url, &[("range", "bytes=-70000")]);
    assert_eq!(r.body.as_ref(), &data[data.len() - 70000..]);
}

#[test]
fn a_stale_entry_is_served_when_the_storage_fails_within_stale_if_error() {
    let data = pattern_bytes(20 * KIB, 12);
    let extra = "ttl = \"0s\"\nstale_if_error = \"1h\"";
    let Some(t) = setup("stale-if-error", &[("s.png", &data)], Fault::None, extra) else { return };
    assert_eq!(get(&t.url("s.png"), &[]).status, StatusCode::OK);
    t.wait_for_fills();
    let Setup { s3, bucket, relay, mg } = t;
    drop(relay); // the storage is now unreachable
    let r = get(&mg.path_url("s3", &bucket, "s.png"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..]);
    assert!(cache_status(&r).contains("detail=stale-if-error"), "{}", cache_status(&r));
    drop(s3);
}

/// RFC 9211 section 2.5: `stored` says the cache stored the response. The
/// header of a miss goes out before its fill has read the body, so it must
/// not claim it; a fill that then fails (here the storage stalls past the
/// 2 s read timeout, after the head was flushed) stores nothing.
#[test]
fn a_miss_whose_fill_fails_mid_body_does_not_claim_it_was_stored() {
    let data = pattern_bytes(64 * KIB, 6);
    let stall = Fault::StallAfter(32 * KIB as u64);
    let Some(t) = setup("failed-status", &[("stall.bin", &data)], stall, "") else { return };
    let (status, read) = aborted_or_read(&t.url("stall.bin"));
    assert!(read.is_err(), "a failed fill must abort the client body, got {read:?}");
    assert_eq!(status, "mediagate; fwd=miss", "the head of the failed miss");
    let (again, _) = aborted_or_read(&t.url("stall.bin"));
    assert_eq!(again, "mediagate; fwd=miss", "nothing of the failed fill was stored");
}

/// CONTRACT.md section 4: `max_object_bytes` and `slice_bytes` are independent.
const WHOLE_UP_TO_8MIB: &str =
    "[cache]\nmax_bytes = \"64MiB\"\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"8MiB\"\nttl = \"1h\"\n";

const MIB: usize = 1024 * KIB;

#[test]
fn an_object_larger_than_a_slice_but_within_max_object_bytes_is_one_storage_request_then_hits() {
    let data = pattern_bytes(3 * MIB, 21);
    let Some(t) = setup_with("whole", &[("photo.jpg", &data)], Fault::None, WHOLE_UP_TO_8MIB) else { return };
    let first = get(&t.url("photo.jpg"), &[]);
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(sha256_hex(&first.body), sha256_hex(&data));
    t.wait_for_fills();
    assert_eq!(t.upstream_requests(), 1, "a 3 MiB object kept whole is one storage request");
    let down = t.relay.bytes_down();
    assert!(down < (3 * MIB + 4 * KIB) as u64, "{down} bytes read for a 3 MiB object");
    let again = get(&t.url("photo.jpg"), &[]);
    assert!(cache_status(&again).starts_with("mediagate; hit"), "{}", cache_status(&again));
    assert_eq!(sha256_hex(&again.body), sha256_hex(&data));
    for (range, from, to) in [("bytes=2000000-2100000", 2_000_000, 2_100_001), ("bytes=-10", 3 * MIB - 10, 3 * MIB)] {
        let r = get(&t.url("photo.jpg"), &[("range", range)]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert!(cache_status(&r).starts_with("mediagate; hit"), "{range}: {}", cache_status(&r));
        assert_eq!(r.body.as_ref(), &data[from..to], "{range}");
    }
    assert_eq!(t.upstream_requests(), 1, "ranges into a whole entry are served from it");
}

#[test]
fn a_cold_range_inside_an_object_kept_whole_fetches_it_whole_once() {
    let data = pattern_bytes(5 * MIB / 2, 22);
    let Some(t) = setup_with("whole-range", &[("p.png", &data)], Fault::None, WHOLE_UP_TO_8MIB) else { return };
    let r = get(&t.url("p.png"), &[("range", "bytes=1500000-1500999")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[1_500_000..1_501_000]);
    t.wait_for_fills();
    let whole = get(&t.url("p.png"), &[]);
    assert!(cache_status(&whole).starts_with("mediagate; hit"), "{}", cache_status(&whole));
    assert_eq!(sha256_hex(&whole.body), sha256_hex(&data));
    assert_eq!(t.upstream_requests(), 1);
}

#[test]
fn an_object_larger_than_max_object_bytes_is_kept_in_slices_and_served_whole() {
    let data = pattern_bytes(10 * MIB, 23);
    let Some(t) = setup_with("sliced", &[("v.mp4", &data)], Fault::None, WHOLE_UP_TO_8MIB) else { return };
    let first = get(&t.url("v.mp4"), &[]);
    assert_eq!(sha256_hex(&first.body), sha256_hex(&data));
    t.wait_for_fills();
    let fetched = t.relay.bytes_down();
    assert!(fetched < (10 * MIB + 64 * KIB) as u64, "{fetched} bytes read for a 10 MiB object");
    let before = t.upstream_requests();
    let again = get(&t.url("v.mp4"), &[("range", "bytes=9000000-")]);
    assert!(cache_status(&again).starts_with("mediagate; hit"), "{}", cache_status(&again));
    assert_eq!(again.body.as_ref(), &data[9_000_000..]);
    assert_eq!(t.upstream_requests(), before);
}

/// A cold 256 KiB seek reads the blocks under it (slice_bytes / 8), not
/// whole slices: at most 2 bytes from the storage per byte served.
#[test]
fn a_cold_seek_reads_at_most_twice_its_bytes_from_the_storage() {
    let data = pattern_bytes(16 * MIB, 24);
    let cache = "[cache]\nmax_bytes = \"64MiB\"\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"1MiB\"\nttl = \"1h\"\n";
    let Some(t) = setup_with("seek-bytes", &[("big.mp4", &data)], Fault::None, cache) else { return };
    let mut served = 0u64;
    for start in [3_000_001usize, 9_437_000, 14_000_123] {
        let end = start + 256 * KIB - 1;
        let r = get(&t.url("big.mp4"), &[("range", &format!("bytes={start}-{end}"))]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.body.as_ref(), &data[start..=end]);
        served += r.body.len() as u64;
        t.wait_for_fills();
        let down = t.relay.bytes_down();
        assert!(down <= 2 * served, "{down} bytes from the storage for {served} served");
    }
}

#[test]
fn concurrent_misses_for_an_object_kept_whole_make_one_storage_request() {
    let data = pattern_bytes(3 * MIB, 25);
    let Some(t) = setup_with("whole-burst", &[("w.jpg", &data)], Fault::None, WHOLE_UP_TO_8MIB) else { return };
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (barrier, url) = (barrier.clone(), t.url("w.jpg"));
            std::thread::spawn(move || {
                barrier.wait();
                // Half ask for a range inside the object: they join the same read from 0.
                if i % 2 == 0 { get(&url, &[]) } else { get(&url, &[("range", "bytes=2500000-2500099")]) }
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().expect("client thread");
        if i % 2 == 0 {
            assert_eq!(sha256_hex(&r.body), sha256_hex(&data));
        } else {
            assert_eq!(r.body.as_ref(), &data[2_500_000..2_500_100]);
        }
    }
    t.wait_for_fills();
    assert_eq!(t.upstream_requests(), 1, "{clients} concurrent misses must make one storage request");
}
