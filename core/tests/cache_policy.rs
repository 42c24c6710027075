//! The cache policy (PROTOCOL.md §1.7) as tables that jump into every state: `decide` for each
//! verdict of the entry with and without a flight, `settle` for each outcome of each kind of
//! flight against each state of the slot, and the slots themselves.

use std::sync::Arc;

use azmi_core::cache::{
    Begin, Decision, Flight, FlightKind, Store, Table, abandoned, decide, settle,
};
use azmi_core::time::{Duration, OffsetDateTime, macros::datetime};
use azmi_core::{AccessToken, CacheEntry, Error, ErrorKind};

const T0: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
const SCOPE: &str = "https://management.azure.com/.default";

/// A token obtained at T0, expiring at T0+60 min, refreshed at T0+50 min.
fn token(secret: &str) -> AccessToken {
    AccessToken::new(
        secret,
        "Bearer",
        T0 + Duration::minutes(60),
        T0 + Duration::minutes(50),
    )
}

fn entry(secret: &str, obtained: OffsetDateTime) -> CacheEntry {
    let t = AccessToken::new(
        secret,
        "Bearer",
        obtained + Duration::minutes(60),
        obtained + Duration::minutes(50),
    );
    CacheEntry::new(t, obtained).expect("a cacheable token")
}

fn at(minutes: i64) -> OffsetDateTime {
    T0 + Duration::minutes(minutes)
}

#[test]
fn decide_in_every_state() {
    let e = entry("cached", T0);
    let fetch = Flight::fetch(at(1));
    let refresh = Flight::refresh(Arc::new(e.clone()), at(51));
    let serve = Decision::Serve(e.token().clone());
    // (entry, flight, now, decision)
    let cases: Vec<(
        Option<&CacheEntry>,
        Option<&Flight>,
        OffsetDateTime,
        Decision,
    )> = vec![
        (None, None, at(0), Decision::LeadFetch),
        (None, Some(&fetch), at(0), Decision::Join),
        (Some(&e), None, at(10), serve.clone()),
        (Some(&e), Some(&refresh), at(10), serve.clone()),
        (Some(&e), None, at(50), Decision::LeadRefresh),
        (Some(&e), None, at(54), Decision::LeadRefresh),
        (Some(&e), Some(&refresh), at(51), serve.clone()),
        // Unusable (within five minutes of expiry): never served.
        (Some(&e), None, at(55), Decision::LeadFetch),
        (Some(&e), Some(&refresh), at(56), Decision::Join),
        (Some(&e), Some(&fetch), at(61), Decision::Join),
    ];
    for (i, (entry, flight, now, want)) in cases.into_iter().enumerate() {
        assert_eq!(decide(entry, flight, now), want, "case {i}");
    }
}

#[test]
fn settle_every_outcome_of_every_flight() {
    let base = Arc::new(entry("old", T0));
    let newer = entry("newer", at(52));
    let fetch = Flight::fetch(at(51));
    let refresh = Flight::refresh(Arc::clone(&base), at(51));
    let failure = || Err(Error::failed("test", "down"));
    let fresh = || Ok(AccessToken::new("new", "Bearer", at(51 + 60), at(51 + 50)));
    let short = || Ok(AccessToken::new("short", "Bearer", at(54), at(54)));

    // A fetch that succeeds replaces an absent or older entry, not a newer one.
    let s = settle(None, &fetch, fresh(), at(52));
    assert!(
        matches!(&s.store, Store::Replace(e) if e.token().secret() == "new" && e.obtained() == at(51))
    );
    assert_eq!(s.answer.expect("a token").secret(), "new");
    let s = settle(Some(&base), &fetch, fresh(), at(52));
    assert!(matches!(s.store, Store::Replace(_)));
    let s = settle(Some(&newer), &fetch, fresh(), at(53));
    assert_eq!(
        s.store,
        Store::Keep,
        "an older outcome never replaces a newer entry"
    );
    assert_eq!(s.answer.expect("still answered").secret(), "new");

    // A token that is unusable on arrival is answered, never stored.
    let s = settle(None, &fetch, short(), at(51));
    assert_eq!(s.store, Store::Keep);
    assert_eq!(s.answer.expect("answered").secret(), "short");

    // A failed fetch: the error is the answer and nothing is stored.
    let s = settle(None, &fetch, failure(), at(52));
    assert_eq!(s.store, Store::Keep);
    assert_eq!(s.answer.expect_err("an error").kind(), ErrorKind::Failed);

    // A failed refresh while the token is usable: serve it, back off 30 s.
    let s = settle(Some(&base), &refresh, failure(), at(52));
    match &s.store {
        Store::Replace(e) => {
            assert_eq!(e.token().secret(), "old");
            assert_eq!(e.next_refresh(), at(52) + Duration::seconds(30));
        }
        Store::Keep => panic!("the back-off must be stored"),
    }
    assert_eq!(s.answer.expect("the cached token").secret(), "old");

    // A failed refresh after the token became unusable: the error, and no back-off.
    let s = settle(Some(&base), &refresh, failure(), at(56));
    assert_eq!(s.store, Store::Keep);
    assert!(s.answer.is_err(), "an unusable token is never answered");

    // A failed refresh when the slot already holds a newer entry: keep it.
    let s = settle(Some(&newer), &refresh, failure(), at(53));
    assert_eq!(s.store, Store::Keep);

    // An abandoned flight is a failure like any other.
    let s = settle(Some(&base), &refresh, Err(abandoned("test")), at(52));
    assert_eq!(s.answer.expect("the cached token").secret(), "old");
}

#[test]
fn flights_carry_their_kind_start_and_base() {
    let base = Arc::new(entry("old", T0));
    let f = Flight::refresh(Arc::clone(&base), at(51));
    assert_eq!(f.kind(), FlightKind::Refresh);
    assert_eq!(f.started(), at(51));
    assert_eq!(f.base().map(|b| b.token().secret()), Some("old"));
    assert_eq!(Flight::fetch(at(1)).kind(), FlightKind::Fetch);
    assert!(Flight::fetch(at(1)).base().is_none());
}

#[test]
fn a_slot_runs_one_flight_at_a_time_and_frees_it() {
    let table: Table<u32> = Table::new();
    let slot = table.slot(SCOPE);
    let Begin::Lead(flight, waiter) = slot.begin(T0, || 7) else {
        panic!("an empty slot is led")
    };
    assert_eq!(waiter, 7);
    // While it flies, a caller joins with the same waiter; no second flight starts.
    match slot.begin(T0, || 8) {
        Begin::Join(w) => assert_eq!(w, 7),
        other => panic!("expected to join, got {other:?}"),
    }
    let answer = slot.finish(&flight, Ok(token("T")), T0);
    assert_eq!(answer.expect("a token").secret(), "T");
    match slot.begin(at(1), || 9) {
        Begin::Serve(t) => assert_eq!(t.secret(), "T"),
        other => panic!("expected a hit, got {other:?}"),
    }
    // At the refresh time a refresh is led; meanwhile others are served.
    let Begin::Lead(refresh, _) = slot.begin(at(50), || 10) else {
        panic!("a due refresh is led")
    };
    assert_eq!(refresh.kind(), FlightKind::Refresh);
    assert!(matches!(slot.begin(at(51), || 11), Begin::Serve(_)));
    // Once the token is unusable, callers join the refresh.
    assert!(matches!(slot.begin(at(56), || 12), Begin::Join(10)));
    let answer = slot.finish(&refresh, Err(Error::failed("test", "down")), at(56));
    assert!(answer.is_err());
    // The slot is free again: the next caller leads a fetch.
    assert!(
        matches!(slot.begin(at(56), || 13), Begin::Lead(f, 13) if f.kind() == FlightKind::Fetch)
    );
}

#[test]
fn hits_see_new_entries_and_tables_never_share() {
    let a: Table<()> = Table::new();
    let b: Table<()> = Table::new();
    let now = T0.unix_timestamp_nanos();
    for (table, secret) in [(&a, "A1"), (&b, "B1")] {
        let slot = table.slot(SCOPE);
        let Begin::Lead(f, ()) = slot.begin(T0, || ()) else {
            panic!("led")
        };
        let _ = slot.finish(&f, Ok(token(secret)), T0);
    }
    assert_eq!(a.hit(SCOPE, now).expect("hit").secret(), "A1");
    assert_eq!(b.hit(SCOPE, now).expect("hit").secret(), "B1");
    assert!(a.hit("https://other/.default", now).is_none());
    // A refresh stores a new entry: this thread's replica follows it.
    let slot = a.slot(SCOPE);
    let Begin::Lead(f, ()) = slot.begin(at(50), || ()) else {
        panic!("a due refresh is led")
    };
    let _ = slot.finish(
        &f,
        Ok(AccessToken::new("A2", "Bearer", at(120), at(110))),
        at(50),
    );
    assert_eq!(
        a.hit(SCOPE, at(51).unix_timestamp_nanos())
            .expect("hit")
            .secret(),
        "A2"
    );
    // Past the refresh time a hit declines (the slow path decides), and never serves unusable.
    assert!(b.hit(SCOPE, at(50).unix_timestamp_nanos()).is_none());
    assert!(b.hit(SCOPE, at(59).unix_timestamp_nanos()).is_none());
    // Another thread has its own replica and sees the same entry.
    let seen = std::thread::scope(|s| {
        s.spawn(|| {
            a.hit(SCOPE, at(51).unix_timestamp_nanos())
                .map(|t| t.secret().to_owned())
        })
        .join()
        .expect("thread")
    });
    assert_eq!(seen.as_deref(), Some("A2"));
}

#[test]
fn many_tables_on_one_thread_stay_bounded_and_correct() {
    let now = T0.unix_timestamp_nanos();
    let tables: Vec<Table<()>> = (0..azmi_core::cache::REPLICAS_PER_THREAD * 2)
        .map(|_| Table::new())
        .collect();
    for (i, table) in tables.iter().enumerate() {
        let slot = table.slot(SCOPE);
        let Begin::Lead(f, ()) = slot.begin(T0, || ()) else {
            panic!("led")
        };
        let _ = slot.finish(&f, Ok(token(&format!("T{i}"))), T0);
        assert_eq!(
            table.hit(SCOPE, now).expect("hit").secret(),
            format!("T{i}")
        );
    }
    // Evicted replicas are rebuilt on demand.
    assert_eq!(tables[0].hit(SCOPE, now).expect("hit").secret(), "T0");
}
