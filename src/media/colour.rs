//! Colour management of small decoded images with Little CMS (the library libvips
//! uses): from a source's embedded ICC profile to sRGB, relative colorimetric, as
//! libvips' `icc_transform` does. Building a transform costs milliseconds, far more
//! than running it on a thumbnail, and photos share a handful of profiles (a phone's
//! Display P3, sRGB IEC61966-2.1, Adobe RGB), so each worker keeps the last few.

use std::cell::RefCell;
use std::rc::Rc;

use lcms2::{ColorSpaceSignature, Intent, PixelFormat, Profile, Transform};

use crate::media::pixels::Pixels;

/// Transforms a worker keeps.
const KEPT: usize = 8;

struct Cached {
    profile_hash: u64,
    bands: u8,
    transform: Rc<Transform<u8, u8>>,
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

fn transform_for(profile: &[u8], bands: u8) -> Result<Rc<Transform<u8, u8>>, String> {
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
    let transform = Rc::new(
        Transform::new(
            &source,
            format,
            &Profile::new_srgb(),
            PixelFormat::RGB_8,
            Intent::RelativeColorimetric,
        )
        .map_err(|e| format!("an ICC transform: {e}"))?,
    );
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

/// `p` (grey, RGB or CMYK as its profile says) in sRGB through `profile`.
pub fn to_srgb(p: &Pixels, profile: &[u8]) -> Result<Pixels, String> {
    let transform = transform_for(profile, p.bands)?;
    let mut out = vec![0u8; p.width as usize * p.height as usize * 3];
    transform.transform_pixels(&p.data, &mut out);
    Ok(Pixels {
        data: out,
        width: p.width,
        height: p.height,
        bands: 3,
    })
}

/// [`to_srgb`] of a picture the caller gives up: RGB is converted where it lies (a
/// 12 MP picture is 36 MB: no second buffer), other band counts into a new one. A
/// profile Little CMS cannot use leaves the pixels as they are (logged): the picture
/// still shows, in its own colours.
pub fn into_srgb(mut p: Pixels, profile: &[u8]) -> Pixels {
    if p.bands == 3 && p.data.len() % 3 == 0 {
        match transform_for(profile, 3) {
            Ok(transform) => transform.transform_in_place(&mut p.data),
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
