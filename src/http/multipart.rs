//! `multipart/byteranges` answers to requests for several ranges
//! (RFC 9110 section 14.6): which parts to send, and the exact bytes around
//! them, computed ahead so the response has a `Content-Length`.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;

use crate::http::range::ByteSpan;

/// At most this many parts, after coalescing, are sent as multipart; more
/// get the whole object (200), as RFC 9110 section 14.2 allows. Each part
/// costs one storage request on a miss.
pub const MAX_PARTS: usize = 16;

/// The framing of a multipart answer: the parts in order, the part headers
/// that precede each, the closing delimiter, and the total length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub boundary: String,
    pub spans: Vec<ByteSpan>,
    /// `heads[i]` goes before the data of `spans[i]`.
    pub heads: Vec<Bytes>,
    pub tail: Bytes,
    pub content_length: u64,
}

impl Layout {
    /// The response's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }
}

/// Merges overlapping or touching spans (sorted) when any two do; otherwise
/// keeps the client's order. Overlapping ranges are the abuse RFC 9110
/// section 17.15 warns of; coalescing them bounds the answer to the object.
pub fn coalesce(mut spans: Vec<ByteSpan>) -> Vec<ByteSpan> {
    let mut sorted = spans.clone();
    sorted.sort_by_key(|s| s.start);
    let touching = sorted.windows(2).any(|w| w[1].start <= w[0].end.saturating_add(1));
    if !touching {
        return spans;
    }
    spans.clear();
    for span in sorted {
        match spans.last_mut() {
            Some(last) if span.start <= last.end.saturating_add(1) => last.end = last.end.max(span.end),
            _ => spans.push(span),
        }
    }
    spans
}

/// Lays out the parts. The boundary is derived from the validator and the
/// spans, so a `HEAD` and a `GET` of the same request agree on every header.
/// `None` when the answer would be longer than `u64::MAX` bytes (parts of an
/// object of nearly 16 EiB), which no `Content-Length` can state: the caller
/// then serves the whole object, as RFC 9110 section 14.2 allows.
pub fn layout(spans: Vec<ByteSpan>, size: u64, content_type: &str, validator: &str) -> Option<Layout> {
    let boundary = boundary(validator, &spans);
    let heads: Vec<Bytes> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let lead = if i == 0 { "" } else { "\r\n" };
            Bytes::from(format!(
                "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                s.start, s.end
            ))
        })
        .collect();
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let framing = heads.iter().map(|h| h.len() as u64).chain([tail.len() as u64]);
    let content_length = framing.chain(spans.iter().map(ByteSpan::len)).try_fold(0u64, u64::checked_add)?;
    Some(Layout { boundary, spans, heads, tail, content_length })
}

fn boundary(validator: &str, spans: &[ByteSpan]) -> String {
    let mut h = DefaultHasher::new();
    validator.hash(&mut h);
    for s in spans {
        (s.start, s.end).hash(&mut h);
    }
    format!("mediagate-{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64) -> ByteSpan {
        ByteSpan { start, end }
    }

    #[test]
    fn disjoint_ranges_keep_the_order_the_client_asked() {
        let spans = vec![span(500, 519), span(0, 9), span(995, 999)];
        assert_eq!(coalesce(spans.clone()), spans);
    }

    #[test]
    fn overlapping_or_touching_ranges_are_merged_and_sorted() {
        let table = [
            (vec![span(0, 9), span(5, 20)], vec![span(0, 20)]),
            (vec![span(10, 19), span(0, 9)], vec![span(0, 19)]),
            (vec![span(50, 60), span(0, 100), span(200, 300)], vec![span(0, 100), span(200, 300)]),
            (vec![span(0, 0), span(0, 0), span(0, 0)], vec![span(0, 0)]),
        ];
        for (input, want) in table {
            assert_eq!(coalesce(input.clone()), want, "{input:?}");
        }
    }

    #[test]
    fn the_content_length_counts_every_byte_of_the_framing() {
        let l = layout(vec![span(0, 9), span(20, 29)], 100, "video/mp4", "\"etag\"").unwrap();
        let mut body = Vec::new();
        for (head, s) in l.heads.iter().zip(&l.spans) {
            body.extend_from_slice(head);
            body.extend(std::iter::repeat_n(b'x', s.len() as usize));
        }
        body.extend_from_slice(&l.tail);
        assert_eq!(body.len() as u64, l.content_length);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!(
            "--{}\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-9/100\r\n\r\n",
            l.boundary
        )));
        assert!(text.ends_with(&format!("\r\n--{}--\r\n", l.boundary)));
    }

    #[test]
    fn the_boundary_is_the_same_for_the_same_request_and_differs_for_another() {
        let a = layout(vec![span(0, 9), span(20, 29)], 100, "t", "\"v1\"").unwrap();
        let b = layout(vec![span(0, 9), span(20, 29)], 100, "t", "\"v1\"").unwrap();
        let c = layout(vec![span(0, 9), span(20, 29)], 100, "t", "\"v2\"").unwrap();
        assert_eq!(a.boundary, b.boundary);
        assert_ne!(a.boundary, c.boundary);
    }

    #[test]
    fn an_answer_longer_than_u64_max_bytes_has_no_layout() {
        // Found by the multipart fuzz target: the Content-Length sum overflowed
        // (a panic in debug builds, a wrapped length in release builds).
        let size = u64::MAX;
        let spans = vec![span(0, 0), span(10, 10), span(30, size - 1)];
        assert_eq!(layout(spans, size, "video/mp4", "\"e\""), None);
        let spans = vec![span(0, 0), span(30, size - 1024)];
        let l = layout(spans, size, "video/mp4", "\"e\"").unwrap();
        let framing = l.heads.iter().map(|h| h.len() as u64).sum::<u64>() + l.tail.len() as u64;
        assert_eq!(l.content_length, (size - 1052) + framing);
    }
}
