//! The shared cache behaviour suite (`azmi_emulator::harness::cache_suite`) against azmi-ureq's
//! cache, with a fast-forward clock and a scripted fetch.

mod suites;

use azmi_emulator::harness::cache_suite;

#[test]
fn every_cache_case() {
    cache_suite::run_all(suites::cache);
}
