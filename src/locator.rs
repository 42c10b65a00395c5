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
//! `400 bad_locator`, with a message saying what to change:
//! - a malformed percent escape: a `%` not followed by two ASCII hex digits
//!   (`%+F`, `%-1`, `%4`, a trailing `%`, `%zz`);
//! - an empty bucket or key, a key that is not UTF-8 after decoding (this
//!   includes overlong forms such as `%C0%AE`), a key over 1024 bytes;
//! - a key with a control character (bytes 0x00-0x1F and 0x7F): the message
//!   names the byte;
//! - a key with a `.` or `..` segment (segments split on `/`, and on `\`,
//!   which Azure Blob Storage turns into `/`: `../x`, `a/./b`, `x/..`, `.`,
//!   `..\x`), checked on the decoded key, so `%2e%2e`, `%2E.` and the other
//!   encoded forms are refused too. Such a path is resolved by storages and
//!   HTTP hops (RFC 3986 section 5.2.4), which would let a locator scoped to
//!   one bucket read another with this integration's credentials. `a..b`,
//!   `...` and `.hidden` are ordinary names and valid.
//!   This refusal is a deliberate tightening of "no dot-segment resolution":
//!   such keys are neither resolved nor sent;
//! - an `https://` locator that is not exactly
//!   `https://<account>.blob.core.windows.net/<container>/<blob>`: no user
//!   info, no port, no other host or suffix, no query or fragment. The host
//!   is case-insensitive (RFC 3986 section 3.2.2), so it is lower-cased
//!   first: `https://ACCT.Blob.Core.Windows.Net/...` names account `acct`.
//!
//! The upstream request builders (S3, Azure, local) check once more, with
//! [`check_upstream_path`], that the path they are about to send has no dot
//! segment once decoded (between `/` or `\`), and refuse with an internal
//! error, sending nothing, if it ever has.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::{Error, Result};

/// The longest key accepted, in bytes (S3's limit; Azure's is 1024 characters).
pub const MAX_KEY_BYTES: usize = 1024;

/// The host suffix of the `https://` Azure form: the public Azure cloud.
/// Other endpoints (sovereign clouds, Azurite) are reached with `az://`.
pub const AZURE_BLOB_HOST_SUFFIX: &str = ".blob.core.windows.net";

/// The bytes a key keeps as they are in the canonical path form, in S3
/// request paths (SigV4 `CanonicalURI`) and in Azure request paths: the
/// unreserved characters of RFC 3986 section 2.3 and `/`. Every other byte,
/// and every byte of a non-ASCII character, is written `%XX` in upper case.
pub const KEY_ENCODE_SET: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/');

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

    /// The canonical path form: `/<scheme>/<bucket>/<key>` with the key
    /// written by [`encode_key`]. This is the string signed URLs sign
    /// (CONTRACT.md section 5).
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

impl Locator {
    /// The pieces of the locator string, e.g. `s3://bucket/key` (keys are
    /// shown literally); Azure's is `az://account/container/blob`.
    fn pieces(&self) -> [&str; 6] {
        match &self.account {
            Some(account) => ["az://", account, "/", &self.bucket, "/", &self.key],
            None => [self.scheme.as_str(), "://", &self.bucket, "/", &self.key, ""],
        }
    }

    /// The locator string ([`Self::pieces`]), built without `core::fmt`.
    pub fn text(&self) -> String {
        let pieces = self.pieces();
        let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
        pieces.iter().for_each(|p| out.push_str(p));
        out
    }

    /// [`Self::text`], shared: a request makes it once for its cache key
    /// and its access-log line.
    pub fn shared_text(&self) -> std::sync::Arc<str> {
        self.text().into()
    }
}

impl fmt::Display for Locator {
    /// The locator string ([`Locator::pieces`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().iter().try_for_each(|p| f.write_str(p))
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

/// `https://<account>.blob.core.windows.net/<container>/<blob>`, exactly:
/// the path is a URL path, decoded once. The host is lower-cased (hosts are
/// case-insensitive, RFC 3986 section 3.2.2); user info, a port or any other
/// host is refused, so the locator can only name the public Azure cloud.
fn parse_azure_url(rest: &str) -> Result<Locator> {
    const FORM: &str = "https://<account>.blob.core.windows.net/<container>/<blob>";
    if rest.contains(['?', '#']) {
        return Err(Error::bad_locator(
            "an Azure blob URL locator must not carry a query or fragment; credentials such as SAS tokens belong in the integration",
        ));
    }
    let (host, path) = rest.split_once('/').ok_or_else(|| {
        Error::bad_locator(format!("an Azure blob URL needs /<container>/<blob> after the host: {FORM}"))
    })?;
    if host.contains('@') {
        return Err(Error::bad_locator(format!(
            "an Azure blob URL locator must not carry a user name or password (\"...@\" in {host:?}): {FORM}"
        )));
    }
    if host.contains(':') {
        return Err(Error::bad_locator(format!("an Azure blob URL locator must not carry a port ({host:?}): {FORM}")));
    }
    let host = host.to_ascii_lowercase();
    let Some(account) = host.strip_suffix(AZURE_BLOB_HOST_SUFFIX) else {
        return Err(Error::bad_locator(format!(
            "https locators are Azure blob URLs of the public cloud, {FORM}; {host:?} is not \
             (for another endpoint, use az://<account>/<container>/<blob>)"
        )));
    };
    split_locator(Scheme::Az, &format!("{account}/{path}"), |raw| percent_decode(raw, false))
}

fn bucket_word(scheme: Scheme) -> &'static str {
    if scheme == Scheme::Az { "container" } else { "bucket" }
}

fn check_bucket(scheme: Scheme, bucket: &str) -> Result<()> {
    check_bucket_name(bucket)
        .map_err(|why| Error::bad_locator(format!("{bucket:?} is not a valid {} name ({why})", bucket_word(scheme))))
}

/// The name rule of a bucket or container, in locators and in an
/// integration's `buckets`: 1 to 255 letters, digits, '-', '.', '_'; not
/// `.` or `..`. `Err` says what is allowed.
pub fn check_bucket_name(bucket: &str) -> std::result::Result<(), &'static str> {
    let ok = !bucket.is_empty()
        && bucket.len() <= 255
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && bucket != "."
        && bucket != "..";
    if ok { Ok(()) } else { Err("letters, digits, '-', '.', '_'") }
}

fn check_account(account: &str) -> Result<()> {
    check_account_name(account)
        .map_err(|why| Error::bad_locator(format!("{account:?} is not a valid Azure storage account name ({why})")))
}

/// The name rule of an Azure storage account, in locators and in
/// `storage_url`: 3 to 24 lower-case letters and digits.
pub fn check_account_name(account: &str) -> std::result::Result<(), &'static str> {
    let ok = (3..=24).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok { Ok(()) } else { Err("3 to 24 lower-case letters and digits") }
}

/// The rules every object key obeys, in every scheme and both request
/// forms (see the module doc): not empty, at most [`MAX_KEY_BYTES`], no
/// control character, no `.` or `..` segment.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::bad_locator("the object key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::bad_locator(format!(
            "the object key is {} bytes long; storage keys are at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if let Some((at, byte)) = key.bytes().enumerate().find(|(_, b)| b.is_ascii_control()) {
        return Err(Error::bad_locator(format!(
            "the object key has the control character {} at byte {at}; keys may not contain control characters \
             (0x00-0x1F, 0x7F)",
            describe_control(byte)
        )));
    }
    if let Some(segment) = dot_segment(key.as_bytes()) {
        let segment = String::from_utf8_lossy(segment);
        return Err(Error::bad_locator(format!(
            "the object key {key:?} has a {segment:?} segment: keys with '.' or '..' segments (between '/' or '\\', \
             also percent-encoded, as %2e) are refused, because a storage or a proxy on the way resolves them into \
             another path; names like 'a..b', '...' or '.hidden' are fine"
        )));
    }
    Ok(())
}

/// The first `.` or `..` segment of `path` (RFC 3986 section 3.3), with
/// segments split on `/` and also on `\`: Azure Blob Storage turns `\` in a
/// blob name into `/`, and WHATWG URL parsers read `\` as `/` in http(s) paths.
fn dot_segment(path: &[u8]) -> Option<&[u8]> {
    path.split(|b| matches!(b, b'/' | b'\\')).find(|segment| *segment == b"." || *segment == b"..")
}

/// `0x00 (NUL)`, `0x0A (LF)`, `0x7F (DEL)`.
fn describe_control(byte: u8) -> String {
    const NAMES: [&str; 32] = [
        "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "TAB", "LF", "VT", "FF", "CR", "SO", "SI", "DLE",
        "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
    ];
    let name = NAMES.get(usize::from(byte)).copied().unwrap_or("DEL");
    format!("0x{byte:02X} ({name})")
}

/// Defence in depth for the upstream request builders: refuses, with an
/// internal error, an encoded request path (as sent on the request line)
/// that has a `.` or `..` segment once decoded (so `%2e%2e`, and `%2F` or
/// `%5C` around dots, count too). [`check_key`] refuses such keys first, so
/// this never fires unless a bug lets one through; when it does, nothing is
/// sent.
pub fn check_upstream_path(encoded_path: &str, integration: &str) -> Result<()> {
    let decoded: Vec<u8> = percent_decode_str(encoded_path).collect();
    if dot_segment(&decoded).is_some() {
        return Err(Error::internal(format!(
            "integration \"{integration}\" refused to send a request whose path has a '.' or '..' segment \
             ({encoded_path:?}); this is a bug in mediagate, please report it"
        )));
    }
    Ok(())
}

/// Percent-encodes a key the way S3 and Azure sign it: every byte outside
/// `A-Z a-z 0-9 - . _ ~ /` as `%XX` in upper-case hex ([`KEY_ENCODE_SET`]).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ENCODE_SET).to_string()
}

/// Decodes `%XX` escapes once (and `+` as a space when `plus_is_space`).
/// A `%` not followed by two ASCII hex digits, or a result that is not
/// UTF-8, is `bad_locator`.
pub fn percent_decode(raw: &str, plus_is_space: bool) -> Result<String> {
    check_escapes(raw)?;
    let spaced;
    let text = if plus_is_space && raw.contains('+') {
        spaced = raw.replace('+', " ");
        spaced.as_str()
    } else {
        raw
    };
    if !text.contains('%') {
        // Nothing to decode (most keys): already UTF-8.
        return Ok(text.to_owned());
    }
    let bytes: Vec<u8> = percent_decode_str(text).collect();
    String::from_utf8(bytes).map_err(|_| Error::bad_locator(format!("{raw:?} does not decode to UTF-8")))
}

/// `percent_decode_str` leaves a malformed escape as it is; mediagate
/// refuses it instead (RFC 3986 section 2.1: `%` HEXDIG HEXDIG).
fn check_escapes(raw: &str) -> Result<()> {
    let bytes = raw.as_bytes();
    for (at, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'%') {
        let ok = bytes.get(at + 1..at + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit));
        if !ok {
            return Err(Error::bad_locator(format!(
                "malformed percent escape at byte {at} of {raw:?}: '%' must be followed by two hex digits \
                 (write %25 for a literal '%')"
            )));
        }
    }
    Ok(())
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

    /// The message of a refusal, asserting it is `bad_locator`.
    fn refusal(result: Result<Locator>, input: &str) -> String {
        let err = result.expect_err(input);
        assert_eq!(err.kind, Kind::BadLocator, "{input:?}: {}", err.message);
        err.message
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
            ("s3://b/%2e%2e/x", loc(Scheme::S3, None, "b", "%2e%2e/x")),
            ("s3://b/a//b/", loc(Scheme::S3, None, "b", "a//b/")),
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
            refusal(Locator::parse(text), text);
        }
    }

    #[test]
    fn a_key_over_1024_bytes_is_refused() {
        let text = format!("s3://b/{}", "k".repeat(1025));
        assert!(refusal(Locator::parse(&text), "1025 bytes").contains("1025 bytes long"));
        let text = format!("s3://b/{}", "k".repeat(1024));
        assert!(Locator::parse(&text).is_ok());
    }

    #[test]
    fn keys_with_a_dot_segment_are_refused_in_every_scheme_and_both_forms() {
        let keys = ["..", ".", "../x", "./x", "x/..", "x/.", "a/../b", "a/./b", "a//../b", "../../etc/passwd", "..\\x"];
        for key in keys {
            for scheme in ["s3", "gs", "local"] {
                let text = format!("{scheme}://b/{key}");
                assert!(refusal(Locator::parse(&text), &text).contains("segment"), "{text}");
                let path = format!("/{scheme}/b/{key}");
                assert!(refusal(Locator::from_path(&path), &path).contains("segment"), "{path}");
                let query = format!("locator={}", encode_key(&text));
                assert!(refusal(Locator::from_query(Some(&query)), &query).contains("segment"), "{query}");
            }
            let text = format!("az://acct/c/{key}");
            refusal(Locator::parse(&text), &text);
            let path = format!("/az/acct/c/{key}");
            refusal(Locator::from_path(&path), &path);
            let url = format!("https://acct.blob.core.windows.net/c/{key}");
            refusal(Locator::parse(&url), &url);
        }
    }

    #[test]
    fn percent_encoded_dot_segments_are_refused_because_the_check_is_on_the_decoded_key() {
        let encoded =
            ["%2e%2e", "%2E%2E", "%2E%2e", ".%2e", "%2e.", "%2E", "%2e", "..%2F..", "x%2F%2E%2E", "%2e%2e%2fx"];
        for raw in encoded.into_iter().chain(["..%5Cx", "x%5C%2e%2e", "%2e%5C"]) {
            let path = format!("/s3/b/{raw}/y");
            refusal(Locator::from_path(&path), &path);
            let path = format!("/az/acct/c/{raw}");
            refusal(Locator::from_path(&path), &path);
            let url = format!("https://acct.blob.core.windows.net/c/{raw}/y");
            refusal(Locator::parse(&url), &url);
            // the query value is decoded once: `%2e` arrives as `.`
            let query = format!("locator=s3://b/{raw}/y");
            refusal(Locator::from_query(Some(&query)), &query);
        }
    }

    #[test]
    fn names_with_dots_inside_a_segment_stay_valid() {
        for key in
            ["a..b", "...", ".hidden", "..hidden", "x/.../y", "x./y.", "a/.b/..c", "v1.2/...", "a\\b", "x\\...\\y"]
        {
            assert_eq!(Locator::parse(&format!("s3://b/{key}")).unwrap().key, key);
            assert_eq!(Locator::from_path(&format!("/gs/b/{key}")).unwrap().key, key);
            assert_eq!(Locator::from_path(&format!("/local/b/{}", encode_key(key))).unwrap().key, key);
        }
    }

    #[test]
    fn control_characters_in_a_key_are_refused_with_the_byte_named() {
        let table = [
            ("a%00b", "0x00 (NUL) at byte 1"),
            ("a%0D%0Ab", "0x0D (CR) at byte 1"),
            ("%0Ax", "0x0A (LF) at byte 0"),
            ("tab%09", "0x09 (TAB) at byte 3"),
            ("x%1F", "0x1F (US) at byte 1"),
            ("del%7F", "0x7F (DEL) at byte 3"),
        ];
        for (raw, named) in table {
            let path = format!("/s3/b/{raw}");
            let message = refusal(Locator::from_path(&path), &path);
            assert!(message.contains(named), "{path}: {message}");
            assert!(!message.contains(".."), "{path}: {message}");
        }
        let message = refusal(Locator::parse("local://b/a\0b"), "NUL in a local key");
        assert!(message.contains("NUL"), "{message}");
        // U+0085 (NEL) is not an ASCII control byte: a valid, if odd, name
        assert!(Locator::parse("s3://b/a\u{85}b").is_ok());
    }

    #[test]
    fn malformed_percent_escapes_are_refused() {
        for raw in ["%+F", "%-1", "% 1", "%4", "%", "a%", "%zz", "%4g", "%%41", "%\u{e9}9"] {
            let path = format!("/s3/b/{raw}");
            let message = refusal(Locator::from_path(&path), &path);
            assert!(message.contains("malformed percent escape"), "{path}: {message}");
            assert!(percent_decode(raw, true).is_err(), "{raw:?}");
        }
        let query = "locator=s3://b/k%+F";
        refusal(Locator::from_query(Some(query)), query);
    }

    #[test]
    fn escapes_that_decode_to_invalid_utf8_are_refused() {
        for raw in ["%FF", "%C0%AE", "%C0%AE%C0%AE/x", "%E2%9C", "%ED%A0%80"] {
            let path = format!("/s3/b/{raw}");
            assert!(refusal(Locator::from_path(&path), &path).contains("UTF-8"), "{path}");
        }
    }

    #[test]
    fn percent_decoding_takes_upper_lower_and_mixed_hex_and_plus_only_in_queries() {
        assert_eq!(percent_decode("%2e%2E%C3%bc%2b+", false).unwrap(), "..ü++");
        assert_eq!(percent_decode("%2e%2E%C3%bc%2b+", true).unwrap(), "..ü+ ");
        assert_eq!(percent_decode("", true).unwrap(), "");
    }

    #[test]
    fn the_https_form_is_exactly_an_azure_public_cloud_blob_url() {
        let refused = [
            ("https://acct.blob.core.windows.net@127.0.0.1:9/media/k", "user name"),
            ("https://user:pw@acct.blob.core.windows.net/media/k", "user name"),
            ("https://acct.blob.core.windows.net:443/media/k", "port"),
            ("https://acct.blob.core.windows.net:/media/k", "port"),
            ("https://acct.blob.localhost/media/k", "public cloud"),
            ("https://acct.blob.core.windows.net.localhost/media/k", "public cloud"),
            ("https://acct.blob.core.windows.net.evil.com/media/k", "public cloud"),
            ("https://acct.blob.core.chinacloudapi.cn/media/k", "public cloud"),
            ("https://acct.blob.core.windows.net./media/k", "public cloud"),
            ("https://blob.core.windows.net/media/k", "public cloud"),
            ("https://a.b.blob.core.windows.net/media/k", "storage account"),
            ("https://.blob.core.windows.net/media/k", "storage account"),
            ("https://acct.blob.core.windows.net", "after the host"),
            ("https://acct.blob.core.windows.net/media", "no object key"),
            ("https://acct.blob.core.windows.net/media/k#frag", "fragment"),
        ];
        for (url, says) in refused {
            let message = refusal(Locator::parse(url), url);
            assert!(message.contains(says), "{url}: {message}");
        }
    }

    #[test]
    fn the_https_host_is_case_insensitive_and_names_a_lower_case_account() {
        let l = Locator::parse("https://ACCT1.Blob.Core.Windows.NET/media/K.mp4").unwrap();
        assert_eq!(l, loc(Scheme::Az, Some("acct1"), "media", "K.mp4"));
    }

    #[test]
    fn the_path_form_decodes_the_key_once_byte_for_byte() {
        let table = [
            ("/s3/b/k.jpg", loc(Scheme::S3, None, "b", "k.jpg")),
            ("/s3/b/a%20b%2Bc+d", loc(Scheme::S3, None, "b", "a b+c+d")),
            ("/s3/b/a%2520b", loc(Scheme::S3, None, "b", "a%20b")),
            ("/s3/b/%252e%252e/x", loc(Scheme::S3, None, "b", "%2e%2e/x")),
            ("/gs/b/x//y/.z/..a/z/", loc(Scheme::Gs, None, "b", "x//y/.z/..a/z/")),
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
        for path in [
            "/",
            "/s3",
            "/s3/b",
            "/s3/b/",
            "/http/b/k",
            "/s3/b/%",
            "/s3/b/%4",
            "/s3/b/%FF",
            "/az/acct/c",
            "/s3/../b/k",
            "/s3/./k",
            "/s3/%2e%2e/k",
            "/gs/b/x//y/./../z/",
        ] {
            refusal(Locator::from_path(path), path);
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
    fn an_upstream_path_with_a_dot_segment_is_an_internal_error() {
        let dotted = ["/b/../x", "/b/./x", "/b/x/..", "/b/%2e%2E/x", "/b/.%2e", "/b/%2E", "/acct/c/..", "/b/..%5Cx"];
        for path in dotted.into_iter().chain(["/b/x%2F..%2Fy", "/b/%5C.%5C"]) {
            let err = check_upstream_path(path, "s3").unwrap_err();
            assert_eq!(err.kind, Kind::Internal, "{path}");
            assert!(err.message.contains("integration \"s3\""), "{}", err.message);
        }
        for path in ["/", "/b/k", "/b/a..b/...", "/b/.hidden", "/b/%252e%252e", "/b//x/", "/b/a%5C...%5Cb"] {
            assert!(check_upstream_path(path, "s3").is_ok(), "{path}");
        }
    }

    #[test]
    fn display_text_and_shared_text_all_show_the_locator_string() {
        let long = "k/".repeat(300);
        let cases = [
            (loc(Scheme::Gs, None, "b", "k"), "gs://b/k".to_owned()),
            (loc(Scheme::Az, Some("a1b"), "c", "k"), "az://a1b/c/k".to_owned()),
            (loc(Scheme::S3, None, "b", "é ü/x"), "s3://b/é ü/x".to_owned()),
            (loc(Scheme::Local, None, "b", &long), format!("local://b/{long}")),
        ];
        for (l, want) in cases {
            assert_eq!(l.to_string(), want);
            assert_eq!(l.text(), want);
            assert_eq!(&*l.shared_text(), want);
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Keys made of the characters that matter: dots, slashes, `%`, `+`,
        /// spaces, reserved characters, controls and non-ASCII.
        fn key_like() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    Just(".".to_owned()),
                    Just("..".to_owned()),
                    Just("/".to_owned()),
                    Just("\\".to_owned()),
                    Just("%".to_owned()),
                    Just("%2e".to_owned()),
                    "[a-zA-Z0-9 +=@:,;!*'()\\[\\]$&~_-]{1,3}",
                    "[\\x00-\\x1f\\x7f]",
                    "\\PC{1,2}",
                ],
                1..24,
            )
            .prop_map(|parts| parts.concat())
        }

        /// Keys the rules accept: segments of any non-control characters
        /// (dots, `%`, `+`, `\\`, spaces, non-ASCII included), none of them
        /// `.` or `..`.
        fn accepted_key() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof!["[^/\\p{Cc}]{0,6}", "[.%2eE+ \\\\]{0,4}"].prop_map(|segment| {
                    // a lone `.` or `..` between backslashes becomes `...`
                    let parts: Vec<&str> =
                        segment.split('\\').map(|p| if p == "." || p == ".." { "..." } else { p }).collect();
                    parts.join("\\")
                }),
                1..12,
            )
            .prop_map(|segments| segments.join("/"))
            .prop_filter("keys are not empty", |k| !k.is_empty())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn an_accepted_key_round_trips_through_the_encoding_and_the_path_form(key in accepted_key()) {
                prop_assert!(check_key(&key).is_ok(), "{:?}", key);
                let encoded = encode_key(&key);
                prop_assert_eq!(percent_decode(&encoded, false).unwrap(), key.clone());
                let schemes =
                    [(Scheme::S3, None), (Scheme::Gs, None), (Scheme::Local, None), (Scheme::Az, Some("acct"))];
                for (scheme, account) in schemes {
                    let account = account.map(str::to_owned);
                    let l = Locator { scheme, account, bucket: "b".into(), key: key.clone() };
                    prop_assert_eq!(Locator::from_path(&l.path_form()).unwrap(), l);
                }
            }

            #[test]
            fn no_accepted_key_yields_an_upstream_path_with_a_dot_segment(key in key_like()) {
                let parsed = [
                    Locator::parse(&format!("s3://b/{key}")),
                    Locator::from_path(&format!("/s3/b/{key}")),
                    Locator::from_path(&format!("/az/acct/c/{key}")),
                    Locator::parse(&format!("https://acct.blob.core.windows.net/c/{key}")),
                    Locator::from_query(Some(&format!("locator=s3://b/{key}"))),
                ];
                for l in parsed.into_iter().flatten() {
                    let upstream = format!("/{}/{}", l.bucket, encode_key(&l.key));
                    prop_assert!(check_upstream_path(&upstream, "p").is_ok(), "{:?} -> {}", l, upstream);
                    prop_assert!(check_key(&l.key).is_ok());
                }
            }

            #[test]
            fn any_text_key_is_accepted_exactly_when_it_obeys_the_key_rules(key in "\\PC{0,40}|[./%2eE]{0,12}") {
                let parsed = Locator::parse(&format!("s3://b/{key}"));
                prop_assert_eq!(parsed.is_ok(), check_key(&key).is_ok());
                if let Ok(l) = parsed {
                    prop_assert_eq!(Locator::from_path(&l.path_form()).unwrap(), l);
                }
            }
        }
    }
}
