//! A JPEG's thumbnail on the direct path: libjpeg decodes at the smallest DCT scale
//! that still covers the result (1/8, 1/4, 1/2 or whole; for a progressive source at
//! 1/8, its DC scans alone), a Lanczos-3 resize does the rest, colour management runs
//! on the small result (sources with an ICC profile, or in CMYK), then the EXIF
//! orientation. The caller encodes.

use crate::media::colour;
use crate::media::jpeg;
use crate::media::pixels::{self, Pixels};
use crate::media::transform::Fit;
use crate::media::vips::Image;

/// What the header (libvips', already read for the limits) says about the source.
pub struct Source<'a> {
    /// The JPEG file.
    pub bytes: &'a [u8],
    /// Stored width and height (before the EXIF orientation).
    pub width: i64,
    /// Stored height.
    pub height: i64,
    /// EXIF orientation, 1-8.
    pub orientation: i32,
    /// The embedded ICC profile, if any (then, or for a CMYK source, colour
    /// management runs).
    pub icc: Option<Vec<u8>>,
}

/// The upright thumbnail of `source` fitting `fit` (never enlarged): grey or sRGB.
pub fn render(source: &Source<'_>, fit: Fit) -> Result<Pixels, String> {
    let stored = (source.width.max(1), source.height.max(1));
    let target = stored_target(stored, source.orientation, fit);
    let decoded = jpeg::decode(source.bytes, scale_denominator(stored, target), true)?;
    let resized = pixels::resize(
        &decoded,
        decoded.width,
        decoded.height,
        decoded.components,
        u32::try_from(target.0).map_err(|e| e.to_string())?,
        u32::try_from(target.1).map_err(|e| e.to_string())?,
    )?;
    drop(decoded);
    let coloured = if source.icc.is_some() || resized.bands == 4 {
        to_srgb(resized, source.icc.as_deref())?
    } else {
        resized
    };
    Ok(pixels::orient(coloured, source.orientation))
}

/// The coarsest scale (1/8, 1/4, 1/2 or 1: libjpeg's, and the HEIC decode's tile
/// averaging) whose decode of `stored` pixels still covers `target`: the resize after
/// it only ever shrinks.
pub fn scale_denominator(stored: (i64, i64), target: (i64, i64)) -> u8 {
    [8u8, 4, 2]
        .into_iter()
        .find(|&d| {
            let d = i64::from(d);
            (stored.0 + d - 1) / d >= target.0 && (stored.1 + d - 1) / d >= target.1
        })
        .unwrap_or(1)
}

/// Through the embedded profile (Little CMS, transforms kept per worker) or, for CMYK
/// without one, libvips' default CMYK profile, to sRGB, on the small image.
fn to_srgb(p: Pixels, icc: Option<&[u8]>) -> Result<Pixels, String> {
    if let Some(profile) = icc {
        return colour::to_srgb(&p, profile);
    }
    let image = Image::from_decoded(&p.data, p.width, p.height, p.bands, icc)?;
    let srgb = image.to_srgb()?;
    let bands = u8::try_from(srgb.bands()).map_err(|e| e.to_string())?;
    Ok(Pixels {
        data: srgb.to_pixels()?,
        width: u32::try_from(srgb.width()).map_err(|e| e.to_string())?,
        height: u32::try_from(srgb.height()).map_err(|e| e.to_string())?,
        bands,
    })
}

/// The size to resize stored pixels of `stored` (width, height) to, so that once
/// turned by the EXIF `orientation` they fit `fit` (never enlarged): orientations 5-8
/// turn the picture a quarter, and the box applies to it upright.
pub fn stored_target(stored: (i64, i64), orientation: i32, fit: Fit) -> (i64, i64) {
    let turned = (5..=8).contains(&orientation);
    let upright = if turned { (stored.1, stored.0) } else { stored };
    let (w, h) = fitted(upright, fit);
    if turned {
        (h, w)
    } else {
        (w, h)
    }
}

/// The size of an image of `size` (width, height) fitted in `fit`, never enlarged;
/// each side at least 1.
pub fn fitted(size: (i64, i64), fit: Fit) -> (i64, i64) {
    let factor =
        |side: Option<u32>, of: i64| side.map_or(f64::INFINITY, |s| f64::from(s) / of as f64);
    let f = factor(fit.w, size.0).min(factor(fit.h, size.1));
    if f >= 1.0 {
        return size;
    }
    let scaled = |of: i64| ((of as f64 * f).round() as i64).max(1);
    (scaled(size.0), scaled(size.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_inside_the_box_and_never_enlarges() {
        let fit = |w, h| Fit { w, h };
        assert_eq!(fitted((1600, 1200), fit(Some(200), Some(200))), (200, 150));
        assert_eq!(fitted((1600, 1200), fit(Some(150), Some(2000))), (150, 113));
        assert_eq!(fitted((1600, 1200), fit(None, Some(120))), (160, 120));
        assert_eq!(fitted((100, 50), fit(Some(200), Some(200))), (100, 50));
        assert_eq!(fitted((10000, 1), fit(Some(10), None)), (10, 1));
    }
}
