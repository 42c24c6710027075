//! Retry policy: which statuses are retried, the delay schedule with jitter, server-requested
//! delays, and the total budget (PROTOCOL.md §1.8).
//!
//! Everything here is pure: the jitter comes from a seed the driver supplies, and time from the
//! `now` values it passes in.

use std::time::Duration;

use http::HeaderMap;
use time::OffsetDateTime;
use time::macros::format_description;

/// IMDS keeps retrying a 410 until at least this long after the first attempt (maintenance).
pub const IMDS_410_WINDOW: Duration = Duration::from_secs(70);

/// A retry policy.
///
/// ```
/// use azmi_core::RetryPolicy;
/// assert!(RetryPolicy::Imds.retries_status(410));
/// assert!(!RetryPolicy::Imds.retries_status(501));
/// assert!(!RetryPolicy::Standard.retries_status(404));
/// assert_eq!(RetryPolicy::Standard.budget().as_secs(), 30);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// IMDS and both Azure Arc legs: 404, 410, 429, 5xx except 501 and 505; 1-2-4-8-16 s;
    /// 5 retries; 410 retried for 70 s; 90 s budget.
    Imds,
    /// App Service, Cloud Shell, Azure ML, Service Fabric, Entra: 408, 429, 500, 502, 503, 504;
    /// 0.8-1.6-3.2 s; 3 retries; 30 s budget.
    Standard,
}

impl RetryPolicy {
    /// Whether a response with this status is retried.
    pub fn retries_status(self, status: u16) -> bool {
        match self {
            RetryPolicy::Imds => {
                matches!(status, 404 | 410 | 429)
                    || ((500..=599).contains(&status) && status != 501 && status != 505)
            }
            RetryPolicy::Standard => matches!(status, 408 | 429 | 500 | 502 | 503 | 504),
        }
    }

    /// How many retries are allowed (an IMDS 410 is limited by [`IMDS_410_WINDOW`] instead).
    pub fn max_retries(self) -> u32 {
        match self {
            RetryPolicy::Imds => 5,
            RetryPolicy::Standard => 3,
        }
    }

    /// The total time from the first attempt within which every retry must start.
    pub fn budget(self) -> Duration {
        match self {
            RetryPolicy::Imds => Duration::from_secs(90),
            RetryPolicy::Standard => Duration::from_secs(30),
        }
    }

    /// The delay before retry number `retry` (0-based), before jitter.
    ///
    /// ```
    /// use azmi_core::RetryPolicy;
    /// let imds: Vec<u64> = (0..7).map(|n| RetryPolicy::Imds.base_delay(n).as_secs()).collect();
    /// assert_eq!(imds, [1, 2, 4, 8, 16, 16, 16]);
    /// assert_eq!(RetryPolicy::Standard.base_delay(2).as_millis(), 3200);
    /// ```
    pub fn base_delay(self, retry: u32) -> Duration {
        let doubling = 1u64 << retry.min(10);
        match self {
            RetryPolicy::Imds => Duration::from_secs(doubling.min(16)),
            RetryPolicy::Standard => Duration::from_millis(800 * doubling.min(4)),
        }
    }
}

/// Deterministic jitter factors in [0.8, 1.2) drawn from the driver's seed (splitmix64), so a
/// flow's sleep sequence is a pure function of its inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A jitter source for this seed.
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// The next factor, in [0.8, 1.2).
    pub fn next_factor(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits → [0, 1).
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        0.8 + 0.4 * unit
    }
}

/// The delay a response asks for: `retry-after-ms`, then `x-ms-retry-after-ms` (milliseconds),
/// then `Retry-After` (seconds, or an HTTP-date minus `now`). Negative or unparseable values are
/// ignored; a date in the past means no delay.
///
/// ```
/// use azmi_core::retry::server_delay;
/// use http::HeaderMap;
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", "3".parse().unwrap());
/// h.insert("x-ms-retry-after-ms", "1500".parse().unwrap());
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// assert_eq!(server_delay(&h, now).unwrap().as_millis(), 1500);
/// ```
pub fn server_delay(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    header("retry-after-ms")
        .and_then(parse_millis)
        .or_else(|| header("x-ms-retry-after-ms").and_then(parse_millis))
        .or_else(|| header("retry-after").and_then(|v| parse_retry_after(v, now)))
}

fn parse_millis(value: &str) -> Option<Duration> {
    parse_count(value).map(Duration::from_millis)
}

fn parse_count(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Saturate absurdly long digit strings: they mean "longer than any budget" either way.
    Some(value.parse::<u64>().unwrap_or(u64::MAX / 1000))
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date (IMF-fixdate or asctime form)
/// from which `now` is subtracted. The obsolete RFC 850 form is not accepted (its two-digit year
/// is ambiguous); such a value is ignored and the computed delay applies.
///
/// ```
/// use azmi_core::retry::parse_retry_after;
/// use time::macros::datetime;
/// let now = datetime!(2026-11-26 10:00:00 UTC);
/// assert_eq!(parse_retry_after("120", now).unwrap().as_secs(), 120);
/// assert_eq!(parse_retry_after("Thu, 26 Nov 2026 10:00:07 GMT", now).unwrap().as_secs(), 7);
/// assert_eq!(parse_retry_after("Thu, 26 Nov 2026 09:00:00 GMT", now).unwrap().as_secs(), 0);
/// assert!(parse_retry_after("-1", now).is_none());
/// ```
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(secs) = parse_count(value) {
        return Some(Duration::from_secs(secs));
    }
    let imf_fixdate = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let asctime = format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    let at = time::PrimitiveDateTime::parse(value, imf_fixdate)
        .or_else(|_| time::PrimitiveDateTime::parse(value, asctime))
        .ok()?
        .assume_utc();
    let wait = at - now;
    Some(if wait.is_negative() {
        Duration::ZERO
    } else {
        wait.unsigned_abs()
    })
}

/// What went wrong with an attempt that the policy may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryable {
    /// A response with a retryable status, and the delay it asked for.
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's delay, from [`server_delay`].
        server_delay: Option<Duration>,
    },
    /// The attempt timed out or the connection broke before a complete response.
    Transient,
}

/// The verdict on a retryable outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Sleep this long, then send the next attempt.
    RetryAfter(Duration),
    /// Stop: the retry count or the 410 window is used up.
    Exhausted,
    /// Stop: waiting this long would overrun the budget.
    OverBudget(Duration),
}

/// Why a flow sleeps before its next attempt, for drivers that log ([`crate::TokenFlow::sleep_reason`]).
///
/// ```
/// use azmi_core::retry::SleepReason;
/// assert_eq!(SleepReason::ServerDelay { status: 429 }.to_string(), "the server asked for this wait after HTTP 429");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SleepReason {
    /// The response carried the wait (`Retry-After`, `x-ms-retry-after-ms`, PROTOCOL.md §1.8).
    ServerDelay {
        /// The status of the response.
        status: u16,
    },
    /// The policy's back-off after a retryable status that named no wait.
    Backoff {
        /// The status of the response.
        status: u16,
    },
    /// The policy's back-off after a transient transport failure (a timeout, a reset).
    TransientFailure,
}

impl SleepReason {
    /// A short stable name: `server_delay`, `backoff` or `transient_failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            SleepReason::ServerDelay { .. } => "server_delay",
            SleepReason::Backoff { .. } => "backoff",
            SleepReason::TransientFailure => "transient_failure",
        }
    }

    /// The status that caused the sleep, if a response did.
    pub fn status(self) -> Option<u16> {
        match self {
            SleepReason::ServerDelay { status } | SleepReason::Backoff { status } => Some(status),
            SleepReason::TransientFailure => None,
        }
    }
}

impl std::fmt::Display for SleepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SleepReason::ServerDelay { status } => {
                write!(f, "the server asked for this wait after HTTP {status}")
            }
            SleepReason::Backoff { status } => write!(f, "back-off after HTTP {status}"),
            SleepReason::TransientFailure => {
                f.write_str("back-off after a transient transport failure")
            }
        }
    }
}

/// The retry bookkeeping of one token acquisition: when it started, how many retries it made,
/// and its jitter source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryState {
    policy: RetryPolicy,
    first_attempt: Option<OffsetDateTime>,
    retries: u32,
    jitter: Jitter,
}

impl RetryState {
    /// Fresh bookkeeping for `policy` with the driver's jitter seed.
    pub fn new(policy: RetryPolicy, jitter_seed: u64) -> Self {
        RetryState {
            policy,
            first_attempt: None,
            retries: 0,
            jitter: Jitter::new(jitter_seed),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Records that an attempt is being sent at `now` (the first one starts the budget clock).
    pub fn on_attempt(&mut self, now: OffsetDateTime) {
        self.first_attempt.get_or_insert(now);
    }

    /// How many retries have been scheduled.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Decides what to do about a retryable outcome observed at `now`.
    ///
    /// ```
    /// use azmi_core::retry::{RetryDecision, RetryState, Retryable};
    /// use azmi_core::RetryPolicy;
    /// let now = time::OffsetDateTime::UNIX_EPOCH;
    /// let mut state = RetryState::new(RetryPolicy::Imds, 7);
    /// state.on_attempt(now);
    /// let d = state.decide(Retryable::Status { status: 429, server_delay: Some(std::time::Duration::from_secs(3)) }, now);
    /// assert_eq!(d, RetryDecision::RetryAfter(std::time::Duration::from_secs(3)));
    /// ```
    pub fn decide(&mut self, outcome: Retryable, now: OffsetDateTime) -> RetryDecision {
        let first = *self.first_attempt.get_or_insert(now);
        let elapsed = (now - first).try_into().unwrap_or(Duration::ZERO);
        let is_imds_410 = self.policy == RetryPolicy::Imds
            && matches!(outcome, Retryable::Status { status: 410, .. });
        if is_imds_410 {
            if elapsed >= IMDS_410_WINDOW {
                return RetryDecision::Exhausted;
            }
        } else if self.retries >= self.policy.max_retries() {
            return RetryDecision::Exhausted;
        }
        let server = match outcome {
            Retryable::Status { server_delay, .. } => server_delay,
            Retryable::Transient => None,
        };
        let wait = match server {
            Some(wait) if !is_imds_410 => wait,
            // An IMDS 410 has no retry count limit, only the 70 s window (PROTOCOL.md §1.8), so a
            // server delay shorter than the computed one (`Retry-After: 0`) would let the flow
            // resend at the same instant without end. It may lengthen the wait, never shorten it.
            Some(wait) => wait.max(self.computed_delay()),
            None => self.computed_delay(),
        };
        if elapsed.saturating_add(wait) > self.policy.budget() {
            return RetryDecision::OverBudget(wait);
        }
        self.retries += 1;
        RetryDecision::RetryAfter(wait)
    }

    /// The policy's delay for the next retry, with the next jitter factor.
    fn computed_delay(&mut self) -> Duration {
        self.policy
            .base_delay(self.retries)
            .mul_f64(self.jitter.next_factor())
    }
}
