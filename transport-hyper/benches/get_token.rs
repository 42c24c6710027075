//! `cargo bench -p azmi-hyper`: the cache-hit path on a current-thread runtime and with two
//! tasks on a two-worker runtime, and a cold acquisition against the in-process emulator.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azmi_core::EnvSnapshot;
use azmi_emulator::{Config, Emulator, Source};
use azmi_hyper::ManagedIdentityCredential;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::{Builder, Runtime};

const SCOPE: &str = "https://vault.azure.net/.default";

fn credential(emulator: &Emulator) -> ManagedIdentityCredential {
    ManagedIdentityCredential::builder()
        .env(EnvSnapshot::from_pairs(emulator.env(Source::Imds)))
        .build()
        .expect("credential")
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn cache_hit(c: &mut Criterion) {
    let emulator = Emulator::start(Config::default()).expect("emulator");
    let credential = credential(&emulator);

    // The loop runs inside one `block_on`, so the figure is the cost of awaiting `get_token`,
    // not of entering the runtime.
    let runtime = current_thread();
    runtime
        .block_on(credential.get_token(&[SCOPE]))
        .expect("warm the cache");
    c.bench_function("hyper/get_token/cache_hit/current_thread", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(
                        credential
                            .get_token(black_box(&[SCOPE]))
                            .await
                            .expect("hit"),
                    );
                }
                started.elapsed()
            })
        })
    });

    // Two tasks on two workers hammer the same entry; the figure is the time per call in each
    // task.
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("hyper/get_token/cache_hit/multi_thread_2_tasks", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let barrier = Arc::new(tokio::sync::Barrier::new(2));
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let (credential, barrier) = (credential.clone(), Arc::clone(&barrier));
                        tokio::spawn(async move {
                            barrier.wait().await;
                            let started = Instant::now();
                            for _ in 0..iters {
                                black_box(
                                    credential
                                        .get_token(black_box(&[SCOPE]))
                                        .await
                                        .expect("hit"),
                                );
                            }
                            started.elapsed()
                        })
                    })
                    .collect();
                let mut slowest = Duration::ZERO;
                for task in tasks {
                    slowest = slowest.max(task.await.expect("task"));
                }
                slowest
            })
        })
    });
}

fn cold(c: &mut Criterion) {
    let emulator = Emulator::start(Config::default()).expect("emulator");
    let env = EnvSnapshot::from_pairs(emulator.env(Source::Imds));
    let runtime = current_thread();
    // A new credential each time: a new cache and a new connection, one request.
    c.bench_function("hyper/get_token/cold_acquisition", |b| {
        b.iter(|| {
            let credential = ManagedIdentityCredential::builder()
                .env(env.clone())
                .build()
                .expect("credential");
            black_box(
                runtime
                    .block_on(credential.get_token(&[SCOPE]))
                    .expect("token"),
            )
        })
    });
}

criterion_group!(benches, cache_hit, cold);
criterion_main!(benches);
