//! Originals: from the owner node in a cluster (when another node owns the object and
//! answers), else this node's edge cache (a hit, a revalidation, one fill however many
//! ask), else, above `cache.max_object`, straight from the store. The `/file`
//! downloads, the embedded store's and the pass-through's presigned GETs, and a peer's
//! fill (this node's cache only) all fetch originals here.

use crate::http::exchange::Exchange;

use crate::cache::{CacheStatus, OriginalBody};
use crate::cluster::{Asked, Owner};
use crate::error::ApiError;
use crate::headers::RequestHeaders;
use crate::http::delivery::{serve_found, serve_object, Failure};
use crate::http::presentation::Presentation;
use crate::services::Services;
use crate::storage::keys::ObjectKey;

/// The original of `key`: its owner's answer in a cluster, else this node's.
pub async fn original(services: &Services, key: &ObjectKey) -> Result<OriginalBody, ApiError> {
    if let Some(cluster) = &services.cluster {
        if let Owner::Peer(peer) = cluster.owner(key) {
            match cluster.ask_original(peer, key, &services.store).await {
                Asked::Found(found) => return Ok(OriginalBody::Found(found)),
                Asked::Refused(e) => return Err(e),
                // The owner failed: this node serves it from the store (below).
                Asked::Unavailable => {}
            }
        }
    }
    here(services, key).await
}

/// The original of `key` from this node's cache (never another node's).
pub async fn here(services: &Services, key: &ObjectKey) -> Result<OriginalBody, ApiError> {
    let view = services.original_view(key.app());
    services
        .cache
        .original(&services.store, key.app(), key, view)
        .await
}

/// Serves the original of `key` ([`original`]) with `presentation`: from the cache or
/// the owner, or streamed from the store when it is too large to cache (`BYPASS`).
pub async fn serve_original(
    services: &Services,
    session: &mut dyn Exchange,
    key: &ObjectKey,
    headers: &RequestHeaders,
    presentation: &Presentation,
) -> Result<u16, Failure> {
    let range = headers.range.as_deref();
    let inm = headers.if_none_match.as_deref();
    match original(services, key).await? {
        OriginalBody::Found(found) => serve_found(session, found, range, inm, presentation).await,
        OriginalBody::Bypass => {
            serve_object(
                session,
                services.store.as_ref(),
                key,
                range,
                inm,
                presentation,
                CacheStatus::Bypass,
            )
            .await
        }
    }
}
