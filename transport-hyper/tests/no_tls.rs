//! A build without TLS (`--no-default-features`): the shared no-TLS suite
//! (`azmi_emulator::harness::no_tls`) against azmi-hyper. Compiled only without the `tls-*`
//! features; CI runs it with `cargo test -p azmi-hyper --no-default-features --test no_tls`.
#![cfg(not(any(feature = "tls-ring", feature = "tls-aws-lc-rs")))]

use azmi_core::entra::EntraOptions;
use azmi_core::{EnvSnapshot, Error};
use azmi_emulator::harness::no_tls::{self, Credential};
use azmi_emulator::{Config, Emulator};
use azmi_hyper::{EnvironmentCredential, ManagedIdentityCredential};

const SCOPE: &str = "https://management.azure.com/.default";

async fn token(
    credential: Credential,
    env: EnvSnapshot,
    options: EntraOptions,
) -> Result<(), Error> {
    match credential {
        Credential::ManagedIdentity => {
            let c = ManagedIdentityCredential::builder().env(env).build()?;
            c.get_token(&[SCOPE]).await.map(drop)
        }
        Credential::Environment => {
            let c = EnvironmentCredential::builder()
                .env(env)
                .options(options)
                .build()?;
            c.get_token(&[SCOPE]).await.map(drop)
        }
    }
}

#[tokio::test]
async fn http_sources_work_and_https_ones_name_the_feature() {
    let emulator = Emulator::start(Config::default()).expect("the emulator starts");
    for case in no_tls::cases(&emulator) {
        let outcome = token(case.credential, case.env.clone(), case.options.clone()).await;
        no_tls::check(&case, outcome);
    }
}
