//! Conditional requests (src/http/conditional.rs, RFC 9110 section 13):
//! `Conditions::from_headers`, `evaluate` and `if_range_allows`.
//!
//! Input: lines `Name: value`. `ETag:` and `Last-Modified:` (unix seconds,
//! optionally `.nanos`) describe the stored representation; the
//! `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`
//! and `If-Range` lines are the request's (repeated lines are several field
//! lines); anything else is sent along as another header.
//!
//! The verdict and the `If-Range` answer must equal an independent model of
//! RFC 9110 sections 13.1 and 13.2.2 written below from the RFC: field lines
//! combined with ", " (section 5.3), optional whitespace SP / HTAB only
//! (section 5.6.3), lists with empty elements (section 5.6.1), strong and
//! weak comparison (section 8.8.3.2). A representation ETag that is not one
//! valid entity-tag matches only `*`.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mediagate::http::conditional::{Conditions, Verdict, evaluate, if_range_allows, normalize_etag};

/// An entity-tag of the model: weakness and opaque-tag (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag {
    weak: bool,
    opaque: String,
}

/// `OWS = *( SP / HTAB )`.
fn ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `etagc = %x21 / %x23-7E / obs-text`.
fn etagc(c: char) -> bool {
    c == '!' || ('#'..='~').contains(&c) || u32::from(c) >= 0x80
}

/// One `entity-tag` at the front of `s`, and the rest.
fn take_tag(s: &str) -> Option<(Tag, &str)> {
    let (weak, rest) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let inner = rest.strip_prefix('"')?;
    let end = inner.find(|c: char| !etagc(c))?;
    if !inner[end..].starts_with('"') {
        return None;
    }
    Some((Tag { weak, opaque: format!("\"{}\"", &inner[..end]) }, &inner[end + 1..]))
}

/// `#entity-tag`: `None` when malformed; empty elements allowed.
fn tag_list(s: &str) -> Option<Vec<Tag>> {
    let mut tags = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            continue;
        }
        if rest.is_empty() {
            return Some(tags);
        }
        let (tag, after) = take_tag(rest)?;
        tags.push(tag);
        rest = after.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
}

/// Exactly one entity-tag.
fn single_tag(s: &str) -> Option<Tag> {
    match take_tag(s)? {
        (tag, "") => Some(tag),
        _ => None,
    }
}

struct Model<'a> {
    lines: Vec<(HeaderName, &'a str)>,
    current: Option<Tag>,
    /// Whole seconds.
    modified: Option<u64>,
}

impl Model<'_> {
    fn values(&self, name: &HeaderName) -> Vec<&str> {
        self.lines.iter().filter(|(n, _)| n == name).map(|(_, v)| ows(v)).collect()
    }

    /// The combined value of a list field; `None` when absent or blank.
    fn combined(&self, name: &HeaderName) -> Option<String> {
        let values: Vec<&str> = self.values(name).into_iter().filter(|v| !v.is_empty()).collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    /// `If-Match` (strong) / `If-None-Match` (weak): whether the field's
    /// condition finds a match, `None` when the field is absent.
    fn matches(&self, name: &HeaderName, strong: bool) -> Option<bool> {
        let value = self.combined(name)?;
        if value == "*" {
            return Some(true);
        }
        let (Some(tags), Some(current)) = (tag_list(&value), &self.current) else { return Some(false) };
        Some(tags.iter().any(|t| t.opaque == current.opaque && !(strong && (t.weak || current.weak))))
    }

    /// A date field with exactly one field line holding a valid HTTP-date.
    fn date(&self, name: &HeaderName) -> Option<u64> {
        match self.values(name).as_slice() {
            [one] => httpdate::parse_http_date(one).ok().map(secs),
            _ => None,
        }
    }

    fn evaluate(&self) -> Verdict {
        match self.matches(&IF_MATCH, true) {
            Some(false) => return Verdict::PreconditionFailed,
            Some(true) => {}
            None => {
                if let (Some(since), Some(m)) = (self.date(&IF_UNMODIFIED_SINCE), self.modified)
                    && m > since
                {
                    return Verdict::PreconditionFailed;
                }
            }
        }
        match self.matches(&IF_NONE_MATCH, false) {
            Some(true) => Verdict::NotModified,
            Some(false) => Verdict::Proceed,
            None => match (self.date(&IF_MODIFIED_SINCE), self.modified) {
                (Some(since), Some(m)) if m <= since => Verdict::NotModified,
                _ => Verdict::Proceed,
            },
        }
    }

    fn if_range_allows(&self) -> bool {
        match self.values(&IF_RANGE).as_slice() {
            [] => true,
            [one] if one.starts_with('"') || one.starts_with("W/") => match (single_tag(one), &self.current) {
                (Some(t), Some(c)) => !t.weak && !c.weak && t.opaque == c.opaque,
                _ => false,
            },
            [one] => httpdate::parse_http_date(one).ok().map(secs).is_some_and(|d| self.modified == Some(d)),
            _ => false,
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fuzz_target!(|input: &str| {
    let mut headers = HeaderMap::new();
    let mut lines = Vec::new();
    let mut etag: Option<&str> = None;
    let mut modified: Option<SystemTime> = None;
    let mut modified_secs = None;
    for line in input.split('\n') {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("etag") {
            etag = Some(value);
            continue;
        }
        if name.eq_ignore_ascii_case("last-modified") {
            let (s, n) = value.trim().split_once('.').unwrap_or((value.trim(), "0"));
            if let (Ok(s), Ok(n)) = (s.parse::<u32>(), n.parse::<u32>()) {
                modified = Some(UNIX_EPOCH + Duration::new(u64::from(s), n % 1_000_000_000));
                modified_secs = Some(u64::from(s));
            }
            continue;
        }
        let (Ok(name), Ok(header)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            continue;
        };
        headers.append(name.clone(), header);
        lines.push((name, value));
    }

    let cond = Conditions::from_headers(&headers);
    let verdict = evaluate(&cond, etag, modified);
    let allows = if_range_allows(&cond, etag, modified);
    assert_eq!(evaluate(&Conditions::default(), etag, modified), Verdict::Proceed);
    assert!(if_range_allows(&Conditions::default(), etag, modified));
    if cond.is_empty() {
        assert_eq!(verdict, Verdict::Proceed, "no precondition but {verdict:?}: {headers:?}");
    }

    // The storage's ETag is what the proxy sends on (`normalize_etag`): model
    // it as that entity-tag; without a valid one, only `*` can match.
    let current = etag.and_then(|e| single_tag(e.trim()));
    let model = Model { lines, current, modified: modified_secs };
    assert_eq!(verdict, model.evaluate(), "evaluate: {headers:?}, ETag {etag:?}, Last-Modified {modified:?}");
    assert_eq!(
        allows,
        model.if_range_allows(),
        "if_range_allows: {headers:?}, ETag {etag:?}, Last-Modified {modified:?}"
    );

    if let Some(raw) = etag
        && let Some(tag) = normalize_etag(raw)
    {
        assert!(single_tag(&tag).is_some(), "normalize_etag({raw:?}) = {tag:?} is not an entity-tag");
        assert_eq!(normalize_etag(&tag).as_deref(), Some(tag.as_str()), "normalize_etag is not idempotent on {raw:?}");
    }
});
