//! The `Content-Type` of a media response
//! ([RFC 9110 section 8.3](https://www.rfc-editor.org/rfc/rfc9110#section-8.3)):
//! decided once, by the cache when it stores an object's metadata and by the
//! proxy when it answers, so neither imports the other.

use http::HeaderValue;

/// The storage's `Content-Type`, unless it says nothing useful (absent or a
/// generic octet-stream); then the one the key's extension implies.
pub fn content_type(stored: Option<&str>, key: &str) -> HeaderValue {
    let generic = |t: &str| {
        let t = t.trim();
        t.is_empty()
            || t.eq_ignore_ascii_case("application/octet-stream")
            || t.eq_ignore_ascii_case("binary/octet-stream")
    };
    if let Some(t) = stored.filter(|t| !generic(t))
        && let Ok(v) = HeaderValue::from_str(t)
    {
        return v;
    }
    let guessed = mime_guess::from_path(key).first_raw().unwrap_or("application/octet-stream");
    HeaderValue::from_static(guessed)
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn content_type_prefers_the_storage_unless_it_is_generic() {
        let table = [
            (Some("image/webp"), "a.jpg", "image/webp"),
            (None, "a.mp4", "video/mp4"),
            (Some("application/octet-stream"), "a.png", "image/png"),
            (Some("binary/octet-stream"), "a.jpg", "image/jpeg"),
            (None, "noext", "application/octet-stream"),
            (Some(""), "x.pdf", "application/pdf"),
        ];
        for (stored, key, want) in table {
            assert_eq!(content_type(stored, key), want, "{stored:?} {key}");
        }
    }
}
