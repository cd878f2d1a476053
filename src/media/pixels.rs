//! Small operations on packed 8-bit pixels (1, 3 or 4 bytes a pixel) for the direct
//! thumbnail path: a Lanczos-3 resize (fast_image_resize, SIMD) and the eight EXIF
//! orientations.

use fast_image_resize::images::{Image as ResizeImage, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::media::job_memory;

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

/// A large picture's buffer goes back to the kept ones when the picture is dropped, for
/// the next job's picture (a 12 MP one is 36 MB of fresh pages otherwise:
/// [`job_memory::keep_buffer`]); small ones are freed.
impl Drop for Pixels {
    fn drop(&mut self) {
        job_memory::keep_buffer(std::mem::take(&mut self.data));
    }
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
        // A kept picture buffer: a rendition's copy is 36 MB of fresh pages otherwise.
        let mut copy = job_memory::take_buffer(data.len());
        copy.copy_from_slice(data);
        return Ok(Pixels {
            data: copy,
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

/// Side, in pixels, of the square blocks a turn is copied in: a block's source and
/// destination rows stay in the caches and the TLB (the pixel-by-pixel turn of a
/// 12 MP picture read one pixel per 12 KB row: ~100 ms, BENCHMARKS.md).
const BLOCK: usize = 64;

/// The image turned upright by EXIF `orientation` (1-8; anything else, or pixels that
/// are not `width × height × bands` bytes, leaves it). The turned copy goes into a
/// kept picture buffer ([`job_memory`]).
pub fn orient(p: Pixels, orientation: i32) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return p;
    }
    let (w, h) = (p.width as usize, p.height as usize);
    if w.checked_mul(h)
        .and_then(|n| n.checked_mul(usize::from(p.bands)))
        != Some(p.data.len())
    {
        return p;
    }
    let mut out = job_memory::take_buffer(p.data.len());
    match p.bands {
        1 => turn::<1>(&p.data, &mut out, w, h, orientation),
        3 => turn::<3>(&p.data, &mut out, w, h, orientation),
        4 => turn::<4>(&p.data, &mut out, w, h, orientation),
        _ => return p,
    }
    // Orientations 5-8 swap the sides.
    let (width, height) = if orientation >= 5 {
        (p.height, p.width)
    } else {
        (p.width, p.height)
    };
    Pixels {
        data: out,
        width,
        height,
        bands: p.bands,
    }
}

/// `src` (`w`×`h` pixels of `B` bytes) copied upright by EXIF `orientation` (2-8) into
/// `dst`, block by block.
fn turn<const B: usize>(src: &[u8], dst: &mut [u8], w: usize, h: usize, orientation: i32) {
    let out_w = if orientation >= 5 { h } else { w };
    let out_h = dst.len() / (out_w * B).max(1);
    // Where the upright top-left pixel is stored, and how far one step right and one
    // step down in the upright picture move in the stored one, in bytes (EXIF 2-8:
    // mirror, 180°, flip, transpose, 90° clockwise, transverse, 90° counter-clockwise).
    let (wi, hi, b) = (w as isize, h as isize, B as isize);
    let (origin, right, down) = match orientation {
        2 => (wi - 1, -1, wi),
        3 => (hi * wi - 1, -1, -wi),
        4 => ((hi - 1) * wi, 1, -wi),
        5 => (0, wi, 1),
        6 => ((hi - 1) * wi, -wi, 1),
        7 => (hi * wi - 1, -wi, -1),
        _ => (wi - 1, wi, -1),
    };
    let (origin, right, down) = (origin * b, right * b, down * b);
    for top in (0..out_h).step_by(BLOCK) {
        for left in (0..out_w).step_by(BLOCK) {
            let end = (left + BLOCK).min(out_w);
            for y in top..(top + BLOCK).min(out_h) {
                let mut from = origin + y as isize * down + left as isize * right;
                let row = &mut dst[(y * out_w + left) * B..(y * out_w + end) * B];
                for pixel in row.chunks_exact_mut(B) {
                    // In bounds by the origin and steps above (checked all the same).
                    let at = from as usize;
                    pixel.copy_from_slice(&src[at..at + B]);
                    from += right;
                }
            }
        }
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
    fn blocks_turn_as_the_pixel_by_pixel_formula_does() {
        // Sides that are no multiple of a block, each band count.
        let (w, h) = (BLOCK * 2 + 3, BLOCK + 5);
        for bands in [1u8, 3, 4] {
            let b = usize::from(bands);
            let data: Vec<u8> = (0..w * h * b).map(|i| (i * 31 % 251) as u8).collect();
            for orientation in 2..=8 {
                let p = Pixels {
                    data: data.clone(),
                    width: w as u32,
                    height: h as u32,
                    bands,
                };
                let got = orient(p, orientation);
                let ow = got.width as usize;
                for y in 0..got.height as usize {
                    for x in 0..ow {
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
                        assert_eq!(
                            got.data[to..to + b],
                            data[from..from + b],
                            "orientation {orientation}, {bands} bands, ({x}, {y})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pixels_of_the_wrong_length_are_left_as_they_are() {
        let p = Pixels {
            data: vec![1, 2, 3],
            width: 2,
            height: 2,
            bands: 1,
        };
        let kept = orient(p, 6);
        assert_eq!(
            (kept.width, kept.height, kept.data.as_slice()),
            (2, 2, &[1u8, 2, 3][..])
        );
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
