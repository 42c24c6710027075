//! The slots a transport holds, and the lock-free, write-free hit path over them.
//!
//! A [`Table`] maps each scope to a [`Slot`]: the published entry plus the flight under way, if
//! any. `W` is the transport's waiting primitive (a condvar cell, a channel receiver …): the
//! table stores it beside the flight so that callers arriving later can join, and never looks
//! inside it.
//!
//! ## Why hits write nothing shared
//!
//! A hit must not write memory that other cores also write, or every core calling `get_token`
//! fights over one cache line (a shared reference count is enough to double the cost on two
//! threads). So each thread keeps its own *replica* of the entries it has served: a copy of the
//! token with its own reference count, tagged with the slot's generation. A hit reads the
//! slot's generation (a shared *read* of a line that changes only when a token is stored),
//! compares, and hands out a clone of its own replica. When a new token is stored the
//! generation moves on and each thread copies the new entry once, on its next call. The price:
//! one copy of each token per thread that uses it (bounded, see [`REPLICAS_PER_THREAD`]), and
//! tokens handed out by one thread share their allocation only with that thread's other hits.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use crate::cache::entry::{CacheEntry, Freshness};
use crate::cache::policy::{Decision, Flight, Store, decide, settle};
use crate::error::Error;
use crate::token::AccessToken;

/// At most this many replicas per thread; past it, replicas of dropped caches go first, then the
/// oldest.
pub const REPLICAS_PER_THREAD: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Distinguishes tables in the per-thread replicas. A counter, not randomness: it only has to
/// differ between tables of one process.
static NEXT_TABLE: AtomicU64 = AtomicU64::new(1);

/// The entry of a slot as the hit path sees it. Aligned to its own cache lines so that the
/// generation, which every hit reads, shares a line with nothing that is written more often.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Published {
    generation: AtomicU64,
    /// Set when the table is dropped: replicas of it are the first to go.
    retired: AtomicBool,
    entry: Mutex<Option<Arc<CacheEntry>>>,
}

impl Published {
    fn load(&self) -> Option<Arc<CacheEntry>> {
        lock(&self.entry).clone()
    }

    fn store(&self, entry: CacheEntry) {
        *lock(&self.entry) = Some(Arc::new(entry));
        // Release: a thread that sees the new generation sees the new entry.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// A thread's copy of one slot's entry.
struct Replica {
    table: u64,
    scope: Box<str>,
    /// Where the caller's scope string was last seen: callers usually pass the same string every
    /// time, so a pointer comparison settles most lookups without comparing the text.
    seen: (usize, usize),
    published: Arc<Published>,
    generation: u64,
    entry: Option<CacheEntry>,
}

impl Replica {
    #[inline]
    fn matches(&mut self, table: u64, scope: &str) -> bool {
        if self.table != table {
            return false;
        }
        let seen = (scope.as_ptr() as usize, scope.len());
        if self.seen == seen {
            return true;
        }
        let same = *self.scope == *scope;
        if same {
            self.seen = seen;
        }
        same
    }

    #[inline]
    fn sync(&mut self) {
        let generation = self.published.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.copy(generation);
        }
    }

    #[cold]
    fn copy(&mut self, generation: u64) {
        // Read the entry after the generation: it is at least as new as `generation`.
        self.entry = self.published.load().map(|e| e.detached());
        self.generation = generation;
    }
}

thread_local! {
    static REPLICAS: RefCell<Vec<Replica>> = const { RefCell::new(Vec::new()) };
}

/// The slot of one scope: its published entry and the flight under way, if any.
#[derive(Debug)]
pub struct Slot<W> {
    published: Arc<Published>,
    flight: Mutex<Option<(Flight, W)>>,
}

impl<W> Default for Slot<W> {
    fn default() -> Self {
        Slot {
            published: Arc::default(),
            flight: Mutex::new(None),
        }
    }
}

/// What [`Slot::begin`] tells a caller to do.
#[must_use = "the caller must serve, wait on the flight, or run the fetch and finish it"]
#[derive(Debug)]
pub enum Begin<W> {
    /// Serve this token.
    Serve(AccessToken),
    /// Wait on the flight under way through this waiter.
    Join(W),
    /// Run the fetch, then call [`Slot::finish`] with this flight — also when the fetch panics
    /// or is cancelled (with [`abandoned`](crate::cache::abandoned)) — and publish the answer
    /// through the waiter, which joiners got a clone of.
    Lead(Flight, W),
}

impl<W: Clone> Slot<W> {
    /// Decides, under the slot's lock, what a caller does at `now`: serve, join the flight under
    /// way, or lead a new one (fetch or refresh; [`decide`]). `new_waiter` makes the waiting
    /// primitive of a new flight; it is called only when this caller leads.
    pub fn begin(&self, now: OffsetDateTime, new_waiter: impl FnOnce() -> W) -> Begin<W> {
        let mut flight = lock(&self.flight);
        let entry = self.published.load();
        let decision = decide(entry.as_deref(), flight.as_ref().map(|(f, _)| f), now);
        let new = match (decision, entry) {
            (Decision::Serve(token), _) => return Begin::Serve(token),
            (Decision::Join, _) => match flight.as_ref() {
                Some((_, waiter)) => return Begin::Join(waiter.clone()),
                // `decide` joins only when a flight exists; were it otherwise, lead a fetch.
                None => Flight::fetch(now),
            },
            (Decision::LeadRefresh, Some(base)) => Flight::refresh(base, now),
            _ => Flight::fetch(now),
        };
        let waiter = new_waiter();
        *flight = Some((new.clone(), waiter.clone()));
        Begin::Lead(new, waiter)
    }

    /// Ends `flight` with `outcome` at `now`: stores what [`settle`] says, frees the slot for the
    /// next flight, and returns the answer for every caller of the flight. The entry is stored
    /// before the slot is freed, under its lock, so no caller can see the flight gone and the
    /// old entry still there.
    #[must_use = "the answer must reach every caller of the flight"]
    pub fn finish(
        &self,
        flight: &Flight,
        outcome: Result<AccessToken, Error>,
        now: OffsetDateTime,
    ) -> Result<AccessToken, Error> {
        let mut current = lock(&self.flight);
        let settlement = settle(self.published.load().as_deref(), flight, outcome, now);
        if let Store::Replace(entry) = settlement.store {
            self.published.store(entry);
        }
        // Free the slot only if it still holds this flight (it always does: one flight at a time).
        if current
            .as_ref()
            .is_some_and(|(f, _)| f.started() == flight.started() && f.kind() == flight.kind())
        {
            *current = None;
        }
        settlement.answer
    }

    /// Starts a request that must not be answered from the cache (claims, PROTOCOL.md §14):
    /// returns the cached token it replaces, if any, and a flight of its own, which nobody
    /// joins and which leaves the slot free. End it with [`Slot::finish_bypass`].
    ///
    /// ```
    /// use azmi_core::cache::Slot;
    /// use azmi_core::AccessToken;
    /// use time::{macros::datetime, Duration};
    /// let t0 = datetime!(2026-11-26 10:00 UTC);
    /// let slot: Slot<()> = Slot::default();
    /// let (replaced, flight) = slot.bypass(t0);
    /// assert!(replaced.is_none());
    /// let token = AccessToken::new("after-claims", "Bearer", t0 + Duration::hours(1), t0 + Duration::minutes(50));
    /// slot.finish_bypass(&flight, Ok(token), t0).unwrap();
    /// assert_eq!(slot.entry().unwrap().token().secret(), "after-claims");
    /// ```
    #[must_use = "the caller runs the request, then finishes the bypass"]
    pub fn bypass(&self, now: OffsetDateTime) -> (Option<AccessToken>, Flight) {
        let replaced = self.published.load().map(|entry| entry.token().clone());
        (replaced, Flight::fetch(now))
    }

    /// Ends a bypass flight with `outcome` at `now`: its token replaces the entry unless a newer
    /// one is there ([`settle`]), so the next call is served the token the claims asked for;
    /// an error stores nothing. The slot's own flight, if any, goes on untouched.
    #[must_use = "the answer goes to the caller of the bypass"]
    pub fn finish_bypass(
        &self,
        flight: &Flight,
        outcome: Result<AccessToken, Error>,
        now: OffsetDateTime,
    ) -> Result<AccessToken, Error> {
        // Under the slot's lock, like `finish`, so a flight finishing at the same time sees
        // this entry when it settles.
        let _flight = lock(&self.flight);
        let settlement = settle(self.published.load().as_deref(), flight, outcome, now);
        if let Store::Replace(entry) = settlement.store {
            self.published.store(entry);
        }
        settlement.answer
    }

    /// The entry currently published (for tests and diagnostics).
    pub fn entry(&self) -> Option<Arc<CacheEntry>> {
        self.published.load()
    }
}

impl<W> Drop for Table<W> {
    fn drop(&mut self) {
        for (_, slot) in lock(&self.slots).iter() {
            slot.published.retired.store(true, Ordering::Relaxed);
        }
    }
}

/// A scope and its slot.
type ScopeSlot<W> = (Box<str>, Arc<Slot<W>>);

/// The slots of one cache, by scope.
///
/// ```
/// use azmi_core::cache::{Begin, Table};
/// use azmi_core::AccessToken;
/// use time::{macros::datetime, Duration};
/// let t0 = datetime!(2026-11-26 10:00 UTC);
/// let table: Table<()> = Table::new();
/// let scope = "https://vault.azure.net/.default";
/// assert!(table.hit(scope, t0.unix_timestamp_nanos()).is_none());
/// let slot = table.slot(scope);
/// let Begin::Lead(flight, ()) = slot.begin(t0, || ()) else { unreachable!() };
/// let token = AccessToken::new("T", "Bearer", t0 + Duration::hours(1), t0 + Duration::minutes(50));
/// slot.finish(&flight, Ok(token), t0).unwrap();
/// assert_eq!(table.hit(scope, t0.unix_timestamp_nanos()).unwrap().secret(), "T");
/// ```
#[derive(Debug)]
pub struct Table<W> {
    id: u64,
    slots: Mutex<Vec<ScopeSlot<W>>>,
}

impl<W> Default for Table<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> Table<W> {
    /// An empty table.
    pub fn new() -> Self {
        Table {
            id: NEXT_TABLE.fetch_add(1, Ordering::Relaxed),
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The slot of `scope`, created on first use.
    pub fn slot(&self, scope: &str) -> Arc<Slot<W>> {
        let mut slots = lock(&self.slots);
        if let Some((_, slot)) = slots.iter().find(|(s, _)| **s == *scope) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::default());
        slots.push((scope.into(), Arc::clone(&slot)));
        slot
    }

    /// The hit path: the token for `scope` if it is cached and fresh at `now_unix_nanos`, with no
    /// lock and no write to memory another thread writes (see the module documentation).
    /// `None` means: go through [`Slot::begin`].
    #[inline]
    #[must_use]
    pub fn hit(&self, scope: &str, now_unix_nanos: i128) -> Option<AccessToken> {
        // `try_with`: during thread teardown the replicas may be gone; the slow path still works.
        REPLICAS
            .try_with(|replicas| {
                let mut replicas = replicas.try_borrow_mut().ok()?;
                let index = replicas.iter_mut().position(|r| r.matches(self.id, scope));
                let replica = match index {
                    Some(index) => &mut replicas[index],
                    None => self.replicate(&mut replicas, scope)?,
                };
                replica.sync();
                let entry = replica.entry.as_ref()?;
                (entry.freshness_at_unix_nanos(now_unix_nanos) == Freshness::Fresh)
                    .then(|| entry.token().clone())
            })
            .ok()
            .flatten()
    }

    /// Adds this thread's replica of `scope`'s slot, if the slot exists.
    #[cold]
    fn replicate<'r>(
        &self,
        replicas: &'r mut Vec<Replica>,
        scope: &str,
    ) -> Option<&'r mut Replica> {
        let published = {
            let slots = lock(&self.slots);
            let (_, slot) = slots.iter().find(|(s, _)| **s == *scope)?;
            Arc::clone(&slot.published)
        };
        // Replicas of dropped tables go whenever a replica is added (so a thread that outlives
        // many credentials keeps none of their tokens); past the bound, the oldest goes too.
        replicas.retain(|r| !r.published.retired.load(Ordering::Relaxed));
        if replicas.len() >= REPLICAS_PER_THREAD {
            replicas.remove(0);
        }
        replicas.push(Replica {
            table: self.id,
            scope: scope.into(),
            seen: (scope.as_ptr() as usize, scope.len()),
            published,
            // Never a real generation (those start at 0 and count up), so the first sync copies.
            generation: u64::MAX,
            entry: None,
        });
        replicas.last_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    const SCOPE: &str = "https://vault.azure.net/.default";

    fn filled(secret: &str) -> Table<()> {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        let table = Table::new();
        let slot = table.slot(SCOPE);
        let Begin::Lead(flight, ()) = slot.begin(t0, || ()) else {
            panic!("an empty slot is led")
        };
        let token = AccessToken::new(
            secret,
            "Bearer",
            t0 + Duration::hours(1),
            t0 + Duration::minutes(50),
        );
        let _ = slot.finish(&flight, Ok(token), t0);
        assert!(table.hit(SCOPE, t0.unix_timestamp_nanos()).is_some());
        table
    }

    fn stale_replicas_here() -> usize {
        REPLICAS.with(|r| {
            r.borrow()
                .iter()
                .filter(|x| x.published.retired.load(Ordering::Relaxed))
                .count()
        })
    }

    #[test]
    fn replicas_of_dropped_tables_are_released_when_the_thread_adds_one() {
        let a = filled("a");
        let b = filled("b");
        drop(a);
        drop(b);
        assert_eq!(
            stale_replicas_here(),
            2,
            "held until the thread adds a replica"
        );
        let _c = filled("c");
        assert_eq!(
            stale_replicas_here(),
            0,
            "the dropped tables' replicas are gone"
        );
    }
}
