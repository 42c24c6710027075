//! cargo-fuzz targets for azmi-core (see `README.md`). The entry functions, oracles and input
//! descriptions live in `entries.rs`, which `core/tests/fuzz_corpus.rs` also compiles to replay
//! the corpus under `cargo test`.

#![forbid(unsafe_code)]

pub mod entries;
