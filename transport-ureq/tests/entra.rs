//! The shared Entra credential suite (`azmi_emulator::harness::entra_suite`) against azmi-ureq:
//! secret, certificates, environment and workload identity over https to the emulator.

mod suites;

use azmi_emulator::harness::entra_suite;

#[test]
fn entra_suite() {
    entra_suite::run_all(suites::entra);
}
