//! The credential's cache against the emulator: single flight, proactive refresh, failed
//! refresh, expiry, errors not cached, and secrets never printed.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use azmi_core::{EnvSnapshot, ErrorKind, ManagedIdentityOptions};
use azmi_emulator::{Config, Emulator, Fault, Source};
use azmi_ureq::{FastForwardClock, ManagedIdentityCredential};

const SCOPE: &str = "https://vault.azure.net/.default";

fn credential(
    emulator: &Emulator,
    source: Source,
    clock: &Arc<FastForwardClock>,
) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(source)))
        .clock(Arc::clone(clock) as Arc<dyn azmi_ureq::Clock>)
        .build()
        .expect("credential")
}

#[test]
fn cold_cache_64_threads_make_one_request() {
    // The delay keeps the first request in flight while every thread arrives.
    let emulator =
        Emulator::start(Config::default().fault(Fault::delay(Duration::from_millis(300))))
            .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::Imds, &clock);
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (credential, barrier) = (credential.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                credential
                    .get_token(&[SCOPE])
                    .map(|t| t.secret().to_string())
            })
        })
        .collect();
    let tokens: Vec<String> = handles
        .into_iter()
        .map(|h| h.join().expect("thread").expect("token"))
        .collect();
    assert_eq!(emulator.requests().len(), 1, "one request for 64 callers");
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every caller got the shared result"
    );
}

#[test]
fn cold_cache_errors_are_shared_and_not_cached() {
    let emulator = Emulator::start(
        Config::default().fault(Fault::status(403).with_delay(Duration::from_millis(300))),
    )
    .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::Imds, &clock);
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (credential, barrier) = (credential.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                credential.get_token(&[SCOPE]).map(|_| ())
            })
        })
        .collect();
    for handle in handles {
        let error = handle.join().expect("thread").expect_err("the shared 403");
        assert_eq!(
            (error.kind(), error.status()),
            (ErrorKind::Failed, Some(403))
        );
    }
    assert_eq!(emulator.requests().len(), 1);
    // Errors are never cached: the next call asks again, and succeeds.
    credential
        .get_token(&[SCOPE])
        .expect("token after the fault");
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn hit_serves_the_same_token_without_a_request() {
    let emulator = Emulator::start(Config::default()).expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::AppService, &clock);
    let first = credential.get_token(&[SCOPE]).expect("token");
    for _ in 0..100 {
        assert_eq!(credential.get_token(&[SCOPE]).expect("hit"), first);
    }
    assert_eq!(emulator.requests().len(), 1);
    // Another scope is another entry.
    credential
        .get_token(&["https://storage.azure.com/.default"])
        .expect("token");
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn proactive_refresh_by_one_caller_while_others_are_served() {
    // 24 h tokens refresh at half-life.
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(86_400)))
        .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::Imds, &clock);
    let old = credential.get_token(&[SCOPE]).expect("token");
    clock.advance(Duration::from_secs(12 * 3600 + 60));
    // The refresh is slow, so the other callers arrive while it is in flight.
    emulator.push_fault(Fault::delay(Duration::from_millis(400)));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (credential, barrier) = (credential.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                credential.get_token(&[SCOPE]).expect("token")
            })
        })
        .collect();
    let tokens: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_eq!(emulator.requests().len(), 2, "exactly one refresh request");
    let fresh: Vec<_> = tokens.iter().filter(|t| **t != old).collect();
    assert_eq!(
        fresh.len(),
        1,
        "only the refreshing caller waited for the new token"
    );
    let new = fresh[0].clone();
    assert_eq!(
        credential.get_token(&[SCOPE]).expect("hit"),
        new,
        "the refreshed token is cached"
    );
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn failed_refresh_keeps_serving_and_backs_off_30_s() {
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(86_400)))
        .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::AppService, &clock);
    let old = credential.get_token(&[SCOPE]).expect("token");
    clock.advance(Duration::from_secs(12 * 3600 + 60));
    emulator.push_fault(Fault::status(400).times(1_000));
    assert_eq!(
        credential
            .get_token(&[SCOPE])
            .expect("cached despite the failure"),
        old
    );
    let after_failure = emulator.requests().len();
    assert_eq!(after_failure, 2, "one refresh attempt (400 is not retried)");
    clock.advance(Duration::from_secs(20));
    assert_eq!(credential.get_token(&[SCOPE]).expect("cached"), old);
    assert_eq!(
        emulator.requests().len(),
        after_failure,
        "no attempt within 30 s"
    );
    clock.advance(Duration::from_secs(15));
    assert_eq!(credential.get_token(&[SCOPE]).expect("cached"), old);
    assert_eq!(
        emulator.requests().len(),
        after_failure + 1,
        "a new attempt after 30 s"
    );
}

#[test]
fn unusable_token_is_never_served() {
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(3600)))
        .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::Imds, &clock);
    let old = credential.get_token(&[SCOPE]).expect("token");
    // Five minutes before expiry the token is unusable: callers wait for a fetch.
    clock.advance(Duration::from_secs(3600 - 299));
    let new = credential.get_token(&[SCOPE]).expect("token");
    assert_ne!(new, old);
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn short_lived_tokens_are_returned_but_not_cached() {
    let emulator = Emulator::start(Config::default().token_lifetime(Duration::from_secs(120)))
        .expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::Imds, &clock);
    credential.get_token(&[SCOPE]).expect("token");
    credential.get_token(&[SCOPE]).expect("token");
    assert_eq!(emulator.requests().len(), 2);
}

#[test]
fn secrets_never_printed() {
    let emulator =
        Emulator::start(Config::default().identity_header("SENTINEL-hdr-77")).expect("emulator");
    let clock = Arc::new(FastForwardClock::new());
    let credential = credential(&emulator, Source::AppService, &clock);
    let token = credential.get_token(&[SCOPE]).expect("token");
    let printed = format!(
        "{credential:?} {token:?} {token} {:?}",
        credential.detection()
    );
    assert!(!printed.contains(token.secret()), "{printed}");
    assert!(!printed.contains("SENTINEL-hdr-77"), "{printed}");
    emulator.push_fault(
        Fault::status(500)
            .body(format!(
                r#"{{"access_token":"{}","message":"boom"}}"#,
                token.secret()
            ))
            .times(100),
    );
    let error = credential
        .get_token(&["https://other.example/.default"])
        .expect_err("500s");
    let printed = format!("{error} {error:?}");
    assert!(
        !printed.contains(token.secret()) && !printed.contains("SENTINEL-hdr-77"),
        "{printed}"
    );
}

#[test]
fn credential_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<ManagedIdentityCredential>();
    let options = ManagedIdentityOptions::default().with_client_id("x y");
    let error = ManagedIdentityCredential::builder()
        .options(options)
        .env(EnvSnapshot::new())
        .build()
        .expect_err("bad id");
    assert_eq!(error.kind(), ErrorKind::Configuration);
}
