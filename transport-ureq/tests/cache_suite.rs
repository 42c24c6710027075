//! The shared cache behaviour suite (`azmi_emulator::harness::cache_suite`) against azmi-ureq's
//! cache, with a fast-forward clock and a scripted fetch.

use std::sync::Arc;
use std::time::Duration;

use azmi_core::time::OffsetDateTime;
use azmi_core::{AccessToken, Error};
use azmi_emulator::harness::cache_suite::{self, CacheHarness, Script};
use azmi_ureq::{Clock, FastForwardClock, TokenCache};

struct Harness {
    cache: TokenCache,
    clock: FastForwardClock,
}

impl CacheHarness for Harness {
    fn get(&self, scope: &'static str, script: &Arc<Script>) -> Result<AccessToken, Error> {
        self.cache
            .get(scope, &self.clock, || script.fetch(self.clock.now()))
    }

    /// A blocking call cannot be cancelled; the suite does not ask (`can_cancel` is false).
    fn cancel_leader(&self, _scope: &'static str, _script: &Arc<Script>) {}

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[test]
fn every_cache_case() {
    cache_suite::run_all(|| Harness {
        cache: TokenCache::new(),
        clock: FastForwardClock::new(),
    });
}
