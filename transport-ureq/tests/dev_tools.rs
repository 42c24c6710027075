//! AzureCliCredential and AzureDeveloperCliCredential against fake `az`/`azd` scripts found
//! through an explicit `PATH` (PROTOCOL.md §11, §12): the shared case list, and one run shared
//! by concurrent callers.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Barrier;
use std::time::Duration;

use azmi_core::dev_tool::DeveloperCliOptions;
use azmi_emulator::harness::dev_tools::{self, FakeTools, SCOPE, Tool};
use azmi_ureq::{AzureCliCredential, AzureDeveloperCliCredential};

#[test]
fn every_dev_tool_case() {
    dev_tools::run_all(|tool, env, options| match tool {
        Tool::AzureCli => AzureCliCredential::builder()
            .env(env)
            .options(options)
            .build()?
            .get_token(&[SCOPE]),
        Tool::AzureDeveloperCli => AzureDeveloperCliCredential::builder()
            .env(env)
            .options(options)
            .build()?
            .get_token(&[SCOPE]),
    });
}

#[test]
fn concurrent_callers_share_one_run() {
    let tools = FakeTools::new();
    let runs = tools.dir().join("runs");
    let exp = azmi_core::time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    tools.install(
        "az",
        &format!(
            "echo run >> '{}'\n/bin/sleep 0.3\necho '{{\"accessToken\":\"FAKE-shared\",\"expires_on\":{exp}}}'",
            runs.display()
        ),
    );
    let credential = AzureCliCredential::builder()
        .env(tools.env([]))
        .options(DeveloperCliOptions::default().with_timeout(Duration::from_secs(20)))
        .build()
        .unwrap();
    let callers = 8;
    let barrier = Barrier::new(callers);
    std::thread::scope(|s| {
        for _ in 0..callers {
            s.spawn(|| {
                barrier.wait();
                let token = credential.get_token(&[SCOPE]).unwrap();
                assert_eq!(token.secret(), "FAKE-shared");
            });
        }
    });
    // Later calls are cache hits.
    credential.get_token(&[SCOPE]).unwrap();
    let count = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(count, 1, "every caller must share one az run");
}
