//! Hostile requests at the protocol level, sent as raw bytes: the `Host`
//! rules, the bounds of the request head, refused methods, request
//! smuggling forms, abusive `Range` headers and connection floods. Each case
//! asserts the exact status and error code; where hyper answers on its own
//! (a malformed head), the status and the empty body it sends.
//! No storage peer needed: a local-directory integration serves the files.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{MediaGate, local_integration, pattern_bytes};

/// How long a read waits before the test fails: a missing event, never a pace.
const READ_LIMIT: Duration = Duration::from_secs(20);

/// A root with bucket `b`: `k.txt` ("k"), `r.bin` (4 KiB), `big.bin` (32 MiB,
/// more than socket buffers hold, so a download left unread stays in flight).
fn media_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("mediagate-hostile-").tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("b")).expect("bucket dir");
    std::fs::write(dir.path().join("b/k.txt"), b"k").expect("k.txt");
    std::fs::write(dir.path().join("b/r.bin"), pattern_bytes(4096, 3)).expect("r.bin");
    std::fs::write(dir.path().join("b/big.bin"), pattern_bytes(32 << 20, 4)).expect("big.bin");
    dir
}

/// A mediagate over [`media_root`], with `server_extra` lines in `[server]`.
fn gate(server_extra: &str) -> (tempfile::TempDir, MediaGate) {
    let root = media_root();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server_extra}\n{}",
        local_integration("disk", root.path(), &["b"])
    );
    let mg = MediaGate::start(&config);
    (root, mg)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_LIMIT)).expect("read timeout");
    stream
}

/// A connection from another loopback address (`127.0.0.2` is on `lo` too).
fn connect_from(local: &str, addr: SocketAddr) -> TcpStream {
    let stream = common::runtime().block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(format!("{local}:0").parse().expect("local address")).expect("bind");
        socket.connect(addr).await.expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(READ_LIMIT)).expect("read timeout");
    stream
}

/// Writes `request` and reads until the server closes the connection; a
/// connection the server keeps open fails the test (after [`READ_LIMIT`]).
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).expect("write request");
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match stream.read_to_end(&mut out) {
        Ok(_) => out,
        // A reset after the answer is a close too.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => out,
        Err(e) => {
            panic!("the server did not close the connection ({e}); read so far:\n{}", String::from_utf8_lossy(&out))
        }
    }
}

/// One response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn error_code(&self) -> String {
        let json: serde_json::Value =
            serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {self:?}"));
        json["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts the JSON error of CONTRACT.md section 7 with this status and code.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        assert_eq!(self.error_code(), code, "{self:?}");
    }

    /// Asserts one of hyper's own answers: the status and an empty body.
    fn assert_hyper_answer(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(self.body.is_empty(), "{self:?}");
    }
}

/// Splits what a connection carried into responses (each framed by its
/// `Content-Length`; mediagate sends no other framing for these answers).
fn answers(mut bytes: &[u8]) -> Vec<Answer> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("an incomplete head: {:?}", String::from_utf8_lossy(bytes)));
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        assert!(status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 "), "not a response: {head}");
        let status = status_line[9..12].parse().expect("status code");
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse::<usize>().expect("content-length"));
        let body_end = (end + 4 + len).min(bytes.len());
        out.push(Answer { status, headers, body: bytes[end + 4..body_end].to_vec() });
        bytes = &bytes[body_end..];
    }
    out
}

/// Exactly one answer on the connection, which the server then closed.
fn only_answer(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut all = answers(&exchange(addr, request));
    assert_eq!(all.len(), 1, "expected exactly one answer, got {all:?}");
    all.remove(0)
}

// ------------------------------------------------------------------ Host (RFC 9112 section 3.2)

#[test]
fn an_http11_request_without_host_is_400_bad_request() {
    let (_root, mg) = gate("");
    only_answer(mg.addr, b"GET /local/b/k.txt HTTP/1.1\r\n\r\n").assert_error(400, "bad_request");
}

#[test]
fn an_http11_request_with_two_host_headers_is_400_bad_request() {
    let (_root, mg) = gate("");
    let answer = only_answer(mg.addr, b"GET /local/b/k.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    answer.assert_error(400, "bad_request");
    let same = only_answer(mg.addr, b"GET /local/b/k.txt HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
    same.assert_error(400, "bad_request");
}

#[test]
fn a_host_that_is_not_a_host_and_port_is_400_bad_request() {
    let (_root, mg) = gate("");
    for host in ["a b", "user@a.example", "a.example:port", "a/b"] {
        let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: {host}\r\n\r\n");
        only_answer(mg.addr, request.as_bytes()).assert_error(400, "bad_request");
    }
}

#[test]
fn an_http10_request_without_host_is_served() {
    let (_root, mg) = gate("");
    let answer = only_answer(mg.addr, b"GET /local/b/k.txt HTTP/1.0\r\n\r\n");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k");
}

#[test]
fn an_absolute_form_target_wins_over_a_different_host() {
    // RFC 9112 section 3.2.2: the server ignores Host and uses the target's authority.
    let (_root, mg) = gate("");
    let request =
        b"GET http://media.example/local/b/k.txt HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n";
    let answer = only_answer(mg.addr, request);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k");
    let no_host = only_answer(mg.addr, b"GET http://media.example/local/b/k.txt HTTP/1.1\r\n\r\n");
    no_host.assert_error(400, "bad_request");
    let ftp = only_answer(mg.addr, b"GET ftp://media.example/local/b/k.txt HTTP/1.1\r\nHost: media.example\r\n\r\n");
    ftp.assert_error(400, "bad_request");
}

// ------------------------------------------------------------------ bounded head

#[test]
fn a_100_kb_header_is_431_headers_too_large() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    only_answer(mg.addr, request.as_bytes()).assert_error(431, "headers_too_large");
}

#[test]
fn many_header_lines_adding_up_past_16_kib_are_431_headers_too_large() {
    let (_root, mg) = gate("");
    let lines: String = (0..40).map(|i| format!("X-H{i}: {}\r\n", "v".repeat(500))).collect();
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
    only_answer(mg.addr, request.as_bytes()).assert_error(431, "headers_too_large");
}

#[test]
fn a_head_just_under_16_kib_is_served() {
    let (_root, mg) = gate("");
    let request =
        format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n", "a".repeat(15_000));
    let answer = only_answer(mg.addr, request.as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn a_head_past_hypers_128_kib_buffer_gets_hypers_own_431_without_a_body() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200_000));
    let mut stream = connect(mg.addr);
    // hyper answers once its buffer is full, before the whole head is written.
    let _ = stream.write_all(request.as_bytes());
    only(answers(&read_to_close(&mut stream))).assert_hyper_answer(431);
}

#[test]
fn a_target_past_hypers_64_kib_gets_hypers_own_414_without_a_body() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/{} HTTP/1.1\r\nHost: x\r\n\r\n", "k".repeat(70_000));
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(414);
}

#[test]
fn more_than_100_header_lines_get_hypers_own_431_without_a_body() {
    let (_root, mg) = gate("");
    let lines: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\n{lines}\r\n");
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(431);
}

#[test]
fn an_http2_header_list_past_16_kib_is_431_headers_too_large() {
    use http_body_util::{BodyExt, Empty};
    let (_root, mg) = gate("");
    let url = mg.url("/local/b/k.txt");
    let (status, body) = common::runtime().block_on(async {
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http::<Empty<bytes::Bytes>>();
        let req = http::Request::get(url).header("x-big", "a".repeat(30_000)).body(Empty::new()).expect("request");
        let resp = client.request(req).await.expect("h2c request");
        let status = resp.status();
        (status, resp.into_body().collect().await.expect("body").to_bytes())
    });
    assert_eq!(status, 431);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(json["error"]["code"], "headers_too_large");
}

#[test]
fn a_target_longer_than_8_kib_is_414_uri_too_long() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/{} HTTP/1.1\r\nHost: x\r\n\r\n", "k".repeat(9000));
    only_answer(mg.addr, request.as_bytes()).assert_error(414, "uri_too_long");
    let query =
        format!("GET /media?locator=local%3A%2F%2Fb%2Fk.txt&pad={} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(9000));
    only_answer(mg.addr, query.as_bytes()).assert_error(414, "uri_too_long");
}

#[test]
fn a_range_header_too_long_to_read_is_431_headers_too_large() {
    let (_root, mg) = gate("");
    let ranges: Vec<String> = (0..3000).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
    let request = format!("GET /local/b/r.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={}\r\n\r\n", ranges.join(","));
    assert!(request.len() > 16 << 10);
    only_answer(mg.addr, request.as_bytes()).assert_error(431, "headers_too_large");
}

fn only(mut all: Vec<Answer>) -> Answer {
    assert_eq!(all.len(), 1, "expected exactly one answer, got {all:?}");
    all.remove(0)
}

// ------------------------------------------------------------------ methods

#[test]
fn connect_is_405_with_allow_and_the_connection_is_closed() {
    let (_root, mg) = gate("");
    // What follows a CONNECT is tunnel data: it must never be read as a request.
    let request = b"CONNECT media.example:443 HTTP/1.1\r\nHost: media.example:443\r\n\r\n\
                    GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = only_answer(mg.addr, request);
    answer.assert_error(405, "method_not_allowed");
    assert_eq!(answer.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(answer.header("connection"), Some("close"));
}

#[test]
fn trace_post_put_delete_and_unknown_methods_are_405_and_close_the_connection() {
    let (_root, mg) = gate("");
    for method in ["TRACE", "POST", "PUT", "DELETE", "PATCH", "PROPFIND", "BREW"] {
        // A body holding a second request: it is never answered.
        let hidden = "GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\n\r\n";
        let request = format!(
            "{method} /local/b/k.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{hidden}{hidden}",
            hidden.len()
        );
        let answer = only_answer(mg.addr, request.as_bytes());
        answer.assert_error(405, "method_not_allowed");
        assert_eq!(answer.header("allow"), Some("GET, HEAD, OPTIONS"), "{method}");
        assert_eq!(answer.header("connection"), Some("close"), "{method}");
    }
}

#[test]
fn over_http2_a_refused_method_is_405_and_the_connection_serves_on() {
    use http_body_util::{BodyExt, Empty};
    let (_root, mg) = gate("");
    let url = mg.url("/local/b/k.txt");
    let answers = common::runtime().block_on(async {
        let (mut send, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(mg.addr).await.expect("connect")),
        )
        .await
        .expect("h2c handshake");
        tokio::spawn(conn);
        let mut out = Vec::new();
        for method in [http::Method::DELETE, http::Method::GET] {
            let req =
                http::Request::builder().method(method).uri(&url).body(Empty::<bytes::Bytes>::new()).expect("request");
            let resp = send.send_request(req).await.expect("an answer on the same connection");
            let (parts, body) = resp.into_parts();
            out.push((parts.status, parts.headers, body.collect().await.expect("body").to_bytes()));
        }
        out
    });
    assert_eq!(answers[0].0, 405);
    assert_eq!(answers[0].1.get("allow").map(|v| v.as_bytes()), Some(&b"GET, HEAD, OPTIONS"[..]));
    assert!(answers[0].1.get("connection").is_none(), "a connection-specific field over HTTP/2");
    let json: serde_json::Value = serde_json::from_slice(&answers[0].2).expect("a JSON body");
    assert_eq!(json["error"]["code"], "method_not_allowed");
    assert_eq!(answers[1].0, 200);
    assert_eq!(&answers[1].2[..], b"k");
}

// ------------------------------------------------------------------ smuggling forms

const HIDDEN: &str = "GET /local/b/r.bin HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn content_length_with_transfer_encoding_is_read_as_chunked_and_the_connection_closed() {
    // RFC 9112 section 6.1: Transfer-Encoding wins, and the server closes after answering.
    let (_root, mg) = gate("");
    let request = format!(
        "GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{HIDDEN}"
    );
    let answer = only_answer(mg.addr, request.as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k", "the hidden request for r.bin was answered");
}

#[test]
fn two_different_content_lengths_are_hypers_400() {
    let (_root, mg) = gate("");
    let request = format!(
        "GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n{HIDDEN}",
        HIDDEN.len()
    );
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
}

#[test]
fn two_equal_content_lengths_frame_one_body_that_is_never_answered() {
    let (_root, mg) = gate("");
    let n = HIDDEN.len();
    let request = format!(
        "GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {n}\r\nContent-Length: {n}\r\n\r\n{HIDDEN}"
    );
    let answer = only_answer(mg.addr, request.as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k");
}

#[test]
fn a_transfer_encoding_that_does_not_end_in_chunked_is_hypers_400() {
    let (_root, mg) = gate("");
    for te in ["chunked, identity", "identity", "gzip"] {
        let request =
            format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n{HIDDEN}");
        only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
    }
}

#[test]
fn transfer_encoding_in_http10_is_hypers_400() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{HIDDEN}");
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
}

#[test]
fn a_chunked_body_holding_a_request_is_read_as_body() {
    let (_root, mg) = gate("");
    let request = format!(
        "GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{HIDDEN}\r\n0\r\n\r\n",
        HIDDEN.len()
    );
    let answer = only_answer(mg.addr, request.as_bytes());
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k");
}

#[test]
fn an_obs_fold_header_line_is_hypers_400() {
    // RFC 9112 section 5.2: a server may reject obs-fold with 400.
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n{HIDDEN}");
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
}

#[test]
fn whitespace_before_a_header_colon_is_hypers_400() {
    // RFC 9112 section 5.1: a server MUST reject it with 400.
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost : x\r\nContent-Length : 40\r\n\r\n{HIDDEN}");
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
}

#[test]
fn bare_lf_line_ends_are_read_as_line_ends() {
    // RFC 9112 section 2.2 lets a recipient take a bare LF as a line end;
    // hyper does, consistently for the head and the framing headers.
    let (_root, mg) = gate("");
    let request = b"GET /local/b/k.txt HTTP/1.1\nHost: x\nConnection: close\n\n";
    let answer = only_answer(mg.addr, request);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body, b"k");
}

#[test]
fn a_bare_cr_in_the_head_is_hypers_400() {
    let (_root, mg) = gate("");
    let request = format!("GET /local/b/k.txt HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n{HIDDEN}");
    only_answer(mg.addr, request.as_bytes()).assert_hyper_answer(400);
}

// ------------------------------------------------------------------ ranges

fn range_request(range: &str) -> String {
    format!("GET /local/b/r.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: {range}\r\n\r\n")
}

#[test]
fn a_thousand_ranges_are_ignored_and_the_whole_object_is_sent() {
    // RFC 9110 section 14.2: a server may ignore a Range it will not serve.
    let (_root, mg) = gate("");
    let ranges: Vec<String> = (0..1000).map(|i| format!("{i}-{i}")).collect();
    let answer = only_answer(mg.addr, range_request(&format!("bytes={}", ranges.join(","))).as_bytes());
    assert_eq!(answer.status, 200, "{:?}", answer.headers);
    assert_eq!(answer.header("content-range"), None);
    assert_eq!(answer.body, pattern_bytes(4096, 3));
}

#[test]
fn a_range_past_two_to_the_64_is_ignored_and_the_whole_object_is_sent() {
    let (_root, mg) = gate("");
    for range in ["bytes=0-18446744073709551616", "bytes=18446744073709551616-", "bytes=-18446744073709551616"] {
        let answer = only_answer(mg.addr, range_request(range).as_bytes());
        assert_eq!(answer.status, 200, "{range}: {:?}", answer.headers);
        assert_eq!(answer.body.len(), 4096, "{range}");
    }
    let max = only_answer(mg.addr, range_request("bytes=0-18446744073709551615").as_bytes());
    assert_eq!(max.status, 206, "{:?}", max.headers);
    assert_eq!(max.header("content-range"), Some("bytes 0-4095/4096"));
}

#[test]
fn more_than_16_disjoint_ranges_are_served_as_the_whole_object() {
    let (_root, mg) = gate("");
    let ranges: Vec<String> = (0..17).map(|i| format!("{}-{}", i * 10, i * 10)).collect();
    let answer = only_answer(mg.addr, range_request(&format!("bytes={}", ranges.join(","))).as_bytes());
    assert_eq!(answer.status, 200, "{:?}", answer.headers);
    assert_eq!(answer.body.len(), 4096);
}

#[test]
fn a_range_starting_past_the_end_is_416_range_not_satisfiable() {
    let (_root, mg) = gate("");
    let answer = only_answer(mg.addr, range_request("bytes=5000-").as_bytes());
    answer.assert_error(416, "range_not_satisfiable");
    assert_eq!(answer.header("content-range"), Some("bytes */4096"));
}

// ------------------------------------------------------------------ connection floods

/// Starts a download of `big.bin` and reads its status line: the connection
/// is then busy (its answer in flight) for as long as the body is left unread.
fn busy_download(mut stream: TcpStream) -> TcpStream {
    stream.write_all(b"GET /local/b/big.bin HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("the download's first bytes");
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    stream
}

/// A request on an open connection and its one answer, the connection then closed.
fn ask(mut stream: TcpStream, path: &str) -> Answer {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    only(answers(&read_to_close(&mut stream)))
}

/// Whether the server closed `stream` (EOF or reset) without sending anything.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Ok(_) => false,
        Err(e) => panic!("the connection was not closed within {READ_LIMIT:?}: {e}"),
    }
}

#[test]
fn past_the_per_ip_cap_a_busy_client_gets_503_while_another_address_is_served() {
    let (_root, mg) = gate("max_connections_per_ip = 2");
    let _busy: Vec<TcpStream> = (0..2).map(|_| busy_download(connect(mg.addr))).collect();
    let refused = ask(connect(mg.addr), "/local/b/k.txt");
    refused.assert_error(503, "overloaded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let other = ask(connect_from("127.0.0.2", mg.addr), "/local/b/k.txt");
    assert_eq!(other.status, 200, "{other:?}");
    assert_eq!(other.body, b"k");
}

#[test]
fn past_the_per_ip_cap_a_client_new_connection_closes_its_own_longest_idle_one() {
    let (_root, mg) = gate("max_connections_per_ip = 2");
    let mut idle: Vec<TcpStream> = (0..2).map(|_| connect(mg.addr)).collect();
    let answer = ask(connect(mg.addr), "/local/b/k.txt");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(closed_by_server(&mut idle[0]), "the oldest idle connection is still open");
    let second = idle.remove(1);
    assert_eq!(ask(second, "/local/b/k.txt").status, 200, "the younger idle connection was closed too");
}

#[test]
fn at_the_global_limit_a_newcomer_closes_the_oldest_fresh_connection_not_a_keep_alive_one() {
    let (_root, mg) = gate("max_connections = 4\nmax_connections_per_ip = 0");
    // A keep-alive connection that has been answered once, and is idle now.
    let mut kept = connect(mg.addr);
    kept.write_all(b"GET /local/b/k.txt HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut seen = Vec::new();
    while !seen.ends_with(b"\r\n\r\nk") {
        let mut buf = [0u8; 512];
        let n = kept.read(&mut buf).expect("the first answer");
        assert!(n > 0, "closed after one answer: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&seen));
    // Three connections that send nothing fill the limit.
    let mut fresh: Vec<TcpStream> = (0..3).map(|_| connect_from("127.0.0.3", mg.addr)).collect();
    let newcomer = ask(connect_from("127.0.0.2", mg.addr), "/local/b/k.txt");
    assert_eq!(newcomer.status, 200, "the newcomer was refused: {newcomer:?}");
    assert!(closed_by_server(&mut fresh[0]), "the oldest fresh connection is still open");
    let answer = ask(kept, "/local/b/k.txt");
    assert_eq!(answer.status, 200, "the keep-alive connection was closed before a fresh one: {answer:?}");
}

#[test]
fn a_flood_of_idle_sockets_from_one_address_does_not_keep_others_out() {
    let (_root, mg) = gate("max_connections = 16\nmax_connections_per_ip = 0");
    let _flood: Vec<TcpStream> = (0..40).map(|_| connect(mg.addr)).collect();
    for i in 0..5 {
        let answer = ask(connect_from("127.0.0.2", mg.addr), "/local/b/k.txt");
        assert_eq!(answer.status, 200, "request {i} behind the flood: {answer:?}");
    }
}

#[test]
fn with_every_connection_busy_a_newcomer_gets_503_overloaded() {
    let (_root, mg) = gate("max_connections = 2\nmax_connections_per_ip = 0");
    let busy: Vec<TcpStream> = (0..2).map(|_| busy_download(connect(mg.addr))).collect();
    let refused = ask(connect_from("127.0.0.2", mg.addr), "/local/b/k.txt");
    refused.assert_error(503, "overloaded");
    drop(busy);
    // Once the downloads end, their slots are free again.
    let served = common::wait_until(READ_LIMIT, || ask(connect(mg.addr), "/local/b/k.txt").status == 200);
    assert!(served, "the slots were not freed after the downloads ended");
}
