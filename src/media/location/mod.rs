//! GPS removal from served originals (SPEC "No location leaks"). JPEG, PNG, WebP and
//! HEIF/AVIF keep every byte as uploaded except their location metadata: the EXIF GPS
//! IFD ([`tiff`]) and the XMP location properties ([`xmp`]), found by walking each
//! container ([`containers`], [`heif`]).
//!
//! The edit is in place and of the same length: values are zeroed, XMP properties
//! become spaces, and PNG's CRCs are recomputed. So every offset in the file (HEIF
//! `iloc`, TIFF, RIFF sizes) still holds, nothing is re-encoded, and a file the walk
//! cannot read is served as it is.
//!
//! Not handled (served as uploaded): IPTC-IIM location datasets in JPEG APP13,
//! compressed XMP (PNG `iTXt`/`zTXt` with compression, HEIF `mime` items with a
//! content encoding), ImageMagick's hex "Raw profile type exif/xmp" text chunks, maker
//! notes, XMP under other prefixes than `exif:`, `photoshop:`, `Iptc4xmpCore:`,
//! `Iptc4xmpExt:`, and location in tracks of HEIF image sequences or in a video
//! appended to a JPEG (motion photos).

mod bytes;
mod containers;
mod heif;
mod tiff;
mod xmp;

#[cfg(test)]
mod samples;

/// What stripping did (the tests' view of [`blank_location`]).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stripped {
    /// Nothing to remove (the input is served as is).
    Untouched,
    /// The bytes without location, same length as the input.
    Edited(Vec<u8>),
}

/// [`blank_location`] on a copy, saying what it did.
#[cfg(test)]
pub fn strip_location(bytes: &[u8]) -> Stripped {
    let mut out = bytes.to_vec();
    if blank_location(&mut out) {
        Stripped::Edited(out)
    } else {
        Stripped::Untouched
    }
}

/// Removes location metadata from an image file's bytes, in place (the caller owns
/// them: no second copy of a file that may be tens of megabytes); whether anything
/// changed. The length never changes. The format is sniffed from the magic bytes
/// (JPEG, PNG, WebP, ISO-BMFF `ftyp` with a HEIF or AVIF brand); anything else, a file
/// without location, or one too damaged to parse is left as it is. All input is
/// treated as hostile: every read is bounds-checked.
pub fn blank_location(bytes: &mut [u8]) -> bool {
    let patches = match container(bytes) {
        Some(Container::Jpeg) => containers::jpeg(bytes),
        Some(Container::Png) => containers::png(bytes),
        Some(Container::Webp) => containers::webp(bytes),
        Some(Container::Heif) => heif::heif(bytes),
        None => return false,
    };
    let mut changed = false;
    for p in patches {
        let end = p.at.saturating_add(p.bytes.len());
        if let Some(dst) = bytes.get_mut(p.at..end) {
            if *dst != p.bytes[..] {
                dst.copy_from_slice(&p.bytes);
                changed = true;
            }
        }
    }
    changed
}

enum Container {
    Jpeg,
    Png,
    Webp,
    Heif,
}

use bytes::{be32, PNG_SIGNATURE};

/// The ISO-BMFF brands of still images and image sequences (HEIF, AVIF).
const HEIF_BRANDS: [&[u8]; 9] = [
    b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"hevc",
];

fn container(b: &[u8]) -> Option<Container> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Container::Jpeg)
    } else if b.starts_with(PNG_SIGNATURE) {
        Some(Container::Png)
    } else if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        Some(Container::Webp)
    } else if is_heif(b) {
        Some(Container::Heif)
    } else {
        None
    }
}

/// An `ftyp` box first, naming an image brand as major or compatible brand.
fn is_heif(b: &[u8]) -> bool {
    if b.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let ftyp_end = be32(b, 0).map_or(0, |s| s as usize).min(b.len());
    let major = b.get(8..12).into_iter();
    let compatible = b.get(16..ftyp_end).unwrap_or(&[]).chunks_exact(4);
    major
        .chain(compatible)
        .any(|brand| HEIF_BRANDS.contains(&brand))
}

#[cfg(test)]
mod tests {
    use super::samples::{self, Sample};
    use super::*;

    /// Every prefix, and every byte set to a few hostile values: no panic, and an
    /// edit never changes the length.
    fn survives_damage(file: &[u8]) {
        for n in 0..file.len() {
            if let Stripped::Edited(out) = strip_location(&file[..n]) {
                assert_eq!(out.len(), n);
            }
        }
        let mut damaged = file.to_vec();
        for i in 0..file.len() {
            for v in [0x00, 0xFF, 0x7F, 0x01] {
                damaged[i] = v;
                if let Stripped::Edited(out) = strip_location(&damaged) {
                    assert_eq!(out.len(), damaged.len());
                }
            }
            damaged[i] = file[i];
        }
    }

    fn all_samples() -> Vec<Sample> {
        let mut all = Vec::new();
        for big_endian in [false, true] {
            all.push(samples::jpeg(big_endian));
            all.push(samples::png(big_endian));
            all.push(samples::webp(big_endian));
            all.push(samples::heif(big_endian, false));
            all.push(samples::heif(big_endian, true));
        }
        all
    }

    #[test]
    fn every_container_is_stripped_and_only_of_location() {
        for sample in all_samples() {
            let Stripped::Edited(out) = strip_location(&sample.bytes) else {
                panic!("{}: not edited", sample.name);
            };
            sample.check(&out);
        }
    }

    #[test]
    fn stripping_twice_changes_nothing_more() {
        for sample in all_samples() {
            let Stripped::Edited(once) = strip_location(&sample.bytes) else {
                panic!("{}: not edited", sample.name);
            };
            assert_eq!(
                strip_location(&once),
                Stripped::Untouched,
                "{}",
                sample.name
            );
        }
    }

    #[test]
    fn files_without_location_are_untouched() {
        for sample in samples::without_location() {
            assert_eq!(
                strip_location(&sample.bytes),
                Stripped::Untouched,
                "{}",
                sample.name
            );
        }
        for other in [
            &b""[..],
            b"GIF89a....",
            b"%PDF-1.7",
            &[0xFF, 0xD8],
            b"RIFF\0\0\0\0WAVE",
        ] {
            assert_eq!(strip_location(other), Stripped::Untouched);
        }
    }

    #[test]
    fn damaged_files_never_panic() {
        for sample in all_samples() {
            survives_damage(&sample.bytes);
        }
        let tiff = samples::tiff(false, true).0;
        let mut exif_prefixed = b"Exif\0\0".to_vec();
        exif_prefixed.extend_from_slice(&tiff);
        survives_damage(&samples::jpeg_with(&[exif_prefixed]));
    }

    #[test]
    fn heif_brands_are_sniffed_from_major_or_compatible_brands() {
        assert!(is_heif(b"\0\0\0\x10ftypavif\0\0\0\0"));
        assert!(is_heif(b"\0\0\0\x18ftypisom\0\0\0\0mp41mif1"));
        assert!(!is_heif(b"\0\0\0\x14ftypisom\0\0\0\0mp41"));
        assert!(!is_heif(b"\0\0\0\x08ftyp"));
    }
}
