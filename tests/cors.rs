//! CORS over real HTTP (CONTRACT.md section 5): allowed and other origins,
//! preflights answered without storage, CORS headers on errors.

mod common;

use common::{MediaGate, config, get, local_integration, request};
use http::Method;

const APP: &str = "https://app.example.com";

fn cors(origins: &str) -> String {
    format!("[cors]\nallowed_origins = {origins}\nmax_age = \"15m\"\n")
}

fn media() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/clip.mp4"), vec![1u8; 2048]).unwrap();
    dir
}

fn start(origins: &str, extra: &str) -> (MediaGate, tempfile::TempDir) {
    let root = media();
    let mg = MediaGate::start(&config(&[&cors(origins), extra, &local_integration("files", root.path(), &["b"])]));
    (mg, root)
}

fn vary(resp: &common::TestResponse) -> Vec<String> {
    resp.headers.get_all("vary").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[test]
fn an_allowed_origin_may_read_ranges_and_their_headers() {
    let (mg, _root) = start(&format!("[\"{APP}\"]"), "");
    let resp = get(&mg.url("/local/b/clip.mp4"), &[("origin", APP), ("range", "bytes=0-99")]);
    assert_eq!(resp.status, 206);
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP));
    let exposed = resp.header("access-control-expose-headers").unwrap();
    for name in ["Content-Range", "Accept-Ranges", "Content-Length", "ETag"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    assert!(vary(&resp).iter().any(|v| v == "Origin"), "{:?}", resp.headers);
    assert!(resp.header("access-control-allow-credentials").is_none());
}

#[test]
fn another_origin_gets_the_bytes_but_no_permission_to_read_them() {
    let (mg, _root) = start(&format!("[\"{APP}\"]"), "");
    for origin in ["https://evil.example.com", "http://app.example.com", "https://app.example.com:444", "null"] {
        let resp = get(&mg.url("/local/b/clip.mp4"), &[("origin", origin)]);
        assert_eq!(resp.status, 200);
        assert!(resp.header("access-control-allow-origin").is_none(), "{origin}: {:?}", resp.headers);
        assert!(vary(&resp).iter().any(|v| v == "Origin"), "a CDN must not hand this answer to {APP}");
    }
    // Without Origin (a plain <video> tag, curl): the same bytes, still Vary: Origin.
    let plain = get(&mg.url("/local/b/clip.mp4"), &[]);
    assert!(plain.header("access-control-allow-origin").is_none());
    assert!(vary(&plain).iter().any(|v| v == "Origin"));
}

#[test]
fn a_preflight_is_answered_without_touching_storage_and_may_be_cached() {
    // The only integration points at a port where nothing listens: a preflight
    // that reached storage would fail.
    let dead = "\n[[integration]]\nname = \"dead\"\ntype = \"s3\"\nendpoint = \"127.0.0.1\"\nport = 9\ntls = false\n\
                access_key_id = \"a\"\nsecret_access_key = \"b\"\nbuckets = [\"photos\"]\n";
    let (mg, _root) = start(&format!("[\"{APP}\"]"), dead);
    let resp = request(
        Method::OPTIONS,
        &mg.url("/s3/photos/a.jpg"),
        &[("origin", APP), ("access-control-request-method", "GET"), ("access-control-request-headers", "range")],
    );
    assert_eq!(resp.status, 204, "{}", resp.describe());
    assert_eq!(resp.header("access-control-allow-origin"), Some(APP));
    assert!(resp.header("access-control-allow-headers").unwrap().contains("Range"));
    assert!(resp.header("access-control-allow-methods").unwrap().contains("GET"));
    assert_eq!(resp.header("access-control-max-age"), Some("900"));
    assert!(resp.body.is_empty());
    // A real GET does reach the (dead) storage.
    let real = get(&mg.url("/s3/photos/a.jpg"), &[("origin", APP)]);
    assert!(real.status.is_server_error(), "{}", real.describe());
    assert_eq!(real.header("access-control-allow-origin"), Some(APP), "errors carry CORS headers");
}

#[test]
fn a_preflight_from_another_origin_allows_nothing() {
    let (mg, _root) = start(&format!("[\"{APP}\"]"), "");
    let resp = request(
        Method::OPTIONS,
        &mg.url("/local/b/clip.mp4"),
        &[("origin", "https://evil.example.com"), ("access-control-request-method", "GET")],
    );
    assert_eq!(resp.status, 204);
    for name in ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"] {
        assert!(resp.header(name).is_none(), "{name}: {:?}", resp.headers);
    }
}

#[test]
fn error_responses_carry_cors_headers_so_the_page_can_read_them() {
    let signed = "[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"cors-test-secret-0123456\"\n";
    let (mg, _root) = start(&format!("[\"{APP}\"]"), signed);
    for (path, status, code) in [
        ("/local/b/clip.mp4", 403, "bad_signature"),
        ("/nope/b/clip.mp4", 400, "bad_locator"),
        ("/local/other/clip.mp4", 403, "bad_signature"),
    ] {
        let resp = get(&mg.url(path), &[("origin", APP)]);
        assert_eq!(resp.status, status, "{path}: {}", resp.describe());
        assert_eq!(resp.error_code(), code);
        assert_eq!(resp.header("access-control-allow-origin"), Some(APP), "{path}");
    }
}

#[test]
fn a_wildcard_allows_every_origin_without_vary() {
    let (mg, _root) = start("[\"*\"]", "");
    let resp = get(&mg.url("/local/b/clip.mp4"), &[("origin", "https://anyone.example")]);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert!(vary(&resp).is_empty(), "{:?}", resp.headers);
    let missing = get(&mg.url("/local/b/missing.mp4"), &[("origin", "https://anyone.example")]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn without_a_cors_section_no_cors_headers_are_sent() {
    let root = media();
    let mg = MediaGate::start(&config(&[&local_integration("files", root.path(), &["b"])]));
    let resp = get(&mg.url("/local/b/clip.mp4"), &[("origin", APP)]);
    assert_eq!(resp.status, 200);
    assert!(resp.headers.keys().all(|k| !k.as_str().starts_with("access-control-")), "{:?}", resp.headers);
    let pre = request(
        Method::OPTIONS,
        &mg.url("/local/b/clip.mp4"),
        &[("origin", APP), ("access-control-request-method", "GET")],
    );
    assert_eq!(pre.status, 204);
    assert!(pre.header("access-control-allow-origin").is_none());
}
