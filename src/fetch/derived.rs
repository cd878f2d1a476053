//! Derived results (thumbnails, covers, MP3s), the one pipeline the download route,
//! the eager worker and a peer's fill all run:
//!
//! 1. [`locate`]: in a cluster in serve mode, the owner of the source is asked (it
//!    makes the result once for the cluster); else, or when the owner cannot answer,
//! 2. [`plan`]: the normalised transform, its cache key and ETag, from the source's
//!    version alone (a matching `If-None-Match` needs nothing more);
//! 3. [`obtain`]: from the edge cache, else the store's `_derived/` copy, else the
//!    source (read through the cache, so every size of one picture costs one store
//!    read) transformed once, however many ask, and written back;
//! 4. [`ensure_copy`] (redirect mode): the store holds the copy the redirect names.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;

use crate::cache::key::CacheKey;
use crate::cache::{Found, SourceVersion};
use crate::cluster::fill::FillSpec;
use crate::cluster::{Asked, Owner};
use crate::config::{AppConfig, DownloadMode};
use crate::error::ApiError;
use crate::file_type::{known_mime, Family};
use crate::media::info::plain_info;
use crate::media::processor::{fetch_processed, processor_url};
use crate::media::source::{check_source_size, fetch_source_limited};
use crate::media::{Rendered, Transform};
use crate::representation::{ThumbnailStrategy, Wanted};
use crate::services::Services;
use crate::storage::keys::ObjectKey;
use crate::storage::{DownloadView, GetOutcome, GetRequest, ObjectMeta};

/// A derived result asked for: of which object, what, and for whom.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The app.
    pub app_id: &'a str,
    /// Its configuration.
    pub app: &'a AppConfig,
    /// The source object.
    pub key: &'a ObjectKey,
    /// What is wanted of it.
    pub wanted: Wanted,
    /// `thumbnail_strategy`.
    pub strategy: ThumbnailStrategy,
    /// The client's `Accept` (format negotiation).
    pub accept: Option<&'a str>,
    /// Background work (eager derivation): an owner asked makes it only once its
    /// pool is idle.
    pub background: bool,
}

/// Where a derived result comes from.
pub enum Located {
    /// The source's owner answered it (made or cached there).
    Owner(Found),
    /// This node makes or serves it: the plan.
    Here(Plan),
}

/// Where the result of `ask` comes from: in a cluster in serve mode whose owner of the
/// source is another node, that owner's answer; else (this node owns it, the owner
/// could not answer, or redirect mode, which names this node's `_derived/` copy) this
/// node's plan.
pub async fn locate(services: &Services, ask: &Ask<'_>) -> Result<Located, ApiError> {
    // Info is answered inline in both modes, so the owner makes it in both.
    let inline = matches!(ask.wanted, Wanted::Info { .. });
    if ask.app.download_mode == DownloadMode::Serve || inline {
        if let Some(found) = from_owner(services, ask).await? {
            return Ok(Located::Owner(found));
        }
    }
    plan(services, ask).await.map(Located::Here)
}

/// The owner's answer, when another node owns the source and answers.
async fn from_owner(services: &Services, ask: &Ask<'_>) -> Result<Option<Found>, ApiError> {
    let Some(cluster) = &services.cluster else {
        return Ok(None);
    };
    let Owner::Peer(peer) = cluster.owner(ask.key) else {
        return Ok(None);
    };
    let spec = FillSpec::Derived {
        app: ask.app_id.to_string(),
        key: ask.key.as_str().to_string(),
        wanted: ask.wanted,
        strategy: ask.strategy,
        accept: ask.accept.map(str::to_string),
        background: ask.background,
    };
    match cluster.ask_derived(peer, &spec).await {
        Asked::Found(found) => Ok(Some(found)),
        Asked::Refused(e) => Err(e),
        Asked::Unavailable => Ok(None),
    }
}

/// A derived result, decided but not yet made.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The app.
    pub app_id: String,
    /// The source object.
    pub source_key: ObjectKey,
    /// The source's version (its metadata, and how and when it was obtained).
    pub version: SourceVersion,
    /// What to make.
    pub transform: Transform,
    /// The cache key.
    pub result_key: CacheKey,
}

impl Plan {
    /// Where the result's copy lives in the store.
    pub fn derived_key(&self) -> ObjectKey {
        ObjectKey::derived(
            &self.app_id,
            &self.result_key.hex(),
            self.transform.extension(),
        )
    }

    /// The result's strong ETag, known before it is made (`If-None-Match` needs no
    /// transform).
    pub fn etag(&self) -> String {
        format!("\"d{}\"", &self.result_key.hex()[..32])
    }
}

/// Decides what to make, here. 413 when the source is over the size limit, before
/// any byte of it is read.
pub async fn plan(services: &Services, ask: &Ask<'_>) -> Result<Plan, ApiError> {
    let (app_id, app, source_key) = (ask.app_id, ask.app, ask.key);
    let (wanted, strategy, accept) = (ask.wanted, ask.strategy, ask.accept);
    let media = &services.media;
    let version = services
        .cache
        .source_version(&services.store, app_id, source_key)
        .await?;
    let source = &version.meta;
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
        Wanted::Rendition { format } => match media.rendition_format(format, accept, "")? {
            Some(format) => Transform::Rendition {
                max: media.config().max_display,
                format,
            },
            None => {
                return Err(ApiError::internal(
                    "format=auto is resolved against the original before planning",
                ))
            }
        },
        Wanted::Info { family } => Transform::Info { family },
        Wanted::Original => return Err(ApiError::internal("planning a transform of an original")),
    };
    // A processor reads the source itself; a plain file's info reads none of it.
    let reads_source = !matches!(
        transform,
        Transform::Processor { .. }
            | Transform::Info {
                family: Family::File
            }
    );
    if reads_source {
        check_source_size(source, media.max_source_bytes(&transform))?;
    }
    let result_key = CacheKey::derived(app_id, source_key, &source.etag, &transform.canonical());
    Ok(Plan {
        app_id: app_id.to_string(),
        source_key: source_key.clone(),
        result_key,
        version,
        transform,
    })
}

/// The result of `plan`: from the cache, or made now (once).
pub async fn obtain(services: &Arc<Services>, plan: &Plan) -> Result<Found, ApiError> {
    let (shared, job) = (services.clone(), plan.clone());
    services
        .cache
        .derived(
            plan.result_key,
            &plan.source_key,
            &plan.version,
            move || async move {
                let (bytes, content_type) = match read_copy(&shared, &job).await {
                    Some(copy) => copy,
                    None => {
                        let made = make(&shared, &job).await?;
                        let bytes = Bytes::from(made.bytes);
                        write_copy(&shared, &job, bytes.clone(), made.content_type).await;
                        (bytes, made.content_type)
                    }
                };
                let meta = ObjectMeta {
                    size: bytes.len() as u64,
                    etag: job.etag(),
                    content_type: content_type.to_string(),
                    original_name: None,
                    last_modified: None,
                };
                Ok((meta, bytes))
            },
        )
        .await
}

/// Makes sure the store holds the result's copy (`redirect` mode serves it).
pub async fn ensure_copy(services: &Services, plan: &Plan, found: Found) -> Result<(), ApiError> {
    if services.stored_copies.contains_key(&plan.result_key.digest) {
        return Ok(());
    }
    let content_type = found.body.meta().content_type.clone();
    let bytes = found.body.collect().await?;
    services
        .store
        .put(&plan.derived_key(), bytes, &content_type)
        .await?;
    services.stored_copies.insert(plan.result_key.digest, ());
    Ok(())
}

fn app_of<'a>(services: &'a Services, plan: &Plan) -> Result<&'a AppConfig, ApiError> {
    services
        .config
        .apps
        .get(&plan.app_id)
        .ok_or_else(|| ApiError::internal("a plan for an app the config lacks"))
}

async fn make(services: &Arc<Services>, plan: &Plan) -> Result<Rendered, ApiError> {
    let media = &services.media;
    let app = app_of(services, plan)?;
    match (&plan.transform, &app.thumbnail_processor) {
        (Transform::Processor { fit, .. }, Some(processor)) => {
            let started = Instant::now();
            let source_url = services.store.presign_get(
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
        (Transform::Info { family }, _) => {
            let meta = &plan.version.meta;
            if *family == Family::File {
                return plain_info(&meta.content_type, meta.size).rendered();
            }
            let source = source_bytes(services, plan).await?;
            media
                .read_info(*family, source, meta.content_type.clone())
                .await
        }
        (transform, _) => {
            let source = source_bytes(services, plan).await?;
            media.render(transform, source).await
        }
    }
}

/// The whole source of `plan`, through the cache (above `cache.max_object` straight
/// from the store), within the transform's size limit.
async fn source_bytes(services: &Services, plan: &Plan) -> Result<Bytes, ApiError> {
    let limit = services.media.max_source_bytes(&plan.transform);
    let cached = services
        .cache
        .original_bytes(
            &services.store,
            &plan.app_id,
            &plan.source_key,
            services.original_view(&plan.app_id),
        )
        .await?;
    match cached {
        Some(bytes) if bytes.len() as u64 > limit => Err(crate::media::limits::too_large(format!(
            "the source is {} bytes; transforms take at most {limit}",
            bytes.len()
        ))),
        Some(bytes) => Ok(bytes),
        None => fetch_source_limited(services.store.as_ref(), &plan.source_key, limit).await,
    }
}

/// The store's copy of the result, if it holds it whole and within
/// `media.max_output_bytes` (a larger one was not written by filegate: made again).
async fn read_copy(services: &Services, plan: &Plan) -> Option<(Bytes, &'static str)> {
    if !services.config.cache.write_back {
        return None;
    }
    let key = &plan.derived_key();
    let cap = services.config.media.max_output_bytes.as_u64();
    let body = match services.store.get(key, GetRequest::default()).await {
        Ok(GetOutcome::Body(body)) => body,
        Ok(GetOutcome::NotModified(_)) | Err(crate::storage::StoreError::NotFound) => return None,
        Err(e) => {
            log::warn!("reading {key} from the store: {e}");
            return None;
        }
    };
    if body.meta.size > cap {
        log::warn!(
            "{key} is {} bytes, above media.max_output_bytes: not served, made again",
            body.meta.size
        );
        return None;
    }
    // A processor's result keeps the type the store holds.
    let content_type = plan
        .transform
        .content_type()
        .or_else(|| known_mime(&body.meta.content_type))
        .unwrap_or("image/jpeg");
    let mut buf = Vec::with_capacity(body.meta.size as usize);
    let mut stream = body.stream;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) if (buf.len() + c.len()) as u64 <= cap => buf.extend_from_slice(&c),
            Ok(_) => return None,
            Err(e) => {
                log::warn!("reading {key} from the store: {e}");
                return None;
            }
        }
    }
    if buf.len() as u64 != body.meta.size || !matches_plain_etag(&buf, &body.meta.etag) {
        // Copies are written without an fsync (re-creatable): a crash can leave one
        // short or zeroed. Never served; made again.
        log::warn!("{key} does not match its length or ETag: not served, made again");
        return None;
    }
    services.stored_copies.insert(plan.result_key.digest, ());
    Some((Bytes::from(buf), content_type))
}

/// Whether `body` hashes to `etag` when that is a plain MD5 (a single-part PUT's, as
/// both the embedded store and S3 give); other ETags are not checked.
fn matches_plain_etag(body: &[u8], etag: &str) -> bool {
    use md5::{Digest, Md5};
    let hex = etag.trim_matches('"');
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    format!("{:x}", Md5::digest(body)).eq_ignore_ascii_case(hex)
}

/// Writes the result back under `_derived/` (failures are logged: the result is
/// served anyway and made again elsewhere if needed).
async fn write_copy(services: &Services, plan: &Plan, bytes: Bytes, content_type: &str) {
    if !services.config.cache.write_back {
        return;
    }
    match services
        .store
        .put(&plan.derived_key(), bytes, content_type)
        .await
    {
        Ok(_) => {
            services.stored_copies.insert(plan.result_key.digest, ());
        }
        Err(e) => log::warn!("writing {} back to the store: {e}", plan.derived_key()),
    }
}

#[cfg(test)]
mod tests {
    use super::matches_plain_etag;

    #[test]
    fn a_copy_is_checked_against_a_plain_md5_etag_only() {
        let md5_of_abc = "\"900150983cd24fb0d6963f7d28e17f72\"";
        assert!(matches_plain_etag(b"abc", md5_of_abc));
        assert!(!matches_plain_etag(b"\0\0\0", md5_of_abc));
        // A multipart ETag is not an MD5 of the body: not checked.
        assert!(matches_plain_etag(
            b"abc",
            "\"d41d8cd98f00b204e9800998ecf8427e-2\""
        ));
    }
}
