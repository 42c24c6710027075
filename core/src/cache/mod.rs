//! The token cache: its policy as pure functions, and the slots a transport holds
//! (PROTOCOL.md §1.7).
//!
//! The policy is decided here once, for every transport: when a cached token is served, who
//! leads a fetch or a refresh, who joins a flight under way, what a finished flight stores (never
//! an older entry over a newer one), and what a failed refresh answers. A transport adds only its
//! waiting primitive (threads and a condvar; tasks and a channel) and runs the fetch.
//!
//! ## States of a slot
//!
//! A caller that misses the hit path decides by the entry's verdict at `now` and whether a flight
//! is under way ([`decide`]):
//!
//! ```text
//!                      absent or unusable      fresh      refresh due (still usable)
//!   no flight          lead a fetch            serve      lead a refresh
//!   flight under way   join it                 serve      serve (another caller refreshes)
//! ```
//!
//! and a finished flight moves the slot on ([`settle`]):
//!
//! ```text
//!   ┌─────────┐ lead fetch ┌──────────┐  Ok, cacheable  ┌───────┐ now ≥ refresh_on ┌─────────────┐
//!   │  empty  │───────────►│ fetching │────────────────►│ fresh │─────────────────►│ refresh due │
//!   └─────────┘◄───────────└──────────┘                 └───────┘                  └─────────────┘
//!        ▲  Err, or Ok not     ▲   ▲ callers join          ▲  Ok; or Err while the       │ lead
//!        │  cacheable          │   │                       │  token is usable (it is     │ refresh
//!        │                     │   │                       │  answered; next try 30 s)   ▼
//!   ┌──────────┐ lead fetch    │   │                       └───────────────────── ┌────────────┐
//!   │ unusable │───────────────┘   └── callers arriving once the token is unusable│ refreshing │
//!   └──────────┘◄─────────────────────── Err after the token became unusable ──────└────────────┘
//!        ▲ now ≥ expires_on − 5 min (from fresh or refresh due)
//! ```
//!
//! * [`decide`] gives a caller's move from the entry, `now` and whether a flight is under way;
//!   [`settle`] turns a flight's outcome into the entry to store and the one answer all its
//!   callers get.
//! * [`Table`] and [`Slot`] hold the entries and the flight under way; the transport drives them
//!   with [`Slot::begin`] and [`Slot::finish`] and keeps its waiting primitive in the slot.
//! * [`Table::hit`] is the hit path: no lock, and no write to memory other threads write.
//!
//! ## The transport's loop
//!
//! 1. [`Table::hit`] with the clock as Unix nanoseconds; a token ends the call.
//! 2. [`Table::slot`], then [`Slot::begin`] at `now`:
//!    * `Serve(token)`: done.
//!    * `Join(waiter)`: wait on the waiter for the flight's answer.
//!    * `Lead(flight, waiter)`: run the fetch; whatever happens (success, error, panic,
//!      cancellation: use a drop guard, with [`abandoned`] as the outcome), call
//!      [`Slot::finish`] and publish its answer through the waiter.
//!
//! Errors are never cached. Claims skip the cache entirely (the credential does not call it).

mod entry;
mod policy;
mod table;

pub use entry::{CacheEntry, Freshness, REFRESH_RETRY_INTERVAL};
pub use policy::{Decision, Flight, FlightKind, Settlement, Store, abandoned, decide, settle};
pub use table::{Begin, REPLICAS_PER_THREAD, Slot, Table};
