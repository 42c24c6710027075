//! The process environment, snapshotted for the core.

use azmi_core::EnvSnapshot;
use azmi_core::env::{Os, VARIABLES, arc_agent_paths};

/// Snapshots the variables the core consults (empty ones count as unset) and whether the Azure
/// Arc agent is installed on this host.
///
/// ```
/// let env = azmi_ureq::process_env();
/// # let _ = env;
/// ```
pub fn process_env() -> EnvSnapshot {
    let pairs = VARIABLES
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|value| (*name, value)));
    let os = if cfg!(target_os = "linux") {
        Os::Linux
    } else if cfg!(windows) {
        Os::Windows
    } else {
        Os::Other
    };
    let program_files = std::env::var("ProgramFiles").ok();
    let arc_installed = arc_agent_paths(os, program_files.as_deref())
        .iter()
        .any(|path| std::path::Path::new(path).is_file());
    EnvSnapshot::from_pairs(pairs).with_arc_agent_installed(arc_installed)
}

/// A fresh jitter seed from the standard library's per-process random hash keys, so concurrent
/// processes do not retry in lockstep.
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
