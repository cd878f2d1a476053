//! Derived results through the cache: the version of their source (what keys them),
//! and the result itself, from the cache or made once however many ask. Each result
//! stored is added to its source's derivation list, so a purge of the source finds it
//! in either tier, after a restart too.

use std::sync::Arc;

use bytes::Bytes;
use futures::Future;

use crate::cache::body::{Body, Found};
use crate::cache::edge::EdgeCache;
use crate::cache::entry::{CacheValue, Derivation, MAX_DERIVATIONS};
use crate::cache::flight::{FillHead, Joined};
use crate::cache::freshness::Age;
use crate::cache::key::CacheKey;
use crate::cache::status::{CacheStatus, Kind, Tier};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::storage::keys::ObjectKey;
use crate::storage::{ObjectMeta, ObjectStore};

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

impl VersionState {
    /// What serving a cached result made from this version is.
    pub fn cache_status(self) -> CacheStatus {
        match self {
            VersionState::Fresh | VersionState::Fetched => CacheStatus::Hit,
            VersionState::Revalidated => CacheStatus::Revalidated,
            VersionState::Stale => CacheStatus::Stale,
        }
    }
}

/// The version of a source a derived result is made from.
#[derive(Debug, Clone)]
pub struct SourceVersion {
    /// Its metadata.
    pub meta: ObjectMeta,
    /// How it was obtained.
    pub state: VersionState,
    /// When the store last vouched for it (Unix ms): what a result made from it is
    /// stamped with, so a purge after that removes the result.
    pub validated_at_ms: u64,
}

impl EdgeCache {
    /// The version of a source, for a derived result's key: fresh from the cache,
    /// revalidated, stale while the store fails, or asked of the store now.
    pub async fn source_version(
        &self,
        store: &Arc<dyn ObjectStore>,
        app: &str,
        key: &ObjectKey,
    ) -> Result<SourceVersion, ApiError> {
        let now = now_ms();
        let Some((v, recently_purged)) = self.cached_version(app, key, now).await else {
            let (meta, at) = self.head_once(store, key).await?;
            self.store_version(app, key, meta.clone(), at).await;
            return Ok(SourceVersion {
                meta,
                state: VersionState::Fetched,
                validated_at_ms: at,
            });
        };
        let age = self
            .inner
            .freshness
            .age(v.validated_at_ms, now, recently_purged);
        if age == Age::Fresh {
            return Ok(SourceVersion {
                meta: v.meta.clone(),
                state: VersionState::Fresh,
                validated_at_ms: v.validated_at_ms,
            });
        }
        match self.revalidate(store, app, key, &v).await {
            Ok(meta) => {
                let state = if meta.etag == v.meta.etag {
                    VersionState::Revalidated
                } else {
                    VersionState::Fetched
                };
                Ok(SourceVersion {
                    meta,
                    state,
                    validated_at_ms: now,
                })
            }
            Err(e) if e.status() == http::StatusCode::NOT_FOUND => {
                self.forget(app, key, Some(&v.meta.etag));
                Err(e)
            }
            Err(e) if age == Age::Stale => {
                log::debug!("cache: using the stale version of {key}, the store fails: {e}");
                Ok(SourceVersion {
                    meta: v.meta.clone(),
                    state: VersionState::Stale,
                    validated_at_ms: v.validated_at_ms,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// A derived result of `source` at `version`, keyed by `head_key`: from the cache,
    /// else made once by `make` (however many ask) and cached. `make` runs in its own
    /// task.
    pub async fn derived<F, Fut>(
        &self,
        head_key: CacheKey,
        source: &ObjectKey,
        version: &SourceVersion,
        make: F,
    ) -> Result<Found, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(ObjectMeta, Bytes), ApiError>> + Send + 'static,
    {
        if let Some((body, tier)) = self.cached_body(head_key, source.as_str()).await {
            let status = version.state.cache_status();
            self.count(Kind::Derived, tier, status);
            return Ok(Found { body, status });
        }
        let flight = match self.inner.makes.join(head_key) {
            Joined::Follower(f) => f,
            Joined::Leader(f) => {
                let made = make();
                let (cache, source, fill) = (self.clone(), source.clone(), f.clone());
                let stamp = version.validated_at_ms;
                tokio::spawn(async move {
                    match made.await {
                        Ok((meta, bytes)) => {
                            // Readers get it as soon as it is made; the make counts as
                            // running (a close waits) until it is stored.
                            fill.begin(FillHead::Body(Arc::new(meta.clone())));
                            fill.push(bytes.clone());
                            let parts = cache
                                .store_body(head_key, source.as_str(), meta, &[bytes], stamp)
                                .await;
                            cache.note_derivation(&source, head_key, parts).await;
                            cache.inner.makes.done(&head_key);
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

    /// Adds a stored result to its source's derivation list (read, add, write, one
    /// update at a time).
    async fn note_derivation(&self, source: &ObjectKey, head_key: CacheKey, parts: u32) {
        let list_key = CacheKey::derivations(source.app(), source);
        let _turn = self.inner.derivations.lock().await;
        let mut list = match self.inner.tiers.get(&list_key).await {
            Some((e, _)) => match e.value() {
                CacheValue::Derivations(d) => d.as_ref().clone(),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        if list.iter().any(|d| d.digest == head_key.digest) {
            return;
        }
        if list.len() >= MAX_DERIVATIONS {
            list.remove(0);
        }
        list.push(Derivation {
            digest: head_key.digest,
            parts,
        });
        self.inner
            .tiers
            .insert(list_key, CacheValue::Derivations(Arc::new(list)))
            .await;
    }
}
