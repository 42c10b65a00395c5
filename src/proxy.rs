//! The media request pipeline, top to bottom:
//!
//! 0. check the request head ([`crate::http::head`]: `Host`, size bounds);
//! 1. route: `/healthz`, `/`, `/media?locator=…` (query form) or
//!    `/<scheme>/<bucket>/<key>` (path form); only GET and HEAD reach storage;
//! 2. parse the locator and pick the integration ([`Registry::resolve`]);
//! 3. read `Range` and the preconditions of the request;
//! 4. ask the storage (one range at most, preconditions forwarded);
//! 5. evaluate the preconditions again on the storage's metadata (RFC 9110
//!    section 13.2.2), so a storage that ignores them still yields 304 / 412;
//! 6. honour `If-Range` (a changed object gets the whole body, 200);
//! 7. build the response headers and stream the body through.
//!
//! Every failure is an [`Error`]; [`Error::into_response`] turns it into the
//! response, here and nowhere else.

use std::borrow::Cow;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyDataStream, BodyExt, StreamBody};

use crate::auth::Auth;
use crate::cache::{Cache, cache_status_value};
use crate::error::{Error, Kind, Result};
use crate::http::body::{self, Body, BoxError};
use crate::http::conditional::{self, Conditions, Verdict};
use crate::http::cors::Cors;
use crate::http::entity::EntityHeaders;
use crate::http::multipart;
use crate::http::range::{self, RangeRequest, RangeSpec};
use crate::integration::registry::SharedRegistry;
use crate::integration::{Integration, ObjectMeta, ObjectRequest, ObjectResponse, Part};
use crate::locator::Locator;
use crate::logging::{AccessLog, LoggedBody, RequestLog};
use crate::metrics::Metrics;

/// The media request handler; cheap to clone, shared by every connection.
/// Everything it needs is passed in: no global state.
#[derive(Clone)]
pub struct Proxy {
    registry: SharedRegistry,
    auth: Arc<Auth>,
    cors: Arc<Cors>,
    cache: Option<Cache>,
    metrics: Metrics,
    access: AccessLog,
}

impl Proxy {
    /// A proxy over `registry` with no client authentication, no CORS and
    /// no metrics.
    pub fn new(registry: SharedRegistry) -> Self {
        Proxy {
            registry,
            auth: Arc::new(Auth::none()),
            cors: Arc::new(Cors::disabled()),
            cache: None,
            metrics: Metrics::disabled(),
            access: AccessLog::Events,
        }
    }

    /// Writes the access lines to `access` (default: [`AccessLog::Events`]).
    pub fn with_access_log(mut self, access: AccessLog) -> Self {
        self.access = access;
        self
    }

    /// Records every response in `metrics` (default: [`Metrics::disabled`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics responses are recorded in (the listener counts its connections there too).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves media through `cache` (`None`: straight from the storage).
    pub fn with_cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache;
        self
    }

    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    pub fn with_cors(mut self, cors: Cors) -> Self {
        self.cors = Arc::new(cors);
        self
    }

    /// Answers one request; never fails (errors become responses).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<LoggedBody> {
        let (parts, _body) = req.into_parts();
        let head = parts.method == Method::HEAD;
        let mut log = RequestLog::new(parts.method.clone(), parts.uri.path());
        log.range = header_text(&parts.headers, header::RANGE).map(str::to_owned);
        let mut resp = match self.route(&parts, &mut log).await {
            Ok(resp) => resp,
            Err(e) => {
                log.error = Some(format!("{}: {}", e.kind.code(), e.detail()));
                e.into_response(head)
            }
        };
        if self.auth.is_signed() {
            cap_to_expiry(parts.uri.query(), resp.headers_mut());
        }
        self.cors.apply(&parts.headers, resp.headers_mut());
        log.status = resp.status().as_u16();
        let expected = if head {
            Some(0)
        } else {
            resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
        };
        let metrics = self.metrics.request(log.integration.as_deref());
        let access = self.access.clone();
        resp.map(|b| LoggedBody::new(b, log, expected).with_metrics(metrics).with_access_log(access))
    }

    async fn route(&self, parts: &Parts, log: &mut RequestLog) -> Result<Response<Body>> {
        crate::http::head::check(parts)?;
        let path = parts.uri.path();
        match (&parts.method, path) {
            (&Method::GET | &Method::HEAD, "/healthz") => Ok(text(StatusCode::OK, "ok\n")),
            (&Method::GET | &Method::HEAD, "/") => Ok(crate::demo::page(&self.registry.load(), &self.auth)),
            (&Method::OPTIONS, _) if let Some(resp) = self.cors.preflight(parts) => Ok(resp),
            (&Method::OPTIONS, _) => {
                let mut resp = text(StatusCode::NO_CONTENT, "");
                resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
                Ok(resp)
            }
            (&Method::GET | &Method::HEAD, _) => self.media(parts, log).await,
            _ => Err(Error::new(Kind::MethodNotAllowed, format!("{} is not served; use GET or HEAD", parts.method))),
        }
    }

    /// Steps 2 to 7 of the module doc.
    async fn media(&self, parts: &Parts, log: &mut RequestLog) -> Result<Response<Body>> {
        let head = parts.method == Method::HEAD;
        let loc = if parts.uri.path() == "/media" {
            Locator::from_query(parts.uri.query())?
        } else {
            Locator::from_path(parts.uri.path())?
        };
        let text = loc.shared_text();
        log.locator = text.clone();
        self.auth.verify(&loc, parts.uri.query(), std::time::SystemTime::now())?;
        // One registry for the whole request: a change through the admin API
        // applies to the next request, never halfway through this one.
        let integration = self.registry.load().resolve(&loc)?.clone();
        log.integration = Some(integration.name.clone());
        let t = Target { integration, loc: Arc::new(loc), text, cache: self.cache.clone() };

        let cond = Conditions::from_headers(&parts.headers);
        match range::parse(header_text(&parts.headers, header::RANGE)) {
            RangeRequest::Whole => single(&t, head, None, &cond).await,
            RangeRequest::Single(spec) => single(&t, head, Some(spec), &cond).await,
            // Boxed: a rare path, kept out of every request's future.
            RangeRequest::Multi(specs) => Box::pin(multi(&t, head, &specs, &cond)).await,
        }
    }
}

/// One object to serve: its integration, its locator, and the cache.
#[derive(Clone)]
struct Target {
    integration: Arc<Integration>,
    /// Shared with the cache's reader (no copy of bucket and key).
    loc: Arc<Locator>,
    /// The locator string ([`Locator::shared_text`]).
    text: Arc<str>,
    cache: Option<Cache>,
}

/// A whole object or one range of it.
async fn single(t: &Target, head: bool, range: Option<RangeSpec>, cond: &Conditions) -> Result<Response<Body>> {
    let (integration, loc) = (&t.integration, &t.loc);
    let ask_range = if head { None } else { range };
    let mut obj = fetch(t, head, ask_range, cond, None).await?;
    if let Some(early) = preconditions(t, cond, &obj)? {
        return Ok(early);
    }
    let range_allowed = conditional::if_range_allows(cond, obj.meta.etag.as_deref(), obj.meta.last_modified);
    if !range_allowed && matches!(obj.part, Part::Range(_)) {
        obj = fetch(t, head, None, cond, None).await?;
    }
    let part = match (head, range) {
        (true, Some(spec)) if range_allowed => head_part(spec, &obj.meta, loc)?,
        (true, _) => Part::Whole,
        (false, _) => obj.part,
    };
    Ok(media_response(integration, loc, &obj.meta, part, obj.body, obj.cache_status))
}

/// Several ranges: `206 multipart/byteranges` (RFC 9110 section 14.6), each
/// part read from the storage with `If-Match` on the ETag seen first, so the
/// parts never mix two versions. Falls back to one range or the whole
/// object when that is what the ranges amount to.
async fn multi(t: &Target, head: bool, specs: &[RangeSpec], cond: &Conditions) -> Result<Response<Body>> {
    let (integration, loc) = (&t.integration, &t.loc);
    let obj = fetch(t, true, None, cond, None).await?;
    if let Some(early) = preconditions(t, cond, &obj)? {
        return Ok(early);
    }
    let status = obj.cache_status.clone();
    let meta = obj.meta;
    if !conditional::if_range_allows(cond, meta.etag.as_deref(), meta.last_modified) {
        return single(t, head, None, cond).await;
    }
    let spans = multipart::coalesce(range::resolve_all(specs, meta.size));
    match spans.as_slice() {
        [] => Err(Error::new(
            Kind::RangeNotSatisfiable { len: Some(meta.size) },
            format!("none of the requested ranges lies inside {loc}"),
        )),
        [one] => single(t, head, Some(RangeSpec::FromTo(one.start, one.end)), cond).await,
        many if many.len() > multipart::MAX_PARTS => single(t, head, None, cond).await,
        _ => {
            let content_type = entity(&meta, &loc.key).content_type.clone();
            let validator = meta.etag.clone().unwrap_or_default();
            let Some(layout) =
                multipart::layout(spans, meta.size, content_type.to_str().unwrap_or_default(), &validator)
            else {
                return single(t, head, None, cond).await;
            };
            let body = if head { body::empty() } else { multipart_body(t.clone(), &layout, &meta) };
            let mut resp = media_response(integration, loc, &meta, Part::Whole, body, status);
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(layout.content_length));
            if let Ok(v) = HeaderValue::from_str(&layout.content_type()) {
                h.insert(header::CONTENT_TYPE, v);
            }
            Ok(resp)
        }
    }
}

/// The body of a multipart answer: each part's head, then its bytes read
/// from the storage when the client gets there.
fn multipart_body(t: Target, layout: &multipart::Layout, meta: &ObjectMeta) -> Body {
    let pinned = Conditions { if_match: meta.etag.clone(), ..Conditions::default() };
    let parts: Vec<_> = layout.heads.iter().cloned().zip(layout.spans.iter().copied()).collect();
    let tail = layout.tail.clone();
    let stream = futures_util::stream::iter(parts)
        .then(move |(head, span)| {
            let (t, pinned) = (t.clone(), pinned.clone());
            async move {
                let range = Some(RangeSpec::FromTo(span.start, span.end));
                let pin = pinned.if_match.as_deref();
                let obj = fetch(&t, false, range, &pinned, pin).await.map_err(|e| -> BoxError { Box::new(e) })?;
                let head = futures_util::stream::once(async move { Ok::<_, BoxError>(head) });
                Ok::<_, BoxError>(head.chain(BodyDataStream::new(obj.body)))
            }
        })
        .try_flatten()
        .chain(futures_util::stream::once(async move { Ok(tail) }));
    StreamBody::new(stream.map_ok(Frame::data)).boxed_unsync()
}

/// Evaluates the preconditions on the storage's metadata (RFC 9110 section
/// 13.2.2): `Some` is the answer to send at once (304), `Err` a 412.
fn preconditions(t: &Target, cond: &Conditions, obj: &ObjectResponse) -> Result<Option<Response<Body>>> {
    let status = || obj.cache_status.clone();
    match conditional::evaluate(cond, obj.meta.etag.as_deref(), obj.meta.last_modified) {
        Verdict::PreconditionFailed => {
            Err(Error::new(Kind::PreconditionFailed, format!("a precondition failed for {}", t.loc)))
        }
        Verdict::NotModified => Ok(Some(not_modified(&t.integration, &obj.meta, status()))),
        Verdict::Proceed if obj.part == Part::NotModified => {
            Ok(Some(not_modified(&t.integration, &obj.meta, status())))
        }
        Verdict::Proceed => Ok(None),
    }
}

/// Asks the storage, mending two gaps of some storages:
/// - a 416 without the object's length gets it from a metadata request,
///   for `Content-Range: bytes */<len>`;
/// - a suffix range the storage fails on (s3s-fs answers 500 when the
///   suffix is longer than the object) is turned into an absolute range,
///   pinned to the ETag the metadata request saw.
///
/// With the cache on, the cache answers; `pin` is an `If-Match` of the
/// proxy's own (the parts of a multipart answer), the client's
/// preconditions being evaluated on the metadata by the caller.
async fn fetch(
    t: &Target,
    head: bool,
    range: Option<RangeSpec>,
    conditions: &Conditions,
    pin: Option<&str>,
) -> Result<ObjectResponse> {
    let (integration, loc) = (&t.integration, &t.loc);
    if let Some(cache) = &t.cache {
        return cache.fetch(integration, loc, &t.text, head, range, pin).await;
    }
    Box::pin(fetch_uncached(integration, loc, head, range, conditions)).await
}

/// [`fetch`] without the cache (boxed there: it keeps the cache hit's future small).
async fn fetch_uncached(
    integration: &Integration,
    loc: &Locator,
    head: bool,
    range: Option<RangeSpec>,
    conditions: &Conditions,
) -> Result<ObjectResponse> {
    let req = ObjectRequest { head, bucket: &loc.bucket, key: &loc.key, range, conditions };
    match integration.fetch(&req).await {
        Err(e) if e.kind == (Kind::RangeNotSatisfiable { len: None }) => {
            let none = Conditions::default();
            let meta_req = ObjectRequest { head: true, range: None, conditions: &none, ..req };
            let len = integration.fetch(&meta_req).await.ok().map(|r| r.meta.size);
            Err(Error { kind: Kind::RangeNotSatisfiable { len }, ..e })
        }
        Err(e) if e.kind == Kind::UpstreamError && matches!(range, Some(RangeSpec::Suffix(_))) => {
            tracing::debug!(error = %e.detail(), "suffix range failed upstream; retrying as an absolute range");
            let meta = integration.fetch(&ObjectRequest { head: true, range: None, ..req }).await?.meta;
            let span = range.and_then(|r| r.resolve(meta.size)).ok_or_else(|| {
                Error::new(Kind::RangeNotSatisfiable { len: Some(meta.size) }, format!("the range lies outside {loc}"))
            })?;
            let pinned = Conditions { if_match: meta.etag.clone(), ..conditions.clone() };
            let abs =
                ObjectRequest { range: Some(RangeSpec::FromTo(span.start, span.end)), conditions: &pinned, ..req };
            integration.fetch(&abs).await
        }
        other => other,
    }
}

/// The part a GET with this range would serve, for a HEAD.
fn head_part(spec: RangeSpec, meta: &ObjectMeta, loc: &Locator) -> Result<Part> {
    match spec.resolve(meta.size) {
        Some(span) => Ok(Part::Range(span)),
        None => Err(Error::new(
            Kind::RangeNotSatisfiable { len: Some(meta.size) },
            format!("the requested range lies outside {loc}"),
        )),
    }
}

/// `304 Not Modified` with the validators and caching headers (RFC 9110 section 15.4.5).
fn not_modified(integration: &Integration, meta: &ObjectMeta, cache_status: Option<String>) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    let h = resp.headers_mut();
    // (A 304 sends no type, so no key is needed to decide one.)
    entity(meta, "").write_validators(h);
    h.insert(header::CACHE_CONTROL, integration.cache_control.clone());
    h.insert(CACHE_STATUS, cache_status_value(cache_status));
    resp
}

/// A 200 or 206 with every header of CONTRACT.md section 3.
fn media_response(
    integration: &Integration,
    loc: &Locator,
    meta: &ObjectMeta,
    part: Part,
    body: Body,
    cache_status: Option<String>,
) -> Response<Body> {
    let mut resp = Response::new(body);
    // Room for every header below and CORS's, so the map never grows.
    *resp.headers_mut() = HeaderMap::with_capacity(16);
    let h = resp.headers_mut();
    let entity = entity(meta, &loc.key);
    let length = match part {
        Part::Range(span) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", span.start, span.end, meta.size)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            HeaderValue::from(span.len())
        }
        Part::Whole | Part::NotModified => entity.whole_length.clone(),
    };
    *resp.status_mut() = if matches!(part, Part::Range(_)) { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, length);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    entity.write(h);
    let optional = [
        (header::CONTENT_ENCODING, &meta.content_encoding),
        (header::CONTENT_DISPOSITION, &meta.content_disposition),
        (header::CONTENT_LANGUAGE, &meta.content_language),
    ];
    for (name, value) in optional {
        if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            h.insert(name, v);
        }
    }
    h.insert(header::CACHE_CONTROL, integration.cache_control.clone());
    h.insert(CACHE_STATUS, cache_status_value(cache_status));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// The entity headers of `meta`: the cache's (borrowed), else made now.
fn entity<'m>(meta: &'m ObjectMeta, key: &str) -> Cow<'m, EntityHeaders> {
    match &meta.entity {
        Some(e) => Cow::Borrowed(e),
        None => {
            let (etag, stored_type) = (meta.etag.as_deref(), meta.content_type.as_deref());
            Cow::Owned(EntityHeaders::new(meta.size, etag, meta.last_modified, stored_type, key))
        }
    }
}

/// `Cache-Status` ([RFC 9211](https://www.rfc-editor.org/rfc/rfc9211)).
const CACHE_STATUS: header::HeaderName = header::HeaderName::from_static("cache-status");

fn header_text(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn text(status: StatusCode, body_text: &'static str) -> Response<Body> {
    let mut resp = Response::new(body::full(body_text));
    *resp.status_mut() = status;
    let kind = if body_text.starts_with('<') { "text/html; charset=utf-8" } else { "text/plain; charset=utf-8" };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A signed URL's response may be cached only while the URL is valid:
/// `max-age` / `s-maxage` are lowered to the seconds left before `exp`, so
/// neither a browser nor a CDN serves it past its expiry (RFC 9111 section 5.2.2).
fn cap_to_expiry(query: Option<&str>, h: &mut HeaderMap) {
    let Some(exp) = crate::auth::expiry(query) else { return };
    let Some(cc) = h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()) else { return };
    let left = exp.saturating_sub(crate::auth::unix_seconds(std::time::SystemTime::now()));
    if let Ok(v) = HeaderValue::from_str(&crate::auth::cap_max_age(cc, left)) {
        h.insert(header::CACHE_CONTROL, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `path` through `proxy` and reads the whole body.
    async fn get(proxy: &Proxy, path: &str) -> (StatusCode, usize) {
        let req = Request::get(path).header(header::HOST, "localhost").body(()).expect("request");
        let resp = proxy.handle(req).await;
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body.len())
    }

    #[tokio::test]
    async fn each_response_is_recorded_when_its_body_ends_with_its_integration_or_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("b")).expect("bucket");
        std::fs::write(dir.path().join("b").join("a.bin"), vec![7u8; 1000]).expect("file");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[[integration]]\nname = \"disk\"\ntype = \"local\"\nroot = \"{}\"\n",
            dir.path().display()
        );
        let config = crate::config::parse(&text, std::path::Path::new("t.toml"), &|_| None).expect("config");
        let metrics = Metrics::new();
        let registry = crate::integration::Registry::rebuild(
            None,
            &config.integrations,
            &config.upstream,
            &config.source,
            &metrics,
        )
        .expect("registry");
        let proxy = Proxy::new(Arc::new(arc_swap::ArcSwap::from_pointee(registry))).with_metrics(metrics.clone());

        assert_eq!(get(&proxy, "/local/b/a.bin").await, (StatusCode::OK, 1000));
        assert_eq!(get(&proxy, "/local/b/missing.bin").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&proxy, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(&proxy, "/nope/b/a.bin").await.0, StatusCode::BAD_REQUEST);

        let text = metrics.render();
        let value =
            |series: &str| text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok());
        let expect = [
            ("mediagate_requests_total{integration=\"disk\",status=\"2xx\"}", 1.0),
            ("mediagate_requests_total{integration=\"disk\",status=\"4xx\"}", 1.0),
            ("mediagate_requests_total{integration=\"\",status=\"2xx\"}", 1.0),
            ("mediagate_requests_total{integration=\"\",status=\"4xx\"}", 1.0),
            ("mediagate_request_duration_seconds_count", 4.0),
        ];
        for (series, want) in expect {
            assert_eq!(value(series), Some(want), "{series}:\n{text}");
        }
        let disk_bytes = value("mediagate_response_bytes_total{integration=\"disk\"}").unwrap_or_default();
        assert!(disk_bytes >= 1000.0, "{text}");
    }
}
