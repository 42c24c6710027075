//! `Error::source()` keeps the underlying cause, and the IMDS probe timeout is honoured
//! (`azmi_emulator::harness::observability`, shared with azmi-ureq).

mod suites;

use azmi_emulator::harness::observability;

#[test]
fn errors_keep_their_underlying_cause() {
    let runtime = suites::current_thread();
    observability::source_cases(&|call| runtime.block_on(suites::managed_identity(call)));
}

#[test]
fn a_short_probe_timeout_is_honoured() {
    let runtime = suites::current_thread();
    let driver = azmi_hyper::Driver::new();
    observability::probe_timeout(move |request| runtime.block_on(driver.execute(request)));
}
