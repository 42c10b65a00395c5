//! Prometheus metrics (CONTRACT.md section 6; every name, label and value is
//! listed in `docs/METRICS.md`), rendered in the text exposition format for
//! `GET /metrics` on the admin listener.
//!
//! Recording goes through the `metrics` crate's [`Recorder`] trait into a
//! [`PrometheusRecorder`] that this value owns: no global recorder is
//! installed, so there is no global state, and a test or a second server in
//! the same process has metrics of its own. Handles are registered once
//! (labelled ones once per integration, kept in a small map), so a request
//! costs a few atomic adds and one histogram sample, never a key build or a
//! label hash.
//!
//! [`Metrics::disabled`] (the default) records nothing and renders nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::cache::Cache;

pub const REQUESTS: &str = "mediagate_requests_total";
pub const RESPONSE_BYTES: &str = "mediagate_response_bytes_total";
pub const REQUEST_DURATION: &str = "mediagate_request_duration_seconds";
pub const CACHE_HITS: &str = "mediagate_cache_hits_total";
pub const CACHE_MISSES: &str = "mediagate_cache_misses_total";
pub const CACHE_BYTES: &str = "mediagate_cache_bytes";
pub const CACHE_EVICTIONS: &str = "mediagate_cache_evictions_total";
pub const CACHE_COALESCED: &str = "mediagate_cache_coalesced_total";
pub const UPSTREAM_REQUESTS: &str = "mediagate_upstream_requests_total";
pub const UPSTREAM_DURATION: &str = "mediagate_upstream_duration_seconds";
pub const UPSTREAM_ERRORS: &str = "mediagate_upstream_errors_total";
pub const CREDENTIAL_REFRESHES: &str = "mediagate_credential_refreshes_total";
pub const CONNECTIONS_OPEN: &str = "mediagate_connections_open";
pub const CONFIG_RELOADS: &str = "mediagate_config_reloads_total";
pub const STORE_CONNECTED: &str = "mediagate_store_connected";
pub const STORE_ERRORS: &str = "mediagate_store_errors_total";

/// Kind of a metric, for its HELP and TYPE lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric of the contract: name, kind, labels, HELP text. The one
/// list: registration, the HELP lines, the tests and the dashboard test
/// (`tests/grafana_dashboard.rs`) read it.
pub const CATALOGUE: &[(&str, MetricKind, &[&str], &str)] = &[
    (
        REQUESTS,
        MetricKind::Counter,
        &["integration", "status"],
        "Media listener responses, by integration (empty when none was resolved) and status class (2xx..5xx).",
    ),
    (
        RESPONSE_BYTES,
        MetricKind::Counter,
        &["integration"],
        "Response body bytes sent to clients, by integration (empty when none was resolved).",
    ),
    (REQUEST_DURATION, MetricKind::Histogram, &[], "Seconds from a request's arrival to the end of its response body."),
    (CACHE_HITS, MetricKind::Counter, &[], "Cache reads served wholly from memory."),
    (CACHE_MISSES, MetricKind::Counter, &[], "Cache reads that needed the storage (missing, partial or stale)."),
    (CACHE_BYTES, MetricKind::Gauge, &[], "Bytes held by the cache, as its weigher counts them."),
    (CACHE_EVICTIONS, MetricKind::Counter, &[], "Cache entries evicted to stay within max_bytes."),
    (
        CACHE_COALESCED,
        MetricKind::Counter,
        &[],
        "Reads that joined a storage read already running for the same slice instead of starting one.",
    ),
    (
        UPSTREAM_REQUESTS,
        MetricKind::Counter,
        &["integration", "outcome"],
        "Requests to the storage (retries included in one), by outcome: ok (2xx or 304) or error.",
    ),
    (
        UPSTREAM_DURATION,
        MetricKind::Histogram,
        &["integration"],
        "Seconds from sending a request to the storage to its response head (or its failure).",
    ),
    (
        UPSTREAM_ERRORS,
        MetricKind::Counter,
        &["integration", "code"],
        "Storage requests that failed, by the storage's error code, http_<status> without one, \
         or timeout, dns, tls, connect.",
    ),
    (
        CREDENTIAL_REFRESHES,
        MetricKind::Counter,
        &["integration", "outcome"],
        "Credential refreshes (tokens fetched for an integration), by outcome: ok or error.",
    ),
    (CONNECTIONS_OPEN, MetricKind::Gauge, &[], "Client connections open on the media listener."),
    (CONFIG_RELOADS, MetricKind::Counter, &["outcome"], "Configuration reloads, by outcome: ok or error."),
    (
        STORE_CONNECTED,
        MetricKind::Gauge,
        &[],
        "1 while the shared store ([store], PostgreSQL) is connected and listened to, 0 while it is not; \
         absent without [store].",
    ),
    (
        STORE_ERRORS,
        MetricKind::Counter,
        &["operation"],
        "Failures of the shared store, by operation: connect, connection (an established one lost), read, \
         write, purge, decrypt.",
    ),
];

/// Histogram buckets, in seconds: 1 ms to 60 s.
pub const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How often recorded histogram samples are folded into their buckets when
/// nobody scrapes (each sample waits in a queue until then).
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// The `status` label of a response status: its class (the proxy sends no
/// final 1xx; hyper answers `Expect: 100-continue` itself).
const STATUS_CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// The metadata the `Recorder` trait asks for (the exporter ignores it).
static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The metrics of one process; cheap to clone, pass it in.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    request_duration: Histogram,
    connections_open: Gauge,
    cache: CacheHandles,
    /// Per-integration handles of the requests served, created on first
    /// use; `""` is the integration of requests that resolved none. A
    /// B-tree: a look-up compares a few names instead of hashing one
    /// (about 160 instructions less a request than a SipHash map).
    served: RwLock<BTreeMap<Arc<str>, Arc<ServedHandles>>>,
}

struct CacheHandles {
    hits: Counter,
    misses: Counter,
    bytes: Gauge,
    evictions: Counter,
    coalesced: Counter,
}

/// The handles of the requests one integration served.
struct ServedHandles {
    /// `mediagate_requests_total` by status class ([`STATUS_CLASSES`]).
    requests: [Counter; 4],
    response_bytes: Counter,
    /// `mediagate_request_duration_seconds` (the same for every integration).
    duration: Histogram,
}

impl Metrics {
    /// Metrics recorded into a recorder of their own. Inside a tokio
    /// runtime, also starts a task that folds histogram samples into their
    /// buckets every few seconds (so unscraped samples do not pile up); it
    /// ends when the last clone of this value is dropped.
    pub fn new() -> Metrics {
        // Both histograms are durations. `set_buckets` only fails on an
        // empty list; the fallback would render summaries.
        let builder = PrometheusBuilder::new().set_buckets(DURATION_BUCKETS).unwrap_or_default();
        let recorder = builder.build_recorder();
        for &(name, kind, _, help) in CATALOGUE {
            let (key, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            match kind {
                MetricKind::Counter => recorder.describe_counter(key, None, help),
                MetricKind::Gauge => recorder.describe_gauge(key, None, help),
                MetricKind::Histogram => recorder.describe_histogram(key, None, help),
            }
        }
        let counter = |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        let gauge = |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        let cache = CacheHandles {
            hits: counter(CACHE_HITS),
            misses: counter(CACHE_MISSES),
            bytes: gauge(CACHE_BYTES),
            evictions: counter(CACHE_EVICTIONS),
            coalesced: counter(CACHE_COALESCED),
        };
        // Registered now, so they render as 0 before the first event.
        for outcome in ["ok", "error"] {
            let _registered = recorder.register_counter(&key(CONFIG_RELOADS, &[("outcome", outcome)]), &METADATA);
        }
        let inner = Arc::new(Inner {
            handle: recorder.handle(),
            request_duration: recorder.register_histogram(&Key::from_static_name(REQUEST_DURATION), &METADATA),
            connections_open: gauge(CONNECTIONS_OPEN),
            cache,
            served: RwLock::default(),
            recorder,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(upkeep(Arc::downgrade(&inner)));
        }
        Metrics { inner: Some(inner) }
    }

    /// Metrics that record nothing and render an empty text.
    pub fn disabled() -> Metrics {
        Metrics { inner: None }
    }

    /// The Prometheus text of everything recorded so far.
    pub fn render(&self) -> String {
        self.render_with(None)
    }

    /// The Prometheus text, with the cache's figures read from `cache` first.
    pub fn render_with(&self, cache: Option<&Cache>) -> String {
        let Some(inner) = &self.inner else { return String::new() };
        if let Some(cache) = cache {
            self.publish_cache(cache);
        }
        inner.handle.render()
    }

    /// Copies the cache's own counters and size into the cache metrics
    /// (they are counted by the cache, [`crate::cache::CacheStats`], and
    /// published here at render time: nothing is counted twice).
    pub fn publish_cache(&self, cache: &Cache) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(inner) = &self.inner else { return };
        let stats = cache.stats();
        let c = &inner.cache;
        c.hits.absolute(stats.hits.load(Relaxed));
        c.misses.absolute(stats.misses.load(Relaxed));
        c.evictions.absolute(stats.evictions.load(Relaxed));
        c.coalesced.absolute(stats.coalesced_waits.load(Relaxed));
        c.bytes.set(cache.weighted_size() as f64);
    }

    /// Folds the histogram samples recorded since the last render into their buckets.
    pub fn run_upkeep(&self) {
        if let Some(inner) = &self.inner {
            inner.handle.run_upkeep();
        }
    }

    /// One configuration reload: `outcome` is `ok` or `error`.
    pub fn config_reload(&self, outcome: &str) {
        self.count(CONFIG_RELOADS, &[("outcome", outcome)]);
    }

    /// One credential refresh of `integration`: `outcome` is `ok` or `error`.
    /// What a credential cache calls after each fetch: counts
    /// `credential_refreshes_total{integration, outcome="ok" | "error"}`.
    pub fn credential_observer(&self, integration: &str) -> crate::integration::token::Observer {
        let (metrics, integration) = (self.clone(), integration.to_owned());
        std::sync::Arc::new(move |ok: bool| metrics.credential_refresh(&integration, if ok { "ok" } else { "error" }))
    }

    pub fn credential_refresh(&self, integration: &str, outcome: &str) {
        self.count(CREDENTIAL_REFRESHES, &[("integration", integration), ("outcome", outcome)]);
    }

    /// Whether the shared store is connected (`mediagate_store_connected`).
    pub fn store_connected(&self, connected: bool) {
        if let Some(inner) = &self.inner {
            let gauge = inner.recorder.register_gauge(&Key::from_static_name(STORE_CONNECTED), &METADATA);
            gauge.set(if connected { 1.0 } else { 0.0 });
        }
    }

    /// One failed operation against the shared store (`mediagate_store_errors_total`).
    pub fn store_error(&self, operation: &str) {
        self.count(STORE_ERRORS, &[("operation", operation)]);
    }

    /// Registers and increments a counter: for rare events only (it builds the key).
    fn count(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        if let Some(inner) = &self.inner {
            inner.recorder.register_counter(&key(name, labels), &METADATA).increment(1);
        }
    }

    /// What a request records when its response body ends; `integration`
    /// is `None` when the request resolved none.
    pub fn request(&self, integration: Option<&str>) -> RequestMetrics {
        match &self.inner {
            Some(inner) => RequestMetrics(Some(inner.served(integration.unwrap_or("")))),
            None => RequestMetrics(None),
        }
    }

    /// What the storage client of `integration` records (its handles are
    /// registered here, once per client).
    pub fn upstream(&self, integration: &str) -> UpstreamMetrics {
        let Some(inner) = &self.inner else { return UpstreamMetrics::default() };
        let (r, i) = (&inner.recorder, ("integration", integration));
        UpstreamMetrics {
            integration: Arc::from(integration),
            ok: r.register_counter(&key(UPSTREAM_REQUESTS, &[i, ("outcome", "ok")]), &METADATA),
            error: r.register_counter(&key(UPSTREAM_REQUESTS, &[i, ("outcome", "error")]), &METADATA),
            duration: r.register_histogram(&key(UPSTREAM_DURATION, &[i]), &METADATA),
            metrics: self.clone(),
        }
    }

    /// Counts an open media connection until the returned guard is dropped.
    pub fn connection_opened(&self) -> ConnectionGuard {
        let gauge = match &self.inner {
            Some(inner) => inner.connections_open.clone(),
            None => Gauge::noop(),
        };
        gauge.increment(1.0);
        ConnectionGuard(gauge)
    }
}

impl Inner {
    /// The handles of the requests `integration` served, created on first use.
    fn served(&self, integration: &str) -> Arc<ServedHandles> {
        if let Some(h) = self.served.read().unwrap_or_else(PoisonError::into_inner).get(integration) {
            return h.clone();
        }
        let mut map = self.served.write().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(Arc::from(integration)).or_insert_with(|| {
            let (r, i) = (&self.recorder, ("integration", integration));
            Arc::new(ServedHandles {
                requests: STATUS_CLASSES
                    .map(|class| r.register_counter(&key(REQUESTS, &[i, ("status", class)]), &METADATA)),
                response_bytes: r.register_counter(&key(RESPONSE_BYTES, &[i]), &METADATA),
                duration: self.request_duration.clone(),
            })
        });
        entry.clone()
    }
}

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|&(k, v)| Label::new(k, v.to_owned())).collect();
    Key::from_parts(name, labels)
}

/// Folds histogram samples every [`UPKEEP_PERIOD`] while the metrics live.
async fn upkeep(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(UPKEEP_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match inner.upgrade() {
            Some(inner) => inner.handle.run_upkeep(),
            None => return,
        }
    }
}

/// The metrics of one request, recorded once when its response body ends
/// (by [`crate::logging::LoggedBody`], which counts the bytes sent).
#[derive(Default)]
pub struct RequestMetrics(Option<Arc<ServedHandles>>);

impl RequestMetrics {
    /// Records the response: its status, the body bytes sent, how long it took.
    pub fn record(&self, status: u16, bytes: u64, elapsed: Duration) {
        if let Some(h) = &self.0 {
            h.requests[status_class(status)].increment(1);
            h.response_bytes.increment(bytes);
            h.duration.record(elapsed.as_secs_f64());
        }
    }
}

/// The index in [`STATUS_CLASSES`] of a status (out-of-range ones clamp).
fn status_class(status: u16) -> usize {
    usize::from(status / 100).clamp(2, 5) - 2
}

/// What an integration's storage client records: each request to the
/// storage (retries included in one) once, with its outcome and its time to
/// the response head, and each failure once, with its code.
#[derive(Clone)]
pub struct UpstreamMetrics {
    integration: Arc<str>,
    ok: Counter,
    error: Counter,
    duration: Histogram,
    /// For the error counters, registered per code when one happens.
    metrics: Metrics,
}

impl Default for UpstreamMetrics {
    /// Records nothing.
    fn default() -> Self {
        UpstreamMetrics {
            integration: Arc::from(""),
            ok: Counter::noop(),
            error: Counter::noop(),
            duration: Histogram::noop(),
            metrics: Metrics::disabled(),
        }
    }
}

impl UpstreamMetrics {
    /// The storage answered with `status` after `elapsed`. An answer of 400
    /// or more is an `error`; its code is recorded by [`Self::error_code`]
    /// once its body has been read.
    pub fn answered(&self, status: http::StatusCode, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
        if status.as_u16() < 400 { &self.ok } else { &self.error }.increment(1);
    }

    /// No answer came after `elapsed`: `code` is `timeout`, `dns`, `tls` or `connect`.
    pub fn failed(&self, code: &str, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
        self.error.increment(1);
        self.error_code(code);
    }

    /// Counts one storage error with its code (the storage's own, e.g.
    /// `SignatureDoesNotMatch`; a code that is not a plain word becomes `other`).
    pub fn error_code(&self, code: &str) {
        let plain = !code.is_empty()
            && code.len() <= 64
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        let code = if plain { code } else { "other" };
        self.metrics.count(UPSTREAM_ERRORS, &[("integration", &self.integration), ("code", code)]);
    }
}

/// Keeps `mediagate_connections_open` one higher while it lives.
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// The value of the sample `name{labels}` in `text` (labels in any order).
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        want.sort();
        text.lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, got) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?.split(',').map(str::to_owned).collect::<Vec<_>>()),
                None => (series, Vec::new()),
            };
            let mut got = got;
            got.sort();
            (n == name && got == want).then(|| value.parse().ok()).flatten()
        })
    }

    /// Metrics with one of each event recorded, a cache with counts, and
    /// one connection still open.
    fn recorded() -> (Metrics, Cache, ConnectionGuard) {
        let m = Metrics::new();
        m.request(Some("media")).record(200, 16384, Duration::from_millis(3));
        m.request(Some("media")).record(206, 100, Duration::from_millis(2));
        m.request(None).record(404, 50, Duration::from_micros(200));
        let up = m.upstream("media");
        up.answered(http::StatusCode::OK, Duration::from_millis(20));
        up.answered(http::StatusCode::FORBIDDEN, Duration::from_millis(15));
        up.error_code("SignatureDoesNotMatch");
        up.failed("timeout", Duration::from_secs(30));
        m.credential_refresh("azure-sp", "ok");
        m.config_reload("error");
        m.store_connected(true);
        m.store_error("connect");
        let open = m.connection_opened();
        drop(m.connection_opened());
        let cache = Cache::new(&crate::config::CacheConfig::default());
        cache.stats().hits.fetch_add(7, Ordering::Relaxed);
        cache.stats().misses.fetch_add(2, Ordering::Relaxed);
        cache.stats().evictions.fetch_add(1, Ordering::Relaxed);
        cache.stats().coalesced_waits.fetch_add(4, Ordering::Relaxed);
        (m, cache, open)
    }

    #[tokio::test]
    async fn every_contract_name_is_rendered_with_its_type_and_help_after_recording() {
        let (m, cache, _open) = recorded();
        let text = m.render_with(Some(&cache));
        for &(name, kind, _, _) in CATALOGUE {
            let kind = match kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram => "histogram",
            };
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "no TYPE line for {name}:\n{text}");
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP line for {name}:\n{text}");
        }
    }

    #[tokio::test]
    async fn requests_and_bytes_are_counted_by_integration_and_status_class() {
        let (m, _, _open) = recorded();
        let text = m.render();
        assert_eq!(sample(&text, REQUESTS, &[("integration", "media"), ("status", "2xx")]), Some(2.0), "{text}");
        assert_eq!(sample(&text, REQUESTS, &[("integration", ""), ("status", "4xx")]), Some(1.0), "{text}");
        assert_eq!(sample(&text, REQUESTS, &[("integration", "media"), ("status", "5xx")]), Some(0.0), "{text}");
        assert_eq!(sample(&text, RESPONSE_BYTES, &[("integration", "media")]), Some(16484.0), "{text}");
        assert_eq!(sample(&text, RESPONSE_BYTES, &[("integration", "")]), Some(50.0), "{text}");
        assert_eq!(sample(&text, &format!("{REQUEST_DURATION}_count"), &[]), Some(3.0), "{text}");
    }

    #[tokio::test]
    async fn upstream_requests_errors_and_other_events_carry_their_labels() {
        let (m, _, _open) = recorded();
        let text = m.render();
        let media = ("integration", "media");
        assert_eq!(sample(&text, UPSTREAM_REQUESTS, &[media, ("outcome", "ok")]), Some(1.0), "{text}");
        assert_eq!(sample(&text, UPSTREAM_REQUESTS, &[media, ("outcome", "error")]), Some(2.0), "{text}");
        assert_eq!(sample(&text, UPSTREAM_ERRORS, &[media, ("code", "SignatureDoesNotMatch")]), Some(1.0));
        assert_eq!(sample(&text, UPSTREAM_ERRORS, &[media, ("code", "timeout")]), Some(1.0), "{text}");
        assert_eq!(sample(&text, &format!("{UPSTREAM_DURATION}_count"), &[media]), Some(3.0), "{text}");
        let refreshes = &[("integration", "azure-sp"), ("outcome", "ok")];
        assert_eq!(sample(&text, CREDENTIAL_REFRESHES, refreshes), Some(1.0), "{text}");
        assert_eq!(sample(&text, CONFIG_RELOADS, &[("outcome", "error")]), Some(1.0), "{text}");
        assert_eq!(sample(&text, CONFIG_RELOADS, &[("outcome", "ok")]), Some(0.0), "{text}");
        assert_eq!(sample(&text, CONNECTIONS_OPEN, &[]), Some(1.0), "{text}");
    }

    #[tokio::test]
    async fn the_cache_figures_are_read_from_the_cache_at_render_time() {
        let (m, cache, _open) = recorded();
        let before = m.render();
        assert_eq!(sample(&before, CACHE_HITS, &[]), Some(0.0), "{before}");
        let text = m.render_with(Some(&cache));
        assert_eq!(sample(&text, CACHE_HITS, &[]), Some(7.0), "{text}");
        assert_eq!(sample(&text, CACHE_MISSES, &[]), Some(2.0), "{text}");
        assert_eq!(sample(&text, CACHE_EVICTIONS, &[]), Some(1.0), "{text}");
        assert_eq!(sample(&text, CACHE_COALESCED, &[]), Some(4.0), "{text}");
        assert_eq!(sample(&text, CACHE_BYTES, &[]), Some(cache.weighted_size() as f64), "{text}");
        cache.stats().hits.fetch_add(1, Ordering::Relaxed);
        assert_eq!(sample(&m.render_with(Some(&cache)), CACHE_HITS, &[]), Some(8.0));
    }

    #[tokio::test]
    async fn both_histograms_have_buckets_from_a_millisecond_to_a_minute_a_sum_and_a_count() {
        let (m, _, _open) = recorded();
        let text = m.render();
        for (name, labels) in [(REQUEST_DURATION, vec![]), (UPSTREAM_DURATION, vec![("integration", "media")])] {
            let bucket = format!("{name}_bucket");
            for (le, want) in [("0.001", 1.0), ("0.005", 3.0), ("60", 3.0), ("+Inf", 3.0)] {
                let mut l = labels.clone();
                l.push(("le", le));
                let got = sample(&text, &bucket, &l);
                if name == REQUEST_DURATION {
                    assert_eq!(got, Some(want), "{bucket} le={le}:\n{text}");
                } else {
                    assert!(got.is_some(), "{bucket} le={le}:\n{text}");
                }
            }
            assert!(sample(&text, &format!("{name}_sum"), &labels).is_some_and(|s| s > 0.0), "{name}_sum:\n{text}");
            assert!(sample(&text, &format!("{name}_count"), &labels).is_some(), "{name}_count:\n{text}");
        }
        assert_eq!(
            sample(&text, &format!("{UPSTREAM_DURATION}_bucket"), &[("integration", "media"), ("le", "30")]),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, &format!("{UPSTREAM_DURATION}_bucket"), &[("integration", "media"), ("le", "10")]),
            Some(2.0)
        );
    }

    #[tokio::test]
    async fn a_closed_connection_is_no_longer_counted_open() {
        let m = Metrics::new();
        let a = m.connection_opened();
        let b = m.connection_opened();
        assert_eq!(sample(&m.render(), CONNECTIONS_OPEN, &[]), Some(2.0));
        drop(a);
        drop(b);
        assert_eq!(sample(&m.render(), CONNECTIONS_OPEN, &[]), Some(0.0));
    }

    #[test]
    fn an_error_code_that_is_not_a_plain_word_is_counted_as_other() {
        let m = Metrics::new();
        let up = m.upstream("s3");
        for code in ["bad code", "", "x\"}y", &"A".repeat(65)] {
            up.error_code(code);
        }
        up.error_code("http_404");
        let text = m.render();
        assert_eq!(sample(&text, UPSTREAM_ERRORS, &[("integration", "s3"), ("code", "other")]), Some(4.0), "{text}");
        assert_eq!(sample(&text, UPSTREAM_ERRORS, &[("integration", "s3"), ("code", "http_404")]), Some(1.0));
    }

    #[test]
    fn an_integration_registers_its_request_handles_once() {
        let m = Metrics::new();
        let inner = m.inner.as_ref().expect("enabled");
        assert!(Arc::ptr_eq(&inner.served("media"), &inner.served("media")));
        assert!(!Arc::ptr_eq(&inner.served("media"), &inner.served("other")));
    }

    #[test]
    fn disabled_metrics_record_nothing_and_render_nothing() {
        let m = Metrics::disabled();
        m.request(Some("media")).record(200, 10, Duration::from_millis(1));
        m.upstream("media").failed("dns", Duration::from_millis(1));
        m.config_reload("ok");
        m.credential_refresh("media", "error");
        drop(m.connection_opened());
        UpstreamMetrics::default().answered(http::StatusCode::OK, Duration::ZERO);
        RequestMetrics::default().record(500, 1, Duration::ZERO);
        m.run_upkeep();
        assert_eq!(m.render(), "");
        assert_eq!(Metrics::default().render(), "");
    }

    #[test]
    fn two_metrics_values_do_not_share_anything() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.config_reload("ok");
        assert_eq!(sample(&a.render(), CONFIG_RELOADS, &[("outcome", "ok")]), Some(1.0));
        assert_eq!(sample(&b.render(), CONFIG_RELOADS, &[("outcome", "ok")]), Some(0.0));
    }

    #[test]
    fn statuses_map_to_their_class() {
        for (status, class) in [(200, "2xx"), (206, "2xx"), (304, "3xx"), (416, "4xx"), (504, "5xx")] {
            assert_eq!(STATUS_CLASSES[status_class(status)], class, "{status}");
        }
        assert_eq!(STATUS_CLASSES[status_class(101)], "2xx");
        assert_eq!(STATUS_CLASSES[status_class(999)], "5xx");
    }
}
