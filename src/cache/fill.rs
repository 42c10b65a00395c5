//! Fills: storage reads that put slices into the cache, and the memory
//! budget every slice is counted against.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::reader::{Cursor, next_piece};
use super::{Key, Target, Value, add, lock, slice_len, validator};
use crate::error::{Error, Kind, Result};
use crate::http::body::BoxError;
use crate::http::conditional::Conditions;
use crate::http::range::{ByteSpan, RangeSpec};
use crate::integration::{ObjectMeta, ObjectRequest, ObjectResponse, Part};

/// The memory budget of slice bytes: the cache's `max_bytes`, shared by
/// the cached slices (at most `max_bytes` less [`super::fill_reserve`]),
/// the fills in flight and the slices that clients still read after the
/// cache evicted them (README, "Memory").
///
/// Every slice holds permits of it, one a byte, from the moment its fill is
/// started until the last piece of the slice is dropped (by the cache, a
/// reader or hyper's write queue). A fill that cannot get them does not
/// start: the read streams straight from the storage instead, so a client
/// that reads slowly can never make another wait.
pub(super) struct Budget {
    bytes: Arc<Semaphore>,
}

impl Budget {
    pub(super) fn new(total: u64) -> Budget {
        let total = usize::try_from(total).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        Budget { bytes: Arc::new(Semaphore::new(total)) }
    }

    /// Bytes not held by any slice now.
    pub(super) fn available(&self) -> u64 {
        self.bytes.available_permits() as u64
    }

    /// Takes `each` bytes for as many of `slices` slices as it can (at least
    /// one), and says for how many.
    fn take(&self, slices: usize, each: u64) -> Option<(OwnedSemaphorePermit, usize)> {
        let fits = (self.available() / each.max(1)).min(slices as u64).min(u64::from(u32::MAX) / each.max(1));
        (1..=fits).rev().find_map(|k| {
            let permit = self.bytes.clone().try_acquire_many_owned(u32::try_from(k * each).ok()?).ok()?;
            Some((permit, k as usize))
        })
    }
}

/// The largest piece a cached slice is kept in: a hit sends a slice as few
/// large pieces (one `writev` vector or HTTP/2 DATA frame each), whatever
/// sizes the storage's chunks came in (s3s-fs sends 8 KiB ones: a 16 KiB hit
/// went out as two pieces, a 64 MiB one as 8,192; docs/BENCHMARKS.md).
const PIECE_MAX: usize = 64 << 10;

/// A piece of a slice: keeps the slice's share of the [`Budget`] for as
/// long as any piece of the slice lives.
struct Counted<T> {
    bytes: T,
    _budget: Arc<OwnedSemaphorePermit>,
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Counted<T> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}

/// Bytes that hold `budget` (if any) while they live.
fn counted<T>(bytes: T, budget: &Option<Arc<OwnedSemaphorePermit>>) -> Bytes
where
    T: AsRef<[u8]> + Send + 'static,
    Bytes: From<T>,
{
    match budget {
        Some(budget) => Bytes::from_owner(Counted { bytes, _budget: budget.clone() }),
        None => Bytes::from(bytes),
    }
}

/// A completed slice's chunks copied into pieces of [`PIECE_MAX`] bytes
/// (the last one shorter): the one copy a cached byte costs.
fn coalesce(chunks: &[Bytes], budget: &Option<Arc<OwnedSemaphorePermit>>) -> Vec<Bytes> {
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut pieces = Vec::with_capacity(total.div_ceil(PIECE_MAX));
    let mut piece = Vec::new();
    for chunk in chunks {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if piece.capacity() == 0 {
                piece.reserve_exact((total - pieces.len() * PIECE_MAX).min(PIECE_MAX));
            }
            let n = rest.len().min(piece.capacity() - piece.len());
            piece.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if piece.len() == piece.capacity() {
                pieces.push(counted(std::mem::take(&mut piece), budget));
            }
        }
    }
    pieces
}

impl Target {
    /// The fill of entry `first` (in units of `g` bytes): the running one
    /// (joined: `true`), or a new run, one storage read covering entries
    /// `first..=last` that stops before the first entry already cached or
    /// filling, and at the entries the memory budget has room for. `None`
    /// when `max_fills` runs are going already or the budget has no room for
    /// one entry: the caller then reads straight from the storage.
    ///
    /// A blind run (`expected` is `None`: the size is not known yet) gets all
    /// its entries or does not start, so a read from 0 can hold an object
    /// kept whole.
    pub(super) fn start_run(
        &self,
        first: u64,
        last: u64,
        expected: Option<Arc<str>>,
        g: u64,
    ) -> Option<(Arc<Fill>, bool)> {
        let mut fills = lock(&self.inner.fills);
        if let Some(fill) = fills.get(&(self.obj.clone(), first)) {
            add(&self.inner.stats.coalesced_waits, 1);
            return Some((fill.clone(), true));
        }
        let Ok(permit) = self.inner.fill_slots.clone().try_acquire_owned() else {
            add(&self.inner.stats.bypassed_fills, 1);
            return None;
        };
        let mut indices = vec![first];
        for index in first + 1..=last {
            let taken = fills.contains_key(&(self.obj.clone(), index))
                || expected.as_ref().is_some_and(|v| self.inner.store.contains_key(&self.slice_key(v, index)));
            if taken {
                break;
            }
            indices.push(index);
        }
        let wanted = (last - first + 1) as usize;
        let taken = self.inner.budget.take(indices.len(), g);
        let Some((held, n)) = taken.filter(|(_, n)| expected.is_some() || *n == wanted) else {
            add(&self.inner.stats.bypassed_fills, 1);
            return None;
        };
        // One slice's share for each fill; the last takes what is left.
        let mut held = Some(held);
        let run: Vec<_> = indices[..n]
            .iter()
            .enumerate()
            .map(|(i, &index)| {
                let share = if i + 1 == n { held.take() } else { held.as_mut().and_then(|h| h.split(g as usize)) };
                (index, Arc::new(Fill::new(share)))
            })
            .collect();
        for (index, fill) in &run {
            fills.insert((self.obj.clone(), *index), fill.clone());
        }
        drop(fills);
        add(&self.inner.stats.fills, run.len() as u64);
        let fill = run[0].1.clone();
        let generation = self.inner.generation.load(Ordering::SeqCst);
        tokio::spawn(self.clone().run(run, expected, permit, generation, g));
        Some((fill, false))
    }

    /// Reads a run of slices from the storage into their fills, storing each
    /// slice as it completes; on failure, the unfinished fills fail and
    /// nothing of theirs is stored.
    async fn run(
        self,
        run: Vec<(u64, Arc<Fill>)>,
        expected: Option<Arc<str>>,
        _permit: OwnedSemaphorePermit,
        generation: u64,
        g: u64,
    ) {
        if let Err(e) = self.read_run(&run, expected.as_ref(), generation, g).await {
            add(&self.inner.stats.failed_fills, 1);
            tracing::debug!(locator = %self.loc, first = run[0].0, error = %e.detail(), "cache fill failed");
            for (_, fill) in &run {
                fill.finish(Err(e.share()));
            }
        }
        let mut fills = lock(&self.inner.fills);
        for (index, fill) in &run {
            let key = (self.obj.clone(), *index);
            if fills.get(&key).is_some_and(|f| Arc::ptr_eq(f, fill)) {
                fills.remove(&key);
            }
        }
    }

    async fn read_run(
        &self,
        run: &[(u64, Arc<Fill>)],
        expected: Option<&Arc<str>>,
        generation: u64,
        g: u64,
    ) -> Result<()> {
        let (first, last) = (run[0].0, run[run.len() - 1].0);
        let (start, end) = (first * g, last * g + g - 1);
        let resp = self.read_range(start, end, expected).await?;
        let size = resp.meta.size;
        let answered = match resp.part {
            Part::Range(span) if span.start == start => span.end,
            Part::Whole if start == 0 && size <= end + 1 => size.saturating_sub(1),
            _ => {
                return Err(Error::new(
                    Kind::UpstreamError,
                    format!("the storage did not answer the range {start}-{end} of {}", self.loc),
                ));
            }
        };
        if let Some(expected) = expected
            && validator(&resp.meta) != *expected
        {
            self.drop_version(expected);
            self.inner.store.invalidate(&Key::Meta(self.obj.clone())).await;
            return Err(Error::new(
                Kind::UpstreamError,
                format!("{} changed while it was being read; retry", self.loc),
            ));
        }
        // A blind run from 0 that found an object to keep whole: its first
        // fill takes every byte (and the others' budget); the others end empty.
        let (run, g) = if self.granule(size) != g {
            if first != 0 || answered.saturating_add(1) < size {
                return Err(Error::new(
                    Kind::UpstreamError,
                    format!("the storage's answer for {} cannot be kept whole", self.loc),
                ));
            }
            for (_, fill) in &run[1..] {
                run[0].1.absorb(fill);
                fill.finish(Err(Error::new(Kind::UpstreamError, format!("{} is kept whole; retry", self.loc))));
            }
            (&run[..1], self.granule(size))
        } else {
            (run, g)
        };
        // Entries past the end of the object (a run asked blind) get nothing.
        let run: Vec<_> = run.iter().filter(|(i, _)| i * g < size.max(1)).collect();
        for (index, fill) in &run {
            let span = ByteSpan { start: index * g, end: (index * g + g - 1).min(answered) };
            fill.set_head(ObjectMeta::clone(&resp.meta), span);
        }
        let validator = validator(&resp.meta);
        let mut body = resp.body;
        let mut slices = run.iter().peekable();
        let mut left = slice_len(size, g, run[0].0);
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| Error::new(Kind::UpstreamError, format!("reading {} broke off: {e}", self.loc)))?;
            let Ok(mut data) = frame.into_data() else { continue };
            add(&self.inner.stats.bytes_from_upstream, data.len() as u64);
            while !data.is_empty() {
                let Some((index, fill)) = slices.peek() else {
                    return Err(Error::new(Kind::UpstreamError, format!("the storage sent too much of {}", self.loc)));
                };
                let piece = data.split_to((left as usize).min(data.len()));
                left -= piece.len() as u64;
                fill.push(piece);
                if left == 0 {
                    self.complete(fill, &validator, *index, generation).await;
                    slices.next();
                    left = slices.peek().map_or(0, |(i, _)| slice_len(size, g, *i));
                }
            }
        }
        if let Some((index, fill)) = slices.peek()
            && size == 0
        {
            self.complete(fill, &validator, *index, generation).await;
            slices.next();
        }
        match slices.peek() {
            None => Ok(()),
            Some((index, _)) => Err(Error::new(
                Kind::UpstreamError,
                format!("the storage's answer for {} ended before slice {index}", self.loc),
            )),
        }
    }

    /// Reads `start..=end` from the storage, with `If-Match` on `expected`
    /// when it is an entity-tag (a size-and-date validator cannot be sent).
    pub(super) async fn read_range(&self, start: u64, end: u64, expected: Option<&Arc<str>>) -> Result<ObjectResponse> {
        let if_match = expected.filter(|v| v.starts_with('"') || v.starts_with("W/")).map(|v| v.to_string());
        let pin = Conditions { if_match, ..Conditions::default() };
        let req = ObjectRequest {
            head: false,
            bucket: &self.loc.bucket,
            key: &self.loc.key,
            range: Some(RangeSpec::FromTo(start, end)),
            conditions: &pin,
        };
        self.integration.fetch(&req).await
    }

    /// Stores a completed slice (unless a purge came since the run began)
    /// and tells its readers it is whole.
    async fn complete(&self, fill: &Fill, validator: &Arc<str>, index: u64, generation: u64) {
        if self.inner.generation.load(Ordering::SeqCst) == generation {
            self.inner.store.insert(self.slice_key(validator, index), Value::Slice(fill.settle())).await;
            // Evict now rather than in moka's next batch: a fast stream
            // would otherwise run past the budget by several slices.
            self.inner.store.run_pending_tasks().await;
        }
        fill.finish(Ok(()));
    }

    /// Starts the run after `index` (up to `last`, in units of `g`) if entry
    /// `index + 1` is neither cached nor filling and a fill slot is free.
    /// Returns whether it started one.
    pub(super) fn read_ahead(&self, validator: &Arc<str>, index: u64, last: u64, g: u64) -> bool {
        let next = index + 1;
        if next > last
            || self.inner.store.contains_key(&self.slice_key(validator, next))
            || lock(&self.inner.fills).contains_key(&(self.obj.clone(), next))
            || self.inner.fill_slots.available_permits() == 0
            || self.inner.budget.available() < g
        {
            return false;
        }
        self.start_run(next, last, Some(validator.clone()), g).is_some_and(|(_, joined)| !joined)
    }
}

/// One storage read of one slice, shared by every reader of that slice.
pub(super) struct Fill {
    pub(super) state: Mutex<FillState>,
    changed: watch::Sender<()>,
}

#[derive(Default)]
pub(super) struct FillState {
    /// The object's metadata and the span answered, once the head arrived.
    head: Option<(ObjectMeta, ByteSpan)>,
    /// The bytes so far: the storage's chunks as they came (no copy), then,
    /// once the slice is complete, the pieces it is cached in ([`Fill::settle`]).
    chunks: Vec<Bytes>,
    /// Bumped when `chunks` is replaced by the cached pieces: a reader's
    /// position in the old chunks is then found again from its offset.
    layout: u32,
    /// `Some` once the fill ended; an error is shared with every reader.
    pub(super) done: Option<Result<(), (Kind, String)>>,
    /// The slice's share of the memory budget: reserved when the run
    /// starts, cut to the slice's length at the head, then shared by every
    /// piece (`counted`), which return it when the last of them is dropped.
    reserved: Option<OwnedSemaphorePermit>,
    counted: Option<Arc<OwnedSemaphorePermit>>,
}

impl Fill {
    /// A fill holding `reserved` bytes of the budget.
    pub(super) fn new(reserved: Option<OwnedSemaphorePermit>) -> Fill {
        let state = FillState { reserved, ..FillState::default() };
        Fill { state: Mutex::new(state), changed: watch::Sender::new(()) }
    }

    /// Takes over the budget `other` reserved (a blind run's fills merged
    /// into one whole object).
    fn absorb(&self, other: &Fill) {
        let taken = lock(&other.state).reserved.take();
        if let Some(taken) = taken {
            self.update(|s| match &mut s.reserved {
                Some(mine) => mine.merge(taken),
                None => s.reserved = Some(taken),
            });
        }
    }

    fn update(&self, f: impl FnOnce(&mut FillState)) {
        f(&mut lock(&self.state));
        self.changed.send_replace(());
    }

    fn set_head(&self, meta: ObjectMeta, span: ByteSpan) {
        self.update(|s| {
            // The bytes a slice past the object's end (or its short last slice) will not use.
            let len = if meta.size == 0 { 0 } else { span.len() as usize };
            if let Some(reserved) = &mut s.reserved
                && reserved.num_permits() > len
            {
                drop(reserved.split(reserved.num_permits() - len));
            }
            s.head = Some((meta, span));
        });
    }

    pub(super) fn push(&self, data: Bytes) {
        self.update(|s| {
            if s.chunks.is_empty() {
                s.counted = s.reserved.take().map(Arc::new);
            }
            let piece = counted(data, &s.counted);
            s.chunks.push(piece);
        });
    }

    /// Ends the fill once: a run that fails later must not turn its slices
    /// that already completed (and were stored) into failures.
    pub(super) fn finish(&self, result: Result<()>) {
        self.update(|s| {
            if s.done.is_none() {
                s.done = Some(result.map_err(|e| (e.kind.clone(), e.message.clone())));
            }
            // From now on only the pieces hold the slice's budget.
            s.reserved = None;
            s.counted = None;
        });
    }

    /// The complete slice's pieces, to keep in the cache: its chunks copied
    /// into pieces of [`PIECE_MAX`] bytes, which also replace the chunks, so
    /// the storage connection's read buffers are let go.
    pub(super) fn settle(&self) -> Arc<[Bytes]> {
        let (chunks, budget) = {
            let state = lock(&self.state);
            (state.chunks.clone(), state.counted.clone())
        };
        let pieces: Arc<[Bytes]> = coalesce(&chunks, &budget).into();
        self.update(|s| {
            s.chunks = pieces.to_vec();
            s.layout += 1;
        });
        pieces
    }

    /// The next bytes at `pos` (up to `limit`) as they arrive; `cursor` as
    /// in [`next_piece`], for the chunks of `layout`. `None` when the fill
    /// ended before `pos`.
    pub(super) async fn next(
        &self,
        cursor: &mut Cursor,
        layout: &mut u32,
        pos: u64,
        limit: u64,
    ) -> Option<Result<Bytes, BoxError>> {
        loop {
            let mut rx = self.changed.subscribe();
            {
                let state = lock(&self.state);
                if state.layout != *layout {
                    *layout = state.layout;
                    *cursor = Cursor::at(cursor.start);
                }
                if let Some(piece) = next_piece(&state.chunks, cursor, pos, limit) {
                    return Some(Ok(piece));
                }
                match &state.done {
                    Some(Ok(())) => return None,
                    Some(Err((_, message))) => return Some(Err(message.clone().into())),
                    None => {}
                }
            }
            if rx.changed().await.is_err() {
                return Some(Err("a cache fill went away".into()));
            }
        }
    }

    /// Waits for the response head of the fill (or its failure).
    pub(super) async fn wait_meta(&self) -> Result<ObjectMeta> {
        let mut rx = self.changed.subscribe();
        loop {
            {
                let state = lock(&self.state);
                if let Some((meta, _)) = &state.head {
                    return Ok(meta.clone());
                }
                if let Some(Err((kind, message))) = &state.done {
                    return Err(Error::new(kind.clone(), message.clone()));
                }
                if state.done.is_some() {
                    return Err(Error::internal("a cache fill ended without a response"));
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::internal("a cache fill went away"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(len: usize, from: usize) -> Bytes {
        (from..from + len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into()
    }

    #[test]
    fn chunks_of_any_size_are_cached_as_full_pieces_with_a_short_last_one() {
        let chunks: Vec<Bytes> = (0..20).map(|i| numbered(8 << 10, i * (8 << 10))).collect();
        let pieces = coalesce(&chunks, &None);
        let lens: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(lens, [PIECE_MAX, PIECE_MAX, 32 << 10]);
        assert_eq!(pieces.concat(), chunks.concat());
        assert!(coalesce(&[], &None).is_empty());
        let odd = [numbered(1, 0), numbered(PIECE_MAX, 1), numbered(3, PIECE_MAX + 1)];
        let lens: Vec<usize> = coalesce(&odd, &None).iter().map(Bytes::len).collect();
        assert_eq!(lens, [PIECE_MAX, 4]);
    }

    #[tokio::test]
    async fn a_reader_midway_through_a_fill_keeps_its_place_when_the_slice_is_settled() {
        let fill = Fill::new(None);
        let (start, len) = (1000_u64, 30_u64);
        fill.set_head(ObjectMeta { size: 2000, ..ObjectMeta::default() }, ByteSpan { start, end: start + len - 1 });
        for i in 0..3 {
            fill.push(numbered(10, i * 10));
        }
        let (mut cursor, mut layout) = (Cursor::at(start), 0);
        let first = fill.next(&mut cursor, &mut layout, start + 5, start + len - 1).await;
        assert_eq!(first.expect("bytes").expect("ok"), numbered(5, 5));
        let settled = fill.settle();
        assert_eq!(settled.len(), 1, "30 bytes are one piece once settled");
        fill.finish(Ok(()));
        let rest = fill.next(&mut cursor, &mut layout, start + 10, start + len - 1).await;
        assert_eq!(rest.expect("bytes").expect("ok"), numbered(20, 10));
        assert!(fill.next(&mut cursor, &mut layout, start + len, start + len - 1).await.is_none());
    }
}
