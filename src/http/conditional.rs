//! Conditional requests (RFC 9110 section 13,
//! <https://www.rfc-editor.org/rfc/rfc9110#section-13>): `If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`, `If-Range`.
//! Pure functions, table-tested.
//!
//! Entity-tags are compared as RFC 9110 section 8.8.3.2 says; HTTP dates have
//! one-second resolution, so a `Last-Modified` time is truncated to whole
//! seconds before any comparison.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{HeaderName, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE};

/// The precondition headers of one request, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`, raw (a list of entity-tags or `*`); several field lines are
    /// joined with `", "`. A field with nothing but whitespace is `None`.
    pub if_match: Option<String>,
    /// `If-None-Match`, raw, like `if_match`.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`; `None` also when the date does not parse or the
    /// field appears more than once (ignored, RFC 9110 section 13.1.3).
    pub if_modified_since: Option<SystemTime>,
    /// `If-Unmodified-Since`; `None` also when the date does not parse or the
    /// field appears more than once (ignored, RFC 9110 section 13.1.4).
    pub if_unmodified_since: Option<SystemTime>,
    /// `If-Range`.
    pub if_range: Option<IfRange>,
}

/// The validator of an `If-Range` header (RFC 9110 section 13.1.5,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-13.1.5>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfRange {
    /// A value starting with `"` or `W/`, raw (it may still be malformed, and
    /// then never matches).
    ETag(String),
    /// A valid HTTP-date.
    Date(SystemTime),
    /// Neither an entity-tag nor a valid HTTP-date (or the field appears more
    /// than once), raw. It never matches, so a `Range` sent with it is ignored
    /// and the whole representation served (200).
    Invalid(String),
}

/// The outcome of evaluating preconditions against the selected representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on and serve the representation (range rules still apply).
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    PreconditionFailed,
}

impl Conditions {
    /// Reads the precondition headers of a request. Non-UTF-8 bytes in a
    /// field value are replaced (lossy), so such a tag matches nothing.
    pub fn from_headers(headers: &HeaderMap) -> Conditions {
        // Most requests carry none: one pass over the names instead of a
        // lookup per precondition.
        if !headers.keys().any(is_precondition) {
            return Conditions::default();
        }
        Conditions {
            if_match: joined_list(headers, &IF_MATCH),
            if_none_match: joined_list(headers, &IF_NONE_MATCH),
            if_modified_since: single_value(headers, &IF_MODIFIED_SINCE).and_then(|v| parse_date(&v)),
            if_unmodified_since: single_value(headers, &IF_UNMODIFIED_SINCE).and_then(|v| parse_date(&v)),
            if_range: if_range(headers),
        }
    }

    /// Whether the request carries no precondition at all.
    pub fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }
}

/// Whether `name` is one of the five precondition headers.
fn is_precondition(name: &HeaderName) -> bool {
    [IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE, IF_RANGE].contains(name)
}

/// All field lines of a list-valued header joined with `", "`, or `None` when
/// absent or blank.
fn joined_list(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| trim_ows(&String::from_utf8_lossy(v.as_bytes())).to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The value of a singleton header: `None` when absent or repeated.
fn single_value(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Some(trim_ows(&String::from_utf8_lossy(v.as_bytes())).to_owned()),
        _ => None,
    }
}

/// A field value without its surrounding optional whitespace: `OWS = *( SP /
/// HTAB )` (RFC 9110 section 5.6.3,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-5.6.3>). Other white
/// space, such as U+00A0 in obs-text, is part of the value.
fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// An HTTP-date in any of the three formats of RFC 9110 section 5.6.7.
fn parse_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value).ok()
}

/// `If-Range`: `None` when absent.
fn if_range(headers: &HeaderMap) -> Option<IfRange> {
    headers.get(IF_RANGE)?;
    let Some(value) = single_value(headers, &IF_RANGE) else {
        return Some(IfRange::Invalid(joined_list(headers, &IF_RANGE).unwrap_or_default()));
    };
    Some(if value.starts_with('"') || value.starts_with("W/") {
        IfRange::ETag(value)
    } else if let Some(date) = parse_date(&value) {
        IfRange::Date(date)
    } else {
        IfRange::Invalid(value)
    })
}

/// Evaluates preconditions for a GET or HEAD of a representation with `etag`
/// (as the storage gave it) and `last_modified`, in the order of RFC 9110
/// section 13.2.2 (<https://www.rfc-editor.org/rfc/rfc9110#section-13.2.2>):
///
/// 1. `If-Match` present: unless it matches (strong comparison; `*` matches
///    since a representation exists), [`Verdict::PreconditionFailed`]. Without
///    an `etag`, only `*` matches.
/// 2. Otherwise, `If-Unmodified-Since` present: if `last_modified` is known and
///    later than the date, [`Verdict::PreconditionFailed`] (unknown: ignored).
/// 3. `If-None-Match` present: if it matches (weak comparison; `*` matches
///    since a representation exists), [`Verdict::NotModified`]. Without an
///    `etag`, only `*` matches.
/// 4. Otherwise, `If-Modified-Since` present: if `last_modified` is known and
///    not later than the date, [`Verdict::NotModified`] (unknown: ignored).
/// 5. [`Verdict::Proceed`]; `If-Range` is step 5 of the RFC, see
///    [`if_range_allows`].
///
/// A malformed entity-tag list matches nothing (so a malformed `If-Match`
/// fails, a malformed `If-None-Match` is as if it were absent).
pub fn evaluate(cond: &Conditions, etag: Option<&str>, last_modified: Option<SystemTime>) -> Verdict {
    let current = || etag.and_then(representation_tag);
    let last_modified = last_modified.map(truncate_to_seconds);
    if let Some(if_match) = &cond.if_match {
        if !list_matches(if_match, current(), strong_match) {
            return Verdict::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) = (cond.if_unmodified_since, last_modified)
        && modified > since
    {
        return Verdict::PreconditionFailed;
    }
    if let Some(if_none_match) = &cond.if_none_match {
        if list_matches(if_none_match, current(), weak_match) {
            return Verdict::NotModified;
        }
    } else if let (Some(since), Some(modified)) = (cond.if_modified_since, last_modified)
        && modified <= since
    {
        return Verdict::NotModified;
    }
    Verdict::Proceed
}

/// Whether a `Range` may be honoured given `If-Range` (RFC 9110 section
/// 13.1.5, <https://www.rfc-editor.org/rfc/rfc9110#section-13.1.5>): true
/// when there is no `If-Range` or its validator matches.
///
/// - An entity-tag matches by strong comparison with `etag`; a weak tag on
///   either side never matches.
/// - A date matches only when `last_modified` is known and equal to it to the
///   second. The RFC also asks that the date be a strong validator; the
///   client's claim is taken as is and equality accepted.
/// - [`IfRange::Invalid`] never matches.
///
/// When this is false the caller ignores `Range` and serves 200 with the whole
/// representation. (An `If-Range` without a `Range` is to be ignored; that is
/// the caller's business.)
pub fn if_range_allows(cond: &Conditions, etag: Option<&str>, last_modified: Option<SystemTime>) -> bool {
    match &cond.if_range {
        None => true,
        Some(IfRange::ETag(tag)) => match (parse_entity_tag(tag), etag.and_then(representation_tag)) {
            (Some(requested), Some(current)) => strong_match(requested, current),
            _ => false,
        },
        Some(IfRange::Date(date)) => last_modified.is_some_and(|m| truncate_to_seconds(m) == *date),
        Some(IfRange::Invalid(_)) => false,
    }
}

/// An `entity-tag` (RFC 9110 section 8.8.3): weakness and the opaque-tag,
/// quotes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a str,
}

/// Strong comparison (RFC 9110 section 8.8.3.2): neither weak, same opaque-tag.
fn strong_match(a: EntityTag<'_>, b: EntityTag<'_>) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// Weak comparison (RFC 9110 section 8.8.3.2): same opaque-tag.
fn weak_match(a: EntityTag<'_>, b: EntityTag<'_>) -> bool {
    a.opaque == b.opaque
}

/// Whether an `If-Match`/`If-None-Match` value (`*` or a list of entity-tags)
/// matches the current representation. `*` matches whenever there is a
/// representation, which there is whenever this is evaluated, even without an
/// entity-tag; a malformed list matches nothing.
fn list_matches(
    value: &str,
    current: Option<EntityTag<'_>>,
    compare: fn(EntityTag<'_>, EntityTag<'_>) -> bool,
) -> bool {
    if trim_ows(value) == "*" {
        return true;
    }
    match (parse_entity_tag_list(value), current) {
        (Some(tags), Some(current)) => tags.into_iter().any(|tag| compare(tag, current)),
        _ => false,
    }
}

/// The representation's entity-tag: the storage's value when it is a valid
/// entity-tag, else `None` (see [`normalize_etag`] to make it one).
fn representation_tag(etag: &str) -> Option<EntityTag<'_>> {
    parse_entity_tag(etag.trim())
}

/// An entity-tag fit to send as `ETag`: the storage's value when it already is
/// a valid entity-tag (`"abc"`, `W/"abc"`), the value quoted when it is bare
/// `etagc` characters (`abc` -> `"abc"`), else `None`.
pub fn normalize_etag(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if parse_entity_tag(raw).is_some() {
        Some(raw.to_owned())
    } else if !raw.is_empty() && raw.bytes().all(is_etagc) {
        Some(format!("\"{raw}\""))
    } else {
        None
    }
}

/// Exactly one entity-tag, nothing around it.
fn parse_entity_tag(value: &str) -> Option<EntityTag<'_>> {
    match take_entity_tag(value)? {
        (tag, "") => Some(tag),
        _ => None,
    }
}

/// `#entity-tag` (RFC 9110 section 5.6.1): comma-separated with optional
/// whitespace, empty elements skipped; `None` when malformed or empty. Quoted
/// opaque-tags are scanned, so a comma inside one does not split it.
fn parse_entity_tag_list(value: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (tag, after) = take_entity_tag(rest)?;
        tags.push(tag);
        rest = after.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
    (!tags.is_empty()).then_some(tags)
}

/// Takes one `[ W/ ] DQUOTE *etagc DQUOTE` off the front of `value`.
fn take_entity_tag(value: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, quoted) = match value.strip_prefix("W/") {
        Some(quoted) => (true, quoted),
        None => (false, value),
    };
    let inner = quoted.strip_prefix('"')?;
    let close = inner.find('"')?;
    if !inner[..close].bytes().all(is_etagc) {
        return None;
    }
    let (opaque, rest) = quoted.split_at(close + 2);
    Some((EntityTag { weak, opaque }, rest))
}

/// `etagc = %x21 / %x23-7E / obs-text`.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Drops the sub-second part (rounding toward the past), as HTTP dates have
/// one-second resolution.
fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after.as_secs()),
        Err(before) => {
            let d = before.duration();
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs)).unwrap_or(t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const T: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).expect("test header value"));
        }
        map
    }

    fn cond(pairs: &[(HeaderName, &str)]) -> Conditions {
        Conditions::from_headers(&headers(pairs))
    }

    #[test]
    fn only_sp_and_htab_are_trimmed_from_a_field_value() {
        // Found by the conditional fuzz target: U+00A0 (bytes C2 A0, obs-text)
        // was trimmed as white space, so `\u{a0}"v1"` matched "v1".
        let nbsp = "\u{a0}\"v1\"";
        let c = cond(&[(IF_RANGE, nbsp), (IF_NONE_MATCH, nbsp)]);
        assert_eq!(c.if_range, Some(IfRange::Invalid(nbsp.into())));
        assert_eq!(evaluate(&c, Some("\"v1\""), None), Verdict::Proceed);
        assert!(!if_range_allows(&c, Some("\"v1\""), None));
        assert_eq!(evaluate(&cond(&[(IF_MATCH, "\u{a0}*")]), Some("\"v1\""), None), Verdict::PreconditionFailed);
        let c = cond(&[(IF_NONE_MATCH, " \t\"v1\"\t "), (IF_RANGE, "\t\"v1\" ")]);
        assert_eq!(evaluate(&c, Some("\"v1\""), None), Verdict::NotModified);
        assert!(if_range_allows(&c, Some("\"v1\""), None));
    }

    #[test]
    fn no_headers_give_empty_conditions_that_proceed() {
        let c = cond(&[]);
        assert!(c.is_empty());
        assert_eq!(evaluate(&c, Some("\"a\""), Some(at(T))), Verdict::Proceed);
        assert_eq!(evaluate(&c, None, None), Verdict::Proceed);
        assert!(if_range_allows(&c, Some("\"a\""), Some(at(T))));
    }

    #[test]
    fn from_headers_reads_every_precondition() {
        let c = cond(&[
            (IF_MATCH, "\"a\""),
            (IF_NONE_MATCH, "W/\"b\""),
            (IF_MODIFIED_SINCE, &date(T)),
            (IF_UNMODIFIED_SINCE, &date(T + 1)),
            (IF_RANGE, "\"c\""),
        ]);
        let expected = Conditions {
            if_match: Some("\"a\"".into()),
            if_none_match: Some("W/\"b\"".into()),
            if_modified_since: Some(at(T)),
            if_unmodified_since: Some(at(T + 1)),
            if_range: Some(IfRange::ETag("\"c\"".into())),
        };
        assert_eq!(c, expected);
        assert!(!c.is_empty());
    }

    #[test]
    fn repeated_list_headers_are_joined_and_blank_ones_dropped() {
        let c = cond(&[(IF_NONE_MATCH, "\"a\""), (IF_NONE_MATCH, " "), (IF_NONE_MATCH, "\"b\", \"c\"")]);
        assert_eq!(c.if_none_match.as_deref(), Some("\"a\", \"b\", \"c\""));
        assert_eq!(cond(&[(IF_MATCH, "")]).if_match, None);
    }

    #[test]
    fn dates_parse_in_all_three_formats_and_invalid_or_repeated_ones_are_ignored() {
        let cases: [(&[&str], Option<SystemTime>); 7] = [
            (&["Sun, 06 Nov 1994 08:49:37 GMT"], Some(at(784_111_777))),
            (&["Sunday, 06-Nov-94 08:49:37 GMT"], Some(at(784_111_777))),
            (&["Sun Nov  6 08:49:37 1994"], Some(at(784_111_777))),
            (&["yesterday"], None),
            (&[""], None),
            (&["Sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"], None),
            (&["Sun, 06 Nov 1994 25:49:37 GMT"], None),
        ];
        for (values, expected) in cases {
            let ims: Vec<_> = values.iter().map(|v| (IF_MODIFIED_SINCE, *v)).collect();
            let ius: Vec<_> = values.iter().map(|v| (IF_UNMODIFIED_SINCE, *v)).collect();
            assert_eq!(cond(&ims).if_modified_since, expected, "{values:?}");
            assert_eq!(cond(&ius).if_unmodified_since, expected, "{values:?}");
        }
    }

    #[test]
    fn if_range_is_an_entity_tag_a_date_or_invalid() {
        let cases = [
            ("\"abc\"", IfRange::ETag("\"abc\"".into())),
            ("W/\"abc\"", IfRange::ETag("W/\"abc\"".into())),
            ("\"broken", IfRange::ETag("\"broken".into())),
            ("Sun, 06 Nov 1994 08:49:37 GMT", IfRange::Date(at(784_111_777))),
            ("abc", IfRange::Invalid("abc".into())),
            ("w/\"abc\"", IfRange::Invalid("w/\"abc\"".into())),
            ("Sun, 06 Nov 1994", IfRange::Invalid("Sun, 06 Nov 1994".into())),
        ];
        for (value, expected) in cases {
            assert_eq!(cond(&[(IF_RANGE, value)]).if_range, Some(expected), "{value:?}");
        }
        let repeated = cond(&[(IF_RANGE, "\"a\""), (IF_RANGE, "\"b\"")]).if_range;
        assert!(matches!(repeated, Some(IfRange::Invalid(_))));
    }

    /// (If-Match, representation etag, expected verdict).
    #[test]
    fn if_match_uses_strong_comparison_and_fails_with_412() {
        use Verdict::*;
        let cases = [
            ("*", Some("\"a\""), Proceed),
            ("*", Some("W/\"a\""), Proceed),
            ("*", None, Proceed),
            ("\"a\"", Some("\"a\""), Proceed),
            ("\"x\", \"a\"", Some("\"a\""), Proceed),
            ("\"x\",\"a\"", Some("\"a\""), Proceed),
            (" \"x\" ,\t\"a\" ", Some("\"a\""), Proceed),
            (",, \"a\" ,", Some("\"a\""), Proceed),
            ("\"a,b\"", Some("\"a,b\""), Proceed),
            ("\"b\"", Some("\"a\""), PreconditionFailed),
            ("\"a,b\"", Some("\"a\""), PreconditionFailed),
            ("W/\"a\"", Some("\"a\""), PreconditionFailed),
            ("\"a\"", Some("W/\"a\""), PreconditionFailed),
            ("W/\"a\"", Some("W/\"a\""), PreconditionFailed),
            ("\"a\"", None, PreconditionFailed),
            ("\"a\"", Some("a"), PreconditionFailed),
            ("a", Some("\"a\""), PreconditionFailed),
            ("\"a\" \"b\"", Some("\"a\""), PreconditionFailed),
            ("\"a", Some("\"a\""), PreconditionFailed),
            ("\"a b\"", Some("\"a b\""), PreconditionFailed),
            ("*, \"a\"", Some("\"a\""), PreconditionFailed),
            ("\"A\"", Some("\"a\""), PreconditionFailed),
        ];
        for (header, etag, expected) in cases {
            let c = cond(&[(IF_MATCH, header)]);
            assert_eq!(evaluate(&c, etag, Some(at(T))), expected, "If-Match: {header} vs {etag:?}");
        }
    }

    /// (If-None-Match, representation etag, expected verdict).
    #[test]
    fn if_none_match_uses_weak_comparison_and_gives_304() {
        use Verdict::*;
        let cases = [
            ("*", Some("\"a\""), NotModified),
            ("*", None, NotModified),
            ("\"a\"", Some("\"a\""), NotModified),
            ("W/\"a\"", Some("\"a\""), NotModified),
            ("\"a\"", Some("W/\"a\""), NotModified),
            ("W/\"a\"", Some("W/\"a\""), NotModified),
            ("\"x\", W/\"a\"", Some("\"a\""), NotModified),
            ("\"x,\", \"a\"", Some("\"a\""), NotModified),
            ("\"b\"", Some("\"a\""), Proceed),
            ("\"b\", \"c\"", Some("\"a\""), Proceed),
            ("\"a\"", None, Proceed),
            ("a", Some("\"a\""), Proceed),
            ("\"a\"; \"b\"", Some("\"a\""), Proceed),
        ];
        for (header, etag, expected) in cases {
            let c = cond(&[(IF_NONE_MATCH, header)]);
            assert_eq!(evaluate(&c, etag, Some(at(T))), expected, "If-None-Match: {header} vs {etag:?}");
        }
    }

    /// (If-Unmodified-Since, Last-Modified, expected verdict).
    #[test]
    fn if_unmodified_since_fails_only_when_modified_later() {
        use Verdict::*;
        let cases = [
            (date(T), Some(at(T)), Proceed),
            (date(T), Some(at(T) + Duration::from_millis(999)), Proceed),
            (date(T), Some(at(T - 1)), Proceed),
            (date(T), Some(at(T + 1)), PreconditionFailed),
            (date(T), None, Proceed),
            ("not a date".to_owned(), Some(at(T + 1)), Proceed),
        ];
        for (header, modified, expected) in cases {
            let c = cond(&[(IF_UNMODIFIED_SINCE, &header)]);
            assert_eq!(evaluate(&c, Some("\"a\""), modified), expected, "{header} vs {modified:?}");
        }
    }

    /// (If-Modified-Since, Last-Modified, expected verdict).
    #[test]
    fn if_modified_since_gives_304_unless_modified_later() {
        use Verdict::*;
        let cases = [
            (date(T), Some(at(T)), NotModified),
            (date(T), Some(at(T) + Duration::from_millis(999)), NotModified),
            (date(T), Some(at(T - 1)), NotModified),
            (date(T), Some(at(T + 1)), Proceed),
            (date(T), None, Proceed),
            ("not a date".to_owned(), Some(at(T - 1)), Proceed),
        ];
        for (header, modified, expected) in cases {
            let c = cond(&[(IF_MODIFIED_SINCE, &header)]);
            assert_eq!(evaluate(&c, Some("\"a\""), modified), expected, "{header} vs {modified:?}");
        }
    }

    #[test]
    fn if_match_overrides_if_unmodified_since() {
        let modified_later = Some(at(T + 10));
        let c = cond(&[(IF_MATCH, "\"a\""), (IF_UNMODIFIED_SINCE, &date(T))]);
        assert_eq!(evaluate(&c, Some("\"a\""), modified_later), Verdict::Proceed);
        let c = cond(&[(IF_MATCH, "\"b\""), (IF_UNMODIFIED_SINCE, &date(T + 20))]);
        assert_eq!(evaluate(&c, Some("\"a\""), modified_later), Verdict::PreconditionFailed);
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        let unchanged = Some(at(T - 10));
        let c = cond(&[(IF_NONE_MATCH, "\"b\""), (IF_MODIFIED_SINCE, &date(T))]);
        assert_eq!(evaluate(&c, Some("\"a\""), unchanged), Verdict::Proceed);
        let c = cond(&[(IF_NONE_MATCH, "\"a\""), (IF_MODIFIED_SINCE, &date(T - 20))]);
        assert_eq!(evaluate(&c, Some("\"a\""), unchanged), Verdict::NotModified);
    }

    #[test]
    fn if_match_is_evaluated_before_if_none_match() {
        let c = cond(&[(IF_MATCH, "\"b\""), (IF_NONE_MATCH, "\"a\"")]);
        assert_eq!(evaluate(&c, Some("\"a\""), None), Verdict::PreconditionFailed);
        let c = cond(&[(IF_MATCH, "\"a\""), (IF_NONE_MATCH, "\"a\"")]);
        assert_eq!(evaluate(&c, Some("\"a\""), None), Verdict::NotModified);
    }

    #[test]
    fn if_unmodified_since_is_evaluated_before_if_modified_since() {
        let c = cond(&[(IF_UNMODIFIED_SINCE, &date(T)), (IF_MODIFIED_SINCE, &date(T + 5))]);
        assert_eq!(evaluate(&c, Some("\"a\""), Some(at(T + 1))), Verdict::PreconditionFailed);
        assert_eq!(evaluate(&c, Some("\"a\""), Some(at(T))), Verdict::NotModified);
    }

    /// (If-Range, representation etag, Last-Modified, whether Range is honoured).
    #[test]
    fn if_range_allows_the_range_only_on_a_strong_match() {
        let cases = [
            ("\"a\"".to_owned(), Some("\"a\""), Some(at(T)), true),
            ("\"a\"".to_owned(), Some("\"b\""), Some(at(T)), false),
            ("\"a\"".to_owned(), Some("W/\"a\""), Some(at(T)), false),
            ("W/\"a\"".to_owned(), Some("\"a\""), Some(at(T)), false),
            ("W/\"a\"".to_owned(), Some("W/\"a\""), Some(at(T)), false),
            ("\"a\"".to_owned(), None, Some(at(T)), false),
            ("\"a\", \"b\"".to_owned(), Some("\"a\""), Some(at(T)), false),
            ("\"a".to_owned(), Some("\"a\""), Some(at(T)), false),
            (date(T), Some("\"a\""), Some(at(T)), true),
            (date(T), Some("\"a\""), Some(at(T) + Duration::from_millis(500)), true),
            (date(T), Some("\"a\""), Some(at(T - 1)), false),
            (date(T), Some("\"a\""), Some(at(T + 1)), false),
            (date(T), Some("\"a\""), None, false),
            ("not a date".to_owned(), Some("\"a\""), Some(at(T)), false),
            ("not a date".to_owned(), None, None, false),
        ];
        for (header, etag, modified, expected) in cases {
            let c = cond(&[(IF_RANGE, &header)]);
            assert_eq!(if_range_allows(&c, etag, modified), expected, "If-Range: {header} vs {etag:?} {modified:?}");
        }
    }

    #[test]
    fn if_range_does_not_affect_evaluate() {
        let c = cond(&[(IF_RANGE, "\"b\"")]);
        assert_eq!(evaluate(&c, Some("\"a\""), Some(at(T))), Verdict::Proceed);
    }

    #[test]
    fn normalize_etag_keeps_valid_tags_and_quotes_bare_ones() {
        let cases = [
            ("\"abc\"", Some("\"abc\"")),
            ("W/\"abc\"", Some("W/\"abc\"")),
            (" \"abc\" ", Some("\"abc\"")),
            ("\"\"", Some("\"\"")),
            ("abc", Some("\"abc\"")),
            ("d41d8cd98f00b204e9800998ecf8427e-2", Some("\"d41d8cd98f00b204e9800998ecf8427e-2\"")),
            ("", None),
            ("a b", None),
            ("\"abc", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_etag(raw).as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn entity_tag_lists_are_scanned_by_quotes_not_split_on_commas() {
        let tags = parse_entity_tag_list(r#""a,b", W/"c" ,"""#).expect("valid list");
        let expected = [
            EntityTag { weak: false, opaque: "\"a,b\"" },
            EntityTag { weak: true, opaque: "\"c\"" },
            EntityTag { weak: false, opaque: "\"\"" },
        ];
        assert_eq!(tags, expected);
        for bad in ["", " , ", "\"a\"\"b\"", "W/ \"a\"", "\"a\" x", "W/a", "\"a\tb\""] {
            assert_eq!(parse_entity_tag_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn last_modified_is_truncated_toward_the_past() {
        let cases = [
            (at(T), at(T)),
            (at(T) + Duration::from_nanos(1), at(T)),
            (at(T) + Duration::from_millis(999), at(T)),
            (UNIX_EPOCH - Duration::from_millis(1), UNIX_EPOCH - Duration::from_secs(1)),
            (UNIX_EPOCH - Duration::from_secs(2), UNIX_EPOCH - Duration::from_secs(2)),
        ];
        for (time, expected) in cases {
            assert_eq!(truncate_to_seconds(time), expected, "{time:?}");
        }
    }
}
