//! azmi-hyper's side of the shared suites (`azmi_emulator::harness`), written once for the test
//! binaries that run them: each suite's own file, and `tracing.rs`, which runs them all under a
//! capturing subscriber.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use azmi_core::entra::EntraOptions;
use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, EnvSnapshot, Error};
use azmi_emulator::harness::cache_suite::{CacheHarness, PATIENCE, Script};
use azmi_emulator::harness::entra_suite::{EntraHarness, Kind};
use azmi_emulator::harness::scenario_call::{options_and_env, outcome};
use azmi_emulator::scenarios::{Call, Outcome};
use azmi_hyper::{
    ClientCertificateCredential, ClientSecretCredential, Clock, DefaultAzureCredential,
    EnvironmentCredential, FastForwardClock, ManagedIdentityCredential, TokenCache,
    TokenCredential, WorkloadIdentityCredential,
};
use tokio::runtime::{Builder, Runtime};

/// A managed identity credential built for a scenario call, and one token.
pub(crate) async fn managed_identity(call: &Call) -> Result<AccessToken, Error> {
    let (options, env) = options_and_env(call);
    let credential = ManagedIdentityCredential::builder()
        .options(options)
        .env(env)
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build();
    match credential {
        Ok(credential) => credential.get_token(&[call.scope]).await,
        Err(e) => Err(e),
    }
}

async fn scenario_call(call: &Call) -> Outcome {
    outcome(managed_identity(call).await)
}

pub(crate) fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

pub(crate) fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Each call gets a fresh runtime, as a fresh process would.
pub(crate) fn call_current_thread(call: &Call) -> Outcome {
    current_thread().block_on(scenario_call(call))
}

pub(crate) fn call_multi_thread(call: &Call) -> Outcome {
    multi_thread().block_on(scenario_call(call))
}

/// DefaultAzureCredential from `env`, on a fast-forward clock, and one token for `scope`.
pub(crate) fn default_credential(
    runtime: &Runtime,
    env: EnvSnapshot,
    scope: &str,
) -> Result<AccessToken, Error> {
    runtime.block_on(async {
        DefaultAzureCredential::builder()
            .env(env)
            .clock(Arc::new(FastForwardClock::new()))
            .build()?
            .get_token(&[scope])
            .await
    })
}

pub(crate) fn entra() -> Entra {
    Entra {
        clock: Arc::new(FastForwardClock::new()),
        runtime: Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime"),
    }
}

/// The Entra suite's harness.
pub(crate) struct Entra {
    clock: Arc<FastForwardClock>,
    runtime: Runtime,
}

impl EntraHarness for Entra {
    type Credential = Box<dyn TokenCredential>;

    fn build(
        &self,
        kind: Kind,
        env: EnvSnapshot,
        options: EntraOptions,
    ) -> Result<Self::Credential, Error> {
        let clock = self.clock.clone();
        Ok(match kind {
            Kind::ClientSecret => Box::new(
                ClientSecretCredential::builder()
                    .env(env)
                    .options(options)
                    .clock(clock)
                    .build()?,
            ),
            Kind::ClientCertificate => Box::new(
                ClientCertificateCredential::builder()
                    .env(env)
                    .options(options)
                    .clock(clock)
                    .build()?,
            ),
            Kind::Environment => Box::new(
                EnvironmentCredential::builder()
                    .env(env)
                    .options(options)
                    .clock(clock)
                    .build()?,
            ),
            Kind::WorkloadIdentity => Box::new(
                WorkloadIdentityCredential::builder()
                    .env(env)
                    .options(options)
                    .clock(clock)
                    .build()?,
            ),
        })
    }

    fn get_token(&self, credential: &Self::Credential, scope: &str) -> Result<AccessToken, Error> {
        self.runtime.block_on(credential.get_token(&[scope]))
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The cache suite's harness: azmi-hyper's cache on a multi-thread runtime, with a fast-forward
/// clock and a scripted fetch.
pub(crate) struct Cache {
    cache: Arc<TokenCache>,
    clock: Arc<FastForwardClock>,
    runtime: Runtime,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Cache {
            cache: Arc::new(TokenCache::new()),
            clock: Arc::new(FastForwardClock::new()),
            runtime: multi_thread(),
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

impl CacheHarness for Cache {
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
