//! `GET /file/download/avatar?object_name=` and `/file/download/chat?file_sign=`:
//! the original, a thumbnail, a video cover or an MP3 of a voice file (SPEC §5), in
//! `serve` or `redirect` mode (SPEC §4).

use std::sync::Arc;

use crate::http::exchange::Exchange;

use crate::auth::principal::Principal;
use crate::auth::store_token::scope_covers;
use crate::cache::CacheStatus;
use crate::cache::OriginalBody;
use crate::config::DownloadMode;
use crate::error::ApiError;
use crate::fetch::derived::{self, Ask, Located};
use crate::fetch::original::{original, serve_original};
use crate::file_type::{extension_of, FileType};
use crate::http::delivery::{self, Failure};
use crate::http::presentation::{store_view, Presentation};
use crate::media::ImageFormat;
use crate::query::Query;
use crate::representation::{RenditionFormat, Representation, Wanted};
use crate::routes::call::Call;
use crate::services::Services;
use crate::storage::keys::ObjectKey;
use crate::storage::{DownloadView, ObjectMeta};

/// What the download names.
#[derive(Debug, Clone)]
pub enum DownloadTarget {
    /// An avatar, by `object_name` (the key without `<app>/`).
    Avatar {
        /// `object_name`.
        object_name: String,
    },
    /// A chat file, by file_sign.
    Chat {
        /// `file_sign`.
        file_sign: String,
    },
}

/// Parameters of the download routes: the object, and the representation asked
/// for (parsed once, by [`Representation::parse`], for downloads and eager entries
/// alike).
#[derive(Debug, Clone)]
pub struct DownloadParams {
    /// The object.
    pub target: DownloadTarget,
    /// The representation asked for.
    pub repr: Representation,
}

impl DownloadParams {
    fn parse(target: DownloadTarget, query: &Query) -> Result<Self, ApiError> {
        Ok(DownloadParams {
            target,
            repr: Representation::parse(query)?,
        })
    }

    /// The representation asked for, apart from the object.
    pub fn representation(&self) -> Representation {
        self.repr
    }

    /// `/file/download/avatar`.
    pub fn parse_avatar(query: &Query) -> Result<Self, ApiError> {
        let object_name = query.required("object_name")?.to_string();
        Self::parse(DownloadTarget::Avatar { object_name }, query)
    }

    /// `/file/download/chat`.
    pub fn parse_chat(query: &Query) -> Result<Self, ApiError> {
        let file_sign = query.required("file_sign")?.to_string();
        Self::parse(DownloadTarget::Chat { file_sign }, query)
    }
}

/// The object a download names, checked against the caller's scope.
#[derive(Debug, Clone)]
pub struct ResolvedObject {
    /// Its key.
    pub key: ObjectKey,
    /// Its file type (avatars: [`FileType::Avatar`]).
    pub file_type: FileType,
    /// The original file name, when the file_sign carries it.
    pub name: Option<String>,
}

impl ResolvedObject {
    /// How the store presents it from a presigned URL (redirect mode).
    pub fn download_view(&self) -> DownloadView<'_> {
        store_view(self.file_type.family(), self.name.as_deref(), &self.key)
    }
}

/// Resolves the target to a key before storage is touched: grammar, app prefix,
/// file_sign, and a store token's `obj` scope.
pub fn resolve_object(
    services: &Services,
    call: &Call<'_>,
    target: &DownloadTarget,
) -> Result<ResolvedObject, ApiError> {
    let resolved = match target {
        DownloadTarget::Avatar { object_name } => ResolvedObject {
            key: ObjectKey::from_avatar_object_name(call.app_id, object_name)?,
            file_type: FileType::Avatar,
            name: None,
        },
        DownloadTarget::Chat { file_sign } => {
            let sign = services
                .file_signs
                .verify(file_sign, call.app_id, &call.app.secrets)?;
            let file_type = FileType::from_code(sign.ft).ok_or_else(|| {
                ApiError::invalid_credential("file_sign has an unknown file_type")
            })?;
            ResolvedObject {
                key: sign.object_key()?,
                file_type,
                name: sign.name.clone(),
            }
        }
    };
    if let Principal::Store { obj, .. } = &call.actor.principal {
        if !scope_covers(obj.as_deref(), resolved.key.as_str()) {
            return Err(ApiError::forbidden(
                "store_token: this token is limited to another object",
            ));
        }
    }
    Ok(resolved)
}

/// Decides the representation: a cover of an image is its thumbnail, mp3 applies to
/// AMR voice only (MP3 voice is served as is), thumbnails apply to images.
pub fn wanted(params: &DownloadParams, file_type: FileType) -> Result<Wanted, ApiError> {
    params.representation().wanted(file_type)
}

/// Answers a download: resolves and checks the object, then serves or redirects the
/// representation asked for.
pub async fn download(
    services: &Arc<Services>,
    session: &mut dyn Exchange,
    call: &Call<'_>,
    params: &DownloadParams,
) -> Result<u16, Failure> {
    let object = resolve_object(services, call, &params.target)?;
    let mut wanted = wanted(params, object.file_type)?;
    let presentation = Presentation::download(object.name.clone(), &object.key);
    if wanted
        == (Wanted::Rendition {
            format: RenditionFormat::Auto,
        })
    {
        match auto_rendition(services, session, call, &object, &presentation).await? {
            AutoRendition::Served(status) => return Ok(status),
            AutoRendition::Original => wanted = Wanted::Original,
            AutoRendition::Make(format) => wanted = Wanted::Rendition { format },
        }
    }
    if wanted == Wanted::Original {
        return match call.app.download_mode {
            DownloadMode::Serve => {
                serve_original(services, session, &object.key, call.headers, &presentation).await
            }
            DownloadMode::Redirect => {
                let ttl = call.app.redirect_ttl;
                let url = services
                    .store
                    .presign_get(&object.key, ttl, &object.download_view())
                    .map_err(ApiError::from)?;
                delivery::redirect(session, &url, ttl.as_secs() / 2, CacheStatus::Bypass).await
            }
        };
    }
    let ask = Ask {
        app_id: call.app_id,
        app: call.app,
        key: &object.key,
        wanted,
        strategy: params.repr.strategy,
        accept: call.headers.accept.as_deref(),
        background: false,
    };
    serve_derived(services, session, call, &ask, &presentation).await
}

/// What `format=auto` comes to.
enum AutoRendition {
    /// The original was accepted, and served.
    Served(u16),
    /// The original is accepted (redirect mode: the store serves it).
    Original,
    /// A rendition in this format.
    Make(RenditionFormat),
}

/// Resolves `format=auto` against the original's true type (SPEC §11): served as it
/// is when the client's `Accept` allows it, else a WebP or JPEG rendition. In serve
/// mode the type is the cached original's (sniffed); in redirect mode the store's.
async fn auto_rendition(
    services: &Arc<Services>,
    session: &mut dyn Exchange,
    call: &Call<'_>,
    object: &ResolvedObject,
    presentation: &Presentation,
) -> Result<AutoRendition, Failure> {
    let accept = call.headers.accept.as_deref();
    let pick = |original_type: &str| {
        services
            .media
            .rendition_format(RenditionFormat::Auto, accept, original_type)
    };
    if call.app.download_mode == DownloadMode::Redirect {
        let version = services
            .cache
            .source_version(&services.store, call.app_id, &object.key)
            .await?;
        return Ok(match pick(&version.meta.content_type)? {
            None => AutoRendition::Original,
            Some(format) => AutoRendition::Make(rendition_of(format)),
        });
    }
    match original(services, &object.key).await? {
        OriginalBody::Found(found) => match pick(&found.body.meta().content_type)? {
            None => {
                let (range, inm) = (
                    call.headers.range.as_deref(),
                    call.headers.if_none_match.as_deref(),
                );
                let status =
                    delivery::serve_found(session, found, range, inm, presentation).await?;
                Ok(AutoRendition::Served(status))
            }
            Some(format) => Ok(AutoRendition::Make(rendition_of(format))),
        },
        // Too large to cache, so to sniff: a rendition (413 above the source limit).
        OriginalBody::Bypass => Ok(AutoRendition::Make(match pick("")? {
            Some(format) => rendition_of(format),
            None => RenditionFormat::Jpeg,
        })),
    }
}

/// The named rendition format of an output format.
fn rendition_of(format: ImageFormat) -> RenditionFormat {
    match format {
        ImageFormat::Png => RenditionFormat::Png,
        ImageFormat::Webp => RenditionFormat::Webp,
        ImageFormat::Avif => RenditionFormat::Avif,
        ImageFormat::Jpeg | ImageFormat::Gif => RenditionFormat::Jpeg,
    }
}

/// A thumbnail, cover or MP3: from the owner node, or planned here from the source's
/// version (a matching `If-None-Match` is answered 304 right there), then taken from
/// the cache or made, and served from the cache or (redirect mode) from its copy
/// under `_derived/`.
async fn serve_derived(
    services: &Arc<Services>,
    session: &mut dyn Exchange,
    call: &Call<'_>,
    ask: &Ask<'_>,
    presentation: &Presentation,
) -> Result<u16, Failure> {
    let range = call.headers.range.as_deref();
    let inm = call.headers.if_none_match.as_deref();
    if let Wanted::Info { .. } = ask.wanted {
        // Answered inline in both download modes: the envelope, not a file.
        let found = match derived::locate(services, ask).await? {
            Located::Owner(found) => found,
            Located::Here(plan) => derived::obtain(services, &plan).await?,
        };
        return delivery::serve_info(session, found).await;
    }
    let plan = match derived::locate(services, ask).await? {
        Located::Owner(found) => {
            let presentation = result_presentation(presentation, &found.body.meta().content_type);
            return delivery::serve_found(session, found, range, inm, &presentation).await;
        }
        Located::Here(plan) => plan,
    };
    let redirect = call.app.download_mode == DownloadMode::Redirect;
    if !redirect {
        if let Some(inm) = inm {
            let etag = plan.etag();
            if crate::headers::etag_matches(inm, &etag) {
                // The ETag names the inputs: the client holds exactly this result.
                let meta = ObjectMeta {
                    size: 0,
                    etag,
                    content_type: plan.transform.content_type().unwrap_or("").to_string(),
                    original_name: None,
                    last_modified: None,
                };
                return delivery::not_modified(session, &meta, presentation, CacheStatus::Hit)
                    .await;
            }
        }
    }
    let found = derived::obtain(services, &plan).await?;
    let presentation = result_presentation(presentation, &found.body.meta().content_type);
    if redirect {
        let status = found.status;
        derived::ensure_copy(services, &plan, found).await?;
        let ttl = call.app.redirect_ttl;
        let view = DownloadView {
            file_name: presentation.file_name.as_deref(),
            ..DownloadView::default()
        };
        let url = services
            .store
            .presign_get(&plan.derived_key(), ttl, &view)
            .map_err(ApiError::from)?;
        return delivery::redirect(session, &url, ttl.as_secs() / 2, status).await;
    }
    delivery::serve_found(session, found, range, inm, &presentation).await
}

/// The presentation of a result of `content_type` made from the object: its name
/// with the result's extension.
fn result_presentation(object: &Presentation, content_type: &str) -> Presentation {
    object.for_result(extension_of(content_type).unwrap_or("bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_must_be_finite_positive() {
        for bad in ["0", "-1", "NaN", "inf", "abc", "1e999"] {
            let q = Query::parse(&format!("object_name=a&w={bad}"));
            assert_eq!(
                DownloadParams::parse_avatar(&q).unwrap_err().status(),
                400,
                "{bad}"
            );
        }
        let q = Query::parse("object_name=a&w=200.5&image_type=2");
        let p = DownloadParams::parse_avatar(&q).unwrap();
        assert_eq!(p.repr.w, Some(200.5));
        assert_eq!(
            p.repr.image_type,
            crate::representation::ImageType::Thumbnail
        );
    }

    #[test]
    fn representation() {
        let q = Query::parse("file_sign=x&source=miniprogram");
        let p = DownloadParams::parse_chat(&q).unwrap();
        assert_eq!(wanted(&p, FileType::VoiceAmr(101)).unwrap(), Wanted::Mp3);
        assert_eq!(wanted(&p, FileType::VoiceMp3).unwrap(), Wanted::Original);
        let q = Query::parse("file_sign=x&image_type=3");
        let p = DownloadParams::parse_chat(&q).unwrap();
        assert!(matches!(
            wanted(&p, FileType::Video(103)).unwrap(),
            Wanted::VideoCover { .. }
        ));
        assert!(matches!(
            wanted(&p, FileType::Picture(102)).unwrap(),
            Wanted::Thumbnail { .. }
        ));
        assert_eq!(wanted(&p, FileType::File(100)).unwrap_err().status(), 415);
    }
}
