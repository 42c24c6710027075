//! Where the driver gets the time and how it waits: the two things the core asks for.

use std::sync::Mutex;
use std::time::Duration;

use azmi_core::time::OffsetDateTime;

/// The driver's source of time and way of sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> OffsetDateTime;

    /// The current wall-clock time as nanoseconds since the Unix epoch: what the cache's hit
    /// path reads. Override it when the clock can produce it more cheaply than [`Clock::now`].
    fn unix_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
}

/// The system clock and `std::thread::sleep`.
///
/// ```
/// use azmi_ureq::{Clock, SystemClock};
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

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A clock for tests whose sleeps return at once and move its time forward instead, so retry
/// back-offs of tens of seconds take no real time. Real time still passes between calls.
///
/// ```
/// use std::time::Duration;
/// use azmi_ureq::{Clock, FastForwardClock};
/// let clock = FastForwardClock::new();
/// let before = clock.now();
/// clock.sleep(Duration::from_secs(60));
/// assert!(clock.now() - before >= azmi_core::time::Duration::seconds(60));
/// assert_eq!(clock.slept(), Duration::from_secs(60));
/// ```
#[derive(Debug, Default)]
pub struct FastForwardClock {
    skipped: Mutex<Duration>,
}

impl FastForwardClock {
    /// A clock that starts at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The total time its sleeps skipped.
    pub fn slept(&self) -> Duration {
        *self.skipped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock forward without sleeping (to age cached tokens in tests).
    pub fn advance(&self, duration: Duration) {
        let mut skipped = self.skipped.lock().unwrap_or_else(|p| p.into_inner());
        *skipped += duration;
    }
}

impl Clock for FastForwardClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.slept()
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
