//! Azure Blob through the mediagate binary, against Azurite (which checks
//! SharedKey signatures): both request forms, ranges, preconditions, keys
//! with special characters, scoping, wrong credentials and `mediagate check`.

mod common;

use common::{AzurePeer, MediaGate, azure_peer, config, encode_component, encode_key, get, head, pattern_bytes};
use http::StatusCode;

const SPECIAL_KEYS: &[&str] = &[
    "a b.txt",
    "plus+equals=at@colon:comma,semi;bang!star*quote'paren()brackets[]dollar$amp&pct%.bin",
    "dir//double/slash.bin",
    "unicode/ünïcödé ✓ 日本.bin",
    "trailing/slash/",
];

/// A container seeded with `files`, and mediagate serving it as `az`.
fn setup(tag: &str, files: &[(&str, &[u8])], extra: &str) -> Option<(AzurePeer, String, MediaGate)> {
    let peer = azure_peer()?;
    let container = common::unique_bucket(tag);
    peer.create_container(&container);
    for (key, data) in files {
        peer.put_blob(&container, key, data.to_vec());
    }
    let mg = MediaGate::start(&config(&[&peer.integration("azure", &container, extra)]));
    Some((peer, container, mg))
}

fn path_url(mg: &MediaGate, peer: &AzurePeer, container: &str, key: &str) -> String {
    mg.url(&format!("/az/{}/{container}/{}", peer.account, encode_key(key)))
}

#[test]
fn a_blob_is_served_whole_in_both_request_forms() {
    let data = pattern_bytes(300_000, 7);
    let Some((peer, container, mg)) = setup("az-whole", &[("v/clip.mp4", &data)], "") else { return };
    let r = get(&path_url(&mg, &peer, &container, "v/clip.mp4"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..]);
    assert_eq!(r.header("content-type"), Some("video/mp4"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    let locator = format!("az://{}/{container}/v/clip.mp4", peer.account);
    let q = get(&mg.url(&format!("/media?locator={}", encode_component(&locator))), &[]);
    assert_eq!(q.status, StatusCode::OK, "{}", q.describe());
    assert_eq!(q.body, r.body);
}

#[test]
fn every_range_form_gives_the_right_bytes_including_suffixes() {
    let data = pattern_bytes(1000, 8);
    let Some((peer, container, mg)) = setup("az-ranges", &[("r.bin", &data)], "") else { return };
    let url = path_url(&mg, &peer, &container, "r.bin");
    let table = [("bytes=0-99", 0, 99), ("bytes=900-", 900, 999), ("bytes=-10", 990, 999), ("bytes=-5000", 0, 999)];
    for (range, start, end) in table {
        let r = get(&url, &[("range", range)]);
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{range}: {}", r.describe());
        assert_eq!(r.header("content-range"), Some(format!("bytes {start}-{end}/1000").as_str()), "{range}");
        assert_eq!(r.body.as_ref(), &data[start..=end], "{range}");
    }
    let r = get(&url, &[("range", "bytes=1000-")]);
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{}", r.describe());
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
}

#[test]
fn head_and_preconditions_follow_the_blob_etag() {
    let data = pattern_bytes(2000, 9);
    let Some((peer, container, mg)) = setup("az-cond", &[("c.jpg", &data)], "") else { return };
    let url = path_url(&mg, &peer, &container, "c.jpg");
    let h = head(&url, &[]);
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.header("content-length"), Some("2000"));
    assert!(h.body.is_empty());
    let etag = h.header("etag").expect("etag").to_owned();
    assert_eq!(get(&url, &[("if-none-match", &etag)]).status, StatusCode::NOT_MODIFIED);
    assert_eq!(get(&url, &[("if-match", "\"other\"")]).status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(get(&url, &[("if-match", &etag)]).status, StatusCode::OK);
}

#[test]
fn keys_with_special_characters_round_trip_in_both_forms() {
    let files: Vec<(&str, Vec<u8>)> =
        SPECIAL_KEYS.iter().enumerate().map(|(i, k)| (*k, pattern_bytes(100 + i, i as u64))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, d)| (*k, d.as_slice())).collect();
    let Some((peer, container, mg)) = setup("az-keys", &refs, "") else { return };
    for (key, data) in &files {
        let r = get(&path_url(&mg, &peer, &container, key), &[]);
        assert_eq!(r.status, StatusCode::OK, "{key:?}: {}", r.describe());
        assert_eq!(r.body.as_ref(), &data[..], "{key:?}");
        let locator = format!("az://{}/{container}/{key}", peer.account);
        let q = get(&mg.url(&format!("/media?locator={}", encode_component(&locator))), &[]);
        assert_eq!(q.status, StatusCode::OK, "{key:?} (query form): {}", q.describe());
        assert_eq!(q.body.as_ref(), &data[..], "{key:?} (query form)");
    }
}

#[test]
fn a_missing_blob_is_not_found_and_another_container_has_no_integration() {
    let Some((peer, container, mg)) = setup("az-missing", &[], "") else { return };
    let r = get(&path_url(&mg, &peer, &container, "nope.bin"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    let r = get(&path_url(&mg, &peer, "othercontainer", "a.bin"), &[]);
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "no_integration");
}

#[test]
fn a_wrong_account_key_is_upstream_denied_naming_the_integration_and_never_the_key() {
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let extra = format!("account_key = \"{wrong}\"");
    let Some((peer, container, mg)) = setup("az-denied", &[("a.bin", b"abc")], &extra) else { return };
    let r = get(&path_url(&mg, &peer, &container, "a.bin"), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");
    assert!(r.error_message().contains("\"azure\""), "{}", r.error_message());
    assert!(!r.text().contains(wrong) && !r.text().contains(&peer.key));
}

#[test]
fn check_passes_with_the_right_key_and_fails_with_a_wrong_one() {
    let Some(peer) = azure_peer() else { return };
    let container = common::unique_bucket("az-check");
    peer.create_container(&container);
    let good = MediaGate::check(&config(&[&peer.integration("good", &container, "")]));
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stdout));
    let wrong = "account_key = \"d3Jvbmcta2V5\"";
    let bad = MediaGate::check(&config(&[&peer.integration("bad", &container, wrong)]));
    assert!(!bad.status.success());
    let out = String::from_utf8_lossy(&bad.stdout);
    // Azurite answers a wrong key with AuthorizationFailure; Azure with AuthenticationFailed.
    let denied = ["AuthorizationFailure", "AuthenticationFailed"];
    assert!(denied.iter().any(|code| out.contains(&format!("FAIL bad (azure-blob): {code}: "))), "{out}");
}
