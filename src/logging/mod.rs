//! Logs through `tracing`: set-up (`--log-format pretty|json`), the
//! buffered standard error every line goes through, and the access log
//! ([`access`]).

use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;

mod access;
pub use access::{AccessLog, LoggedBody, RequestLog};

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.clone())
        .with_ansi(ansi)
        .with_timer(UtcMicros);
    let result = match format {
        LogFormat::Pretty => builder.fmt_fields(PlainFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    let access = match result {
        Err(e) => {
            eprintln!("mediagate: logging was already set up: {e}");
            AccessLog::Events
        }
        Ok(()) if format == LogFormat::Pretty && !ansi => AccessLog::Direct(writer.clone()),
        Ok(()) => AccessLog::Events,
    };
    LogGuard { writer, access }
}

/// Flushes the log buffer when dropped (at the end of `main`).
pub struct LogGuard {
    writer: BufferedStderr,
    access: AccessLog,
}

impl LogGuard {
    /// Where the server writes its access lines: straight into the buffer
    /// for the pretty format without colours, else as `tracing` events.
    pub fn access_log(&self) -> AccessLog {
        self.access.clone()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.writer.flush_now();
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

    /// Adds `data` (whole lines) to the buffer; writes the buffer out once
    /// it passes [`Self::LIMIT`].
    fn append(&self, data: &[u8]) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend_from_slice(data);
            pending.len() >= BufferedStderr::LIMIT
        };
        if full {
            self.flush_now();
        }
    }
}

impl Write for &BufferedStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.append(data);
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

/// The timestamp of every line, exactly as `tracing_subscriber`'s default
/// (`2026-12-03T02:58:00.123456Z`, UTC, RFC 3339 with microseconds), with
/// the date and time of day formatted once per second per thread: the
/// default formats every field of every line through `core::fmt`.
struct UtcMicros;

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for UtcMicros {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now();
        let since = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let (secs, micros) = (since.as_secs(), since.subsec_micros());
        SECOND.with(|cell| {
            let mut cached = cell.borrow_mut();
            if cached.0 != secs {
                let t = time::OffsetDateTime::from(now);
                let mut text = String::with_capacity(20);
                std::fmt::Write::write_fmt(
                    &mut text,
                    format_args!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                        t.year(),
                        u8::from(t.month()),
                        t.day(),
                        t.hour(),
                        t.minute(),
                        t.second()
                    ),
                )?;
                *cached = (secs, text);
            }
            w.write_str(&cached.1)?;
            let mut digits = [b'0'; 8];
            digits[0] = b'.';
            digits[7] = b'Z';
            let mut n = micros;
            for d in digits[1..7].iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            w.write_str(std::str::from_utf8(&digits).unwrap_or(".000000Z"))
        })
    }
}

/// The fields of a line in the pretty format: the same text as
/// `tracing_subscriber`'s `DefaultFields` without colours (`name=value`,
/// values by `Debug`, the message first and sanitized, `r#` and `log.`
/// names as it treats them), written straight to the line; with colours on
/// (a terminal), `DefaultFields` itself. The default builds every field
/// through a styled `format_args!`, a third of the access line's cost.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        if writer.has_ansi_escapes() {
            return DefaultFields::new().format_fields(writer, fields);
        }
        let sanitize = writer.sanitizes_ansi_escapes();
        let mut v = PlainVisitor { writer, empty: true, sanitize, result: Ok(()) };
        fields.record(&mut v);
        v.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    empty: bool,
    sanitize: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    /// Starts a field: a space before every field but the first, then
    /// `name=` (nothing for the message). `None`: skip this field.
    fn start(&mut self, field: &Field) -> Option<bool> {
        if self.result.is_err() || field.name().starts_with("log.") {
            return None;
        }
        if !std::mem::take(&mut self.empty) {
            self.result = self.writer.write_char(' ');
        }
        let name = field.name();
        if name == "message" {
            return Some(true);
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = self.result.and_then(|()| self.writer.write_str(name)).and_then(|()| self.writer.write_char('='));
        Some(false)
    }

    fn integer(&mut self, field: &Field, text: &str) {
        if self.start(field).is_some() {
            self.result = self.result.and_then(|()| self.writer.write_str(text));
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.start(field) {
            None => {}
            Some(true) => {
                self.result = self.result.and_then(|()| Sanitized::write(&mut self.writer, self.sanitize, value))
            }
            Some(false) => self.result = self.result.and_then(|()| write!(self.writer, "{value:?}")),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.integer(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, itoa::Buffer::new().format(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match self.start(field) {
            None => {}
            Some(true) if self.sanitize => {
                let mut w = Sanitized(&mut self.writer);
                self.result = self.result.and_then(|()| write!(w, "{value:?}"));
            }
            Some(_) => self.result = self.result.and_then(|()| write!(self.writer, "{value:?}")),
        }
    }

    /// `name=error`, then ` name.sources=[cause, cause]` when it has causes.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.start(field).is_none() {
            return;
        }
        let sanitize = self.sanitize;
        let mut w = Sanitized(&mut self.writer);
        let mut result = if sanitize { write!(w, "{value}") } else { write!(w.0, "{value}") };
        let mut source = value.source();
        if source.is_some() {
            let name = field.name();
            result = result.and_then(|()| write!(w.0, " {}.sources=[", name.strip_prefix("r#").unwrap_or(name)));
        }
        let mut first = true;
        while let Some(cause) = source {
            if !std::mem::take(&mut first) {
                result = result.and_then(|()| w.0.write_str(", "));
            }
            result = result.and_then(|()| if sanitize { write!(w, "{cause}") } else { write!(w.0, "{cause}") });
            source = cause.source();
            if source.is_none() {
                result = result.and_then(|()| w.0.write_char(']'));
            }
        }
        self.result = self.result.and(result);
    }
}

/// Writes text with the control characters a terminal would act on
/// escaped, as `tracing_subscriber` does for messages.
struct Sanitized<'a, 'w>(&'a mut Writer<'w>);

impl Sanitized<'_, '_> {
    fn write(w: &mut Writer<'_>, sanitize: bool, text: &str) -> std::fmt::Result {
        if sanitize { std::fmt::Write::write_str(&mut Sanitized(w), text) } else { w.write_str(text) }
    }

    fn is_control(c: char) -> bool {
        matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}')
    }
}

impl std::fmt::Write for Sanitized<'_, '_> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(Self::is_control) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or(' ');
            match c {
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                _ => write!(self.0, "\\x{:02x}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::Method;

    /// A writer into a shared buffer, for reading the formatted lines back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Lines {
        /// Everything written so far.
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
    }

    impl Write for Lines {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn events() {
        let range: Option<&str> = Some("bytes=0-1");
        let none: Option<&str> = None;
        let range = range.map(tracing::field::display);
        let error = none.map(tracing::field::display);
        tracing::info!(target: "mediagate::access", method = %Method::GET, locator = %"s3://b/k \u{1b}[31m", status = 206u16, range, bytes = 1234u64, duration_ms = 1.5f64, whole = 2.0f64, integration = %"bench", outcome = %"complete", error, "request");
        tracing::warn!(
            name = "quoted \"str\"",
            n = -3i64,
            ok = true,
            "a message with \u{1b}[1m and \u{85} inside: {}",
            42
        );
        let e = Outer(std::io::Error::other("inner \u{7}"));
        tracing::warn!(error = &e as &(dyn std::error::Error + 'static), r#type = "x", "failed");
        tracing::info!(plain = ?vec![1, 2], "{}", "only a message");
    }

    /// What `events` log in the pretty format without time or colours,
    /// through [`PlainFields`] (`plain`) or tracing's own field formatter.
    pub(crate) fn captured(plain: bool, events: impl FnOnce()) -> String {
        let out = Lines::default();
        let sink = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .without_time()
            .with_level(true);
        if plain {
            tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), events);
        } else {
            tracing::subscriber::with_default(builder.finish(), events);
        }
        out.text()
    }

    fn format_with(plain: bool) -> String {
        captured(plain, events)
    }

    #[test]
    fn plain_fields_write_the_same_text_as_the_default_fields() {
        let (ours, theirs) = (format_with(true), format_with(false));
        assert_eq!(ours.lines().count(), 4, "{ours}");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_timestamp_is_rfc3339_utc_with_microseconds_like_the_default() {
        let mut ours = String::new();
        UtcMicros.format_time(&mut Writer::new(&mut ours)).expect("format");
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut Writer::new(&mut theirs)).expect("format");
        assert_eq!(ours.len(), theirs.len(), "{ours} vs {theirs}");
        assert_eq!(ours[..16], theirs[..16], "{ours} vs {theirs}");
        assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
        let parsed =
            time::OffsetDateTime::parse(&ours, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
        let now = time::OffsetDateTime::now_utc();
        assert!((now - parsed).whole_seconds().abs() < 5, "{ours} is not now");
    }
}
