//! The cache policy as pure functions over a slot's state (PROTOCOL.md §1.7): what a caller does
//! ([`decide`]) and what a finished flight leaves behind ([`settle`]). No clock, no threads: the
//! transport passes `now` and says whether a flight is under way.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::cache::entry::{CacheEntry, Freshness};
use crate::error::Error;
use crate::token::AccessToken;

/// What a flight is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlightKind {
    /// The slot had no usable token: every caller waits for this one.
    Fetch,
    /// The slot's token reached its refresh time but is still usable: other callers keep being
    /// served it; callers arriving after it became unusable join this flight.
    Refresh,
}

/// One fetch or refresh under way for a slot: what it is for, when it started, and (for a
/// refresh) the entry it refreshes.
///
/// ```
/// use azmi_core::cache::{Flight, FlightKind};
/// use time::macros::datetime;
/// let flight = Flight::fetch(datetime!(2026-11-26 10:00 UTC));
/// assert_eq!(flight.kind(), FlightKind::Fetch);
/// ```
#[derive(Clone, Debug)]
pub struct Flight {
    kind: FlightKind,
    started: OffsetDateTime,
    base: Option<Arc<CacheEntry>>,
}

impl Flight {
    /// A fetch starting at `now`.
    pub fn fetch(now: OffsetDateTime) -> Self {
        Flight {
            kind: FlightKind::Fetch,
            started: now,
            base: None,
        }
    }

    /// A refresh of `base` starting at `now`.
    pub fn refresh(base: Arc<CacheEntry>, now: OffsetDateTime) -> Self {
        Flight {
            kind: FlightKind::Refresh,
            started: now,
            base: Some(base),
        }
    }

    /// What the flight is for.
    pub fn kind(&self) -> FlightKind {
        self.kind
    }

    /// When it started.
    pub fn started(&self) -> OffsetDateTime {
        self.started
    }

    /// The entry a refresh refreshes.
    pub fn base(&self) -> Option<&Arc<CacheEntry>> {
        self.base.as_ref()
    }
}

/// What a caller that missed the lock-free hit path does.
#[must_use = "the transport must serve, join or lead as decided"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Serve this cached token.
    Serve(AccessToken),
    /// Wait for the flight under way and take its answer.
    Join,
    /// Start a fetch flight ([`Flight::fetch`]), wait for it and take its answer.
    LeadFetch,
    /// Start a refresh flight ([`Flight::refresh`] of the current entry), wait for it and take
    /// its answer.
    LeadRefresh,
}

/// Decides, at `now`, for a slot holding `entry` with or without a flight under way.
///
/// | entry at `now` | no flight | flight under way |
/// |---|---|---|
/// | fresh | serve | serve |
/// | refresh due (still usable) | lead a refresh | serve (someone refreshes) |
/// | unusable or absent | lead a fetch | join |
///
/// ```
/// use azmi_core::cache::{decide, Decision, Flight};
/// use azmi_core::{AccessToken, CacheEntry};
/// use time::{macros::datetime, Duration};
/// let t0 = datetime!(2026-11-26 10:00 UTC);
/// assert_eq!(decide(None, None, t0), Decision::LeadFetch);
/// assert_eq!(decide(None, Some(&Flight::fetch(t0)), t0), Decision::Join);
/// let entry = CacheEntry::new(AccessToken::new("x", "Bearer", t0 + Duration::hours(1), t0 + Duration::minutes(50)), t0).unwrap();
/// assert_eq!(decide(Some(&entry), None, t0 + Duration::minutes(51)), Decision::LeadRefresh);
/// assert_eq!(decide(Some(&entry), None, t0 + Duration::minutes(56)), Decision::LeadFetch);
/// ```
pub fn decide(
    entry: Option<&CacheEntry>,
    flight: Option<&Flight>,
    now: OffsetDateTime,
) -> Decision {
    let verdict = entry.map(|e| (e, e.freshness(now)));
    match (verdict, flight) {
        (Some((e, Freshness::Fresh)), _) => Decision::Serve(e.token().clone()),
        (Some((e, Freshness::RefreshDue)), Some(_)) => Decision::Serve(e.token().clone()),
        (Some((_, Freshness::RefreshDue)), None) => Decision::LeadRefresh,
        (_, Some(_)) => Decision::Join,
        (_, None) => Decision::LeadFetch,
    }
}

/// What a finished flight does to its slot's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// Leave the entry as it is.
    Keep,
    /// Replace it with this one.
    Replace(CacheEntry),
}

/// The result of [`settle`]: what to store, and the one answer every caller waiting on the flight
/// receives (the leader included).
#[must_use]
#[derive(Clone, Debug)]
pub struct Settlement {
    /// What to do with the slot's entry.
    pub store: Store,
    /// What every caller of the flight gets.
    pub answer: Result<AccessToken, Error>,
}

/// Settles a finished `flight` whose `outcome` arrived at `now`, given the slot's `current` entry.
///
/// * A token replaces the entry unless the entry is newer (obtained after this flight started),
///   so an older outcome never overwrites a newer one. A token that is already unusable is
///   answered but not cached.
/// * A failed refresh answers with the refreshed token while it is still usable, and backs off
///   [`REFRESH_RETRY_INTERVAL`](crate::cache::REFRESH_RETRY_INTERVAL) before the next refresh;
///   once the token is unusable the error is the answer. Errors are never stored.
///
/// ```
/// use azmi_core::cache::{settle, Flight, Store};
/// use azmi_core::{AccessToken, CacheEntry, Error};
/// use time::{macros::datetime, Duration};
/// let t0 = datetime!(2026-11-26 10:00 UTC);
/// let token = AccessToken::new("new", "Bearer", t0 + Duration::hours(1), t0 + Duration::minutes(50));
/// let s = settle(None, &Flight::fetch(t0), Ok(token), t0);
/// assert!(matches!(s.store, Store::Replace(_)));
/// let s = settle(None, &Flight::fetch(t0), Err(Error::failed("X", "down")), t0);
/// assert!(matches!(s.store, Store::Keep) && s.answer.is_err());
/// ```
#[must_use = "the settlement says what to store and what every caller gets"]
pub fn settle(
    current: Option<&CacheEntry>,
    flight: &Flight,
    outcome: Result<AccessToken, Error>,
    now: OffsetDateTime,
) -> Settlement {
    let newer_exists = current.is_some_and(|c| c.obtained() > flight.started());
    match outcome {
        Ok(token) => {
            let store = match CacheEntry::new(token.clone(), now) {
                Some(entry) if !newer_exists => Store::Replace(entry.obtained_at(flight.started())),
                _ => Store::Keep,
            };
            Settlement {
                store,
                answer: Ok(token),
            }
        }
        Err(error) => match flight.base() {
            Some(base) if base.freshness(now) != Freshness::Unusable => {
                let is_current = current.is_some_and(|c| c.obtained() == base.obtained());
                Settlement {
                    store: if is_current && !newer_exists {
                        Store::Replace(base.after_failed_refresh(now))
                    } else {
                        Store::Keep
                    },
                    answer: Ok(base.token().clone()),
                }
            }
            _ => Settlement {
                store: Store::Keep,
                answer: Err(error),
            },
        },
    }
}

/// The answer for callers of a flight that ended without an outcome: its fetch panicked, or its
/// task was dropped. `cache` names the transport's cache in the message.
///
/// ```
/// let e = azmi_core::cache::abandoned("azmi-ureq");
/// assert_eq!(e.kind(), azmi_core::ErrorKind::Failed);
/// ```
pub fn abandoned(cache: &'static str) -> Error {
    Error::failed(
        cache,
        "the shared token request ended without a result (its fetch panicked or was cancelled)",
    )
}
