//! The current time for stamps in file names (undo archives, exported bundles).
//!
//! `STATECTL_NOW` (seconds since the epoch) replaces the clock; it exists for tests only, so
//! that runs within one second get distinct stamps without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, from `STATECTL_NOW` when set (test-only), else the system clock.
pub fn now() -> i64 {
    if let Some(secs) = std::env::var("STATECTL_NOW")
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
    {
        return secs;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
