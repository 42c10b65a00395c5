//! The shared harness of mediagate's black-box integration tests.
//!
//! Every `tests/*.rs` file does `mod common;` and drives the real `mediagate`
//! binary over HTTP, against real storage peers that `scripts/test.sh` starts
//! (s3s-fs for S3, Azurite for Azure Blob) and describes through
//! `MEDIAGATE_TEST_*` environment variables:
//!
//! - [`s3_peer`] / [`azure_peer`]: the peers, with seeding over their real
//!   APIs (SigV4 / SharedKey signed);
//! - [`MediaGate`]: one mediagate process per test, on `127.0.0.1:0`;
//! - [`get`], [`head`], [`get_streaming`], [`get_partial`]: a small HTTP client;
//! - [`relay`]: a fault-injecting TCP relay to put between mediagate and a peer;
//! - [`admin`]: a client of the admin API, and the `[admin]` table.
//!
//! The API is synchronous: tests are plain `#[test]` functions; the async
//! parts run on one shared tokio runtime ([`runtime`]).
//!
//! Without a peer, a test prints `skipped: ...` and returns, except under
//! `CI=true`, where a missing peer is a failure.
#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod admin;
pub mod browser;
pub mod lb;
pub mod postgres;
pub mod relay;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

pub use mediagate::locator::encode_key;

/// How long [`MediaGate::start`] waits for the `mediagate listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`get`] / [`head`] wait for a whole response before panicking.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`get_streaming`] waits for the next body chunk before giving up.
pub const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// The prefix of the error [`get_streaming`] reports when *it* gave up
/// waiting (as opposed to the connection failing): a test that expects the
/// proxy to abort a stalled body checks that the error does not start with it.
pub const CLIENT_TIMEOUT: &str = "client-side timeout";

/// The published Azurite development account (not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

// ------------------------------------------------------------------ runtime

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("test-harness")
        .build()
        .expect("cannot build the test harness's tokio runtime")
});

/// The tokio runtime the harness's async parts (HTTP client, relay) run on.
/// Tests stay synchronous and call `runtime().block_on(...)` if they need it.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    &RUNTIME
}

// ------------------------------------------------------------------ peers

fn is_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Reads a required peer variable. Missing or empty: panics under `CI=true`,
/// otherwise prints `skipped: ...` and returns `None`.
pub fn required_env(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if is_ci() {
                panic!(
                    "{var} is not set, so there is no {what} to test against: run the tests through scripts/test.sh"
                );
            }
            eprintln!("skipped: {var} is not set, no {what} to test against (run scripts/test.sh)");
            None
        }
    }
}

/// An S3-compatible server to test against (s3s-fs from `scripts/test.sh`,
/// or any server named by the `MEDIAGATE_TEST_S3_*` variables).
#[derive(Debug, Clone)]
pub struct S3Peer {
    /// `http://127.0.0.1:P`, without a trailing slash.
    pub endpoint: String,
    pub tls: bool,
    /// The endpoint's host (an IP or a name).
    pub host: String,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// `s3.localhost:P` when the server answers virtual-host style requests.
    pub vhost_domain: Option<String>,
}

/// The S3 peer from `MEDIAGATE_TEST_S3_ENDPOINT`, `_ACCESS_KEY`,
/// `_SECRET_KEY`, `_REGION` (default `us-east-1`) and `_VHOST_DOMAIN`
/// (optional). `None` (with a `skipped:` line) when not set, outside CI.
///
/// ```ignore
/// let Some(s3) = s3_peer() else { return };
/// ```
pub fn s3_peer() -> Option<S3Peer> {
    let what = "S3 server";
    let endpoint = required_env("MEDIAGATE_TEST_S3_ENDPOINT", what)?;
    let access_key = required_env("MEDIAGATE_TEST_S3_ACCESS_KEY", what)?;
    let secret_key = required_env("MEDIAGATE_TEST_S3_SECRET_KEY", what)?;
    let region = std::env::var("MEDIAGATE_TEST_S3_REGION").ok().filter(|r| !r.is_empty());
    let vhost_domain = std::env::var("MEDIAGATE_TEST_S3_VHOST_DOMAIN").ok().filter(|d| !d.is_empty());
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let uri: http::Uri = endpoint.parse().unwrap_or_else(|e| panic!("MEDIAGATE_TEST_S3_ENDPOINT={endpoint:?}: {e}"));
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().expect("MEDIAGATE_TEST_S3_ENDPOINT has no host").to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Some(S3Peer {
        endpoint,
        tls,
        host,
        port,
        access_key,
        secret_key,
        region: region.unwrap_or_else(|| "us-east-1".to_owned()),
        vhost_domain,
    })
}

impl S3Peer {
    /// The server's socket address (to put a [`relay::Relay`] in front of it).
    pub fn addr(&self) -> SocketAddr {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {}:{}", self.host, self.port))
    }

    /// An `[[integration]]` table of `type = "s3"` for this peer with path
    /// addressing; `buckets` empty means no scope (the default integration);
    /// `extra` is more `key = value` lines for the same table.
    pub fn integration(&self, name: &str, buckets: &[&str], extra: &str) -> String {
        self.integration_at(name, &self.host, self.port, buckets, &self.secret_key, extra)
    }

    /// Like [`S3Peer::integration`] but with another endpoint host and port
    /// (a relay, `s3.localhost`) and another secret (a wrong one).
    pub fn integration_at(
        &self,
        name: &str,
        endpoint: &str,
        port: u16,
        buckets: &[&str],
        secret: &str,
        extra: &str,
    ) -> String {
        let mut t = String::new();
        t.push_str("\n[[integration]]\n");
        t.push_str(&format!("name = {}\n", toml_str(name)));
        t.push_str("type = \"s3\"\n");
        t.push_str(&format!("endpoint = {}\n", toml_str(endpoint)));
        t.push_str(&format!("port = {port}\n"));
        t.push_str(&format!("tls = {}\n", self.tls));
        t.push_str(&format!("region = {}\n", toml_str(&self.region)));
        t.push_str(&format!("access_key_id = {}\n", toml_str(&self.access_key)));
        t.push_str(&format!("secret_access_key = {}\n", toml_str(secret)));
        if !buckets.is_empty() {
            let list: Vec<String> = buckets.iter().map(|b| toml_str(b)).collect();
            t.push_str(&format!("buckets = [{}]\n", list.join(", ")));
        }
        if !extra.contains("addressing") {
            t.push_str("addressing = \"path\"\n");
        }
        if !extra.is_empty() {
            t.push_str(extra.trim_end());
            t.push('\n');
        }
        t
    }

    /// Sends one SigV4-signed path-style request to the server: `key` `None`
    /// addresses the bucket itself; `query` is a raw query string (or "").
    /// Only `headers` (plus host and the `x-amz-*` headers) are signed.
    pub fn request(
        &self,
        method: Method,
        bucket: &str,
        key: Option<&str>,
        query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> TestResponse {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
            UriPathNormalizationMode, sign,
        };
        use aws_sigv4::sign::v4;

        let mut url = format!("{}/{}", self.endpoint, bucket);
        if let Some(key) = key {
            url.push('/');
            url.push_str(&encode_key(key));
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = aws_credential_types::Credentials::new(
            self.access_key.clone(),
            self.secret_key.clone(),
            None,
            None,
            "mediagate-tests",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .expect("SigV4 signing parameters")
            .into();
        let signable =
            SignableRequest::new(method.as_str(), url.as_str(), headers.iter().copied(), SignableBody::UnsignedPayload)
                .unwrap_or_else(|e| panic!("cannot sign {method} {url}: {e}"));
        let (instructions, _signature) =
            sign(signable, &params).unwrap_or_else(|e| panic!("cannot sign {method} {url}: {e}")).into_parts();
        let mut builder = Request::builder().method(method.clone()).uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut req = builder.body(Full::new(body)).unwrap_or_else(|e| panic!("bad request {method} {url}: {e}"));
        instructions.apply_to_request_http1x(&mut req);
        send(req)
    }

    /// Creates a bucket; one that already exists is fine.
    pub fn create_bucket(&self, bucket: &str) {
        let resp = self.request(Method::PUT, bucket, None, "", &[], Bytes::new());
        let already = resp.status == StatusCode::CONFLICT
            || resp.text().contains("BucketAlreadyOwnedByYou")
            || resp.text().contains("BucketAlreadyExists");
        assert!(
            resp.status.is_success() || already,
            "creating bucket {bucket:?} on {} failed: {} {}",
            self.endpoint,
            resp.status,
            resp.text()
        );
    }

    /// Stores an object (no content type).
    pub fn put(&self, bucket: &str, key: &str, bytes: impl Into<Bytes>) {
        self.put_with(bucket, key, bytes, &[]);
    }

    /// Stores an object with extra headers, e.g. `[("content-type", "image/png")]`.
    pub fn put_with(&self, bucket: &str, key: &str, bytes: impl Into<Bytes>, headers: &[(&str, &str)]) {
        let resp = self.request(Method::PUT, bucket, Some(key), "", headers, bytes.into());
        assert!(
            resp.status.is_success(),
            "putting s3://{bucket}/{key} on {} failed: {} {}",
            self.endpoint,
            resp.status,
            resp.text()
        );
    }

    /// Reads an object straight from the server (signed GET), bypassing mediagate.
    pub fn get_direct(&self, bucket: &str, key: &str, headers: &[(&str, &str)]) -> TestResponse {
        self.request(Method::GET, bucket, Some(key), "", headers, Bytes::new())
    }

    /// A fresh bucket with `content`: creates `bucket` and puts each `(key, bytes)`.
    pub fn seed(&self, bucket: &str, content: &[(&str, &[u8])]) {
        self.create_bucket(bucket);
        for (key, bytes) in content {
            self.put(bucket, key, Bytes::copy_from_slice(bytes));
        }
    }
}

/// An Azure Blob server to test against (Azurite from `scripts/test.sh`).
#[derive(Debug, Clone)]
pub struct AzurePeer {
    /// The account URL, `http://127.0.0.1:P/devstoreaccount1` (emulator form).
    pub url: String,
    pub account: String,
    /// The base64 account key.
    pub key: String,
}

/// The Azure peer from `MEDIAGATE_TEST_AZURE_URL`, `_ACCOUNT` (default
/// `devstoreaccount1`) and `_KEY`. `None` (with a `skipped:` line) when not
/// set, outside CI.
pub fn azure_peer() -> Option<AzurePeer> {
    let what = "Azure Blob server";
    let url = required_env("MEDIAGATE_TEST_AZURE_URL", what)?;
    let key = required_env("MEDIAGATE_TEST_AZURE_KEY", what)?;
    let account =
        std::env::var("MEDIAGATE_TEST_AZURE_ACCOUNT").ok().filter(|a| !a.is_empty()).unwrap_or(AZURITE_ACCOUNT.into());
    Some(AzurePeer { url: url.trim_end_matches('/').to_owned(), account, key })
}

impl AzurePeer {
    /// The container URL, as an integration's `storage_url`.
    pub fn container_url(&self, container: &str) -> String {
        format!("{}/{container}", self.url)
    }

    /// An `[[integration]]` table of `type = "azure-blob"` for one container,
    /// with the account key; `extra` is more `key = value` lines.
    pub fn integration(&self, name: &str, container: &str, extra: &str) -> String {
        let mut t = String::new();
        t.push_str("\n[[integration]]\n");
        t.push_str(&format!("name = {}\n", toml_str(name)));
        t.push_str("type = \"azure-blob\"\n");
        t.push_str(&format!("storage_url = {}\n", toml_str(&self.container_url(container))));
        if !extra.contains("sas_token") && !extra.contains("account_key") {
            t.push_str(&format!("account_key = {}\n", toml_str(&self.key)));
        }
        if !extra.is_empty() {
            t.push_str(extra.trim_end());
            t.push('\n');
        }
        t
    }

    /// The URL path of the account URL (`/devstoreaccount1` for the emulator,
    /// empty for a cloud account).
    fn account_path(&self) -> String {
        let uri: http::Uri =
            self.url.parse().unwrap_or_else(|e| panic!("MEDIAGATE_TEST_AZURE_URL={:?}: {e}", self.url));
        uri.path().trim_end_matches('/').to_owned()
    }

    /// Sends one SharedKey-signed request; `path` is the encoded path under
    /// the account, starting with `/`; `query` decoded pairs.
    pub fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> TestResponse {
        use base64::Engine;
        use mediagate::integration::azure::credential::shared_key_authorization;

        let key = base64::engine::general_purpose::STANDARD
            .decode(&self.key)
            .unwrap_or_else(|e| panic!("MEDIAGATE_TEST_AZURE_KEY is not base64: {e}"));
        let url_path = format!("{}{path}", self.account_path());
        let query: Vec<(String, String)> = query.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        let mut url = format!("{}{path}", self.url);
        if !query.is_empty() {
            let q: Vec<String> =
                query.iter().map(|(n, v)| format!("{}={}", encode_component(n), encode_component(v))).collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let mut map = HeaderMap::new();
        let date = httpdate::fmt_http_date(SystemTime::now());
        map.insert("x-ms-date", date.parse().unwrap());
        map.insert("x-ms-version", mediagate::integration::azure::API_VERSION.parse().unwrap());
        map.insert(http::header::CONTENT_LENGTH, body.len().to_string().parse().unwrap());
        for (name, value) in headers {
            let name: http::HeaderName = name.parse().unwrap_or_else(|e| panic!("header {name:?}: {e}"));
            map.append(name, value.parse().unwrap_or_else(|e| panic!("header value {value:?}: {e}")));
        }
        let auth = shared_key_authorization(&self.account, &key, &method, &url_path, &query, &map);
        map.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        let mut req = Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .body(Full::new(body))
            .unwrap_or_else(|e| panic!("bad request {method} {url}: {e}"));
        *req.headers_mut() = map;
        send(req)
    }

    /// Creates a container; one that already exists is fine.
    pub fn create_container(&self, container: &str) {
        let resp = self.request(Method::PUT, &format!("/{container}"), &[("restype", "container")], &[], Bytes::new());
        assert!(
            resp.status.is_success() || resp.status == StatusCode::CONFLICT,
            "creating container {container:?} on {} failed: {} {}",
            self.url,
            resp.status,
            resp.text()
        );
    }

    /// Stores a block blob (no content type).
    pub fn put_blob(&self, container: &str, blob: &str, bytes: impl Into<Bytes>) {
        self.put_blob_with(container, blob, bytes, &[]);
    }

    /// Stores a block blob with extra headers, e.g. `[("content-type", "video/mp4")]`.
    pub fn put_blob_with(&self, container: &str, blob: &str, bytes: impl Into<Bytes>, headers: &[(&str, &str)]) {
        let mut all = vec![("x-ms-blob-type", "BlockBlob")];
        all.extend_from_slice(headers);
        let path = format!("/{container}/{}", encode_key(blob));
        let resp = self.request(Method::PUT, &path, &[], &all, bytes.into());
        assert!(
            resp.status.is_success(),
            "putting blob {container}/{blob} on {} failed: {} {}",
            self.url,
            resp.status,
            resp.text()
        );
    }

    /// Reads a blob straight from the server (SharedKey-signed GET), bypassing mediagate.
    pub fn get_direct(&self, container: &str, blob: &str, headers: &[(&str, &str)]) -> TestResponse {
        let path = format!("/{container}/{}", encode_key(blob));
        self.request(Method::GET, &path, &[], headers, Bytes::new())
    }
}

// ------------------------------------------------------------------ names and data

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A bucket name of its own for one test (tests run in parallel and may share
/// a long-lived server): `tag` lower-cased to `[a-z0-9-]`, plus the process,
/// the time and a counter; 3 to 63 characters, valid for S3 and Azure.
pub fn unique_bucket(tag: &str) -> String {
    let mut base: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    base.truncate(36);
    let base = base.trim_end_matches('-');
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) % 100_000_000;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{}-{}-{millis}-{n}", if base.is_empty() { "t" } else { base }, std::process::id());
    name.chars().take(63).collect::<String>().trim_end_matches('-').to_owned()
}

/// `len` deterministic pseudo-random bytes (xorshift64 from `seed`).
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A TOML basic string literal.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~`: a whole
/// locator as a query value.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A whole config: `[server]` listening on `127.0.0.1:0` (so tests can run
/// in parallel), then `parts` (more tables: `[[integration]]`, `[upstream]`...)
/// in order. (No `[admin]` table, so no admin listener: the admin API's
/// tests add [`admin::admin_section`], which listens on `127.0.0.1:0`.)
pub fn config(parts: &[&str]) -> String {
    let mut c = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for part in parts {
        c.push('\n');
        c.push_str(part.trim_start_matches('\n'));
        if !c.ends_with('\n') {
            c.push('\n');
        }
    }
    c
}

/// A `type = "local"` integration over `root`, scoped to `buckets`.
pub fn local_integration(name: &str, root: &Path, buckets: &[&str]) -> String {
    let mut t = format!(
        "\n[[integration]]\nname = {}\ntype = \"local\"\nroot = {}\n",
        toml_str(name),
        toml_str(&root.to_string_lossy())
    );
    if !buckets.is_empty() {
        let list: Vec<String> = buckets.iter().map(|b| toml_str(b)).collect();
        t.push_str(&format!("buckets = [{}]\n", list.join(", ")));
    }
    t
}

// ------------------------------------------------------------------ mediagate

/// One running `mediagate serve` process, killed on drop.
pub struct MediaGate {
    child: Child,
    /// `http://127.0.0.1:P` (`https://` with TLS), from the `mediagate listening on` line.
    pub base_url: String,
    pub addr: SocketAddr,
    /// The config file it was started with.
    pub config_path: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    /// The temp dir of the config file, when the harness wrote it.
    _dir: Option<tempfile::TempDir>,
}

/// The binary under test: `MEDIAGATE_TEST_BIN` when set (e.g. a release
/// build for the figures of tests/replicas.rs), else cargo's own build.
static BIN: LazyLock<String> = LazyLock::new(|| {
    std::env::var("MEDIAGATE_TEST_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_mediagate").to_owned())
});

/// The mediagate binary under test (`MEDIAGATE_TEST_BIN`, else this build's).
pub fn bin() -> &'static str {
    &BIN
}

fn write_config(config_toml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("mediagate-test-").tempdir().expect("temp dir");
    let path = dir.path().join("mediagate.toml");
    std::fs::write(&path, config_toml).expect("writing the config");
    (dir, path)
}

/// Reads lines from `source` into `sink` until EOF; each line also goes to `tx` if given.
fn pump_lines(
    source: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    tx: Option<mpsc::Sender<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned();
                    if let Some(tx) = &tx {
                        let _ = tx.send(line.clone());
                    }
                    sink.lock().unwrap().push(line);
                }
            }
        }
    })
}

impl MediaGate {
    /// Starts `mediagate serve --config <file> --log-format json` with
    /// `config_toml` and waits (up to 20 s) for its
    /// `mediagate listening on http://<addr>` line. Panics, showing stderr,
    /// if it does not come.
    pub fn start(config_toml: &str) -> MediaGate {
        MediaGate::try_start(config_toml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`MediaGate::start`], but returns why it did not start (the exit
    /// status and stderr) instead of panicking: for configs that must be refused.
    pub fn try_start(config_toml: &str) -> Result<MediaGate, String> {
        let (dir, path) = write_config(config_toml);
        MediaGate::launch(path, Some(dir), &[])
    }

    /// Like [`MediaGate::start`] on an existing config file (which the test
    /// owns, so it outlives the process: to restart on the same file), with
    /// `env` added to the process's environment (for `${VAR}` references).
    pub fn start_file(path: &Path, env: &[(&str, &str)]) -> MediaGate {
        MediaGate::launch(path.to_path_buf(), None, env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn launch(path: PathBuf, dir: Option<tempfile::TempDir>, env: &[(&str, &str)]) -> Result<MediaGate, String> {
        let config_toml = std::fs::read_to_string(&path).unwrap_or_else(|e| format!("(cannot read it: {e})"));
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .arg("--log-format")
            .arg("json")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        pump_lines(child.stdout.take().unwrap(), stdout.clone(), Some(tx));
        let stderr_pump = pump_lines(child.stderr.take().unwrap(), stderr.clone(), None);

        let deadline = Instant::now() + START_TIMEOUT;
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.trim().strip_prefix("mediagate listening on ") {
                        let url = url.trim().trim_end_matches('/').to_owned();
                        let addr = url
                            .strip_prefix("http://")
                            .or_else(|| url.strip_prefix("https://"))
                            .and_then(|a| a.parse::<SocketAddr>().ok())
                            .unwrap_or_else(|| panic!("cannot read the address in {line:?}"));
                        return Ok(MediaGate {
                            child,
                            base_url: url,
                            addr,
                            config_path: path,
                            stderr,
                            stdout,
                            _dir: dir,
                        });
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break format!(
                        "mediagate printed no `mediagate listening on http://...` line within {START_TIMEOUT:?}"
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break "mediagate closed its stdout".to_owned(),
            }
        };
        let _ = child.kill();
        let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
        let _ = stderr_pump.join(); // the child has exited: its stderr ends, and every line is in
        let err = stderr.lock().unwrap().join("\n");
        let out = stdout.lock().unwrap().join("\n");
        Err(format!("{failure} ({status}).\nconfig:\n{config_toml}\nstdout:\n{out}\nstderr:\n{err}"))
    }

    /// `mediagate check --config <file>` on `config_toml` (cwd: the crate
    /// root), waited for up to 60 s.
    pub fn check(config_toml: &str) -> Output {
        let (_dir, path) = write_config(config_toml);
        MediaGate::check_file(&path)
    }

    /// `mediagate check --config <path>` (cwd: the crate root).
    pub fn check_file(path: &Path) -> Output {
        run_bounded(
            Command::new(bin()).arg("check").arg("--config").arg(path).current_dir(env!("CARGO_MANIFEST_DIR")),
            Duration::from_secs(60),
        )
    }

    /// `base_url` + `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// The path-form URL `/<scheme>/<bucket>/<key>`, the key encoded with
    /// [`encode_key`].
    pub fn path_url(&self, scheme: &str, bucket: &str, key: &str) -> String {
        format!("{}/{scheme}/{bucket}/{}", self.base_url, encode_key(key))
    }

    /// The query-form URL `/media?locator=<locator, wholly percent-encoded>`.
    pub fn query_url(&self, locator: &str) -> String {
        format!("{}/media?locator={}", self.base_url, encode_component(locator))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| panic!("cannot read /proc/{}/status: {e}", self.pid()));
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid()))
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    /// Current resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// Every stderr line so far that is a JSON object (the `--log-format json` logs).
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.stderr.lock().unwrap().iter().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// All of stderr so far, as text.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// All of stdout so far, as text.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// Sends signal `name` (`HUP`, `TERM`...) to the process, with `kill -s`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg("-s")
            .arg(name)
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -s {name} {} failed: {status}", self.pid());
    }
}

impl Drop for MediaGate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ HTTP client

static CLIENT: LazyLock<Client<HttpConnector, Full<Bytes>>> = LazyLock::new(|| {
    // No pooling: every request gets its own connection, so dropping a body
    // mid-way really closes the connection, and tests do not interfere.
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http()
});

/// A whole response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// The body as JSON; panics showing the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {} {:?}", self.status, self.text()))
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value as text (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or_else(|_| panic!("header {name} is not ASCII: {v:?}")))
    }

    /// `error.code` of a JSON error body (panics if the body is not one).
    pub fn error_code(&self) -> String {
        self.error_field("code")
    }

    /// `error.message` of a JSON error body.
    pub fn error_message(&self) -> String {
        self.error_field("message")
    }

    fn error_field(&self, name: &str) -> String {
        let json = self.json();
        json["error"][name]
            .as_str()
            .unwrap_or_else(|| panic!("no error.{name} in a JSON error body: {} {json}", self.status))
            .to_owned()
    }

    /// A short description for assertion messages.
    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 500 {
            let mut cut = 500;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push_str("...");
        }
        format!("{} {:?} {body:?}", self.status, self.headers)
    }
}

fn build(method: Method, url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        b = b.header(*name, *value);
    }
    b.body(Full::new(Bytes::new())).unwrap_or_else(|e| panic!("bad request for {url:?}: {e}"))
}

/// Sends a request and reads the whole response (up to [`REQUEST_TIMEOUT`]).
pub fn send(req: Request<Full<Bytes>>) -> TestResponse {
    let what = format!("{} {}", req.method(), req.uri());
    runtime().block_on(async {
        let fut = async {
            let resp = CLIENT.request(req).await.map_err(|e| format!("{what}: {e:?}"))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| format!("{what}: reading the body: {e}"))?.to_bytes();
            Ok::<_, String>(TestResponse { status: parts.status, headers: parts.headers, body })
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("request failed: {e}"),
            Err(_) => panic!("{what}: no complete response within {REQUEST_TIMEOUT:?}"),
        }
    })
}

/// `GET url` with `headers`; the whole body. Panics if the request or the
/// body fails (use [`get_streaming`] to observe body errors).
pub fn get(url: &str, headers: &[(&str, &str)]) -> TestResponse {
    send(build(Method::GET, url, headers))
}

/// `HEAD url` with `headers`.
pub fn head(url: &str, headers: &[(&str, &str)]) -> TestResponse {
    send(build(Method::HEAD, url, headers))
}

/// Any method, empty body.
pub fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> TestResponse {
    send(build(method, url, headers))
}

/// `GET url`, reading the body chunk by chunk without keeping it. Returns the
/// status, the headers, `Ok(bytes read)` if the body ended cleanly or
/// `Err(why)` if it broke off (an aborted connection, a truncated
/// `Content-Length` or chunked body), and the SHA-256 (hex) of what was read.
/// If no chunk comes for [`CHUNK_TIMEOUT`], the error starts with
/// [`CLIENT_TIMEOUT`].
pub fn get_streaming(url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Result<u64, String>, String) {
    get_streaming_with_pause(url, headers, u64::MAX, || {})
}

/// Like [`get_streaming`], but once at least `pause_after` body bytes are
/// read, stops reading and runs `pause` (on a thread of its own, so it may
/// use the harness's client) before reading the rest: a slow reader with a
/// request in flight while `pause` changes something.
pub fn get_streaming_with_pause(
    url: &str,
    headers: &[(&str, &str)],
    pause_after: u64,
    pause: impl FnOnce() + Send,
) -> (StatusCode, HeaderMap, Result<u64, String>, String) {
    let req = build(Method::GET, url, headers);
    let mut pause = Some(pause);
    runtime().block_on(async {
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, CLIENT.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("GET {url}: {e:?}"),
            Err(_) => panic!("GET {url}: no response head within {REQUEST_TIMEOUT:?}"),
        };
        let (parts, mut body) = resp.into_parts();
        let mut hasher = Sha256::new();
        let mut read = 0u64;
        let outcome = loop {
            match tokio::time::timeout(CHUNK_TIMEOUT, body.frame()).await {
                Err(_) => {
                    break Err(format!("{CLIENT_TIMEOUT}: no body data for {CHUNK_TIMEOUT:?} after {read} bytes"));
                }
                Ok(None) => break Ok(read),
                Ok(Some(Err(e))) => break Err(format!("{e} ({e:?}) after {read} bytes")),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        hasher.update(&data);
                        read += data.len() as u64;
                    }
                    if read >= pause_after
                        && let Some(pause) = pause.take()
                        && let Err(panic) = std::thread::scope(|s| s.spawn(pause).join())
                    {
                        std::panic::resume_unwind(panic);
                    }
                }
            }
        };
        (parts.status, parts.headers, outcome, hex(&hasher.finalize()))
    })
}

/// `GET url`, reads at least `stop_after` body bytes (or to the end), then
/// drops the connection: a client that goes away mid-body. Returns the
/// status and how many bytes were read.
pub fn get_partial(url: &str, headers: &[(&str, &str)], stop_after: u64) -> (StatusCode, u64) {
    let req = build(Method::GET, url, headers);
    runtime().block_on(async {
        let resp = match tokio::time::timeout(REQUEST_TIMEOUT, CLIENT.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("GET {url}: {e:?}"),
            Err(_) => panic!("GET {url}: no response head within {REQUEST_TIMEOUT:?}"),
        };
        let (parts, mut body) = resp.into_parts();
        let mut read = 0u64;
        while read < stop_after {
            match tokio::time::timeout(CHUNK_TIMEOUT, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        read += data.len() as u64;
                    }
                }
                _ => break,
            }
        }
        drop(body); // closes the connection: the pool keeps none
        (parts.status, read)
    })
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; returns whether
/// it held. For waiting on effects, never for asserting speed: give a
/// generous `limit`.
/// As [`wait_until`], and fails the test naming `what` when `cond` never held.
pub fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) {
    assert!(wait_until(limit, cond), "waited {limit:?} for {what}");
}

pub fn wait_until(limit: Duration, cond: impl FnMut() -> bool) -> bool {
    wait_until_every(limit, Duration::from_millis(50), cond)
}

/// [`wait_until`], checking every `every` (for a test that times the event).
pub fn wait_until_every(limit: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

// ------------------------------------------------------------------ Azure SAS

/// The service version the test SAS tokens are signed for.
pub const SAS_VERSION: &str = "2020-12-06";

/// A service SAS for `container` (`sr=c`) with `permissions` (`rl`, `r`...),
/// valid for an hour, signed with the decoded account `key` for version
/// 2020-12-06 (<https://learn.microsoft.com/rest/api/storageservices/create-service-sas>).
pub fn container_sas(account: &str, key: &[u8], container: &str, permissions: &str) -> String {
    let expiry = mediagate::integration::probe::rfc3339(SystemTime::now() + Duration::from_secs(3600));
    let string_to_sign = sas_string_to_sign(permissions, &expiry, account, container);
    let sig = mediagate::integration::azure::credential::sign(key, &string_to_sign);
    format!("sv={SAS_VERSION}&sr=c&sp={permissions}&se={}&sig={}", encode_key(&expiry), encode_key(&sig))
}

/// The 16 lines of a 2020-12-06 service SAS string-to-sign, only
/// permissions, expiry, resource, version and resource type set.
fn sas_string_to_sign(permissions: &str, expiry: &str, account: &str, container: &str) -> String {
    let resource = format!("/blob/{account}/{container}");
    let fields = [permissions, "", expiry, &resource, "", "", "", SAS_VERSION, "c", "", "", "", "", "", "", ""];
    fields.join("\n")
}

impl AzurePeer {
    /// A container SAS of this account (see [`container_sas`]).
    pub fn container_sas(&self, container: &str, permissions: &str) -> String {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.decode(&self.key).expect("the Azure key is base64");
        container_sas(&self.account, &key, container, permissions)
    }
}

// ------------------------------------------------------------------ admin listener

impl MediaGate {
    /// `http://127.0.0.1:P` of the admin listener, from its
    /// `mediagate admin API listening on http://<addr>` line (printed before
    /// the media listener's line, so it is in once [`MediaGate::start`]
    /// returns). Panics when there is none (no `[admin]` table).
    pub fn admin_url(&self) -> String {
        let stdout = self.stdout.lock().unwrap();
        let line = stdout.iter().find_map(|l| l.trim().strip_prefix("mediagate admin API listening on "));
        let url = line
            .unwrap_or_else(|| panic!("no `mediagate admin API listening on` line in stdout:\n{}", stdout.join("\n")));
        url.trim().trim_end_matches('/').to_owned()
    }
}

/// PEM (RFC 7468) of `der` under `label` (`CERTIFICATE`, `PRIVATE KEY`):
/// base64 in lines of 64. (rcgen's own `pem` feature is off.)
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// Runs `cmd` with a time limit; its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// What `${name}` reads when a test validates a shipped config (docs, manifests): a value of the shape the key that
/// uses it needs (base64 for an Azure account key, a query string with
/// `sig=` for a SAS, a number for a port, 40 characters otherwise).
pub fn env_placeholder(name: &str) -> Option<String> {
    let value = if name.contains("ACCOUNT_KEY") {
        // 64 bytes, as the Azure portal shows an account key (88 characters of base64).
        format!("{}==", "A".repeat(86))
    } else if name.contains("STORE_KEY") {
        // [store] encryption_key: the base64 of 32 bytes.
        format!("{}=", "A".repeat(43))
    } else if name.contains("SAS") {
        "sv=2022-11-02&sr=c&sp=rl&se=2030-01-01T00%3A00%3A00Z&spr=https&sig=docsplaceholder%3D".to_string()
    } else if name.ends_with("PORT") {
        "9000".to_string()
    } else {
        "mediagatedocsplaceholder0123456789abcdef".to_string()
    };
    Some(value)
}
