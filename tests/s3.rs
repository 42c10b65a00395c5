//! Black-box tests of mediagate in front of a real S3 server (s3s-fs, started
//! by `scripts/test.sh`): request forms, ranges, conditionals, keys with
//! special characters, addressing styles, integration selection, errors and
//! `mediagate check` (CONTRACT.md sections 1, 2, 3, 7 and 8).

mod common;

use bytes::Bytes;
use common::*;
use http::StatusCode;

/// One S3 peer, one fresh bucket seeded with `objects`, and a mediagate with
/// one integration (`s3`) scoped to that bucket.
struct Setup {
    s3: S3Peer,
    bucket: String,
    mg: MediaGate,
}

fn setup(tag: &str, objects: &[(&str, &[u8])]) -> Option<Setup> {
    let s3 = s3_peer()?;
    let bucket = unique_bucket(tag);
    s3.seed(&bucket, objects);
    let mg = MediaGate::start(&config(&[&s3.integration("s3", &[&bucket], "")]));
    Some(Setup { s3, bucket, mg })
}

impl Setup {
    fn url(&self, key: &str) -> String {
        self.mg.path_url("s3", &self.bucket, key)
    }

    fn query_url(&self, key: &str) -> String {
        self.mg.query_url(&format!("s3://{}/{key}", self.bucket))
    }
}

const SECRET_LIKE: &str = "wrong-secret-QWxhZGRpbjpvcGVuIHNlc2FtZQ";

// ------------------------------------------------------------------ full GET

#[test]
fn a_full_get_returns_the_object_with_length_etag_last_modified_and_a_type_from_the_extension() {
    let data = pattern_bytes(300_000, 1);
    let Some(t) = setup("full-get", &[("videos/clip.mp4", &data)]) else { return };
    let direct = t.s3.get_direct(&t.bucket, "videos/clip.mp4", &[]);

    let r = get(&t.url("videos/clip.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(sha256_hex(&r.body), sha256_hex(&data), "body differs from the stored object");
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("etag"), direct.header("etag"), "ETag must be the storage's");
    assert_eq!(r.header("last-modified"), direct.header("last-modified"), "Last-Modified must be the storage's");
    // s3s-fs stores no type for an object put without one.
    assert_eq!(r.header("content-type"), Some("video/mp4"));
}

#[test]
fn the_content_type_stored_with_the_object_is_passed_on() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("stored-type");
    s3.create_bucket(&bucket);
    s3.put_with(&bucket, "photo.mp4", Bytes::from_static(b"not really a video"), &[("content-type", "image/png")]);
    let mg = MediaGate::start(&config(&[&s3.integration("s3", &[&bucket], "")]));
    let r = get(&mg.path_url("s3", &bucket, "photo.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("image/png"));
}

#[test]
fn a_generic_stored_content_type_is_replaced_by_the_one_the_extension_names() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("generic-type");
    s3.create_bucket(&bucket);
    s3.put_with(&bucket, "movie.mp4", Bytes::from_static(b"bytes"), &[("content-type", "application/octet-stream")]);
    let mg = MediaGate::start(&config(&[&s3.integration("s3", &[&bucket], "")]));
    let r = get(&mg.path_url("s3", &bucket, "movie.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.header("content-type"), Some("video/mp4"));
}

#[test]
fn the_query_form_serves_the_same_object_as_the_path_form() {
    let data = pattern_bytes(10_000, 2);
    let Some(t) = setup("query-form", &[("a/b/c.jpg", &data)]) else { return };
    let by_path = get(&t.url("a/b/c.jpg"), &[]);
    let by_query = get(&t.query_url("a/b/c.jpg"), &[]);
    assert_eq!(by_path.status, StatusCode::OK, "{}", by_path.describe());
    assert_eq!(by_query.status, StatusCode::OK, "{}", by_query.describe());
    assert_eq!(by_query.body, Bytes::from(data));
    assert_eq!(by_query.header("etag"), by_path.header("etag"));
    assert_eq!(by_query.header("content-type"), Some("image/jpeg"));
}

#[test]
fn media_responses_carry_a_cache_status_header_naming_mediagate() {
    let Some(t) = setup("cache-status", &[("x.bin", b"0123456789")]) else { return };
    let r = get(&t.url("x.bin"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let cache_status = r.header("cache-status").unwrap_or_else(|| panic!("no Cache-Status: {}", r.describe()));
    assert!(cache_status.starts_with("mediagate"), "Cache-Status {cache_status:?}");
}

// ------------------------------------------------------------------ ranges

const LEN: usize = 1000;

fn range_setup(tag: &str) -> Option<(Setup, Vec<u8>)> {
    let data = pattern_bytes(LEN, 3);
    let t = setup(tag, &[("r.bin", &data)])?;
    Some((t, data))
}

fn assert_partial(r: &TestResponse, data: &[u8], first: usize, last: usize) {
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.describe());
    let expected = format!("bytes {first}-{last}/{}", data.len());
    assert_eq!(r.header("content-range"), Some(expected.as_str()), "{}", r.describe());
    assert_eq!(r.header("content-length"), Some((last - first + 1).to_string().as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.body[..] == data[first..=last], "206 body is not bytes {first}-{last} of the object");
}

#[test]
fn a_closed_range_gives_206_with_exactly_those_bytes() {
    let Some((t, data)) = range_setup("range-closed") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=0-99")]), &data, 0, 99);
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=500-509")]), &data, 500, 509);
}

#[test]
fn an_open_ended_range_gives_the_rest_of_the_object() {
    let Some((t, data)) = range_setup("range-open") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=100-")]), &data, 100, LEN - 1);
}

#[test]
fn a_suffix_range_gives_the_last_bytes() {
    let Some((t, data)) = range_setup("range-suffix") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=-100")]), &data, LEN - 100, LEN - 1);
}

#[test]
fn a_suffix_range_longer_than_the_object_gives_all_of_it_as_206() {
    let Some((t, data)) = range_setup("range-suffix-long") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=-5000")]), &data, 0, LEN - 1);
}

#[test]
fn a_one_byte_range_gives_one_byte() {
    let Some((t, data)) = range_setup("range-one") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=0-0")]), &data, 0, 0);
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=999-999")]), &data, 999, 999);
}

#[test]
fn a_range_reaching_past_the_end_is_cut_at_the_end() {
    let Some((t, data)) = range_setup("range-past") else { return };
    assert_partial(&get(&t.url("r.bin"), &[("range", "bytes=900-5000")]), &data, 900, LEN - 1);
}

#[test]
fn an_unsatisfiable_range_gives_416_with_the_length() {
    let Some((t, _)) = range_setup("range-416") else { return };
    for range in ["bytes=1000-", "bytes=5000-6000"] {
        let r = get(&t.url("r.bin"), &[("range", range)]);
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}: {}", r.describe());
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
        assert_eq!(r.error_code(), "range_not_satisfiable", "{range}");
    }
}

#[test]
fn a_range_in_the_query_form_works_like_in_the_path_form() {
    let Some((t, data)) = range_setup("range-query") else { return };
    assert_partial(&get(&t.query_url("r.bin"), &[("range", "bytes=10-19")]), &data, 10, 19);
}

#[test]
fn an_unparsable_range_header_is_ignored_and_the_whole_object_sent() {
    let Some((t, data)) = range_setup("range-junk") else { return };
    let r = get(&t.url("r.bin"), &[("range", "bytes=abc")]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body, Bytes::from(data));
}

/// Splits a `multipart/byteranges` body into `(content-range, data)` parts.
fn parse_byteranges(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap_or_else(|| panic!("no boundary in {content_type:?}"))
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(pos) = find(rest, delimiter.as_bytes()) {
        rest = &rest[pos + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").expect("part headers end with CRLF CRLF");
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let range = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-range").then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("a part without Content-Range: {head:?}"));
        let data_start = head_end + 4;
        let next = find(&rest[data_start..], format!("\r\n{delimiter}").as_bytes()).expect("part ends with a boundary");
        parts.push((range, rest[data_start..data_start + next].to_vec()));
        rest = &rest[data_start + next..];
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn several_ranges_give_a_multipart_byteranges_answer() {
    let Some((t, data)) = range_setup("multirange") else { return };
    let r = get(&t.url("r.bin"), &[("range", "bytes=0-9,500-519,-5")]);
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.describe());
    let ct = r.header("content-type").expect("Content-Type").to_owned();
    assert!(ct.starts_with("multipart/byteranges"), "Content-Type {ct:?}");
    let parts = parse_byteranges(&ct, &r.body);
    assert_eq!(parts.len(), 3, "parts: {:?}", parts.iter().map(|p| &p.0).collect::<Vec<_>>());
    assert_eq!(parts[0], ("bytes 0-9/1000".to_owned(), data[0..10].to_vec()));
    assert_eq!(parts[1], ("bytes 500-519/1000".to_owned(), data[500..520].to_vec()));
    assert_eq!(parts[2], ("bytes 995-999/1000".to_owned(), data[995..1000].to_vec()));
}

// ------------------------------------------------------------------ HEAD

/// The headers of a response, less those that may differ between two
/// responses for the same object (`date`, and the cache's verdict).
fn comparable_headers(r: &TestResponse) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "date" | "cache-status" | "age"))
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("<binary>").to_owned()))
        .collect();
    v.sort();
    v
}

#[test]
fn head_answers_with_exactly_the_headers_of_get_and_no_body() {
    let data = pattern_bytes(5000, 4);
    let Some(t) = setup("head", &[("h.webm", &data)]) else { return };
    let g = get(&t.url("h.webm"), &[]);
    let h = head(&t.url("h.webm"), &[]);
    assert_eq!(h.status, g.status, "HEAD {} GET {}", h.describe(), g.describe());
    assert_eq!(comparable_headers(&h), comparable_headers(&g));
    assert!(h.body.is_empty(), "HEAD carried a body");
    assert_eq!(h.header("content-length"), Some("5000"));
}

#[test]
fn head_with_a_range_answers_206_with_the_headers_of_the_ranged_get() {
    let data = pattern_bytes(5000, 5);
    let Some(t) = setup("head-range", &[("h.bin", &data)]) else { return };
    let g = get(&t.url("h.bin"), &[("range", "bytes=100-199")]);
    let h = head(&t.url("h.bin"), &[("range", "bytes=100-199")]);
    assert_eq!(g.status, StatusCode::PARTIAL_CONTENT, "{}", g.describe());
    assert_eq!(h.status, StatusCode::PARTIAL_CONTENT, "{}", h.describe());
    assert_eq!(comparable_headers(&h), comparable_headers(&g));
    assert!(h.body.is_empty());
}

#[test]
fn head_in_the_query_form_matches_get() {
    let Some(t) = setup("head-query", &[("q.png", b"png bytes")]) else { return };
    let g = get(&t.query_url("q.png"), &[]);
    let h = head(&t.query_url("q.png"), &[]);
    assert_eq!(h.status, StatusCode::OK, "{}", h.describe());
    assert_eq!(comparable_headers(&h), comparable_headers(&g));
}

// ------------------------------------------------------------------ conditionals

fn etag_of(t: &Setup, key: &str) -> String {
    let r = get(&t.url(key), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    r.header("etag").expect("an ETag").to_owned()
}

#[test]
fn if_none_match_with_the_current_etag_gives_304_even_though_the_storage_ignores_it() {
    let Some(t) = setup("inm", &[("c.jpg", b"conditional")]) else { return };
    let etag = etag_of(&t, "c.jpg");
    let r = get(&t.url("c.jpg"), &[("if-none-match", &etag)]);
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.describe());
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = get(&t.url("c.jpg"), &[("if-none-match", "\"some-other-etag\"")]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let r = get(&t.url("c.jpg"), &[("if-none-match", "*")]);
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match: * {}", r.describe());
}

#[test]
fn if_modified_since_the_last_modification_gives_304() {
    let Some(t) = setup("ims", &[("c.jpg", b"conditional")]) else { return };
    let r = get(&t.url("c.jpg"), &[]);
    let last_modified = r.header("last-modified").expect("Last-Modified").to_owned();
    let r = get(&t.url("c.jpg"), &[("if-modified-since", &last_modified)]);
    assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{}", r.describe());
    let r = get(&t.url("c.jpg"), &[("if-modified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
}

#[test]
fn if_match_with_another_etag_gives_412() {
    let Some(t) = setup("if-match", &[("c.jpg", b"conditional")]) else { return };
    let etag = etag_of(&t, "c.jpg");
    let r = get(&t.url("c.jpg"), &[("if-match", "\"not-the-etag\"")]);
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.describe());
    assert_eq!(r.error_code(), "precondition_failed");
    let r = get(&t.url("c.jpg"), &[("if-match", &etag)]);
    assert_eq!(r.status, StatusCode::OK, "If-Match with the right ETag: {}", r.describe());
}

#[test]
fn if_unmodified_since_before_the_last_modification_gives_412() {
    let Some(t) = setup("ius", &[("c.jpg", b"conditional")]) else { return };
    let r = get(&t.url("c.jpg"), &[("if-unmodified-since", "Sat, 01 Jan 2000 00:00:00 GMT")]);
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.describe());
    assert_eq!(r.error_code(), "precondition_failed");
}

#[test]
fn if_range_with_a_stale_etag_gives_the_whole_object() {
    let data = pattern_bytes(2000, 6);
    let Some(t) = setup("if-range", &[("v.mp4", &data)]) else { return };
    let etag = etag_of(&t, "v.mp4");
    let r = get(&t.url("v.mp4"), &[("range", "bytes=0-99"), ("if-range", "\"stale-etag\"")]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.len(), 2000);
    assert!(r.header("content-range").is_none());
    let r = get(&t.url("v.mp4"), &[("range", "bytes=0-99"), ("if-range", &etag)]);
    assert_partial(&r, &data, 0, 99);
}

// ------------------------------------------------------------------ keys

/// Keys with every kind of character the contract lists.
const SPECIAL_KEYS: &[&str] = &[
    "with space.txt",
    "plus+sign.txt",
    "equals=at@colon:comma,semi;.txt",
    "bang!star*quote'paren(x).txt",
    "brackets[1]dollar$amp&.txt",
    "percent%20not-an-escape.txt",
    "percent%.txt",
    "double//slash.txt",
    "unicode/é ü 漢字 🎬.txt",
    "trailing-slash/",
];

#[test]
fn keys_with_special_characters_round_trip_in_both_request_forms() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("special-keys");
    s3.create_bucket(&bucket);
    let mut stored = Vec::new();
    for (i, key) in SPECIAL_KEYS.iter().enumerate() {
        let body = format!("object {i} with key {key:?}");
        let resp = s3.request(http::Method::PUT, &bucket, Some(key), "", &[], Bytes::from(body.clone()));
        if !resp.status.is_success() {
            eprintln!("note: the S3 peer does not store the key {key:?} ({}); not tested here", resp.status);
            continue;
        }
        stored.push((*key, body));
    }
    let mg = MediaGate::start(&config(&[&s3.integration("s3", &[&bucket], "")]));
    let mut failures = Vec::new();
    for (key, body) in &stored {
        let urls =
            [("path", mg.path_url("s3", &bucket, key)), ("query", mg.query_url(&format!("s3://{bucket}/{key}")))];
        for (form, url) in urls {
            let r = get(&url, &[]);
            if r.status != StatusCode::OK || r.body != body.as_bytes() {
                failures.push(format!("{form} form, key {key:?}, {url}: {}", r.describe()));
            }
        }
    }
    assert!(failures.is_empty(), "keys that did not round-trip:\n{}", failures.join("\n"));
}

#[test]
fn a_plus_in_the_path_form_is_a_plus_not_a_space() {
    let Some(t) = setup("plus-path", &[("a+b.txt", b"plus"), ("a b.txt", b"space")]) else { return };
    let r = get(&t.mg.url(&format!("/s3/{}/a+b.txt", t.bucket)), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"plus");
}

#[test]
fn the_query_form_takes_the_decoded_key_literally() {
    // `%41` in the key is three characters, not an escape for `A`.
    let Some(t) = setup("query-literal", &[("%41.txt", b"literal"), ("A.txt", b"decoded")]) else { return };
    let r = get(&t.query_url("%41.txt"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"literal");
}

// ------------------------------------------------------------------ addressing and schemes

#[test]
fn virtual_host_addressing_reaches_the_bucket_by_host_name() {
    let Some(s3) = s3_peer() else { return };
    let Some(domain) = s3.vhost_domain.clone() else {
        eprintln!("skipped: MEDIAGATE_TEST_S3_VHOST_DOMAIN is empty: the S3 peer has no virtual-host style");
        return;
    };
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().expect("port in MEDIAGATE_TEST_S3_VHOST_DOMAIN")),
        None => (domain.clone(), s3.port),
    };
    let bucket = unique_bucket("vhost");
    let data = pattern_bytes(4096, 7);
    s3.seed(&bucket, &[("dir/with space.bin", &data)]);
    let integration =
        s3.integration_at("vhost", &host, port, &[&bucket], &s3.secret_key, "addressing = \"virtual-host\"");
    let mg = MediaGate::start(&config(&[&integration]));
    let r = get(&mg.path_url("s3", &bucket, "dir/with space.bin"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body, Bytes::from(data.clone()));
    let r = get(&mg.path_url("s3", &bucket, "dir/with space.bin"), &[("range", "bytes=10-20")]);
    assert_partial(&r, &data, 10, 20);
}

#[test]
fn gs_locators_are_served_by_an_s3_integration_with_locator_scheme_gs() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("gs");
    s3.seed(&bucket, &[("img/pic.png", b"a png")]);
    let mg = MediaGate::start(&config(&[&s3.integration("gcs", &[&bucket], "locator_scheme = \"gs\"")]));
    let r = get(&mg.path_url("gs", &bucket, "img/pic.png"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"a png");
    assert_eq!(r.header("content-type"), Some("image/png"));
    let r = get(&mg.query_url(&format!("gs://{bucket}/img/pic.png")), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    // The gs integration does not serve s3:// locators of the same bucket.
    let r = get(&mg.path_url("s3", &bucket, "img/pic.png"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error_code(), "no_integration");
}

// ------------------------------------------------------------------ which integration

#[test]
fn a_bucket_outside_every_scope_is_404_no_integration() {
    let Some(s3) = s3_peer() else { return };
    let inside = unique_bucket("scope-in");
    let outside = unique_bucket("scope-out");
    s3.seed(&inside, &[("k.txt", b"in")]);
    s3.seed(&outside, &[("k.txt", b"out")]);
    let mg = MediaGate::start(&config(&[&s3.integration("scoped", &[&inside], "")]));
    assert_eq!(get(&mg.path_url("s3", &inside, "k.txt"), &[]).status, StatusCode::OK);
    let r = get(&mg.path_url("s3", &outside, "k.txt"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error_code(), "no_integration");
}

#[test]
fn an_integration_without_buckets_serves_any_bucket() {
    let Some(s3) = s3_peer() else { return };
    let one = unique_bucket("default-one");
    let two = unique_bucket("default-two");
    s3.seed(&one, &[("k.txt", b"one")]);
    s3.seed(&two, &[("k.txt", b"two")]);
    let mg = MediaGate::start(&config(&[&s3.integration("everything", &[], "")]));
    let r = get(&mg.path_url("s3", &one, "k.txt"), &[]);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"one"[..]), "{}", r.describe());
    let r = get(&mg.query_url(&format!("s3://{two}/k.txt")), &[]);
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"two"[..]), "{}", r.describe());
}

#[test]
fn a_scoped_integration_wins_over_the_default_one_for_its_bucket() {
    let Some(s3) = s3_peer() else { return };
    let scoped = unique_bucket("prec-scoped");
    let other = unique_bucket("prec-other");
    s3.seed(&scoped, &[("k.txt", b"scoped")]);
    s3.seed(&other, &[("k.txt", b"other")]);
    // The default integration has a wrong secret: only the scoped one can read.
    let good = s3.integration("scoped-good", &[&scoped], "");
    let bad = s3.integration_at("default-bad", &s3.host, s3.port, &[], SECRET_LIKE, "");
    let mg = MediaGate::start(&config(&[&bad, &good]));
    let r = get(&mg.path_url("s3", &scoped, "k.txt"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let r = get(&mg.path_url("s3", &other, "k.txt"), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");
    assert!(r.error_message().contains("default-bad"), "{}", r.error_message());
}

// ------------------------------------------------------------------ errors

#[test]
fn a_missing_object_is_404_not_found() {
    let Some(t) = setup("missing", &[("present.txt", b"here")]) else { return };
    for url in [t.url("absent.txt"), t.query_url("absent.txt")] {
        let r = get(&url, &[]);
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{url}: {}", r.describe());
        assert_eq!(r.error_code(), "not_found");
        let h = head(&url, &[]);
        assert_eq!(h.status, StatusCode::NOT_FOUND, "HEAD {url}: {}", h.describe());
    }
}

#[test]
fn a_missing_bucket_under_the_default_integration_is_404_not_found() {
    let Some(s3) = s3_peer() else { return };
    let mg = MediaGate::start(&config(&[&s3.integration("everything", &[], "")]));
    let r = get(&mg.path_url("s3", &unique_bucket("never-created"), "k.txt"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.describe());
    assert_eq!(r.error_code(), "not_found");
}

#[test]
fn a_wrong_secret_is_502_upstream_denied_naming_the_integration_but_never_the_secret() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("denied");
    s3.seed(&bucket, &[("k.txt", b"secret stuff")]);
    let integration = s3.integration_at("wrong-creds", &s3.host, s3.port, &[&bucket], SECRET_LIKE, "");
    let mg = MediaGate::start(&config(&[&integration]));
    for url in [mg.path_url("s3", &bucket, "k.txt"), mg.query_url(&format!("s3://{bucket}/k.txt"))] {
        let r = get(&url, &[]);
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
        assert_eq!(r.error_code(), "upstream_denied");
        assert!(r.error_message().contains("wrong-creds"), "message does not name the integration: {}", r.describe());
        assert!(!r.text().contains(SECRET_LIKE), "the secret leaked into the response");
        assert!(!format!("{:?}", r.headers).contains(SECRET_LIKE), "the secret leaked into a header");
    }
    // The access log is flushed in the background: wait for both requests' lines.
    let logged = common::wait_until(std::time::Duration::from_secs(10), || {
        mg.logs().iter().filter(|l| l["message"] == "request").count() >= 2
    });
    assert!(logged, "the two requests never reached the access log:\n{}", mg.stderr_text());
    assert!(!mg.stderr_text().contains(SECRET_LIKE), "the secret leaked into the logs");
}

// ------------------------------------------------------------------ mediagate check

fn output_text(out: &std::process::Output) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_passes_with_good_credentials_and_prints_one_line_per_integration() {
    let Some(s3) = s3_peer() else { return };
    let one = unique_bucket("check-one");
    let two = unique_bucket("check-two");
    s3.seed(&one, &[("k.txt", b"1")]);
    s3.seed(&two, &[("k.txt", b"2")]);
    let cfg = config(&[&s3.integration("first", &[&one], ""), &s3.integration("second", &[&two], "")]);
    let out = MediaGate::check(&cfg);
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "expected one line per integration: {}", output_text(&out));
    assert!(lines.iter().any(|l| l.contains("first")), "{}", output_text(&out));
    assert!(lines.iter().any(|l| l.contains("second")), "{}", output_text(&out));
    assert!(lines.iter().all(|l| l.ends_with("[credentials: static]")), "the source, last: {}", output_text(&out));
}

#[test]
fn check_fails_with_a_wrong_secret_and_names_the_integration_without_the_secret() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("check-bad");
    s3.seed(&bucket, &[("k.txt", b"1")]);
    let good_bucket = unique_bucket("check-good");
    s3.seed(&good_bucket, &[("k.txt", b"1")]);
    let cfg = config(&[
        &s3.integration("fine", &[&good_bucket], ""),
        &s3.integration_at("broken", &s3.host, s3.port, &[&bucket], SECRET_LIKE, ""),
    ]);
    let out = MediaGate::check(&cfg);
    assert!(!out.status.success(), "check passed with a wrong secret: {}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 2, "expected one line per integration: {}", output_text(&out));
    assert!(lines.iter().any(|l| l.contains("broken")), "{}", output_text(&out));
    assert!(!output_text(&out).contains(SECRET_LIKE), "the secret leaked: {}", output_text(&out));
}
