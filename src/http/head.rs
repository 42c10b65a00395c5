//! Checks of the request head that hyper leaves to the server: the `Host`
//! rules of RFC 9112 section 3.2 and the size bounds of the head.
//!
//! hyper reads up to [`HYPER_HEAD_BUFFER`] bytes of an HTTP/1.1 head (and
//! [`HYPER_H2_HEADER_LIST`] of an HTTP/2 header list) and answers past that on
//! its own, with an empty body. mediagate's bounds, [`MAX_HEAD_BYTES`] and
//! [`MAX_TARGET_BYTES`], sit well below, so a head between the two gets the
//! JSON error (`431 headers_too_large`, `414 uri_too_long`).

use http::request::Parts;
use http::{HeaderMap, Method, Version, header};

use crate::error::{Error, Kind, Result};

/// The largest request head served: request line and every header line
/// (HTTP/2: the header list, pseudo-headers included). As nginx's
/// `large_client_header_buffers 4 8k` and Envoy's 60 KiB, a bound far above
/// any browser or CDN request for media.
pub const MAX_HEAD_BYTES: usize = 16 << 10;

/// The longest request target (path and query) served; signed URLs and
/// percent-encoded locators stay well below.
pub const MAX_TARGET_BYTES: usize = 8 << 10;

/// hyper's own HTTP/1.1 read buffer (`max_buf_size`): a head that does not
/// fit gets hyper's `431` with an empty body. Above [`MAX_HEAD_BYTES`] so that
/// the usual oversized heads get the JSON answer; the buffer grows only as
/// bytes arrive.
pub const HYPER_HEAD_BUFFER: usize = 128 << 10;

/// hyper's HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE` (RFC 9113 section 6.5.2):
/// past it the h2 layer answers `431` itself.
pub const HYPER_H2_HEADER_LIST: u32 = 64 << 10;

// hyper's own limits sit above mediagate's, so mediagate's answer comes first.
const _: () = assert!(HYPER_HEAD_BUFFER > 4 * MAX_HEAD_BYTES && HYPER_H2_HEADER_LIST as usize > 2 * MAX_HEAD_BYTES);

/// Refuses a request head that mediagate will not serve:
/// - a target longer than [`MAX_TARGET_BYTES`]: `414 uri_too_long`;
/// - a head larger than [`MAX_HEAD_BYTES`]: `431 headers_too_large`;
/// - an HTTP/2 request whose `Host` disagrees with `:authority`: `400 bad_request`;
/// - an HTTP/1.1 request without `Host`, with more than one `Host`, or with a
///   `Host` that is not `uri-host [":" port]`: `400 bad_request`
///   (RFC 9112 section 3.2). A target in absolute form names the authority
///   itself, and then `Host` is ignored as RFC 9112 section 3.2.2 says (it
///   must still be present and single).
pub fn check(parts: &Parts) -> Result<()> {
    let target = target_len(parts);
    if target > MAX_TARGET_BYTES {
        return Err(Error::new(
            Kind::UriTooLong,
            format!("the request target is {target} bytes; mediagate serves targets of up to {MAX_TARGET_BYTES} bytes"),
        ));
    }
    let size = head_size(&parts.method, target, &parts.headers);
    if size > MAX_HEAD_BYTES {
        return Err(Error::new(
            Kind::HeadersTooLarge,
            format!("the request head is {size} bytes; mediagate reads heads of up to {MAX_HEAD_BYTES} bytes"),
        ));
    }
    match parts.version {
        Version::HTTP_11 => check_host(parts),
        Version::HTTP_2 => check_h2_host(parts),
        _ => Ok(()),
    }
}

/// RFC 9113 section 8.3.1: an HTTP/2 request whose `Host` names another
/// authority than its `:authority` is malformed (and so are two `Host`s).
fn check_h2_host(parts: &Parts) -> Result<()> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let (host, second) = (hosts.next(), hosts.next());
    let differs = match (host, parts.uri.authority()) {
        (Some(host), Some(authority)) => {
            let host = host.to_str().ok().and_then(|h| h.parse::<http::uri::Authority>().ok());
            let default_port = if parts.uri.scheme_str() == Some("https") { 443 } else { 80 };
            let port = |a: &http::uri::Authority| a.port_u16().unwrap_or(default_port);
            host.is_none_or(|h| !h.host().eq_ignore_ascii_case(authority.host()) || port(&h) != port(authority))
        }
        _ => false,
    };
    if second.is_some() || differs {
        return Err(Error::new(Kind::BadRequest, "the Host header names another authority than :authority"));
    }
    Ok(())
}

/// The `Host` rules of RFC 9112 section 3.2 for an HTTP/1.1 request.
fn check_host(parts: &Parts) -> Result<()> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        let problem =
            if parts.headers.contains_key(header::HOST) { "more than one Host header" } else { "no Host header" };
        return Err(Error::new(
            Kind::BadRequest,
            format!("an HTTP/1.1 request needs exactly one Host header; it has {problem}"),
        ));
    };
    let valid = host.to_str().is_ok_and(is_host_and_port);
    if !valid {
        return Err(Error::new(Kind::BadRequest, "the Host header is not a host name with an optional port"));
    }
    match parts.uri.scheme_str() {
        None | Some("http" | "https") => Ok(()),
        Some(other) => Err(Error::new(
            Kind::BadRequest,
            format!("a request target of scheme {other:?} is not served; use http or https"),
        )),
    }
}

/// `uri-host [":" port]` (RFC 9112 section 3.2, RFC 3986 section 3.2), or empty.
fn is_host_and_port(host: &str) -> bool {
    host.is_empty() || is_plain_name_and_port(host) || is_host_and_port_parsed(host)
}

/// [`is_host_and_port`] for any host: IP literals, percent-encoding, sub-delims.
fn is_host_and_port_parsed(host: &str) -> bool {
    let port = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, rest)| rest),
        None => Some(host.rsplit_once(':').map_or("", |(_, port)| port)),
    };
    let port_ok =
        port.is_some_and(|p| p.is_empty() || p.strip_prefix(':').unwrap_or(p).bytes().all(|b| b.is_ascii_digit()));
    port_ok && !host.contains('@') && host.parse::<http::uri::Authority>().is_ok()
}

/// The common case, decided without parsing: a reg-name of unreserved
/// characters only (RFC 3986 section 2.3), then an optional `:port` that
/// fits 16 bits. Anything else takes the full check.
fn is_plain_name_and_port(host: &str) -> bool {
    let (name, port) = host.split_once(':').unwrap_or((host, ""));
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    !name.is_empty()
        && name.bytes().all(unreserved)
        && (port.is_empty() || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()))
}

/// The target's length as sent: the whole absolute or authority form, or the
/// path and query (always, over HTTP/2, where the authority is a pseudo-header).
fn target_len(parts: &Parts) -> usize {
    let whole = parts.uri.scheme().is_some() || parts.method == Method::CONNECT;
    if whole && parts.version < Version::HTTP_2 {
        parts.uri.to_string().len()
    } else {
        parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len())
    }
}

/// The size of the head as HTTP/1.1 sends it: `METHOD SP target SP
/// HTTP/1.1 CRLF`, then `name: value CRLF` for each field, then `CRLF`.
fn head_size(method: &Method, target: usize, headers: &HeaderMap) -> usize {
    let line = method.as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let fields: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    line + fields + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: Version, target: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().version(version).uri(target);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(()).expect("request").into_parts().0
    }

    fn kind(r: Result<()>) -> Option<Kind> {
        r.err().map(|e| e.kind)
    }

    #[test]
    fn an_http11_request_needs_exactly_one_valid_host() {
        let v11 = Version::HTTP_11;
        assert_eq!(kind(check(&parts(v11, "/x", &[("host", "a.example:8080")]))), None);
        assert_eq!(kind(check(&parts(v11, "/x", &[("host", "[::1]:8080")]))), None);
        assert_eq!(kind(check(&parts(v11, "/x", &[]))), Some(Kind::BadRequest));
        assert_eq!(kind(check(&parts(v11, "/x", &[("host", "a"), ("host", "a")]))), Some(Kind::BadRequest));
        for bad in ["a b", "u@a.example", "a/b", "a:port"] {
            assert_eq!(kind(check(&parts(v11, "/x", &[("host", bad)]))), Some(Kind::BadRequest), "{bad}");
        }
    }

    #[test]
    fn the_plain_host_shortcut_accepts_only_what_the_full_check_accepts() {
        let hosts = [
            "a.example",
            "a.example:8080",
            "a:0",
            "a:65535",
            "a:65536",
            "a:",
            "a::1",
            ":80",
            "_x~y-z.",
            "A1",
            "a:8o",
            "a:+1",
            "a:080",
            "a b",
            "a@b",
            "a%41",
            "[::1]",
            "é.example",
            "a:99999999999999999999",
        ];
        for host in hosts {
            if is_plain_name_and_port(host) {
                assert!(is_host_and_port_parsed(host), "{host} passed the shortcut only");
            }
        }
        assert!(is_plain_name_and_port("a.example:8080") && !is_plain_name_and_port("a:65536"));
    }

    #[test]
    fn an_http2_host_must_agree_with_the_authority() {
        let v2 = Version::HTTP_2;
        assert_eq!(kind(check(&parts(v2, "http://a.example/x", &[("host", "A.example:80")]))), None);
        assert_eq!(kind(check(&parts(v2, "https://a.example/x", &[("host", "a.example:443")]))), None);
        assert_eq!(kind(check(&parts(v2, "http://a.example/x", &[("host", "b.example")]))), Some(Kind::BadRequest));
        assert_eq!(kind(check(&parts(v2, "http://a.example/x", &[("host", "a.example:81")]))), Some(Kind::BadRequest));
        let two = [("host", "a.example"), ("host", "a.example")];
        assert_eq!(kind(check(&parts(v2, "http://a.example/x", &two))), Some(Kind::BadRequest));
    }

    #[test]
    fn http10_and_http2_requests_may_leave_host_out() {
        assert_eq!(kind(check(&parts(Version::HTTP_10, "/x", &[]))), None);
        assert_eq!(kind(check(&parts(Version::HTTP_2, "http://a.example/x", &[]))), None);
    }

    #[test]
    fn an_absolute_target_wins_over_a_different_host_but_must_be_http() {
        let v11 = Version::HTTP_11;
        assert_eq!(kind(check(&parts(v11, "http://a.example/x", &[("host", "b.example")]))), None);
        assert_eq!(kind(check(&parts(v11, "ftp://a.example/x", &[("host", "a.example")]))), Some(Kind::BadRequest));
    }

    #[test]
    fn a_head_past_the_bounds_is_431_and_a_target_past_them_414() {
        let v11 = Version::HTTP_11;
        let target = format!("/{}", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(kind(check(&parts(v11, &target, &[("host", "h")]))), Some(Kind::UriTooLong));
        let fits = format!("/{}", "a".repeat(MAX_TARGET_BYTES - 1));
        assert_eq!(kind(check(&parts(v11, &fits, &[("host", "h")]))), None);
        let big = "v".repeat(MAX_HEAD_BYTES);
        assert_eq!(kind(check(&parts(v11, "/x", &[("host", "h"), ("x-big", &big)]))), Some(Kind::HeadersTooLarge));
        let many: Vec<(String, String)> = (0..60).map(|i| (format!("x-h{i}"), "v".repeat(300))).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        assert_eq!(kind(check(&parts(v11, "/x", &many))), Some(Kind::HeadersTooLarge));
    }
}
