//! The response body type of the media path and small constructors.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// Any boxed error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body mediagate sends: boxed so that a file, an upstream
/// stream and a small JSON document share one type.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}
