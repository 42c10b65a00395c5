//! HTTP/2 streams run inside their connection's task.
//!
//! hyper's HTTP/2 server hands each stream (the request's service future and
//! the sending of its response) to an executor. With tokio's, every stream
//! is a task of its own: spawned, scheduled, often stolen by the other
//! worker, and waking the connection's task across threads at every frame
//! it queues. Here the executor queues the stream for the connection's own
//! task instead, which polls all of its streams beside the connection (as
//! nginx serves a connection's streams in the worker that owns it). A
//! connection's streams then share one thread and one waker, and a stream
//! costs one allocation instead of a task (docs/BENCHMARKS.md, "HTTP/2
//! streams in their connection's task").
//!
//! What spawned tasks did and this keeps: a stream's work runs concurrently
//! with its connection's other streams (each is polled when woken), and a
//! cache fill it starts still runs in a task of its own. What changes: the
//! streams of one connection share a thread, so a connection is served by
//! one core at a time; many connections still spread over every worker.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;

use crate::sync::lock;

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Streams handed over by hyper and not yet polled.
#[derive(Default)]
struct Handover {
    new: Mutex<Vec<Stream>>,
    /// The connection task's waker, for a stream handed over outside its poll.
    waker: AtomicWaker,
}

/// The executor given to hyper for one connection: queues each stream for
/// that connection's task.
#[derive(Clone)]
pub(super) struct StreamExec {
    handover: Arc<Handover>,
}

impl<F> hyper::rt::Executor<F> for StreamExec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        lock(&self.handover.new).push(Box::pin(stream));
        self.handover.waker.wake();
    }
}

/// The streams of one connection, polled by its task.
pub(super) struct Streams {
    handover: Arc<Handover>,
    running: FuturesUnordered<Stream>,
}

impl Streams {
    /// An executor for hyper and the streams it will hand over.
    pub(super) fn new() -> (StreamExec, Streams) {
        let handover = Arc::new(Handover::default());
        (StreamExec { handover: handover.clone() }, Streams { handover, running: FuturesUnordered::new() })
    }

    /// Polls every stream that was woken or handed over; never completes (a
    /// branch of the connection's `select!`, which ends with the connection).
    pub(super) async fn run(&mut self) {
        std::future::poll_fn(|cx| self.poll_streams(cx)).await
    }

    fn poll_streams(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.handover.waker.register(cx.waker());
        loop {
            self.running.extend(std::mem::take(&mut *lock(&self.handover.new)));
            // `Ready(None)`: no stream is running; `Pending`: none can move now.
            while let Poll::Ready(Some(())) = self.running.poll_next_unpin(cx) {}
            // Streams handed over while those ran are polled before sleeping.
            if lock(&self.handover.new).is_empty() {
                return Poll::Pending;
            }
        }
    }
}
