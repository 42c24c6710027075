//! The cache under concurrency, against the in-process emulator: single flight on a cold cache,
//! proactive refresh by exactly one caller, a failed refresh that keeps serving, and callers
//! that give up (their futures dropped) without hurting the others. Loopback only; every loop
//! and wait is bounded.

use std::sync::Arc;
use std::time::Duration;

use azmi_core::EnvSnapshot;
use azmi_emulator::{Config, Emulator, Fault, Source};
use azmi_hyper::{FastForwardClock, ManagedIdentityCredential};

const SCOPE: &str = "https://management.azure.com/.default";
/// The emulator's tokens live 24 h, so the cache refreshes them at half-life.
const PAST_REFRESH: Duration = Duration::from_secs(12 * 3600 + 60);
/// An upper bound for anything a test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

fn emulator() -> Emulator {
    Emulator::start(Config::default()).expect("the emulator starts")
}

fn credential(
    emulator: &Emulator,
    clock: Option<Arc<FastForwardClock>>,
) -> ManagedIdentityCredential {
    let mut builder = ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)));
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    builder.build().expect("the credential builds")
}

async fn get(credential: &ManagedIdentityCredential) -> String {
    tokio::time::timeout(PATIENCE, credential.get_token(&[SCOPE]))
        .await
        .expect("get_token finishes in time")
        .expect("get_token succeeds")
        .secret()
        .to_owned()
}

/// Polls `emulator` until it has recorded `n` requests, for at most `PATIENCE`.
async fn recorded(emulator: &Emulator, n: usize) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if emulator.request_count() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Spawns `n` tasks that each get a token, and collects their secrets.
async fn many(credential: &ManagedIdentityCredential, n: usize) -> Vec<String> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { get(&credential).await })
        })
        .collect();
    let mut secrets = Vec::with_capacity(n);
    for handle in handles {
        secrets.push(handle.await.expect("the task does not panic"));
    }
    secrets
}

fn all_equal(secrets: &[String]) -> bool {
    secrets.windows(2).all(|w| w[0] == w[1])
}

async fn cold_cache_single_flight(tasks: usize) {
    let emulator = emulator();
    // Slow enough that every task arrives while the one request is outstanding.
    emulator.push_fault(Fault::delay(Duration::from_millis(200)));
    let credential = credential(&emulator, None);
    let secrets = many(&credential, tasks).await;
    assert_eq!(secrets.len(), tasks);
    assert!(
        all_equal(&secrets),
        "every caller gets the one fetched token"
    );
    assert_eq!(
        emulator.request_count(),
        1,
        "{tasks} concurrent callers, one request"
    );
    // And from now on, the cache.
    assert_eq!(get(&credential).await, secrets[0]);
    assert_eq!(emulator.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_tasks_on_a_cold_cache_send_one_request() {
    cold_cache_single_flight(1000).await;
}

#[tokio::test(flavor = "current_thread")]
async fn thousand_tasks_on_a_cold_cache_send_one_request_current_thread() {
    cold_cache_single_flight(1000).await;
}

async fn proactive_refresh_by_one_caller() {
    let emulator = emulator();
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Some(Arc::clone(&clock)));
    let first = get(&credential).await;
    assert_eq!(emulator.request_count(), 1);

    clock.advance(PAST_REFRESH);
    emulator.push_fault(Fault::delay(Duration::from_millis(1000)));
    let refresher = {
        let credential = credential.clone();
        tokio::spawn(async move { get(&credential).await })
    };
    assert!(recorded(&emulator, 2).await, "the refresh request is sent");

    // While the refresh is outstanding, everyone else is served the cached token at once.
    let others = tokio::time::timeout(Duration::from_millis(600), many(&credential, 50))
        .await
        .expect("callers are not held up by the refresh");
    assert!(others.iter().all(|s| *s == first));

    let refreshed = refresher.await.expect("the refresher does not panic");
    assert_ne!(refreshed, first, "the refresher gets the new token");
    assert_eq!(get(&credential).await, refreshed, "the new token is cached");
    assert_eq!(emulator.request_count(), 2, "exactly one refresh request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_refresh_is_done_by_one_caller_while_others_are_served() {
    proactive_refresh_by_one_caller().await;
}

#[tokio::test(flavor = "current_thread")]
async fn proactive_refresh_is_done_by_one_caller_current_thread() {
    proactive_refresh_by_one_caller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_serving_the_cached_token_and_backs_off() {
    let emulator = emulator();
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Some(Arc::clone(&clock)));
    let first = get(&credential).await;

    clock.advance(PAST_REFRESH);
    // A status IMDS does not retry: the refresh fails with one request.
    emulator.push_fault(Fault::status(403));
    assert_eq!(
        get(&credential).await,
        first,
        "the refresher falls back to the cached token"
    );
    assert_eq!(emulator.request_count(), 2);

    // Within the 30 s back-off, no new refresh starts.
    clock.advance(Duration::from_secs(20));
    for secret in many(&credential, 20).await {
        assert_eq!(secret, first);
    }
    assert_eq!(
        emulator.request_count(),
        2,
        "no refresh during the back-off"
    );

    // After it, the next caller refreshes, and succeeds.
    clock.advance(Duration::from_secs(11));
    let refreshed = get(&credential).await;
    assert_ne!(refreshed, first);
    assert_eq!(emulator.request_count(), 3);
    assert_eq!(get(&credential).await, refreshed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_retries_all_fail_still_keeps_serving() {
    let emulator = emulator();
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Some(Arc::clone(&clock)));
    let first = get(&credential).await;

    clock.advance(PAST_REFRESH);
    // IMDS retries 503 five times; the fast-forward clock skips the back-offs.
    emulator.push_fault(Fault::status(503).times(6));
    assert_eq!(get(&credential).await, first);
    assert_eq!(emulator.request_count(), 1 + 6);
    assert!(
        clock.slept() > Duration::ZERO,
        "the retry back-offs went through the clock"
    );
}

async fn cancelled_leader_does_not_wedge_others() {
    let emulator = emulator();
    emulator.push_fault(Fault::delay(Duration::from_millis(300)));
    let credential = credential(&emulator, None);

    // The caller that starts the fetch gives up long before the answer comes.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), credential.get_token(&[SCOPE])).await;
    assert!(gave_up.is_err(), "the first caller was cancelled");

    // The fetch goes on without it: the others join it and get the token.
    let secrets = many(&credential, 20).await;
    assert!(all_equal(&secrets));
    assert_eq!(emulator.request_count(), 1, "still exactly one request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_does_not_wedge_or_fail_the_others() {
    cancelled_leader_does_not_wedge_others().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_leader_does_not_wedge_or_fail_the_others_current_thread() {
    cancelled_leader_does_not_wedge_others().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_followers_do_not_disturb_the_waiting_ones() {
    let emulator = emulator();
    emulator.push_fault(Fault::delay(Duration::from_millis(300)));
    let credential = credential(&emulator, None);

    // Half the callers give up after a few milliseconds, half wait.
    let handles: Vec<_> = (0..40u64)
        .map(|i| {
            let credential = credential.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let limit = Duration::from_millis(5 + i);
                    // Gives up (or, on a badly stalled machine, is served): either way it
                    // must not disturb the others.
                    let _ = tokio::time::timeout(limit, credential.get_token(&[SCOPE])).await;
                    None
                } else {
                    Some(get(&credential).await)
                }
            })
        })
        .collect();
    let mut waited = Vec::new();
    for handle in handles {
        if let Some(secret) = handle.await.expect("no task panics") {
            waited.push(secret);
        }
    }
    assert_eq!(waited.len(), 20);
    assert!(all_equal(&waited));
    assert_eq!(emulator.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_refresher_does_not_stop_the_refresh() {
    let emulator = emulator();
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Some(Arc::clone(&clock)));
    let first = get(&credential).await;

    clock.advance(PAST_REFRESH);
    emulator.push_fault(Fault::delay(Duration::from_millis(1000)));
    let gave_up =
        tokio::time::timeout(Duration::from_millis(20), credential.get_token(&[SCOPE])).await;
    assert!(gave_up.is_err(), "the refresher was cancelled");
    assert_eq!(
        get(&credential).await,
        first,
        "the cached token is served meanwhile"
    );

    // The refresh completes on its own and fills the cache (bounded wait).
    let mut latest = first.clone();
    for _ in 0..500 {
        latest = get(&credential).await;
        if latest != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(latest, first, "the refresh landed without its caller");
    assert_eq!(emulator.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_shared_by_the_flight_but_never_cached() {
    let emulator = emulator();
    emulator.push_fault(Fault::status(403).with_delay(Duration::from_millis(1000)));
    let credential = credential(&emulator, None);

    let handles: Vec<_> = (0..10)
        .map(|_| {
            let credential = credential.clone();
            tokio::spawn(async move { credential.get_token(&[SCOPE]).await })
        })
        .collect();
    for handle in handles {
        let result = handle.await.expect("no task panics");
        assert_eq!(
            result.expect_err("the shared fetch failed").status(),
            Some(403)
        );
    }
    assert_eq!(
        emulator.request_count(),
        1,
        "ten callers shared one failing request"
    );

    // The error was not cached: the next call asks again and succeeds.
    let _ = get(&credential).await;
    assert_eq!(emulator.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_cached_separately() {
    let emulator = emulator();
    let credential = credential(&emulator, None);
    let vault = "https://vault.azure.net/.default";
    let a = get(&credential).await;
    let b = credential
        .get_token(&[vault])
        .await
        .expect("a token")
        .secret()
        .to_owned();
    assert_ne!(a, b);
    assert_eq!(get(&credential).await, a);
    assert_eq!(
        credential
            .get_token(&[vault])
            .await
            .expect("a token")
            .secret(),
        b
    );
    assert_eq!(emulator.request_count(), 2);
}

#[tokio::test]
async fn an_unusable_token_is_never_served() {
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(3600)))
        .expect("the emulator starts");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Some(Arc::clone(&clock)));
    let old = get(&credential).await;
    // Five minutes before expiry the token is unusable: callers wait for a fetch.
    clock.advance(Duration::from_secs(3600 - 299));
    let new = get(&credential).await;
    assert_ne!(new, old);
    assert_eq!(emulator.request_count(), 2);
}

#[tokio::test]
async fn short_lived_tokens_are_returned_but_not_cached() {
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(120)))
        .expect("the emulator starts");
    let credential = credential(&emulator, None);
    let first = get(&credential).await;
    let second = get(&credential).await;
    assert_ne!(first, second);
    assert_eq!(emulator.request_count(), 2);
}
