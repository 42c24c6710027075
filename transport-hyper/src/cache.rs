//! The token cache for async callers: the core's slots and policy ([`azmi_core::cache`]), with
//! tokio tasks and a `watch` channel as the waiting primitive. Nothing here decides anything:
//! serve, join, lead, what to store and what every caller gets all come from the core.
//!
//! ## How a flight runs
//!
//! The fetch of a flight (a first acquisition, or a refresh) runs in its own tokio task and
//! publishes the core's answer on a `watch` channel that every caller of the flight waits on.
//! Callers never run the fetch themselves, so a caller whose future is dropped cancels nothing:
//! the flight finishes, stores the token and answers the callers still waiting. The flight
//! finishes even if its fetch panics or its runtime shuts down (a drop guard settles it with an
//! error then), so no caller waits forever and the slot is always freed.

use std::future::Future;
use std::sync::Arc;

use azmi_core::cache::{Begin, Flight, Slot, Table, abandoned};
use azmi_core::{AccessToken, Error};
use tokio::sync::watch;

use crate::clock::Clock;

type Outcome = Result<AccessToken, Error>;
type Waiter = watch::Receiver<Option<Outcome>>;

/// The name errors of the cache itself carry.
const CACHE_NAME: &str = "azmi-hyper";

/// A single-flight token cache for async callers, keyed by scope.
///
/// A hit takes no lock and writes nothing another thread writes; a miss or a due refresh is
/// fetched by one task while the callers wait for its answer (or, during a refresh, keep being
/// served the cached token). The fetch can be any future that returns a token: the credentials
/// of this crate run a core flow through their [`Driver`](crate::Driver); an SDK can run its own.
///
/// ```
/// use std::sync::Arc;
/// use azmi_core::AccessToken;
/// use azmi_core::time::Duration;
/// use azmi_hyper::{Clock, SystemClock, TokenCache};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), azmi_core::Error> {
/// let cache = TokenCache::new();
/// let clock: Arc<dyn Clock> = Arc::new(SystemClock);
/// let scope = "https://vault.azure.net/.default";
/// let now = clock.now();
/// let token = cache.get(scope, &clock, move || async move {
///     Ok(AccessToken::new("T", "Bearer", now + Duration::hours(1), now + Duration::minutes(50)))
/// }).await?;
/// assert_eq!(token.secret(), "T");
/// assert!(cache.hit(scope, clock.as_ref()).is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct TokenCache {
    table: Table<Waiter>,
}

impl TokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The hit path: the cached token for `scope` if it is fresh now. No lock, no shared write.
    #[inline]
    pub fn hit(&self, scope: &str, clock: &dyn Clock) -> Option<AccessToken> {
        self.table.hit(scope, clock.unix_nanos())
    }

    /// The token for `scope`: from the cache when it can be served; otherwise from one run of the
    /// future `fetch` makes, shared by every concurrent caller. `fetch` is called at most once,
    /// only by the caller that leads the flight, and its future runs in a spawned task.
    ///
    /// Must be awaited inside a tokio runtime; outside one, a *failed* error says so.
    pub async fn get<F, Fut>(&self, scope: &str, clock: &Arc<dyn Clock>, fetch: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        if let Some(token) = self.hit(scope, clock.as_ref()) {
            return Ok(token);
        }
        // Flights are tasks: without a tokio runtime there is nowhere to run one. Checked before
        // anything is changed, so the cache stays consistent.
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::failed(
                CACHE_NAME,
                "get_token must be awaited inside a tokio runtime (with I/O and time enabled)",
            )
        })?;
        let slot = self.table.slot(scope);
        let mut sender = None;
        let begin = slot.begin(clock.now(), || {
            let (tx, rx) = watch::channel(None);
            sender = Some(tx);
            rx
        });
        azmi_support::trace::cache_begin(scope, &begin);
        match (begin, sender) {
            (Begin::Serve(token), _) => Ok(token),
            (Begin::Join(waiter), _) => wait(waiter).await,
            (Begin::Lead(flight, waiter), Some(tx)) => {
                // Built before the task, so that even a task dropped unpolled finishes the flight.
                let finisher = Finisher {
                    slot,
                    flight,
                    tx,
                    clock: Arc::clone(clock),
                    outcome: None,
                };
                drop(runtime.spawn(fly(finisher, fetch())));
                wait(waiter).await
            }
            // `begin` makes a waiter exactly when it answers `Lead`.
            (Begin::Lead(..), None) => Err(abandoned(CACHE_NAME)),
        }
    }
}

impl TokenCache {
    /// The token for `scope` from one run of `fetch`'s future that skips the cache (a claims
    /// request, PROTOCOL.md §14): `fetch` gets the cached token it replaces, if any; a token it
    /// returns replaces that entry, so later calls are served it. No other caller joins this
    /// call; if it is cancelled, nothing is stored.
    pub async fn bypass<F, Fut>(&self, scope: &str, clock: &dyn Clock, fetch: F) -> Outcome
    where
        F: FnOnce(Option<AccessToken>) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let slot = self.table.slot(scope);
        let (replaced, flight) = slot.bypass(clock.now());
        let outcome = fetch(replaced).await;
        slot.finish_bypass(&flight, outcome, clock.now())
    }
}

/// The body of a flight task: run the fetch; the finisher settles and publishes when dropped.
async fn fly(mut finisher: Finisher, fetch: impl Future<Output = Outcome>) {
    finisher.outcome = Some(fetch.await);
}

/// Waits for a flight's answer.
async fn wait(mut rx: Waiter) -> Outcome {
    match rx.wait_for(Option::is_some).await {
        Ok(answer) => answer.clone().unwrap_or_else(|| Err(abandoned(CACHE_NAME))),
        Err(_closed) => Err(abandoned(CACHE_NAME)),
    }
}

/// Finishes a flight when dropped — after the fetch, or when its task panics or is dropped — so
/// the slot is freed and every waiting caller gets the core's answer.
struct Finisher {
    slot: Arc<Slot<Waiter>>,
    flight: Flight,
    tx: watch::Sender<Option<Outcome>>,
    clock: Arc<dyn Clock>,
    outcome: Option<Outcome>,
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| Err(abandoned(CACHE_NAME)));
        let traced = azmi_support::trace::FlightEnd::new(&self.flight, &outcome);
        let answer = self.slot.finish(&self.flight, outcome, self.clock.now());
        traced.answered(&answer);
        self.tx.send_replace(Some(answer));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use azmi_core::time::Duration as TimeDelta;
    use azmi_core::time::OffsetDateTime;

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
        let cache = TokenCache::new();
        let (_, clock) = clock();
        let outcome = cache
            .get(SCOPE, &clock, || async {
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
            .get(SCOPE, &clock, move || async move {
                Ok(token("after", now, TimeDelta::hours(1)))
            })
            .await
            .expect("the next fetch runs");
        assert_eq!(secret.secret(), "after");
    }

    #[tokio::test]
    async fn an_unusable_token_is_returned_but_not_cached() {
        let cache = TokenCache::new();
        let (_, clock) = clock();
        let fetches = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let now = clock.now();
            let fetches = Arc::clone(&fetches);
            let got = cache
                .get(SCOPE, &clock, move || async move {
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
        let cache = TokenCache::new();
        let (ff, clock) = clock();
        let now = clock.now();
        let first = cache
            .get(SCOPE, &clock, move || async move {
                Ok(token("first", now, TimeDelta::hours(1)))
            })
            .await
            .expect("a token");
        assert_eq!(first.secret(), "first");
        // 56 minutes later, the one-hour token is within five minutes of its expiry.
        ff.advance(Duration::from_secs(56 * 60));
        let now = clock.now();
        let second = cache
            .get(SCOPE, &clock, move || async move {
                Ok(token("second", now, TimeDelta::hours(1)))
            })
            .await
            .expect("a token");
        assert_eq!(second.secret(), "second");
    }

    #[tokio::test]
    async fn a_failed_fetch_on_an_unusable_entry_is_an_error() {
        let cache = TokenCache::new();
        let (ff, clock) = clock();
        let now = clock.now();
        let _ = cache
            .get(SCOPE, &clock, move || async move {
                Ok(token("first", now, TimeDelta::hours(1)))
            })
            .await;
        ff.advance(Duration::from_secs(3600));
        let outcome = cache
            .get(SCOPE, &clock, || async {
                Err(Error::failed("test", "scripted failure"))
            })
            .await;
        assert!(outcome.is_err(), "an unusable token is never served");
    }
}
