//! The process-wide libvips runtime: started once, never shut down, loaders limited
//! to the formats filegate names, and what this libvips can encode.
//!
//! libvips facts that shape this file (Debian 12, libvips 8.14, crate `libvips`
//! 1.6.1): dropping any `VipsApp` shuts the library down and the next call crashes,
//! so the one instance lives in a `static` that is never dropped; errors go to a
//! process-wide buffer, read here for the log only.

use std::ffi::CString;
use std::sync::OnceLock;

use libvips::{bindings, VipsApp};

use crate::error::ApiError;

/// The loaders filegate lets libvips run (class names; subclasses follow).
const ALLOWED_LOADERS: &[&str] = &[
    "VipsForeignLoadJpeg",
    "VipsForeignLoadPng",
    "VipsForeignLoadWebp",
    "VipsForeignLoadNsgif",
];

/// The running libvips and its abilities.
pub struct Vips {
    app: VipsApp,
    avif: bool,
}

static VIPS: OnceLock<Result<Vips, String>> = OnceLock::new();

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
    let Ok(image) =
        libvips::VipsImage::new_from_memory(&pixels, 16, 16, 3, libvips::ops::BandFormat::Uchar)
    else {
        return false;
    };
    let options = libvips::ops::HeifsaveBufferOptions {
        compression: libvips::ops::ForeignHeifCompression::Av1,
        effort: 0,
        strip: true,
        ..Default::default()
    };
    libvips::ops::heifsave_buffer_with_opts(&image, &options).is_ok_and(|b| !b.is_empty())
}

impl Vips {
    /// Whether AVIF output is available.
    pub fn can_encode_avif(&self) -> bool {
        self.avif
    }

    /// Takes libvips' error text (for the log) and clears it.
    pub fn take_error(&self) -> String {
        let text = self
            .app
            .error_buffer()
            .map(|s| s.trim().replace('\n', "; "))
            .unwrap_or_default();
        self.app.error_clear();
        text
    }
}
