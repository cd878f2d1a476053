//! The two tiers, built on `foyer` (a hybrid memory + disk cache, docs/decisions.md):
//! memory weighed in bytes against `cache.memory` and evicted by S3-FIFO, and, when `cache.disk` is set, a
//! block-based disk engine in `cache.dir` within `cache.disk`, recovered at start, with
//! a tombstone log so removals (purges, dropped entries) survive restarts.
//!
//! Every entry is written to the disk as it is inserted, and the disk tier's promise
//! (everything written before a graceful stop is there after the restart; after a
//! crash, all but the last moments) rests on three rules kept here:
//! - **one writer at a time.** foyer numbers entries as they are enqueued and, when it
//!   recovers a block, stops at the first entry numbered lower than the one before it;
//!   two threads enqueueing at once can hand the flusher their entries in the other
//!   order and so lose the rest of a block. Inserts that reach the disk are therefore
//!   made under one lock, and a disk read is promoted to memory without foyer's own
//!   re-enqueue (which would run outside it).
//! - **a bounded write-behind window.** foyer drops entries silently when its flush
//!   buffer is full; at most [`WRITE_WINDOW`] bytes are enqueued before the writer waits
//!   for the flusher, so the buffer never overflows. What foyer drops anyway is counted
//!   in `filegate_cache_dropped_total{reason}`.
//! - **close after the last write.** [`Tiers::close`] takes the writer's lock, so it
//!   runs after every insert that started, and refuses later ones (counted, `closed`).
//!
//! foyer does its disk I/O on a small runtime of its own, so the request threads'
//! runtimes never block on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use foyer::{
    Age, BlockEngineConfig, Code, Device, DeviceBuilder, FsDeviceBuilder, HybridCache,
    HybridCacheBuilder, HybridCachePolicy, HybridCacheProperties, Load, Location, RecoverMode,
    S3FifoConfig,
};
use prometheus::IntCounter;

use crate::cache::entry::{CacheValue, PART_BYTES};
use crate::cache::foyer_metrics::FoyerRegistry;
use crate::cache::key::CacheKey;
use crate::cache::status::Tier;
use crate::config::CacheConfig;
use crate::metrics::Metrics;

/// The engine: both tiers behind one map.
pub type Engine = HybridCache<CacheKey, CacheValue>;

/// One entry as the engine hands it out (a reference-counted handle).
pub type Entry = foyer::HybridCacheEntry<CacheKey, CacheValue>;

/// Largest memory shard: an entry is at most [`PART_BYTES`] plus a header, and a shard
/// should hold many of them, so small budgets use one shard.
const MIN_SHARD_BYTES: u64 = 16 * PART_BYTES as u64;

/// foyer's flush buffer (its default): entries wait here while a block write runs.
const FLUSH_BUFFER: usize = 16 << 20;

/// Bytes enqueued for the disk before the writer waits for the flusher: half the flush
/// buffer, so a burst of fills never overflows it.
pub const WRITE_WINDOW: usize = FLUSH_BUFFER / 2;

/// The disk block size for a budget: at least twice the largest entry, at most
/// foyer's default, about a sixteenth of the budget (eviction frees a block at a time).
pub fn block_size(disk: u64) -> usize {
    let wanted = (disk / 16).clamp(2 * PART_BYTES as u64, 16 << 20);
    (wanted as usize).next_multiple_of(4096)
}

/// Both tiers and their one writer.
pub struct Tiers {
    engine: Engine,
    device: Option<Arc<dyn Device>>,
    /// Held by whoever enqueues for the disk; the bytes enqueued since the last wait
    /// for the flusher.
    writer: tokio::sync::Mutex<usize>,
    closed: AtomicBool,
    dropped_closed: IntCounter,
}

/// Properties of an entry read back from the disk: kept in memory only (it is on the
/// disk already).
fn in_memory_only() -> HybridCacheProperties {
    HybridCacheProperties::default().with_location(Location::InMem)
}

impl Tiers {
    /// Opens the tiers (the disk tier recovers what it held). Runs on its own thread,
    /// so it may be called from anywhere (inside a runtime or not).
    pub fn open(config: &CacheConfig, metrics: &Metrics) -> Result<Tiers, String> {
        let config = config.clone();
        let registry = FoyerRegistry::new(metrics.foyer_facade(), metrics.cache_dropped.clone());
        let (engine, device) = std::thread::Builder::new()
            .name("filegate-cache-open".into())
            .spawn(move || build(&config, registry))
            .map_err(|e| format!("cache: cannot start: {e}"))?
            .join()
            .map_err(|_| "cache: opening panicked".to_string())??;
        Ok(Tiers {
            engine,
            device,
            writer: tokio::sync::Mutex::new(0),
            closed: AtomicBool::new(false),
            dropped_closed: metrics.cache_dropped.with_label_values(&["closed"]),
        })
    }

    /// Whether there is a disk tier.
    pub fn has_disk(&self) -> bool {
        self.device.is_some()
    }

    /// An entry in memory (the hit path: no await, no lock).
    pub fn memory_get(&self, key: &CacheKey) -> Option<Entry> {
        self.engine.memory().get(key)
    }

    /// An entry, from memory or else disk (then kept in memory too). A damaged disk
    /// entry is a miss (foyer checks its own checksum, and drops what fails it; ours
    /// is checked on decode), an unreadable one is dropped.
    pub async fn get(&self, key: &CacheKey) -> Option<(Entry, Tier)> {
        if let Some(e) = self.memory_get(key) {
            return Some((e, Tier::Memory));
        }
        if !self.has_disk() {
            return None;
        }
        match self.engine.storage().load(key).await {
            Ok(Load::Entry {
                value, populated, ..
            }) => {
                // An entry about to be evicted from the disk is written again, so what
                // is read stays; any other is on the disk already.
                let entry = if populated.age == Age::Old {
                    self.insert(*key, value).await
                } else {
                    self.engine
                        .insert_with_properties(*key, value, in_memory_only())
                };
                Some((entry, Tier::Disk))
            }
            // Still queued for the disk: the value is at hand.
            Ok(Load::Piece { piece, .. }) => Some((
                self.engine
                    .insert_with_properties(*key, piece.value().clone(), in_memory_only()),
                Tier::Disk,
            )),
            Ok(Load::Throttled | Load::Miss) => None,
            Err(e) => {
                log::warn!("cache: dropping an unreadable disk entry: {e}");
                self.engine.remove(key);
                None
            }
        }
    }

    /// Inserts an entry in memory and enqueues it for the disk, in one order with
    /// every other insert (see the module doc); waits for the flusher when the
    /// write-behind window is full. After [`Tiers::close`] it is kept in memory only.
    pub async fn insert(&self, key: CacheKey, value: CacheValue) -> Entry {
        if !self.has_disk() {
            return self.engine.insert(key, value);
        }
        let size = key.estimated_size() + value.estimated_size();
        let mut pending = self.writer.lock().await;
        if self.closed.load(Ordering::Acquire) {
            self.dropped_closed.inc();
            return self
                .engine
                .insert_with_properties(key, value, in_memory_only());
        }
        if *pending > 0 && *pending + size > WRITE_WINDOW {
            self.engine.storage().wait().await;
            *pending = 0;
        }
        *pending += size;
        self.engine.insert(key, value)
    }

    /// Removes an entry from both tiers (a tombstone keeps it removed across restarts).
    pub fn remove(&self, key: &CacheKey) {
        self.engine.remove(key);
    }

    /// Whether an entry is held in either tier (the disk's index may, rarely, name an
    /// entry it can no longer read).
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.engine.memory().contains(key)
            || (self.has_disk() && self.engine.storage().may_contains(key))
    }

    /// Bytes held in memory, and on disk (the disk tier's allocated blocks).
    pub fn bytes(&self) -> (u64, u64) {
        let memory = self.engine.memory().usage() as u64;
        let disk = self.device.as_ref().map_or(0, |d| d.allocated() as u64);
        (memory, disk)
    }

    /// Writes what the disk tier has queued and stops it. Runs after every insert
    /// already started (it takes the writer's lock); later ones stay in memory only.
    pub async fn close(&self) -> Result<(), String> {
        {
            let _writer = self.writer.lock().await;
            self.closed.store(true, Ordering::Release);
        }
        self.engine.close().await.map_err(|e| e.to_string())
    }
}

fn build(
    config: &CacheConfig,
    registry: FoyerRegistry,
) -> Result<(Engine, Option<Arc<dyn Device>>), String> {
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
        .with_metrics_registry(Box::new(registry))
        .with_policy(HybridCachePolicy::WriteOnInsertion)
        // Every entry was enqueued for the disk when it was inserted: there is nothing
        // left in memory to write at close.
        .with_flush_on_close(false)
        .memory(memory as usize)
        .with_shards(shards)
        .with_weighter(|_k: &CacheKey, v: &CacheValue| v.weight())
        // S3-FIFO: on the bench's Zipf trace over 4x the memory it kept 79.1% hits where
        // LRU kept 74.8% (w-TinyLFU 79.8%, but it takes a shard's write lock on every
        // hit; S3-FIFO's hit only bumps a counter). docs/decisions.md.
        .with_eviction_config(S3FifoConfig::default())
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
            .with_buffer_pool_size(FLUSH_BUFFER)
            // The writer's window keeps the queue far below this; it is a backstop.
            .with_submit_queue_size_threshold(4 * FLUSH_BUFFER)
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
    Ok((engine, device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn config(dir: &std::path::Path) -> CacheConfig {
        CacheConfig {
            memory: bytesize::ByteSize::mib(64),
            disk: bytesize::ByteSize::mib(128),
            dir: dir.to_path_buf(),
            ..CacheConfig::default()
        }
    }

    fn key(task: u8, i: u32) -> CacheKey {
        let mut digest = [task; 32];
        digest[..4].copy_from_slice(&i.to_le_bytes());
        CacheKey { digest, part: 0 }
    }

    fn value(task: u8, i: u32) -> CacheValue {
        let len = 1_000 + (usize::from(task) * 7_919 + i as usize * 104_729) % 300_000;
        CacheValue::Part(Bytes::from(vec![task ^ i as u8; len]))
    }

    /// Many writers at once, then a graceful close and a reopen: every entry is read
    /// back from the disk (concurrent enqueues used to cost the rest of a block at
    /// recovery, and a burst larger than the flush buffer was dropped).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_all_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let tiers = Arc::new(Tiers::open(&config(dir.path()), &metrics).unwrap());
        let writers: Vec<_> = (0..8u8)
            .map(|task| {
                let tiers = tiers.clone();
                tokio::spawn(async move {
                    for i in 0..40 {
                        tiers.insert(key(task, i), value(task, i)).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        tiers.close().await.unwrap();
        drop(tiers);
        let again = Tiers::open(&config(dir.path()), &metrics).unwrap();
        let mut missing = Vec::new();
        for task in 0..8u8 {
            for i in 0..40 {
                match again.get(&key(task, i)).await {
                    Some((entry, tier)) => {
                        assert_eq!(tier, Tier::Disk);
                        assert_eq!(entry.value(), &value(task, i));
                    }
                    None => missing.push((task, i)),
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{} of 320 lost: {missing:?}",
            missing.len()
        );
        for reason in crate::metrics::CACHE_DROP_REASONS {
            assert_eq!(
                metrics.cache_dropped.with_label_values(&[reason]).get(),
                0,
                "{reason}"
            );
        }
    }

    #[test]
    fn blocks_hold_the_largest_entry_and_divide_the_budget() {
        assert_eq!(block_size(32 << 20), 2 << 20, "the smallest disk tier");
        assert_eq!(block_size(1 << 30), 16 << 20);
        assert_eq!(block_size(100 << 20), (100 << 20) / 16);
        for disk in [32 << 20, 100 << 20, 1 << 30, 500 << 30] {
            let b = block_size(disk) as u64;
            assert!(b >= 2 * PART_BYTES as u64 && b % 4096 == 0 && disk / b >= 8);
        }
    }
}
