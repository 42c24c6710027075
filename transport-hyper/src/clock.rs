//! Where the driver gets the time and how it waits: the two things the core asks for.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azmi_core::time::OffsetDateTime;

/// The future a [`Clock`] returns from [`Clock::sleep`].
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The driver's source of time and way of waiting.
///
/// Implementations must not block the calling thread: `sleep` returns a future that completes
/// when the time has passed.
///
/// ```
/// use std::time::Duration;
/// use azmi_core::time::OffsetDateTime;
/// use azmi_hyper::{Clock, SleepFuture};
///
/// /// A clock that never waits and is always at the same instant.
/// struct Frozen(OffsetDateTime);
///
/// impl Clock for Frozen {
///     fn now(&self) -> OffsetDateTime {
///         self.0
///     }
///     fn sleep(&self, _duration: Duration) -> SleepFuture<'_> {
///         Box::pin(std::future::ready(()))
///     }
/// }
/// # let _ = Frozen(OffsetDateTime::UNIX_EPOCH).now();
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> OffsetDateTime;

    /// The current wall-clock time as nanoseconds since the Unix epoch: what the cache's hit
    /// path reads. Override it when the clock can produce it more cheaply than [`Clock::now`].
    fn unix_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture<'_>;
}

/// The system clock, and `tokio::time::sleep` (so sleeping needs a tokio runtime with its time
/// driver enabled).
///
/// ```
/// use azmi_hyper::{Clock, SystemClock};
/// assert!(SystemClock.now().year() >= 2024);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix_nanos(&self) -> i128 {
        // The coarse clock: cheap enough for every cache hit (`azmi_support::time`).
        azmi_support::time::unix_nanos()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests whose sleeps complete at once and move its time forward instead, so retry
/// back-offs of tens of seconds take no real time. Real time still passes between calls.
///
/// ```
/// use std::time::Duration;
/// use azmi_hyper::{Clock, FastForwardClock};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = FastForwardClock::new();
/// let before = clock.now();
/// clock.sleep(Duration::from_secs(60)).await;
/// assert!(clock.now() - before >= azmi_core::time::Duration::seconds(60));
/// assert_eq!(clock.slept(), Duration::from_secs(60));
/// # });
/// ```
#[derive(Debug, Default)]
pub struct FastForwardClock {
    /// Nanoseconds skipped so far (584 years fit).
    skipped_nanos: AtomicU64,
}

impl FastForwardClock {
    /// A clock that starts at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The total time its sleeps (and [`FastForwardClock::advance`]) skipped.
    pub fn slept(&self) -> Duration {
        Duration::from_nanos(self.skipped_nanos.load(Ordering::Acquire))
    }

    /// Moves the clock forward without sleeping (to age cached tokens in tests).
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = azmi_hyper::FastForwardClock::new();
    /// clock.advance(Duration::from_secs(3600));
    /// assert_eq!(clock.slept(), Duration::from_secs(3600));
    /// ```
    pub fn advance(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // `fetch_update` with a saturating add: the closure always returns `Some`.
        let _ = self
            .skipped_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(nanos))
            });
    }
}

impl Clock for FastForwardClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.slept()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture<'_> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}
