//! The header values that describe one version of an object: `Content-Type`
//! ([RFC 9110 section 8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.3)),
//! `ETag` ([section 8.8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.3))
//! and `Last-Modified` ([section 8.8.2](https://www.rfc-editor.org/rfc/rfc9110#section-8.8.2)).
//!
//! The cache makes them once when it stores an object's metadata, and every
//! hit clones them; a response without the cache makes them for itself.
//! Made per response, they were about 3,500 of a 16 KiB hit's 40,000
//! instructions (the type guessed from the key, the date formatted;
//! docs/BENCHMARKS.md).

use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, header};

use super::content_type::content_type;

/// The representation headers of one object version, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityHeaders {
    /// `Content-Length` of the whole object (a 200's; a 206 has its range's).
    pub whole_length: HeaderValue,
    pub content_type: HeaderValue,
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<HeaderValue>,
}

impl EntityHeaders {
    /// The values for an object of `size` bytes whose storage gave `etag`,
    /// `last_modified` and `stored_type`, under `key` (whose extension may
    /// decide the type).
    pub fn new(
        size: u64,
        etag: Option<&str>,
        last_modified: Option<SystemTime>,
        stored_type: Option<&str>,
        key: &str,
    ) -> EntityHeaders {
        EntityHeaders {
            whole_length: HeaderValue::from(size),
            content_type: content_type(stored_type, key),
            etag: etag.and_then(|v| HeaderValue::from_str(v).ok()),
            last_modified: last_modified.and_then(|t| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()),
        }
    }

    /// Writes `ETag` and `Last-Modified` (what a `304` repeats).
    pub fn write_validators(&self, h: &mut HeaderMap) {
        if let Some(v) = &self.etag {
            h.insert(header::ETAG, v.clone());
        }
        if let Some(v) = &self.last_modified {
            h.insert(header::LAST_MODIFIED, v.clone());
        }
    }

    /// Writes `Content-Type` and the validators.
    pub fn write(&self, h: &mut HeaderMap) {
        h.insert(header::CONTENT_TYPE, self.content_type.clone());
        self.write_validators(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_values_are_the_wire_forms_of_the_storage_answer() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let e = EntityHeaders::new(42, Some("\"abc\""), Some(t), None, "clip.mp4");
        let mut h = HeaderMap::new();
        e.write(&mut h);
        assert_eq!(h[header::CONTENT_TYPE], "video/mp4");
        assert_eq!(e.whole_length, "42");
        assert_eq!(h[header::ETAG], "\"abc\"");
        assert_eq!(h[header::LAST_MODIFIED], "Sun, 06 Nov 1994 08:49:37 GMT");
        let mut only = HeaderMap::new();
        EntityHeaders::new(0, None, None, Some("image/webp"), "a.jpg").write_validators(&mut only);
        assert!(only.is_empty(), "no validators were given: {only:?}");
    }

    #[test]
    fn a_value_that_cannot_be_a_header_is_left_out_not_sent_broken() {
        let e = EntityHeaders::new(1, Some("\"a\nb\""), None, None, "x.bin");
        assert_eq!(e.etag, None);
    }
}
