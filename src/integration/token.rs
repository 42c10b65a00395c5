//! A refreshing cache of one expiring credential (AWS temporary keys, an
//! Azure bearer token), shared by every request of an integration
//! (CONTRACT.md section 2, "Temporary credentials are refreshed ahead of
//! expiry ... one refresh at a time").
//!
//! The life cycle:
//! - [`TokenCache::get`] returns the current credential at once while it is
//!   valid. At its refresh point ([`refresh_at`]: 5 minutes before expiry, or
//!   half the lifetime when that is shorter) a timer task starts one refresh
//!   in the background (so does the first caller past that point, should the
//!   timer be late); callers keep getting the current credential meanwhile.
//!   The timer holds the cache weakly: a dropped cache stops refreshing.
//! - One refresh at a time: callers that find no valid credential wait for
//!   the running fetch instead of starting their own.
//! - A failed refresh keeps the still-valid credential; the next attempt
//!   waits [`retry_wait`] (exponential backoff with full jitter, the ceilings
//!   of [`RetryPolicy`]), and is made by the timer while the credential is valid.
//! - With no valid credential left, `get` fetches (once for all waiters) and
//!   returns the fetch's error to every waiter; within the backoff after a
//!   failure, that error is returned at once, so a dead identity endpoint is
//!   not asked once per request.
//!
//! The fetch runs in a spawned task, so a cancelled caller never cancels it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::integration::retry::RetryPolicy;

/// A credential and when it stops being valid (`None`: never).
#[derive(Debug, Clone)]
pub struct Expiring<T> {
    pub value: T,
    pub expires: Option<SystemTime>,
}

/// How a [`TokenCache`] gets a fresh credential.
pub type Fetch<T> = Arc<dyn Fn() -> FetchFuture<T> + Send + Sync>;

/// One fetch of a credential.
pub type FetchFuture<T> = Pin<Box<dyn Future<Output = Result<Expiring<T>>> + Send>>;

/// The most a refresh runs ahead of expiry.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// The backoff between failed refreshes: 1 s, doubling, at most 60 s (before jitter).
pub const REFRESH_BACKOFF: RetryPolicy = RetryPolicy {
    attempts: u32::MAX,
    base: Duration::from_secs(1),
    cap: Duration::from_secs(60),
    budget: Duration::MAX,
};

/// When a credential fetched at `fetched` and expiring at `expires` should
/// be refreshed: [`REFRESH_AHEAD`] before expiry, or at half its lifetime
/// when that comes first (a credential fetched after its expiry: at once).
pub fn refresh_at(fetched: SystemTime, expires: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(fetched).unwrap_or_default();
    expires - REFRESH_AHEAD.min(lifetime / 2)
}

/// The wait after the `failures`-th failed refresh in a row (1 for the
/// first): uniform in `[0, ceiling)` (full jitter, `unit` in `[0, 1)`), the
/// ceiling doubling from 1 s up to 60 s, and never beyond half of what is
/// left of the current credential's life (`left`), so a short-lived
/// credential is retried while it still serves.
pub fn retry_wait(failures: u32, unit: f64, left: Option<Duration>) -> Duration {
    let ceiling = REFRESH_BACKOFF.ceiling(failures.max(1));
    let ceiling = left.map_or(ceiling, |left| ceiling.min(left / 2));
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

struct State<T> {
    current: Option<Expiring<T>>,
    /// When `current` should be refreshed.
    refresh_at: Option<SystemTime>,
    refreshing: bool,
    /// The last fetch's error while the following ones are held back.
    last_error: Option<Error>,
    failures: u32,
    /// No new fetch before this time (backoff after a failure).
    not_before: Option<SystemTime>,
}

/// What a caller of [`TokenCache::get`] does next, decided under the lock.
enum Step<T> {
    Ready(T),
    Fail(Error),
    Wait(watch::Receiver<u64>),
}

/// One expiring credential, refreshed ahead of expiry (see the module doc).
pub struct TokenCache<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    fetch: Fetch<T>,
    /// Bumped after each fetch, for the callers waiting for it.
    done: watch::Sender<u64>,
    /// Told the outcome of each fetch (`true`: ok), for the metrics.
    observer: std::sync::OnceLock<Observer>,
}

/// Hears the outcome of each fetch.
pub type Observer = Arc<dyn Fn(bool) + Send + Sync>;

impl<T> Clone for TokenCache<T> {
    fn clone(&self) -> Self {
        TokenCache { inner: self.inner.clone() }
    }
}

impl<T: Clone + Send + Sync + 'static> TokenCache<T> {
    /// A cache that calls `fetch` for its first credential and each refresh.
    pub fn new(fetch: Fetch<T>) -> Self {
        let state = State {
            current: None,
            refresh_at: None,
            refreshing: false,
            last_error: None,
            failures: 0,
            not_before: None,
        };
        let done = watch::channel(0).0;
        TokenCache { inner: Arc::new(Inner { state: Mutex::new(state), fetch, done, observer: Default::default() }) }
    }

    /// Tells `observer` the outcome of every fetch from now on (the first observer set stays).
    pub fn observe(&self, observer: Observer) {
        let _ = self.inner.observer.set(observer);
    }

    /// The current credential, fetching one first when none is valid.
    ///
    /// Errors: the fetch's error, when no valid credential remains.
    pub async fn get(&self) -> Result<T> {
        loop {
            match self.inner.step(true) {
                Step::Ready(v) => return Ok(v),
                Step::Fail(e) => return Err(e),
                Step::Wait(mut rx) => {
                    // The sender lives as long as `self`: `changed` fails only if it is gone.
                    if rx.changed().await.is_err() {
                        return Err(Error::internal("the credential cache was dropped during a refresh"));
                    }
                }
            }
        }
    }

    /// The expiry of the credential held now (`None`: none held, or it never expires).
    pub fn expires(&self) -> Option<SystemTime> {
        let state = self.inner.lock();
        state.current.as_ref().and_then(|c| c.expires)
    }
}

impl<T: Clone + Send + Sync + 'static> Inner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a caller does next; `caller` false for the background timer,
    /// which only starts a refresh that is due while the credential is valid.
    fn step(self: &Arc<Self>, caller: bool) -> Step<T> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let may_fetch = !state.refreshing && state.not_before.is_none_or(|t| now >= t);
        let valid = state.current.as_ref().filter(|c| c.expires.is_none_or(|e| e > now)).map(|c| c.value.clone());
        if let Some(value) = valid {
            if may_fetch && state.refresh_at.is_some_and(|t| now >= t) {
                self.start_fetch(&mut state);
            }
            return Step::Ready(value);
        }
        if state.refreshing || !caller {
            return Step::Wait(self.done.subscribe());
        }
        if !may_fetch && let Some(e) = &state.last_error {
            return Step::Fail(e.share());
        }
        let rx = self.done.subscribe();
        self.start_fetch(&mut state);
        Step::Wait(rx)
    }

    fn start_fetch(self: &Arc<Self>, state: &mut State<T>) {
        state.refreshing = true;
        let inner = self.clone();
        tokio::spawn(async move {
            let result = (inner.fetch)().await;
            let now = SystemTime::now();
            let result = result.and_then(|fresh| match fresh.expires {
                // Already expired (a clock far off): an error, else every caller would fetch again at once.
                Some(e) if e <= now => Err(Error::new(
                    crate::error::Kind::UpstreamError,
                    "the identity endpoint issued credentials that had expired already: check the clock",
                )),
                _ => Ok(fresh),
            });
            if let Some(observe) = inner.observer.get() {
                observe(result.is_ok());
            }
            let wake = {
                let mut state = inner.lock();
                state.refreshing = false;
                match result {
                    Ok(fresh) => {
                        state.refresh_at = fresh.expires.map(|e| refresh_at(now, e));
                        state.current = Some(fresh);
                        state.failures = 0;
                        state.last_error = None;
                        state.not_before = None;
                        state.refresh_at
                    }
                    Err(e) => {
                        state.failures = state.failures.saturating_add(1);
                        let expires = state.current.as_ref().and_then(|c| c.expires);
                        let left = expires.map(|e| e.duration_since(now).unwrap_or_default());
                        let not_before = now + retry_wait(state.failures, fastrand::f64(), left);
                        state.not_before = Some(not_before);
                        tracing::warn!(failures = state.failures, error = %e.message, "credential refresh failed");
                        state.last_error = Some(e);
                        // Retried in the background only while a valid credential remains.
                        expires.filter(|e| *e > not_before).map(|_| not_before)
                    }
                }
            };
            inner.done.send_modify(|n| *n += 1);
            if let Some(wake) = wake {
                Inner::wake_at(Arc::downgrade(&inner), wake);
            }
        });
    }

    /// Starts the refresh due at `at` without waiting for a caller, unless
    /// the cache is gone by then (an integration replaced or removed).
    fn wake_at(cache: Weak<Self>, at: SystemTime) {
        tokio::spawn(async move {
            tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await;
            if let Some(inner) = cache.upgrade() {
                let _ = inner.step(false);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::error::Kind;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_refresh_is_due_five_minutes_ahead_or_at_half_the_lifetime() {
        let table = [
            // (lifetime, refresh after)
            (secs(3600), secs(3300)),
            (secs(900), secs(600)),
            (secs(600), secs(300)),
            (secs(300), secs(150)),
            (secs(2), secs(1)),
            (secs(0), secs(0)),
        ];
        for (lifetime, after) in table {
            assert_eq!(refresh_at(T0, T0 + lifetime), T0 + after, "lifetime {lifetime:?}");
        }
        // Fetched after it expired already: due at once.
        assert_eq!(refresh_at(T0 + secs(10), T0 + secs(5)), T0 + secs(5));
    }

    #[test]
    fn the_backoff_doubles_up_to_a_minute_with_full_jitter_and_within_half_the_time_left() {
        let table = [
            // (failures, unit, left, wait)
            (1, 0.999_999, None, Duration::from_micros(999_999)),
            (2, 0.5, None, secs(1)),
            (3, 0.5, None, secs(2)),
            (7, 0.5, None, secs(30)),
            (8, 0.5, None, secs(30)),
            (40, 0.5, None, secs(30)),
            (0, 0.0, None, secs(0)),
            (8, 0.5, Some(secs(20)), secs(5)),
            (8, 0.5, Some(secs(0)), secs(0)),
        ];
        for (failures, unit, left, wait) in table {
            assert_eq!(retry_wait(failures, unit, left), wait, "{failures} failures, unit {unit}, left {left:?}");
        }
    }

    /// A fetch counting its calls; each answer comes from `answer(call number)`.
    fn counting(
        answer: impl Fn(u32) -> Result<Expiring<u32>> + Send + Sync + 'static,
        delay: Duration,
    ) -> (TokenCache<u32>, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let (c, answer) = (calls.clone(), Arc::new(answer));
        let fetch: Fetch<u32> = Arc::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            let answer = answer.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer(n)
            })
        });
        (TokenCache::new(fetch), calls)
    }

    fn valid_for(value: u32, d: Duration) -> Result<Expiring<u32>> {
        Ok(Expiring { value, expires: Some(SystemTime::now() + d) })
    }

    #[tokio::test]
    async fn two_hundred_concurrent_callers_without_a_credential_cause_one_fetch() {
        let (cache, calls) = counting(|n| valid_for(n, secs(3600)), Duration::from_millis(50));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                tokio::spawn({
                    let c = cache.clone();
                    async move { c.get().await }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn two_hundred_callers_during_a_refresh_get_the_old_credential_and_cause_one_fetch() {
        // The first credential is due for refresh at once (lifetime 2 s, refresh at 1 s).
        let (cache, calls) =
            counting(|n| valid_for(n, secs(if n == 1 { 2 } else { 3600 })), Duration::from_millis(300));
        assert_eq!(cache.get().await.unwrap(), 1);
        let mut rx = cache.inner.done.subscribe();
        tokio::time::sleep(Duration::from_millis(1100)).await; // past the refresh point, before expiry
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                tokio::spawn({
                    let c = cache.clone();
                    async move { c.get().await }
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 1, "served without waiting for the refresh");
        }
        rx.changed().await.unwrap();
        assert_eq!(cache.get().await.unwrap(), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the first fetch and exactly one refresh");
    }

    #[tokio::test]
    async fn a_failing_refresh_keeps_serving_the_valid_credential_then_recovers() {
        // Call 1 gives a 4 s credential; calls 2 and 3 fail; call 4 succeeds.
        let (cache, calls) = counting(
            |n| match n {
                1 => valid_for(1, secs(4)),
                2 | 3 => Err(Error::new(Kind::UpstreamError, "STS down")),
                _ => valid_for(n, secs(3600)),
            },
            Duration::ZERO,
        );
        assert_eq!(cache.get().await.unwrap(), 1);
        let mut rx = cache.inner.done.subscribe();
        let mut served_new = false;
        for _ in 0..400 {
            match cache.get().await.unwrap() {
                1 => {}
                _ => {
                    served_new = true;
                    break;
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
        }
        assert!(served_new, "a refresh succeeded before the old credential expired");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn without_a_valid_credential_every_waiter_gets_the_fetch_error_and_it_is_not_fetched_again_at_once() {
        let (cache, calls) = counting(
            |_| Err(Error::new(Kind::UpstreamDenied, "STS refused: AccessDenied: no")),
            Duration::from_millis(20),
        );
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                tokio::spawn({
                    let c = cache.clone();
                    async move { c.get().await }
                })
            })
            .collect();
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert_eq!(e.kind, Kind::UpstreamDenied);
            assert!(e.message.contains("STS refused"), "{}", e.message);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Within the backoff: the same error, no new fetch (the first wait is at most 1 s;
        // this check runs well within it only when the jitter drew more than a few ms, so
        // it asks that no more than one further fetch happened).
        let _ = cache.get().await.unwrap_err();
        assert!(calls.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test]
    async fn a_credential_issued_already_expired_is_an_error_not_a_fetch_loop() {
        let (cache, calls) =
            counting(|_| Ok(Expiring { value: 1, expires: Some(SystemTime::now() - secs(1)) }), Duration::ZERO);
        let e = cache.get().await.unwrap_err();
        assert!(e.message.contains("expired already"), "{}", e.message);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_idle_cache_refreshes_in_the_background_and_a_dropped_one_stops() {
        let (cache, calls) = counting(|n| valid_for(n, secs(if n == 1 { 2 } else { 3600 })), Duration::ZERO);
        assert_eq!(cache.get().await.unwrap(), 1);
        let mut rx = cache.inner.done.subscribe();
        // No caller: the timer refreshes at half the 2 s lifetime.
        tokio::time::timeout(secs(3), rx.changed()).await.expect("a background refresh").unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.get().await.unwrap(), 2);

        let (cache, calls) = counting(|n| valid_for(n, secs(1)), Duration::ZERO);
        assert_eq!(cache.get().await.unwrap(), 1);
        let rx = cache.inner.done.subscribe();
        drop(cache);
        tokio::time::sleep(Duration::from_millis(800)).await; // past the refresh point (0.5 s)
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a dropped cache asks nothing");
        drop(rx);
    }

    #[tokio::test]
    async fn a_credential_that_never_expires_is_fetched_once() {
        let (cache, calls) = counting(|n| Ok(Expiring { value: n, expires: None }), Duration::ZERO);
        for _ in 0..10 {
            assert_eq!(cache.get().await.unwrap(), 1);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.expires(), None);
    }
}
