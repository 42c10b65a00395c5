//! Streaming a span of an object to a client, slice by slice, from the
//! cache, a fill, or straight from the storage.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::fill::Fill;
use super::target::Held;
use super::{RUN_MAX_BYTES, Target, Value, add, validator};
use crate::error::{Error, Kind, Result};
use crate::http::body::{Body, BoxError};

/// Where a reader gets the bytes of the slice it is in.
pub(super) enum Source {
    /// A fill, with the reader's place in its chunks (of layout `layout`).
    Fill { fill: Arc<Fill>, cursor: Cursor, layout: u32 },
    /// A cached slice.
    Cached { pieces: Arc<[Bytes]>, cursor: Cursor },
    /// A storage read outside the cache (no fill slot or budget was free).
    Direct(Body),
}

/// Streams a span of an object, slice by slice (step 3 of the module doc).
pub(super) struct SliceReader {
    pub(super) t: Target,
    pub(super) validator: Arc<str>,
    pub(super) size: u64,
    /// The next byte to send, and the last (inclusive).
    pub(super) pos: u64,
    pub(super) end: u64,
    pub(super) current: Option<(Source, u64)>,
    /// A fill already started for this slice index while learning the metadata.
    pub(super) first: Option<(u64, Arc<Fill>)>,
    /// The slice looked up already (by [`Target::cached_slices`]).
    pub(super) held: Option<Held>,
    /// Runs this reader started: each is twice as long as the one before
    /// (up to [`RUN_MAX_BYTES`]), so a seek reads little and a stream soon
    /// reads in long requests.
    pub(super) runs: u32,
    /// The slice whose next run is to be started once its first bytes are
    /// out: reading ahead before that would slow the first byte.
    pub(super) ahead: Option<u64>,
}

impl SliceReader {
    /// The unit this object is kept in ([`super::granule`]).
    fn granule(&self) -> u64 {
        self.t.granule(self.size)
    }

    /// The length in entries (of [`Self::granule`]) of the next run this
    /// reader starts: a slice, doubled for each run before.
    fn run_len(&self) -> u64 {
        let g = self.granule();
        let cap = (RUN_MAX_BYTES / g).max(1);
        (self.t.slice_bytes().div_ceil(g).max(1) << self.runs.min(20)).min(cap)
    }

    pub(super) async fn next(&mut self) -> Option<Result<Bytes, BoxError>> {
        let item = self.next_bytes().await;
        if let (Some(index), Some(Ok(_))) = (self.ahead, &item) {
            self.ahead = None;
            let g = self.granule();
            let last = (self.end / g).min(index + self.run_len());
            self.runs += u32::from(self.t.read_ahead(&self.validator, index, last, g));
        }
        item
    }

    async fn next_bytes(&mut self) -> Option<Result<Bytes, BoxError>> {
        loop {
            if self.pos > self.end {
                return None;
            }
            if let Some((source, slice_end)) = &mut self.current {
                let limit = (*slice_end).min(self.end);
                let cached = matches!(source, Source::Cached { .. });
                match read_source(source, self.pos, limit).await {
                    Some(Ok(bytes)) => {
                        if cached {
                            add(&self.t.inner.stats.bytes_from_cache, bytes.len() as u64);
                        }
                        self.pos += bytes.len() as u64;
                        return Some(Ok(bytes));
                    }
                    Some(Err(e)) => {
                        self.pos = self.end + 1;
                        return Some(Err(e));
                    }
                    None if self.pos <= limit => {
                        self.pos = self.end + 1;
                        return Some(Err(format!("the storage's answer for {} ended early", self.t.loc).into()));
                    }
                    None => self.current = None,
                }
                continue;
            }
            match self.open_slice().await {
                Ok(Some(bytes)) => return Some(Ok(bytes)),
                Ok(None) => {}
                Err(e) => {
                    self.pos = self.end + 1;
                    return Some(Err(Box::new(e)));
                }
            }
        }
    }

    /// Moves to the slice holding `pos`: sends it from memory when cached
    /// (`Some`), else sets up the fill or direct read to take it from.
    async fn open_slice(&mut self) -> Result<Option<Bytes>> {
        let g = self.granule();
        let index = self.pos / g;
        let slice_start = index * g;
        let slice_end = (slice_start + g).min(self.size) - 1;
        let last_slice = self.end / g;
        self.ahead = Some(index);
        let cached = match self.held.take() {
            Some((i, found)) if i == index => found,
            _ => match self.t.inner.store.get(&self.t.slice_key(&self.validator, index)).await {
                Some(Value::Slice(pieces)) => Some(pieces),
                _ => None,
            },
        };
        if let Some(pieces) = cached {
            let mut source = Source::Cached { pieces, cursor: Cursor::at(slice_start) };
            let out = match &mut source {
                Source::Cached { pieces, cursor } => next_piece(pieces, cursor, self.pos, slice_end.min(self.end)),
                _ => None,
            };
            self.current = Some((source, slice_end));
            if let Some(out) = &out {
                add(&self.t.inner.stats.bytes_from_cache, out.len() as u64);
                self.pos += out.len() as u64;
            }
            return Ok(out);
        }
        let joined = match self.first.take() {
            Some((i, fill)) if i == index => Some(fill),
            _ => {
                let last = last_slice.min(index + self.run_len() - 1);
                let run = self.t.start_run(index, last, Some(self.validator.clone()), g);
                self.runs += u32::from(run.as_ref().is_some_and(|(_, joined)| !joined));
                run.map(|(f, _)| f)
            }
        };
        let source = match joined {
            Some(fill) => {
                let meta = fill.wait_meta().await?;
                if validator(&meta) != self.validator {
                    return Err(Error::new(
                        Kind::UpstreamError,
                        format!("{} changed while it was being read", self.t.loc),
                    ));
                }
                Source::Fill { fill, cursor: Cursor::at(slice_start), layout: 0 }
            }
            None => direct(&self.t, &self.validator, self.pos, slice_end.min(self.end)).await?,
        };
        self.current = Some((source, slice_end));
        Ok(None)
    }
}

/// Reads `start..=end` straight from the storage, pinned to the ETag.
async fn direct(t: &Target, expected: &Arc<str>, start: u64, end: u64) -> Result<Source> {
    let resp = t.read_range(start, end, Some(expected)).await?;
    if validator(&resp.meta) != *expected {
        return Err(Error::new(Kind::UpstreamError, format!("{} changed while it was being read", t.loc)));
    }
    let stats = t.inner.stats.clone();
    let body = resp.body.map_frame(move |f| {
        if let Some(d) = f.data_ref() {
            add(&stats.bytes_from_upstream, d.len() as u64);
        }
        f
    });
    Ok(Source::Direct(body.boxed_unsync()))
}

/// The next bytes at `pos` (up to `limit`) from a source; `None` when it has
/// no more.
async fn read_source(source: &mut Source, pos: u64, limit: u64) -> Option<Result<Bytes, BoxError>> {
    match source {
        Source::Cached { pieces, cursor } => next_piece(pieces, cursor, pos, limit).map(Ok),
        Source::Direct(body) => loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        },
        Source::Fill { fill, cursor, layout } => fill.next(cursor, layout, pos, limit).await,
    }
}

/// A reader's place in the pieces of a slice: the next piece to look at and
/// that piece's first byte (in the object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    chunk: usize,
    offset: u64,
    /// The slice's first byte, to start again from.
    pub(super) start: u64,
}

impl Cursor {
    /// The start of a slice whose first byte is `start`.
    pub(super) fn at(start: u64) -> Cursor {
        Cursor { chunk: 0, offset: start, start }
    }
}

/// The bytes from `pos` to at most `limit` in the first piece that holds
/// `pos`; the cursor advances past the pieces left behind. `None` when the
/// pieces end before `pos`.
pub(super) fn next_piece(pieces: &[Bytes], cursor: &mut Cursor, pos: u64, limit: u64) -> Option<Bytes> {
    while let Some(c) = pieces.get(cursor.chunk) {
        let c_end = cursor.offset + c.len() as u64;
        if pos >= c_end {
            cursor.chunk += 1;
            cursor.offset = c_end;
            continue;
        }
        if pos > limit {
            return None;
        }
        let from = (pos - cursor.offset) as usize;
        let to = (limit.min(c_end - 1) - cursor.offset) as usize;
        return Some(c.slice(from..=to));
    }
    None
}
