//! `cargo bench -p azmi-ureq --bench default_chain`: how fast DefaultAzureCredential reaches its
//! verdict off Azure (issue 13's target: ≤ 1 s), with no developer tool installed and the managed
//! identity endpoint refusing connections (a loopback port nothing listens on), and with
//! `AZURE_TOKEN_CREDENTIALS=dev`, which sends no network request at all. Loopback only.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::TcpListener;

use azmi_core::EnvSnapshot;
use azmi_ureq::DefaultAzureCredential;
use criterion::{Criterion, criterion_group, criterion_main};

const SCOPE: &str = "https://management.azure.com/.default";

/// A loopback address nothing listens on: bound, then released.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    drop(listener);
    format!("http://{address}")
}

fn verdicts(c: &mut Criterion) {
    // An empty directory as the only search path: neither `az` nor `azd` is installed.
    let empty = tempfile::tempdir().expect("a directory");
    let path = empty.path().display().to_string();
    let off_azure = DefaultAzureCredential::builder()
        .env(EnvSnapshot::from_pairs([
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", closed_port()),
            ("PATH", path.clone()),
        ]))
        .build()
        .expect("the chain builds");
    c.bench_function("ureq/default/verdict_off_azure", |b| {
        b.iter(|| {
            black_box(
                off_azure
                    .get_token(&[SCOPE])
                    .expect_err("no credential here"),
            )
        })
    });
    let dev = DefaultAzureCredential::builder()
        .env(EnvSnapshot::from_pairs([
            ("AZURE_TOKEN_CREDENTIALS", "dev".to_string()),
            ("PATH", path),
        ]))
        .build()
        .expect("the chain builds");
    c.bench_function("ureq/default/verdict_dev_no_network", |b| {
        b.iter(|| black_box(dev.get_token(&[SCOPE]).expect_err("no developer tool here")))
    });
}

criterion_group!(benches, verdicts);
criterion_main!(benches);
