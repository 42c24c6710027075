//! The `tracing` feature: the shared suites run under a subscriber that captures every event
//! and span at TRACE with every field formatted; no secret appears in any of it, and the
//! expected events do (`azmi_emulator::harness::observability::logs_are_clean`).
#![cfg(feature = "tracing")]

mod suites;

use azmi_emulator::harness::observability;

#[test]
fn logs_carry_the_events_and_never_a_secret() {
    let runtime = suites::multi_thread();
    observability::logs_are_clean(
        suites::call_multi_thread,
        |call| runtime.block_on(suites::managed_identity(call)),
        |env| suites::default_credential(&runtime, env, "https://management.azure.com/.default"),
        suites::entra,
        suites::Cache::new,
    );
}
