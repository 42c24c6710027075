//! The `tracing` feature: the shared suites run under a subscriber that captures every event
//! and span at TRACE with every field formatted; no secret appears in any of it, and the
//! expected events do (`azmi_emulator::harness::observability::logs_are_clean`).
#![cfg(feature = "tracing")]

mod suites;

use azmi_emulator::harness::observability;

#[test]
fn logs_carry_the_events_and_never_a_secret() {
    observability::logs_are_clean(
        suites::scenario_call,
        suites::managed_identity,
        |env| suites::default_credential(env, "https://management.azure.com/.default"),
        suites::entra,
        suites::cache,
    );
}
