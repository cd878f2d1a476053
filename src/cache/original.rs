//! Originals through the cache: a fresh cached body (`HIT`), one the store vouched for
//! again (`REVALIDATED`) or, while it fails, a stale one (`STALE`); else one store GET
//! however many ask (`MISS`), or, above `cache.max_object`, streamed through
//! (`BYPASS`). Revalidation is one `HEAD` shared by concurrent callers.
//!
//! What is cached is the original as served ([`OriginalView`], SPEC §11): with the
//! type its bytes are (sniffed once, in the fill, and kept in the body's metadata), and
//! for an app with `strip_location`, its GPS metadata blanked in place; `ETag`,
//! `Content-Length` and `Range` then describe those bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::cache::body::{Body, Found};
use crate::cache::edge::EdgeCache;
use crate::cache::entry::VersionRecord;
use crate::cache::flight::{FillHead, Flight, Joined};
use crate::cache::freshness::Age;
use crate::cache::key::CacheKey;
use crate::cache::status::{CacheStatus, Kind, Tier};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::media::location::blank_location;
use crate::media::sniff::{sniff, true_type, SniffHead, Sniffed};
use crate::storage::keys::ObjectKey;
use crate::storage::{GetOutcome, GetRequest, ObjectMeta, ObjectStore, StoreError};

/// How the originals of an app are served (SPEC §11).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginalView {
    /// GPS metadata removed from JPEG, PNG, WebP and HEIF (`apps.<id>.strip_location`).
    pub strip_location: bool,
}

/// The ETag of an original whose location was blanked: derived from the store's (the
/// same version and the same edit always give the same bytes), and never equal to it.
fn stripped_etag(store_etag: &str) -> String {
    format!("\"{}-nogps\"", store_etag.trim_matches('"'))
}

/// Whether location metadata can be in a file of this format.
fn may_carry_location(found: Sniffed) -> bool {
    matches!(
        found,
        Sniffed::Jpeg | Sniffed::Png | Sniffed::Webp | Sniffed::IsoBmff { image: true }
    )
}

/// How an original is served.
pub enum OriginalBody {
    /// From the cache or a fill.
    Found(Found),
    /// Larger than `cache.max_object`: streamed from the store, uncached.
    Bypass,
}

impl EdgeCache {
    /// Serves an original (see the module doc).
    pub async fn original(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        view: OriginalView,
    ) -> Result<OriginalBody, ApiError> {
        let now = now_ms();
        if let Some((v, recently_purged)) = self.cached_version(app, key, now).await {
            if v.meta.size > self.inner.max_object {
                self.count(Kind::Original, Tier::None, CacheStatus::Bypass);
                return Ok(OriginalBody::Bypass);
            }
            let head_key = CacheKey::original(app, key, &v.meta.etag, view.strip_location);
            let age = self
                .inner
                .freshness
                .age(v.validated_at_ms, now, recently_purged);
            let status = match age {
                Age::Fresh => CacheStatus::Hit,
                Age::Stale | Age::Expired => match self.revalidate(store, app, key, &v).await {
                    Ok(meta) if meta.etag == v.meta.etag => CacheStatus::Revalidated,
                    Ok(_) => return self.fill_original(store, app, key, view).await,
                    Err(e) if e.status() == http::StatusCode::NOT_FOUND => {
                        self.forget(app, key, Some(&v.meta.etag));
                        return Err(e);
                    }
                    Err(e) if age == Age::Stale => {
                        match self.cached_body(head_key, key.as_str()).await {
                            Some((body, tier)) => {
                                log::debug!("cache: serving {key} stale, the store fails: {e}");
                                self.count(Kind::Original, tier, CacheStatus::Stale);
                                return Ok(OriginalBody::Found(Found {
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
                return Ok(OriginalBody::Found(Found { body, status }));
            }
        }
        self.fill_original(store, app, key, view).await
    }

    /// One `HEAD` of `key`, shared by concurrent callers; the version record is
    /// updated with what the store says.
    pub(super) async fn revalidate(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        known: &VersionRecord,
    ) -> Result<ObjectMeta, ApiError> {
        let (meta, at) = self.head_once(store, key).await?;
        if meta.etag == known.meta.etag {
            // The record keeps what it knew (names the store may not return).
            let mut kept = known.meta.clone();
            kept.size = meta.size;
            self.store_version(app, key, kept.clone(), at).await;
            Ok(kept)
        } else {
            self.store_version(app, key, meta.clone(), at).await;
            Ok(meta)
        }
    }

    /// One `HEAD` of `key` however many ask at once; its answer and when it came.
    pub(super) async fn head_once(
        &self,
        store: &Arc<dyn ObjectStore>,
        key: &ObjectKey,
    ) -> Result<(ObjectMeta, u64), ApiError> {
        let fkey = CacheKey::version(key.app(), key);
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
        let at = now_ms();
        match flight.head().await {
            FillHead::Body(meta) | FillHead::TooLarge(meta) => Ok(((*meta).clone(), at)),
            FillHead::Failed(e) => Err(e),
        }
    }

    /// Joins or starts the fill of an original, and serves from it.
    async fn fill_original(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        view: OriginalView,
    ) -> Result<OriginalBody, ApiError> {
        // One fill per object and view (two apps never share a key, so in practice
        // one per object).
        let fkey = CacheKey::original(app, key, "", view.strip_location);
        let flight = match self.inner.fills.join(fkey) {
            Joined::Follower(f) => f,
            Joined::Leader(f) => {
                let (cache, store, app, key) =
                    (self.clone(), store.clone(), app.to_string(), key.clone());
                let fill = f.clone();
                tokio::spawn(async move {
                    let result = cache
                        .run_original_fill(&store, &app, &key, view, &fill)
                        .await;
                    // Forgotten once it is stored (or failed): a close waits for it, and
                    // a request after a failure fetches again.
                    cache.inner.fills.done(&fkey);
                    fill.finish(result);
                });
                f
            }
        };
        match flight.head().await {
            FillHead::Body(meta) => {
                self.count(Kind::Original, Tier::None, CacheStatus::Miss);
                Ok(OriginalBody::Found(Found {
                    body: Body::Filling {
                        meta,
                        reader: flight.reader(),
                    },
                    status: CacheStatus::Miss,
                }))
            }
            FillHead::TooLarge(_) => {
                self.count(Kind::Original, Tier::None, CacheStatus::Bypass);
                Ok(OriginalBody::Bypass)
            }
            FillHead::Failed(e) => Err(e),
        }
    }

    /// One store GET of an original, published to its readers as it arrives, and
    /// cached once whole (stamped with when the store answered). Runs in its own task:
    /// a client that leaves does not stop it.
    async fn run_original_fill(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        view: OriginalView,
        flight: &Arc<Flight>,
    ) -> Result<(), ApiError> {
        self.inner.metrics.origin_fetches.inc();
        let asked_at = now_ms();
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
        self.store_version(app, key, meta.clone(), asked_at).await;
        if meta.size > self.inner.max_object {
            flight.begin(FillHead::TooLarge(Arc::new(meta)));
            return Ok(());
        }
        let mut stream = body.stream;
        let mut received = 0u64;
        // The first bytes say what the object is.
        let mut early = Vec::new();
        let mut head = SniffHead::default();
        while !head.is_full() {
            let Some(chunk) = next_piece(&mut stream).await? else {
                break;
            };
            received += chunk.len() as u64;
            head.feed(&chunk);
            early.push(chunk);
        }
        let mut served = meta.clone();
        if let Some(t) = true_type(head.bytes()) {
            served.content_type = t.to_string();
        }
        // Location can sit anywhere (a WebP's EXIF chunk follows the pixels, a HEIF's
        // Exif item is wherever `iloc` says): such a body is read whole first.
        let whole = view.strip_location && may_carry_location(sniff(head.bytes()));
        let mut buffer = Vec::new();
        let mut keep = |chunk: Bytes| {
            if whole {
                buffer.extend_from_slice(&chunk);
            } else {
                flight.push(chunk);
            }
        };
        if !whole {
            flight.begin(FillHead::Body(Arc::new(served.clone())));
        }
        for chunk in early {
            keep(chunk);
        }
        // Until the announced size; a stream that ended within its first bytes is not
        // asked again (some panic when polled after their end).
        if head.is_full() {
            while received <= meta.size {
                let Some(chunk) = next_piece(&mut stream).await? else {
                    break;
                };
                received += chunk.len() as u64;
                if received > meta.size {
                    break;
                }
                keep(chunk);
            }
        }
        check_received(received, meta.size)?;
        if whole {
            if blank_location(&mut buffer) {
                served.etag = stripped_etag(&meta.etag);
            }
            flight.begin(FillHead::Body(Arc::new(served.clone())));
            flight.push(Bytes::from(buffer));
        }
        self.store_body(
            CacheKey::original(app, key, &meta.etag, view.strip_location),
            key.as_str(),
            served,
            &flight.chunks(),
            asked_at,
        )
        .await;
        Ok(())
    }

    /// The whole bytes of an original (a transform's source), through the cache.
    /// `None`: it is above `cache.max_object`, read it from the store directly.
    pub async fn original_bytes(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
        view: OriginalView,
    ) -> Result<Option<Bytes>, ApiError> {
        match self.original(store, app, key, view).await? {
            OriginalBody::Found(found) => found.body.collect().await.map(Some),
            OriginalBody::Bypass => Ok(None),
        }
    }
}

/// A store that sent more or fewer bytes than it announced sent a broken body.
fn check_received(received: u64, announced: u64) -> Result<(), ApiError> {
    if received == announced {
        Ok(())
    } else {
        Err(ApiError::store_failed(format!(
            "the store sent {received} of {announced} bytes"
        )))
    }
}

/// The next piece of a store's body.
async fn next_piece(stream: &mut crate::storage::ByteStream) -> Result<Option<Bytes>, ApiError> {
    match stream.next().await {
        Some(Ok(chunk)) => Ok(Some(chunk)),
        Some(Err(e)) => Err(ApiError::from(e)),
        None => Ok(None),
    }
}
