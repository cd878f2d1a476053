//! The process-wide libvips runtime: started once, never shut down, loaders limited
//! to the formats filegate names, and what this libvips can encode.
//!
//! libvips facts that shape this file (Debian 12, libvips 8.14, crate `libvips`
//! 1.6.1): dropping any `VipsApp` shuts the library down and the next call crashes,
//! so the one instance lives in a `static` that is never dropped; errors go to a
//! process-wide buffer, read here for the log only.
//!
//! Operations go through the crate's raw `bindings` and the small [`Image`]
//! wrapper below, not its generated `ops`: those pass every optional argument
//! (some with values libvips 8.14 rejects, e.g. PNG `bitdepth: 0`) and build the
//! output buffer before checking the result, so a failed save reads a null pointer.
//! Here an error is checked first and every image is unreferenced exactly once.

use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::OnceLock;

use libvips::{bindings, VipsApp};

use crate::error::ApiError;

/// The loaders filegate lets libvips run (class names; subclasses follow).
const ALLOWED_LOADERS: &[&str] = &[
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
    // HEIF and AVIF through libheif (libde265 for HEVC, dav1d/aom for AV1).
    "VipsForeignLoadHeif",
];

/// The running libvips and its abilities.
pub struct Vips {
    app: VipsApp,
    avif: bool,
}

static VIPS: OnceLock<Result<Vips, String>> = OnceLock::new();

extern "C" {
    /// libvips 8.14 exports it (vector.h), the crate's bindings do not.
    fn vips_vector_set_enabled(enabled: c_int);
}

/// libvips, started on first use. A start failure is a 500 whose detail is logged.
pub fn vips() -> Result<&'static Vips, ApiError> {
    VIPS.get_or_init(start)
        .as_ref()
        .map_err(|e| ApiError::internal(format!("libvips: {e}")))
}

fn start() -> Result<Vips, String> {
    let app = VipsApp::new("filegate", false).map_err(|e| format!("init failed: {e:?}"))?;
    // libvips' own operation cache would keep decoded sources around; filegate has
    // its own cache of results.
    app.cache_set_max(0);
    app.cache_set_max_mem(0);
    // Each transform runs on one pool worker; libvips' inner threads would multiply
    // the CPU the pool allows.
    app.concurrency_set(1);
    // liborc 0.4.33 (Debian 12), libvips' SIMD code generator, segfaults when several
    // workers generate code at once (seen here under load: a crash in liborc).
    // libvips' plain C paths are used instead.
    // SAFETY: a global flag setter of libvips, after vips_init.
    unsafe { vips_vector_set_enabled(0) };
    // SAFETY: plain setters of libvips' global operation flags, called with valid
    // NUL-terminated class names after vips_init.
    unsafe {
        bindings::vips_block_untrusted_set(1);
        let all = CString::new("VipsForeignLoad").map_err(|e| e.to_string())?;
        bindings::vips_operation_block_set(all.as_ptr(), 1);
        for name in ALLOWED_LOADERS {
            let c = CString::new(*name).map_err(|e| e.to_string())?;
            bindings::vips_operation_block_set(c.as_ptr(), 0);
        }
    }
    let avif = can_encode_avif();
    app.error_clear();
    Ok(Vips { app, avif })
}

/// Encodes a tiny image as AVIF: Debian's libheif may lack an AV1 encoder.
fn can_encode_avif() -> bool {
    let pixels = [0u8; 16 * 16 * 3];
    Image::from_rgb(&pixels, 16, 16)
        .and_then(|image| image.save(AVIF_SAVER))
        .is_ok_and(|b| !b.is_empty())
}

/// libvips 8.14 lists `.avif` for the file saver only; the buffer saver takes
/// `.heif` with AV1 compression (which writes an AVIF file).
pub const AVIF_SAVER: &str = ".heif[compression=av1,effort=0,strip]";

/// libvips' largest coordinate: "no limit" on a side left open.
pub const MAX_COORD: c_int = 10_000_000;

/// One libvips image, unreferenced when dropped. Not `Send`: made, used and
/// dropped on one worker.
pub struct Image {
    ptr: *mut bindings::VipsImage,
    // The source buffer an image reads lazily must outlive it; the borrow checker
    // cannot see through the pointer, so callers keep the buffer in scope.
    _not_send: std::marker::PhantomData<*mut ()>,
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a live reference we own (checked non-null at creation).
        unsafe { bindings::g_object_unref(self.ptr as *mut c_void) }
    }
}

fn checked(ptr: *mut bindings::VipsImage) -> Result<Image, String> {
    if ptr.is_null() {
        Err(error_text())
    } else {
        Ok(Image {
            ptr,
            _not_send: std::marker::PhantomData,
        })
    }
}

fn checked_op(status: c_int, out: *mut bindings::VipsImage) -> Result<Image, String> {
    if status != 0 {
        if !out.is_null() {
            // SAFETY: a failed operation may still have set `out`; it is ours.
            unsafe { bindings::g_object_unref(out as *mut c_void) };
        }
        return Err(error_text());
    }
    checked(out)
}

/// Takes libvips' error text (for the log) and clears it.
pub fn error_text() -> String {
    // SAFETY: vips_error_buffer returns a NUL-terminated string owned by libvips.
    let text = unsafe {
        let raw = bindings::vips_error_buffer();
        if raw.is_null() {
            String::new()
        } else {
            CStr::from_ptr(raw)
                .to_string_lossy()
                .trim()
                .replace('\n', "; ")
        }
    };
    // SAFETY: plain call.
    unsafe { bindings::vips_error_clear() };
    if text.is_empty() {
        "libvips failed without a message".to_string()
    } else {
        text
    }
}

impl Image {
    /// The image in `buf`, header only (pixels are decoded on demand). `buf` must
    /// outlive the image.
    pub fn header(buf: &[u8]) -> Result<Image, String> {
        // SAFETY: `buf` is valid for its length; the empty option string and the
        // NULL terminator end the variadic list.
        checked(unsafe {
            bindings::vips_image_new_from_buffer(
                buf.as_ptr() as *const c_void,
                buf.len() as _,
                c"".as_ptr(),
                null_mut::<c_void>(),
            )
        })
    }

    /// libvips' shrink-on-load thumbnail of `buf`, fitting `width`×`height`, never
    /// upscaled, turned upright by EXIF orientation. With `to_srgb` (a source with an
    /// embedded ICC profile, or CMYK) it is converted to sRGB; an untagged RGB source
    /// already is sRGB, and asking libvips 8.14 for an export profile anyway builds an
    /// lcms transform per call (a third of a small thumbnail's CPU). No import
    /// profile is forced: assuming sRGB would fail on greyscale sources. A truncated
    /// or corrupt source is an error (when the pixels are read, i.e. at save).
    pub fn thumbnail(
        buf: &[u8],
        width: c_int,
        height: c_int,
        to_srgb: bool,
    ) -> Result<Image, String> {
        let mut out = null_mut();
        let size = bindings::VipsSize_VIPS_SIZE_DOWN as c_int;
        let fail_on = bindings::VipsFailOn_VIPS_FAIL_ON_TRUNCATED as c_int;
        // 8.14's thumbnail_buffer does not hand `fail_on` to the loader; the loader's
        // own option string does.
        let loader_options = c"fail_on=truncated";
        // SAFETY (both calls): valid buffer and out-pointer; name/value pairs of the
        // right C types, NULL-terminated.
        let status = if to_srgb {
            unsafe {
                bindings::vips_thumbnail_buffer(
                    buf.as_ptr() as *mut c_void,
                    buf.len() as _,
                    &mut out,
                    width,
                    c"height".as_ptr(),
                    height,
                    c"size".as_ptr(),
                    size,
                    c"export_profile".as_ptr(),
                    c"srgb".as_ptr(),
                    c"fail_on".as_ptr(),
                    fail_on,
                    c"option_string".as_ptr(),
                    loader_options.as_ptr(),
                    null_mut::<c_void>(),
                )
            }
        } else {
            unsafe {
                bindings::vips_thumbnail_buffer(
                    buf.as_ptr() as *mut c_void,
                    buf.len() as _,
                    &mut out,
                    width,
                    c"height".as_ptr(),
                    height,
                    c"size".as_ptr(),
                    size,
                    c"fail_on".as_ptr(),
                    fail_on,
                    c"option_string".as_ptr(),
                    loader_options.as_ptr(),
                    null_mut::<c_void>(),
                )
            }
        };
        checked_op(status, out)
    }

    /// Converted to sRGB through its embedded ICC profile (or libvips' default CMYK
    /// profile for an untagged CMYK image).
    pub fn to_srgb(&self) -> Result<Image, String> {
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer; name/value pairs of the right C
        // types, NULL-terminated.
        let status = unsafe {
            bindings::vips_icc_transform(
                self.ptr,
                &mut out,
                c"srgb".as_ptr(),
                c"embedded".as_ptr(),
                1 as c_int,
                null_mut::<c_void>(),
            )
        };
        checked_op(status, out)
    }

    /// The EXIF orientation (1-8; 1 when absent).
    pub fn orientation(&self) -> i32 {
        // SAFETY: live image.
        unsafe { bindings::vips_image_get_orientation(self.ptr) }
    }

    /// An image of tightly packed 8-bit RGB pixels (copied).
    pub fn from_rgb(rgb: &[u8], width: u32, height: u32) -> Result<Image, String> {
        Image::from_pixels(rgb, width, height, 3)
    }

    /// An image of tightly packed 8-bit pixels of `bands` bands (1-4: grey, grey with
    /// alpha, RGB, RGBA), copied.
    pub fn from_pixels(
        pixels: &[u8],
        width: u32,
        height: u32,
        bands: u32,
    ) -> Result<Image, String> {
        if !(1..=4).contains(&bands) {
            return Err("an 8-bit image has 1 to 4 bands".into());
        }
        if pixels.len() as u64 != u64::from(width) * u64::from(height) * u64::from(bands) {
            return Err("pixel buffer size does not match its dimensions".into());
        }
        // SAFETY: the buffer holds width × height × bands bytes; libvips copies it.
        checked(unsafe {
            bindings::vips_image_new_from_memory_copy(
                pixels.as_ptr() as *const c_void,
                pixels.len() as _,
                width as c_int,
                height as c_int,
                bands as c_int,
                bindings::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        })
    }

    /// An image of packed 8-bit pixels as a JPEG decoder gives them (copied): 1 band
    /// grey, 3 sRGB, 4 CMYK; with `icc`, that profile attached.
    pub fn from_decoded(
        data: &[u8],
        width: u32,
        height: u32,
        bands: u8,
        icc: Option<&[u8]>,
    ) -> Result<Image, String> {
        if data.len() as u64 != u64::from(width) * u64::from(height) * u64::from(bands) {
            return Err("pixel buffer size does not match its dimensions".into());
        }
        // SAFETY: the buffer holds width × height × bands bytes; libvips copies it.
        let image = checked(unsafe {
            bindings::vips_image_new_from_memory_copy(
                data.as_ptr() as *const c_void,
                data.len() as _,
                width as c_int,
                height as c_int,
                c_int::from(bands),
                bindings::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        })?;
        let interpretation = match bands {
            1 => bindings::VipsInterpretation_VIPS_INTERPRETATION_B_W,
            4 => bindings::VipsInterpretation_VIPS_INTERPRETATION_CMYK,
            _ => bindings::VipsInterpretation_VIPS_INTERPRETATION_sRGB,
        };
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer; a name/value pair of the right C
        // type, NULL-terminated.
        let status = unsafe {
            bindings::vips_copy(
                image.ptr,
                &mut out,
                c"interpretation".as_ptr(),
                interpretation as c_int,
                null_mut::<c_void>(),
            )
        };
        let image = checked_op(status, out)?;
        if let Some(profile) = icc {
            // SAFETY: live image we own alone; libvips copies the bytes.
            unsafe {
                bindings::vips_image_set_blob_copy(
                    image.ptr,
                    c"icc-profile-data".as_ptr(),
                    profile.as_ptr() as *const c_void,
                    profile.len() as _,
                )
            };
        }
        Ok(image)
    }

    /// The embedded ICC profile, if any.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        let mut data: *const c_void = std::ptr::null();
        let mut len = 0;
        // SAFETY: live image; the field name is NUL-terminated; on success libvips
        // points `data` at `len` bytes it owns, copied before the image can go.
        unsafe {
            if bindings::vips_image_get_typeof(self.ptr, c"icc-profile-data".as_ptr()) == 0 {
                return None;
            }
            if bindings::vips_image_get_blob(
                self.ptr,
                c"icc-profile-data".as_ptr(),
                &mut data,
                &mut len,
            ) != 0
                || data.is_null()
            {
                error_text();
                return None;
            }
            Some(std::slice::from_raw_parts(data as *const u8, len as usize).to_vec())
        }
    }

    /// The pixels, packed (`bands()` bytes a pixel; the image must be 8-bit).
    pub fn to_pixels(&self) -> Result<Vec<u8>, String> {
        let mut size = 0;
        // SAFETY: live image; on success libvips hands us a g_malloc'd buffer of
        // `size` bytes that we copy and g_free.
        unsafe {
            if bindings::vips_image_get_format(self.ptr)
                != bindings::VipsBandFormat_VIPS_FORMAT_UCHAR
            {
                return Err("not an 8-bit image".into());
            }
            let buf = bindings::vips_image_write_to_memory(self.ptr, &mut size);
            if buf.is_null() {
                return Err(error_text());
            }
            let bytes = std::slice::from_raw_parts(buf as *const u8, size as usize).to_vec();
            bindings::g_free(buf);
            Ok(bytes)
        }
    }

    /// Bands (bytes a pixel for an 8-bit image).
    pub fn bands(&self) -> i64 {
        // SAFETY: live image.
        i64::from(unsafe { bindings::vips_image_get_bands(self.ptr) })
    }

    /// Resized by `hscale` horizontally and `vscale` vertically (libvips' default
    /// Lanczos kernel: an upscale is smooth, as a photo's large areas are).
    pub fn resize(&self, hscale: f64, vscale: f64) -> Result<Image, String> {
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer, a name/value pair of the right
        // C type, NULL-terminated.
        let status = unsafe {
            bindings::vips_resize(
                self.ptr,
                &mut out,
                hscale,
                c"vscale".as_ptr(),
                vscale,
                null_mut::<c_void>(),
            )
        };
        checked_op(status, out)
    }

    /// 8-bit colour of limited ("video") range, 16-235, stretched to 0-255, alpha
    /// (a fourth or second band) as it was ([`crate::media::heif_repair`]).
    pub fn expand_video_range(&self) -> Result<Image, String> {
        let bands = usize::try_from(self.bands()).unwrap_or(0).clamp(1, 4);
        let colour = if bands % 2 == 0 { bands - 1 } else { bands };
        let scale = 255.0 / 219.0;
        let mut a = [1.0f64; 4];
        let mut b = [0.0f64; 4];
        for i in 0..colour {
            a[i] = scale;
            b[i] = -16.0 * scale;
        }
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer, arrays of `bands` doubles, a
        // name/value pair of the right C type, NULL-terminated.
        let status = unsafe {
            bindings::vips_linear(
                self.ptr,
                &mut out,
                a.as_ptr(),
                b.as_ptr(),
                bands as c_int,
                c"uchar".as_ptr(),
                1 as c_int,
                null_mut::<c_void>(),
            )
        };
        checked_op(status, out)
    }

    /// Gaussian noise of `sigma` added to every band, clipped back to 8 bits: the
    /// grain of a camera sensor. The same `seed` makes the same noise.
    pub fn with_noise(&self, sigma: f64, seed: c_int) -> Result<Image, String> {
        let mut noise = null_mut();
        // SAFETY: valid out-pointer; name/value pairs of the right C types,
        // NULL-terminated.
        let status = unsafe {
            bindings::vips_gaussnoise(
                &mut noise,
                self.width() as c_int,
                self.height() as c_int,
                c"sigma".as_ptr(),
                sigma,
                c"mean".as_ptr(),
                0.0f64,
                c"seed".as_ptr(),
                seed,
                null_mut::<c_void>(),
            )
        };
        let noise = checked_op(status, noise)?;
        let mut sum = null_mut();
        // SAFETY: two live images (a one-band image is joined to every band of the
        // other), valid out-pointer, NULL-terminated options.
        let status =
            unsafe { bindings::vips_add(self.ptr, noise.ptr, &mut sum, null_mut::<c_void>()) };
        let sum = checked_op(status, sum)?;
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer, NULL-terminated options; the
        // cast clips to 0..=255.
        let status = unsafe {
            bindings::vips_cast(
                sum.ptr,
                &mut out,
                bindings::VipsBandFormat_VIPS_FORMAT_UCHAR,
                null_mut::<c_void>(),
            )
        };
        checked_op(status, out)
    }

    /// Marks a freshly made image (frames stacked top to bottom, each
    /// `page_height` rows) as an endlessly looping animation showing frame `i` for
    /// `delays_ms[i]`: what the GIF and WebP savers write.
    pub fn set_animation(&mut self, page_height: c_int, delays_ms: &[c_int]) {
        // SAFETY: live image this wrapper owns alone (set only on an image not yet
        // handed to any operation); NUL-terminated field names; the array is valid
        // for its length and copied by libvips.
        unsafe {
            bindings::vips_image_set_int(self.ptr, c"page-height".as_ptr(), page_height);
            bindings::vips_image_set_int(self.ptr, c"loop".as_ptr(), 0);
            bindings::vips_image_set_array_int(
                self.ptr,
                c"delay".as_ptr(),
                delays_ms.as_ptr(),
                delays_ms.len() as c_int,
            );
        }
    }

    /// Rotated by `quarter_turns` × 90° clockwise.
    pub fn rotate(self, quarter_turns: u8) -> Result<Image, String> {
        let angle = match quarter_turns % 4 {
            0 => return Ok(self),
            1 => bindings::VipsAngle_VIPS_ANGLE_D90,
            2 => bindings::VipsAngle_VIPS_ANGLE_D180,
            _ => bindings::VipsAngle_VIPS_ANGLE_D270,
        };
        let mut out = null_mut();
        // SAFETY: live input image, valid out-pointer, NULL-terminated options.
        let status = unsafe { bindings::vips_rot(self.ptr, &mut out, angle, null_mut::<c_void>()) };
        checked_op(status, out)
    }

    /// Fits the image in `width`×`height`, never upscaling.
    pub fn fit(&self, width: c_int, height: c_int) -> Result<Image, String> {
        let mut out = null_mut();
        // SAFETY: as for `thumbnail`.
        let status = unsafe {
            bindings::vips_thumbnail_image(
                self.ptr,
                &mut out,
                width,
                c"height".as_ptr(),
                height,
                c"size".as_ptr(),
                bindings::VipsSize_VIPS_SIZE_DOWN as c_int,
                null_mut::<c_void>(),
            )
        };
        checked_op(status, out)
    }

    /// Width in pixels.
    pub fn width(&self) -> i64 {
        // SAFETY: live image.
        i64::from(unsafe { bindings::vips_image_get_width(self.ptr) })
    }

    /// Height in pixels (all pages of an animation).
    pub fn height(&self) -> i64 {
        // SAFETY: live image.
        i64::from(unsafe { bindings::vips_image_get_height(self.ptr) })
    }

    /// Height of one page (frame).
    pub fn page_height(&self) -> i64 {
        // SAFETY: live image.
        i64::from(unsafe { bindings::vips_image_get_page_height(self.ptr) })
    }

    /// Whether the source needs colour management to become sRGB: it carries an
    /// ICC profile, or it is CMYK.
    pub fn needs_colour_management(&self) -> bool {
        // SAFETY: live image; the field name is a NUL-terminated string.
        let has_profile =
            unsafe { bindings::vips_image_get_typeof(self.ptr, c"icc-profile-data".as_ptr()) } != 0;
        // SAFETY: live image.
        let cmyk = unsafe { bindings::vips_image_get_interpretation(self.ptr) }
            == bindings::VipsInterpretation_VIPS_INTERPRETATION_CMYK;
        has_profile || cmyk
    }

    /// Pages (frames) the source holds, from its header.
    pub fn pages(&self) -> i64 {
        // SAFETY: live image.
        i64::from(unsafe { bindings::vips_image_get_n_pages(self.ptr) })
    }

    /// Encodes with a saver chosen by suffix and options, e.g. `.jpg[Q=82,strip]`.
    pub fn save(&self, saver: &str) -> Result<Vec<u8>, String> {
        let suffix = CString::new(saver).map_err(|e| e.to_string())?;
        let mut buf: *mut c_void = null_mut();
        let mut len = 0;
        // SAFETY: live image, valid out-pointers, NULL-terminated options. On
        // success libvips hands us a g_malloc'd buffer that we copy and g_free.
        unsafe {
            let status = bindings::vips_image_write_to_buffer(
                self.ptr,
                suffix.as_ptr(),
                &mut buf,
                &mut len,
                null_mut::<c_void>(),
            );
            if status != 0 || buf.is_null() {
                if !buf.is_null() {
                    bindings::g_free(buf);
                }
                return Err(error_text());
            }
            let bytes = std::slice::from_raw_parts(buf as *const u8, len as usize).to_vec();
            bindings::g_free(buf);
            Ok(bytes)
        }
    }
}

impl Vips {
    /// Whether AVIF output is available.
    pub fn can_encode_avif(&self) -> bool {
        self.avif
    }

    /// The libvips version, e.g. `8.14.1`.
    pub fn version(&self) -> &str {
        self.app.version_string().unwrap_or("unknown")
    }
}
