//! Black-box tests of `type = "local"` integrations (CONTRACT.md sections 1
//! and 2): serving files from a directory, ranges and conditionals, keys that
//! try to leave the root, and the demo config. No storage peer needed.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use http::StatusCode;

/// A root directory laid out as:
///
/// ```text
/// <tmp>/outside.txt                    not under the root
/// <tmp>/root/b/hello.txt
/// <tmp>/root/b/sub/clip.mp4
/// <tmp>/root/b/with space & plus+.txt
/// <tmp>/root/b/link-in       -> hello.txt
/// <tmp>/root/b/link-out      -> <tmp>/outside.txt
/// <tmp>/root/b/dir-out       -> <tmp>
/// <tmp>/root/other/x.txt               another bucket, outside the scope
/// ```
struct Tree {
    dir: tempfile::TempDir,
    mg: MediaGate,
}

const HELLO: &[u8] = b"hello from the local integration\n";
const OUTSIDE: &[u8] = b"this file is outside the root\n";

fn tree() -> Tree {
    let dir = tempfile::Builder::new().prefix("mediagate-local-").tempdir().unwrap();
    let tmp = dir.path();
    let b = tmp.join("root/b");
    std::fs::create_dir_all(b.join("sub")).unwrap();
    std::fs::create_dir_all(tmp.join("root/other")).unwrap();
    std::fs::write(tmp.join("outside.txt"), OUTSIDE).unwrap();
    std::fs::write(b.join("hello.txt"), HELLO).unwrap();
    std::fs::write(b.join("sub/clip.mp4"), pattern_bytes(10_000, 9)).unwrap();
    std::fs::write(b.join("with space & plus+.txt"), b"special").unwrap();
    std::fs::write(tmp.join("root/other/x.txt"), b"other bucket").unwrap();
    std::os::unix::fs::symlink("hello.txt", b.join("link-in")).unwrap();
    std::os::unix::fs::symlink(tmp.join("outside.txt"), b.join("link-out")).unwrap();
    std::os::unix::fs::symlink(tmp, b.join("dir-out")).unwrap();
    let mg = MediaGate::start(&config(&[&local_integration("files", &tmp.join("root"), &["b"])]));
    Tree { dir, mg }
}

impl Tree {
    fn url(&self, key: &str) -> String {
        self.mg.path_url("local", "b", key)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

#[test]
fn a_file_is_served_with_length_type_etag_and_last_modified() {
    let t = tree();
    let r = get(&t.url("hello.txt"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], HELLO);
    assert_eq!(r.header("content-length"), Some(HELLO.len().to_string().as_str()));
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{}", r.describe());
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").is_some(), "no ETag: {}", r.describe());
    assert!(r.header("last-modified").is_some(), "no Last-Modified: {}", r.describe());
}

#[test]
fn a_file_in_a_subdirectory_is_served_in_both_forms() {
    let t = tree();
    let data = pattern_bytes(10_000, 9);
    let r = get(&t.url("sub/clip.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], &data[..]);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    let r = get(&t.mg.query_url("local://b/sub/clip.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], &data[..]);
}

#[test]
fn a_file_name_with_special_characters_is_served() {
    let t = tree();
    let r = get(&t.url("with space & plus+.txt"), &[]);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"special"[..]), "{}", r.describe());
    let r = get(&t.mg.query_url("local://b/with space & plus+.txt"), &[]);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"special"[..]), "{}", r.describe());
}

#[test]
fn ranges_of_a_file_give_206_and_past_the_end_416() {
    let t = tree();
    let data = pattern_bytes(10_000, 9);
    let r = get(&t.url("sub/clip.mp4"), &[("range", "bytes=100-199")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.describe());
    assert_eq!(r.header("content-range"), Some("bytes 100-199/10000"));
    assert_eq!(&r.body[..], &data[100..200]);
    let r = get(&t.url("sub/clip.mp4"), &[("range", "bytes=-10")]);
    assert_eq!(r.header("content-range"), Some("bytes 9990-9999/10000"), "{}", r.describe());
    assert_eq!(&r.body[..], &data[9990..]);
    let r = get(&t.url("sub/clip.mp4"), &[("range", "bytes=9000-")]);
    assert_eq!(r.header("content-range"), Some("bytes 9000-9999/10000"), "{}", r.describe());
    let r = get(&t.url("sub/clip.mp4"), &[("range", "bytes=10000-")]);
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", r.describe());
    assert_eq!(r.header("content-range"), Some("bytes */10000"));
}

#[test]
fn if_none_match_with_the_etag_of_a_file_gives_304() {
    let t = tree();
    let etag = get(&t.url("hello.txt"), &[]).header("etag").expect("ETag").to_owned();
    let r = get(&t.url("hello.txt"), &[("if-none-match", &etag)]);
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.describe());
}

#[test]
fn head_of_a_file_has_the_headers_of_get_and_no_body() {
    let t = tree();
    let g = get(&t.url("hello.txt"), &[]);
    let h = head(&t.url("hello.txt"), &[]);
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.is_empty());
    for name in ["content-length", "content-type", "etag", "last-modified", "accept-ranges"] {
        assert_eq!(h.header(name), g.header(name), "{name}");
    }
}

fn assert_bad_locator(url: &str) {
    let r = get(url, &[]);
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.describe());
    assert_eq!(r.error_code(), "bad_locator", "{url}");
    assert!(!r.text().contains("outside the root\\n") && !r.text().contains("other bucket"), "{url} leaked content");
}

#[test]
fn dot_dot_segments_in_the_path_form_are_a_bad_locator() {
    let t = tree();
    let base = &t.mg.base_url;
    assert_bad_locator(&format!("{base}/local/b/%2E%2E/%2E%2E/outside.txt"));
    assert_bad_locator(&format!("{base}/local/b/%2e%2e/other/x.txt"));
    assert_bad_locator(&format!("{base}/local/b/../../outside.txt"));
    assert_bad_locator(&format!("{base}/local/b/../other/x.txt"));
    assert_bad_locator(&format!("{base}/local/b/sub/..%2F..%2F..%2Foutside.txt"));
}

#[test]
fn dot_dot_segments_in_the_query_form_are_a_bad_locator() {
    let t = tree();
    assert_bad_locator(&t.mg.query_url("local://b/../../outside.txt"));
    assert_bad_locator(&t.mg.query_url("local://b/../other/x.txt"));
    assert_bad_locator(&t.mg.query_url("local://b/sub/../../../outside.txt"));
}

#[test]
fn an_absolute_key_is_a_bad_locator() {
    let t = tree();
    let outside = t.dir.path().join("outside.txt");
    let outside = outside.to_str().unwrap();
    assert_bad_locator(&t.mg.query_url(&format!("local://b/{outside}")));
    assert_bad_locator(&format!("{}/local/b/{}", t.mg.base_url, encode_key(outside)));
    assert_bad_locator(&format!("{}/local/b/{}", t.mg.base_url, encode_component(outside)));
}

#[test]
fn a_symlink_out_of_the_root_is_a_bad_locator() {
    let t = tree();
    assert_bad_locator(&t.url("link-out"));
    assert_bad_locator(&t.url("dir-out/outside.txt"));
    assert_bad_locator(&t.mg.query_url("local://b/link-out"));
}

#[test]
fn a_symlink_inside_the_root_is_served() {
    let t = tree();
    let r = get(&t.url("link-in"), &[]);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, HELLO), "{}", r.describe());
}

#[test]
fn a_directory_is_404() {
    let t = tree();
    assert!(t.root().join("b/sub").is_dir());
    for key in ["sub", "sub/"] {
        let r = get(&t.url(key), &[]);
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{key}: {}", r.describe());
        assert_eq!(r.error_code(), "not_found");
    }
}

#[test]
fn a_missing_file_is_404_not_found() {
    let t = tree();
    let r = get(&t.url("nope.txt"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error_code(), "not_found");
}

#[test]
fn a_bucket_outside_the_scope_is_404_no_integration() {
    let t = tree();
    let r = get(&t.mg.path_url("local", "other", "x.txt"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error_code(), "no_integration");
}

// ------------------------------------------------------------------ the demo

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `config/demo.toml` made fit for a test: the media listener on
/// `127.0.0.1:0`, no client auth, and relative local roots made absolute
/// (from the repository root, where the demo is meant to be run).
fn demo_config_for_tests() -> String {
    let path = repo().join("config/demo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut table: toml::Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let server = table.entry("server").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(t) = server.as_table_mut() {
        t.insert("listen".into(), toml::Value::String("127.0.0.1:0".into()));
    }
    if let Some(toml::Value::Table(admin)) = table.get_mut("admin") {
        admin.insert("listen".into(), toml::Value::String("127.0.0.1:0".into()));
    }
    table.remove("auth");
    if let Some(toml::Value::Array(integrations)) = table.get_mut("integration") {
        for i in integrations.iter_mut().filter_map(|i| i.as_table_mut()) {
            if let Some(toml::Value::String(root)) = i.get_mut("root")
                && Path::new(root.as_str()).is_relative()
            {
                *root = repo().join(&*root).to_string_lossy().into_owned();
            }
        }
    }
    toml::to_string(&table).expect("serialising the demo config")
}

#[test]
fn the_demo_config_serves_the_demo_clip() {
    let clip = std::fs::read(repo().join("examples/media/demo/clip.mp4")).expect("examples/media/demo/clip.mp4");
    let mg = MediaGate::start(&demo_config_for_tests());
    let r = get(&mg.query_url("local://demo/clip.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert!(r.body == clip, "the served clip differs from the file");
    let r = get(&mg.path_url("local", "demo", "clip-tail.mp4"), &[("range", "bytes=-1000")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.describe());
    for image in ["testsrc.png", "gradient.jpg"] {
        let r = head(&mg.path_url("local", "demo", image), &[]);
        assert_eq!(r.status, StatusCode::OK, "{image}: {}", r.describe());
    }
}

#[test]
fn the_demo_config_passes_check_as_it_is() {
    let out = MediaGate::check_file(&repo().join("config/demo.toml"));
    assert!(
        out.status.success(),
        "mediagate check --config config/demo.toml: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
