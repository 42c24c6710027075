//! DefaultAzureCredential (PROTOCOL.md §13): the shared suite, against the emulator and fake
//! developer tools.
#![cfg(unix)]

mod suites;

use azmi_emulator::harness::default_suite;
use azmi_emulator::harness::dev_tools::SCOPE;

#[test]
fn every_default_case() {
    let runtime = suites::multi_thread();
    default_suite::run_all(|env| suites::default_credential(&runtime, env, SCOPE));
}
