//! What purges leave behind: rules "entries of these object keys stored before this
//! time are gone", checked on every read, and the set of object keys this process has
//! seen (a prefix purge removes what it can name; the rule covers the rest).
//!
//! A rule covers entries the process cannot name (entries the disk tier recovered
//! after a restart), is kept in `cache.dir/purges.json` so it outlives restarts, and
//! also marks its keys "recently purged" for `cache.fresh_for`: their versions are
//! then revalidated within a second ([`crate::cache::freshness`]), so a copy cached
//! between a purge and the store's delete is not served for long.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

/// Most rules kept; past it they fold into one "everything before" rule.
const MAX_RULES: usize = 10_000;
/// Most object keys remembered (each costs ~100 bytes); past it prefix purges count
/// only what they can name, and the rules alone purge the rest.
const MAX_INDEXED: usize = 1_000_000;

/// The rules, as persisted.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Rules {
    /// Exact object keys → purged at (Unix ms).
    keys: HashMap<String, u64>,
    /// Key prefixes ending in `/` → purged at.
    prefixes: HashMap<String, u64>,
    /// Everything stored before this (Unix ms) is gone (folded rules).
    everything_before: u64,
}

impl Rules {
    fn len(&self) -> usize {
        self.keys.len() + self.prefixes.len()
    }

    /// When `object_key` was last purged (0: never).
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

/// What the rules say of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored before a purge of its key: gone.
    Purged,
    /// Stored after a purge of its key within the purge window: served, revalidated soon.
    RecentlyPurged,
    /// No purge concerns it.
    Clear,
}

/// Purge rules and the object keys seen.
pub struct PurgeRules {
    rules: RwLock<Rules>,
    any: AtomicBool,
    seen: Mutex<BTreeSet<String>>,
    path: Option<PathBuf>,
    window_ms: u64,
}

impl PurgeRules {
    /// Rules loaded from `path` (the disk tier's directory), or none; a key counts as
    /// recently purged for `window_ms` after its purge.
    pub fn open(path: Option<PathBuf>, window_ms: u64) -> PurgeRules {
        let rules: Rules = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or_default();
        let any = rules.len() > 0 || rules.everything_before > 0;
        PurgeRules {
            rules: RwLock::new(rules),
            any: AtomicBool::new(any),
            seen: Mutex::new(BTreeSet::new()),
            path,
            window_ms,
        }
    }

    /// What the rules say of an entry of `object_key` stored at `stored_at_ms`, at
    /// `now_ms`.
    pub fn verdict(&self, object_key: &str, stored_at_ms: u64, now_ms: u64) -> Verdict {
        if !self.any.load(Ordering::Relaxed) {
            return Verdict::Clear;
        }
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner());
        let at = rules.purged_at(object_key);
        if at == 0 {
            Verdict::Clear
        } else if stored_at_ms <= at {
            Verdict::Purged
        } else if now_ms < at.saturating_add(self.window_ms) {
            Verdict::RecentlyPurged
        } else {
            Verdict::Clear
        }
    }

    /// Remembers that something of `object_key` is cached (for prefix purges).
    pub fn saw(&self, object_key: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() < MAX_INDEXED && !seen.contains(object_key) {
            seen.insert(object_key.to_string());
        }
    }

    /// Records a purge of one object key at `now_ms`.
    pub fn purge_key(&self, object_key: &str, now_ms: u64) {
        self.add_rule(|r| {
            r.keys.insert(object_key.to_string(), now_ms);
        });
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.remove(object_key);
    }

    /// Records a purge of every object key under `prefix` (ending in `/`) at `now_ms`;
    /// returns the object keys seen under it.
    pub fn purge_prefix(&self, prefix: &str, now_ms: u64) -> Vec<String> {
        self.add_rule(|r| {
            r.prefixes.insert(prefix.to_string(), now_ms);
        });
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let matching: Vec<String> = seen
            .range(prefix.to_string()..)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for k in &matching {
            seen.remove(k);
        }
        matching
    }

    fn add_rule(&self, add: impl FnOnce(&mut Rules)) {
        let snapshot = {
            let mut rules = self.rules.write().unwrap_or_else(|e| e.into_inner());
            add(&mut rules);
            if rules.len() > MAX_RULES {
                // Fold: everything stored up to the newest rule is gone. Purges more
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

    #[test]
    fn rules_cover_keys_prefixes_and_only_older_entries() {
        let p = PurgeRules::open(None, 1_000);
        assert_eq!(p.verdict("demo/a/1.jpg", 5, 5), Verdict::Clear);
        p.saw("demo/a/1.jpg");
        p.saw("demo/b/2.jpg");
        p.purge_key("demo/a/1.jpg", 100);
        assert_eq!(p.verdict("demo/a/1.jpg", 100, 150), Verdict::Purged);
        assert_eq!(
            p.verdict("demo/a/1.jpg", 101, 150),
            Verdict::RecentlyPurged,
            "stored after the purge, inside its window"
        );
        assert_eq!(p.verdict("demo/a/1.jpg", 101, 1_100), Verdict::Clear);
        assert_eq!(p.verdict("demo/b/2.jpg", 50, 150), Verdict::Clear);
        assert_eq!(
            p.purge_prefix("demo/", 200),
            vec!["demo/b/2.jpg".to_string()]
        );
        assert_eq!(p.verdict("demo/b/2.jpg", 150, 250), Verdict::Purged);
        assert_eq!(p.verdict("demox/b/2.jpg", 150, 250), Verdict::Clear);
        assert!(
            p.purge_prefix("demo/", 300).is_empty(),
            "forgotten once purged"
        );
    }

    #[test]
    fn rules_outlive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("purges.json");
        PurgeRules::open(Some(path.clone()), 1_000).purge_prefix("demo/chat/", 300);
        let again = PurgeRules::open(Some(path), 1_000);
        assert_eq!(
            again.verdict("demo/chat/1/2/20261201/x.jpg", 299, 400),
            Verdict::Purged
        );
        assert_eq!(
            again.verdict("demo/avatar/user/1/x.jpg", 299, 400),
            Verdict::Clear
        );
    }

    #[test]
    fn past_the_rule_limit_everything_older_is_purged() {
        let p = PurgeRules::open(None, 0);
        for i in 0..=MAX_RULES as u64 {
            p.purge_key(&format!("demo/k/{i}"), 1_000 + i);
        }
        // Folded: never less than asked.
        assert_eq!(p.verdict("demo/other", 1_000, 5_000), Verdict::Purged);
        assert_eq!(p.verdict("demo/k/3", 1_003, 50_000), Verdict::Purged);
    }
}
