//! Storage faults: what a client sees when the storage answers 503s and
//! 500s, cuts a body, stalls, cannot be resolved or presents a bad
//! certificate; how many times mediagate asks; and `stale_if_error` under
//! each fault.
//!
//! No real server fails on demand, so the storage here is a stand-in written
//! below: a small hyper server on `127.0.0.1:0` answering like S3 (HEAD, GET,
//! one range, `If-None-Match`), scripted reply by reply, counting requests,
//! over plain HTTP or over TLS with certificates made by the test (rcgen).
//! DNS failures use names under `.invalid` (RFC 6761 section 6.4) and `.test`.

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{
    MediaGate, TestResponse, config, get, get_streaming, get_streaming_with_pause, pattern_bytes, pem, runtime,
    sha256_hex, toml_str, wait_until,
};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ETAG: &str = "\"v1\"";
const BUCKET: &str = "media";
const KEY: &str = "clip.bin";

// ------------------------------------------------------------------ the stand-in storage

/// One answer of the stand-in storage.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reply {
    /// The object, as S3 serves it (HEAD, GET, a range, 304 on a matching `If-None-Match`).
    Object,
    /// An S3 error answer: status, `<Code>`, and a `Retry-After` if given.
    Error(u16, &'static str, Option<&'static str>),
    /// No answer at all for a minute.
    Stall,
    /// The connection closed before any answer.
    Close,
    /// `200` with the whole `Content-Length`, this many bytes, then the
    /// connection cut once the test calls [`Storage::release_cut`] (a `HEAD`
    /// gets [`Reply::Object`]).
    Cut(usize),
}

struct Script {
    /// Replies for the next requests, in order.
    next: VecDeque<Reply>,
    /// The reply once `next` is empty.
    then: Reply,
}

/// The stand-in S3 storage, serving one object `media/clip.bin`.
struct Storage {
    addr: SocketAddr,
    data: Bytes,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
    gets: Arc<AtomicU64>,
    /// Opened by the test once its client has the first bytes of a [`Reply::Cut`].
    cut: Arc<tokio::sync::Notify>,
    /// For TLS: the server config new connections get (swapped to change certificates).
    tls: Option<Arc<Mutex<Arc<rustls::ServerConfig>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Storage {
    /// Plain HTTP, keep-alive on.
    fn start(data: Vec<u8>) -> Storage {
        Storage::spawn(data, None, true)
    }

    /// Plain HTTP, every answer closing its connection: once the accept loop
    /// stops, the next request is refused.
    fn start_closing(data: Vec<u8>) -> Storage {
        Storage::spawn(data, None, false)
    }

    /// HTTPS with `tls`; every answer closes its connection, so each request
    /// makes a new handshake with the current certificate.
    fn start_tls(data: Vec<u8>, tls: rustls::ServerConfig) -> Storage {
        Storage::spawn(data, Some(Arc::new(Mutex::new(Arc::new(tls)))), false)
    }

    fn spawn(data: Vec<u8>, tls: Option<Arc<Mutex<Arc<rustls::ServerConfig>>>>, keep_alive: bool) -> Storage {
        let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().unwrap();
        let data = Bytes::from(data);
        let script = Arc::new(Mutex::new(Script { next: VecDeque::new(), then: Reply::Object }));
        let (requests, gets) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let cut = Arc::new(tokio::sync::Notify::new());
        let state = Served {
            data: data.clone(),
            script: script.clone(),
            requests: requests.clone(),
            gets: gets.clone(),
            cut: cut.clone(),
        };
        let tls_cfg = tls.clone();
        let task = runtime().spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let state = state.clone();
                let tls_cfg = tls_cfg.as_ref().map(|c| c.lock().unwrap().clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| state.clone().answer(req));
                    let mut http = hyper::server::conn::http1::Builder::new();
                    http.keep_alive(keep_alive);
                    match tls_cfg {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(cfg) => {
                            // A refused handshake (the point of some tests) ends here.
                            let Ok(stream) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await else { return };
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Storage { addr, data, script, requests, gets, cut, tls, task }
    }

    /// The next replies, then `then` for every later request.
    fn script(&self, next: &[Reply], then: Reply) {
        let mut s = self.script.lock().unwrap();
        s.next = next.iter().copied().collect();
        s.then = then;
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    fn gets(&self) -> u64 {
        self.gets.load(Ordering::SeqCst)
    }

    /// Lets a [`Reply::Cut`] body break off (now, or as soon as it reaches the cut).
    fn release_cut(&self) {
        self.cut.notify_one();
    }

    /// New connections get `cfg` (existing ones keep theirs).
    fn set_tls(&self, cfg: rustls::ServerConfig) {
        *self.tls.as_ref().expect("a TLS stand-in").lock().unwrap() = Arc::new(cfg);
    }

    /// An S3 integration `faulty` for bucket `media` at this stand-in, reached as `endpoint`.
    fn integration(&self, endpoint: &str, extra: &str) -> String {
        s3_integration(endpoint, self.addr.port(), self.tls.is_some(), extra)
    }
}

fn s3_integration(endpoint: &str, port: u16, tls: bool, extra: &str) -> String {
    format!(
        "[[integration]]\nname = \"faulty\"\ntype = \"s3\"\nendpoint = {}\nport = {port}\ntls = {tls}\n\
         region = \"us-east-1\"\naccess_key_id = \"AKFAULTS\"\nsecret_access_key = \"not-a-real-secret\"\n\
         buckets = [\"{BUCKET}\"]\naddressing = \"path\"\n{extra}\n",
        toml_str(endpoint)
    )
}

type Answer = Response<BoxBody<Bytes, std::io::Error>>;

#[derive(Clone)]
struct Served {
    data: Bytes,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
    gets: Arc<AtomicU64>,
    cut: Arc<tokio::sync::Notify>,
}

impl Served {
    async fn answer(self, req: Request<Incoming>) -> Result<Answer, std::io::Error> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if req.method() == Method::GET {
            self.gets.fetch_add(1, Ordering::SeqCst);
        }
        let reply = {
            let mut s = self.script.lock().unwrap();
            let then = s.then;
            s.next.pop_front().unwrap_or(then)
        };
        let head = req.method() == Method::HEAD;
        match reply {
            Reply::Object => Ok(self.object(&req)),
            Reply::Cut(_) if head => Ok(self.object(&req)),
            Reply::Error(status, code, retry_after) => {
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>try again</Message></Error>"
                );
                let mut resp = Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, "application/xml")
                    .header("x-ms-error-code", code);
                if let Some(after) = retry_after {
                    resp = resp.header(header::RETRY_AFTER, after);
                }
                let body = if head { Bytes::new() } else { Bytes::from(xml) };
                Ok(resp.body(full(body)).unwrap())
            }
            // Never answers: mediagate's timeout is what ends the request.
            Reply::Stall => std::future::pending().await,
            Reply::Close => Err(std::io::Error::other("the stand-in closes the connection without answering")),
            Reply::Cut(n) => {
                // The cut waits until the test's client has the first bytes
                // (an error at once would drop them and the head with them).
                let first = futures_util::stream::iter([Ok(Frame::data(self.data.slice(..n)))]);
                let gate = self.cut.clone();
                let cut = futures_util::stream::once(async move {
                    gate.notified().await;
                    Err(std::io::Error::other("the stand-in cuts the body"))
                });
                let body = StreamBody::new(futures_util::StreamExt::chain(first, cut));
                Ok(Response::builder()
                    .header(header::CONTENT_LENGTH, self.data.len())
                    .header(header::ETAG, ETAG)
                    .body(BodyExt::boxed(body))
                    .unwrap())
            }
        }
    }

    /// `GET`/`HEAD` of the object: 200, 206 for `bytes=a-b` / `bytes=a-`, 304 for `If-None-Match: "v1"`.
    fn object(&self, req: &Request<Incoming>) -> Answer {
        let len = self.data.len() as u64;
        let base = |status: u16| {
            Response::builder()
                .status(status)
                .header(header::ETAG, ETAG)
                .header(header::LAST_MODIFIED, "Wed, 02 Dec 2026 12:00:00 GMT")
                .header(header::CONTENT_TYPE, "application/octet-stream")
        };
        if req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v == ETAG) {
            return base(304).body(full(Bytes::new())).unwrap();
        }
        let range = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| {
            let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
            let start: u64 = a.parse().ok()?;
            let end = if b.is_empty() { len - 1 } else { b.parse::<u64>().ok()?.min(len - 1) };
            (start <= end).then_some((start, end))
        });
        let (resp, body) = match range {
            Some((s, e)) => (
                base(206).header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}")),
                self.data.slice(s as usize..=e as usize),
            ),
            None => (base(200), self.data.clone()),
        };
        let resp = resp.header(header::CONTENT_LENGTH, body.len());
        let body = if req.method() == Method::HEAD { Bytes::new() } else { body };
        resp.body(full(body)).unwrap()
    }
}

fn full(b: Bytes) -> BoxBody<Bytes, std::io::Error> {
    Full::new(b).map_err(|never: Infallible| match never {}).boxed()
}

// ------------------------------------------------------------------ certificates

/// Year, month, day.
type Date = (i32, u8, u8);

/// A CA, and leaf certificates it signs.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    fn write_pem(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, pem("CERTIFICATE", self.issuer.as_ref().der())).unwrap();
        path
    }

    /// A server config presenting a certificate for `names`, valid from
    /// `validity.0` to `validity.1` (`None`: rcgen's default, valid now).
    fn server(&self, names: &[&str], validity: Option<(Date, Date)>) -> rustls::ServerConfig {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some(((y1, m1, d1), (y2, m2, d2))) = validity {
            params.not_before = rcgen::date_time_ymd(y1, m1, d1);
            params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap()
    }
}

/// The stand-in's name: under `.localhost`, which mediagate resolves to loopback.
const TLS_HOST: &str = "storage.localhost";

// ------------------------------------------------------------------ helpers

fn no_cache() -> &'static str {
    "[cache]\nenabled = false\n"
}

fn url(mg: &MediaGate) -> String {
    mg.path_url("s3", BUCKET, KEY)
}

fn assert_error(r: &TestResponse, status: StatusCode, code: &str, fragment: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    assert_eq!(r.error_code(), code, "{}", r.describe());
    assert!(r.error_message().contains(fragment), "the message should say {fragment:?}: {}", r.error_message());
}

/// The log lines of retries, as `attempt` numbers.
fn retries_logged(mg: &MediaGate) -> Vec<u64> {
    mg.logs()
        .iter()
        .filter(|l| l["message"] == "the storage asked to try again; retrying" && l["integration"] == "faulty")
        .filter_map(|l| l["attempt"].as_u64())
        .collect()
}

// ------------------------------------------------------------------ retries before the first byte

#[test]
fn two_503s_then_a_200_give_the_object_after_exactly_three_storage_requests() {
    let data = pattern_bytes(50_000, 1);
    let storage = Storage::start(data.clone());
    storage.script(&[Reply::Error(503, "SlowDown", None), Reply::Error(503, "SlowDown", None)], Reply::Object);
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    let r = get(&url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..]);
    assert_eq!(storage.requests(), 3);
    assert!(wait_until(Duration::from_secs(5), || retries_logged(&mg) == [1, 2]), "{}", mg.stderr_text());
}

#[test]
fn a_storm_of_503s_gives_502_upstream_error_after_exactly_three_attempts() {
    let storage = Storage::start(pattern_bytes(1000, 2));
    storage.script(&[], Reply::Error(503, "SlowDown", None));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    let r = get(&url(&mg), &[]);
    assert_error(&r, StatusCode::BAD_GATEWAY, "upstream_error", "503 (SlowDown: try again)");
    assert_eq!(storage.requests(), 3);
}

#[test]
fn a_500_then_a_200_is_retried_once_and_a_head_is_retried_too() {
    let storage = Storage::start(pattern_bytes(1000, 3));
    storage.script(&[Reply::Error(500, "InternalError", None)], Reply::Object);
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    assert_eq!(get(&url(&mg), &[]).status, StatusCode::OK);
    assert_eq!(storage.requests(), 2);
    storage.script(&[Reply::Error(500, "InternalError", None)], Reply::Object);
    let r = common::head(&url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(storage.requests(), 4);
}

#[test]
fn s3_502_and_504_answers_are_retried_too() {
    let storage = Storage::start(pattern_bytes(1000, 4));
    storage.script(&[Reply::Error(502, "BadGateway", None)], Reply::Error(504, "GatewayTimeout", None));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    assert_error(&get(&url(&mg), &[]), StatusCode::BAD_GATEWAY, "upstream_error", "504 (GatewayTimeout");
    assert_eq!(storage.requests(), 3);
}

#[test]
fn azure_server_busy_answers_are_retried_like_s3_slow_downs() {
    let data = pattern_bytes(5000, 5);
    let storage = Storage::start(data.clone());
    let azure = format!(
        "[[integration]]\nname = \"faulty\"\ntype = \"azure-blob\"\n\
         storage_url = \"http://127.0.0.1:{}/devstoreaccount1/{BUCKET}\"\nsas_token = \"sv=2022-11-02&sp=r&sig=c3RhbmQtaW4%3D\"\n",
        storage.addr.port()
    );
    let mg = MediaGate::start(&config(&[&azure, no_cache()]));
    let url = mg.url(&format!("/az/devstoreaccount1/{BUCKET}/{KEY}"));
    storage.script(&[Reply::Error(503, "ServerBusy", None), Reply::Error(500, "InternalError", None)], Reply::Object);
    let r = get(&url, &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..]);
    assert_eq!(storage.requests(), 3);
    storage.script(&[], Reply::Error(503, "ServerBusy", None));
    assert_error(&get(&url, &[]), StatusCode::BAD_GATEWAY, "upstream_error", "ServerBusy");
    assert_eq!(storage.requests(), 6);
}

#[test]
fn a_retry_after_longer_than_the_retry_budget_ends_the_retries() {
    let storage = Storage::start(pattern_bytes(1000, 5));
    storage.script(&[], Reply::Error(503, "SlowDown", Some("3600")));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    assert_error(&get(&url(&mg), &[]), StatusCode::BAD_GATEWAY, "upstream_error", "SlowDown");
    assert_eq!(storage.requests(), 1);
}

#[test]
fn a_short_retry_after_is_honoured() {
    let storage = Storage::start(pattern_bytes(1000, 6));
    storage.script(&[Reply::Error(503, "SlowDown", Some("1"))], Reply::Object);
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    let started = std::time::Instant::now();
    assert_eq!(get(&url(&mg), &[]).status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(1), "answered after {:?}", started.elapsed());
    assert_eq!(storage.requests(), 2);
}

#[test]
fn a_404_and_a_403_are_not_retried() {
    let storage = Storage::start(pattern_bytes(1000, 7));
    storage.script(&[Reply::Error(404, "NoSuchKey", None)], Reply::Error(403, "AccessDenied", None));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    assert_error(&get(&url(&mg), &[]), StatusCode::NOT_FOUND, "not_found", "does not exist");
    assert_eq!(storage.requests(), 1);
    assert_error(&get(&url(&mg), &[]), StatusCode::BAD_GATEWAY, "upstream_denied", "AccessDenied");
    assert_eq!(storage.requests(), 2);
}

#[test]
fn a_connection_closed_before_any_answer_is_retried() {
    let data = pattern_bytes(30_000, 8);
    let storage = Storage::start(data.clone());
    storage.script(&[Reply::Close], Reply::Object);
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    let r = get(&url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &data[..]);
    assert_eq!(storage.requests(), 2);
}

#[test]
fn a_refused_connection_is_retried_then_gives_502_saying_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mg = MediaGate::start(&config(&[&s3_integration("127.0.0.1", port, false, ""), no_cache()]));
    let r = get(&url(&mg), &[]);
    assert_error(&r, StatusCode::BAD_GATEWAY, "upstream_error", &format!("(127.0.0.1:{port}): connection refused"));
    assert!(wait_until(Duration::from_secs(5), || retries_logged(&mg) == [1, 2]), "{}", mg.stderr_text());
}

#[test]
fn a_cut_after_the_first_byte_is_not_retried_aborts_the_client_and_leaves_nothing_in_the_cache() {
    let data = pattern_bytes(200_000, 9);
    let storage = Storage::start(data.clone());
    storage.script(&[], Reply::Cut(10_000));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", "")]));
    let (status, _, outcome, _) = get_streaming_with_pause(&url(&mg), &[], 1, || storage.release_cut());
    assert_eq!(status, StatusCode::OK);
    let err = outcome.expect_err("the client must see the body break off");
    assert!(!err.starts_with(common::CLIENT_TIMEOUT), "{err}");
    assert_eq!(storage.gets(), 1, "a body cut after its first byte must not be asked again");
    // The next reader gets the whole object from the storage, not a cached half.
    storage.script(&[], Reply::Object);
    let (status, _, outcome, sha) = get_streaming(&url(&mg), &[]);
    assert_eq!((status, outcome), (StatusCode::OK, Ok(data.len() as u64)));
    assert_eq!(sha, sha256_hex(&data));
    assert_eq!(storage.gets(), 2);
}

#[test]
fn a_cut_without_the_cache_is_not_retried_either() {
    let storage = Storage::start(pattern_bytes(100_000, 10));
    storage.script(&[], Reply::Cut(5_000));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), no_cache()]));
    let (status, _, outcome, _) = get_streaming_with_pause(&url(&mg), &[], 1, || storage.release_cut());
    assert_eq!(status, StatusCode::OK);
    assert!(outcome.is_err_and(|e| !e.starts_with(common::CLIENT_TIMEOUT)));
    assert_eq!(storage.requests(), 1);
}

#[test]
fn a_stall_gives_504_and_is_not_retried() {
    let storage = Storage::start(pattern_bytes(1000, 11));
    storage.script(&[], Reply::Stall);
    let upstream = "[upstream]\nfirst_byte_timeout = \"1s\"\n";
    let mg = MediaGate::start(&config(&[upstream, &storage.integration("127.0.0.1", ""), no_cache()]));
    assert_error(&get(&url(&mg), &[]), StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", "did not answer within 1s");
    assert_eq!(storage.requests(), 1);
}

// ------------------------------------------------------------------ DNS and TLS

#[test]
fn a_host_under_invalid_gives_502_saying_it_could_not_be_resolved() {
    let mg = MediaGate::start(&config(&[&s3_integration("storage.invalid", 9000, false, ""), no_cache()]));
    assert_error(&get(&url(&mg), &[]), StatusCode::BAD_GATEWAY, "upstream_error", "could not resolve storage.invalid");
    assert!(retries_logged(&mg).is_empty(), "a DNS failure is not retried");
}

#[test]
fn a_host_the_system_resolver_does_not_know_gives_502_saying_it_could_not_be_resolved() {
    let mg = MediaGate::start(&config(&[&s3_integration("no-such-storage.test", 9000, false, ""), no_cache()]));
    assert_error(
        &get(&url(&mg), &[]),
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "could not resolve no-such-storage.test",
    );
}

fn tls_setup(presented: rustls::ServerConfig, trusted: &Ca, extra: &str) -> (Storage, MediaGate, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = trusted.write_pem(dir.path());
    let storage = Storage::start_tls(pattern_bytes(20_000, 12), presented);
    let ca = format!("ca_file = {}", toml_str(&ca_file.to_string_lossy()));
    let mg = MediaGate::start(&config(&[&storage.integration(TLS_HOST, &ca), extra]));
    (storage, mg, dir)
}

#[test]
fn a_certificate_from_a_trusted_ca_file_serves_the_object() {
    let ca = Ca::new("mediagate test CA");
    let (storage, mg, _dir) = tls_setup(ca.server(&[TLS_HOST], None), &ca, no_cache());
    let r = get(&url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &storage.data[..]);
}

#[test]
fn a_certificate_from_an_unknown_ca_gives_502_saying_set_ca_file() {
    let (ca, other) = (Ca::new("trusted CA"), Ca::new("someone else's CA"));
    let (storage, mg, _dir) = tls_setup(other.server(&[TLS_HOST], None), &ca, no_cache());
    let r = get(&url(&mg), &[]);
    assert_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "certificate is not trusted: unknown issuer; set ca_file",
    );
    assert_eq!(storage.requests(), 0);
    assert!(retries_logged(&mg).is_empty(), "a certificate failure is not retried");
}

#[test]
fn an_expired_certificate_gives_502_saying_when_it_expired() {
    let ca = Ca::new("mediagate test CA");
    let (_storage, mg, _dir) = tls_setup(ca.server(&[TLS_HOST], Some(((2020, 1, 1), (2020, 1, 2)))), &ca, no_cache());
    let r = get(&url(&mg), &[]);
    assert_error(&r, StatusCode::BAD_GATEWAY, "upstream_error", "certificate expired on Thu, 02 Jan 2020 00:00:00 GMT");
}

#[test]
fn a_certificate_for_another_host_gives_502_saying_it_is_not_valid_for_the_host() {
    let ca = Ca::new("mediagate test CA");
    let (_storage, mg, _dir) = tls_setup(ca.server(&["other.example"], None), &ca, no_cache());
    let r = get(&url(&mg), &[]);
    assert_error(
        &r,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        &format!("certificate is not valid for {TLS_HOST} (it names other.example)"),
    );
}

// ------------------------------------------------------------------ stale_if_error under each fault

/// Fills the cache, turns `fault` on, then waits for the entry to be served
/// stale (past `ttl`, within `stale_if_error`), then for the error once
/// `stale_if_error` is over too; returns that error response.
fn stale_then_error(storage: &Storage, mg: &MediaGate, fault: impl FnOnce()) -> TestResponse {
    let first = get(&url(mg), &[]);
    assert_eq!(first.status, StatusCode::OK, "{}", first.describe());
    assert_eq!(first.body.as_ref(), &storage.data[..]);
    fault();
    let mut stale = None;
    let served_stale = wait_until(Duration::from_secs(20), || {
        let r = get(&url(mg), &[]);
        let is_stale = r.header("cache-status").is_some_and(|s| s.contains("detail=stale-if-error"));
        if is_stale {
            stale = Some(r);
        } else {
            assert_eq!(r.status, StatusCode::OK, "before stale_if_error: {}", r.describe());
        }
        is_stale
    });
    assert!(served_stale, "never served stale: {}", mg.stderr_text());
    let stale = stale.unwrap();
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body.as_ref(), &storage.data[..]);
    let mut error = None;
    let errored = wait_until(Duration::from_secs(20), || {
        let r = get(&url(mg), &[]);
        let failed = r.status != StatusCode::OK;
        if failed {
            error = Some(r);
        }
        failed
    });
    assert!(errored, "still served past stale_if_error");
    error.unwrap()
}

const STALE: &str = "[cache]\nttl = \"1s\"\nstale_if_error = \"3s\"\n";

#[test]
fn a_503_storm_serves_the_entry_stale_within_stale_if_error_and_502_after() {
    let storage = Storage::start(pattern_bytes(30_000, 20));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), STALE]));
    let e = stale_then_error(&storage, &mg, || storage.script(&[], Reply::Error(503, "SlowDown", None)));
    assert_error(&e, StatusCode::BAD_GATEWAY, "upstream_error", "503");
}

#[test]
fn a_500_serves_the_entry_stale_within_stale_if_error_and_502_after() {
    let storage = Storage::start(pattern_bytes(30_000, 21));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), STALE]));
    let e = stale_then_error(&storage, &mg, || storage.script(&[], Reply::Error(500, "InternalError", None)));
    assert_error(&e, StatusCode::BAD_GATEWAY, "upstream_error", "500");
}

#[test]
fn a_stall_serves_the_entry_stale_within_stale_if_error_and_504_after() {
    let storage = Storage::start(pattern_bytes(30_000, 22));
    let upstream = "[upstream]\nfirst_byte_timeout = \"1s\"\n";
    let mg = MediaGate::start(&config(&[upstream, &storage.integration("127.0.0.1", ""), STALE]));
    let e = stale_then_error(&storage, &mg, || storage.script(&[], Reply::Stall));
    assert_error(&e, StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", "did not answer within 1s");
}

#[test]
fn a_tls_failure_serves_the_entry_stale_within_stale_if_error_and_502_after() {
    let (ca, other) = (Ca::new("trusted CA"), Ca::new("someone else's CA"));
    let (storage, mg, _dir) = tls_setup(ca.server(&[TLS_HOST], None), &ca, STALE);
    let e = stale_then_error(&storage, &mg, || storage.set_tls(other.server(&[TLS_HOST], None)));
    assert_error(&e, StatusCode::BAD_GATEWAY, "upstream_error", "certificate is not trusted: unknown issuer");
}

#[test]
fn a_refused_connection_serves_the_entry_stale_within_stale_if_error_and_502_after() {
    // The closest to a DNS failure a running process can be given: the
    // storage's address stops answering. (A name cannot stop resolving under a
    // running mediagate without changing the machine's resolver; the DNS
    // failure itself is checked above, and stale_if_error treats every
    // storage error but a 404 alike.)
    let mut storage = Storage::start_closing(pattern_bytes(30_000, 23));
    let mg = MediaGate::start(&config(&[&storage.integration("127.0.0.1", ""), STALE]));
    let task = std::mem::replace(&mut storage.task, runtime().spawn(async {}));
    let e = stale_then_error(&storage, &mg, move || {
        task.abort();
        let _ = runtime().block_on(task);
    });
    assert_error(&e, StatusCode::BAD_GATEWAY, "upstream_error", "connection refused");
}
