//! The `multipart/byteranges` writer (src/http/multipart.rs, RFC 9110
//! section 14.6), on the path the proxy takes: specs resolved against the
//! object length, coalesced, laid out.
//!
//! - `coalesce` keeps the client's order when no two spans overlap or touch;
//!   otherwise it returns the union of the spans, sorted, with gaps between;
//!   either way the parts are inside the object and never overlap;
//! - `layout`'s `Content-Length` equals the bytes actually written (each head,
//!   each part's bytes of a synthetic object, the tail), and reading that body
//!   back as multipart gives each part in order, with its `Content-Type` and
//!   `Content-Range: bytes a-b/size`, its exact bytes, and nothing else;
//! - the boundary is the same for the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::http::multipart::{MAX_PARTS, coalesce, layout};
use mediagate::http::range::{self, ByteSpan, RangeRequest, resolve_all};

/// Bodies up to this size are written out and read back; larger ones only
/// have their length computed.
const WRITE_LIMIT: u64 = 1 << 16;

/// The object's byte at `offset`: a pattern that never spells the boundary.
fn byte_at(offset: u64) -> u8 {
    b'a' + (offset % 26) as u8
}

/// The union of `spans` as sorted, disjoint, non-touching intervals.
fn union(spans: &[ByteSpan]) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(u64, u64)> = spans.iter().map(|s| (s.start, s.end)).collect();
    sorted.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

// Input: lines `<object size>`, `<Range header>`, `<Content-Type>`,
// `<validator>`; the header goes through `range::parse` as in the proxy.
fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let size: u64 = lines.next().unwrap_or_default().trim().parse().unwrap_or(1000);
    let specs = match range::parse(lines.next()) {
        RangeRequest::Whole => return,
        RangeRequest::Single(spec) => vec![spec],
        RangeRequest::Multi(specs) => specs,
    };
    let (content_type, validator) = (lines.next().unwrap_or("video/mp4"), lines.next().unwrap_or("\"v1\""));
    let resolved = resolve_all(&specs, size);
    let spans = coalesce(resolved.clone());

    let touching = union(&resolved).len() < resolved.len();
    if touching {
        let got: Vec<(u64, u64)> = spans.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, union(&resolved), "coalesce of {resolved:?}");
    } else {
        assert_eq!(spans, resolved, "disjoint spans must keep the client's order");
    }
    for s in &spans {
        assert!(s.start <= s.end && s.end < size, "span {s:?} outside an object of {size}");
    }
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            assert!(a.end < b.start || b.end < a.start, "overlapping parts {a:?} {b:?}");
        }
    }
    if !(2..=MAX_PARTS).contains(&spans.len()) {
        return;
    }

    // Header values as the proxy passes them: visible ASCII and spaces.
    let content_type: String = content_type.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect();
    let data: u64 = spans.iter().map(|s| s.end - s.start + 1).sum();
    let Some(l) = layout(spans.clone(), size, &content_type, validator) else {
        // Only an answer longer than u64::MAX bytes has no layout.
        assert!(data > u64::MAX - 64 * 1024 - 100 * content_type.len() as u64, "no layout for {spans:?} of {size}");
        return;
    };
    assert_eq!(Some(&l), layout(spans.clone(), size, &content_type, validator).as_ref(), "layout is not deterministic");
    assert_eq!(l.spans, spans);
    assert_eq!(l.heads.len(), spans.len());
    assert!(http::HeaderValue::from_str(&l.content_type()).is_ok(), "{:?}", l.content_type());
    let framing: u64 = l.heads.iter().map(|h| h.len() as u64).sum::<u64>() + l.tail.len() as u64;
    assert_eq!(l.content_length, framing + data, "Content-Length does not count every byte");
    if l.content_length > WRITE_LIMIT {
        return;
    }

    let mut body = Vec::with_capacity(l.content_length as usize);
    for (head, s) in l.heads.iter().zip(&l.spans) {
        body.extend_from_slice(head);
        body.extend((s.start..=s.end).map(byte_at));
    }
    body.extend_from_slice(&l.tail);
    assert_eq!(body.len() as u64, l.content_length, "Content-Length differs from the bytes written");

    // Read it back (RFC 2046 section 5.1.1): parts between delimiter lines.
    let delimiter = format!("--{}", l.boundary);
    let text = String::from_utf8(body).expect("ASCII body");
    let close = format!("\r\n{delimiter}--\r\n");
    let inner = text.strip_suffix(&close).expect("the body ends with the close delimiter");
    let inner = inner.strip_prefix(&delimiter).expect("the body starts with the first delimiter");
    let parts: Vec<&str> = inner.split(&format!("\r\n{delimiter}")).collect();
    assert_eq!(parts.len(), spans.len(), "part count");
    for (part, s) in parts.iter().zip(&spans) {
        let part = part.strip_prefix("\r\n").expect("CRLF after the delimiter");
        let (head, data) = part.split_once("\r\n\r\n").expect("a blank line after the part headers");
        let want_head = format!("Content-Type: {content_type}\r\nContent-Range: bytes {}-{}/{size}", s.start, s.end);
        assert_eq!(head, want_head, "part headers");
        let want: String = (s.start..=s.end).map(|o| char::from(byte_at(o))).collect();
        assert_eq!(data, want, "part data of {s:?}");
    }
});
