//! `Range` and `Content-Range` parsing (src/http/range.rs, RFC 9110 section 14).
//!
//! For any header text: the parse is `Whole`, one spec or 2 to `MAX_RANGES`
//! specs, each `a-b` with `a <= b`, and printing the specs back
//! (`bytes=<spec>,<spec>`) parses to the same request; resolving against any
//! length gives spans inside the object, in request order, one per
//! satisfiable spec. `Content-Range` values that parse print back to
//! themselves (up to case, whitespace and leading zeros) and lie inside the
//! complete length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::http::range::{
    self, MAX_RANGES, RangeRequest, RangeSpec, parse_content_range, parse_unsatisfied_content_range, resolve_all,
};

fn spec_text(spec: &RangeSpec) -> String {
    spec.to_header().trim_start_matches("bytes=").to_owned()
}

// Input: `<object length>\n<Range or Content-Range value>`; without a
// newline the whole text is the value and the length is 1000.
fuzz_target!(|input: &str| {
    let (len, header) = match input.split_once('\n') {
        Some((len, header)) => (len.trim().parse().unwrap_or(u64::MAX), header),
        None => (1000, input),
    };
    let request = range::parse(Some(header));
    let specs: Vec<RangeSpec> = match &request {
        RangeRequest::Whole => Vec::new(),
        RangeRequest::Single(spec) => vec![*spec],
        RangeRequest::Multi(specs) => {
            assert!((2..=MAX_RANGES).contains(&specs.len()), "{header:?} gave {} specs", specs.len());
            specs.clone()
        }
    };
    if !specs.is_empty() {
        let unit = header.trim_start().get(..6).unwrap_or_default();
        assert!(unit.eq_ignore_ascii_case("bytes="), "{header:?} parsed as {request:?} without the bytes unit");
        let printed = format!("bytes={}", specs.iter().map(spec_text).collect::<Vec<_>>().join(","));
        assert_eq!(range::parse(Some(&printed)), request, "{header:?} printed as {printed:?}");
    }
    for spec in &specs {
        if let RangeSpec::FromTo(a, b) = spec {
            assert!(a <= b, "{header:?} gave {spec:?}");
        }
        if let RangeRequest::Single(_) = request {
            assert_eq!(range::parse(Some(&spec.to_header())), request, "{header:?}");
        }
    }

    let spans = resolve_all(&specs, len);
    let satisfiable: Vec<&RangeSpec> = specs.iter().filter(|s| s.resolve(len).is_some()).collect();
    assert_eq!(spans.len(), satisfiable.len(), "{header:?} against {len}");
    for (span, spec) in spans.iter().zip(satisfiable) {
        assert!(span.start <= span.end && span.end < len, "{spec:?} of {len} resolved to {span:?}");
        assert!((1..=len).contains(&span.len()), "{spec:?} of {len}: {span:?}");
        match *spec {
            RangeSpec::FromTo(a, b) => assert!(span.start == a && span.end == b.min(len - 1), "{spec:?} {span:?}"),
            RangeSpec::From(a) => assert!(span.start == a && span.end == len - 1, "{spec:?} {span:?}"),
            RangeSpec::Suffix(n) => assert!(span.len() == n.min(len) && span.end == len - 1, "{spec:?} {span:?}"),
        }
    }
    for spec in &specs {
        let unsatisfiable = match *spec {
            RangeSpec::FromTo(a, _) | RangeSpec::From(a) => a >= len,
            RangeSpec::Suffix(n) => n == 0 || len == 0,
        };
        assert_eq!(spec.resolve(len).is_none(), unsatisfiable, "{spec:?} of {len}");
    }

    if let Some((span, complete)) = parse_content_range(header) {
        assert!(span.start <= span.end, "{header:?}");
        if let Some(complete) = complete {
            assert!(span.end < complete, "Content-Range {header:?} ends past its length");
        }
        let total = complete.map_or("*".to_owned(), |c| c.to_string());
        let printed = format!("bytes {}-{}/{total}", span.start, span.end);
        assert_eq!(parse_content_range(&printed), Some((span, complete)), "{header:?} printed as {printed:?}");
        assert_eq!(parse_unsatisfied_content_range(header), None, "{header:?} parsed in both forms");
    }
    if let Some(complete) = parse_unsatisfied_content_range(header) {
        assert_eq!(parse_unsatisfied_content_range(&format!("bytes */{complete}")), Some(complete), "{header:?}");
    }
});
