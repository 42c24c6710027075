//! The host's local UTC offset, for an Azure CLI older than 2.54.0 that reports its token's
//! expiry only in local time (PROTOCOL.md §11).

use azmi_core::time::UtcOffset;

/// Today's local UTC offset, asked of the operating system at each call (so a DST change is
/// seen by the next run). `None` where it cannot be told safely — on Unix the `time` crate
/// refuses once the process has several threads, since reading the time zone races with
/// `setenv` — and the core then refuses a local-time-only expiry with an error saying to upgrade
/// the CLI.
///
/// ```
/// let offset = azmi_support::local_time::local_offset();
/// # let _ = offset;
/// ```
pub fn local_offset() -> Option<UtcOffset> {
    UtcOffset::current_local_offset().ok()
}
