//! Thumbnails with libvips: the format checked by its magic bytes, pixels and frames
//! checked from the header, then libvips' shrink-on-load thumbnail (never decode then
//! resize), EXIF orientation applied, metadata stripped, no embedded profile.
//! Runs whole on one pool worker: `VipsImage` is not `Send`.

use libvips::ops::{self, FailOn, ForeignHeifCompression, Size};
use libvips::VipsImage;

use crate::error::ApiError;
use crate::media::limits::{undecodable, unsupported, Deadline, Limits};
use crate::media::sniff::{sniff, Sniffed};
use crate::media::vips::vips;
use crate::media::{Fit, ImageFormat, Qualities, Rendered};

/// libvips' largest coordinate: "no limit" on the side the client left open.
const VIPS_MAX_COORD: i32 = 10_000_000;

/// Makes a thumbnail of `source` that fits `fit`, in `format`.
pub fn render_thumbnail(
    source: &[u8],
    fit: Fit,
    format: ImageFormat,
    qualities: Qualities,
    limits: &Limits,
    deadline: Deadline,
) -> Result<Rendered, ApiError> {
    check_image_format(sniff(source))?;
    let vips = vips()?;
    let header = VipsImage::new_from_buffer(source, "")
        .map_err(|_| undecodable("the image cannot be decoded").with_detail(vips.take_error()))?;
    check_header(&header, limits)?;
    drop(header);
    deadline.check()?;

    let options = ops::ThumbnailBufferOptions {
        height: fit.h.map_or(VIPS_MAX_COORD, |h| h as i32),
        size: Size::Down,
        import_profile: "srgb".into(),
        export_profile: "srgb".into(),
        // A truncated or corrupt file is an error, not a grey-padded thumbnail.
        fail_on: FailOn::Truncated,
        ..Default::default()
    };
    let width = fit.w.map_or(VIPS_MAX_COORD, |w| w as i32);
    let thumb = ops::thumbnail_buffer_with_opts(source, width, &options)
        .map_err(|_| undecodable("the image cannot be decoded").with_detail(vips.take_error()))?;
    deadline.check()?;
    let bytes = save(&thumb, format, qualities)
        .map_err(|_| ApiError::internal(format!("saving {format:?}: {}", vips.take_error())))?;
    limits.check_output(bytes.len())?;
    Ok(Rendered {
        bytes,
        content_type: format.content_type(),
    })
}

/// 415 for formats no thumbnail is made of, 422 for bytes that are no image at all.
pub fn check_image_format(found: Sniffed) -> Result<(), ApiError> {
    match found {
        Sniffed::Jpeg | Sniffed::Png | Sniffed::Webp | Sniffed::Gif => Ok(()),
        Sniffed::Unknown => Err(undecodable(
            "the file is not an image in a known format (JPEG, PNG, WebP, GIF)",
        )),
        other => Err(unsupported(format!(
            "thumbnails are made of JPEG, PNG, WebP and GIF images, not {}",
            other.name()
        ))),
    }
}

/// Pixels and frames from the header, before anything is decoded.
fn check_header(header: &VipsImage, limits: &Limits) -> Result<(), ApiError> {
    let width = u64::try_from(header.get_width()).unwrap_or(0);
    let pages = u64::try_from(header.get_n_pages()).unwrap_or(1).max(1);
    // Animated sources report the first frame's height as the page height.
    let page_height = u64::try_from(header.get_page_height()).unwrap_or(0);
    let height = if page_height > 0 {
        page_height
    } else {
        u64::try_from(header.get_height()).unwrap_or(0)
    };
    limits.check_pixels(width, height)?;
    limits.check_frames(pages)
}

/// Encodes with metadata stripped and no embedded ICC profile (the pixels are sRGB).
fn save(image: &VipsImage, format: ImageFormat, q: Qualities) -> libvips::Result<Vec<u8>> {
    match format {
        ImageFormat::Jpeg => ops::jpegsave_buffer_with_opts(
            image,
            &ops::JpegsaveBufferOptions {
                q: i32::from(q.jpeg),
                profile: "none".into(),
                optimize_coding: true,
                strip: true,
                ..Default::default()
            },
        ),
        ImageFormat::Png => ops::pngsave_buffer_with_opts(
            image,
            &ops::PngsaveBufferOptions {
                compression: 6,
                profile: "none".into(),
                strip: true,
                ..Default::default()
            },
        ),
        ImageFormat::Webp => ops::webpsave_buffer_with_opts(
            image,
            &ops::WebpsaveBufferOptions {
                q: i32::from(q.webp),
                profile: "none".into(),
                strip: true,
                ..Default::default()
            },
        ),
        ImageFormat::Gif => ops::gifsave_buffer_with_opts(
            image,
            &ops::GifsaveBufferOptions {
                strip: true,
                ..Default::default()
            },
        ),
        ImageFormat::Avif => ops::heifsave_buffer_with_opts(
            image,
            &ops::HeifsaveBufferOptions {
                q: i32::from(q.avif),
                compression: ForeignHeifCompression::Av1,
                // Speed over the last few percent of size: thumbnails are made on demand.
                effort: 2,
                strip: true,
                ..Default::default()
            },
        ),
    }
}

/// Scales decoded RGB pixels (a video frame) to fit `fit` and encodes a JPEG.
pub fn encode_rgb_frame(
    rgb: &[u8],
    width: u32,
    height: u32,
    quarter_turns: u8,
    fit: Fit,
    qualities: Qualities,
    limits: &Limits,
) -> Result<Rendered, ApiError> {
    let vips = vips()?;
    let frame =
        VipsImage::new_from_memory(rgb, width as i32, height as i32, 3, ops::BandFormat::Uchar)
            .map_err(|_| ApiError::internal(format!("frame to libvips: {}", vips.take_error())))?;
    let angle = match quarter_turns % 4 {
        1 => Some(ops::Angle::D90),
        2 => Some(ops::Angle::D180),
        3 => Some(ops::Angle::D270),
        _ => None,
    };
    let frame = match angle {
        Some(angle) => ops::rot(&frame, angle)
            .map_err(|_| ApiError::internal(format!("rotating a frame: {}", vips.take_error())))?,
        None => frame,
    };
    let options = ops::ThumbnailImageOptions {
        height: fit.h.map_or(VIPS_MAX_COORD, |h| h as i32),
        size: Size::Down,
        import_profile: "srgb".into(),
        export_profile: "srgb".into(),
        ..Default::default()
    };
    let width_box = fit.w.map_or(VIPS_MAX_COORD, |w| w as i32);
    let scaled = ops::thumbnail_image_with_opts(&frame, width_box, &options)
        .map_err(|_| ApiError::internal(format!("scaling a frame: {}", vips.take_error())))?;
    let bytes = save(&scaled, ImageFormat::Jpeg, qualities)
        .map_err(|_| ApiError::internal(format!("saving a cover: {}", vips.take_error())))?;
    limits.check_output(bytes.len())?;
    Ok(Rendered {
        bytes,
        content_type: ImageFormat::Jpeg.content_type(),
    })
}
