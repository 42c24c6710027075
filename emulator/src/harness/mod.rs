//! The test harness the transports share (feature `harness`): the mapping between the scenario
//! list and azmi-core's types, and the cache behaviour suite. Only the transports' tests use it;
//! the emulator's server never touches azmi-core.

pub mod cache_suite;
#[cfg(unix)]
pub mod claims_suite;
#[cfg(unix)]
pub mod default_suite;
#[cfg(unix)]
pub mod dev_tools;
pub mod entra_suite;
pub mod observability;
pub mod scenario_call;
pub mod scripted;
