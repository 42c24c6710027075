//! The shared cache behaviour suite (`azmi_emulator::harness::cache_suite`) against azmi-hyper's
//! cache, with a fast-forward clock and a scripted fetch, on a two-worker runtime.

use std::sync::Arc;
use std::time::Duration;

use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, Error};
use azmi_emulator::harness::cache_suite::{self, CacheHarness, PATIENCE, Script};
use azmi_hyper::{Clock, FastForwardClock, TokenCache};
use tokio::runtime::{Builder, Runtime};

struct Harness {
    cache: Arc<TokenCache>,
    clock: Arc<FastForwardClock>,
    runtime: Runtime,
}

impl Harness {
    fn new() -> Self {
        Harness {
            cache: Arc::new(TokenCache::new()),
            clock: Arc::new(FastForwardClock::new()),
            runtime: Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime"),
        }
    }
}

/// One call through the cache; the scripted fetch runs off the workers (it may block at its
/// gate), and its panic is the flight task's panic.
async fn get(
    cache: Arc<TokenCache>,
    clock: Arc<FastForwardClock>,
    scope: &'static str,
    script: Arc<Script>,
) -> Result<AccessToken, Error> {
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    cache
        .get(scope, &dyn_clock, move || async move {
            let now = clock.now();
            match tokio::task::spawn_blocking(move || script.fetch(now)).await {
                Ok(outcome) => outcome,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        })
        .await
}

impl CacheHarness for Harness {
    fn get(&self, scope: &'static str, script: &Arc<Script>) -> Result<AccessToken, Error> {
        let call = get(
            Arc::clone(&self.cache),
            Arc::clone(&self.clock),
            scope,
            Arc::clone(script),
        );
        self.runtime.handle().block_on(call)
    }

    /// Tasks, not threads: 1000 concurrent callers on two workers.
    fn get_many(
        &self,
        n: usize,
        scope: &'static str,
        script: &Arc<Script>,
    ) -> Vec<Result<AccessToken, Error>> {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                self.runtime.spawn(get(
                    Arc::clone(&self.cache),
                    Arc::clone(&self.clock),
                    scope,
                    Arc::clone(script),
                ))
            })
            .collect();
        self.runtime.handle().block_on(async {
            let mut answers = Vec::with_capacity(n);
            for call in calls {
                answers.push(call.await.unwrap_or_else(|_| {
                    Err(Error::failed("cache-suite", "a caller task panicked"))
                }));
            }
            answers
        })
    }

    fn can_cancel(&self) -> bool {
        true
    }

    fn cancel_leader(&self, scope: &'static str, script: &Arc<Script>) {
        let call = get(
            Arc::clone(&self.cache),
            Arc::clone(&self.clock),
            scope,
            Arc::clone(script),
        );
        let script = Arc::clone(script);
        self.runtime.handle().block_on(async move {
            let started = async {
                while script.started() == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            // The call's future is dropped as soon as its fetch has started.
            let _ = tokio::time::timeout(PATIENCE, async {
                tokio::select! {
                    _ = call => {}
                    () = started => {}
                }
            })
            .await;
        });
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[test]
fn every_cache_case() {
    cache_suite::run_all(Harness::new);
}
