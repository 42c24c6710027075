//! The process environment and the randomness the core asks for, read once for both transports.

use azmi_core::EnvSnapshot;

/// Snapshots the variables the core consults (empty ones count as unset) and the host facts
/// (whether the Azure Arc agent is installed; its token directory stays the platform default).
///
/// It reads the environment and makes one `stat` call per agent path: quick, but blocking I/O,
/// so credentials call it once, when they are built, never while a token is awaited.
///
/// ```
/// let env = azmi_support::env::process_env();
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
/// let seed = azmi_support::env::jitter_seed();
/// # let _ = seed;
/// ```
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
