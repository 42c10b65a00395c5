//! `Range` requests (RFC 9110 section 14): parsing the header and resolving a
//! range against an object's length. Pure functions, table-tested.

/// One `byte-range-spec` or `suffix-range-spec` of RFC 9110 section 14.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` (both inclusive, `a <= b`).
    FromTo(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No header, a unit other than `bytes`, or a header that does not parse:
    /// RFC 9110 section 14.2 lets a server ignore it and answer 200.
    Whole,
    /// Exactly one range.
    Single(RangeSpec),
    /// Several ranges (answered as 200 whole on pass-through for now).
    Multi(Vec<RangeSpec>),
}

/// An inclusive byte interval of an object, resolved against its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSpan {
    /// First byte, zero-based.
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteSpan {
    /// Number of bytes in the span (at least 1).
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a span holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The most ranges one `Range` header may ask for; a header with more is
/// ignored (answered as [`RangeRequest::Whole`]). RFC 9110 section 17.15
/// (<https://www.rfc-editor.org/rfc/rfc9110#section-17.15>) warns about
/// many small or overlapping ranges being used to amplify work; a browser
/// never sends more than a handful.
pub const MAX_RANGES: usize = 100;

/// Parses a `Range` header value (RFC 9110 section 14.2,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-14.2>).
///
/// The unit is matched case-insensitively; list elements may be surrounded by
/// optional whitespace and empty elements are skipped (section 5.6.1). Anything
/// invalid (another unit, a malformed or empty set, `a-b` with `b < a`, a
/// number that overflows `u64`, more than [`MAX_RANGES`] specs) gives
/// [`RangeRequest::Whole`], since a server MAY ignore such a header.
pub fn parse(header: Option<&str>) -> RangeRequest {
    let Some((unit, set)) = header.and_then(|h| h.trim().split_once('=')) else {
        return RangeRequest::Whole;
    };
    if !unit.eq_ignore_ascii_case("bytes") {
        return RangeRequest::Whole;
    }
    let mut specs = Vec::new();
    for element in set.split(',').map(|e| e.trim_matches([' ', '\t'])).filter(|e| !e.is_empty()) {
        let Some(spec) = parse_spec(element) else {
            return RangeRequest::Whole;
        };
        if specs.len() == MAX_RANGES {
            return RangeRequest::Whole;
        }
        specs.push(spec);
    }
    match specs.as_slice() {
        [] => RangeRequest::Whole,
        [one] => RangeRequest::Single(*one),
        _ => RangeRequest::Multi(specs),
    }
}

/// One `int-range` or `suffix-range` (no surrounding whitespace).
fn parse_spec(element: &str) -> Option<RangeSpec> {
    let (first, last) = element.split_once('-')?;
    match (first, last) {
        ("", n) => Some(RangeSpec::Suffix(parse_digits(n)?)),
        (a, "") => Some(RangeSpec::From(parse_digits(a)?)),
        (a, b) => {
            let (a, b) = (parse_digits(a)?, parse_digits(b)?);
            (a <= b).then_some(RangeSpec::FromTo(a, b))
        }
    }
}

/// `1*DIGIT` as a `u64`; `None` when empty, not all ASCII digits (so no sign)
/// or overflowing.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl RangeSpec {
    /// Resolves against an object of `len` bytes (RFC 9110 section 14.1.2,
    /// <https://www.rfc-editor.org/rfc/rfc9110#section-14.1.2>): `None` when
    /// unsatisfiable (start at or past the end, `-0`, or an empty object).
    /// A last position past the end is clamped to the last byte; a suffix
    /// longer than the object selects all of it.
    pub fn resolve(self, len: u64) -> Option<ByteSpan> {
        let last = len.checked_sub(1)?;
        match self {
            RangeSpec::FromTo(a, b) if a <= b && a < len => Some(ByteSpan { start: a, end: b.min(last) }),
            RangeSpec::From(a) if a < len => Some(ByteSpan { start: a, end: last }),
            RangeSpec::Suffix(n) if n > 0 => Some(ByteSpan { start: len.saturating_sub(n), end: last }),
            _ => None,
        }
    }

    /// The header value to send upstream for this spec, e.g. `bytes=0-99`.
    pub fn to_header(self) -> String {
        match self {
            RangeSpec::FromTo(a, b) => format!("bytes={a}-{b}"),
            RangeSpec::From(a) => format!("bytes={a}-"),
            RangeSpec::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// Every satisfiable spec resolved against `len`, in request order; the
/// unsatisfiable ones are dropped (RFC 9110 section 14.1.2). An empty result
/// means the whole set is unsatisfiable (416).
pub fn resolve_all(specs: &[RangeSpec], len: u64) -> Vec<ByteSpan> {
    specs.iter().filter_map(|spec| spec.resolve(len)).collect()
}

/// Parses a `Content-Range: bytes a-b/len` (or `bytes a-b/*`) response header
/// into the span and the complete length when known (RFC 9110 section 14.4,
/// <https://www.rfc-editor.org/rfc/rfc9110#section-14.4>). Rejects anything
/// malformed, `b < a`, and `b >= len`.
pub fn parse_content_range(value: &str) -> Option<(ByteSpan, Option<u64>)> {
    let (range, complete) = bytes_unit(value)?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let span = ByteSpan { start: parse_digits(first)?, end: parse_digits(last)? };
    if span.end < span.start {
        return None;
    }
    if complete == "*" {
        return Some((span, None));
    }
    let complete = parse_digits(complete)?;
    (span.end < complete).then_some((span, Some(complete)))
}

/// Parses `Content-Range: bytes */len` (the 416 form, RFC 9110 section 14.4)
/// into the length.
pub fn parse_unsatisfied_content_range(value: &str) -> Option<u64> {
    parse_digits(bytes_unit(value)?.strip_prefix("*/")?)
}

/// What follows `bytes SP` (unit case-insensitive) in a `Content-Range` value.
fn bytes_unit(value: &str) -> Option<&str> {
    let (unit, rest) = value.trim().split_once(' ')?;
    unit.eq_ignore_ascii_case("bytes").then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeSpec::{From, FromTo, Suffix};

    fn span(start: u64, end: u64) -> ByteSpan {
        ByteSpan { start, end }
    }

    fn check_parse(cases: &[(Option<&str>, RangeRequest)]) {
        for (header, expected) in cases {
            assert_eq!(parse(*header), *expected, "Range: {header:?}");
        }
    }

    #[test]
    fn the_three_forms_of_a_single_range_parse() {
        check_parse(&[
            (Some("bytes=0-99"), RangeRequest::Single(FromTo(0, 99))),
            (Some("bytes=0-0"), RangeRequest::Single(FromTo(0, 0))),
            (Some("bytes=100-"), RangeRequest::Single(From(100))),
            (Some("bytes=-500"), RangeRequest::Single(Suffix(500))),
            (Some("bytes=-0"), RangeRequest::Single(Suffix(0))),
            (Some("bytes=5-5"), RangeRequest::Single(FromTo(5, 5))),
            (Some("bytes=007-010"), RangeRequest::Single(FromTo(7, 10))),
            (Some("bytes=0-18446744073709551615"), RangeRequest::Single(FromTo(0, u64::MAX))),
        ]);
    }

    #[test]
    fn the_unit_name_is_case_insensitive() {
        check_parse(&[
            (Some("Bytes=0-1"), RangeRequest::Single(FromTo(0, 1))),
            (Some("BYTES=0-1"), RangeRequest::Single(FromTo(0, 1))),
        ]);
    }

    #[test]
    fn several_ranges_parse_in_order_with_optional_whitespace_and_empty_elements() {
        check_parse(&[
            (Some("bytes=0-1,5-"), RangeRequest::Multi(vec![FromTo(0, 1), From(5)])),
            (Some("bytes=0-1 , \t-3,4-4"), RangeRequest::Multi(vec![FromTo(0, 1), Suffix(3), FromTo(4, 4)])),
            (Some("bytes=9-9,0-0"), RangeRequest::Multi(vec![FromTo(9, 9), FromTo(0, 0)])),
            (Some("bytes=,0-1,,2-3,"), RangeRequest::Multi(vec![FromTo(0, 1), FromTo(2, 3)])),
            (Some("bytes= 0-1 "), RangeRequest::Single(FromTo(0, 1))),
            (Some("  bytes=0-1  "), RangeRequest::Single(FromTo(0, 1))),
        ]);
    }

    #[test]
    fn anything_invalid_is_ignored_as_a_request_for_the_whole() {
        check_parse(&[
            (None, RangeRequest::Whole),
            (Some(""), RangeRequest::Whole),
            (Some("garbage"), RangeRequest::Whole),
            (Some("bytes"), RangeRequest::Whole),
            (Some("bytes="), RangeRequest::Whole),
            (Some("bytes=,"), RangeRequest::Whole),
            (Some("bytes= , "), RangeRequest::Whole),
            (Some("bytes=-"), RangeRequest::Whole),
            (Some("bytes=5-4"), RangeRequest::Whole),
            (Some("bytes=a-b"), RangeRequest::Whole),
            (Some("bytes=0-1-2"), RangeRequest::Whole),
            (Some("bytes=+1-2"), RangeRequest::Whole),
            (Some("bytes=1-+2"), RangeRequest::Whole),
            (Some("bytes=--1"), RangeRequest::Whole),
            (Some("bytes=0 - 1"), RangeRequest::Whole),
            (Some("bytes =0-1"), RangeRequest::Whole),
            (Some("bytes=0x10-"), RangeRequest::Whole),
            (Some("bytes=0-1;2-3"), RangeRequest::Whole),
            (Some("items=0-1"), RangeRequest::Whole),
            (Some("bytes=0-1,garbage"), RangeRequest::Whole),
            (Some("bytes=0-1,5-4"), RangeRequest::Whole),
            (Some("bytes=１-２"), RangeRequest::Whole),
        ]);
    }

    #[test]
    fn numbers_that_overflow_make_the_header_ignored() {
        check_parse(&[
            (Some("bytes=99999999999999999999-"), RangeRequest::Whole),
            (Some("bytes=0-99999999999999999999"), RangeRequest::Whole),
            (Some("bytes=-99999999999999999999"), RangeRequest::Whole),
            (Some("bytes=18446744073709551616-"), RangeRequest::Whole),
        ]);
    }

    #[test]
    fn more_than_the_cap_of_ranges_makes_the_header_ignored() {
        let header = |n: usize| format!("bytes={}", vec!["0-0"; n].join(","));
        assert_eq!(parse(Some(&header(MAX_RANGES))), RangeRequest::Multi(vec![FromTo(0, 0); MAX_RANGES]));
        assert_eq!(parse(Some(&header(MAX_RANGES + 1))), RangeRequest::Whole);
    }

    #[test]
    fn specs_resolve_against_the_object_length() {
        let cases = [
            (FromTo(0, 99), 1000, Some(span(0, 99))),
            (FromTo(0, 0), 1000, Some(span(0, 0))),
            (FromTo(0, 0), 1, Some(span(0, 0))),
            (FromTo(10, 5000), 1000, Some(span(10, 999))),
            (FromTo(999, 999), 1000, Some(span(999, 999))),
            (FromTo(0, u64::MAX), 1000, Some(span(0, 999))),
            (From(0), 1000, Some(span(0, 999))),
            (From(999), 1000, Some(span(999, 999))),
            (Suffix(1), 1000, Some(span(999, 999))),
            (Suffix(100), 1000, Some(span(900, 999))),
            (Suffix(1000), 1000, Some(span(0, 999))),
            (Suffix(u64::MAX), 1000, Some(span(0, 999))),
            (From(0), u64::MAX, Some(span(0, u64::MAX - 1))),
        ];
        for (spec, len, expected) in cases {
            assert_eq!(spec.resolve(len), expected, "{spec:?} of {len}");
        }
    }

    #[test]
    fn a_suffix_longer_than_the_object_selects_all_of_it() {
        assert_eq!(Suffix(5000).resolve(10), Some(span(0, 9)));
    }

    #[test]
    fn a_range_ending_past_the_end_is_clamped_to_the_last_byte() {
        assert_eq!(FromTo(5, 50).resolve(10), Some(span(5, 9)));
    }

    #[test]
    fn unsatisfiable_specs_resolve_to_none() {
        let cases = [
            (FromTo(1000, 1000), 1000),
            (FromTo(2000, 3000), 1000),
            (From(1000), 1000),
            (From(u64::MAX), 1000),
            (Suffix(0), 1000),
            (FromTo(5, 4), 1000),
        ];
        for (spec, len) in cases {
            assert_eq!(spec.resolve(len), None, "{spec:?} of {len}");
        }
    }

    #[test]
    fn every_range_of_an_empty_object_is_unsatisfiable() {
        for spec in [FromTo(0, 0), FromTo(0, 10), From(0), Suffix(1), Suffix(0), Suffix(u64::MAX)] {
            assert_eq!(spec.resolve(0), None, "{spec:?}");
        }
    }

    #[test]
    fn resolve_all_keeps_the_satisfiable_spans_in_request_order() {
        let specs = [From(90), FromTo(200, 300), FromTo(0, 9), Suffix(0), Suffix(5)];
        assert_eq!(resolve_all(&specs, 100), vec![span(90, 99), span(0, 9), span(95, 99)]);
        assert_eq!(resolve_all(&specs, 0), vec![]);
        assert_eq!(resolve_all(&[], 100), vec![]);
    }

    #[test]
    fn a_spec_round_trips_through_its_header_value() {
        for spec in [FromTo(0, 99), From(7), Suffix(3), Suffix(0)] {
            assert_eq!(parse(Some(&spec.to_header())), RangeRequest::Single(spec));
        }
    }

    #[test]
    fn content_range_parses_with_known_or_unknown_length() {
        let cases = [
            ("bytes 0-9/100", Some((span(0, 9), Some(100)))),
            ("bytes 99-99/100", Some((span(99, 99), Some(100)))),
            ("bytes 0-0/1", Some((span(0, 0), Some(1)))),
            ("bytes 0-9/*", Some((span(0, 9), None))),
            ("Bytes 5-9/10", Some((span(5, 9), Some(10)))),
            (" bytes 0-9/100 ", Some((span(0, 9), Some(100)))),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_content_range(value), expected, "{value:?}");
        }
    }

    #[test]
    fn malformed_content_ranges_are_rejected() {
        for value in [
            "",
            "bytes",
            "bytes 0-9",
            "bytes 0-9/",
            "bytes 0-/100",
            "bytes -9/100",
            "bytes 9-0/100",
            "bytes 0-100/100",
            "bytes 0-9/9",
            "bytes 0-9/0",
            "bytes */100",
            "bytes 0-9/*/1",
            "bytes  0-9/100",
            "bytes 0 - 9/100",
            "bytes=0-9/100",
            "items 0-9/100",
            "bytes 0-9/abc",
            "bytes +0-9/100",
            "bytes 0-99999999999999999999/*",
        ] {
            assert_eq!(parse_content_range(value), None, "{value:?}");
        }
    }

    #[test]
    fn the_unsatisfied_content_range_form_gives_the_length() {
        let cases = [
            ("bytes */100", Some(100)),
            ("bytes */0", Some(0)),
            ("BYTES */7", Some(7)),
            ("bytes */", None),
            ("bytes */*", None),
            ("bytes 0-9/100", None),
            ("bytes * /100", None),
            ("items */100", None),
            ("bytes */-1", None),
            ("bytes */99999999999999999999", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_unsatisfied_content_range(value), expected, "{value:?}");
        }
    }
}
