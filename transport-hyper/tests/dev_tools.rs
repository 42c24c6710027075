//! AzureCliCredential and AzureDeveloperCliCredential against fake `az`/`azd` scripts found
//! through an explicit `PATH` (PROTOCOL.md §11, §12): the shared case list, and one run shared
//! by concurrent callers.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use azmi_core::dev_tool::DeveloperCliOptions;
use azmi_emulator::harness::dev_tools::{self, FakeTools, SCOPE, Tool};
use azmi_hyper::{AzureCliCredential, AzureDeveloperCliCredential};

#[test]
fn every_dev_tool_case() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    dev_tools::run_all(|tool, env, options| {
        runtime.block_on(async {
            match tool {
                Tool::AzureCli => {
                    AzureCliCredential::builder()
                        .env(env)
                        .options(options)
                        .build()?
                        .get_token(&[SCOPE])
                        .await
                }
                Tool::AzureDeveloperCli => {
                    AzureDeveloperCliCredential::builder()
                        .env(env)
                        .options(options)
                        .build()?
                        .get_token(&[SCOPE])
                        .await
                }
            }
        })
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_run() {
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
    let credential = Arc::new(
        AzureCliCredential::builder()
            .env(tools.env([]))
            .options(DeveloperCliOptions::default().with_timeout(Duration::from_secs(20)))
            .build()
            .unwrap(),
    );
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let credential = Arc::clone(&credential);
            tokio::spawn(async move { credential.get_token(&[SCOPE]).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().secret(), "FAKE-shared");
    }
    credential.get_token(&[SCOPE]).await.unwrap();
    let count = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(count, 1, "every caller must share one az run");
}
