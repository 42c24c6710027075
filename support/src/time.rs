//! The wall clock as the cache's hit path reads it.

/// The system time as Unix nanoseconds, without building an `OffsetDateTime`. On Linux it reads
/// `CLOCK_REALTIME_COARSE` (a vDSO read of the time at the last tick, a few milliseconds old at
/// most), about a fifth of the cost of a precise read: a cache hit compares it with instants
/// that are minutes from any decision that matters (refresh time, five minutes before expiry), so
/// a lag of milliseconds changes nothing. Elsewhere it reads `SystemTime`.
///
/// ```
/// let now = azmi_support::time::unix_nanos();
/// assert!(now > 1_700_000_000 * 1_000_000_000);
/// ```
pub fn unix_nanos() -> i128 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}
