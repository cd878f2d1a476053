//! The edge cache (`cache:`, SPEC §6).

use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::error::ConfigError;

/// Smallest disk tier (the disk engine needs a few blocks to flush and reclaim).
pub const MIN_DISK: u64 = 32 << 20;

/// `max_object` when unset and `memory` is at least twice as large.
pub const DEFAULT_MAX_OBJECT: u64 = 64 << 20;

/// The edge cache: originals and derived results, in memory and on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes held in memory, originals and derived results together.
    pub memory: ByteSize,
    /// Bytes of the disk tier; 0 keeps the cache in memory only.
    pub disk: ByteSize,
    /// Where the disk tier lives (created if missing; survives restarts).
    pub dir: PathBuf,
    /// Larger originals are streamed through, not cached (`X-Cache-Status: BYPASS`).
    /// Unset: the smaller of 64 MiB and half of `memory` ([`CacheConfig::max_object`]).
    pub max_object: Option<ByteSize>,
    /// How long an object's version stays fresh after the store vouched for it
    /// (filegate's keys are immutable); then one `HEAD` revalidates it.
    #[serde(with = "humantime_serde")]
    pub fresh_for: Duration,
    /// While the store fails, how long past `fresh_for` cached bodies are still
    /// served (`X-Cache-Status: STALE`).
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// Write derived results to the store under `<app>/_derived/` and look there on
    /// a miss, so restarts and other nodes reuse them. `redirect` mode needs it.
    pub write_back: bool,
    /// Deprecated (round 1): memory entries no longer expire by age; ignored.
    #[serde(default, with = "humantime_serde::option")]
    pub ttl: Option<Duration>,
    /// Deprecated (round 1): ignored.
    #[serde(default, with = "humantime_serde::option")]
    pub tti: Option<Duration>,
    /// Deprecated (round 1): replaced by `fresh_for`; ignored.
    #[serde(default, with = "humantime_serde::option")]
    pub source_ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory: ByteSize::mib(256),
            disk: ByteSize::b(0),
            dir: PathBuf::from("./data/cache"),
            max_object: None,
            fresh_for: Duration::from_secs(10 * 60),
            stale_if_error: Duration::from_secs(24 * 3600),
            write_back: true,
            ttl: None,
            tti: None,
            source_ttl: None,
        }
    }
}

impl CacheConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let memory = self.memory.as_u64();
        if memory < (4 << 20) {
            return Err(ConfigError::new("cache.memory", "at least 4 MiB"));
        }
        let disk = self.disk.as_u64();
        if disk != 0 && disk < MIN_DISK {
            return Err(ConfigError::new(
                "cache.disk",
                "0 (memory only) or at least 32 MiB",
            ));
        }
        if disk != 0 && self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("cache.dir", "must not be empty"));
        }
        let max = self.max_object();
        if max == 0 || max > memory / 2 {
            return Err(ConfigError::new(
                "cache.max_object",
                "between 1 byte and half of cache.memory (an object is held in memory while it is served)",
            ));
        }
        if self.fresh_for.is_zero() {
            return Err(ConfigError::new("cache.fresh_for", "must be above 0"));
        }
        Ok(())
    }

    /// The largest original cached: `max_object`, else the smaller of 64 MiB and half
    /// of `memory` (an object is held in memory while it is served).
    pub fn max_object(&self) -> u64 {
        match self.max_object {
            Some(max) => max.as_u64(),
            None => DEFAULT_MAX_OBJECT.min(self.memory.as_u64() / 2),
        }
    }

    /// Keys of round 1 that are still accepted but do nothing.
    pub fn deprecated_keys(&self) -> Vec<&'static str> {
        [
            ("cache.ttl", self.ttl.is_some()),
            ("cache.tti", self.tti.is_some()),
            ("cache.source_ttl", self.source_ttl.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_object_follows_memory_unless_set() {
        let mut c = CacheConfig::default();
        assert_eq!(c.max_object(), 64 << 20);
        c.memory = ByteSize::mib(32);
        assert_eq!(c.max_object(), 16 << 20, "half of a small memory tier");
        assert!(c.validate().is_ok(), "only memory set: valid");
        c.max_object = Some(ByteSize::mib(20));
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("cache.max_object"), "{e}");
        c.max_object = Some(ByteSize::mib(8));
        assert!(c.validate().is_ok());
    }
}
