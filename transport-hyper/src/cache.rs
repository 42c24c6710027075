//! The credential's token cache: a lock-free hit path, single flight on a miss, and proactive
//! refresh by exactly one caller. Every decision (fresh, refresh due, unusable, cacheable,
//! back-off after a failed refresh) is the core's [`CacheEntry`]; this module only adds the
//! task synchronisation.
//!
//! A cache belongs to one credential instance, whose source and identity are fixed, so the
//! scope alone completes the core's [`CacheKey`](azmi_core::CacheKey) here.
//!
//! ## How a fetch is shared
//!
//! A fetch (a first acquisition, or a refresh) runs in its own tokio task, a *flight*, and
//! publishes its outcome on a `watch` channel that every interested caller waits on. Callers
//! never run the fetch themselves, so a caller whose future is dropped mid-fetch cancels nothing:
//! the flight finishes, stores the token and answers the callers still waiting. The flight
//! publishes even if it panics or its runtime shuts down (a drop guard sends an error then), so
//! no caller waits forever.
//!
//! The only locks are `std` mutexes held for a few instructions, never across an `.await`: one
//! per scope to start or join a flight, and one per cache to add a scope.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};
use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, CacheEntry, Error, Freshness};
use tokio::sync::watch;

use crate::clock::Clock;

type Outcome = Result<AccessToken, Error>;

/// The name cache-level errors carry.
const CACHE_NAME: &str = "azmi-hyper";

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
    /// The flight in progress for this scope, if any.
    flight: Mutex<Option<watch::Receiver<Option<Outcome>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a caller that missed the lock-free path does, decided under the slot's flight lock.
enum Plan {
    /// Serve this token (it is fresh, or due for a refresh that another caller started).
    Serve(AccessToken),
    /// Wait for the flight in progress.
    Join(watch::Receiver<Option<Outcome>>),
    /// Start a flight and wait for it. `refreshing` is the still-usable entry it refreshes.
    Lead {
        tx: watch::Sender<Option<Outcome>>,
        rx: watch::Receiver<Option<Outcome>>,
        refreshing: Option<Arc<CacheEntry>>,
    },
}

impl TokenCache {
    /// The hit path: the token for `scope` if it is cached and fresh. No lock, no
    /// reference-count traffic — arc-swap guards only.
    pub(crate) fn hit(&self, scope: &str, now_unix_nanos: i128) -> Option<AccessToken> {
        let slots = self.slots.load();
        let (_, slot) = slots.iter().find(|(s, _)| **s == *scope)?;
        let entry = slot.entry.load();
        let entry = entry.as_ref()?;
        (entry.freshness_at_unix_nanos(now_unix_nanos) == Freshness::Fresh)
            .then(|| entry.token().clone())
    }

    /// The token for `scope`: from the cache when it is fresh; from the cache while another
    /// caller's refresh is under way; otherwise from one flight shared by every concurrent
    /// caller. `fetch` makes the future that runs the core flow; it is called at most once, only
    /// by the caller that starts a flight, and its future runs in a spawned task.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        scope: &str,
        clock: &Arc<dyn Clock>,
        fetch: F,
    ) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        // Flights are tasks: without a tokio runtime there is nowhere to run one. Checked before
        // anything is changed, so the cache stays consistent.
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::failed(
                CACHE_NAME,
                "get_token must be awaited inside a tokio runtime (with I/O and time enabled)",
            )
        })?;
        let slot = self.slot(scope);
        let (rx, refreshing) = match Self::plan(&slot, clock.now()) {
            Plan::Serve(token) => return Ok(token),
            Plan::Join(rx) => (rx, None),
            Plan::Lead { tx, rx, refreshing } => {
                // Built before the task so that even a task dropped unpolled publishes.
                let publisher = Publisher {
                    slot: Arc::clone(&slot),
                    tx,
                    outcome: None,
                };
                let flight = fly(publisher, fetch(), Arc::clone(clock), refreshing.clone());
                drop(runtime.spawn(flight));
                (rx, refreshing)
            }
        };
        let outcome = wait(rx).await;
        match (outcome, refreshing) {
            // The refresh failed, and the cached token is still usable: serve it.
            (Err(_), Some(entry)) if entry.freshness(clock.now()) != Freshness::Unusable => {
                Ok(entry.token().clone())
            }
            (outcome, _) => outcome,
        }
    }

    /// Decides, under the slot's flight lock, whether to serve, join or lead. Flights store
    /// their entry before they leave the slot, so the entry read here is never older than the
    /// flight state.
    fn plan(slot: &Slot, now: OffsetDateTime) -> Plan {
        let mut flight = lock(&slot.flight);
        let entry = slot.entry.load_full();
        let verdict = entry.as_ref().map(|e| e.freshness(now));
        match (verdict, entry, flight.as_ref()) {
            (Some(Freshness::Fresh), Some(entry), _) => Plan::Serve(entry.token().clone()),
            // Exactly one caller refreshes; everyone else keeps getting the cached token.
            (Some(Freshness::RefreshDue), Some(entry), Some(_)) => {
                Plan::Serve(entry.token().clone())
            }
            // Absent or unusable: wait for the flight under way (a fetch, or a refresh that
            // outlived the token's usable life).
            (_, _, Some(rx)) => Plan::Join(rx.clone()),
            (verdict, entry, None) => {
                let (tx, rx) = watch::channel(None);
                *flight = Some(rx.clone());
                let refreshing = entry.filter(|_| verdict == Some(Freshness::RefreshDue));
                Plan::Lead { tx, rx, refreshing }
            }
        }
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

/// The body of a flight task: run the fetch, update the entry, publish (through the guard).
async fn fly(
    mut publisher: Publisher,
    fetch: impl Future<Output = Outcome>,
    clock: Arc<dyn Clock>,
    refreshing: Option<Arc<CacheEntry>>,
) {
    let outcome = fetch.await;
    let now = clock.now();
    let slot = &publisher.slot;
    match &outcome {
        // A token that is already unusable (expires within five minutes) is returned to the
        // waiting callers but not cached.
        Ok(token) => slot
            .entry
            .store(CacheEntry::new(token.clone(), now).map(Arc::new)),
        // A failed refresh keeps the cached token and backs off — unless the entry changed
        // meanwhile, in which case the newer entry stays.
        Err(_) => {
            if let Some(entry) = &refreshing {
                let backed_off = Arc::new(entry.after_failed_refresh(now));
                let _ = slot.entry.compare_and_swap(entry, Some(backed_off));
            }
        }
    }
    publisher.outcome = Some(outcome);
}

/// Waits for a flight's outcome.
async fn wait(mut rx: watch::Receiver<Option<Outcome>>) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(abandoned())),
        Err(_closed) => Err(abandoned()),
    }
}

fn abandoned() -> Error {
    Error::failed(
        CACHE_NAME,
        "the shared token request ended without a result (its task panicked or its runtime shut down)",
    )
}

/// Publishes a flight's outcome and frees the slot for the next flight when dropped: after the
/// fetch, or when the task panics or is dropped.
struct Publisher {
    slot: Arc<Slot>,
    tx: watch::Sender<Option<Outcome>>,
    outcome: Option<Outcome>,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| Err(abandoned()));
        *lock(&self.slot.flight) = None;
        self.tx.send_replace(Some(outcome));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use azmi_core::time::Duration as TimeDelta;

    use super::*;
    use crate::clock::FastForwardClock;

    const SCOPE: &str = "https://vault.azure.net/.default";

    fn token(secret: &str, now: OffsetDateTime, lifetime: TimeDelta) -> AccessToken {
        AccessToken::new(secret, "Bearer", now + lifetime, now + lifetime / 2)
    }

    fn clock() -> (Arc<FastForwardClock>, Arc<dyn Clock>) {
        let clock = Arc::new(FastForwardClock::new());
        let dynamic: Arc<dyn Clock> = clock.clone();
        (clock, dynamic)
    }

    #[tokio::test]
    async fn a_panicking_fetch_fails_its_callers_and_frees_the_slot() {
        let cache = TokenCache::default();
        let (_, clock) = clock();
        let outcome = cache
            .get_or_fetch(SCOPE, &clock, || async {
                panic!("scripted panic in a fetch")
            })
            .await;
        let error = outcome.expect_err("the flight was abandoned");
        assert!(
            error.to_string().contains("ended without a result"),
            "{error}"
        );

        let now = clock.now();
        let secret = cache
            .get_or_fetch(SCOPE, &clock, move || async move {
                Ok(token("after", now, TimeDelta::hours(1)))
            })
            .await
            .expect("the next fetch runs");
        assert_eq!(secret.secret(), "after");
    }

    #[tokio::test]
    async fn an_unusable_token_is_returned_but_not_cached() {
        let cache = TokenCache::default();
        let (_, clock) = clock();
        let fetches = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let now = clock.now();
            let fetches = Arc::clone(&fetches);
            let got = cache
                .get_or_fetch(SCOPE, &clock, move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    // Expires within the five-minute margin.
                    Ok(token("short", now, TimeDelta::minutes(4)))
                })
                .await
                .expect("a token");
            assert_eq!(got.secret(), "short");
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            3,
            "never served from the cache"
        );
    }

    #[tokio::test]
    async fn a_token_is_not_served_once_unusable() {
        let cache = TokenCache::default();
        let (ff, clock) = clock();
        let now = clock.now();
        let first = cache
            .get_or_fetch(SCOPE, &clock, move || async move {
                Ok(token("first", now, TimeDelta::hours(1)))
            })
            .await
            .expect("a token");
        assert_eq!(first.secret(), "first");
        // 56 minutes later, the one-hour token is within five minutes of its expiry.
        ff.advance(Duration::from_secs(56 * 60));
        let now = clock.now();
        let second = cache
            .get_or_fetch(SCOPE, &clock, move || async move {
                Ok(token("second", now, TimeDelta::hours(1)))
            })
            .await
            .expect("a token");
        assert_eq!(second.secret(), "second");
    }

    #[tokio::test]
    async fn a_failed_fetch_on_an_unusable_entry_is_an_error() {
        let cache = TokenCache::default();
        let (ff, clock) = clock();
        let now = clock.now();
        let _ = cache
            .get_or_fetch(SCOPE, &clock, move || async move {
                Ok(token("first", now, TimeDelta::hours(1)))
            })
            .await;
        ff.advance(Duration::from_secs(3600));
        let outcome = cache
            .get_or_fetch(SCOPE, &clock, || async {
                Err(Error::failed("test", "scripted failure"))
            })
            .await;
        assert!(outcome.is_err(), "an unusable token is never served");
    }
}
