//! A build without TLS (`--no-default-features`): the shared no-TLS suite
//! (`azmi_emulator::harness::no_tls`) against azmi-ureq. Compiled only without the `tls-*`
//! features; CI runs it with `cargo test -p azmi-ureq --no-default-features --test no_tls`.
#![cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]

use azmi_emulator::harness::no_tls::{self, Credential};
use azmi_emulator::{Config, Emulator};
use azmi_ureq::{EnvironmentCredential, ManagedIdentityCredential};

const SCOPE: &str = "https://management.azure.com/.default";

#[test]
fn http_sources_work_and_https_ones_name_the_feature() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    for case in no_tls::cases(&emulator) {
        let env = case.env.clone();
        let outcome = match case.credential {
            Credential::ManagedIdentity => ManagedIdentityCredential::builder()
                .env(env)
                .build()
                .and_then(|c| c.get_token(&[SCOPE]).map(drop)),
            Credential::Environment => EnvironmentCredential::builder()
                .env(env)
                .options(case.options.clone())
                .build()
                .and_then(|c| c.get_token(&[SCOPE]).map(drop)),
        };
        no_tls::check(&case, outcome);
    }
}
