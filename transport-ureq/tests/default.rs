//! DefaultAzureCredential (PROTOCOL.md §13): the shared suite, against the emulator and fake
//! developer tools.
#![cfg(unix)]

use std::sync::Arc;

use azmi_emulator::harness::default_suite;
use azmi_emulator::harness::dev_tools::SCOPE;
use azmi_ureq::{DefaultAzureCredential, FastForwardClock};

#[test]
fn every_default_case() {
    default_suite::run_all(|env| {
        DefaultAzureCredential::builder()
            .env(env)
            // Retry back-offs are skipped, not slept.
            .clock(Arc::new(FastForwardClock::new()))
            .build()?
            .get_token(&[SCOPE])
    });
}
