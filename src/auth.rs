//! Who may load what: signed URLs (CONTRACT.md section 5).
//!
//! `[auth] mode = "none"` lets every request through; `mode = "signed-url"`
//! wants `exp` (unix seconds), `sig` and, with several keys, `kid` on every
//! media request, in either request form:
//!
//! ```text
//! canonical = <locator's path form, key bytes outside A-Z a-z 0-9 - . _ ~ / as %XX>
//! sig       = base64url-no-padding( HMAC-SHA256( utf8(secret), canonical + "\n" + exp ) )
//! ```
//!
//! HMAC is RFC 2104, SHA-256 is FIPS 180-4 and base64url is RFC 4648
//! section 5 (without the `=` padding). The path form and the query form of
//! one object share one canonical string, so one signature serves both.
//!
//! The signing and checking functions here are pure (the clock is passed
//! in), so they are table-tested without a server.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hmac::Mac;

use crate::crypto::hmac_sha256;

use crate::config::{AuthConfig, AuthMode};
use crate::error::{Error, Kind, Result};
use crate::locator::{Locator, query_pairs};
use crate::secret::Secret;

/// Default of `[auth] clock_skew`: how far the client's and the proxy's clocks may disagree.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);
/// Default of `[auth] max_ttl`: the longest lifetime a signed URL may claim.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The query parameters of a signed URL.
pub const PARAMS: [&str; 3] = ["exp", "sig", "kid"];

/// One URL-signing key: `[[auth.keys]] id, secret`.
#[derive(Debug, Clone)]
pub struct UrlKey {
    pub id: String,
    /// The HMAC key is the UTF-8 bytes of this string.
    pub secret: Secret,
}

/// The client-authentication policy of the media listener.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Empty in mode `none`.
    keys: Vec<UrlKey>,
    signed: bool,
    clock_skew: Duration,
    max_ttl: Duration,
}

impl Default for Auth {
    fn default() -> Self {
        Auth::none()
    }
}

impl Auth {
    /// `mode = "none"`: every request is let through.
    pub fn none() -> Auth {
        Auth { keys: Vec::new(), signed: false, clock_skew: DEFAULT_CLOCK_SKEW, max_ttl: DEFAULT_MAX_TTL }
    }

    /// `mode = "signed-url"` with these keys (at least one; the config
    /// checks it, and with none every request is refused).
    pub fn signed_url(keys: Vec<UrlKey>, clock_skew: Duration, max_ttl: Duration) -> Auth {
        Auth { keys, signed: true, clock_skew, max_ttl }
    }

    /// The policy `[auth]` describes.
    pub fn from_config(cfg: &AuthConfig) -> Auth {
        match cfg.mode {
            AuthMode::None => Auth::none(),
            AuthMode::SignedUrl => Auth::signed_url(cfg.keys.clone(), cfg.clock_skew, cfg.max_ttl),
        }
    }

    /// Whether media requests need a signature.
    pub fn is_signed(&self) -> bool {
        self.signed
    }

    pub fn max_ttl(&self) -> Duration {
        self.max_ttl
    }

    /// Checks that a media request may read `loc`; `query` is the raw query
    /// string of the request (which carries `exp`, `sig`, `kid`).
    ///
    /// Errors: `403 url_expired` for an authentic URL past `exp` (plus the
    /// clock skew); `403 bad_signature` for anything else that is wrong. The
    /// signature is checked before `exp`, so a forged URL never learns more
    /// than "bad signature". Messages never contain a key.
    pub fn verify(&self, loc: &Locator, query: Option<&str>, now: SystemTime) -> Result<()> {
        if !self.signed {
            return Ok(());
        }
        let params = SignedParams::from_query(query.unwrap_or(""))?;
        let key = self.key_for(params.kid.as_deref())?;
        verify(key.secret.expose().as_bytes(), &loc.path_form(), &params, now, self.clock_skew, self.max_ttl)
    }

    /// The key a request names with `kid`: with one key `kid` may be left
    /// out; with several it is required.
    fn key_for(&self, kid: Option<&str>) -> Result<&UrlKey> {
        match (kid, self.keys.as_slice()) {
            (_, []) => Err(bad("no URL-signing key is configured ([[auth.keys]]), so no URL can be verified")),
            (None, [only]) => Ok(only),
            (None, _) => {
                Err(bad("this URL has no kid parameter, and several signing keys are configured: add kid=<key id> \
                 naming the key it was signed with"))
            }
            (Some(kid), keys) => keys.iter().find(|k| k.id == kid).ok_or_else(|| {
                bad(format!(
                    "kid {kid:?} names no configured signing key (it may have been retired): ask for a fresh URL"
                ))
            }),
        }
    }

    /// The path and query of a URL for `loc` valid for `ttl` from `now`,
    /// signed with the key `kid` (default: the first key). `query_form`
    /// picks `/media?locator=...` over the path form. The query always
    /// carries `kid`, so URLs stay valid when a second key is added.
    pub fn sign_url(
        &self,
        loc: &Locator,
        ttl: Duration,
        kid: Option<&str>,
        now: SystemTime,
        query_form: bool,
    ) -> std::result::Result<String, String> {
        let key = match kid {
            None => self.keys.first().ok_or("no URL-signing key is configured: add [[auth.keys]] to [auth]")?,
            Some(kid) => self.keys.iter().find(|k| k.id == kid).ok_or_else(|| {
                let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
                format!("no signing key has id {kid:?}; configured ids: {}", ids.join(", "))
            })?,
        };
        if ttl > self.max_ttl {
            return Err(format!(
                "a ttl of {}s is longer than [auth] max_ttl ({}s): mediagate would refuse the URL",
                ttl.as_secs(),
                self.max_ttl.as_secs()
            ));
        }
        let exp = unix_seconds(now).saturating_add(ttl.as_secs());
        let canonical = loc.path_form();
        let sig = sign(key.secret.expose().as_bytes(), &canonical, exp);
        let params = format!("exp={exp}&kid={}&sig={sig}", encode_query_value(&key.id));
        Ok(if query_form {
            format!("/media?locator={}&{params}", encode_query_value(&loc.to_string()))
        } else {
            format!("{canonical}?{params}")
        })
    }
}

/// `exp`, `sig` and `kid` as read from a query string: each at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedParams {
    /// `exp` as written (checked to be decimal digits later).
    pub exp: String,
    pub sig: String,
    pub kid: Option<String>,
}

impl SignedParams {
    /// Reads the signed-URL parameters of a raw query string. Other
    /// parameters (`locator`, a player's cache buster) are left alone.
    pub fn from_query(query: &str) -> Result<SignedParams> {
        let pairs = query_pairs(query)
            .map_err(|_| bad("the query string has a malformed percent escape, so its signature cannot be read"))?;
        let mut found: [Option<String>; 3] = [None, None, None];
        for (name, value) in pairs {
            if let Some(i) = PARAMS.iter().position(|p| *p == name) {
                if found[i].is_some() {
                    return Err(bad(format!(
                        "the {name} parameter is given more than once: a signed URL carries each of exp, sig and kid once"
                    )));
                }
                found[i] = Some(value);
            }
        }
        let [exp, sig, kid] = found;
        let (exp, sig) = match (exp, sig) {
            (Some(exp), Some(sig)) => (exp, sig),
            (None, None) => {
                return Err(bad(
                    "this URL is not signed: media URLs need exp and sig parameters (see `mediagate sign`)",
                ));
            }
            (None, Some(_)) => return Err(bad("this URL has sig but no exp parameter")),
            (Some(_), None) => return Err(bad("this URL has exp but no sig parameter")),
        };
        Ok(SignedParams { exp, sig, kid })
    }
}

/// The string a signature covers: `<canonical path>\n<exp>`.
pub fn string_to_sign(canonical_path: &str, exp: u64) -> String {
    let mut s = String::with_capacity(canonical_path.len() + 21);
    s.push_str(canonical_path);
    s.push('\n');
    let _ = write!(s, "{exp}");
    s
}

/// `sig` for a canonical path and `exp`: base64url without padding of
/// HMAC-SHA256(key, canonical path + "\n" + exp).
pub fn sign(key: &[u8], canonical_path: &str, exp: u64) -> String {
    let mut mac = hmac_sha256(key);
    mac.update(string_to_sign(canonical_path, exp).as_bytes());
    BASE64URL.encode(mac.finalize().into_bytes())
}

/// Checks `params` against `key` for `canonical_path` at time `now`: the
/// signature (in constant time), then `exp` within `clock_skew` of `now`
/// and no further than `max_ttl` (+ skew) ahead.
pub fn verify(
    key: &[u8],
    canonical_path: &str,
    params: &SignedParams,
    now: SystemTime,
    clock_skew: Duration,
    max_ttl: Duration,
) -> Result<()> {
    let exp = parse_exp(&params.exp)?;
    let sig = BASE64URL
        .decode(params.sig.as_bytes())
        .map_err(|_| bad("sig is not base64url without padding (A-Z a-z 0-9 - _; strip any trailing '=')"))?;
    let mut mac = hmac_sha256(key);
    mac.update(string_to_sign(canonical_path, exp).as_bytes());
    // `verify_slice` compares in constant time (digest's `CtOutput`).
    mac.verify_slice(&sig).map_err(|_| {
        bad(format!(
            "the signature does not match this URL: it must be HMAC-SHA256 over {:?} with the key \
             named by kid (a URL signed for another object, or altered, fails here)",
            string_to_sign(canonical_path, exp)
        ))
    })?;
    let now = unix_seconds(now);
    if exp.saturating_add(clock_skew.as_secs()) < now {
        return Err(Error::new(
            Kind::UrlExpired,
            format!(
                "this signed URL expired at {} ({}s ago): ask the application for a fresh URL",
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(exp)),
                now - exp
            ),
        ));
    }
    let latest = now.saturating_add(max_ttl.as_secs()).saturating_add(clock_skew.as_secs());
    if exp > latest {
        return Err(bad(format!(
            "exp is {}s in the future, more than [auth] max_ttl ({}s) allows: sign URLs with a shorter lifetime",
            exp - now,
            max_ttl.as_secs()
        )));
    }
    Ok(())
}

/// `exp`: unix seconds in plain decimal, without sign or leading zeros, so
/// one instant has exactly one spelling.
fn parse_exp(text: &str) -> Result<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
        && text.len() <= 19;
    match text.parse::<u64>() {
        Ok(exp) if canonical => Ok(exp),
        _ => Err(bad(format!(
            "exp must be unix seconds in plain decimal digits (like 1767225600), got {:?}",
            truncate(text, 40)
        ))),
    }
}

/// The `exp` of a signed URL whose signature has been checked: the response
/// may be cached at most until then.
pub fn expiry(query: Option<&str>) -> Option<u64> {
    SignedParams::from_query(query?).ok().and_then(|p| parse_exp(&p.exp).ok())
}

/// Lowers every `max-age` / `s-maxage` of a `Cache-Control` value to at
/// most `limit` seconds (RFC 9111 section 5.2.2), so no cache keeps a
/// signed response past the URL's expiry. Other directives are kept.
pub fn cap_max_age(cache_control: &str, limit: u64) -> String {
    let directives: Vec<String> = cache_control
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((name, value))
                if name.trim().eq_ignore_ascii_case("max-age") || name.trim().eq_ignore_ascii_case("s-maxage") =>
            {
                let value: u64 = value.trim().trim_matches('"').parse().unwrap_or(0);
                format!("{}={}", name.trim().to_ascii_lowercase(), value.min(limit))
            }
            _ => d.to_owned(),
        })
        .collect();
    directives.join(", ")
}

pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Percent-encodes a query value: every byte outside `A-Z a-z 0-9 - . _ ~`.
fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(Kind::BadSignature, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locator::Scheme;

    const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn keys(ids: &[&str]) -> Vec<UrlKey> {
        ids.iter().map(|id| UrlKey { id: (*id).into(), secret: Secret::new(format!("secret-of-{id}")) }).collect()
    }

    fn auth(ids: &[&str]) -> Auth {
        Auth::signed_url(keys(ids), DEFAULT_CLOCK_SKEW, DEFAULT_MAX_TTL)
    }

    fn loc(key: &str) -> Locator {
        Locator { scheme: Scheme::S3, account: None, bucket: "photos".into(), key: key.into() }
    }

    fn query(exp: u64, sig: &str, kid: Option<&str>) -> String {
        let mut q = format!("exp={exp}&sig={sig}");
        if let Some(kid) = kid {
            q.push_str(&format!("&kid={kid}"));
        }
        q
    }

    fn code(r: Result<()>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => e.kind.code(),
        }
    }

    #[test]
    fn the_signature_matches_an_independent_hmac_computation() {
        // printf '/s3/photos/a%%20b.jpg\n1767225600' | openssl dgst -sha256 -hmac k -binary | base64 | tr '+/' '-_' | tr -d =
        let sig = sign(b"k", "/s3/photos/a%20b.jpg", NOW);
        assert_eq!(sig, "2qqBm4HhIj1GIY7F2_boc7UzQsJJoLWyCDcGInX7ppY");
        assert!(!sig.contains('='));
    }

    #[test]
    fn a_fresh_signature_verifies_with_and_without_kid_for_one_key() {
        let a = auth(&["k1"]);
        let sig = sign(b"secret-of-k1", &loc("a b.jpg").path_form(), NOW + 60);
        assert_eq!(code(a.verify(&loc("a b.jpg"), Some(&query(NOW + 60, &sig, None)), at(NOW))), "ok");
        assert_eq!(code(a.verify(&loc("a b.jpg"), Some(&query(NOW + 60, &sig, Some("k1"))), at(NOW))), "ok");
        assert_eq!(code(a.verify(&loc("a b.jpg"), Some(&query(NOW + 60, &sig, Some("k2"))), at(NOW))), "bad_signature");
    }

    #[test]
    fn with_several_keys_kid_is_required_and_picks_the_key() {
        let a = auth(&["k1", "k2"]);
        let sig = sign(b"secret-of-k2", &loc("x").path_form(), NOW + 60);
        assert_eq!(code(a.verify(&loc("x"), Some(&query(NOW + 60, &sig, Some("k2"))), at(NOW))), "ok");
        assert_eq!(code(a.verify(&loc("x"), Some(&query(NOW + 60, &sig, Some("k1"))), at(NOW))), "bad_signature");
        assert_eq!(code(a.verify(&loc("x"), Some(&query(NOW + 60, &sig, None)), at(NOW))), "bad_signature");
    }

    #[test]
    fn expiry_allows_the_clock_skew_and_no_more() {
        let a = auth(&["k1"]);
        let exp = NOW - 30;
        let sig = sign(b"secret-of-k1", &loc("x").path_form(), exp);
        assert_eq!(code(a.verify(&loc("x"), Some(&query(exp, &sig, None)), at(NOW))), "ok");
        assert_eq!(code(a.verify(&loc("x"), Some(&query(exp, &sig, None)), at(NOW + 1))), "url_expired");
    }

    #[test]
    fn exp_beyond_the_maximum_lifetime_is_refused() {
        let a = auth(&["k1"]);
        let ok_exp = NOW + DEFAULT_MAX_TTL.as_secs();
        let sig = sign(b"secret-of-k1", &loc("x").path_form(), ok_exp);
        assert_eq!(code(a.verify(&loc("x"), Some(&query(ok_exp, &sig, None)), at(NOW))), "ok");
        let far = NOW + 400 * 24 * 3600;
        let sig = sign(b"secret-of-k1", &loc("x").path_form(), far);
        let err = a.verify(&loc("x"), Some(&query(far, &sig, None)), at(NOW)).unwrap_err();
        assert_eq!(err.kind, Kind::BadSignature);
        assert!(err.message.contains("max_ttl"), "{}", err.message);
    }

    #[test]
    fn malformed_parameters_are_bad_signatures() {
        let a = auth(&["k1"]);
        let sig = sign(b"secret-of-k1", &loc("x").path_form(), NOW + 60);
        let table = [
            String::new(),
            format!("sig={sig}"),
            format!("exp={}", NOW + 60),
            format!("exp=soon&sig={sig}"),
            format!("exp=0{}&sig={sig}", NOW + 60),
            format!("exp=+{}&sig={sig}", NOW + 60),
            format!("exp={}&sig={sig}=", NOW + 60),
            format!("exp={}&sig={sig}&sig={sig}", NOW + 60),
            format!("exp={0}&exp={0}&sig={sig}", NOW + 60),
            format!("exp={}&sig={sig}&kid=k1&kid=k1", NOW + 60),
            format!("exp={}&sig={}", NOW + 60, &sig[..sig.len() - 2]),
            format!("exp={}&sig=%zz", NOW + 60),
            format!("exp=99999999999999999999999&sig={sig}"),
        ];
        for q in table {
            assert_eq!(code(a.verify(&loc("x"), Some(&q), at(NOW))), "bad_signature", "{q}");
        }
        assert_eq!(code(a.verify(&loc("x"), None, at(NOW))), "bad_signature");
    }

    #[test]
    fn a_signature_for_one_object_does_not_open_another() {
        let a = auth(&["k1"]);
        let sig = sign(b"secret-of-k1", &loc("a.jpg").path_form(), NOW + 60);
        assert_eq!(code(a.verify(&loc("b.jpg"), Some(&query(NOW + 60, &sig, None)), at(NOW))), "bad_signature");
        // Nor does it survive a change of exp.
        assert_eq!(code(a.verify(&loc("a.jpg"), Some(&query(NOW + 61, &sig, None)), at(NOW))), "bad_signature");
    }

    #[test]
    fn error_messages_never_contain_the_key() {
        let a = auth(&["k1"]);
        for q in ["exp=1&sig=AAAA", "exp=x&sig=y", ""] {
            let err = a.verify(&loc("x"), Some(q), at(NOW)).unwrap_err();
            assert!(!err.message.contains("secret-of-k1"), "{}", err.message);
        }
    }

    #[test]
    fn mode_none_lets_everything_through() {
        assert_eq!(code(Auth::none().verify(&loc("x"), None, at(NOW))), "ok");
    }

    #[test]
    fn sign_url_produces_urls_that_verify_in_both_forms() {
        let a = auth(&["k1", "k2"]);
        let l = Locator { scheme: Scheme::Local, account: None, bucket: "demo".into(), key: "dir/a b+c%.png".into() };
        let ttl = Duration::from_secs(3600);
        let path = a.sign_url(&l, ttl, Some("k2"), at(NOW), false).unwrap();
        assert!(path.starts_with("/local/demo/dir/a%20b%2Bc%25.png?exp="), "{path}");
        let (p, q) = path.split_once('?').unwrap();
        let parsed = Locator::from_path(p).unwrap();
        assert_eq!(code(a.verify(&parsed, Some(q), at(NOW))), "ok");
        let query_url = a.sign_url(&l, ttl, None, at(NOW), true).unwrap();
        let q = query_url.strip_prefix("/media?").unwrap();
        let parsed = Locator::from_query(Some(q)).unwrap();
        assert_eq!(parsed, l);
        assert_eq!(code(a.verify(&parsed, Some(q), at(NOW))), "ok");
        assert!(a.sign_url(&l, Duration::from_secs(30 * 86400), None, at(NOW), false).is_err());
        assert!(a.sign_url(&l, ttl, Some("k9"), at(NOW), false).is_err());
    }

    #[test]
    fn max_age_is_capped_to_the_remaining_validity() {
        assert_eq!(cap_max_age("public, max-age=300", 42), "public, max-age=42");
        assert_eq!(cap_max_age("public, max-age=30", 42), "public, max-age=30");
        assert_eq!(
            cap_max_age("public, s-maxage=600, max-age=60, immutable", 90),
            "public, s-maxage=90, max-age=60, immutable"
        );
        assert_eq!(cap_max_age("no-store", 5), "no-store");
    }

    #[test]
    fn expiry_reads_exp_from_the_query() {
        assert_eq!(expiry(Some("exp=12&sig=x")), Some(12));
        assert_eq!(expiry(Some("exp=12")), None);
        assert_eq!(expiry(None), None);
    }
}
