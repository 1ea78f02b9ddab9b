//! The wall clock, read in one place. The core never reads it (date rules use the manifest's own dates);
//! adapters stamp `decided_at` on decisions, times on audit entries and ages of records with it.

use std::time::{SystemTime, UNIX_EPOCH};

use borderlane_core::time::Timestamp;

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> i64 {
    (unix_nanos() / 1_000_000) as i64
}

/// Now as a timestamp (`decided_at`, audit times); `None` only for a clock outside the representable range.
pub fn now() -> Option<Timestamp> {
    Timestamp::from_unix_nanos(unix_nanos())
}
