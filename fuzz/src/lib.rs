//! Properties shared by the fuzz targets of mediagate (see docs/FUZZING.md).
//!
//! Every check panics with a message naming the property and the input, so a
//! libFuzzer crash report says what was violated, not only where.
#![forbid(unsafe_code)]

use mediagate::locator::{Locator, MAX_KEY_BYTES, Scheme, encode_key, percent_decode};

/// The invariants of every locator a parser accepted, whatever the form it
/// came in (`input` is shown in failure messages).
///
/// - the key is 1 to [`MAX_KEY_BYTES`] bytes, the bucket a valid name, the
///   account present exactly for `az`;
/// - the canonical path form (what signed URLs sign) parses back to the same
///   locator, and so does the locator string (`s3://b/key`, key literal);
/// - the key's upstream encoding decodes back to the key;
/// - the pending checks of the locator hardening ([`pending`]).
pub fn check_accepted_locator(input: &str, loc: &Locator) {
    assert!(!loc.key.is_empty(), "accepted an empty key from {input:?}");
    assert!(loc.key.len() <= MAX_KEY_BYTES, "accepted a key over {MAX_KEY_BYTES} bytes from {input:?}");
    assert!(is_bucket_name(&loc.bucket), "accepted bucket {:?} from {input:?}", loc.bucket);
    assert_eq!(loc.account.is_some(), loc.scheme == Scheme::Az, "account vs scheme of {input:?}: {loc:?}");
    if let Some(account) = &loc.account {
        let ok =
            (3..=24).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        assert!(ok, "accepted Azure account {account:?} from {input:?}");
    }

    let path = loc.path_form();
    match Locator::from_path(&path) {
        Ok(back) => assert_eq!(&back, loc, "path form {path:?} of {input:?} parses to another locator"),
        Err(e) => panic!("path form {path:?} of accepted {input:?} is refused: {}", e.message),
    }
    let text = loc.to_string();
    match Locator::parse(&text) {
        Ok(back) => assert_eq!(&back, loc, "locator string {text:?} of {input:?} parses to another locator"),
        Err(e) => panic!("locator string {text:?} of accepted {input:?} is refused: {}", e.message),
    }
    check_key_round_trip(&loc.key);
    pending::check_locator(input, loc);
}

/// `percent_decode(encode_key(key)) == key`, and the encoding keeps only
/// `A-Z a-z 0-9 - . _ ~ /` and upper-case `%XX` (what S3 and Azure sign).
pub fn check_key_round_trip(key: &str) {
    let encoded = encode_key(key);
    let bytes = encoded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = &bytes[i + 1..i + 3];
            assert!(
                hex.iter().all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(h)),
                "encode_key({key:?}) = {encoded:?} has an escape that is not upper-case hex"
            );
            i += 3;
        } else {
            assert!(
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/'),
                "encode_key({key:?}) = {encoded:?} leaves byte {b:#04x} unencoded"
            );
            i += 1;
        }
    }
    match percent_decode(&encoded, false) {
        Ok(back) => assert_eq!(back, key, "percent_decode(encode_key(k)) != k for {key:?} (encoded {encoded:?})"),
        Err(e) => panic!("percent_decode refuses encode_key({key:?}) = {encoded:?}: {}", e.message),
    }
}

/// A bucket or container name as the locator parser admits it.
pub fn is_bucket_name(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket.len() <= 255
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && bucket != "."
        && bucket != ".."
}

/// The request paths an integration sends upstream for `loc`, in every
/// addressing style: S3 path style `/<bucket>/<key>`, S3 virtual-host style
/// `/<key>`, Azure `/<container>/<blob>` and the emulator's
/// `/<account>/<container>/<blob>` (src/integration/{s3,azure}).
pub fn upstream_paths(loc: &Locator) -> Vec<String> {
    let key = encode_key(&loc.key);
    let mut paths = vec![format!("/{}/{key}", encode_key(&loc.bucket)), format!("/{key}")];
    if let Some(account) = &loc.account {
        paths.push(format!("/{}/{}/{key}", encode_key(account), encode_key(&loc.bucket)));
    }
    paths
}

/// Checks that land with the locator hardening of issue 7 (branch
/// hard-locator): they fail on a tree without it, by design.
///
/// - [`pending::assert_no_dot_segment_upstream`]: no `.` or `..` segment
///   (split on `/` or `\`, after the storage's one decoding) in any upstream
///   request path of an accepted locator (issue 7, must fix 1: the
///   bucket-scope escape);
/// - [`pending::assert_no_control_characters`]: no C0 control or DEL in an
///   accepted key (issue 7, must fix 3: NUL in a local key);
/// - [`pending::assert_escapes_well_formed`]: every `%` of an accepted
///   path-form key is followed by two hex digits (`%+F` is not an escape);
/// - [`pending::assert_azure_host_is_the_cloud_form`]: an `https://` locator
///   names exactly `<account>.blob.core.windows.net`.
///
/// `MEDIAGATE_FUZZ_SKIP_PENDING=1` turns them off, to fuzz a tree without the
/// hardening for other findings; scripts/fuzz.sh never sets it.
pub mod pending {
    use super::*;
    use std::sync::OnceLock;

    /// Whether the pending checks run (on unless `MEDIAGATE_FUZZ_SKIP_PENDING=1`).
    pub fn enabled() -> bool {
        static ON: OnceLock<bool> = OnceLock::new();
        *ON.get_or_init(|| std::env::var("MEDIAGATE_FUZZ_SKIP_PENDING").map_or(true, |v| v != "1"))
    }

    /// Every pending check that applies to any accepted locator.
    pub fn check_locator(input: &str, loc: &Locator) {
        if enabled() {
            assert_no_dot_segment_upstream(input, loc);
            assert_no_control_characters(input, loc);
        }
    }

    /// No upstream request path of `loc` has a `.` or `..` segment once
    /// decoded, as the storage decodes it (`%2e%2e` counts), with segments
    /// split on `/` and on `\` (Azure Blob Storage turns `\` into `/`): a
    /// storage or proxy that resolves dot segments could otherwise leave the
    /// integration's scope.
    pub fn assert_no_dot_segment_upstream(input: &str, loc: &Locator) {
        for path in upstream_paths(loc) {
            let decoded = decode_once(&path);
            for segment in decoded.split(|b| matches!(b, b'/' | b'\\')) {
                assert!(
                    segment != b"." && segment != b"..",
                    "dot segment {:?} upstream: {input:?} was accepted as {loc:?}, upstream path {path:?} \
                     (expected 400 bad_locator)",
                    String::from_utf8_lossy(segment)
                );
            }
        }
    }

    /// `%XX` decoded once (the paths checked come from `encode_key`, so every
    /// escape is well formed); written here so the check does not lean on
    /// the decoder under test.
    fn decode_once(path: &str) -> Vec<u8> {
        let bytes = path.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    /// No C0 control character (U+0000 to U+001F) or DEL in an accepted key.
    pub fn assert_no_control_characters(input: &str, loc: &Locator) {
        assert!(
            !loc.key.chars().any(|c| c.is_ascii_control()),
            "control character in key {:?} accepted from {input:?} (expected 400 bad_locator)",
            loc.key
        );
    }

    /// Every `%` of `raw` starts `%XX` with two hex digits.
    pub fn assert_escapes_well_formed(raw: &str) {
        if !enabled() {
            return;
        }
        let bytes = raw.as_bytes();
        for (i, _) in raw.match_indices('%') {
            let ok = bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            assert!(ok, "malformed escape at byte {i} of accepted {raw:?} (expected 400 bad_locator)");
        }
    }

    /// An accepted `https://` locator names exactly `<account>.blob.core.windows.net`,
    /// without user info, port or any other suffix.
    pub fn assert_azure_host_is_the_cloud_form(input: &str, loc: &Locator) {
        if !enabled() {
            return;
        }
        let Some(rest) = input.strip_prefix("https://") else { return };
        // Hosts are case-insensitive (RFC 3986 section 3.2.2).
        let host = rest.split('/').next().unwrap_or_default().to_ascii_lowercase();
        let account = loc.account.as_deref().unwrap_or_default();
        assert_eq!(
            host,
            format!("{account}.blob.core.windows.net"),
            "https locator {input:?} accepted with host {host:?} (expected 400 bad_locator)"
        );
    }
}
