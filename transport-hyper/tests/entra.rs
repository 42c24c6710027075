//! The shared Entra credential suite (`azmi_emulator::harness::entra_suite`) against azmi-hyper:
//! secret, certificates, environment and workload identity over https to the emulator.

use std::sync::Arc;
use std::time::Duration;

use azmi_core::entra::EntraOptions;
use azmi_core::{AccessToken, EnvSnapshot, Error};
use azmi_emulator::harness::entra_suite::{self, EntraHarness, Kind};
use azmi_hyper::{
    ClientCertificateCredential, ClientSecretCredential, EnvironmentCredential, FastForwardClock,
    TokenCredential, WorkloadIdentityCredential,
};
use tokio::runtime::{Builder, Runtime};

struct Harness {
    clock: Arc<FastForwardClock>,
    runtime: Runtime,
}

impl EntraHarness for Harness {
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

#[test]
fn entra_suite() {
    entra_suite::run_all(|| Harness {
        clock: Arc::new(FastForwardClock::new()),
        runtime: Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime"),
    });
}
