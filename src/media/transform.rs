//! What a transform makes, normalised: its [`Transform`] (whose canonical form is part
//! of the cache key), the box it fits in, the output format, the qualities, and what
//! it gives back.

use crate::file_type::{essence, extension_of, Family};

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
    /// Its content type (a media type of the type table, [`crate::file_type`]).
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Avif => "image/avif",
        }
    }

    /// Its file extension (the type table's).
    pub fn extension(self) -> &'static str {
        extension_of(self.content_type()).unwrap_or("img")
    }

    /// The family a stored content type names; JPEG for anything else (the
    /// source's real format is checked by its bytes when it is decoded).
    pub fn of_content_type(content_type: &str) -> ImageFormat {
        match essence(content_type).as_str() {
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

/// The content type of a stored `info=1` result: the JSON of the envelope's `data`.
pub const INFO_TYPE: &str = "application/json";

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
    /// The whole picture in `format`, at most `max` on its long side (a rendition,
    /// SPEC §11): a thumbnail's pipeline with a box of `max` × `max`, which never
    /// enlarges.
    Rendition {
        /// `media.max_display` (a new limit is a new result).
        max: u32,
        /// The output format.
        format: ImageFormat,
    },
    /// `info=1`: dimensions, duration, ThumbHash... as JSON (SPEC §11), read as a
    /// file of `family` is.
    Info {
        /// What the file was uploaded as.
        family: Family,
    },
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
            Transform::Rendition { .. } => "rendition",
            Transform::Processor { .. } => "processor",
            Transform::Info { .. } => "info",
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
            Transform::Rendition { max, format } => {
                format!("render:v1:{max}:{}", format.extension())
            }
            Transform::Processor { fit, template } => {
                format!("proc:v1:{}x{}:{template}", side(fit.w), side(fit.h))
            }
            Transform::Info { family } => format!("info:v1:{family:?}"),
        }
    }

    /// The extension of the stored copy and of the offered file name.
    pub fn extension(&self) -> &'static str {
        match self {
            Transform::Thumbnail { format, .. } | Transform::Rendition { format, .. } => {
                format.extension()
            }
            Transform::Cover { .. } => "jpg",
            Transform::Mp3 => "mp3",
            Transform::Processor { .. } => "img",
            Transform::Info { .. } => "json",
        }
    }

    /// The content type, when known before the result is made.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Transform::Thumbnail { format, .. } | Transform::Rendition { format, .. } => {
                Some(format.content_type())
            }
            Transform::Cover { .. } => Some("image/jpeg"),
            Transform::Mp3 => Some("audio/mpeg"),
            Transform::Processor { .. } => None,
            Transform::Info { .. } => Some(INFO_TYPE),
        }
    }
}
