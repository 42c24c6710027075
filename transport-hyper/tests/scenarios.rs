//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-hyper, on a
//! current-thread and on a multi-thread runtime.

use std::sync::Arc;

use azmi_emulator::harness::scenario_call::{options_and_env, outcome};
use azmi_emulator::scenarios::{self, Call, Outcome};
use azmi_hyper::{FastForwardClock, ManagedIdentityCredential};
use tokio::runtime::{Builder, Runtime};

async fn get(call: &Call) -> Outcome {
    let (options, env) = options_and_env(call);
    let credential = ManagedIdentityCredential::builder()
        .options(options)
        .env(env)
        // Retry back-offs are skipped, not slept.
        .clock(Arc::new(FastForwardClock::new()))
        .build();
    let result = match credential {
        Ok(credential) => credential.get_token(&[call.scope]).await,
        Err(e) => Err(e),
    };
    outcome(result)
}

fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// Each call gets a fresh runtime, as a fresh process would.
fn call_current_thread(call: &Call) -> Outcome {
    current_thread().block_on(get(call))
}

fn call_multi_thread(call: &Call) -> Outcome {
    multi_thread().block_on(get(call))
}

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", call_current_thread);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(call_current_thread);
}

#[test]
fn every_scenario_multi_thread() {
    scenarios::run_all("scenario_child_multi_thread", call_multi_thread);
}

/// The child of `every_scenario_multi_thread`.
#[test]
fn scenario_child_multi_thread() {
    scenarios::run_child(call_multi_thread);
}
