//! Where HEIF and AVIF (ISO-BMFF) keep EXIF and XMP: as items of the top-level `meta`
//! box, typed in `iinf` (`Exif`; `mime` with content type `application/rdf+xml`) and
//! located by `iloc`, in the file (construction method 0) or in `meta`'s `idat` (1).
//! An item of several extents is edited as the concatenation of its extents.

use super::bytes::{be32, Patch};
use super::{tiff, xmp};
use crate::media::heif_items::{extents, item_infos, locations};
use crate::media::isobmff::{boxes, child, BoxRef};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Item {
    Exif,
    Xmp,
}

pub(super) fn heif(b: &[u8]) -> Vec<Patch> {
    let mut patches = Vec::new();
    let top = boxes(b, 0, b.len());
    let Some(meta) = child(&top, b"meta") else {
        return patches;
    };
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let in_meta = boxes(b, meta.body.saturating_add(4), meta.end);
    let (Some(iinf), Some(iloc)) = (child(&in_meta, b"iinf"), child(&in_meta, b"iloc")) else {
        return patches;
    };
    let items = location_items(b, iinf);
    if items.is_empty() {
        return patches;
    }
    let ids: Vec<u32> = items.iter().map(|&(id, _)| id).collect();
    let Some(locations) = locations(b, iloc, &ids) else {
        return patches;
    };
    let idat = child(&in_meta, b"idat").map(|d| (d.body, d.end));
    for (id, kind) in items {
        for loc in locations.iter().filter(|l| l.id == id) {
            let Some(ranges) = extents(loc, b.len(), idat) else {
                continue;
            };
            let mut data = Vec::new();
            for r in &ranges {
                data.extend_from_slice(b.get(r.clone()).unwrap_or(&[]));
            }
            let changed = match kind {
                Item::Exif => blank_exif_item(&mut data),
                Item::Xmp => xmp::blank_location(&mut data),
            };
            if !changed {
                continue;
            }
            // Back into the extents, each as its own patch.
            let mut from = 0;
            for r in ranges {
                let part = data.get(from..from + r.len()).unwrap_or(&[]);
                if b.get(r.clone()) != Some(part) && part.len() == r.len() {
                    patches.push(Patch {
                        at: r.start,
                        bytes: part.to_vec(),
                    });
                }
                from += r.len();
            }
        }
    }
    patches
}

/// The items of `iinf` that hold EXIF or uncompressed XMP.
fn location_items(b: &[u8], iinf: &BoxRef) -> Vec<(u32, Item)> {
    item_infos(b, iinf)
        .into_iter()
        .filter_map(|info| match &info.kind {
            b"Exif" => Some((info.id, Item::Exif)),
            // A content encoding (deflate, ...) means compressed XMP: left as it is.
            b"mime" if info.content_type == b"application/rdf+xml" && info.encoding.is_empty() => {
                Some((info.id, Item::Xmp))
            }
            _ => None,
        })
        .collect()
}

/// An `Exif` item starts with the offset (u32 BE) from after itself to the TIFF
/// header; usually 6, skipping "Exif\0\0". A writer that says 0 but still puts the
/// "Exif\0\0" there is read too.
fn blank_exif_item(data: &mut [u8]) -> bool {
    let Some(offset) = be32(data, 0) else {
        return false;
    };
    let Some(mut at) = (offset as usize).checked_add(4) else {
        return false;
    };
    let here = data.get(at..).unwrap_or(&[]);
    if !tiff::is_tiff(here) && here.starts_with(b"Exif\0\0") {
        at += 6;
    }
    data.get_mut(at..).is_some_and(tiff::blank_gps)
}

#[cfg(test)]
mod tests {
    use super::super::samples;
    use super::*;

    #[test]
    fn exif_and_xmp_items_are_found() {
        let sample = samples::heif(false, false);
        let b = &sample.bytes;
        let top = boxes(b, 0, b.len());
        let meta = child(&top, b"meta").expect("meta");
        let in_meta = boxes(b, meta.body + 4, meta.end);
        let items = location_items(b, child(&in_meta, b"iinf").expect("iinf"));
        assert_eq!(items, vec![(2, Item::Exif), (3, Item::Xmp)]);
        let locs = locations(b, child(&in_meta, b"iloc").expect("iloc"), &[2, 3]).expect("iloc");
        assert_eq!(locs.len(), 2);
        assert_eq!(locs[1].extents.len(), 2);
    }
}
