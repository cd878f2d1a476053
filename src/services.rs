//! [`Services`]: what route handlers and the derived-result pipeline use (the store,
//! the edge cache, the media engine, the configuration and the metrics), built once
//! and shared by every request. Handlers take `&Arc<Services>`, never the gate itself,
//! so the request path reads top-down with no import circle.

use std::sync::Arc;

use crate::auth::verified::VerifiedFileSigns;
use crate::cache::purge::PurgeTarget;
use crate::cache::{EdgeCache, OriginalView};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::eager::queue::EagerQueue;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::storage::ObjectStore;

/// Derived copies known to be in the store (`redirect` mode serves them from there).
const KNOWN_COPIES: u64 = 100_000;

/// Shared by every request.
pub struct Services {
    /// The configuration.
    pub config: Arc<Config>,
    /// The object store (metered).
    pub store: Arc<dyn ObjectStore>,
    /// The edge cache.
    pub cache: EdgeCache,
    /// Transform limits and the pool.
    pub media: Media,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Digests of derived results whose `_derived/` copy the store is known to hold.
    pub stored_copies: moka::sync::Cache<[u8; 32], ()>,
    /// file_signs already verified.
    pub file_signs: VerifiedFileSigns,
    /// The cluster this node is part of, if any.
    pub cluster: Option<Arc<Cluster>>,
    /// Completed uploads waiting for their eager results (a host runs
    /// [`crate::eager::worker::EagerWorker`] to make them; without it they are dropped,
    /// counted, once the queue is full).
    pub eager: EagerQueue,
    /// Request rates per client address and per user.
    pub rate_limits: RateLimits,
}

impl Services {
    /// How `app` serves its originals (an unknown app: as stored).
    pub fn original_view(&self, app: &str) -> OriginalView {
        OriginalView {
            strip_location: self.config.apps.get(app).is_some_and(|a| a.strip_location),
        }
    }

    /// Builds the services over a store (opening the cache's tiers).
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn ObjectStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let rate_policy = config.limits.rate_policy().map_err(|e| e.to_string())?;
        Ok(Services {
            rate_limits: RateLimits::new(rate_policy, metrics.clone()),
            media: Media::new(&config.media, metrics.clone()),
            cache: EdgeCache::open(&config.cache, metrics.clone())?,
            eager: EagerQueue::new(config.media.eager_queue, metrics.clone()),
            config,
            store,
            metrics,
            stored_copies: moka::sync::Cache::new(KNOWN_COPIES),
            file_signs: VerifiedFileSigns::default(),
            cluster: None,
        })
    }

    /// The same services as a node of `cluster`.
    pub fn in_cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Purges `target` on this node: both tiers, and the short-lived copies of what
    /// owners sent (keyed by fill, not by object: all of them go). Returns the entries
    /// removed.
    pub async fn purge_here(&self, target: &PurgeTarget) -> usize {
        let purged = self.cache.purge(target).await;
        if let Some(cluster) = &self.cluster {
            cluster.drop_local_copies();
        }
        purged
    }
}
