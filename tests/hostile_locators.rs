//! Hostile locators against the real peers (issue 7, "Must fix" 1 and 3):
//! every way of writing a `.` or `..` key segment, in every scheme and both
//! request forms, is `400 bad_locator` and never reaches the storage; so are
//! control characters, malformed escapes, bytes that are not UTF-8, an
//! overlong key and `https://` locators that are not exactly an Azure
//! public-cloud blob URL.
//!
//! Requests go over a raw TCP socket, byte for byte (HTTP clients resolve dot
//! segments before sending, as `curl` does without `--path-as-is`). S3 (and
//! gs) and Azure requests pass through a counting relay
//! ([`common::relay::Relay`]): "never reached the storage" is asserted on the
//! bytes it forwarded, after a control request that must be counted.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use common::relay::{Fault, Relay};
use common::*;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

const INSIDE: &[u8] = b"inside the scope\n";
const OUTSIDE: &[u8] = b"outside the scope: must never be served\n";

// ------------------------------------------------------------------ raw HTTP

/// `GET <target> HTTP/1.1` written as given on a new connection, the whole
/// response read back (`Content-Length` or chunked, or up to the close).
fn raw_get(addr: SocketAddr, target: &str) -> TestResponse {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).expect("set_read_timeout");
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("write {target:?}: {e}"));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).unwrap_or_else(|e| panic!("GET {target:?}: reading the head: {e}"));
        assert!(n > 0, "GET {target:?}: the connection closed before a complete head: {:?}", lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| panic!("GET {target:?}: bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("GET {target:?}: bad header {line:?}"));
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let mut body = buf[head_end + 4..].to_vec();
    let length = headers.get("content-length").map(|v| v.to_str().unwrap().parse::<usize>().unwrap());
    while length.is_none_or(|len| body.len() < len) {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("GET {target:?}: reading the body: {e}"),
        }
    }
    if headers.get("transfer-encoding").is_some_and(|v| v == "chunked") {
        body = dechunk(&body);
    }
    TestResponse { status, headers, body: Bytes::from(body) }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(lossy(&raw[..line_end]).split(';').next().unwrap().trim(), 16)
            .unwrap_or_else(|e| panic!("bad chunk size in {:?}: {e}", lossy(raw)));
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

/// Asserts the exact status and error code of `r`.
fn assert_error(r: &TestResponse, status: StatusCode, code: &str, target: &str) {
    assert_eq!(r.status, status, "{target}: {}", r.describe());
    assert_eq!(r.error_code(), code, "{target}: {}", r.describe());
    assert!(!r.body.windows(OUTSIDE.len()).any(|w| w == OUTSIDE), "{target} served the object outside the scope");
}

// ------------------------------------------------------------------ a scope behind a counting relay

/// A mediagate whose integrations reach their storage through `relay`.
struct Scoped {
    mg: MediaGate,
    relay: Relay,
    /// The in-scope bucket (S3) or container (Azure).
    media: String,
    /// A bucket or container of the same storage that no integration scopes.
    outside: String,
    /// Path-form targets of two objects of equal size and key length: the
    /// first and the last request of a test, counted by the relay.
    controls: [String; 2],
}

impl Scoped {
    /// Sends control `i`, asserts it is served and that the relay forwarded
    /// it, and returns the bytes it added to the relay's count.
    fn control(&self, i: usize) -> u64 {
        let before = self.relay.bytes_up();
        let r = raw_get(self.mg.addr, &self.controls[i]);
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, INSIDE), "control {}: {}", self.controls[i], r.describe());
        assert!(
            wait_until(Duration::from_secs(10), || self.relay.bytes_up() > before),
            "the relay never saw control {}: it cannot tell whether a request reached the storage",
            self.controls[i]
        );
        self.relay.bytes_up() - before
    }

    /// `GET target` is `400 bad_locator`, and the relay forwarded nothing.
    fn refused(&self, target: &str) -> TestResponse {
        let before = self.relay.bytes_up();
        let r = raw_get(self.mg.addr, target);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", target);
        assert_eq!(self.relay.bytes_up(), before, "{target} reached the storage");
        r
    }

    /// Runs `cases` between the two controls, then proves that, over the
    /// whole run, the storage received exactly the two controls' bytes.
    fn all_refused(&self, cases: &[String]) {
        let first = self.control(0);
        let mark = self.relay.bytes_up();
        for target in cases {
            self.refused(target);
        }
        let second = self.control(1);
        assert_eq!(first, second, "the two control requests differ in size; the final check needs them equal");
        assert_eq!(self.relay.bytes_up(), mark + second, "a refused request reached the storage after all");
    }
}

/// Two S3 buckets on the S3 peer, `media` (holding the controls) and
/// `outside` (holding `o.txt`); integrations `s3` and `gs` (the same
/// storage, `locator_scheme = "gs"`) scoped to `media`, both through a relay.
fn s3_scope(tag: &str) -> Option<Scoped> {
    let s3 = s3_peer()?;
    let media = unique_bucket(&format!("{tag}-media"));
    let outside = unique_bucket(&format!("{tag}-outside"));
    s3.seed(&media, &[("c1.txt", INSIDE), ("c2.txt", INSIDE)]);
    s3.seed(&outside, &[("o.txt", OUTSIDE)]);
    let relay = Relay::start(s3.addr(), Fault::None);
    let port = relay.addr().port();
    let s3i = s3.integration_at("s3", "127.0.0.1", port, &[&media], &s3.secret_key, "");
    let gsi = s3.integration_at("gs", "127.0.0.1", port, &[&media], &s3.secret_key, "locator_scheme = \"gs\"");
    let mg = MediaGate::start(&config(&[&s3i, &gsi]));
    let controls = [format!("/s3/{media}/c1.txt"), format!("/gs/{media}/c2.txt")];
    Some(Scoped { mg, relay, media, outside, controls })
}

/// Two containers on the Azure peer, `media` (scoped, holding the controls)
/// and `outside` (holding `x.txt`), reached through a relay.
fn azure_scope(tag: &str) -> Option<(Scoped, AzurePeer)> {
    let peer = azure_peer()?;
    let media = unique_bucket(&format!("{tag}-media"));
    let outside = unique_bucket(&format!("{tag}-outside"));
    peer.create_container(&media);
    peer.put_blob(&media, "c1.txt", INSIDE);
    peer.put_blob(&media, "c2.txt", INSIDE);
    peer.create_container(&outside);
    peer.put_blob(&outside, "x.txt", OUTSIDE);
    let uri: http::Uri = peer.url.parse().expect("MEDIAGATE_TEST_AZURE_URL");
    let host = uri.host().expect("the Azure URL has a host");
    let upstream = (host, uri.port_u16().unwrap_or(80))
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .expect("the Azure peer resolves");
    let relay = Relay::start(upstream, Fault::None);
    let through =
        AzurePeer { url: format!("http://{}{}", relay.addr(), uri.path().trim_end_matches('/')), ..peer.clone() };
    let mg = MediaGate::start(&config(&[&through.integration("azure", &media, "")]));
    let account = &peer.account;
    let controls = [format!("/az/{account}/{media}/c1.txt"), format!("/az/{account}/{media}/c2.txt")];
    Some((Scoped { mg, relay, media, outside, controls }, peer))
}

/// The ways of writing `..` in a path.
const DOT_DOT: &[&str] = &["..", "%2e%2e", "%2E%2E", "%2E%2e", ".%2e", "%2e.", ".%2E", "%2E."];

// ------------------------------------------------------------------ S3 and gs

#[test]
fn every_dot_segment_form_in_the_s3_and_gs_path_forms_is_refused_before_the_storage() {
    let Some(t) = s3_scope("dots-path") else { return };
    let (media, outside) = (&t.media, &t.outside);
    let mut cases = Vec::new();
    for scheme in ["s3", "gs"] {
        for dd in DOT_DOT {
            cases.push(format!("/{scheme}/{media}/{dd}/{outside}/o.txt"));
            cases.push(format!("/{scheme}/{media}/sub/{dd}/{dd}/{outside}/o.txt"));
            cases.push(format!("/{scheme}/{media}/x/{dd}"));
        }
        cases.push(format!("/{scheme}/{media}/..%2F{outside}%2Fo.txt"));
        cases.push(format!("/{scheme}/{media}/%2e%2e%2f{outside}%2fo.txt"));
        // `\` separates segments for Azure and WHATWG URL parsers: refused everywhere
        cases.push(format!("/{scheme}/{media}/..%5C{outside}%5Co.txt"));
        cases.push(format!("/{scheme}/{media}/x%5C.%5Cc1.txt"));
        cases.push(format!("/{scheme}/{media}/./c1.txt"));
        cases.push(format!("/{scheme}/{media}/%2e/c1.txt"));
        cases.push(format!("/{scheme}/{media}/%2E/c1.txt"));
        cases.push(format!("/{scheme}/{media}/a/./c1.txt"));
        cases.push(format!("/{scheme}/{media}/a/."));
        cases.push(format!("/{scheme}/{media}/."));
        cases.push(format!("/{scheme}/{media}/.."));
        cases.push(format!("/{scheme}/{media}//../c1.txt"));
        // the bucket itself
        cases.push(format!("/{scheme}/../{outside}/o.txt"));
        cases.push(format!("/{scheme}/%2e%2e/{outside}/o.txt"));
    }
    // absolute-form request target (RFC 9112 section 3.2.2)
    cases.push(format!("http://{}/s3/{media}/../{outside}/o.txt", t.mg.addr));
    t.all_refused(&cases);
}

#[test]
fn every_dot_segment_form_in_the_s3_and_gs_query_forms_is_refused_before_the_storage() {
    let Some(t) = s3_scope("dots-query") else { return };
    let (media, outside) = (&t.media, &t.outside);
    let mut cases = Vec::new();
    for scheme in ["s3", "gs"] {
        for key in [format!("../{outside}/o.txt"), format!("x/../../{outside}/o.txt"), "./c1.txt".into(), "x/..".into()]
        {
            let locator = format!("{scheme}://{media}/{key}");
            cases.push(format!("/media?locator={locator}"));
            cases.push(format!("/media?locator={}", encode_component(&locator)));
        }
        // the value is decoded once: `%2e` arrives as `.`
        for dd in DOT_DOT {
            cases.push(format!("/media?locator={scheme}://{media}/{dd}/{outside}/o.txt"));
            cases.push(format!("/media?locator={scheme}%3A%2F%2F{media}%2F{dd}%2F{outside}%2Fo.txt"));
        }
        cases.push(format!("/media?locator={scheme}://{media}/..%2F{outside}%2Fo.txt"));
    }
    t.all_refused(&cases);
}

#[test]
fn a_literal_percent_2e_key_is_an_ordinary_name_sent_encoded_and_never_resolved() {
    let Some(t) = s3_scope("literal-2e") else { return };
    let (media, outside) = (&t.media, &t.outside);
    // `%252e%252e` in the path, or `%2e%2e` once the query value is decoded,
    // is the three-character name `%2e`: sent as `%252e`, which no server
    // resolves. The bucket has no such object: 404, never `outside`'s object.
    for target in [
        format!("/s3/{media}/%252e%252e/{outside}/o.txt"),
        format!("/media?locator=s3%3A%2F%2F{media}%2F%252e%252e%2F{outside}%2Fo.txt"),
    ] {
        let before = t.relay.bytes_up();
        let r = raw_get(t.mg.addr, &target);
        assert_error(&r, StatusCode::NOT_FOUND, "not_found", &target);
        assert!(t.relay.bytes_up() > before, "{target} should have been asked of the storage");
    }
}

#[test]
fn control_characters_in_an_s3_key_are_refused_with_the_byte_named() {
    let Some(t) = s3_scope("controls") else { return };
    let media = &t.media;
    let table = [
        (format!("/s3/{media}/a%00b.txt"), "0x00 (NUL)"),
        (format!("/s3/{media}/a%0D%0Ab.txt"), "0x0D (CR)"),
        (format!("/s3/{media}/a%0Ab.txt"), "0x0A (LF)"),
        (format!("/s3/{media}/a%7Fb.txt"), "0x7F (DEL)"),
        (format!("/media?locator=s3://{media}/a%00b.txt"), "0x00 (NUL)"),
        (format!("/media?locator=s3://{media}/c1.txt%0D%0AX-Injected:%201"), "0x0D (CR)"),
        (format!("/gs/{media}/%09tab"), "0x09 (TAB)"),
    ];
    t.control(0);
    for (target, named) in &table {
        let r = t.refused(target);
        assert!(r.error_message().contains(named), "{target}: {}", r.error_message());
    }
}

#[test]
fn malformed_escapes_bad_utf8_and_overlong_keys_are_refused_before_the_storage() {
    let Some(t) = s3_scope("malformed") else { return };
    let media = &t.media;
    let mut cases = Vec::new();
    for bad in ["%+F", "%-1", "%4", "%zz", "%4g", "x%", "%%41", "%C0%AE%C0%AE/c1.txt", "%C0%AE", "%FF", "%E2%9C"] {
        cases.push(format!("/s3/{media}/{bad}"));
        cases.push(format!("/media?locator=s3://{media}/{bad}"));
    }
    cases.push(format!("/s3/{media}/{}", "k".repeat(1025)));
    cases.push(format!("/s3/{media}/{}", "%C3%BC".repeat(513))); // 1026 bytes once decoded
    cases.push(format!("/media?locator=s3://{media}/{}", "k".repeat(1025)));
    t.all_refused(&cases);
}

// ------------------------------------------------------------------ Azure

#[test]
fn every_dot_segment_form_in_the_az_and_https_forms_is_refused_before_the_storage() {
    let Some((t, peer)) = azure_scope("az-dots") else { return };
    let (account, media, outside) = (&peer.account, &t.media, &t.outside);
    let https = format!("https://{account}.blob.core.windows.net/{media}");
    let mut cases = Vec::new();
    for dd in DOT_DOT {
        cases.push(format!("/az/{account}/{media}/{dd}/{outside}/x.txt"));
        cases.push(format!("/az/{account}/{media}/x/{dd}"));
        cases.push(format!("/media?locator=az://{account}/{media}/{dd}/{outside}/x.txt"));
        // the https form is a URL: its path is decoded once more
        cases.push(format!("/media?locator={https}/{dd}/{outside}/x.txt"));
        cases.push(format!("/media?locator={}", encode_component(&format!("{https}/{dd}/{outside}/x.txt"))));
    }
    for dot in [".", "%2e", "%2E"] {
        cases.push(format!("/az/{account}/{media}/{dot}/c1.txt"));
        cases.push(format!("/media?locator={}", encode_component(&format!("{https}/{dot}/c1.txt"))));
    }
    cases.push(format!("/az/{account}/{media}/..%2F{outside}%2Fx.txt"));
    cases.push(format!("/az/{account}/{media}/..%5C{outside}%5Cx.txt"));
    cases.push(format!("/media?locator={}", encode_component(&format!("{https}/..%5C{outside}%5Cx.txt"))));
    cases.push(format!("/az/{account}/../{outside}/x.txt"));
    cases.push(format!("/az/{account}/{media}/a%00b"));
    cases.push(format!("/az/{account}/{media}/%+F"));
    t.all_refused(&cases);
}

#[test]
fn https_locators_that_are_not_exactly_an_azure_public_cloud_url_are_refused() {
    let Some((t, peer)) = azure_scope("az-hosts") else { return };
    let (account, media) = (&peer.account, &t.media);
    let mut cases = Vec::new();
    for (url, says) in [
        (format!("https://{account}.blob.core.windows.net@127.0.0.1:9/{media}/c1.txt"), "user name"),
        (format!("https://user@{account}.blob.core.windows.net/{media}/c1.txt"), "user name"),
        (format!("https://{account}.blob.core.windows.net:443/{media}/c1.txt"), "port"),
        (format!("https://{account}.blob.core.windows.net:10000/{media}/c1.txt"), "port"),
        (format!("https://{account}.blob.localhost/{media}/c1.txt"), "public cloud"),
        (format!("https://{account}.blob.core.windows.net.localhost/{media}/c1.txt"), "public cloud"),
        (format!("https://{account}.blob.core.windows.net.evil.com/{media}/c1.txt"), "public cloud"),
        (format!("https://{account}.blob.core.windows.net./{media}/c1.txt"), "public cloud"),
        (format!("https://{account}.blob.core.windows.net/{media}/c1.txt?sv=1&sig=x"), "query"),
    ] {
        let target = format!("/media?locator={}", encode_component(&url));
        cases.push((target, says));
    }
    t.control(0);
    for (target, says) in &cases {
        let r = t.refused(target);
        assert!(r.error_message().contains(says), "{target}: {}", r.error_message());
    }
}

#[test]
fn an_upper_case_https_host_names_the_same_lower_case_account() {
    let Some((t, peer)) = azure_scope("az-case") else { return };
    let url = format!("https://{}.BLOB.Core.Windows.NET/{}/c1.txt", peer.account.to_uppercase(), t.media);
    let target = format!("/media?locator={}", encode_component(&url));
    let r = raw_get(t.mg.addr, &target);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, INSIDE), "{target}: {}", r.describe());
}

// ------------------------------------------------------------------ local

#[test]
fn every_dot_segment_form_in_the_local_forms_is_refused_by_the_locator() {
    let dir = tempfile::Builder::new().prefix("mediagate-hostile-").tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("b/sub")).unwrap();
    std::fs::create_dir_all(root.join("other")).unwrap();
    std::fs::write(root.join("b/ok.txt"), INSIDE).unwrap();
    std::fs::write(root.join("other/x.txt"), OUTSIDE).unwrap();
    std::fs::write(dir.path().join("outside.txt"), OUTSIDE).unwrap();
    let mg = MediaGate::start(&config(&[&local_integration("files", &root, &["b"])]));
    let r = raw_get(mg.addr, "/local/b/ok.txt");
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, INSIDE), "{}", r.describe());

    let mut cases = Vec::new();
    for dd in DOT_DOT {
        cases.push(format!("/local/b/{dd}/other/x.txt"));
        cases.push(format!("/local/b/sub/{dd}/{dd}/outside.txt"));
        cases.push(format!("/media?locator=local://b/{dd}/other/x.txt"));
    }
    cases.push("/local/b/./ok.txt".to_owned());
    cases.push("/local/b/sub/..".to_owned());
    cases.push("/local/b/sub/..%2F..%2F..%2Foutside.txt".to_owned());
    cases.push(format!("/media?locator={}", encode_component("local://b/./ok.txt")));
    for target in &cases {
        let r = raw_get(mg.addr, target);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", target);
        // the locator's refusal, not the file system's
        assert!(r.error_message().contains("segment"), "{target}: {}", r.error_message());
    }
    let r = raw_get(mg.addr, "/local/b/ok%00.txt");
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", "NUL");
    assert!(r.error_message().contains("0x00 (NUL)"), "{}", r.error_message());
}
