//! Colour management of decoded images: from a source's embedded ICC profile to sRGB,
//! relative colorimetric, as libvips' `icc_transform` does. RGB pictures whose profile
//! is a matrix and curves (a phone's Display P3, sRGB IEC61966-2.1, Adobe RGB: nearly
//! every photo) go through qcms, Firefox's colour management, whose SSE/AVX path
//! converts a 12 MP picture in 25 ms where Little CMS takes 85 (within one level of
//! it; docs/decisions.md); every other profile (grey, CMYK, lookup tables) through
//! Little CMS, the library libvips uses. Building a transform costs milliseconds, far
//! more than running it on a thumbnail, and photos share a handful of profiles, so
//! each worker keeps the last few.

use std::cell::RefCell;
use std::rc::Rc;

use lcms2::{ColorSpaceSignature, Intent, PixelFormat, Profile};

use crate::media::job_memory;
use crate::media::pixels::Pixels;

/// Transforms a worker keeps.
const KEPT: usize = 8;

/// A profile's way to sRGB.
enum Transform {
    /// A matrix-and-curves RGB profile, by qcms (in place).
    Matrix(qcms::Transform),
    /// Any other, by Little CMS.
    Lcms(lcms2::Transform<u8, u8>),
}

impl Transform {
    /// RGB `pixels` (whole pixels) to sRGB where they lie.
    fn in_place(&self, pixels: &mut [u8]) {
        match self {
            Transform::Matrix(t) => t.apply(pixels),
            Transform::Lcms(t) => t.transform_in_place(pixels),
        }
    }

    /// `from` (the transform's band count) to sRGB RGB in `into`, of as many pixels.
    fn copied(&self, from: &[u8], into: &mut [u8]) {
        match self {
            Transform::Matrix(t) => t.convert(from, into),
            Transform::Lcms(t) => t.transform_pixels(from, into),
        }
    }
}

struct Cached {
    profile_hash: u64,
    bands: u8,
    transform: Rc<Transform>,
}

thread_local! {
    static TRANSFORMS: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

fn hash(profile: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
    h.write(profile);
    h.finish()
}

fn transform_for(profile: &[u8], bands: u8) -> Result<Rc<Transform>, String> {
    let key = hash(profile);
    let found = TRANSFORMS.with(|t| {
        let mut kept = t.borrow_mut();
        let at = kept
            .iter()
            .position(|c| c.profile_hash == key && c.bands == bands)?;
        // Most recently used last.
        let entry = kept.remove(at);
        let transform = entry.transform.clone();
        kept.push(entry);
        Some(transform)
    });
    if let Some(t) = found {
        return Ok(t);
    }
    let transform = Rc::new(build(profile, bands)?);
    TRANSFORMS.with(|t| {
        let mut kept = t.borrow_mut();
        if kept.len() >= KEPT {
            kept.remove(0);
        }
        kept.push(Cached {
            profile_hash: key,
            bands,
            transform: transform.clone(),
        });
    });
    Ok(transform)
}

fn build(profile: &[u8], bands: u8) -> Result<Transform, String> {
    let source = Profile::new_icc(profile).map_err(|e| format!("the ICC profile: {e}"))?;
    let format = match (bands, source.color_space()) {
        (1, ColorSpaceSignature::GrayData) => PixelFormat::GRAY_8,
        (3, ColorSpaceSignature::RgbData) => PixelFormat::RGB_8,
        (4, ColorSpaceSignature::CmykData) => PixelFormat::CMYK_8,
        (b, space) => {
            return Err(format!(
                "an ICC profile for {space:?} on an image of {b} bands"
            ))
        }
    };
    if bands == 3 && source.is_matrix_shaper() {
        if let Some(t) = matrix_transform(profile) {
            return Ok(Transform::Matrix(t));
        }
    }
    lcms2::Transform::new(
        &source,
        format,
        &Profile::new_srgb(),
        PixelFormat::RGB_8,
        Intent::RelativeColorimetric,
    )
    .map(Transform::Lcms)
    .map_err(|e| format!("an ICC transform: {e}"))
}

/// qcms' transform of an RGB matrix-and-curves profile to sRGB (its precached output
/// tables: the SIMD path), or `None` when qcms does not take the profile.
fn matrix_transform(profile: &[u8]) -> Option<qcms::Transform> {
    let source = qcms::Profile::new_from_slice(profile, false)?;
    let mut srgb = qcms::Profile::new_sRGB();
    srgb.precache_output_transform();
    qcms::Transform::new(
        &source,
        &srgb,
        qcms::DataType::RGB8,
        qcms::Intent::RelativeColorimetric,
    )
}

/// `p` (grey, RGB or CMYK as its profile says) in sRGB through `profile`.
pub fn to_srgb(p: &Pixels, profile: &[u8]) -> Result<Pixels, String> {
    let transform = transform_for(profile, p.bands)?;
    let pixels = p.width as usize * p.height as usize;
    if p.data.len() != pixels * usize::from(p.bands) {
        return Err(format!("{} bytes are not {pixels} pixels", p.data.len()));
    }
    // Every byte is written: a kept picture buffer will do (a rendition's is 36 MB).
    let mut out = job_memory::take_buffer(pixels * 3);
    transform.copied(&p.data, &mut out);
    Ok(Pixels {
        data: out,
        width: p.width,
        height: p.height,
        bands: 3,
    })
}

/// [`to_srgb`] of a picture the caller gives up: RGB is converted where it lies (a
/// 12 MP picture is 36 MB: no second buffer), other band counts into a new one. A
/// profile neither library can use leaves the pixels as they are (logged): the picture
/// still shows, in its own colours.
pub fn into_srgb(mut p: Pixels, profile: &[u8]) -> Pixels {
    if p.bands == 3 && p.data.len() % 3 == 0 {
        match transform_for(profile, 3) {
            Ok(transform) => transform.in_place(&mut p.data),
            Err(e) => log::debug!("colour: {e}; the pixels kept as they are"),
        }
        return p;
    }
    match to_srgb(&p, profile) {
        Ok(converted) => converted,
        Err(e) => {
            log::debug!("colour: {e}; the pixels kept as they are");
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srgb_profile() -> Vec<u8> {
        Profile::new_srgb().icc().expect("sRGB as ICC bytes")
    }

    /// Display P3 as a phone tags its photos: P3 primaries, D65, the sRGB curve.
    fn display_p3_profile() -> Vec<u8> {
        let xy = |x, y| lcms2::CIExyY { x, y, Y: 1.0 };
        let primaries = lcms2::CIExyYTRIPLE {
            Red: xy(0.680, 0.320),
            Green: xy(0.265, 0.690),
            Blue: xy(0.150, 0.060),
        };
        let curve = lcms2::ToneCurve::new_parametric(
            4,
            &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045],
        )
        .expect("the sRGB curve");
        Profile::new_rgb(&xy(0.3127, 0.3290), &primaries, &[&curve, &curve, &curve])
            .and_then(|p| p.icc())
            .expect("Display P3 as ICC bytes")
    }

    #[test]
    fn a_matrix_profile_goes_through_qcms_within_a_level_of_little_cms() {
        let profile = display_p3_profile();
        let transform = transform_for(&profile, 3).expect("a transform");
        assert!(
            matches!(*transform, Transform::Matrix(_)),
            "qcms takes Display P3"
        );
        let pixels: Vec<u8> = (0..64 * 64 * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let mut fast = pixels.clone();
        transform.in_place(&mut fast);
        let source = Profile::new_icc(&profile).expect("the profile");
        let lcms = lcms2::Transform::new(
            &source,
            PixelFormat::RGB_8,
            &Profile::new_srgb(),
            PixelFormat::RGB_8,
            Intent::RelativeColorimetric,
        )
        .expect("Little CMS' transform");
        let mut reference = pixels.clone();
        lcms.transform_in_place(&mut reference);
        assert_ne!(fast, pixels, "P3 to sRGB moves saturated colours");
        let worst = fast
            .iter()
            .zip(&reference)
            .map(|(a, b)| a.abs_diff(*b))
            .max();
        assert!(
            worst <= Some(1),
            "qcms vs Little CMS: {worst:?} levels apart"
        );
    }

    #[test]
    fn in_place_conversion_matches_the_copying_one() {
        let p = Pixels {
            data: (0..=255u8).cycle().take(4 * 3 * 3).collect(),
            width: 4,
            height: 3,
            bands: 3,
        };
        let profile = srgb_profile();
        let copied = to_srgb(&p, &profile).expect("a transform");
        let in_place = into_srgb(p, &profile);
        assert_eq!(in_place.data, copied.data);
        assert_eq!((in_place.width, in_place.height, in_place.bands), (4, 3, 3));
    }

    #[test]
    fn an_unusable_profile_leaves_the_pixels() {
        let p = Pixels {
            data: vec![10, 20, 30],
            width: 1,
            height: 1,
            bands: 3,
        };
        assert_eq!(into_srgb(p, b"not a profile").data, vec![10, 20, 30]);
    }
}
