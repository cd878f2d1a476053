//! The edge cache (SPEC §6): one engine for originals and derived results, in memory
//! and on disk ([`tiers`], on `foyer`).
//!
//! - [`key`]: keys scoped by app and object key, plus the source's ETag and the
//!   normalised transform for derived results.
//! - [`entry`]: what is stored (version records, body heads, body pieces) and its
//!   checksummed on-disk form.
//! - [`flight`]: single flight; concurrent misses share one store GET or one
//!   transform, and stream from it.
//! - [`purge`]: purges by key or prefix, kept across restarts.
//!
//! Freshness: the keys filegate mints are immutable, so an object's version record is
//! fresh for `cache.fresh_for` after the store last vouched for it; then one `HEAD`
//! revalidates it (same ETag: kept; gone: dropped, 404; store failing: the cached body
//! is served `STALE` for up to `cache.stale_if_error`). Bodies are keyed by version,
//! so a body of an unchanged version stays valid however old it is.

pub mod entry;
pub mod flight;
pub mod key;
pub mod purge;
pub mod tiers;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Future, StreamExt};

use crate::config::CacheConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::storage::keys::ObjectKey;
use crate::storage::{ByteStream, GetOutcome, GetRequest, ObjectMeta, ObjectStore, StoreError};
use entry::{CacheValue, Head, VersionRecord, PART_BYTES};
use flight::{FillHead, Flight, FlightReader, Flights, Joined};
use key::CacheKey;
use purge::Purges;
use tiers::Engine;

/// What the cache did for a request: the values of nginx's `$upstream_cache_status`,
/// sent as `X-Cache-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache, fresh.
    Hit,
    /// Fetched (or made) now.
    Miss,
    /// Served from the cache while the store fails (`cache.stale_if_error`).
    Stale,
    /// Served from the cache after the store vouched for it again.
    Revalidated,
    /// Not cached (too large, or not cacheable): streamed from the store.
    Bypass,
}

impl CacheStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
            CacheStatus::Revalidated => "revalidated",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// Where a cached body came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
    /// Neither (a miss or a bypass).
    None,
}

impl Tier {
    fn label(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Disk => "disk",
            Tier::None => "none",
        }
    }
}

/// What a cached body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An original object.
    Original,
    /// A thumbnail, cover or MP3.
    Derived,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Original => "original",
            Kind::Derived => "derived",
        }
    }
}

/// A body ready to serve.
pub enum Body {
    /// In the cache: the head (its metadata and first piece) and the other pieces.
    Cached {
        /// The head.
        head: Arc<Head>,
        /// Pieces 1.. of a large body, in order.
        rest: Vec<Bytes>,
    },
    /// Arriving from a fill that other clients may share.
    Filling {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes as they arrive.
        reader: FlightReader,
    },
    /// Arriving from another node (its owner), piece by piece.
    Remote {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes as they arrive.
        stream: ByteStream,
    },
    /// Whole in memory (a node's short-lived copy of what an owner sent).
    Whole {
        /// Its metadata.
        meta: Arc<ObjectMeta>,
        /// Its bytes.
        bytes: Bytes,
    },
}

impl Body {
    /// What a client is told of the body.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Body::Cached { head, .. } => &head.meta,
            Body::Filling { meta, .. } | Body::Remote { meta, .. } | Body::Whole { meta, .. } => {
                meta
            }
        }
    }

    /// The next piece of the whole body (`index` counts them): a cached body's
    /// pieces, or a fill's as they come; `Ok(None)` at the end.
    pub async fn next_piece(&mut self, index: &mut usize) -> Result<Option<Bytes>, ApiError> {
        match self {
            Body::Cached { head, rest } => {
                let i = *index;
                *index += 1;
                Ok(match i {
                    0 => Some(head.first.clone()),
                    i => rest.get(i - 1).cloned(),
                })
            }
            Body::Filling { reader, .. } => reader.next().await,
            Body::Remote { stream, .. } => match stream.next().await {
                Some(Ok(piece)) => Ok(Some(piece)),
                Some(Err(e)) => Err(e.into()),
                None => Ok(None),
            },
            Body::Whole { bytes, .. } => {
                let first = *index == 0;
                *index += 1;
                Ok(first.then(|| bytes.clone()))
            }
        }
    }
}

/// A body found or being fetched, and what the cache did.
pub struct Found {
    /// The body.
    pub body: Body,
    /// `X-Cache-Status`.
    pub status: CacheStatus,
}

/// How an original is served.
pub enum Original {
    /// From the cache or a fill.
    Found(Found),
    /// Larger than `cache.max_object`: streamed from the store, uncached.
    Bypass,
}

/// How fresh a version record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Age {
    /// Within `fresh_for`.
    Fresh,
    /// Past it, within `stale_if_error` more: revalidated, served stale if that fails.
    Stale,
    /// Past both: revalidated, never served on a failure.
    Expired,
}

/// How the version used was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// From the cache, fresh.
    Fresh,
    /// From the cache, vouched for again by the store now.
    Revalidated,
    /// From the cache, past its freshness, while the store fails.
    Stale,
    /// Asked of the store now (unknown before, or changed).
    Fetched,
}

/// The version of a source a derived result is made from.
#[derive(Debug, Clone)]
pub struct SourceVersion {
    /// Its metadata.
    pub meta: ObjectMeta,
    /// How it was obtained.
    pub state: VersionState,
}

struct Settings {
    fresh_for_ms: u64,
    stale_if_error_ms: u64,
    max_object: u64,
}

struct Inner {
    engine: Engine,
    device: Option<Arc<dyn foyer::Device>>,
    fills: Flights,
    heads: Flights,
    makes: Flights,
    purges: Purges,
    settings: Settings,
    metrics: Arc<Metrics>,
}

/// The edge cache. Cheap to clone (one shared engine).
#[derive(Clone)]
pub struct EdgeCache {
    inner: Arc<Inner>,
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EdgeCache {
    /// Opens the tiers configured by `config` (the disk tier recovers what it held).
    pub fn open(config: &CacheConfig, metrics: Arc<Metrics>) -> Result<EdgeCache, String> {
        let tiers = tiers::open(config)?;
        let purges =
            Purges::open((config.disk.as_u64() > 0).then(|| config.dir.join("purges.json")));
        Ok(EdgeCache {
            inner: Arc::new(Inner {
                engine: tiers.engine,
                device: tiers.device,
                fills: Flights::default(),
                heads: Flights::default(),
                makes: Flights::default(),
                purges,
                settings: Settings {
                    fresh_for_ms: millis(config.fresh_for),
                    stale_if_error_ms: millis(config.stale_if_error),
                    max_object: config.max_object.as_u64(),
                },
                metrics,
            }),
        })
    }

    /// Flushes what the disk tier has queued (on shutdown).
    pub async fn close(&self) {
        if let Err(e) = self.inner.engine.close().await {
            log::warn!("cache: closing the tiers: {e}");
        }
    }

    /// Bytes held in memory, and on disk (the disk tier's allocated blocks).
    pub fn bytes(&self) -> (u64, u64) {
        let memory = self.inner.engine.memory().usage() as u64;
        let disk = self
            .inner
            .device
            .as_ref()
            .map_or(0, |d| d.allocated() as u64);
        (memory, disk)
    }

    /// Largest original cached.
    pub fn max_object(&self) -> u64 {
        self.inner.settings.max_object
    }

    /// Counts one request's outcome in `filegate_cache_requests_total`.
    pub fn count(&self, kind: Kind, tier: Tier, status: CacheStatus) {
        self.inner
            .metrics
            .cache_requests
            .with_label_values(&[kind.label(), tier.label(), status.label()])
            .inc();
    }

    fn age(&self, validated_at_ms: u64, now: u64) -> Age {
        let s = &self.inner.settings;
        let age = now.saturating_sub(validated_at_ms);
        if age < s.fresh_for_ms {
            Age::Fresh
        } else if age < s.fresh_for_ms.saturating_add(s.stale_if_error_ms) {
            Age::Stale
        } else {
            Age::Expired
        }
    }

    /// An entry, from memory or else disk. A damaged or unreadable disk entry is a
    /// miss (the engine drops entries whose checksum fails; ours too).
    async fn get(&self, key: &CacheKey) -> Option<(tiers::Entry, Tier)> {
        let engine = &self.inner.engine;
        if let Some(e) = engine.memory().get(key) {
            return Some((e, Tier::Memory));
        }
        if !engine.is_hybrid() {
            return None;
        }
        match engine.get(key).await {
            Ok(Some(e)) => Some((e, Tier::Disk)),
            Ok(None) => None,
            Err(e) => {
                log::warn!("cache: dropping an unreadable disk entry: {e}");
                engine.remove(key);
                None
            }
        }
    }

    fn put(&self, key: CacheKey, object_key: &str, value: CacheValue) {
        self.inner.purges.record(object_key, key);
        self.inner.engine.insert(key, value);
    }

    /// The version record of `key`, if cached (and not purged).
    async fn cached_version(&self, vkey: &CacheKey, key: &ObjectKey) -> Option<VersionRecord> {
        let (entry, _) = self.get(vkey).await?;
        match entry.value() {
            CacheValue::Version(v)
                if v.object_key == key.as_str()
                    && !self.inner.purges.is_purged(&v.object_key, v.stored_at_ms) =>
            {
                Some(v.clone())
            }
            _ => None,
        }
    }

    fn store_version(
        &self,
        app: &str,
        key: &ObjectKey,
        meta: ObjectMeta,
        now: u64,
    ) -> VersionRecord {
        let record = VersionRecord {
            object_key: key.as_str().to_string(),
            meta,
            validated_at_ms: now,
            stored_at_ms: now,
        };
        self.put(
            CacheKey::version(app, key),
            key.as_str(),
            CacheValue::Version(record.clone()),
        );
        record
    }

    /// Forgets an object that the store says is gone.
    fn forget(&self, app: &str, key: &ObjectKey, etag: Option<&str>) {
        self.inner.engine.remove(&CacheKey::version(app, key));
        if let Some(etag) = etag {
            self.inner
                .engine
                .remove(&CacheKey::original(app, key, etag));
        }
    }

    /// A cached body (its head and every piece), if whole; a body missing a piece
    /// is dropped (it is fetched again).
    async fn cached_body(&self, head_key: CacheKey, object_key: &str) -> Option<(Body, Tier)> {
        let (entry, tier) = self.get(&head_key).await?;
        let head = match entry.value() {
            CacheValue::Head(h)
                if h.object_key == object_key
                    && !self.inner.purges.is_purged(&h.object_key, h.stored_at_ms) =>
            {
                h.clone()
            }
            _ => return None,
        };
        let mut rest = Vec::with_capacity(head.parts.saturating_sub(1) as usize);
        for part in 1..head.parts {
            match self.get(&head_key.part(part)).await {
                Some((e, _)) => match e.value() {
                    CacheValue::Part(b) => rest.push(b.clone()),
                    _ => return self.drop_body(head_key),
                },
                None => return self.drop_body(head_key),
            }
        }
        Some((Body::Cached { head, rest }, tier))
    }

    /// A body missing a piece is dropped: the next request fetches it again.
    fn drop_body(&self, head_key: CacheKey) -> Option<(Body, Tier)> {
        self.inner.engine.remove(&head_key);
        None
    }

    /// Stores a whole body under `head_key`, in pieces of [`PART_BYTES`].
    fn store_body(&self, head_key: CacheKey, object_key: &str, meta: ObjectMeta, body: &[Bytes]) {
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
        let now = now_ms();
        let parts = pieces.len() as u32;
        let mut pieces = pieces.into_iter();
        let first = pieces.next().unwrap_or_default();
        // Pieces first, head last: a reader that finds the head finds every piece.
        for (i, piece) in pieces.enumerate() {
            self.put(
                head_key.part(i as u32 + 1),
                object_key,
                CacheValue::Part(piece),
            );
        }
        self.put(
            head_key,
            object_key,
            CacheValue::Head(Arc::new(Head {
                object_key: object_key.to_string(),
                meta,
                stored_at_ms: now,
                parts,
                first,
            })),
        );
    }

    /// Serves an original: a fresh cached body (`HIT`), one the store vouched for
    /// again (`REVALIDATED`) or, while it fails, a stale one (`STALE`); else the
    /// object is fetched once, however many ask (`MISS`), or, above
    /// `cache.max_object`, streamed through (`BYPASS`).
    pub async fn original(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<Original, ApiError> {
        let vkey = CacheKey::version(app, key);
        if let Some(v) = self.cached_version(&vkey, key).await {
            if v.meta.size > self.inner.settings.max_object {
                self.count(Kind::Original, Tier::None, CacheStatus::Bypass);
                return Ok(Original::Bypass);
            }
            let head_key = CacheKey::original(app, key, &v.meta.etag);
            let now = now_ms();
            let age = self.age(v.validated_at_ms, now);
            let status = match age {
                Age::Fresh => CacheStatus::Hit,
                Age::Stale | Age::Expired => match self.revalidate(store, app, key, &v).await {
                    Ok(meta) if meta.etag == v.meta.etag => CacheStatus::Revalidated,
                    Ok(_) => return self.fill_original(store, app, key).await,
                    Err(e) if e.status() == http::StatusCode::NOT_FOUND => {
                        self.forget(app, key, Some(&v.meta.etag));
                        return Err(e);
                    }
                    Err(e) if age == Age::Stale => {
                        match self.cached_body(head_key, key.as_str()).await {
                            Some((body, tier)) => {
                                log::debug!("cache: serving {key} stale, the store fails: {e}");
                                self.count(Kind::Original, tier, CacheStatus::Stale);
                                return Ok(Original::Found(Found {
                                    body,
                                    status: CacheStatus::Stale,
                                }));
                            }
                            None => return Err(e),
                        }
                    }
                    Err(e) => return Err(e),
                },
            };
            if let Some((body, tier)) = self.cached_body(head_key, key.as_str()).await {
                self.count(Kind::Original, tier, status);
                return Ok(Original::Found(Found { body, status }));
            }
        }
        self.fill_original(store, app, key).await
    }

    /// One `HEAD` of `key`, shared by concurrent callers; the version record is
    /// updated with what the store says.
    async fn revalidate(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        known: &VersionRecord,
    ) -> Result<ObjectMeta, ApiError> {
        let meta = self.head_once(store, app, key).await?;
        if meta.etag == known.meta.etag {
            // The record keeps what it knew (names the store may not return).
            let mut kept = known.meta.clone();
            kept.size = meta.size;
            self.store_version(app, key, kept.clone(), now_ms());
            Ok(kept)
        } else {
            self.store_version(app, key, meta.clone(), now_ms());
            Ok(meta)
        }
    }

    async fn head_once(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<ObjectMeta, ApiError> {
        let fkey = CacheKey::version(app, key);
        let flight = match self.inner.heads.join(fkey) {
            Joined::Follower(f) => f,
            Joined::Leader(f) => {
                let (cache, store, key, f2) = (self.clone(), store.clone(), key.clone(), f.clone());
                tokio::spawn(async move {
                    let head = match store.head(&key).await {
                        Ok(meta) => FillHead::Body(Arc::new(meta)),
                        Err(e) => FillHead::Failed(e.into()),
                    };
                    cache.inner.heads.done(&fkey);
                    f2.begin(head);
                    f2.finish(Ok(()));
                });
                f
            }
        };
        match flight.head().await {
            FillHead::Body(meta) | FillHead::TooLarge(meta) => Ok((*meta).clone()),
            FillHead::Failed(e) => Err(e),
        }
    }

    /// Joins or starts the fill of an original, and serves from it.
    async fn fill_original(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<Original, ApiError> {
        let fkey = CacheKey::version(app, key);
        let flight = match self.inner.fills.join(fkey) {
            Joined::Follower(f) => f,
            Joined::Leader(f) => {
                let (cache, store, app, key) =
                    (self.clone(), store.clone(), app.to_string(), key.clone());
                let fill = f.clone();
                tokio::spawn(async move {
                    let result = cache.run_original_fill(&store, &app, &key, &fill).await;
                    // Forgotten before it ends: a request after a failure fetches again.
                    cache.inner.fills.done(&fkey);
                    fill.finish(result);
                });
                f
            }
        };
        match flight.head().await {
            FillHead::Body(meta) => {
                self.count(Kind::Original, Tier::None, CacheStatus::Miss);
                Ok(Original::Found(Found {
                    body: Body::Filling {
                        meta,
                        reader: flight.reader(),
                    },
                    status: CacheStatus::Miss,
                }))
            }
            FillHead::TooLarge(_) => {
                self.count(Kind::Original, Tier::None, CacheStatus::Bypass);
                Ok(Original::Bypass)
            }
            FillHead::Failed(e) => Err(e),
        }
    }

    /// One store GET of an original, published to its readers as it arrives, and
    /// cached once whole. Runs in its own task: a client that leaves does not stop it.
    async fn run_original_fill(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        flight: &Arc<Flight>,
    ) -> Result<(), ApiError> {
        self.inner.metrics.origin_fetches.inc();
        let body = match store.get(key, GetRequest::default()).await {
            Ok(GetOutcome::Body(body)) => body,
            Ok(GetOutcome::NotModified(_)) => {
                return Err(ApiError::internal("an unconditional read answered 304"))
            }
            Err(e) => {
                if e == StoreError::NotFound {
                    self.forget(app, key, None);
                }
                return Err(e.into());
            }
        };
        let meta = body.meta.clone();
        self.store_version(app, key, meta.clone(), now_ms());
        if meta.size > self.inner.settings.max_object {
            flight.begin(FillHead::TooLarge(Arc::new(meta)));
            return Ok(());
        }
        flight.begin(FillHead::Body(Arc::new(meta.clone())));
        let mut stream = body.stream;
        let mut received = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if received > meta.size {
                break;
            }
            flight.push(chunk);
        }
        if received != meta.size {
            return Err(ApiError::store_failed(format!(
                "the store sent {received} of {} bytes",
                meta.size
            )));
        }
        self.store_body(
            CacheKey::original(app, key, &meta.etag),
            key.as_str(),
            meta,
            &flight.chunks(),
        );
        Ok(())
    }

    /// The whole bytes of an original (a transform's source), through the cache.
    /// `None`: it is above `cache.max_object`, read it from the store directly.
    pub async fn original_bytes(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<Option<Bytes>, ApiError> {
        let Original::Found(found) = self.original(store, app, key).await? else {
            return Ok(None);
        };
        let mut body = found.body;
        let size = body.meta().size as usize;
        let mut i = 0;
        let first = body.next_piece(&mut i).await?.unwrap_or_default();
        if first.len() == size {
            return Ok(Some(first));
        }
        let mut all = BytesMut::with_capacity(size);
        all.extend_from_slice(&first);
        while let Some(piece) = body.next_piece(&mut i).await? {
            all.extend_from_slice(&piece);
        }
        if all.len() != size {
            return Err(ApiError::store_failed("the source ended short"));
        }
        Ok(Some(all.freeze()))
    }

    /// The version of a source, for a derived result's key: fresh from the cache,
    /// revalidated, stale while the store fails, or asked of the store now.
    pub async fn source_version(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<SourceVersion, ApiError> {
        let vkey = CacheKey::version(app, key);
        let Some(v) = self.cached_version(&vkey, key).await else {
            let meta = self.head_once(store, app, key).await?;
            self.store_version(app, key, meta.clone(), now_ms());
            return Ok(SourceVersion {
                meta,
                state: VersionState::Fetched,
            });
        };
        let age = self.age(v.validated_at_ms, now_ms());
        if age == Age::Fresh {
            return Ok(SourceVersion {
                meta: v.meta,
                state: VersionState::Fresh,
            });
        }
        match self.revalidate(store, app, key, &v).await {
            Ok(meta) => {
                let state = if meta.etag == v.meta.etag {
                    VersionState::Revalidated
                } else {
                    VersionState::Fetched
                };
                Ok(SourceVersion { meta, state })
            }
            Err(e) if e.status() == http::StatusCode::NOT_FOUND => {
                self.forget(app, key, Some(&v.meta.etag));
                Err(e)
            }
            Err(e) if age == Age::Stale => {
                log::debug!("cache: using the stale version of {key}, the store fails: {e}");
                Ok(SourceVersion {
                    meta: v.meta,
                    state: VersionState::Stale,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A derived result of `source` (whose version is `version`), keyed by
    /// `head_key`: from the cache, else made once by `make` (however many ask) and
    /// cached. `make` runs in its own task.
    pub async fn derived<F, Fut>(
        &self,
        head_key: CacheKey,
        source: &ObjectKey,
        version: VersionState,
        make: F,
    ) -> Result<Found, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(ObjectMeta, Bytes), ApiError>> + Send + 'static,
    {
        if let Some((body, tier)) = self.cached_body(head_key, source.as_str()).await {
            let status = match version {
                VersionState::Fresh | VersionState::Fetched => CacheStatus::Hit,
                VersionState::Revalidated => CacheStatus::Revalidated,
                VersionState::Stale => CacheStatus::Stale,
            };
            self.count(Kind::Derived, tier, status);
            return Ok(Found { body, status });
        }
        let flight = match self.inner.makes.join(head_key) {
            Joined::Follower(f) => f,
            Joined::Leader(f) => {
                let made = make();
                let (cache, source, fill) = (self.clone(), source.clone(), f.clone());
                tokio::spawn(async move {
                    match made.await {
                        Ok((meta, bytes)) => {
                            let chunk = [bytes.clone()];
                            cache.store_body(head_key, source.as_str(), meta.clone(), &chunk);
                            cache.inner.makes.done(&head_key);
                            fill.begin(FillHead::Body(Arc::new(meta)));
                            fill.push(bytes);
                            fill.finish(Ok(()));
                        }
                        Err(e) => {
                            cache.inner.makes.done(&head_key);
                            fill.finish(Err(e));
                        }
                    }
                });
                f
            }
        };
        match flight.head().await {
            FillHead::Body(meta) | FillHead::TooLarge(meta) => {
                self.count(Kind::Derived, Tier::None, CacheStatus::Miss);
                Ok(Found {
                    body: Body::Filling {
                        meta,
                        reader: flight.reader(),
                    },
                    status: CacheStatus::Miss,
                })
            }
            FillHead::Failed(e) => Err(e),
        }
    }

    /// Purges one object key and everything made from it; returns how many cached
    /// entries this process dropped (entries recovered from disk since a restart are
    /// dropped too, by the recorded rule, without being counted).
    pub fn purge_key(&self, key: &str) -> usize {
        let keys = self.inner.purges.purge_key(key, now_ms());
        self.remove_all(&keys)
    }

    /// Purges every object key under `prefix`.
    pub fn purge_prefix(&self, prefix: &str) -> usize {
        let keys = self.inner.purges.purge_prefix(prefix, now_ms());
        self.remove_all(&keys)
    }

    fn remove_all(&self, keys: &[CacheKey]) -> usize {
        let engine = &self.inner.engine;
        let mut removed = 0;
        for k in keys {
            if engine.contains(k) {
                removed += 1;
            }
            engine.remove(k);
        }
        removed
    }
}
