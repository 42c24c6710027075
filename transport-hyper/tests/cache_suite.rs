//! The shared cache behaviour suite (`azmi_emulator::harness::cache_suite`) against azmi-hyper's
//! cache, with a fast-forward clock and a scripted fetch, on a two-worker runtime.

mod suites;

use azmi_emulator::harness::cache_suite;

#[test]
fn every_cache_case() {
    cache_suite::run_all(suites::Cache::new);
}
