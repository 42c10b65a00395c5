//! Signed URLs (src/auth.rs, CONTRACT.md section 5).
//!
//! 1. Forgery: for any query string (and any path, as a locator or as a raw
//!    canonical string), verification succeeds only when `sig` is exactly
//!    `sign(key, canonical path, exp)` of the key `kid` names, and `exp` lies
//!    in the accepted window.
//! 2. Round trip: a URL made by `Auth::sign_url`, in either form, verifies;
//!    it expires exactly `clock_skew` after `exp`.
//! 3. Tampering: after any single-byte change of that URL (path, locator,
//!    exp, sig, kid, separators), verification either fails or the URL still
//!    names the same locator with the same exp and sig (a change of hex case
//!    in an escape, or of a parameter mediagate ignores).
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use mediagate::auth::{self, Auth, SignedParams, UrlKey, sign};
use mediagate::error::Kind;
use mediagate::locator::Locator;
use mediagate::secret::Secret;

const SKEW: Duration = Duration::from_secs(30);
const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Input: lines `locator`, `query`, `secret`, `now`, `ttl`, `flags`,
/// `byte index`, `byte value` (missing lines take defaults). `query` is
/// checked as a forgery against `locator` and as a raw canonical path;
/// `flags` holds `2` for a second key, `k` to sign with it, `q` for the query form.
struct Input<'a> {
    locator: &'a str,
    forged_query: &'a str,
    secrets: (String, String),
    two_keys: bool,
    use_second: bool,
    query_form: bool,
    now: u32,
    ttl: u32,
    mutate_at: usize,
    mutate_to: u8,
}

impl<'a> Input<'a> {
    fn read(text: &'a str) -> Input<'a> {
        let mut lines = text.split('\n');
        let mut next = || lines.next().unwrap_or_default();
        let (locator, forged_query, secret) = (next(), next(), next());
        let (now, ttl, flags) = (next(), next(), next());
        let (mutate_at, mutate_to) = (next(), next());
        Input {
            locator,
            forged_query,
            secrets: (secret.to_owned(), format!("{secret}-2")),
            two_keys: flags.contains('2'),
            use_second: flags.contains('k'),
            query_form: flags.contains('q'),
            now: now.parse().unwrap_or(1_767_225_600),
            ttl: ttl.parse().unwrap_or(3600),
            mutate_at: mutate_at.parse().unwrap_or(0),
            mutate_to: mutate_to.parse().unwrap_or(b'x'),
        }
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The locator and query of a request URL in either form.
fn parse_url(url: &str) -> Option<(Locator, &str)> {
    let (path, query) = url.split_once('?')?;
    let loc = if path == "/media" { Locator::from_query(Some(query)).ok()? } else { Locator::from_path(path).ok()? };
    Some((loc, query))
}

/// Forgery check: an accepted query carries exactly the expected signature.
fn check_accepted_only_if_genuine(keys: &[UrlKey], canonical: &str, query: &str, now: u64, ok: bool) {
    if !ok {
        return;
    }
    let params = SignedParams::from_query(query).expect("verified, so its parameters parse");
    let key = match (&params.kid, keys) {
        (None, [only]) => only,
        (Some(kid), keys) => keys.iter().find(|k| &k.id == kid).expect("verified, so kid names a key"),
        (None, _) => panic!("verified without kid among several keys: {query:?}"),
    };
    let exp: u64 = params.exp.parse().expect("verified, so exp is decimal");
    assert_eq!(exp.to_string(), params.exp, "verified a non-canonical exp {:?}", params.exp);
    let genuine = sign(key.secret.expose().as_bytes(), canonical, exp);
    assert_eq!(params.sig, genuine, "verified a signature that is not the genuine one: {query:?} for {canonical:?}");
    assert!(exp + SKEW.as_secs() >= now, "verified an expired URL: exp {exp}, now {now}");
    assert!(exp <= now + MAX_TTL.as_secs() + SKEW.as_secs(), "verified exp {exp} beyond max_ttl at {now}");
}

fuzz_target!(|text: &str| {
    let input = Input::read(text);
    let mut keys = vec![UrlKey { id: "k1".into(), secret: Secret::new(input.secrets.0.clone()) }];
    if input.two_keys {
        keys.push(UrlKey { id: "k-2".into(), secret: Secret::new(input.secrets.1.clone()) });
    }
    let auth = Auth::signed_url(keys.clone(), SKEW, MAX_TTL);
    let now = u64::from(input.now);

    // 1. Forgery, through the policy and through the pure function.
    if let Ok(loc) = Locator::parse(input.locator) {
        let ok = auth.verify(&loc, Some(input.forged_query), at(now)).is_ok();
        check_accepted_only_if_genuine(&keys, &loc.path_form(), input.forged_query, now, ok);
    }
    if let Ok(params) = SignedParams::from_query(input.forged_query) {
        let key = &keys[0];
        let ok = auth::verify(key.secret.expose().as_bytes(), input.locator, &params, at(now), SKEW, MAX_TTL).is_ok();
        if ok {
            let exp: u64 = params.exp.parse().expect("verified, so exp is decimal");
            let genuine = sign(key.secret.expose().as_bytes(), input.locator, exp);
            assert_eq!(params.sig, genuine, "auth::verify accepted a forged sig {:?}", params.sig);
        }
    }

    // 2. Round trip.
    let loc = match Locator::parse(input.locator).or_else(|_| Locator::parse(&format!("s3://media/{}", input.locator)))
    {
        Ok(loc) => loc,
        Err(_) => return,
    };
    let ttl = Duration::from_secs(u64::from(input.ttl) % (MAX_TTL.as_secs() + 1));
    let kid = (input.two_keys && input.use_second).then_some("k-2");
    let url = auth.sign_url(&loc, ttl, kid, at(now), input.query_form).expect("ttl within max_ttl, kid configured");
    let (parsed, query) = parse_url(&url).unwrap_or_else(|| panic!("signed URL {url:?} for {loc:?} does not parse"));
    assert_eq!(parsed, loc, "signed URL {url:?} names another locator");
    let exp = now + ttl.as_secs();
    assert_eq!(auth::expiry(Some(query)), Some(exp), "{url:?}");
    for t in [now, exp, exp + SKEW.as_secs()] {
        if let Err(e) = auth.verify(&parsed, Some(query), at(t)) {
            panic!("signed URL {url:?} refused at {t} (signed at {now}): {}", e.message);
        }
    }
    let late = auth.verify(&parsed, Some(query), at(exp + SKEW.as_secs() + 1));
    assert_eq!(late.map_err(|e| e.kind), Err(Kind::UrlExpired), "{url:?} after expiry");
    let original = SignedParams::from_query(query).expect("signed URL parameters");

    // 3. One byte changed anywhere.
    let mut bytes = url.clone().into_bytes();
    let i = input.mutate_at % bytes.len();
    bytes[i] = if bytes[i] == input.mutate_to { input.mutate_to.wrapping_add(1) } else { input.mutate_to };
    let Ok(tampered) = String::from_utf8(bytes) else { return };
    let Some((loc2, query2)) = parse_url(&tampered) else { return };
    if auth.verify(&loc2, Some(query2), at(now)).is_ok() {
        let params2 = SignedParams::from_query(query2).expect("verified, so its parameters parse");
        assert!(
            loc2 == loc && params2.exp == original.exp && params2.sig == original.sig,
            "tampered URL {tampered:?} (byte {i} of {url:?}) verifies as {loc2:?}, exp {:?}, sig {:?}",
            params2.exp,
            params2.sig
        );
    }
});
