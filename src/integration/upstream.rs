//! The HTTP client every remote integration uses to reach its storage: a
//! pooled keep-alive hyper client over rustls, with connect, first-byte and
//! read (idle) timeouts, and the mapping of storage answers to mediagate's
//! errors and object metadata.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Sleep;

use crate::error::{Error, Kind, Result};
use crate::http::body::{Body, BoxError};
use crate::http::range::{parse_content_range, parse_unsatisfied_content_range};
use crate::integration::retry::{self, RetryPolicy};
use crate::integration::transport::{self, ResolveError};
use crate::integration::{ObjectMeta, ObjectResponse, Part};
use crate::metrics::{Metrics, UpstreamMetrics};

pub(crate) type Connector = HttpsConnector<HttpConnector<LocalhostResolver>>;

/// A failed attempt that may be retried: a "try again" answer, or a refused
/// or reset connection.
enum TryAgain {
    Answer(Response<Incoming>),
    Transport(transport::Failure, hyper_util::client::legacy::Error),
}

/// The most a storage connection buffers of a response before mediagate
/// takes it (hyper's default is about 400 KiB). Every open or pooled storage
/// connection may hold this much, so it is a term of the memory bound
/// (README, "Memory"). 64 KiB cut a cold read's instructions per byte by
/// 23 % but not its time (benchmark 3 pinned: 0.55x s3s-fs direct with
/// either), and at 256 connections of mixed load it raised the peak RSS
/// from 102-105 MiB to 126-133 MiB, past issue 7's bound of 112 MiB, so
/// 16 KiB it is (docs/BENCHMARKS.md, 2026-12-03).
const READ_BUFFER_BYTES: usize = 16 << 10;

/// `[upstream]`: how mediagate talks to storage, for every integration.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `connect_timeout`, default `5s` (TCP + TLS).
    pub connect_timeout: Duration,
    /// `first_byte_timeout`, default `30s`: request sent to response head received.
    pub first_byte_timeout: Duration,
    /// `read_timeout`, default `30s`: longest silence between two body chunks.
    pub read_timeout: Duration,
    /// `pool_idle_timeout`, default `90s`.
    pub pool_idle_timeout: Duration,
    /// `pool_max_idle_per_host`, default 64.
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
        }
    }
}

/// A pooled HTTP/1.1 client for one integration's storage.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<Connector, Empty<Bytes>>,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
    /// The integration's name, for messages.
    integration: Arc<str>,
    metrics: UpstreamMetrics,
}

impl UpstreamClient {
    /// Builds the client; `ca_file` adds PEM roots to the built-in ones.
    pub fn new(cfg: &UpstreamConfig, ca_file: Option<&Path>, integration: &str) -> Result<UpstreamClient, String> {
        let https = connector(cfg, ca_file)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(cfg.pool_idle_timeout)
            .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
            .http1_max_buf_size(READ_BUFFER_BYTES)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(https);
        Ok(UpstreamClient {
            client,
            connect_timeout: cfg.connect_timeout,
            first_byte_timeout: cfg.first_byte_timeout,
            read_timeout: cfg.read_timeout,
            retry: RetryPolicy::for_first_byte_timeout(cfg.first_byte_timeout),
            integration: Arc::from(integration),
            metrics: UpstreamMetrics::default(),
        })
    }

    /// Records every request to the storage in `metrics` (default: nothing).
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = metrics.upstream(&self.integration);
        self
    }

    pub fn integration(&self) -> &str {
        &self.integration
    }

    /// `[upstream] connect_timeout` (TCP and TLS), to name in messages.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Sends a request and waits for the response head, within the connect
    /// and first-byte timeouts. A `GET` or `HEAD` that gets a "try again"
    /// answer (a 5xx or 429, a refused or reset connection) is sent again
    /// under [`RetryPolicy`]; nothing of an answer has reached the client at
    /// this point, and the whole exchange, retries included, stays within
    /// `first_byte_timeout`. The last answer is returned as it came.
    ///
    /// Recorded in the metrics once, retries included: the outcome, the
    /// time to the answer's head, and a failure's code (the code of an
    /// error answer is recorded by [`Self::error_from_response`]).
    pub async fn send(&self, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>> {
        self.try_send(req).await.map_err(|e| e.into_error(&self.integration))
    }

    /// [`UpstreamClient::send`], with the reason there was no answer kept
    /// as data (for the connection test, which words it for a person).
    pub async fn try_send(&self, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, NoAnswer> {
        let host = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        let started = Instant::now();
        let result = match tokio::time::timeout(self.first_byte_timeout, self.send_with_retries(req, &host)).await {
            Ok(result) => result,
            Err(_) => Err(NoAnswer::Timeout { host, after: self.first_byte_timeout }),
        };
        match &result {
            Ok(resp) => self.metrics.answered(resp.status(), started.elapsed()),
            Err(NoAnswer::Transport { failure, .. }) => self.metrics.failed(failure.code(), started.elapsed()),
            Err(NoAnswer::Timeout { .. }) => {
                self.metrics.failed(transport::Failure::TimedOut.code(), started.elapsed())
            }
        }
        result
    }

    async fn send_with_retries(&self, req: Request<Empty<Bytes>>, host: &str) -> Result<Response<Incoming>, NoAnswer> {
        let idempotent = matches!(*req.method(), Method::GET | Method::HEAD);
        let (parts, _) = req.into_parts();
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = Request::new(Empty::<Bytes>::new());
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = parts.uri.clone();
            *req.version_mut() = parts.version;
            *req.headers_mut() = parts.headers.clone();
            let (failed, retry_after) = match self.client.request(req).await {
                Ok(resp) if retry::is_retryable_status(resp.status()) => {
                    let retry_after = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| retry::parse_retry_after(v, std::time::SystemTime::now()));
                    (TryAgain::Answer(resp), retry_after)
                }
                Ok(resp) => return Ok(resp),
                Err(e) => match transport::classify(&e) {
                    failure if failure.is_retryable() => (TryAgain::Transport(failure, e), None),
                    failure => return Err(NoAnswer::transport(host, failure, e)),
                },
            };
            let wait =
                if idempotent { self.retry.next_wait(attempt, retry_after, waited, fastrand::f64()) } else { None };
            let Some(wait) = wait else {
                return match failed {
                    TryAgain::Answer(resp) => Ok(resp),
                    TryAgain::Transport(failure, e) => Err(NoAnswer::transport(host, failure, e)),
                };
            };
            let what = match failed {
                TryAgain::Answer(resp) => {
                    // Reading the short error body lets the connection go back to the pool.
                    let refusal = Refusal::read(resp).await;
                    let status = refusal.status.as_u16();
                    match refusal.code {
                        Some(code) => format!("{status} {code}"),
                        None => status.to_string(),
                    }
                }
                TryAgain::Transport(failure, _) => failure.message(&self.integration, host),
            };
            tracing::warn!(
                integration = %self.integration,
                host,
                attempt,
                of = self.retry.attempts,
                wait_ms = wait.as_millis() as u64,
                failed = %what,
                "the storage asked to try again; retrying"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// Wraps a response body so a stall longer than the read timeout fails it.
    pub fn stream_body(&self, body: Incoming) -> Body {
        IdleTimeoutBody::new(body, self.read_timeout, self.integration.clone()).boxed_unsync()
    }

    /// Turns a 200/206/304 storage answer into an [`ObjectResponse`], and any
    /// other status into the matching error. `what` names the object for messages.
    pub async fn object_response(&self, resp: Response<Incoming>, head: bool, what: &str) -> Result<ObjectResponse> {
        let status = resp.status();
        if !matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED) {
            return Err(self.error_from_response(resp, what).await);
        }
        let (parts, body) = resp.into_parts();
        let (meta, part) = meta_from_headers(status, &parts.headers).map_err(|m| {
            Error::new(
                Kind::UpstreamError,
                format!("the storage of integration \"{}\" answered {status} for {what} {m}", self.integration),
            )
        })?;
        let body = if head || part == Part::NotModified { crate::http::body::empty() } else { self.stream_body(body) };
        Ok(ObjectResponse::new(meta, part, body))
    }

    /// Maps a storage error answer to a mediagate error, naming the
    /// integration and the storage's own error code.
    pub async fn error_from_response(&self, resp: Response<Incoming>, what: &str) -> Error {
        let unsatisfied_len = resp
            .headers()
            .get(header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_unsatisfied_content_range);
        let refusal = Refusal::read(resp).await;
        match &refusal.code {
            Some(code) => self.metrics.error_code(code),
            None => self.metrics.error_code(&format!("http_{}", refusal.status.as_u16())),
        }
        storage_error(
            &self.integration,
            refusal.status,
            refusal.code.as_deref(),
            refusal.message.as_deref(),
            what,
            unsatisfied_len,
        )
    }
}

/// Why a request got no answer from the storage.
#[derive(Debug)]
pub enum NoAnswer {
    /// DNS, TCP or TLS failed (after the retries [`RetryPolicy`] allows).
    Transport {
        failure: transport::Failure,
        /// `host` or `host:port`.
        host: String,
        cause: hyper_util::client::legacy::Error,
    },
    /// No response head within `first_byte_timeout`.
    Timeout { host: String, after: Duration },
}

impl NoAnswer {
    fn transport(host: &str, failure: transport::Failure, cause: hyper_util::client::legacy::Error) -> NoAnswer {
        NoAnswer::Transport { failure, host: host.to_owned(), cause }
    }

    /// The media path's error: 502 `upstream_error` or 504 `upstream_timeout`.
    pub fn into_error(self, integration: &str) -> Error {
        match self {
            NoAnswer::Transport { failure, host, cause } => {
                Error::new(failure.kind(), failure.message(integration, &host)).with_cause(cause)
            }
            NoAnswer::Timeout { host, after } => Error::new(
                Kind::UpstreamTimeout,
                format!("the storage of integration \"{integration}\" ({host}) did not answer within {after:?}"),
            ),
        }
    }
}

/// What a storage said when it answered with an error: the status, its own
/// error code (the XML `<Code>`, else Azure's `x-ms-error-code` header), its
/// message, and the region it names (S3's `x-amz-bucket-region` header or
/// `<Region>` element), read from at most 16 KiB of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: Option<String>,
    pub message: Option<String>,
    pub region: Option<String>,
}

impl Refusal {
    /// Reads the answer (its body too, so the connection can go back to the pool).
    pub async fn read(resp: Response<Incoming>) -> Refusal {
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (header_code, header_region) = (header("x-ms-error-code"), header("x-amz-bucket-region"));
        let text = read_error_body(resp.into_body()).await;
        Refusal {
            status,
            code: xml_element(&text, "Code").or(header_code),
            message: xml_element(&text, "Message"),
            region: header_region.or_else(|| xml_element(&text, "Region")),
        }
    }
}

/// The error for a storage status other than 200/206/304.
pub fn storage_error(
    integration: &str,
    status: StatusCode,
    code: Option<&str>,
    message: Option<&str>,
    what: &str,
    unsatisfied_len: Option<u64>,
) -> Error {
    let said = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {}", truncate(m, 200)),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => truncate(m, 200).to_owned(),
        (None, None) => format!("HTTP {}", status.as_u16()),
    };
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::new(
            Kind::UpstreamDenied,
            format!(
                "the storage rejected the credentials of integration \"{integration}\" ({said}); check its keys, \
                 their permissions on this bucket, and the proxy's clock"
            ),
        ),
        StatusCode::NOT_FOUND => {
            let bucket_missing = matches!(code, Some("NoSuchBucket" | "ContainerNotFound"));
            let msg = if bucket_missing {
                format!(
                    "the bucket (container) of {what} does not exist in the storage of integration \"{integration}\" ({said})"
                )
            } else {
                format!("{what} does not exist in the storage of integration \"{integration}\"")
            };
            Error::new(Kind::NotFound, msg)
        }
        StatusCode::PRECONDITION_FAILED => {
            Error::new(Kind::PreconditionFailed, format!("a precondition of the request failed for {what}"))
        }
        StatusCode::RANGE_NOT_SATISFIABLE => Error::new(
            Kind::RangeNotSatisfiable { len: unsatisfied_len },
            format!("the requested range lies outside {what}"),
        ),
        _ => Error::new(
            Kind::UpstreamError,
            format!(
                "the storage of integration \"{integration}\" failed to serve {what}: {} ({said})",
                status.as_u16()
            ),
        ),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Reads at most 16 KiB of an error body, giving up after two seconds.
async fn read_error_body(body: Incoming) -> String {
    let limited = http_body_util::Limited::new(body, 16 * 1024);
    match tokio::time::timeout(Duration::from_secs(2), limited.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        _ => String::new(),
    }
}

/// The text of the first `<name>…</name>` element, if any.
pub fn xml_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    let value = text[start..start + len].trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reads object metadata and the part served from a 200/206/304 head.
pub fn meta_from_headers(status: StatusCode, h: &HeaderMap) -> Result<(ObjectMeta, Part), &'static str> {
    let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_length = text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let (size, part) = match status {
        StatusCode::NOT_MODIFIED => (0, Part::NotModified),
        StatusCode::PARTIAL_CONTENT => {
            let cr = text(header::CONTENT_RANGE).ok_or("without a Content-Range")?;
            let (span, total) = parse_content_range(&cr).ok_or("with a malformed Content-Range")?;
            (total.ok_or("with an unknown complete length")?, Part::Range(span))
        }
        _ => (content_length.ok_or("without a Content-Length")?, Part::Whole),
    };
    let meta = ObjectMeta {
        size,
        etag: text(header::ETAG).and_then(|e| crate::http::conditional::normalize_etag(&e)),
        last_modified: text(header::LAST_MODIFIED).and_then(|v| httpdate::parse_http_date(&v).ok()),
        content_type: text(header::CONTENT_TYPE),
        content_encoding: text(header::CONTENT_ENCODING),
        content_disposition: text(header::CONTENT_DISPOSITION),
        content_language: text(header::CONTENT_LANGUAGE),
        entity: None,
    };
    Ok((meta, part))
}

/// The connector of an integration's clients (storage and identity
/// endpoints): TCP with `connect_timeout`, `TCP_NODELAY` and keep-alive,
/// `.localhost` names on loopback, TLS per [`tls_config`], HTTP/1.1.
pub(crate) fn connector(cfg: &UpstreamConfig, ca_file: Option<&Path>) -> Result<Connector, String> {
    let tls = tls_config(ca_file)?;
    let mut http = HttpConnector::new_with_resolver(LocalhostResolver::default());
    http.enforce_http(false);
    http.set_connect_timeout(Some(cfg.connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// The TLS set-up of every connection of an integration, to its storage and
/// to its identity endpoints (STS, metadata, token): the built-in roots,
/// the PEM bundle named by `SSL_CERT_FILE` (as the SDKs and OpenSSL honour
/// it; an unreadable one is an error), and the integration's `ca_file`.
pub(crate) fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        add_pem_roots(&mut roots, Path::new(&path), "SSL_CERT_FILE")?;
    }
    if let Some(path) = ca_file {
        add_pem_roots(&mut roots, path, "ca_file")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

fn add_pem_roots(roots: &mut rustls::RootCertStore, path: &Path, what: &str) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let mut added = 0;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{what} {} is not valid PEM: {e}", path.display()))?;
        roots.add(cert).map_err(|e| format!("{what} {}: a certificate is unusable: {e}", path.display()))?;
        added += 1;
    }
    if added == 0 {
        return Err(format!("{what} {} holds no certificate", path.display()));
    }
    Ok(())
}

/// DNS through the system resolver, except that `localhost` and every name
/// under `.localhost` are loopback, as RFC 6761 section 6.3 allows (glibc
/// does not resolve `bucket.s3.localhost`, which virtual-host addressing
/// against a local S3 server needs), and a name under `.invalid` fails at
/// once, as RFC 6761 section 6.4 asks. A failure carries a
/// [`ResolveError`] naming the host.
#[derive(Clone)]
pub struct LocalhostResolver {
    system: GaiResolver,
}

impl Default for LocalhostResolver {
    fn default() -> Self {
        LocalhostResolver { system: GaiResolver::new() }
    }
}

impl tower_service::Service<Name> for LocalhostResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Name>::poll_ready(&mut self.system, cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            return Box::pin(async move { Ok(vec![addr].into_iter()) });
        }
        if host == "invalid" || host.ends_with(".invalid") {
            let e = ResolveError { host, source: None };
            return Box::pin(async move { Err(std::io::Error::new(std::io::ErrorKind::NotFound, e)) });
        }
        let fut = self.system.call(name);
        Box::pin(async move {
            match fut.await {
                Ok(addrs) => Ok(addrs.collect::<Vec<_>>().into_iter()),
                Err(e) => Err(std::io::Error::new(e.kind(), ResolveError { host, source: Some(e) })),
            }
        })
    }
}

/// A body that fails when no frame arrives for `timeout`.
struct IdleTimeoutBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    integration: Arc<str>,
}

impl IdleTimeoutBody {
    fn new(inner: Incoming, timeout: Duration, integration: Arc<str>) -> Self {
        IdleTimeoutBody { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)), integration }
    }
}

impl HttpBody for IdleTimeoutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|r| {
                    r.map_err(|e| -> BoxError {
                        format!("the storage of integration \"{}\" broke off the body: {e}", this.integration).into()
                    })
                }))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                    "the storage of integration \"{}\" sent nothing for {:?}",
                    this.integration, this.timeout
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage that answers each connection with the next of `answers`
    /// (head and body), then closes it.
    async fn canned_storage(answers: Vec<&'static str>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            for answer in answers {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
        format!("http://{addr}/b/k")
    }

    fn get(url: &str) -> Request<Empty<Bytes>> {
        Request::get(url).body(Empty::new()).expect("request")
    }

    #[tokio::test]
    async fn each_storage_request_is_recorded_once_with_its_outcome_and_each_failure_with_its_code() {
        const DENIED: &str = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 69\r\n\
                              Connection: close\r\n\r\n<Error><Code>SignatureDoesNotMatch</Code><Message>m</Message></Error>";
        const MISSING_HEAD: &str = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        let url = canned_storage(vec![OK, DENIED, MISSING_HEAD]).await;
        let metrics = Metrics::new();
        let client =
            UpstreamClient::new(&UpstreamConfig::default(), None, "media").expect("client").with_metrics(&metrics);
        assert_eq!(client.send(get(&url)).await.expect("answer").status(), StatusCode::OK);
        for want in [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND] {
            let resp = client.send(get(&url)).await.expect("answer");
            assert_eq!(resp.status(), want);
            client.error_from_response(resp, "s3://b/k").await;
        }
        let failed = client.send(get("http://storage.invalid/b/k")).await.expect_err("no such host");
        assert_eq!(failed.kind, Kind::UpstreamError);

        let text = metrics.render();
        let line = |series: &str| text.lines().find(|l| l.starts_with(series)).map(str::to_owned);
        let expect = [
            ("mediagate_upstream_requests_total{integration=\"media\",outcome=\"ok\"}", "1"),
            ("mediagate_upstream_requests_total{integration=\"media\",outcome=\"error\"}", "3"),
            ("mediagate_upstream_errors_total{integration=\"media\",code=\"SignatureDoesNotMatch\"}", "1"),
            ("mediagate_upstream_errors_total{integration=\"media\",code=\"http_404\"}", "1"),
            ("mediagate_upstream_errors_total{integration=\"media\",code=\"dns\"}", "1"),
            ("mediagate_upstream_duration_seconds_count{integration=\"media\"}", "4"),
        ];
        for (series, value) in expect {
            assert_eq!(line(series), Some(format!("{series} {value}")), "{text}");
        }
    }

    #[test]
    fn failures_without_an_answer_have_the_contract_codes() {
        use transport::Failure;
        let table = [
            (Failure::Resolve("x".into()), "dns"),
            (Failure::Refused, "connect"),
            (Failure::Reset, "connect"),
            (Failure::Other("x".into()), "connect"),
            (Failure::TimedOut, "timeout"),
            (Failure::UnknownIssuer, "tls"),
            (Failure::Expired(None), "tls"),
            (Failure::NotValidYet(None), "tls"),
            (Failure::WrongName(Vec::new()), "tls"),
            (Failure::Tls("x".into()), "tls"),
        ];
        for (failure, code) in table {
            assert_eq!(failure.code(), code, "{failure:?}");
        }
    }

    #[test]
    fn storage_error_codes_are_read_from_xml() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("SignatureDoesNotMatch"));
        assert!(xml_element(body, "Message").unwrap().starts_with("The request signature"));
        assert_eq!(xml_element("<Error></Error>", "Code"), None);
    }

    #[test]
    fn a_403_is_upstream_denied_and_names_the_integration() {
        let e = storage_error("minio", StatusCode::FORBIDDEN, Some("SignatureDoesNotMatch"), None, "s3://b/k", None);
        assert_eq!(e.kind, Kind::UpstreamDenied);
        assert!(e.message.contains("the storage rejected the credentials of integration \"minio\""));
        assert!(e.message.contains("SignatureDoesNotMatch"));
    }

    #[test]
    fn storage_statuses_map_to_contract_errors() {
        let table = [
            (StatusCode::UNAUTHORIZED, Kind::UpstreamDenied),
            (StatusCode::NOT_FOUND, Kind::NotFound),
            (StatusCode::PRECONDITION_FAILED, Kind::PreconditionFailed),
            (StatusCode::RANGE_NOT_SATISFIABLE, Kind::RangeNotSatisfiable { len: Some(9) }),
            (StatusCode::SERVICE_UNAVAILABLE, Kind::UpstreamError),
            (StatusCode::BAD_REQUEST, Kind::UpstreamError),
        ];
        for (status, kind) in table {
            assert_eq!(storage_error("i", status, None, None, "x", Some(9)).kind, kind, "{status}");
        }
    }

    #[test]
    fn metadata_comes_from_a_206_content_range() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, "bytes 10-19/100".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "10".parse().unwrap());
        h.insert(header::ETAG, "\"abc\"".parse().unwrap());
        let (meta, part) = meta_from_headers(StatusCode::PARTIAL_CONTENT, &h).unwrap();
        assert_eq!(meta.size, 100);
        assert_eq!(meta.etag.as_deref(), Some("\"abc\""));
        assert_eq!(part, Part::Range(crate::http::range::ByteSpan { start: 10, end: 19 }));
    }
}
