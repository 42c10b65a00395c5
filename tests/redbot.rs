//! REDbot, the HTTP linter, against a running mediagate: no warning on a
//! cache miss, a hit, a signed URL, and on the range and `304` requests
//! REDbot makes of each. Needs `MEDIAGATE_TEST_REDBOT` (the `redbot`
//! command, installed by `scripts/test.sh`); without it the test is
//! skipped, or a failure under `CI=true`.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{MediaGate, config, local_integration};

/// A `.png` of 100 KB: the PNG signature (what REDbot sniffs to compare
/// with `Content-Type`) and then pattern bytes; large enough for REDbot to
/// try a range request.
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(common::pattern_bytes(100_000, 7));
    bytes
}

/// What one REDbot run said about a URL.
struct Report {
    /// The response headers of REDbot's main request.
    headers: Vec<(String, String)>,
    /// `(level, note id, summary)` of every note.
    notes: Vec<(String, String, String)>,
}

impl Report {
    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }

    fn has(&self, id: &str) -> bool {
        self.notes.iter().any(|(_, n, _)| n == id)
    }

    /// Asserts no `WARN` or `BAD` note, and that REDbot's range and
    /// conditional requests were made and answered correctly.
    fn assert_clean(&self, what: &str) {
        let problems: Vec<_> = self.notes.iter().filter(|(level, _, _)| level == "WARN" || level == "BAD").collect();
        assert!(problems.is_empty(), "{what}: REDbot warns: {problems:?}");
        assert!(self.has("RANGE_CORRECT"), "{what}: no correct range answer: {:?}", self.notes);
        assert!(self.has("INM_304") && self.has("IMS_304"), "{what}: no 304 answers: {:?}", self.notes);
    }
}

/// Runs `redbot -o har <url>` (its exit code is always 0: the HAR says it all).
fn redbot(bin: &str, url: &str) -> Report {
    let out = Command::new(bin).args(["-o", "har", url]).output().unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    let har: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "REDbot printed no HAR ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let entry = &har["log"]["entries"][0];
    let headers = entry["response"]["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("no response in the HAR: {har}"))
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or_default().to_owned(),
                h["value"].as_str().unwrap_or_default().trim().to_owned(),
            )
        })
        .collect();
    let notes = entry["_red_messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no notes in the HAR: {har}"))
        .iter()
        .map(|m| {
            let field = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
            (field("level"), field("note_id"), field("summary"))
        })
        .collect();
    Report { headers, notes }
}

fn root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("mediagate-redbot-").tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("b")).expect("bucket");
    std::fs::write(dir.path().join("b/pic.png"), png()).expect("pic.png");
    dir
}

#[test]
fn redbot_finds_nothing_to_warn_about_on_a_miss_a_hit_a_range_and_a_304() {
    let Some(bin) = common::required_env("MEDIAGATE_TEST_REDBOT", "REDbot") else { return };
    let root = root();
    let mg = MediaGate::start(&config(&[&local_integration("files", root.path(), &["b"])]));
    let url = mg.url("/local/b/pic.png");
    let miss = redbot(&bin, &url);
    assert!(miss.header("cache-status").contains("fwd=miss"), "not a miss: {:?}", miss.headers);
    assert_eq!(miss.header("cache-control"), "max-age=300");
    miss.assert_clean("a miss");
    let hit = redbot(&bin, &url);
    assert!(hit.header("cache-status").contains("hit"), "not a hit: {:?}", hit.headers);
    hit.assert_clean("a hit");
}

#[test]
fn redbot_finds_nothing_to_warn_about_on_a_signed_url_with_a_lowered_max_age() {
    let Some(bin) = common::required_env("MEDIAGATE_TEST_REDBOT", "REDbot") else { return };
    let root = root();
    let secret = "redbot-url-signing-secret-0123";
    let auth = format!("[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"{secret}\"\n");
    let mg = MediaGate::start(&config(&[&auth, &local_integration("files", root.path(), &["b"])]));
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() + 120;
    let sig = mediagate::auth::sign(secret.as_bytes(), "/local/b/pic.png", exp);
    let report = redbot(&bin, &mg.url(&format!("/local/b/pic.png?exp={exp}&kid=k1&sig={sig}")));
    let max_age: u64 = report
        .header("cache-control")
        .strip_prefix("max-age=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a lone max-age: {:?}", report.headers));
    assert!(max_age <= 120, "max-age {max_age} outlives the URL");
    report.assert_clean("a signed URL");
}
