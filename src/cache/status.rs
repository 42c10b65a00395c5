//! The cache's verdict on one response, as the `Cache-Status` header
//! ([RFC 9211](https://www.rfc-editor.org/rfc/rfc9211)).

/// The cache's verdict on one response (RFC 9211 section 2).
///
/// There is no `stored` parameter: it says the cache stored the response
/// (RFC 9211 section 2.5), and on a miss the header goes out before the
/// fill has read (let alone stored) the body, which may still fail. The
/// next request's `hit` tells whether it was stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Verdict {
    pub(super) hit: bool,
    /// `fwd=` when the storage was asked: miss, stale, partial (section 2.2).
    pub(super) fwd: Option<&'static str>,
    /// `collapsed` (section 2.6): the storage read was shared with another request.
    pub(super) collapsed: bool,
    /// `ttl=` (section 2.7): seconds of freshness left, for hits.
    pub(super) ttl: Option<u64>,
    /// `detail=` (section 2.8).
    pub(super) detail: Option<&'static str>,
}

impl Verdict {
    pub(super) fn hit(ttl: u64) -> Verdict {
        Verdict { hit: true, fwd: None, collapsed: false, ttl: Some(ttl), detail: None }
    }

    pub(super) fn fwd(kind: &'static str) -> Verdict {
        Verdict { hit: false, fwd: Some(kind), collapsed: false, ttl: None, detail: None }
    }

    pub(super) fn header(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("mediagate");
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd);
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if let Some(ttl) = self.ttl {
            out.push_str("; ttl=");
            out.push_str(itoa::Buffer::new().format(ttl));
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            out.push_str(detail);
        }
        out
    }
}

/// `Cache-Status` when the cache is off (RFC 9211 section 2.2).
const BYPASS: &str = "mediagate; fwd=bypass";

/// The `Cache-Status` header of a media response (RFC 9211): the cache's
/// verdict, or `fwd=bypass` when the cache is off (`None`). The verdict's
/// text becomes the value without a copy.
pub fn cache_status_value(status: Option<String>) -> http::HeaderValue {
    status
        .and_then(|s| http::HeaderValue::from_maybe_shared(bytes::Bytes::from(s)).ok())
        .unwrap_or(http::HeaderValue::from_static(BYPASS))
}
