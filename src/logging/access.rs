//! The access log: one line per request, written when the response body
//! ends, so it carries the bytes really sent and how the response ended.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tracing::Level;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use super::{BufferedStderr, UtcMicros};
use crate::http::body::{Body, BoxError};
use crate::metrics::RequestMetrics;

/// The target of every access line (`RUST_LOG=mediagate::access=warn`
/// keeps only the failed requests).
const TARGET: &str = "mediagate::access";

/// Where access lines go.
#[derive(Clone, Default)]
pub enum AccessLog {
    /// As `tracing` events: the JSON format, colours on a terminal, and
    /// any subscriber that is not [`super::init`]'s.
    #[default]
    Events,
    /// Straight into the log buffer, as the very text the pretty format
    /// writes for the event (a test holds them equal). The event costs
    /// about 6,000 instructions a line, as much as the rest of a cache hit's
    /// own work; this, a tenth of that.
    Direct(BufferedStderr),
}

impl AccessLog {
    /// Writes one line, if `RUST_LOG` lets lines of this level through.
    fn write(&self, log: &RequestLog, bytes: u64, outcome: &str, elapsed: Duration) {
        let warn = is_warning(log.status, outcome);
        match self {
            AccessLog::Events => log.event(warn, bytes, outcome, elapsed),
            AccessLog::Direct(out) => {
                let enabled = if warn {
                    tracing::enabled!(target: TARGET, Level::WARN)
                } else {
                    tracing::enabled!(target: TARGET, Level::INFO)
                };
                if enabled {
                    let mut line = String::with_capacity(256);
                    // Writing into a String cannot fail.
                    let _ = UtcMicros.format_time(&mut Writer::new(&mut line));
                    line.push(' ');
                    log.line(&mut line, warn, bytes, outcome, elapsed);
                    out.append(line.as_bytes());
                }
            }
        }
    }
}

/// Whether a request's line is a warning: a 5xx, or a response that did
/// not complete; the rest are `info`.
fn is_warning(status: u16, outcome: &str) -> bool {
    status >= 500 || outcome != "complete"
}

/// What the access-log line says about one request.
#[derive(Debug)]
pub struct RequestLog {
    pub method: Method,
    /// The locator (`s3://bucket/key`), or the raw path when it did not parse.
    pub locator: std::sync::Arc<str>,
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
            locator: path.into(),
            integration: None,
            range: None,
            status: 0,
            error: None,
            started: Instant::now(),
        }
    }

    /// The line as a `tracing` event, at `warn` or `info` ([`is_warning`]).
    fn event(&self, warn: bool, bytes: u64, outcome: &str, elapsed: Duration) {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let integration = self.integration.as_deref().unwrap_or("-");
        // Display, not Debug (no escaping), and absent fields left out: this
        // line is written once per request.
        let error = self.error.as_deref().map(tracing::field::display);
        let range = self.range.as_deref().map(tracing::field::display);
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: TARGET,
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
        if warn {
            line!(warn);
        } else {
            line!(info);
        }
    }

    /// The text the pretty format writes for [`Self::event`] after the
    /// timestamp, newline included.
    fn line(&self, out: &mut String, warn: bool, bytes: u64, outcome: &str, elapsed: Duration) {
        out.push_str(if warn { " WARN " } else { " INFO " });
        out.push_str(TARGET);
        out.push_str(": request method=");
        out.push_str(self.method.as_str());
        out.push_str(" locator=");
        out.push_str(&self.locator);
        out.push_str(" status=");
        out.push_str(itoa::Buffer::new().format(self.status));
        if let Some(range) = &self.range {
            out.push_str(" range=");
            out.push_str(range);
        }
        out.push_str(" bytes=");
        out.push_str(itoa::Buffer::new().format(bytes));
        out.push_str(" duration_ms=");
        push_millis(out, elapsed);
        out.push_str(" integration=");
        out.push_str(self.integration.as_deref().unwrap_or("-"));
        out.push_str(" outcome=");
        out.push_str(outcome);
        if let Some(error) = &self.error {
            out.push_str(" error=");
            out.push_str(error);
        }
        out.push('\n');
    }
}

/// Milliseconds rounded to the microsecond, as `f64`'s `Debug` writes
/// them (`17.552`, `0.5`, `3.0`): integer arithmetic, no float formatting.
fn push_millis(out: &mut String, elapsed: Duration) {
    let micros = (elapsed.as_nanos() + 500) / 1000;
    out.push_str(itoa::Buffer::new().format(micros / 1000));
    let frac = (micros % 1000) as u32;
    if frac == 0 {
        out.push_str(".0");
    } else {
        // Three digits, trailing zeros dropped.
        out.push('.');
        for digit in [frac / 100, frac / 10 % 10, frac % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
        while out.ends_with('0') {
            out.pop();
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
    access: AccessLog,
}

impl LoggedBody {
    pub fn new(inner: Body, log: RequestLog, expected: Option<u64>) -> Self {
        LoggedBody {
            inner,
            log: Some(log),
            bytes: 0,
            expected,
            metrics: RequestMetrics::default(),
            access: AccessLog::Events,
        }
    }

    /// Records the response in `metrics` too when it ends.
    pub fn with_metrics(mut self, metrics: RequestMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Writes the line to `access` (default: [`AccessLog::Events`]).
    pub fn with_access_log(mut self, access: AccessLog) -> Self {
        self.access = access;
        self
    }

    fn finish(&mut self, outcome: &str) {
        if let Some(log) = self.log.take() {
            let elapsed = log.started.elapsed();
            self.metrics.record(log.status, self.bytes, elapsed);
            self.access.write(&log, self.bytes, outcome, elapsed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::tests::captured;

    fn request(status: u16, range: Option<&str>, error: Option<&str>) -> RequestLog {
        RequestLog {
            method: Method::GET,
            locator: "s3://bench/a b/é.bin".into(),
            integration: (status != 400).then(|| "bench".into()),
            range: range.map(str::to_owned),
            status,
            error: error.map(str::to_owned),
            started: Instant::now(),
        }
    }

    /// The event's line through the pretty format (no timestamp).
    fn as_event(log: &RequestLog, bytes: u64, outcome: &str, elapsed: Duration) -> String {
        captured(true, || log.event(is_warning(log.status, outcome), bytes, outcome, elapsed))
    }

    #[test]
    fn the_direct_line_is_the_text_the_pretty_format_writes_for_the_event() {
        let cases = [
            (request(200, None, None), 16_384, "complete", Duration::from_micros(17_552)),
            (request(206, Some("bytes=0-10"), None), 11, "complete", Duration::from_nanos(66_600)),
            (request(200, None, None), 0, "complete", Duration::ZERO),
            (request(200, None, None), 5, "client gone", Duration::from_millis(3)),
            (request(206, Some("bytes=5-"), None), 7, "aborted: reset", Duration::from_micros(1_500)),
            (request(404, None, Some("not_found: s3://b/k does not exist")), 100, "complete", Duration::from_secs(2)),
            (request(400, None, Some("bad_locator: no")), 90, "complete", Duration::from_nanos(999_999_499)),
            (request(502, None, Some("upstream_error: 503")), 80, "complete", Duration::from_micros(120_010)),
        ];
        for (log, bytes, outcome, elapsed) in cases {
            let theirs = as_event(&log, bytes, outcome, elapsed);
            let mut ours = String::new();
            log.line(&mut ours, is_warning(log.status, outcome), bytes, outcome, elapsed);
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn direct_lines_obey_the_level_filter_as_events_do() {
        let out = BufferedStderr { pending: Default::default(), out: Default::default() };
        let access = AccessLog::Direct(out.clone());
        let filter = tracing_subscriber::EnvFilter::new("mediagate::access=warn");
        let subscriber = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::sink).finish();
        tracing::subscriber::with_default(subscriber, || {
            let ms = Duration::from_millis(1);
            access.write(&request(200, None, None), 10, "complete", ms);
            access.write(&request(502, None, Some("upstream_error: 503")), 80, "complete", ms);
            access.write(&request(200, None, None), 5, "client gone", ms);
        });
        let text = String::from_utf8_lossy(&out.pending.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().all(|l| l.contains("Z  WARN mediagate::access: request method=GET")), "{text}");
        assert!(text.contains("status=502") && text.contains("outcome=client gone"), "{text}");
    }
}
