//! [`Services`]: what route handlers and the derived-result pipeline use (the store,
//! the cache, the media engine, the configuration and the metrics), built once and
//! shared by every request. Handlers take `&Services`, never the gate itself, so the
//! request path reads top-down with no import circle.

use std::sync::Arc;

use crate::cache::DerivedCache;
use crate::config::Config;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::storage::ObjectStore;

/// Shared by every request.
pub struct Services {
    /// The configuration.
    pub config: Arc<Config>,
    /// The object store (metered).
    pub store: Arc<dyn ObjectStore>,
    /// The cache.
    pub cache: DerivedCache,
    /// Transform limits and the pool.
    pub media: Media,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
}

impl Services {
    /// Builds the services over a store.
    pub fn new(config: Arc<Config>, store: Arc<dyn ObjectStore>, metrics: Arc<Metrics>) -> Self {
        Services {
            media: Media::new(&config.media, metrics.clone()),
            cache: DerivedCache::new(
                &config.cache,
                config.media.max_output_bytes.as_u64(),
                metrics.clone(),
            ),
            config,
            store,
            metrics,
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }
}
