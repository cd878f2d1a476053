//! What a derived download runs: a [`Plan`] (the normalised transform, its cache key
//! and ETag, from the source's metadata alone), then [`obtain`] (memory, else the
//! store's `_derived/` copy, else fetch and transform once).

use std::sync::Arc;
use std::time::Instant;

use crate::cache::{derived_digest, derived_etag, hex, Derived};
use crate::config::AppConfig;
use crate::error::ApiError;
use crate::media::processor::{fetch_processed, processor_url};
use crate::media::source::{check_source_size, fetch_source_limited};
use crate::media::{Rendered, Transform};
use crate::routes::download::{ThumbnailStrategy, Wanted};
use crate::services::Services;
use crate::storage::keys::ObjectKey;
use crate::storage::{DownloadView, ObjectMeta};

/// A derived result, decided but not yet made.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The source object.
    pub source_key: ObjectKey,
    /// Its metadata.
    pub source: ObjectMeta,
    /// What to make.
    pub transform: Transform,
    /// The cache key.
    pub digest: [u8; 32],
    /// Where the result's copy lives in the store.
    pub derived_key: ObjectKey,
    /// The result's strong ETag (known before it is made: `If-None-Match` needs no
    /// transform).
    pub etag: String,
}

/// Decides what to make. 413 here when the source is over the size limit, before
/// any byte of it is read.
pub async fn plan(
    services: &Services,
    app_id: &str,
    app: &AppConfig,
    source_key: &ObjectKey,
    wanted: Wanted,
    strategy: ThumbnailStrategy,
    accept: Option<&str>,
) -> Result<Plan, ApiError> {
    let media = &services.media;
    let source = services
        .cache
        .source_meta(services.store(), source_key)
        .await?;
    let transform = match wanted {
        Wanted::Thumbnail { w, h } => {
            let fit = media.fit(w, h);
            match (&app.thumbnail_processor, strategy) {
                (Some(p), ThumbnailStrategy::ThirdParty) => Transform::Processor {
                    fit,
                    template: p.url.clone(),
                },
                _ => Transform::Thumbnail {
                    fit,
                    format: media.negotiate(accept, &source.content_type),
                },
            }
        }
        Wanted::VideoCover { w, h } => Transform::Cover {
            fit: media.fit(w, h),
        },
        Wanted::Mp3 => Transform::Mp3,
        Wanted::Original => return Err(ApiError::internal("planning a transform of an original")),
    };
    if !matches!(transform, Transform::Processor { .. }) {
        check_source_size(&source, media.max_source_bytes(&transform))?;
    }
    let digest = derived_digest(app_id, source_key, &source.etag, &transform.canonical());
    Ok(Plan {
        source_key: source_key.clone(),
        derived_key: ObjectKey::derived(app_id, &hex(&digest), transform.extension()),
        etag: derived_etag(&digest),
        digest,
        source,
        transform,
    })
}

/// The result of `plan`: from the cache, or made now.
pub async fn obtain(
    services: &Services,
    app: &AppConfig,
    plan: &Plan,
) -> Result<Arc<Derived>, ApiError> {
    services
        .cache
        .get_or_make(services.store(), plan.digest, &plan.derived_key, || {
            make(services, app, plan)
        })
        .await
}

async fn make(services: &Services, app: &AppConfig, plan: &Plan) -> Result<Rendered, ApiError> {
    let media = &services.media;
    match (&plan.transform, &app.thumbnail_processor) {
        (Transform::Processor { fit, .. }, Some(processor)) => {
            let started = Instant::now();
            let source_url = services.store().presign_get(
                &plan.source_key,
                processor.source_url_ttl,
                &DownloadView::default(),
            )?;
            let url = processor_url(&processor.url, *fit, &source_url, &plan.source_key);
            let result = fetch_processed(
                media.http(),
                processor,
                &url,
                media.limits().max_output_bytes,
            )
            .await;
            media.observe("processor", started, &result);
            result
        }
        (Transform::Processor { .. }, None) => Err(ApiError::internal(
            "a processor transform for an app without a processor",
        )),
        (transform, _) => {
            media.metrics().origin_fetches.inc();
            let source = fetch_source_limited(
                services.store(),
                &plan.source_key,
                media.max_source_bytes(transform),
            )
            .await?;
            media.render(transform, source).await
        }
    }
}
