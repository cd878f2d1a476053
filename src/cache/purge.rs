//! Purges (`POST /cache/purge?key=` / `?prefix=`): an object key, with every result
//! made from it, or every object under a key prefix.
//!
//! A purge removes at once what this process cached for those keys (an index of
//! object key → cache keys, kept as entries are written), and records a rule "entries
//! of these keys written before now are gone". The rule covers what the index cannot
//! know (entries the disk tier recovered after a restart), is checked on every read,
//! and is kept in `cache.dir/purges.json` so it outlives restarts.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::cache::key::CacheKey;

/// Most rules kept; past it they fold into one "everything before" rule.
const MAX_RULES: usize = 10_000;
/// Most object keys indexed (each costs ~150 bytes); past it the rules alone purge.
const MAX_INDEXED: usize = 1_000_000;

/// The rules, as persisted.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Rules {
    /// Exact object keys → purged at (Unix ms).
    keys: HashMap<String, u64>,
    /// Key prefixes ending in `/` → purged at.
    prefixes: HashMap<String, u64>,
    /// Everything written before this (Unix ms) is gone (folded rules).
    everything_before: u64,
}

impl Rules {
    fn len(&self) -> usize {
        self.keys.len() + self.prefixes.len()
    }

    /// When `object_key` was last purged, if ever.
    fn purged_at(&self, object_key: &str) -> u64 {
        let mut at = self.everything_before;
        if let Some(t) = self.keys.get(object_key) {
            at = at.max(*t);
        }
        if !self.prefixes.is_empty() {
            for (i, _) in object_key.match_indices('/') {
                if let Some(t) = self.prefixes.get(&object_key[..=i]) {
                    at = at.max(*t);
                }
            }
        }
        at
    }
}

/// Purge rules and the index of what is cached.
pub struct Purges {
    rules: RwLock<Rules>,
    any: AtomicBool,
    index: Mutex<BTreeMap<String, Vec<CacheKey>>>,
    path: Option<PathBuf>,
}

impl Purges {
    /// Rules loaded from `path` (the disk tier's directory), or none.
    pub fn open(path: Option<PathBuf>) -> Purges {
        let rules: Rules = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default();
        let any = rules.len() > 0 || rules.everything_before > 0;
        Purges {
            rules: RwLock::new(rules),
            any: AtomicBool::new(any),
            index: Mutex::new(BTreeMap::new()),
            path,
        }
    }

    /// Whether an entry of `object_key` written at `stored_at_ms` was purged since.
    pub fn is_purged(&self, object_key: &str, stored_at_ms: u64) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
        stored_at_ms <= rules.purged_at(object_key)
    }

    /// Remembers that `key` holds something of `object_key`.
    pub fn record(&self, object_key: &str, key: CacheKey) {
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(keys) = index.get_mut(object_key) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        } else if index.len() < MAX_INDEXED {
            index.insert(object_key.to_string(), vec![key]);
        }
    }

    /// Purges one object key: returns the cache keys to remove now.
    pub fn purge_key(&self, object_key: &str, now_ms: u64) -> Vec<CacheKey> {
        self.add_rule(|r| {
            r.keys.insert(object_key.to_string(), now_ms);
        });
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        index.remove(object_key).unwrap_or_default()
    }

    /// Purges every object key under `prefix` (ending in `/`): the cache keys to
    /// remove now.
    pub fn purge_prefix(&self, prefix: &str, now_ms: u64) -> Vec<CacheKey> {
        self.add_rule(|r| {
            r.prefixes.insert(prefix.to_string(), now_ms);
        });
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let matching: Vec<String> = index
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        matching
            .into_iter()
            .flat_map(|k| index.remove(&k).unwrap_or_default())
            .collect()
    }

    fn add_rule(&self, add: impl FnOnce(&mut Rules)) {
        let snapshot = {
            let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
            add(&mut rules);
            if rules.len() > MAX_RULES {
                // Fold: everything written up to the newest rule is gone. Purges more
                // than asked, never less.
                let newest = rules
                    .keys
                    .values()
                    .chain(rules.prefixes.values())
                    .copied()
                    .max()
                    .unwrap_or(0);
                *rules = Rules {
                    everything_before: newest,
                    ..Rules::default()
                };
            }
            rules.clone()
        };
        self.any.store(true, Ordering::Relaxed);
        if let Some(path) = &self.path {
            let tmp = path.with_extension("json.tmp");
            let written = serde_json::to_vec(&snapshot)
                .map_err(std::io::Error::other)
                .and_then(|raw| std::fs::write(&tmp, raw))
                .and_then(|()| std::fs::rename(&tmp, path));
            if let Err(e) = written {
                log::warn!(
                    "cache: cannot persist the purge rules to {}: {e}; they hold until restart",
                    path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u8) -> CacheKey {
        CacheKey {
            digest: [n; 32],
            part: 0,
        }
    }

    #[test]
    fn rules_cover_keys_prefixes_and_only_older_entries() {
        let p = Purges::open(None);
        assert!(!p.is_purged("demo/a/1.jpg", 5));
        p.record("demo/a/1.jpg", k(1));
        p.record("demo/a/1.jpg", k(2));
        p.record("demo/b/2.jpg", k(3));
        assert_eq!(p.purge_key("demo/a/1.jpg", 100), vec![k(1), k(2)]);
        assert!(p.is_purged("demo/a/1.jpg", 100));
        assert!(!p.is_purged("demo/a/1.jpg", 101), "written after the purge");
        assert!(!p.is_purged("demo/b/2.jpg", 50));
        assert_eq!(p.purge_prefix("demo/", 200), vec![k(3)]);
        assert!(p.is_purged("demo/b/2.jpg", 150));
        assert!(!p.is_purged("demox/b/2.jpg", 150));
    }

    #[test]
    fn rules_outlive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("purges.json");
        Purges::open(Some(path.clone())).purge_prefix("demo/chat/", 300);
        let again = Purges::open(Some(path));
        assert!(again.is_purged("demo/chat/1/2/20261201/x.jpg", 299));
        assert!(!again.is_purged("demo/avatar/user/1/x.jpg", 299));
    }
}
