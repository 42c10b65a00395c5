//! The media listener itself: h2c, the connection limit, the header-read
//! timeout, the graceful drain on SIGTERM, and the healthcheck command.
//! Everything runs against a local-directory integration: no peer needed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{MediaGate, local_integration, pattern_bytes, runtime, sha256_hex};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A root with one bucket `b` holding `small.bin` (1 KiB) and `big.bin` (32 MiB).
fn media_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("b")).expect("bucket dir");
    std::fs::write(dir.path().join("b/small.bin"), pattern_bytes(1024, 1)).expect("small file");
    std::fs::write(dir.path().join("b/big.bin"), pattern_bytes(32 << 20, 2)).expect("big file");
    dir
}

fn server_config(root: &Path, server_extra: &str) -> String {
    format!("[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n{}", local_integration("disk", root, &["b"]))
}

/// Sends a raw HTTP/1.1 request and reads until the server closes.
fn raw_exchange(stream: &mut TcpStream, request: &str) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn h2c_with_prior_knowledge_serves_the_same_bytes() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), ""));
    let url = mg.url("/local/b/small.bin");
    let (version, status, body) = runtime().block_on(async {
        let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<Bytes>>();
        let resp = client.get(url.parse().expect("url")).await.expect("h2c request");
        let (parts, body) = resp.into_parts();
        (parts.version, parts.status, body.collect().await.expect("body").to_bytes())
    });
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern_bytes(1024, 1)));
}

/// The streams of one HTTP/2 connection run in the connection's task
/// (src/server/streams.rs), yet each moves on its own: a download its
/// client does not read (stopped by flow control) holds up none of the 100
/// requests sent beside it on the same connection.
#[test]
fn over_h2c_a_stalled_stream_holds_up_none_of_the_streams_beside_it() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), ""));
    runtime().block_on(async {
        let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<Bytes>>();
        let stalled = client.get(mg.url("/local/b/big.bin").parse().expect("url")).await.expect("big.bin");
        assert_eq!(stalled.version(), http::Version::HTTP_2);
        let small = (0..100).map(|_| {
            let client = client.clone();
            let url = mg.url("/local/b/small.bin");
            async move {
                let resp = client.get(url.parse().expect("url")).await.expect("small.bin");
                resp.into_body().collect().await.expect("body").to_bytes()
            }
        });
        let bodies = tokio::time::timeout(Duration::from_secs(20), futures_util::future::join_all(small))
            .await
            .expect("100 small requests beside a stalled download did not finish in 20 s");
        let want = sha256_hex(&pattern_bytes(1024, 1));
        assert!(bodies.iter().all(|b| sha256_hex(b) == want));
        // The stalled download is whole once it is read.
        let big = stalled.into_body().collect().await.expect("big body").to_bytes();
        assert_eq!(sha256_hex(&big), sha256_hex(&pattern_bytes(32 << 20, 2)));
    });
}

/// A SIGTERM drains HTTP/2 streams too: the connection's task keeps
/// polling its streams until each has sent its response.
#[test]
fn sigterm_lets_an_inflight_h2c_download_finish() {
    let root = media_root();
    let mut mg = MediaGate::start(&server_config(root.path(), "shutdown_grace = \"20s\""));
    let pid = mg.pid();
    let body = runtime().block_on(async {
        let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Empty<Bytes>>();
        let resp = client.get(mg.url("/local/b/big.bin").parse().expect("url")).await.expect("big.bin");
        let mut body = resp.into_body();
        let first = body.frame().await.expect("a first frame").expect("frame");
        let mut all = first.into_data().map(|d| d.to_vec()).unwrap_or_default();
        let sent = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill");
        assert!(sent.success());
        all.extend_from_slice(&body.collect().await.expect("the rest of the body").to_bytes());
        all
    });
    assert_eq!(body.len(), 32 << 20, "the in-flight HTTP/2 body must be complete");
    assert_eq!(sha256_hex(&body), sha256_hex(&pattern_bytes(32 << 20, 2)));
    let exited = common::wait_until(Duration::from_secs(10), || !mg.is_running());
    assert!(exited, "mediagate still runs 10 s after SIGTERM with nothing in flight");
}

#[test]
fn past_the_connection_limit_a_new_connection_gets_503_overloaded() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), "max_connections = 2"));
    // Two busy connections (a download left unread) hold both slots; idle
    // ones would give way to the newcomer (tests/hostile_protocol.rs).
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(mg.addr).expect("connect");
            s.write_all(b"GET /local/b/big.bin HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut head = [0u8; 12];
            s.read_exact(&mut head).expect("the download starts");
            s
        })
        .collect();
    let mut third = TcpStream::connect(mg.addr).expect("connect");
    let answer = raw_exchange(&mut third, "GET /local/b/small.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"overloaded\""), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    drop(held);
    // Once the slots are free again (the server sees the two closes), requests are served.
    let served =
        common::wait_until(Duration::from_secs(10), || common::get(&mg.url("/local/b/small.bin"), &[]).status == 200);
    assert!(served, "requests are still refused after the held connections closed");
}

#[test]
fn a_connection_that_sends_no_request_is_closed_after_the_header_read_timeout() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), "header_read_timeout = \"1s\""));
    let mut idle = TcpStream::connect(mg.addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(15))).expect("read timeout");
    let mut buf = [0u8; 64];
    // EOF (0 bytes) means the server closed it; a client-side timeout would be an error.
    let read = idle.read(&mut buf).expect("the server should close the idle connection");
    assert_eq!(read, 0);
}

#[test]
fn sigterm_lets_an_inflight_response_finish_and_then_exits() {
    let root = media_root();
    let mut mg = MediaGate::start(&server_config(root.path(), "shutdown_grace = \"20s\""));
    let mut stream = TcpStream::connect(mg.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    stream.write_all(b"GET /local/b/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut first = vec![0u8; 64 * 1024];
    let n = stream.read(&mut first).expect("first bytes");
    assert!(n > 0);
    let status = Command::new("kill").arg("-TERM").arg(mg.pid().to_string()).status().expect("kill");
    assert!(status.success());
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).expect("the rest of the body");
    let mut all = first[..n].to_vec();
    all.extend_from_slice(&rest);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers") + 4;
    let body = &all[split..];
    assert_eq!(body.len(), 32 << 20, "the in-flight body must be complete");
    assert_eq!(sha256_hex(body), sha256_hex(&pattern_bytes(32 << 20, 2)));
    let exited = common::wait_until(Duration::from_secs(10), || !mg.is_running());
    assert!(exited, "mediagate still runs 10 s after SIGTERM with nothing in flight");
}

#[test]
fn the_healthcheck_command_succeeds_against_a_running_server_and_fails_without_one() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), ""));
    let bin = env!("CARGO_BIN_EXE_mediagate");
    let ok = Command::new(bin).args(["healthcheck", "--url", &mg.url("/healthz")]).output().expect("run");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    drop(mg);
    let down = Command::new(bin).args(["healthcheck", "--url", "http://127.0.0.1:9/healthz"]).output().expect("run");
    assert!(!down.status.success());
}

#[test]
fn every_request_gets_one_access_log_line_with_bytes_and_integration() {
    let root = media_root();
    let mg = MediaGate::start(&server_config(root.path(), ""));
    assert_eq!(common::get(&mg.url("/local/b/small.bin"), &[("Range", "bytes=0-99")]).status, 206);
    assert_eq!(common::get(&mg.url("/local/b/missing.bin"), &[]).status, 404);
    let request_lines = || mg.logs().into_iter().filter(|l| l["message"] == "request").collect::<Vec<_>>();
    // The access log is flushed in the background: wait for the second line
    // (and a moment's chance for a wrong third one is covered by the count).
    common::wait_until(Duration::from_secs(10), || request_lines().len() >= 2);
    let lines = request_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["locator"], "local://b/small.bin");
    assert_eq!(lines[0]["status"], 206);
    assert_eq!(lines[0]["bytes"], 100);
    assert_eq!(lines[0]["integration"], "disk");
    assert_eq!(lines[0]["outcome"], "complete");
    assert_eq!(lines[1]["status"], 404);
    assert!(lines[1]["error"].as_str().unwrap_or("").starts_with("not_found"));
}

/// A SIGTERM that arrives as soon as the listening line is out is a drain
/// (exit 0), never the signal's default action: the handlers are installed
/// before anything is printed. Repeated, since the window it guards was short.
#[test]
fn a_sigterm_right_after_the_listening_line_drains_and_exits_cleanly() {
    use std::io::BufRead;
    let root = media_root();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mediagate.toml");
    std::fs::write(&path, server_config(root.path(), "")).expect("config");
    for round in 0..5 {
        let mut child = Command::new(common::bin())
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mediagate");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        std::io::BufReader::new(stdout).read_line(&mut first).expect("the listening line");
        assert!(first.contains("listening"), "round {round}: first line {first:?}");
        let sent = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
        assert!(sent.success());
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "round {round}: SIGTERM ended mediagate with {status}");
    }
}
