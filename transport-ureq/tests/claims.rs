//! Claims challenges (PROTOCOL.md §14): the shared suite against the emulator and fake tools.
#![cfg(unix)]

use std::sync::Arc;

use azmi_core::TokenRequestOptions;
use azmi_emulator::harness::claims_suite::{self, Get, Kind};
use azmi_emulator::harness::dev_tools::SCOPE;
use azmi_ureq::{
    AzureCliCredential, AzureDeveloperCliCredential, FastForwardClock, ManagedIdentityCredential,
    TokenCredential,
};

#[test]
fn every_claims_case() {
    claims_suite::run_all(|kind, env, options| -> Get {
        let clock = Arc::new(FastForwardClock::new());
        let credential: Arc<dyn TokenCredential> = match kind {
            Kind::ManagedIdentity => Arc::new(
                ManagedIdentityCredential::builder()
                    .env(env)
                    .options(options)
                    .clock(clock)
                    .build()
                    .expect("a credential"),
            ),
            Kind::AzureCli => Arc::new(
                AzureCliCredential::builder()
                    .env(env)
                    .clock(clock)
                    .build()
                    .expect("a credential"),
            ),
            Kind::AzureDeveloperCli => Arc::new(
                AzureDeveloperCliCredential::builder()
                    .env(env)
                    .clock(clock)
                    .build()
                    .expect("a credential"),
            ),
        };
        Box::new(move |claims| match claims {
            None => credential.get_token(&[SCOPE]),
            Some(claims) => {
                credential.get_token_with(&[SCOPE], &TokenRequestOptions::new().with_claims(claims))
            }
        })
    });
}
