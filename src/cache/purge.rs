//! Purges on this node (`POST /cache/purge?key=` / `?prefix=`, SPEC §6 and §13): an
//! object key with every result made from it, or every object under a key prefix.
//!
//! A purge records a rule first ([`crate::cache::purge_rules`]), so nothing stored
//! before it is served again whatever the removal below misses, then removes what it
//! can name from both tiers and counts it: an object's version record, its body
//! (through the version's ETag) and every result on its derivation list, each with its
//! pieces. A prefix names the objects this process has stored or read since it
//! started; objects under it that only the disk holds are purged by the rule, not
//! counted.

use std::collections::HashSet;

use crate::cache::edge::EdgeCache;
use crate::cache::entry::CacheValue;
use crate::cache::key::CacheKey;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::storage::keys::ObjectKey;

/// What a purge names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeTarget {
    /// One object key (`<app>/...`) and everything made from it.
    Key(ObjectKey),
    /// Every object key under a prefix ending in `/`.
    Prefix(String),
}

impl PurgeTarget {
    /// The target of `?key=` or `?prefix=` (exactly one of them); a 400 names the
    /// parameter at fault.
    pub fn parse(key: Option<&str>, prefix: Option<&str>) -> Result<PurgeTarget, ApiError> {
        match (key, prefix) {
            (Some(key), None) => ObjectKey::parse(key)
                .map(PurgeTarget::Key)
                .map_err(|_| ApiError::bad_param("key", "not an object key (<app>/...)")),
            (None, Some(prefix)) => {
                let valid =
                    prefix.ends_with('/') && ObjectKey::parse(prefix.trim_end_matches('/')).is_ok();
                if valid {
                    Ok(PurgeTarget::Prefix(prefix.to_string()))
                } else {
                    Err(ApiError::bad_param(
                        "prefix",
                        "a key prefix ending in `/`, e.g. demo/chat/",
                    ))
                }
            }
            (Some(_), Some(_)) => Err(ApiError::bad_param("key", "give key or prefix, not both")),
            (None, None) => Err(ApiError::bad_param("key", "key or prefix is required")),
        }
    }

    /// The target as `(name, value)` of its query parameter.
    pub fn as_param(&self) -> (&'static str, &str) {
        match self {
            PurgeTarget::Key(k) => ("key", k.as_str()),
            PurgeTarget::Prefix(p) => ("prefix", p.as_str()),
        }
    }
}

impl EdgeCache {
    /// Purges `target` on this node; returns how many entries it removed from either
    /// tier.
    pub async fn purge(&self, target: &PurgeTarget) -> usize {
        let now = now_ms();
        let objects = match target {
            PurgeTarget::Key(key) => {
                self.inner.rules.purge_key(key.as_str(), now);
                vec![key.clone()]
            }
            PurgeTarget::Prefix(prefix) => self
                .inner
                .rules
                .purge_prefix(prefix, now)
                .iter()
                .filter_map(|k| ObjectKey::parse(k).ok())
                .collect(),
        };
        let mut keys = HashSet::new();
        for object in &objects {
            self.entries_of(object, &mut keys).await;
        }
        let tiers = &self.inner.tiers;
        // The derivation lists are bookkeeping: removed, not counted.
        for object in &objects {
            tiers.remove(&CacheKey::derivations(object.app(), object));
        }
        let mut removed = 0;
        for k in &keys {
            if tiers.contains(k) {
                removed += 1;
            }
            tiers.remove(k);
        }
        removed
    }

    /// Every cache key `object` has entries under: its version record, its body at
    /// the version's ETag, and each result on its derivation list, with their pieces.
    async fn entries_of(&self, object: &ObjectKey, keys: &mut HashSet<CacheKey>) {
        let tiers = &self.inner.tiers;
        let app = object.app();
        let version = CacheKey::version(app, object);
        keys.insert(version);
        if let Some((entry, _)) = tiers.get(&version).await {
            if let CacheValue::Version(v) = entry.value() {
                for head in CacheKey::originals(app, object, &v.meta.etag) {
                    self.with_pieces(head, None, keys).await;
                }
            }
        }
        let list = CacheKey::derivations(app, object);
        if let Some((entry, _)) = tiers.get(&list).await {
            if let CacheValue::Derivations(derived) = entry.value() {
                for d in derived.iter() {
                    self.with_pieces(CacheKey::from_digest(d.digest), Some(d.parts), keys)
                        .await;
                }
            }
        }
    }

    /// A body's head and its pieces (`parts` when known, else read from the head).
    async fn with_pieces(&self, head: CacheKey, parts: Option<u32>, keys: &mut HashSet<CacheKey>) {
        let parts = match parts {
            Some(p) => p,
            None => match self.inner.tiers.get(&head).await {
                Some((entry, _)) => match entry.value() {
                    CacheValue::BodyHead(h) => h.parts,
                    _ => 1,
                },
                None => 1,
            },
        };
        keys.insert(head);
        for part in 1..parts {
            keys.insert(head.part(part));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_the_parameter_at_fault() {
        assert!(matches!(
            PurgeTarget::parse(Some("demo/avatar/user/1/a.jpg"), None),
            Ok(PurgeTarget::Key(_))
        ));
        assert_eq!(
            PurgeTarget::parse(None, Some("demo/chat/")).unwrap(),
            PurgeTarget::Prefix("demo/chat/".into())
        );
        for (key, prefix, name) in [
            (Some("../x"), None, "key"),
            (None, Some("demo/chat"), "prefix"),
            (None, Some("/"), "prefix"),
            (Some("demo/a"), Some("demo/"), "key"),
            (None, None, "key"),
        ] {
            let e = PurgeTarget::parse(key, prefix).unwrap_err();
            assert!(e.message().starts_with(name), "{key:?} {prefix:?}: {e}");
        }
        let t = PurgeTarget::parse(None, Some("demo/chat/")).unwrap();
        assert_eq!(t.as_param(), ("prefix", "demo/chat/"));
    }
}
