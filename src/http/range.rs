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
    Single(RangeSpec),
    /// Several ranges (answered as 200 whole on pass-through for now).
    Multi(Vec<RangeSpec>),
}

/// An inclusive byte interval of an object, resolved against its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSpan {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteSpan {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses a `Range` header value.
pub fn parse(header: Option<&str>) -> RangeRequest {
    let _ = header;
    todo!()
}

impl RangeSpec {
    /// Resolves against an object of `len` bytes (RFC 9110 section 14.1.2):
    /// `None` when unsatisfiable (start at or past the end, `-0`, or an empty object).
    pub fn resolve(self, len: u64) -> Option<ByteSpan> {
        let _ = len;
        todo!()
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

/// Parses a `Content-Range: bytes a-b/len` (or `bytes a-b/*`) response header
/// into the span and the complete length when known.
pub fn parse_content_range(value: &str) -> Option<(ByteSpan, Option<u64>)> {
    let _ = value;
    todo!()
}

/// Parses `Content-Range: bytes */len` (the 416 form) into the length.
pub fn parse_unsatisfied_content_range(value: &str) -> Option<u64> {
    let _ = value;
    todo!()
}
