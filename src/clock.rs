//! The wall clock, as the rest of filegate reads it: Unix seconds (credentials) and
//! milliseconds (cache stamps). A clock before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
