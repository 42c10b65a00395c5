//! When and how long to wait before asking the storage again: the retry
//! policy of [`UpstreamClient::send`](crate::integration::upstream::UpstreamClient::send),
//! pure so its schedule can be table-tested.
//!
//! A request is retried only while nothing of its answer has reached the
//! client: the retry happens before the response head is handed on, so a
//! failure in the middle of a body is never retried (it aborts the client's
//! connection, and the cache keeps nothing of it). Only `GET` and `HEAD`
//! (idempotent, RFC 9110 section 9.2.2) are retried, and only for answers
//! that say "try again": 429, 500, 502, 503, 504 (S3's `SlowDown` and Azure's
//! `ServerBusy` are 503s), a refused connection, and a connection closed or
//! reset before any answer. DNS and TLS failures and timeouts are not retried.
//!
//! The bound: at most [`RetryPolicy::attempts`] attempts, waits with
//! exponential backoff and full jitter (AWS Architecture Blog, "Exponential
//! Backoff And Jitter", 2015), and all waits together within
//! [`RetryPolicy::budget`]; a `Retry-After` (RFC 9110 section 10.2.3) longer
//! than what is left of the budget ends the retries. The whole exchange,
//! retries included, stays within `first_byte_timeout`.

use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};

/// How often and how long the upstream client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The ceiling of the first wait; each further wait doubles it.
    pub base: Duration,
    /// The largest ceiling of one wait.
    pub cap: Duration,
    /// All waits of one request together.
    pub budget: Duration,
}

impl RetryPolicy {
    /// 3 attempts; waits of at most 200 ms then 400 ms (full jitter); at most
    /// 2 s of waiting in all, so a `Retry-After` of up to 2 s is honoured.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(200),
        cap: Duration::from_secs(1),
        budget: Duration::from_secs(2),
    };

    /// The default policy, its budget at most a quarter of `first_byte_timeout`
    /// (which bounds the whole exchange, retries included).
    pub fn for_first_byte_timeout(first_byte_timeout: Duration) -> RetryPolicy {
        let d = RetryPolicy::DEFAULT;
        RetryPolicy { budget: d.budget.min(first_byte_timeout / 4), ..d }
    }

    /// The ceiling of the wait before retry `n` (1 for the first retry):
    /// `min(cap, base × 2^(n-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before the next attempt, after `attempts_made` attempts
    /// failed in a retryable way and `waited` was spent waiting already;
    /// `None` to give up. `unit` is a random number in `[0, 1)` (full jitter:
    /// the wait is uniform between zero and the ceiling); a `Retry-After` is a
    /// floor for the wait.
    pub fn next_wait(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
        waited: Duration,
        unit: f64,
    ) -> Option<Duration> {
        if attempts_made >= self.attempts {
            return None;
        }
        let jitter = self.ceiling(attempts_made).mul_f64(unit.clamp(0.0, 1.0));
        let wait = retry_after.map_or(jitter, |r| r.max(jitter));
        let left = self.budget.saturating_sub(waited);
        (wait <= left).then_some(wait)
    }
}

/// Whether a storage status means "try again later": 429 (RFC 6585
/// section 4), 500, 502, 503 and 504 (RFC 9110 section 15.6).
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// A `Retry-After` value (RFC 9110 section 10.2.3): delay-seconds or an
/// HTTP-date, as a wait from `now`. A date in the past is no wait.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_wait_ceiling_doubles_from_the_base_up_to_the_cap() {
        let p = RetryPolicy::DEFAULT;
        let table = [(1, 200), (2, 400), (3, 800), (4, 1000), (5, 1000), (40, 1000)];
        for (retry, ms) in table {
            assert_eq!(p.ceiling(retry), MS(ms), "retry {retry}");
        }
    }

    /// Attempts made, `Retry-After` (ms), waited so far (ms), jitter unit -> the wait (ms).
    type Row = (u32, Option<u64>, u64, f64, Option<u64>);

    #[test]
    fn the_default_schedule_is_two_jittered_waits_then_giving_up() {
        let p = RetryPolicy::DEFAULT;
        let table: [Row; 11] = [
            (1, None, 0, 0.0, Some(0)),
            (1, None, 0, 0.5, Some(100)),
            (1, None, 0, 0.999_999, Some(199)),
            (2, None, 150, 0.5, Some(200)),
            (2, None, 150, 1.0, Some(400)),
            (3, None, 300, 0.5, None), // attempts used up
            (1, Some(1_000), 0, 0.5, Some(1_000)),
            (1, Some(2_000), 0, 0.0, Some(2_000)),
            (1, Some(3_600_000), 0, 0.5, None), // longer than the budget
            (2, Some(1_000), 1_500, 0.0, None), // longer than what is left
            (2, None, 1_990, 0.5, None),        // jitter longer than what is left
        ];
        for (made, retry_after, waited, unit, expected) in table {
            let got = p.next_wait(made, retry_after.map(MS), MS(waited), unit);
            let got_ms = got.map(|d| d.as_millis() as u64);
            assert_eq!(
                got_ms, expected,
                "after {made} attempts, Retry-After {retry_after:?}, waited {waited} ms, unit {unit}"
            );
        }
    }

    #[test]
    fn every_wait_of_a_whole_schedule_fits_the_budget() {
        let p = RetryPolicy::DEFAULT;
        for unit in [0.0, 0.3, 0.7, 0.999] {
            let mut waited = Duration::ZERO;
            let mut made = 1;
            while let Some(w) = p.next_wait(made, None, waited, unit) {
                waited += w;
                made += 1;
            }
            assert_eq!(made, p.attempts, "unit {unit}");
            assert!(waited <= p.budget, "unit {unit}: waited {waited:?}");
        }
    }

    #[test]
    fn the_budget_is_at_most_a_quarter_of_the_first_byte_timeout() {
        assert_eq!(RetryPolicy::for_first_byte_timeout(Duration::from_secs(30)).budget, Duration::from_secs(2));
        assert_eq!(RetryPolicy::for_first_byte_timeout(Duration::from_secs(2)).budget, MS(500));
    }

    #[test]
    fn only_try_again_statuses_are_retryable() {
        let table = [
            (429, true),
            (500, true),
            (502, true),
            (503, true),
            (504, true),
            (200, false),
            (206, false),
            (304, false),
            (400, false),
            (403, false),
            (404, false),
            (412, false),
            (416, false),
            (501, false),
        ];
        for (code, retryable) in table {
            assert_eq!(is_retryable_status(StatusCode::from_u16(code).unwrap()), retryable, "{code}");
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 16:00:00 GMT").unwrap();
        let table = [
            ("0", Some(0)),
            ("3", Some(3_000)),
            (" 120 ", Some(120_000)),
            ("Wed, 02 Dec 2026 16:00:05 GMT", Some(5_000)),
            ("Wed, 02 Dec 2026 15:00:00 GMT", Some(0)),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (text, expected) in table {
            let got = parse_retry_after(&HeaderValue::from_str(text).unwrap(), now).map(|d| d.as_millis() as u64);
            assert_eq!(got, expected, "{text:?}");
        }
    }
}
