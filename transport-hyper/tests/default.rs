//! DefaultAzureCredential (PROTOCOL.md §13): the shared suite, against the emulator and fake
//! developer tools.
#![cfg(unix)]

use std::sync::Arc;

use azmi_emulator::harness::default_suite;
use azmi_emulator::harness::dev_tools::SCOPE;
use azmi_hyper::{DefaultAzureCredential, FastForwardClock};

#[test]
fn every_default_case() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    default_suite::run_all(|env| {
        runtime.block_on(async {
            DefaultAzureCredential::builder()
                .env(env)
                .clock(Arc::new(FastForwardClock::new()))
                .build()?
                .get_token(&[SCOPE])
                .await
        })
    });
}
