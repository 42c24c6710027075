//! `Error::source()` keeps the underlying cause, and the IMDS probe timeout is honoured
//! (`azmi_emulator::harness::observability`, shared with azmi-hyper).

mod suites;

use azmi_emulator::harness::observability;

#[test]
fn errors_keep_their_underlying_cause() {
    observability::source_cases(&suites::managed_identity);
}

#[test]
fn a_short_probe_timeout_is_honoured() {
    let driver = azmi_ureq::Driver::new();
    observability::probe_timeout(move |request| driver.execute(request));
}
