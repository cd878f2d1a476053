//! The media engine ([`Media`]): the limits, the bounded transform pool, the HTTP
//! client of third-party processors, format negotiation and the metrics of
//! transforms.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::MediaConfig;
use crate::error::ApiError;
use crate::file_type::Family;
use crate::media::limits::Limits;
use crate::media::pool::{IdleTurn, Pool};
use crate::media::transform::{Fit, ImageFormat, Qualities, Rendered, Transform};
use crate::media::{cover, info, thumbnail, vips, voice};
use crate::metrics::Metrics;
use crate::representation::RenditionFormat;

/// The media engine: limits, the pool, and the metrics of transforms.
pub struct Media {
    config: MediaConfig,
    limits: Limits,
    pool: Pool,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
}

impl Media {
    /// An engine with `config`; libvips and FFmpeg start on first use.
    pub fn new(config: &MediaConfig, metrics: Arc<Metrics>) -> Media {
        let pool = Pool::new(
            config.worker_count(),
            config.queue,
            config.retry_after,
            config.transform_timeout,
            metrics.transform_queue_depth.clone(),
        );
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Media {
            config: config.clone(),
            limits: Limits::from_config(config),
            pool,
            metrics,
            http,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The HTTP client for processors.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Normalises `w`/`h`: rounded, clamped to `media.max_size`, the default box
    /// when both are absent.
    pub fn fit(&self, w: Option<f64>, h: Option<f64>) -> Fit {
        let max = self.config.max_size;
        let px = |v: f64| (v.round() as u64).clamp(1, u64::from(max)) as u32;
        match (w.map(px), h.map(px)) {
            (None, None) => Fit {
                w: Some(self.config.default_size),
                h: Some(self.config.default_size),
            },
            (w, h) => Fit { w, h },
        }
    }

    /// The thumbnail format for a client's `Accept`: AVIF, then WebP, when asked for
    /// by name and available; else the source's own family.
    pub fn negotiate(&self, accept: Option<&str>, source_content_type: &str) -> ImageFormat {
        let accepts = |wanted: &str| accepts(accept, wanted);
        if self.config.avif
            && accepts("image/avif")
            && vips::vips().is_ok_and(|v| v.can_encode_avif())
        {
            return ImageFormat::Avif;
        }
        if accepts("image/webp") {
            return ImageFormat::Webp;
        }
        ImageFormat::of_content_type(source_content_type)
    }

    /// The format of a rendition: `auto` by `Accept` (SPEC §11: `None`, the original
    /// itself, when the client names its type or it is JPEG, PNG or GIF, which every
    /// client shows; else WebP when accepted; else JPEG); a named one as named. 415
    /// for AVIF when this build cannot encode it.
    pub fn rendition_format(
        &self,
        format: RenditionFormat,
        accept: Option<&str>,
        original_type: &str,
    ) -> Result<Option<ImageFormat>, ApiError> {
        let chosen = match format {
            RenditionFormat::Jpeg => ImageFormat::Jpeg,
            RenditionFormat::Png => ImageFormat::Png,
            RenditionFormat::Webp => ImageFormat::Webp,
            RenditionFormat::Avif => {
                if !(self.config.avif && vips::vips().is_ok_and(|v| v.can_encode_avif())) {
                    return Err(ApiError::new(
                        http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "format: this node does not encode AVIF (media.avif, or no AV1 encoder)",
                    ));
                }
                ImageFormat::Avif
            }
            RenditionFormat::Auto => {
                let essence = crate::file_type::essence(original_type);
                let everywhere =
                    matches!(essence.as_str(), "image/jpeg" | "image/png" | "image/gif");
                if everywhere || accepts(accept, &essence) {
                    return Ok(None);
                }
                if accepts(accept, "image/webp") {
                    ImageFormat::Webp
                } else {
                    ImageFormat::Jpeg
                }
            }
        };
        Ok(Some(chosen))
    }

    /// A turn for one background job (eager derivation): granted once the pool is idle,
    /// `None` if it stayed busy for `patience` ([`Pool::idle_turn`]).
    pub async fn idle_turn(&self, patience: std::time::Duration) -> Option<IdleTurn> {
        self.pool.idle_turn(patience).await
    }

    /// Largest source a transform reads.
    pub fn max_source_bytes(&self, transform: &Transform) -> u64 {
        match transform {
            Transform::Cover { .. }
            | Transform::Info {
                family: Family::Video,
            } => self.config.max_video_bytes.as_u64(),
            _ => self.config.max_source_bytes.as_u64(),
        }
    }

    /// The encoders' qualities of `media.*_quality`.
    fn qualities(&self) -> Qualities {
        Qualities {
            jpeg: self.config.jpeg_quality,
            webp: self.config.webp_quality,
            avif: self.config.avif_quality,
        }
    }

    /// Runs a local transform in the pool, counting it in the metrics.
    pub async fn render(&self, transform: &Transform, source: Bytes) -> Result<Rendered, ApiError> {
        let kind = transform.kind();
        let started = Instant::now();
        let limits = self.limits;
        let qualities = self.qualities();
        let offset = self.config.cover_offset;
        let job = transform.clone();
        let result = self
            .pool
            .run(move |deadline| match job {
                Transform::Thumbnail { fit, format } => {
                    thumbnail::render_thumbnail(&source, fit, format, qualities, &limits, deadline)
                }
                Transform::Cover { fit } => {
                    cover::render_cover(source, fit, offset, qualities, &limits, deadline)
                }
                Transform::Rendition { max, format } => {
                    let fit = Fit {
                        w: Some(max),
                        h: Some(max),
                    };
                    // A whole picture may be larger than a thumbnail's result limit
                    // (a PNG of a 12-megapixel photo is 10-20 MB): never below what
                    // its pixels take uncompressed.
                    let ceiling = u64::from(max) * u64::from(max) * 4;
                    let limits = Limits {
                        max_output_bytes: limits.max_output_bytes.max(ceiling),
                        ..limits
                    };
                    thumbnail::render_thumbnail(&source, fit, format, qualities, &limits, deadline)
                }
                Transform::Mp3 => voice::render_mp3(source, &limits, deadline),
                Transform::Processor { .. } | Transform::Info { .. } => Err(ApiError::internal(
                    "a processor or info transform was sent to render",
                )),
            })
            .await;
        self.observe(kind, started, &result);
        result
    }

    /// Reads the info of `source` (a file of `family`, stored as `stored_type`) in
    /// the pool, counting it as an `info` transform.
    pub async fn read_info(
        &self,
        family: Family,
        source: Bytes,
        stored_type: String,
    ) -> Result<Rendered, ApiError> {
        let started = Instant::now();
        let limits = self.limits;
        let qualities = self.qualities();
        let offset = self.config.cover_offset;
        let result = self
            .pool
            .run(move |deadline| {
                info::read_info(
                    source,
                    family,
                    &stored_type,
                    offset,
                    qualities,
                    &limits,
                    deadline,
                )
                .and_then(|i| i.rendered())
            })
            .await;
        self.observe("info", started, &result);
        result
    }

    /// Counts one transform's outcome.
    pub fn observe<T>(&self, kind: &str, started: Instant, result: &Result<T, ApiError>) {
        let outcome = match result {
            Ok(_) => {
                self.metrics
                    .transform_seconds
                    .with_label_values(&[kind])
                    .observe(started.elapsed().as_secs_f64());
                "ok"
            }
            Err(e) if e.status() == http::StatusCode::SERVICE_UNAVAILABLE => "busy",
            Err(e) if e.status().is_client_error() => "rejected",
            Err(_) => "failed",
        };
        self.metrics
            .transforms_total
            .with_label_values(&[kind, outcome])
            .inc();
    }
}

/// Whether `accept` names `wanted` (case-insensitive) with a quality above 0.
fn accepts(accept: Option<&str>, wanted: &str) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|item| {
            let mut parts = item.split(';');
            let kind = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            kind.eq_ignore_ascii_case(wanted) && q > 0.0
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_defaults_and_clamps() {
        let media = Media::new(&MediaConfig::default(), Arc::new(Metrics::new()));
        assert_eq!(
            media.fit(None, None),
            Fit {
                w: Some(200),
                h: Some(200)
            }
        );
        assert_eq!(
            media.fit(Some(99_999.0), None),
            Fit {
                w: Some(2048),
                h: None
            }
        );
        assert_eq!(
            media.fit(Some(0.2), Some(150.4)),
            Fit {
                w: Some(1),
                h: Some(150)
            }
        );
    }

    #[test]
    fn accept_negotiation() {
        let config = MediaConfig {
            avif: false,
            ..MediaConfig::default()
        };
        let media = Media::new(&config, Arc::new(Metrics::new()));
        assert_eq!(
            media.negotiate(Some("image/avif,image/webp,*/*"), "image/png"),
            ImageFormat::Webp
        );
        assert_eq!(
            media.negotiate(Some("image/webp;q=0, */*"), "image/png"),
            ImageFormat::Png
        );
        assert_eq!(media.negotiate(None, "image/gif"), ImageFormat::Gif);
        assert_eq!(
            media.negotiate(Some("*/*"), "image/jpeg"),
            ImageFormat::Jpeg
        );
    }
}
