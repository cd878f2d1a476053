//! [`EdgeCache`]: the engine's handle (opening, counting, closing) and what its parts
//! share: an object's version record and a body's pieces, read and stored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::cache::body::Body;
use crate::cache::entry::{BodyHead, CacheValue, VersionRecord, PART_BYTES};
use crate::cache::flight::Flights;
use crate::cache::freshness::Freshness;
use crate::cache::key::CacheKey;
use crate::cache::purge_rules::{PurgeRules, Verdict};
use crate::cache::status::{CacheStatus, Kind, Tier};
use crate::cache::tiers::Tiers;
use crate::clock::now_ms;
use crate::config::CacheConfig;
use crate::metrics::Metrics;
use crate::storage::keys::ObjectKey;
use crate::storage::ObjectMeta;

/// What the cache's parts share (its fields are theirs: `pub(super)`).
pub(super) struct Inner {
    pub(super) tiers: Tiers,
    pub(super) fills: Flights,
    pub(super) heads: Flights,
    pub(super) makes: Flights,
    pub(super) rules: PurgeRules,
    pub(super) freshness: Freshness,
    pub(super) max_object: u64,
    pub(super) metrics: Arc<Metrics>,
    /// Taken to update an object's derivation list (read, add, write).
    pub(super) derivations: tokio::sync::Mutex<()>,
}

/// The edge cache. Cheap to clone (one shared engine).
#[derive(Clone)]
pub struct EdgeCache {
    pub(super) inner: Arc<Inner>,
}

/// What closing the cache did, for the shutdown log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReport {
    /// Fills and makes still running when the wait for them ended (their results are
    /// not kept on disk).
    pub unfinished: usize,
    /// Whether the disk tier finished writing what it had queued.
    pub flushed: bool,
}

impl EdgeCache {
    /// Opens the tiers configured by `config` (the disk tier recovers what it held).
    pub fn open(config: &CacheConfig, metrics: Arc<Metrics>) -> Result<EdgeCache, String> {
        let tiers = Tiers::open(config, &metrics)?;
        let freshness = Freshness::new(config.fresh_for, config.stale_if_error);
        let rules = PurgeRules::open(
            (config.disk.as_u64() > 0).then(|| config.dir.join("purges.json")),
            freshness.purge_window_ms(),
        );
        Ok(EdgeCache {
            inner: Arc::new(Inner {
                tiers,
                fills: Flights::default(),
                heads: Flights::default(),
                makes: Flights::default(),
                rules,
                freshness,
                max_object: config.max_object(),
                metrics,
                derivations: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Closes the cache on shutdown: waits up to `patience` for the fills and makes
    /// still running (a client may have its bytes before its fill stores them), then
    /// writes what the disk tier has queued, within `patience` again. What could not
    /// be kept is logged at WARN.
    pub async fn close(&self, patience: Duration) -> CloseReport {
        let inner = &self.inner;
        let running = || inner.fills.len() + inner.makes.len() + inner.heads.len();
        let deadline = Instant::now() + patience;
        while running() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let unfinished = running();
        if unfinished > 0 {
            log::warn!(
                "cache: closing with {unfinished} fill(s) still running after {patience:?}: their results are not kept"
            );
        }
        let flushed = match tokio::time::timeout(patience, inner.tiers.close()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                log::warn!("cache: closing the disk tier failed: {e}; entries still queued for it are lost");
                false
            }
            Err(_) => {
                log::warn!(
                    "cache: the disk tier did not finish writing within {patience:?}; entries still queued for it are lost"
                );
                false
            }
        };
        CloseReport {
            unfinished,
            flushed,
        }
    }

    /// Bytes held in memory, and on disk (the disk tier's allocated blocks).
    pub fn bytes(&self) -> (u64, u64) {
        self.inner.tiers.bytes()
    }

    /// Largest original cached.
    pub fn max_object(&self) -> u64 {
        self.inner.max_object
    }

    /// Counts one request's outcome in `filegate_cache_requests_total`.
    pub fn count(&self, kind: Kind, tier: Tier, status: CacheStatus) {
        self.inner
            .metrics
            .cache_requests
            .with_label_values(&[kind.label(), tier.label(), status.label()])
            .inc();
    }

    pub(super) fn verdict(&self, object_key: &str, stored_at_ms: u64, now: u64) -> Verdict {
        self.inner.rules.verdict(object_key, stored_at_ms, now)
    }

    /// The version record of `key`, if cached and not purged; and whether its object
    /// was purged recently (then it is revalidated soon).
    pub(super) async fn cached_version(
        &self,
        app: &str,
        key: &ObjectKey,
        now: u64,
    ) -> Option<(Arc<VersionRecord>, bool)> {
        let (entry, tier) = self.inner.tiers.get(&CacheKey::version(app, key)).await?;
        let CacheValue::Version(v) = entry.value() else {
            return None;
        };
        if v.object_key != key.as_str() {
            return None;
        }
        if tier == Tier::Disk {
            // Read back after a restart: a prefix purge can name it again.
            self.inner.rules.saw(key.as_str());
        }
        match self.verdict(&v.object_key, v.stored_at_ms, now) {
            Verdict::Purged => None,
            Verdict::RecentlyPurged => Some((v.clone(), true)),
            Verdict::Clear => Some((v.clone(), false)),
        }
    }

    /// Records what the store said of `key` at `at_ms` (when it answered).
    pub(super) async fn store_version(
        &self,
        app: &str,
        key: &ObjectKey,
        meta: ObjectMeta,
        at_ms: u64,
    ) -> Arc<VersionRecord> {
        let record = Arc::new(VersionRecord {
            object_key: key.as_str().to_string(),
            meta,
            validated_at_ms: at_ms,
            stored_at_ms: at_ms,
        });
        self.inner.rules.saw(key.as_str());
        self.inner
            .tiers
            .insert(
                CacheKey::version(app, key),
                CacheValue::Version(record.clone()),
            )
            .await;
        record
    }

    /// Forgets an object that the store says is gone.
    pub(super) fn forget(&self, app: &str, key: &ObjectKey, etag: Option<&str>) {
        self.inner.tiers.remove(&CacheKey::version(app, key));
        if let Some(etag) = etag {
            for head in CacheKey::originals(app, key, etag) {
                self.inner.tiers.remove(&head);
            }
        }
    }

    /// A cached body (its head and every piece), if whole and not purged; a body
    /// missing a piece is dropped (it is fetched or made again).
    pub(super) async fn cached_body(
        &self,
        head_key: CacheKey,
        object_key: &str,
    ) -> Option<(Body, Tier)> {
        let tiers = &self.inner.tiers;
        let (entry, tier) = tiers.get(&head_key).await?;
        let head = match entry.value() {
            CacheValue::BodyHead(h)
                if h.object_key == object_key
                    && self.verdict(&h.object_key, h.stored_at_ms, now_ms()) != Verdict::Purged =>
            {
                h.clone()
            }
            _ => return None,
        };
        let mut rest = Vec::with_capacity(head.parts.saturating_sub(1) as usize);
        for part in 1..head.parts {
            match tiers.get(&head_key.part(part)).await {
                Some((e, _)) => match e.value() {
                    CacheValue::Part(b) => rest.push(b.clone()),
                    _ => return self.drop_body(head_key, "a piece of another kind"),
                },
                None => return self.drop_body(head_key, "a missing piece"),
            }
        }
        Some((Body::Cached { head, rest }, tier))
    }

    /// A body missing a piece is dropped: the next request fetches it again.
    pub(super) fn drop_body(&self, head_key: CacheKey, why: &str) -> Option<(Body, Tier)> {
        log::warn!("cache: dropping a cached body with {why}");
        self.inner.tiers.remove(&head_key);
        None
    }

    /// Stores a whole body under `head_key`, in pieces of [`PART_BYTES`]; `stamp_ms`
    /// is when its source was read (a purge after it removes the body). Returns the
    /// number of pieces.
    pub(super) async fn store_body(
        &self,
        head_key: CacheKey,
        object_key: &str,
        meta: ObjectMeta,
        body: &[Bytes],
        stamp_ms: u64,
    ) -> u32 {
        let pieces = split_pieces(body);
        let parts = pieces.len() as u32;
        let mut pieces = pieces.into_iter();
        let first = pieces.next().unwrap_or_default();
        let tiers = &self.inner.tiers;
        // Pieces first, head last: a reader that finds the head finds every piece.
        for (i, piece) in pieces.enumerate() {
            tiers
                .insert(head_key.part(i as u32 + 1), CacheValue::Part(piece))
                .await;
        }
        tiers
            .insert(
                head_key,
                CacheValue::BodyHead(Arc::new(BodyHead {
                    object_key: object_key.to_string(),
                    meta,
                    stored_at_ms: stamp_ms,
                    parts,
                    first,
                })),
            )
            .await;
        parts
    }
}

/// A body cut into pieces of [`PART_BYTES`] (the last one shorter; an empty body is
/// one empty piece).
fn split_pieces(body: &[Bytes]) -> Vec<Bytes> {
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut pending = BytesMut::new();
    for chunk in body {
        let mut chunk = chunk.clone();
        while !chunk.is_empty() {
            if pending.is_empty() && chunk.len() >= PART_BYTES {
                pieces.push(chunk.split_to(PART_BYTES));
                continue;
            }
            let take = (PART_BYTES - pending.len()).min(chunk.len());
            pending.extend_from_slice(&chunk.split_to(take));
            if pending.len() == PART_BYTES {
                pieces.push(std::mem::take(&mut pending).freeze());
            }
        }
    }
    if !pending.is_empty() || pieces.is_empty() {
        pieces.push(pending.freeze());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_into_whole_pieces() {
        let sizes = |body: &[Bytes]| {
            split_pieces(body)
                .iter()
                .map(Bytes::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(&[]), vec![0]);
        assert_eq!(sizes(&[Bytes::from_static(b"abc")]), vec![3]);
        let big = Bytes::from(vec![1u8; PART_BYTES * 2 + 5]);
        assert_eq!(
            sizes(std::slice::from_ref(&big)),
            vec![PART_BYTES, PART_BYTES, 5]
        );
        // Small chunks are joined into whole pieces, in order.
        let chunks: Vec<Bytes> = big.chunks(1000).map(Bytes::copy_from_slice).collect();
        let pieces = split_pieces(&chunks);
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![PART_BYTES, PART_BYTES, 5]
        );
        assert_eq!(pieces.concat(), big.to_vec());
    }
}
