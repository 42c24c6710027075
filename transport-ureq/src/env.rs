//! The process environment, snapshotted for the core.

use azmi_core::EnvSnapshot;

/// Snapshots the variables the core consults (empty ones count as unset) and whether the Azure
/// Arc agent is installed on this host.
///
/// ```
/// let env = azmi_ureq::process_env();
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
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
