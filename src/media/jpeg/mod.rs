//! The direct JPEG path of thumbnails: libjpeg's scaled decode (and, for a progressive
//! source at 1/8, its DC scans alone) and a plain encoder, through the C file beside
//! this one (libjpeg recovers from errors by `longjmp`, which only C can catch). The
//! measurements that justify it are in docs/decisions.md.

use std::ffi::{c_char, c_int, c_uchar, c_ulong, c_void, CStr};
use std::ops::Deref;

pub mod thumbnail;

const MESSAGE_MAX: usize = 200;

#[repr(C)]
struct RawDecoded {
    pixels: *mut c_uchar,
    width: c_int,
    height: c_int,
    components: c_int,
    dc_only: c_int,
    message: [c_char; MESSAGE_MAX],
}

extern "C" {
    fn fg_jpeg_decode(
        buf: *const c_uchar,
        len: usize,
        denom: c_int,
        dc_only: c_int,
        out: *mut RawDecoded,
    ) -> c_int;
    fn fg_jpeg_encode(
        pixels: *const c_uchar,
        width: c_int,
        height: c_int,
        components: c_int,
        quality: c_int,
        optimize: c_int,
        out: *mut *mut c_uchar,
        out_len: *mut c_ulong,
        message: *mut c_char,
    ) -> c_int;
    fn fg_jpeg_free(p: *mut c_void);
}

/// Pixels libjpeg decoded: `components` bytes a pixel (1 grey, 3 RGB, 4 CMYK as
/// stored), rows packed.
pub struct Decoded {
    pixels: *mut c_uchar,
    len: usize,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes a pixel.
    pub components: u8,
    /// Whether only the DC scans of a progressive source were read (the unit tests
    /// check the short read happens exactly when it should).
    #[cfg_attr(not(test), allow(dead_code))]
    pub dc_only: bool,
}

impl Deref for Decoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `pixels` holds `len` bytes malloc'd by the decoder and owned here.
        unsafe { std::slice::from_raw_parts(self.pixels, self.len) }
    }
}

impl Drop for Decoded {
    fn drop(&mut self) {
        // SAFETY: allocated by the C side with malloc, freed once.
        unsafe { fg_jpeg_free(self.pixels as *mut c_void) }
    }
}

// SAFETY: the buffer is plain memory owned by this value alone.
unsafe impl Send for Decoded {}

fn message(raw: &[c_char]) -> String {
    let text = CStr::from_bytes_until_nul(
        // SAFETY: c_char and u8 have the same size and alignment.
        unsafe { std::slice::from_raw_parts(raw.as_ptr() as *const u8, raw.len()) },
    )
    .map(|c| c.to_string_lossy().into_owned())
    .unwrap_or_default();
    if text.is_empty() {
        "libjpeg failed without a message".to_string()
    } else {
        text
    }
}

/// Decodes the JPEG in `source` at 1/`denom` of its size (1, 2, 4 or 8). With
/// `dc_only`, a progressive source decoded at 1/8 is read up to its DC scans only (the
/// same pixels: the 1/8 inverse DCT uses nothing else). A truncated or corrupt source
/// is an error.
pub fn decode(source: &[u8], denom: u8, dc_only: bool) -> Result<Decoded, String> {
    if !matches!(denom, 1 | 2 | 4 | 8) {
        return Err(format!("scale 1/{denom} is not one libjpeg makes"));
    }
    let mut raw = RawDecoded {
        pixels: std::ptr::null_mut(),
        width: 0,
        height: 0,
        components: 0,
        dc_only: 0,
        message: [0; MESSAGE_MAX],
    };
    // SAFETY: `source` is valid for its length; `raw` is a valid out-struct.
    let status = unsafe {
        fg_jpeg_decode(
            source.as_ptr(),
            source.len(),
            c_int::from(denom),
            c_int::from(dc_only),
            &mut raw,
        )
    };
    if status != 0 || raw.pixels.is_null() {
        return Err(message(&raw.message));
    }
    let (width, height, components) = (
        u32::try_from(raw.width).unwrap_or(0),
        u32::try_from(raw.height).unwrap_or(0),
        u8::try_from(raw.components).unwrap_or(0),
    );
    let decoded = Decoded {
        pixels: raw.pixels,
        len: width as usize * height as usize * usize::from(components),
        width,
        height,
        components,
        dc_only: raw.dc_only != 0,
    };
    if decoded.len == 0 || !matches!(components, 1 | 3 | 4) {
        return Err(format!("libjpeg decoded {width}x{height}x{components}"));
    }
    Ok(decoded)
}

/// Encodes grey (`components` 1) or RGB (3) pixels as a baseline JPEG at `quality`,
/// with optimized Huffman tables when `optimize`, and no metadata.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    components: u8,
    quality: u8,
    optimize: bool,
) -> Result<Vec<u8>, String> {
    let expected = width as usize * height as usize * usize::from(components);
    if !matches!(components, 1 | 3) || pixels.len() != expected || expected == 0 {
        return Err(format!(
            "{} bytes are not {width}x{height}x{components} pixels",
            pixels.len()
        ));
    }
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut out_len: c_ulong = 0;
    let mut text: [c_char; MESSAGE_MAX] = [0; MESSAGE_MAX];
    // SAFETY: `pixels` holds width × height × components bytes (checked above); the
    // out-pointers and the message buffer are valid.
    let status = unsafe {
        fg_jpeg_encode(
            pixels.as_ptr(),
            width as c_int,
            height as c_int,
            c_int::from(components),
            c_int::from(quality.clamp(1, 100)),
            c_int::from(optimize),
            &mut out,
            &mut out_len,
            text.as_mut_ptr(),
        )
    };
    if status != 0 || out.is_null() {
        return Err(message(&text));
    }
    // SAFETY: the encoder malloc'd `out_len` bytes at `out`; copied, then freed once.
    let bytes = unsafe { std::slice::from_raw_parts(out, out_len as usize).to_vec() };
    // SAFETY: as above.
    unsafe { fg_jpeg_free(out as *mut c_void) };
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 255 / w) as u8, (y * 255 / h) as u8, 128]
            })
            .collect()
    }

    #[test]
    fn encodes_then_decodes_at_every_scale() {
        let jpeg = encode(&gradient(64, 48), 64, 48, 3, 90, true).unwrap();
        for (denom, w, h) in [(1, 64, 48), (2, 32, 24), (4, 16, 12), (8, 8, 6)] {
            let d = decode(&jpeg, denom, true).unwrap();
            assert_eq!((d.width, d.height, d.components), (w, h, 3));
            assert_eq!(d.len(), (w * h * 3) as usize);
            assert!(!d.dc_only, "a baseline source is read whole");
        }
    }

    /// A photo-like picture: a gradient with deterministic noise on it.
    fn textured(w: u32, h: u32, components: u8) -> Vec<u8> {
        let mut seed = 0x2545_f491_u32;
        (0..w as usize * h as usize * usize::from(components))
            .map(|i| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((i / 97 % 200) as u32 + (seed >> 28)) as u8
            })
            .collect()
    }

    /// Huffman coding is lossless: the same quantized picture decodes the same
    /// whatever tables coded it.
    fn decodes_alike(a: &[u8], b: &[u8]) {
        let (a, b) = (decode(a, 1, true).unwrap(), decode(b, 1, true).unwrap());
        assert_eq!(
            (a.width, a.height, a.components),
            (b.width, b.height, b.components)
        );
        assert!(a.deref() == b.deref(), "the same pixels");
    }

    #[test]
    fn a_large_picture_gets_tables_from_a_sample_that_code_it_smaller() {
        for components in [3u8, 1] {
            let (w, h) = (2400, 1000);
            let pixels = textured(w, h, components);
            let sampled = encode(&pixels, w, h, components, 82, true).unwrap();
            let standard = encode(&pixels, w, h, components, 82, false).unwrap();
            decodes_alike(&sampled, &standard);
            assert!(
                sampled.len() < standard.len(),
                "{components} bands: {} bytes with the sample's tables, {} with the standard ones",
                sampled.len(),
                standard.len()
            );
        }
    }

    #[test]
    fn symbols_the_sample_never_saw_still_have_codes() {
        // 2 MP: sampled 1 in 2, band 0 from its left half. All flat but noise in band
        // 0's right half: symbols (large coefficients, long runs) only outside the sample.
        let (w, h) = (2048u32, 1024u32);
        let mut pixels = vec![128u8; (w * h * 3) as usize];
        let mut seed = 7u32;
        for y in 0..16 {
            for x in 1024..w {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let at = ((y * w + x) * 3) as usize;
                pixels[at..at + 3].copy_from_slice(&(seed >> 8).to_le_bytes()[..3]);
            }
        }
        let sampled = encode(&pixels, w, h, 3, 95, true).unwrap();
        let standard = encode(&pixels, w, h, 3, 95, false).unwrap();
        decodes_alike(&sampled, &standard);
    }

    #[test]
    fn bad_input_is_an_error_not_a_crash() {
        assert!(decode(b"not a jpeg", 8, true).is_err());
        let jpeg = encode(&gradient(64, 48), 64, 48, 3, 90, false).unwrap();
        assert!(
            decode(&jpeg[..jpeg.len() / 2], 1, true).is_err(),
            "truncated"
        );
        assert!(decode(&jpeg, 3, true).is_err());
        assert!(encode(&[0; 5], 2, 2, 3, 80, false).is_err());
    }
}
