//! Thumbnails: the format checked by its magic bytes, pixels and frames checked from
//! libvips' reading of the header, then a JPEG takes the direct path
//! ([`crate::media::jpeg::thumbnail`]: libjpeg's scaled decode, a small resize, an
//! encode with libjpeg, nothing of libvips' pipeline) and PNG, WebP, GIF, HEIF and AVIF libvips'
//! shrink-on-load thumbnail. Either way: never decode whole then resize, EXIF
//! orientation applied, sRGB, metadata stripped, no embedded profile. Runs whole on one
//! pool worker: libvips images are not `Send`.

use crate::error::ApiError;
use crate::media::colour;
use crate::media::heif_decode;
use crate::media::heif_repair::{
    high_depth_video_range, normalise_property_order, without_thumbnails,
};
use crate::media::jpeg;
use crate::media::jpeg::thumbnail::{self as jpeg_thumbnail, Source as JpegSource};
use crate::media::limits::{undecodable, unsupported, Deadline, Limits};
use crate::media::pixels::{self, Pixels};
use crate::media::sniff::{sniff, Sniffed};
use crate::media::transform::{Fit, ImageFormat, Qualities, Rendered};
use crate::media::vips::{vips, Image, AVIF_SAVER, MAX_COORD};

/// Makes a thumbnail of `source` that fits `fit`, in `format`.
pub fn render_thumbnail(
    source: &[u8],
    fit: Fit,
    format: ImageFormat,
    qualities: Qualities,
    limits: &Limits,
    deadline: Deadline,
) -> Result<Rendered, ApiError> {
    let format_found = sniff(source);
    check_image_format(format_found)?;
    let repaired = readable(source, format_found);
    let source = &repaired[..];
    vips()?;
    let header = Image::header(source)
        .map_err(|e| undecodable("the image cannot be decoded").with_detail(e))?;
    check_header(&header, limits)?;
    let to_srgb = header.needs_colour_management();
    deadline.check()?;
    if format_found == Sniffed::Jpeg {
        let jpeg = JpegSource {
            bytes: source,
            width: header.width(),
            height: header.height(),
            orientation: header.orientation(),
            icc: header.icc_profile(),
        };
        drop(header);
        let thumb = jpeg_thumbnail::render(&jpeg, fit)
            .map_err(|e| undecodable("the image cannot be decoded").with_detail(e))?;
        deadline.check()?;
        let bytes = encode(&thumb, format, qualities)?;
        limits.check_output(bytes.len())?;
        return Ok(Rendered {
            bytes,
            content_type: format.content_type(),
        });
    }
    drop(header);
    if format_found == (Sniffed::IsoBmff { image: true }) {
        let needed = |w: usize, h: usize| {
            let (w, h) = jpeg_thumbnail::fitted((w as i64, h as i64), fit);
            (w as usize, h as usize)
        };
        if let Some(decoded) = heif_decode::decode(source, limits.max_pixels, needed, deadline) {
            deadline.check()?;
            let bytes = from_decoded(decoded, fit, format, qualities)?;
            limits.check_output(bytes.len())?;
            return Ok(Rendered {
                bytes,
                content_type: format.content_type(),
            });
        }
    }
    let video_range = heif_video_range(source, format_found);
    let bytes = retrying_without_previews(source, format_found, |source| {
        deadline.check()?;
        libvips_thumbnail(source, fit, format, qualities, to_srgb, video_range)
    })?;
    deadline.check()?;
    limits.check_output(bytes.len())?;
    Ok(Rendered {
        bytes,
        content_type: format.content_type(),
    })
}

/// Whether `source` is a HEIF file libheif 1.15 decodes too flat (limited range at
/// more than 8 bits: [`high_depth_video_range`]).
pub fn heif_video_range(source: &[u8], found: Sniffed) -> bool {
    found == (Sniffed::IsoBmff { image: true }) && high_depth_video_range(source)
}

/// `decode(source)`, and when a HEIF file fails, `decode` again with its preview
/// images hidden ([`without_thumbnails`]: libvips may pick a preview libheif 1.15
/// cannot decode); the first error if that fails too.
pub fn retrying_without_previews<T>(
    source: &[u8],
    found: Sniffed,
    decode: impl Fn(&[u8]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    match decode(source) {
        Ok(made) => Ok(made),
        Err(first) => match (found, without_thumbnails(source)) {
            (Sniffed::IsoBmff { image: true }, Some(hidden)) => decode(&hidden).map_err(|_| first),
            _ => Err(first),
        },
    }
}

/// libvips' shrink-on-load thumbnail of `source`, encoded.
fn libvips_thumbnail(
    source: &[u8],
    fit: Fit,
    format: ImageFormat,
    qualities: Qualities,
    to_srgb: bool,
    video_range: bool,
) -> Result<Vec<u8>, ApiError> {
    let mut thumb = Image::thumbnail(source, side(fit.w), side(fit.h), to_srgb)
        .map_err(|e| undecodable("the image cannot be decoded").with_detail(e))?;
    if video_range {
        thumb = thumb
            .expand_video_range()
            .map_err(|e| ApiError::internal(format!("stretching video range: {e}")))?;
    }
    // libvips decodes while it encodes: a damaged source fails here.
    thumb
        .save(&saver(format, qualities))
        .map_err(|e| undecodable("the image cannot be decoded").with_detail(e))
}

/// A picture FFmpeg decoded ([`heif_decode`]) resized to fit, to sRGB through its
/// profile, upright, encoded: the JPEG direct path's steps after its decode.
fn from_decoded(
    decoded: heif_decode::Decoded,
    fit: Fit,
    format: ImageFormat,
    qualities: Qualities,
) -> Result<Vec<u8>, ApiError> {
    let internal = |e: String| ApiError::internal(format!("a HEIF thumbnail: {e}"));
    let p = decoded.pixels;
    // The fit of the whole picture, whatever the decode shrank it to.
    let stored = (i64::from(decoded.stored.0), i64::from(decoded.stored.1));
    let (w, h) = jpeg_thumbnail::stored_target(stored, decoded.orientation, fit);
    let to = |v: i64| u32::try_from(v).map_err(|e| internal(e.to_string()));
    let resized = pixels::resized(p, to(w)?, to(h)?).map_err(internal)?;
    let coloured = match decoded.icc.as_deref() {
        Some(profile) => colour::into_srgb(resized, profile),
        None => resized,
    };
    let upright = pixels::orient(coloured, decoded.orientation);
    encode(&upright, format, qualities)
}

/// A HEIF file with its property order repaired for libheif
/// ([`crate::media::heif_repair`]); any other file as it is.
pub fn readable(source: &[u8], found: Sniffed) -> std::borrow::Cow<'_, [u8]> {
    match found {
        Sniffed::IsoBmff { image: true } => normalise_property_order(source),
        _ => std::borrow::Cow::Borrowed(source),
    }
}

/// Small upright pixels to `format`: JPEG by libjpeg directly, the others by libvips.
fn encode(p: &Pixels, format: ImageFormat, q: Qualities) -> Result<Vec<u8>, ApiError> {
    let internal = |e: String| ApiError::internal(format!("encoding a thumbnail: {e}"));
    if format == ImageFormat::Jpeg {
        return jpeg::encode(&p.data, p.width, p.height, p.bands, q.jpeg, true).map_err(internal);
    }
    Image::from_decoded(&p.data, p.width, p.height, p.bands, None)
        .and_then(|image| image.save(&saver(format, q)))
        .map_err(internal)
}

fn side(v: Option<u32>) -> i32 {
    v.map_or(MAX_COORD, |v| v.min(MAX_COORD as u32) as i32)
}

/// 415 for formats no thumbnail is made of, 422 for bytes that are no image at all.
pub fn check_image_format(found: Sniffed) -> Result<(), ApiError> {
    match found {
        Sniffed::Jpeg
        | Sniffed::Png
        | Sniffed::Webp
        | Sniffed::Gif
        | Sniffed::IsoBmff { image: true } => Ok(()),
        Sniffed::Unknown => Err(undecodable(
            "the file is not an image in a known format (JPEG, PNG, WebP, GIF, HEIF, AVIF)",
        )),
        other => Err(unsupported(format!(
            "thumbnails are made of JPEG, PNG, WebP, GIF, HEIF and AVIF images, not {}",
            other.name()
        ))),
    }
}

/// Pixels and frames from the header, before anything is decoded.
fn check_header(header: &Image, limits: &Limits) -> Result<(), ApiError> {
    let width = u64::try_from(header.width()).unwrap_or(0);
    let pages = u64::try_from(header.pages()).unwrap_or(1).max(1);
    // Animated sources report one frame's height as the page height.
    let page_height = u64::try_from(header.page_height()).unwrap_or(0);
    let height = if page_height > 0 {
        page_height
    } else {
        u64::try_from(header.height()).unwrap_or(0)
    };
    limits.check_pixels(width, height)?;
    limits.check_frames(pages)
}

/// The saver and its options: metadata stripped, no embedded ICC profile (the
/// pixels are sRGB already).
fn saver(format: ImageFormat, q: Qualities) -> String {
    match format {
        ImageFormat::Jpeg => format!(".jpg[Q={},optimize_coding,strip,profile=none]", q.jpeg),
        ImageFormat::Png => ".png[compression=6,strip,profile=none]".to_string(),
        ImageFormat::Webp => format!(".webp[Q={},strip,profile=none]", q.webp),
        ImageFormat::Gif => ".gif[strip]".to_string(),
        ImageFormat::Avif => AVIF_SAVER.replace("effort=0", &format!("Q={},effort=2", q.avif)),
    }
}

/// Scales decoded RGB pixels (a video frame) to fit `fit`, after turning them
/// `quarter_turns` × 90° clockwise, and encodes a JPEG.
pub fn encode_rgb_frame(
    rgb: &[u8],
    width: u32,
    height: u32,
    quarter_turns: u8,
    fit: Fit,
    qualities: Qualities,
    limits: &Limits,
) -> Result<Rendered, ApiError> {
    vips()?;
    let internal = |what: &str, e: String| ApiError::internal(format!("{what}: {e}"));
    let frame = Image::from_rgb(rgb, width, height)
        .and_then(|f| f.rotate(quarter_turns))
        .map_err(|e| internal("frame to libvips", e))?;
    let scaled = frame
        .fit(side(fit.w), side(fit.h))
        .map_err(|e| internal("scaling a frame", e))?;
    let bytes = scaled
        .save(&saver(ImageFormat::Jpeg, qualities))
        .map_err(|e| internal("saving a cover", e))?;
    limits.check_output(bytes.len())?;
    Ok(Rendered {
        bytes,
        content_type: ImageFormat::Jpeg.content_type(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MediaConfig;
    use std::time::{Duration, Instant};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("n.v");
        let out = dir.path().join("n.jpg");
        let run = |args: &[&str]| {
            assert!(std::process::Command::new("vips")
                .args(args)
                .status()
                .unwrap()
                .success())
        };
        run(&[
            "gaussnoise",
            v.to_str().unwrap(),
            &w.to_string(),
            &h.to_string(),
        ]);
        run(&[
            "copy",
            v.to_str().unwrap(),
            &format!("{}[Q=95]", out.to_str().unwrap()),
        ]);
        std::fs::read(out).unwrap()
    }

    fn limits() -> Limits {
        Limits::from_config(&MediaConfig::default())
    }

    fn q() -> Qualities {
        Qualities {
            jpeg: 80,
            webp: 80,
            avif: 50,
        }
    }

    fn soon() -> Deadline {
        Deadline(Instant::now() + Duration::from_secs(30))
    }

    #[test]
    fn greyscale_works_and_truncated_jpeg_is_422() {
        let full = jpeg(1600, 1200);
        let fit = Fit {
            w: Some(100),
            h: None,
        };
        let ok = render_thumbnail(&full, fit, ImageFormat::Jpeg, q(), &limits(), soon()).unwrap();
        assert!(!ok.bytes.is_empty());
        let cut = &full[..full.len() / 2];
        let err =
            render_thumbnail(cut, fit, ImageFormat::Jpeg, q(), &limits(), soon()).unwrap_err();
        assert_eq!(err.status(), 422, "{err}");
    }
}
