//! The two tiers, built on `foyer` (a hybrid memory + disk cache, docs/decisions.md):
//! memory weighed in bytes against `cache.memory`, and, when `cache.disk` is set, a
//! block-based disk engine in `cache.dir` within `cache.disk`, recovered at start, with
//! a tombstone log so removals (purges, dropped entries) survive restarts.
//!
//! foyer does its disk I/O on a small runtime of its own, so the request threads'
//! runtimes never block on it.

use std::sync::Arc;

use foyer::{
    BlockEngineConfig, Device, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, RecoverMode,
};

use crate::cache::entry::{CacheValue, PART_BYTES};
use crate::cache::key::CacheKey;
use crate::config::CacheConfig;

/// The engine: both tiers behind one map.
pub type Engine = HybridCache<CacheKey, CacheValue>;

/// One entry as the engine hands it out (a reference-counted handle).
pub type Entry = foyer::HybridCacheEntry<CacheKey, CacheValue>;

/// The engine and its disk device (for its size). The engine owns the runtime that
/// runs its I/O.
pub struct Tiers {
    /// The cache.
    pub engine: Engine,
    /// The disk tier's device, when there is one.
    pub device: Option<Arc<dyn Device>>,
}

/// Largest memory shard: an entry is at most [`PART_BYTES`] plus a header, and a shard
/// should hold many of them, so small budgets use one shard.
const MIN_SHARD_BYTES: u64 = 16 * PART_BYTES as u64;

/// The disk block size for a budget: at least twice the largest entry, at most
/// foyer's default, about a sixteenth of the budget (eviction frees a block at a time).
pub fn block_size(disk: u64) -> usize {
    let wanted = (disk / 16).clamp(2 * PART_BYTES as u64, 16 << 20);
    (wanted as usize).next_multiple_of(4096)
}

/// Smallest disk budget: enough blocks for foyer's flushing and reclaiming.
pub const MIN_DISK_BYTES: u64 = 32 << 20;

/// Builds the tiers. Runs on its own thread, so it may be called from anywhere
/// (inside a runtime or not).
pub fn open(config: &CacheConfig) -> Result<Tiers, String> {
    let config = config.clone();
    std::thread::Builder::new()
        .name("filegate-cache-open".into())
        .spawn(move || open_here(&config))
        .map_err(|e| format!("cache: cannot start: {e}"))?
        .join()
        .map_err(|_| "cache: opening panicked".to_string())?
}

fn open_here(config: &CacheConfig) -> Result<Tiers, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .thread_name("filegate-cache-io")
        .enable_all()
        .build()
        .map_err(|e| format!("cache: cannot start its I/O runtime: {e}"))?;
    let handle = runtime.handle().clone();
    let memory = config.memory.as_u64();
    let shards = (memory / MIN_SHARD_BYTES).clamp(1, 8) as usize;
    let builder = HybridCacheBuilder::new()
        .with_name("filegate")
        .with_policy(HybridCachePolicy::WriteOnInsertion)
        .memory(memory as usize)
        .with_shards(shards)
        .with_weighter(|_k: &CacheKey, v: &CacheValue| v.weight())
        .storage();
    let disk = config.disk.as_u64();
    let (builder, device) = if disk == 0 {
        (builder, None)
    } else {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| format!("cache.dir: cannot create {}: {e}", config.dir.display()))?;
        let device = FsDeviceBuilder::new(&config.dir)
            .with_capacity(disk as usize)
            .build()
            .map_err(|e| format!("cache.dir: {}: {e}", config.dir.display()))?;
        let engine = BlockEngineConfig::new(device.clone())
            .with_block_size(block_size(disk))
            .with_tombstone_log(true);
        (
            builder
                .with_engine_config(engine)
                .with_recover_mode(RecoverMode::Quiet),
            Some(device),
        )
    };
    let builder = builder.with_spawner(runtime.into());
    let engine = handle
        .block_on(builder.build())
        .map_err(|e| format!("cache: cannot open the tiers: {e}"))?;
    Ok(Tiers { engine, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_the_largest_entry_and_divide_the_budget() {
        assert_eq!(block_size(MIN_DISK_BYTES), 2 << 20);
        assert_eq!(block_size(1 << 30), 16 << 20);
        assert_eq!(block_size(100 << 20), (100 << 20) / 16);
        for disk in [MIN_DISK_BYTES, 100 << 20, 1 << 30, 500 << 30] {
            let b = block_size(disk) as u64;
            assert!(b >= 2 * PART_BYTES as u64 && b % 4096 == 0 && disk / b >= 8);
        }
    }
}
