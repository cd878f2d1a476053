//! Which representation of an object a download asks for (SPEC §5): `image_type`,
//! `w`, `h`, `thumbnail_strategy`, `format` and `source`, parsed from a query, and
//! what that means for a file of a given family ([`Representation::wanted`]).
//!
//! A leaf module: the download routes parse their query with it, and the config parses
//! `apps.<id>.eager` entries with the very same code, so an eager result is planned
//! from exactly the values (and so has exactly the cache key) of the download that
//! will ask for it.

use crate::error::ApiError;
use crate::file_type::{Family, FileType};
use crate::query::Query;

/// `image_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    /// 1: the original.
    Original,
    /// 2: a thumbnail.
    Thumbnail,
    /// 3: a cover (video frame; for images, a thumbnail).
    Cover,
}

/// `thumbnail_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ThumbnailStrategy {
    /// 1 (the API's default): the app's third-party processor, if configured.
    ThirdParty,
    /// 2: filegate itself.
    Local,
}

/// `format=` of an image original (SPEC §11 renditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RenditionFormat {
    /// `jpg` (or `jpeg`).
    Jpeg,
    /// `png`.
    Png,
    /// `webp`.
    Webp,
    /// `avif`.
    Avif,
    /// `auto`: by the client's `Accept` (the original when it accepts its type, else
    /// WebP when accepted, else JPEG).
    Auto,
}

/// What a download asks for, once the object's file type is known.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Wanted {
    /// The stored bytes.
    Original,
    /// A thumbnail of at most w × h.
    Thumbnail {
        /// `w`.
        w: Option<f64>,
        /// `h`.
        h: Option<f64>,
    },
    /// A video frame, scaled like a thumbnail.
    VideoCover {
        /// `w`.
        w: Option<f64>,
        /// `h`.
        h: Option<f64>,
    },
    /// AMR voice transcoded to MP3.
    Mp3,
    /// The whole picture in another format, oriented, sRGB, at most
    /// `media.max_display` on its long side.
    Rendition {
        /// `format`.
        format: RenditionFormat,
    },
    /// `info=1`: what the file is (SPEC §11), read as a file of `family`.
    Info {
        /// The file's family.
        family: Family,
    },
}

/// The representation parameters of a download, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Representation {
    /// `image_type`.
    pub image_type: ImageType,
    /// `w`, finite and positive.
    pub w: Option<f64>,
    /// `h`, finite and positive.
    pub h: Option<f64>,
    /// `thumbnail_strategy`.
    pub strategy: ThumbnailStrategy,
    /// `format=mp3`, or `source=miniprogram` (which implies it for voice).
    pub want_mp3: bool,
    /// `info=1`: the file's info instead of its bytes.
    pub info: bool,
    /// `format=jpg|png|webp|avif|auto`: a rendition of an image original.
    pub rendition: Option<RenditionFormat>,
}

fn dimension(query: &Query, name: &str) -> Result<Option<f64>, ApiError> {
    match query.get(name)? {
        None | Some("") => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(Some(x)),
            _ => Err(ApiError::bad_param(name, "must be a finite number above 0")),
        },
    }
}

impl Representation {
    /// Reads `image_type`, `w`, `h`, `thumbnail_strategy`, `format` and `source` from
    /// `query`; a 400 names the parameter at fault.
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        let image_type = match query.parsed::<i32>("image_type", "1, 2 or 3")? {
            None | Some(1) => ImageType::Original,
            Some(2) => ImageType::Thumbnail,
            Some(3) => ImageType::Cover,
            Some(_) => return Err(ApiError::bad_param("image_type", "must be 1, 2 or 3")),
        };
        let strategy = match query.parsed::<i32>("thumbnail_strategy", "1 or 2")? {
            None | Some(1) => ThumbnailStrategy::ThirdParty,
            Some(2) => ThumbnailStrategy::Local,
            Some(_) => return Err(ApiError::bad_param("thumbnail_strategy", "must be 1 or 2")),
        };
        let (format_mp3, rendition) = match query.get("format")? {
            None | Some("") | Some("amr") => (false, None),
            Some("mp3") => (true, None),
            Some("jpg" | "jpeg") => (false, Some(RenditionFormat::Jpeg)),
            Some("png") => (false, Some(RenditionFormat::Png)),
            Some("webp") => (false, Some(RenditionFormat::Webp)),
            Some("avif") => (false, Some(RenditionFormat::Avif)),
            Some("auto") => (false, Some(RenditionFormat::Auto)),
            Some(_) => {
                return Err(ApiError::bad_param(
                    "format",
                    "must be amr, mp3, jpg, png, webp, avif or auto",
                ))
            }
        };
        let miniprogram = match query.get("source")? {
            None | Some("") => false,
            Some("miniprogram") => true,
            Some(_) => {
                return Err(ApiError::bad_param(
                    "source",
                    "must be miniprogram or empty",
                ))
            }
        };
        let info = match query.parsed::<i32>("info", "0 or 1")? {
            None | Some(0) => false,
            Some(1) => true,
            Some(_) => return Err(ApiError::bad_param("info", "must be 0 or 1")),
        };
        Ok(Representation {
            info,
            rendition,
            image_type,
            w: dimension(query, "w")?,
            h: dimension(query, "h")?,
            strategy,
            want_mp3: format_mp3 || miniprogram,
        })
    }

    /// What this asks of a file of `file_type`.
    pub fn wanted(&self, file_type: FileType) -> Result<Wanted, ApiError> {
        self.wanted_of(file_type.family())
    }

    /// What this asks of a file of `family`: a cover of an image is its thumbnail, mp3
    /// applies to AMR voice only (MP3 voice is served as is), thumbnails apply to
    /// images.
    pub fn wanted_of(&self, family: Family) -> Result<Wanted, ApiError> {
        if self.info {
            return Ok(Wanted::Info { family });
        }
        if self.want_mp3 && family == Family::VoiceAmr {
            return Ok(Wanted::Mp3);
        }
        let (w, h) = (self.w, self.h);
        match (self.image_type, family, self.rendition) {
            (ImageType::Original, Family::Image, Some(format)) => Ok(Wanted::Rendition { format }),
            (ImageType::Original, _, Some(_)) => Err(unsupported(
                "format=jpg, png, webp, avif and auto apply to images",
            )),
            (ImageType::Original, _, None) => Ok(Wanted::Original),
            (ImageType::Thumbnail | ImageType::Cover, Family::Image, _) => {
                Ok(Wanted::Thumbnail { w, h })
            }
            (ImageType::Cover, Family::Video, _) => Ok(Wanted::VideoCover { w, h }),
            (ImageType::Thumbnail, _, _) => Err(unsupported("a thumbnail needs an image")),
            (ImageType::Cover, _, _) => Err(unsupported("a cover needs a video or an image")),
        }
    }
}

fn unsupported(message: &'static str) -> ApiError {
    ApiError::new(http::StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_the_parameter() {
        let r = Representation::parse(&Query::parse("image_type=2&w=200.5&thumbnail_strategy=2"))
            .unwrap();
        assert_eq!(r.image_type, ImageType::Thumbnail);
        assert_eq!(r.w, Some(200.5));
        assert_eq!(r.strategy, ThumbnailStrategy::Local);
        for (query, name) in [
            ("image_type=4", "image_type"),
            ("w=0", "w"),
            ("h=NaN", "h"),
            ("thumbnail_strategy=3", "thumbnail_strategy"),
            ("format=ogg", "format"),
            ("format=gif", "format"),
            ("source=app", "source"),
            ("info=2", "info"),
        ] {
            let e = Representation::parse(&Query::parse(query)).unwrap_err();
            assert!(e.message().starts_with(&format!("{name}:")), "{query}");
        }
    }

    #[test]
    fn a_cover_of_an_image_is_its_thumbnail() {
        let r = Representation::parse(&Query::parse("image_type=3&w=10")).unwrap();
        let thumb = Wanted::Thumbnail {
            w: Some(10.0),
            h: None,
        };
        assert_eq!(r.wanted_of(Family::Image).unwrap(), thumb);
        assert_eq!(r.wanted(FileType::Avatar).unwrap(), thumb);
    }

    #[test]
    fn renditions_apply_to_image_originals() {
        let r = Representation::parse(&Query::parse("format=jpg")).unwrap();
        assert_eq!(
            r.wanted_of(Family::Image).unwrap(),
            Wanted::Rendition {
                format: RenditionFormat::Jpeg
            }
        );
        assert_eq!(r.wanted_of(Family::Video).unwrap_err().status(), 415);
        // A thumbnail keeps its own format rules.
        let r = Representation::parse(&Query::parse("format=auto&image_type=2")).unwrap();
        assert!(matches!(
            r.wanted_of(Family::Image).unwrap(),
            Wanted::Thumbnail { .. }
        ));
    }

    #[test]
    fn info_applies_to_every_family() {
        let r = Representation::parse(&Query::parse("info=1&image_type=2")).unwrap();
        for family in [Family::Image, Family::Video, Family::VoiceAmr, Family::File] {
            assert_eq!(r.wanted_of(family).unwrap(), Wanted::Info { family });
        }
    }
}
