//! Media transforms: thumbnails ([`thumbnail`], libvips), video covers ([`cover`],
//! FFmpeg), AMR→MP3 ([`voice`], FFmpeg), and third-party processors
//! ([`processor`]). [`limits`] holds the checks every transform makes, [`pool`] the
//! bounded CPU pool they run in, [`sniff`] format detection by magic bytes,
//! [`source`] the size-limited source read (the plan → cache → make sequence a
//! download runs is [`crate::derived`]).
//!
//! Every transform takes bytes and gives bytes: libvips images are not `Send`, so
//! each runs whole on one pool worker.

pub mod av;
pub mod colour;
pub mod cover;
pub mod jpeg;
pub mod limits;
pub mod pixels;
pub mod pool;
pub mod processor;
pub mod sniff;
pub mod source;
pub mod thumbnail;
pub mod vips;
pub mod voice;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::config::MediaConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;
use limits::Limits;
use pool::Pool;

/// An image output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// GIF (a still of the first frame).
    Gif,
    /// AVIF.
    Avif,
}

impl ImageFormat {
    /// Its content type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Avif => "image/avif",
        }
    }

    /// Its file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Avif => "avif",
        }
    }

    /// The family a stored content type names; JPEG for anything else (the
    /// source's real format is checked by its bytes when it is decoded).
    pub fn of_content_type(content_type: &str) -> ImageFormat {
        match crate::file_type::essence(content_type).as_str() {
            "image/png" => ImageFormat::Png,
            "image/webp" => ImageFormat::Webp,
            "image/gif" => ImageFormat::Gif,
            _ => ImageFormat::Jpeg,
        }
    }
}

/// The box a result must fit in, in pixels; `None` leaves that side open. Never
/// both `None` once normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fit {
    /// Largest width.
    pub w: Option<u32>,
    /// Largest height.
    pub h: Option<u32>,
}

/// Encoder qualities.
#[derive(Debug, Clone, Copy)]
pub struct Qualities {
    /// JPEG, 1-100.
    pub jpeg: u8,
    /// WebP, 1-100.
    pub webp: u8,
    /// AVIF, 1-100.
    pub avif: u8,
}

/// A transform's result.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Their content type.
    pub content_type: &'static str,
}

/// What to make, normalised: its [`Transform::canonical`] form is part of the cache
/// key, so equal requests share one result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transform {
    /// A libvips thumbnail.
    Thumbnail {
        /// The box.
        fit: Fit,
        /// The output format.
        format: ImageFormat,
    },
    /// A video cover (JPEG).
    Cover {
        /// The box.
        fit: Fit,
    },
    /// AMR → MP3.
    Mp3,
    /// A thumbnail made by the app's third-party processor.
    Processor {
        /// The box.
        fit: Fit,
        /// The processor's URL template (a new template is a new result).
        template: String,
    },
}

fn side(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl Transform {
    /// The metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Transform::Thumbnail { .. } => "thumbnail",
            Transform::Cover { .. } => "cover",
            Transform::Mp3 => "mp3",
            Transform::Processor { .. } => "processor",
        }
    }

    /// A stable text form for the cache key.
    pub fn canonical(&self) -> String {
        match self {
            Transform::Thumbnail { fit, format } => {
                format!(
                    "thumb:v1:{}x{}:{}",
                    side(fit.w),
                    side(fit.h),
                    format.extension()
                )
            }
            Transform::Cover { fit } => format!("cover:v1:{}x{}", side(fit.w), side(fit.h)),
            Transform::Mp3 => "mp3:v1:16k-mono-32k".to_string(),
            Transform::Processor { fit, template } => {
                format!("proc:v1:{}x{}:{template}", side(fit.w), side(fit.h))
            }
        }
    }

    /// The extension of the stored copy and of the offered file name.
    pub fn extension(&self) -> &'static str {
        match self {
            Transform::Thumbnail { format, .. } => format.extension(),
            Transform::Cover { .. } => "jpg",
            Transform::Mp3 => "mp3",
            Transform::Processor { .. } => "img",
        }
    }

    /// The content type, when known before the result is made.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Transform::Thumbnail { format, .. } => Some(format.content_type()),
            Transform::Cover { .. } => Some("image/jpeg"),
            Transform::Mp3 => Some("audio/mpeg"),
            Transform::Processor { .. } => None,
        }
    }
}

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
        let accepts = |wanted: &str| {
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
        };
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

    /// A turn for one background job (eager derivation): granted once the pool is idle,
    /// `None` if it stayed busy for `patience` ([`pool::Pool::idle_turn`]).
    pub async fn idle_turn(&self, patience: std::time::Duration) -> Option<pool::IdleTurn> {
        self.pool.idle_turn(patience).await
    }

    /// Largest source a transform reads.
    pub fn max_source_bytes(&self, transform: &Transform) -> u64 {
        match transform {
            Transform::Cover { .. } => self.config.max_video_bytes.as_u64(),
            _ => self.config.max_source_bytes.as_u64(),
        }
    }

    /// Runs a local transform in the pool, counting it in the metrics.
    pub async fn render(&self, transform: &Transform, source: Bytes) -> Result<Rendered, ApiError> {
        let kind = transform.kind();
        let started = Instant::now();
        let limits = self.limits;
        let qualities = Qualities {
            jpeg: self.config.jpeg_quality,
            webp: self.config.webp_quality,
            avif: self.config.avif_quality,
        };
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
                Transform::Mp3 => voice::render_mp3(source, &limits, deadline),
                Transform::Processor { .. } => Err(ApiError::internal(
                    "a processor transform was sent to the local pool",
                )),
            })
            .await;
        self.observe(kind, started, &result);
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
