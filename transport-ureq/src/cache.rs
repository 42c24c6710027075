//! The credential's token cache: a read-mostly hit path, single flight on a miss, and proactive
//! refresh by exactly one caller. Every decision (fresh, refresh due, unusable, cacheable,
//! back-off after a failed refresh) is the core's [`CacheEntry`]; this module only adds the
//! thread synchronisation.
//!
//! A cache belongs to one credential instance, whose source and identity are fixed, so the
//! scope alone completes the core's [`CacheKey`](azmi_core::CacheKey) here.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, CacheEntry, Error, Freshness};

type Outcome = Result<AccessToken, Error>;

/// Tokens by scope.
#[derive(Default)]
pub(crate) struct TokenCache {
    // Few scopes per credential: a linear scan over a snapshot beats hashing on the hit path,
    // and the snapshot is replaced (copy on write) only when a new scope first appears.
    slots: ArcSwap<Vec<(Box<str>, Arc<Slot>)>>,
    insert: Mutex<()>,
}

#[derive(Default)]
struct Slot {
    entry: ArcSwapOption<CacheEntry>,
    refreshing: AtomicBool,
    flight: Mutex<Option<Arc<Flight>>>,
}

/// One fetch that concurrent callers share.
#[derive(Default)]
struct Flight {
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCache {
    /// The hit path: the cached token for `scope` if it is fresh at `now`. No lock, no
    /// reference-count traffic on the cache's structures — arc-swap guards only.
    pub(crate) fn fresh(&self, scope: &str, now_unix_nanos: i128) -> Option<AccessToken> {
        let slots = self.slots.load();
        let (_, slot) = slots.iter().find(|(s, _)| **s == *scope)?;
        let entry = slot.entry.load();
        let entry = entry.as_ref()?;
        (entry.freshness_at_unix_nanos(now_unix_nanos) == Freshness::Fresh)
            .then(|| entry.token().clone())
    }

    /// The token for `scope` when [`TokenCache::fresh`] had none: from the cache while one
    /// caller refreshes it when its refresh time has come; otherwise from one fetch shared by
    /// every concurrent caller. `fetch` runs the core flow; `now` reads the driver's clock.
    pub(crate) fn get(
        &self,
        scope: &str,
        now: impl Fn() -> OffsetDateTime,
        fetch: impl FnOnce() -> Outcome,
    ) -> Outcome {
        let slot = self.slot(scope);
        if let Some(entry) = slot.entry.load_full() {
            match entry.freshness(now()) {
                Freshness::Fresh => return Ok(entry.token().clone()),
                Freshness::RefreshDue => return Ok(self.refresh(&slot, &entry, now, fetch)),
                Freshness::Unusable => {}
            }
        }
        Self::fetch_shared(&slot, now, fetch)
    }

    /// The caller that wins the flag refreshes; everyone else, and the winner on failure, gets
    /// the cached token, which is still usable.
    fn refresh(
        &self,
        slot: &Slot,
        entry: &Arc<CacheEntry>,
        now: impl Fn() -> OffsetDateTime,
        fetch: impl FnOnce() -> Outcome,
    ) -> AccessToken {
        if slot
            .refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return entry.token().clone();
        }
        let token = match fetch() {
            Ok(token) => {
                Self::store(slot, &token, now());
                token
            }
            Err(_) => {
                slot.entry
                    .store(Some(Arc::new(entry.after_failed_refresh(now()))));
                entry.token().clone()
            }
        };
        slot.refreshing.store(false, Ordering::Release);
        token
    }

    fn fetch_shared(
        slot: &Slot,
        now: impl Fn() -> OffsetDateTime,
        fetch: impl FnOnce() -> Outcome,
    ) -> Outcome {
        let (flight, leader) = {
            let mut current = lock(&slot.flight);
            match current.as_ref() {
                Some(flight) => (Arc::clone(flight), false),
                None => {
                    let flight = Arc::new(Flight::default());
                    *current = Some(Arc::clone(&flight));
                    (flight, true)
                }
            }
        };
        if !leader {
            let mut outcome = lock(&flight.outcome);
            while outcome.is_none() {
                outcome = flight
                    .ready
                    .wait(outcome)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            return outcome.clone().unwrap_or_else(|| Err(abandoned()));
        }
        // Publishes whatever happens, even if `fetch` panics, so followers never wait forever.
        let mut publisher = Publisher {
            slot,
            flight: &flight,
            outcome: None,
        };
        let cached = slot
            .entry
            .load_full()
            .filter(|e| e.token().is_usable_at(now()));
        let outcome = match cached {
            // Another leader finished between our cache check and our taking the lead.
            Some(entry) => Ok(entry.token().clone()),
            None => fetch(),
        };
        if let Ok(token) = &outcome {
            Self::store(slot, token, now());
        }
        publisher.outcome = Some(outcome.clone());
        drop(publisher);
        outcome
    }

    fn store(slot: &Slot, token: &AccessToken, now: OffsetDateTime) {
        // A token that is already unusable (expires within five minutes) is returned but not cached.
        slot.entry
            .store(CacheEntry::new(token.clone(), now).map(Arc::new));
    }

    fn slot(&self, scope: &str) -> Arc<Slot> {
        if let Some((_, slot)) = self.slots.load().iter().find(|(s, _)| **s == *scope) {
            return Arc::clone(slot);
        }
        let _guard = lock(&self.insert);
        let current = self.slots.load_full();
        if let Some((_, slot)) = current.iter().find(|(s, _)| **s == *scope) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::default());
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push((scope.into(), Arc::clone(&slot)));
        self.slots.store(Arc::new(next));
        slot
    }
}

fn abandoned() -> Error {
    Error::failed(
        "azmi-ureq",
        "the shared token request ended without a result",
    )
}

struct Publisher<'a> {
    slot: &'a Slot,
    flight: &'a Flight,
    outcome: Option<Outcome>,
}

impl Drop for Publisher<'_> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| Err(abandoned()));
        *lock(&self.flight.outcome) = Some(outcome);
        self.flight.ready.notify_all();
        *lock(&self.slot.flight) = None;
    }
}
