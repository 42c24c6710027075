//! A cached token and the verdict on it at a given time (PROTOCOL.md §1.7).

use std::time::Duration;

use time::OffsetDateTime;

use crate::token::AccessToken;

/// After a failed proactive refresh, the cached token is served and no new refresh starts for
/// this long.
pub const REFRESH_RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// What to do with a cached entry at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, and exactly one caller starts a refresh.
    RefreshDue,
    /// Do not serve it: fetch (all concurrent callers share one fetch).
    Unusable,
}

/// A cached token with the time of its next refresh attempt and the time it was obtained.
///
/// ```
/// use azmi_core::{AccessToken, CacheEntry, Freshness};
/// use time::{macros::datetime, Duration};
/// let t0 = datetime!(2026-11-26 10:00 UTC);
/// let token = AccessToken::new("x", "Bearer", t0 + Duration::hours(24), t0 + Duration::hours(12));
/// let entry = CacheEntry::new(token, t0).unwrap();
/// assert_eq!(entry.freshness(t0 + Duration::hours(1)), Freshness::Fresh);
/// assert_eq!(entry.freshness(t0 + Duration::hours(12)), Freshness::RefreshDue);
/// let entry = entry.after_failed_refresh(t0 + Duration::hours(12));
/// assert_eq!(entry.freshness(t0 + Duration::hours(12) + Duration::seconds(29)), Freshness::Fresh);
/// assert_eq!(entry.freshness(t0 + Duration::hours(24) - Duration::minutes(5)), Freshness::Unusable);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    token: AccessToken,
    obtained: OffsetDateTime,
    next_refresh: OffsetDateTime,
    // The two instants the hit path compares against, as Unix nanoseconds: a transport can then
    // read its clock as a plain number instead of building an `OffsetDateTime` on every hit.
    usable_until_ns: i128,
    next_refresh_ns: i128,
}

impl CacheEntry {
    /// An entry for a token obtained at `now`, or `None` if the token must not be cached (it is
    /// unusable already: it expires within five minutes or looks expired).
    pub fn new(token: AccessToken, now: OffsetDateTime) -> Option<Self> {
        token.is_usable_at(now).then(|| CacheEntry {
            usable_until_ns: token
                .expires_on()
                .saturating_sub(crate::token::EXPIRY_MARGIN)
                .unix_timestamp_nanos(),
            next_refresh_ns: token.refresh_on().unix_timestamp_nanos(),
            next_refresh: token.refresh_on(),
            obtained: now,
            token,
        })
    }

    /// The same entry, recorded as obtained at `obtained` (the start of the flight that fetched
    /// it), which is what "newer" means when two outcomes compete for a slot.
    pub(crate) fn obtained_at(mut self, obtained: OffsetDateTime) -> Self {
        self.obtained = obtained;
        self
    }

    /// The cached token.
    pub fn token(&self) -> &AccessToken {
        &self.token
    }

    /// When the flight that fetched the token started.
    pub fn obtained(&self) -> OffsetDateTime {
        self.obtained
    }

    /// When the next refresh may start.
    pub fn next_refresh(&self) -> OffsetDateTime {
        self.next_refresh
    }

    /// The verdict at `now`.
    #[must_use]
    pub fn freshness(&self, now: OffsetDateTime) -> Freshness {
        self.freshness_at_unix_nanos(now.unix_timestamp_nanos())
    }

    /// The verdict at `now`, given as nanoseconds since the Unix epoch: the same decision as
    /// [`CacheEntry::freshness`] for a hit path that reads the clock as a number.
    ///
    /// ```
    /// use azmi_core::{AccessToken, CacheEntry, Freshness};
    /// use time::{macros::datetime, Duration};
    /// let t0 = datetime!(2026-11-26 10:00 UTC);
    /// let entry = CacheEntry::new(AccessToken::new("x", "Bearer", t0 + Duration::hours(1), t0 + Duration::minutes(30)), t0).unwrap();
    /// let now = t0 + Duration::minutes(31);
    /// assert_eq!(entry.freshness_at_unix_nanos(now.unix_timestamp_nanos()), entry.freshness(now));
    /// ```
    #[inline]
    #[must_use]
    pub fn freshness_at_unix_nanos(&self, now: i128) -> Freshness {
        if now >= self.usable_until_ns {
            Freshness::Unusable
        } else if now >= self.next_refresh_ns {
            Freshness::RefreshDue
        } else {
            Freshness::Fresh
        }
    }

    /// The same entry after a refresh failed at `now`: keep serving, retry no sooner than 30 s.
    #[must_use]
    pub fn after_failed_refresh(&self, now: OffsetDateTime) -> Self {
        let next_refresh = now + REFRESH_RETRY_INTERVAL;
        CacheEntry {
            next_refresh,
            next_refresh_ns: next_refresh.unix_timestamp_nanos(),
            ..self.clone()
        }
    }

    /// A copy whose token string is a separate allocation: a per-thread replica, whose
    /// reference count only its own thread touches.
    pub(crate) fn detached(&self) -> Self {
        let t = &self.token;
        CacheEntry {
            token: AccessToken::new(
                t.secret().to_owned(),
                t.token_type().to_owned(),
                t.expires_on(),
                t.refresh_on(),
            ),
            ..self.clone()
        }
    }
}
