//! azmi-ureq's side of the shared suites (`azmi_emulator::harness`), written once for the test
//! binaries that run them: each suite's own file, and `tracing.rs`, which runs them all under a
//! capturing subscriber.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use azmi_core::entra::EntraOptions;
use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, EnvSnapshot, Error};
use azmi_emulator::harness::cache_suite::{CacheHarness, Script};
use azmi_emulator::harness::entra_suite::{EntraHarness, Kind};
use azmi_emulator::harness::scenario_call::{options_and_env, outcome};
use azmi_emulator::scenarios::{Call, Outcome};
use azmi_ureq::{
    ClientCertificateCredential, ClientSecretCredential, Clock, DefaultAzureCredential,
    EnvironmentCredential, FastForwardClock, ManagedIdentityCredential, TokenCache,
    TokenCredential, WorkloadIdentityCredential,
};

/// A managed identity credential built for a scenario call, and one token.
pub(crate) fn managed_identity(call: &Call) -> Result<AccessToken, Error> {
    let (options, env) = options_and_env(call);
    ManagedIdentityCredential::builder()
        .options(options)
        .env(env)
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build()
        .and_then(|credential| credential.get_token(&[call.scope]))
}

/// [`managed_identity`] as the scenario list sees it.
pub(crate) fn scenario_call(call: &Call) -> Outcome {
    outcome(managed_identity(call))
}

/// DefaultAzureCredential from `env`, on a fast-forward clock, and one token for `scope`.
pub(crate) fn default_credential(env: EnvSnapshot, scope: &str) -> Result<AccessToken, Error> {
    DefaultAzureCredential::builder()
        .env(env)
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build()?
        .get_token(&[scope])
}

/// The Entra suite's harness.
pub(crate) struct Entra {
    clock: Arc<FastForwardClock>,
}

pub(crate) fn entra() -> Entra {
    Entra {
        clock: Arc::new(FastForwardClock::new()),
    }
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
        credential.get_token(&[scope])
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// The cache suite's harness: azmi-ureq's cache with a fast-forward clock and a scripted fetch.
pub(crate) struct Cache {
    cache: TokenCache,
    clock: FastForwardClock,
}

pub(crate) fn cache() -> Cache {
    Cache {
        cache: TokenCache::new(),
        clock: FastForwardClock::new(),
    }
}

impl CacheHarness for Cache {
    fn get(&self, scope: &'static str, script: &Arc<Script>) -> Result<AccessToken, Error> {
        self.cache
            .get(scope, &self.clock, || script.fetch(self.clock.now()))
    }

    /// A blocking call cannot be cancelled; the suite does not ask (`can_cancel` is false).
    fn cancel_leader(&self, _scope: &'static str, _script: &Arc<Script>) {}

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}
