//! The shared end-to-end scenario list (`azmi_emulator::scenarios`) against azmi-hyper, on a
//! current-thread and on a multi-thread runtime.

mod suites;

use azmi_emulator::scenarios;

#[test]
fn every_scenario() {
    scenarios::run_all("scenario_child", suites::call_current_thread);
}

/// Runs one scenario when re-invoked by `every_scenario` with proxy variables set; otherwise a
/// no-op.
#[test]
fn scenario_child() {
    scenarios::run_child(suites::call_current_thread);
}

#[test]
fn every_scenario_multi_thread() {
    scenarios::run_all("scenario_child_multi_thread", suites::call_multi_thread);
}

/// The child of `every_scenario_multi_thread`.
#[test]
fn scenario_child_multi_thread() {
    scenarios::run_child(suites::call_multi_thread);
}
