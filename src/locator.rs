//! Locators (`s3://bucket/key`, `gs://…`, `az://account/container/blob`,
//! `https://account.blob.core.windows.net/container/blob`, `local://…`) and
//! the two request forms that carry them (CONTRACT.md section 1):
//!
//! - query form `/media?locator=<percent-encoded locator>`: the value is
//!   percent-decoded once, like any query value (`+` is a space, as in
//!   `application/x-www-form-urlencoded`), and the key is then taken
//!   literally; only the `https://` Azure form is a URL whose path is decoded
//!   once more;
//! - path form `/<scheme>/<bucket>/<key>` (`/az/<account>/<container>/<blob>`):
//!   the key is the rest of the path, percent-decoded once, byte for byte:
//!   no dot-segment resolution, no slash merging.
//!
//! Malformed percent escapes, empty buckets or keys, keys that are not UTF-8
//! and keys over 1024 bytes are `400 bad_locator`.

use std::fmt;

use crate::error::{Error, Result};

/// The longest key accepted, in bytes (S3's limit; Azure's is 1024 characters).
pub const MAX_KEY_BYTES: usize = 1024;

/// The storage family a locator names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    S3,
    Gs,
    Az,
    Local,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gs => "gs",
            Scheme::Az => "az",
            Scheme::Local => "local",
        }
    }

    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "s3" => Some(Scheme::S3),
            "gs" => Some(Scheme::Gs),
            "az" => Some(Scheme::Az),
            "local" => Some(Scheme::Local),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object in one storage system.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locator {
    pub scheme: Scheme,
    /// The Azure storage account (`Some` exactly when `scheme` is `Az`).
    pub account: Option<String>,
    /// The bucket, or the Azure container.
    pub bucket: String,
    /// The object key (blob name), exactly as stored.
    pub key: String,
}

impl Locator {
    /// Parses a locator string (already decoded from its query parameter).
    pub fn parse(text: &str) -> Result<Locator> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(Error::bad_locator(format!(
                "locator {text:?} has no scheme: expected s3://, gs://, az://, local:// or an https:// Azure blob URL"
            )));
        };
        match scheme {
            "https" => parse_azure_url(rest),
            _ => {
                let scheme = Scheme::from_name(scheme).ok_or_else(|| {
                    Error::bad_locator(format!(
                        "unknown locator scheme {scheme:?}: expected s3, gs, az, local or https"
                    ))
                })?;
                split_locator(scheme, rest, |raw| Ok(raw.to_owned()))
            }
        }
    }

    /// Parses the path form: `path` is the raw (still encoded) request path.
    pub fn from_path(path: &str) -> Result<Locator> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let (scheme, rest) = trimmed
            .split_once('/')
            .ok_or_else(|| Error::bad_locator(format!("path {path:?} is not /<scheme>/<bucket>/<key>")))?;
        let scheme = Scheme::from_name(scheme).ok_or_else(|| {
            Error::bad_locator(format!(
                "path {path:?} does not start with /s3/, /gs/, /az/ or /local/ (or use /media?locator=...)"
            ))
        })?;
        split_locator(scheme, rest, |raw| percent_decode(raw, false))
    }

    /// Parses the query form: `query` is the raw query string of `/media`.
    /// Exactly one `locator` parameter is required.
    pub fn from_query(query: Option<&str>) -> Result<Locator> {
        let mut found = None;
        for (name, value) in query_pairs(query.unwrap_or(""))? {
            if name == "locator" {
                if found.is_some() {
                    return Err(Error::bad_locator("the locator parameter is given more than once"));
                }
                found = Some(value);
            }
        }
        let value = found
            .ok_or_else(|| Error::bad_locator("/media needs a locator parameter: /media?locator=s3://bucket/key"))?;
        Locator::parse(&value)
    }

    /// The canonical path form: `/<scheme>/<bucket>/<key>` with every key byte
    /// outside `A-Z a-z 0-9 - . _ ~ /` percent-encoded in upper-case hex.
    /// This is the string signed URLs sign (CONTRACT.md section 5).
    pub fn path_form(&self) -> String {
        let mut out = String::with_capacity(self.key.len() + 32);
        out.push('/');
        out.push_str(self.scheme.as_str());
        if let Some(account) = &self.account {
            out.push('/');
            out.push_str(account);
        }
        out.push('/');
        out.push_str(&self.bucket);
        out.push('/');
        out.push_str(&encode_key(&self.key));
        out
    }
}

impl fmt::Display for Locator {
    /// The locator string, e.g. `s3://bucket/key` (keys are shown literally).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "az://{account}/{}/{}", self.bucket, self.key),
            None => write!(f, "{}://{}/{}", self.scheme, self.bucket, self.key),
        }
    }
}

/// Splits `bucket/key` (or `account/container/blob` for Azure) and validates;
/// `key_of` turns the raw key text into the key (identity or percent-decoding).
fn split_locator(scheme: Scheme, rest: &str, key_of: impl FnOnce(&str) -> Result<String>) -> Result<Locator> {
    let (account, rest) = if scheme == Scheme::Az {
        let (account, rest) = rest
            .split_once('/')
            .ok_or_else(|| Error::bad_locator("an az locator is az://<account>/<container>/<blob>"))?;
        check_account(account)?;
        (Some(account.to_owned()), rest)
    } else {
        (None, rest)
    };
    let (bucket, raw_key) = rest
        .split_once('/')
        .ok_or_else(|| Error::bad_locator(format!("locator names a {} but no object key", bucket_word(scheme))))?;
    check_bucket(scheme, bucket)?;
    let key = key_of(raw_key)?;
    check_key(&key)?;
    Ok(Locator { scheme, account, bucket: bucket.to_owned(), key })
}

/// `https://<account>.blob.<cloud suffix>/<container>/<blob>`: the path is a
/// URL path, decoded once.
fn parse_azure_url(rest: &str) -> Result<Locator> {
    if rest.contains(['?', '#']) {
        return Err(Error::bad_locator(
            "an Azure blob URL locator must not carry a query or fragment; credentials such as SAS tokens belong in the integration",
        ));
    }
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| Error::bad_locator("an Azure blob URL needs /<container>/<blob> after the host"))?;
    let mut labels = host.split('.');
    let account = labels.next().unwrap_or_default();
    if labels.next() != Some("blob") {
        return Err(Error::bad_locator(format!(
            "https locators are Azure blob URLs (https://<account>.blob.core.windows.net/...); {host:?} is not"
        )));
    }
    split_locator(Scheme::Az, &format!("{account}/{path}"), |raw| percent_decode(raw, false))
}

fn bucket_word(scheme: Scheme) -> &'static str {
    if scheme == Scheme::Az { "container" } else { "bucket" }
}

fn check_bucket(scheme: Scheme, bucket: &str) -> Result<()> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && bucket != "."
        && bucket != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::bad_locator(format!(
            "{bucket:?} is not a valid {} name (letters, digits, '-', '.', '_')",
            bucket_word(scheme)
        )))
    }
}

fn check_account(account: &str) -> Result<()> {
    let ok = (3..=24).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::bad_locator(format!(
            "{account:?} is not a valid Azure storage account name (3 to 24 lower-case letters and digits)"
        )))
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::bad_locator("the object key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::bad_locator(format!(
            "the object key is {} bytes long; storage keys are at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// Percent-encodes a key the way S3 and Azure sign it: every byte outside
/// `A-Z a-z 0-9 - . _ ~ /` as `%XX` in upper-case hex.
pub fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len() * 3 / 2);
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// Decodes `%XX` escapes once (and `+` as a space when `plus_is_space`).
/// A `%` not followed by two hex digits, or a result that is not UTF-8, is
/// `bad_locator`.
pub fn percent_decode(raw: &str, plus_is_space: bool) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Error::bad_locator(format!("malformed percent escape at byte {i} of {raw:?}")))?;
                out.push(byte);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::bad_locator(format!("{raw:?} does not decode to UTF-8")))
}

/// Splits a raw query string into decoded `(name, value)` pairs.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn loc(scheme: Scheme, account: Option<&str>, bucket: &str, key: &str) -> Locator {
        Locator { scheme, account: account.map(str::to_owned), bucket: bucket.into(), key: key.into() }
    }

    #[test]
    fn locator_strings_of_every_scheme_parse() {
        let table = [
            ("s3://b/k.jpg", loc(Scheme::S3, None, "b", "k.jpg")),
            ("gs://b/dir/k.mp4", loc(Scheme::Gs, None, "b", "dir/k.mp4")),
            ("local://demo/a b.png", loc(Scheme::Local, None, "demo", "a b.png")),
            ("az://acct/media/v.mp4", loc(Scheme::Az, Some("acct"), "media", "v.mp4")),
            (
                "https://acct.blob.core.windows.net/media/a%20b/c.mp4",
                loc(Scheme::Az, Some("acct"), "media", "a b/c.mp4"),
            ),
            // the key is literal in a locator string: no second decoding
            ("s3://b/a%20b", loc(Scheme::S3, None, "b", "a%20b")),
            ("s3://b/a//b/", loc(Scheme::S3, None, "b", "a//b/")),
            ("s3://b/../x", loc(Scheme::S3, None, "b", "../x")),
        ];
        for (text, want) in table {
            assert_eq!(Locator::parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn malformed_locators_are_bad_locator() {
        for text in [
            "",
            "s3:/b/k",
            "ftp://b/k",
            "s3://b",
            "s3://b/",
            "s3:///k",
            "s3://b c/k",
            "az://acct/media",
            "az://UPPER/media/k",
            "https://example.com/media/k",
            "https://acct.blob.core.windows.net/media/k?sv=x",
            "https://acct.blob.core.windows.net/media/%zz",
        ] {
            let err = Locator::parse(text).unwrap_err();
            assert_eq!(err.kind, Kind::BadLocator, "{text:?}");
        }
    }

    #[test]
    fn a_key_over_1024_bytes_is_refused() {
        let text = format!("s3://b/{}", "k".repeat(1025));
        assert_eq!(Locator::parse(&text).unwrap_err().kind, Kind::BadLocator);
        let text = format!("s3://b/{}", "k".repeat(1024));
        assert!(Locator::parse(&text).is_ok());
    }

    #[test]
    fn the_path_form_decodes_the_key_once_byte_for_byte() {
        let table = [
            ("/s3/b/k.jpg", loc(Scheme::S3, None, "b", "k.jpg")),
            ("/s3/b/a%20b%2Bc+d", loc(Scheme::S3, None, "b", "a b+c+d")),
            ("/s3/b/a%2520b", loc(Scheme::S3, None, "b", "a%20b")),
            ("/gs/b/x//y/./../z/", loc(Scheme::Gs, None, "b", "x//y/./../z/")),
            ("/az/acct/c/%E2%9C%93.png", loc(Scheme::Az, Some("acct"), "c", "✓.png")),
            ("/local/demo/a.png", loc(Scheme::Local, None, "demo", "a.png")),
            ("/s3/b/=@:,;!*'()[]$&", loc(Scheme::S3, None, "b", "=@:,;!*'()[]$&")),
        ];
        for (path, want) in table {
            assert_eq!(Locator::from_path(path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn bad_paths_are_bad_locator() {
        for path in ["/", "/s3", "/s3/b", "/s3/b/", "/http/b/k", "/s3/b/%", "/s3/b/%4", "/s3/b/%FF", "/az/acct/c"] {
            assert_eq!(Locator::from_path(path).unwrap_err().kind, Kind::BadLocator, "{path}");
        }
    }

    #[test]
    fn the_query_form_decodes_the_value_once() {
        let l = Locator::from_query(Some("locator=s3%3A%2F%2Fb%2Fa%2520b%2Bc+d&exp=1")).unwrap();
        assert_eq!(l, loc(Scheme::S3, None, "b", "a%20b+c d"));
        let l = Locator::from_query(Some("locator=s3://b/k%26x")).unwrap();
        assert_eq!(l.key, "k&x");
    }

    #[test]
    fn the_query_form_needs_exactly_one_locator() {
        for q in [None, Some(""), Some("x=1"), Some("locator=s3://b/k&locator=s3://b/j")] {
            assert_eq!(Locator::from_query(q).unwrap_err().kind, Kind::BadLocator, "{q:?}");
        }
    }

    #[test]
    fn the_canonical_path_form_round_trips_every_special_character() {
        let key = "dir/a b+c=d@e:f,g;h!i*j'k(l)m[n]o$p&q%r//s/ü✓/";
        let l = loc(Scheme::S3, None, "b", key);
        let path = l.path_form();
        assert_eq!(
            path,
            "/s3/b/dir/a%20b%2Bc%3Dd%40e%3Af%2Cg%3Bh%21i%2Aj%27k%28l%29m%5Bn%5Do%24p%26q%25r//s/%C3%BC%E2%9C%93/"
        );
        assert_eq!(Locator::from_path(&path).unwrap(), l);
        let az = loc(Scheme::Az, Some("acct"), "c", key);
        assert_eq!(Locator::from_path(&az.path_form()).unwrap(), az);
    }

    #[test]
    fn display_shows_the_locator_string() {
        assert_eq!(loc(Scheme::Gs, None, "b", "k").to_string(), "gs://b/k");
        assert_eq!(loc(Scheme::Az, Some("a1b"), "c", "k").to_string(), "az://a1b/c/k");
    }
}
