//! Streaming and upstream failures (CONTRACT.md sections 3 and 7): a large
//! object streams with bounded memory; an upstream that breaks off, stalls or
//! never answers never turns into a silently truncated body; a client that
//! goes away stops the upstream read. Faults come from [`common::relay`],
//! put between mediagate and the S3 peer.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::relay::{Fault, Relay};
use common::*;
use http::StatusCode;

const MIB: usize = 1024 * 1024;

/// Extra config for tests that measure memory or upstream reads. When
/// mediagate gets its `[cache]` section, set a small `max_bytes` here
/// (`"[cache]\nmax_bytes = \"16MiB\"\n"`), so that the memory bound measures
/// the request path and not a cache allowed to hold the object.
const SMALL_CACHE: &str = "[cache]\nmax_bytes = \"16MiB\"\n";
/// No cache at all: the pure pass-through path.
const NO_CACHE: &str = "[cache]\nenabled = false\n";

/// A peer, a bucket with one object of `len` pseudo-random bytes, and a relay
/// with `fault` in front of the peer. Returns the object too.
fn relayed(tag: &str, len: usize, fault: Fault) -> Option<(S3Peer, String, Vec<u8>, Relay)> {
    let s3 = s3_peer()?;
    let bucket = unique_bucket(tag);
    let data = pattern_bytes(len, len as u64);
    s3.create_bucket(&bucket);
    s3.put(&bucket, "object.bin", data.clone());
    let relay = Relay::start(s3.addr(), fault);
    Some((s3, bucket, data, relay))
}

fn via_relay(s3: &S3Peer, relay: &Relay, bucket: &str) -> String {
    s3.integration_at("relayed", "127.0.0.1", relay.addr().port(), &[bucket], &s3.secret_key, "")
}

/// Streams a 200 MB object through mediagate started with `cache_section`
/// and returns its peak RSS (KiB) after checking the body.
fn stream_200_mb(tag: &str, cache_section: &str) -> Option<u64> {
    let s3 = s3_peer()?;
    let len = 200 * 1000 * 1000;
    let bucket = unique_bucket(tag);
    let data = pattern_bytes(len, 42);
    let expected = sha256_hex(&data);
    s3.create_bucket(&bucket);
    s3.put(&bucket, "big.mp4", data);
    let mg = MediaGate::start(&config(&[&s3.integration("s3", &[&bucket], ""), cache_section]));
    let before = mg.peak_rss_kib();

    let (status, headers, read, sha) = get_streaming(&mg.path_url("s3", &bucket, "big.mp4"), &[]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-length").and_then(|v| v.to_str().ok()), Some(len.to_string().as_str()));
    assert_eq!(read, Ok(len as u64), "the body did not arrive whole");
    assert_eq!(sha, expected, "the body differs from the object");

    let peak = mg.peak_rss_kib();
    eprintln!("mediagate peak RSS ({tag}): {before} KiB before, {peak} KiB after streaming 200 MB");
    Some(peak)
}

#[test]
fn a_200_mb_object_streams_whole_uncached_with_memory_that_does_not_grow_with_its_size() {
    let Some(peak) = stream_200_mb("big-nocache", NO_CACHE) else { return };
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB: memory per request must not scale with the object's size");
}

#[test]
fn a_200_mb_object_streams_whole_through_a_16_mib_cache_within_its_budget() {
    let Some(peak) = stream_200_mb("big-cache", SMALL_CACHE) else { return };
    // 16 MiB of cache, at most 16 fills of 4 MiB, and the process itself.
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB: the cache must hold to its budget");
}

#[test]
fn an_upstream_cut_mid_body_ends_the_client_body_with_an_error_never_a_clean_short_body() {
    let len = 8 * MIB;
    let Some((s3, bucket, data, relay)) = relayed("cut", len, Fault::CutAfter(MIB as u64)) else { return };
    let mg = MediaGate::start(&config(&[&via_relay(&s3, &relay, &bucket), SMALL_CACHE]));
    let (status, _, read, sha) = get_streaming(&mg.path_url("s3", &bucket, "object.bin"), &[]);
    eprintln!("client saw {status}, body {read:?}; relay: {} connection(s)", relay.connections());
    assert!(relay.connections() > 0, "mediagate never went through the relay");
    match (status, read) {
        // The proxy may resume behind the client's back, but then the body must be whole.
        (StatusCode::OK, Ok(n)) => {
            assert_eq!(n, len as u64, "a clean but short body of {n} of {len} bytes");
            assert_eq!(sha, sha256_hex(&data), "a clean body that is not the object");
        }
        (StatusCode::OK, Err(e)) => assert!(!e.starts_with(CLIENT_TIMEOUT), "mediagate neither ended nor aborted: {e}"),
        // Broken off before the first byte went out: an error response is right.
        (StatusCode::BAD_GATEWAY, _) => {}
        (other, read) => panic!("unexpected answer {other} {read:?}"),
    }
}

#[test]
fn an_upstream_that_stalls_mid_body_ends_the_client_body_with_an_error() {
    let len = 8 * MIB;
    let Some((s3, bucket, _, relay)) = relayed("stall", len, Fault::StallAfter(MIB as u64)) else { return };
    let upstream = "[upstream]\nread_timeout = \"1s\"\n";
    let mg = MediaGate::start(&config(&[&via_relay(&s3, &relay, &bucket), upstream, SMALL_CACHE]));
    let (status, _, read, _) = get_streaming(&mg.path_url("s3", &bucket, "object.bin"), &[]);
    eprintln!("client saw {status}, body {read:?}");
    match (status, read) {
        (StatusCode::OK, Err(e)) => {
            assert!(!e.starts_with(CLIENT_TIMEOUT), "mediagate kept the stalled response open: {e}")
        }
        (StatusCode::OK, Ok(n)) => panic!("a stalled upstream gave a clean body of {n} of {len} bytes"),
        // Stalled before the first byte went out: an error response is right.
        (StatusCode::GATEWAY_TIMEOUT | StatusCode::BAD_GATEWAY, _) => {}
        (other, read) => panic!("unexpected answer {other} {read:?}"),
    }
}

#[test]
fn an_upstream_that_never_answers_gives_504_upstream_timeout() {
    let Some((s3, bucket, _, relay)) = relayed("no-answer", 1000, Fault::StallAfter(0)) else { return };
    let upstream = "[upstream]\nfirst_byte_timeout = \"1s\"\n";
    let mg = MediaGate::start(&config(&[&via_relay(&s3, &relay, &bucket), upstream]));
    let r = get(&mg.path_url("s3", &bucket, "object.bin"), &[]);
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_timeout");
    assert!(r.error_message().contains("relayed"), "the message should name the integration: {}", r.error_message());
}

#[test]
fn a_client_that_disconnects_mid_body_makes_mediagate_close_its_upstream_connection() {
    let len = 64 * MIB;
    let Some((s3, bucket, _, relay)) = relayed("client-gone", len, Fault::None) else { return };
    // No idle upstream connections kept: every open relay connection is one in use.
    let upstream = "[upstream]\npool_max_idle_per_host = 0\n";
    let mg = MediaGate::start(&config(&[&via_relay(&s3, &relay, &bucket), upstream, SMALL_CACHE]));
    let (status, read) = get_partial(&mg.path_url("s3", &bucket, "object.bin"), &[], MIB as u64);
    assert_eq!(status, StatusCode::OK);
    assert!(read >= MIB as u64, "read only {read} bytes before disconnecting");
    assert!(relay.connections() > 0, "mediagate never went through the relay");
    eprintln!("client left after {read} bytes; relay: {} bytes down so far", relay.bytes_down());
    let closed = wait_until(Duration::from_secs(20), || relay.open_connections() == 0);
    assert!(
        closed,
        "{} upstream connection(s) still open after the client left; {} of {len} bytes relayed",
        relay.open_connections(),
        relay.bytes_down()
    );
    assert!(
        relay.bytes_down() < len as u64,
        "mediagate read the whole object ({} bytes) for a client that left after {read}",
        relay.bytes_down()
    );
}

// ------------------------------------------------------------------ the relay itself

/// A TCP server on the harness runtime that, per connection, reads one
/// request chunk and answers `len` bytes of `b'x'`, then closes.
fn byte_server(len: usize) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _guard = runtime().enter();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
    runtime().spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(&vec![b'x'; len]).await;
            });
        }
    });
    addr
}

/// Sends a request line through `addr` and reads until EOF, error or a
/// 2-second silence; returns the bytes read and whether EOF was seen.
fn read_through(addr: SocketAddr) -> (usize, bool) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut total = 0;
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => total += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (total, false);
            }
            Err(_) => return (total, true),
        }
    }
}

#[test]
fn the_relay_forwards_everything_without_a_fault() {
    let relay = Relay::start(byte_server(300_000), Fault::None);
    assert_eq!(read_through(relay.addr()), (300_000, true));
    assert_eq!(relay.connections(), 1);
    assert_eq!(relay.bytes_down(), 300_000);
    assert!(relay.bytes_up() > 0);
    assert!(wait_until(Duration::from_secs(10), || relay.open_connections() == 0));
}

#[test]
fn the_relay_cuts_the_response_after_n_bytes_and_closes() {
    let relay = Relay::start(byte_server(300_000), Fault::CutAfter(100_000));
    assert_eq!(read_through(relay.addr()), (100_000, true));
    assert_eq!(relay.bytes_down(), 100_000);
    assert!(wait_until(Duration::from_secs(10), || relay.open_connections() == 0));
}

#[test]
fn the_relay_stalls_the_response_after_n_bytes_and_keeps_the_connection_open() {
    let relay = Relay::start(byte_server(300_000), Fault::StallAfter(1000));
    assert_eq!(read_through(relay.addr()), (1000, false));
    // The client closed its side when read_through returned: the relay follows.
    assert!(wait_until(Duration::from_secs(10), || relay.open_connections() == 0));
    let relay = Relay::start(byte_server(10), Fault::StallAfter(0));
    assert_eq!(read_through(relay.addr()), (0, false));
    assert_eq!(relay.connections(), 1);
}
