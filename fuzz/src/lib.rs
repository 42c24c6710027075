//! cargo-fuzz targets for azmi-core (see `README.md`). The entry functions, oracles and input
//! descriptions live in the `entries` module (`src/entries/`, one file per target family), which
//! `core/tests/fuzz_corpus.rs` also compiles to replay the corpus under `cargo test`.

#![forbid(unsafe_code)]

pub mod entries;
