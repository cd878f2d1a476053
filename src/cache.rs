//! The derived-result cache (SPEC §6): results in memory (moka), weighed in bytes
//! against `cache.memory`, keyed by a digest of app, object key, source ETag and the
//! normalised transform; concurrent misses of one key make one fetch and one
//! transform (single flight; errors are not cached); results are written back to the
//! store under `<app>/_derived/` and read from there before anything is made, so
//! restarts and other nodes reuse them.
//!
//! Sources' ETags are kept for `cache.source_ttl` too, so a hit costs no store round
//! trip at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::{Future, StreamExt};
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::config::CacheConfig;
use crate::error::ApiError;
use crate::media::Rendered;
use crate::metrics::Metrics;
use crate::storage::keys::ObjectKey;
use crate::storage::{GetOutcome, GetRequest, ObjectMeta, ObjectStore, StoreError};

/// Bytes counted for an entry besides its body (key, metadata, moka's bookkeeping).
const ENTRY_OVERHEAD: usize = 256;
/// Sources whose last metadata is remembered for stale-if-error.
const LAST_KNOWN_SOURCES: u64 = 50_000;
/// How long a source's last metadata may stand in for a failing store.
const LAST_KNOWN_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A derived result.
#[derive(Debug)]
pub struct Derived {
    /// The bytes.
    pub bytes: Bytes,
    /// What a client is told of them (strong ETag from the cache key).
    pub meta: ObjectMeta,
    /// Its copy in the store.
    pub key: ObjectKey,
    stored: AtomicBool,
}

impl Derived {
    /// Whether the copy in the store is known to exist.
    pub fn is_stored(&self) -> bool {
        self.stored.load(Ordering::Acquire)
    }
}

/// The cache key of a derived result: SHA-256 over its inputs.
pub fn derived_digest(app: &str, key: &ObjectKey, source_etag: &str, canonical: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [app, key.as_str(), source_etag, canonical] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The strong ETag of a derived result.
pub fn derived_etag(digest: &[u8; 32]) -> String {
    format!("\"d{}\"", hex(&digest[..16]))
}

/// Derived results and source versions.
pub struct DerivedCache {
    results: Cache<[u8; 32], Arc<Derived>>,
    sources: Option<Cache<ObjectKey, ObjectMeta>>,
    /// The last metadata seen of each source, kept past `source_ttl`: when the store
    /// fails, derived results of that version are still served (stale-if-error).
    last_known: Cache<ObjectKey, ObjectMeta>,
    write_back: bool,
    /// Largest `_derived/` copy read back (`media.max_output_bytes`): a bigger one was
    /// not written by filegate and is never served.
    max_copy_bytes: u64,
    metrics: Arc<Metrics>,
}

fn weight(derived: &Derived) -> u32 {
    u32::try_from(derived.bytes.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

impl DerivedCache {
    /// A cache configured by `config`.
    pub fn new(config: &CacheConfig, max_copy_bytes: u64, metrics: Arc<Metrics>) -> DerivedCache {
        let gauge = metrics.cache_bytes.clone();
        let results = Cache::builder()
            .max_capacity(config.memory.as_u64())
            .weigher(|_k, v: &Arc<Derived>| weight(v))
            .time_to_live(config.ttl)
            .time_to_idle(config.tti)
            .eviction_listener(move |_k, v: Arc<Derived>, _cause| {
                gauge.sub(i64::from(weight(&v)));
            })
            .build();
        let sources = (!config.source_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(config.source_ttl)
                .build()
        });
        DerivedCache {
            results,
            sources,
            last_known: Cache::builder()
                .max_capacity(LAST_KNOWN_SOURCES)
                .time_to_live(LAST_KNOWN_TTL)
                .build(),
            write_back: config.write_back,
            max_copy_bytes,
            metrics,
        }
    }

    /// The source's metadata: from memory within `cache.source_ttl`, else one store
    /// `HEAD` shared by concurrent callers. When the store fails (not "no such
    /// object"), the last metadata seen is used, so results already made keep being
    /// served through a store outage.
    pub async fn source_meta(
        &self,
        store: &dyn ObjectStore,
        key: &ObjectKey,
    ) -> Result<ObjectMeta, ApiError> {
        // A fresh entry is the hot path: no store round trip and no write.
        if let Some(meta) = match &self.sources {
            Some(sources) => sources.get(key).await,
            None => None,
        } {
            return Ok(meta);
        }
        let fetched = match &self.sources {
            None => store.head(key).await,
            Some(sources) => sources
                .try_get_with_by_ref(key, store.head(key))
                .await
                .map_err(|e: Arc<StoreError>| (*e).clone()),
        };
        match fetched {
            Ok(meta) => {
                self.last_known.insert(key.clone(), meta.clone()).await;
                Ok(meta)
            }
            Err(StoreError::NotFound) => {
                self.last_known.invalidate(key).await;
                Err(StoreError::NotFound.into())
            }
            Err(e) => match self.last_known.get(key).await {
                Some(meta) => {
                    log::debug!("store failing ({e}); using the last metadata seen of {key}");
                    Ok(meta)
                }
                None => Err(e.into()),
            },
        }
    }

    /// The result under `digest`: from memory, else from the store's `_derived/`
    /// copy, else made by `make` (once, however many callers wait for it) and
    /// written back.
    pub async fn get_or_make<F, Fut>(
        &self,
        store: &dyn ObjectStore,
        digest: [u8; 32],
        derived_key: &ObjectKey,
        make: F,
    ) -> Result<Arc<Derived>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendered, ApiError>>,
    {
        let etag = derived_etag(&digest);
        let init = async {
            if self.write_back {
                if let Some(found) = self.read_stored(store, derived_key, &etag).await {
                    self.metrics.cache_hits.inc();
                    return Ok(Arc::new(found));
                }
            }
            self.metrics.cache_misses.inc();
            let rendered = make().await?;
            let bytes = Bytes::from(rendered.bytes);
            let mut stored = false;
            if self.write_back {
                match store
                    .put(derived_key, bytes.clone(), rendered.content_type)
                    .await
                {
                    Ok(_) => stored = true,
                    Err(e) => log::warn!("writing {derived_key} back to the store: {e}"),
                }
            }
            Ok::<_, ApiError>(Arc::new(Derived {
                meta: ObjectMeta {
                    size: bytes.len() as u64,
                    etag: etag.clone(),
                    content_type: rendered.content_type.to_string(),
                    original_name: None,
                    last_modified: None,
                },
                bytes,
                key: derived_key.clone(),
                stored: AtomicBool::new(stored),
            }))
        };
        let entry = self
            .results
            .entry(digest)
            .or_try_insert_with(init)
            .await
            .map_err(|e| (*e).clone())?;
        if entry.is_fresh() {
            self.metrics
                .cache_bytes
                .add(i64::from(weight(entry.value())));
        } else {
            self.metrics.cache_hits.inc();
        }
        Ok(entry.into_value())
    }

    /// Makes sure the store holds the result's copy (`redirect` mode serves it).
    pub async fn ensure_stored(
        &self,
        store: &dyn ObjectStore,
        derived: &Derived,
    ) -> Result<(), ApiError> {
        if derived.is_stored() {
            return Ok(());
        }
        store
            .put(
                &derived.key,
                derived.bytes.clone(),
                &derived.meta.content_type,
            )
            .await?;
        derived.stored.store(true, Ordering::Release);
        Ok(())
    }

    /// The stored copy, if the store has it whole; a store failure is logged and
    /// treated as absent (the result is then made again).
    async fn read_stored(
        &self,
        store: &dyn ObjectStore,
        key: &ObjectKey,
        etag: &str,
    ) -> Option<Derived> {
        let body = match store.get(key, GetRequest::default()).await {
            Ok(GetOutcome::Body(body)) => body,
            Ok(GetOutcome::NotModified(_)) | Err(StoreError::NotFound) => return None,
            Err(e) => {
                log::warn!("reading {key} from the store: {e}");
                return None;
            }
        };
        if body.meta.size > self.max_copy_bytes {
            log::warn!(
                "{key} is {} bytes, above media.max_output_bytes: not served, made again",
                body.meta.size
            );
            return None;
        }
        let mut buf = BytesMut::with_capacity(body.meta.size as usize);
        let mut stream = body.stream;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) if (buf.len() + c.len()) as u64 <= self.max_copy_bytes => {
                    buf.extend_from_slice(&c)
                }
                Ok(_) => return None,
                Err(e) => {
                    log::warn!("reading {key} from the store: {e}");
                    return None;
                }
            }
        }
        if buf.len() as u64 != body.meta.size {
            return None;
        }
        let bytes = buf.freeze();
        Some(Derived {
            meta: ObjectMeta {
                size: bytes.len() as u64,
                etag: etag.to_string(),
                content_type: body.meta.content_type,
                original_name: None,
                last_modified: None,
            },
            bytes,
            key: key.clone(),
            stored: AtomicBool::new(true),
        })
    }
}
