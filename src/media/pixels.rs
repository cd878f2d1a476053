//! Small operations on packed 8-bit pixels (1, 3 or 4 bytes a pixel) for the direct
//! thumbnail path: a Lanczos-3 resize (fast_image_resize, SIMD) and the eight EXIF
//! orientations.

use fast_image_resize::images::{Image as ResizeImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// Packed pixels.
pub struct Pixels {
    /// Rows of `width × bands` bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes a pixel: 1 grey, 3 RGB, 4 CMYK.
    pub bands: u8,
}

fn pixel_type(bands: u8) -> Result<PixelType, String> {
    match bands {
        1 => Ok(PixelType::U8),
        3 => Ok(PixelType::U8x3),
        4 => Ok(PixelType::U8x4),
        b => Err(format!("{b} bands a pixel cannot be resized")),
    }
}

/// `p` resized to exactly `to_width`×`to_height` ([`resize`]); a picture already that
/// size is handed back as it is, not copied (a rendition within `max_display` of a
/// 12 MP photo: 36 MB).
pub fn resized(p: Pixels, to_width: u32, to_height: u32) -> Result<Pixels, String> {
    if (p.width, p.height) == (to_width, to_height) {
        return Ok(p);
    }
    resize(&p.data, p.width, p.height, p.bands, to_width, to_height)
}

/// `data` (`width`×`height`, `bands` a pixel) resized to exactly `to_width`×`to_height`
/// with a Lanczos-3 filter.
pub fn resize(
    data: &[u8],
    width: u32,
    height: u32,
    bands: u8,
    to_width: u32,
    to_height: u32,
) -> Result<Pixels, String> {
    if (width, height) == (to_width, to_height) {
        return Ok(Pixels {
            data: data.to_vec(),
            width,
            height,
            bands,
        });
    }
    let kind = pixel_type(bands)?;
    let src = ImageRef::new(width, height, data, kind).map_err(|e| e.to_string())?;
    let mut dst = ResizeImage::new(to_width, to_height, kind);
    // Four bands here are CMYK, not RGBA: nothing is an alpha to multiply by.
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(false);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| e.to_string())?;
    Ok(Pixels {
        data: dst.into_vec(),
        width: to_width,
        height: to_height,
        bands,
    })
}

/// The image turned upright by EXIF `orientation` (1-8; anything else leaves it).
pub fn orient(p: Pixels, orientation: i32) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return p;
    }
    let (w, h, b) = (p.width as usize, p.height as usize, usize::from(p.bands));
    // Orientations 5-8 swap the sides.
    let turned = orientation >= 5;
    let (ow, oh) = if turned { (h, w) } else { (w, h) };
    let mut out = vec![0u8; p.data.len()];
    for y in 0..oh {
        for x in 0..ow {
            // Where the upright pixel (x, y) is stored (EXIF 2-8: mirror, 180°,
            // flip, transpose, 90° clockwise, transverse, 90° counter-clockwise).
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let from = (sy * w + sx) * b;
            let to = (y * ow + x) * b;
            out[to..to + b].copy_from_slice(&p.data[from..from + b]);
        }
    }
    Pixels {
        data: out,
        width: ow as u32,
        height: oh as u32,
        bands: p.bands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 grey image whose pixels are their own indices.
    fn numbered() -> Pixels {
        Pixels {
            data: vec![0, 1, 2, 3, 4, 5],
            width: 3,
            height: 2,
            bands: 1,
        }
    }

    #[test]
    fn orientations_put_the_top_left_where_exif_says() {
        // Stored:  0 1 2 / 3 4 5
        let cases: [(i32, (u32, u32), &[u8]); 8] = [
            (1, (3, 2), &[0, 1, 2, 3, 4, 5]),
            (2, (3, 2), &[2, 1, 0, 5, 4, 3]),
            (3, (3, 2), &[5, 4, 3, 2, 1, 0]),
            (4, (3, 2), &[3, 4, 5, 0, 1, 2]),
            (5, (2, 3), &[0, 3, 1, 4, 2, 5]),
            (6, (2, 3), &[3, 0, 4, 1, 5, 2]),
            (7, (2, 3), &[5, 2, 4, 1, 3, 0]),
            (8, (2, 3), &[2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, size, want) in cases {
            let p = orient(numbered(), orientation);
            assert_eq!((p.width, p.height), size, "orientation {orientation}");
            assert_eq!(p.data, want, "orientation {orientation}");
        }
    }

    #[test]
    fn resizes_to_the_exact_size() {
        let data = vec![200u8; 40 * 30 * 3];
        let p = resize(&data, 40, 30, 3, 13, 7).unwrap();
        assert_eq!((p.width, p.height, p.data.len()), (13, 7, 13 * 7 * 3));
        assert!(p.data.iter().all(|&v| (199..=201).contains(&v)));
        assert!(resize(&data, 40, 30, 2, 13, 7).is_err());
    }
}
