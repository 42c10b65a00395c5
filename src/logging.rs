//! Logs through `tracing`: set-up (`--log-format pretty|json`) and the one
//! access-log line per request, written when the response body ends, so it
//! carries the bytes really sent and how the response ended.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http::Method;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::http::body::{Body, BoxError};
use crate::metrics::RequestMetrics;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Pretty,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Installs the global subscriber: level from `RUST_LOG` (default `info`).
///
/// Lines go to standard error through [`BufferedStderr`]: a request never
/// pays a `write` system call or a thread wake-up for its access-log line
/// (one `write` per line cost a quarter of the small-hit throughput). Keep
/// the returned guard alive: dropping it flushes what is left.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let writer = BufferedStderr::start();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer.clone()).with_ansi(ansi);
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("mediagate: logging was already set up: {e}");
    }
    LogGuard(writer)
}

/// Flushes the log buffer when dropped (at the end of `main`).
pub struct LogGuard(BufferedStderr);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush_now();
    }
}

/// Standard error behind an in-memory buffer: a line is appended under a
/// lock; the buffer is written out when it passes [`Self::LIMIT`] and at
/// least every [`Self::PERIOD`] by a flusher thread, so lines reach the log
/// at most that late and in order.
#[derive(Clone)]
pub struct BufferedStderr {
    pending: Arc<Mutex<Vec<u8>>>,
    /// Held while writing, so batches go out in the order they were taken.
    out: Arc<Mutex<()>>,
}

impl BufferedStderr {
    const LIMIT: usize = 64 * 1024;
    const PERIOD: Duration = Duration::from_millis(100);

    /// The writer, and its flusher thread.
    fn start() -> BufferedStderr {
        let w = BufferedStderr { pending: Arc::default(), out: Arc::default() };
        let flusher = w.clone();
        let spawned = std::thread::Builder::new().name("mediagate-log".into()).spawn(move || {
            loop {
                std::thread::sleep(Self::PERIOD);
                flusher.flush_now();
            }
        });
        if let Err(e) = spawned {
            eprintln!("mediagate: no log flusher thread ({e}); lines are written when 64 KiB gather");
        }
        w
    }

    /// Writes out everything buffered so far.
    pub fn flush_now(&self) {
        let _order = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.is_empty() {
            let mut err = std::io::stderr().lock();
            // Nowhere to report a failing standard error: the lines are dropped.
            let _ = err.write_all(&batch).and_then(|()| err.flush());
        }
    }
}

impl Write for &BufferedStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend_from_slice(data);
            pending.len() >= BufferedStderr::LIMIT
        };
        if full {
            self.flush_now();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedStderr {
    type Writer = &'a BufferedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// What the access-log line says about one request.
#[derive(Debug)]
pub struct RequestLog {
    pub method: Method,
    /// The locator (`s3://bucket/key`), or the raw path when it did not parse.
    pub locator: String,
    pub integration: Option<String>,
    /// The request's `Range` header, if any (seeks show up as ranges).
    pub range: Option<String>,
    pub status: u16,
    /// The error code and detail when the request failed.
    pub error: Option<String>,
    pub started: Instant,
}

impl RequestLog {
    pub fn new(method: Method, path: &str) -> Self {
        RequestLog {
            method,
            locator: path.to_owned(),
            integration: None,
            range: None,
            status: 0,
            error: None,
            started: Instant::now(),
        }
    }

    fn emit(&self, bytes: u64, outcome: &str, elapsed: Duration) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let integration = self.integration.as_deref().unwrap_or("-");
        // Display, not Debug (no escaping), and absent fields left out: this
        // line is written once per request.
        let error = self.error.as_deref().map(tracing::field::display);
        let range = self.range.as_deref().map(tracing::field::display);
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: "mediagate::access",
                    method = %self.method,
                    locator = %self.locator,
                    status = self.status,
                    range,
                    bytes,
                    duration_ms = (duration_ms * 1000.0).round() / 1000.0,
                    integration = %integration,
                    outcome = %outcome,
                    error,
                    "request"
                )
            };
        }
        if self.status >= 500 || outcome != "complete" {
            line!(warn);
        } else {
            line!(info);
        }
    }
}

/// A response body that counts what it sends and, when it ends, writes the
/// access-log line and records the response's metrics (the same status,
/// bytes and duration): `complete`, `aborted` (the body failed, so the
/// connection was cut) or `client gone` (dropped before the end).
pub struct LoggedBody {
    inner: Body,
    log: Option<RequestLog>,
    bytes: u64,
    /// The `Content-Length` announced: hyper may stop polling once it is
    /// sent, so reaching it counts as complete.
    expected: Option<u64>,
    metrics: RequestMetrics,
}

impl LoggedBody {
    pub fn new(inner: Body, log: RequestLog, expected: Option<u64>) -> Self {
        LoggedBody { inner, log: Some(log), bytes: 0, expected, metrics: RequestMetrics::default() }
    }

    /// Records the response in `metrics` too when it ends.
    pub fn with_metrics(mut self, metrics: RequestMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn finish(&mut self, outcome: &str) {
        if let Some(log) = self.log.take() {
            let elapsed = log.started.elapsed();
            self.metrics.record(log.status, self.bytes, elapsed);
            log.emit(self.bytes, outcome, elapsed);
        }
    }
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let outcome = format!("aborted: {e}");
                self.finish(&outcome);
            }
            Poll::Ready(None) => self.finish("complete"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let complete = self.inner.is_end_stream() || self.expected == Some(self.bytes);
        let outcome = if complete { "complete" } else { "client gone" };
        self.finish(outcome);
    }
}
