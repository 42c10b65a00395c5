//! Proof in a real browser (CONTRACT.md section 5): headless Chromium, driven
//! by playwright-core (`tests/browser/drive.mjs`), opens a page served from
//! another origin (`tests/browser/player.html` on a tiny server of this test)
//! that shows an image and plays and seeks videos through mediagate; and
//! ffprobe seeks into the sample clips over HTTP.
//!
//! Needs `MEDIAGATE_TEST_CHROMIUM` (the browser), `MEDIAGATE_TEST_PLAYWRIGHT`
//! (the playwright-core package directory), `node`, and `MEDIAGATE_TEST_FFPROBE`
//! for the ffprobe tests; `scripts/test.sh` installs and sets them. Missing:
//! skipped, or a failure under `CI=true`.
//!
//! The demo page's screenshot is written to `target/screenshots/demo.png`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::browser::{Browser, browser, env_path, need, on_path, root};
use common::{MediaGate, config, encode_component, toml_str};
use serde_json::{Value, json};

const KEY_ID: &str = "k1";
const SECRET: &str = "browser-test-secret-0123456789";

fn ffprobe() -> Option<String> {
    need(env_path("MEDIAGATE_TEST_FFPROBE").or_else(|| on_path("ffprobe")), "MEDIAGATE_TEST_FFPROBE (ffprobe)")
}

/// The demo integration over `examples/media` (bucket `demo`).
fn demo_integration() -> String {
    common::local_integration("demo", &root().join("examples/media"), &["demo"])
}

fn cors(origins: &[&str]) -> String {
    let list: Vec<String> = origins.iter().map(|o| toml_str(o)).collect();
    format!("[cors]\nallowed_origins = [{}]\nmax_age = \"10m\"\n", list.join(", "))
}

fn signed_auth() -> String {
    format!("[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"{KEY_ID}\"\nsecret = \"{SECRET}\"\n")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signed path-form URL for `local://demo/<key>` expiring at `exp`.
fn signed(mg: &MediaGate, key: &str, exp: u64) -> String {
    let path = format!("/local/demo/{}", common::encode_key(key));
    let sig = mediagate::auth::sign(SECRET.as_bytes(), &path, exp);
    mg.url(&format!("{path}?exp={exp}&kid={KEY_ID}&sig={sig}"))
}

// ------------------------------------------------------------------ the other origin

/// A tiny HTTP/1.1 server on `127.0.0.1:0` that answers every GET with
/// `tests/browser/player.html`: the web app on another origin.
struct Site {
    origin: String,
    stop: Arc<AtomicBool>,
}

impl Site {
    fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the test site");
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let page = std::fs::read(root().join("tests/browser/player.html")).expect("tests/browser/player.html");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let page = page.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let is_page = head.starts_with(b"GET /player.html");
                    let (status, body): (&str, &[u8]) =
                        if is_page { ("200 OK", &page) } else { ("404 Not Found", b"") };
                    let header = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                         cache-control: no-store\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(header.as_bytes());
                    let _ = conn.write_all(body);
                });
            }
        });
        Site { origin, stop }
    }

    /// The page URL with `params` as its query.
    fn page(&self, params: &[(&str, &str)]) -> String {
        let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
        format!("{}/player.html?{}", self.origin, q.join("&"))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(self.origin.trim_start_matches("http://"));
    }
}

// ------------------------------------------------------------------ driving chromium

/// Runs `tests/browser/drive.mjs` with `job`; returns its JSON report.
fn drive(b: &Browser, job: Value) -> Value {
    b.run("drive.mjs", &job, Duration::from_secs(120))
}

/// The requests the browser made to mediagate for `key`, as `(range, status, protocol)`.
fn browser_requests<'a>(report: &'a Value, key: &str) -> Vec<&'a Value> {
    let needle = format!("/local/demo/{key}");
    report["requests"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["url"].as_str().is_some_and(|u| u.contains(&needle))).collect())
        .unwrap_or_default()
}

/// mediagate's access-log lines for `local://demo/<key>`.
fn access_lines(mg: &MediaGate, key: &str) -> Vec<Value> {
    let locator = format!("local://demo/{key}");
    mg.logs()
        .into_iter()
        .filter(|l| l["target"] == "mediagate::access" && l["locator"].as_str() == Some(locator.as_str()))
        .collect()
}

/// Waits (a little) for the access lines, which are written when each body ends.
fn settled_access_lines(mg: &MediaGate, key: &str, at_least: usize) -> Vec<Value> {
    common::wait_until(Duration::from_secs(5), || access_lines(mg, key).len() >= at_least);
    access_lines(mg, key)
}

fn print_requests(title: &str, report: &Value, mg: &MediaGate, keys: &[&str]) {
    eprintln!("--- {title}");
    for key in keys {
        for r in browser_requests(report, key) {
            eprintln!(
                "browser: {} {key} range={} -> {} {} {}",
                r["method"].as_str().unwrap_or("?"),
                r["range"].as_str().unwrap_or("-"),
                r["status"],
                r["protocol"].as_str().unwrap_or(""),
                r["failed"].as_str().unwrap_or("")
            );
        }
        for l in access_lines(mg, key) {
            eprintln!(
                "mediagate log: {} {} range={:?} status={} bytes={} outcome={}",
                l["method"], l["locator"], l["range"], l["status"], l["bytes"], l["outcome"]
            );
        }
    }
}

/// Checks one video's report: it played, `seeked` fired for every seek
/// (the last near the end), the frame advanced after each, and the frames
/// differ (the canvas could read them, so CORS let the page see the pixels).
fn assert_played_and_seeked(v: &Value) {
    assert_eq!(v["ok"], true, "the video did not play and seek: {v:#}");
    let duration = v["duration"].as_f64().expect("duration");
    assert!((9.0..11.0).contains(&duration), "{v:#}");
    assert_eq!(v["width"], 640, "{v:#}");
    let seeks = v["seeks"].as_array().expect("seeks");
    assert_eq!(seeks.len(), 4, "{v:#}");
    let seeked = v["events"].as_array().unwrap().iter().filter(|e| *e == "seeked").count();
    assert!(seeked >= 4, "seeked fired {seeked} times: {v:#}");
    for s in seeks {
        let target = s["target"].as_f64().unwrap();
        let frame = s["frame"].as_f64().unwrap();
        assert!((frame - target).abs() < 1.0, "the frame shown after seeking to {target} is at {frame}: {s}");
        assert_eq!(s["advanced"], true, "the frame did not advance after seeking to {target}: {s}");
    }
    assert!(seeks.last().unwrap()["target"].as_f64().unwrap() > duration * 0.95, "{v:#}");
    let mut hashes: Vec<u64> = seeks.iter().map(|s| s["pixels"].as_u64().unwrap()).collect();
    hashes.dedup();
    assert!(hashes.len() >= 3, "the frames at different points look the same: {v:#}");
}

// ------------------------------------------------------------------ tests

#[test]
fn a_page_on_another_origin_shows_an_image_and_plays_and_seeks_videos_through_mediagate() {
    let Some(b) = browser() else { return };
    let site = Site::start();
    let mg = MediaGate::start(&config(&[&cors(&[&site.origin]), &demo_integration()]));
    let page = site.page(&[
        ("img", &mg.url("/local/demo/testsrc.png")),
        ("video", &mg.url("/local/demo/clip.mp4")),
        ("video", &mg.url("/media?locator=local%3A%2F%2Fdemo%2Fclip-tail.mp4")),
        ("fetch", &mg.url("/local/demo/missing.mp4")),
    ]);
    // At 400 KiB/s the 1.1 MB clip is not all buffered when the page seeks.
    let report = drive(&b, json!({ "url": page, "watch": mg.base_url, "waitFor": "result", "throttleKBps": 400 }));
    let result = &report["result"];
    print_requests("unsigned, allowed origin", &report, &mg, &["clip.mp4", "clip-tail.mp4"]);

    assert_eq!(result["image"]["loaded"], true, "{result:#}");
    assert_eq!(result["image"]["width"], 640);
    for v in result["videos"].as_array().unwrap() {
        assert_played_and_seeked(v);
    }
    // The page can read an error's JSON through CORS.
    let missing = &result["fetches"][0];
    assert_eq!(missing["status"], 404, "{missing}");
    assert_eq!(missing["json"]["error"]["code"], "not_found", "{missing}");

    // Chromium asked for byte ranges and got 206s, and mediagate's log shows them.
    let lines = settled_access_lines(&mg, "clip.mp4", 2);
    let ranges: Vec<&str> = lines.iter().filter(|l| l["status"] == 206).filter_map(|l| l["range"].as_str()).collect();
    assert!(ranges.iter().any(|r| r.starts_with("bytes=0-")), "no Range request for clip.mp4: {lines:#?}");
    assert!(ranges.iter().any(|r| !r.starts_with("bytes=0-")), "no seek-driven Range request: {lines:#?}");
    // The index of clip-tail.mp4 is at the end: the player must ask for a range past the start.
    let tail = settled_access_lines(&mg, "clip-tail.mp4", 2);
    let tail_ranges: Vec<&str> =
        tail.iter().filter(|l| l["status"] == 206).filter_map(|l| l["range"].as_str()).collect();
    assert!(tail_ranges.len() >= 2, "{tail:#?}");
    assert!(tail_ranges.iter().any(|r| !r.starts_with("bytes=0-")), "no tail Range request: {tail_ranges:?}");
}

#[test]
fn signed_urls_play_in_the_browser_and_an_expired_one_fails_with_a_readable_403() {
    let Some(b) = browser() else { return };
    let site = Site::start();
    let mg = MediaGate::start(&config(&[&signed_auth(), &cors(&[&site.origin]), &demo_integration()]));
    let exp = now() + 600;
    let expired = now() - 3600;
    let page = site.page(&[
        ("img", &signed(&mg, "gradient.jpg", exp)),
        ("video", &signed(&mg, "clip.mp4", exp)),
        ("video", &signed(&mg, "clip-tail.mp4", expired)),
        ("fetch", &signed(&mg, "clip.mp4", expired)),
        ("fetch", &mg.url("/local/demo/clip.mp4")),
    ]);
    let report = drive(&b, json!({ "url": page, "watch": mg.base_url, "waitFor": "result" }));
    let result = &report["result"];
    print_requests("signed URLs", &report, &mg, &["clip.mp4", "clip-tail.mp4"]);

    assert_eq!(result["image"]["loaded"], true, "{result:#}");
    assert_played_and_seeked(&result["videos"][0]);
    let dead = &result["videos"][1];
    assert_eq!(dead["ok"], false, "an expired URL played: {dead:#}");
    assert!(dead["events"].as_array().unwrap().iter().any(|e| e == "error"), "{dead:#}");

    let expired_fetch = &result["fetches"][0];
    assert_eq!(expired_fetch["status"], 403, "{expired_fetch}");
    assert_eq!(expired_fetch["json"]["error"]["code"], "url_expired", "{expired_fetch}");
    let unsigned = &result["fetches"][1];
    assert_eq!(unsigned["status"], 403, "{unsigned}");
    assert_eq!(unsigned["json"]["error"]["code"], "bad_signature", "{unsigned}");

    let lines = settled_access_lines(&mg, "clip.mp4", 2);
    assert!(lines.iter().any(|l| l["status"] == 206), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l["status"] == 403 && l["error"].as_str().is_some_and(|e| e.starts_with("url_expired"))),
        "{lines:#?}"
    );
}

#[test]
fn a_disallowed_origin_cannot_read_media_or_errors() {
    let Some(b) = browser() else { return };
    let site = Site::start();
    let mg = MediaGate::start(&config(&[&cors(&["https://app.example.com"]), &demo_integration()]));
    let page = site.page(&[
        ("img", &mg.url("/local/demo/testsrc.png")),
        ("video", &mg.url("/local/demo/clip.mp4")),
        ("fetch", &mg.url("/local/demo/clip.mp4")),
        ("fetch", &mg.url("/local/demo/missing.mp4")),
    ]);
    let report = drive(&b, json!({ "url": page, "watch": mg.base_url, "waitFor": "result" }));
    let result = &report["result"];
    print_requests("disallowed origin", &report, &mg, &["testsrc.png", "clip.mp4"]);

    assert_eq!(result["image"]["loaded"], false, "a CORS image loaded for a disallowed origin: {result:#}");
    assert_eq!(result["videos"][0]["ok"], false, "{result:#}");
    for f in result["fetches"].as_array().unwrap() {
        assert!(f["error"].is_string() && f["status"].is_null(), "the page could read {f}");
    }
    let failed = browser_requests(&report, "clip.mp4");
    assert!(failed.iter().any(|r| r["failed"].as_str().is_some_and(|f| f.contains("CORS"))), "{failed:#?}");
    // mediagate answered; the browser is what kept the bytes from the page.
    let lines = settled_access_lines(&mg, "clip.mp4", 1);
    assert!(lines.iter().any(|l| l["status"] == 200 || l["status"] == 206), "{lines:#?}");
}

#[test]
fn the_demo_page_shows_the_gallery_through_mediagate() {
    let Some(b) = browser() else { return };
    let mg = MediaGate::start(&config(&[&demo_integration()]));
    let shots = root().join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("creating target/screenshots");
    let shot = shots.join("demo.png");
    let _ = std::fs::remove_file(&shot);
    let report = drive(
        &b,
        json!({ "url": mg.url("/"), "watch": mg.base_url, "waitFor": "demo", "screenshot": shot.to_string_lossy() }),
    );
    let result = &report["result"];
    let images = result["images"].as_array().unwrap();
    let videos = result["videos"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{result:#}");
    assert!(images.iter().all(|i| i["width"] == 640), "{result:#}");
    assert_eq!(videos.len(), 2, "{result:#}");
    assert!(videos.iter().all(|v| v["width"] == 640 && v["duration"].as_f64().is_some_and(|d| d > 9.0)), "{result:#}");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{}", shot.display());
    eprintln!("demo page screenshot: {}", shot.display());
}

#[test]
fn over_https_with_http2_the_page_still_plays() {
    let Some(b) = browser() else { return };
    let Some(dir) = common_tls::test_certificate() else { return };
    let site = Site::start();
    let tls = format!(
        "tls_cert = {}\ntls_key = {}\n",
        toml_str(&dir.path().join("cert.pem").to_string_lossy()),
        toml_str(&dir.path().join("key.pem").to_string_lossy())
    );
    let mg = MediaGate::start(&config(&[&tls, &cors(&[&site.origin]), &demo_integration()]));
    assert!(mg.base_url.starts_with("https://"), "{}", mg.base_url);
    let page = site.page(&[("img", &mg.url("/local/demo/testsrc.png")), ("video", &mg.url("/local/demo/clip.mp4"))]);
    let report = drive(&b, json!({ "url": page, "watch": mg.base_url, "waitFor": "result", "ignoreCertErrors": true }));
    let result = &report["result"];
    print_requests("https + h2", &report, &mg, &["clip.mp4"]);
    assert_eq!(result["image"]["loaded"], true, "{result:#}");
    assert_played_and_seeked(&result["videos"][0]);
    let requests = browser_requests(&report, "clip.mp4");
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r["protocol"] == "h2"), "not HTTP/2: {requests:#?}");
}

/// ffprobe reads packets from `seconds` on through mediagate (ffmpeg's HTTP
/// client seeks with `Range`); returns the packet times.
fn ffprobe_packets(ffprobe: &str, url: &str, seconds: u32) -> Vec<f64> {
    let out = Command::new(ffprobe)
        .args(["-v", "error", "-select_streams", "v", "-read_intervals", &format!("{seconds}%+#5")])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0", url])
        .output()
        .expect("running ffprobe");
    assert!(out.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().trim_end_matches(',').parse().ok()).collect()
}

#[test]
fn ffprobe_seeks_into_a_faststart_clip_and_a_tail_indexed_clip() {
    let Some(ffprobe) = ffprobe() else { return };
    let mg = MediaGate::start(&config(&[&demo_integration()]));
    for key in ["clip.mp4", "clip-tail.mp4"] {
        let packets = ffprobe_packets(&ffprobe, &mg.url(&format!("/local/demo/{key}")), 7);
        assert!(!packets.is_empty(), "{key}: no packets");
        assert!(
            packets[0] >= 6.0 && packets[0] < 8.5,
            "{key}: the first packet after seeking to 7 s is at {packets:?}"
        );
        let lines = settled_access_lines(&mg, key, 2);
        let ranges: Vec<&str> =
            lines.iter().filter(|l| l["status"] == 206).filter_map(|l| l["range"].as_str()).collect();
        eprintln!("ffprobe {key}: packets {packets:?}; Range requests {ranges:?}");
        // The seek is a Range request that starts well into the file.
        let starts: Vec<u64> =
            ranges.iter().filter_map(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok()).collect();
        assert!(starts.iter().any(|&s| s > 500_000), "{key}: no Range request into the second half: {ranges:?}");
    }
}

/// A certificate for 127.0.0.1 made with the openssl CLI.
mod common_tls {
    use super::*;

    pub fn test_certificate() -> Option<tempfile::TempDir> {
        let openssl = need(on_path_version("openssl"), "openssl")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=mediagate test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("running openssl");
        assert!(status.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&status.stderr));
        Some(dir)
    }

    fn on_path_version(tool: &str) -> Option<String> {
        let ok = Command::new(tool).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        ok.is_ok_and(|s| s.success()).then(|| tool.to_owned())
    }
}
