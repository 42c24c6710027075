//! The process environment and the randomness, snapshotted for the core.

use azmi_core::EnvSnapshot;

/// Snapshots the variables the core consults (empty ones count as unset) and whether the Azure
/// Arc agent is installed on this host.
///
/// It reads the environment and makes one `stat` call per agent path: quick, but blocking I/O,
/// so it runs once, when a credential is built, never while a token is awaited.
///
/// ```
/// let env = azmi_hyper::process_env();
/// # let _ = env;
/// ```
pub fn process_env() -> EnvSnapshot {
    EnvSnapshot::capture(
        |name| std::env::var(name).ok(),
        |path| std::path::Path::new(path).is_file(),
    )
}

/// A fresh jitter seed from the standard library's per-process random hash keys, so concurrent
/// processes do not retry in lockstep.
///
/// ```
/// let seed = azmi_hyper::jitter_seed();
/// # let _ = seed;
/// ```
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
