//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-ureq.

use std::sync::Arc;

use azmi_emulator::harness::scenario_call::{options_and_env, outcome};
use azmi_emulator::scenarios::{self, Call, Outcome};
use azmi_ureq::{FastForwardClock, ManagedIdentityCredential};

fn call(call: &Call) -> Outcome {
    let (options, env) = options_and_env(call);
    let result = ManagedIdentityCredential::builder()
        .options(options)
        .env(env)
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build()
        .and_then(|credential| credential.get_token(&[call.scope]));
    outcome(result)
}

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", call);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(call);
}
