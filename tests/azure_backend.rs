//! The Azure Blob backend against a real Azure Blob service (Azurite in CI).
//!
//! Configure with `MEDIAGATE_TEST_AZURE_URL` (the account URL, e.g.
//! `http://127.0.0.1:10000/devstoreaccount1`), `MEDIAGATE_TEST_AZURE_ACCOUNT`
//! and `MEDIAGATE_TEST_AZURE_KEY` (base64). Without them the tests are skipped,
//! except under `CI=true`, where they fail. Start Azurite with
//! `--skipApiVersionCheck --loose`.
//!
//! Every test seeds its own container (SharedKey-signed with the crate's own
//! `shared_key_authorization`), so tests run in parallel against one Azurite.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use mediagate::config::UpstreamConfig;
use mediagate::error::Kind;
use mediagate::http::conditional::Conditions;
use mediagate::http::range::{ByteSpan, RangeSpec};
use mediagate::integration::azure::config::{AzureConfig, AzureCredential, AzureStorageUrl};
use mediagate::integration::azure::{AzureBackend, shared_key_authorization};
use mediagate::integration::probe;
use mediagate::integration::{ObjectRequest, ObjectResponse, Part};
use mediagate::locator::encode_key;
use mediagate::secret::Secret;

const INTEGRATION: &str = "azurite-test";

/// The account under test, from the environment.
#[derive(Clone)]
struct Account {
    scheme: String,
    host: String,
    port: Option<u16>,
    account: String,
    key_base64: String,
    key: Vec<u8>,
    path_style: bool,
}

/// The account, or `None` (after saying so) when the environment names none.
fn account() -> Option<Account> {
    let vars = ["MEDIAGATE_TEST_AZURE_URL", "MEDIAGATE_TEST_AZURE_ACCOUNT", "MEDIAGATE_TEST_AZURE_KEY"];
    let values: Vec<Option<String>> = vars.iter().map(|v| std::env::var(v).ok().filter(|s| !s.is_empty())).collect();
    let (Some(url), Some(account), Some(key_base64)) = (values[0].clone(), values[1].clone(), values[2].clone()) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but Azurite is not configured: set {}", vars.join(", "));
        }
        eprintln!("skipped: Azurite not configured (set {})", vars.join(", "));
        return None;
    };
    let uri: Uri = url.parse().expect("MEDIAGATE_TEST_AZURE_URL is a URL");
    let host = uri.host().expect("MEDIAGATE_TEST_AZURE_URL has a host").trim_matches(['[', ']']).to_owned();
    let path_style = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok();
    let key = BASE64.decode(&key_base64).expect("MEDIAGATE_TEST_AZURE_KEY is base64");
    Some(Account {
        scheme: uri.scheme_str().unwrap_or("http").to_owned(),
        host,
        port: uri.port_u16(),
        account,
        key_base64,
        key,
        path_style,
    })
}

/// A container name no other test (or earlier run) uses.
fn unique_container(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("mg-{tag}-{:x}-{}", nanos % 0xffff_ffff_ffff, COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn upstream() -> UpstreamConfig {
    UpstreamConfig {
        connect_timeout: Duration::from_secs(2),
        first_byte_timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        pool_idle_timeout: Duration::from_secs(10),
        pool_max_idle_per_host: 8,
    }
}

impl Account {
    fn config(&self, container: Option<&str>, credential: AzureCredential) -> AzureConfig {
        AzureConfig {
            storage_url: AzureStorageUrl {
                scheme: self.scheme.clone(),
                host: self.host.clone(),
                port: self.port,
                account: self.account.clone(),
                container: container.map(str::to_owned),
                path_style: self.path_style,
            },
            credential,
            ca_file: None,
        }
    }

    /// A backend signing with the account key.
    fn backend(&self, container: Option<&str>) -> AzureBackend {
        let cred = AzureCredential::AccountKey(Secret::new(self.key_base64.clone()));
        AzureBackend::new(INTEGRATION, &self.config(container, cred), &upstream()).unwrap()
    }

    /// A backend using a SAS token.
    fn sas_backend(&self, container: &str, token: &str) -> AzureBackend {
        let cred = AzureCredential::Sas(Secret::new(token));
        AzureBackend::new(INTEGRATION, &self.config(Some(container), cred), &upstream()).unwrap()
    }

    /// `/<account>` in the emulator form, else empty.
    fn base_path(&self) -> String {
        if self.path_style { format!("/{}", self.account) } else { String::new() }
    }

    fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// A SharedKey-signed request, for seeding; answers status, headers, body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-version", HeaderValue::from_static("2021-08-06"));
        headers.insert("x-ms-date", HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())).unwrap());
        if method == Method::PUT {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        for (name, value) in extra {
            headers.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        let pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let auth = shared_key_authorization(&self.account, &self.key, &method, path, &pairs, &headers);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        let query_text: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut url = format!("{}://{}{path}", self.scheme, self.authority());
        if !query_text.is_empty() {
            url = format!("{url}?{}", query_text.join("&"));
        }
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = url.parse().unwrap();
        *req.headers_mut() = headers;
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let resp = client.request(req).await.expect("the Azure test endpoint answers");
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
    }

    async fn create_container(&self, container: &str) {
        let path = format!("{}/{container}", self.base_path());
        let (status, _, body) = self.call(Method::PUT, &path, &[("restype", "container")], &[], Bytes::new()).await;
        assert_eq!(status, StatusCode::CREATED, "create container {container}: {}", String::from_utf8_lossy(&body));
    }

    async fn put_blob(&self, container: &str, key: &str, content: &[u8], content_type: &str) {
        let path = format!("{}/{container}/{}", self.base_path(), encode_key(key));
        let extra = [("x-ms-blob-type", "BlockBlob"), ("x-ms-blob-content-type", content_type)];
        let (status, _, body) = self.call(Method::PUT, &path, &[], &extra, Bytes::copy_from_slice(content)).await;
        assert_eq!(status, StatusCode::CREATED, "put blob {key:?}: {}", String::from_utf8_lossy(&body));
    }

    /// The blob names of a container, read from List Blobs.
    async fn list_names(&self, container: &str) -> Vec<String> {
        let path = format!("{}/{container}", self.base_path());
        let (status, _, body) =
            self.call(Method::GET, &path, &[("restype", "container"), ("comp", "list")], &[], Bytes::new()).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body.to_vec()).unwrap();
        text.split("<Name>").skip(1).filter_map(|s| s.split_once("</Name>").map(|(n, _)| xml_unescape(n))).collect()
    }

    /// A fresh container with one blob `key` of `content`.
    async fn seeded(&self, tag: &str, key: &str, content: &[u8]) -> String {
        let container = unique_container(tag);
        self.create_container(&container).await;
        self.put_blob(&container, key, content, "video/mp4").await;
        container
    }

    /// A service SAS for a container (`sr=c`), valid for an hour.
    fn container_sas(&self, container: &str, permissions: &str) -> String {
        common::container_sas(&self.account, &self.key, container, permissions)
    }
}

/// The backend's connection test, worded: its code and sentence.
async fn connection_test(backend: &AzureBackend) -> (String, String) {
    match backend.test_connection().await {
        Ok(listed) => ("ok".to_owned(), listed),
        Err(problem) => probe::describe(&backend.probe_context(), &problem),
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

/// `n` bytes that differ at every offset modulo 251, so a wrong range shows.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn get<'a>(container: &'a str, key: &'a str, range: Option<RangeSpec>, c: &'a Conditions) -> ObjectRequest<'a> {
    ObjectRequest { head: false, bucket: container, key, range, conditions: c }
}

fn head<'a>(container: &'a str, key: &'a str, c: &'a Conditions) -> ObjectRequest<'a> {
    ObjectRequest { head: true, bucket: container, key, range: None, conditions: c }
}

async fn body_of(resp: ObjectResponse) -> Vec<u8> {
    resp.body.collect().await.expect("the body streams to its end").to_bytes().to_vec()
}

const NONE: &Conditions = &Conditions {
    if_match: None,
    if_none_match: None,
    if_modified_since: None,
    if_unmodified_since: None,
    if_range: None,
};

#[tokio::test]
async fn a_whole_blob_is_read_with_its_bytes_and_metadata() {
    let Some(az) = account() else { return };
    let data = content(10_000);
    let container = az.seeded("whole", "clips/a.mp4", &data).await;
    let backend = az.backend(Some(&container));
    let resp = backend.fetch(&get(&container, "clips/a.mp4", None, NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Whole);
    assert_eq!(resp.meta.size, 10_000);
    assert_eq!(resp.meta.content_type.as_deref(), Some("video/mp4"));
    assert!(resp.meta.etag.as_deref().is_some_and(|e| e.starts_with('"') && e.ends_with('"')), "{:?}", resp.meta);
    assert!(resp.meta.last_modified.is_some());
    assert_eq!(body_of(resp).await, data);
}

#[tokio::test]
async fn a_closed_range_returns_exactly_those_bytes() {
    let Some(az) = account() else { return };
    let data = content(1000);
    let container = az.seeded("closed", "a.bin", &data).await;
    let backend = az.backend(Some(&container));
    let resp = backend.fetch(&get(&container, "a.bin", Some(RangeSpec::FromTo(100, 199)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 100, end: 199 }));
    assert_eq!(resp.meta.size, 1000);
    assert_eq!(body_of(resp).await, &data[100..200]);
}

#[tokio::test]
async fn an_open_range_returns_the_rest_of_the_blob() {
    let Some(az) = account() else { return };
    let data = content(1000);
    let container = az.seeded("open", "a.bin", &data).await;
    let backend = az.backend(Some(&container));
    let resp = backend.fetch(&get(&container, "a.bin", Some(RangeSpec::From(990)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 990, end: 999 }));
    assert_eq!(body_of(resp).await, &data[990..]);
}

#[tokio::test]
async fn a_suffix_range_returns_the_last_bytes_although_azurite_mishandles_suffixes() {
    let Some(az) = account() else { return };
    let data = content(1000);
    let container = az.seeded("suffix", "a.bin", &data).await;
    let backend = az.backend(Some(&container));
    let resp = backend.fetch(&get(&container, "a.bin", Some(RangeSpec::Suffix(10)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 990, end: 999 }));
    assert_eq!(resp.meta.size, 1000);
    assert_eq!(body_of(resp).await, &data[990..]);
}

#[tokio::test]
async fn a_suffix_longer_than_the_blob_selects_all_of_it() {
    let Some(az) = account() else { return };
    let data = content(50);
    let container = az.seeded("longsuffix", "a.bin", &data).await;
    let backend = az.backend(Some(&container));
    let resp = backend.fetch(&get(&container, "a.bin", Some(RangeSpec::Suffix(500)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 0, end: 49 }));
    assert_eq!(body_of(resp).await, data);
}

#[tokio::test]
async fn unsatisfiable_ranges_are_416_with_the_blob_length() {
    let Some(az) = account() else { return };
    let container = az.seeded("unsat", "a.bin", &content(100)).await;
    let backend = az.backend(Some(&container));
    for range in [RangeSpec::FromTo(100, 200), RangeSpec::From(5000), RangeSpec::Suffix(0)] {
        let err = backend.fetch(&get(&container, "a.bin", Some(range), NONE)).await.unwrap_err();
        assert_eq!(err.kind, Kind::RangeNotSatisfiable { len: Some(100) }, "{range:?}: {}", err.message);
    }
    let mut req = head(&container, "a.bin", NONE);
    req.range = Some(RangeSpec::From(100));
    let err = backend.fetch(&req).await.unwrap_err();
    assert_eq!(err.kind, Kind::RangeNotSatisfiable { len: Some(100) });
}

#[tokio::test]
async fn any_range_of_an_empty_blob_is_416_with_length_zero() {
    let Some(az) = account() else { return };
    let container = az.seeded("empty", "empty.txt", b"").await;
    let backend = az.backend(Some(&container));
    let whole = backend.fetch(&get(&container, "empty.txt", None, NONE)).await.unwrap();
    assert_eq!((whole.part, whole.meta.size), (Part::Whole, 0));
    for range in [RangeSpec::Suffix(10), RangeSpec::From(0)] {
        let err = backend.fetch(&get(&container, "empty.txt", Some(range), NONE)).await.unwrap_err();
        assert_eq!(err.kind, Kind::RangeNotSatisfiable { len: Some(0) }, "{range:?}: {}", err.message);
    }
}

#[tokio::test]
async fn head_gives_the_metadata_a_get_would_and_no_body() {
    let Some(az) = account() else { return };
    let data = content(4321);
    let container = az.seeded("head", "a.mp4", &data).await;
    let backend = az.backend(Some(&container));
    let got = backend.fetch(&get(&container, "a.mp4", None, NONE)).await.unwrap();
    let resp = backend.fetch(&head(&container, "a.mp4", NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Whole);
    assert_eq!(resp.meta, got.meta);
    assert_eq!(resp.meta.size, 4321);
    assert!(body_of(resp).await.is_empty());

    let mut ranged = head(&container, "a.mp4", NONE);
    ranged.range = Some(RangeSpec::Suffix(21));
    let resp = backend.fetch(&ranged).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 4300, end: 4320 }));
    assert!(body_of(resp).await.is_empty());
}

#[tokio::test]
async fn if_none_match_with_the_current_etag_is_not_modified() {
    let Some(az) = account() else { return };
    let container = az.seeded("inm", "a.bin", &content(100)).await;
    let backend = az.backend(Some(&container));
    let etag = backend.fetch(&head(&container, "a.bin", NONE)).await.unwrap().meta.etag.clone().unwrap();
    let cond = Conditions { if_none_match: Some(etag.clone()), ..Conditions::default() };
    for req in [
        get(&container, "a.bin", None, &cond),
        get(&container, "a.bin", Some(RangeSpec::FromTo(0, 9)), &cond),
        get(&container, "a.bin", Some(RangeSpec::Suffix(10)), &cond),
        head(&container, "a.bin", &cond),
    ] {
        let resp = backend.fetch(&req).await.unwrap();
        assert_eq!(resp.part, Part::NotModified, "{req:?}");
        assert!(body_of(resp).await.is_empty());
    }
    let other = Conditions { if_none_match: Some("\"0x1\"".to_owned()), ..Conditions::default() };
    let resp = backend.fetch(&get(&container, "a.bin", None, &other)).await.unwrap();
    assert_eq!(resp.part, Part::Whole);
}

#[tokio::test]
async fn if_modified_since_a_later_date_is_not_modified() {
    let Some(az) = account() else { return };
    let container = az.seeded("ims", "a.bin", &content(100)).await;
    let backend = az.backend(Some(&container));
    let later =
        Conditions { if_modified_since: Some(SystemTime::now() + Duration::from_secs(60)), ..Conditions::default() };
    let resp = backend.fetch(&get(&container, "a.bin", None, &later)).await.unwrap();
    assert_eq!(resp.part, Part::NotModified);
}

#[tokio::test]
async fn if_match_with_another_etag_fails_the_precondition() {
    let Some(az) = account() else { return };
    let container = az.seeded("im", "a.bin", &content(100)).await;
    let backend = az.backend(Some(&container));
    let cond = Conditions { if_match: Some("\"0x8D000000DEADBEE\"".to_owned()), ..Conditions::default() };
    for req in [
        get(&container, "a.bin", None, &cond),
        get(&container, "a.bin", Some(RangeSpec::Suffix(5)), &cond),
        head(&container, "a.bin", &cond),
    ] {
        let err = backend.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::PreconditionFailed, "{req:?}: {}", err.message);
    }
    let past = Conditions { if_unmodified_since: Some(UNIX_EPOCH + Duration::from_secs(1)), ..Conditions::default() };
    let err = backend.fetch(&get(&container, "a.bin", None, &past)).await.unwrap_err();
    assert_eq!(err.kind, Kind::PreconditionFailed);

    let etag = backend.fetch(&head(&container, "a.bin", NONE)).await.unwrap().meta.etag.clone();
    let matching = Conditions { if_match: etag, ..Conditions::default() };
    let resp = backend.fetch(&get(&container, "a.bin", Some(RangeSpec::Suffix(5)), &matching)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 95, end: 99 }));
}

#[tokio::test]
async fn a_missing_blob_is_not_found_for_get_and_head() {
    let Some(az) = account() else { return };
    let container = az.seeded("nf", "a.bin", &content(10)).await;
    let backend = az.backend(Some(&container));
    for req in [
        get(&container, "missing.bin", None, NONE),
        get(&container, "missing.bin", Some(RangeSpec::Suffix(3)), NONE),
        head(&container, "missing.bin", NONE),
    ] {
        let err = backend.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::NotFound, "{req:?}: {}", err.message);
        assert!(err.message.contains("missing.bin"), "{}", err.message);
    }
}

#[tokio::test]
async fn a_missing_container_is_not_found() {
    let Some(az) = account() else { return };
    let container = unique_container("nocontainer");
    let backend = az.backend(None);
    for req in [get(&container, "a.bin", None, NONE), head(&container, "a.bin", NONE)] {
        let err = backend.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::NotFound, "{req:?}: {}", err.message);
        assert!(err.message.contains("ContainerNotFound"), "{}", err.message);
    }
}

#[tokio::test]
async fn a_wrong_account_key_is_upstream_denied_naming_the_integration() {
    let Some(az) = account() else { return };
    let container = az.seeded("wrongkey", "a.bin", &content(10)).await;
    let wrong_key = BASE64.encode([7u8; 64]);
    let cfg = az.config(Some(&container), AzureCredential::AccountKey(Secret::new(wrong_key.clone())));
    let backend = AzureBackend::new(INTEGRATION, &cfg, &upstream()).unwrap();
    for req in [get(&container, "a.bin", None, NONE), head(&container, "a.bin", NONE)] {
        let err = backend.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::UpstreamDenied, "{req:?}: {}", err.message);
        assert!(err.message.contains(&format!("\"{INTEGRATION}\"")), "{}", err.message);
        assert!(!err.message.contains(&wrong_key) && !err.detail().contains(&wrong_key));
    }
    let (code, message) = connection_test(&backend).await;
    assert!(code == "AuthorizationFailure" || code == "AuthenticationFailed", "{code}: {message}");
    assert!(message.contains("account_key"), "{message}");
}

#[tokio::test]
async fn a_sas_token_reads_blobs_ranges_and_metadata() {
    let Some(az) = account() else { return };
    let data = content(500);
    let container = az.seeded("sas", "dir/a b.mp4", &data).await;
    let backend = az.sas_backend(&container, &az.container_sas(&container, "rl"));
    let resp = backend.fetch(&get(&container, "dir/a b.mp4", None, NONE)).await.unwrap();
    assert_eq!(body_of(resp).await, data);
    let resp = backend.fetch(&get(&container, "dir/a b.mp4", Some(RangeSpec::Suffix(7)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 493, end: 499 }));
    assert_eq!(body_of(resp).await, &data[493..]);
    let resp = backend.fetch(&head(&container, "dir/a b.mp4", NONE)).await.unwrap();
    assert_eq!(resp.meta.size, 500);
    assert_eq!(
        backend.test_connection().await.unwrap(),
        format!("listed container {container} of account {}", az.account)
    );
    let err = backend.fetch(&get(&container, "missing", None, NONE)).await.unwrap_err();
    assert_eq!(err.kind, Kind::NotFound);
}

#[tokio::test]
async fn a_tampered_sas_token_is_upstream_denied_and_never_shown() {
    let Some(az) = account() else { return };
    let container = az.seeded("sastamper", "a.bin", &content(10)).await;
    let good = az.container_sas(&container, "rl");
    // Same token, but claiming more permissions than were signed.
    let tampered = good.replace("sp=rl", "sp=rwl");
    let sig = good.split("sig=").nth(1).unwrap().to_owned();
    let backend = az.sas_backend(&container, &tampered);
    for req in [get(&container, "a.bin", None, NONE), head(&container, "a.bin", NONE)] {
        let err = backend.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::UpstreamDenied, "{req:?}: {}", err.message);
        assert!(err.message.contains(&format!("\"{INTEGRATION}\"")));
        assert!(!err.detail().contains(&sig) && !err.detail().contains("sig="), "{}", err.detail());
    }
    let (code, message) = connection_test(&backend).await;
    assert_ne!(code, "ok", "{message}");
    assert!(!message.contains(&sig) && !message.contains("sig="), "{message}");
}

#[tokio::test]
async fn keys_with_every_special_character_round_trip_with_a_key_and_with_a_sas() {
    let Some(az) = account() else { return };
    let keys = [
        "space in name.txt",
        "plus+sign",
        "eq=at@colon:comma,semi;",
        "bang!star*quote'paren(x)",
        "bracket[1]dollar$amp&",
        "percent%25literal%",
        "dir//double/slash",
        "unicode/ünïcødé ✓ 日本.mp4",
        "trailing/",
        "all/ + = @ : , ; ! * ' ( ) [ ] $ & % // ü/",
        "~tilde-dash_under.dot",
    ];
    let container = unique_container("keys");
    az.create_container(&container).await;
    for (i, key) in keys.iter().enumerate() {
        az.put_blob(&container, key, format!("blob {i}: {key}").as_bytes(), "text/plain").await;
    }
    let mut stored = az.list_names(&container).await;
    stored.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(stored, expected, "the storage holds the keys literally");

    let by_key = az.backend(Some(&container));
    let by_sas = az.sas_backend(&container, &az.container_sas(&container, "rl"));
    for backend in [&by_key, &by_sas] {
        for (i, key) in keys.iter().enumerate() {
            let resp =
                backend.fetch(&get(&container, key, None, NONE)).await.unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(body_of(resp).await, format!("blob {i}: {key}").as_bytes(), "{key:?}");
            let resp = backend.fetch(&head(&container, key, NONE)).await.unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(resp.meta.size, format!("blob {i}: {key}").len() as u64);
        }
    }
}

#[tokio::test]
async fn the_connection_test_lists_the_configured_container() {
    let Some(az) = account() else { return };
    let container = az.seeded("conn", "a.bin", &content(10)).await;
    let listed = |c: &str| format!("listed container {c} of account {}", az.account);
    assert_eq!(az.backend(Some(&container)).test_connection().await.unwrap(), listed(&container));
    let empty = unique_container("connempty");
    az.create_container(&empty).await;
    assert_eq!(az.backend(Some(&empty)).test_connection().await.unwrap(), listed(&empty));
}

#[tokio::test]
async fn the_connection_test_lists_the_containers_when_none_is_configured() {
    let Some(az) = account() else { return };
    let msg = az.backend(None).test_connection().await.unwrap();
    assert_eq!(msg, format!("listed the containers of account {}", az.account));
}

#[tokio::test]
async fn the_connection_test_names_a_missing_container() {
    let Some(az) = account() else { return };
    let container = unique_container("connmissing");
    let (code, message) = connection_test(&az.backend(Some(&container))).await;
    assert_eq!(code, "ContainerNotFound", "{message}");
    assert!(message.contains(&container), "{message}");
}

#[tokio::test]
async fn the_connection_test_fails_with_a_transport_error_when_nothing_listens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (code, message) = connection_test(&scripted_backend(port)).await;
    assert_eq!(code, "connect", "{message}");
    assert!(message.contains(INTEGRATION), "{message}");
}

// ---------------------------------------------------------------------------
// Behaviour a real service cannot be made to show on demand (a blob changing
// between two requests, a 416 without its length), against a scripted server.

/// What the scripted server saw: method, `x-ms-range`, `If-Match`, whether signed.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: Method,
    range: Option<String>,
    if_match: Option<String>,
    signed: bool,
}

type Script = dyn Fn(usize, &Seen) -> http::Response<Full<Bytes>> + Send + Sync;

/// Serves `script` (given the request's index and what it carried) on a
/// loopback port; returns the port and the log of requests.
async fn scripted_server(script: Arc<Script>) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let served = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (script, log) = (script.clone(), served.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let text = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let seen = Seen {
                        method: req.method().clone(),
                        range: text("x-ms-range"),
                        if_match: text("if-match"),
                        signed: text("authorization").is_some_and(|a| a.starts_with("SharedKey devstoreaccount1:")),
                    };
                    let index = {
                        let mut log = log.lock().unwrap();
                        log.push(seen.clone());
                        log.len() - 1
                    };
                    let resp = script(index, &seen);
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (port, log)
}

fn scripted_backend(port: u16) -> AzureBackend {
    let cfg = AzureConfig {
        storage_url: AzureStorageUrl {
            scheme: "http".to_owned(),
            host: "127.0.0.1".to_owned(),
            port: Some(port),
            account: "devstoreaccount1".to_owned(),
            container: Some("media".to_owned()),
            path_style: true,
        },
        credential: AzureCredential::AccountKey(Secret::new(BASE64.encode([1u8; 64]))),
        ca_file: None,
    };
    AzureBackend::new(INTEGRATION, &cfg, &upstream()).unwrap()
}

/// A blob answer: `status`, the version's ETag, and extra headers.
fn answer(status: u16, etag: &str, headers: &[(&str, String)], body: &'static [u8]) -> http::Response<Full<Bytes>> {
    let mut resp = http::Response::new(Full::new(Bytes::from_static(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap();
    resp.headers_mut().insert(header::ETAG, HeaderValue::from_str(etag).unwrap());
    for (name, value) in headers {
        resp.headers_mut().insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    }
    resp
}

#[tokio::test]
async fn a_suffix_read_starts_over_once_when_the_blob_changes_between_head_and_get() {
    // Version 1 is 100 bytes; it is replaced by the 50-byte version 2 right
    // after the first HEAD, so the first pinned GET fails with 412.
    let script: Arc<Script> = Arc::new(|index, seen| match (index, &seen.method) {
        (0, &Method::HEAD) => answer(200, "\"v1\"", &[("content-length", "100".into())], b""),
        (1, &Method::GET) => answer(412, "\"v2\"", &[("x-ms-error-code", "ConditionNotMet".into())], b""),
        (2, &Method::HEAD) => answer(200, "\"v2\"", &[("content-length", "50".into())], b""),
        (3, &Method::GET) if seen.if_match.as_deref() == Some("\"v2\"") => answer(
            206,
            "\"v2\"",
            &[("content-range", "bytes 40-49/50".into()), ("content-length", "10".into())],
            b"0123456789",
        ),
        _ => answer(500, "\"x\"", &[], b"unexpected request"),
    });
    let (port, log) = scripted_server(script).await;
    let backend = scripted_backend(port);
    let resp = backend.fetch(&get("media", "a.bin", Some(RangeSpec::Suffix(10)), NONE)).await.unwrap();
    assert_eq!(resp.part, Part::Range(ByteSpan { start: 40, end: 49 }));
    assert_eq!(resp.meta.size, 50);
    assert_eq!(body_of(resp).await, b"0123456789");
    let log = log.lock().unwrap().clone();
    let seen = |method: Method, range: Option<&str>, if_match: Option<&str>| Seen {
        method,
        range: range.map(str::to_owned),
        if_match: if_match.map(str::to_owned),
        signed: true,
    };
    assert_eq!(
        log,
        [
            seen(Method::HEAD, None, None),
            seen(Method::GET, Some("bytes=90-99"), Some("\"v1\"")),
            seen(Method::HEAD, None, None),
            seen(Method::GET, Some("bytes=40-49"), Some("\"v2\"")),
        ]
    );
}

#[tokio::test]
async fn a_suffix_read_gives_up_when_the_blob_keeps_changing() {
    let script: Arc<Script> = Arc::new(|_, seen| match seen.method {
        Method::HEAD => answer(200, "\"v\"", &[("content-length", "100".into())], b""),
        _ => answer(412, "\"w\"", &[("x-ms-error-code", "ConditionNotMet".into())], b""),
    });
    let (port, log) = scripted_server(script).await;
    let err =
        scripted_backend(port).fetch(&get("media", "a.bin", Some(RangeSpec::Suffix(10)), NONE)).await.unwrap_err();
    assert_eq!(err.kind, Kind::UpstreamError, "{}", err.message);
    assert!(err.message.contains("changed") && err.message.contains(INTEGRATION), "{}", err.message);
    assert_eq!(log.lock().unwrap().len(), 4, "two HEAD + GET pairs, then no more");
}

#[tokio::test]
async fn a_416_without_the_length_learns_it_from_the_blob_properties() {
    let script: Arc<Script> = Arc::new(|_, seen| match seen.method {
        Method::HEAD => answer(200, "\"v\"", &[("content-length", "77".into())], b""),
        _ => answer(416, "\"v\"", &[("x-ms-error-code", "InvalidRange".into())], b""),
    });
    let (port, _) = scripted_server(script).await;
    let err = scripted_backend(port).fetch(&get("media", "a.bin", Some(RangeSpec::From(500)), NONE)).await.unwrap_err();
    assert_eq!(err.kind, Kind::RangeNotSatisfiable { len: Some(77) }, "{}", err.message);
}
