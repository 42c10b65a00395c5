//! Cross-origin resource sharing for pages that show media from another
//! origin: the CORS protocol of the Fetch standard
//! (<https://fetch.spec.whatwg.org/#http-cors-protocol>). Disabled unless
//! `[cors] allowed_origins` is set.
//!
//! - An allowed origin gets `Access-Control-Allow-Origin` on every response,
//!   media and errors alike (so a page can read a `403` JSON body), with
//!   `Content-Range`, `Accept-Ranges`, `Content-Length`, `ETag` and
//!   `Cache-Status` exposed to scripts.
//! - With a list of origins the answer depends on `Origin`, so every
//!   response carries `Vary: Origin` (a CDN then keeps one copy per origin);
//!   with `*` it does not, and `Access-Control-Allow-Origin: *` is sent to
//!   everyone. No credentials mode: signed URLs need no cookies.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
//!   `204` here, without touching storage, cacheable for `max_age`. An origin
//!   not allowed gets the `204` without any `Access-Control-*` header: the
//!   browser then refuses the real request, and nothing is revealed.

use std::time::Duration;

use http::header::{self, HeaderName};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::config::CorsConfig;
use crate::http::body::{self, Body};

/// The request headers a page may send: `Range` for seeking, and the
/// conditional headers of RFC 9110 section 13.
const ALLOW_HEADERS: &str = "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since";
/// The response headers scripts may read besides the CORS-safelisted ones.
const EXPOSE_HEADERS: &str = "Content-Range, Accept-Ranges, Content-Length, ETag, Cache-Status";
const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";

/// The CORS policy of the media listener.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    policy: Policy,
    max_age: Duration,
}

#[derive(Debug, Clone, Default)]
enum Policy {
    /// No CORS headers at all (same-origin pages and non-browser clients only).
    #[default]
    Disabled,
    /// `allowed_origins = ["*"]`.
    Any,
    /// Exact origins, lower case.
    List(Vec<String>),
}

impl Cors {
    /// No CORS headers at all.
    pub fn disabled() -> Cors {
        Cors::default()
    }

    /// The policy `[cors]` describes (disabled when it lists no origin).
    pub fn from_config(cfg: &CorsConfig) -> Cors {
        let policy = match cfg.allowed_origins.as_slice() {
            [] => Policy::Disabled,
            [only] if only == "*" => Policy::Any,
            list => Policy::List(list.iter().map(|o| o.to_ascii_lowercase()).collect()),
        };
        Cors { policy, max_age: cfg.max_age }
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self.policy, Policy::Disabled)
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if allowed.
    fn allow_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        match &self.policy {
            Policy::Disabled => None,
            Policy::Any => Some(HeaderValue::from_static("*")),
            Policy::List(list) => {
                let origin = request.get(header::ORIGIN)?;
                let text = origin.to_str().ok()?;
                list.iter().any(|o| o == text).then(|| origin.clone())
            }
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), answered without touching storage;
    /// `None` when the request is not a preflight or CORS is disabled.
    pub fn preflight(&self, parts: &Parts) -> Option<http::Response<Body>> {
        if parts.method != Method::OPTIONS
            || !self.is_enabled()
            || !parts.headers.contains_key(header::ORIGIN)
            || !parts.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut resp = http::Response::new(body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        if let Policy::List(_) = self.policy {
            add_vary(h, "Origin");
        }
        add_vary(h, "Access-Control-Request-Method");
        add_vary(h, "Access-Control-Request-Headers");
        h.insert(header::ALLOW, HeaderValue::from_static(ALLOW_METHODS));
        if let Some(origin) = self.allow_origin(&parts.headers) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(self.max_age.as_secs()));
            // Shared caches may keep it as long as browsers do.
            if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={}", self.max_age.as_secs())) {
                h.insert(header::CACHE_CONTROL, v);
            }
        } else {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Some(resp)
    }

    /// Adds the CORS headers a response needs (media and error responses
    /// alike). A preflight answer from [`Cors::preflight`] already has them.
    pub fn apply(&self, request: &HeaderMap, response: &mut HeaderMap) {
        if response.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS) {
            return; // a preflight answer
        }
        if let Policy::List(_) = self.policy {
            add_vary(response, "Origin");
        }
        if let Some(origin) = self.allow_origin(request) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        }
    }
}

/// Adds `name` to `Vary` unless it is already listed (or `Vary: *`).
fn add_vary(h: &mut HeaderMap, name: &'static str) {
    let listed = h
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|item| item == "*" || item.eq_ignore_ascii_case(name)));
    if !listed {
        h.append(header::VARY, HeaderValue::from_static(name));
    }
}

/// The names of the headers this module sets, for tests and docs.
pub const HEADERS: [HeaderName; 5] = [
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors::from_config(&CorsConfig {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            max_age: Duration::from_secs(600),
        })
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/local/demo/clip.mp4");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn applied(c: &Cors, origin: Option<&str>) -> HeaderMap {
        let mut req = HeaderMap::new();
        if let Some(o) = origin {
            req.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        let mut resp = HeaderMap::new();
        c.apply(&req, &mut resp);
        resp
    }

    #[test]
    fn an_allowed_origin_is_echoed_with_vary_and_exposed_headers() {
        let h = applied(&cors(&["https://app.example.com"]), Some("https://app.example.com"));
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[header::VARY], "Origin");
        let exposed = h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap();
        for name in ["Content-Range", "Accept-Ranges", "Content-Length", "ETag"] {
            assert!(exposed.contains(name), "{exposed}");
        }
    }

    #[test]
    fn another_origin_gets_no_allow_origin_but_still_vary() {
        let c = cors(&["https://app.example.com"]);
        for origin in [Some("https://evil.example.com"), Some("https://app.example.com:8443"), None] {
            let h = applied(&c, origin);
            assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "{origin:?}");
            assert_eq!(h[header::VARY], "Origin");
        }
    }

    #[test]
    fn a_wildcard_allows_everyone_without_vary() {
        let h = applied(&cors(&["*"]), Some("https://anything.example"));
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!h.contains_key(header::VARY));
        assert_eq!(applied(&cors(&["*"]), None)[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn disabled_cors_adds_nothing() {
        assert!(applied(&Cors::disabled(), Some("https://a.example")).is_empty());
        let p = request(Method::OPTIONS, &[("origin", "https://a.example"), ("access-control-request-method", "GET")]);
        assert!(Cors::disabled().preflight(&p).is_none());
    }

    #[test]
    fn a_preflight_allows_range_and_is_cacheable() {
        let c = cors(&["https://app.example.com"]);
        let p = request(
            Method::OPTIONS,
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "range"),
            ],
        );
        let resp = c.preflight(&p).expect("a preflight");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let h = resp.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert!(h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().starts_with("Range"));
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        let vary: Vec<_> = h.get_all(header::VARY).iter().collect();
        assert_eq!(vary.len(), 3, "{vary:?}");
    }

    #[test]
    fn a_preflight_from_another_origin_allows_nothing() {
        let c = cors(&["https://app.example.com"]);
        let p =
            request(Method::OPTIONS, &[("origin", "https://evil.example"), ("access-control-request-method", "GET")]);
        let resp = c.preflight(&p).expect("still answered");
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        for name in HEADERS {
            assert!(!resp.headers().contains_key(&name), "{name}");
        }
    }

    #[test]
    fn an_options_request_without_the_preflight_headers_is_not_a_preflight() {
        let c = cors(&["*"]);
        assert!(c.preflight(&request(Method::OPTIONS, &[("origin", "https://a.example")])).is_none());
        assert!(c.preflight(&request(Method::GET, &[("origin", "https://a.example")])).is_none());
    }

    #[test]
    fn vary_is_not_repeated() {
        let mut h = HeaderMap::new();
        h.insert(header::VARY, HeaderValue::from_static("origin"));
        add_vary(&mut h, "Origin");
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
    }
}
