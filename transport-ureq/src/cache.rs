//! The token cache for blocking callers: the core's slots and policy ([`azmi_core::cache`]),
//! with threads and a condvar as the waiting primitive. Nothing here decides anything: serve,
//! join, lead, what to store and what every caller gets all come from the core.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use azmi_core::cache::{Begin, Flight, Slot, Table, abandoned};
use azmi_core::{AccessToken, Error};

use crate::clock::Clock;

type Outcome = Result<AccessToken, Error>;

/// The name errors of the cache itself carry.
const CACHE_NAME: &str = "azmi-ureq";

/// A single-flight token cache for blocking callers, keyed by scope.
///
/// A hit takes no lock and writes nothing another thread writes; a miss or a due refresh is
/// fetched by one caller while the others wait for its answer (or, during a refresh, keep being
/// served the cached token). The fetch can be anything that returns a token: the credentials of
/// this crate run a core flow through their [`Driver`](crate::Driver); an SDK can run its own.
///
/// ```
/// use azmi_core::AccessToken;
/// use azmi_core::time::Duration;
/// use azmi_ureq::{Clock, SystemClock, TokenCache};
/// let cache = TokenCache::new();
/// let scope = "https://vault.azure.net/.default";
/// let now = SystemClock.now();
/// let token = cache.get(scope, &SystemClock, || {
///     Ok(AccessToken::new("T", "Bearer", now + Duration::hours(1), now + Duration::minutes(50)))
/// })?;
/// assert_eq!(token.secret(), "T");
/// assert_eq!(cache.hit(scope, &SystemClock).map(|t| t.secret().to_owned()).as_deref(), Some("T"));
/// # Ok::<(), azmi_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct TokenCache {
    table: Table<Arc<Waiter>>,
}

/// Where the callers of one flight wait for its answer.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    answer: Mutex<Option<Outcome>>,
    ready: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Waiter {
    fn publish(&self, answer: Outcome) {
        *lock(&self.answer) = Some(answer);
        self.ready.notify_all();
    }

    fn wait(&self) -> Outcome {
        let mut answer = lock(&self.answer);
        loop {
            if let Some(answer) = answer.as_ref() {
                return answer.clone();
            }
            answer = self
                .ready
                .wait(answer)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
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

    /// The token for `scope`: from the cache when it can be served; otherwise from one call of
    /// `fetch` shared by every concurrent caller. `fetch` is called only by the caller that leads
    /// the flight, on its own thread; if it panics, the other callers get an error and the next
    /// call fetches again.
    pub fn get(&self, scope: &str, clock: &dyn Clock, fetch: impl FnOnce() -> Outcome) -> Outcome {
        if let Some(token) = self.hit(scope, clock) {
            return Ok(token);
        }
        let slot = self.table.slot(scope);
        let begin = slot.begin(clock.now(), || Arc::new(Waiter::default()));
        azmi_support::trace::cache_begin(scope, &begin);
        match begin {
            Begin::Serve(token) => Ok(token),
            Begin::Join(waiter) => waiter.wait(),
            Begin::Lead(flight, waiter) => {
                let mut finisher = Finisher {
                    slot: &slot,
                    flight,
                    waiter: &waiter,
                    clock,
                    outcome: None,
                };
                finisher.outcome = Some(fetch());
                drop(finisher);
                waiter.wait()
            }
        }
    }
}

impl TokenCache {
    /// The token for `scope` from one call of `fetch` that skips the cache (a claims request,
    /// PROTOCOL.md §14): `fetch` gets the cached token it replaces, if any; a token it returns
    /// replaces that entry, so later calls are served it. No other caller joins this call.
    pub fn bypass(
        &self,
        scope: &str,
        clock: &dyn Clock,
        fetch: impl FnOnce(Option<&AccessToken>) -> Outcome,
    ) -> Outcome {
        let slot = self.table.slot(scope);
        let (replaced, flight) = slot.bypass(clock.now());
        let outcome = fetch(replaced.as_ref());
        slot.finish_bypass(&flight, outcome, clock.now())
    }
}

/// Finishes a flight when dropped — after the fetch returned, or while its panic unwinds — so the
/// slot is freed and every waiting caller gets an answer.
struct Finisher<'a> {
    slot: &'a Slot<Arc<Waiter>>,
    flight: Flight,
    waiter: &'a Waiter,
    clock: &'a dyn Clock,
    outcome: Option<Outcome>,
}

impl Drop for Finisher<'_> {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| Err(abandoned(CACHE_NAME)));
        let traced = azmi_support::trace::FlightEnd::new(&self.flight, &outcome);
        let answer = self.slot.finish(&self.flight, outcome, self.clock.now());
        traced.answered(&answer);
        self.waiter.publish(answer);
    }
}
