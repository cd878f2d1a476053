//! Where HEIF and AVIF (ISO-BMFF) keep EXIF and XMP: as items of the top-level `meta`
//! box, typed in `iinf` (`Exif`; `mime` with content type `application/rdf+xml`) and
//! located by `iloc`, in the file (construction method 0) or in `meta`'s `idat` (1).
//! An item of several extents is edited as the concatenation of its extents.

use std::ops::Range;

use super::bytes::{be32, Patch};
use super::{tiff, xmp};
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
    let items = item_types(b, iinf);
    if items.is_empty() {
        return patches;
    }
    let Some(locations) = locations(b, iloc, &items) else {
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

/// A bounds-checked cursor over `b[at..end]`.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], at: usize, end: usize) -> Self {
        Reader {
            b,
            at,
            end: end.min(b.len()),
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let next = self.at.checked_add(n).filter(|&next| next <= self.end)?;
        let s = self.b.get(self.at..next)?;
        self.at = next;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An unsigned integer of `size` bytes, as `iloc` sizes them (0, 4 or 8).
    fn uint(&mut self, size: u8) -> Option<u64> {
        match size {
            0 => Some(0),
            4 => self.u32().map(u64::from),
            8 => Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            _ => None,
        }
    }

    /// A NUL-terminated string (or the rest of the box, unterminated).
    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..self.end)?;
        if rest.is_empty() {
            return None;
        }
        let len = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        self.at += (len + 1).min(rest.len());
        rest.get(..len)
    }
}

/// The items of `iinf` that hold EXIF or XMP.
fn item_types(b: &[u8], iinf: &BoxRef) -> Vec<(u32, Item)> {
    let count_len = match b.get(iinf.body) {
        Some(0) => 2,
        Some(_) => 4,
        None => return Vec::new(),
    };
    boxes(b, iinf.body + 4 + count_len, iinf.end)
        .iter()
        .filter(|e| &e.kind == b"infe")
        .filter_map(|e| item_type(b, e))
        .collect()
}

/// One `infe`: its item's ID, if it is EXIF or uncompressed XMP.
fn item_type(b: &[u8], infe: &BoxRef) -> Option<(u32, Item)> {
    let mut r = Reader::new(b, infe.body, infe.end);
    let version = r.u8()?;
    r.take(3)?;
    let id = match version {
        // Versions 0 and 1 have no item type: a MIME item, content type after the name.
        0 | 1 => {
            let id = u32::from(r.u16()?);
            r.u16()?; // protection index
            r.cstr()?; // name
            id
        }
        2 | 3 => {
            let id = if version == 2 {
                u32::from(r.u16()?)
            } else {
                r.u32()?
            };
            r.u16()?;
            let kind = r.take(4)?;
            if kind == b"Exif" {
                return Some((id, Item::Exif));
            }
            if kind != b"mime" {
                return None;
            }
            r.cstr()?;
            id
        }
        _ => return None,
    };
    let content_type = r.cstr()?;
    // A content encoding (deflate, ...) means compressed XMP: left as it is.
    let encoding = r.cstr().unwrap_or(&[]);
    (content_type == b"application/rdf+xml" && encoding.is_empty()).then_some((id, Item::Xmp))
}

/// Where an item is: construction method, base offset, (offset, length) extents.
struct Location {
    id: u32,
    method: u16,
    base: u64,
    extents: Vec<(u64, u64)>,
}

/// The `iloc` entries of the `wanted` items (data in this file only).
fn locations(b: &[u8], iloc: &BoxRef, wanted: &[(u32, Item)]) -> Option<Vec<Location>> {
    let mut r = Reader::new(b, iloc.body, iloc.end);
    let version = r.u8()?;
    r.take(3)?;
    if version > 2 {
        return None;
    }
    let sizes = r.u8()?;
    let (offset_size, length_size) = (sizes >> 4, sizes & 0xF);
    let sizes = r.u8()?;
    let base_size = sizes >> 4;
    let index_size = if version > 0 { sizes & 0xF } else { 0 };
    let count = if version < 2 {
        u32::from(r.u16()?)
    } else {
        r.u32()?
    };
    let mut found = Vec::new();
    for _ in 0..count {
        let id = if version < 2 {
            u32::from(r.u16()?)
        } else {
            r.u32()?
        };
        let method = if version > 0 { r.u16()? & 0xF } else { 0 };
        let data_reference = r.u16()?;
        let base = r.uint(base_size)?;
        let extent_count = r.u16()?;
        let keep = data_reference == 0 && wanted.iter().any(|&(w, _)| w == id);
        let mut extents = Vec::new();
        // Extents of zero-sized fields take no bytes: one stands for them all, so a
        // hostile count cannot make this loop long.
        let record_len = u16::from(offset_size) + u16::from(length_size) + u16::from(index_size);
        let n = if record_len == 0 {
            extent_count.min(1)
        } else {
            extent_count
        };
        for _ in 0..n {
            r.uint(index_size)?;
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            if keep {
                extents.push((offset, length));
            }
        }
        if keep {
            found.push(Location {
                id,
                method,
                base,
                extents,
            });
        }
    }
    Some(found)
}

/// The file ranges of an item's extents; `None` for data elsewhere (another item,
/// a missing `idat`) or out of bounds. A length of 0 means "to the end".
fn extents(
    loc: &Location,
    file_len: usize,
    idat: Option<(usize, usize)>,
) -> Option<Vec<Range<usize>>> {
    let (start, end) = match loc.method {
        0 => (0, file_len),
        1 => idat?,
        _ => return None,
    };
    let mut ranges = Vec::with_capacity(loc.extents.len());
    let mut total = 0usize;
    for &(offset, length) in &loc.extents {
        let from = (start as u64).checked_add(loc.base)?.checked_add(offset)?;
        let from = usize::try_from(from).ok().filter(|&f| f <= end)?;
        let to = match length {
            0 => end,
            n => from.checked_add(usize::try_from(n).ok()?)?,
        };
        if to > end {
            return None;
        }
        // Overlapping extents could repeat the file many times over.
        total = total.checked_add(to - from).filter(|&t| t <= file_len)?;
        ranges.push(from..to);
    }
    Some(ranges)
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
        let items = item_types(b, child(&in_meta, b"iinf").expect("iinf"));
        assert_eq!(items, vec![(2, Item::Exif), (3, Item::Xmp)]);
        let locs = locations(b, child(&in_meta, b"iloc").expect("iloc"), &items).expect("iloc");
        assert_eq!(locs.len(), 2);
        assert_eq!(locs[1].extents.len(), 2);
    }

    #[test]
    fn hostile_extents_are_refused() {
        let loc = |method, base, extents| Location {
            id: 1,
            method,
            base,
            extents,
        };
        assert!(extents(&loc(0, 0, vec![(0, 10)]), 5, None).is_none());
        assert!(extents(&loc(0, u64::MAX, vec![(1, 1)]), 5, None).is_none());
        assert!(extents(&loc(1, 0, vec![(0, 1)]), 5, None).is_none());
        assert!(extents(&loc(2, 0, vec![(0, 1)]), 5, None).is_none());
        assert!(extents(&loc(0, 0, vec![(0, 0); 3]), 5, None).is_none());
        // In idat (data at 10..20), base 1, offset 1, "to the end".
        let found = extents(&loc(1, 1, vec![(1, 0)]), 50, Some((10, 20)));
        let expected: Range<usize> = 12..20;
        assert_eq!(found, Some(vec![expected]));
    }
}
