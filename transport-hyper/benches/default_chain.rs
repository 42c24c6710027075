//! `cargo bench -p azmi-hyper --bench default_chain`: how fast DefaultAzureCredential reaches its
//! verdict off Azure (issue 13's target: ≤ 1 s), with no developer tool installed:
//! - the managed identity endpoint refusing connections (a loopback port nothing listens on);
//! - the host's IMDS address swallowing requests (a loopback listener that never answers), so
//!   the IMDS probe's 1 s timeout decides (PROTOCOL.md §2.1) — the worst case off Azure;
//! - `AZURE_TOKEN_CREDENTIALS=dev`, which sends no network request at all.
//!
//! Loopback only. The blocking twin is `azmi-ureq`'s bench of the same name.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use azmi_core::EnvSnapshot;
use azmi_emulator::harness::default_suite::{refused_base, silent_base};
use azmi_hyper::DefaultAzureCredential;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const SCOPE: &str = "https://management.azure.com/.default";

fn verdict(runtime: &Runtime, credential: &DefaultAzureCredential) -> azmi_core::Error {
    runtime
        .block_on(credential.get_token(&[SCOPE]))
        .expect_err("no credential here")
}

fn verdicts(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // An empty directory as the only search path: neither `az` nor `azd` is installed.
    let empty = tempfile::tempdir().expect("a directory");
    let path = empty.path().display().to_string();
    let build = |env: EnvSnapshot| {
        DefaultAzureCredential::builder()
            .env(env.with_var("PATH", path.clone()))
            .build()
            .expect("the chain builds")
    };
    let refused = build(EnvSnapshot::from_pairs([(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        refused_base(),
    )]));
    c.bench_function("hyper/default/verdict_off_azure", |b| {
        b.iter(|| black_box(verdict(&runtime, &refused)))
    });
    let (silent, _listener) = silent_base();
    let probed = build(EnvSnapshot::new().with_imds_base(silent));
    let mut slow = c.benchmark_group("hyper/default/slow");
    slow.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(12));
    slow.bench_function("verdict_silent_imds_probe", |b| {
        b.iter(|| black_box(verdict(&runtime, &probed)))
    });
    slow.finish();
    let dev = build(EnvSnapshot::from_pairs([(
        "AZURE_TOKEN_CREDENTIALS",
        "dev",
    )]));
    c.bench_function("hyper/default/verdict_dev_no_network", |b| {
        b.iter(|| black_box(verdict(&runtime, &dev)))
    });
}

criterion_group!(benches, verdicts);
criterion_main!(benches);
