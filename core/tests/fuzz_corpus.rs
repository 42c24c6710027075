//! Replays the checked-in fuzz corpus under `cargo test`, on stable, without cargo-fuzz.
//!
//! Every file of `fuzz/corpus/<target>/` (seeds and what the fuzzers kept) and of
//! `fuzz/regressions/<target>/` (inputs that once found a bug) goes through the same entry
//! function the fuzz target `<target>` calls: this file compiles the `fuzz/src/entries/` module
//! itself, so the invariants and oracles checked here are the fuzzers' own. See `fuzz/README.md`.

#![forbid(unsafe_code)]

#[allow(unreachable_pub, missing_docs)]
#[path = "../../fuzz/src/entries/mod.rs"]
mod entries;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression file of `target` through its entry; fails listing every
/// input that broke an invariant, with the invariant's message and the decoded input.
fn replay(target: &str) {
    let entry = entries::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, entry)| *entry)
        .unwrap_or_else(|| panic!("no fuzz target named {target}"));
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        // (A fuzzer running on the same directory may replace a file while this reads it.)
        let Ok(data) = std::fs::read(path) else {
            continue;
        };
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(&data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!(
                "{}:\n{message}\ninput: {}",
                path.display(),
                entries::explain(target, &data)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs of {target} fail:\n\n{}",
        failures.len(),
        corpus.len() + regressions.len(),
        failures.join("\n\n")
    );
}

macro_rules! replay_tests {
    ($($target:ident)*) => {$(
        #[test]
        fn $target() {
            replay(stringify!($target));
        }
    )*};
}

replay_tests! {
    token_response
    token_response_structured
    error_body
    error_body_structured
    retry_after
    retry_after_structured
    challenge
    challenge_structured
    expiry_date
    expiry_date_structured
    flow
    thumbprint
    thumbprint_structured
    cli_output
    cli_output_structured
    token_credentials
    chain_structured
    entra_response
    entra_response_structured
    certificate_pem
    certificate_pkcs12
    certificate_pem_structured
}

/// Every target has a test above, and every directory under `fuzz/corpus/` and
/// `fuzz/regressions/` belongs to a target.
#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = entries::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names.len(),
        22,
        "a target was added: add it to replay_tests!"
    );
    for dir in ["corpus", "regressions"] {
        let Ok(read) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for entry in read.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "fuzz/{dir}/{name} is not a fuzz target"
            );
        }
    }
}

/// The structure-aware seeds decode back into their descriptions, and the checked-in seed and
/// regression files are the ones `cargo run --example write_seeds` writes from them.
#[test]
fn seeds_are_current() {
    entries::check_seed_encoding();
    let seeds = entries::seeds().into_iter().map(|s| ("corpus", s));
    let regressions = entries::regressions()
        .into_iter()
        .map(|s| ("regressions", s));
    for (dir, seed) in seeds.chain(regressions) {
        let path = fuzz_dir().join(dir).join(seed.target).join(&seed.name);
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == seed.bytes,
            "{} is missing or stale: run `cargo run --example write_seeds` in fuzz/",
            path.display()
        );
    }
}
