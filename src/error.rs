//! Errors of the media path and the one place that turns them into responses.
//!
//! Every error carries where it came from ([`Origin`]): the client's request,
//! the storage upstream, or mediagate itself. [`Error::into_response`] is the
//! only function that builds an error response: the JSON body of
//! CONTRACT.md section 7, `{"error": {"code": ..., "message": ...}}`.
//! Messages name the integration and say what to do; they never carry a secret.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::http::body::{self, Body};

/// Who caused the failure; decides the log level and helps operators triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    Internal,
}

/// What went wrong, one variant per (status, code) pair of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// 400: the locator or request path cannot be parsed.
    BadLocator,
    /// 403: the signed URL is wrong or missing.
    BadSignature,
    /// 403: the signed URL has expired.
    UrlExpired,
    /// 404: no integration serves this locator.
    NoIntegration,
    /// 404: the storage has no such object.
    NotFound,
    /// 405: only GET, HEAD (and OPTIONS) are served.
    MethodNotAllowed,
    /// 412: a precondition (`If-Match`, `If-Unmodified-Since`) failed.
    PreconditionFailed,
    /// 416: the range cannot be satisfied; carries the object's length when known.
    RangeNotSatisfiable { len: Option<u64> },
    /// 502: the storage rejected our credentials.
    UpstreamDenied,
    /// 502: the storage failed, broke off or answered something unusable.
    UpstreamError,
    /// 503: connection or memory limits reached.
    Overloaded,
    /// 504: the storage did not connect or answer in time.
    UpstreamTimeout,
    /// 500: a bug or an unexpected local failure.
    Internal,
    /// 400: the request itself breaks HTTP/1.1 framing rules (no `Host`,
    /// two `Host` lines; RFC 9112 section 3.2). Beyond the contract.
    BadRequest,
    /// 414: the request target is longer than mediagate reads. Beyond the contract.
    UriTooLong,
    /// 431: the request head is larger than mediagate reads. Beyond the contract.
    HeadersTooLarge,
    /// 401: no admin token, or a wrong one (CONTRACT.md section 6).
    Unauthorized,
    /// 400: an integration body with a value of the wrong kind; nothing was saved.
    BadConfig,
    /// 409: an integration's scope overlaps another's; nothing was saved.
    Conflict,
    /// 503: the shared store (`[store]`, CONTRACT.md section 9) cannot be reached or read;
    /// an admin change was not made. Beyond the contract's list.
    StoreUnavailable,
}

impl Kind {
    pub fn status(&self) -> StatusCode {
        match self {
            Kind::BadLocator => StatusCode::BAD_REQUEST,
            Kind::BadSignature | Kind::UrlExpired => StatusCode::FORBIDDEN,
            Kind::NoIntegration | Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Kind::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Kind::UpstreamDenied | Kind::UpstreamError => StatusCode::BAD_GATEWAY,
            Kind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Kind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::BadRequest => StatusCode::BAD_REQUEST,
            Kind::UriTooLong => StatusCode::URI_TOO_LONG,
            Kind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::BadConfig => StatusCode::BAD_REQUEST,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Kind::BadLocator => "bad_locator",
            Kind::BadSignature => "bad_signature",
            Kind::UrlExpired => "url_expired",
            Kind::NoIntegration => "no_integration",
            Kind::NotFound => "not_found",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::PreconditionFailed => "precondition_failed",
            Kind::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Kind::UpstreamDenied => "upstream_denied",
            Kind::UpstreamError => "upstream_error",
            Kind::Overloaded => "overloaded",
            Kind::UpstreamTimeout => "upstream_timeout",
            Kind::Internal => "internal",
            Kind::BadRequest => "bad_request",
            Kind::UriTooLong => "uri_too_long",
            Kind::HeadersTooLarge => "headers_too_large",
            Kind::Unauthorized => "unauthorized",
            Kind::BadConfig => "bad_config",
            Kind::Conflict => "conflict",
            Kind::StoreUnavailable => "store_unavailable",
        }
    }

    /// Whether the answer ends an HTTP/1.1 connection (`Connection: close`,
    /// RFC 9112 section 9.6): after a refused method (a `CONNECT`'s next
    /// bytes would be tunnel data, a `POST`'s an unread body) or a head that
    /// breaks the framing rules, the rest of the stream cannot be trusted.
    pub fn closes_connection(&self) -> bool {
        matches!(self, Kind::MethodNotAllowed | Kind::BadRequest | Kind::UriTooLong | Kind::HeadersTooLarge)
    }

    pub fn origin(&self) -> Origin {
        match self {
            Kind::BadLocator
            | Kind::BadSignature
            | Kind::UrlExpired
            | Kind::NoIntegration
            | Kind::NotFound
            | Kind::MethodNotAllowed
            | Kind::PreconditionFailed
            | Kind::RangeNotSatisfiable { .. }
            | Kind::BadRequest
            | Kind::UriTooLong
            | Kind::HeadersTooLarge
            | Kind::Unauthorized
            | Kind::BadConfig
            | Kind::Conflict => Origin::Client,
            Kind::UpstreamDenied | Kind::UpstreamError | Kind::UpstreamTimeout => Origin::Upstream,
            Kind::Overloaded | Kind::Internal | Kind::StoreUnavailable => Origin::Internal,
        }
    }
}

/// An error on the media path: a kind, a message a person can act on, and,
/// for logs only, the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// For `bad_config` and `conflict`: one `{"key", "message"}` per problem.
    pub problems: Vec<(String, String)>,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), cause: None, problems: Vec::new() }
    }

    pub fn with_cause(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Adds the `problems` list of an admin API answer (CONTRACT.md section 6).
    pub fn with_problems(mut self, problems: Vec<(String, String)>) -> Self {
        self.problems = problems;
        self
    }

    pub fn bad_locator(message: impl Into<String>) -> Self {
        Error::new(Kind::BadLocator, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Kind::Internal, message)
    }

    pub fn origin(&self) -> Origin {
        self.kind.origin()
    }

    /// A copy without the cause, to hand one failure to several waiters
    /// (the cause stays with the original for its log line).
    pub fn share(&self) -> Error {
        Error::new(self.kind.clone(), self.message.clone())
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The message with its chain of causes, for logs (never for clients:
    /// a cause may name hosts or paths the client has no business seeing).
    pub fn detail(&self) -> String {
        let mut out = self.message.clone();
        let mut cause: Option<&(dyn std::error::Error + 'static)> =
            self.cause.as_deref().map(|c| c as &(dyn std::error::Error + 'static));
        while let Some(c) = cause {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }

    /// The single place where an error becomes an HTTP response.
    ///
    /// `head_only` leaves the body out (a `HEAD` answer) but keeps
    /// `Content-Length`, as RFC 9110 section 9.3.2 asks.
    pub fn into_response(&self, head_only: bool) -> Response<Body> {
        let mut json = serde_json::json!({
            "error": { "code": self.kind.code(), "message": self.message }
        });
        if !self.problems.is_empty() {
            let problems: Vec<_> = self
                .problems
                .iter()
                .map(|(key, message)| serde_json::json!({"key": key, "message": message}))
                .collect();
            json["problems"] = serde_json::Value::from(problems);
        }
        let mut text = json.to_string();
        text.push('\n');
        let len = text.len();
        let body = if head_only { body::empty() } else { body::full(Bytes::from(text)) };
        let mut resp = Response::new(body);
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self.kind {
            Kind::RangeNotSatisfiable { len: Some(total) } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            Kind::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            }
            Kind::Overloaded => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Kind::Unauthorized => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"mediagate admin\""));
            }
            _ => {}
        }
        if self.kind.closes_connection() {
            // HTTP/2 has no connection-specific fields: hyper leaves this out there.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_becomes_the_contract_json_body() {
        let err = Error::new(Kind::UpstreamDenied, "the storage rejected the credentials of integration \"x\"");
        let resp = err.into_response(false);
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let v = body_json(resp).await;
        assert_eq!(v["error"]["code"], "upstream_denied");
        assert!(v["error"]["message"].as_str().unwrap().contains("\"x\""));
    }

    #[test]
    fn a_416_names_the_object_length_in_content_range() {
        let err = Error::new(Kind::RangeNotSatisfiable { len: Some(1234) }, "no");
        let resp = err.into_response(false);
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(resp.headers()[header::CONTENT_RANGE], "bytes */1234");
    }

    #[test]
    fn every_kind_maps_to_the_contract_status_and_code() {
        let table = [
            (Kind::BadLocator, 400, "bad_locator"),
            (Kind::BadSignature, 403, "bad_signature"),
            (Kind::UrlExpired, 403, "url_expired"),
            (Kind::NoIntegration, 404, "no_integration"),
            (Kind::NotFound, 404, "not_found"),
            (Kind::PreconditionFailed, 412, "precondition_failed"),
            (Kind::RangeNotSatisfiable { len: None }, 416, "range_not_satisfiable"),
            (Kind::UpstreamDenied, 502, "upstream_denied"),
            (Kind::UpstreamError, 502, "upstream_error"),
            (Kind::Overloaded, 503, "overloaded"),
            (Kind::UpstreamTimeout, 504, "upstream_timeout"),
            (Kind::BadRequest, 400, "bad_request"),
            (Kind::UriTooLong, 414, "uri_too_long"),
            (Kind::HeadersTooLarge, 431, "headers_too_large"),
        ];
        for (kind, status, code) in table {
            assert_eq!(kind.status().as_u16(), status, "{kind:?}");
            assert_eq!(kind.code(), code);
        }
    }

    #[test]
    fn a_refused_method_or_a_broken_head_closes_the_connection_and_other_errors_do_not() {
        for kind in [Kind::MethodNotAllowed, Kind::BadRequest, Kind::UriTooLong, Kind::HeadersTooLarge] {
            let resp = Error::new(kind.clone(), "no").into_response(false);
            assert_eq!(resp.headers()[header::CONNECTION], "close", "{kind:?}");
        }
        for kind in [Kind::BadLocator, Kind::NotFound, Kind::Overloaded] {
            assert!(Error::new(kind.clone(), "no").into_response(false).headers().get(header::CONNECTION).is_none());
        }
    }

    #[test]
    fn a_head_error_has_no_body_but_keeps_its_length() {
        let resp = Error::bad_locator("bad").into_response(true);
        assert_ne!(resp.headers()[header::CONTENT_LENGTH], "0");
    }
}
