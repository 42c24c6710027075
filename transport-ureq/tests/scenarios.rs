//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-ureq.

mod suites;

use azmi_emulator::scenarios;

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", suites::scenario_call);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(suites::scenario_call);
}
