//! The edge cache (`cache:`, SPEC §6).

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// The derived-result cache (SPEC §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of derived results held in memory.
    pub memory: ByteSize,
    /// Longest an entry stays in memory.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// An entry unused this long leaves memory.
    #[serde(with = "humantime_serde")]
    pub tti: Duration,
    /// Write derived results to the store under `<app>/_derived/` and look there on
    /// a miss, so restarts and other nodes reuse them. `redirect` mode needs it.
    pub write_back: bool,
    /// How long a source's ETag is trusted before the store is asked again. Cache
    /// hits within it need no store round trip; 0 asks every time.
    #[serde(with = "humantime_serde")]
    pub source_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory: ByteSize::mib(256),
            ttl: Duration::from_secs(24 * 3600),
            tti: Duration::from_secs(3600),
            write_back: true,
            source_ttl: Duration::from_secs(60),
        }
    }
}
