//! `cargo bench -p azmi-ureq`: the cache-hit path with one and two threads, and a cold
//! acquisition against the in-process emulator.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use azmi_core::EnvSnapshot;
use azmi_emulator::{Config, Emulator, Source};
use azmi_ureq::ManagedIdentityCredential;
use criterion::{Criterion, criterion_group, criterion_main};

const SCOPE: &str = "https://vault.azure.net/.default";

fn credential(emulator: &Emulator) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .build()
        .expect("credential")
}

fn cache_hit(c: &mut Criterion) {
    let emulator = Emulator::start(Config::default()).expect("emulator");
    let credential = credential(&emulator);
    credential.get_token(&[SCOPE]).expect("warm the cache");

    c.bench_function("ureq/get_token/cache_hit/1_thread", |b| {
        b.iter(|| black_box(credential.get_token(black_box(&[SCOPE])).expect("hit")))
    });

    // Both threads hammer the same entry; the figure is the time per call on each thread.
    c.bench_function("ureq/get_token/cache_hit/2_threads", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(2));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let (credential, barrier) = (credential.clone(), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        let started = Instant::now();
                        for _ in 0..iters {
                            black_box(credential.get_token(black_box(&[SCOPE])).expect("hit"));
                        }
                        started.elapsed()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("thread"))
                .max()
                .unwrap_or(Duration::ZERO)
        })
    });
}

fn cold(c: &mut Criterion) {
    let emulator = Emulator::start(Config::default()).expect("emulator");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::Imds));
    c.bench_function("ureq/get_token/cold_acquisition", |b| {
        b.iter(|| {
            let credential = ManagedIdentityCredential::builder()
                .env(env.clone())
                .build()
                .expect("credential");
            black_box(credential.get_token(&[SCOPE]).expect("token"))
        })
    });
}

criterion_group!(benches, cache_hit, cold);
criterion_main!(benches);
